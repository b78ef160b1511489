//! The engine driven through simulated time: a fake clock and hand-made observations,
//! hours of supervision in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use super::*;

mod props;
mod recovery;

const POLL: Duration = Duration::from_secs(5);

fn patterns() -> Patterns {
    let p = |s: &[&str]| Patterns::join(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    Patterns {
        prompt: p(&[r"^\$ ?$"]),
        busy: p(&["esc to interrupt"]),
        waiting: p(&["(?i)do you trust"]),
        rate_limit: p(&["(?i)rate limit", "(?i)hit your (\\w+ )?limit", "(?i)quota exceeded"]),
        volatile: p(&["[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", r"\d+s\b"]),
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
            })
            .collect();
        Self {
            mind: Mind::default(),
            fleet: Fleet {
                run: "proj-1234".into(),
                agents,
                max_restarts_per_hour: 1000,
                checkpoints: "/state/checkpoints".into(),
            },
            now: Time::from_millis(1_800_000_000_000),
            panes: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
            supervise: true,
            answers: Vec::new(),
            tz: jiff::tz::TimeZone::UTC,
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
            },
            commands: commands.to_vec(),
            supervise: self.supervise,
            triage: std::mem::take(&mut self.answers),
            tz: self.tz.clone(),
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
                    self.panes.retain(|p| p.agent != agent.as_str());
                    self.panes.push(PaneSeen {
                        session: session.clone(),
                        agent: agent.to_string(),
                        incarnation: *incarnation,
                        pane_pid: 1000 + incarnation.0,
                        state: PaneState::Alive,
                        tail: Some(vec!["booting…".into()]),
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
        pane.tail = Some(vec![
            last.into(),
            "".into(),
            "Pane is dead (status 3, Mon Nov 23 00:51:04 2026)".into(),
        ]);
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

#[test]
fn a_fresh_fleet_is_started_once_as_incarnation_1() {
    let mut sim = Sim::new(&["a", "b"], Policy::default());
    let first = sim.step();
    assert_eq!(starts(&first.actions), [("a".into(), 1), ("b".into(), 1)]);
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Booting);
    sim.wait(POLL);
    assert!(
        starts(&sim.step().actions).is_empty(),
        "a running agent is not started twice"
    );
}

#[test]
fn first_output_moves_booting_to_working() {
    let sim = Sim::running(&["a"], Policy::default());
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Working);
    assert_eq!(sim.rec("a").activity, Some(Activity::Active));
}

#[test]
fn a_crash_is_recorded_zombie_with_its_code_and_restarted_as_incarnation_2() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.die("a", Exit::Code(3), "fatal: lost connection");
    sim.wait(POLL);
    let step = sim.step();
    let rec = sim.rec("a");
    let exit = rec.last_exit.as_ref().unwrap();
    assert_eq!(exit.code, Some(3));
    assert_eq!(
        exit.last_lines,
        ["fatal: lost connection"],
        "tmux's own notice is not the agent's words"
    );
    assert_eq!(starts(&step.actions), [("a".into(), 2)], "first crash restarts at once");
    assert_eq!(rec.incarnation, Incarnation(2));
    assert_eq!(rec.restarts, 1);
    assert_eq!(rec.crashes.len(), 1);
    let zombie = step
        .events
        .iter()
        .find(|e| e.what == What::Lifecycle(Lifecycle::Zombie))
        .unwrap();
    assert!(zombie.reason.contains("exited with status 3"), "{}", zombie.reason);
    assert!(zombie.reason.contains("fatal: lost connection"), "{}", zombie.reason);
}

#[test]
fn a_clean_exit_is_completed_and_not_restarted_under_on_failure() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.die("a", Exit::Code(0), "all done");
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Completed);
    assert!(starts(&step.actions).is_empty());
    assert!(starts(&sim.poll_for(Duration::from_secs(3600))).is_empty());
    assert!(sim.rec("a").reason.contains("on-failure"), "{}", sim.rec("a").reason);
    assert!(sim.rec("a").crashes.is_empty(), "a clean exit is not a crash");
}

#[test]
fn restart_policies_decide_what_follows_an_exit() {
    for (policy, exit, restarted) in [
        (RestartPolicy::No, 3, false),
        (RestartPolicy::OnFailure, 3, true),
        (RestartPolicy::OnFailure, 0, false),
        (RestartPolicy::Always, 0, true),
        (RestartPolicy::UnlessStopped, 0, true),
    ] {
        let mut sim = Sim::running(
            &["a"],
            Policy {
                restart: policy,
                ..Policy::default()
            },
        );
        sim.die("a", Exit::Code(exit), "bye");
        sim.wait(POLL);
        let step = sim.step();
        assert_eq!(
            !starts(&step.actions).is_empty(),
            restarted,
            "{policy:?} after exit {exit}"
        );
    }
}

#[test]
fn a_vanished_session_is_a_zombie() {
    let mut sim = Sim::running(
        &["a"],
        Policy {
            restart: RestartPolicy::No,
            ..Policy::default()
        },
    );
    sim.panes.clear();
    sim.wait(POLL);
    sim.step();
    let rec = sim.rec("a");
    assert_eq!(rec.lifecycle, Lifecycle::Zombie);
    assert_eq!(rec.last_exit.as_ref().unwrap().reason, "its tmux session disappeared");
}

#[test]
fn a_pane_whose_process_is_gone_is_a_zombie() {
    let mut sim = Sim::running(
        &["a"],
        Policy {
            restart: RestartPolicy::No,
            ..Policy::default()
        },
    );
    sim.pane("a").state = PaneState::ProcessGone;
    sim.wait(POLL);
    sim.step();
    assert!(sim.rec("a").lifecycle.is_live(), "one poll for tmux to report the exit");
    assert!(
        sim.rec("a").reason.contains("waiting one poll"),
        "{}",
        sim.rec("a").reason
    );
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Zombie);
}

#[test]
fn an_exit_status_that_arrives_a_poll_late_is_still_recorded() {
    let mut sim = Sim::running(
        &["a"],
        Policy {
            restart: RestartPolicy::No,
            ..Policy::default()
        },
    );
    // The process is gone before tmux has reaped it (a busy machine)...
    sim.pane("a").state = PaneState::ProcessGone;
    sim.wait(POLL);
    sim.step();
    // ...and on the next poll tmux knows it was killed by SIGKILL.
    sim.pane("a").state = PaneState::Dead(Exit::Code(137));
    sim.wait(POLL);
    sim.step();
    let rec = sim.rec("a");
    assert_eq!(rec.lifecycle, Lifecycle::Zombie);
    let exit = rec.last_exit.as_ref().unwrap();
    assert_eq!(exit.code, Some(137));
    assert!(exit.reason.contains("killed by signal 9"), "{}", exit.reason);
}

#[test]
fn a_spinner_over_a_frozen_screen_reads_unchanged_and_stalls_after_the_timeout() {
    // The ladder's triage step would judge it first; here only the timeout acts.
    let policy = Policy {
        stale_after: Duration::from_secs(3600),
        triage_after: Duration::from_secs(7200),
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    let frames = ["⠋", "⠙", "⠹", "⠸"];
    let mut stalled_at = None;
    for i in 0..800u32 {
        sim.wait(POLL);
        let text = format!("Working on the parser\n{} Thinking… {}s", frames[i as usize % 4], i * 5);
        sim.show("a", &text);
        let step = sim.step();
        if !starts(&step.actions).is_empty() {
            stalled_at = Some(i);
            break;
        }
        if i > 1 {
            assert_eq!(sim.rec("a").activity, Some(Activity::Quiet), "poll {i}");
        }
    }
    let i = stalled_at.expect("the hung agent is restarted");
    // Unchanged from the first frame onwards: 3600 s / 5 s = 720 polls.
    assert_eq!(i, 720);
    let stalled = sim
        .events
        .iter()
        .find(|e| e.what == What::Lifecycle(Lifecycle::Stalled))
        .unwrap();
    assert_eq!(stalled.reason, "screen unchanged for 1h (stale_after 1h)");
    assert_eq!(sim.rec("a").incarnation, Incarnation(2));
}

#[test]
fn a_stalled_agent_under_policy_no_is_left_running_and_said_so() {
    let policy = Policy {
        restart: RestartPolicy::No,
        stale_after: Duration::from_secs(60),
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    let actions = sim.poll_for(Duration::from_secs(600));
    assert!(starts(&actions).is_empty());
    assert!(!actions.iter().any(|a| matches!(a, Action::Kill { .. })));
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Stalled);
    assert!(
        sim.rec("a").reason.contains("restart policy `no`"),
        "{}",
        sim.rec("a").reason
    );
}

#[test]
fn an_idle_agent_is_nudged_after_three_unchanged_checks_then_less_and_less_often() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "done with step 1\n$");
    sim.wait(POLL);
    sim.step(); // the screen changed: active
    let mut nudged_at = Vec::new();
    for check in 1..=40 {
        sim.wait(POLL);
        let step = sim.step();
        if sends(&step.actions, Purpose::Nudge) > 0 {
            nudged_at.push(check);
            // The nudge echoes and gets a short answer, then the agent sits at its prompt.
            sim.show("a", &format!("done with step 1\n$ continue\n$ {check}"));
            sim.wait(POLL);
            sim.step();
            sim.show("a", &format!("done with step 1\n$ continue\n{check}\n$"));
            sim.wait(POLL);
            sim.step();
        }
    }
    assert_eq!(nudged_at[0], 3, "nudged at the third unchanged check");
    let gaps: Vec<i32> = nudged_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "nudges space out: {nudged_at:?}");
    // Each nudge got an answer: never stuck long enough to climb the ladder.
    assert_eq!(sim.rec("a").escalation, Escalation::None);
}

#[test]
fn a_busy_agent_at_its_prompt_is_not_nudged() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "$\n✻ Pondering… (esc to interrupt)");
    let actions = sim.poll_for(Duration::from_secs(120));
    assert_eq!(sends(&actions, Purpose::Nudge), 0);
    assert_eq!(sim.rec("a").activity, Some(Activity::Quiet));
}

#[test]
fn a_dialog_waiting_for_a_human_is_never_nudged_or_killed_and_the_user_is_told_once() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show(
        "a",
        "Do you trust the files in this folder?\n> 1. Yes, proceed\n  2. No, exit\n$",
    );
    let actions = sim.poll_for(Duration::from_secs(10 * 3600));
    assert_eq!(sim.rec("a").activity, Some(Activity::Waiting));
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Working);
    assert!(
        sim.rec("a").reason.starts_with("needs a human"),
        "{}",
        sim.rec("a").reason
    );
    assert_eq!(sends(&actions, Purpose::Nudge), 0);
    assert!(starts(&actions).is_empty() && !actions.iter().any(|a| matches!(a, Action::Kill { .. })));
    let notes = actions.iter().filter(|a| matches!(a, Action::Notify { .. })).count();
    assert_eq!(notes, 1);
}

#[test]
fn three_crashes_within_the_window_hold_restarts_for_the_cooldown() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let mut restarted_at = Vec::new();
    for _ in 0..60 {
        sim.wait(POLL);
        if sim.rec("a").lifecycle.is_live() {
            sim.die("a", Exit::Code(1), "cannot reach api.example.com");
        }
        let step = sim.step();
        if !starts(&step.actions).is_empty() {
            restarted_at.push(sim.now.since(Time::from_millis(1_800_000_000_000)).as_secs());
        }
    }
    // Crash 1 (t=10) restarts at once, crash 2 (t=15) backs off 1 s (next poll, t=20),
    // crash 3 (t=25) makes three within 2 m: held 120 s, until t=145.
    assert_eq!(&restarted_at[..3], [10, 20, 145]);
    let held = sim
        .events
        .iter()
        .find(|e| e.what == What::Held && e.reason.starts_with("crash loop"))
        .unwrap();
    assert!(
        held.reason.contains("3 crashes within 2m; no restart for 2m"),
        "{}",
        held.reason
    );
}

#[test]
fn backoff_doubles_while_failures_continue_and_resets_after_a_stable_run() {
    let policy = Policy {
        crash_max: 1000,
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    let mut gaps = Vec::new();
    let mut last = sim.now;
    for _ in 0..3000 {
        sim.wait(Duration::from_secs(1));
        if sim.rec("a").lifecycle.is_live() {
            sim.die("a", Exit::Code(1), "boom");
        }
        if !starts(&sim.step().actions).is_empty() {
            gaps.push(sim.now.since(last).as_secs());
            last = sim.now;
        }
    }
    // Each crash is seen one second after the restart, then waits the backoff.
    assert_eq!(&gaps[1..10], [2, 3, 5, 9, 17, 33, 65, 129, 257]);
    assert_eq!(gaps[10], 301, "capped at 5 minutes");

    // A run longer than STABLE_AFTER clears the count: the next crash restarts at once.
    while !sim.rec("a").lifecycle.is_live() {
        sim.wait(Duration::from_secs(1));
        sim.step();
    }
    sim.show("a", "stable");
    sim.step();
    sim.wait(Policy::default().stable_after);
    sim.show("a", "still fine");
    sim.step();
    sim.die("a", Exit::Code(1), "boom");
    sim.wait(Duration::from_secs(1));
    assert_eq!(starts(&sim.step().actions).len(), 1);
}

#[test]
fn stop_kills_and_holds_and_up_starts_again() {
    let mut sim = Sim::running(
        &["a"],
        Policy {
            restart: RestartPolicy::Always,
            ..Policy::default()
        },
    );
    let step = sim.step_with(&[Command::Stop(Sim::name("a"))]);
    assert!(matches!(step.actions[..], [Action::Kill { .. }]));
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Completed);
    assert!(
        starts(&sim.poll_for(Duration::from_secs(3600))).is_empty(),
        "a stop holds"
    );
    assert!(sim.rec("a").reason.starts_with("stopped by the user"));
    let up = sim.step_with(&[Command::Up(Sim::name("a"))]);
    assert_eq!(starts(&up.actions), [("a".into(), 2)]);
}

#[test]
fn up_of_a_running_agent_starts_nothing() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let step = sim.step_with(&[Command::Up(Sim::name("a"))]);
    assert!(step.actions.is_empty());
    assert!(step.events.iter().any(|e| e.reason.contains("already running as #1")));
}

#[test]
fn restart_replaces_a_live_incarnation_without_counting_a_crash() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let step = sim.step_with(&[Command::Restart(Sim::name("a"))]);
    assert_eq!(starts(&step.actions), [("a".into(), 2)]);
    assert!(sim.rec("a").crashes.is_empty());
    assert_eq!(sim.rec("a").last_exit.as_ref().unwrap().reason, "restarted by the user");
}

#[test]
fn a_stop_before_the_first_start_keeps_the_agent_down() {
    let mut sim = Sim::new(&["a", "b"], Policy::default());
    let step = sim.step_with(&[Command::Stop(Sim::name("a"))]);
    assert_eq!(starts(&step.actions), [("b".into(), 1)]);
}

#[test]
fn a_running_session_found_in_tmux_is_adopted_not_restarted() {
    let mut sim = Sim::new(&["a"], Policy::default());
    sim.panes.push(PaneSeen {
        session: "proj-a".into(),
        agent: "a".into(),
        incarnation: Incarnation(7),
        pane_pid: 4242,
        state: PaneState::Alive,
        tail: Some(vec!["still working".into()]),
    });
    let step = sim.step();
    assert!(step.actions.is_empty());
    assert_eq!(sim.rec("a").incarnation, Incarnation(7));
    assert_eq!(sim.rec("a").pane_pid, Some(4242));
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Working);
    assert!(step.events.iter().any(|e| e.what == What::Adopted));
}

#[test]
fn a_session_tagged_for_an_agent_no_longer_configured_is_reported_once_and_left_alone() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.panes.push(PaneSeen {
        session: "proj-old".into(),
        agent: "old".into(),
        incarnation: Incarnation(2),
        pane_pid: 99,
        state: PaneState::Alive,
        tail: None,
    });
    let actions = sim.poll_for(Duration::from_secs(60));
    assert!(actions.is_empty());
    assert_eq!(sim.events.iter().filter(|e| e.what == What::Stray).count(), 1);
}

#[test]
fn a_rate_limit_cools_down_without_nudges_then_resumes_once() {
    let policy = Policy {
        rate_limit_cooldown: Duration::from_secs(300),
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    sim.show("a", "Error: rate limit exceeded\n$");
    let during = sim.poll_for(Duration::from_secs(295));
    assert_eq!(sim.rec("a").activity, Some(Activity::RateLimited));
    assert!(during.is_empty(), "no nudge, no restart while cooling down: {during:?}");
    let after = sim.poll_for(Duration::from_secs(10));
    assert_eq!(sends(&after, Purpose::Resume), 1);
    // The agent picks up; the old limit line still on screen is not a new limit.
    for i in 0..20 {
        sim.show("a", &format!("Error: rate limit exceeded\n$ continue\nworking {i}"));
        sim.wait(POLL);
        let step = sim.step();
        assert!(step.actions.is_empty(), "{:?}", step.actions);
        assert_eq!(sim.rec("a").activity, Some(Activity::Active));
    }
}

#[test]
fn renewed_rate_limits_cool_down_shorter_and_the_fourth_forces_a_restart() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let mut cooldowns = Vec::new();
    for round in 0..5 {
        sim.show("a", &format!("round {round}\nError: rate limit exceeded"));
        sim.wait(POLL);
        let step = sim.step();
        if !starts(&step.actions).is_empty() {
            break;
        }
        let rl = sim.rec("a").rate_limit.clone().unwrap();
        cooldowns.push(rl.until.since(sim.now).as_secs());
        sim.wait(rl.until.since(sim.now));
        sim.step(); // cooldown over: resume
        sim.show("a", &format!("round {round}\nresumed, working"));
        sim.wait(POLL);
        sim.step();
    }
    assert_eq!(cooldowns, [300, 300, 150, 100]);
    assert_eq!(sim.rec("a").incarnation, Incarnation(2));
    let stalled = sim
        .events
        .iter()
        .find(|e| e.what == What::Lifecycle(Lifecycle::Stalled))
        .unwrap();
    assert!(stalled.reason.contains("came back 4 times"), "{}", stalled.reason);
}

#[test]
fn a_failed_start_is_a_crash_and_backs_off() {
    let mut sim = Sim::new(&["a"], Policy::default());
    let step = sim.step();
    sim.panes.clear();
    let events = action_failed(
        &mut sim.mind,
        &sim.fleet,
        &step.actions[0],
        "no server",
        sim.now,
        &sim.tz,
    );
    assert_eq!(events[0].what, What::Lifecycle(Lifecycle::Zombie));
    assert_eq!(
        sim.rec("a").last_exit.as_ref().unwrap().reason,
        "could not start: no server"
    );
}

#[test]
fn every_action_and_lifecycle_event_carries_a_reason() {
    let mut sim = Sim::running(
        &["a", "b"],
        Policy {
            stale_after: Duration::from_secs(120),
            ..Policy::default()
        },
    );
    sim.show("b", "$");
    sim.poll_for(Duration::from_secs(600));
    sim.die("a", Exit::Signal(9), "");
    sim.poll_for(Duration::from_secs(600));
    assert!(!sim.actions.is_empty() && !sim.events.is_empty());
    assert!(sim.actions.iter().all(|a| !a.reason().is_empty()));
    assert!(sim.events.iter().all(|e| !e.reason.is_empty()));
    for rec in sim.mind.agents.values() {
        assert!(!rec.reason.is_empty());
    }
}

/// A small deterministic generator, so the random walk below is reproducible.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn over_a_simulated_day_of_random_events_lifecycle_never_goes_backwards() {
    let names = ["a", "b", "c", "d"];
    let policy = Policy {
        stale_after: Duration::from_secs(900),
        ..Policy::default()
    };
    let mut sim = Sim::running(&names, policy);
    let mut rng = Lcg(7);
    let screens = [
        "$",
        "working\n⠋ 3s",
        "Do you trust this folder?",
        "Error: rate limit",
        "output",
        "",
    ];
    let mut last: std::collections::HashMap<String, (Incarnation, Lifecycle)> = Default::default();
    for _ in 0..(24 * 3600 / 5) {
        sim.wait(POLL);
        for name in names {
            if !sim.panes.iter().any(|p| p.agent == name) {
                continue;
            }
            match rng.next(40) {
                0 => sim.die(name, Exit::Code(rng.next(3) as i32), "x"),
                1 => sim.panes.retain(|p| p.agent != name),
                2..=8 => {
                    let s = screens[rng.next(screens.len() as u64) as usize];
                    sim.show(name, s)
                }
                _ => {}
            }
        }
        let commands: Vec<Command> = match rng.next(200) {
            0 => vec![Command::Stop(Sim::name(names[rng.next(4) as usize]))],
            1 => vec![Command::Up(Sim::name(names[rng.next(4) as usize]))],
            2 => vec![Command::Restart(Sim::name(names[rng.next(4) as usize]))],
            _ => vec![],
        };
        let step = sim.step_with(&commands);
        let mut started = std::collections::HashSet::new();
        for s in starts(&step.actions) {
            assert!(started.insert(s.0.clone()), "two starts for {} in one step", s.0);
        }
        for (name, rec) in &sim.mind.agents {
            let now = (rec.incarnation, rec.lifecycle);
            if let Some(&(inc, lc)) = last.get(name.as_str()) {
                assert!(now.0 >= inc, "incarnation went down for {name}");
                if now.0 == inc && now.1 != lc {
                    assert!(lc.can_become(now.1), "{name} {inc}: {lc:?} -> {:?}", now.1);
                }
            }
            last.insert(name.to_string(), now);
        }
    }
    assert!(sim.actions.len() > 100, "the walk exercised the engine");
}

#[test]
fn without_supervision_only_commands_act_and_deaths_are_still_recorded() {
    let mut sim = Sim::running(&["a", "b"], Policy::default());
    sim.supervise = false;
    sim.die("a", Exit::Code(2), "oops");
    sim.wait(POLL);
    let step = sim.step_with(&[Command::Nudge(Sim::name("b"))]);
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Zombie, "the death is recorded");
    assert!(starts(&step.actions).is_empty(), "but not acted on");
    assert_eq!(sends(&step.actions, Purpose::Nudge), 1, "the command is obeyed");
    let mut fresh = Sim::new(&["a", "b"], Policy::default());
    fresh.supervise = false;
    let up = fresh.step_with(&[Command::Up(Sim::name("b"))]);
    assert_eq!(starts(&up.actions), [("b".into(), 1)], "`up b` starts only b");
}

#[test]
fn a_limit_that_comes_back_while_the_old_line_lingers_is_a_renewal() {
    let mut sim = Sim::running(
        &["a"],
        Policy {
            rate_limit_lines: 10,
            ..Policy::default()
        },
    );
    sim.show("a", "Error: rate limit exceeded\n> ");
    sim.wait(POLL);
    sim.step();
    let until = sim.rec("a").rate_limit.clone().unwrap().until;
    sim.wait(until.since(sim.now));
    assert_eq!(sends(&sim.step().actions, Purpose::Resume), 1);
    // Working again: the old line is still among the last 10, the screen keeps changing.
    for i in 0..5 {
        sim.show("a", &format!("Error: rate limit exceeded\n> continue\nstep {i}"));
        sim.wait(POLL);
        sim.step();
        assert_eq!(
            sim.rec("a").rate_limit.as_ref().unwrap().renewals,
            0,
            "working is not a renewal"
        );
    }
    // Stuck on a limit again, with the old line still there: that is a renewal.
    sim.show(
        "a",
        "Error: rate limit exceeded\n> continue\nstep 5\nError: rate limit exceeded",
    );
    sim.wait(POLL);
    sim.step();
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").rate_limit.as_ref().unwrap().renewals, 1);
    assert_eq!(sim.rec("a").activity, Some(Activity::RateLimited));
}

#[test]
fn a_start_decided_but_never_carried_out_is_done_again_without_counting_a_crash() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.die("a", Exit::Code(1), "boom");
    sim.wait(POLL);
    // vigil decides to start #2 and dies before tmux is asked: #1's dead pane remains.
    let old = sim.panes.clone();
    sim.step();
    sim.panes = old;
    let crashes = sim.rec("a").crashes.len();
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(
        starts(&step.actions),
        [("a".into(), 2)],
        "the same incarnation, started again"
    );
    assert_eq!(sim.rec("a").crashes.len(), crashes, "not a crash");
    assert!(
        step.actions[0]
            .reason()
            .contains("never happened (tmux still shows #1)"),
        "{:?}",
        step.actions
    );
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").lifecycle, Lifecycle::Working);
}
