//! Time that lies, on a real tmux: the wall clock moved under `vigil watch` (through
//! the clock's test seam, `VIGIL_TEST_WALL_SKEW_FILE`, which moves vigil's wall clock
//! alone, as `date -s` would, leaving the steady clocks and tmux's alone), and the
//! owner stopped with SIGSTOP for longer than `stale_after`.

use std::path::Path;
use std::time::Duration;

use vigil::engine::gap::{Gap, Jump, Unseen};

use super::harness::*;

/// Two agents whose screens never change: a hung spinner and an agent at its prompt.
fn quiet_pair(stale_after: &str) -> String {
    format!(
        "{}{}",
        agent("spinner", "spinner.sh", &format!("stale_after = \"{stale_after}\"")),
        agent(
            "prompt",
            "prompt.sh",
            &format!("stale_after = \"{stale_after}\"\nidle_checks = 1000")
        )
    )
}

fn both_quiet(w: &World) {
    for name in ["spinner", "prompt"] {
        w.wait_for(name, 20, "seen unchanged", |a| a.unchanged_checks >= 1);
    }
}

/// The first gap record; with the journal in the message if none comes.
fn gap_record(w: &World, what: &str, check: impl Fn(&Gap) -> bool) -> Entry {
    w.wait_journal(20, what, |e| matches!(&e.record, Record::Gap(g) if check(g)))
}

/// Stalls and restarts the journal holds at or after `from`, before `until`.
fn stalls_between(w: &World, from: vigil::engine::Time, until: vigil::engine::Time) -> Vec<String> {
    w.journal()
        .iter()
        .filter(|e| e.t >= from && e.t < until)
        .filter(|e| lifecycle_event(e, Lifecycle::Stalled).is_some() || matches!(intent(e), Some(Action::Start { .. })))
        .map(|e| format!("{e:?}"))
        .collect()
}

fn skew(path: &Path, ms: i64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, ms.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_wall_clock_jump_forward_under_watch_restarts_no_agent() {
    let mut w = World::new(&quiet_pair("30s"));
    let skew_file = w.dir.path().join("skew");
    skew(&skew_file, 0);
    w.watch_env(&[("VIGIL_TEST_WALL_SKEW_FILE", &skew_file)]);
    both_quiet(&w);
    skew(&skew_file, 2 * 3600 * 1000);
    let gap = gap_record(
        &w,
        "the jump journaled",
        |g| matches!(g.jump, Some(Jump::Forward { by }) if by >= Duration::from_secs(7000)),
    );
    wait_out(
        Duration::from_secs(1),
        "five polls after the jump, in which nothing is restarted",
    );
    let late = gap.t.plus(Duration::from_secs(3600 * 3));
    assert_eq!(stalls_between(&w, gap.t, late), Vec::<String>::new());
    for name in ["spinner", "prompt"] {
        let a = w.agent(name);
        assert_eq!(a.incarnation, 1, "{a:#?}");
        assert!(!a.reason.contains("2h"), "the jump counts as no time unchanged: {a:#?}");
    }
    let line = vigil::present::records::record_line(&gap, false).unwrap();
    assert!(line.contains("the wall clock jumped forward 2h"), "{line}");
    assert_eq!(w.stop_watch(), Some(0));
}

#[test]
fn a_wall_clock_jump_back_under_watch_does_not_freeze_the_stale_timer() {
    let mut w = World::new(&agent("spinner", "spinner.sh", "stale_after = \"2s\""));
    let skew_file = w.dir.path().join("skew");
    skew(&skew_file, 0);
    w.watch_env(&[("VIGIL_TEST_WALL_SKEW_FILE", &skew_file)]);
    w.wait_for("spinner", 20, "seen unchanged", |a| a.unchanged_checks >= 1);
    skew(&skew_file, -2 * 3600 * 1000);
    gap_record(&w, "the jump journaled", |g| matches!(g.jump, Some(Jump::Back { .. })));
    // Still stalled after its 2 s of stillness, not 2 h later when the clock catches up.
    let a = w.wait_for("spinner", 20, "stalled and restarted", |a| a.incarnation == 2);
    assert!(a.last_exit.unwrap().reason.contains("stale_after 2s"));
    assert_eq!(w.stop_watch(), Some(0));
}

#[test]
fn an_owner_stopped_past_stale_after_restarts_no_agent_and_says_timers_restarted() {
    let mut w = World::new(&quiet_pair("4s"));
    w.watch();
    both_quiet(&w);
    let pid = w.watch_pid().to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    wait_out(Duration::from_secs(5), "the owner stopped for longer than stale_after");
    signal("-CONT");
    let gap = gap_record(&w, "the unwatched time journaled", |g| {
        g.unwatched
            .is_some_and(|u| u.cause == Unseen::Paused && u.for_ >= Duration::from_secs(4))
    });
    // The first pass after the gap restarts the timers: nothing may stall within the
    // 4 s that follow it (any stall then would be the unwatched time counted).
    let line = vigil::present::records::record_line(&gap, false).unwrap();
    assert!(
        line.contains("vigil was not watching for ") && line.contains("timers restarted"),
        "{line}"
    );
    wait_out(Duration::from_millis(500), "the passes right after the gap");
    assert_eq!(
        stalls_between(&w, gap.t, gap.t.plus(Duration::from_secs(3))),
        Vec::<String>::new()
    );
    for name in ["spinner", "prompt"] {
        assert_eq!(w.agent(name).incarnation, 1, "{name}");
    }
}
