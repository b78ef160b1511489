//! Triage: asking the triage command (or the built-in rules) what to do about a stuck
//! incarnation, and carrying out its verdict.

use std::time::Duration;

use super::Ctx;
use crate::engine::mind::{AgentRecord, EndedLifecycle, LastExit, Live};
use crate::engine::screen::ScreenRead;
use crate::engine::triage::{Answer, Still, TriageOutcome, TriageResult, VerdictKind, rules};
use crate::engine::{Action, Purpose};

/// A triage answer not back this long after the command's own timeout is taken as lost
/// (vigil restarted while it ran); the rules decide.
const TRIAGE_GRACE: Duration = Duration::from_secs(30);

impl Ctx<'_> {
    /// Asks the triage command, or lets the built-in rules decide at once.
    pub(super) fn triage(&mut self, r: &mut AgentRecord, read: &ScreenRead, why: String) {
        let Some(live) = r.live_mut() else { return };
        if self.agent.policy.triage.is_some() {
            if live.triage_since.is_none() {
                live.triage_since = Some(self.now);
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
        let answer = rules(read, self.still(live), self.agent.policy.triage_after);
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
        let incarnation = r.incarnation;
        let Some(live) = r.live_mut() else { return false };
        let Some(asked) = live.triage_since else { return false };
        let result = result.filter(|t| t.incarnation == incarnation);
        let overdue = self.now.since(asked) > self.agent.policy.triage_timeout + TRIAGE_GRACE;
        if result.is_none() && !overdue {
            return false;
        }
        live.triage_since = None;
        let still = self.still(live);
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
                let answer = rules(read, still, self.agent.policy.triage_after);
                self.verdict(r, read, answer, &format!("built-in rules, as the triage command {why}"));
            }
            None => {
                let answer = rules(read, still, self.agent.policy.triage_after);
                let by = format!(
                    "built-in rules, as the triage command's answer never came (asked at {})",
                    self.clock(asked)
                );
                self.verdict(r, read, answer, &by);
            }
        }
        true
    }

    /// How long the incarnation's screen has been still, for the rules.
    fn still(&self, live: &Live) -> Still {
        Still {
            checks: live.unchanged_checks,
            for_: self.now.since(live.last_change),
        }
    }

    fn verdict(&mut self, r: &mut AgentRecord, read: &ScreenRead, answer: Answer, by: &str) {
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
                self.end(r, EndedLifecycle::Stalled, LastExit::because(said));
            }
            VerdictKind::Kill => {
                self.end(r, EndedLifecycle::Stalled, LastExit::because(said.clone()));
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
