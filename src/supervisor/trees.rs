//! Each live pane's process tree at every pass, read from /proc for that pane alone
//! (its descendants, never the whole process table): how many processes, the CPU the
//! tree used since the last pass (each process's own time plus that of the children
//! it waited for, so a compiler that came and went between two looks still counts),
//! the busiest names, and whether the agent's own process is among them. Reads only.
//!
//! A still screen over a quiet tree (under half the CPU that counts as working, its
//! agent there when one is looked for) keeps that reading for [`QUIET_FOR`] without
//! /proc being read again: at a 1 s poll an idle fleet's trees are read every 5 s, as
//! at the default poll. What the tree used meanwhile is in the next reading, which
//! measures from the last one.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use regex::Regex;

use crate::adapters::proctree::{self, Proc, Procfs, TICKS_PER_SEC};
use crate::engine::{Busy, Tree, TreeSeen};

/// How many of the busiest names a tree's summary keeps.
const BUSIEST: usize = 3;

/// How long a quiet tree's reading stands for a still screen.
pub const QUIET_FOR: Duration = Duration::from_secs(5);

/// A process's CPU ticks at one look: its own, and its waited-for children's.
#[derive(Clone, Copy)]
struct Ticks {
    ppid: u32,
    own: u64,
    reaped: u64,
}

/// One pane's tree as last read: when (monotonic), and each process's ticks then, by
/// pid and start time (a pid reused since is another process).
struct Reading {
    at: Instant,
    /// The last pass it was read or handed on in.
    used: Instant,
    /// What it showed.
    seen: TreeSeen,
    /// The pane's own process as read then.
    root: Proc,
    /// Its processes, pid and start time, in the order read (the pane's own first).
    procs: Vec<(u32, u64)>,
    ticks: HashMap<(u32, u64), Ticks>,
    /// The names each process went by (read for a `process` pattern only), with the
    /// `comm` they were read under: a process that exec'd since shows another `comm`
    /// and is read again; one that did not keeps its command line.
    names: HashMap<(u32, u64), Named>,
}

impl Reading {
    /// Whether this reading can be handed on at `now` for a still screen: less than
    /// [`QUIET_FOR`] old, its tree then under half of `busy_cpu`, and the agent there if
    /// one is looked for (a missing one is counted on fresh readings only).
    fn stands(&self, busy_cpu: u32, now: Instant) -> bool {
        let quiet = self
            .seen
            .tree
            .as_ref()
            .and_then(|t| t.cpu_pct)
            .is_some_and(|pct| pct.saturating_mul(2) < busy_cpu);
        quiet && now.saturating_duration_since(self.at) < QUIET_FOR && self.seen.agent_process != Some(false)
    }
}

/// A process's names as last read, and the `comm` it had then.
struct Named {
    comm: String,
    names: Vec<String>,
}

/// The last reading of each live session's tree: one entry per live pane, each at most
/// [`proctree::MAX_TREE`] processes, forgotten with its pane.
#[derive(Default)]
pub struct Trees {
    last: BTreeMap<String, Reading>,
    /// The /proc files of the processes read, kept open from pass to pass.
    procfs: Procfs,
}

impl Trees {
    /// Reads the tree under `pane_pid` now, against the last reading of `session`.
    pub fn look(&mut self, session: &str, pane_pid: u32, process: Option<&Regex>, now: Instant) -> TreeSeen {
        match self.procfs.read(pane_pid) {
            Some(root) => self.look_under(session, root, process, now),
            None => {
                self.last.remove(session);
                TreeSeen::default()
            }
        }
    }

    /// Reads the tree under `root` (the pane's process, just read) now, against the last
    /// reading of `session`.
    pub fn look_under(&mut self, session: &str, root: Proc, process: Option<&Regex>, now: Instant) -> TreeSeen {
        self.procfs.watch(&root);
        let kept_root = root.clone();
        let procs = self.procfs.tree_under(root);
        let before = self.last.remove(session);
        // The pane's own process is vigil's wrapper shell, never the agent.
        let mut names = HashMap::new();
        let agent_process = process.map(|re| {
            let mut found = false;
            for p in procs.iter().skip(1) {
                let key = (p.pid, p.start);
                let known = before
                    .as_ref()
                    .and_then(|b| b.names.get(&key))
                    .filter(|n| n.comm == p.name)
                    .map(|n| n.names.clone());
                let named = known.unwrap_or_else(|| proctree::names(p));
                found |= named.iter().any(|n| re.is_match(n));
                names.insert(
                    key,
                    Named {
                        comm: p.name.clone(),
                        names: named,
                    },
                );
            }
            found
        });
        let ticks = reading(&procs);
        let (cpu_pct, busiest) = match &before {
            Some(before) => {
                let wall = now.saturating_duration_since(before.at);
                let used = used_since(&procs, &before.ticks);
                summary(&used, wall)
            }
            None => (None, Vec::new()),
        };
        let ids = procs.iter().map(|p| (p.pid, p.start)).collect();
        let seen = TreeSeen {
            agent_process,
            tree: Some(Tree {
                count: u32::try_from(procs.len()).unwrap_or(u32::MAX),
                cpu_pct,
                busiest,
            }),
        };
        self.last.insert(
            session.to_owned(),
            Reading {
                at: now,
                used: now,
                seen: seen.clone(),
                root: kept_root,
                procs: ids,
                ticks,
                names,
            },
        );
        seen
    }

    /// The pane's process as `session`'s last reading read it, for a pass that will
    /// hand that reading on ([`Trees::hand_on`]): when it can stand
    /// ([`Reading::stands`]), was read under `pane_pid`, and that very process still
    /// runs by its pidfd (a pid taken again is another process, which the pidfd does
    /// not follow). No /proc file is read; `None`: read the process and its tree.
    pub fn standing_root(&mut self, session: &str, pane_pid: u32, busy_cpu: u32, now: Instant) -> Option<Proc> {
        let reading = self.last.get(session)?;
        if reading.root.pid != pane_pid || !reading.stands(busy_cpu, now) {
            return None;
        }
        let root = reading.root.clone();
        self.procfs.runs(root.pid, root.start)?.then_some(root)
    }

    /// The last reading of `session`'s tree, as this pass's (`now`), without reading
    /// /proc: for a pane whose root [`Trees::standing_root`] gave.
    pub fn hand_on(&mut self, session: &str, now: Instant) -> Option<TreeSeen> {
        let reading = self.last.get_mut(session)?;
        reading.used = now;
        Some(reading.seen.clone())
    }

    /// The processes (pid, start time) of `session`'s tree, when it was read or handed
    /// on at `since` or later: this pass's reading, for what else needs the tree, read
    /// once.
    pub fn read_since(&self, session: &str, since: Instant) -> Option<&[(u32, u64)]> {
        self.last
            .get(session)
            .filter(|r| r.used >= since)
            .map(|r| r.procs.as_slice())
    }

    /// Whether `root`, just read under the pid of `session`'s last root, is another
    /// process than that one (started at another time): the pid was taken again.
    pub fn root_replaced(&self, session: &str, root: &Proc) -> bool {
        self.last
            .get(session)
            .is_some_and(|r| r.root.pid == root.pid && r.root.start != root.start)
    }

    /// Reads one process now (through the files kept open).
    pub fn read(&mut self, pid: u32) -> Option<Proc> {
        self.procfs.read(pid)
    }

    /// Ends a pass: forgets the sessions no longer seen, and closes the /proc files of
    /// the processes this pass did not read and no reading kept holds.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.last.retain(|session, _| keep(session));
        let held: std::collections::HashSet<u32> = self
            .last
            .values()
            .flat_map(|r| r.procs.iter().map(|(pid, _)| *pid))
            .collect();
        self.procfs.sweep(|pid| held.contains(&pid));
    }
}

/// Each process's CPU ticks at this look, by pid and start time.
fn reading(procs: &[Proc]) -> HashMap<(u32, u64), Ticks> {
    procs
        .iter()
        .map(|p| {
            let t = Ticks {
                ppid: p.ppid,
                own: p.cpu_ticks,
                reaped: p.reaped_ticks,
            };
            ((p.pid, p.start), t)
        })
        .collect()
}

/// The CPU ticks each process of `procs` used since `before`. A process born since used
/// all of its time since. A child that exited and was waited for since moves its time
/// into its parent's `reaped`; what of it was already counted at the last look is
/// taken off that growth, so a long build that ends is not counted twice.
fn used_since<'a>(procs: &'a [Proc], before: &HashMap<(u32, u64), Ticks>) -> Vec<(&'a str, u64)> {
    let now: HashMap<u32, u64> = procs.iter().map(|p| (p.pid, p.start)).collect();
    // Per parent pid: the ticks of its children seen last time and gone now.
    let mut credited: HashMap<u32, u64> = HashMap::new();
    for (&(pid, start), t) in before {
        if now.get(&pid) != Some(&start) {
            *credited.entry(t.ppid).or_default() += t.own.saturating_add(t.reaped);
        }
    }
    procs
        .iter()
        .map(|p| {
            let used = match before.get(&(p.pid, p.start)) {
                Some(then) => {
                    let reaped = p.reaped_ticks.saturating_sub(then.reaped);
                    let counted = credited.get(&p.pid).copied().unwrap_or(0);
                    p.cpu_ticks
                        .saturating_sub(then.own)
                        .saturating_add(reaped.saturating_sub(counted))
                }
                None => p.cpu_ticks.saturating_add(p.reaped_ticks),
            };
            (p.name.as_str(), used)
        })
        .collect()
}

/// The whole tree's CPU over `wall`, in percent of one core, and the busiest names.
fn summary(used: &[(&str, u64)], wall: Duration) -> (Option<u32>, Vec<Busy>) {
    let wall_ms = wall.as_millis().max(1);
    let pct = |ticks: u64| {
        let ms = u128::from(ticks) * 1000 / u128::from(TICKS_PER_SEC);
        u32::try_from(ms * 100 / wall_ms).unwrap_or(u32::MAX)
    };
    let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, t) in used {
        *by_name.entry(name).or_default() += t;
    }
    let all: u64 = by_name.values().sum();
    let mut named: Vec<(&str, u64)> = by_name.into_iter().filter(|(_, t)| *t > 0).collect();
    named.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let busiest = named
        .into_iter()
        .take(BUSIEST)
        .map(|(name, t)| Busy {
            name: name.to_owned(),
            pct: pct(t),
        })
        .collect();
    (Some(pct(all)), busiest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_child_shows_in_the_second_look_by_name() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); done"])
            .spawn()
            .unwrap();
        let mut trees = Trees::default();
        let t0 = Instant::now();
        let first = trees.look("s", child.id(), None, t0);
        assert_eq!(first.tree.as_ref().map(|t| (t.count, t.cpu_pct)), Some((1, None)));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let second = trees.look("s", child.id(), None, Instant::now());
        let _ = child.kill();
        let _ = child.wait();
        let tree = second.tree.unwrap();
        assert!(tree.cpu_pct.is_some_and(|p| p > 0), "{tree:?}");
        assert_eq!(tree.busiest.first().map(|b| b.name.as_str()), Some("sh"));
        trees.retain(|_| false);
        assert!(trees.last.is_empty());
    }

    #[test]
    fn the_processes_read_this_pass_are_lent_out_and_an_older_reading_is_not() {
        let mut trees = Trees::default();
        let pass = Instant::now();
        let me = std::process::id();
        trees.look("s", me, None, pass);
        let start = proctree::read(me).map(|p| p.start);
        assert_eq!(
            trees.read_since("s", pass).and_then(|p| p.first().copied()),
            start.map(|s| (me, s))
        );
        let later = pass + std::time::Duration::from_secs(1);
        assert!(trees.read_since("s", later).is_none(), "a reading older than the pass");
        assert!(trees.read_since("other", pass).is_none());
    }

    #[test]
    fn a_quiet_tree_s_reading_stands_for_a_still_screen_a_while_and_no_other_does() {
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let root = proctree::read(sleeper.id()).unwrap();
        let pid = root.pid;
        let mut trees = Trees::default();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        trees.look_under("s", root.clone(), None, t0);
        assert!(
            trees.standing_root("s", pid, 25, t0 + s).is_none(),
            "one reading measures no CPU"
        );
        let second = trees.look_under("s", root.clone(), None, t0 + s);
        assert_eq!(second.tree.as_ref().and_then(|t| t.cpu_pct), Some(0));

        let pass = t0 + 2 * s;
        assert_eq!(
            trees.standing_root("s", pid, 25, pass),
            Some(root.clone()),
            "quiet, fresh, and it runs by its pidfd"
        );
        assert_eq!(trees.hand_on("s", pass), Some(second));
        assert!(trees.read_since("s", pass).is_some(), "lent out as this pass's reading");
        assert!(
            trees.standing_root("s", pid, 25, t0 + s + QUIET_FOR).is_none(),
            "too old"
        );
        assert!(
            trees.standing_root("s", pid + 1, 25, pass).is_none(),
            "another pane's process"
        );
        assert!(
            trees.standing_root("s", pid, 0, pass).is_none(),
            "nothing is quiet under 0 %"
        );
        assert!(trees.standing_root("other", pid, 25, pass).is_none());

        let nobody = Regex::new("^no-such-agent$").unwrap();
        trees.look_under("s", root.clone(), Some(&nobody), t0 + 3 * s);
        assert!(
            trees.standing_root("s", pid, 25, t0 + 4 * s).is_none(),
            "a missing agent is looked for afresh"
        );
        trees.look_under("s", root.clone(), None, t0 + 4 * s);
        sleeper.kill().unwrap();
        let exited = poll(Duration::from_secs(5), || {
            trees.standing_root("s", pid, 25, t0 + 5 * s).is_none().then_some(())
        });
        assert!(
            exited.is_some(),
            "a process that exited (a zombie, not yet waited for) does not stand"
        );
        sleeper.wait().unwrap();
    }

    fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = probe() {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn proc(pid: u32, ppid: u32, name: &str, own: u64, reaped: u64) -> Proc {
        Proc {
            pid,
            ppid,
            start: u64::from(pid) * 10,
            name: name.into(),
            cpu_ticks: own,
            reaped_ticks: reaped,
            threads: 1,
        }
    }

    #[test]
    fn a_child_waited_for_since_the_last_look_is_not_counted_twice() {
        // cargo (2) ran rustc (3), which had used 900 ticks at the last look and 1000
        // when it exited; cargo waited for it and itself used 5 more ticks.
        let before = reading(&[
            proc(1, 0, "sh", 1, 0),
            proc(2, 1, "cargo", 10, 0),
            proc(3, 2, "rustc", 0, 900),
        ]);
        let now = [proc(1, 0, "sh", 1, 0), proc(2, 1, "cargo", 15, 1000)];
        let used = used_since(&now, &before);
        assert_eq!(used, vec![("sh", 0), ("cargo", 105)]);
    }

    #[test]
    fn a_reused_pid_is_a_new_process_whose_time_is_all_since_the_last_look() {
        let before = reading(&[proc(1, 0, "sh", 1, 0), proc(2, 1, "make", 500, 0)]);
        let mut reborn = proc(2, 1, "cc", 40, 0);
        reborn.start += 1;
        let now = [proc(1, 0, "sh", 1, 0), reborn];
        let used = used_since(&now, &before);
        assert_eq!(used, vec![("sh", 0), ("cc", 40)]);
    }

    #[test]
    fn the_busiest_names_add_up_their_processes_in_percent_of_one_core() {
        let used = [("rustc", 150), ("cargo", 10), ("rustc", 50), ("sh", 0)];
        let (pct, busiest) = summary(&used, Duration::from_secs(2));
        assert_eq!(pct, Some(105));
        let names: Vec<(&str, u32)> = busiest.iter().map(|b| (b.name.as_str(), b.pct)).collect();
        assert_eq!(names, vec![("rustc", 100), ("cargo", 5)]);
    }
}
