//! The end of a lifecycle: recording how a live incarnation ended, its crash, its
//! checkpoint when vigil gave up on it, and the [`Hold`] its end puts on the restart
//! (backoff, crash loop), in a field: the words for it are made from that field.

use super::Ctx;
use crate::engine::mind::{AgentRecord, CheckpointNote, Ended, EndedLifecycle, Hold, HumanNeeded, LastExit, Wait};
use crate::engine::policy::{backoff, crashes_within};
use crate::engine::time::{Time, human};
use crate::engine::{Action, Alert, Episode, What};

impl Ctx<'_> {
    /// Ends the live incarnation as `to`, records the crash, and sets any hold on the
    /// next restart (backoff, crash loop). Does nothing to one that has ended already.
    pub(super) fn end(&mut self, r: &mut AgentRecord, to: EndedLifecycle, exit: LastExit) {
        if !r.is_live() {
            return;
        }
        if to == EndedLifecycle::Stalled {
            // Given up on while still running: write down where it was first.
            self.checkpoint(r, &exit.reason);
        }
        self.count_failure(r, to);
        let hold = self.hold_after(r, to);
        let mut said = exit.reason.clone();
        if let Some(last) = exit.last_lines.last() {
            said.push_str(&format!("; last words: «{last}»"));
        }
        r.finish(to, exit, hold);
        r.reason = format!("{}: {said}", to.as_str());
        if to == EndedLifecycle::Stalled {
            self.raise(r, Alert::Terminated, format!("terminated and to be replaced: {said}"));
        }
        self.event(r, What::Lifecycle(to.into()), said);
        self.announce_hold(r);
    }

    /// Ends a live incarnation whose command could not start: a zombie held until what
    /// starting it runs changes, or `vigil up`; no crash, never retried into a loop. The
    /// user is told.
    pub(super) fn fail_start(&mut self, r: &mut AgentRecord, exit: LastExit) {
        if !r.is_live() {
            return;
        }
        let hold = Hold::UntilHuman {
            cause: HumanNeeded::StartFailed {
                start: self.agent.start_key,
            },
        };
        let said = format!("failed to start: {}", exit.reason);
        r.finish(EndedLifecycle::Zombie, exit, Some(hold.clone()));
        if let Some(ended) = r.ended() {
            r.reason = self.held_words(ended, &hold);
        }
        self.event(r, What::Lifecycle(EndedLifecycle::Zombie.into()), said.clone());
        self.out.actions.push(Action::Notify {
            agent: self.agent.name.clone(),
            incarnation: r.incarnation,
            alert: Alert::SpawnFailed,
            episode: Episode::Raised,
            reason: format!("{said}; not retried until its command, cwd or env changes, or `vigil up`"),
        });
    }

    pub(super) fn checkpoint(&mut self, r: &mut AgentRecord, reason: &str) {
        r.checkpoint = Some(CheckpointNote {
            incarnation: r.incarnation,
            reason: reason.to_owned(),
            at: self.now,
        });
        self.out.actions.push(Action::Checkpoint {
            agent: self.agent.name.clone(),
            incarnation: r.incarnation,
            session: r.session.clone(),
            reason: reason.to_owned(),
        });
    }

    /// A stable run clears the failures in a row; every end but a completion is one
    /// more, and a zombie's is a crash.
    fn count_failure(&self, r: &mut AgentRecord, to: EndedLifecycle) {
        if self.now.since(r.since) >= self.agent.policy.stable_after {
            r.failures_in_row = 0;
        }
        if to != EndedLifecycle::Completed {
            r.failures_in_row = r.failures_in_row.saturating_add(1);
        }
        if to == EndedLifecycle::Zombie {
            r.crashes.push(self.now);
            let excess = r.crashes.len().saturating_sub(AgentRecord::CRASHES_KEPT);
            r.crashes.drain(..excess);
        }
    }

    /// The hold an end of `to` puts on the next restart: a crash loop when a zombie
    /// makes `crash_max` crashes within the window, else a backoff after a failure.
    fn hold_after(&self, r: &AgentRecord, to: EndedLifecycle) -> Option<Hold> {
        let policy = &self.agent.policy;
        let recent = crashes_within(&r.crashes, policy.crash_window, self.now);
        if to == EndedLifecycle::Zombie && recent >= policy.crash_max as usize {
            let crashes = u32::try_from(recent).unwrap_or(u32::MAX);
            return Some(Hold::Until {
                at: self.now.plus(policy.crash_cooldown),
                cause: Wait::CrashLoop { crashes },
            });
        }
        let wait = backoff(r.failures_in_row);
        (to != EndedLifecycle::Completed && !wait.is_zero()).then(|| Hold::Until {
            at: self.now.plus(wait),
            cause: Wait::Backoff,
        })
    }

    /// Journals the hold the end just set; a crash loop also becomes the reason, and
    /// the user is told of it.
    fn announce_hold(&mut self, r: &mut AgentRecord) {
        let Some(ended) = r.ended() else { return };
        let Some(hold) = &ended.hold else { return };
        let mut crash_loop = None;
        let said = match hold {
            Hold::Until {
                at,
                cause: Wait::CrashLoop { crashes },
            } => {
                let said = self.crash_loop_words(*crashes, *at);
                let last = ended.exit.last_lines.last().map(|l| format!("; last words: «{l}»"));
                crash_loop = Some(format!("{said} ({}{})", ended.exit.reason, last.unwrap_or_default()));
                r.reason = self.held_words(ended, hold);
                said
            }
            Hold::Until { at, .. } => format!(
                "{} failures in a row; backing off {} before restarting, until {}",
                r.failures_in_row,
                human(at.since(self.now)),
                self.clock(*at)
            ),
            Hold::UntilHuman { .. } => return,
        };
        self.event(r, What::Held, said);
        if let Some(reason) = crash_loop {
            self.raise(r, Alert::CrashLoop, reason);
        }
    }

    fn crash_loop_words(&self, crashes: u32, until: Time) -> String {
        let policy = &self.agent.policy;
        format!(
            "crash loop: {crashes} crashes within {}; no restart for {}, until {}",
            human(policy.crash_window),
            human(policy.crash_cooldown),
            self.clock(until)
        )
    }

    /// Why an ended incarnation's restart is held, in words for `status`, made from
    /// the hold alone.
    pub(super) fn held_words(&self, ended: &Ended, hold: &Hold) -> String {
        let (lifecycle, why) = (ended.lifecycle.as_str(), &ended.exit.reason);
        match hold {
            Hold::Until {
                at,
                cause: Wait::CrashLoop { crashes },
            } => format!("{lifecycle} ({why}); {}", self.crash_loop_words(*crashes, *at)),
            Hold::Until {
                at,
                cause: Wait::RateLimit,
            } => format!(
                "{lifecycle} ({why}); restart held until {}, when the rate-limit cooldown ends",
                self.clock(*at)
            ),
            Hold::Until {
                at,
                cause: Wait::Backoff,
            } => format!("{lifecycle} ({why}); restart held until {}", self.clock(*at)),
            Hold::Until {
                at,
                cause: Wait::Host { outages },
            } => format!(
                "{lifecycle} ({why}); the fleet comes back at {} (host backoff after {outages} host failure(s) in a row)",
                self.clock(*at)
            ),
            Hold::UntilHuman {
                cause: HumanNeeded::NoResetLimit,
            } => format!("{lifecycle} ({why}); restart held until a human lifts its limit"),
            Hold::UntilHuman {
                cause: HumanNeeded::StartFailed { .. },
            } => format!(
                "failed to start: {why}; not retried until its command, cwd or env changes, or `vigil up {}`",
                self.agent.name
            ),
        }
    }
}
