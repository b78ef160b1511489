//! Host failures: a lost tmux server (gone, replaced, or found gone by a new owner) is
//! one event for the fleet, brought back with the host backoff and handoffs; agents'
//! own crash windows count their own deaths only.

use super::*;
use crate::engine::policy::HOST_STABLE_AFTER;

/// tmux's server dies: every session goes with it.
fn lose_server(sim: &mut Sim) {
    sim.panes.clear();
    sim.host = Host::ServerGone;
}

fn holds_crash_loop(sim: &Sim) -> bool {
    sim.mind.agents.values().any(|r| {
        matches!(
            r.hold(),
            Some(Hold::Until {
                cause: Wait::CrashLoop { .. },
                ..
            })
        )
    })
}

fn all_live(sim: &Sim) -> bool {
    sim.mind.agents.values().all(AgentRecord::is_live)
}

#[test]
fn a_lost_tmux_server_is_one_host_failure_not_a_crash_per_agent() {
    let mut sim = Sim::running(&["a", "b", "c"], Policy::default());
    lose_server(&mut sim);
    sim.wait(POLL);
    let step = sim.step();
    let host = step.host.expect("one host event for the fleet");
    assert_eq!(host.failure, HostFailure::ServerGone);
    assert_eq!(host.agents, ["a", "b", "c"].map(Sim::name));
    assert_eq!(host.outages, 1);
    assert!(
        host.reason.starts_with("host failure: tmux server gone: "),
        "{}",
        host.reason
    );
    assert!(host.reason.contains("not counted as crashes"), "{}", host.reason);
    // The fleet comes back at once, each agent checkpointed, with a handoff owed.
    assert_eq!(
        starts(&step.actions),
        [("a".into(), 2), ("b".into(), 2), ("c".into(), 2)]
    );
    let checkpoints = step
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Checkpoint { .. }))
        .count();
    assert_eq!(checkpoints, 3);
    for name in ["a", "b", "c"] {
        let rec = sim.rec(name);
        assert!(rec.crashes.is_empty(), "{name}: {:?}", rec.crashes);
        assert_eq!(rec.failures_in_row, 0);
        assert_eq!(rec.last_exit().unwrap().host, Some(HostFailure::ServerGone));
        assert_eq!(rec.handoff().unwrap().from, Incarnation(1));
        assert_eq!(rec.checkpoint.as_ref().unwrap().incarnation, Incarnation(1));
    }
    // Journaled once: the next passes, with the fleet back, say nothing of the host.
    sim.wait(POLL);
    assert!(sim.step().host.is_none());
    sim.wait(POLL);
    assert!(sim.step().host.is_none());
}

#[test]
fn four_server_losses_within_two_minutes_bring_the_fleet_back_each_time_without_a_crash_loop() {
    let mut sim = Sim::running(&["a", "b"], Policy::default());
    let mut waits = Vec::new();
    for _ in 0..4 {
        lose_server(&mut sim);
        sim.wait(POLL);
        let lost_at = sim.now;
        let mut host_events = 0;
        let mut second = 0;
        while !all_live(&sim) || second == 0 {
            host_events += usize::from(sim.step().host.is_some());
            second += 1;
            if !all_live(&sim) {
                let said = &sim.rec("a").reason;
                assert!(said.contains("the fleet comes back at"), "{said}");
                sim.wait(Duration::from_secs(1));
            }
            assert!(second < 100, "the fleet never came back");
        }
        assert_eq!(host_events, 1, "one host event per outage, not one per pass");
        assert!(!holds_crash_loop(&sim));
        waits.push(sim.now.since(lost_at).as_secs());
        for name in ["a", "b"] {
            sim.show(name, "back at work");
        }
        sim.wait(Duration::from_secs(20));
        sim.step();
    }
    // The host backoff: at once, then 1 s, 2 s, 4 s; all within two minutes.
    assert_eq!(waits, [0, 1, 2, 4]);
    for name in ["a", "b"] {
        assert!(sim.rec(name).crashes.is_empty());
        assert_eq!(sim.rec(name).incarnation, Incarnation(5));
    }

    // After the fleet has run stably, the backoff starts over.
    sim.wait(HOST_STABLE_AFTER);
    sim.step();
    lose_server(&mut sim);
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(step.host.unwrap().outages, 1);
    assert_eq!(starts(&step.actions).len(), 2, "back at once");
}

#[test]
fn a_host_failure_leaves_each_agents_own_crash_window_to_its_own_deaths() {
    let mut sim = Sim::running(&["a"], Policy::default());
    for _ in 0..2 {
        sim.die("a", Exit::Code(1), "boom");
        sim.wait(POLL);
        sim.step();
        sim.wait(POLL);
        sim.step();
    }
    assert_eq!(sim.rec("a").crashes.len(), 2);
    lose_server(&mut sim);
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").crashes.len(), 2, "the host failure is no crash of a's");
    assert!(!holds_crash_loop(&sim));
    sim.wait(POLL);
    sim.step();
    // a's own third death within the window is a crash loop, as before.
    sim.die("a", Exit::Code(1), "boom");
    sim.wait(POLL);
    sim.step();
    assert!(holds_crash_loop(&sim), "{}", sim.rec("a").reason);
}

#[test]
fn an_owner_that_finds_no_server_under_a_recorded_live_fleet_calls_it_a_host_restart() {
    let mut sim = Sim::running(&["a", "b"], Policy::default());
    // A reboot: the owner and the server both gone; a new owner's first look.
    lose_server(&mut sim);
    sim.first_look = true;
    sim.wait(Duration::from_secs(3600));
    let step = sim.step();
    let host = step.host.expect("a host restart");
    assert_eq!(host.failure, HostFailure::HostRestart);
    assert!(host.reason.starts_with("host restart: "), "{}", host.reason);
    assert_eq!(starts(&step.actions).len(), 2);
    for name in ["a", "b"] {
        let rec = sim.rec(name);
        assert!(rec.crashes.is_empty());
        assert!(rec.handoff().is_some());
    }
    // The handoff is typed once the new incarnation sits at its prompt, naming the
    // checkpoint and why.
    sim.show("a", "$ ");
    sim.wait(POLL);
    sim.step();
    sim.wait(POLL);
    let step = sim.step();
    let text = step
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Send {
                purpose: Purpose::Handoff,
                text,
                ..
            } => Some(text.clone()),
            _ => None,
        })
        .expect("the handoff");
    assert!(text.contains("/state/checkpoints/a.json"), "{text}");
    assert!(text.contains("host restart"), "{text}");
}

#[test]
fn another_server_without_the_fleets_sessions_is_a_host_failure_but_lost_sessions_on_the_same_server_are_crashes() {
    let s1 = ServerId { pid: 10, started: 100 };
    let s2 = ServerId { pid: 11, started: 200 };
    // The same server, the sessions gone: real deaths, one crash each.
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.host = Host::Up { server: Some(s1) };
    sim.wait(POLL);
    sim.step();
    sim.panes.clear();
    sim.wait(POLL);
    let step = sim.step();
    assert!(step.host.is_none());
    assert_eq!(sim.rec("a").crashes.len(), 1);

    // Another server in its place between two looks: a host failure.
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.host = Host::Up { server: Some(s1) };
    sim.wait(POLL);
    sim.step();
    sim.panes.clear();
    sim.host = Host::Up { server: Some(s2) };
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(step.host.unwrap().failure, HostFailure::ServerReplaced);
    assert!(sim.rec("a").crashes.is_empty());

    // A server that lists no pane at all names no server: the deaths are crashes.
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.host = Host::Up { server: Some(s1) };
    sim.wait(POLL);
    sim.step();
    sim.panes.clear();
    sim.host = Host::Up { server: None };
    sim.wait(POLL);
    assert!(sim.step().host.is_none());
    assert_eq!(sim.rec("a").crashes.len(), 1);
}

#[test]
fn a_host_failure_restarts_only_what_the_policy_and_the_user_allow() {
    let policy = Policy {
        restart: RestartPolicy::No,
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    lose_server(&mut sim);
    sim.wait(POLL);
    let step = sim.step();
    assert!(step.host.is_some());
    assert!(starts(&step.actions).is_empty());
    assert!(
        sim.rec("a").reason.contains("restart policy `no`"),
        "{}",
        sim.rec("a").reason
    );

    // A stopped agent is not live: the server going is nothing to it.
    let mut sim = Sim::running(&["a", "b"], Policy::default());
    sim.step_with(&[Command::Stop(Sim::name("b"))]);
    lose_server(&mut sim);
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(step.host.unwrap().agents, [Sim::name("a")]);
    assert_eq!(starts(&step.actions), [("a".into(), 2)]);
}
