//! Time that lies: the wall clock jumping forward or back, and time nobody watched,
//! handed in as a [`gap::Gap`]; and clock moves nobody noticed, which [`gap::bound`]
//! keeps harmless.

use super::*;
use crate::engine::gap::{Gap, Jump, Unseen, Unwatched};

const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

fn jump(j: Jump) -> Option<Gap> {
    Some(Gap {
        jump: Some(j),
        unwatched: None,
    })
}

fn unwatched(for_: Duration) -> Option<Gap> {
    Some(Gap {
        jump: None,
        unwatched: Some(Unwatched {
            for_,
            cause: Unseen::Paused,
        }),
    })
}

/// A quiet agent that has climbed to warn (7 minutes unchanged, nudge at 10).
fn warned() -> Sim {
    let mut sim = Sim::running(&["a"], ladder_policy());
    sim.show("a", "thinking about the parser");
    sim.poll_for(Duration::from_secs(7 * 60));
    assert_eq!(sim.rec("a").escalation(), Escalation::Warn);
    sim
}

fn stalled(sim: &Sim) -> bool {
    sim.events.iter().any(|e| e.what == What::Lifecycle(Lifecycle::Stalled))
}

/// The minutes of polling (from now) until the ladder's nudge is typed.
fn minutes_to_nudge(sim: &mut Sim) -> u64 {
    let start = sim.now;
    for _ in 0..(60 * 60 / 5) {
        sim.wait(POLL);
        if sends(&sim.step().actions, Purpose::Nudge) > 0 {
            return sim.now.since(start).as_secs() / 60;
        }
    }
    panic!("never nudged");
}

#[test]
fn a_wall_clock_jump_forward_restarts_nobody_and_the_ladder_goes_on_where_it_was() {
    let mut sim = warned();
    sim.wait(TWO_HOURS + POLL);
    sim.gap = jump(Jump::Forward { by: TWO_HOURS });
    let step = sim.step();
    assert!(starts(&step.actions).is_empty() && !stalled(&sim), "{:?}", sim.events);
    assert_eq!(sim.rec("a").escalation(), Escalation::Warn);
    assert!(
        sim.rec("a").reason.contains("unchanged for 7m ("),
        "{}",
        sim.rec("a").reason
    );
    assert_eq!(minutes_to_nudge(&mut sim), 3, "the nudge at 10 m, as before the jump");
}

#[test]
fn a_wall_clock_jump_back_neither_freezes_the_ladder_nor_restarts_anyone() {
    let mut sim = warned();
    sim.now = sim.now.minus(TWO_HOURS).plus(POLL);
    sim.gap = jump(Jump::Back { by: TWO_HOURS });
    sim.step();
    assert!(!stalled(&sim));
    assert!(
        sim.rec("a").reason.contains("unchanged for 7m ("),
        "{}",
        sim.rec("a").reason
    );
    assert_eq!(minutes_to_nudge(&mut sim), 3, "the nudge at 10 m, as before the jump");
}

#[test]
fn a_jump_back_nobody_noticed_restarts_the_dwell_instead_of_freezing_it_for_hours() {
    let mut sim = warned();
    sim.now = sim.now.minus(TWO_HOURS).plus(POLL);
    sim.step();
    let live = sim.rec("a").live().unwrap();
    assert!(live.last_change <= sim.now, "no recorded time lies in the future");
    assert_eq!(
        minutes_to_nudge(&mut sim),
        10,
        "counted afresh from the step back, not in 2 h"
    );
}

/// An agent held by a crash loop (three crashes within 2 m: no restart for 2 m), with
/// `left` of the hold to go.
fn crash_looped(left: Duration) -> Sim {
    let mut sim = Sim::running(&["a"], Policy::default());
    while !matches!(
        sim.rec("a").hold(),
        Some(Hold::Until {
            cause: Wait::CrashLoop { .. },
            ..
        })
    ) {
        sim.wait(POLL);
        if sim.rec("a").is_live() {
            sim.die("a", Exit::Code(1), "cannot reach api.example.com");
        }
        sim.step();
    }
    let until = sim.rec("a").cooldown_until().unwrap();
    sim.now = until.minus(left);
    sim
}

/// Seconds of polling until the agent is restarted.
fn seconds_to_restart(sim: &mut Sim) -> u64 {
    let start = sim.now;
    for _ in 0..(3 * 3600 / 5) {
        sim.wait(POLL);
        if !starts(&sim.step().actions).is_empty() {
            return sim.now.since(start).as_secs();
        }
    }
    panic!("never restarted");
}

#[test]
fn a_hold_keeps_the_time_it_had_left_through_a_jump_either_way() {
    for j in [Jump::Forward { by: TWO_HOURS }, Jump::Back { by: TWO_HOURS }] {
        let mut sim = crash_looped(Duration::from_secs(60));
        sim.now = match j {
            Jump::Forward { by } => sim.now.plus(by),
            Jump::Back { by } => sim.now.minus(by),
        };
        sim.gap = jump(j);
        assert_eq!(seconds_to_restart(&mut sim), 60, "{j:?}");
    }
}

#[test]
fn a_jump_back_nobody_noticed_never_stretches_a_hold_past_its_own_length() {
    let mut sim = crash_looped(Duration::from_secs(60));
    sim.now = sim.now.minus(TWO_HOURS);
    // Bounded at the first step after the move (one poll in): the full 2 m from there.
    assert_eq!(seconds_to_restart(&mut sim), 125, "at most the crash cooldown, not 2 h");
}

#[test]
fn time_nobody_watched_is_no_evidence_the_dwell_restarts_from_the_first_pass_after_it() {
    let mut sim = warned();
    sim.wait(TWO_HOURS);
    sim.gap = unwatched(TWO_HOURS);
    let step = sim.step();
    assert!(starts(&step.actions).is_empty() && !stalled(&sim), "{:?}", sim.events);
    assert_eq!(
        sim.rec("a").escalation(),
        Escalation::Warn,
        "the ladder does not fall back"
    );
    assert_eq!(minutes_to_nudge(&mut sim), 10, "the nudge's dwell counts from the gap");
    // And the stale timer too: nothing is killed for the two unwatched hours.
    assert!(!stalled(&sim));
}

#[test]
fn time_nobody_watched_did_pass_for_a_hold_which_is_not_stretched_by_it() {
    let mut sim = crash_looped(Duration::from_secs(60));
    sim.wait(TWO_HOURS);
    sim.gap = unwatched(TWO_HOURS);
    assert_eq!(seconds_to_restart(&mut sim), 5, "the cooldown ran out meanwhile");
}

#[test]
fn rate_limit_reset_times_stay_on_the_wall_clock() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", "You've hit your limit · resets 3pm (UTC)");
    sim.wait(POLL);
    sim.step();
    let until = sim.rec("a").rate_limit.as_ref().unwrap().until;
    sim.wait(TWO_HOURS);
    sim.gap = jump(Jump::Forward { by: TWO_HOURS });
    sim.step();
    assert_eq!(sim.rec("a").rate_limit.as_ref().unwrap().until, until);
}
