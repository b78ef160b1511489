//! Triage: the command asked once and its verdict carried out, failures and lost
//! answers left to the built-in rules, kill, triage on demand.

use super::*;

fn with_triage_command() -> Policy {
    Policy {
        triage: Some(vec!["./triage.sh".into()]),
        ..ladder_policy()
    }
}

fn answer(sim: &mut Sim, outcome: TriageOutcome) {
    sim.answers.push(TriageResult {
        agent: Sim::name("a"),
        incarnation: sim.rec("a").incarnation,
        outcome,
    });
}

#[test]
fn the_triage_command_is_asked_once_and_its_answer_acted_on() {
    let mut sim = Sim::running(&["a"], with_triage_command());
    sim.show("a", "thinking\n$");
    let actions = sim.poll_for(Duration::from_secs(21 * 60));
    let asked = actions.iter().filter(|a| matches!(a, Action::Triage { .. })).count();
    assert_eq!(asked, 1);
    // Waiting for the answer asks nothing more.
    assert!(
        !sim.poll_for(POLL * 3)
            .iter()
            .any(|a| matches!(a, Action::Triage { .. }))
    );
    answer(
        &mut sim,
        TriageOutcome::Answered(Answer {
            verdict: VerdictKind::Restart,
            reason: "it is looping on the same test".into(),
        }),
    );
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(starts(&step.actions), [("a".into(), 2)]);
    let ended = sim.rec("a").last_exit().cloned().unwrap();
    assert_eq!(
        ended.reason,
        "triage (triage command): restart — it is looping on the same test"
    );
}

#[test]
fn a_failed_triage_command_leaves_the_decision_to_the_rules() {
    let mut sim = Sim::running(&["a"], with_triage_command());
    sim.show("a", "done\n$");
    sim.poll_for(Duration::from_secs(21 * 60));
    answer(
        &mut sim,
        TriageOutcome::Failed {
            why: "did not answer within 60s and was killed".into(),
        },
    );
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(
        sends(&step.actions, Purpose::Nudge),
        1,
        "at its prompt: the rules nudge"
    );
    let note = sim.events.iter().rev().find(|e| e.reason.contains("triage (")).unwrap();
    assert!(
        note.reason
            .contains("built-in rules, as the triage command did not answer within 60s"),
        "{}",
        note.reason
    );
}

#[test]
fn a_triage_answer_that_never_comes_is_replaced_by_the_rules() {
    let mut sim = Sim::running(&["a"], with_triage_command());
    sim.show("a", "thinking");
    sim.poll_for(Duration::from_secs(21 * 60));
    assert!(sim.rec("a").live().unwrap().triage_since.is_some());
    // vigil restarted while the command ran: no answer will ever come.
    sim.poll_for(Duration::from_secs(120));
    assert_eq!(
        sim.rec("a").incarnation,
        Incarnation(2),
        "hung with no prompt: restarted"
    );
}

#[test]
fn kill_stops_the_agent_until_a_human_starts_it() {
    let mut sim = Sim::running(&["a"], with_triage_command());
    sim.show("a", "thinking");
    sim.poll_for(Duration::from_secs(21 * 60));
    answer(
        &mut sim,
        TriageOutcome::Answered(Answer {
            verdict: VerdictKind::Kill,
            reason: "it is deleting the repository".into(),
        }),
    );
    sim.wait(POLL);
    let step = sim.step();
    assert!(step.actions.iter().any(|a| matches!(a, Action::Kill { .. })));
    assert!(sim.mind.stopped.contains(&Sim::name("a")));
    assert!(
        sim.poll_for(Duration::from_secs(600))
            .iter()
            .all(|a| !matches!(a, Action::Start { .. }))
    );
}

#[test]
fn triage_on_demand_uses_the_rules_without_a_command() {
    let policy = Policy {
        idle_checks: 100,
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    sim.show("a", "done\n$");
    for _ in 0..4 {
        sim.wait(POLL);
        sim.step();
    }
    let step = sim.step_with(&[Command::Triage(Sim::name("a"))]);
    assert_eq!(sends(&step.actions, Purpose::Nudge), 1);
    assert!(
        sim.rec("a").reason.contains("triage (built-in rules): nudge"),
        "{}",
        sim.rec("a").reason
    );
}

#[test]
fn triage_on_demand_of_an_agent_whose_screen_just_changed_leaves_it_working() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "printing line 1");
    sim.wait(POLL);
    sim.step();
    sim.show("a", "printing line 2");
    sim.wait(POLL);
    let step = sim.step_with(&[Command::Triage(Sim::name("a"))]);
    assert!(
        step.actions
            .iter()
            .all(|a| !matches!(a, Action::Kill { .. } | Action::Start { .. } | Action::Send { .. })),
        "{:?}",
        step.actions
    );
    assert!(sim.rec("a").reason.contains("continue"), "{}", sim.rec("a").reason);
}
