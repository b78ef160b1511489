//! A pane's process tree, from Linux's /proc: its descendants (each thread's
//! `task/<tid>/children`, exact and cheap, no walk of the whole process table), each
//! with its start time (so a reused pid is never taken for the one seen), its names
//! and the CPU time it used. [`Procfs`] keeps the files it read open from pass to pass,
//! each read again with one `pread`. Reads only; signalling what was recorded is
//! [`crate::adapters::process`]'s.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;

/// Most processes read under one pane: a fork bomb is not walked to its end.
pub const MAX_TREE: usize = 512;

/// One process of a pane's tree as /proc showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    /// Its parent's pid (field 4 of stat): whose `cutime` its time joins once waited for.
    pub ppid: u32,
    /// Clock ticks since boot (field 22 of stat): with the pid, it names the process.
    pub start: u64,
    /// The kernel's name for it (`comm`, at most 15 bytes).
    pub name: String,
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
    /// The same, of its children that exited and were waited for (`cutime + cstime`):
    /// what a short-lived compiler used between two looks still shows here.
    pub reaped_ticks: u64,
    /// How many threads it has (field 20 of stat): one, and its children are all in
    /// `task/<pid>/children`, with no listing of `task/` to read.
    pub threads: u32,
}

/// Reads one process from `/proc/<pid>/stat`; `None` when it is gone or a zombie.
pub fn read(pid: u32) -> Option<Proc> {
    Procfs::uncached().read(pid)
}

/// The children of `p`, from every one of its threads: a single-threaded process's
/// from its one task, without listing `task/` (most of a pane's tree: shells, `sleep`);
/// one whose thread count is unknown or above one, from each task listed.
pub fn children(p: &Proc) -> Vec<u32> {
    Procfs::uncached().children(p)
}

/// `root` and its descendants (breadth first, at most [`MAX_TREE`]); empty when `root`
/// is gone.
pub fn tree(root: u32) -> Vec<Proc> {
    let mut procfs = Procfs::uncached();
    procfs.read(root).map(|r| procfs.tree_under(r)).unwrap_or_default()
}

/// `root`, already read, and its descendants (breadth first, at most [`MAX_TREE`]).
pub fn tree_under(root: Proc) -> Vec<Proc> {
    Procfs::uncached().tree_under(root)
}

/// Room for a whole `stat` line (52 numbers and a 15-byte name: under 1 KiB) or a
/// short `children` list in one read.
const SMALL: usize = 4096;

/// Which file of a process is kept open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Stat,
    /// `task/<pid>/children`, of a single-threaded process.
    Children,
}

/// The /proc files of processes read before, kept open to be read again: a read at
/// offset 0 gives the kernel's figures of now with no path walked and no file opened,
/// and a process gone answers ESRCH, never with a newcomer's figures (a pid taken
/// again is opened afresh). At most a quarter of the open-file limit is kept; what a
/// pass did not read is closed by [`Procfs::sweep`].
pub struct Procfs {
    open: HashMap<(u32, Kind), Kept>,
    /// Pidfds of processes asked to be watched ([`Procfs::watch`]), by pid.
    pidfds: HashMap<u32, Watched>,
    /// How many files (pidfds included) may be kept open: 0 opens and closes each one.
    room: usize,
    /// Which pass reads belong to (moved on by `sweep`).
    pass: u64,
}

struct Kept {
    file: fs::File,
    /// The last pass that read it.
    pass: u64,
}

/// A pidfd: the very process it was opened on, readable once that process has exited.
struct Watched {
    start: u64,
    fd: std::os::fd::OwnedFd,
    /// The last pass that asked it.
    pass: u64,
}

impl Default for Procfs {
    /// Keeps up to [`crate::adapters::process::open_file_room`] files open.
    fn default() -> Self {
        Self::with_room(crate::adapters::process::open_file_room())
    }
}

impl Procfs {
    /// Opens and closes each file read.
    pub fn uncached() -> Self {
        Self::with_room(0)
    }

    fn with_room(room: usize) -> Self {
        Self {
            open: HashMap::new(),
            pidfds: HashMap::new(),
            room,
            pass: 0,
        }
    }

    /// Reads one process from `/proc/<pid>/stat`; `None` when it is gone or a zombie.
    pub fn read(&mut self, pid: u32) -> Option<Proc> {
        let mut buf = [0u8; SMALL];
        let stat = self.text(pid, Kind::Stat, &mut buf)?;
        parse_stat(pid, &stat)
    }

    /// The children of `p`, from every one of its threads (see [`children`]).
    pub fn children(&mut self, p: &Proc) -> Vec<u32> {
        let mut buf = [0u8; SMALL];
        let pids = |text: &str| -> Vec<u32> { text.split_whitespace().filter_map(|p| p.parse().ok()).collect() };
        if p.threads == 1 {
            return self
                .text(p.pid, Kind::Children, &mut buf)
                .map_or_else(Vec::new, |t| pids(&t));
        }
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", p.pid)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for task in tasks.filter_map(Result::ok) {
            if let Some(text) = opened(&task.path().join("children"), &mut buf).map(|(_, t)| t) {
                out.extend(pids(&text));
            }
        }
        out
    }

    /// `root`, already read, and its descendants (breadth first, at most [`MAX_TREE`]).
    pub fn tree_under(&mut self, root: Proc) -> Vec<Proc> {
        let mut out = vec![root];
        let mut next = 0;
        while next < out.len() && out.len() < MAX_TREE {
            let kids = self.children(&out[next]);
            next += 1;
            for child in kids {
                if out.len() >= MAX_TREE {
                    break;
                }
                if let Some(p) = self.read(child) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Ends a pass: the files it did not read are closed (their processes are gone or
    /// no longer looked at), but for those of the pids `held` (looked at again soon).
    pub fn sweep(&mut self, held: impl Fn(u32) -> bool) {
        let pass = self.pass;
        self.open.retain(|&(pid, _), kept| kept.pass == pass || held(pid));
        self.pidfds.retain(|&pid, w| w.pass == pass || held(pid));
        self.pass += 1;
    }

    /// How many files are kept open now.
    pub fn kept(&self) -> usize {
        self.open.len() + self.pidfds.len()
    }

    /// Keeps a pidfd of `p` (just read), while there is room, so [`Procfs::runs`] can
    /// tell whether it still runs without reading /proc. The pid is read again once
    /// the pidfd is open: a pid taken by another process in between is not watched.
    pub fn watch(&mut self, p: &Proc) {
        if self.pidfds.get(&p.pid).is_some_and(|w| w.start == p.start) || self.kept() >= self.room {
            return;
        }
        let Some(raw) = i32::try_from(p.pid).ok().and_then(rustix::process::Pid::from_raw) else {
            return;
        };
        let Ok(fd) = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) else {
            return;
        };
        if self.read(p.pid).is_some_and(|now| now.start == p.start) {
            let pass = self.pass;
            self.pidfds.insert(
                p.pid,
                Watched {
                    start: p.start,
                    fd,
                    pass,
                },
            );
        }
    }

    /// Whether the process `pid` started at `start` still runs, by its pidfd (one
    /// `poll`, no /proc file formatted); `None` when it is not watched. A zombie has
    /// exited: it does not run.
    pub fn runs(&mut self, pid: u32, start: u64) -> Option<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let pass = self.pass;
        let watched = self.pidfds.get_mut(&pid).filter(|w| w.start == start)?;
        let mut fds = [PollFd::new(&watched.fd, PollFlags::IN)];
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        let ready = poll(&mut fds, Some(&zero)).ok()?;
        watched.pass = pass;
        Some(ready == 0)
    }

    /// The text of `kind` for `pid`: from the file kept open, or opened now (and kept
    /// while there is room).
    fn text<'b>(&mut self, pid: u32, kind: Kind, buf: &'b mut [u8; SMALL]) -> Option<Cow<'b, str>> {
        let key = (pid, kind);
        if let Some(kept) = self.open.get_mut(&key) {
            match kept.file.read_at(buf, 0) {
                Ok(n) if n < buf.len() => {
                    kept.pass = self.pass;
                    return Some(String::from_utf8_lossy(&buf[..n]));
                }
                // Gone (ESRCH), or too long for one read: opened again by its path.
                _ => drop(self.open.remove(&key)),
            }
        }
        let path = match kind {
            Kind::Stat => format!("/proc/{pid}/stat"),
            Kind::Children => format!("/proc/{pid}/task/{pid}/children"),
        };
        let (file, text) = opened(path.as_ref(), buf)?;
        if let Some(file) = file.filter(|_| self.open.len() < self.room) {
            self.open.insert(key, Kept { file, pass: self.pass });
        }
        Some(text)
    }
}

/// A small /proc file opened and read with one `read` into `buf` (`read_to_string`
/// probes and reads to the end: three calls, each one the kernel's work again), with
/// the file to read again; a file that fills `buf` is read to its end, and not kept.
fn opened<'b>(path: &std::path::Path, buf: &'b mut [u8; SMALL]) -> Option<(Option<fs::File>, Cow<'b, str>)> {
    let mut file = fs::File::open(path).ok()?;
    let n = file.read(buf).ok()?;
    if n < buf.len() {
        return Some((Some(file), String::from_utf8_lossy(&buf[..n])));
    }
    let mut all = buf.to_vec();
    file.read_to_end(&mut all).ok()?;
    Some((None, Cow::Owned(String::from_utf8_lossy(&all).into_owned())))
}

/// One process from the text of its `stat`; `None` for a zombie or garbage.
fn parse_stat(pid: u32, stat: &str) -> Option<Proc> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3, ppid 4, utime 14, stime 15, cutime 16,
    // cstime 17, starttime 22 (1-based).
    if matches!(fields.first(), Some(&"Z" | &"X") | None) {
        return None;
    }
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Proc {
        pid,
        ppid: u32::try_from(field(4)?).ok()?,
        start: field(22)?,
        name,
        cpu_ticks: field(14)?.saturating_add(field(15)?),
        reaped_ticks: field(16).unwrap_or(0).saturating_add(field(17).unwrap_or(0)),
        threads: field(20).and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
    })
}

/// The names a process goes by: its `comm`, and the file names of the first two words
/// of its command line that are neither options nor text with spaces (an interpreter's
/// script: `node /usr/bin/claude`, `python3 -m aider`; not `sh -c 'claude; sleep 9'`,
/// whose script outlives the agent it names).
pub fn names(p: &Proc) -> Vec<String> {
    let mut out = vec![p.name.clone()];
    if let Ok(cmdline) = fs::read(format!("/proc/{}/cmdline", p.pid)) {
        let words = cmdline
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty() && !w.starts_with(b"-") && !w.iter().any(u8::is_ascii_whitespace));
        for word in words.take(2) {
            let word = String::from_utf8_lossy(word);
            let base = word.rsplit('/').next().unwrap_or(&word).to_owned();
            if !out.contains(&base) {
                out.push(base);
            }
        }
    }
    out
}

/// How long processes of a killed session get to die of its SIGHUP before vigil
/// signals what is left.
const HANGUP_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// How a recorded process was ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signalled {
    /// SIGTERM ended it within the grace.
    Term,
    /// It outlived SIGTERM and the grace: SIGKILL.
    Kill,
}

/// Whether the process recorded as `p` still runs: the same pid, started at the same
/// tick (a reused pid is another process).
pub fn still_running(p: &Proc) -> bool {
    read(p.pid).is_some_and(|now| now.start == p.start)
}

/// Ends every recorded process still running: SIGTERM, then SIGKILL to those that
/// outlive `grace`. Only processes read before (pid and start time both matching) are
/// ever signalled. Returns each one signalled and how it was ended.
pub fn reap(recorded: &[Proc], grace: std::time::Duration) -> Vec<(Proc, Signalled)> {
    // The kill's own SIGHUP first: what it ends was not vigil's to end.
    let settle = std::time::Instant::now() + HANGUP_SETTLE;
    while std::time::Instant::now() < settle && recorded.iter().any(still_running) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let alive: Vec<&Proc> = recorded.iter().filter(|p| still_running(p)).collect();
    if alive.is_empty() {
        return Vec::new();
    }
    for p in &alive {
        signal(p.pid, rustix::process::Signal::TERM);
    }
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline && alive.iter().any(|p| still_running(p)) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    alive
        .into_iter()
        .map(|p| {
            // Checked again just before: a pid freed since is never signalled.
            if still_running(p) {
                signal(p.pid, rustix::process::Signal::KILL);
                (p.clone(), Signalled::Kill)
            } else {
                (p.clone(), Signalled::Term)
            }
        })
        .collect()
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`; 100 on every Linux that matters).
pub const TICKS_PER_SEC: u64 = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_and_its_child_are_in_the_tree_with_their_names() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let found = (0..100).find_map(|_| {
            let t = tree(pid);
            std::thread::sleep(std::time::Duration::from_millis(20));
            // Forked is not yet exec'd: the child reads `sh` until it runs sleep.
            (t.len() == 2 && t[1].name == "sleep").then_some(t)
        });
        if let Some(sleep) = found.as_ref().and_then(|t| t.get(1)) {
            crate::adapters::process::kill(sleep.pid);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let t = found.expect("sh and its sleep");
        assert_eq!(t[0].pid, pid);
        assert_eq!(t[1].name, "sleep");
        assert!(t[1].start >= t[0].start);
        assert!(names(&t[0]).contains(&"sh".to_owned()));
        assert!(read(pid).is_none(), "reaped");
    }

    #[test]
    fn a_file_kept_open_reads_the_figures_of_now_and_nothing_once_its_process_is_gone() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut procfs = Procfs::with_room(16);
        let first = procfs.read(pid).expect("the busy shell");
        assert_eq!(procfs.kept(), 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let later = std::iter::from_fn(|| procfs.read(pid))
            .take_while(|_| std::time::Instant::now() < deadline)
            .find(|p| p.cpu_ticks > first.cpu_ticks);
        assert!(later.is_some(), "the kept file shows the CPU used since");
        assert_eq!(procfs.kept(), 1, "read again through the one file");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(procfs.read(pid), None, "gone: no figures, not the last ones");
        assert_eq!(procfs.kept(), 0);
    }

    #[test]
    fn a_pass_that_does_not_read_a_process_closes_its_file_unless_held_and_no_room_keeps_none() {
        let me = std::process::id();
        let mut procfs = Procfs::with_room(16);
        assert!(procfs.read(me).is_some());
        procfs.sweep(|_| false);
        assert_eq!(procfs.kept(), 1, "read in the pass that ended");
        procfs.sweep(|pid| pid == me);
        assert_eq!(procfs.kept(), 1, "held for a later pass");
        procfs.sweep(|_| false);
        assert_eq!(procfs.kept(), 0, "neither read nor held");
        let mut uncached = Procfs::uncached();
        assert!(uncached.read(me).is_some());
        assert_eq!(uncached.kept(), 0);
    }
}
