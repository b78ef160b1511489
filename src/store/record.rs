//! What one journal line says: an [`Entry`] is the time it was written plus one typed
//! [`Record`], tagged on disk by `kind` beside its fields (`{"t": …, "kind": …, …}`),
//! so a line written by vigil 0.1 reads as the same variant today. Types only: writing
//! and reading lines is the journal's job, words for people are `present`'s.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::answer::Answer;
use super::inbox::{LetterId, Refusal};
use super::owner::Role;
use crate::engine::gap::Gap;
use crate::engine::signal::{Ignored, Said, Source};
use crate::engine::{
    Action, AgentName, AgentRecord, Alert, Command, Episode, Event, HostEvent, Incarnation, Mind, Time, TriageResult,
};

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub t: Time,
    #[serde(flatten)]
    pub record: Record,
}

/// Every kind of line the journal holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A process took the run.
    Claimed {
        pid: u32,
        epoch: u64,
        role: Role,
        project: String,
    },
    /// The owner let the run go; the agents keep running.
    Released { pid: u32, epoch: u64 },
    /// Something the user must hear (a quarantined snapshot, an unreadable screen).
    Warning { message: String },
    /// A remark about an agent that is no engine decision (a stop forgotten by `always`).
    Note { agent: AgentName, reason: String },
    /// A user's command, as the owner took it (from the inbox letter `letter`).
    Command {
        from: CommandSource,
        request: Command,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        letter: Option<LetterId>,
    },
    /// An inbox letter that was not obeyed: too old, or from the future.
    LetterRefused {
        letter: LetterId,
        request: Command,
        sent: Time,
        refusal: Refusal,
        reason: String,
    },
    /// An inbox file that is no letter, moved aside to `aside`.
    LetterSetAside {
        file: String,
        aside: PathBuf,
        reason: String,
    },
    /// The owner's answer to an inbox letter (also left in `answers/` for its sender).
    Answered(Answer),
    /// What the engine noticed or decided, with its reason.
    Event(Event),
    /// A host failure (tmux's server lost, a reboot): one line for the whole fleet.
    Host(HostEvent),
    /// An agent's record, whenever it changed materially (what rebuild replays).
    Record {
        agent: AgentName,
        record: Box<AgentRecord>,
        stopped: bool,
    },
    /// Either the whole Mind opening a rotated journal, or a checkpoint file written.
    Checkpoint(Checkpoint),
    /// An action about to change tmux, on disk before it runs.
    Intent { id: String, action: Action },
    /// The intent `id` was carried out.
    Done { id: String },
    /// An action failed: an intent (by `id`) or an aside action (carried whole).
    Failed(Failure),
    /// An intent a dead owner left open, settled by a new one.
    Reconciled {
        id: String,
        outcome: Settled,
        reason: String,
        action: Action,
    },
    /// A new config was taken while running.
    Reloaded(Reload),
    /// A triage command was started.
    Triage {
        agent: AgentName,
        incarnation: Incarnation,
        command: Vec<String>,
        reason: String,
    },
    /// A triage ended, with its answer or why there is none.
    Triaged(TriageResult),
    /// A human is needed.
    Notify {
        #[serde(default)]
        action: NotifyTag,
        agent: AgentName,
        incarnation: Incarnation,
        /// What kind of moment it is; absent on lines written before vigil knew.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alert: Option<Alert>,
        #[serde(default)]
        episode: Episode,
        reason: String,
    },
    /// How one delivery of a notice through one channel went.
    Notified(super::outbox::Delivery),
    /// One step of the external watchdog (`vigil check`), labelled as the checker's.
    Check(Check),
    /// The wall clock jumped, or time passed that vigil did not watch: every duration
    /// was re-based at this pass (`engine::gap`). One line for the fleet.
    Gap(Gap),
    /// Processes of a killed session that outlived it (they ignored SIGHUP or left with
    /// `setsid`), recorded under its pane before the kill and ended by vigil.
    Reaped {
        agent: AgentName,
        incarnation: Incarnation,
        processes: Vec<ReapedProcess>,
        reason: String,
    },
    /// A signal letter from an agent's own hook (`vigil hook`): taken as evidence, or
    /// ignored with why.
    Signal(SignalNote),
    /// What an agent's structured limit source (Claude Code's statusLine, a Codex
    /// rollout file) said, journaled when it changed: its windows as fields.
    Limits {
        report: crate::engine::resets::Reported,
        reason: String,
    },
}

/// What the owner made of one signal letter, with the facts as fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalNote {
    /// As the letter named it (it may be no agent of the config).
    pub agent: String,
    pub incarnation: Incarnation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<Said>,
    /// When the hook ran; absent for a file that is no letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Time>,
    /// Its age when the owner took it, in milliseconds.
    pub age_ms: u64,
    /// Why it was not taken; absent when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<Ignored>,
    pub reason: String,
}

/// One process vigil ended after its session was killed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapedProcess {
    pub pid: u32,
    pub name: String,
    /// SIGTERM was enough, or SIGKILL after the grace.
    pub signal: crate::adapters::proctree::Signalled,
}

/// Where a command came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandSource {
    Inbox,
}

/// The two records of kind `checkpoint`, told apart by their fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checkpoint {
    /// The whole Mind, first in a journal after rotation: rebuild starts from it.
    Mind { mind: Box<Mind> },
    /// Where a stuck incarnation was, written to `path` before it is replaced.
    Written {
        agent: AgentName,
        incarnation: Incarnation,
        path: PathBuf,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The intent that failed; absent for an action that changes nothing in tmux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The action itself, when it had no intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    pub error: String,
}

/// How an intent left open by a dead owner was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// tmux shows it happened.
    Done,
    /// It had not happened, and was carried out now.
    Redone,
    /// Carrying it out now failed.
    Failed,
    /// Not redone: the engine decides again.
    Abandoned,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reload {
    pub path: PathBuf,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// One entry per changed agent: its name and the keys that changed, in words.
    pub changed: Vec<String>,
    pub poll_interval_ms: u64,
    pub message: String,
}

/// The `"action": "notify"` a notify record has always carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyTag {
    #[default]
    Notify,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub step: CheckStep,
    /// The pid of the `vigil check` that wrote it.
    pub checker: u32,
    pub message: String,
    /// The owner it is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// What the watchdog did at one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStep {
    /// Its verdict on the recorded owner.
    Found,
    /// The recorded pid names another process: not signalled.
    Spared,
    Term,
    Exited,
    Kill,
    Killed,
    Survived,
    /// A new owner was started in the old one's place.
    Restarted,
    RestartFailed,
}

impl Record {
    /// The agent the record is about, wherever its kind keeps it.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Record::Note { agent, .. }
            | Record::Record { agent, .. }
            | Record::Triage { agent, .. }
            | Record::Notify { agent, .. }
            | Record::Reaped { agent, .. }
            | Record::Checkpoint(Checkpoint::Written { agent, .. })
            | Record::Triaged(TriageResult { agent, .. }) => Some(agent.as_str()),
            Record::Event(e) => Some(&e.agent),
            Record::Limits { report, .. } => Some(report.agent.as_str()),
            Record::Signal(n) => Some(&n.agent).filter(|a| !a.is_empty()).map(String::as_str),
            Record::Notified(d) => d.agent.as_deref(),
            Record::Command { request, .. }
            | Record::LetterRefused { request, .. }
            | Record::Answered(Answer { request, .. }) => Some(request.agent().as_str()),
            Record::Intent { action, .. }
            | Record::Reconciled { action, .. }
            | Record::Failed(Failure {
                action: Some(action), ..
            }) => Some(action.agent().as_str()),
            Record::Claimed { .. }
            | Record::Released { .. }
            | Record::Warning { .. }
            | Record::LetterSetAside { .. }
            | Record::Checkpoint(Checkpoint::Mind { .. })
            | Record::Done { .. }
            | Record::Failed(_)
            | Record::Reloaded(_)
            | Record::Host(_)
            | Record::Check(_)
            | Record::Gap(_) => None,
        }
    }

    /// The reason a decision about an agent gave, for records that carry one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Record::Note { reason, .. }
            | Record::Triage { reason, .. }
            | Record::Notify { reason, .. }
            | Record::Reaped { reason, .. }
            | Record::Reconciled { reason, .. }
            | Record::Checkpoint(Checkpoint::Written { reason, .. }) => Some(reason),
            Record::Event(e) => Some(&e.reason),
            Record::Host(h) => Some(&h.reason),
            Record::Intent { action, .. }
            | Record::Failed(Failure {
                action: Some(action), ..
            }) => Some(action.reason()),
            _ => None,
        }
    }

    /// Whether this is a failed action.
    pub fn is_failure(&self) -> bool {
        matches!(self, Record::Failed(_))
    }
}

impl Entry {
    pub fn new(t: Time, record: Record) -> Self {
        Self { t, record }
    }

    /// The line as it is written: compact JSON, keys in order (as vigil 0.1 wrote them).
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_value(self).map(|v| v.to_string())
    }

    /// Parses one line; `None` for a line that is no known record (a future kind, a
    /// torn line, garbage).
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_line_written_before_alerts_still_reads() {
        let old = r#"{"t":"2026-01-01T00:00:00Z","kind":"notify","action":"notify","agent":"a","incarnation":1,"reason":"dialog"}"#;
        let entry = Entry::parse(old).unwrap();
        let Record::Notify { alert, episode, .. } = entry.record else {
            panic!("not a notify: {entry:?}")
        };
        assert_eq!((alert, episode), (None, Episode::Raised));
    }

    #[test]
    fn a_notify_line_carries_its_alert_and_episode() {
        let record = Record::Notify {
            action: NotifyTag::Notify,
            agent: AgentName::new("a").unwrap(),
            incarnation: Incarnation(2),
            alert: Some(Alert::CrashLoop),
            episode: Episode::Resolved,
            reason: "ok again".into(),
        };
        let line = Entry::new(Time::from_millis(0), record.clone()).to_line().unwrap();
        assert!(line.contains(r#""alert":"crash_loop""#), "{line}");
        assert!(line.contains(r#""episode":"resolved""#), "{line}");
        assert_eq!(Entry::parse(&line).unwrap().record, record);
    }
}
