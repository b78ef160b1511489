//! Rate limits by kind (throttle, reset time in any zone, no reset), their cooldowns,
//! renewals and the resume.

use super::*;

#[test]
fn a_rate_limit_cools_down_without_nudges_then_resumes_once() {
    let policy = Policy {
        rate_limit_cooldown: Duration::from_secs(300),
        ..Policy::default()
    };
    let mut sim = Sim::running(&["a"], policy);
    sim.show("a", "Error: rate limit exceeded\n$");
    let during = sim.poll_for(Duration::from_secs(295));
    assert_eq!(sim.rec("a").activity(), Some(Activity::RateLimited));
    assert!(during.is_empty(), "no nudge, no restart while cooling down: {during:?}");
    let after = sim.poll_for(Duration::from_secs(10));
    assert_eq!(sends(&after, Purpose::Resume), 1);
    // The agent picks up; the old limit line still on screen is not a new limit.
    for i in 0..20 {
        sim.show("a", &format!("Error: rate limit exceeded\n$ continue\nworking {i}"));
        sim.wait(POLL);
        let step = sim.step();
        assert!(step.actions.is_empty(), "{:?}", step.actions);
        assert_eq!(sim.rec("a").activity(), Some(Activity::Active));
    }
}

#[test]
fn renewed_rate_limits_cool_down_shorter_and_the_fourth_forces_a_restart() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let mut cooldowns = Vec::new();
    for round in 0..5 {
        sim.show("a", &format!("round {round}\nError: rate limit exceeded"));
        sim.wait(POLL);
        let step = sim.step();
        if !starts(&step.actions).is_empty() {
            break;
        }
        let rl = sim.rec("a").rate_limit.clone().unwrap();
        cooldowns.push(rl.until.since(sim.now).as_secs());
        sim.wait(rl.until.since(sim.now));
        sim.step(); // cooldown over: resume
        sim.show("a", &format!("round {round}\nresumed, working"));
        sim.wait(POLL);
        sim.step();
    }
    assert_eq!(cooldowns, [300, 300, 150, 100]);
    assert_eq!(sim.rec("a").incarnation, Incarnation(2));
    let stalled = sim
        .events
        .iter()
        .find(|e| e.what == What::Lifecycle(Lifecycle::Stalled))
        .unwrap();
    assert!(stalled.reason.contains("came back 4 times"), "{}", stalled.reason);
}

#[test]
fn a_limit_that_comes_back_while_the_old_line_lingers_is_a_renewal() {
    let mut sim = Sim::running(
        &["a"],
        Policy {
            rate_limit_lines: 10,
            ..Policy::default()
        },
    );
    sim.show("a", "Error: rate limit exceeded\n> ");
    sim.wait(POLL);
    sim.step();
    let until = sim.rec("a").rate_limit.clone().unwrap().until;
    sim.wait(until.since(sim.now));
    assert_eq!(sends(&sim.step().actions, Purpose::Resume), 1);
    // Working again: the old line is still among the last 10, the screen keeps changing.
    for i in 0..5 {
        sim.show("a", &format!("Error: rate limit exceeded\n> continue\nstep {i}"));
        sim.wait(POLL);
        sim.step();
        assert_eq!(
            sim.rec("a").rate_limit.as_ref().unwrap().renewals,
            0,
            "working is not a renewal"
        );
    }
    // Stuck on a limit again, with the old line still there: that is a renewal.
    sim.show(
        "a",
        "Error: rate limit exceeded\n> continue\nstep 5\nError: rate limit exceeded",
    );
    sim.wait(POLL);
    sim.step();
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").rate_limit.as_ref().unwrap().renewals, 1);
    assert_eq!(sim.rec("a").activity(), Some(Activity::RateLimited));
}

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
    assert_eq!(sim.rec("a").activity(), Some(Activity::RateLimited));
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
    assert_eq!(sim.rec("a").activity(), Some(Activity::Active));
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

/// A Claude limit lifting at 08:50 UTC, seen at 02:00 UTC, with `extra` below it.
fn limited_until_0850(extra: &str) -> Sim {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.now = at("2026-11-23T02:00:00Z");
    sim.show(
        "a",
        &format!("● Reading the parser\n⎿  You've hit your limit · resets 4:50pm (Asia/Shanghai)\n{extra}$"),
    );
    sim.step();
    sim
}

#[test]
fn an_agent_that_says_it_goes_on_by_itself_and_does_is_never_resumed_by_vigil() {
    let mut sim = limited_until_0850("  It will continue automatically once the limit resets\n");
    let rl = sim.rec("a").rate_limit.clone().unwrap();
    assert!(rl.self_resumes);
    assert_eq!(rl.until, at("2026-11-23T08:51:00Z"));
    let before = sim.poll_for(at("2026-11-23T08:50:10Z").since(sim.now));
    assert!(before.is_empty(), "{before:?}");
    // It goes on at the reset, by itself.
    for i in 0..20 {
        sim.show(
            "a",
            &format!("● Usage limit reset · Continuing automatically\n● step {i}"),
        );
        sim.wait(POLL);
        let step = sim.step();
        assert_eq!(sends(&step.actions, Purpose::Resume), 0, "{:?}", step.actions);
    }
    assert!(sim.now > at("2026-11-23T08:51:00Z"));
    let after = sim.poll_for(Duration::from_secs(600));
    assert_eq!(
        sends(&after, Purpose::Resume),
        0,
        "never typed over an agent that went on"
    );
    assert!(
        sim.events.iter().any(|e| e.reason.contains("went on by itself")),
        "the journal says why nothing was typed"
    );
}

#[test]
fn an_agent_that_said_it_would_go_on_by_itself_but_did_not_is_resumed_once() {
    let mut sim = limited_until_0850("  It will continue automatically once the limit resets\n");
    let before = sim.poll_for(at("2026-11-23T08:50:50Z").since(sim.now));
    assert!(before.is_empty(), "{before:?}");
    let after = sim.poll_for(Duration::from_secs(3600));
    assert_eq!(sends(&after, Purpose::Resume), 1, "{after:?}");
    let resume = after
        .iter()
        .find_map(|a| match a {
            Action::Send {
                purpose: Purpose::Resume,
                reason,
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(resume.contains("said it would go on by itself"), "{resume}");
}

#[test]
fn word_on_screen_that_it_continues_by_itself_after_the_reset_is_believed() {
    let mut sim = limited_until_0850("");
    assert!(!sim.rec("a").rate_limit.as_ref().unwrap().self_resumes);
    sim.poll_for(at("2026-11-23T08:50:02Z").since(sim.now));
    for i in 0..20 {
        sim.show(
            "a",
            &format!("⎿  You've hit your limit · resets 4:50pm (Asia/Shanghai)\n● Usage limit reset · Continuing automatically\n● step {i}"),
        );
        sim.wait(POLL);
        let step = sim.step();
        assert_eq!(sends(&step.actions, Purpose::Resume), 0, "{:?}", step.actions);
    }
    assert!(sim.rec("a").rate_limit.as_ref().unwrap().resumed);
}

#[test]
fn a_limit_that_lifted_and_waits_for_enter_is_resumed_at_once_and_only_once() {
    let mut sim = limited_until_0850("");
    sim.poll_for(Duration::from_secs(600));
    sim.show(
        "a",
        "⎿  You've hit your limit · resets 4:50pm (Asia/Shanghai)\n  Usage limit has reset · Press enter to continue\n$",
    );
    let actions = sim.poll_for(Duration::from_secs(120));
    assert_eq!(sends(&actions, Purpose::Resume), 1, "{actions:?}");
    assert_eq!(
        sim.rec("a").rate_limit.as_ref().unwrap().renewals,
        0,
        "the old line is history"
    );
}

#[test]
fn word_that_a_limit_lifted_with_none_on_record_resumes_it_once() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "● working\n  Usage limit has reset · Press enter to continue\n");
    let actions = sim.poll_for(Duration::from_secs(300));
    assert_eq!(sends(&actions, Purpose::Resume), 1, "{actions:?}");
}
