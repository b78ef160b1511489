//! `vigil watch`: pass after pass until SIGTERM or Ctrl-C, then a clean exit that
//! leaves the agents running. A signal never interrupts a pass half-way: it is
//! noticed between passes, after the Mind is on disk. Under systemd it speaks
//! `sd_notify` (READY=1 after the first pass has adopted the agents, WATCHDOG=1 every
//! loop, STOPPING=1 on the way out). SIGHUP or an edit of the config file reloads it;
//! a config that does not load is refused and the running one kept.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::Instant;

use super::{Project, log};
use crate::adapters::clock::now;
use crate::adapters::systemd::Notifier;
use crate::adapters::tmux::TmuxCli;
use crate::config::Config;
use crate::engine::time::human;
use crate::present;
use crate::store::{Record, Role};
use crate::supervisor::{Supervisor, SupervisorError};

/// Edits come in bursts (truncate, write, rename): wait this long after the first
/// before reading the file.
const EDIT_SETTLE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Stop after this long (the demo); `None` runs until a signal.
    pub until: Option<Duration>,
    /// Print the status table this often (the demo).
    pub status_every: Option<Duration>,
}

pub fn run(project: &Project, options: Options) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(watch(project, options))
}

async fn watch(project: &Project, options: Options) -> Result<ExitCode> {
    // Signals first: from here on, a TERM waits for the pass in progress.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let systemd = Systemd::connect();
    let Some(mut sup) = project.claim(Role::Watch)? else {
        return Err(project.held());
    };
    let config = sup.config();
    println!(
        "vigil watch: supervising {} agent(s) of {} every {} (tmux {}, state in {}); SIGTERM or Ctrl-C stops vigil, not the agents; SIGHUP or an edit of the file reloads it",
        config.agents.len(),
        config.path.display(),
        human(config.poll_interval),
        project
            .tmux
            .socket()
            .map_or("default server".to_owned(), |s| format!("-L {s}")),
        project.state_dir.display(),
    );
    let path = std::path::absolute(&config.path).unwrap_or_else(|_| config.path.clone());
    let mut reloader = Reloader::new(path.clone());
    let (edited, mut edits) = unbounded_channel();
    let _watcher = match watch_file(&path, edited) {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!(
                "vigil watch: cannot watch {} for edits ({e}); send SIGHUP to reload it",
                path.display()
            );
            None
        }
    };
    let started = Instant::now();
    let mut last_status = Instant::now();
    let mut next_pass = Instant::now();
    let mut ready = false;
    loop {
        if Instant::now() >= next_pass {
            next_pass = Instant::now() + sup.config().poll_interval;
            match sup.pass(Vec::new(), true, now()) {
                Ok(records) => log::print_records(&records, false),
                // Journaled already; try again next poll rather than act blind.
                Err(SupervisorError::Observe(e)) => eprintln!("vigil watch: cannot observe tmux ({e}); retrying"),
                Err(e) => return Err(e.into()),
            }
            if !ready {
                // Claimed, reconciled, and the first pass has adopted what runs.
                ready = true;
                let n = sup.config().agents.len();
                systemd.ready(&format!("supervising {n} agent(s), epoch {}", sup.epoch()));
            }
            if let Some(every) = options.status_every
                && last_status.elapsed() >= every
            {
                last_status = Instant::now();
                println!();
                let report = present::status::StatusReport::read(sup.config(), Some(sup.store()), now());
                super::out::print(&present::status::table(&report, Some(sup.store()), now()));
                println!();
            }
        }
        systemd.alive();
        if options.until.is_some_and(|u| started.elapsed() >= u) {
            break;
        }
        let wake = systemd
            .ping_every()
            .map_or(next_pass, |p| next_pass.min(Instant::now() + p));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if reloader.reload(&mut sup, "SIGHUP", true)? {
                    next_pass = next_pass.min(Instant::now() + sup.config().poll_interval);
                }
                systemd.status(&reloader.status);
            }
            Some(()) = edits.recv() => {
                tokio::time::sleep(EDIT_SETTLE).await;
                while edits.try_recv().is_ok() {}
                if reloader.reload(&mut sup, "the file changed", false)? {
                    next_pass = next_pass.min(Instant::now() + sup.config().poll_interval);
                }
                systemd.status(&reloader.status);
            }
        }
    }
    systemd.stopping("stopping; the agents keep running");
    let journal = sup.store().journal();
    let released = Record::Released {
        pid: std::process::id(),
        epoch: sup.epoch(),
    };
    journal.append(now(), released)?;
    println!("vigil watch: stopped; the agents keep running (`vigil status` shows them)");
    Ok(ExitCode::SUCCESS)
}

/// The service manager, when there is one; a failure to reach it is said once per
/// message and never stops supervision.
struct Systemd(Option<Notifier>);

impl Systemd {
    fn connect() -> Self {
        match Notifier::from_env() {
            Ok(n) => Self(n),
            Err(e) => {
                eprintln!("vigil watch: {e}; not talking to systemd");
                Self(None)
            }
        }
    }

    /// Half the watchdog timeout, as sd_watchdog_enabled(3) advises.
    fn ping_every(&self) -> Option<Duration> {
        self.0.as_ref()?.watchdog().map(|w| w / 2)
    }

    fn say(&self, result: Option<Result<(), crate::adapters::systemd::NotifyError>>) {
        if let Some(Err(e)) = result {
            eprintln!("vigil watch: {e}");
        }
    }

    fn ready(&self, status: &str) {
        self.say(self.0.as_ref().map(|n| n.ready(status)));
    }

    fn alive(&self) {
        self.say(self.0.as_ref().map(Notifier::watchdog_ping));
    }

    fn status(&self, status: &str) {
        self.say(self.0.as_ref().map(|n| n.status(status)));
    }

    fn stopping(&self, status: &str) {
        self.say(self.0.as_ref().map(|n| n.stopping(status)));
    }
}

/// Reloads the config file into the running supervisor.
struct Reloader {
    path: PathBuf,
    /// The text last read, so an event that changed nothing changes nothing.
    last: Option<String>,
    /// How the last reload went, for systemd's status line.
    status: String,
}

impl Reloader {
    fn new(path: PathBuf) -> Self {
        let last = std::fs::read_to_string(&path).ok();
        Self {
            path,
            last,
            status: String::new(),
        }
    }

    /// Reads and validates the file; applies it when it loads, else journals why it
    /// was refused and keeps the running config. `always` reloads an unchanged file
    /// too (SIGHUP). Whether a new config was applied.
    fn reload(&mut self, sup: &mut Supervisor<TmuxCli>, why: &str, always: bool) -> Result<bool> {
        let journal = sup.store().journal();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                let message = format!(
                    "config not reloaded ({why}): cannot read {}: {e}; the running config stays",
                    self.path.display()
                );
                eprintln!("vigil watch: {message}");
                journal.append(
                    now(),
                    Record::Warning {
                        message: message.clone(),
                    },
                )?;
                self.status = message;
                return Ok(false);
            }
        };
        if !always && self.last.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        self.last = Some(text.clone());
        match Config::parse(&text, &self.path) {
            Ok(config) => {
                let records = sup.reload(config, now())?;
                log::print_records(&records, false);
                self.status = format!("config reloaded ({why})");
                Ok(true)
            }
            Err(e) => {
                let message = format!("config not reloaded ({why}), the running config stays: {e}");
                eprintln!("vigil watch: {message}");
                journal.append(now(), Record::Warning { message })?;
                self.status = format!("config not reloaded ({why}): see `vigil log`");
                Ok(false)
            }
        }
    }
}

/// Watches the config file's directory (editors replace the file rather than write
/// it), passing on every change that names the file.
fn watch_file(path: &Path, changed: UnboundedSender<()>) -> notify::Result<RecommendedWatcher> {
    let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| p.file_name() == name.as_deref()) {
            let _ = changed.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
