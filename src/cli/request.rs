//! `vigil stop|restart|nudge AGENT… | --all` and `vigil triage AGENT`: carried out at
//! once when nobody owns the run, else left in the owner's inbox and its answer awaited
//! (`--wait`, default a few polls); each agent reported, in words or with `--json` as
//! `{"agents": [{"name", "command", "outcome", "reason", "last_lines"}]}`. Exit 1 when
//! any action failed or an answer did not come in time.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::out::say;
use super::{Project, log};
use crate::adapters::clock::now;
use crate::engine::{AgentName, Command};
use crate::present::{command_words, record_line, shown};
use crate::store::{Answer, Entry, LetterId, Role, Store};

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
        json: bool,
    ) -> Result<ExitCode> {
        self.commands(&[agent.to_owned()], false, make, wait, json)
    }

    /// [`Project::command`] for several agents (or every configured one with `all`):
    /// each carried out and reported; exit 1 if any failed.
    pub(super) fn commands(
        &self,
        agents: &[String],
        all: bool,
        make: fn(AgentName) -> Command,
        wait: Option<Duration>,
        json: bool,
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
        let commands: Vec<Command> = names.iter().cloned().map(make).collect();
        match self.claim(Role::Command)? {
            Some(mut sup) => {
                let mut records = sup.pass(commands.clone(), false, now())?;
                records.extend(sup.settle_triage(false, now)?);
                let failed = records.iter().any(|r| r.record.is_failure());
                if json {
                    let reports = names.iter().zip(&commands).map(|(name, command)| {
                        let mine: Vec<&Entry> = records
                            .iter()
                            .filter(|r| r.record.agent() == Some(name.as_str()))
                            .collect();
                        let failed = mine.iter().any(|r| r.record.is_failure());
                        let reason = mine.iter().rev().find_map(|r| record_line(r, false));
                        json!({
                            "name": name.as_str(),
                            "command": command_words(command),
                            "outcome": if failed { "failed" } else { "done" },
                            "reason": reason.unwrap_or_default(),
                            "last_lines": Vec::<String>::new(),
                        })
                    });
                    say!(
                        "{}",
                        serde_json::to_string_pretty(&json!({ "agents": reports.collect::<Vec<_>>() }))?
                    );
                } else {
                    log::print_records(&records, false);
                }
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
                let answers = if wait.is_zero() {
                    commands.iter().map(|_| None).collect()
                } else {
                    await_answers(&store, &ids, wait)
                };
                let mut failed = false;
                let mut reports = Vec::new();
                for ((name, command), answer) in names.iter().zip(&commands).zip(answers) {
                    let words = command_words(command);
                    let (outcome, reason, last_lines) = match answer {
                        None if wait.is_zero() => (
                            "asked",
                            format!(
                                "asked {owner} to {words}; it acts within one poll ({}); see `vigil log`",
                                crate::engine::time::human(self.config.poll_interval)
                            ),
                            Vec::new(),
                        ),
                        None => (
                            "unanswered",
                            format!("asked {owner} to {words}; {}", no_answer(wait)),
                            Vec::new(),
                        ),
                        Some(Err(problem)) => (
                            "unreadable",
                            format!("asked {owner} to {words}; its answer is unreadable: {problem}"),
                            Vec::new(),
                        ),
                        Some(Ok(answer)) => {
                            failed |= answer.outcome.is_failure();
                            (
                                answer.outcome.as_str(),
                                format!(
                                    "asked {owner} to {words}: {} — {}",
                                    answer.outcome.as_str(),
                                    shown(&answer.reason)
                                ),
                                answer.last_lines,
                            )
                        }
                    };
                    failed |= matches!(outcome, "unanswered" | "unreadable");
                    if !json {
                        say!("{reason}");
                        for line in &last_lines {
                            say!("  │ {}", shown(line));
                        }
                    }
                    reports.push(json!({
                        "name": name.as_str(),
                        "command": words,
                        "outcome": outcome,
                        "reason": reason,
                        "last_lines": last_lines,
                    }));
                }
                if json {
                    say!("{}", serde_json::to_string_pretty(&json!({ "agents": reports }))?);
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
