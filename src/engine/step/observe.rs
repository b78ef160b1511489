//! What tmux and the OS show, which beats what was recorded: adopting a newer tagged
//! session, noticing that a live incarnation ended (tmux pane > process > recorded
//! state), and reading a live pane's screen.

use super::*;

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
        if !r.lifecycle.is_live() {
            return None;
        }
        let Some(pane) = pane else {
            let exit = LastExit::because("its tmux session disappeared");
            self.end(r, Lifecycle::Zombie, exit);
            return None;
        };
        r.pane_pid = Some(pane.pane_pid);
        let unconfirmed = matches!(pane.state, PaneState::ProcessGone | PaneState::Dead(Exit::Unknown));
        if !unconfirmed {
            r.unconfirmed_end = 0;
        } else if r.unconfirmed_end < UNCONFIRMED_END_POLLS {
            // tmux marks a pane dead (or its process exits) a moment before it has the
            // exit status; on a busy machine that moment outlasts the supervisor's own
            // settling. Judging now would lose the status, so judge on the next poll.
            r.unconfirmed_end += 1;
            r.reason = format!(
                "its process {} seems to have ended; waiting one poll for tmux to report how",
                pane.pane_pid
            );
            return None;
        }
        match pane.state {
            PaneState::Dead(exit) => {
                let last_lines = last_words(pane.tail.as_deref().unwrap_or_default());
                let (to, code, reason) = match exit {
                    Exit::Code(0) => (Lifecycle::Completed, Some(0), "exited with status 0".to_owned()),
                    Exit::Code(c @ 129..=192) => (
                        Lifecycle::Zombie,
                        Some(c),
                        format!("exited with status {c} (killed by signal {})", c - 128),
                    ),
                    Exit::Code(c) => (Lifecycle::Zombie, Some(c), format!("exited with status {c}")),
                    Exit::Signal(s) => (Lifecycle::Zombie, None, format!("killed by signal {s}")),
                    Exit::Unknown => (Lifecycle::Zombie, None, "its process ended (status unknown)".to_owned()),
                };
                self.end(
                    r,
                    to,
                    LastExit {
                        code,
                        reason,
                        last_lines,
                        start_failed: false,
                    },
                );
                None
            }
            PaneState::ProcessGone => {
                let reason = format!("its process {} is gone though tmux still shows the pane", pane.pane_pid);
                self.end(r, Lifecycle::Zombie, LastExit::because(reason));
                None
            }
            PaneState::Alive => {
                let policy = &self.agent.policy;
                let tail = pane.tail.as_ref()?;
                let read = screen::read(tail, &self.agent.patterns, policy.tail_lines, policy.rate_limit_lines);
                if r.screen_hash.as_deref() == Some(read.hash.as_str()) {
                    r.unchanged_checks = r.unchanged_checks.saturating_add(1);
                    r.checks_since_nudge = r.checks_since_nudge.saturating_add(1);
                    r.changes_in_row = 0;
                } else {
                    r.screen_hash = Some(read.hash.clone());
                    r.last_change = self.now;
                    r.unchanged_checks = 0;
                    r.checks_since_nudge = 0;
                    r.changes_in_row = r.changes_in_row.saturating_add(1);
                }
                if r.lifecycle == Lifecycle::Booting && !read.blank && r.advance(Lifecycle::Working) {
                    self.event(r, What::Lifecycle(Lifecycle::Working), "pane alive and printing".into());
                }
                Some(read)
            }
        }
    }
}

/// A booting incarnation never yet seen, while tmux shows no session for the agent or
/// only an older one: the start was decided but never carried out.
pub(super) fn start_never_happened(r: &AgentRecord, pane: Option<&PaneSeen>) -> bool {
    r.lifecycle == Lifecycle::Booting && r.pane_pid.is_none() && pane.is_none_or(|p| p.incarnation < r.incarnation)
}

/// A dead pane's last non-blank lines, tmux's own notice excluded.
pub(super) fn last_words(raw: &[String]) -> Vec<String> {
    let tail = screen::tail(raw, usize::MAX);
    screen::last_non_blank(&tail, LAST_WORDS)
        .into_iter()
        .map(str::to_owned)
        .collect()
}
