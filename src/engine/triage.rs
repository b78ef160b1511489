//! Triage: the verdict on an agent that has sat unchanged long enough to climb to the
//! ladder's triage step. A configured command may answer (the supervisor runs it and
//! hands its answer in); otherwise, or when it fails, the built-in rules below decide
//! from what the screen shows. No IO here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mind::{AgentName, Incarnation};
use super::screen::ScreenRead;
use super::time::human;

/// What to do about a stuck agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Leave it: it is working, or waiting on something that will pass.
    Continue,
    /// Type the nudge text.
    Nudge,
    /// Give up on this incarnation: checkpoint, then a new one with a handoff.
    Restart,
    /// Give up on it and keep it stopped until `vigil up`.
    Kill,
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerdictKind::Continue => "continue",
            VerdictKind::Nudge => "nudge",
            VerdictKind::Restart => "restart",
            VerdictKind::Kill => "kill",
        })
    }
}

/// The one answer a triage command may give, parsed strictly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub verdict: VerdictKind,
    pub reason: String,
}

/// How a triage of one incarnation ended, handed to the engine by the supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageResult {
    pub agent: AgentName,
    pub incarnation: Incarnation,
    pub outcome: TriageOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TriageOutcome {
    Answered(Answer),
    /// Timed out, exited non-zero, or printed something that is not an answer; the
    /// rules decide instead.
    Failed {
        why: String,
    },
}

/// How long a screen has sat unchanged, in polls and in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Still {
    pub checks: u32,
    pub for_: Duration,
}

/// Polls within which a changed screen means the agent is working, whatever it shows.
pub const RECENT_CHECKS: u32 = 3;

/// The built-in triager: what the screen did and what it shows, judged the way a person
/// glancing at the pane would. Only a screen still for `hung_after` (the ladder's
/// triage dwell) with neither a busy marker nor a prompt is called hung.
pub fn rules(read: &ScreenRead, still: Still, hung_after: Duration) -> Answer {
    let (verdict, reason) = if read.waiting.is_some() {
        (VerdictKind::Continue, "a dialog waits for a human".to_owned())
    } else if read.rate_limit.is_some() {
        (VerdictKind::Continue, "a rate limit is on screen".to_owned())
    } else if still.checks < RECENT_CHECKS {
        (
            VerdictKind::Continue,
            format!("its screen changed {} ago: it is working", human(still.for_)),
        )
    } else if read.busy {
        (
            VerdictKind::Continue,
            "its busy marker is visible: it is still working".to_owned(),
        )
    } else if read.prompt {
        (
            VerdictKind::Nudge,
            format!("it sits at its prompt, unchanged for {}", human(still.for_)),
        )
    } else if still.for_ >= hung_after {
        (
            VerdictKind::Restart,
            format!(
                "no prompt and no busy marker, unchanged for {}: hung",
                human(still.for_)
            ),
        )
    } else {
        (
            VerdictKind::Continue,
            format!(
                "no prompt and no busy marker, but still only for {} (hung after {})",
                human(still.for_),
                human(hung_after)
            ),
        )
    };
    Answer { verdict, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read() -> ScreenRead {
        ScreenRead {
            hash: String::new(),
            rate_limit: None,
            rate_limit_more: None,
            limit_over: None,
            waiting: None,
            busy: false,
            prompt: false,
            blank: false,
        }
    }

    #[test]
    fn the_rules_read_the_screen_like_a_person() {
        let dwell = Duration::from_secs(1200);
        let long = Still {
            checks: 240,
            for_: dwell,
        };
        assert_eq!(rules(&read(), long, dwell).verdict, VerdictKind::Restart);
        let at_prompt = ScreenRead { prompt: true, ..read() };
        assert_eq!(rules(&at_prompt, long, dwell).verdict, VerdictKind::Nudge);
        let busy = ScreenRead {
            busy: true,
            prompt: true,
            ..read()
        };
        assert_eq!(rules(&busy, long, dwell).verdict, VerdictKind::Continue);
        let dialog = ScreenRead {
            waiting: Some(crate::engine::screen::Waiting {
                line: "Do you trust this folder?".into(),
                rule: crate::engine::screen::WaitingRule::Pattern,
            }),
            ..read()
        };
        assert_eq!(rules(&dialog, long, dwell).verdict, VerdictKind::Continue);
    }

    #[test]
    fn a_screen_that_just_changed_is_working_and_a_short_stillness_is_not_hung() {
        let dwell = Duration::from_secs(1200);
        let printing = Still {
            checks: 0,
            for_: Duration::ZERO,
        };
        let answer = rules(&read(), printing, dwell);
        assert_eq!(answer.verdict, VerdictKind::Continue, "{}", answer.reason);
        assert!(answer.reason.contains("it is working"), "{}", answer.reason);
        let at_prompt = ScreenRead { prompt: true, ..read() };
        assert_eq!(rules(&at_prompt, printing, dwell).verdict, VerdictKind::Continue);
        let a_while = Still {
            checks: 12,
            for_: Duration::from_secs(60),
        };
        assert_eq!(rules(&read(), a_while, dwell).verdict, VerdictKind::Continue);
    }

    #[test]
    fn answers_are_parsed_strictly() {
        let ok: Answer = serde_json::from_str(r#"{"verdict": "nudge", "reason": "idle"}"#).unwrap();
        assert_eq!(ok.verdict, VerdictKind::Nudge);
        for bad in [
            r#"{"verdict": "explode", "reason": "x"}"#,
            r#"{"verdict": "nudge"}"#,
            r#"{"verdict": "nudge", "reason": "x", "extra": 1}"#,
            r#"nudge"#,
        ] {
            assert!(serde_json::from_str::<Answer>(bad).is_err(), "{bad}");
        }
    }
}
