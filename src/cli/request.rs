//! `vigil stop|restart|nudge AGENT… | --all` and `vigil triage AGENT`: carried out at once when nobody owns the
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
        self.commands(&[agent.to_owned()], false, make, wait)
    }

    /// [`Project::command`] for several agents (or every configured one with `all`):
    /// each carried out and reported; exit 1 if any failed.
    pub(super) fn commands(
        &self,
        agents: &[String],
        all: bool,
        make: fn(AgentName) -> Command,
        wait: Option<Duration>,
    ) -> Result<ExitCode> {
        let names: Vec<AgentName> = if all {
            self.config.agents.iter().map(|a| a.name.clone()).collect()
        } else {
            let mut names = Vec::new();
            for agent in agents {
                let name = self.agent_name(agent)?;
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            names
        };
        let commands: Vec<Command> = names.into_iter().map(make).collect();
        match self.claim(Role::Command)? {
            Some(mut sup) => {
                let mut records = sup.pass(commands, false, now())?;
                records.extend(sup.settle_triage(false, now)?);
                log::print_records(&records, false);
                let failed = records.iter().any(|r| r.record.is_failure());
                Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
            }
            None => {
                let store = self.store()?;
                let wait =
                    wait.unwrap_or_else(|| commands.iter().map(|c| self.answer_wait(c)).max().unwrap_or_default());
                let mut ids = Vec::with_capacity(commands.len());
                for command in &commands {
                    ids.push(store.inbox().submit(command, now())?);
                }
                let owner = owner_words(&store);
                if wait.is_zero() {
                    for command in &commands {
                        say!(
                            "asked {owner} to {}; it acts within one poll ({}); see `vigil log`",
                            command_words(command),
                            crate::engine::time::human(self.config.poll_interval)
                        );
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                let answers = await_answers(&store, &ids, wait);
                let mut failed = false;
                for (command, answer) in commands.iter().zip(answers) {
                    failed |= report_answer(&owner, &command_words(command), answer, wait);
                }
                Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
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

/// Says the owner's answer to one letter; true when the action failed or no answer
/// (or an unreadable one) came.
fn report_answer(owner: &str, words: &str, answer: Option<Result<Answer, String>>, wait: Duration) -> bool {
    match answer {
        Some(Ok(answer)) => {
            say!(
                "asked {owner} to {words}: {} — {}",
                answer.outcome.as_str(),
                shown(&answer.reason)
            );
            for line in &answer.last_lines {
                say!("  │ {}", shown(line));
            }
            answer.outcome.is_failure()
        }
        Some(Err(problem)) => {
            say!("asked {owner} to {words}; its answer is unreadable: {problem}");
            true
        }
        None => {
            say!("asked {owner} to {words}; {}", no_answer(wait));
            true
        }
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
