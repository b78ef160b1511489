//! vigil never loses its mind: killed at every failpoint and at random moments, raced
//! by eight supervisors at once, fed corrupt snapshots, it keeps exactly one session
//! per agent, never lowers an incarnation, keeps its cooldowns and crash times, and
//! adopts a running fleet instead of restarting it.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::*;

/// A vigil of the world's, killed when the test ends if it still runs.
fn spawn_vigil(w: &World, args: &[&str], env: &[(&str, String)]) -> Reaped {
    let mut cmd = Command::new(VIGIL);
    cmd.arg("--config")
        .arg(w.config())
        .args(args)
        .env("VIGIL_STATE_DIR", w.state());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Reaped(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    poll_every(limit, Duration::from_millis(10), || child.try_wait().unwrap())
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Our sessions by agent tag: (session, incarnation tag).
fn tagged_sessions(w: &World) -> Vec<(String, String, u64)> {
    w.tmux(&[
        "list-panes",
        "-a",
        "-F",
        "#{@vigil-agent}\t#{@vigil-incarnation}\t#{session_name}",
    ])
    .lines()
    .filter_map(|l| {
        let mut f = l.split('\t');
        let agent = f.next()?.to_owned();
        let inc = f.next()?.parse().ok()?;
        let session = f.next()?.to_owned();
        (!agent.is_empty()).then_some((agent, session, inc))
    })
    .collect()
}

/// A small deterministic generator: the suite's random timings, reproducible.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// By how much (ms, signed) the journal written after byte `from` says the wall clock
/// jumped: every instant vigil recorded was moved by as much.
fn jumps_since(w: &World, from: usize) -> i64 {
    use vigil::engine::gap::Jump;
    journal_since(w, from)
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        .filter_map(|e| match e.record {
            Record::Gap(gap) => gap.jump,
            _ => None,
        })
        .map(|jump| match jump {
            Jump::Forward { by } => i64::try_from(by.as_millis()).unwrap(),
            Jump::Back { by } => -i64::try_from(by.as_millis()).unwrap(),
        })
        .sum()
}

/// The wall clock less the clock since boot, in ms: it moves only when the wall clock
/// is stepped (NTP, `date -s`, a VM's clock set on resume).
fn wall_minus_boot_ms() -> i64 {
    let ms = |id| {
        let ts = rustix::time::clock_gettime(id);
        ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    };
    ms(rustix::time::ClockId::Realtime) - ms(rustix::time::ClockId::Boottime)
}

/// `t` moved by `ms`.
fn moved(t: vigil::engine::Time, ms: i64) -> vigil::engine::Time {
    vigil::engine::Time::from_millis(t.millis() + ms)
}

/// The same recorded instant, give or take a move of the wall clock too small to be a
/// jump (`gap::JUMP_TOLERANCE`): a step back that small brings instants just recorded
/// back to the present (`gap::bound`), and no more.
fn same_instant(a: vigil::engine::Time, b: vigil::engine::Time) -> bool {
    let tolerance = i64::try_from(vigil::engine::gap::JUMP_TOLERANCE.as_millis()).unwrap();
    (a.millis() - b.millis()).abs() <= tolerance
}

/// The journal written after byte `from` (all of it if it was compacted since).
fn journal_since(w: &World, from: usize) -> String {
    let journal = std::fs::read_to_string(w.state().join("journal.jsonl")).unwrap_or_default();
    journal.get(from..).unwrap_or(&journal).to_owned()
}

fn suite_config() -> String {
    // Still in `[vigil]`: the cycler restarts every poll, and this suite is about
    // durability, not the fleet-wide restart cap.
    "max_restarts_per_hour = 100000\n".to_owned()
        + &agent("worker", "worker.sh", "restart = \"always\"")
        + &agent(
            "cycler",
            "finisher.sh",
            "restart = \"always\"\nenv = { FINISH_AFTER = \"0.1\" }",
        )
        + &agent(
            "crasher",
            "crasher.sh",
            "crash_max = 3\ncrash_window = \"10m\"\ncrash_cooldown = \"1h\"\nenv = { CRASH_AFTER = \"0.1\" }",
        )
        + &agent("prompt", "prompt.sh", "idle_checks = 1")
}

#[test]
fn crash_suite_killed_at_every_failpoint_and_at_random_the_fleet_stays_whole() {
    let w = World::new(&suite_config());
    let names = ["worker", "cycler", "crasher", "prompt"];
    let points = ["after-intent", "after-act", "mid-snapshot", "mid-journal"];
    let mut rng = Lcg(20261122);
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut last_inc: HashMap<String, u64> = HashMap::new();
    let mut last_crashes: HashMap<String, Vec<vigil::engine::Time>> = HashMap::new();
    let mut held_until: Option<Option<vigil::engine::Time>> = None;
    // Where the last round's journal ended, and the machine's wall clock against its
    // boot clock then: a failure shows what this round wrote and whether the clock moved.
    let mut journal_was = 0;
    let mut clock_was = wall_minus_boot_ms();
    let rounds = 220;
    for round in 0..rounds {
        // Kill a supervisor: at a failpoint, or with SIGKILL at a random moment.
        let mode = rng.next(5);
        if mode < 4 {
            let point = points[mode as usize];
            let spec = format!("{point}@{}", 1 + rng.next(if point == "mid-journal" { 6 } else { 2 }));
            let mut child = spawn_vigil(&w, &["watch"], &[("VIGIL_FAILPOINT", spec)]);
            match wait_exit(&mut child, Duration::from_secs(3)) {
                Some(status) if status.code().is_none() => *counts.entry(point.to_owned()).or_default() += 1,
                Some(status) => panic!("round {round}: watch exited {status} instead of aborting at {point}"),
                None => {
                    // The point was not reached in time (nothing to do): SIGKILL instead.
                    kill9(&mut child);
                    *counts.entry("sigkill (failpoint not reached)".into()).or_default() += 1;
                }
            }
        } else {
            let mut child = spawn_vigil(&w, &["watch"], &[]);
            wait_out(
                Duration::from_millis(rng.next(500)),
                "a random moment of the run to kill it in",
            );
            kill9(&mut child);
            *counts.entry("sigkill".into()).or_default() += 1;
        }

        // A new supervisor takes over for one pass; then the fleet must be whole.
        let out = w.vigil(&["tick"]);
        assert!(
            out.status.success(),
            "round {round}: recovery tick failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sessions = tagged_sessions(&w);
        for name in names {
            let mine: Vec<_> = sessions.iter().filter(|(a, _, _)| a == name).collect();
            assert_eq!(mine.len(), 1, "round {round}: {name} has sessions {mine:?}");
        }
        assert_eq!(sessions.len(), names.len(), "round {round}: orphans in {sessions:?}");
        let status = w.status();
        // A wall clock that jumped this round re-based every recorded instant (by design:
        // durations go on as they were); what the suite remembers moves with it.
        let jumped = jumps_since(&w, journal_was);
        for a in &status.agents {
            let name = a.name.clone();
            let inc = u64::from(a.incarnation);
            let tag = sessions.iter().find(|(n, _, _)| *n == name).unwrap().2;
            assert_eq!(inc, tag, "round {round}: {name} record and tmux tag agree");
            assert!(
                inc >= *last_inc.get(&name).unwrap_or(&0),
                "round {round}: {name} incarnation went down"
            );
            last_inc.insert(name.clone(), inc);
            let crashes = a.crashes.clone();
            if let Some(before) = last_crashes.get(&name)
                && let Some(newest) = before.last()
            {
                // Where that instant stands now, in the clock the fleet was re-based to.
                let newest = moved(*newest, jumped);
                assert!(
                    crashes.iter().any(|t| same_instant(*t, newest)) || crashes.len() == 10,
                    "round {round}: {name} lost crash {newest}: had {before:?}, now {crashes:?}; \
                     the wall clock moved {} ms against the boot clock; this round journaled:\n{}",
                    wall_minus_boot_ms() - clock_was,
                    journal_since(&w, journal_was)
                );
            }
            last_crashes.insert(name.clone(), crashes);
            if name == "crasher" {
                let in_loop_hold = a.reason.as_str().contains("crash loop");
                match &held_until {
                    Some(held) => {
                        assert!(in_loop_hold, "round {round}: the crash-loop hold was lost: {a:#?}");
                        let held = held.map(|t| moved(t, jumped));
                        assert!(
                            match (a.cooldown_until, held) {
                                (Some(now), Some(was)) => same_instant(now, was),
                                (now, was) => now == was,
                            },
                            "round {round}: the crash-loop hold changed from {held:?} to {:?}",
                            a.cooldown_until
                        );
                        held_until = Some(a.cooldown_until);
                    }
                    None if in_loop_hold => held_until = Some(a.cooldown_until),
                    None => {}
                }
            }
        }
        let journal = std::fs::read_to_string(w.state().join("journal.jsonl")).unwrap();
        journal_was = journal.len();
        clock_was = wall_minus_boot_ms();
        for (i, line) in journal.lines().enumerate() {
            assert!(
                serde_json::from_str::<Entry>(line).is_ok(),
                "round {round}: journal line {} is not a record: {line}",
                i + 1
            );
        }
    }
    let total: u32 = counts.values().sum();
    let mut summary: Vec<_> = counts.iter().collect();
    summary.sort();
    println!("crash suite: {total} kills in {rounds} rounds: {summary:?}");
    assert!(total >= 200);
    assert!(
        points.iter().all(|p| counts.get(*p).is_some_and(|n| *n > 10)),
        "every failpoint was hit: {summary:?}"
    );
    assert!(held_until.is_some(), "the crash-loop hold was exercised");
    let reconciled = w
        .journal()
        .iter()
        .filter(|e| matches!(e.record, Record::Reconciled { .. }))
        .count();
    println!("crash suite: {reconciled} open intents reconciled by the next owner");
}

#[test]
fn eight_supervisors_started_at_once_make_exactly_one_owner() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    for rep in 0..50 {
        let mut children: Vec<Reaped> = (0..8).map(|_| spawn_vigil(&w, &["watch"], &[])).collect();
        let mut exited: Vec<(u32, std::process::ExitStatus)> = Vec::new();
        poll_every(Duration::from_secs(15), Duration::from_millis(5), || {
            for child in &mut children {
                if !exited.iter().any(|(pid, _)| *pid == child.id())
                    && let Some(status) = child.try_wait().unwrap()
                {
                    exited.push((child.id(), status));
                }
            }
            (exited.len() >= 7).then_some(())
        });
        wait_out(
            Duration::from_millis(200),
            "an eighth refusal, if there were one, to show itself",
        );
        let mut running = Vec::new();
        for child in &mut children {
            if child.try_wait().unwrap().is_none() {
                running.push(child.id());
            }
        }
        assert_eq!(running.len(), 1, "rep {rep}: exactly one supervisor keeps running");
        let owners = running;
        for child in children.iter_mut().filter(|c| c.id() != owners[0]) {
            let status = child.wait().unwrap();
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert_eq!(status.code(), Some(1), "rep {rep}: {err}");
            assert!(err.contains("another vigil owns this project: pid"), "rep {rep}: {err}");
        }
        let owner = w.status().owner.map(|o| u64::from(o.pid));
        assert_eq!(owner, Some(u64::from(owners[0])), "rep {rep}: status names the owner");
        Command::new("kill")
            .args(["-TERM", &owners[0].to_string()])
            .status()
            .unwrap();
        for child in &mut children {
            assert!(wait_exit(child, Duration::from_secs(10)).is_some());
        }
    }
}

#[test]
fn unusable_snapshots_are_quarantined_and_the_mind_rebuilt_from_the_journal() {
    for (what, content) in [
        ("truncated", None),
        ("garbage", Some("\u{0}\u{7f}this is not json".to_owned())),
        (
            "future",
            Some("{\"version\": 999, \"saved_at\": \"2026-01-01T00:00:00Z\", \"mind\": {}}".to_owned()),
        ),
    ] {
        let w = World::new(
            &(agent("worker", "worker.sh", "") + &agent("crasher", "crasher.sh", "env = { CRASH_AFTER = \"0\" }")),
        );
        assert!(w.vigil(&["tick"]).status.success());
        std::thread::sleep(Duration::from_millis(300));
        assert!(w.vigil(&["tick"]).status.success());
        let before = w.status();
        assert_eq!(before.agents[1].crashes.len(), 1, "{before:#?}");
        let state = w.state().join("state.json");
        let bytes = std::fs::read(&state).unwrap();
        let broken = content
            .map(String::into_bytes)
            .unwrap_or_else(|| bytes[..bytes.len() / 2].to_vec());
        std::fs::write(&state, &broken).unwrap();

        let out = w.vigil(&["tick"]);
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("state.json was unusable") && stderr.contains("rebuilt 2 agent record(s) from the journal"),
            "{what}: {stderr}"
        );
        let aside: Vec<_> = std::fs::read_dir(w.state())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("state.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{what}");
        assert_eq!(
            std::fs::read(w.state().join(&aside[0])).unwrap(),
            broken,
            "{what}: kept byte for byte"
        );
        let warning = w
            .journal()
            .into_iter()
            .find_map(|e| match e.record {
                Record::Warning { message } => Some(message),
                _ => None,
            })
            .unwrap();
        assert!(warning.contains("moved to"), "{what}: {warning}");
        let after = w.status();
        for (a, b) in before.agents.iter().zip(&after.agents) {
            assert_eq!(a.incarnation, b.incarnation, "{what}: {}", a.name);
            let (was, now) = (&a.crashes, &b.crashes);
            assert!(
                now.starts_with(was),
                "{what}: crash times survive in {}: {was:?} then {now:?}",
                a.name
            );
        }
        assert_eq!(tagged_sessions(&w).len(), 2, "{what}: no duplicates");
    }
}

#[test]
fn after_kill_9_a_fresh_watch_adopts_every_live_agent_without_restarting_any() {
    let n = 20;
    let body: String = (0..n)
        .map(|i| agent(&format!("w{i:02}"), "worker.sh", "env = { WORKER_PAUSE = \"1\" }"))
        .collect();
    let mut w = World::new(&body);
    w.watch();
    let before = w.eventually(Duration::from_secs(30), "the whole fleet working", || {
        Some(w.status()).filter(|s| s.agents.iter().all(|a| a.lifecycle == Some(Lifecycle::Working)))
    });
    let old_owner = before.owner.as_ref().unwrap().pid;
    Command::new("kill")
        .args(["-9", &old_owner.to_string()])
        .status()
        .unwrap();
    eventually(Duration::from_secs(5), "the killed owner gone", || {
        gone(old_owner).then_some(())
    });
    let starts_before = w.journal().iter().filter_map(intent).count();

    let t0 = Instant::now();
    let mut fresh = spawn_vigil(&w, &["watch"], &[]);
    // Polled every 5 ms: this is a measurement as well as a check.
    let adopted = poll_every(Duration::from_secs(20), Duration::from_millis(5), || {
        let owner = w.status().owner.map(|o| o.pid);
        let hb = std::fs::read_to_string(w.state().join("heartbeat"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        let beat = hb.is_some_and(|h| h["pid"].as_u64() == Some(u64::from(fresh.id())));
        (owner == Some(fresh.id()) && beat).then(|| t0.elapsed())
    })
    .expect("the fresh watch never took over");
    println!(
        "adoption: a fresh `vigil watch` claimed and adopted {n} live agents in {} ms (process start to first heartbeat)",
        adopted.as_millis()
    );
    wait_out(
        Duration::from_millis(600),
        "three passes of the new owner, in which nothing may restart",
    );
    let after = w.status();
    for (a, b) in before.agents.iter().zip(&after.agents) {
        assert_eq!(a.pane_pid, b.pane_pid, "{} kept its process", a.name);
        assert_eq!(a.incarnation, b.incarnation);
        assert_eq!(b.restarts, 0);
        assert_eq!(b.lifecycle, Some(Lifecycle::Working));
    }
    let starts_after = w.journal().iter().filter_map(intent).count();
    assert_eq!(starts_before, starts_after, "nothing was started or killed");
    assert_eq!(
        after.owner.as_ref().map(|o| o.epoch),
        before.owner.as_ref().map(|o| o.epoch + 1)
    );
    kill9(&mut fresh);
}

#[test]
fn the_lock_is_never_inherited_by_agents_so_a_new_vigil_claims_at_once() {
    let mut w = World::new(&agent("worker", "worker.sh", ""));
    w.watch();
    let a = w.wait_for("worker", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let owner = w.status().owner.map(|o| u64::from(o.pid)).unwrap();
    Command::new("kill").args(["-9", &owner.to_string()]).status().unwrap();
    eventually(Duration::from_secs(5), "the killed owner gone", || {
        gone(owner as u32).then_some(())
    });
    // No agent or tmux process holds the lock file open.
    let lock = std::fs::canonicalize(w.state().join("lock")).unwrap();
    let tmux_pid = w.tmux(&["display-message", "-p", "#{pid}"]).trim().to_owned();
    for pid in [a.pane_pid.unwrap().to_string(), tmux_pid] {
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(Result::ok)
        {
            assert_ne!(
                std::fs::read_link(fd.path()).ok(),
                Some(lock.clone()),
                "process {pid} holds the lock"
            );
        }
    }
    let out = w.vigil(&["tick"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
