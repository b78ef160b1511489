//! The engine driven through simulated time: a fake clock and hand-made observations,
//! hours of supervision in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use super::*;

mod alerts;
mod commands;
mod host;
mod ladder;
mod lifecycle;
mod limits;
mod pressure;
mod props;
mod purity;
mod resets;
mod restarts;
mod screens;
mod signals;
mod time;
mod triage;

const POLL: Duration = Duration::from_secs(5);

fn patterns() -> Patterns {
    let p = |s: &[&str]| Patterns::join(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    Patterns {
        prompt: p(&[r"^\$ ?$"]),
        busy: p(&["esc to interrupt"]),
        waiting: p(&["(?i)do you trust"]),
        rate_limit: p(&["(?i)rate limit", "(?i)hit your (\\w+ )?limit", "(?i)quota exceeded"]),
        volatile: p(&["[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", r"\d+s\b"]),
        ..Patterns::default()
    }
}

/// A fleet, a mind, a clock and what tmux shows: the world of one test.
struct Sim {
    mind: Mind,
    fleet: Fleet,
    now: Time,
    panes: Vec<PaneSeen>,
    /// Every action and event ever produced, for assertions over a whole run.
    actions: Vec<Action>,
    events: Vec<Event>,
    supervise: bool,
    /// Triage answers handed in at the next step.
    answers: Vec<TriageResult>,
    tz: jiff::tz::TimeZone,
    /// A clock gap handed in at the next step.
    gap: Option<gap::Gap>,
    /// Whether tmux's server answers, and which one.
    host: Host,
    /// The next step is an owner's first look.
    first_look: bool,
    /// The host's load and memory handed to every step.
    pressure: Pressure,
    /// Signals handed in at the next step.
    signals: Vec<signal::Signal>,
    /// What the structured limit sources say, handed to every step (the supervisor
    /// hands its latest reading each pass).
    resets: Vec<crate::engine::resets::Reported>,
}

impl Sim {
    fn new(agents: &[&str], policy: Policy) -> Self {
        let patterns = Arc::new(patterns());
        let agents = agents
            .iter()
            .map(|n| FleetAgent {
                name: AgentName::new(n).unwrap(),
                session: format!("proj-{n}"),
                policy: policy.clone(),
                patterns: patterns.clone(),
                start_key: 1,
                process: None,
            })
            .collect();
        Self {
            mind: Mind::default(),
            fleet: Fleet {
                run: "proj-1234".into(),
                agents,
                max_restarts_per_hour: 1000,
                checkpoints: "/state/checkpoints".into(),
                start_limits: StartLimits::default(),
            },
            now: Time::from_millis(1_800_000_000_000),
            panes: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
            supervise: true,
            answers: Vec::new(),
            tz: jiff::tz::TimeZone::UTC,
            gap: None,
            host: Host::default(),
            first_look: false,
            pressure: Pressure::default(),
            signals: Vec::new(),
            resets: Vec::new(),
        }
    }

    fn name(n: &str) -> AgentName {
        AgentName::new(n).unwrap()
    }

    /// One step with the given commands; carries out Start/Kill on the fake panes the
    /// way tmux would (a started agent shows `screen`).
    fn step_with(&mut self, commands: &[Command]) -> Step {
        let inputs = Inputs {
            observation: Observation {
                panes: self.panes.clone(),
                host: self.host,
            },
            commands: commands.to_vec(),
            supervise: self.supervise,
            triage: std::mem::take(&mut self.answers),
            tz: self.tz.clone(),
            gap: self.gap.take(),
            first_look: std::mem::take(&mut self.first_look),
            pressure: self.pressure,
            signals: std::mem::take(&mut self.signals),
            resets: self.resets.clone(),
        };
        let step = step(&mut self.mind, &self.fleet, &inputs, self.now);
        for action in &step.actions {
            match action {
                Action::Start {
                    agent,
                    incarnation,
                    session,
                    ..
                } => {
                    if self.host == Host::ServerGone {
                        // Starting a session starts a new server.
                        self.host = Host::Up {
                            server: Some(ServerId {
                                pid: 5000 + incarnation.0,
                                started: u64::try_from(self.now.millis() / 1000).unwrap(),
                            }),
                        };
                    }
                    self.panes.retain(|p| p.agent != agent.as_str());
                    self.panes.push(PaneSeen {
                        session: session.clone(),
                        agent: agent.to_string(),
                        incarnation: *incarnation,
                        pane_pid: 1000 + incarnation.0,
                        state: PaneState::Alive,
                        tail: Some(vec!["booting…".into()].into()),
                        tree: TreeSeen::default(),
                    });
                }
                Action::Kill { agent, .. } => self.panes.retain(|p| p.agent != agent.as_str()),
                Action::Send { .. } | Action::Notify { .. } | Action::Triage { .. } | Action::Checkpoint { .. } => {}
            }
        }
        self.actions.extend(step.actions.clone());
        self.events.extend(step.events.clone());
        step
    }

    fn step(&mut self) -> Step {
        self.step_with(&[])
    }

    fn wait(&mut self, d: Duration) {
        self.now = self.now.plus(d);
    }

    /// Polls every `POLL` for `d`, with the screen frozen (or as `screen` says).
    fn poll_for(&mut self, d: Duration) -> Vec<Action> {
        let mut actions = Vec::new();
        let end = self.now.plus(d);
        while self.now < end {
            self.wait(POLL);
            actions.extend(self.step().actions);
        }
        actions
    }

    fn pane(&mut self, agent: &str) -> &mut PaneSeen {
        self.panes.iter_mut().find(|p| p.agent == agent).unwrap()
    }

    fn show(&mut self, agent: &str, text: &str) {
        self.pane(agent).tail = Some(text.lines().map(str::to_owned).collect());
    }

    fn die(&mut self, agent: &str, exit: Exit, last: &str) {
        let pane = self.pane(agent);
        pane.state = PaneState::Dead(exit);
        pane.tail = Some(
            vec![
                last.into(),
                "".into(),
                "Pane is dead (status 3, Mon Nov 23 00:51:04 2026)".into(),
            ]
            .into(),
        );
    }

    fn rec(&self, agent: &str) -> &AgentRecord {
        &self.mind.agents[&Self::name(agent)]
    }

    /// A fleet that has been started and shows first output.
    fn running(agents: &[&str], policy: Policy) -> Self {
        let mut sim = Self::new(agents, policy);
        sim.step();
        for a in agents {
            sim.show(a, "hello from the agent");
        }
        sim.wait(POLL);
        sim.step();
        sim
    }
}

fn starts(actions: &[Action]) -> Vec<(String, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Start { agent, incarnation, .. } => Some((agent.to_string(), incarnation.0)),
            _ => None,
        })
        .collect()
}

fn sends(actions: &[Action], purpose: Purpose) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Send { purpose: p, .. } if *p == purpose))
        .count()
}

fn at(rfc3339: &str) -> Time {
    Time::from_millis(rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond())
}

fn notifies(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Notify { .. })).count()
}

fn escalation_notes(sim: &Sim) -> Vec<String> {
    sim.events
        .iter()
        .filter(|e| e.what == What::Note)
        .map(|e| e.reason.clone())
        .collect()
}

/// The ladder alone: no idle nudges, no stale kill within the test.
fn ladder_policy() -> Policy {
    Policy {
        idle_checks: 1000,
        stale_after: Duration::from_secs(3600),
        ..Policy::default()
    }
}
