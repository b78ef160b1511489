//! Host failure is not worker failure, on a real private tmux server: the server
//! killed again and again, and the server lost with its owner (a reboot), each one host
//! event for the fleet, never a crash of any agent.

use std::time::Duration;

use super::harness::*;
use vigil::engine::HostFailure;

#[test]
fn killing_the_tmux_server_four_times_brings_the_fleet_back_each_time_without_a_crash_loop() {
    let body = format!("{}{}", agent("one", "worker.sh", ""), agent("two", "worker.sh", ""));
    let mut w = World::new(&body);
    w.watch();
    for name in ["one", "two"] {
        working(&w, name, 1);
    }
    for kill in 1..=4u32 {
        w.tmux(&["kill-server"]);
        for name in ["one", "two"] {
            let a = working(&w, name, kill + 1);
            assert!(a.crashes.is_empty(), "kill {kill}: {a:#?}");
            assert!(!a.reason.contains("crash loop"), "kill {kill}: {a:#?}");
        }
    }
    let events = host_events(&w);
    assert_eq!(events.len(), 4, "one host event per lost server: {events:#?}");
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.failure, HostFailure::ServerGone, "{event:#?}");
        assert_eq!(event.outages, n as u32 + 1, "the host backoff counts them in a row");
        assert_eq!(event.agents.len(), 2);
        assert!(event.reason.starts_with("host failure: tmux server gone"), "{event:#?}");
    }
    let out = w.vigil(&["log", "-n", "200"]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(log.matches("host failure: tmux server gone").count(), 4, "{log}");
    assert!(!log.contains("crash loop"), "{log}");
}

#[test]
fn a_new_owner_finding_the_server_and_its_owner_gone_brings_the_fleet_back_with_handoffs_as_a_host_restart() {
    let body = format!("{}{}", agent("one", "prompt.sh", ""), agent("two", "prompt.sh", ""));
    let mut w = World::new(&body);
    w.watch();
    let sessions: Vec<String> = ["one", "two"].iter().map(|n| working(&w, n, 1).session).collect();
    // A reboot: the owner gone without a word, the tmux server with it.
    w.kill_watch();
    w.tmux(&["kill-server"]);
    eventually(Duration::from_secs(10), "the server gone", || {
        Some(()).filter(|_| w.sessions().is_empty())
    });
    w.watch();
    for (name, session) in ["one", "two"].iter().zip(&sessions) {
        let a = working(&w, name, 2);
        assert!(a.crashes.is_empty(), "{a:#?}");
        assert_eq!(a.restarts, 1);
        assert!(
            w.state().join(format!("checkpoints/{name}.json")).is_file(),
            "{name}'s checkpoint"
        );
        let screen = w.wait_screen(
            session,
            20,
            "got instruction: vigil restarted you: your previous session (#1)",
        );
        assert!(screen.contains("host restart"), "{screen}");
        assert!(screen.contains(&format!("checkpoints/{name}.json")), "{screen}");
    }
    let events = host_events(&w);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].failure, HostFailure::HostRestart);
    assert!(events[0].reason.starts_with("host restart: "), "{:#?}", events[0]);
    let zombies = w
        .journal()
        .iter()
        .filter_map(|e| lifecycle_event(e, Lifecycle::Zombie).cloned())
        .collect::<Vec<_>>();
    assert_eq!(zombies.len(), 2, "{zombies:#?}");
    assert!(zombies.iter().all(|z| z.reason.contains("not a crash")), "{zombies:#?}");
}
