//! `vigil watch` on a real private tmux server with the fake agents, short thresholds
//! from the config, and what `vigil status --json` and the panes show.

use super::harness::*;

fn lifecycle(a: &AgentStatus) -> &str {
    a.lifecycle.map_or("", Lifecycle::as_str)
}

#[test]
fn a_crashed_agent_is_recorded_zombie_with_its_exit_code_and_restarted_as_incarnation_2() {
    let mut w = World::new(&agent("crasher", "crasher.sh", "env = { CRASH_AFTER = \"1\" }"));
    w.watch();
    let a = w.wait_for("crasher", 20, "incarnation 2", |a| a.incarnation == 2);
    assert_eq!(a.last_exit.as_ref().unwrap().code.unwrap(), 3);
    assert!(
        a.last_exit.as_ref().unwrap().reason.contains("exited with status 3"),
        "{a:#?}"
    );
    assert_eq!(a.crashes.len(), 1);
    assert_eq!(a.restarts, 1);
    let journal = w.journal();
    let zombie = journal
        .iter()
        .find_map(|e| lifecycle_event(e, Lifecycle::Zombie))
        .unwrap();
    assert!(
        zombie.reason.contains("cannot connect to api.example.com"),
        "last words kept: {zombie:?}"
    );
    assert_eq!(w.stop_watch(), Some(0));
}

#[test]
fn an_agent_killed_by_a_signal_is_a_zombie_and_replaced() {
    let mut w = World::new(&agent("worker", "worker.sh", ""));
    w.watch();
    let a = w.wait_for("worker", 20, "working", |a| lifecycle(a) == "working");
    let pane_pid = a.pane_pid.map(u64::from).unwrap();
    // The agent is the child of the pane's wrapper shell; kill it as the OOM killer would.
    let children = std::fs::read_to_string(format!("/proc/{pane_pid}/task/{pane_pid}/children")).unwrap();
    let agent_pid = children.split_whitespace().next().unwrap().to_owned();
    std::process::Command::new("kill")
        .args(["-9", &agent_pid])
        .status()
        .unwrap();
    let a = w.wait_for("worker", 20, "incarnation 2", |a| a.incarnation == 2);
    assert_eq!(a.last_exit.as_ref().unwrap().code.unwrap(), 137);
    assert!(
        a.last_exit.as_ref().unwrap().reason.contains("killed by signal 9"),
        "{a:#?}"
    );
    assert_ne!(a.pane_pid.map(u64::from), Some(pane_pid));
}

#[test]
fn a_completed_agent_is_not_restarted_under_on_failure() {
    let mut w = World::new(&agent("finisher", "finisher.sh", "env = { FINISH_AFTER = \"0\" }"));
    w.watch();
    let a = w.wait_for("finisher", 20, "completed", |a| lifecycle(a) == "completed");
    assert_eq!(a.last_exit.as_ref().unwrap().code.unwrap(), 0);
    wait_out(
        std::time::Duration::from_secs(2),
        "ten polls in which nothing restarts it",
    );
    let a = w.agent("finisher");
    assert_eq!(a.incarnation, 1);
    assert_eq!(lifecycle(&a), "completed");
    assert!(a.reason.as_str().contains("on-failure"), "{a:#?}");
}

#[test]
fn the_spinner_reads_unchanged_and_is_stalled_after_the_timeout_then_restarted() {
    let mut w = World::new(&agent("spinner", "spinner.sh", "stale_after = \"3s\""));
    w.watch();
    let a = w.wait_for("spinner", 20, "quiet", |a| {
        a.activity == Some(Activity::Quiet) && a.unchanged_checks >= 5
    });
    assert_eq!(a.incarnation, 1, "still the first incarnation while unchanged");
    let a = w.wait_for("spinner", 20, "incarnation 2", |a| a.incarnation == 2);
    assert_eq!(a.restarts, 1);
    let journal = w.journal();
    let stalled = journal
        .iter()
        .find_map(|e| lifecycle_event(e, Lifecycle::Stalled))
        .unwrap();
    assert!(stalled.reason.starts_with("screen unchanged for 3s"), "{stalled:?}");
}

#[test]
fn the_prompt_agent_is_nudged_after_three_unchanged_checks_and_the_text_arrives() {
    let mut w = World::new(&agent("prompt", "prompt.sh", "nudge = \"keep going, step 2\""));
    w.watch();
    let session = w
        .wait_for("prompt", 20, "working", |a| lifecycle(a) == "working")
        .session;
    w.wait_screen(&session, 20, "got instruction: keep going, step 2");
    let nudge = w.journal().into_iter().find(|e| types_for(e, Purpose::Nudge)).unwrap();
    assert!(
        intent(&nudge).unwrap().reason().contains("3 unchanged checks"),
        "{nudge:?}"
    );
}

#[test]
fn the_dialog_agent_is_waiting_and_never_nudged_or_killed() {
    let mut w = World::new(&agent("dialog", "dialog.sh", "stale_after = \"2s\"\nidle_checks = 1"));
    w.watch();
    let a = w.wait_for("dialog", 20, "waiting", |a| a.activity == Some(Activity::Waiting));
    assert!(a.reason.contains("Do you trust the files in this folder?"), "{a:#?}");
    wait_out(
        std::time::Duration::from_secs(4),
        "twice the stale timeout, in which it is neither nudged nor killed",
    );
    let a = w.agent("dialog");
    assert_eq!(
        (a.incarnation, a.lifecycle, a.activity),
        (1, Some(Lifecycle::Working), Some(Activity::Waiting))
    );
    let journal = w.journal();
    assert!(
        !journal
            .iter()
            .filter_map(intent)
            .any(|a| a.agent().as_str() == "dialog" && !matches!(a, Action::Start { .. }))
    );
    assert_eq!(
        journal
            .iter()
            .filter(|e| matches!(e.record, Record::Notify { .. }))
            .count(),
        1,
        "the user is told once"
    );
    let screen = w.capture(a.session.as_str());
    assert!(
        !screen.contains("answered"),
        "nothing was typed into the dialog:\n{screen}"
    );
}

#[test]
fn the_rate_limited_agent_cools_down_then_is_told_to_resume() {
    let body = agent(
        "limited",
        "ratelimit.sh",
        "rate_limit_cooldown = \"2s\"\nstale_after = \"30s\"\nenv = { LIMIT_AFTER = \"0\" }",
    );
    let mut w = World::new(&body);
    w.watch();
    let a = w.wait_for("limited", 20, "rate limited", |a| {
        a.activity == Some(Activity::RateLimited)
    });
    assert!(a.rate_limit.is_some(), "{a:#?}");
    let session = a.session.as_str().to_owned();
    w.wait_screen(&session, 20, "resumed (got: continue)");
    let nudges = w.journal().into_iter().filter(|e| types_for(e, Purpose::Nudge)).count();
    assert_eq!(nudges, 0, "no nudges while rate limited");
}

#[test]
fn status_json_carries_the_contract_fields() {
    let mut w = World::new(
        &(agent("worker", "worker.sh", "") + &agent("finisher", "finisher.sh", "env = { FINISH_AFTER = \"0\" }")),
    );
    w.watch();
    w.wait_for("worker", 20, "working", |a| lifecycle(a) == "working");
    let status = w.status_json();
    let owner = &status["owner"];
    assert!(owner["pid"].is_u64() && owner["epoch"].is_u64(), "{owner}");
    assert!(owner["heartbeat_age_s"].as_f64().is_some_and(|s| s < 5.0), "{owner}");
    let fields = [
        "name",
        "incarnation",
        "lifecycle",
        "activity",
        "escalation",
        "session",
        "pane_pid",
        "since",
        "last_change",
        "unchanged_checks",
        "restarts",
        "crashes",
        "cooldown_until",
        "rate_limit",
        "last_exit",
    ];
    for a in status["agents"].as_array().unwrap() {
        for f in fields {
            assert!(a.get(f).is_some(), "agent {} lacks `{f}`: {a:#}", a["name"]);
        }
        for t in ["since", "last_change"] {
            let _: jiff::Timestamp = a[t].as_str().unwrap().parse().unwrap();
        }
    }
    assert_eq!(w.stop_watch(), Some(0));
    assert_eq!(w.status().owner, None, "no owner once watch stopped");
    assert!(!w.sessions().is_empty(), "agents keep running after watch stops");
}
