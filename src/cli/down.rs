//! `vigil down`: stop every configured agent (journaled stops, each kept stopped until
//! `vigil up`, directly or through the owner's inbox as `vigil stop` does), then stop
//! the owner only when it is a detached `vigil watch` that `vigil up` started (its
//! `owner.json` says so). An owner a user or systemd runs keeps running; `down` says how
//! to stop it. Exit 1 when a stop failed, an answer did not come, or `up`'s owner could
//! not be stopped.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::out::say;
use super::{Project, log, request};
use crate::adapters::clock::now;
use crate::engine::{AgentName, Command};
use crate::present::shown;
use crate::store::{Launcher, Role};
use crate::supervisor::watchdog::{self, Stop};

/// How long `up`'s owner has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

impl Project {
    pub(super) fn down(&self, wait: Option<Duration>) -> Result<ExitCode> {
        let agents: Vec<AgentName> = self.config.agents.iter().map(|a| a.name.clone()).collect();
        let commands: Vec<Command> = agents.iter().cloned().map(Command::Stop).collect();
        let mut failed = false;
        if !commands.is_empty() {
            match self.claim(Role::Command)? {
                Some(mut sup) => {
                    let records = sup.pass(commands, false, now())?;
                    log::print_records(&records, false);
                    failed |= records.iter().any(|r| r.record.is_failure());
                }
                None => failed |= self.down_through_owner(&agents, &commands, wait)?,
            }
        }
        let store = self.store()?;
        match store.live_owner() {
            None => say!("vigil down: every agent is stopped; nothing supervises the project"),
            Some(owner) if owner.launched_by == Some(Launcher::Up) => {
                let outcome = watchdog::stop(&store, &owner, GRACE, now, &mut |line| say!("vigil down: {line}"))?;
                match outcome {
                    Stop::Termed { .. } | Stop::Killed { .. } | Stop::AlreadyGone => say!(
                        "vigil down: stopped the `vigil watch` (pid {}) that `vigil up` started",
                        owner.pid
                    ),
                    Stop::NotOurs | Stop::NotHolder | Stop::Survived => {
                        say!(
                            "vigil down: the `vigil watch` (pid {}) that `vigil up` started is still there",
                            owner.pid
                        );
                        failed = true;
                    }
                }
            }
            Some(owner) => {
                let how = match (owner.role, super::supervise::installed_unit(self)) {
                    (Role::Tui, _) => "quit the dashboard (q)".to_owned(),
                    (_, Some(unit)) => format!(
                        "`systemctl --user stop {unit}` if systemd runs it, else SIGTERM pid {}",
                        owner.pid
                    ),
                    _ => format!("SIGTERM pid {} (or Ctrl-C where it runs)", owner.pid),
                };
                say!(
                    "vigil down: the agents are stopped; pid {} (`vigil {}`) keeps supervising, as `vigil up` did not start it: {how}",
                    owner.pid,
                    owner.role.as_str()
                );
            }
        }
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    }

    /// One stop letter per agent in the owner's inbox, each answer awaited and said;
    /// whether any failed or went unanswered.
    fn down_through_owner(&self, agents: &[AgentName], commands: &[Command], wait: Option<Duration>) -> Result<bool> {
        let store = self.store()?;
        let mut ids = Vec::new();
        for command in commands {
            ids.push(store.inbox().submit(command, now())?);
        }
        let wait = wait.unwrap_or_else(|| self.answer_wait(&commands[0]));
        let owner = request::owner_words(&store);
        let mut failed = false;
        for (agent, answer) in agents.iter().zip(request::await_answers(&store, &ids, wait)) {
            match answer {
                Some(Ok(answer)) => {
                    failed |= answer.outcome.is_failure();
                    say!(
                        "{}: asked {owner} to stop it: {} — {}",
                        agent.as_str(),
                        answer.outcome.as_str(),
                        shown(&answer.reason)
                    );
                }
                Some(Err(problem)) => {
                    failed = true;
                    say!("{}: the owner's answer is unreadable: {problem}", agent.as_str());
                }
                None => {
                    failed = true;
                    say!(
                        "{}: asked {owner} to stop it; {}",
                        agent.as_str(),
                        request::no_answer(wait)
                    );
                }
            }
        }
        Ok(failed)
    }
}
