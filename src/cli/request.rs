//! `vigil stop|restart|nudge|triage AGENT`: carried out at once when nobody owns the
//! run, else left in the owner's inbox. Exit 1 when the action failed.

use std::process::ExitCode;

use anyhow::Result;

use super::out::say;
use super::{Project, log};
use crate::adapters::clock::now;
use crate::engine::{AgentName, Command};
use crate::present::command_words;
use crate::store::Role;

impl Project {
    /// stop / restart / nudge: done directly when nobody owns the run, else through
    /// the owner's inbox.
    pub(super) fn command(&self, agent: &str, make: fn(AgentName) -> Command) -> Result<ExitCode> {
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
                store.inbox().submit(&command, now())?;
                let owner = store.live_owner().map_or("the owner".to_owned(), |o| {
                    format!("the owner (pid {}, `vigil {}`)", o.pid, o.role.as_str())
                });
                say!(
                    "asked {owner} to {}; it acts within one poll ({}); see `vigil log`",
                    command_words(&command),
                    crate::engine::time::human(self.config.poll_interval)
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
