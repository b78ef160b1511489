//! Real CLIs' captured screens replayed in a real tmux pane (fixtures/agents/replay.sh)
//! under `vigil watch`: signed out, a hooks review, a menu nobody listed. What the
//! supervisor does with them: wait for a human, never type into them, never restart.

use std::time::Duration;

use super::harness::*;

/// An agent that shows `first` (a file in fixtures/screens) and `answer` after each line
/// typed in. Its process is the replay script, not the CLI the preset looks for.
fn replaying(name: &str, preset: &str, first: &str, answer: &str, extra: &str) -> String {
    format!(
        "[[agent]]\nname = \"{name}\"\npreset = \"{preset}\"\nprocess = \"^replay\"\ncommand = [\"sh\", \"{{agents}}/replay.sh\", \
         \"{{agents}}/../screens/{first}\", \"{{agents}}/../screens/{answer}\"]\n{extra}\n"
    )
}

fn nudges(w: &World, name: &str) -> usize {
    w.journal()
        .iter()
        .filter(|e| types_for(e, Purpose::Nudge) && intent(e).is_some_and(|a| a.agent().as_str() == name))
        .count()
}

fn notes(w: &World) -> usize {
    w.journal()
        .iter()
        .filter(|e| matches!(e.record, Record::Notify { .. }))
        .count()
}

/// Nothing but its start was ever done to `name`.
fn untouched(w: &World, name: &str) -> bool {
    !w.journal()
        .iter()
        .filter_map(intent)
        .any(|a| a.agent().as_str() == name && !matches!(a, Action::Start { .. }))
}

const QUICK: &str = "idle_checks = 1\nstale_after = \"2s\"";

#[test]
fn signed_out_claude_at_its_prompt_is_waiting_from_the_first_look_and_never_nudged() {
    let body = replaying(
        "claude",
        "claude",
        "claude-2.1.332-signed-out-prompt.txt",
        "claude-2.1.332-signed-out-nudge-answer.txt",
        QUICK,
    );
    let mut w = World::new(&body);
    w.watch();
    let a = w.wait_for("claude", 30, "waiting", |a| a.activity == Some(Activity::Waiting));
    assert!(a.reason.contains("Not logged in · run /login"), "{a:#?}");
    wait_out(
        Duration::from_secs(4),
        "twice stale_after, idle_checks 1: it would be nudged or restarted",
    );
    let a = w.agent("claude");
    assert_eq!((a.incarnation, a.activity), (1, Some(Activity::Waiting)), "{a:#?}");
    assert!(untouched(&w, "claude"), "nothing typed, nothing restarted");
    assert_eq!(notes(&w), 1, "the human is told once");
}

#[test]
fn a_nudge_answered_with_not_logged_in_stops_the_nudging() {
    // At its prompt after a network error (idle: nudged), the nudge answered signed out.
    let body = replaying(
        "claude",
        "claude",
        "claude-2.1.332-network-error.txt",
        "claude-2.1.332-signed-out-nudge-answer.txt",
        "idle_checks = 1\nstale_after = \"1h\"",
    );
    let mut w = World::new(&body);
    w.watch();
    let session = w.wait_for("claude", 30, "started", |a| !a.session.is_empty()).session;
    w.wait_screen(&session, 30, "Please run /login");
    let a = w.wait_for("claude", 30, "waiting", |a| a.activity == Some(Activity::Waiting));
    assert!(a.reason.contains("Not logged in"), "{a:#?}");
    assert_eq!(nudges(&w, "claude"), 1);
    wait_out(Duration::from_secs(3), "fifteen idle checks: nudged again were it idle");
    assert_eq!(nudges(&w, "claude"), 1, "no nudge after the answer said to sign in");
    assert_eq!(w.agent("claude").activity, Some(Activity::Waiting));
    assert_eq!(notes(&w), 1);
}

#[test]
fn codex_holding_its_hooks_for_review_is_waiting_and_left_alone() {
    let body = replaying(
        "codex",
        "codex",
        "codex-0.171.0-hooks-review.txt",
        "codex-0.171.0-prompt-idle.txt",
        QUICK,
    );
    let mut w = World::new(&body);
    w.watch();
    let a = w.wait_for("codex", 30, "waiting", |a| a.activity == Some(Activity::Waiting));
    assert!(a.reason.contains("Hooks need review"), "{a:#?}");
    wait_out(
        Duration::from_secs(4),
        "twice stale_after: a quiet screen would be restarted",
    );
    let a = w.agent("codex");
    assert_eq!((a.incarnation, a.activity), (1, Some(Activity::Waiting)), "{a:#?}");
    assert!(untouched(&w, "codex"));
    let screen = w.capture(&a.session);
    assert!(
        !screen.contains("Ask Codex to do anything"),
        "nothing answered the menu:\n{screen}"
    );
}

#[test]
fn a_menu_no_preset_knows_is_waiting_for_an_unknown_agent() {
    let body = replaying(
        "deploy",
        "shell",
        "shell-made-up-menu.txt",
        "shell-made-up-menu.txt",
        QUICK,
    );
    let mut w = World::new(&body);
    w.watch();
    let a = w.wait_for("deploy", 30, "waiting", |a| a.activity == Some(Activity::Waiting));
    assert!(a.reason.contains("› 1. Deploy all"), "{a:#?}");
    wait_out(Duration::from_secs(4), "twice stale_after");
    let a = w.agent("deploy");
    assert_eq!((a.incarnation, a.activity), (1, Some(Activity::Waiting)), "{a:#?}");
    assert!(untouched(&w, "deploy"));
}
