//! The command line's contract: `up` fan-out and idempotence, stop/restart, exit codes.

use serde_json::Value;

use super::harness::*;

fn up_json(w: &World, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["up", "--json"];
    all.extend(args);
    let out = w.vigil(&all);
    let code = out.status.code().unwrap();
    let doc =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (code, doc)
}

fn outcomes(doc: &Value) -> Vec<(String, String)> {
    doc["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn up_starts_each_agent_once_and_a_second_up_starts_nothing() {
    let w = World::new(&(agent("a", "worker.sh", "") + &agent("b", "prompt.sh", "")));
    let (code, doc) = up_json(&w, &[]);
    assert_eq!(code, 0, "{doc:#?}");
    assert_eq!(
        outcomes(&doc),
        [("a".into(), "started".into()), ("b".into(), "started".into())]
    );
    let sessions = w.sessions();
    assert_eq!(sessions.len(), 2);
    let (code, doc) = up_json(&w, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        outcomes(&doc),
        [("a".into(), "running".into()), ("b".into(), "running".into())]
    );
    assert_eq!(w.sessions(), sessions, "nothing new started");
    let tags = w.tmux(&[
        "show-options",
        "-t",
        &format!("={}:", sessions[0]),
        "@vigil-incarnation",
    ]);
    assert_eq!(tags.trim(), "@vigil-incarnation 1");
}

#[test]
fn up_of_one_agent_starts_only_that_one() {
    let w = World::new(&(agent("a", "worker.sh", "") + &agent("b", "worker.sh", "")));
    let (code, doc) = up_json(&w, &["b"]);
    assert_eq!(code, 0);
    assert_eq!(outcomes(&doc), [("b".into(), "started".into())]);
    assert_eq!(w.sessions().len(), 1);
}

#[test]
fn up_reports_an_agent_that_cannot_start_with_its_last_words_and_exits_1() {
    let body = agent("ok", "worker.sh", "")
        + "[[agent]]\nname = \"broken\"\ncommand = [\"no-such-agent-binary\", \"--flag\"]\n";
    let w = World::new(&body);
    let (code, doc) = up_json(&w, &[]);
    assert_eq!(code, 1, "{doc:#?}");
    assert_eq!(
        outcomes(&doc),
        [("ok".into(), "started".into()), ("broken".into(), "failed".into())]
    );
    let broken = &doc["agents"][1];
    assert!(
        broken["reason"].as_str().unwrap().contains("failed to start")
            && broken["reason"].as_str().unwrap().contains("exit 127"),
        "{broken:#?}"
    );
    let words = broken["last_lines"].to_string();
    assert!(
        words.contains("no-such-agent-binary") && words.contains("not found"),
        "{broken:#?}"
    );
}

#[test]
fn stop_holds_an_agent_down_and_up_brings_it_back() {
    let w = World::new(&agent("a", "worker.sh", "restart = \"always\""));
    assert!(w.vigil(&["up"]).status.success());
    let out = w.vigil(&["stop", "a"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(w.sessions().is_empty());
    assert!(w.vigil(&["tick"]).status.success());
    assert!(w.sessions().is_empty(), "a tick does not restart a stopped agent");
    let a = w.agent("a");
    assert!(a.stopped);
    assert!(a.reason.as_str().starts_with("stopped by the user"), "{a:#?}");
    let (_, doc) = up_json(&w, &["a"]);
    assert_eq!(outcomes(&doc), [("a".into(), "started".into())]);
    assert_eq!(w.agent("a").incarnation, 2);
}

#[test]
fn restart_replaces_the_incarnation() {
    let w = World::new(&agent("a", "worker.sh", ""));
    assert!(w.vigil(&["up"]).status.success());
    let pid = w.agent("a").pane_pid;
    assert!(w.vigil(&["restart", "a"]).status.success());
    assert!(w.vigil(&["tick"]).status.success());
    let a = w.agent("a");
    assert_eq!(a.incarnation, 2);
    assert_ne!(a.pane_pid, pid);
    assert_eq!(w.sessions().len(), 1);
}

#[test]
fn a_command_while_watch_runs_goes_through_the_owners_inbox() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    w.watch();
    w.wait_for("a", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let out = w.vigil(&["stop", "a"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("asked the owner"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    w.wait_for("a", 20, "stopped", |a| {
        a.stopped && a.lifecycle == Some(Lifecycle::Completed)
    });
    let (code, doc) = up_json(&w, &["a"]);
    assert_eq!(
        (code, outcomes(&doc)),
        (0, vec![("a".into(), "started".into())]),
        "{doc:#?}"
    );
}

#[test]
fn a_second_supervisor_is_refused_with_who_owns_the_run() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    w.watch();
    w.wait_for("a", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let out = w.vigil(&["tick"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another vigil owns this project") && err.contains("`vigil watch`"),
        "{err}"
    );
}

#[test]
fn unknown_agents_and_bad_usage_exit_2() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let out = w.vigil(&["stop", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no agent named `nope`"));
    assert_eq!(w.vigil(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn log_shows_decisions_with_reasons() {
    let w = World::new(&agent("a", "finisher.sh", "env = { FINISH_AFTER = \"0\" }"));
    assert!(w.vigil(&["up"]).status.success());
    w.eventually(std::time::Duration::from_secs(10), "the finisher's pane dead", || {
        (w.panes("#{pane_dead}").trim() == "1").then_some(())
    });
    assert!(w.vigil(&["tick"]).status.success());
    let out = w.vigil(&["log"]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("a #1 → start: started by `vigil up`"), "{log}");
    assert!(log.contains("a #1 is completed: exited with status 0"), "{log}");
    let out = w.vigil(&["log", "--json"]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let _: Value = serde_json::from_str(line).unwrap();
    }
}

#[test]
fn log_shows_a_kind_it_does_not_know_raw_with_json_and_skips_it_for_people() {
    let w = World::new(&agent("a", "worker.sh", ""));
    assert!(w.vigil(&["up"]).status.success());
    let future = r#"{"kind":"hologram","t":"2030-01-01T00:00:00Z","agent":"a"}"#;
    let path = w.state().join("journal.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(future);
    text.push_str("\nnot json\n");
    std::fs::write(&path, text).unwrap();
    let out = w.vigil(&["log", "--json"]);
    assert!(out.status.success());
    let json = String::from_utf8_lossy(&out.stdout);
    assert_eq!(json.lines().last(), Some(future), "{json}");
    let out = w.vigil(&["log"]);
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("a #1 → start"), "{log}");
    assert!(!log.contains("hologram") && !log.contains("not json"), "{log}");
}

#[test]
fn a_project_reached_through_a_symlink_has_one_owner_and_one_agent() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let elsewhere = tempfile::tempdir().unwrap();
    let alias = elsewhere.path().join("alias");
    std::os::unix::fs::symlink(w.dir.path(), &alias).unwrap();
    // No VIGIL_STATE_DIR: each process finds the state dir from the project itself.
    let xdg = elsewhere.path().join("xdg");
    let vigil = |config: &std::path::Path| {
        let mut cmd = std::process::Command::new(VIGIL);
        cmd.arg("--config")
            .arg(config)
            .env_remove("VIGIL_STATE_DIR")
            .env("XDG_STATE_HOME", &xdg)
            .stdin(std::process::Stdio::null());
        cmd
    };
    let mut watch = vigil(&w.config())
        .arg("watch")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    w.eventually(std::time::Duration::from_secs(20), "the watch's agent started", || {
        (w.sessions().len() == 1).then_some(())
    });
    let out = vigil(&alias.join("vigil.toml")).arg("tick").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the second path is refused: {err}");
    assert!(err.contains("another vigil owns this project"), "{err}");
    let out = vigil(&alias.join("vigil.toml"))
        .args(["up", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        w.sessions().len(),
        1,
        "one agent, not two: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::process::Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(poll(std::time::Duration::from_secs(10), || watch.try_wait().unwrap()).is_some());
}

#[test]
fn two_projects_whose_directories_share_a_name_both_run_on_one_tmux_server() {
    let w = World::new("");
    let root = tempfile::tempdir().unwrap();
    let agents = fixtures().join("agents");
    let projects: Vec<std::path::PathBuf> = ["a", "b"].iter().map(|p| root.path().join(p).join("app")).collect();
    for (i, dir) in projects.iter().enumerate() {
        std::fs::create_dir_all(dir).unwrap();
        let config = format!(
            "[vigil]\nsocket = \"{}\"\nstate_dir = \"state\"\n\n{}",
            w.socket,
            agent("backend", "worker.sh", "").replace("{agents}", agents.to_str().unwrap())
        );
        std::fs::write(dir.join("vigil.toml"), config).unwrap();
        let out = std::process::Command::new(VIGIL)
            .arg("--config")
            .arg(dir.join("vigil.toml"))
            .args(["up", "--no-watch"])
            .env_remove("VIGIL_STATE_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "project {i} started: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sessions = w.sessions();
    assert_eq!(sessions.len(), 2, "one session per project: {sessions:?}");
    assert_ne!(sessions[0], sessions[1]);
    assert!(
        sessions
            .iter()
            .all(|s| s.starts_with("app-") && s.ends_with("-backend")),
        "{sessions:?}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_each_command_quietly_with_exit_0() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let closed = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // like `| head -c 0`: every write meets a closed pipe
        let out = std::process::Command::new(VIGIL)
            .arg("--config")
            .arg(w.config())
            .args(args)
            .env("VIGIL_STATE_DIR", w.state())
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "vigil {args:?} on a closed pipe: {stderr}");
        assert!(!stderr.contains("panicked"), "vigil {args:?}: {stderr}");
    };
    closed(&["up", "--no-watch"]);
    closed(&["status"]);
    closed(&["status", "--json"]);
    closed(&["log"]);
    closed(&["check"]);
}

#[test]
fn a_session_vigil_did_not_start_holding_the_agents_name_is_left_alone_and_is_no_crash() {
    let w = World::new(&agent("backend", "worker.sh", ""));
    let name = w.agent("backend").session;
    w.tmux(&["new-session", "-d", "-s", &name, "sleep 300"]);
    let foreign_pid = w.tmux(&["display-message", "-p", "-t", &format!("={name}:"), "#{pane_pid}"]);
    let out = w.vigil(&["up"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let started = w.agent("backend");
    assert_eq!(started.session, format!("{name}-2"), "{said}");
    // The stranger's session is as it was: same process, no tags.
    assert_eq!(
        w.tmux(&["display-message", "-p", "-t", &format!("={name}:"), "#{pane_pid}"]),
        foreign_pid
    );
    assert_eq!(
        w.tmux(&["show-options", "-v", "-t", &format!("={name}:"), "@vigil-agent"]),
        ""
    );
    // A restart goes to the agent's own session, never to the stranger's.
    assert_eq!(w.vigil(&["restart", "backend"]).status.code(), Some(0));
    let restarted = w.agent("backend");
    assert_eq!(restarted.incarnation, started.incarnation + 1);
    assert!(
        restarted.crashes.is_empty(),
        "a name clash is never a crash: {restarted:?}"
    );
    assert_eq!(
        w.tmux(&["display-message", "-p", "-t", &format!("={name}:"), "#{pane_pid}"]),
        foreign_pid
    );
    let noted = w.journal().into_iter().any(|e| {
        matches!(&e.record, vigil::store::Record::Note { reason, .. } if reason.contains("left it alone and started backend as"))
    });
    assert!(noted, "the journal says why the name differs");
}
