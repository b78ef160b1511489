//! The terminal while the dashboard owns it: raw mode and the alternate screen, set
//! up and restored in [`Screen`] alone (with a panic hook that restores it first); key
//! events read on a thread of their own ([`Input`]); and lending the terminal to
//! `tmux attach`. Nothing here knows what the dashboard shows.

use std::io::Stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::crossterm::{cursor, execute};
use tokio::sync::mpsc;

use super::app::App;
use super::view;
use crate::adapters::tmux::TmuxClient;

/// The terminal while the dashboard owns it. Set up and restored here and nowhere
/// else; dropping it restores the terminal, and so does a panic (see [`install_panic_hook`]).
pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    pub fn enter() -> std::io::Result<Self> {
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

    pub fn draw(&mut self, app: &App) -> std::io::Result<()> {
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
pub struct Input {
    pub rx: mpsc::UnboundedReceiver<Event>,
    paused: Arc<AtomicBool>,
    /// Held by the reader while it polls; taken by whoever lends the terminal out.
    gate: Arc<Mutex<()>>,
}

impl Input {
    pub fn spawn() -> Self {
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
pub fn attach(screen: &mut Screen, input: &Input, tmux: &TmuxClient, session: &str, app: &mut App) {
    let target = format!("={session}");
    let argv = tmux.base_argv();
    let (program, socket_args) = argv.split_first().map_or(("tmux", &[][..]), |(p, a)| (p.as_str(), a));
    if let Some(client) = tmux.cli().own_client() {
        let switched = std::process::Command::new(program)
            .args(socket_args)
            .args(["switch-client", "-c", &client, "-t", &target])
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
            cmd.env_remove("TMUX"); // a nested client, or one on another server
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
