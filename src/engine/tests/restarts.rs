//! Restarts: the policy, crash loops, backoff, failed starts, starts that never
//! happened, and the fleet-wide cap.

use super::*;

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
fn three_crashes_within_the_window_hold_restarts_for_the_cooldown() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let mut restarted_at = Vec::new();
    for _ in 0..60 {
        sim.wait(POLL);
        if sim.rec("a").is_live() {
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
        if sim.rec("a").is_live() {
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
    while !sim.rec("a").is_live() {
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
    assert_eq!(sim.rec("a").last_exit().unwrap().reason, "could not start: no server");
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
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Working);
}

#[test]
fn past_the_fleet_cap_vigil_only_observes_and_says_so_once() {
    let mut sim = Sim::running(&["a", "b", "c"], Policy::default());
    sim.fleet.max_restarts_per_hour = 4;
    let mut started = 0;
    let mut told = 0;
    for _ in 0..20 {
        for name in ["a", "b", "c"] {
            if sim.rec(name).is_live() {
                sim.die(name, Exit::Code(1), "boom");
            }
        }
        let actions = sim.poll_for(Duration::from_secs(60));
        started += starts(&actions).len();
        told += actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Notify {
                        alert: Alert::FleetCapped,
                        episode: Episode::Raised,
                        ..
                    }
                )
            })
            .count();
    }
    assert_eq!(started, 4, "four restarts in the hour across the fleet, then none");
    assert_eq!(told, 1, "said loudly, once");
    let held = sim.mind.agents.values().find(|r| !r.is_live()).unwrap();
    assert!(held.reason.contains("fleet-wide cap"), "{}", held.reason);
    // An hour after the first restarts there is room again.
    let actions = sim.poll_for(Duration::from_secs(3600));
    assert!(!starts(&actions).is_empty());
}

#[test]
fn a_backoff_hold_is_said_whatever_the_agents_last_words() {
    // Regression: whether the reason named the hold used to be decided by looking for
    // "until" in the reason, which quotes the agent's last words.
    for last in ["cannot reach api.example.com", "waiting until the lock is free"] {
        let mut sim = Sim::running(&["a"], Policy::default());
        sim.die("a", Exit::Code(1), last);
        sim.wait(POLL);
        assert_eq!(starts(&sim.step().actions).len(), 1, "the first crash restarts at once");
        sim.die("a", Exit::Code(1), last);
        sim.wait(POLL);
        let step = sim.step();
        assert!(starts(&step.actions).is_empty(), "held by the backoff");
        let rec = sim.rec("a");
        assert!(rec.cooldown_until().is_some_and(|u| sim.now < u));
        assert!(
            rec.reason
                .starts_with("zombie (exited with status 1); restart held until "),
            "last words «{last}»: {}",
            rec.reason
        );
    }
}

#[test]
fn a_crash_loop_hold_is_said_from_its_field_for_as_long_as_it_holds() {
    let mut sim = Sim::running(&["a"], Policy::default());
    for _ in 0..3 {
        sim.die("a", Exit::Code(1), "retrying until it works");
        sim.wait(POLL);
        sim.step();
        sim.wait(POLL);
        sim.step();
    }
    let rec = sim.rec("a");
    assert_eq!(
        rec.hold(),
        Some(&Hold::Until {
            at: rec.cooldown_until().unwrap(),
            cause: Wait::CrashLoop { crashes: 3 }
        })
    );
    let said = rec.reason.clone();
    assert!(
        said.starts_with("zombie (exited with status 1); crash loop: 3 crashes within 2m"),
        "{said}"
    );
    let actions = sim.poll_for(Duration::from_secs(60));
    assert!(starts(&actions).is_empty());
    assert_eq!(sim.rec("a").reason, said, "the same words while the hold lasts");
}

#[test]
fn a_command_the_shell_cannot_find_is_held_as_failed_to_start_not_crash_looped() {
    let mut sim = Sim::new(&["a"], Policy::default());
    sim.step();
    sim.die("a", Exit::Code(127), "vigil-agent: 1: claude-typo: not found");
    sim.wait(POLL);
    let step = sim.step();
    let rec = sim.rec("a");
    assert_eq!(rec.lifecycle(), Lifecycle::Zombie);
    let exit = rec.last_exit().unwrap();
    assert!(exit.start_failed, "{exit:?}");
    assert!(exit.reason.contains("claude-typo: not found"), "{exit:?}");
    assert!(rec.reason.starts_with("failed to start: "), "{}", rec.reason);
    assert!(rec.crashes.is_empty(), "a start that failed is no crash");
    assert_eq!(notifies(&step.actions), 1, "the user is told");
    assert!(step.events.iter().any(|e| e.reason.contains("failed to start")));
    // Polls for an hour: never retried.
    let actions = sim.poll_for(Duration::from_secs(3600));
    assert!(starts(&actions).is_empty(), "{:?}", starts(&actions));
    // A config whose command changed is tried again by itself.
    sim.fleet.agents[0].start_key = 2;
    sim.wait(POLL);
    assert_eq!(starts(&sim.step().actions), [("a".to_owned(), 2)]);
}

#[test]
fn a_failed_start_is_retried_on_vigil_up_and_a_late_127_is_a_crash() {
    let mut sim = Sim::new(&["a"], Policy::default());
    sim.step();
    sim.die("a", Exit::Code(126), "vigil-agent: 1: ./agent: Permission denied");
    sim.wait(POLL);
    sim.step();
    assert!(sim.rec("a").last_exit().unwrap().reason.contains("Permission denied"));
    sim.wait(POLL);
    let step = sim.step_with(&[Command::Up(Sim::name("a"))]);
    assert_eq!(starts(&step.actions), [("a".to_owned(), 2)]);
    // Running for an hour, then exit 127: the agent crashed (a tool it ran is missing).
    sim.show("a", "working");
    sim.wait(Duration::from_secs(3600));
    sim.step();
    sim.die("a", Exit::Code(127), "sh: 1: rg: not found");
    sim.wait(POLL);
    let step = sim.step();
    assert!(!sim.rec("a").last_exit().unwrap().start_failed);
    assert_eq!(starts(&step.actions), [("a".to_owned(), 3)]);
}

#[test]
fn a_start_refused_before_tmux_is_asked_is_held_as_failed_to_start() {
    let mut sim = Sim::new(&["a"], Policy::default());
    let step = sim.step();
    sim.panes.clear();
    let Action::Start { incarnation, .. } = &step.actions[0] else {
        panic!()
    };
    let out = start_failed(
        &mut sim.mind,
        &sim.fleet,
        &Sim::name("a"),
        *incarnation,
        "its cwd /gone is gone (not a directory)",
        sim.now,
        &sim.tz,
    );
    assert_eq!(notifies(&out.actions), 1);
    assert!(
        sim.rec("a").reason.contains("its cwd /gone is gone"),
        "{}",
        sim.rec("a").reason
    );
    let actions = sim.poll_for(Duration::from_secs(600));
    assert!(starts(&actions).is_empty());
}
