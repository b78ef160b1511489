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

/// The built-in triager: what the screen shows, judged the way a person glancing at
/// the pane would.
pub fn rules(read: &ScreenRead, unchanged_for: Duration) -> Answer {
    let (verdict, reason) = if read.waiting.is_some() {
        (VerdictKind::Continue, "a dialog waits for a human".to_owned())
    } else if read.rate_limit.is_some() {
        (VerdictKind::Continue, "a rate limit is on screen".to_owned())
    } else if read.busy {
        (
            VerdictKind::Continue,
            "its busy marker is visible: it is still working".to_owned(),
        )
    } else if read.prompt {
        (
            VerdictKind::Nudge,
            format!("it sits at its prompt, unchanged for {}", human(unchanged_for)),
        )
    } else {
        (
            VerdictKind::Restart,
            format!(
                "no prompt and no busy marker, unchanged for {}: hung",
                human(unchanged_for)
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
            waiting: None,
            busy: false,
            prompt: false,
            blank: false,
        }
    }

    #[test]
    fn the_rules_read_the_screen_like_a_person() {
        let long = Duration::from_secs(1200);
        assert_eq!(rules(&read(), long).verdict, VerdictKind::Restart);
        let at_prompt = ScreenRead { prompt: true, ..read() };
        assert_eq!(rules(&at_prompt, long).verdict, VerdictKind::Nudge);
        let busy = ScreenRead {
            busy: true,
            prompt: true,
            ..read()
        };
        assert_eq!(rules(&busy, long).verdict, VerdictKind::Continue);
        let dialog = ScreenRead {
            waiting: Some("Do you trust this folder?".into()),
            ..read()
        };
        assert_eq!(rules(&dialog, long).verdict, VerdictKind::Continue);
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
