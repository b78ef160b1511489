//! Structured reset times (Claude Code's statusLine, Codex's rollout files) against the
//! screen's prose: the structured one wins, a past or absurd one is ignored with a
//! reason, a bare throttle is not stretched to a window that is only near full.

use super::*;
use crate::engine::resets::{Origin, Reported, Window, WindowName};
use crate::engine::signal::{Heard, Signal};

const SCREEN: &str = "● Reading the parser\n⎿  You've hit your limit · resets 4:50pm (Asia/Shanghai)\n$";
const HOUR: Duration = Duration::from_secs(3600);

impl Sim {
    /// The agent's structured source says `windows` now, for its running incarnation.
    fn report(&mut self, agent: &str, origin: Origin, windows: Vec<Window>) {
        let incarnation = self.rec(agent).incarnation;
        self.resets = vec![Reported {
            agent: Self::name(agent),
            incarnation,
            origin,
            at: self.now,
            windows,
            limit_hit: None,
        }];
    }
}

fn window(name: WindowName, used: u32, resets_at: Time) -> Window {
    Window {
        name,
        used_percent: Some(used),
        window_minutes: None,
        resets_at: Some(resets_at),
    }
}

fn limited(sim: &Sim) -> &RateLimit {
    sim.rec("a").rate_limit.as_ref().unwrap()
}

fn limit_reasons(sim: &Sim) -> Vec<String> {
    sim.events
        .iter()
        .filter(|e| e.what == What::Activity(Activity::RateLimited))
        .map(|e| e.reason.clone())
        .collect()
}

#[test]
fn a_structured_reset_beats_the_screens_parse() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let resets = sim.now.plus(2 * HOUR);
    sim.report(
        "a",
        Origin::ClaudeStatusLine,
        vec![window(WindowName::FiveHour, 100, resets)],
    );
    sim.show("a", SCREEN);
    sim.wait(POLL);
    sim.step();
    let rl = limited(&sim);
    assert_eq!(rl.kind, LimitKind::Resets { at: resets });
    assert_eq!(rl.until, resets.plus(Policy::default().rate_limit_margin));
    let known = rl.known.as_ref().unwrap();
    assert_eq!(
        (known.origin, known.window),
        (Origin::ClaudeStatusLine, WindowName::FiveHour)
    );
    let reasons = limit_reasons(&sim);
    assert!(
        reasons[0].contains("limit: Claude Code's statusLine says the 5-hour limit resets at"),
        "{reasons:?}"
    );
}

#[test]
fn a_statusline_heard_after_the_screen_moves_the_hold_to_its_reset_once() {
    let mut sim = Sim::running(&["a"], Policy::default());
    sim.show("a", SCREEN);
    sim.wait(POLL);
    sim.step();
    let from_screen = limited(&sim).until;
    let resets = sim.now.plus(3 * HOUR);
    sim.report(
        "a",
        Origin::ClaudeStatusLine,
        vec![window(WindowName::FiveHour, 100, resets)],
    );
    for _ in 0..3 {
        sim.wait(POLL);
        sim.step();
    }
    let rl = limited(&sim);
    assert_ne!(rl.until, from_screen);
    assert_eq!(rl.kind, LimitKind::Resets { at: resets });
    let reasons = limit_reasons(&sim);
    assert_eq!(
        reasons.len(),
        2,
        "one for the screen, one for the statusLine: {reasons:?}"
    );
    assert!(reasons[1].contains("which beats «"), "{}", reasons[1]);
}

#[test]
fn a_past_or_absurd_structured_reset_is_ignored_with_a_reason() {
    for (resets, words) in [
        (Time::from_millis(1_800_000_000_000).minus(HOUR), "past, ignored"),
        (
            Time::from_millis(1_800_000_000_000).plus(10 * 24 * HOUR),
            "ahead: ignored",
        ),
    ] {
        let mut sim = Sim::running(&["a"], Policy::default());
        sim.report(
            "a",
            Origin::ClaudeStatusLine,
            vec![window(WindowName::SevenDay, 100, resets)],
        );
        sim.show("a", SCREEN);
        sim.wait(POLL);
        sim.step();
        let rl = limited(&sim);
        assert!(rl.known.is_none());
        assert!(
            matches!(rl.kind, LimitKind::Resets { at } if at != resets),
            "{:?}",
            rl.kind
        );
        let reasons = limit_reasons(&sim);
        assert!(reasons[0].contains(words), "{reasons:?}");
    }
}

#[test]
fn a_throttle_is_not_stretched_to_a_window_that_is_only_near_full() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let resets = sim.now.plus(4 * HOUR);
    sim.report(
        "a",
        Origin::ClaudeStatusLine,
        vec![window(WindowName::FiveHour, 95, resets)],
    );
    sim.show("a", "Error: rate limit exceeded\n$");
    sim.wait(POLL);
    sim.step();
    assert_eq!(limited(&sim).kind, LimitKind::Throttle);
    // The same window at 100 % is the limit itself.
    sim.report(
        "a",
        Origin::ClaudeStatusLine,
        vec![window(WindowName::FiveHour, 100, resets)],
    );
    sim.wait(POLL);
    sim.step();
    assert_eq!(limited(&sim).kind, LimitKind::Resets { at: resets });
}

#[test]
fn a_usage_limit_in_the_rollout_holds_until_the_rollouts_reset() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let resets = sim.now.plus(HOUR);
    let later = sim.now.plus(100 * HOUR);
    let mut primary = window(WindowName::Primary, 97, resets);
    primary.window_minutes = Some(300);
    sim.report(
        "a",
        Origin::CodexRollout,
        vec![primary, window(WindowName::Secondary, 40, later)],
    );
    sim.resets[0].limit_hit = Some(sim.now);
    let incarnation = sim.rec("a").incarnation;
    sim.signals.push(Signal {
        agent: Sim::name("a"),
        incarnation,
        at: sim.now,
        heard: Heard::rollout_usage_limit(),
    });
    sim.show("a", "› working on it\n");
    sim.wait(POLL);
    sim.step();
    let rl = limited(&sim);
    assert_eq!(rl.kind, LimitKind::Resets { at: resets });
    assert_eq!(rl.known.as_ref().unwrap().window_minutes, Some(300));
    let reasons = limit_reasons(&sim);
    assert!(
        reasons[0].contains("Codex hit its usage limit (rollout file")
            && reasons[0].contains("Codex's rollout file says the 5-hour limit resets at"),
        "{reasons:?}"
    );
}

#[test]
fn a_report_from_another_incarnation_is_not_believed() {
    let mut sim = Sim::running(&["a"], Policy::default());
    let resets = sim.now.plus(2 * HOUR);
    sim.report(
        "a",
        Origin::ClaudeStatusLine,
        vec![window(WindowName::FiveHour, 100, resets)],
    );
    sim.resets[0].incarnation = Incarnation(sim.rec("a").incarnation.0 + 1);
    sim.show("a", SCREEN);
    sim.wait(POLL);
    sim.step();
    assert!(limited(&sim).known.is_none());
}

#[test]
fn a_limit_saved_before_known_resets_existed_still_loads() {
    let old = r#"{"until":"2026-12-01T16:00:00Z","renewals":0,"resumed":false,"line":"limit","kind":{"kind":"throttle"},"seen":"2026-12-01T15:55:00Z","self_resumes":false}"#;
    let rl: RateLimit = serde_json::from_str(old).unwrap();
    assert!(rl.known.is_none());
}
