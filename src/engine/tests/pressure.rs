//! Starts under host pressure (seed 002): deferred, not failed, with the measured
//! cause; started by a later step once pressure clears; a stop wins over a start that
//! never ran; the deferral survives a snapshot.

use super::*;

const MIB: u64 = 1024 * 1024;

fn starved() -> Pressure {
    Pressure {
        load_per_core: Some(Centi(50)),
        free_memory: Some(100 * MIB),
    }
}

fn calm() -> Pressure {
    Pressure {
        load_per_core: Some(Centi(50)),
        free_memory: Some(8 * 1024 * MIB),
    }
}

fn limited(agents: &[&str]) -> Sim {
    let mut sim = Sim::new(agents, Policy::default());
    sim.fleet.start_limits = StartLimits {
        max_load_per_core: Some(Centi(200)),
        min_free_memory: Some(512 * MIB),
        max_concurrent_starts: Some(2),
    };
    sim
}

fn deferrals(sim: &Sim) -> Vec<&Deferral> {
    sim.events
        .iter()
        .filter_map(|e| match &e.what {
            What::Deferred(d) => Some(d),
            _ => None,
        })
        .collect()
}

#[test]
fn a_start_under_memory_pressure_is_deferred_with_its_cause_then_started_when_it_clears() {
    let mut sim = limited(&["a"]);
    sim.pressure = starved();
    let actions = sim.poll_for(Duration::from_secs(60));
    assert!(starts(&actions).is_empty(), "{actions:?}");
    let rec = sim.rec("a");
    let d = rec.deferred().expect("deferred");
    assert_eq!(
        d.cause,
        Pressured::Memory {
            free_memory: 100 * MIB,
            min_free_memory: 512 * MIB
        }
    );
    assert_eq!(d.start, "first start");
    assert!(
        rec.reason
            .starts_with("deferred: 100 MiB of memory available, under min_free_memory 512 MiB"),
        "{}",
        rec.reason
    );
    assert_eq!(deferrals(&sim).len(), 1, "journaled once, not every pass");
    // Load climbs too: a new cause is journaled once, the wait still counts from the
    // first deferral.
    sim.pressure.load_per_core = Some(Centi(300));
    sim.poll_for(Duration::from_secs(10));
    let said = deferrals(&sim);
    assert_eq!(said.len(), 2);
    assert!(matches!(said[1].cause, Pressured::Load { .. }), "{said:?}");
    assert_eq!(said[1].since, said[0].since);
    sim.pressure = calm();
    let actions = sim.poll_for(POLL);
    assert_eq!(starts(&actions), vec![("a".to_owned(), 1)]);
    let rec = sim.rec("a");
    assert!(rec.deferred().is_none());
    assert_eq!(rec.since, sim.now, "the wait is not counted as its run");
    assert!(
        escalation_notes(&sim)
            .iter()
            .any(|n| n.starts_with("host pressure cleared after 1m")),
        "{:?}",
        escalation_notes(&sim)
    );
}

#[test]
fn no_more_agents_start_at_once_than_max_concurrent_starts() {
    let mut sim = limited(&["a", "b", "c", "d", "e"]);
    sim.pressure = calm();
    let first = sim.step();
    assert_eq!(starts(&first.actions).len(), 2, "{:?}", first.actions);
    let waiting: Vec<&Deferral> = deferrals(&sim);
    assert_eq!(waiting.len(), 3);
    assert!(waiting.iter().all(|d| matches!(
        d.cause,
        Pressured::Starts {
            starting: 3,
            max_concurrent_starts: 2
        }
    )));
    // The first two show output: they are no longer starting, two more may.
    sim.wait(POLL);
    let second = sim.step();
    assert_eq!(starts(&second.actions).len(), 2, "{:?}", second.actions);
    let actions = sim.poll_for(POLL * 2);
    assert_eq!(starts(&actions).len(), 1);
    assert!(sim.mind.agents.values().all(|r| r.deferred().is_none()));
}

#[test]
fn a_restart_under_pressure_is_deferred_and_no_crash_is_counted_twice() {
    let mut sim = limited(&["a"]);
    sim.pressure = calm();
    sim.step();
    sim.show("a", "working");
    sim.poll_for(Duration::from_secs(120));
    sim.pressure = starved();
    sim.die("a", Exit::Code(3), "boom");
    let actions = sim.poll_for(Duration::from_secs(60));
    assert!(starts(&actions).is_empty(), "{actions:?}");
    let rec = sim.rec("a");
    assert_eq!(rec.incarnation, Incarnation(2));
    assert_eq!(rec.crashes.len(), 1);
    assert!(
        rec.deferred()
            .is_some_and(|d| d.start.starts_with("restart after zombie #1")),
        "{:?}",
        rec.deferred()
    );
    sim.pressure = calm();
    let actions = sim.poll_for(POLL);
    assert_eq!(starts(&actions), vec![("a".to_owned(), 2)]);
    assert_eq!(sim.rec("a").crashes.len(), 1);
}

#[test]
fn a_stop_wins_over_a_deferred_start() {
    let mut sim = limited(&["a"]);
    sim.pressure = starved();
    sim.poll_for(POLL * 2);
    assert!(sim.rec("a").deferred().is_some());
    sim.wait(POLL);
    let step = sim.step_with(&[Command::Stop(Sim::name("a"))]);
    assert!(
        step.actions.is_empty(),
        "nothing runs, nothing to kill: {:?}",
        step.actions
    );
    sim.pressure = calm();
    let actions = sim.poll_for(Duration::from_secs(60));
    assert!(starts(&actions).is_empty(), "{actions:?}");
    assert!(sim.rec("a").deferred().is_none());
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Completed);
}

#[test]
fn a_deferral_survives_the_snapshot_and_an_old_snapshot_has_none() {
    let mut sim = limited(&["a"]);
    sim.pressure = starved();
    sim.poll_for(POLL);
    let json = serde_json::to_string(&sim.mind).unwrap();
    let back: Mind = serde_json::from_str(&json).unwrap();
    assert_eq!(back.agents[&Sim::name("a")].deferred(), sim.rec("a").deferred());
    // Written before deferrals existed: the field is simply absent.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    strip(&mut v, "deferred");
    let back: Mind = serde_json::from_value(v).unwrap();
    assert!(back.agents[&Sim::name("a")].deferred().is_none());
}

fn strip(v: &mut serde_json::Value, key: &str) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|v| strip(v, key));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| strip(v, key)),
        _ => {}
    }
}

#[test]
fn agents_that_never_print_hold_no_start_slot_past_a_minute() {
    let mut sim = limited(&["a", "b", "c"]);
    sim.pressure = calm();
    let first = sim.step();
    assert_eq!(starts(&first.actions).len(), 2, "{:?}", first.actions);
    // a and b stay blank: after a minute they no longer count as starting.
    let actions = sim.poll_for(Duration::from_secs(65));
    assert_eq!(starts(&actions).len(), 1, "{actions:?}");
}
