//! A pane's process tree, from Linux's /proc: its descendants (each thread's
//! `task/<tid>/children`, exact and cheap, no walk of the whole process table), each
//! with its start time (so a reused pid is never taken for the one seen), its names
//! and the CPU time it used. Reads only; signalling what was recorded is
//! [`crate::adapters::process`]'s.

use std::fs;

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
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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

/// The children of `p`, from every one of its threads: a single-threaded process's
/// from its one task, without listing `task/` (most of a pane's tree: shells, `sleep`);
/// one whose thread count is unknown or above one, from each task listed.
pub fn children(p: &Proc) -> Vec<u32> {
    let mut out = Vec::new();
    let mut add = |path: std::path::PathBuf| {
        if let Ok(text) = fs::read_to_string(path) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    };
    let pid = p.pid;
    if p.threads == 1 {
        add(format!("/proc/{pid}/task/{pid}/children").into());
        return out;
    }
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.filter_map(Result::ok) {
        add(task.path().join("children"));
    }
    out
}

/// `root` and its descendants (breadth first, at most [`MAX_TREE`]); empty when `root`
/// is gone.
pub fn tree(root: u32) -> Vec<Proc> {
    read(root).map(tree_under).unwrap_or_default()
}

/// `root`, already read, and its descendants (breadth first, at most [`MAX_TREE`]).
pub fn tree_under(root: Proc) -> Vec<Proc> {
    let mut out = vec![root];
    let mut next = 0;
    while next < out.len() && out.len() < MAX_TREE {
        let kids = children(&out[next]);
        next += 1;
        for child in kids {
            if out.len() >= MAX_TREE {
                break;
            }
            if let Some(p) = read(child) {
                out.push(p);
            }
        }
    }
    out
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
}
