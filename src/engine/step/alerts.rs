//! Telling the user: an [`Alert`] raised once per episode (a lasting one is written in
//! the agent's record while it lasts), and a `resolved` notice when the condition that
//! raised it has cleared. Momentary alerts (a termination) are raised every time.

use super::Ctx;
use crate::engine::limit::LimitKind;
use crate::engine::mind::{AgentRecord, Hold, Wait};
use crate::engine::{Action, Alert, Episode};

impl Ctx<'_> {
    /// Tells the user that `alert` began for this incarnation, unless its episode is
    /// open already.
    pub(super) fn raise(&mut self, r: &mut AgentRecord, alert: Alert, reason: String) {
        if alert.lasts() && !r.alerts.insert(alert) {
            return;
        }
        self.notify(r, alert, Episode::Raised, reason);
    }

    /// Ends the episode of every open alert whose condition no longer holds.
    pub(super) fn settle_alerts(&mut self, r: &mut AgentRecord) {
        let over: Vec<Alert> = r.alerts.iter().copied().filter(|a| !self.holds(r, *a)).collect();
        for alert in over {
            r.alerts.remove(&alert);
            let reason = match alert {
                Alert::Waiting => "the dialog is gone from the screen".to_owned(),
                Alert::LimitNoReset => "the limit that needed a human is no longer on screen".to_owned(),
                Alert::CrashLoop => "the crash-loop hold is over".to_owned(),
                Alert::FleetCapped => "the fleet restart cap has room again; restarting resumes".to_owned(),
                other => format!("{other} is over"),
            };
            self.notify(r, alert, Episode::Resolved, reason);
        }
    }

    /// Whether the condition behind a lasting alert still holds.
    fn holds(&self, r: &AgentRecord, alert: Alert) -> bool {
        match alert {
            Alert::Waiting => r.activity() == Some(crate::engine::Activity::Waiting),
            Alert::LimitNoReset => {
                r.rate_limit.as_ref().is_some_and(|rl| rl.kind == LimitKind::NoReset)
                    && r.live().is_none_or(|l| l.limit_visible)
            }
            Alert::CrashLoop => matches!(
                r.hold(),
                Some(h @ Hold::Until { cause: Wait::CrashLoop { .. }, .. }) if h.holds_at(self.now)
            ),
            Alert::FleetCapped => self.restarts.capped,
            Alert::Terminated | Alert::SpawnFailed | Alert::OwnerReplaced | Alert::HostFailure | Alert::Degraded => {
                false
            }
        }
    }

    fn notify(&mut self, r: &AgentRecord, alert: Alert, episode: Episode, reason: String) {
        self.out.actions.push(Action::Notify {
            agent: self.agent.name.clone(),
            incarnation: r.incarnation,
            alert,
            episode,
            reason,
        });
    }
}
