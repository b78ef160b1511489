//! `vigil tui` as a user meets it: the real binary in a real terminal (a pane of the
//! test's private tmux server), keys typed with `send-keys`, the screen read with
//! `capture-pane`.

use std::time::{Duration, Instant};

use super::harness::*;

const DASH: &str = "dash";

/// Starts `vigil tui` in its own 120×40 session; the pane stays after it exits.
fn start_tui(w: &World) {
    let state = format!("VIGIL_STATE_DIR={}", w.state().display());
    let config = w.config();
    let target = format!("={DASH}:");
    w.tmux(&[
        "new-session",
        "-d",
        "-s",
        DASH,
        "-x",
        "120",
        "-y",
        "40",
        "-e",
        &state,
        "--",
        VIGIL,
        "--config",
        config.to_str().unwrap(),
        "tui",
        ";",
        "set-option",
        "-w",
        "-t",
        &target,
        "remain-on-exit",
        "on",
    ]);
}

fn pane(w: &World, format: &str) -> String {
    w.tmux(&["display-message", "-p", "-t", &format!("={DASH}:"), format])
        .trim()
        .to_owned()
}

/// Waits until `session`'s screen satisfies `check`; returns it.
fn wait_screen(w: &World, session: &str, secs: u64, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let screen = w.capture(session);
        if check(&screen) {
            return screen;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; {session} shows:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_dead(w: &World) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pane(w, "#{pane_dead}") != "1" {
        assert!(
            Instant::now() < deadline,
            "vigil tui did not exit:\n{}",
            w.capture(DASH)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The terminal is handed back: out of the alternate screen, and vigil's last words
/// printed on the normal one.
fn assert_restored(w: &World) {
    assert_eq!(pane(w, "#{alternate_on}"), "0", "still on the alternate screen");
    let screen = w.capture(DASH);
    assert!(
        screen.contains("vigil tui: stopped; the agents keep running"),
        "{screen}"
    );
    assert!(!screen.contains("n nudge"), "the dashboard is gone: {screen}");
}

#[test]
fn a_key_nudges_the_selected_agent_and_the_decision_shows_in_the_event_log() {
    let mut body = agent("prompt", "prompt.sh", "idle_checks = 1000");
    body.push_str(&agent("worker", "worker.sh", ""));
    let w = World::new(&body);
    let session = |name: &str| {
        w.sessions()
            .into_iter()
            .find(|s| s.ends_with(&format!("-{name}")))
            .unwrap_or_else(|| panic!("no session for {name}: {:?}", w.sessions()))
    };
    start_tui(&w);
    wait_screen(&w, DASH, 20, "the fleet table", |s| {
        s.contains("OWNER") && s.lines().any(|l| l.contains("prompt") && l.contains("working"))
    });
    let prompt = session("prompt");
    wait_screen(&w, &prompt, 10, "the agent's prompt", |s| {
        s.contains("waiting for instructions")
    });

    // Select it with the filter, then nudge it.
    w.tmux(&[
        "send-keys",
        "-t",
        &format!("={DASH}:"),
        "/",
        "p",
        "r",
        "o",
        "m",
        "p",
        "t",
        "Enter",
    ]);
    wait_screen(&w, DASH, 10, "the selection", |s| s.contains("prompt #1 · "));
    w.tmux(&["send-keys", "-t", &format!("={DASH}:"), "n"]);
    wait_screen(&w, &prompt, 10, "the nudge text in the agent's pane", |s| {
        s.contains("got instruction: continue")
    });
    let screen = wait_screen(&w, DASH, 10, "the decision in the event log", |s| {
        s.contains("prompt #1 → nudge (types \"continue\"): nudge requested by the user")
    });
    assert!(screen.contains("nudge prompt: done"), "{screen}");

    w.tmux(&["send-keys", "-t", &format!("={DASH}:"), "q"]);
    wait_dead(&w);
    assert_restored(&w);
    let released = w.journal().into_iter().any(|r| r["kind"] == "released");
    assert!(released, "the owner journals that it let go");
    let worker = w.capture(&session("worker"));
    assert!(
        worker.contains("worker: finished step"),
        "agents keep running: {worker}"
    );
}

#[test]
fn sigterm_restores_the_terminal_and_a_second_tui_is_a_viewer() {
    let mut w = World::new(&agent("worker", "worker.sh", ""));
    w.watch();
    w.wait_for("worker", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    start_tui(&w);
    let screen = wait_screen(&w, DASH, 20, "the viewer title", |s| s.contains("VIEWER · owner pid"));
    assert!(screen.contains("(vigil watch, epoch 1)"), "{screen}");
    let pid = pane(&w, "#{pane_pid}");
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    wait_dead(&w);
    assert_restored(&w);
}
