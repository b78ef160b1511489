//! Signal letters through a pass: each letter in `signals/` is read strictly, admitted
//! or ignored ([`crate::engine::signal::admit`]: right run, a configured agent, its
//! running incarnation, fresh), journaled either way with the facts and why, and
//! deleted; what was admitted goes to the engine as evidence. Decides nothing else.

use std::time::Duration;

use super::{Records, Supervisor, SupervisorError};
use crate::adapters::tmux::Tmux;
use crate::engine::signal::{self, Ignored, Recognised, Signal};
use crate::engine::{AgentName, Incarnation, Time};
use crate::store::Record;
use crate::store::record::SignalNote;
use crate::store::signals::{SignalLetter, Taken};

impl<T: Tmux> Supervisor<T> {
    /// Takes the waiting signal letters; returns the signals admitted, oldest first.
    pub(super) fn take_signals(&mut self, now: Time, records: &mut Records) -> Result<Vec<Signal>, SupervisorError> {
        let mut admitted = Vec::new();
        for taken in self.store.signals().take()? {
            let note = match taken {
                Taken::Bad { file, why } => SignalNote {
                    agent: String::new(),
                    incarnation: Incarnation(0),
                    source: None,
                    event: None,
                    said: None,
                    sent: None,
                    age_ms: 0,
                    ignored: Some(Ignored::Garbage { what: why.clone() }),
                    reason: format!("signal file {file} ignored: {why}"),
                },
                Taken::Letter(letter) => {
                    let (note, signal) = self.judge(letter, now);
                    admitted.extend(signal);
                    note
                }
            };
            records.push(self.journal.append(now, Record::Signal(note))?);
        }
        Ok(admitted)
    }

    /// One letter: its journal note, and the signal when it is admitted.
    fn judge(&self, letter: SignalLetter, now: Time) -> (SignalNote, Option<Signal>) {
        let incarnation = Incarnation(letter.incarnation);
        let (source, event, heard) = match &letter.heard {
            Recognised::Heard(h) => (Some(h.source), Some(h.event.clone()), Some(h.clone())),
            Recognised::Unmapped { source, event } => (Some(*source), Some(event.clone()), None),
            Recognised::Garbage { .. } => (None, None, None),
        };
        let name = AgentName::new(&letter.agent).filter(|n| self.config.agent(n.as_str()).is_some());
        let verdict = match (&letter.heard, &name) {
            _ if letter.run != self.fleet.run => Err(Ignored::OtherRun),
            (_, None) => Err(Ignored::UnknownAgent {
                agent: letter.agent.chars().take(AgentName::MAX_LEN).collect(),
            }),
            (Recognised::Garbage { why }, _) => Err(Ignored::Garbage { what: why.clone() }),
            (Recognised::Unmapped { event, .. }, _) => Err(Ignored::Unmapped { event: event.clone() }),
            (Recognised::Heard(_), Some(name)) => {
                let fresh = self
                    .config
                    .agent(name.as_str())
                    .map_or(signal::FRESH, |a| a.policy.signal_fresh);
                let running = self
                    .mind
                    .agents
                    .get(name)
                    .filter(|r| r.is_live())
                    .map(|r| r.incarnation);
                signal::admit(incarnation, letter.sent, running, now, fresh)
            }
        };
        let age = now.since(letter.sent);
        let shown = if name.is_some() {
            letter.agent.clone()
        } else {
            letter.agent.escape_default().take(AgentName::MAX_LEN).collect()
        };
        let what = match (&heard, &event) {
            (Some(h), _) => format!("{} {} `{}`", h.source.name(), h.channel(), h.event),
            (None, Some(e)) => format!("`{e}`"),
            (None, None) => "a payload".to_owned(),
        };
        let reason = match &verdict {
            Ok(()) => format!(
                "heard from {shown} {incarnation}: {what}, {} ({} ago)",
                heard.as_ref().map_or("", |h| h.said.as_str()),
                crate::engine::time::human(Duration::from_millis(age.as_millis() as u64))
            ),
            Err(why) => format!("signal from {shown} {incarnation} ignored ({what}): {}", why.words()),
        };
        let note = SignalNote {
            agent: shown,
            incarnation,
            source,
            event,
            said: heard.as_ref().map(|h| h.said.clone()),
            sent: Some(letter.sent),
            age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            ignored: verdict.clone().err(),
            reason,
        };
        let signal = match (verdict, name, heard) {
            (Ok(()), Some(agent), Some(heard)) => Some(Signal {
                agent,
                incarnation,
                at: letter.sent,
                heard,
            }),
            _ => None,
        };
        (note, signal)
    }
}
