//! Each live pane's process tree at every pass, read from /proc for that pane alone
//! (its descendants, never the whole process table): how many processes, the CPU the
//! tree used since the last pass (each process's own time plus that of the children
//! it waited for, so a compiler that came and went between two looks still counts),
//! the busiest names, and whether the agent's own process is among them. Reads only.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use regex::Regex;

use crate::adapters::proctree::{self, Proc, TICKS_PER_SEC};
use crate::engine::{Busy, Tree, TreeSeen};

/// How many of the busiest names a tree's summary keeps.
const BUSIEST: usize = 3;

/// One pane's tree as last read: when, and each process's CPU ticks then.
struct Reading {
    at: Instant,
    ticks: HashMap<(u32, u64), u64>,
}

/// The last reading of each live session's tree.
#[derive(Default)]
pub(super) struct Trees {
    last: BTreeMap<String, Reading>,
}

impl Trees {
    /// Reads the tree under `pane_pid` now, against the last reading of `session`.
    pub(super) fn look(&mut self, session: &str, pane_pid: u32, process: Option<&Regex>, now: Instant) -> TreeSeen {
        let procs = proctree::tree(pane_pid);
        if procs.is_empty() {
            self.last.remove(session);
            return TreeSeen::default();
        }
        // The pane's own process is vigil's wrapper shell, never the agent.
        let agent_process = process.map(|re| {
            procs
                .iter()
                .skip(1)
                .any(|p| proctree::names(p).iter().any(|n| re.is_match(n)))
        });
        let total = |p: &Proc| p.cpu_ticks.saturating_add(p.reaped_ticks);
        let ticks: HashMap<(u32, u64), u64> = procs.iter().map(|p| ((p.pid, p.start), total(p))).collect();
        let (cpu_pct, busiest) = match self.last.get(session) {
            Some(before) => {
                let wall_ms = now.saturating_duration_since(before.at).as_millis().max(1);
                let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
                for p in &procs {
                    // A process born since the last look used all its time since then.
                    let then = before.ticks.get(&(p.pid, p.start)).copied().unwrap_or(0);
                    *by_name.entry(&p.name).or_default() += total(p).saturating_sub(then);
                }
                let pct = |ticks: u64| {
                    let ms = u128::from(ticks) * 1000 / u128::from(TICKS_PER_SEC);
                    u32::try_from(ms * 100 / wall_ms).unwrap_or(u32::MAX)
                };
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
            None => (None, Vec::new()),
        };
        self.last.insert(session.to_owned(), Reading { at: now, ticks });
        TreeSeen {
            agent_process,
            tree: Some(Tree {
                count: u32::try_from(procs.len()).unwrap_or(u32::MAX),
                cpu_pct,
                busiest,
            }),
        }
    }

    /// Forgets the sessions no longer seen.
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.last.retain(|session, _| keep(session));
    }
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
}
