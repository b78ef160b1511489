//! The escalation ladder for a stuck screen: warn, nudge, triage, terminate, one step
//! per poll at most, each after its dwell.

use std::time::Duration;

use super::Ctx;
use crate::engine::Purpose;
use crate::engine::mind::{AgentRecord, EndedLifecycle, Escalation, LastExit, Live};
use crate::engine::screen::ScreenRead;
use crate::engine::time::human;

impl Ctx<'_> {
    /// How long the screen has counted as stuck for the ladder.
    fn dwell(&self, live: &Live) -> Duration {
        let from = live.ladder_from.map_or(live.last_change, |f| f.max(live.last_change));
        self.now.since(from)
    }

    pub(super) fn next_step_words(&self, live: &Live) -> String {
        let p = &self.agent.policy;
        let next = match live.escalation {
            Escalation::None => Some(("warn", p.warn_after)),
            Escalation::Warn => Some(("nudge", p.nudge_after)),
            Escalation::Nudge => Some(("triage", p.triage_after)),
            Escalation::Triage | Escalation::Terminate => None,
        };
        match next {
            Some((step, at)) if at < p.stale_after => {
                format!("escalation {}, {step} at {}", live.escalation.as_str(), human(at))
            }
            _ => format!("escalation {}", live.escalation.as_str()),
        }
    }

    /// The escalation ladder: one step per poll at most, each after its dwell, up to
    /// terminate at `stale_after`. Returns whether the step acted (typed, asked triage,
    /// or ended the incarnation).
    pub(super) fn climb(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let policy = &self.agent.policy;
        let Some(live) = r.live_mut() else { return false };
        let dwell = self.dwell(live);
        if dwell >= policy.stale_after {
            let reason = format!(
                "screen unchanged for {} (stale_after {})",
                human(dwell),
                human(policy.stale_after)
            );
            self.end(r, EndedLifecycle::Stalled, LastExit::because(reason));
            return true;
        }
        let due = [
            (Escalation::Triage, policy.triage_after),
            (Escalation::Nudge, policy.nudge_after),
            (Escalation::Warn, policy.warn_after),
        ]
        .into_iter()
        .find(|(_, after)| dwell >= *after)
        .map_or(Escalation::None, |(step, _)| step);
        if due <= live.escalation {
            // At the nudge step, one nudge per dwell: typed once it is safe to type.
            if live.escalation == Escalation::Nudge && !live.ladder_nudged && !read.busy && read.waiting.is_none() {
                return self.ladder_nudge(r, dwell);
            }
            return false;
        }
        let next = match live.escalation {
            Escalation::None => Escalation::Warn,
            Escalation::Warn => Escalation::Nudge,
            Escalation::Nudge | Escalation::Triage | Escalation::Terminate => Escalation::Triage,
        };
        if next <= live.escalation {
            return false;
        }
        live.escalation = next;
        self.step_up(r, read, next, dwell)
    }

    /// Takes the ladder's `next` step; returns whether it acted.
    fn step_up(&mut self, r: &mut AgentRecord, read: &ScreenRead, next: Escalation, dwell: Duration) -> bool {
        let why = format!("screen unchanged for {}", human(dwell));
        match next {
            Escalation::Warn => {
                let nudge_at = human(self.agent.policy.nudge_after);
                self.note(r, format!("warn: {why}; nudge at {nudge_at}"));
                false
            }
            Escalation::Nudge if read.busy || read.waiting.is_some() => {
                self.note(
                    r,
                    format!("nudge step: {why}, but its busy marker is visible; not typed yet"),
                );
                false
            }
            Escalation::Nudge => self.ladder_nudge(r, dwell),
            _ => {
                self.note(r, format!("triage step: {why}"));
                self.triage(r, read, why);
                true
            }
        }
    }

    fn ladder_nudge(&mut self, r: &mut AgentRecord, dwell: Duration) -> bool {
        if let Some(live) = r.live_mut() {
            live.ladder_nudged = true;
        }
        let reason = format!(
            "escalation nudge: screen unchanged for {} (triage at {})",
            human(dwell),
            human(self.agent.policy.triage_after)
        );
        self.send(r, Purpose::Nudge, reason);
        true
    }
}
