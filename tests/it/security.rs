//! What a config holds reaches the agent as data, never as a tmux command: arguments,
//! env values, the working directory and typed text arrive byte for byte, checked inside
//! the agent (fixtures/agents/witness.sh), and nothing they spell is ever run.

use std::path::Path;
use std::time::Duration;

use super::harness::*;

/// A witness agent with `command` (after the script) and `extra` keys, writing to `out`.
fn witness(out: &Path, args: &[&str], extra: &str) -> String {
    let mut argv = vec!["sh".to_owned(), "{agents}/witness.sh".to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "[[agent]]\nname = \"w\"\npreset = \"shell\"\ncommand = [{}]\nenv = {{ WITNESS_DIR = {:?}, WITNESS = \"x=1; y;\" }}\n{extra}\n",
        argv.join(", "),
        out.to_str().unwrap()
    )
}

fn read(out: &Path, file: &str) -> String {
    std::fs::read_to_string(out.join(file)).unwrap_or_default()
}

#[test]
fn arguments_and_env_values_ending_in_a_semicolon_arrive_literally_and_run_nothing() {
    let out = tempfile::tempdir().unwrap();
    let args = [
        "sleep",
        "100;",
        "run-shell",
        "touch pwned",
        ";",
        "-exec",
        "{}",
        "\\;",
        "a\\",
    ];
    let w = World::new(&witness(out.path(), &args, ""));
    let up = w.vigil(&["up"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stdout));
    w.eventually(Duration::from_secs(10), "the witness ready", || {
        Some(read(out.path(), "cwd.txt")).filter(|c| !c.is_empty())
    });
    let got: Vec<String> = read(out.path(), "argv.txt").lines().map(str::to_owned).collect();
    assert_eq!(got, args, "every argument arrives as written");
    assert_eq!(read(out.path(), "env.txt"), "x=1; y;\n");
    assert!(!w.dir.path().join("pwned").exists(), "tmux ran `run-shell`");
    assert!(!Path::new("pwned").exists(), "tmux ran `run-shell`");
}

#[test]
fn a_working_directory_with_tmux_formats_in_its_name_is_used_as_written() {
    for name in ["d#(touch fmt)", "e#{pane_id}", "semi;"] {
        let out = tempfile::tempdir().unwrap();
        let w = World::new(&witness(out.path(), &[], &format!("cwd = {name:?}")));
        let dir = w.dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let up = w.vigil(&["up"]);
        assert!(up.status.success(), "{name}: {}", String::from_utf8_lossy(&up.stdout));
        let cwd = w.eventually(Duration::from_secs(10), "the witness ready", || {
            Some(read(out.path(), "cwd.txt")).filter(|c| !c.is_empty())
        });
        let want = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(
            cwd.trim_end(),
            want.to_str().unwrap(),
            "{name}: started where configured"
        );
        assert!(
            !w.dir.path().join("fmt").exists() && !dir.join("fmt").exists(),
            "{name}: tmux ran `touch`"
        );
    }
}

#[test]
fn a_nudge_ending_in_a_semicolon_is_typed_with_its_semicolon() {
    let out = tempfile::tempdir().unwrap();
    let w = World::new(&witness(out.path(), &[], "nudge = \"go on;\""));
    assert!(w.vigil(&["up"]).status.success());
    let session = w
        .wait_for("w", 10, "working", |a| a.lifecycle == Some(Lifecycle::Working))
        .session;
    w.wait_screen(&session, 10, "witness: ready");
    let nudged = w.vigil(&["nudge", "w"]);
    assert!(nudged.status.success(), "{}", String::from_utf8_lossy(&nudged.stderr));
    w.wait_screen(&session, 10, "witness: got go on;");
    assert_eq!(read(out.path(), "typed.txt"), "go on;\n");
}

#[test]
fn a_start_that_fails_names_the_env_keys_but_never_a_value_anywhere() {
    let w = World::new(&agent("a", "worker.sh", "env = { API_KEY = \"sk-live-0123456789\" }"));
    // A tmux that refuses to start sessions, the way a full /tmp makes it (its message
    // does not repeat the arguments); everything else reaches the real tmux.
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v tmux"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bin = w.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let shim = bin.join("tmux");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = new-session ] && {{ echo 'create session failed: No space left on device' >&2; exit 1; }}; done\nexec {} \"$@\"\n",
            real.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = std::process::Command::new(VIGIL)
        .arg("--config")
        .arg(w.config())
        .args(["up", "--no-watch"])
        .env("VIGIL_STATE_DIR", w.state())
        .env("PATH", path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("API_KEY=…") && said.contains("No space left"),
        "the failure is told: {said}"
    );
    let journal = std::fs::read_to_string(w.state().join("journal.jsonl")).unwrap();
    let state = std::fs::read_to_string(w.state().join("state.json")).unwrap();
    for (place, text) in [("output", &said), ("journal", &journal), ("state.json", &state)] {
        assert!(
            !text.contains("sk-live"),
            "the env value leaked into the {place}: {text}"
        );
    }
}

#[test]
fn a_state_dir_of_someone_else_or_open_to_all_is_refused_and_left_as_it_was() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let w = World::new(&agent("a", "worker.sh", ""));
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let foreign = tempfile::tempdir().unwrap();
    let me = std::fs::metadata(foreign.path()).unwrap().uid();
    let chowned = me == 0
        && std::process::Command::new("chown")
            .args(["65534", foreign.path().to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
    let mut cases = vec![(shared.path(), "others may write in it")];
    if chowned {
        cases.push((foreign.path(), "belongs to uid 65534"));
    } else {
        println!("skipped the foreign-owner case: not root, cannot chown");
    }
    for (dir, why) in cases {
        let before = std::fs::metadata(dir).unwrap();
        let out = std::process::Command::new(VIGIL)
            .arg("--config")
            .arg(w.config())
            .arg("up")
            .env("VIGIL_STATE_DIR", dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", dir.display());
        assert!(err.contains("will not keep state in") && err.contains(why), "{err}");
        let after = std::fs::metadata(dir).unwrap();
        assert_eq!(
            after.permissions().mode(),
            before.permissions().mode(),
            "never re-moded"
        );
        assert_eq!(after.uid(), before.uid());
        assert!(w.sessions().is_empty(), "nothing started without a mind to write it in");
    }
}

#[test]
fn a_journal_symlinked_elsewhere_is_never_written_through_and_its_target_stays_whole() {
    let w = World::new(&agent("a", "worker.sh", ""));
    std::fs::create_dir_all(w.state()).unwrap();
    let precious = w.dir.path().join("precious.txt");
    std::fs::write(&precious, "line one\nhalf a line").unwrap();
    std::os::unix::fs::symlink(&precious, w.state().join("journal.jsonl")).unwrap();
    let out = w.vigil(&["up"]);
    assert_ne!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "line one\nhalf a line");
}

#[test]
fn check_refuses_a_forged_owner_record_and_leaves_the_process_it_names_alive() {
    let w = World::new(&agent("a", "worker.sh", ""));
    vigil::store::Store::open(&w.state()).unwrap();
    let mut stranger = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let pid = stranger.id();
    let forged = serde_json::json!({
        "pid": pid,
        "start_time": vigil::adapters::process::start_time(pid),
        "host": vigil::adapters::process::hostname(),
        "epoch": 1,
        "started_at": "2026-01-01T00:00:00Z",
        "role": "watch",
    });
    std::fs::write(w.state().join("owner.json"), forged.to_string()).unwrap();
    let out = w.vigil(&["check", "--stale-after", "1s", "--grace", "1s", "--restart"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("does not hold the project's lock"), "{said}");
    assert!(
        vigil::adapters::process::alive(pid),
        "the process a forged owner.json names is never signalled"
    );
    assert!(w.sessions().is_empty(), "and no new owner was started: {said}");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}
