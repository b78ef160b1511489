//! The pure heart of vigil: from the recorded [`Mind`], what tmux and the OS show now
//! ([`Observation`]), the user's [`Command`]s and the time, decide what happens next
//! ([`Action`]s) and why ([`Event`]s, each with a reason in words).
//! No IO, no clock, no tokio here: time is the `now` argument, so hours of supervision
//! are simulated in microseconds.

pub mod alert;
pub mod gap;
pub mod host;
pub mod limit;
pub mod mind;
pub mod policy;
pub mod pressure;
pub mod resets;
pub mod screen;
pub mod signal;
mod step;
pub mod time;
pub mod triage;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use alert::{Alert, Episode};
pub use host::{Host, HostFailure, HostRecord, ServerId};
pub use limit::LimitKind;
pub use mind::{
    Activity, AgentName, AgentRecord, CheckpointNote, Ended, EndedLifecycle, Escalation, Handoff, Hold, HumanNeeded,
    Incarnation, LastExit, Lifecycle, Live, LiveLifecycle, Mind, Phase, RateLimit, Wait,
};
pub use policy::{Policy, RestartPolicy};
pub use pressure::{Centi, Deferral, Pressure, Pressured, StartLimits};
pub use screen::Patterns;
pub use step::{action_failed, start_failed, step};
pub use time::Time;
pub use triage::{Answer, TriageOutcome, TriageResult, VerdictKind};

/// The agents vigil is asked to keep alive, as the engine needs them.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// The value of `@vigil-run` on every session of this project.
    pub run: String,
    pub agents: Vec<FleetAgent>,
    /// At most this many automatic restarts per hour across all agents; then vigil
    /// only observes until the hour has room again.
    pub max_restarts_per_hour: u32,
    /// Where checkpoints are written (`<state dir>/checkpoints`), named in handoffs.
    pub checkpoints: String,
    /// The host pressure over which a start is deferred (`[vigil]`).
    pub start_limits: StartLimits,
}

#[derive(Clone, Debug)]
pub struct FleetAgent {
    pub name: AgentName,
    /// The tmux session name new incarnations get.
    pub session: String,
    pub policy: Policy,
    /// Shared between agents with the same preset and overrides.
    pub patterns: Arc<Patterns>,
    /// A digest of what starting it runs (command, cwd, env): a start that failed is
    /// tried again by itself only once this changes.
    pub start_key: u64,
    /// The agent's `process` pattern as written (a regex over the process names in its
    /// pane's tree), for reasons; `None`: the pane's own process is the agent.
    pub process: Option<String>,
}

/// What tmux and the OS showed at one poll, for this run's tagged sessions only.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub panes: Vec<PaneSeen>,
    /// Whether tmux's server answered, and which one: a lost server is a host failure.
    pub host: Host,
}

/// One tagged pane as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct PaneSeen {
    pub session: String,
    /// The `@vigil-agent` tag, as found (it may name an agent the config no longer has).
    pub agent: String,
    pub incarnation: Incarnation,
    pub pane_pid: u32,
    pub state: PaneState,
    /// The pane's last lines as captured; `None` when capturing failed, so this poll
    /// says nothing about the screen.
    pub tail: Option<screen::Tail>,
    /// What its process tree showed.
    pub tree: TreeSeen,
}

/// A live pane's process tree at one poll, as the supervisor read it from /proc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeSeen {
    /// Whether a process whose name matches the agent's `process` pattern runs in the
    /// pane's tree; `None` when the agent names none, or the tree was not read.
    pub agent_process: Option<bool>,
    /// How many processes, and how busy; `None` when the tree was not read.
    pub tree: Option<Tree>,
}

/// A pane's process tree in figures: evidence that an agent whose screen is still is
/// working off-screen (a build, a test run, an install under it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Processes under the pane, its own included.
    pub count: u32,
    /// CPU the whole tree used since the last pass, in percent of one core; `None` at
    /// the first look (nothing to compare with).
    pub cpu_pct: Option<u32>,
    /// The busiest processes by name since the last pass, busiest first (at most 3).
    pub busiest: Vec<Busy>,
}

/// A process name and the CPU its processes used, in percent of one core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Busy {
    pub name: String,
    pub pct: u32,
}

/// A still screen judged by its process tree: working off-screen (the tree at
/// `busy_cpu` or more since the last pass, so the ladder waits), or no longer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffScreen {
    pub working: bool,
    pub tree: Tree,
    /// The threshold it was judged against, in percent of one core.
    pub busy_cpu: u32,
}

impl Tree {
    /// Why a still screen over this tree is working: "busy: cargo at 87 % cpu under
    /// the agent".
    pub fn busy_words(&self) -> String {
        match (self.busiest.first(), self.cpu_pct) {
            (Some(top), _) => format!("busy: {} at {} % cpu under the agent", top.name, top.pct),
            (None, pct) => format!("busy: its process tree at {} % cpu", pct.unwrap_or(0)),
        }
    }

    /// In words for `status`: "4 processes, 87 % cpu (cargo 80 %, rustc 7 %)".
    pub fn words(&self) -> String {
        let count = match self.count {
            1 => "1 process".to_owned(),
            n => format!("{n} processes"),
        };
        let Some(pct) = self.cpu_pct else { return count };
        let busiest: Vec<String> = self.busiest.iter().map(|b| format!("{} {} %", b.name, b.pct)).collect();
        if busiest.is_empty() {
            format!("{count}, {pct} % cpu")
        } else {
            format!("{count}, {pct} % cpu ({})", busiest.join(", "))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaneState {
    Alive,
    /// tmux shows the pane alive but its process is gone (or a zombie process).
    ProcessGone,
    /// The process exited; the pane remains (`remain-on-exit`) with how it ended.
    Dead(Exit),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            run: String::new(),
            agents: Vec::new(),
            max_restarts_per_hour: policy::FLEET_RESTARTS_PER_HOUR,
            checkpoints: "checkpoints".into(),
            start_limits: StartLimits::default(),
        }
    }
}

/// Everything one step is given besides the Mind and the time.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub observation: Observation,
    /// The user's requests since the last step, oldest first.
    pub commands: Vec<Command>,
    /// Whether to act on the engine's own judgement (first starts, restarts, nudges,
    /// resumes, stall kills). Off for one-off commands such as `vigil up AGENT`, which
    /// only record what they see and do what they were asked.
    pub supervise: bool,
    /// Triage answers that arrived since the last step.
    pub triage: Vec<TriageResult>,
    /// The machine's zone, for limit messages that give a time of day without one.
    pub tz: jiff::tz::TimeZone,
    /// The wall clock jumped, or time passed unwatched, since the last step: every
    /// recorded duration is re-based before anything is judged ([`gap::rebase`]).
    pub gap: Option<gap::Gap>,
    /// The first step of an owner that has just claimed the run: what it finds gone
    /// went while nobody watched (a reboot is a host restart).
    pub first_look: bool,
    /// The host's load and free memory as the supervisor measured them before this
    /// step: a start over [`Fleet::start_limits`] is deferred.
    pub pressure: Pressure,
    /// Signals the agents' own hooks sent since the last step, oldest first, already
    /// admitted by the supervisor ([`signal::admit`]); one from another incarnation
    /// is dropped here too.
    pub signals: Vec<signal::Signal>,
    /// What the agents' own structured limit sources (Claude Code's statusLine, Codex's
    /// rollout files) last said, one per agent at most, for its running incarnation.
    pub resets: Vec<resets::Reported>,
}

impl Default for Inputs {
    fn default() -> Self {
        Self {
            observation: Observation::default(),
            commands: Vec::new(),
            supervise: false,
            triage: Vec::new(),
            tz: jiff::tz::TimeZone::UTC,
            gap: None,
            first_look: false,
            pressure: Pressure::default(),
            signals: Vec::new(),
            resets: Vec::new(),
        }
    }
}

/// What a user asked for, through the CLI or the inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", content = "agent", rename_all = "snake_case")]
pub enum Command {
    /// Start it if it is not running (and lift a `stop`).
    Up(AgentName),
    Stop(AgentName),
    Restart(AgentName),
    Nudge(AgentName),
    /// Triage it now, whatever its escalation.
    Triage(AgentName),
}

impl Command {
    pub fn agent(&self) -> &AgentName {
        match self {
            Command::Up(a) | Command::Stop(a) | Command::Restart(a) | Command::Nudge(a) | Command::Triage(a) => a,
        }
    }

    /// Its name as the journal and the inbox spell it.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::Stop(_) => "stop",
            Command::Restart(_) => "restart",
            Command::Nudge(_) => "nudge",
            Command::Triage(_) => "triage",
        }
    }
}

/// Why text is typed into a pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Nudge,
    Resume,
    /// The first message of an incarnation that replaces a stuck one.
    Handoff,
}

/// A decision for the supervisor to carry out. Each carries its reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Start this incarnation in a tagged session, replacing any session of this run
    /// and agent that is still there (a dead pane, or a hung one being restarted).
    Start {
        agent: AgentName,
        incarnation: Incarnation,
        session: String,
        reason: String,
    },
    Kill {
        agent: AgentName,
        incarnation: Incarnation,
        session: String,
        reason: String,
    },
    /// Type `text` literally, then Enter on its own.
    Send {
        agent: AgentName,
        incarnation: Incarnation,
        session: String,
        text: String,
        purpose: Purpose,
        reason: String,
    },
    /// A human is needed (or no longer is); tell the user loudly, wherever they are.
    Notify {
        agent: AgentName,
        incarnation: Incarnation,
        alert: Alert,
        #[serde(default)]
        episode: Episode,
        reason: String,
    },
    /// Ask the triage command about this incarnation; its answer comes back as a
    /// [`TriageResult`] in a later step.
    Triage {
        agent: AgentName,
        incarnation: Incarnation,
        session: String,
        reason: String,
    },
    /// Write down where a stuck incarnation was (its last screen, its git state) before
    /// it is replaced, for the handoff.
    Checkpoint {
        agent: AgentName,
        incarnation: Incarnation,
        session: String,
        reason: String,
    },
}

impl Action {
    pub fn agent(&self) -> &AgentName {
        match self {
            Action::Start { agent, .. }
            | Action::Kill { agent, .. }
            | Action::Send { agent, .. }
            | Action::Notify { agent, .. }
            | Action::Triage { agent, .. }
            | Action::Checkpoint { agent, .. } => agent,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Action::Start { reason, .. }
            | Action::Kill { reason, .. }
            | Action::Send { reason, .. }
            | Action::Notify { reason, .. }
            | Action::Triage { reason, .. }
            | Action::Checkpoint { reason, .. } => reason,
        }
    }

    /// Whether carrying it out changes tmux (and so is journaled as an intent first).
    pub fn mutates(&self) -> bool {
        matches!(self, Action::Start { .. } | Action::Kill { .. } | Action::Send { .. })
    }
}

/// Something the engine noticed or decided, with its reason, for the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub agent: String,
    pub incarnation: Incarnation,
    #[serde(flatten)]
    pub what: What,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "to", rename_all = "snake_case")]
pub enum What {
    Lifecycle(Lifecycle),
    Activity(Activity),
    /// A running session was taken over instead of started.
    Adopted,
    /// A restart is held back (backoff, crash loop).
    Held,
    /// A session tagged for this run whose agent the config does not name.
    Stray,
    /// Its screen is still and its process tree says whether it works off-screen.
    OffScreen(OffScreen),
    /// A start held back by host pressure (or held back for another reason now).
    Deferred(Deferral),
    Note,
}

/// A host failure, journaled once for the fleet (not once per agent, not once per pass).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    pub failure: HostFailure,
    /// The agents whose live incarnation it ended.
    pub agents: Vec<AgentName>,
    /// Host failures in a row without a stable run of the fleet in between.
    pub outages: u32,
    /// When the host backoff lets the fleet come back.
    pub back_at: Time,
    pub reason: String,
}

/// The result of one step: what was noticed and decided, and what to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub events: Vec<Event>,
    pub actions: Vec<Action>,
    /// A host failure noticed in this step: one for the fleet, journaled once.
    pub host: Option<HostEvent>,
}

#[cfg(test)]
mod tests;
