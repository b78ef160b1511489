//! Telling a human: a dialog agent's `waiting` goes out once through a command and a
//! webhook to a receiver started by the test, then one `resolved`; a webhook that is
//! down gets it once back, across a `kill -9` of vigil; a hung command is killed at its
//! timeout while passes go on; `vigil notify --test` reports each channel. The owner's
//! own alerts reach the human too: a lost tmux server is one `host_failure` notice, a
//! full disk a `degraded` one (sent from memory: nothing can be written) and its
//! `resolved`, and `vigil check` replacing a stopped owner an `owner_replaced`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use vigil::store::outbox::{Delivery, DeliveryOutcome};

use crate::harness::*;

/// A local HTTP receiver: records each request's body and answers 200.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> Self {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                if let Some(body) = read_request(&mut conn) {
                    sink.lock().unwrap().push(body);
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            }
        });
        Self { url, bodies }
    }

    /// The JSON bodies received so far.
    fn events(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap().clone();
        bodies.iter().map(|b| serde_json::from_str(b).unwrap()).collect()
    }
}

fn read_request(conn: &mut std::net::TcpStream) -> Option<String> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Some(body.to_owned());
            }
        }
    }
}

/// The notices the command channel wrote, one JSON line each.
fn command_events(w: &World) -> Vec<Value> {
    let text = std::fs::read_to_string(w.dir.path().join("notices.jsonl")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect()
}

fn deliveries(w: &World) -> Vec<Delivery> {
    w.journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Notified(d) => Some(d),
            _ => None,
        })
        .collect()
}

const COMMAND: &str = "command = [\"sh\", \"-c\", \"cat >> notices.jsonl; echo >> notices.jsonl\"]";

#[test]
fn a_dialog_is_one_waiting_notice_through_a_command_and_a_webhook_then_one_resolved() {
    let hook = Receiver::start();
    let body = format!(
        "[notify]\n{COMMAND}\nwebhook = \"{}\"\n\n{}",
        hook.url,
        agent("dialog", "dialog.sh", "")
    );
    let mut w = World::new(&body);
    w.watch();
    let both = |kind: &str, n: usize| {
        let (c, h) = (kinds(&command_events(&w)), kinds(&hook.events()));
        let count = |v: &[String]| v.iter().filter(|k| *k == kind).count();
        (count(&c) >= n && count(&h) >= n).then_some(())
    };
    w.eventually(
        Duration::from_secs(30),
        "a waiting notice through both channels",
        || both("waiting", 1),
    );
    let event = &command_events(&w)[0];
    assert_eq!(event["version"], 1);
    assert_eq!(event["agent"], "dialog");
    assert_eq!(event["incarnation"], 1);
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .contains("Do you trust the files in this folder?"),
        "{event}"
    );
    assert!(
        event["last_lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("Yes, proceed")),
        "{event}"
    );
    assert!(event["attach"].as_str().unwrap().contains(&w.socket), "{event}");
    assert_eq!(hook.events()[0]["id"], event["id"], "the same notice, the same id");
    // Many polls (200 ms each) with the dialog still on screen: no repeat.
    wait_out(Duration::from_secs(3), "fifteen polls of the same dialog");
    assert_eq!(kinds(&command_events(&w)), ["waiting"]);
    assert_eq!(kinds(&hook.events()), ["waiting"]);
    // The human answers: the dialog goes, and the episode ends.
    let session = w.agent("dialog").session;
    w.tmux(&["send-keys", "-t", &format!("={session}:"), "1", "Enter"]);
    w.eventually(
        Duration::from_secs(30),
        "a resolved notice through both channels",
        || both("resolved", 1),
    );
    wait_out(Duration::from_secs(2), "ten more polls");
    assert_eq!(kinds(&command_events(&w)), ["waiting", "resolved"]);
    assert_eq!(kinds(&hook.events()), ["waiting", "resolved"]);
    assert_eq!(hook.events()[1]["resolves"], "waiting");
    let delivered = deliveries(&w)
        .iter()
        .filter(|d| d.outcome == DeliveryOutcome::Delivered)
        .count();
    assert_eq!(delivered, 4, "each delivery journaled: {:?}", deliveries(&w));
    assert_eq!(std::fs::read_dir(w.state().join("outbox")).unwrap().count(), 0);
}

#[test]
fn a_webhook_that_is_down_gets_the_notice_once_it_is_back_across_a_kill_9_of_vigil() {
    // A port nobody listens on, until the receiver binds it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let body = format!(
        "[notify]\nwebhook = \"http://127.0.0.1:{port}/hook\"\n\n{}",
        agent("dialog", "dialog.sh", "")
    );
    let mut w = World::new(&body);
    w.watch();
    let failed = w.wait_journal(30, "a failed delivery", |e| {
        matches!(
            &e.record,
            Record::Notified(Delivery {
                outcome: DeliveryOutcome::Failed { .. },
                ..
            })
        )
    });
    let Record::Notified(Delivery { id, .. }) = failed.record else {
        unreachable!()
    };
    let pending = w.state().join("outbox").join(format!("{id}.json"));
    assert!(pending.exists(), "kept in the outbox");
    w.kill_watch();
    let hook = Receiver::on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    w.watch();
    let got = w.eventually(
        Duration::from_secs(30),
        "the notice delivered after the restart",
        || hook.events().into_iter().find(|e| e["id"] == id.as_str()),
    );
    assert_eq!(got["event"], "waiting");
    w.eventually(Duration::from_secs(10), "the outbox emptied", || {
        (!pending.exists()).then_some(())
    });
    let waiting: Vec<Value> = hook.events().into_iter().filter(|e| e["event"] == "waiting").collect();
    assert!(
        waiting.iter().all(|e| e["id"] == id.as_str()),
        "no second episode: {waiting:?}"
    );
}

#[test]
fn a_hung_notify_command_is_killed_at_its_timeout_while_passes_go_on() {
    let body = format!(
        "[notify]\ncommand = [\"sh\", \"-c\", \"cat > /dev/null; sleep 47.25\"]\ntimeout = \"3s\"\n\n{}",
        agent("dialog", "dialog.sh", "")
    );
    let mut w = World::new(&body);
    w.watch();
    let loops = || {
        let hb: Value = serde_json::from_str(&std::fs::read_to_string(w.state().join("heartbeat")).unwrap()).unwrap();
        hb["loops"].as_u64().unwrap()
    };
    w.wait_journal(30, "the notice", |e| matches!(e.record, Record::Notify { .. }));
    let before = loops();
    let failed = w.wait_journal(30, "the delivery timing out", |e| {
        matches!(
            &e.record,
            Record::Notified(Delivery {
                outcome: DeliveryOutcome::Failed { .. },
                ..
            })
        )
    });
    let after = loops();
    let Record::Notified(Delivery {
        outcome: DeliveryOutcome::Failed { error, .. },
        ..
    }) = failed.record
    else {
        unreachable!()
    };
    assert!(error.contains("did not answer within 3s and was killed"), "{error}");
    assert!(
        after >= before + 3,
        "passes went on at their interval while the command hung: loops {before} → {after}"
    );
    let out = std::process::Command::new("pgrep")
        .args(["-f", "sleep 47.25"])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "the hung command was killed");
}

#[test]
fn notify_test_reports_each_channel_and_fails_when_one_does() {
    let hook = Receiver::start();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let good = format!(
        "[notify]\n{COMMAND}\nwebhook = \"{}\"\n\n{}",
        hook.url,
        agent("a", "worker.sh", "")
    );
    let w = World::new(&good);
    let out = w.vigil(&["notify", "--test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("command: delivered") && text.contains("webhook: delivered"),
        "{text}"
    );
    assert_eq!(kinds(&command_events(&w)), ["test"]);
    assert_eq!(kinds(&hook.events()), ["test"]);

    let bad = format!(
        "[notify]\n{COMMAND}\nwebhook = \"http://127.0.0.1:{port}/\"\ntimeout = \"2s\"\n\n{}",
        agent("a", "worker.sh", "")
    );
    let w = World::new(&bad);
    let out = w.vigil(&["notify", "--test", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["channels"][0]["outcome"], "delivered");
    assert_eq!(v["channels"][1]["outcome"], "failed");

    let none = World::new(&agent("a", "worker.sh", ""));
    let out = none.vigil(&["notify", "--test"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [notify] channel"));
}

#[test]
fn the_tmux_channel_shows_the_notice_to_attached_clients_and_is_skipped_without_any() {
    let w = World::new(&format!("[notify]\ntmux = true\n\n{}", agent("a", "worker.sh", "")));
    let out = w.vigil(&["notify", "--test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("tmux: skipped: no client"), "{text}");
    w.tmux(&["new-session", "-d", "-s", "other", "sleep 600"]);
    // A control-mode client is a client like a terminal's, and needs no terminal.
    let mut client = std::process::Command::new("tmux")
        .args(["-L", &w.socket, "-C", "attach", "-t", "=other"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(10), "the client attached", || {
        (!w.tmux(&["list-clients", "-F", "#{client_name}"]).trim().is_empty()).then_some(())
    });
    let out = w.vigil(&["notify", "--test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = client.kill();
    let _ = client.wait();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text.trim(), "tmux: delivered");
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

#[test]
fn a_lost_tmux_server_is_one_host_failure_notice_for_the_whole_fleet() {
    let body = format!(
        "[notify]\n{COMMAND}\n\n{}{}",
        agent("one", "worker.sh", ""),
        agent("two", "worker.sh", "")
    );
    let mut w = World::new(&body);
    w.watch();
    for name in ["one", "two"] {
        w.wait_for(name, 30, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    }
    w.tmux(&["kill-server"]);
    let notice = w.eventually(Duration::from_secs(30), "a host_failure notice", || {
        command_events(&w).into_iter().find(|e| e["event"] == "host_failure")
    });
    assert!(
        notice["reason"].as_str().unwrap().contains("tmux server gone"),
        "{notice:#}"
    );
    for name in ["one", "two"] {
        w.wait_for(name, 30, "back", |a| {
            a.incarnation == 2 && a.lifecycle == Some(Lifecycle::Working)
        });
    }
    wait_out(Duration::from_secs(3), "any further notice");
    let events = command_events(&w);
    assert_eq!(
        count(&events, "host_failure"),
        1,
        "one notice, not one per agent: {events:#?}"
    );
    assert_eq!(count(&events, "crash_loop"), 0, "{events:#?}");
}

#[test]
fn a_full_disk_is_a_degraded_notice_sent_from_memory_then_resolved() {
    let body = format!("[notify]\n{COMMAND}\n\n{}", agent("worker", "worker.sh", ""));
    let mut w = World::new(&body);
    let Some(_disk) = SmallDisk::mount(&w.state(), "2m") else {
        return;
    };
    w.watch();
    w.wait_for("worker", 30, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let filler = w.state().join("filler");
    w.starve(&filler, "worker");
    let notice = w.eventually(Duration::from_secs(30), "a degraded notice", || {
        command_events(&w).into_iter().find(|e| e["event"] == "degraded")
    });
    assert!(
        notice["reason"].as_str().unwrap().contains("No space left on device"),
        "{notice:#}"
    );
    std::fs::remove_file(&filler).unwrap();
    let resolved = w.eventually(Duration::from_secs(30), "the degraded episode resolved", || {
        command_events(&w)
            .into_iter()
            .find(|e| e["event"] == "resolved" && e["resolves"] == "degraded")
    });
    assert!(resolved["reason"].as_str().is_some(), "{resolved:#}");
    assert_eq!(
        count(&command_events(&w), "degraded"),
        1,
        "one raised, then its resolved"
    );
}

#[test]
fn check_replacing_a_stopped_owner_tells_the_human() {
    let body = format!("[notify]\n{COMMAND}\n\n{}", agent("worker", "worker.sh", ""));
    let mut w = World::new(&body);
    w.watch();
    w.wait_for("worker", 30, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let old = w.watch_pid();
    assert!(
        Command::new("kill")
            .args(["-STOP", &old.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_out(Duration::from_millis(1300), "the stopped owner's heartbeat grows old");
    let out = w.vigil(&["check", "--stale-after", "1s", "--grace", "1s", "--restart"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let owner: Value = serde_json::from_str(&std::fs::read_to_string(w.state().join("owner.json")).unwrap()).unwrap();
    let new = owner["pid"].as_u64().unwrap();
    let notice = eventually(Duration::from_secs(30), "an owner_replaced notice", || {
        command_events(&w).into_iter().find(|e| e["event"] == "owner_replaced")
    });
    let _ = Command::new("kill").args(["-TERM", &new.to_string()]).status();
    poll(Duration::from_secs(5), || {
        gone(u32::try_from(new).unwrap()).then_some(())
    });
    assert!(
        notice["reason"].as_str().unwrap().contains(&format!("vigil pid {old}")),
        "{notice:#}"
    );
}

#[test]
fn a_notify_command_still_running_when_vigil_stops_is_ended_and_its_notice_kept() {
    let body = format!(
        "[notify]\ncommand = [\"sh\", \"-c\", \"cat > /dev/null; sleep 53.75\"]\ntimeout = \"5m\"\n\n{}",
        agent("dialog", "dialog.sh", "")
    );
    let mut w = World::new(&body);
    w.watch();
    let running = || {
        let out = Command::new("pgrep").args(["-f", "sleep 53.75"]).output().unwrap();
        !out.stdout.is_empty()
    };
    eventually(Duration::from_secs(30), "the notify command running", || {
        running().then_some(())
    });
    assert_eq!(w.stop_watch(), Some(0), "vigil stops at SIGTERM without waiting on it");
    assert!(!running(), "the hung command ended with vigil");
    // The notice being delivered is kept for the next owner (others may wait behind it).
    let kept: Vec<Value> = std::fs::read_dir(w.state().join("outbox"))
        .unwrap()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert!(
        kept.iter().any(|n| n["notice"]["event"] == "waiting"),
        "the undelivered waiting notice is kept: {kept:#?}"
    );
}
