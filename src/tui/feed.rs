//! The dashboard's IO, off its loop: a thread of its own captures the selected agent's
//! pane, reads its checkpoint, and for a viewer reads the owner's snapshot, owner
//! record, heartbeat and journal and writes inbox letters. It sends what it found to
//! the loop over a channel, so a wedged tmux or a slow disk delays a reading, never a
//! key or a redraw. Reads and reports; decides nothing.

use std::sync::mpsc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::app::{App, Mode};
use crate::adapters::clock::now;
use crate::adapters::tmux::Tmux;
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
}

impl Feed {
    /// Starts the thread; `viewing` when this dashboard follows another owner.
    pub fn spawn<T: Tmux + Send + 'static>(tmux: T, store: Store, viewing: Option<Viewing>) -> Self {
        let (asks, asks_rx) = mpsc::channel();
        let (fed_tx, fed) = unbounded_channel();
        std::thread::spawn(move || serve(&asks_rx, &fed_tx, &tmux, &store, viewing));
        Self { asks, fed }
    }

    pub fn ask(&self, ask: Ask) {
        let _ = self.asks.send(ask);
    }
}

/// Answers asks until the loop goes away. Asks that queued up while tmux or the disk
/// was slow are merged: the user's commands all go out, then one look at the agent
/// selected last and one view.
fn serve<T: Tmux>(
    asks: &mpsc::Receiver<Ask>,
    fed: &UnboundedSender<Fed>,
    tmux: &T,
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

fn look_at<T: Tmux>(tmux: &T, store: &Store, agent: AgentName, session: &str) -> Fed {
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
        Ok(_) => {
            let owner = store
                .live_owner()
                .map_or("the owner".to_owned(), |o| format!("pid {}", o.pid));
            format!("{words}: asked {owner} through its inbox; it acts within one poll")
        }
        Err(e) => format!("{words}: could not ask the owner: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::adapters::tmux::{Pane, SpawnSpec, TmuxError};

    /// A tmux that hangs in `capture` until the test lets it go.
    struct Wedged {
        entered: Mutex<mpsc::Sender<()>>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl Tmux for Wedged {
        fn list_panes(&self) -> Result<Vec<Pane>, TmuxError> {
            Ok(Vec::new())
        }
        fn capture(&self, session: &str, _lines: usize) -> Result<Vec<String>, TmuxError> {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv();
            Ok(vec![format!("the screen of {session}")])
        }
        fn send_text(&self, _: &str, _: &str) -> Result<(), TmuxError> {
            Ok(())
        }
        fn spawn(&self, _: &SpawnSpec) -> Result<(), TmuxError> {
            Ok(())
        }
        fn kill(&self, _: &str) -> Result<(), TmuxError> {
            Ok(())
        }
    }

    fn look(name: &str) -> Ask {
        Ask::Look {
            agent: AgentName::new(name).unwrap(),
            session: format!("s-{name}"),
        }
    }

    fn looked(fed: Option<Fed>) -> (String, Vec<String>) {
        match fed {
            Some(Fed::Looked { agent, tail, .. }) => (agent.to_string(), tail),
            other => panic!("expected a look, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_wedged_tmux_delays_the_pane_never_the_loop_and_only_the_last_look_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let tmux = Wedged {
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        };
        let mut feed = Feed::spawn(tmux, store, None);
        feed.ask(look("a"));
        entered.recv_timeout(Duration::from_secs(5)).unwrap();
        // tmux hangs on a's pane; the loop goes on asking, and asking never waits.
        let t0 = Instant::now();
        feed.ask(look("b"));
        feed.ask(look("c"));
        assert!(t0.elapsed() < Duration::from_millis(50));
        assert!(feed.fed.try_recv().is_err(), "nothing until tmux answers");
        release.send(()).unwrap();
        assert_eq!(
            looked(feed.fed.recv().await),
            ("a".into(), vec!["the screen of s-a".into()])
        );
        // b was asked for and left behind before tmux came back: only c is looked at.
        entered.recv_timeout(Duration::from_secs(5)).unwrap();
        release.send(()).unwrap();
        assert_eq!(looked(feed.fed.recv().await).0, "c");
    }
}
