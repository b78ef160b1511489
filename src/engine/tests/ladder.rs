//! The escalation ladder (warn, nudge, triage, terminate), checkpoints and the handoff
//! to the next incarnation.

use super::*;

#[test]
fn a_quiet_agent_climbs_warn_nudge_triage_one_step_at_a_time_then_is_restarted_with_a_handoff() {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "thinking about the parser");
    let mut climbed = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..(25 * 60 / 5) {
        sim.wait(POLL);
        let step = sim.step();
        let now = sim.rec("a").escalation();
        if climbed.last() != Some(&now) {
            climbed.push(now);
        }
        actions.extend(step.actions);
        if sim.rec("a").incarnation == Incarnation(2) {
            break;
        }
    }
    // Triage's verdict ends #1 in the poll that reaches it; #2 starts afresh.
    assert_eq!(
        climbed,
        [Escalation::None, Escalation::Warn, Escalation::Nudge, Escalation::None],
        "one step at a time"
    );
    assert_eq!(sends(&actions, Purpose::Nudge), 1, "one nudge per dwell");
    let notes = escalation_notes(&sim).join("\n");
    assert!(notes.contains("warn: screen unchanged for 5m"), "{notes}");
    assert!(notes.contains("triage step: screen unchanged for 20m"), "{notes}");
    // Checkpoint before the replacement is started, and the handoff is owed.
    let checkpoint = actions
        .iter()
        .position(|a| matches!(a, Action::Checkpoint { .. }))
        .unwrap();
    let start = actions.iter().position(|a| matches!(a, Action::Start { .. })).unwrap();
    assert!(checkpoint < start);
    let stalled = sim
        .events
        .iter()
        .find(|e| e.what == What::Lifecycle(Lifecycle::Stalled))
        .unwrap();
    assert!(
        stalled
            .reason
            .contains("triage (built-in rules): restart — no prompt and no busy marker"),
        "{}",
        stalled.reason
    );
    let rec = sim.rec("a");
    assert_eq!(rec.checkpoint.as_ref().unwrap().incarnation, Incarnation(1));
    assert_eq!(rec.handoff().unwrap().from, Incarnation(1));
}

#[test]
fn the_handoff_is_the_new_incarnations_first_message_once_its_prompt_shows() {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "thinking about the parser");
    while sim.rec("a").incarnation == Incarnation(1) {
        sim.wait(POLL);
        sim.step();
    }
    // Booting: no prompt yet, nothing typed.
    sim.show("a", "starting up…");
    let actions = sim.poll_for(POLL * 2);
    assert_eq!(sends(&actions, Purpose::Handoff), 0);
    sim.show("a", "ready\n$");
    let actions = sim.poll_for(POLL * 3);
    let handoff: Vec<&Action> = actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    purpose: Purpose::Handoff,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(handoff.len(), 1);
    let Action::Send { text, .. } = handoff[0] else {
        unreachable!()
    };
    assert!(text.contains("previous session (#1)"), "{text}");
    assert!(text.contains("/state/checkpoints/a.json"), "{text}");
    assert!(!text.contains('\n'), "one line: a newline would press Enter early");
    assert!(sim.rec("a").handoff().is_none());
}

#[test]
fn an_agent_that_works_again_falls_back_to_no_escalation() {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "thinking");
    sim.poll_for(Duration::from_secs(7 * 60));
    assert_eq!(sim.rec("a").escalation(), Escalation::Warn);
    for i in 0..4 {
        sim.show("a", &format!("wrote file {i}"));
        sim.wait(POLL);
        sim.step();
    }
    assert_eq!(sim.rec("a").escalation(), Escalation::None);
    assert!(
        escalation_notes(&sim)
            .iter()
            .any(|n| n.contains("escalation back from warn to none"))
    );
}

#[test]
fn a_busy_agent_is_not_typed_into_at_the_nudge_step() {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "✻ Pondering… (esc to interrupt)");
    let actions = sim.poll_for(Duration::from_secs(15 * 60));
    assert_eq!(sim.rec("a").escalation(), Escalation::Nudge);
    assert_eq!(sends(&actions, Purpose::Nudge), 0);
    // At triage the rules see the busy marker and let it be.
    let actions = sim.poll_for(Duration::from_secs(10 * 60));
    assert!(starts(&actions).is_empty());
    let notes = escalation_notes(&sim).join("\n");
    assert!(
        notes.contains("triage (built-in rules): continue — its busy marker is visible"),
        "{notes}"
    );
}

#[test]
fn a_waiting_agent_never_climbs_past_warn() {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "Do you trust the files in this folder?\n1. Yes\n2. No");
    let actions = sim.poll_for(Duration::from_secs(50 * 60));
    assert_eq!(sim.rec("a").escalation(), Escalation::Warn);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Send { .. } | Action::Triage { .. } | Action::Start { .. }))
    );
}

fn busy_tree(pct: u32) -> TreeSeen {
    TreeSeen {
        agent_process: None,
        tree: Some(Tree {
            count: 4,
            cpu_pct: Some(pct),
            busiest: vec![Busy {
                name: "cargo".into(),
                pct,
            }],
        }),
    }
}

fn off_screen_events(sim: &Sim) -> Vec<(bool, String)> {
    sim.events
        .iter()
        .filter_map(|e| match &e.what {
            What::OffScreen(o) => Some((o.working, e.reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_still_screen_over_a_busy_tree_is_working_and_the_ladder_waits() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.pane("a").tree = busy_tree(87);
    let actions = sim.poll_for(Duration::from_secs(2 * 3600));
    assert!(actions.is_empty(), "{actions:?}");
    let rec = sim.rec("a");
    assert_eq!(
        (rec.incarnation, rec.activity()),
        (Incarnation(1), Some(Activity::Active))
    );
    assert_eq!(rec.escalation(), Escalation::None);
    assert!(
        rec.reason.contains("busy: cargo at 87 % cpu under the agent"),
        "{}",
        rec.reason
    );
    let said = off_screen_events(&sim);
    assert_eq!(said.len(), 1, "once per stretch: {said:?}");
    assert!(said[0].0 && said[0].1.contains("the ladder waits"), "{said:?}");
    let typed = sim.events.iter().find_map(|e| match &e.what {
        What::OffScreen(o) => Some(o.clone()),
        _ => None,
    });
    assert_eq!(typed.map(|o| (o.tree.cpu_pct, o.busy_cpu)), Some((Some(87), 25)));
    // Its tree goes idle: judged as a still screen is, from then on.
    sim.pane("a").tree = busy_tree(2);
    let actions = sim.poll_for(Duration::from_secs(3600));
    assert_eq!(
        starts(&actions).first(),
        Some(&("a".to_owned(), 2)),
        "the ladder climbs again"
    );
    let said = off_screen_events(&sim);
    assert!(
        said.iter()
            .any(|(working, why)| !working && why.starts_with("its process tree went quiet")),
        "{said:?}"
    );
}

#[test]
fn a_tree_below_busy_cpu_does_not_hold_the_ladder() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.pane("a").tree = busy_tree(24);
    let actions = sim.poll_for(Duration::from_secs(3600 + 60));
    assert_eq!(starts(&actions).first(), Some(&("a".to_owned(), 2)));
    assert!(off_screen_events(&sim).is_empty());
}

#[test]
fn a_busy_tree_never_hides_a_dialog_a_rate_limit_or_a_dead_pane() {
    let mut sim = Sim::running(&["a", "b", "c"], ladder_policy());
    for a in ["a", "b", "c"] {
        sim.pane(a).tree = busy_tree(300);
    }
    sim.show("a", "Do you trust the files in this folder?\n1. Yes\n2. No");
    sim.show("b", "API Error: Request rejected (429) · rate limit exceeded\n$");
    sim.die("c", Exit::Code(3), "boom");
    sim.poll_for(Duration::from_secs(60));
    assert_eq!(sim.rec("a").activity(), Some(Activity::Waiting));
    assert_eq!(sim.rec("b").activity(), Some(Activity::RateLimited));
    assert!(
        sim.events
            .iter()
            .any(|e| e.agent == "c" && e.what == What::Lifecycle(Lifecycle::Zombie)),
        "the dead pane is a dead pane"
    );
    assert!(
        !sim.events
            .iter()
            .any(|e| (e.agent == "a" || e.agent == "b") && matches!(e.what, What::OffScreen(_))),
        "a dialog or a limit outranks the tree"
    );
}

#[test]
fn a_tree_not_read_this_look_is_no_evidence() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.pane("a").tree = busy_tree(87);
    sim.poll_for(POLL * 3);
    assert_eq!(sim.rec("a").activity(), Some(Activity::Active));
    // /proc could not be read: the busy figures of the last look do not hold the ladder.
    sim.pane("a").tree = TreeSeen::default();
    let actions = sim.poll_for(Duration::from_secs(3600 + 60));
    assert_eq!(starts(&actions).first(), Some(&("a".to_owned(), 2)));
}
