//! One journal record as a line for a person, for `vigil log`, `vigil watch` and the
//! dashboard's event log. Formats only.

use crate::engine::gap::{Gap, Jump, Unseen, Unwatched};
use crate::engine::time::human;
use crate::engine::{Action, Episode, Event, Purpose, TriageOutcome, TriageResult, What};
use crate::store::Entry;
use crate::store::outbox::{Delivery, DeliveryOutcome};
use crate::store::record::{Check, Checkpoint, Failure, Record};

/// Who an agent-and-incarnation record is about: "backend #3".
fn who(agent: &str, incarnation: impl std::fmt::Display) -> String {
    format!("{agent} #{incarnation}")
}

/// One journal record as a line for a person; `None` for records only machines need.
pub fn record_line(entry: &Entry, full_time: bool) -> Option<String> {
    let t = if full_time {
        entry.t.to_string()
    } else {
        entry.t.clock()
    };
    let line = match &entry.record {
        Record::Event(e) => event_line(&t, e),
        Record::Intent { action, .. } => intent_line(&t, action),
        Record::Notify {
            agent,
            incarnation,
            episode: Episode::Resolved,
            reason,
            ..
        } => format!("{t} {} resolved: {reason}", who(agent.as_str(), incarnation.0)),
        Record::Notify {
            agent,
            incarnation,
            reason,
            ..
        } => format!("{t} {} NEEDS A HUMAN: {reason}", who(agent.as_str(), incarnation.0)),
        Record::Notified(d) => delivery_line(&t, d),
        Record::Failed(Failure { id, error, .. }) => {
            format!("{t} ✗ action {} failed: {error}", id.as_deref().unwrap_or(""))
        }
        Record::Warning { message } => format!("{t} warning: {message}"),
        Record::Signal(n) => format!("{t} {}", n.reason),
        Record::Limits { reason, .. } => format!("{t} {reason}"),
        Record::Host(h) => format!("{t} {}", h.reason),
        Record::Note { agent, reason } => format!("{t} {agent}: {reason}"),
        Record::Command { request, .. } => {
            format!("{t} command from inbox: {} {}", request.verb(), request.agent())
        }
        Record::LetterRefused {
            letter,
            request,
            reason,
            ..
        } => format!(
            "{t} letter {letter} ({} {}) not obeyed: {reason}",
            request.verb(),
            request.agent()
        ),
        Record::LetterSetAside { file, aside, reason } => {
            format!("{t} inbox file {file} {reason}; moved to {}", aside.display())
        }
        Record::Answered(a) => format!(
            "{t} answered {} {}: {} — {}",
            a.request.verb(),
            a.request.agent(),
            a.outcome.as_str(),
            a.reason
        ),
        Record::Triage {
            agent,
            incarnation,
            command,
            reason,
        } => format!(
            "{t} {} → triage: asked `{}` ({reason})",
            who(agent.as_str(), incarnation.0),
            command.join(" ")
        ),
        Record::Triaged(TriageResult {
            agent,
            incarnation,
            outcome,
        }) => {
            let said = match outcome {
                TriageOutcome::Answered(a) => format!("{} — {}", a.verdict, a.reason),
                TriageOutcome::Failed { why } => format!("no usable answer: the command {why}"),
            };
            format!("{t} {} triage answer: {said}", who(agent.as_str(), incarnation.0))
        }
        Record::Checkpoint(Checkpoint::Written {
            agent,
            incarnation,
            path,
            ..
        }) => format!(
            "{t} {} checkpoint written to {}",
            who(agent.as_str(), incarnation.0),
            path.display()
        ),
        Record::Checkpoint(Checkpoint::Mind { .. }) => {
            format!("{t} journal rotated: it opens with every agent's record")
        }
        Record::Claimed {
            pid,
            epoch,
            role,
            project,
        } => format!(
            "{t} vigil pid {pid} (`vigil {}`) owns project {project} (epoch {epoch})",
            role.as_str()
        ),
        Record::Check(Check { checker, message, .. }) => format!("{t} check (pid {checker}): {message}"),
        Record::Reloaded(reload) => format!("{t} {}", reload.message),
        Record::Released { pid, epoch } => {
            format!("{t} vigil pid {pid} stopped (epoch {epoch}); the agents keep running")
        }
        Record::Gap(gap) => format!("{t} {}", gap_words(gap)),
        Record::Reaped {
            agent,
            incarnation,
            reason,
            ..
        } => format!("{t} {}: {reason}", who(agent.as_str(), incarnation.0)),
        Record::Record { .. } | Record::Done { .. } | Record::Reconciled { .. } => return None,
    };
    // Reasons quote agents' last words, triage answers and names from files: data.
    Some(super::shown(&line).into_owned())
}

/// "vigil was not watching for 2h (…); timers restarted", and what the wall clock did.
fn gap_words(gap: &Gap) -> String {
    let mut said = Vec::new();
    if let Some(jump) = gap.jump {
        let (way, by) = match jump {
            Jump::Forward { by } => ("forward", by),
            Jump::Back { by } => ("back", by),
        };
        said.push(format!(
            "the wall clock jumped {way} {}; recorded times moved with it, so no duration counts the jump",
            human(by)
        ));
    }
    if let Some(Unwatched { for_, cause }) = gap.unwatched {
        let why = match cause {
            Unseen::Asleep => "the machine was asleep",
            Unseen::Paused => "vigil was stopped or starved of CPU",
            Unseen::NoOwner => "no vigil owned the project",
        };
        said.push(format!(
            "vigil was not watching for {} ({why}); timers restarted",
            human(for_)
        ));
    }
    said.join("; ")
}

fn event_line(t: &str, e: &Event) -> String {
    let what = match &e.what {
        What::Lifecycle(to) => format!("is {}", to.as_str()),
        What::Activity(to) => format!("is {}", to.as_str().replace('_', " ")),
        What::Adopted => "adopted".into(),
        What::Held => "held".into(),
        What::Stray => "stray session".into(),
        What::OffScreen(o) if o.working => "working off-screen".into(),
        What::OffScreen(_) => "tree quiet".into(),
        What::Deferred(_) => "deferred".into(),
        What::Note => "note".into(),
    };
    format!("{t} {} {what}: {}", who(&e.agent, e.incarnation.0), e.reason)
}

fn delivery_line(t: &str, d: &Delivery) -> String {
    let about = match &d.agent {
        Some(agent) => format!("{} about {agent}", d.event.as_str()),
        None => d.event.as_str().to_owned(),
    };
    let how = match &d.outcome {
        DeliveryOutcome::Delivered => "delivered".to_owned(),
        DeliveryOutcome::Skipped { why } => format!("skipped: {why}"),
        DeliveryOutcome::Failed {
            error,
            attempt,
            retry_in_s,
        } => format!("failed (attempt {attempt}): {error}; trying again in {retry_in_s}s"),
        DeliveryOutcome::GaveUp { error, attempt } => format!("gave up after {attempt} attempts: {error}"),
    };
    format!("{t} notice {} ({about}) via {}: {how}", d.id, d.channel)
}

fn intent_line(t: &str, action: &Action) -> String {
    let verb = match action {
        Action::Start { .. } => "start".to_owned(),
        Action::Kill { .. } => "kill".to_owned(),
        Action::Send { text, purpose, .. } => match purpose {
            Purpose::Resume => format!("resume (types {text:?})"),
            Purpose::Handoff => format!("handoff (types {text:?})"),
            Purpose::Nudge => format!("nudge (types {text:?})"),
        },
        Action::Notify { .. } => "notify".to_owned(),
        Action::Triage { .. } => "triage".to_owned(),
        Action::Checkpoint { .. } => "checkpoint".to_owned(),
    };
    let (agent, incarnation) = match action {
        Action::Start { agent, incarnation, .. }
        | Action::Kill { agent, incarnation, .. }
        | Action::Send { agent, incarnation, .. }
        | Action::Notify { agent, incarnation, .. }
        | Action::Triage { agent, incarnation, .. }
        | Action::Checkpoint { agent, incarnation, .. } => (agent, incarnation),
    };
    format!(
        "{t} {} → {verb}: {}",
        who(agent.as_str(), incarnation.0),
        action.reason()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of a journal written by vigil 0.1 reads as a known record, and every
    /// record a person should see renders.
    #[test]
    fn every_line_of_the_v1_journal_renders() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/journal.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let mut shown = 0;
        for line in text.lines() {
            let entry = Entry::parse(line).unwrap_or_else(|| panic!("does not parse: {line}"));
            match record_line(&entry, true) {
                Some(l) => {
                    assert!(l.starts_with(&entry.t.to_string()), "{l}");
                    shown += 1;
                }
                None => assert!(
                    matches!(
                        entry.record,
                        Record::Record { .. } | Record::Done { .. } | Record::Reconciled { .. }
                    ),
                    "{line}"
                ),
            }
        }
        assert!(shown > 20, "{shown}");
    }

    #[test]
    fn a_hostile_triage_answer_is_shown_with_its_escape_sequences_escaped() {
        use crate::engine::{AgentName, Answer, Incarnation, Time, VerdictKind};
        let entry = Entry {
            t: Time::from_millis(0),
            record: Record::Triaged(TriageResult {
                agent: AgentName::new("a").unwrap(),
                incarnation: Incarnation(1),
                outcome: TriageOutcome::Answered(Answer {
                    verdict: VerdictKind::Continue,
                    reason: "\u{1b}]0;pwned\u{7}\u{1b}[2Jfine".into(),
                }),
            }),
        };
        let line = record_line(&entry, false).unwrap();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2Jfine"), "{line}");
    }
}
