//! The agent as processes, not only a pane (issue 16): starts that cannot run told
//! apart from crashes, on a real private tmux server with the fake agents.

use std::time::Duration;

use serde_json::Value;

use super::harness::*;

fn up_outcome<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

#[test]
fn a_missing_binary_is_failed_to_start_within_one_pass_never_restarted_and_up_starts_the_others() {
    let body = format!(
        "{}[[agent]]\nname = \"typo\"\ncommand = [\"vigil-no-such-agent\", \"--continue\"]\n",
        agent("worker", "worker.sh", "")
    );
    let mut w = World::new(&body);
    let out = w.vigil(&["up", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(up_outcome(&doc, "worker")["outcome"], "started", "{doc:#}");
    let typo = up_outcome(&doc, "typo");
    assert_eq!(typo["outcome"], "failed", "{doc:#}");
    let reason = typo["reason"].as_str().unwrap();
    assert!(
        reason.contains("vigil-no-such-agent: not found"),
        "the shell's own line: {reason}"
    );
    assert!(reason.contains("failed to start"), "{reason}");
    w.watch();
    wait_out(
        Duration::from_secs(2),
        "ten polls in which the failed start is not retried",
    );
    let a = w.agent("typo");
    assert_eq!((a.incarnation, a.restarts, a.crashes.len()), (1, 0, 0), "{a:#?}");
    assert_eq!(a.lifecycle, Some(Lifecycle::Zombie));
    assert!(
        a.reason.contains("failed to start") && a.reason.contains("not found"),
        "{a:#?}"
    );
    assert_eq!(w.agent("worker").lifecycle, Some(Lifecycle::Working));
    let told = w
        .journal()
        .into_iter()
        .any(|e| matches!(&e.record, Record::Notify { agent, reason, .. } if agent.as_str() == "typo" && reason.contains("failed to start")));
    assert!(told, "the user is told");
    // `vigil up` tries it again (and it fails again, loudly).
    let out = w.vigil(&["up", "typo", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    w.wait_for("typo", 20, "incarnation 2, failed to start", |a| {
        a.incarnation == 2 && a.reason.contains("failed to start")
    });
}

#[test]
fn a_restart_into_a_removed_cwd_is_failed_to_start_not_started_elsewhere() {
    let mut w = World::new(&agent(
        "crasher",
        "crasher.sh",
        "cwd = \"sub\"\nenv = { CRASH_AFTER = \"1\" }",
    ));
    std::fs::create_dir(w.dir.path().join("sub")).unwrap();
    w.watch();
    w.wait_for("crasher", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    std::fs::remove_dir(w.dir.path().join("sub")).unwrap();
    // (`vigil status` would refuse the config now: its cwd is missing; the journal says.)
    let failed = w.wait_journal(
        20,
        "failed to start",
        |e| matches!(&e.record, Record::Event(ev) if ev.reason.contains("failed to start")),
    );
    let Record::Event(ev) = &failed.record else {
        unreachable!()
    };
    assert!(ev.reason.contains("is gone"), "{ev:?}");
    assert_eq!(
        ev.incarnation.0, 2,
        "the crash restarted it; the restart failed before tmux: {ev:?}"
    );
    wait_out(Duration::from_secs(1), "polls in which it is not retried");
    let starts = w
        .journal()
        .iter()
        .filter(|e| matches!(intent(e), Some(Action::Start { .. })))
        .count();
    assert_eq!(starts, 2, "tried once after the crash, then held");
    let panes = w.tmux(&["list-panes", "-a", "-F", "#{pane_dead} #{@vigil-incarnation}"]);
    assert_eq!(panes.trim(), "1 1", "only #1's dead pane; nothing started elsewhere");
}

#[test]
fn a_wrapper_whose_agent_exited_is_a_zombie_within_two_polls_and_restarted() {
    let body = "[[agent]]\nname = \"wrapped\"\ncommand = \"sh {agents}/finisher.sh; exec sleep 3607\"\nprocess = \"^finisher\"\nenv = { FINISH_AFTER = \"1\" }\n";
    let mut w = World::new(body);
    w.watch();
    let zombie = w.wait_journal(20, "the agent's end", |e| {
        lifecycle_event(e, Lifecycle::Zombie).is_some()
    });
    let ev = lifecycle_event(&zombie, Lifecycle::Zombie).unwrap();
    assert_eq!(ev.reason, "pane alive, no `^finisher` process under it for 2 polls");
    assert_eq!(ev.incarnation.0, 1);
    let a = w.wait_for("wrapped", 20, "restarted", |a| a.incarnation == 2);
    assert_eq!(a.crashes.len(), 1, "{a:#?}");
}

#[test]
fn an_agent_whose_process_is_there_is_left_alone() {
    let body =
        "[[agent]]\nname = \"wrapped\"\ncommand = \"sh {agents}/worker.sh; exec sleep 3607\"\nprocess = \"worker\"\n";
    let mut w = World::new(body);
    w.watch();
    w.wait_for("wrapped", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    wait_out(Duration::from_secs(2), "ten polls that see the worker under the pane");
    let a = w.agent("wrapped");
    assert_eq!((a.incarnation, a.lifecycle), (1, Some(Lifecycle::Working)), "{a:#?}");
}
