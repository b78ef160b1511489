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
    // A crash may have come before the removal: the first restart after it fails.
    let failed_at = ev.incarnation.0;
    assert!(failed_at >= 2, "a restart after a crash failed before tmux: {ev:?}");
    wait_out(Duration::from_secs(1), "polls in which it is not retried");
    let starts = w
        .journal()
        .iter()
        .filter(|e| matches!(intent(e), Some(Action::Start { .. })))
        .count();
    assert_eq!(starts, failed_at as usize, "tried once after the removal, then held");
    let panes = w.panes("#{pane_dead} #{@vigil-incarnation}");
    let last_run = format!("1 {}", failed_at - 1);
    assert_eq!(
        panes.trim(),
        last_run,
        "only the crashed one's dead pane; nothing started elsewhere"
    );
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

/// The helpers `leaver.sh` started, by the pids it wrote; whatever of them still runs
/// is killed when the test ends, so a failing test leaves nothing behind either.
struct Leavers(std::path::PathBuf);

impl Leavers {
    fn pids(&self) -> Vec<u32> {
        let text = std::fs::read_to_string(&self.0).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// Pids of the helpers still running (a pid now used by another program is not).
    fn running(&self) -> Vec<u32> {
        self.pids()
            .into_iter()
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                !gone(*pid) && String::from_utf8_lossy(&cmd).starts_with("sleep\u{0}361")
            })
            .collect()
    }

    fn wait_started(&self, count: usize) -> Vec<u32> {
        eventually(Duration::from_secs(20), "the helpers started", || {
            let running = self.running();
            (running.len() >= count).then_some(running)
        })
    }
}

impl Drop for Leavers {
    fn drop(&mut self) {
        for pid in self.running() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

fn leaver_world(extra: &str) -> (World, Leavers) {
    let pids = tempfile::NamedTempFile::new().unwrap().into_temp_path().keep().unwrap();
    let env = format!("env = {{ LEAVER_PIDS = {:?} }}\n{extra}", pids.to_str().unwrap());
    (World::new(&agent("leaver", "leaver.sh", &env)), Leavers(pids))
}

fn reaped(w: &World) -> Vec<(String, u32)> {
    w.journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Reaped { processes, .. } => Some(processes),
            _ => None,
        })
        .flatten()
        .map(|p| (p.name, p.pid))
        .collect()
}

#[test]
fn vigil_restart_and_stop_leave_no_setsid_or_hup_ignoring_child_behind() {
    let (w, leavers) = leaver_world("");
    assert_eq!(w.vigil(&["up"]).status.code(), Some(0));
    let first = leavers.wait_started(3);
    let out = w.vigil(&["restart", "leaver"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let left: Vec<u32> = first
        .iter()
        .copied()
        .filter(|p| leavers.running().contains(p))
        .collect();
    assert!(left.is_empty(), "still running after `vigil restart`: {left:?}");
    let mut ended: Vec<u32> = reaped(&w)
        .into_iter()
        .map(|(name, pid)| {
            assert_eq!(name, "sleep");
            pid
        })
        .collect();
    ended.sort();
    let mut expected = first.clone();
    expected.sort();
    assert_eq!(ended, expected, "each one journaled");
    let second = eventually(Duration::from_secs(20), "the new helpers", || {
        let now: Vec<u32> = leavers.running().into_iter().filter(|p| !first.contains(p)).collect();
        (now.len() == 3).then_some(now)
    });
    assert!(w.vigil(&["stop", "leaver"]).status.success());
    let left: Vec<u32> = second.into_iter().filter(|p| leavers.running().contains(p)).collect();
    assert!(left.is_empty(), "still running after `vigil stop`: {left:?}");
}

#[test]
fn a_ladder_terminate_leaves_no_child_behind() {
    let (mut w, leavers) = leaver_world("stale_after = \"2s\"");
    w.watch();
    let first = leavers.wait_started(3);
    w.wait_for("leaver", 30, "replaced after its stall", |a| a.incarnation >= 2);
    let left = poll(Duration::from_secs(10), || {
        let left: Vec<u32> = first
            .iter()
            .copied()
            .filter(|p| leavers.running().contains(p))
            .collect();
        left.is_empty().then_some(())
    });
    assert!(left.is_some(), "left behind: {:?} of {first:?}", leavers.running());
    let ended: Vec<u32> = reaped(&w).into_iter().map(|(_, pid)| pid).collect();
    assert!(first.iter().all(|p| ended.contains(p)), "journaled: {ended:?}");
    let stalled = w
        .journal()
        .into_iter()
        .any(|e| lifecycle_event(&e, Lifecycle::Stalled).is_some());
    assert!(stalled, "it was the ladder's terminate");
}

/// How long ago `t` was on the wall clock.
fn ago(t: Option<vigil::engine::Time>) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now = vigil::engine::Time::from_millis(i64::try_from(now.as_millis()).unwrap());
    t.map_or(Duration::ZERO, |t| now.since(t))
}

/// Whether the journal says `agent`'s still screen was judged by its tree as `working`.
fn off_screen(w: &World, agent: &str, working: bool) -> bool {
    w.journal().iter().any(|e| {
        matches!(&e.record, Record::Event(ev)
            if ev.agent == agent
                && matches!(&ev.what, vigil::engine::What::OffScreen(o) if o.working == working))
    })
}

#[test]
fn a_cpu_burning_child_keeps_a_still_agent_working_past_stale_after_while_a_silent_one_stalls() {
    let body = agent(
        "burner",
        "burner.sh",
        "stale_after = \"3s\"\nbusy_cpu = 10\nenv = { BURN_FOR = \"15\" }",
    ) + &agent(
        "silent",
        "finisher.sh",
        "stale_after = \"3s\"\nenv = { FINISH_AFTER = \"3600\" }",
    );
    let mut w = World::new(&body);
    w.watch();
    // Its screen has been still for twice stale_after, and it is still the first run.
    let a = w.wait_for("burner", 30, "still past stale_after, busy", |a| {
        a.reason.contains("busy:") && ago(a.last_change) > Duration::from_secs(6)
    });
    assert_eq!(a.incarnation, 1, "its screen is still but its tree works: {a:#?}");
    assert_eq!(a.activity, Some(Activity::Active));
    assert!(a.reason.contains("% cpu under the agent"), "{a:#?}");
    let tree = a.tree.expect("status shows the tree");
    assert!(tree.count >= 2 && tree.cpu_pct.is_some_and(|p| p >= 10), "{tree:?}");
    assert!(!tree.busiest.is_empty(), "{tree:?}");
    let journal = w.journal();
    let stalled = |agent: &str| {
        journal
            .iter()
            .filter_map(|e| lifecycle_event(e, Lifecycle::Stalled))
            .any(|ev| ev.agent == agent)
    };
    assert!(!stalled("burner"), "not stalled while it burns");
    assert!(stalled("silent"), "a silent agent over an idle tree is stalled");
    assert!(off_screen(&w, "burner", true), "the journal says why the ladder waits");
    assert!(!off_screen(&w, "silent", true));
    // The text status shows the tree too.
    let text = String::from_utf8_lossy(&w.vigil(&["status"]).stdout).into_owned();
    assert!(text.contains("tree: "), "{text}");
    // Once the suite is done its tree goes quiet, and the ladder climbs as it would.
    w.wait_for("burner", 40, "stalled once its tree is idle", |a| a.incarnation >= 2);
    assert!(off_screen(&w, "burner", false), "the journal says its tree went quiet");
}

#[test]
fn a_spinner_animating_over_an_idle_tree_is_still_the_classic_hang() {
    // Its tree (a shell forking `sleep 0.2`) uses a few percent; busy_cpu well above
    // that keeps a tick-sampling spike on a loaded host from reading as work.
    let mut w = World::new(&agent("spinner", "spinner.sh", "stale_after = \"3s\"\nbusy_cpu = 60"));
    w.watch();
    let doc = w.eventually(Duration::from_secs(20), "the tree in status --json", || {
        let doc = w.status_json();
        let a = doc["agents"][0].clone();
        a["tree"]["cpu_pct"].is_u64().then_some(a)
    });
    assert!(doc["tree"]["count"].as_u64().is_some_and(|n| n >= 2), "{doc:#}");
    assert!(doc["tree"]["busiest"].is_array(), "{doc:#}");
    assert!(
        doc["tree"]["cpu_pct"].as_u64().is_some_and(|p| p < 60),
        "an idle tree: {doc:#}"
    );
    w.wait_for("spinner", 30, "stalled and restarted", |a| a.incarnation >= 2);
    let stalled = w
        .journal()
        .iter()
        .filter_map(|e| lifecycle_event(e, Lifecycle::Stalled))
        .any(|ev| ev.agent == "spinner");
    assert!(stalled, "the ladder's stale kill, not a crash");
    assert!(!off_screen(&w, "spinner", true), "never judged busy");
}

/// The config of a [`World`] with `[vigil]` keys `vigil` (replacing any written
/// before) over `body`, written as editors save: a new file renamed over the old one.
fn rewrite_config(w: &World, vigil: &str, body: &str) {
    let text = std::fs::read_to_string(w.config()).unwrap();
    let (head, _) = text.split_once("\n\n").unwrap();
    let head: Vec<&str> = head
        .lines()
        .filter(|l| !l.starts_with("min_free_memory") && !l.starts_with("max_"))
        .collect();
    let agents = fixtures().join("agents");
    let new = format!(
        "{}\n{vigil}\n\n{}",
        head.join("\n"),
        body.replace("{agents}", agents.to_str().unwrap())
    );
    let tmp = w.dir.path().join(".vigil.toml.swp");
    std::fs::write(&tmp, new).unwrap();
    std::fs::rename(&tmp, w.config()).unwrap();
}

#[test]
fn a_start_deferred_by_host_pressure_is_reported_by_up_json_and_starts_when_a_reload_lowers_the_threshold() {
    // More free memory than any machine has: the start is deferred for real.
    let body = agent("a", "worker.sh", "");
    let mut w = World::new(&format!("min_free_memory = \"1000TiB\"\n\n{body}"));
    let out = w.vigil(&["up", "--json"]);
    assert_eq!(out.status.code(), Some(0), "deferred is no failure: {out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = up_outcome(&doc, "a");
    assert_eq!(a["outcome"], "deferred", "{doc:#}");
    let reason = a["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("deferred: ") && reason.contains("under min_free_memory 1000.0 TiB"),
        "{reason}"
    );
    assert!(w.sessions().is_empty(), "nothing was started: {:?}", w.sessions());
    let status = w.status_json();
    let deferred = &status["agents"][0]["deferred"];
    assert_eq!(deferred["cause"]["kind"], "memory", "{status:#}");
    assert_eq!(deferred["cause"]["min_free_memory"], 1000u64 << 40);
    assert!(deferred["cause"]["free_memory"].as_u64().is_some_and(|m| m > 0));
    assert!(deferred["since"].is_string());

    // An owner takes the run over: the deferral is in the snapshot, still held.
    w.watch();
    w.eventually(Duration::from_secs(20), "the owner's claim", || {
        let claims = w
            .journal()
            .iter()
            .filter(|e| matches!(e.record, Record::Claimed { .. }))
            .count();
        (claims >= 2).then_some(())
    });
    let again = w.vigil(&["up", "--json"]);
    let doc: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(up_outcome(&doc, "a")["outcome"], "deferred", "{doc:#}");
    assert_eq!(w.agent("a").pane_pid, None);

    // The threshold lowered by an edit: the owner reloads and starts it, no command.
    rewrite_config(&w, "min_free_memory = \"1MiB\"", &body);
    let a = w.wait_for("a", 30, "started once the threshold is lowered", |a| {
        a.deferred.is_none() && a.lifecycle == Some(Lifecycle::Working)
    });
    assert_eq!(a.incarnation, 1);
    assert!(a.pane_pid.is_some());
    let cleared = w.journal().iter().any(
        |e| matches!(&e.record, Record::Event(ev) if ev.agent == "a" && ev.reason.starts_with("host pressure cleared")),
    );
    assert!(cleared, "the journal says why it starts now");
}

#[test]
fn up_reports_each_agent_on_its_own_when_starts_at_once_are_capped() {
    // `quiet` prints nothing, so it stays starting; `next` waits for a slot.
    let body = "max_concurrent_starts = 1\n\n[[agent]]\nname = \"quiet\"\ncommand = \"sleep 3600\"\n\n".to_owned()
        + &agent("next", "worker.sh", "");
    let w = World::new(&body);
    let out = w.vigil(&["up", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(up_outcome(&doc, "quiet")["outcome"], "started", "{doc:#}");
    let next = up_outcome(&doc, "next");
    assert_eq!(next["outcome"], "deferred", "{doc:#}");
    assert!(
        next["reason"]
            .as_str()
            .unwrap()
            .contains("2 agents starting at once, max_concurrent_starts 1"),
        "{doc:#}"
    );
}
