//! The user's commands, and what tmux shows beating the record: stop, up, restart,
//! nudge without supervision, adoption, strays.

use super::*;

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
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Completed);
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
    assert_eq!(sim.rec("a").last_exit().unwrap().reason, "restarted by the user");
}

#[test]
fn a_stop_before_the_first_start_keeps_the_agent_down() {
    let mut sim = Sim::new(&["a", "b"], Policy::default());
    let step = sim.step_with(&[Command::Stop(Sim::name("a"))]);
    assert_eq!(starts(&step.actions), [("b".into(), 1)]);
}

#[test]
fn without_supervision_only_commands_act_and_deaths_are_still_recorded() {
    let mut sim = Sim::running(&["a", "b"], Policy::default());
    sim.supervise = false;
    sim.die("a", Exit::Code(2), "oops");
    sim.wait(POLL);
    let step = sim.step_with(&[Command::Nudge(Sim::name("b"))]);
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Zombie, "the death is recorded");
    assert!(starts(&step.actions).is_empty(), "but not acted on");
    assert_eq!(sends(&step.actions, Purpose::Nudge), 1, "the command is obeyed");
    let mut fresh = Sim::new(&["a", "b"], Policy::default());
    fresh.supervise = false;
    let up = fresh.step_with(&[Command::Up(Sim::name("b"))]);
    assert_eq!(starts(&up.actions), [("b".into(), 1)], "`up b` starts only b");
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
        tail: Some(vec!["still working".into()].into()),
        tree: TreeSeen::default(),
    });
    let step = sim.step();
    assert!(step.actions.is_empty());
    assert_eq!(sim.rec("a").incarnation, Incarnation(7));
    assert_eq!(sim.rec("a").pane_pid, Some(4242));
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Working);
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
        tree: TreeSeen::default(),
    });
    let actions = sim.poll_for(Duration::from_secs(60));
    assert!(actions.is_empty());
    assert_eq!(sim.events.iter().filter(|e| e.what == What::Stray).count(), 1);
}
