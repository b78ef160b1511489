//! `vigil tui` as a user meets it: the real binary in a real terminal (a pane of the
//! test's private tmux server), keys typed with `send-keys`, the screen read with
//! `capture-pane`. An owner dashboard is a face of the same owner loop as `vigil watch`:
//! it reloads its config, survives SIGHUP and speaks sd_notify.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use super::harness::*;
use super::systemd::{config_plus, read_until};

const DASH: &str = "dash";

/// Starts `vigil tui` in its own 120×40 session; the pane stays after it exits.
fn start_tui(w: &World) {
    start_tui_with(w, &[]);
}

/// Starts `vigil tui` with more environment (`NAME=value` each).
fn start_tui_with(w: &World, env: &[String]) {
    let state = format!("VIGIL_STATE_DIR={}", w.state().display());
    let config = w.config();
    let target = format!("={DASH}:");
    let mut args = vec!["new-session", "-d", "-s", DASH, "-x", "120", "-y", "40", "-e", &state];
    for e in env {
        args.extend(["-e", e.as_str()]);
    }
    args.extend([
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
    w.tmux(&args);
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
    let released = w
        .journal()
        .into_iter()
        .any(|e| matches!(e.record, Record::Released { .. }));
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

fn keys(w: &World, keys: &[&str]) {
    let target = format!("={DASH}:");
    let mut args = vec!["send-keys", "-t", target.as_str()];
    args.extend(keys);
    w.tmux(&args);
}

fn hangup(w: &World) {
    let pid = pane(w, "#{pane_pid}");
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn reloads(w: &World) -> Vec<vigil::store::record::Reload> {
    w.journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Reloaded(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn an_owner_tui_reloads_an_edited_config_and_starts_the_agent_it_adds() {
    let w = World::new(&agent("a", "worker.sh", ""));
    start_tui(&w);
    let a = w.wait_for("a", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    wait_screen(&w, DASH, 10, "the owner's title", |s| {
        s.contains("OWNER · supervising 1 agents")
    });

    // As editors save: a new file renamed over the old one.
    let good = config_plus(&w, &agent("b", "worker.sh", ""));
    let good = good.replace("{agents}", super::harness::fixtures().join("agents").to_str().unwrap());
    let tmp = w.dir.path().join(".vigil.toml.swp");
    std::fs::write(&tmp, &good).unwrap();
    std::fs::rename(&tmp, w.config()).unwrap();
    w.wait_for("b", 20, "b started by the reloaded config", |b| {
        b.lifecycle == Some(Lifecycle::Working)
    });
    let reloaded = reloads(&w);
    assert_eq!(reloaded.len(), 1, "{reloaded:?}");
    assert_eq!(reloaded[0].added, ["b"]);
    wait_screen(&w, DASH, 10, "b on the dashboard", |s| {
        s.contains("OWNER · supervising 2 agents") && s.lines().any(|l| l.contains(" b ") && l.contains("working"))
    });
    let a_now = w.agent("a");
    assert_eq!(a_now.pane_pid, a.pane_pid, "a was not restarted");
    assert_eq!(a_now.incarnation, a.incarnation);

    keys(&w, &["q"]);
    wait_dead(&w);
    assert_restored(&w);
}

#[test]
fn sighup_reloads_an_owner_tui_and_it_keeps_running() {
    let w = World::new(&agent("a", "worker.sh", ""));
    start_tui(&w);
    let a = w.wait_for("a", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    wait_screen(&w, DASH, 10, "the owner's title", |s| s.contains("OWNER"));

    hangup(&w);
    w.wait_journal(10, "the reload SIGHUP asks for", |e| {
        matches!(e.record, Record::Reloaded(_))
    });
    // Still drawing: the reload reaches the event log, after the signal.
    wait_screen(&w, DASH, 10, "the reload in the event log", |s| {
        s.contains("config reloaded: nothing that matters changed")
    });
    assert_eq!(pane(&w, "#{pane_dead}"), "0", "SIGHUP does not end the dashboard");
    let owner = w.status().owner.map(|o| o.pid.to_string());
    assert_eq!(owner, Some(pane(&w, "#{pane_pid}")), "the dashboard still owns the run");
    w.eventually(Duration::from_secs(5), "a fresh heartbeat after SIGHUP", || {
        let age = w.status().owner?.heartbeat_age_s?;
        (age <= 1.0).then_some(())
    });
    let a_now = w.agent("a");
    assert_eq!(a_now.pane_pid, a.pane_pid, "the agent was not touched");
    assert_eq!(a_now.incarnation, a.incarnation);
    assert_eq!(reloads(&w).len(), 1);

    keys(&w, &["q"]);
    wait_dead(&w);
    assert_restored(&w);
}

#[test]
fn an_owner_tui_speaks_sd_notify_like_watch() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let socket_path = w.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    start_tui_with(
        &w,
        &[
            format!("NOTIFY_SOCKET={}", socket_path.display()),
            "WATCHDOG_USEC=2000000".to_owned(),
        ],
    );
    let mut seen = Vec::new();
    assert!(
        read_until(&sock, "READY=1", Duration::from_secs(20), &mut seen),
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|m| !m.contains("WATCHDOG=1")),
        "nothing before READY: {seen:?}"
    );
    let owner = w.status().owner.map(|o| o.pid.to_string());
    assert_eq!(
        owner,
        Some(pane(&w, "#{pane_pid}")),
        "ready means claimed by this dashboard"
    );
    for _ in 0..2 {
        assert!(
            read_until(&sock, "WATCHDOG=1", Duration::from_secs(3), &mut seen),
            "{seen:?}"
        );
    }
    hangup(&w);
    assert!(
        read_until(
            &sock,
            "STATUS=config reloaded (SIGHUP)",
            Duration::from_secs(10),
            &mut seen
        ),
        "{seen:?}"
    );
    keys(&w, &["q"]);
    assert!(
        read_until(&sock, "STOPPING=1", Duration::from_secs(10), &mut seen),
        "{seen:?}"
    );
    wait_dead(&w);
    assert_restored(&w);
    let first = |word: &str| seen.iter().position(|m| m.lines().any(|l| l == word)).unwrap();
    assert!(first("READY=1") < first("WATCHDOG=1") && first("WATCHDOG=1") < first("STOPPING=1"));
}

/// The owner's loop count in its heartbeat.
fn loops(w: &World) -> u64 {
    let text = std::fs::read_to_string(w.state().join("heartbeat")).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|h| h["loops"].as_u64())
        .unwrap_or(0)
}

#[test]
fn supervision_goes_on_while_the_owner_dashboard_is_attached_to_an_agent() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    start_tui(&w);
    wait_screen(&w, DASH, 20, "the fleet table", |s| {
        s.contains("OWNER") && s.lines().any(|l| l.contains("worker") && l.contains("working"))
    });
    // No client is attached to the test's server, so `a` runs a nested `tmux attach`
    // in the dashboard's own terminal, which holds it until the client detaches.
    w.tmux(&["send-keys", "-t", &format!("={DASH}:"), "a"]);
    wait_screen(&w, DASH, 10, "the agent's pane in the dashboard's terminal", |s| {
        s.contains("worker:") && !s.contains("OWNER")
    });
    let before = loops(&w);
    wait_out(Duration::from_secs(2), "ten polls while the person looks at the agent");
    let after = loops(&w);
    assert!(
        after >= before + 5,
        "the owner kept passing while attached: {before} → {after} loops"
    );
    w.tmux(&["send-keys", "-t", &format!("={DASH}:"), "C-b", "d"]);
    wait_screen(&w, DASH, 10, "the dashboard back", |s| s.contains("back from"));
    w.tmux(&["send-keys", "-t", &format!("={DASH}:"), "q"]);
    wait_dead(&w);
}
