//! `vigil up [AGENT…]`: start configured agents that are not running, each on its own
//! (started, already running, held or failed, with the reason and the pane's last
//! lines), directly or through the owner's inbox (then as the owner answers each
//! letter). When no owner runs (and not `--no-watch`), `up` first starts one — the
//! systemd unit when one is installed and starts, else a detached `vigil watch` — waits
//! until it has claimed the run, and hands it the agents through the inbox, so exactly
//! one process ever owns the run and the agents are supervised from their first pass.
//! Exit 1 when any failed, an owner's answer did not come in time, or no owner could be
//! started.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::out::say;
use super::supervise::Supervision;
use super::{Project, request};
use crate::adapters::clock::now;
use crate::engine::{AgentName, Command, Incarnation};
use crate::present::shown;
use crate::store::{Answer, AnswerOutcome, Record, Role};
use crate::supervisor::spawn::{self, Outcome, UpResult};

impl Project {
    pub(super) fn up(&self, names: &[String], json: bool, wait: Option<Duration>, watch: bool) -> Result<ExitCode> {
        let agents: Vec<AgentName> = if names.is_empty() {
            self.config.agents.iter().map(|a| a.name.clone()).collect()
        } else {
            names.iter().map(|n| self.agent_name(n)).collect::<Result<_>>()?
        };
        let commands: Vec<Command> = agents.iter().cloned().map(Command::Up).collect();
        let mut unanswered = false;
        let supervision = if watch && !agents.is_empty() {
            super::supervise::ensure_owner(self)?
        } else {
            None
        };
        let claimed = match &supervision {
            Some(s) if s.pid.is_some() => None,
            _ => self.claim(Role::Up)?,
        };
        let results = match claimed {
            Some(mut sup) => {
                let before = incarnations(sup.mind(), &agents);
                let records = sup.pass(commands, false, now())?;
                if records.iter().any(|r| matches!(r.record, Record::Intent { .. })) {
                    // Let a command that dies at once die, so it is reported as failed.
                    std::thread::sleep(SETTLE);
                    sup.pass(Vec::new(), false, now())?;
                }
                agents
                    .iter()
                    .map(|a| spawn::outcome(a, before.get(a).copied(), sup.mind().agents.get(a)))
                    .collect()
            }
            None if agents.is_empty() => Vec::new(),
            None => {
                let (results, missing) = self.up_through_owner(&agents, commands, wait)?;
                unanswered = missing;
                results
            }
        };
        print_up(&results, supervision.as_ref(), json)?;
        let unsupervised = supervision.as_ref().is_some_and(|s| s.pid.is_none());
        let failed = unanswered || unsupervised || results.iter().any(|r| r.outcome == Outcome::Failed);
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    }

    /// `up` while another process owns the run: leave one letter per agent in its
    /// inbox and wait for each answer (at most `wait`); an agent whose answer did not
    /// come is reported held, and the job failed.
    fn up_through_owner(
        &self,
        agents: &[AgentName],
        commands: Vec<Command>,
        wait: Option<Duration>,
    ) -> Result<(Vec<UpResult>, bool)> {
        let store = self.store()?;
        let mut ids = Vec::new();
        for command in &commands {
            ids.push(store.inbox().submit(command, now())?);
        }
        let wait = wait.unwrap_or_else(|| self.answer_wait(&commands[0]));
        if wait.is_zero() {
            let owner = request::owner_words(&store);
            let results = agents.iter().map(|a| {
                let mut held = spawn::outcome(a, None, None);
                held.reason = format!("asked {owner}; not waiting for its answer (see `vigil status`)");
                held
            });
            return Ok((results.collect(), false));
        }
        let answers = request::await_answers(&store, &ids, wait);
        let mut missing = false;
        let results = agents.iter().zip(answers).map(|(a, answer)| match answer {
            Some(Ok(answer)) => from_answer(a, answer),
            other => {
                missing = true;
                let mut held = spawn::outcome(a, None, None);
                held.reason = match other {
                    Some(Err(problem)) => format!("the owner's answer is unreadable: {problem}"),
                    _ => format!("asked {}; {}", request::owner_words(&store), request::no_answer(wait)),
                };
                held
            }
        });
        let results = results.collect();
        Ok((results, missing))
    }
}

/// An owner's answer to `up` as the fan-out reports it; a letter it refused (too old, a
/// later command won) is held, with its reason.
fn from_answer(agent: &AgentName, answer: Answer) -> UpResult {
    let outcome = match answer.outcome {
        AnswerOutcome::Started => Outcome::Started,
        AnswerOutcome::Running | AnswerOutcome::Done => Outcome::Running,
        AnswerOutcome::Failed => Outcome::Failed,
        AnswerOutcome::Deferred => Outcome::Deferred,
        AnswerOutcome::Held | AnswerOutcome::Refused | AnswerOutcome::Expired => Outcome::Held,
    };
    UpResult {
        name: agent.clone(),
        outcome,
        incarnation: answer.incarnation.unwrap_or(Incarnation(0)),
        session: answer.session.unwrap_or_default(),
        pane_pid: answer.pane_pid,
        reason: answer.reason,
        last_lines: answer.last_lines,
    }
}

/// How long `up` waits for a just-started agent to die at once.
const SETTLE: Duration = crate::supervisor::SETTLE;

fn incarnations(mind: &crate::engine::Mind, agents: &[AgentName]) -> std::collections::HashMap<AgentName, Incarnation> {
    agents
        .iter()
        .filter_map(|a| mind.agents.get(a).map(|r| (a.clone(), r.incarnation)))
        .collect()
}

fn print_up(results: &[UpResult], supervision: Option<&Supervision>, json: bool) -> Result<()> {
    if json {
        let mut doc = json!({ "agents": results });
        if let Some(s) = supervision {
            doc["supervisor"] = serde_json::to_value(s)?;
        }
        say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let width = results.iter().map(|r| r.name.as_str().len()).max().unwrap_or(5).max(5);
    for r in results {
        let outcome = serde_json::to_value(&r.outcome)?;
        say!(
            "{:width$}  {:8}  {}",
            r.name.as_str(),
            outcome.as_str().unwrap_or(""),
            shown(&r.reason)
        );
        for line in &r.last_lines {
            say!("{:width$}  {:8}  │ {}", "", "", shown(line));
        }
    }
    if let Some(s) = supervision {
        say!("{}", s.reason);
    }
    Ok(())
}
