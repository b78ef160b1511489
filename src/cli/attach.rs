//! `vigil attach AGENT`: becomes `tmux attach-session` on the agent's session — the
//! project's server (`-L`), the exact target `=session`. Inside tmux on that server it
//! switches the client instead. Refuses with exit 1 when the agent has no session or
//! stdin is not a terminal; never starts or changes an agent.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

use super::Project;
use crate::adapters::clock::now;
use crate::adapters::tmux::{Pane, Tmux};
use crate::present::shown;
use crate::present::status::StatusReport;
use crate::store::Store;

impl Project {
    pub(super) fn attach(&self, agent: &str) -> Result<ExitCode> {
        let Some(session) = self.live_session(agent)? else {
            return Ok(ExitCode::from(1));
        };
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "vigil attach: stdin is not a terminal, so there is nothing to attach; \
                 run it from a terminal, or see the pane with `vigil peek {agent}`"
            );
            return Ok(ExitCode::from(1));
        }
        let target = format!("={session}");
        let argv = self.tmux.base_argv();
        let (program, socket_args) = argv.split_first().context("the tmux command line is empty")?;
        if let Some(client) = self.tmux.cli().own_client() {
            let switched = Command::new(program)
                .args(socket_args)
                .args(["switch-client", "-c", &client, "-t", &target])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if switched.is_ok_and(|s| s.success()) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        // Inside a client of another server: a nested client, told so by removing TMUX.
        let err = Command::new(program)
            .args(socket_args)
            .args(["attach-session", "-t", &target])
            .env_remove("TMUX")
            .exec();
        Err(err).context("running tmux attach-session")
    }

    /// The agent's session when it is there (the one vigil recorded, which may be
    /// `<name>-2` when a stranger held the name, and tagged with the agent); else says
    /// so on stderr and gives `None`.
    pub(super) fn live_session(&self, agent: &str) -> Result<Option<String>> {
        let name = self.agent_name(agent)?;
        let store = Store::existing(&self.state_dir);
        let report = StatusReport::read(&self.config, store.as_ref(), now());
        let session = report
            .agent(name.as_str())
            .map_or_else(|| self.config.session_of(&name), |a| a.session.clone());
        // The CLI: this process becomes `tmux attach` next, with no use for a control
        // client (which would show as a second client until it noticed).
        let panes = self.tmux.cli().list_panes().context("asking tmux for the sessions")?;
        let ours = |p: &Pane| p.session == session && p.agent.as_deref() == Some(name.as_str());
        if panes.iter().any(ours) {
            return Ok(Some(session));
        }
        eprintln!(
            "vigil: {agent} has no tmux session (no session {} of it is running); start it with `vigil up {agent}`",
            shown(&session)
        );
        Ok(None)
    }
}
