//! `vigil doctor` on real projects: all ✓ on a good one, and a ✗ with its fix for a
//! missing agent binary, a state dir open to others and a pattern that can never match.

use std::process::{Command, Output};

use super::harness::*;

/// `vigil doctor` with `state` as the state dir and no user units in sight.
fn doctor(w: &World, state: &std::path::Path, args: &[&str]) -> Output {
    let config_home = w.dir.path().join("config-home");
    Command::new(VIGIL)
        .arg("--config")
        .arg(w.config())
        .arg("doctor")
        .args(args)
        .env("VIGIL_STATE_DIR", state)
        .env("XDG_CONFIG_HOME", config_home)
        .output()
        .unwrap()
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn doctor_passes_on_a_good_project_and_reads_a_running_agents_screen() {
    let mut w = World::new(&agent("worker", "worker.sh", ""));
    let out = doctor(&w, &w.state(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!said(&out).contains('✗'), "{}", said(&out));
    assert!(said(&out).contains("✓ tmux: tmux "), "{}", said(&out));
    w.watch();
    w.eventually(std::time::Duration::from_secs(20), "the worker working", || {
        (w.agent("worker").lifecycle == Some(Lifecycle::Working)).then_some(())
    });
    let out = doctor(&w, &w.state(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let screen = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "worker screen")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(screen["verdict"], "pass", "{doc}");
    assert!(screen["detail"].as_str().unwrap().contains("in `"), "{doc}");
}

#[test]
fn doctor_fails_with_the_fix_for_a_missing_binary_an_open_state_dir_and_a_pattern_that_never_matches() {
    use std::os::unix::fs::PermissionsExt;
    let body = "[[agent]]\nname = \"ghost\"\ncommand = [\"no-such-agent-cli-7f3\"]\nprompt = \"^> $\"\n";
    let w = World::new(body);
    let open = w.dir.path().join("open-state");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = doctor(&w, &open, &[]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ ghost command: `no-such-agent-cli-7f3` is not an executable file")
            && text.contains("fix: install `no-such-agent-cli-7f3`"),
        "{text}"
    );
    assert!(text.contains("✗ state dir") && text.contains("chmod go-w"), "{text}");
    assert!(
        text.contains("✗ config warning") && text.contains("can never match"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&open).unwrap().permissions().mode() & 0o777,
        0o777,
        "doctor changes nothing"
    );
}
