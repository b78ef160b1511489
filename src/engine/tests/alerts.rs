//! Telling the user: one notice per episode of a lasting alert, a `resolved` when it
//! ends, and momentary alerts (a termination) each time.

use super::*;

fn notices(actions: &[Action]) -> Vec<(Alert, Episode)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify { alert, episode, .. } => Some((*alert, *episode)),
            _ => None,
        })
        .collect()
}

const DIALOG: &str = "Do you trust the files in this folder?\n> 1. Yes, proceed\n  2. No, exit\n$";

#[test]
fn a_dialog_is_one_waiting_notice_however_many_polls_then_one_resolved_when_it_goes() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", DIALOG);
    let actions = sim.poll_for(Duration::from_secs(3600));
    assert_eq!(notices(&actions), [(Alert::Waiting, Episode::Raised)]);
    assert!(
        sim.rec("a").alerts.contains(&Alert::Waiting),
        "the episode is on record"
    );
    sim.show("a", "trusted; working");
    let actions = sim.poll_for(Duration::from_secs(60));
    assert_eq!(notices(&actions), [(Alert::Waiting, Episode::Resolved)]);
    assert!(sim.rec("a").alerts.is_empty());
    sim.show("a", DIALOG);
    let actions = sim.poll_for(Duration::from_secs(60));
    assert_eq!(notices(&actions), [(Alert::Waiting, Episode::Raised)], "a new episode");
}

#[test]
fn an_open_episode_survives_the_snapshot_so_a_new_owner_does_not_tell_again() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", DIALOG);
    sim.poll_for(Duration::from_secs(30));
    let json = serde_json::to_string(&sim.mind).unwrap();
    sim.mind = serde_json::from_str(&json).unwrap();
    let actions = sim.poll_for(Duration::from_secs(60));
    assert_eq!(notices(&actions), []);
    sim.show("a", "going");
    assert_eq!(
        notices(&sim.poll_for(Duration::from_secs(10))),
        [(Alert::Waiting, Episode::Resolved)]
    );
}

#[test]
fn a_record_written_before_alerts_loads_with_no_episode_open() {
    let sim = Sim::running(&["a"], Policy::default());
    let mut value = serde_json::to_value(sim.rec("a")).unwrap();
    value.as_object_mut().unwrap().remove("alerts");
    let rec: AgentRecord = serde_json::from_value(value).unwrap();
    assert!(rec.alerts.is_empty());
}

#[test]
fn a_crash_loop_is_told_once_and_resolved_when_its_hold_ends() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let mut actions = Vec::new();
    for _ in 0..3 {
        sim.die("a", Exit::Code(1), "cannot reach the api");
        sim.wait(POLL);
        actions.extend(sim.step().actions);
        sim.wait(POLL);
        actions.extend(sim.step().actions);
    }
    actions.extend(sim.poll_for(Duration::from_secs(60)));
    let raised: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify {
                alert: Alert::CrashLoop,
                reason,
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(raised[0].contains("cannot reach the api"), "{}", raised[0]);
    let actions = sim.poll_for(Duration::from_secs(180));
    assert_eq!(notices(&actions), [(Alert::CrashLoop, Episode::Resolved)]);
    assert!(!starts(&actions).is_empty(), "restarted after the hold");
}

#[test]
fn an_agent_terminated_at_its_stale_timeout_is_told() {
    let policy = Policy {
        stale_after: Duration::from_secs(600),
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    sim.show("a", "thinking (no prompt)");
    let actions = sim.poll_for(Duration::from_secs(900));
    let terminated = notices(&actions)
        .iter()
        .filter(|n| **n == (Alert::Terminated, Episode::Raised))
        .count();
    assert_eq!(terminated, 1, "{:?}", notices(&actions));
}
