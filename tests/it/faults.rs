//! Faults of the machine under a running owner: a state dir on a filesystem that fills
//! up. vigil stays up, observes, acts on nothing it cannot journal first, says why, and
//! resumes by itself when space returns, with nothing already on disk lost.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::harness::*;

#[test]
fn a_full_disk_degrades_the_owner_instead_of_ending_it_and_it_resumes_when_space_returns() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    let Some(_disk) = SmallDisk::mount(&w.state(), "2m") else {
        return;
    };
    let log = w.dir.path().join("watch.err");
    let mut watch = Reaped(
        Command::new(VIGIL)
            .arg("--config")
            .arg(w.config())
            .arg("watch")
            .env("VIGIL_STATE_DIR", w.state())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    w.eventually(Duration::from_secs(20), "the worker working", || {
        (w.agent("worker").lifecycle == Some(Lifecycle::Working)).then_some(())
    });
    let before = w.journal();

    let filler = w.state().join("filler");
    // The agent dies while nothing can be journaled: vigil must not restart it blind.
    let degraded = w.starve(&filler, "worker");
    assert!(degraded.contains("No space left on device"), "{degraded}");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(watch.try_wait().unwrap().is_none(), "the owner is still up");
    assert!(
        w.sessions().is_empty(),
        "no action it could not journal first: {:?}",
        w.sessions()
    );
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("DEGRADED: cannot write the state dir"), "{said}");
    let table = String::from_utf8_lossy(&w.vigil(&["status"]).stdout).into_owned();
    assert!(table.contains("owner DEGRADED"), "{table}");

    std::fs::remove_file(&filler).unwrap();
    w.eventually(
        Duration::from_secs(20),
        "the worker restarted once space returned",
        || {
            let a = w.agent("worker");
            (a.incarnation == 2 && a.lifecycle == Some(Lifecycle::Working)).then_some(())
        },
    );
    let after = w.journal();
    assert_eq!(&after[..before.len()], &before[..], "nothing already on disk was lost");
    let raw = std::fs::read_to_string(w.state().join("journal.jsonl")).unwrap();
    for line in raw.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "a line the full disk cut short was left in the journal: {line:?}"
        );
    }
    assert!(
        after.iter().any(|e| matches!(&e.record, Record::Warning { message }
            if message.contains("the state dir is writable again"))),
        "the journal says supervision resumed"
    );
    assert!(w.status().owner.unwrap().degraded.is_none());
    Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    let status = poll(Duration::from_secs(10), || watch.try_wait().unwrap()).expect("watch ends on SIGTERM");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_ends_the_owner_within_its_grace_even_while_a_pass_waits_on_a_wedged_tmux() {
    let mut w = World::new(&agent("worker", "worker.sh", ""));
    w.watch();
    w.eventually(Duration::from_secs(20), "the worker working", || {
        (w.agent("worker").lifecycle == Some(Lifecycle::Working)).then_some(())
    });
    let server = w.tmux(&["display-message", "-p", "#{pid}"]).trim().to_owned();
    Command::new("kill").args(["-STOP", &server]).status().unwrap();
    // The next pass now waits on tmux (each call gives up only after 10 s).
    std::thread::sleep(Duration::from_millis(800));
    let t0 = std::time::Instant::now();
    let code = w.stop_watch();
    let took = t0.elapsed();
    Command::new("kill").args(["-CONT", &server]).status().unwrap();
    println!("SIGTERM during a wedged pass: exited after {} ms", took.as_millis());
    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(8),
        "the stop waited {took:?} for the wedged pass; at most 5 s"
    );
}
