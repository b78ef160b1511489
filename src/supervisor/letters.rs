//! Inbox letters through a pass: each is journaled, and deleted only once its pass is
//! on disk (a crash or a full disk never loses one; a new owner skips what the journal
//! says a dead one took), stale ones are refused, and every letter is answered in `answers/`
//! once a pass shows how its command went — at once for most, after the settle time for
//! a start (an agent that dies at once failed), after the verdict for a triage.
//! Decides nothing: outcomes are read from the engine's actions and the Mind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Records, Supervisor, SupervisorError};
use crate::adapters::tmux::Tmux;
use crate::engine::{Action, AgentName, AgentRecord, Command, Incarnation, Purpose, Step, Time, TriageResult};
use crate::store::record::CommandSource;
use crate::store::{Answer, AnswerOutcome as Outcome, Letter, LetterId, Record, Role, Taken, read_journal};
use crate::supervisor::spawn;

/// How long a just-started agent must live before its `up` is answered `started` (as
/// `vigil up` waits when it runs the pass itself).
pub const SETTLE: Duration = Duration::from_millis(500);

/// A letter whose command goes into this pass, with its agent as it was before. Its
/// file goes once the pass has persisted what the command changed.
pub(super) struct Obeyed {
    file: Letter,
    letter: LetterId,
    command: Command,
    before: Option<Incarnation>,
    was_live: bool,
}

impl Obeyed {
    pub(super) fn command(&self) -> &Command {
        &self.command
    }
}

/// A letter whose answer waits for a later pass.
#[derive(Debug)]
pub(super) struct Awaiting {
    letter: LetterId,
    command: Command,
    before: Option<Incarnation>,
    until: Until,
}

#[derive(Debug)]
enum Until {
    /// A start, answered once it has lived this long (or ended).
    Settled(Time),
    /// A triage command asked about this incarnation; answered with its verdict.
    Triaged(Incarnation),
}

/// What one pass did, as far as answers need it.
pub(super) struct Done<'a> {
    /// Every command of the pass, the letters' first, in order.
    pub commands: &'a [Command],
    pub step: &'a Step,
    /// The error of each agent's action that failed.
    pub failures: &'a BTreeMap<AgentName, String>,
    pub triaged: &'a [TriageResult],
}

impl<T: Tmux> Supervisor<T> {
    /// For a new owner: the letters still in the inbox that the journal says a dead
    /// owner already took (it died between journaling one and deleting it), so they are
    /// deleted, not obeyed twice.
    pub(super) fn letters_taken_before(&self) -> Result<BTreeSet<LetterId>, SupervisorError> {
        if self.store.inbox().is_empty() {
            return Ok(BTreeSet::new());
        }
        let taken = read_journal(self.journal.path())?
            .into_iter()
            .filter_map(|e| match e.record {
                Record::Command { letter, .. } => letter,
                Record::LetterRefused { letter, .. } => Some(letter),
                _ => None,
            });
        Ok(taken.collect())
    }

    /// Reads the inbox: journals each letter's command (or its refusal, or that a file
    /// is no letter). A refused letter is deleted then; one to obey stays until its pass
    /// has persisted (a pass that fails takes it again). Returns the letters to obey.
    pub(super) fn take_letters(&mut self, now: Time, records: &mut Records) -> Result<Vec<Obeyed>, SupervisorError> {
        let inbox = self.store.inbox();
        let mut obeyed = Vec::new();
        for taken in inbox.take(now)? {
            match taken {
                Taken::Letter(letter) | Taken::Refused { letter, .. } if self.taken_before.remove(&letter.id) => {
                    let message = format!(
                        "letter {} was taken by an owner that died before deleting it; deleted, not obeyed twice",
                        letter.id
                    );
                    records.push(self.journal.append(now, Record::Warning { message })?);
                    inbox.remove(&letter)?;
                }
                Taken::Letter(letter) => {
                    let request = Record::Command {
                        from: CommandSource::Inbox,
                        request: letter.command.clone(),
                        letter: Some(letter.id.clone()),
                    };
                    records.push(self.journal.append(now, request)?);
                    let rec = self.mind.agents.get(letter.command.agent());
                    obeyed.push(Obeyed {
                        file: letter.clone(),
                        before: rec.map(|r| r.incarnation),
                        was_live: rec.is_some_and(AgentRecord::is_live),
                        letter: letter.id,
                        command: letter.command,
                    });
                }
                Taken::Refused { letter, refusal } => {
                    let reason = refusal.words();
                    let refused = Record::LetterRefused {
                        letter: letter.id.clone(),
                        request: letter.command.clone(),
                        sent: letter.sent,
                        refusal,
                        reason: reason.clone(),
                    };
                    records.push(self.journal.append(now, refused)?);
                    inbox.remove(&letter)?;
                    let answer = Answer::new(letter.id, letter.command, Outcome::Expired, reason);
                    self.answer(answer, now, records)?;
                }
                Taken::SetAside { file, aside, reason } => {
                    let record = Record::LetterSetAside { file, aside, reason };
                    records.push(self.journal.append(now, record)?);
                }
            }
        }
        Ok(obeyed)
    }

    /// After the pass's actions ran: answers the letters it obeyed, and those of earlier
    /// passes that were waiting for it. Only a long-running owner waits for a later pass.
    pub(super) fn answer_letters(
        &mut self,
        obeyed: Vec<Obeyed>,
        done: &Done<'_>,
        now: Time,
        records: &mut Records,
    ) -> Result<(), SupervisorError> {
        for o in &obeyed {
            self.store.inbox().remove(&o.file)?;
        }
        let waits = matches!(self.lock.owner.role, Role::Watch | Role::Tui);
        let mut ready = Vec::new();
        for w in std::mem::take(&mut self.awaiting) {
            let rec = self.mind.agents.get(w.command.agent());
            let due = match w.until {
                Until::Settled(at) => now >= at || !rec.is_some_and(AgentRecord::is_live),
                Until::Triaged(inc) => {
                    done.triaged
                        .iter()
                        .any(|t| &t.agent == w.command.agent() && t.incarnation == inc)
                        || rec.is_none_or(|r| r.incarnation != inc || r.live().is_none_or(|l| l.triage_since.is_none()))
                }
            };
            if due || !waits {
                ready.push(w);
            } else {
                self.awaiting.push(w);
            }
        }
        let mut answers: Vec<Answer> = ready.into_iter().map(|w| self.settled(w, done)).collect();
        for (i, o) in obeyed.into_iter().enumerate() {
            let agent = o.command.agent().clone();
            let refuse = |reason: String| Answer::new(o.letter.clone(), o.command.clone(), Outcome::Refused, reason);
            if !self.fleet.agents.iter().any(|a| a.name == agent) {
                answers.push(refuse(format!("the owner's config has no agent named `{agent}`")));
                continue;
            }
            if let Some(later) = done
                .commands
                .get(i + 1..)
                .and_then(|c| c.iter().find(|c| c.agent() == &agent))
            {
                answers.push(refuse(format!(
                    "a later command for {agent} in the same pass (`{}`) was obeyed instead",
                    later.verb()
                )));
                continue;
            }
            let rec = self.mind.agents.get(&agent);
            let wait = match &o.command {
                Command::Up(_) | Command::Restart(_) => rec
                    .filter(|r| r.is_live() && r.deferred().is_none() && o.before != Some(r.incarnation))
                    .map(|r| Until::Settled(r.since.plus(SETTLE)))
                    .filter(|until| matches!(until, Until::Settled(at) if now < *at)),
                Command::Triage(_) => done.step.actions.iter().find_map(|a| match a {
                    Action::Triage {
                        agent: who,
                        incarnation,
                        ..
                    } if *who == agent => Some(Until::Triaged(*incarnation)),
                    _ => None,
                }),
                Command::Stop(_) | Command::Nudge(_) => None,
            };
            let answer = match (&o.command, wait) {
                (_, Some(until)) if waits => {
                    self.awaiting.push(Awaiting {
                        letter: o.letter,
                        command: o.command,
                        before: o.before,
                        until,
                    });
                    continue;
                }
                (Command::Up(_) | Command::Restart(_), _) => up_answer(o.letter, o.command, o.before, rec),
                (Command::Stop(_), _) => match done.failures.get(&agent) {
                    Some(error) => Answer::new(o.letter, o.command, Outcome::Failed, error.clone()),
                    None => {
                        let reason = rec.map_or_else(|| "stopped".to_owned(), |r| r.reason.clone());
                        Answer::new(o.letter, o.command, Outcome::Done, reason)
                    }
                },
                (Command::Nudge(_), _) => {
                    let typed = done.step.actions.iter().any(
                        |a| matches!(a, Action::Send { agent: who, purpose: Purpose::Nudge, .. } if *who == agent),
                    );
                    let words = words_for(&agent, done, rec);
                    match (typed, done.failures.get(&agent)) {
                        (true, Some(error)) => Answer::new(o.letter, o.command, Outcome::Failed, error.clone()),
                        (true, None) => Answer::new(o.letter, o.command, Outcome::Done, words),
                        (false, _) => Answer::new(o.letter, o.command, Outcome::Refused, words),
                    }
                }
                (Command::Triage(_), _) if !o.was_live => {
                    Answer::new(o.letter, o.command, Outcome::Refused, words_for(&agent, done, rec))
                }
                (Command::Triage(_), _) => triage_answer(o.letter, o.command, done, rec),
            };
            answers.push(answer);
        }
        for answer in answers {
            self.answer(answer, now, records)?;
        }
        Ok(())
    }

    /// The answer to a letter that waited, now that its pass has come.
    fn settled(&self, w: Awaiting, done: &Done<'_>) -> Answer {
        let rec = self.mind.agents.get(w.command.agent());
        match w.until {
            Until::Settled(_) => up_answer(w.letter, w.command, w.before, rec),
            Until::Triaged(_) => triage_answer(w.letter, w.command, done, rec),
        }
    }

    /// Journals an answer, then leaves it where its sender looks. An answer that cannot
    /// be written is a warning: the command was carried out, the sender says it heard
    /// nothing.
    fn answer(&mut self, answer: Answer, now: Time, records: &mut Records) -> Result<(), SupervisorError> {
        records.push(self.journal.append(now, Record::Answered(answer.clone()))?);
        let answers = self.store.answers();
        if let Err(e) = answers.write(&answer) {
            let message = format!("cannot leave the answer to letter {}: {e}", answer.letter);
            records.push(self.journal.append(now, Record::Warning { message })?);
        }
        answers.sweep();
        Ok(())
    }
}

/// `up`/`restart` as `vigil up` reports it: started, running, held or failed.
fn up_answer(letter: LetterId, command: Command, before: Option<Incarnation>, rec: Option<&AgentRecord>) -> Answer {
    let up = spawn::outcome(command.agent(), before, rec);
    let outcome = match up.outcome {
        spawn::Outcome::Started => Outcome::Started,
        spawn::Outcome::Running => Outcome::Running,
        spawn::Outcome::Held => Outcome::Held,
        spawn::Outcome::Deferred => Outcome::Deferred,
        spawn::Outcome::Failed => Outcome::Failed,
    };
    let mut answer = Answer::new(letter, command, outcome, up.reason);
    answer.incarnation = Some(up.incarnation);
    answer.session = Some(up.session).filter(|s| !s.is_empty());
    answer.pane_pid = up.pane_pid;
    answer.last_lines = up.last_lines;
    answer
}

fn triage_answer(letter: LetterId, command: Command, done: &Done<'_>, rec: Option<&AgentRecord>) -> Answer {
    let agent = command.agent().clone();
    let words = words_for(&agent, done, rec);
    let mut answer = match done.failures.get(&agent) {
        Some(error) => Answer::new(letter, command, Outcome::Failed, format!("{words}; {error}")),
        None => Answer::new(letter, command, Outcome::Done, words),
    };
    answer.incarnation = rec.map(|r| r.incarnation);
    answer
}

/// What the engine said about `agent` this pass, in words (its events' reasons), or
/// its record's reason when it said nothing.
fn words_for(agent: &AgentName, done: &Done<'_>, rec: Option<&AgentRecord>) -> String {
    let said: Vec<&str> = done
        .step
        .events
        .iter()
        .filter(|e| e.agent == agent.as_str())
        .map(|e| e.reason.as_str())
        .collect();
    if said.is_empty() {
        rec.map_or_else(|| format!("{agent} has not been started"), |r| r.reason.clone())
    } else {
        said.join("; ")
    }
}
