//! `vigil stop|restart|nudge|triage AGENT`: carried out at once when nobody owns the
//! run, else left in the owner's inbox and its answer awaited (`--wait`, default a few
//! polls). Exit 1 when the action failed or no answer came in time.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::out::say;
use super::{Project, log};
use crate::adapters::clock::now;
use crate::engine::{AgentName, Command};
use crate::present::{command_words, shown};
use crate::store::{Answer, LetterId, Role, Store};

/// How often a sender looks for its answer.
const ANSWER_POLL: Duration = Duration::from_millis(50);

impl Project {
    /// stop / restart / nudge / triage: done directly when nobody owns the run, else
    /// through the owner's inbox.
    pub(super) fn command(
        &self,
        agent: &str,
        make: fn(AgentName) -> Command,
        wait: Option<Duration>,
    ) -> Result<ExitCode> {
        let command = make(self.agent_name(agent)?);
        match self.claim(Role::Command)? {
            Some(mut sup) => {
                let mut records = sup.pass(vec![command], false, now())?;
                records.extend(sup.settle_triage(false, now)?);
                log::print_records(&records, false);
                let failed = records.iter().any(|r| r.record.is_failure());
                Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
            }
            None => {
                let store = self.store()?;
                let wait = wait.unwrap_or_else(|| self.answer_wait(&command));
                let id = store.inbox().submit(&command, now())?;
                let owner = owner_words(&store);
                let words = command_words(&command);
                if wait.is_zero() {
                    say!(
                        "asked {owner} to {words}; it acts within one poll ({}); see `vigil log`",
                        crate::engine::time::human(self.config.poll_interval)
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                let answers = await_answers(&store, std::slice::from_ref(&id), wait);
                match answers.into_iter().next().flatten() {
                    Some(Ok(answer)) => {
                        say!(
                            "asked {owner} to {words}: {} — {}",
                            answer.outcome.as_str(),
                            shown(&answer.reason)
                        );
                        for line in &answer.last_lines {
                            say!("  │ {}", shown(line));
                        }
                        let failed = answer.outcome.is_failure();
                        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
                    }
                    Some(Err(problem)) => {
                        say!("asked {owner} to {words}; its answer is unreadable: {problem}");
                        Ok(ExitCode::from(1))
                    }
                    None => {
                        say!("asked {owner} to {words}; {}", no_answer(wait));
                        Ok(ExitCode::from(1))
                    }
                }
            }
        }
    }

    /// How long a sender waits for the owner's answer by default: a few polls (the
    /// letter is read at the next pass, a start settles until the one after), and a
    /// triage's own timeout on top for `triage`.
    pub(super) fn answer_wait(&self, command: &Command) -> Duration {
        let mut wait = self.config.poll_interval * 3 + Duration::from_secs(2);
        if let Command::Triage(agent) = command {
            let timeout = self.config.agent(agent.as_str()).map(|a| a.policy.triage_timeout);
            wait += timeout.unwrap_or_default() + self.config.poll_interval;
        }
        wait
    }
}

/// "the owner (pid 42, `vigil watch`)".
pub(super) fn owner_words(store: &Store) -> String {
    store.live_owner().map_or("the owner".to_owned(), |o| {
        format!("the owner (pid {}, `vigil {}`)", o.pid, o.role.as_str())
    })
}

/// What a sender says when its answer did not come.
pub(super) fn no_answer(wait: Duration) -> String {
    format!(
        "no answer within {} (it may still act: see `vigil log`; wait longer with --wait)",
        crate::engine::time::human(wait)
    )
}

/// Waits up to `wait` for the owner's answer to each letter; `None` for those that did
/// not come in time, `Some(Err)` for one that cannot be read.
pub(super) fn await_answers(store: &Store, ids: &[LetterId], wait: Duration) -> Vec<Option<Result<Answer, String>>> {
    let answers = store.answers();
    let deadline = Instant::now() + wait;
    let mut got: Vec<Option<Result<Answer, String>>> = ids.iter().map(|_| None).collect();
    loop {
        for (id, slot) in ids.iter().zip(got.iter_mut()) {
            if slot.is_none() {
                *slot = answers.collect(id).transpose();
            }
        }
        if got.iter().all(Option::is_some) || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(ANSWER_POLL);
    }
}
