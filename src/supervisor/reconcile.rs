//! Settling what a dead owner left half-done: each intent without an outcome is
//! judged by what tmux shows (its tagged session exists, its session is gone) and
//! marked done, redone or abandoned, with its reason. Typing is never repeated.

use super::{Records, Supervisor};
use crate::adapters::tmux::{Pane, Tmux};
use crate::engine::{self, Action, AgentName, Incarnation, Time};
use crate::store::record::Settled;
use crate::store::{Record, StoreError};

impl<T: Tmux> Supervisor<T> {
    /// Settles each intent a dead owner left without an outcome, by what tmux shows: a
    /// start whose tagged session exists is done; a start the record still waits for
    /// is redone; a kill whose session is gone is done, else redone; typing is never
    /// repeated. Each answer is journaled with its reason.
    pub(super) fn reconcile(&mut self, now: Time) -> Result<Records, StoreError> {
        let open = self.journal.open_intents()?;
        let mut records = Records::new();
        if open.is_empty() {
            return Ok(records);
        }
        let panes = match self.tmux.list_panes() {
            Ok(p) => p,
            Err(e) => {
                let message = format!(
                    "cannot reconcile {} open intent(s): {e}; left for the next owner",
                    open.len()
                );
                records.push(self.journal.append(now, Record::Warning { message })?);
                return Ok(records);
            }
        };
        let run = self.fleet.run.clone();
        for (id, action) in open {
            let tagged = |agent: &AgentName, inc: Incarnation| {
                panes.iter().any(|p| {
                    p.is_ours(&run) && p.agent.as_deref() == Some(agent.as_str()) && p.incarnation == Some(inc.0)
                })
            };
            let (outcome, reason) = match &action {
                Action::Start { agent, incarnation, .. } if tagged(agent, *incarnation) => {
                    (Settled::Done, "its tagged session exists".to_owned())
                }
                Action::Start { agent, incarnation, .. } => {
                    let awaited =
                        self.mind.agents.get(agent).is_some_and(|r| {
                            r.incarnation == *incarnation && r.lifecycle() == engine::Lifecycle::Booting
                        });
                    if awaited {
                        self.redo(&action, &panes, now, &mut records)?
                    } else {
                        (Settled::Abandoned, "the record has moved past it".to_owned())
                    }
                }
                Action::Kill { agent, incarnation, .. } if !tagged(agent, *incarnation) => {
                    (Settled::Done, "its session is gone".to_owned())
                }
                Action::Kill { .. } => self.redo(&action, &panes, now, &mut records)?,
                Action::Send { .. } | Action::Notify { .. } => (
                    Settled::Abandoned,
                    "typing twice is worse than not at all; the engine decides again".to_owned(),
                ),
                Action::Triage { .. } | Action::Checkpoint { .. } => (
                    Settled::Abandoned,
                    "not a change to tmux; the engine decides again".to_owned(),
                ),
            };
            let settled = Record::Reconciled {
                id,
                outcome,
                reason,
                action,
            };
            records.push(self.journal.append(now, settled)?);
        }
        records.extend(self.persist(now)?);
        Ok(records)
    }

    /// Carries out a dead owner's action again; a failure goes to the engine.
    fn redo(
        &mut self,
        action: &Action,
        panes: &[Pane],
        now: Time,
        records: &mut Records,
    ) -> Result<(Settled, String), StoreError> {
        match self.execute(action, panes) {
            Ok(actual) => {
                if let Some(note) = actual.and_then(|a| super::act::renamed(action, &a)) {
                    records.push(self.journal.append(now, note)?);
                }
                Ok((Settled::Redone, "it had not happened; done now".to_owned()))
            }
            Err(error) => {
                records.extend(self.execution_failed(action, &error, now)?);
                Ok((Settled::Failed, format!("redoing it failed: {error}")))
            }
        }
    }
}
