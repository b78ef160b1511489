//! The command line: parses arguments, finds the project, and runs one command through
//! the supervisor or the store. Decides nothing the engine decides; only formats,
//! waits and maps failures to exit codes (0 ok, 1 the job failed, 2 bad usage/config).

mod attach;
mod check;
mod demo;
mod detach;
mod docs;
mod doctor;
mod down;
pub mod hook;
mod init;
mod log;
mod metrics;
mod notify;
pub(crate) mod out;
mod peek;
mod project;
mod request;
mod status;
pub mod statusline;
mod supervise;
mod tick;
mod tui;
mod units;
mod up;
mod version;
mod watch;

pub use project::Project;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::ConfigError;
use crate::engine::Command;

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

/// The agents a `stop`, `restart` or `nudge` is for, and how it reports.
#[derive(Debug, Args)]
struct Targets {
    #[arg(required_unless_present = "all", conflicts_with = "all", value_name = "AGENT")]
    agents: Vec<String>,
    /// Every configured agent.
    #[arg(long)]
    all: bool,
    /// Through a running owner: how long to wait for its answer [default: three
    /// polls and 2s, plus the triage timeout for `triage`]; 0 does not wait.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    wait: Option<Duration>,
    /// Report each agent as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start configured agents that are not running (all, or the ones named).
    Up {
        agents: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Through a running owner: how long to wait for its answer [default: three
        /// polls and 2s, plus the triage timeout for `triage`]; 0 does not wait.
        #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
        wait: Option<Duration>,
        /// When no vigil owns the project, do not start one: leave the agents
        /// unsupervised (by default `up` starts the systemd unit, or a detached `vigil watch`).
        #[arg(long)]
        no_watch: bool,
    },
    /// Stop every agent (each kept stopped until `vigil up`), and the detached owner
    /// `vigil up` started, if that is what supervises the project.
    Down {
        /// Through a running owner: how long to wait for its answers [default: three
        /// polls and 2s].
        #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
        wait: Option<Duration>,
    },
    /// Supervise in the foreground until SIGTERM or Ctrl-C; agents keep running after.
    Watch {
        /// Only follow the decisions of the vigil that owns the project; never act.
        #[arg(long)]
        viewer: bool,
        /// Which vigil command started this watch detached (recorded in owner.json).
        #[arg(long, hide = true, value_name = "COMMAND", value_parser = parse_launcher)]
        launched_by: Option<crate::store::Launcher>,
    },
    /// One supervision pass, then exit (for a systemd timer).
    Tick {
        /// Print each record the pass wrote as its JSON journal line.
        #[arg(long)]
        json: bool,
    },
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
        /// Print the verdict as JSON (exit code unchanged).
        #[arg(long)]
        json: bool,
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
    /// Check that vigil can work here: tmux, the state dir, the config, each agent's
    /// command, working directory and screen; one line each with the fix. Exit 1 when
    /// any check fails.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// What vigil believes about each agent, and why.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The fleet in Prometheus text format (agents by lifecycle and activity,
    /// restarts, cooldowns, escalation, heartbeat, pass time, notifications pending).
    Metrics,
    /// Send a test notice through every channel of `[notify]` and report each result
    /// (exit 1 if any failed).
    Notify {
        /// Send the test notice (the only thing `notify` does for now).
        #[arg(long, required = true)]
        test: bool,
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
    /// Stop an agent and keep it stopped until `vigil up AGENT` (several, or `--all`).
    Stop(Targets),
    /// Replace an agent's incarnation with a new one now (several, or `--all`).
    Restart(Targets),
    /// Type the nudge text into an agent's pane now (several, or `--all`).
    Nudge(Targets),
    /// Triage an agent now (the configured command, or the built-in rules) and act on
    /// the verdict.
    Triage {
        agent: String,
        /// Through a running owner: how long to wait for its answer [default: three
        /// polls and 2s, plus the triage timeout for `triage`]; 0 does not wait.
        #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
        wait: Option<Duration>,
        /// Report each agent as JSON.
        #[arg(long)]
        json: bool,
    },
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
    /// Write a commented vigil.toml here, with an agent for each agent CLI found on PATH
    /// (claude, codex, gemini, aider).
    Init {
        /// Also add this agent (its command runs with sh -c); may be repeated.
        #[arg(long = "agent", value_name = "NAME=COMMAND", value_parser = init::parse_extra)]
        agents: Vec<init::ExtraAgent>,
        /// Replace an existing vigil.toml (never a symbolic link).
        #[arg(long)]
        force: bool,
    },
    /// Attach this terminal to an agent's tmux session (detach to come back).
    Attach { agent: String },
    /// Show an agent's recent pane output.
    Peek {
        agent: String,
        /// How many of the last lines to show.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
        /// Keep printing new lines until interrupted.
        #[arg(long, short)]
        follow: bool,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `vigil man > vigil.1; man -l vigil.1`.
    Man,
    /// Run by an agent's own hook system (Claude Code, Gemini CLI: the payload on stdin)
    /// or notify command (Codex: the payload as the last argument): tells the owner what
    /// the agent said. Prints nothing and exits 0, whatever it is given.
    Hook {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PAYLOAD")]
        payload: Vec<OsString>,
    },
}

/// `--launched-by up|check`.
fn parse_launcher(text: &str) -> Result<crate::store::Launcher, String> {
    use crate::store::Launcher;
    [Launcher::Up, Launcher::Check]
        .into_iter()
        .find(|l| l.as_str() == text)
        .ok_or_else(|| format!("`{text}` is not up or check"))
}

/// A usage error: exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// `vigil hook`: the statusLine wrapper for its flag ([`statusline`]), else the hook.
fn hook_or_statusline(args: &[std::ffi::OsString]) -> ExitCode {
    if args.first().is_some_and(|a| a == statusline::FLAG) {
        return statusline::run();
    }
    hook::run(args)
}

/// Runs the command line and maps the outcome to vigil's exit codes.
pub fn main() -> ExitCode {
    // An agent's hook: before any parsing that could fail, print or read a config.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == "hook") {
        return hook_or_statusline(&args.collect::<Vec<_>>());
    }
    let cli = parse();
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

/// Parses the command line; `--version` also names the tmux vigil would run (asked only
/// then, so no other command pays for it).
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let asks_version = std::env::args_os().skip(1).any(|a| a == "--version" || a == "-V");
    if !asks_version {
        return Cli::parse();
    }
    let version: &'static str = Box::leak(version::line().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Cmd::Demo { duration, keep } = &cli.command {
        return demo::run(duration.as_deref(), *keep);
    }
    if let Cmd::Init { agents, force } = &cli.command {
        return init::run(cli.global.config.clone(), agents, *force);
    }
    match &cli.command {
        Cmd::Hook { payload } => return Ok(hook_or_statusline(payload)),
        Cmd::Completions { shell } => return docs::completions(*shell),
        Cmd::Man => return docs::man(),
        _ => {}
    }
    let project = Project::open(&cli.global)?;
    match cli.command {
        Cmd::Up {
            agents,
            json,
            wait,
            no_watch,
        } => project.up(&agents, json, wait, !no_watch),
        Cmd::Down { wait } => project.down(wait),
        Cmd::Watch {
            viewer: false,
            launched_by,
        } => watch::run(
            &project,
            watch::Options {
                launched_by,
                ..watch::Options::default()
            },
        ),
        Cmd::Watch { viewer: true, .. } => project.view(),
        Cmd::Tick { json } => project.tick(json),
        Cmd::Check {
            stale_after,
            grace,
            restart,
            json,
        } => check::run(
            &project,
            check::Options {
                stale_after,
                grace,
                restart,
            },
            json,
        ),
        Cmd::InstallUnits { user, dir } => units::run(&project, user, dir),
        Cmd::Status { json } => project.status(json),
        Cmd::Metrics => project.metrics(),
        Cmd::Notify { test: _, json } => project.notify_test(json),
        Cmd::Doctor { json } => project.doctor(json),
        Cmd::Log { json, follow, lines } => project.log(json, follow, lines),
        Cmd::Stop(t) => project.commands(&t.agents, t.all, Command::Stop, t.wait, t.json),
        Cmd::Restart(t) => project.commands(&t.agents, t.all, Command::Restart, t.wait, t.json),
        Cmd::Nudge(t) => project.commands(&t.agents, t.all, Command::Nudge, t.wait, t.json),
        Cmd::Triage { agent, wait, json } => project.command(&agent, Command::Triage, wait, json),
        Cmd::Tui => project.tui(),
        Cmd::Attach { agent } => project.attach(&agent),
        Cmd::Peek { agent, lines, follow } => project.peek(&agent, lines, follow),
        Cmd::Demo { .. } => unreachable!("handled above"),
        Cmd::Init { .. } => unreachable!("handled above"),
        Cmd::Completions { .. } | Cmd::Man => unreachable!("handled above"),
        Cmd::Hook { .. } => unreachable!("handled above"),
    }
}
