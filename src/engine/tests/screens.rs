//! What a live screen says: idle at the prompt (nudged, less and less often), busy,
//! a dialog for a human, a spinner over a frozen screen, a stall.

use super::*;

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
            assert_eq!(sim.rec("a").activity(), Some(Activity::Quiet), "poll {i}");
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
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Stalled);
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
    assert_eq!(sim.rec("a").escalation(), Escalation::None);
}

#[test]
fn a_busy_agent_at_its_prompt_is_not_nudged() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "$\n✻ Pondering… (esc to interrupt)");
    let actions = sim.poll_for(Duration::from_secs(120));
    assert_eq!(sends(&actions, Purpose::Nudge), 0);
    assert_eq!(sim.rec("a").activity(), Some(Activity::Quiet));
}

#[test]
fn a_dialog_waiting_for_a_human_is_never_nudged_or_killed_and_the_user_is_told_once() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show(
        "a",
        "Do you trust the files in this folder?\n> 1. Yes, proceed\n  2. No, exit\n$",
    );
    let actions = sim.poll_for(Duration::from_secs(10 * 3600));
    assert_eq!(sim.rec("a").activity(), Some(Activity::Waiting));
    assert_eq!(sim.rec("a").lifecycle(), Lifecycle::Working);
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
fn a_nudge_is_confirmed_by_the_screen_changing_or_said_to_have_no_effect() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "done\n$");
    while sends(&sim.poll_for(POLL), Purpose::Nudge) == 0 {}
    sim.show("a", "done\n$ continue\nworking");
    sim.poll_for(POLL);
    assert!(
        escalation_notes(&sim)
            .iter()
            .any(|n| n == "nudge took: the screen changed")
    );
    sim.show("a", "done\n$ continue\nworking\n$");
    sim.poll_for(POLL * 12);
    assert!(
        escalation_notes(&sim)
            .iter()
            .any(|n| n.starts_with("nudge had no visible effect")),
        "{:?}",
        escalation_notes(&sim)
    );
}
