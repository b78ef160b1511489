//! What tmux and the OS show, which beats what was recorded: adopting a newer tagged
//! session, noticing that a live incarnation ended (tmux pane > process > recorded
//! state), and reading a live pane's screen.

use std::time::Duration;

use super::Ctx;
use crate::engine::mind::{AgentRecord, EndedLifecycle, LastExit, Lifecycle, LiveLifecycle};
use crate::engine::screen::{self, ScreenRead};
use crate::engine::{Exit, PaneSeen, PaneState, What};

/// Polls in a row a live pane shows no agent process before the agent is dead.
const AGENT_MISSING_POLLS: u32 = 2;
/// How many of a dead pane's last lines are kept as its last words.
const LAST_WORDS: usize = 5;
/// Polls an end without an exit status is seen before it is judged (see
/// [`Live::unconfirmed_end`](crate::engine::Live::unconfirmed_end)).
const UNCONFIRMED_END_POLLS: u32 = 1;

impl Ctx<'_> {
    /// Takes over a tagged session newer than the record (or the only one known).
    pub(super) fn adopt(&mut self, rec: Option<AgentRecord>, pane: Option<&PaneSeen>) -> Option<AgentRecord> {
        let Some(pane) = pane else { return rec };
        let recorded = rec.as_ref().map(|r| r.incarnation);
        if recorded.is_some_and(|inc| inc >= pane.incarnation) {
            return rec;
        }
        let reason = match recorded {
            None => format!(
                "found {} running in tmux session `{}`; adopted, not restarted",
                pane.incarnation, pane.session
            ),
            Some(inc) => format!(
                "found {} in tmux session `{}` while the record said {inc}; tmux wins, adopted",
                pane.incarnation, pane.session
            ),
        };
        let mut r = match rec {
            Some(mut r) => {
                r.begin(pane.incarnation, self.now, reason.clone());
                r.session = pane.session.clone();
                r
            }
            None => AgentRecord::new(pane.incarnation, pane.session.clone(), self.now, reason.clone()),
        };
        r.pane_pid = Some(pane.pane_pid);
        self.event(&r, What::Adopted, reason);
        Some(r)
    }

    /// Applies what tmux and the OS say about a live incarnation: it may have ended;
    /// if it runs, its screen is read and its counters updated.
    pub(super) fn observe(&mut self, r: &mut AgentRecord, pane: Option<&PaneSeen>) -> Option<ScreenRead> {
        if !r.is_live() {
            return None;
        }
        let Some(pane) = pane else {
            if self.end_by_host(r) {
                return None;
            }
            let exit = LastExit::because("its tmux session disappeared");
            self.end(r, EndedLifecycle::Zombie, exit);
            return None;
        };
        r.pane_pid = Some(pane.pane_pid);
        if let Some(live) = r.live_mut() {
            // Only this look's tree is evidence: one not read now is none, never the
            // last one's figures again.
            live.tree.clone_from(&pane.tree.tree);
        }
        // Known by its tags: the name is whatever tmux shows (another one when the
        // agent's own was taken by a session vigil did not start).
        if pane.incarnation == r.incarnation && pane.session != r.session {
            r.session = pane.session.clone();
        }
        if self.end_unconfirmed(r, pane) {
            return None;
        }
        match pane.state {
            PaneState::Dead(exit) => {
                let tail = pane.tail.as_deref().unwrap_or_default();
                if let Some(failure) = could_not_start(exit, tail, self.now.since(r.since)) {
                    self.fail_start(r, failure);
                    return None;
                }
                let (to, exit) = how_it_exited(exit, tail);
                self.end(r, to, exit);
                None
            }
            PaneState::ProcessGone => {
                let reason = format!("its process {} is gone though tmux still shows the pane", pane.pane_pid);
                self.end(r, EndedLifecycle::Zombie, LastExit::because(reason));
                None
            }
            PaneState::Alive if self.agent_gone(r, pane) => None,
            PaneState::Alive => self.read_screen(r, pane),
        }
    }

    /// A pane alive whose agent process is gone (it ran under a wrapper or a shell that
    /// outlived it) is a dead agent, once [`AGENT_MISSING_POLLS`] polls in a row say so:
    /// counted once the agent was seen, or once the incarnation is past its start (an
    /// agent that never appeared is as dead). Returns whether it ended.
    fn agent_gone(&mut self, r: &mut AgentRecord, pane: &PaneSeen) -> bool {
        let (Some(seen), Some(process)) = (pane.tree.agent_process, self.agent.process.as_deref()) else {
            return false;
        };
        let booting = self.now.since(r.since) < START_WINDOW;
        let Some(live) = r.live_mut() else { return false };
        if seen {
            live.agent_seen = true;
            live.agent_missing = 0;
            return false;
        }
        if !live.agent_seen && booting {
            return false;
        }
        live.agent_missing = live.agent_missing.saturating_add(1);
        let polls = live.agent_missing;
        if polls < AGENT_MISSING_POLLS {
            r.reason = format!("pane alive, no `{process}` process under it (1 poll; judged at {AGENT_MISSING_POLLS})");
            return false;
        }
        let reason = format!("pane alive, no `{process}` process under it for {polls} polls");
        self.end(r, EndedLifecycle::Zombie, LastExit::because(reason));
        true
    }

    /// tmux marks a pane dead (or its process exits) a moment before it has the exit
    /// status; on a busy machine that moment outlasts the supervisor's own settling.
    /// Judging at once would lose the status, so an end that says nothing of how is
    /// judged on the next poll. Returns whether the judgement waits.
    fn end_unconfirmed(&mut self, r: &mut AgentRecord, pane: &PaneSeen) -> bool {
        let Some(live) = r.live_mut() else { return false };
        let unconfirmed = matches!(pane.state, PaneState::ProcessGone | PaneState::Dead(Exit::Unknown));
        if !unconfirmed {
            live.unconfirmed_end = 0;
            return false;
        }
        if live.unconfirmed_end >= UNCONFIRMED_END_POLLS {
            return false;
        }
        live.unconfirmed_end += 1;
        r.reason = format!(
            "its process {} seems to have ended; waiting one poll for tmux to report how",
            pane.pane_pid
        );
        true
    }

    /// Reads a live pane's screen and updates what the record knows of it; a booting
    /// incarnation that prints is working.
    fn read_screen(&mut self, r: &mut AgentRecord, pane: &PaneSeen) -> Option<ScreenRead> {
        let policy = &self.agent.policy;
        let tail = pane.tail.as_ref()?;
        let read = tail.read(&self.agent.patterns, policy.tail_lines, policy.rate_limit_lines);
        let live = r.live_mut()?;
        if live.screen_hash.as_deref() == Some(read.hash.as_str()) {
            live.unchanged_checks = live.unchanged_checks.saturating_add(1);
            live.checks_since_nudge = live.checks_since_nudge.saturating_add(1);
            live.changes_in_row = 0;
        } else {
            live.screen_hash = Some(read.hash.clone());
            live.last_change = self.now;
            live.unchanged_checks = 0;
            live.checks_since_nudge = 0;
            live.changes_in_row = live.changes_in_row.saturating_add(1);
        }
        if live.lifecycle() == LiveLifecycle::Booting && !read.blank && live.work() {
            self.event(r, What::Lifecycle(Lifecycle::Working), "pane alive and printing".into());
        }
        Some(read)
    }
}

/// How a dead pane's process ended, in the lifecycle it ends and its exit, with its
/// last words.
fn how_it_exited(exit: Exit, tail: &[String]) -> (EndedLifecycle, LastExit) {
    let (to, code, reason) = match exit {
        Exit::Code(0) => (EndedLifecycle::Completed, Some(0), "exited with status 0".to_owned()),
        Exit::Code(c @ 129..=192) => (
            EndedLifecycle::Zombie,
            Some(c),
            format!("exited with status {c} (killed by signal {})", c - 128),
        ),
        Exit::Code(c) => (EndedLifecycle::Zombie, Some(c), format!("exited with status {c}")),
        Exit::Signal(s) => (EndedLifecycle::Zombie, None, format!("killed by signal {s}")),
        Exit::Unknown => (
            EndedLifecycle::Zombie,
            None,
            "its process ended (status unknown)".to_owned(),
        ),
    };
    let last_lines = last_words(tail);
    (
        to,
        LastExit {
            code,
            reason,
            last_lines,
            start_failed: false,
            host: None,
        },
    )
}

/// The shell's exit statuses for a command it could not run: 127 not found, 126 found
/// but not executable (or permission denied).
const NOT_FOUND: i32 = 127;
const NOT_EXECUTABLE: i32 = 126;
/// An end with one of those statuses this soon after the start is the start failing
/// (the shell's own error line is on the pane), not a crash of the agent.
const START_WINDOW: Duration = Duration::from_secs(30);

/// A start that failed, told apart from a crash: the shell's status for a command it
/// could not run, soon after the start; the reason quotes the shell's own error line.
fn could_not_start(exit: Exit, tail: &[String], age: Duration) -> Option<LastExit> {
    let Exit::Code(code @ (NOT_FOUND | NOT_EXECUTABLE)) = exit else {
        return None;
    };
    if age > START_WINDOW {
        return None;
    }
    let last_lines = last_words(tail);
    let what = if code == NOT_FOUND {
        "command not found"
    } else {
        "command not executable"
    };
    let reason = match last_lines.last() {
        Some(line) => format!("{line} (exit {code}: {what})"),
        None => format!("exit {code}: {what}"),
    };
    Some(LastExit {
        code: Some(code),
        reason,
        last_lines,
        start_failed: true,
        host: None,
    })
}

/// A booting incarnation never yet seen, while tmux shows no session for the agent or
/// only an older one: the start was decided but never carried out.
pub(super) fn start_never_happened(r: &AgentRecord, pane: Option<&PaneSeen>) -> bool {
    r.lifecycle() == Lifecycle::Booting && r.pane_pid.is_none() && pane.is_none_or(|p| p.incarnation < r.incarnation)
}

/// A dead pane's last non-blank lines, tmux's own notice excluded.
fn last_words(raw: &[String]) -> Vec<String> {
    let tail = screen::tail(raw, usize::MAX);
    screen::last_non_blank(&tail, LAST_WORDS)
        .into_iter()
        .map(str::to_owned)
        .collect()
}
