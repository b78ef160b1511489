//! Triage: asking the triage command (or the built-in rules) what to do about a stuck
//! incarnation, and carrying out its verdict.

use super::*;
use crate::engine::triage::rules;

impl Ctx<'_> {
    /// Asks the triage command, or lets the built-in rules decide at once.
    pub(super) fn triage(&mut self, r: &mut AgentRecord, read: &ScreenRead, why: String) {
        if self.agent.policy.triage.is_some() {
            if r.triage_since.is_none() {
                r.triage_since = Some(self.now);
                r.reason = format!("triage: asked the triage command ({why})");
                self.out.actions.push(Action::Triage {
                    agent: self.agent.name.clone(),
                    incarnation: r.incarnation,
                    session: r.session.clone(),
                    reason: why,
                });
            }
            return;
        }
        let answer = rules(read, self.now.since(r.last_change));
        self.verdict(r, read, answer, "built-in rules");
    }

    /// Applies a triage answer that arrived for this incarnation, or the rules when the
    /// command failed or its answer is overdue. Returns whether it acted.
    pub(super) fn triaged(
        &mut self,
        r: &mut AgentRecord,
        result: Option<&TriageResult>,
        read: Option<&ScreenRead>,
    ) -> bool {
        let Some(asked) = r.triage_since else { return false };
        let result = result.filter(|t| t.incarnation == r.incarnation);
        let overdue = self.now.since(asked) > self.agent.policy.triage_timeout + TRIAGE_GRACE;
        if result.is_none() && !overdue {
            return false;
        }
        r.triage_since = None;
        if !r.lifecycle.is_live() {
            return false;
        }
        let Some(read) = read else {
            self.note(
                r,
                "triage answer set aside: the screen could not be read this poll".into(),
            );
            return false;
        };
        match result.map(|t| &t.outcome) {
            Some(TriageOutcome::Answered(answer)) => {
                self.verdict(r, read, answer.clone(), "triage command");
            }
            Some(TriageOutcome::Failed { why }) => {
                let answer = rules(read, self.now.since(r.last_change));
                self.verdict(r, read, answer, &format!("built-in rules, as the triage command {why}"));
            }
            None => {
                let answer = rules(read, self.now.since(r.last_change));
                let by = format!(
                    "built-in rules, as the triage command's answer never came (asked at {})",
                    self.clock(asked)
                );
                self.verdict(r, read, answer, &by);
            }
        }
        true
    }

    pub(super) fn verdict(&mut self, r: &mut AgentRecord, read: &ScreenRead, answer: Answer, by: &str) {
        let Answer { verdict, reason } = answer;
        let said = format!("triage ({by}): {verdict} — {reason}");
        match verdict {
            VerdictKind::Continue => {
                r.reason = format!("{said}; left running");
                self.note(r, said);
            }
            VerdictKind::Nudge if read.waiting.is_some() || read.busy => {
                let why = if read.busy {
                    "its busy marker is visible"
                } else {
                    "a dialog waits for a human"
                };
                r.reason = format!("{said}; not typed: {why}");
                self.note(r, r.reason.clone());
            }
            VerdictKind::Nudge => {
                self.note(r, said.clone());
                self.send(r, Purpose::Nudge, said);
            }
            VerdictKind::Restart => {
                r.escalation = Escalation::Terminate;
                self.end(r, Lifecycle::Stalled, LastExit::because(said));
            }
            VerdictKind::Kill => {
                r.escalation = Escalation::Terminate;
                self.end(r, Lifecycle::Stalled, LastExit::because(said.clone()));
                self.stopped.insert(self.agent.name.clone());
                let name = &self.agent.name;
                r.reason = format!("{said}; held stopped: `vigil up {name}` starts it again");
                self.out.actions.push(Action::Kill {
                    agent: name.clone(),
                    incarnation: r.incarnation,
                    session: r.session.clone(),
                    reason: said,
                });
            }
        }
    }
}
