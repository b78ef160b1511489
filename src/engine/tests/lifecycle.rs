//! Starting, first output, and the ways an incarnation ends: exits, lost panes, lost
//! processes; every decision has a reason; a simulated day never moves a lifecycle back.

use super::*;

#[test]
fn a_fresh_fleet_is_started_once_as_incarnation_1() {
    let mut sim = Sim::new(&["a", "b"], Policy::default());
    let first = sim.step();
    assert_eq!(starts(&first.actions), [("a".into(), 1), ("b".into(), 1)]);
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Booting);
    sim.wait(POLL);
    assert!(
        starts(&sim.step().actions).is_empty(),
        "a running agent is not started twice"
    );
}

#[test]
fn first_output_moves_booting_to_working() {
    let sim = Sim::running(&["a"], Policy::default());
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Working);
    assert_eq!(sim.rec("a").activity(), Some(Activity::Active));
}

#[test]
fn a_crash_is_recorded_zombie_with_its_code_and_restarted_as_incarnation_2() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.die("a", Exit::Code(3), "fatal: lost connection");
    sim.wait(POLL);
    let step = sim.step();
    let rec = sim.rec("a");
    let exit = rec.last_exit().unwrap();
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
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Completed);
    assert!(starts(&step.actions).is_empty());
    assert!(starts(&sim.poll_for(Duration::from_secs(3600))).is_empty());
    assert!(sim.rec("a").reason.contains("on-failure"), "{}", sim.rec("a").reason);
    assert!(sim.rec("a").crashes.is_empty(), "a clean exit is not a crash");
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
    assert_eq!(rec.lifecycle(), Lifecycle::Zombie);
    assert_eq!(rec.last_exit().unwrap().reason, "its tmux session disappeared");
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
    assert!(sim.rec("a").is_live(), "one poll for tmux to report the exit");
    assert!(
        sim.rec("a").reason.contains("waiting one poll"),
        "{}",
        sim.rec("a").reason
    );
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Zombie);
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
    assert_eq!(rec.lifecycle(), Lifecycle::Zombie);
    let exit = rec.last_exit().unwrap();
    assert_eq!(exit.code, Some(137));
    assert!(exit.reason.contains("killed by signal 9"), "{}", exit.reason);
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
            let now = (rec.incarnation, rec.lifecycle());
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
fn a_pane_alive_without_its_agent_process_for_two_polls_is_a_zombie() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.fleet.agents[0].process = Some("claude".into());
    let seen = |sim: &mut Sim, agent: Option<bool>| sim.pane("a").tree.agent_process = agent;
    seen(&mut sim, Some(true));
    sim.wait(POLL);
    sim.step();
    seen(&mut sim, Some(false));
    sim.wait(POLL);
    sim.step();
    assert!(sim.rec("a").is_live(), "one poll is not enough");
    seen(&mut sim, Some(true));
    sim.wait(POLL);
    sim.step();
    seen(&mut sim, Some(false));
    sim.wait(POLL);
    sim.step();
    assert!(sim.rec("a").is_live(), "the count starts over once it is seen again");
    sim.wait(POLL);
    let step = sim.step();
    assert!(step.events.iter().any(|e| e.what == What::Lifecycle(Lifecycle::Zombie)));
    let exit = sim.rec("a").last_exit().unwrap();
    assert_eq!(exit.reason, "pane alive, no `claude` process under it for 2 polls");
    assert_eq!(starts(&step.actions), [("a".to_owned(), 2)], "restarted per policy");
}

#[test]
fn an_agent_process_not_yet_seen_is_given_its_start_and_none_without_a_pattern() {
    let mut sim = Sim::new(&["a"], Policy::default());
    sim.fleet.agents[0].process = Some("claude".into());
    sim.step();
    sim.pane("a").tree.agent_process = Some(false);
    for _ in 0..4 {
        sim.wait(POLL);
        sim.step();
    }
    assert!(sim.rec("a").is_live(), "20 s into its start, never seen yet");
    sim.wait(Duration::from_secs(15));
    sim.step();
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(
        starts(&step.actions),
        [("a".to_owned(), 2)],
        "an agent that never appeared is as dead"
    );
    let mut plain = Sim::running(&["a"], Policy::default());
    plain.pane("a").tree.agent_process = Some(false);
    plain.poll_for(Duration::from_secs(60));
    assert!(
        plain.rec("a").is_live(),
        "no pattern: the pane's own process is the agent"
    );
}
