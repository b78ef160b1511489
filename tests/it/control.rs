//! The control-mode client under a real vigil and a real tmux: one `tmux -C` child of
//! the owner, in the hidden session nobody counts; the server killed under it (one host
//! failure, the client back on the new server, the fleet back) and the client killed
//! alone (replaced, the fleet untouched); agents' windows keep their size; no client is
//! left behind; hostile text crosses tmux's command parser as plain text.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use vigil::adapters::tmux::{CONTROL_SESSION, SpawnSpec, Tmux};
use vigil::engine::HostFailure;

use super::harness::*;

/// Control mode, whatever the run of the tests chose for the others.
fn watch_control(w: &mut World) {
    w.watch_env(&[("VIGIL_TMUX_CLIENT", Path::new("control"))]);
}

/// The pid of the owner's `tmux -C` child, once it has one attached to the server.
fn control_child(w: &World) -> Option<u32> {
    let watch = w.watch_pid();
    let attached = w.tmux(&["list-clients", "-F", "#{client_control_mode} #{client_pid}"]);
    children(watch).into_iter().find(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let is_control = cmdline.split(|b| *b == 0).any(|a| a == b"-C");
        is_control && attached.lines().any(|l| l == format!("1 {pid}"))
    })
}

/// The processes whose parent is `parent` (each of its threads' children).
fn children(parent: u32) -> Vec<u32> {
    vigil::adapters::proctree::read(parent)
        .map(|p| vigil::adapters::proctree::children(&p))
        .unwrap_or_default()
}

#[test]
fn killing_the_server_under_a_control_mode_vigil_is_one_host_failure_and_the_client_comes_back_with_the_fleet() {
    let body = format!("{}{}", agent("one", "worker.sh", ""), agent("two", "worker.sh", ""));
    let mut w = World::new(&body);
    watch_control(&mut w);
    for name in ["one", "two"] {
        working(&w, name, 1);
    }
    let first = w.eventually(Duration::from_secs(20), "a control client attached", || {
        control_child(&w)
    });

    w.tmux(&["kill-server"]);
    for name in ["one", "two"] {
        let a = working(&w, name, 2);
        assert!(a.crashes.is_empty(), "{a:#?}");
    }
    let events = host_events(&w);
    assert_eq!(events.len(), 1, "one host failure: {events:#?}");
    assert_eq!(events[0].failure, HostFailure::ServerGone);
    assert_eq!(events[0].agents.len(), 2);
    let second = w.eventually(
        Duration::from_secs(20),
        "a new control client on the new server",
        || control_child(&w).filter(|pid| *pid != first),
    );
    assert!(gone(first), "the old client went with its server");
    // The client is back in service: the fleet stays supervised through it.
    let heartbeat = || std::fs::read_to_string(w.state().join("heartbeat")).unwrap_or_default();
    let before = heartbeat();
    w.eventually(Duration::from_secs(20), "passes go on", || {
        (heartbeat() != before).then_some(())
    });
    assert_eq!(control_child(&w), Some(second));
    assert_eq!(host_events(&w).len(), 1, "and no second host failure");
}

#[test]
fn a_control_client_killed_under_vigil_is_replaced_and_the_fleet_carries_on_untouched() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    watch_control(&mut w);
    let a = working(&w, "a", 1);
    let first = w.eventually(Duration::from_secs(20), "a control client attached", || {
        control_child(&w)
    });
    std::process::Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    let second = w.eventually(Duration::from_secs(20), "a new control client", || {
        control_child(&w).filter(|pid| *pid != first)
    });
    assert_ne!(second, first);
    let now = w.agent("a");
    assert_eq!(
        (now.incarnation, now.pane_pid),
        (1, a.pane_pid),
        "the agent was never restarted"
    );
    assert!(now.crashes.is_empty() && now.restarts == 0, "{now:#?}");
    assert!(host_events(&w).is_empty(), "a dead client is no host failure");
    assert_eq!(w.sessions(), [a.session], "the hidden session is nobody's");
    let status = w.status();
    assert_eq!(status.agents.len(), 1, "and no agent");
}

#[test]
fn a_control_client_leaves_the_agents_windows_their_size_and_leaves_with_its_owner() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    watch_control(&mut w);
    let a = working(&w, "a", 1);
    w.eventually(Duration::from_secs(20), "a control client attached", || {
        control_child(&w)
    });
    let sizes = w.tmux(&["list-panes", "-a", "-F", "#{session_name} #{pane_width}x#{pane_height}"]);
    assert!(sizes.contains(&format!("{} 200x50", a.session)), "{sizes}");
    // Even a client that tells tmux its size sizes only the hidden session's window.
    let client = w.tmux(&["list-clients", "-F", "#{client_name}"]);
    let client = client.lines().next().unwrap().to_owned();
    w.tmux(&["refresh-client", "-t", &client, "-C", "30x10"]);
    let sizes = w.tmux(&["list-panes", "-a", "-F", "#{session_name} #{pane_width}x#{pane_height}"]);
    assert!(sizes.contains(&format!("{} 200x50", a.session)), "{sizes}");
    assert_eq!(w.stop_watch(), Some(0));
    assert!(w.tmux(&["list-clients"]).trim().is_empty(), "no client left behind");
    // The hidden session stays, asleep and tagged, for the next vigil.
    let all = w.tmux(&["list-sessions", "-F", "#{session_name} #{@vigil-control}"]);
    assert!(all.contains(&format!("{CONTROL_SESSION} 1")), "{all}");
    assert_eq!(w.sessions(), [a.session], "the agent runs on");
}

#[test]
fn hostile_text_crosses_the_control_client_as_plain_text_and_runs_nothing() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let tmux = client(&w);
    let dir = w.dir.path();
    let marker = dir.join("ran");
    let spec = SpawnSpec {
        session: "hostile".into(),
        cwd: dir.to_owned(),
        env: [("V".to_owned(), "x\" ; kill-server ; \"$HOME~".to_owned())].into(),
        argv: vec!["sh".into(), "-c".into(), "printf '<%s>' \"$V\"; echo; exec cat".into()],
        agent: "a".into(),
        incarnation: 1,
        run: "r".into(),
    };
    // The first start brings the server up (through the CLI: control mode never starts
    // one); the second goes through the control client, when it is the one chosen.
    let first = SpawnSpec {
        session: "first".into(),
        argv: vec!["cat".into()],
        ..spec.clone()
    };
    tmux.spawn(&first).unwrap();
    tmux.spawn(&spec).unwrap();
    let hostile = format!(
        "a;b ; kill-server ; run-shell 'touch {}' #(touch {}) #{{pane_pid}} $HOME ~ \\ \" ' {{ }};",
        marker.display(),
        marker.display()
    );
    // Typed only once the shell has printed its env value: text typed before would be
    // echoed by the tty first, and the capture could catch it before the value.
    w.wait_screen("hostile", 10, "\"$HOME~>");
    tmux.send_text("hostile", &hostile).unwrap();
    let screen = w.wait_screen("hostile", 10, "{ };");
    assert!(
        screen.contains("<x\" ; kill-server ; \"$HOME~>"),
        "the env value as given:\n{screen}"
    );
    assert!(screen.contains(&hostile), "the text as typed:\n{screen}");
    assert!(!marker.exists(), "nothing ran");
    let listing = tmux.survey().unwrap();
    assert!(
        listing.panes.iter().any(|p| p.session == "hostile"),
        "the server is still up"
    );
    assert!(listing.panes.iter().all(|p| p.session != CONTROL_SESSION));
    tmux.kill("hostile").unwrap();
}

/// The pid of the World's tmux server.
fn server_pid(w: &World) -> Option<u32> {
    w.tmux(&["display-message", "-p", "#{pid}"]).trim().parse().ok()
}

#[test]
fn a_control_client_that_a_killed_vigil_left_is_ended_by_the_next_so_the_server_can_still_exit() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    watch_control(&mut w);
    working(&w, "a", 1);
    let first = w.eventually(Duration::from_secs(20), "a control client attached", || {
        control_child(&w)
    });
    // A client nobody reads, whose parent is no vigil: what a vigil killed mid-write
    // leaves (tmux 3.3a keeps it for ever, and a server told to exit waits on it).
    let target = format!("={CONTROL_SESSION}");
    let stray = Group(
        std::process::Command::new("sh")
            .args([
                "-c",
                "sleep 600 | tmux -L \"$1\" -C attach-session -t \"$2\" | sleep 600",
                "sh",
            ])
            .args([&w.socket, &target])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let clients = |w: &World| w.tmux(&["list-clients", "-t", &target, "-F", "#{client_pid}"]);
    let stray_client: u32 = w.eventually(Duration::from_secs(10), "the stray client attached", || {
        clients(&w)
            .lines()
            .filter_map(|l| l.parse().ok())
            .find(|&pid| pid != first)
    });

    w.kill_watch();
    watch_control(&mut w);
    let second = w.eventually(Duration::from_secs(20), "the new owner's control client", || {
        control_child(&w)
    });
    assert_ne!(first, second);
    w.eventually(Duration::from_secs(10), "the clients left behind ended", || {
        (gone(first) && gone(stray_client)).then_some(())
    });
    assert_eq!(
        clients(&w).trim(),
        second.to_string(),
        "only the owner's client is attached"
    );
    working(&w, "a", 1);

    w.stop_watch();
    let server = server_pid(&w).expect("the server runs");
    w.tmux(&["kill-server"]);
    w.eventually(Duration::from_secs(10), "the server exited", || {
        gone(server).then_some(())
    });
    drop(stray);
}

/// A process group, killed whole when dropped (a test that fails included).
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn both_clients_capture_the_same_lines_blank_ones_at_the_foot_included() {
    use vigil::adapters::tmux::{ClientKind, TmuxClient};
    let w = World::new(&agent("a", "worker.sh", ""));
    let cli = TmuxClient::new(Some(w.socket.clone()), ClientKind::Cli);
    let control = TmuxClient::new(Some(w.socket.clone()), ClientKind::Control);
    let spec = SpawnSpec {
        session: "blank".into(),
        cwd: w.dir.path().to_owned(),
        env: Default::default(),
        argv: vec!["sh".into(), "-c".into(), "printf 'one\\n\\ntwo\\n'; exec cat".into()],
        agent: "a".into(),
        incarnation: 1,
        run: "r".into(),
    };
    cli.spawn(&spec).unwrap();
    w.wait_screen("blank", 10, "two");
    let asks = [("blank", 10)];
    // Once the server has a session, the control client attaches and answers looks.
    let through_control = w.eventually(Duration::from_secs(10), "the control client answers", || {
        let lines = control.capture_each(&asks).pop()?.ok()?;
        control.control_pid().map(|_| lines)
    });
    let through_cli = cli.capture_each(&asks).pop().unwrap().unwrap();
    assert_eq!(through_control, through_cli);
    assert_eq!(
        control.capture("blank", 10).unwrap(),
        through_cli,
        "a capture on its own too"
    );
    assert_eq!(cli.capture("blank", 10).unwrap(), through_cli);
    assert_eq!(through_cli[..3], ["one", "", "two"], "{through_cli:?}");
    assert!(
        through_cli.len() > 3,
        "the blank lines under the text are kept: {through_cli:?}"
    );
    cli.kill("blank").unwrap();
}
