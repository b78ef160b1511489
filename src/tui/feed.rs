//! The dashboard's IO, off its loop: a thread of its own captures the selected agent's
//! pane, reads its checkpoint, and for a viewer reads the owner's snapshot, owner
//! record, heartbeat and journal and writes inbox letters. It sends what it found to
//! the loop over a channel, so a wedged tmux or a slow disk delays a reading, never a
//! key or a redraw. Reads and reports; decides nothing.

use std::sync::mpsc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::app::{App, Mode};
use crate::adapters::clock::now;
use crate::adapters::tmux::{Tmux, TmuxCli};
use crate::engine::{AgentName, Command, Mind, Time};
use crate::present::command_words;
use crate::store::{Entry, Follower, OwnerRecord, Store};

/// Lines of the selected agent's pane shown live.
const TAIL_LINES: usize = 40;

/// What the loop asks the feed for.
#[derive(Clone, Debug)]
pub enum Ask {
    /// The agent's pane and checkpoint.
    Look { agent: AgentName, session: String },
    /// A viewer's look at the owner (nothing for an owner).
    View,
    /// A viewer's command, through the owner's inbox.
    Submit(Command),
}

/// What the feed found.
#[derive(Debug)]
pub enum Fed {
    Looked {
        agent: AgentName,
        tail: Vec<String>,
        checkpoint: Option<String>,
    },
    Viewed(Viewed),
    /// How a submitted command went, for the status line.
    Note(String),
}

/// A viewer's look at the run it follows.
#[derive(Debug)]
pub struct Viewed {
    /// The owner's last snapshot; why it cannot be read.
    pub mind: Result<Option<Mind>, String>,
    pub owner: Option<OwnerRecord>,
    /// The owner's last beat, when it is this owner's.
    pub heartbeat: Option<Time>,
    /// Journal entries written since the last look, oldest first.
    pub entries: Vec<Entry>,
}

impl Viewed {
    pub fn apply(self, app: &mut App) {
        match self.mind {
            Ok(Some(mind)) => {
                app.mind = mind;
                app.problem = None;
            }
            Ok(None) => {}
            Err(e) => app.problem = Some(e),
        }
        app.mode = Mode::Viewer {
            owner: self.owner,
            heartbeat: self.heartbeat,
        };
        app.absorb(&self.entries);
    }
}

/// What a viewer follows: the snapshot, owner and heartbeat files and the journal.
pub struct Viewing {
    store: Store,
    journal: Follower,
}

impl Viewing {
    pub fn new(store: Store, journal: Follower) -> Self {
        Self { store, journal }
    }

    /// One look at the owner's files.
    pub fn read(&mut self) -> Viewed {
        let mind = self.store.peek_mind().map(|m| m.map(|(mind, _)| mind));
        let owner = self.store.live_owner();
        let heartbeat = self
            .store
            .heartbeat()
            .filter(|h| owner.as_ref().is_some_and(|o| o.pid == h.pid && o.epoch == h.epoch))
            .map(|h| h.t);
        Viewed {
            mind,
            owner,
            heartbeat,
            entries: self.journal.read_new(),
        }
    }
}

/// The loop's end of the feed thread.
pub struct Feed {
    asks: mpsc::Sender<Ask>,
    pub fed: UnboundedReceiver<Fed>,
    /// For the one thing the loop does with tmux itself: lending it the terminal.
    pub tmux: TmuxCli,
}

impl Feed {
    /// Starts the thread; `viewing` when this dashboard follows another owner.
    pub fn spawn(tmux: TmuxCli, store: Store, viewing: Option<Viewing>) -> Self {
        let (asks, asks_rx) = mpsc::channel();
        let (fed_tx, fed) = unbounded_channel();
        let feed_tmux = tmux.clone();
        std::thread::spawn(move || serve(&asks_rx, &fed_tx, &feed_tmux, &store, viewing));
        Self { asks, fed, tmux }
    }

    pub fn ask(&self, ask: Ask) {
        let _ = self.asks.send(ask);
    }
}

/// Answers asks until the loop goes away. Asks that queued up while tmux or the disk
/// was slow are merged: the user's commands all go out, then one look at the agent
/// selected last and one view.
fn serve(
    asks: &mpsc::Receiver<Ask>,
    fed: &UnboundedSender<Fed>,
    tmux: &TmuxCli,
    store: &Store,
    mut viewing: Option<Viewing>,
) {
    while let Ok(first) = asks.recv() {
        let mut look = None;
        let mut view = false;
        for ask in std::iter::once(first).chain(asks.try_iter()) {
            match ask {
                Ask::Look { agent, session } => look = Some((agent, session)),
                Ask::View => view = true,
                Ask::Submit(command) => {
                    if fed.send(Fed::Note(submit(store, &command))).is_err() {
                        return;
                    }
                }
            }
        }
        let mut out = Vec::new();
        if let Some((agent, session)) = look {
            out.push(look_at(tmux, store, agent, &session));
        }
        if view && let Some(v) = viewing.as_mut() {
            out.push(Fed::Viewed(v.read()));
        }
        if out.into_iter().any(|f| fed.send(f).is_err()) {
            return;
        }
    }
}

fn look_at(tmux: &TmuxCli, store: &Store, agent: AgentName, session: &str) -> Fed {
    let tail = match tmux.capture(session, TAIL_LINES) {
        Ok(lines) => lines,
        Err(e) => {
            tracing::debug!("capture {session}: {e}");
            Vec::new()
        }
    };
    let checkpoint = checkpoint(store, &agent);
    Fed::Looked {
        agent,
        tail,
        checkpoint,
    }
}

/// A line about the agent's last checkpoint, when there is one.
fn checkpoint(store: &Store, agent: &AgentName) -> Option<String> {
    let cp = store.checkpoint(agent)?;
    let git = cp.git.as_ref().map_or(String::new(), |g| {
        format!("; branch {}, {} changed file(s)", g.branch, g.modified.len())
    });
    Some(format!("{} at {}: {}{git}", cp.incarnation, cp.at.clock(), cp.reason))
}

/// Hands a viewer's command to the owner through its inbox; says how that went.
fn submit(store: &Store, command: &Command) -> String {
    let words = command_words(command);
    match store.inbox().submit(command, now()) {
        Ok(()) => {
            let owner = store
                .live_owner()
                .map_or("the owner".to_owned(), |o| format!("pid {}", o.pid));
            format!("{words}: asked {owner} through its inbox; it acts within one poll")
        }
        Err(e) => format!("{words}: could not ask the owner: {e}"),
    }
}
