//! What a pass asks of tmux: a live pane whose window printed nothing since its last
//! capture is not captured again (its screen cannot have changed), and one that
//! printed, or was resized, is. Real tmux, with a proxy that counts the captures.

use std::cell::Cell;
use std::time::Duration;

use vigil::adapters::tmux::{Listing, Pane, SpawnSpec, Tmux, TmuxClient, TmuxError};
use vigil::config::Config;
use vigil::engine::{AgentName, Time};
use vigil::store::{Role, Store};
use vigil::supervisor::Supervisor;

use super::harness::*;

/// The real tmux adapter, counting `capture-pane`s.
struct Counting {
    tmux: TmuxClient,
    captures: Cell<u32>,
}

impl Tmux for Counting {
    fn list_panes(&self) -> Result<Vec<Pane>, TmuxError> {
        self.tmux.list_panes()
    }
    fn survey(&self) -> Result<Listing, TmuxError> {
        self.tmux.survey()
    }
    fn capture(&self, session: &str, lines: usize) -> Result<Vec<String>, TmuxError> {
        self.captures.set(self.captures.get() + 1);
        self.tmux.capture(session, lines)
    }
    fn send_text(&self, session: &str, text: &str) -> Result<(), TmuxError> {
        self.tmux.send_text(session, text)
    }
    fn spawn(&self, spec: &SpawnSpec) -> Result<(), TmuxError> {
        self.tmux.spawn(spec)
    }
    fn kill(&self, session: &str) -> Result<(), TmuxError> {
        self.tmux.kill(session)
    }
}

fn now() -> Time {
    Time::from_millis(jiff::Timestamp::now().as_millisecond())
}

#[test]
fn a_quiet_pane_is_captured_again_only_after_it_prints_or_is_resized() {
    let w = World::new("[[agent]]\nname = \"echo\"\ncommand = [\"cat\"]\n");
    let config = Config::load(&w.config()).unwrap();
    let session = config.session_of(&AgentName::new("echo").unwrap());
    let tmux = Counting {
        tmux: client(&w),
        captures: Cell::new(0),
    };
    let store = Store::open(&w.state()).unwrap();
    let (mut sup, _) = Supervisor::claim(config, tmux, store, Role::Tick, now()).unwrap();
    let name = AgentName::new("echo").unwrap();
    let pass = |sup: &mut Supervisor<Counting>| {
        sup.pass(Vec::new(), true, now()).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    };
    for _ in 0..3 {
        pass(&mut sup);
    }
    // Past the second of the last output and capture.
    std::thread::sleep(Duration::from_millis(1100));
    pass(&mut sup);
    let captures = sup.tmux().captures.get();
    let unchanged = sup.mind().agents[&name].unchanged_checks();
    for _ in 0..8 {
        pass(&mut sup);
    }
    assert_eq!(
        sup.tmux().captures.get(),
        captures,
        "a quiet window is not captured again"
    );
    assert_eq!(
        sup.mind().agents[&name].unchanged_checks(),
        unchanged + 8,
        "its unchanged screen still counts each pass"
    );

    w.tmux(&["send-keys", "-t", &session, "-l", "hello there"]);
    w.tmux(&["send-keys", "-t", &session, "Enter"]);
    std::thread::sleep(Duration::from_millis(200));
    pass(&mut sup);
    assert!(sup.tmux().captures.get() > captures, "output is captured");
    assert_eq!(sup.mind().agents[&name].unchanged_checks(), 0, "and seen as a change");

    std::thread::sleep(Duration::from_millis(1100));
    pass(&mut sup);
    let captures = sup.tmux().captures.get();
    pass(&mut sup);
    assert_eq!(sup.tmux().captures.get(), captures);
    w.tmux(&["resize-window", "-t", &session, "-x", "100", "-y", "30"]);
    pass(&mut sup);
    assert_eq!(sup.tmux().captures.get(), captures + 1, "a resize is captured");
}

#[test]
fn a_killed_agent_is_replaced_at_once_not_at_the_next_five_second_poll() {
    let w = World::new(&agent("worker", "worker.sh", ""));
    // The harness polls every 200ms; this project every 5 s.
    let text = std::fs::read_to_string(w.config()).unwrap();
    std::fs::write(
        w.config(),
        text.replace("poll_interval = \"200ms\"", "poll_interval = \"5s\""),
    )
    .unwrap();
    let mut w = w;
    w.watch();
    let first = w.wait_for("worker", 30, "working", |a| {
        a.lifecycle == Some(Lifecycle::Working) && a.pane_pid.is_some()
    });
    // Just after a pass (its heartbeat read straight from the file): the next poll is
    // at least 3.5 s away.
    let last_pass = || -> Option<vigil::store::Heartbeat> {
        serde_json::from_slice(&std::fs::read(w.state().join("heartbeat")).ok()?).ok()
    };
    let beat = w.eventually(Duration::from_secs(30), "a pass just done", || {
        let hb = last_pass()?;
        (now().since(hb.t) < Duration::from_millis(1500)).then_some(hb)
    });
    let pid = first.pane_pid.unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    w.eventually(Duration::from_secs(30), "the next incarnation", || {
        (w.agent("worker").incarnation == 2).then_some(())
    });
    // Judged on vigil's own clock: the start came before the next poll was due.
    let started = w
        .journal()
        .into_iter()
        .find(|e| matches!(intent(e), Some(Action::Start { incarnation, .. }) if incarnation.0 == 2))
        .expect("the start of incarnation 2 is journaled");
    let after = started.t.since(beat.t);
    assert!(
        after < Duration::from_secs(4),
        "restarted {after:?} after the last pass before the kill: the death waited for the 5 s poll"
    );
}
