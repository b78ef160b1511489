//! The recovery policy through simulated time: limits by kind, the escalation ladder,
//! triage, checkpoints and handoffs, and the fleet-wide restart cap.

use super::*;

fn at(rfc3339: &str) -> Time {
    Time::from_millis(rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond())
}

fn notifies(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Notify { .. })).count()
}

fn escalation_notes(sim: &Sim) -> Vec<String> {
    sim.events
        .iter()
        .filter(|e| e.what == What::Note)
        .map(|e| e.reason.clone())
        .collect()
}

/// The ladder alone: no idle nudges, no stale kill within the test.
fn ladder_policy() -> Policy {
    Policy {
        idle_checks: 1000,
        stale_after: Duration::from_secs(3600),
        ..Policy::default()
    }
}

// ---- rate limits by kind ---------------------------------------------------------------

#[test]
fn a_usage_limit_with_a_reset_time_in_another_zone_cools_down_until_then_plus_the_margin() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.now = at("2026-11-23T02:00:00Z"); // 10:00 in Shanghai
    sim.tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
    sim.show(
        "a",
        "● Reading the parser\n⎿  You've hit your limit · resets 4:50pm (Asia/Shanghai)\n$",
    );
    sim.step();
    let rl = sim.rec("a").rate_limit.clone().unwrap();
    assert_eq!(
        rl.kind,
        LimitKind::Resets {
            at: at("2026-11-23T08:50:00Z")
        }
    );
    assert_eq!(rl.until, at("2026-11-23T08:51:00Z"), "reset plus a 1m margin");
    // Almost seven hours at its prompt: not one nudge, no stall, no restart.
    let actions = sim.poll_for(Duration::from_secs(6 * 3600 + 50 * 60));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(sim.rec("a").activity, Some(Activity::RateLimited));
    let actions = sim.poll_for(Duration::from_secs(120));
    assert_eq!(
        sends(&actions, Purpose::Resume),
        1,
        "told to resume once the limit lifts"
    );
}

#[test]
fn a_limit_that_waiting_will_not_lift_is_left_to_a_human() {
    let policy = Policy {
        stale_after: Duration::from_secs(600),
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    sim.show("a", "■ Quota exceeded. Check your plan and billing details.\n$");
    let actions = sim.poll_for(Duration::from_secs(3 * 3600));
    assert_eq!(notifies(&actions), 1, "the user is told, once");
    assert_eq!(sends(&actions, Purpose::Nudge) + sends(&actions, Purpose::Resume), 0);
    assert!(starts(&actions).is_empty(), "never restarted, past stale_after too");
    let rec = sim.rec("a");
    assert_eq!(rec.rate_limit.as_ref().unwrap().kind, LimitKind::NoReset);
    assert!(rec.reason.contains("a human must act"), "{}", rec.reason);
    // Someone raised the limit and the agent works again: back to normal supervision.
    for i in 0..4 {
        sim.show("a", &format!("working on step {i}"));
        sim.wait(POLL);
        sim.step();
    }
    assert_eq!(sim.rec("a").activity, Some(Activity::Active));
}

#[test]
fn a_throttle_waits_the_configured_cooldown() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "API Error: Request rejected (429) · rate limit exceeded\n$");
    sim.wait(POLL);
    sim.step();
    let rl = sim.rec("a").rate_limit.clone().unwrap();
    assert_eq!(rl.kind, LimitKind::Throttle);
    assert_eq!(rl.until, sim.now.plus(Duration::from_secs(300)));
}

// ---- the escalation ladder -------------------------------------------------------------

#[test]
fn a_quiet_agent_climbs_warn_nudge_triage_one_step_at_a_time_then_is_restarted_with_a_handoff() {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "thinking about the parser");
    let mut climbed = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..(25 * 60 / 5) {
        sim.wait(POLL);
        let step = sim.step();
        let now = sim.rec("a").escalation;
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
    assert_eq!(rec.handoff.as_ref().unwrap().from, Incarnation(1));
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
    assert!(sim.rec("a").handoff.is_none());
}

#[test]
fn an_agent_that_works_again_falls_back_to_no_escalation() {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "thinking");
    sim.poll_for(Duration::from_secs(7 * 60));
    assert_eq!(sim.rec("a").escalation, Escalation::Warn);
    for i in 0..4 {
        sim.show("a", &format!("wrote file {i}"));
        sim.wait(POLL);
        sim.step();
    }
    assert_eq!(sim.rec("a").escalation, Escalation::None);
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
    assert_eq!(sim.rec("a").escalation, Escalation::Nudge);
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
    assert_eq!(sim.rec("a").escalation, Escalation::Warn);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Send { .. } | Action::Triage { .. } | Action::Start { .. }))
    );
}

// ---- triage ------------------------------------------------------------------------------

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
    let ended = sim.rec("a").last_exit.clone().unwrap();
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
    assert!(sim.rec("a").triage_since.is_some());
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
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "done\n$");
    sim.wait(POLL);
    let step = sim.step_with(&[Command::Triage(Sim::name("a"))]);
    assert_eq!(sends(&step.actions, Purpose::Nudge), 1);
    assert!(
        sim.rec("a").reason.contains("triage (built-in rules): nudge"),
        "{}",
        sim.rec("a").reason
    );
}

// ---- typed text and its effect -----------------------------------------------------------

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

// ---- the fleet-wide cap --------------------------------------------------------------------

#[test]
fn past_the_fleet_cap_vigil_only_observes_and_says_so_once() {
    let mut sim = Sim::running(&["a", "b", "c"], Policy::default());
    sim.fleet.max_restarts_per_hour = 4;
    let mut started = 0;
    let mut told = 0;
    for _ in 0..20 {
        for name in ["a", "b", "c"] {
            if sim.rec(name).lifecycle.is_live() {
                sim.die(name, Exit::Code(1), "boom");
            }
        }
        let actions = sim.poll_for(Duration::from_secs(60));
        started += starts(&actions).len();
        told += notifies(&actions);
    }
    assert_eq!(started, 4, "four restarts in the hour across the fleet, then none");
    assert_eq!(told, 1, "said loudly, once");
    let held = sim.mind.agents.values().find(|r| !r.lifecycle.is_live()).unwrap();
    assert!(held.reason.contains("fleet-wide cap"), "{}", held.reason);
    // An hour after the first restarts there is room again.
    let actions = sim.poll_for(Duration::from_secs(3600));
    assert!(!starts(&actions).is_empty());
}
