//! `vigil tui`: the interactive dashboard. Owns the terminal (raw mode and alternate
//! screen, set up and restored in [`Screen`] alone, with a panic hook that restores it
//! first) and runs one `tokio::select!` loop: key → [`app::Effect`] → state change →
//! [`view::render`]. As owner it is a face of the same owner loop as `vigil watch`
//! ([`runtime`]: passes, signals, reloads, sd_notify); as viewer it reads the snapshot,
//! heartbeat and journal and sends commands through the inbox. Decides nothing the engine does not; logs go to a file, never the screen.

pub mod app;
pub mod fleet;
pub mod keys;
pub mod view;

use std::io::Stdout;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::crossterm::{cursor, execute};
use tokio::sync::mpsc;

use crate::adapters::clock::now;
use crate::adapters::tmux::{Tmux, TmuxCli};
use crate::config::Config;
use crate::engine::{AgentName, Command, What};
use crate::present::command_words;
use crate::store::{Entry, Follower, Record, Store};
use crate::supervisor::Supervisor;
use crate::supervisor::runtime::{self, Caught, Signals, Update};
use app::{Agent, App, Effect, Mode};

/// How often the screen is brought up to date (countdowns, the live pane, a viewer's
/// snapshot), whatever the poll interval.
const TICK: Duration = Duration::from_secs(1);
/// Lines of the selected agent's pane shown live.
const TAIL_LINES: usize = 40;
/// Journal records read back into the event log at start.
const HISTORY: usize = 200;

/// Whether this process owns the run.
pub enum Face {
    Owner(Box<Supervisor<TmuxCli>>),
    Viewer,
}

/// Everything `vigil tui` needs from the project.
pub struct Setup {
    pub config: Config,
    pub tmux: TmuxCli,
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
    let mut feed = match face {
        Face::Owner(sup) => {
            app.mind = sup.mind().clone();
            let (handle, updates) = runtime::spawn(*sup, signals);
            Feed::Owner { handle, updates }
        }
        Face::Viewer => {
            let mut v = Viewer {
                store: store.clone(),
                journal,
                signals,
            };
            v.refresh(&mut app);
            Feed::Viewer(v)
        }
    };
    tracing::info!(
        pid = std::process::id(),
        owner = matches!(feed, Feed::Owner { .. }),
        "vigil tui started"
    );

    let mut screen = Screen::enter().context("setting up the terminal")?;
    let mut input = Input::spawn();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut looked = Looked::default();
    let outcome = loop {
        looked.refresh(&mut app, &tmux, &store);
        if let Err(e) = screen.draw(&app) {
            break Err(anyhow::Error::from(e).context("drawing the dashboard"));
        }
        tokio::select! {
            ev = input.rx.recv() => match ev {
                Some(Event::Key(key)) => match app.key(key) {
                    Some(Effect::Quit) => break Ok(()),
                    Some(Effect::Send(command)) => feed.send(command, &mut app),
                    Some(Effect::Attach { session }) => attach(&mut screen, &input, &tmux, &session, &mut app),
                    None => {}
                },
                Some(_) => {} // a resize (or anything else) just redraws
                None => break Ok(()), // the terminal has gone
            },
            _ = tick.tick() => {
                app.now = now();
                looked.stale = true;
                if let Feed::Viewer(v) = &mut feed {
                    v.refresh(&mut app);
                }
            }
            update = feed.next() => match update {
                Some(Update::Stopped) | None => break Ok(()),
                Some(update) => absorb_update(update, &mut app, &tmux),
            },
        }
    };
    let finished = feed.release().await;
    drop(screen);
    tracing::info!("vigil tui stopped");
    outcome?;
    finished?;
    println!("vigil tui: stopped; the agents keep running (`vigil status` shows them)");
    Ok(ExitCode::SUCCESS)
}

/// Where the fleet's state comes from.
enum Feed {
    /// This process supervises: the owner loop runs the passes (on a blocking thread,
    /// so keys and redraws never wait for tmux) and reports each one.
    Owner {
        handle: runtime::Handle,
        updates: mpsc::UnboundedReceiver<Update>,
    },
    Viewer(Viewer),
}

/// Takes what the owner loop reports into the state.
fn absorb_update(update: Update, app: &mut App, tmux: &TmuxCli) {
    match update {
        Update::Pass { records, mind, asked } => {
            app.mind = *mind;
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
                socket: tmux.socket().map(str::to_owned),
            };
        }
        Update::Ready | Update::Stopped => {}
    }
}

impl Feed {
    /// The owner loop's next report; a viewer's stop signal reads as `Stopped`.
    async fn next(&mut self) -> Option<Update> {
        match self {
            Feed::Owner { updates, .. } => updates.recv().await,
            Feed::Viewer(v) => loop {
                if v.signals.next().await == Caught::Stop {
                    return Some(Update::Stopped);
                }
            },
        }
    }

    /// Carries out a command from a key, through the same paths as the CLI.
    fn send(&mut self, command: Command, app: &mut App) {
        let words = command_words(&command);
        match self {
            Feed::Owner { handle, .. } => {
                app.note(format!("{words}: doing it now"));
                handle.run(command);
            }
            Feed::Viewer(v) => match v.store.inbox().submit(&command, now()) {
                Ok(()) => {
                    let owner = v
                        .store
                        .live_owner()
                        .map_or("the owner".to_owned(), |o| format!("pid {}", o.pid));
                    app.note(format!(
                        "{words}: asked {owner} through its inbox; it acts within one poll"
                    ));
                }
                Err(e) => app.note(format!("{words}: could not ask the owner: {e}")),
            },
        }
        tracing::info!(command = %words, "key");
    }

    /// Lets a pass in progress finish (a quit never cuts one in half) and the owner
    /// loop journal that it let go.
    async fn release(self) -> Result<()> {
        let Feed::Owner { handle, .. } = self else {
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

/// Another process owns the run: follow its snapshot, heartbeat and journal.
struct Viewer {
    store: Store,
    journal: Follower,
    signals: Signals,
}

impl Viewer {
    fn refresh(&mut self, app: &mut App) {
        match self.store.peek_mind() {
            Ok(Some((mind, _))) => {
                app.mind = mind;
                app.problem = None;
            }
            Ok(None) => {}
            Err(e) => app.problem = Some(e),
        }
        let owner = self.store.live_owner();
        let heartbeat = self
            .store
            .heartbeat()
            .filter(|h| owner.as_ref().is_some_and(|o| o.pid == h.pid && o.epoch == h.epoch))
            .map(|h| h.t);
        app.mode = Mode::Viewer { owner, heartbeat };
        let records = self.read_new();
        app.absorb(&records);
    }

    /// The journal records written since the last look.
    fn read_new(&mut self) -> Vec<Entry> {
        self.journal.read_new()
    }
}

/// Keeps the selected agent's live pane and checkpoint in the state: read again when
/// the selection changes and once per tick.
#[derive(Default)]
struct Looked {
    stale: bool,
}

impl Looked {
    fn refresh(&mut self, app: &mut App, tmux: &TmuxCli, store: &Store) {
        let Some(row) = app.current() else { return };
        let moved = app.tail.as_ref().is_none_or(|(a, _)| a != &row.name);
        if !moved && !self.stale {
            return;
        }
        self.stale = false;
        let lines = match tmux.capture(&row.session, TAIL_LINES) {
            Ok(lines) => lines,
            Err(e) => {
                tracing::debug!("capture {}: {e}", row.session);
                Vec::new()
            }
        };
        app.tail = Some((row.name.clone(), lines));
        app.checkpoint = checkpoint(store, &row.name).map(|c| (row.name.clone(), c));
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

/// The terminal while the dashboard owns it. Set up and restored here and nowhere
/// else; dropping it restores the terminal, and so does a panic (see [`install_panic_hook`]).
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter() -> std::io::Result<Self> {
        install_panic_hook();
        take_over()?;
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()));
        match terminal {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                let _ = give_back();
                Err(e)
            }
        }
    }

    fn draw(&mut self, app: &App) -> std::io::Result<()> {
        self.terminal.draw(|frame| view::render(frame, app)).map(|_| ())
    }

    /// Hands the terminal to another program for a while (tmux attach), then takes it back.
    fn lend<T>(&mut self, f: impl FnOnce() -> T) -> std::io::Result<T> {
        give_back()?;
        let out = f();
        take_over()?;
        self.terminal.clear()?;
        Ok(out)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = give_back();
    }
}

fn take_over() -> std::io::Result<()> {
    enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide)
}

fn give_back() -> std::io::Result<()> {
    let raw = disable_raw_mode();
    execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show)?;
    raw
}

/// Restores the terminal before the panic message is printed, so it is readable.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = give_back();
            previous(info);
        }));
    });
}

/// Terminal events, read on a thread of their own and sent to the loop. Paused while
/// another program (tmux attach) reads the terminal.
struct Input {
    rx: mpsc::UnboundedReceiver<Event>,
    paused: Arc<AtomicBool>,
    /// Held by the reader while it polls; taken by whoever lends the terminal out.
    gate: Arc<Mutex<()>>,
}

impl Input {
    fn spawn() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let paused = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(Mutex::new(()));
        let (p, g) = (paused.clone(), gate.clone());
        std::thread::spawn(move || {
            loop {
                if p.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let Ok(_held) = g.lock() else { return };
                match event::poll(Duration::from_millis(200)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        });
        Self { rx, paused, gate }
    }

    /// Runs `f` while no event is read.
    fn paused<T>(&self, f: impl FnOnce() -> T) -> T {
        self.paused.store(true, Ordering::SeqCst);
        let out = {
            let _held = self.gate.lock();
            f()
        };
        self.paused.store(false, Ordering::SeqCst);
        out
    }
}

/// `a`: shows the agent's tmux session. Inside tmux on the same server, switches this
/// client to it; otherwise suspends the dashboard and runs `tmux attach` until the
/// user detaches.
fn attach(screen: &mut Screen, input: &Input, tmux: &TmuxCli, session: &str, app: &mut App) {
    let target = format!("={session}");
    let argv = tmux.base_argv();
    let (program, socket_args) = argv.split_first().map_or(("tmux", &[][..]), |(p, a)| (p.as_str(), a));
    let inside_tmux = std::env::var_os("TMUX").is_some();
    if inside_tmux {
        let switched = std::process::Command::new(program)
            .args(socket_args)
            .args(["switch-client", "-t", &target])
            .stdin(std::process::Stdio::null())
            .output();
        if switched.is_ok_and(|o| o.status.success()) {
            app.note(format!(
                "switched this tmux client to {session}; `tmux switch-client -l` (prefix L) comes back"
            ));
            return;
        }
    }
    tracing::info!(session, "attach");
    let ran = input.paused(|| {
        screen.lend(|| {
            let mut cmd = std::process::Command::new(program);
            cmd.args(socket_args).args(["attach-session", "-t", &target]);
            if inside_tmux {
                cmd.env_remove("TMUX"); // a nested client, on another server
            }
            cmd.status()
        })
    });
    match ran {
        Ok(Ok(status)) if status.success() => app.note(format!("back from {session}")),
        Ok(Ok(status)) => app.note(format!("tmux attach to {session} ended with {status}")),
        Ok(Err(e)) => app.note(format!("cannot run tmux attach: {e}")),
        Err(e) => app.note(format!("terminal trouble around attach: {e}")),
    }
}
