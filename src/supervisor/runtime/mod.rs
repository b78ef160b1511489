//! The owner's loop, one for every face that owns a run (`vigil watch` prints it,
//! `vigil tui` draws it): passes and reloads on a blocking thread, signals (TERM/INT
//! stop after the pass in progress, HUP reloads), reload on an edit of the config file,
//! sd_notify, commands from the face, and the `released` record on the way out. It
//! talks to its face only through [`Update`]s: it never prints, draws or decides.

mod deaths;
mod reloader;
mod service;

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

use super::{Records, Supervisor, SupervisorError};
use crate::adapters::clock::now;
use crate::adapters::tmux::Tmux;
use crate::config::Config;
use crate::engine::{Command, Mind};
use crate::store::{Record, StoreError};
use reloader::{Cause, Reload, Reloader};
use service::Service;

/// Edits come in bursts (truncate, write, rename): wait this long after the first
/// before reading the file.
const EDIT_SETTLE: Duration = Duration::from_millis(200);

/// What the owner loop tells its face, in the order it happened.
#[derive(Debug)]
pub enum Update {
    /// Claimed, reconciled, and the first pass has adopted what runs (READY=1 is out).
    Ready,
    /// A pass ended: what it journaled, the Mind after it (for a face that shows it),
    /// and the face's commands it carried.
    Pass {
        records: Records,
        mind: Option<Box<Mind>>,
        asked: Vec<Command>,
    },
    /// tmux could not be observed; nothing was decided, and the commands the pass
    /// carried wait for the next one (every poll).
    Problem(String),
    /// Something the user should hear that stops nothing: a config refused, systemd
    /// unreachable, the file not watched.
    Warning(String),
    /// A new config runs; `records` is what reloading journaled.
    Reloaded { records: Records, config: Box<Config> },
    /// The loop has ended and the release is journaled; nothing follows.
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the supervision thread did not finish: {0}")]
    Lost(#[from] JoinError),
}

/// The signals an owner answers. Installed before the run is claimed, so that from
/// then on a TERM waits for the pass in progress instead of killing the process.
pub struct Signals {
    term: Option<Signal>,
    int: Option<Signal>,
    hup: Option<Signal>,
}

impl Signals {
    /// Must be called inside a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: Some(signal(SignalKind::terminate())?),
            int: Some(signal(SignalKind::interrupt())?),
            hup: Some(signal(SignalKind::hangup())?),
        })
    }

    /// None at all: for tests, which must not take the test process's signals.
    #[cfg(test)]
    fn none() -> Self {
        Self {
            term: None,
            int: None,
            hup: None,
        }
    }

    /// The next signal caught.
    pub async fn next(&mut self) -> Caught {
        tokio::select! {
            _ = next(&mut self.term) => Caught::Stop,
            _ = next(&mut self.int) => Caught::Stop,
            _ = next(&mut self.hup) => Caught::Hangup,
        }
    }
}

/// What a signal asks of an owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caught {
    /// SIGTERM or SIGINT: stop after the pass in progress.
    Stop,
    /// SIGHUP: read the config again.
    Hangup,
}

async fn next(signal: &mut Option<Signal>) {
    if let Some(s) = signal
        && s.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

enum Order {
    Run(Command),
    Stop,
}

/// The face's end of a running owner loop.
pub struct Handle {
    orders: UnboundedSender<Order>,
    task: JoinHandle<Result<(), RuntimeError>>,
}

impl Handle {
    /// Carries out `command` in a pass that starts at once (or right after the one running).
    pub fn run(&self, command: Command) {
        let _ = self.orders.send(Order::Run(command));
    }

    /// Stops after the pass in progress; [`Update::Stopped`] follows.
    pub fn stop(&self) {
        let _ = self.orders.send(Order::Stop);
    }

    /// Waits for the loop to end (a stop, a signal, or an error it cannot go on after).
    pub async fn finished(self) -> Result<(), RuntimeError> {
        self.task.await?
    }
}

/// Who reads the owner loop's updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// `vigil watch`: what each pass journaled, and problems.
    Headless,
    /// `vigil tui`: the Mind after each pass as well (a copy of it, made per pass only
    /// for a face that shows it).
    Dashboard,
}

/// Starts the owner loop for a claimed supervisor, inside the current tokio runtime.
pub fn spawn<T: Tmux + Send + 'static>(
    sup: Supervisor<T>,
    signals: Signals,
    face: Face,
) -> (Handle, UnboundedReceiver<Update>) {
    let (updates, updates_rx) = unbounded_channel();
    let (orders, orders_rx) = unbounded_channel();
    let path = std::path::absolute(&sup.config().path).unwrap_or_else(|_| sup.config().path.clone());
    let (died, deaths) = unbounded_channel();
    let owner = Owner {
        service: Service::connect(updates.clone()),
        deaths: deaths::Deaths::start(died),
        held: Some(Held {
            sup,
            reloader: Reloader::new(path),
        }),
        job: None,
        job_started: Instant::now(),
        pending: Vec::new(),
        next_pass: Instant::now(),
        reload_due: None,
        ready: false,
        updates,
        face,
    };
    let task = tokio::spawn(owner.run(signals, orders_rx, deaths));
    (Handle { orders, task }, updates_rx)
}

/// What a job on the blocking thread takes and gives back.
struct Held<T: Tmux> {
    sup: Supervisor<T>,
    reloader: Reloader,
}

enum Done {
    Pass {
        asked: Vec<Command>,
        result: Result<(Records, Option<Box<Mind>>), SupervisorError>,
    },
    Reload(Result<Reload, StoreError>),
}

type Job<T> = JoinHandle<(Held<T>, Done)>;

struct Owner<T: Tmux> {
    /// `None` while a job has it.
    held: Option<Held<T>>,
    job: Option<Job<T>>,
    job_started: Instant,
    /// Commands from the face, for the next pass.
    pending: Vec<Command>,
    next_pass: Instant,
    reload_due: Option<Cause>,
    ready: bool,
    service: Service,
    /// Wakes the loop when an agent's pane process exits; `None`: the poll alone.
    deaths: Option<deaths::Deaths>,
    updates: UnboundedSender<Update>,
    face: Face,
}

impl<T: Tmux + Send + 'static> Owner<T> {
    async fn run(
        mut self,
        mut signals: Signals,
        mut orders: UnboundedReceiver<Order>,
        mut deaths: UnboundedReceiver<()>,
    ) -> Result<(), RuntimeError> {
        let (edited, mut edits) = unbounded_channel();
        let _watcher = self.watch_file(edited);
        let mut stopping = false;
        let mut orders_open = true;
        let outcome = loop {
            // A stop does not wait here for the job in progress: `release` gives it
            // `STOP_WAIT` to finish, so a wedged pass cannot outlast the grace.
            if stopping {
                break Ok(());
            }
            if self.job.is_none() {
                self.start_job();
            }
            if self.healthy() {
                self.service.alive();
            }
            tokio::select! {
                _ = tokio::time::sleep_until(self.wake()) => {}
                done = job_done(&mut self.job) => {
                    if let Err(e) = self.finish(done) {
                        break Err(e);
                    }
                }
                caught = signals.next() => match caught {
                    Caught::Stop => stopping = true,
                    Caught::Hangup => self.reload_due = Some(Cause::Hangup),
                },
                // A pane process exited: the next pass now (after the one running).
                Some(()) = deaths.recv() => {
                    while deaths.try_recv().is_ok() {}
                    self.next_pass = Instant::now();
                }
                Some(()) = edits.recv() => {
                    tokio::time::sleep(EDIT_SETTLE).await;
                    while edits.try_recv().is_ok() {}
                    self.reload_due.get_or_insert(Cause::Edit);
                }
                order = orders.recv(), if orders_open => match order {
                    Some(Order::Run(command)) => self.pending.push(command),
                    Some(Order::Stop) => stopping = true,
                    None => {
                        orders_open = false;
                        stopping = true;
                    }
                },
            }
        };
        let released = self.release().await;
        let _ = self.updates.send(Update::Stopped);
        outcome.and(released)
    }

    fn watch_file(&self, edited: UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
        let path = self.held.as_ref()?.reloader.path().to_owned();
        match reloader::watch_file(&path, edited) {
            Ok(w) => Some(w),
            Err(e) => {
                let _ = self.updates.send(Update::Warning(format!(
                    "cannot watch {} for edits ({e}); send SIGHUP to reload it",
                    path.display()
                )));
                None
            }
        }
    }

    /// A reload when one is due, else a pass when one is due or the face asked for one.
    fn start_job(&mut self) {
        let due = !self.pending.is_empty() || Instant::now() >= self.next_pass;
        if self.reload_due.is_none() && !due {
            return;
        }
        let Some(mut held) = self.held.take() else { return };
        self.job_started = Instant::now();
        if let Some(cause) = self.reload_due.take() {
            self.job = Some(tokio::task::spawn_blocking(move || {
                let result = held.reloader.reload(&mut held.sup, cause);
                (held, Done::Reload(result))
            }));
            return;
        }
        let asked = std::mem::take(&mut self.pending);
        self.next_pass = Instant::now() + held.sup.config().poll_interval;
        let shown = self.face == Face::Dashboard;
        self.job = Some(tokio::task::spawn_blocking(move || {
            let result = held
                .sup
                .pass(asked.clone(), true, crate::adapters::clock::read())
                .map(|records| (records, shown.then(|| Box::new(held.sup.mind().clone()))));
            (held, Done::Pass { asked, result })
        }));
    }

    /// Whether to tell systemd the loop is alive: from READY on, and not while a job
    /// has run for longer than half the watchdog timeout, so a wedged tmux is caught as
    /// it was when passes ran on the loop itself.
    fn healthy(&self) -> bool {
        self.ready
            && match (self.job.as_ref(), self.service.ping_every()) {
                (Some(_), Some(every)) => self.job_started.elapsed() < every,
                _ => true,
            }
    }

    /// When the loop must go round again by itself: the next pass (unless a job runs),
    /// or the next watchdog ping.
    fn wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let pass = if self.job.is_some() { far } else { self.next_pass };
        self.service.ping_every().map_or(pass, |p| pass.min(Instant::now() + p))
    }

    fn finish(&mut self, done: Result<(Held<T>, Done), JoinError>) -> Result<(), RuntimeError> {
        let (held, done) = done?;
        let poll = held.sup.config().poll_interval;
        let epoch = held.sup.epoch();
        let agents = held.sup.config().agents.len();
        let applied = match &done {
            Done::Reload(Ok(Reload::Applied(_))) => Some(Box::new(held.sup.config().clone())),
            _ => None,
        };
        let status = held.reloader.status.clone();
        if let Some(deaths) = &mut self.deaths {
            let mind = held.sup.mind();
            let pids = mind.agents.values().filter(|r| r.is_live()).filter_map(|r| r.pane_pid);
            deaths.watch(pids.collect());
        }
        self.held = Some(held);
        match done {
            Done::Pass { asked, result } => {
                match result {
                    Ok((records, mind)) => self.say(Update::Pass { records, mind, asked }),
                    // Journaled already; try again next poll rather than act blind.
                    Err(SupervisorError::Observe(e)) => {
                        self.pending.splice(0..0, asked);
                        self.say(Update::Problem(format!("cannot observe tmux ({e}); retrying")));
                    }
                    // Degraded: stay up, observing, and try again each poll (see
                    // `Supervisor::pass`); the fleet is never left unsupervised for it.
                    Err(SupervisorError::Store(e)) => {
                        self.pending.splice(0..0, asked);
                        self.say(Update::Problem(format!(
                            "DEGRADED: cannot write the state dir ({e}); acting on nothing until it can, retrying every {}",
                            crate::engine::time::human(poll)
                        )));
                    }
                }
                if !self.ready {
                    self.ready = true;
                    self.service
                        .ready(&format!("supervising {agents} agent(s), epoch {epoch}"));
                    self.say(Update::Ready);
                }
            }
            Done::Reload(result) => {
                match result? {
                    Reload::Applied(records) => {
                        self.next_pass = self.next_pass.min(Instant::now() + poll);
                        if let Some(config) = applied {
                            self.say(Update::Reloaded { records, config });
                        }
                    }
                    Reload::Refused(message) => self.say(Update::Warning(message)),
                    Reload::Unchanged => {}
                }
                self.service.status(&status);
            }
        }
        Ok(())
    }

    fn say(&self, update: Update) {
        let _ = self.updates.send(update);
    }

    /// Lets the job in progress finish (a stop never cuts a pass in half), then says in
    /// the journal that this owner let go.
    async fn release(&mut self) -> Result<(), RuntimeError> {
        if let Some(job) = self.job.take() {
            match tokio::time::timeout(STOP_WAIT, job).await {
                Ok(Ok((held, _))) => self.held = Some(held),
                Ok(Err(_)) => {}
                Err(_) => self.say(Update::Problem(format!(
                    "the pass in progress did not finish within {} of the stop (tmux not answering?); leaving without it, and the next owner settles what it left open",
                    crate::engine::time::human(STOP_WAIT)
                ))),
            }
        }
        self.service.stopping("stopping; the agents keep running");
        let ended = crate::adapters::helper::end_all();
        if ended > 0 {
            self.say(Update::Problem(format!(
                "ended {ended} helper command(s) still running (notify or triage); an undelivered notice stays in the outbox for the next owner"
            )));
        }
        let Some(held) = self.held.take() else { return Ok(()) };
        let released = tokio::task::spawn_blocking(move || {
            let released = Record::Released {
                pid: std::process::id(),
                epoch: held.sup.epoch(),
            };
            held.sup.store().journal().append(now(), released).map(|_| ())
        });
        // Not being able to say so (a full disk) does not make the stop fail: the lock
        // goes with this process all the same.
        if let Err(e) = released.await? {
            self.say(Update::Problem(format!("could not journal the release: {e}")));
        }
        Ok(())
    }
}

/// How long a stop waits for the pass in progress before leaving without it: well
/// within the grace `vigil check` and systemd give a TERMed owner, whatever state the
/// pass is in (a wedged tmux call can take `CALL_TIMEOUT` per call).
pub const STOP_WAIT: Duration = Duration::from_secs(5);

/// Resolves when the running job ends; never, when there is none.
async fn job_done<R>(job: &mut Option<JoinHandle<R>>) -> Result<R, JoinError> {
    let Some(handle) = job.as_mut() else {
        return std::future::pending().await;
    };
    let result = handle.await;
    *job = None;
    result
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::adapters::tmux::FakeTmux;
    use crate::engine::AgentName;
    use crate::store::{Role, Store, read_journal};

    const AGENT_A: &str = "[[agent]]\nname = \"a\"\ncommand = [\"agent\"]\n";
    const AGENT_B: &str = "[[agent]]\nname = \"b\"\ncommand = [\"agent\"]\n";

    /// A minute between passes: every pass these tests see was asked for.
    fn write_config(path: &Path, agents: &str) {
        std::fs::write(path, format!("[vigil]\npoll_interval = \"60s\"\n{agents}")).unwrap();
    }

    async fn next_update(updates: &mut UnboundedReceiver<Update>) -> Update {
        tokio::time::timeout(Duration::from_secs(10), updates.recv())
            .await
            .expect("an update within 10 s")
            .expect("the loop is still running")
    }

    #[tokio::test]
    async fn the_loop_passes_at_once_on_a_command_reloads_an_edit_and_releases_on_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        write_config(&path, AGENT_A);
        let config = Config::load(&path).unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let (sup, _) = Supervisor::claim(config, FakeTmux::default(), store.clone(), Role::Watch, now()).unwrap();
        let (handle, mut updates) = spawn(sup, Signals::none(), Face::Dashboard);

        let Update::Pass { mind, asked, .. } = next_update(&mut updates).await else {
            panic!("the first pass comes first");
        };
        assert!(asked.is_empty());
        assert_eq!(mind.unwrap().agents.len(), 1, "the first pass started the fleet");
        assert!(matches!(next_update(&mut updates).await, Update::Ready));

        let a = AgentName::new("a").unwrap();
        handle.run(Command::Nudge(a.clone()));
        let Update::Pass { asked, .. } = next_update(&mut updates).await else {
            panic!("a command is carried by a pass of its own, long before the poll");
        };
        assert_eq!(asked, [Command::Nudge(a)]);

        write_config(&path, &format!("{AGENT_A}{AGENT_B}"));
        let Update::Reloaded { config, .. } = next_update(&mut updates).await else {
            panic!("an edit of the file reloads it");
        };
        assert_eq!(config.agents.len(), 2);

        handle.stop();
        assert!(matches!(next_update(&mut updates).await, Update::Stopped));
        handle.finished().await.unwrap();
        let journal = read_journal(store.journal().path()).unwrap();
        assert!(matches!(journal.last().unwrap().record, Record::Released { .. }));
        let reloads = journal.iter().filter(|e| matches!(e.record, Record::Reloaded(_)));
        assert_eq!(reloads.count(), 1);
    }
}
