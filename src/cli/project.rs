//! The project a command runs against: its config (found from the current directory
//! upward, or `--config`), where its state lives, its tmux server; and claiming the run
//! for one command.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use super::{Global, Usage};
use crate::adapters::clock::now;
use crate::adapters::tmux::{ClientKind, TmuxClient};
use crate::config::Config;
use crate::engine::AgentName;
use crate::store::{Record, Role, Store, StoreError};
use crate::supervisor::{Supervisor, SupervisorError};

/// A loaded project: its config, where its state lives, its tmux.
pub struct Project {
    pub(super) config: Config,
    pub(super) state_dir: PathBuf,
    pub(super) tmux: TmuxClient,
}

impl Project {
    pub(super) fn open(global: &Global) -> Result<Self> {
        let path = match &global.config {
            Some(p) => p.clone(),
            None => Config::find(&std::env::current_dir().context("reading the current directory")?)?,
        };
        let config = Config::load(&path)?;
        for warning in &config.warnings {
            eprintln!("warning: {warning}");
        }
        Self::from_config(config, global.socket.clone())
    }

    pub fn from_config(config: Config, socket: Option<String>) -> Result<Self> {
        let state_dir = Store::locate(config.state_dir.as_deref(), &config.project)?;
        let tmux = tmux_of(&config, socket.or_else(|| config.socket.clone()));
        Ok(Self {
            config,
            state_dir,
            tmux,
        })
    }

    /// A project whose state lives exactly in `state_dir`, whatever the environment says.
    pub fn with_state_dir(config: Config, state_dir: PathBuf) -> Self {
        let tmux = tmux_of(&config, config.socket.clone());
        Self {
            config,
            state_dir,
            tmux,
        }
    }

    pub(super) fn store(&self) -> Result<Store> {
        Store::open(&self.state_dir).with_context(|| format!("opening the state dir {}", self.state_dir.display()))
    }

    /// Claims the run for one command; `Ok(None)` when another process owns it.
    pub(super) fn claim(&self, role: Role) -> Result<Option<Supervisor<TmuxClient>>> {
        let store = self.store()?;
        match Supervisor::claim(self.config.clone(), self.tmux.clone(), store, role, now()) {
            Ok((sup, records)) => {
                // Only what the user must hear (a quarantined snapshot); the rest is in the journal.
                for r in &records {
                    if let Record::Warning { message } = &r.record {
                        eprintln!("vigil: {message}");
                    }
                }
                Ok(Some(sup))
            }
            Err(SupervisorError::Store(StoreError::Held { .. })) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn agent_name(&self, name: &str) -> Result<AgentName> {
        self.config.agent(name).map(|a| a.name.clone()).ok_or_else(|| {
            let known: Vec<&str> = self.config.agents.iter().map(|a| a.name.as_str()).collect();
            anyhow!(Usage(format!(
                "no agent named `{name}` in {}; its agents are: {}",
                self.config.path.display(),
                known.join(", ")
            )))
        })
    }

    pub(super) fn held(&self) -> anyhow::Error {
        match self.store().ok().and_then(|s| s.claim(Role::Command, now()).err()) {
            Some(e) => anyhow!("{e}"),
            None => anyhow!("another vigil owns this project"),
        }
    }
}

/// The project's tmux, through the client the config asks for (or `VIGIL_TMUX_CLIENT`).
fn tmux_of(config: &Config, socket: Option<String>) -> TmuxClient {
    TmuxClient::new(socket, ClientKind::from_env_or(config.tmux_client))
}
