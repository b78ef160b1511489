//! Letters to a running owner (`vigil watch`): every one carried out and answered to
//! the process that waits for it; old, future, oversized or malformed ones refused or
//! set aside, journaled with the reason, never obeyed.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use vigil::store::{AnswerOutcome, Refusal};

use super::harness::*;

/// A World whose agents `names` are all stopped, with `vigil watch` owning the run.
fn stopped_fleet_under_watch(names: &[&str]) -> World {
    let body: String = names.iter().map(|n| agent(n, "worker.sh", "")).collect();
    let mut w = World::new(&body);
    for n in names {
        assert!(w.vigil(&["stop", n]).status.success());
    }
    w.watch();
    w.eventually(Duration::from_secs(20), "the owner's first pass", || {
        w.status()
            .owner
            .filter(|_| w.journal().iter().any(|e| matches!(e.record, Record::Claimed { .. })))
    });
    w
}

fn answered(w: &World) -> Vec<vigil::store::Answer> {
    w.journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Answered(a) => Some(a),
            _ => None,
        })
        .collect()
}

fn inbox(w: &World) -> std::path::PathBuf {
    w.state().join("inbox")
}

/// Leaves a letter as a sender does: written under a name the owner skips, then renamed
/// into place, so the owner never reads it half-written.
fn post(path: std::path::PathBuf, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(tmp, path)
}

#[test]
fn four_concurrent_ups_to_a_running_owner_are_all_carried_out_and_each_answered() {
    let names = ["a", "b", "c", "d"];
    let w = stopped_fleet_under_watch(&names);
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            Command::new(VIGIL)
                .arg("--config")
                .arg(w.config())
                .args(["up", "--json", n])
                .env("VIGIL_STATE_DIR", w.state())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (n, child) in names.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{n}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_str(&stdout).unwrap();
        let a = &doc["agents"][0];
        assert_eq!(
            (a["name"].as_str(), a["outcome"].as_str()),
            (Some(*n), Some("started")),
            "{doc:#}"
        );
        assert_eq!(a["reason"], "started as #1", "{doc:#}");
    }
    for n in names {
        let a = w.agent(n);
        assert!(
            !a.stopped && a.incarnation == 1 && a.lifecycle.is_some_and(|l| l.is_live()),
            "{a:?}"
        );
    }
    let answers = answered(&w);
    let mut agents: Vec<String> = answers
        .iter()
        .filter(|a| a.outcome == AnswerOutcome::Started)
        .map(|a| a.request.agent().to_string())
        .collect();
    agents.sort();
    assert_eq!(agents, names, "one answer per letter: {answers:?}");
    assert_eq!(
        std::fs::read_dir(w.state().join("answers")).unwrap().count(),
        0,
        "collected"
    );
}

#[test]
fn a_letter_from_1970_or_eleven_minutes_ago_is_journaled_as_expired_and_not_obeyed() {
    let w = stopped_fleet_under_watch(&["a"]);
    assert!(w.vigil(&["up", "a"]).status.success());
    w.wait_for("a", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let pid = std::process::id();
    post(
        inbox(&w).join(format!("00000000000000000001-{pid}-000000-stop.json")),
        format!(r#"{{"version":2,"command":"stop","agent":"a","from_pid":{pid},"sent":"1970-01-01T00:00:00Z"}}"#),
    )
    .unwrap();
    // As vigil 0.1 wrote it: no time inside, only in its name.
    let eleven_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 11 * 60 * 1000;
    post(
        inbox(&w).join(format!("{eleven_ago:020}-{pid}-stop.json")),
        format!(r#"{{"command":"stop","agent":"a","from_pid":{pid}}}"#),
    )
    .unwrap();
    let refusals = w.eventually(Duration::from_secs(20), "both letters refused", || {
        let ages: Vec<u64> = w
            .journal()
            .into_iter()
            .filter_map(|e| match e.record {
                Record::LetterRefused {
                    refusal: Refusal::Expired { age_s },
                    ..
                } => Some(age_s),
                _ => None,
            })
            .collect();
        (ages.len() == 2).then_some(ages)
    });
    assert!(refusals[0] > 50 * 365 * 24 * 3600, "{refusals:?}");
    // The pass that read it took its time when it began, a moment before the letter
    // was written: the age may read a second short of eleven minutes.
    assert!((655..700).contains(&refusals[1]), "{refusals:?}");
    let log = String::from_utf8_lossy(&w.vigil(&["log"]).stdout).into_owned();
    assert!(
        log.contains("not obeyed: expired: sent ") && log.contains("letters older than 10m are not obeyed"),
        "{log}"
    );
    // Refused letters are deleted once journaled: the stop can never be carried out.
    assert_eq!(std::fs::read_dir(inbox(&w)).unwrap().count(), 0);
    let a = w.agent("a");
    assert!(!a.stopped && a.lifecycle == Some(Lifecycle::Working), "{a:?}");
    let stops = w
        .journal()
        .into_iter()
        .filter(|e| matches!(&e.record, Record::Command { request, .. } if request.verb() == "stop"));
    assert_eq!(stops.count(), 0);
}

#[test]
fn an_oversized_or_malformed_letter_is_set_aside_with_the_reason() {
    let w = stopped_fleet_under_watch(&["a"]);
    let padding = " ".repeat(300_000);
    post(
        inbox(&w).join("99999999999999999999-1-000000-up.json"),
        format!(r#"{{"command":"up","agent":"a","from_pid":1{padding}}}"#),
    )
    .unwrap();
    post(
        inbox(&w).join("99999999999999999999-1-000001-up.json"),
        r#"{"command":"up","agent":"../../etc","from_pid":1}"#,
    )
    .unwrap();
    let reasons = w.eventually(Duration::from_secs(20), "both set aside", || {
        let reasons: Vec<String> = w
            .journal()
            .into_iter()
            .filter_map(|e| match e.record {
                Record::LetterSetAside { reason, .. } => Some(reason),
                _ => None,
            })
            .collect();
        (reasons.len() == 2).then_some(reasons)
    });
    assert!(reasons[0].contains("more than the 65536 allowed"), "{reasons:?}");
    assert!(reasons[1].contains("is not an agent name"), "{reasons:?}");
    assert!(inbox(&w).join("99999999999999999999-1-000000-up.bad").exists());
    assert!(w.agent("a").stopped, "not obeyed");
}

#[test]
fn a_command_to_an_owner_that_does_not_answer_in_time_exits_1_and_says_so() {
    let w = stopped_fleet_under_watch(&["a"]);
    let owner = w.status().owner.unwrap().pid.to_string();
    assert!(Command::new("kill").args(["-STOP", &owner]).status().unwrap().success());
    let out = w.vigil(&["up", "a", "--wait", "1s"]);
    let stop = w.vigil(&["stop", "a", "--wait", "300ms"]);
    assert!(Command::new("kill").args(["-CONT", &owner]).status().unwrap().success());
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("held") && said.contains("no answer within 1s"), "{said}");
    assert_eq!(stop.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stop.stdout).contains("no answer within 300ms"));
    // The owner, back, still carries them out (last one wins) and answers both.
    w.eventually(Duration::from_secs(20), "both answered", || {
        (answered(&w).len() == 2).then_some(())
    });
    assert!(w.agent("a").stopped);
}
