//! `vigil tui`: the interactive dashboard. One `tokio::select!` loop: key →
//! [`app::Effect`] → state change → [`view::render`]. The terminal is `terminal`'s;
//! what tmux and the disk say comes from the `feed` thread; as owner it is a face of
//! the same owner loop as `vigil watch` ([`runtime`]), as viewer it follows the owner's
//! files. Decides nothing the engine does not, and does no IO on its loop.

pub mod app;
mod feed;
pub mod fleet;
pub mod keys;
mod terminal;
pub mod view;

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use ratatui::crossterm::event::Event;
use tokio::sync::mpsc;

use crate::adapters::clock::now;
use crate::adapters::tmux::TmuxClient;
use crate::config::Config;
use crate::engine::{AgentName, Command, What};
use crate::present::command_words;
use crate::store::{Entry, Follower, Record, Store};
use crate::supervisor::Supervisor;
use crate::supervisor::runtime::{self, Caught, Signals, Update};
use app::{Agent, App, Effect, Mode};
use feed::{Ask, Fed, Feed, Viewing};
use terminal::{Input, Screen, attach};

/// How often the screen is brought up to date (countdowns, the live pane, a viewer's
/// snapshot), whatever the poll interval.
const TICK: Duration = Duration::from_secs(1);
/// Journal records read back into the event log at start.
const HISTORY: usize = 200;

/// Whether this process owns the run.
pub enum Face {
    Owner(Box<Supervisor<TmuxClient>>),
    Viewer,
}

/// Everything `vigil tui` needs from the project.
pub struct Setup {
    pub config: Config,
    pub tmux: TmuxClient,
    pub store: Store,
    pub face: Face,
    /// Installed before the claim; the owner loop answers them, or (as a viewer) the
    /// dashboard quits at TERM or INT.
    pub signals: Signals,
}

/// Sends this process's `tracing` output to `tui.log` in the state dir.
pub fn init_log(store: &Store) {
    use std::os::unix::fs::OpenOptionsExt;
    let path = store.path("tui.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path);
    if let Ok(file) = file {
        let _ = tracing_subscriber::fmt()
            .with_writer(Mutex::new(file))
            .with_target(false)
            .try_init();
    }
}

/// The configured agents, in config order.
fn agents_of(config: &Config) -> Vec<Agent> {
    config
        .agents
        .iter()
        .map(|a| Agent {
            name: a.name.clone(),
            session: config.session_of(&a.name),
        })
        .collect()
}

/// Runs the dashboard until `q`, Ctrl-C, SIGTERM or SIGINT (SIGHUP reloads an owner's
/// config). The agents keep running. Inside the tokio runtime the signals were installed in.
pub async fn run(setup: Setup) -> Result<ExitCode> {
    let tmux = setup.tmux.clone();
    let (mut app, mut driver, feed) = start(setup);
    tracing::info!(
        pid = std::process::id(),
        owner = matches!(driver, Driver::Owner { .. }),
        "vigil tui started"
    );
    let outcome = dashboard(&mut app, &mut driver, feed, &tmux).await;
    let finished = driver.release().await;
    tracing::info!("vigil tui stopped");
    outcome?;
    finished?;
    println!("vigil tui: stopped; the agents keep running (`vigil status` shows them)");
    Ok(ExitCode::SUCCESS)
}

/// The state at start (the journal's recent history in the event log), the owner loop
/// or the viewer's signals, and the feed thread.
fn start(setup: Setup) -> (App, Driver, Feed) {
    let Setup {
        config,
        tmux,
        store,
        face,
        signals,
    } = setup;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mode = match face {
        Face::Owner(_) => Mode::Owner {
            poll: config.poll_interval,
            socket: tmux.socket().map(str::to_owned),
        },
        Face::Viewer => Mode::Viewer {
            owner: None,
            heartbeat: None,
        },
    };
    let mut app = App::new(config.project.clone(), mode, agents_of(&config), now(), no_color);
    let mut journal = Follower::new(store.journal().path().to_owned());
    let history = journal.read_new();
    app.absorb(&history[history.len().saturating_sub(HISTORY)..]);
    let (driver, viewing) = match face {
        Face::Owner(sup) => {
            app.mind = sup.mind().clone();
            let (handle, updates) = runtime::spawn(*sup, signals, runtime::Face::Dashboard);
            (Driver::Owner { handle, updates }, None)
        }
        Face::Viewer => {
            // The first look before the screen is up, so the title never names no owner
            // for a moment; later looks come from the feed.
            let mut viewing = Viewing::new(store.clone(), journal);
            viewing.read().apply(&mut app);
            (Driver::Viewer { signals }, Some(viewing))
        }
    };
    let feed = Feed::spawn(tmux, store, viewing);
    (app, driver, feed)
}

/// The loop: keys, ticks, the owner loop's reports and the feed's findings, each
/// followed by a redraw. Returns at a quit, a stop signal, or a terminal that failed.
async fn dashboard(app: &mut App, driver: &mut Driver, mut feed: Feed, tmux: &TmuxClient) -> Result<()> {
    let mut screen = Screen::enter().context("setting up the terminal")?;
    let mut input = Input::spawn();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut looking = Looking::default();
    let socket = driver.socket(app);
    loop {
        looking.ask(app, &feed);
        screen.draw(app).context("drawing the dashboard")?;
        tokio::select! {
            ev = input.rx.recv() => match ev {
                Some(Event::Key(key)) => match app.key(key) {
                    Some(Effect::Quit) => return Ok(()),
                    Some(Effect::Send(command)) => driver.send(command, app, &feed),
                    Some(Effect::Attach { session }) => attach(&mut screen, &input, tmux, &session, app),
                    None => {}
                },
                Some(_) => {} // a resize (or anything else) just redraws
                None => return Ok(()), // the terminal has gone
            },
            _ = tick.tick() => {
                app.now = now();
                looking.stale = true;
                if matches!(driver, Driver::Viewer { .. }) {
                    feed.ask(Ask::View);
                }
            }
            Some(fed) = feed.fed.recv() => absorb_fed(fed, app),
            update = driver.next() => match update {
                Some(Update::Stopped) | None => return Ok(()),
                Some(update) => absorb_update(update, app, socket.clone()),
            },
        }
    }
}

/// Asks the feed for the selected agent's pane when the selection moves and once per tick.
#[derive(Default)]
struct Looking {
    asked: Option<AgentName>,
    stale: bool,
}

impl Looking {
    fn ask(&mut self, app: &App, feed: &Feed) {
        let Some(row) = app.current() else { return };
        if !self.stale && self.asked.as_ref() == Some(&row.name) {
            return;
        }
        self.stale = false;
        self.asked = Some(row.name.clone());
        feed.ask(Ask::Look {
            agent: row.name,
            session: row.session,
        });
    }
}

fn absorb_fed(fed: Fed, app: &mut App) {
    match fed {
        Fed::Looked {
            agent,
            tail,
            checkpoint,
        } => {
            app.checkpoint = checkpoint.map(|c| (agent.clone(), c));
            app.tail = Some((agent, tail));
        }
        Fed::Viewed(viewed) => viewed.apply(app),
        Fed::Note(note) => app.note(note),
    }
}

/// Who moves the fleet: this process's owner loop, or another process (this one only
/// watches it, and quits at TERM or INT).
enum Driver {
    /// The owner loop runs the passes (on a blocking thread, so keys and redraws never
    /// wait for tmux) and reports each one.
    Owner {
        handle: runtime::Handle,
        updates: mpsc::UnboundedReceiver<Update>,
    },
    Viewer {
        signals: Signals,
    },
}

/// Takes what the owner loop reports into the state.
fn absorb_update(update: Update, app: &mut App, socket: Option<String>) {
    match update {
        Update::Pass { records, mind, asked } => {
            if let Some(mind) = mind {
                app.mind = *mind;
            }
            app.problem = None;
            app.absorb(&records);
            if !asked.is_empty() {
                app.note(outcome(&asked, &records));
            }
        }
        Update::Problem(problem) => {
            tracing::warn!("{problem}");
            app.problem = Some(problem);
        }
        Update::Warning(warning) => {
            tracing::warn!("{warning}");
            app.note(warning);
        }
        Update::Reloaded { records, config } => {
            app.absorb(&records);
            app.agents = agents_of(&config);
            app.mode = Mode::Owner {
                poll: config.poll_interval,
                socket,
            };
        }
        Update::Ready | Update::Stopped => {}
    }
}

impl Driver {
    /// The tmux socket an owner shows in its title (it cannot change while it runs).
    fn socket(&self, app: &App) -> Option<String> {
        match &app.mode {
            Mode::Owner { socket, .. } => socket.clone(),
            Mode::Viewer { .. } => None,
        }
    }

    /// The owner loop's next report; a viewer's stop signal reads as `Stopped`.
    async fn next(&mut self) -> Option<Update> {
        match self {
            Driver::Owner { updates, .. } => updates.recv().await,
            Driver::Viewer { signals } => loop {
                if signals.next().await == Caught::Stop {
                    return Some(Update::Stopped);
                }
            },
        }
    }

    /// Carries out a command from a key, through the same paths as the CLI: the owner
    /// loop's next pass, or (from the feed thread) the owner's inbox.
    fn send(&mut self, command: Command, app: &mut App, feed: &Feed) {
        let words = command_words(&command);
        match self {
            Driver::Owner { handle, .. } => {
                app.note(format!("{words}: doing it now"));
                handle.run(command);
            }
            Driver::Viewer { .. } => feed.ask(Ask::Submit(command)),
        }
        tracing::info!(command = %words, "key");
    }

    /// Lets a pass in progress finish (a quit never cuts one in half) and the owner
    /// loop journal that it let go.
    async fn release(self) -> Result<()> {
        let Driver::Owner { handle, .. } = self else {
            return Ok(());
        };
        handle.stop();
        Ok(handle.finished().await?)
    }
}

/// How the commands a pass carried went, in a line: failures and refusals (the
/// engine's notes about those agents) say why; otherwise "done".
fn outcome(asked: &[Command], records: &[Entry]) -> String {
    let words: Vec<String> = asked.iter().map(command_words).collect();
    let about = |agent: &str| asked.iter().any(|c| agent == c.agent().as_str());
    let why: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Failed(failure) => Some(failure.error.as_str()),
            Record::Event(e) if e.what == What::Note && about(&e.agent) => Some(e.reason.as_str()),
            _ => None,
        })
        .collect();
    if why.is_empty() {
        format!("{}: done", words.join(", "))
    } else {
        format!("{}: {}", words.join(", "), why.join("; "))
    }
}
