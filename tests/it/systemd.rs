//! Headless under systemd: `vigil watch` speaks sd_notify, reloads its config without
//! touching an agent, `vigil check` stops a hung owner (and only it) so a new one can
//! adopt the fleet, and the units `vigil install-units` writes are ones systemd accepts.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::*;

/// Stops, at the end of a test, a process the test did not start as its child (a
/// `vigil watch` started by `vigil check --restart`).
struct StopOnDrop(u64);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.to_string()]).status();
        poll(Duration::from_secs(5), || {
            state_of(self.0).is_none_or(|s| s == 'Z').then_some(())
        });
    }
}

/// The process state letter from /proc (`R`, `S`, `T`, `Z`…); `None` when gone.
fn state_of(pid: u64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim().chars().next()
}

fn alive(pid: u64) -> bool {
    state_of(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

fn vigil_with(w: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(VIGIL);
    cmd.arg("--config")
        .arg(w.config())
        .args(args)
        .env("VIGIL_STATE_DIR", w.state())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn checks(w: &World) -> Vec<(CheckStep, vigil::engine::Time)> {
    w.journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Check(c) => Some((c.step, e.t)),
            _ => None,
        })
        .collect()
}

fn intents(w: &World) -> usize {
    w.journal().iter().filter_map(intent).count()
}

#[test]
fn check_against_a_fresh_owner_exits_0_and_touches_nothing() {
    let mut w = World::new(&agent("worker", "worker.sh", ""));
    w.watch();
    w.wait_for("worker", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let out = w.vigil(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ok: pid"), "{}", text(&out));
    assert!(checks(&w).is_empty(), "a healthy owner leaves no check records");
    assert_eq!(w.stop_watch(), Some(0));
}

#[test]
fn no_owner_at_all_is_exit_1_with_a_clear_message_and_restart_starts_one() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    let out = w.vigil(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no vigil has ever owned this project")
            && text(&out).contains("nothing supervises this project now"),
        "{}",
        text(&out)
    );
    let out = w.vigil(&["check", "--restart"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let owner = read_json(&w.state().join("owner.json"));
    let _stop = StopOnDrop(owner["pid"].as_u64().unwrap());
    assert_eq!(owner["epoch"], 1);
    assert_eq!(owner["role"], "watch");
    w.wait_for("worker", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
}

#[test]
fn a_stopped_owner_with_an_old_heartbeat_is_termed_then_killed_and_a_new_owner_adopts_the_agents() {
    let mut w = World::new(&(agent("worker", "worker.sh", "") + &agent("other", "worker.sh", "")));
    w.watch();
    w.wait_for("worker", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    w.wait_for("other", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let before = w.status();
    let old_owner = before.owner.clone().unwrap();
    let (old_pid, old_epoch) = (u64::from(old_owner.pid), old_owner.epoch);
    let intents_before = intents(&w);
    Command::new("kill")
        .args(["-STOP", &old_pid.to_string()])
        .status()
        .unwrap();
    wait_out(
        Duration::from_millis(1300),
        "the stopped owner's heartbeat grows older than 1s",
    );
    assert_eq!(state_of(old_pid), Some('T'));

    let t0 = Instant::now();
    let out = w.vigil(&["check", "--stale-after", "1s", "--grace", "1s", "--restart"]);
    let took = t0.elapsed();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    println!(
        "check: found the stopped owner, TERM, 1 s grace, KILL, new owner claimed in {} ms",
        took.as_millis()
    );
    assert!(said.contains("is stopped"), "{said}");
    assert!(!alive(old_pid), "the stopped owner was killed");

    let steps = checks(&w);
    let names: Vec<CheckStep> = steps.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        names,
        [
            CheckStep::Found,
            CheckStep::Term,
            CheckStep::Kill,
            CheckStep::Killed,
            CheckStep::Restarted
        ],
        "{steps:?}"
    );
    let grace = steps[2].1.since(steps[1].1);
    assert!(grace >= Duration::from_millis(1000), "KILL came {grace:?} after TERM");

    let owner = read_json(&w.state().join("owner.json"));
    let new_pid = owner["pid"].as_u64().unwrap();
    let _stop = StopOnDrop(new_pid);
    assert_ne!(new_pid, old_pid);
    assert_eq!(
        owner["epoch"].as_u64(),
        Some(old_epoch + 1),
        "the lock was free for a new claim"
    );
    let after = w.eventually(Duration::from_secs(10), "the new owner's first pass", || {
        let s = w.status();
        let adopted = s.owner.as_ref().map(|o| u64::from(o.pid)) == Some(new_pid)
            && s.saved_at.zip(s.owner.as_ref()).is_some_and(|(t, o)| t >= o.since);
        adopted.then_some(s)
    });
    for (a, b) in before.agents.iter().zip(&after.agents) {
        assert_eq!(a.pane_pid, b.pane_pid, "{} kept its process", a.name);
        assert_eq!(a.incarnation, b.incarnation, "{} kept its incarnation", a.name);
        assert_eq!(b.lifecycle, Some(Lifecycle::Working));
        assert!(alive(b.pane_pid.map(u64::from).unwrap()));
    }
    assert_eq!(intents(&w), intents_before, "nothing was started or killed in tmux");
}

#[test]
fn a_recorded_pid_that_now_belongs_to_another_process_is_never_signalled() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    assert!(w.vigil(&["tick"]).status.success());
    // The tick has exited; pretend its pid was reused by an unrelated process.
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    let owner_path = w.state().join("owner.json");
    let mut owner = read_json(&owner_path);
    owner["pid"] = stranger.id().into();
    std::fs::write(&owner_path, owner.to_string()).unwrap();
    wait_out(
        Duration::from_millis(1100),
        "the recorded heartbeat grows older than 1s",
    );

    let out = w.vigil(&["check", "--stale-after", "1s", "--grace", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("belongs to another process"), "{}", text(&out));
    let out = w.vigil(&["check", "--stale-after", "1s", "--grace", "1s", "--restart"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let new_owner = read_json(&owner_path);
    let _stop = StopOnDrop(new_owner["pid"].as_u64().unwrap());
    assert_eq!(new_owner["epoch"], 2);

    wait_out(
        Duration::from_millis(300),
        "a signal sent to the stranger, were there one, to land",
    );
    assert!(stranger.try_wait().unwrap().is_none(), "the stranger was not signalled");
    assert_eq!(state_of(u64::from(stranger.id())), Some('S'));
    let steps: Vec<CheckStep> = checks(&w).into_iter().map(|(s, _)| s).collect();
    assert!(
        !steps.iter().any(|s| matches!(s, CheckStep::Term | CheckStep::Kill)),
        "no signal was even attempted: {steps:?}"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

/// Reads datagrams until `want` arrives (or the deadline); returns all read.
pub(super) fn read_until(sock: &UnixDatagram, want: &str, limit: Duration, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == want);
            seen.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn watch_under_systemd_says_ready_then_watchdog_then_stopping_and_leaves_the_agents() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    // A live agent to adopt.
    assert!(w.vigil(&["up"]).status.success());
    let pane_pid = w.agent("worker").pane_pid.map(u64::from).unwrap();
    let socket_path = w.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut child: Child = Command::new(VIGIL)
        .arg("--config")
        .arg(w.config())
        .arg("watch")
        .env("VIGIL_STATE_DIR", w.state())
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "2000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    assert!(
        read_until(&sock, "READY=1", Duration::from_secs(10), &mut seen),
        "{seen:?}"
    );
    // Ready means claimed and adopted: the owner is on disk and has beaten once.
    let owner = read_json(&w.state().join("owner.json"));
    assert_eq!(owner["pid"].as_u64(), Some(u64::from(child.id())));
    assert_eq!(owner["epoch"], 2);
    let hb = read_json(&w.state().join("heartbeat"));
    assert_eq!(hb["pid"].as_u64(), Some(u64::from(child.id())));
    assert!(
        seen.iter().all(|m| !m.contains("WATCHDOG=1")),
        "nothing before READY: {seen:?}"
    );
    for _ in 0..2 {
        assert!(
            read_until(&sock, "WATCHDOG=1", Duration::from_secs(3), &mut seen),
            "{seen:?}"
        );
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        read_until(&sock, "STOPPING=1", Duration::from_secs(10), &mut seen),
        "{seen:?}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let first = |word: &str| seen.iter().position(|m| m.lines().any(|l| l == word)).unwrap();
    assert!(first("READY=1") < first("WATCHDOG=1") && first("WATCHDOG=1") < first("STOPPING=1"));
    assert!(alive(pane_pid), "the agent outlives vigil");
    assert_eq!(
        w.agent("worker").pane_pid.map(u64::from),
        Some(pane_pid),
        "adopted, not restarted"
    );
}

#[test]
fn the_agents_never_inherit_systemds_notification_socket() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    let out = vigil_with(
        &w,
        &["up", "--no-watch"],
        &[("NOTIFY_SOCKET", "/nonexistent/notify"), ("WATCHDOG_USEC", "1")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let env = w.tmux(&["show-environment", "-g"]);
    assert!(env.contains("PATH="), "{env}");
    assert!(
        !env.contains("NOTIFY_SOCKET") && !env.contains("WATCHDOG_USEC"),
        "{env}"
    );
}

/// The config file as the harness wrote it, plus `extra`.
pub(super) fn config_plus(w: &World, extra: &str) -> String {
    let text = std::fs::read_to_string(w.config()).unwrap();
    format!("{text}\n{extra}")
}

#[test]
fn a_config_edit_applies_without_restarting_agents_and_a_bad_one_is_refused_with_its_place() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    w.watch();
    let a = w.wait_for("a", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));

    // A good edit, as editors save: a new file renamed over the old one.
    let good = config_plus(&w, &agent("b", "worker.sh", "idle_checks = 7"));
    let good = good.replace("{agents}", super::harness::fixtures().join("agents").to_str().unwrap());
    let tmp = w.dir.path().join(".vigil.toml.swp");
    std::fs::write(&tmp, &good).unwrap();
    std::fs::rename(&tmp, w.config()).unwrap();
    w.wait_for("b", 20, "b started by the reloaded config", |b| {
        b.lifecycle == Some(Lifecycle::Working)
    });
    let reloaded: Vec<_> = w
        .journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Reloaded(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(reloaded.len(), 1, "{reloaded:?}");
    assert_eq!(reloaded[0].added, ["b"]);
    let a_now = w.agent("a");
    assert_eq!(a_now.pane_pid, a.pane_pid, "a was not restarted");
    assert_eq!(a_now.incarnation, a.incarnation);

    // A bad edit, written in place: refused with file:line:column, old config kept.
    let bad = format!("{good}bogus_key = 1\n");
    let line = bad.lines().count();
    std::fs::write(w.config(), &bad).unwrap();
    let warning = w.wait_journal(
        10,
        "the bad config refused",
        |e| matches!(&e.record, Record::Warning { message } if message.contains("config not reloaded")),
    );
    let Record::Warning { message } = &warning.record else {
        unreachable!()
    };
    let place = format!("{}:{line}:1", w.config().display());
    assert!(message.contains(&place) && message.contains("bogus_key"), "{message}");
    assert!(message.contains("the running config stays"), "{message}");
    // Still supervising both, with the same processes.
    let hb1 = read_json(&w.state().join("heartbeat"))["loops"].as_u64().unwrap();
    wait_out(Duration::from_millis(600), "three polls");
    let hb2 = read_json(&w.state().join("heartbeat"))["loops"].as_u64().unwrap();
    assert!(hb2 > hb1, "the owner keeps looping");
    assert_eq!(w.sessions().len(), 2, "a and b keep running");
    // Fixed again (status needs a valid file): a kept its process throughout.
    std::fs::write(w.config(), &good).unwrap();
    assert_eq!(w.agent("a").pane_pid, a.pane_pid);
    assert_eq!(w.agent("a").incarnation, a.incarnation);
    assert_eq!(w.stop_watch(), Some(0));
}

#[test]
fn sighup_reloads_the_config() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    w.watch();
    w.wait_for("a", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    let owner = w.status().owner.map(|o| u64::from(o.pid)).unwrap();
    Command::new("kill")
        .args(["-HUP", &owner.to_string()])
        .status()
        .unwrap();
    w.wait_journal(10, "SIGHUP to reload", |e| matches!(e.record, Record::Reloaded(_)));
    assert!(alive(owner), "SIGHUP does not end vigil");
    assert_eq!(w.stop_watch(), Some(0));
}

fn systemd_escape_path(path: &Path) -> Option<String> {
    let out = Command::new("systemd-escape").arg("--path").arg(path).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn install_units_writes_units_systemd_accepts_and_prints_the_commands_to_enable_them() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let dir = w.dir.path().join("units");
    let out = w.vigil(&["install-units", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    let config = std::fs::canonicalize(w.config()).unwrap();
    let instance = match systemd_escape_path(&config) {
        Some(escaped) => escaped,
        None => {
            println!("note: systemd-escape not found; trusting vigil's own escaping");
            config.to_str().unwrap().trim_start_matches('/').replace('/', "-")
        }
    };
    assert!(said.contains("systemctl --user daemon-reload"), "{said}");
    assert!(
        said.contains(&format!(
            "systemctl --user enable --now 'vigil@{instance}.service' 'vigil-check@{instance}.timer'"
        )),
        "{said}"
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let service = read("vigil@.service");
    for line in [
        "Type=notify",
        &format!("ExecStart={VIGIL} --config %I watch"),
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=5min",
        "Restart=always",
        "KillMode=process",
        "WantedBy=default.target",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "vigil@.service lacks `{line}`:\n{service}"
        );
    }
    assert!(
        service.lines().any(|l| l.starts_with("Environment=\"PATH=")),
        "{service}"
    );
    let check = read("vigil-check@.service");
    for line in [
        "Type=oneshot",
        &format!("ExecStart={VIGIL} --config %I check"),
        "After=vigil@%i.service",
    ] {
        assert!(
            check.lines().any(|l| l == line),
            "vigil-check@.service lacks `{line}`:\n{check}"
        );
    }
    let timer = read("vigil-check@.timer");
    for line in [
        "OnBootSec=5min",
        "OnActiveSec=5min",
        "OnUnitActiveSec=5min",
        "Unit=vigil-check@%i.service",
        "WantedBy=timers.target",
    ] {
        assert!(
            timer.lines().any(|l| l == line),
            "vigil-check@.timer lacks `{line}`:\n{timer}"
        );
    }
    let tick = read("vigil-tick@.service");
    for line in [
        "Type=oneshot",
        &format!("ExecStart={VIGIL} --config %I tick"),
        "KillMode=process",
    ] {
        assert!(
            tick.lines().any(|l| l == line),
            "vigil-tick@.service lacks `{line}`:\n{tick}"
        );
    }
    let tick_timer = read("vigil-tick@.timer");
    assert!(tick_timer.lines().any(|l| l == "OnBootSec=1min"), "{tick_timer}");
    assert!(tick_timer.lines().any(|l| l == "OnUnitActiveSec=1min"), "{tick_timer}");
    assert!(
        said.contains(&format!("systemctl --user enable --now 'vigil-tick@{instance}.timer'")),
        "{said}"
    );

    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("note: systemd-analyze not found; unit verification skipped");
        return;
    };
    assert!(version.status.success());
    let runtime = w.dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let units: Vec<_> = [
        format!("vigil@{instance}.service"),
        format!("vigil-check@{instance}.service"),
        format!("vigil-check@{instance}.timer"),
        format!("vigil-tick@{instance}.service"),
        format!("vigil-tick@{instance}.timer"),
    ]
    .iter()
    .map(|u| dir.join(u))
    .collect();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .args(&units)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze --user verify: {}",
        text(&out)
    );
}

#[test]
fn install_units_without_user_or_dir_is_a_usage_error() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let out = w.vigil(&["install-units"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("pass --user"), "{}", text(&out));
}
