//! Every bad config under tests/bad_configs/ gives exactly the message in its
//! `.expected` file (file:line:column, key path, what was expected, a caret, a hint),
//! with exit code 2 and no panic; the documented example parses.

use std::path::Path;
use std::process::Command;

use super::harness::VIGIL;

#[test]
fn each_bad_config_gives_its_exact_error_and_exit_code_2() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(root.join("tests/bad_configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let rel = path.strip_prefix(root).unwrap();
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected file", rel.display()));
        let out = Command::new(VIGIL)
            .current_dir(root)
            .arg("--config")
            .arg(rel)
            .arg("status")
            .env_remove("VIGIL_STATE_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || stderr != expected {
            wrong.push(format!(
                "{}: exit {:?}\n--- expected\n{expected}--- got\n{stderr}",
                rel.display(),
                out.status.code()
            ));
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} bad configs");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_documented_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let config = vigil::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.agents.len() >= 2);
    let text = std::fs::read_to_string(&path).unwrap();
    for key in [
        "poll_interval",
        "socket",
        "state_dir",
        "metrics_file",
        "restart",
        "tail_lines",
        "idle_checks",
        "stale_after",
        "rate_limit_lines",
        "rate_limit_cooldown",
        "crash_window",
        "crash_max",
        "crash_cooldown",
        "nudge",
        "resume",
        "name",
        "command",
        "cwd",
        "preset",
        "env",
        "prompt",
        "waiting",
        "rate_limit",
        "busy",
        "volatile",
    ] {
        assert!(
            text.contains(&format!("\n{key} =")) || text.contains(&format!("\n# {key} =")),
            "config.example.toml does not document `{key}`"
        );
    }
}

#[test]
fn the_config_is_found_from_a_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vigil.toml"),
        "[[agent]]\nname = \"a\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let sub = dir.path().join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let out = Command::new(VIGIL)
        .current_dir(&sub)
        .args(["status", "--json"])
        .env("VIGIL_STATE_DIR", dir.path().join("s"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let none = Command::new(VIGIL).current_dir("/").args(["status"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no vigil.toml"));
}

#[test]
fn a_fifo_in_place_of_the_config_is_refused_at_once_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("vigil.toml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut child = Command::new(VIGIL)
        .arg("--config")
        .arg(&fifo)
        .arg("status")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = super::harness::poll(std::time::Duration::from_secs(5), || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "refused, not hung: {stderr}");
    assert!(stderr.contains("a FIFO, not a regular file"), "{stderr}");
}
