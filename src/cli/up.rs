//! `vigil up [AGENT…]`: start configured agents that are not running, each on its own
//! (started, already running, held or failed, with the reason and the pane's last
//! lines), directly or through the owner's inbox. Exit 1 when any failed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::Project;
use super::out::say;
use crate::adapters::clock::now;
use crate::engine::{AgentName, Command, Incarnation};
use crate::present::shown;
use crate::store::{Record, Role};
use crate::supervisor::spawn::{self, Outcome, UpResult};

impl Project {
    pub(super) fn up(&self, names: &[String], json: bool) -> Result<ExitCode> {
        let agents: Vec<AgentName> = if names.is_empty() {
            self.config.agents.iter().map(|a| a.name.clone()).collect()
        } else {
            names.iter().map(|n| self.agent_name(n)).collect::<Result<_>>()?
        };
        let commands: Vec<Command> = agents.iter().cloned().map(Command::Up).collect();
        let results = match self.claim(Role::Up)? {
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
            None => self.up_through_owner(&agents, commands)?,
        };
        print_up(&results, json)?;
        let failed = results.iter().any(|r| r.outcome == Outcome::Failed);
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    }

    /// `up` while another process owns the run: leave the commands in its inbox and
    /// watch its snapshot until it has acted (at most three polls).
    fn up_through_owner(&self, agents: &[AgentName], commands: Vec<Command>) -> Result<Vec<UpResult>> {
        let store = self.store()?;
        let mind = store.peek_mind().ok().flatten().map(|(m, _)| m).unwrap_or_default();
        let before = incarnations(&mind, agents);
        let was_live: Vec<bool> = agents
            .iter()
            .map(|a| mind.agents.get(a).is_some_and(|r| r.is_live()))
            .collect();
        for command in &commands {
            store.inbox().submit(command, now())?;
        }
        let deadline = std::time::Instant::now() + self.config.poll_interval * 3 + SETTLE * 2;
        loop {
            let mind = store.peek_mind().ok().flatten().map(|(m, _)| m).unwrap_or_default();
            // Started, and either already ended or up long enough to have been seen alive.
            let acted = |a: &AgentName| {
                mind.agents.get(a).is_some_and(|r| {
                    before.get(a) != Some(&r.incarnation)
                        && (!r.is_live() || now().since(r.since) >= self.config.poll_interval + SETTLE)
                })
            };
            let settled = agents.iter().zip(&was_live).all(|(a, live)| *live || acted(a));
            if settled || std::time::Instant::now() >= deadline {
                let results = agents.iter().zip(&was_live).map(|(a, live)| {
                    let mut result = spawn::outcome(a, before.get(a).copied(), mind.agents.get(a));
                    if !live && !acted(a) {
                        result.outcome = Outcome::Held;
                        result.reason = "asked the owner; it has not acted yet (see `vigil status`)".into();
                    }
                    result
                });
                return Ok(results.collect());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// How long `up` waits for a just-started agent to die at once.
const SETTLE: Duration = Duration::from_millis(500);

fn incarnations(mind: &crate::engine::Mind, agents: &[AgentName]) -> std::collections::HashMap<AgentName, Incarnation> {
    agents
        .iter()
        .filter_map(|a| mind.agents.get(a).map(|r| (a.clone(), r.incarnation)))
        .collect()
}

fn print_up(results: &[UpResult], json: bool) -> Result<()> {
    if json {
        say!("{}", serde_json::to_string_pretty(&json!({ "agents": results }))?);
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
    Ok(())
}
