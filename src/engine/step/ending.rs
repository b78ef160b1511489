//! The end of a lifecycle: recording how a live incarnation ended, its crash, its
//! checkpoint when vigil gave up on it, and the hold on its restart.

use super::*;

impl Ctx<'_> {
    /// Ends the live incarnation as `to`, records the crash, and sets any hold on the
    /// next restart (backoff, crash loop).
    pub(super) fn end(&mut self, r: &mut AgentRecord, to: Lifecycle, exit: LastExit) {
        if !r.advance(to) {
            return;
        }
        let policy = &self.agent.policy;
        r.activity = None;
        r.limit_visible = false;
        r.triage_since = None;
        r.pending_effect = None;
        if to != Lifecycle::Stalled {
            r.escalation = Escalation::None;
        }
        if to == Lifecycle::Stalled {
            // Given up on while still running: write down where it was first.
            r.checkpoint = Some(CheckpointNote {
                incarnation: r.incarnation,
                reason: exit.reason.clone(),
                at: self.now,
            });
            self.out.actions.push(Action::Checkpoint {
                agent: self.agent.name.clone(),
                incarnation: r.incarnation,
                session: r.session.clone(),
                reason: exit.reason.clone(),
            });
        }
        if self.now.since(r.since) >= policy.stable_after {
            r.failures_in_row = 0;
        }
        let failed = to != Lifecycle::Completed;
        if failed {
            r.failures_in_row = r.failures_in_row.saturating_add(1);
        }
        if to == Lifecycle::Zombie {
            r.crashes.push(self.now);
            let excess = r.crashes.len().saturating_sub(AgentRecord::CRASHES_KEPT);
            r.crashes.drain(..excess);
        }
        let mut reason = exit.reason.clone();
        if let Some(last) = exit.last_lines.last() {
            reason.push_str(&format!("; last words: «{last}»"));
        }
        r.reason = format!("{}: {reason}", to.as_str());
        r.last_exit = Some(exit);
        self.event(r, What::Lifecycle(to), reason);

        r.cooldown_until = None;
        let recent = crashes_within(&r.crashes, policy.crash_window, self.now);
        if to == Lifecycle::Zombie && recent >= policy.crash_max as usize {
            let until = self.now.plus(policy.crash_cooldown);
            r.cooldown_until = Some(until);
            let reason = format!(
                "crash loop: {recent} crashes within {}; no restart for {}, until {}",
                human(policy.crash_window),
                human(policy.crash_cooldown),
                self.clock(until)
            );
            r.reason = format!(
                "zombie ({}); {reason}",
                r.last_exit.as_ref().map_or("", |e| e.reason.as_str())
            );
            self.event(r, What::Held, reason);
        } else if failed {
            let wait = backoff(r.failures_in_row);
            if !wait.is_zero() {
                let until = self.now.plus(wait);
                r.cooldown_until = Some(until);
                let reason = format!(
                    "{} failures in a row; backing off {} before restarting, until {}",
                    r.failures_in_row,
                    human(wait),
                    self.clock(until)
                );
                self.event(r, What::Held, reason);
            }
        }
    }
}
