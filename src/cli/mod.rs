//! The command line: parses arguments, finds the project, and runs one command through
//! the supervisor or the store. Decides nothing the engine decides; only formats,
//! waits and maps failures to exit codes (0 ok, 1 the job failed, 2 bad usage/config).

mod check;
mod demo;
mod units;
mod watch;

use crate::adapters::clock::now;
use crate::present as render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand};

use crate::adapters::tmux::TmuxCli;
use crate::config::{Config, ConfigError};
use crate::engine::{AgentName, Command, Incarnation};
use crate::store::{Role, Store, StoreError};
use crate::supervisor::spawn::{self, Outcome, UpResult};
use crate::supervisor::{Supervisor, SupervisorError};

#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "Keeps AI coding agents alive and working inside tmux, unattended."
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct Global {
    /// The config file (default: vigil.toml in this directory or the nearest above).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// tmux socket name (`tmux -L NAME`); overrides `socket` in the config.
    #[arg(long, global = true, value_name = "NAME")]
    socket: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start configured agents that are not running (all, or the ones named).
    Up {
        agents: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Supervise in the foreground until SIGTERM or Ctrl-C; agents keep running after.
    Watch {
        /// Only follow the decisions of the vigil that owns the project; never act.
        #[arg(long)]
        viewer: bool,
    },
    /// One supervision pass, then exit (for a systemd timer).
    Tick,
    /// The external watchdog pass: is the owner alive and its heartbeat fresh? A hung
    /// or stopped owner gets SIGTERM, then SIGKILL after the grace. Exit 0 when a live
    /// owner supervises the project, 1 when none does.
    Check {
        /// An owner silent this long is hung [default: 10m, or three polls if longer].
        #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
        stale_after: Option<Duration>,
        /// How long a hung owner has between SIGTERM and SIGKILL.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::config::parse_duration)]
        grace: Duration,
        /// When nothing supervises the project (any more), start a detached `vigil watch`
        /// and wait until it has claimed the run and adopted the agents.
        #[arg(long)]
        restart: bool,
    },
    /// Write the systemd user units (vigil@.service, vigil-check@ and vigil-tick@
    /// services and timers) and print the `systemctl --user` lines that enable them.
    InstallUnits {
        /// Write user units to ~/.config/systemd/user (or $XDG_CONFIG_HOME/systemd/user).
        #[arg(long)]
        user: bool,
        /// Write them to this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// What vigil believes about each agent, and why.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The journal: every decision with its reason.
    Log {
        #[arg(long)]
        json: bool,
        /// Keep printing new records as they are written.
        #[arg(long, short)]
        follow: bool,
        /// How many of the last records to show first.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
    },
    /// Stop an agent and keep it stopped until `vigil up AGENT`.
    Stop { agent: String },
    /// Replace an agent's incarnation with a new one now.
    Restart { agent: String },
    /// Type the nudge text into an agent's pane now.
    Nudge { agent: String },
    /// Triage an agent now (the configured command, or the built-in rules) and act on
    /// the verdict.
    Triage { agent: String },
    /// The dashboard: supervises (or, when another vigil owns the project, follows it)
    /// with keys to nudge, restart, stop and attach.
    Tui,
    /// Run vigil on fake agents in a private tmux server, to see it work.
    Demo {
        /// Stop after this long (e.g. "60s"); default: until Ctrl-C.
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Keep the demo directory and tmux server afterwards.
        #[arg(long)]
        keep: bool,
    },
}

/// A usage error: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Runs the command line and maps the outcome to vigil's exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<Usage>().is_some() {
                eprintln!("error: {e}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Cmd::Demo { duration, keep } = &cli.command {
        return demo::run(duration.as_deref(), *keep);
    }
    let project = Project::open(&cli.global)?;
    match cli.command {
        Cmd::Up { agents, json } => project.up(&agents, json),
        Cmd::Watch { viewer: false } => watch::run(&project, watch::Options::default()),
        Cmd::Watch { viewer: true } => project.view(),
        Cmd::Tick => project.tick(),
        Cmd::Check {
            stale_after,
            grace,
            restart,
        } => check::run(
            &project,
            check::Options {
                stale_after,
                grace,
                restart,
            },
        ),
        Cmd::InstallUnits { user, dir } => units::run(&project, user, dir),
        Cmd::Status { json } => project.status(json),
        Cmd::Log { json, follow, lines } => project.log(json, follow, lines),
        Cmd::Stop { agent } => project.command(&agent, Command::Stop),
        Cmd::Restart { agent } => project.command(&agent, Command::Restart),
        Cmd::Nudge { agent } => project.command(&agent, Command::Nudge),
        Cmd::Triage { agent } => project.command(&agent, Command::Triage),
        Cmd::Tui => project.tui(),
        Cmd::Demo { .. } => unreachable!("handled above"),
    }
}

/// A loaded project: its config, where its state lives, its tmux.
pub struct Project {
    config: Config,
    state_dir: PathBuf,
    tmux: TmuxCli,
}

impl Project {
    fn open(global: &Global) -> Result<Self> {
        let path = match &global.config {
            Some(p) => p.clone(),
            None => Config::find(&std::env::current_dir().context("reading the current directory")?)?,
        };
        let config = Config::load(&path)?;
        Self::from_config(config, global.socket.clone())
    }

    pub fn from_config(config: Config, socket: Option<String>) -> Result<Self> {
        let state_dir = Store::locate(&config)?;
        let tmux = TmuxCli::new(socket.or_else(|| config.socket.clone()));
        Ok(Self {
            config,
            state_dir,
            tmux,
        })
    }

    /// A project whose state lives exactly in `state_dir`, whatever the environment says.
    pub fn with_state_dir(config: Config, state_dir: PathBuf) -> Self {
        let tmux = TmuxCli::new(config.socket.clone());
        Self {
            config,
            state_dir,
            tmux,
        }
    }

    fn store(&self) -> Result<Store> {
        Store::open(&self.state_dir).with_context(|| format!("opening the state dir {}", self.state_dir.display()))
    }

    /// Claims the run for one command; `Ok(None)` when another process owns it.
    fn claim(&self, role: Role) -> Result<Option<Supervisor<TmuxCli>>> {
        let store = self.store()?;
        match Supervisor::claim(self.config.clone(), self.tmux.clone(), store, role, now()) {
            Ok((sup, records)) => {
                // Only what the user must hear (a quarantined snapshot); the rest is in the journal.
                for r in records.iter().filter(|r| r["kind"] == "warning") {
                    eprintln!("vigil: {}", r["message"].as_str().unwrap_or_default());
                }
                Ok(Some(sup))
            }
            Err(SupervisorError::Store(StoreError::Held { .. })) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn agent_name(&self, name: &str) -> Result<AgentName> {
        self.config.agent(name).map(|a| a.name.clone()).ok_or_else(|| {
            let known: Vec<&str> = self.config.agents.iter().map(|a| a.name.as_str()).collect();
            anyhow!(Usage(format!(
                "no agent named `{name}` in {}; its agents are: {}",
                self.config.path.display(),
                known.join(", ")
            )))
        })
    }

    fn tick(&self) -> Result<ExitCode> {
        let Some(mut sup) = self.claim(Role::Tick)? else {
            return Err(self.held());
        };
        let records = sup.pass(Vec::new(), true, now())?;
        render::print_records(&records, false);
        // A timer's pass ends here: wait for any triage it started and act on the answer.
        render::print_records(&sup.settle_triage(true, now)?, false);
        Ok(ExitCode::SUCCESS)
    }

    fn held(&self) -> anyhow::Error {
        match self.store().ok().and_then(|s| s.claim(Role::Command, now()).err()) {
            Some(e) => anyhow!("{e}"),
            None => anyhow!("another vigil owns this project"),
        }
    }

    /// stop / restart / nudge: done directly when nobody owns the run, else through
    /// the owner's inbox.
    fn command(&self, agent: &str, make: fn(AgentName) -> Command) -> Result<ExitCode> {
        let command = make(self.agent_name(agent)?);
        match self.claim(Role::Command)? {
            Some(mut sup) => {
                let mut records = sup.pass(vec![command], false, now())?;
                records.extend(sup.settle_triage(false, now)?);
                render::print_records(&records, false);
                let failed = records.iter().any(|r| r["kind"] == "failed");
                Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
            }
            None => {
                let store = self.store()?;
                store.inbox().submit(&command, now())?;
                let owner = store.live_owner().map_or("the owner".to_owned(), |o| {
                    format!("the owner (pid {}, `vigil {}`)", o.pid, o.role.as_str())
                });
                println!(
                    "asked {owner} to {}; it acts within one poll ({}); see `vigil log`",
                    render::command_words(&command),
                    crate::engine::time::human(self.config.poll_interval)
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    }

    fn up(&self, names: &[String], json: bool) -> Result<ExitCode> {
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
                if records.iter().any(|r| r["kind"] == "intent") {
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
        render::print_up(&results, json)?;
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
            .map(|a| mind.agents.get(a).is_some_and(|r| r.lifecycle.is_live()))
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
                        && (!r.lifecycle.is_live() || now().since(r.since) >= self.config.poll_interval + SETTLE)
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

    /// Follows the owner's journal without claiming anything.
    fn view(&self) -> Result<ExitCode> {
        let owner = Store::existing(&self.state_dir).and_then(|s| s.live_owner());
        match owner {
            Some(o) => println!(
                "vigil watch --viewer: following pid {} (`vigil {}`, epoch {}); Ctrl-C to stop",
                o.pid,
                o.role.as_str(),
                o.epoch
            ),
            None => println!("vigil watch --viewer: no vigil owns this project now; showing its journal as it grows"),
        }
        self.log(false, true, 20)
    }

    /// The dashboard: owner when the run is free, else a viewer of its owner.
    fn tui(&self) -> Result<ExitCode> {
        let face = match self.claim(Role::Tui)? {
            Some(sup) => crate::tui::Face::Owner(Box::new(sup)),
            None => crate::tui::Face::Viewer,
        };
        crate::tui::run(crate::tui::Setup {
            config: self.config.clone(),
            tmux: self.tmux.clone(),
            store: self.store()?,
            face,
        })
    }

    fn status(&self, json: bool) -> Result<ExitCode> {
        let store = Store::existing(&self.state_dir);
        render::print_status(&self.config, store.as_ref(), now(), json)?;
        Ok(ExitCode::SUCCESS)
    }

    fn log(&self, json: bool, follow: bool, lines: usize) -> Result<ExitCode> {
        render::print_log(&self.state_dir.join("journal.jsonl"), json, follow, lines)?;
        Ok(ExitCode::SUCCESS)
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
