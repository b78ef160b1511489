//! Signals from the agents' own hooks as evidence: ranked above the screen and below
//! the pane's death, fresh for a window, cited with source and age in reasons.

use super::*;
use crate::engine::signal::{Heard, Said, Signal, Source};

fn heard(said: Said, words: &str) -> Heard {
    Heard {
        source: Source::Claude,
        event: "Notification".into(),
        said,
        words: words.into(),
        via: None,
        thread: None,
    }
}

impl Sim {
    /// The agent's hook says `said` now, from its running incarnation.
    fn hear(&mut self, agent: &str, said: Said, words: &str) {
        let incarnation = self.rec(agent).incarnation;
        self.hear_from(agent, incarnation, said, words);
    }

    fn hear_from(&mut self, agent: &str, incarnation: Incarnation, said: Said, words: &str) {
        self.signals.push(Signal {
            agent: Self::name(agent),
            incarnation,
            at: self.now,
            heard: heard(said, words),
        });
    }
}

fn nudgy() -> Policy {
    Policy {
        idle_checks: 1,
        signal_fresh: Duration::from_secs(60),
        ..Policy::default()
    }
}

#[test]
fn a_permission_signal_on_an_idle_looking_screen_is_waiting_and_never_nudged() {
    let mut sim = Sim::running(&["a"], nudgy());
    sim.show("a", "did some work\n$ ");
    sim.wait(POLL);
    sim.step();
    sim.hear("a", Said::Waiting, "asked for permission to use Bash");
    sim.wait(Duration::from_secs(12));
    let first = sim.step();
    assert_eq!(sim.rec("a").activity(), Some(Activity::Waiting));
    assert_eq!(notifies(&first.actions), 1);
    let actions = sim.poll_for(Duration::from_secs(3 * 3600));
    assert_eq!(sends(&actions, Purpose::Nudge), 0, "{actions:?}");
    assert!(starts(&actions).is_empty(), "never killed: {actions:?}");
    let reason = &sim.rec("a").reason;
    assert!(
        reason.starts_with("waiting: Claude Code asked for permission to use Bash (hook, "),
        "{reason}"
    );
    assert_eq!(
        sim.rec("a").activity(),
        Some(Activity::Waiting),
        "the dialog is still up"
    );
}

#[test]
fn a_stale_signal_expires_back_to_the_screens_verdict() {
    let mut sim = Sim::running(&["a"], nudgy());
    sim.show("a", "did some work\n$ ");
    sim.hear("a", Said::Working, "is using Bash");
    sim.wait(POLL);
    sim.step();
    sim.wait(POLL);
    let step = sim.step();
    assert_eq!(
        sim.rec("a").activity(),
        Some(Activity::Active),
        "{:?}",
        sim.rec("a").reason
    );
    assert_eq!(sends(&step.actions, Purpose::Nudge), 0);
    assert!(
        sim.rec("a")
            .reason
            .contains("working: Claude Code is using Bash (hook, 10s ago)"),
        "{}",
        sim.rec("a").reason
    );
    let actions = sim.poll_for(Duration::from_secs(60));
    assert_eq!(sim.rec("a").activity(), Some(Activity::Idle), "{}", sim.rec("a").reason);
    assert!(sends(&actions, Purpose::Nudge) >= 1, "idle again by the screen: nudged");
}

#[test]
fn an_answered_dialog_lets_the_screen_decide_once_the_signal_is_stale() {
    let mut sim = Sim::running(&["a"], nudgy());
    sim.show("a", "$ ");
    sim.hear("a", Said::Waiting, "asked for permission to use Bash");
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").activity(), Some(Activity::Waiting));
    sim.show("a", "ran it\n$ ");
    sim.poll_for(Duration::from_secs(90));
    assert_eq!(sim.rec("a").activity(), Some(Activity::Idle), "{}", sim.rec("a").reason);
}

#[test]
fn an_idle_signal_makes_a_quiet_screen_idle_and_cites_it() {
    let mut sim = Sim::running(
        &["a"],
        Policy {
            idle_checks: 3,
            ..nudgy()
        },
    );
    sim.show("a", "thinking about it");
    sim.wait(POLL);
    sim.step();
    sim.hear("a", Said::Idle, "finished its turn");
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").activity(), Some(Activity::Idle));
    let reason = &sim.rec("a").reason;
    assert!(
        reason.contains("last signal: Claude Code finished its turn (hook, 5s ago)"),
        "{reason}"
    );
}

#[test]
fn a_signal_never_overrides_a_dead_pane() {
    let mut sim = Sim::running(&["a"], nudgy());
    sim.hear("a", Said::Working, "is using Bash");
    sim.die("a", Exit::Code(3), "boom");
    sim.wait(POLL);
    sim.step();
    let rec = sim.rec("a");
    assert_eq!(rec.incarnation, Incarnation(2), "ended and replaced: {}", rec.reason);
    assert_eq!(rec.last_exit().unwrap().code, Some(3));
}

#[test]
fn a_signal_from_an_older_incarnation_is_ignored() {
    let mut sim = Sim::running(&["a"], nudgy());
    sim.step_with(&[Command::Restart(Sim::name("a"))]);
    sim.wait(POLL);
    sim.step();
    assert_eq!(sim.rec("a").incarnation, Incarnation(2));
    sim.show("a", "$ ");
    sim.hear_from("a", Incarnation(1), Said::Waiting, "asked for permission to use Bash");
    sim.wait(POLL);
    sim.step();
    assert!(sim.rec("a").live().unwrap().signal.is_none());
    assert_ne!(sim.rec("a").activity(), Some(Activity::Waiting));
}

#[test]
fn a_limit_signal_holds_off_nudges_until_its_reset() {
    let mut sim = Sim::running(&["a"], nudgy());
    sim.show("a", "$ ");
    let resets = sim.now.plus(Duration::from_secs(3600));
    sim.hear(
        "a",
        Said::Limit {
            resets_at: Some(resets),
        },
        "hit a rate limit",
    );
    sim.wait(POLL);
    sim.step();
    let rl = sim.rec("a").rate_limit.clone().unwrap();
    assert_eq!(rl.kind, LimitKind::Resets { at: resets });
    assert!(
        rl.line.starts_with("Claude Code hit a rate limit (hook, "),
        "{}",
        rl.line
    );
    assert_eq!(sim.rec("a").activity(), Some(Activity::RateLimited));
    // A limit line on the screen with a reset time of its own does not replace the
    // structured one.
    sim.show("a", "You've hit your limit · resets 11pm (UTC)\n$ ");
    let actions = sim.poll_for(Duration::from_secs(1800));
    assert_eq!(sends(&actions, Purpose::Nudge), 0);
    assert_eq!(
        sim.rec("a").rate_limit.as_ref().unwrap().kind,
        LimitKind::Resets { at: resets }
    );
}

#[test]
fn a_limit_signal_without_a_reset_cools_down() {
    let mut sim = Sim::running(&["a"], nudgy());
    sim.show("a", "$ ");
    sim.hear("a", Said::Limit { resets_at: None }, "hit a rate limit");
    sim.wait(POLL);
    sim.step();
    let rl = sim.rec("a").rate_limit.clone().unwrap();
    assert_eq!(rl.kind, LimitKind::Throttle);
    assert_eq!(rl.until, sim.now.plus(Policy::default().rate_limit_cooldown));
}
