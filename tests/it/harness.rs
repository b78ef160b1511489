//! A world for one test: a private tmux server (`tmux -L vigil-test-<random>`, killed
//! on drop), a project directory with a `vigil.toml` over the fake agents, a state dir,
//! and the real `vigil` binary run against them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
pub use vigil::engine::{Action, Purpose};
pub use vigil::engine::{Activity, Lifecycle};
pub use vigil::present::status::{AgentStatus, StatusReport};
pub use vigil::store::Entry;
pub use vigil::store::record::{CheckStep, Checkpoint, Record};

pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub socket: String,
    watch: Option<Child>,
}

impl World {
    /// A project whose `vigil.toml` is `[vigil]` settings for speed plus `body`.
    /// `{agents}` in `body` is replaced with the path of fixtures/agents.
    pub fn new(body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!("vigil-test-{}", unique());
        let agents = fixtures().join("agents");
        let config = format!(
            "[vigil]\npoll_interval = \"200ms\"\nsocket = \"{socket}\"\n\n{}",
            body.replace("{agents}", agents.to_str().unwrap())
        );
        std::fs::write(dir.path().join("vigil.toml"), config).unwrap();
        Self {
            dir,
            socket,
            watch: None,
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("vigil.toml")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs `vigil ARGS`; `up` gets `--no-watch`, so no detached owner outlives it
    /// unless the test asks with [`World::vigil_watching`].
    pub fn vigil(&self, args: &[&str]) -> Output {
        let mut args = args.to_vec();
        if args.first() == Some(&"up") {
            args.insert(1, "--no-watch");
        }
        self.vigil_watching(&args)
    }

    /// Runs `vigil ARGS` as given: a plain `up` starts a detached owner when none runs
    /// (stopped on drop, should the test not stop it).
    pub fn vigil_watching(&self, args: &[&str]) -> Output {
        Command::new(VIGIL)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("VIGIL_STATE_DIR", self.state())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts `vigil watch` in the background; stopped with SIGTERM on drop.
    pub fn watch(&mut self) {
        self.watch_env(&[]);
    }

    /// [`World::watch`] with more environment (e.g. the clock's test seam).
    pub fn watch_env(&mut self, env: &[(&str, &Path)]) {
        let child = Command::new(VIGIL)
            .arg("--config")
            .arg(self.config())
            .arg("watch")
            .env("VIGIL_STATE_DIR", self.state())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.watch = Some(child);
    }

    /// The pid of the running `vigil watch`.
    pub fn watch_pid(&self) -> u32 {
        self.watch.as_ref().expect("watch is running").id()
    }

    /// Sends SIGTERM to `vigil watch` and returns its exit status code.
    pub fn stop_watch(&mut self) -> Option<i32> {
        let mut child = self.watch.take()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        match poll(Duration::from_secs(10), || child.try_wait().unwrap()) {
            Some(status) => status.code(),
            None => {
                let _ = child.kill();
                panic!("vigil watch did not stop on SIGTERM");
            }
        }
    }

    /// Kills `vigil watch` with SIGKILL, as the OOM killer would: no chance to tidy up.
    pub fn kill_watch(&mut self) {
        let mut child = self.watch.take().expect("watch is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits (up to `secs`) until a journal record satisfies `check`; returns it.
    pub fn wait_journal(&self, secs: u64, what: &str, check: impl Fn(&Entry) -> bool) -> Entry {
        self.eventually(Duration::from_secs(secs), what, || {
            self.journal().into_iter().find(|r| check(r))
        })
    }

    /// `vigil status --json`, typed.
    pub fn status(&self) -> StatusReport {
        serde_json::from_value(self.status_json()).unwrap()
    }

    pub fn agent(&self, name: &str) -> AgentStatus {
        self.status().agent(name).cloned().unwrap()
    }

    /// Waits (up to `secs`) until `check` holds for the agent's status; returns it.
    pub fn wait_for(&self, name: &str, secs: u64, what: &str, check: impl Fn(&AgentStatus) -> bool) -> AgentStatus {
        let what = format!("{name}: {what}");
        self.eventually(Duration::from_secs(secs), &what, || {
            Some(self.agent(name)).filter(|a| check(a))
        })
    }

    /// [`eventually`], with the journal in the failure message.
    pub fn eventually<T>(&self, timeout: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
        match poll(timeout, probe) {
            Some(v) => v,
            None => panic!(
                "timed out after {timeout:?} waiting for {what}; journal:\n{}",
                self.journal_text()
            ),
        }
    }

    /// The journal's records, typed (a line that is no known record is left out).
    pub fn journal(&self) -> Vec<Entry> {
        vigil::store::read_journal(&self.state().join("journal.jsonl")).unwrap()
    }

    fn journal_text(&self) -> String {
        let out = self.vigil(&["log", "-n", "60"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (up to `secs`) until the session's pane shows `text`; returns the screen.
    pub fn wait_screen(&self, session: &str, secs: u64, text: &str) -> String {
        let found = poll(Duration::from_secs(secs), || {
            Some(self.capture(session)).filter(|s| s.contains(text))
        });
        found.unwrap_or_else(|| panic!("`{text}` never showed in {session}:\n{}", self.capture(session)))
    }

    /// `vigil status --json` as the raw document, for tests of the wire format itself.
    pub fn status_json(&self) -> Value {
        let out = self.vigil(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn capture(&self, session: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", &format!("={session}:"), "-S", "-50"])
    }

    /// `list-panes -a -F format`, without the pane of the hidden session vigil's
    /// control-mode clients sit in.
    pub fn panes(&self, format: &str) -> String {
        let lines = self.tmux(&["list-panes", "-a", "-F", &format!("#{{@vigil-control}}\t{format}")]);
        lines
            .lines()
            .filter_map(|l| l.strip_prefix('\t'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Fills the state dir's disk at `filler`, then ends `agent`'s session; returns why
    /// the owner, which must journal the death before it restarts the agent, says it
    /// is degraded. An idle owner on a full disk has nothing new to write: its snapshot
    /// and heartbeat are rewritten in blocks they already hold.
    pub fn starve(&self, filler: &std::path::Path, agent: &str) -> String {
        fill(filler);
        let session = self.agent(agent).session;
        self.tmux(&["kill-session", "-t", &format!("={session}")]);
        self.eventually(Duration::from_secs(10), "status saying the owner is degraded", || {
            self.status().owner.and_then(|o| o.degraded)
        })
    }

    pub fn sessions(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .tmux(&["list-sessions", "-F", "#{@vigil-control}\t#{session_name}"])
            .lines()
            // The hidden session of vigil's control-mode clients is nobody's.
            .filter_map(|l| l.strip_prefix('\t'))
            .map(str::to_owned)
            .collect();
        s.sort();
        s
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // A detached owner `vigil up` started: TERM, as for our own watch.
        let detached = vigil::store::Store::existing(&self.state())
            .and_then(|s| s.live_owner())
            .filter(|o| o.launched_by.is_some());
        if let Some(owner) = detached {
            let _ = Command::new("kill").args(["-TERM", &owner.pid.to_string()]).status();
            poll(Duration::from_secs(5), || gone(owner.pid).then_some(()));
        }
        if let Some(mut child) = self.watch.take() {
            // TERM lets a pass finish, so no tmux client it started outlives it.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            poll(Duration::from_secs(5), || child.try_wait().ok().flatten());
            let _ = child.kill();
            let _ = child.wait();
        }
        // Twice: a tmux client still starting when the first arrives can bring a server up.
        for _ in 0..2 {
            let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).output();
            std::thread::sleep(Duration::from_millis(20));
        }
        // A server that outlives `kill-server` (it waits for its clients to go, and a
        // control client whose vigil was killed as it started can hang on), and those
        // clients: ended by their `-L` name, before the socket goes and nothing can reach
        // them. The crash suite leaves such a client behind.
        for pid in on_socket(&self.socket) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_file(socket_path(&self.socket));
    }
}

/// The processes started as `tmux -L <socket> …`: the server (which keeps its first
/// client's command line) and its clients.
fn on_socket(socket: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"tmux"))
                && args.windows(2).any(|w| w[0] == b"-L" && w[1] == socket.as_bytes())
        })
        .collect()
}

/// Where tmux puts the socket of `tmux -L name`: $TMUX_TMPDIR (or /tmp)/tmux-<uid>/name.
fn socket_path(name: &str) -> PathBuf {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("0")
        .to_owned();
    let base = std::env::var_os("TMUX_TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    base.join(format!("tmux-{uid}")).join(name)
}

/// Polls `probe` (every 20 ms) until it gives a value or `timeout` has passed; `None`
/// then. The one way tests wait for something to happen.
pub fn poll<T>(timeout: Duration, probe: impl FnMut() -> Option<T>) -> Option<T> {
    poll_every(timeout, Duration::from_millis(20), probe)
}

/// [`poll`], looking every `every`.
pub fn poll_every<T>(timeout: Duration, every: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Waits until `probe` gives a value; panics naming `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    poll(timeout, probe).unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Lets `span` pass in which the test expects nothing to happen (no restart, no nudge):
/// the one kind of fixed wait a test may have, named for what it gives time to.
pub fn wait_out(span: Duration, _nothing_happens: &str) {
    std::thread::sleep(span);
}

/// Whether the process `pid` has exited (gone, or a zombie not yet reaped).
pub fn gone(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    state.is_none_or(|s| s == 'Z' || s == 'X')
}

/// A `[[agent]]` table for a fake agent script.
pub fn agent(name: &str, script: &str, extra: &str) -> String {
    format!("[[agent]]\nname = \"{name}\"\ncommand = [\"sh\", \"{{agents}}/{script}\"]\n{extra}\n")
}

/// The action of an intent record.
pub fn intent(e: &Entry) -> Option<&Action> {
    match &e.record {
        Record::Intent { action, .. } => Some(action),
        _ => None,
    }
}

/// Whether the record is an intent to type text for `purpose`.
pub fn types_for(e: &Entry, purpose: Purpose) -> bool {
    matches!(intent(e), Some(Action::Send { purpose: p, .. }) if *p == purpose)
}

/// The event of an event record that says the agent's lifecycle became `to`.
pub fn lifecycle_event(e: &Entry, to: vigil::engine::Lifecycle) -> Option<&vigil::engine::Event> {
    match &e.record {
        Record::Event(ev) if ev.what == vigil::engine::What::Lifecycle(to) => Some(ev),
        _ => None,
    }
}

/// A small tmpfs mounted on a path for the test's life; `None` where mounting is not
/// allowed (not root, no CAP_SYS_ADMIN), with the reason printed.
pub struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    pub fn mount(at: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        if !out.status.success() {
            println!(
                "skipped: cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Self(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the filesystem is full.
pub fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// The tmux client this run of the tests is about (`VIGIL_TMUX_CLIENT`, else control),
/// on the world's server.
pub fn client(w: &World) -> vigil::adapters::tmux::TmuxClient {
    use vigil::adapters::tmux::{ClientKind, TmuxClient};
    TmuxClient::new(Some(w.socket.clone()), ClientKind::from_env_or(ClientKind::Control))
}

/// The journal's host-failure records, oldest first.
pub fn host_events(w: &World) -> Vec<vigil::engine::HostEvent> {
    w.journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Host(h) => Some(h),
            _ => None,
        })
        .collect()
}

/// Waits until `name`'s incarnation `incarnation` is working with a pane process.
pub fn working(w: &World, name: &str, incarnation: u32) -> AgentStatus {
    w.wait_for(name, 30, &format!("incarnation {incarnation} working"), |a| {
        a.incarnation == incarnation && a.lifecycle == Some(Lifecycle::Working) && a.pane_pid.is_some()
    })
}

/// A child process killed (and waited for) when the test ends, however it ends: a
/// failing assertion leaves no vigil running behind it.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}
