//! The escalation ladder for a stuck screen: warn, nudge, triage, terminate, one step
//! per poll at most, each after its dwell.

use super::*;

impl Ctx<'_> {
    /// How long the screen has counted as stuck for the ladder.
    pub(super) fn dwell(&self, r: &AgentRecord) -> Duration {
        let from = r.ladder_from.map_or(r.last_change, |f| f.max(r.last_change));
        self.now.since(from)
    }

    pub(super) fn next_step_words(&self, r: &AgentRecord) -> String {
        let p = &self.agent.policy;
        let next = match r.escalation {
            Escalation::None => Some(("warn", p.warn_after)),
            Escalation::Warn => Some(("nudge", p.nudge_after)),
            Escalation::Nudge => Some(("triage", p.triage_after)),
            Escalation::Triage | Escalation::Terminate => None,
        };
        match next {
            Some((step, at)) if at < p.stale_after => {
                format!("escalation {}, {step} at {}", r.escalation.as_str(), human(at))
            }
            _ => format!("escalation {}", r.escalation.as_str()),
        }
    }

    /// The escalation ladder: one step per poll at most, each after its dwell, up to
    /// terminate at `stale_after`. Returns whether the step acted (typed, asked triage,
    /// or ended the incarnation).
    pub(super) fn climb(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let policy = &self.agent.policy;
        let dwell = self.dwell(r);
        if dwell >= policy.stale_after {
            let reason = format!(
                "screen unchanged for {} (stale_after {})",
                human(dwell),
                human(policy.stale_after)
            );
            r.escalation = Escalation::Terminate;
            self.end(r, Lifecycle::Stalled, LastExit::because(reason));
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
        if due <= r.escalation {
            // At the nudge step, one nudge per dwell: typed once it is safe to type.
            if r.escalation == Escalation::Nudge && !r.ladder_nudged && !read.busy && read.waiting.is_none() {
                return self.ladder_nudge(r, dwell);
            }
            return false;
        }
        let next = match r.escalation {
            Escalation::None => Escalation::Warn,
            Escalation::Warn => Escalation::Nudge,
            Escalation::Nudge | Escalation::Triage | Escalation::Terminate => Escalation::Triage,
        };
        if next <= r.escalation {
            return false;
        }
        r.escalation = next;
        let why = format!("screen unchanged for {}", human(dwell));
        match next {
            Escalation::Warn => {
                self.note(r, format!("warn: {why}; nudge at {}", human(policy.nudge_after)));
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

    pub(super) fn ladder_nudge(&mut self, r: &mut AgentRecord, dwell: Duration) -> bool {
        r.ladder_nudged = true;
        let reason = format!(
            "escalation nudge: screen unchanged for {} (triage at {})",
            human(dwell),
            human(self.agent.policy.triage_after)
        );
        self.send(r, Purpose::Nudge, reason);
        true
    }
}
