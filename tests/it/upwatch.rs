//! `vigil up` leaves the fleet supervised (a detached `vigil watch` when no owner runs
//! and no systemd user manager starts the unit, as in a container); `--no-watch` does
//! not; `vigil down` stops the agents and the owner `up` started, never another.

use serde_json::Value;

use super::harness::*;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn owner_json(w: &World) -> Value {
    serde_json::from_slice(&std::fs::read(w.state().join("owner.json")).unwrap()).unwrap()
}

#[test]
fn up_with_no_owner_leaves_a_live_owner_that_restarts_a_crashed_agent() {
    let w = World::new(&agent("crasher", "crasher.sh", "env = { CRASH_AFTER = \"1\" }"));
    let out = w.vigil_watching(&["up", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["agents"][0]["name"], "crasher", "{doc}");
    let supervisor = &doc["supervisor"];
    assert_eq!(supervisor["how"], "detached", "{doc}");
    let pid = supervisor["pid"].as_u64().expect("the owner's pid") as u32;
    assert!(!gone(pid), "the owner `up` started is alive after `up` exited");
    let status = w.status_json();
    assert_eq!(status["owner"]["pid"].as_u64(), Some(u64::from(pid)), "{status}");
    assert!(
        status["owner"]["heartbeat_age_s"]
            .as_f64()
            .is_some_and(|age| age < 10.0),
        "heartbeat fresh: {status}"
    );
    assert_eq!(owner_json(&w)["launched_by"], "up");
    // No other command: the owner sees the crash and starts incarnation 2.
    let a = w.wait_for("crasher", 20, "restarted by the owner `up` left", |a| {
        a.incarnation >= 2
    });
    assert!(a.restarts >= 1, "{a:#?}");
}

#[test]
fn up_no_watch_leaves_no_owner() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    let out = w.vigil_watching(&["up", "--no-watch", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["agents"][0]["outcome"], "started", "{doc}");
    assert!(doc.get("supervisor").is_none(), "{doc}");
    assert!(w.status_json()["owner"].is_null());
    let out = w.vigil(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("owner: none"),
        "{}",
        text(&out)
    );
}

#[test]
fn down_stops_every_agent_and_the_owner_up_started() {
    let w = World::new(&(agent("a", "worker.sh", "") + &agent("b", "worker.sh", "")));
    let out = w.vigil_watching(&["up"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("detached `vigil watch`"), "{}", text(&out));
    let pid = owner_json(&w)["pid"].as_u64().unwrap() as u32;
    w.eventually(std::time::Duration::from_secs(20), "both agents up", || {
        (w.sessions().len() == 2).then_some(())
    });
    let out = w.vigil(&["down"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(gone(pid), "the owner `up` started is gone: {}", text(&out));
    assert_eq!(w.sessions(), Vec::<String>::new(), "no session left");
    assert!(w.status_json()["owner"].is_null());
    let log = std::fs::read_to_string(w.state().join("watch.log")).unwrap();
    assert!(
        log.contains("vigil watch: stopped"),
        "the owner exited cleanly (0): {log}"
    );
    assert!(
        w.journal()
            .iter()
            .any(|e| matches!(e.record, Record::Released { pid: p, .. } if p == pid)),
        "the owner let the run go"
    );
    for name in ["a", "b"] {
        assert!(w.agent(name).stopped, "{name} is kept stopped");
    }
}

#[test]
fn up_while_an_owner_runs_goes_through_it_and_down_leaves_that_owner_running() {
    let mut w = World::new(&agent("worker", "worker.sh", ""));
    w.watch();
    let watch = w.watch_pid();
    w.eventually(std::time::Duration::from_secs(20), "the watch owns the run", || {
        (w.status_json()["owner"]["pid"].as_u64() == Some(u64::from(watch))).then_some(())
    });
    let out = w.vigil_watching(&["up", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.get("supervisor").is_none(), "no second owner: {doc}");
    assert_eq!(w.status_json()["owner"]["pid"].as_u64(), Some(u64::from(watch)));
    assert!(owner_json(&w).get("launched_by").is_none());
    let out = w.vigil(&["down"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("keeps supervising"), "{}", text(&out));
    assert!(!gone(watch), "a user's watch is not stopped by `down`");
    w.wait_for("worker", 20, "stopped", |a| a.stopped);
    assert_eq!(w.stop_watch(), Some(0));
}
