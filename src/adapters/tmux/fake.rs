//! An in-memory tmux for unit tests of the code around the engine: sessions whose
//! screens and deaths a test scripts, and a record of what was typed. Not for testing
//! tmux behaviour itself; that is done against a real tmux on a private socket.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Pane, SpawnSpec, Tmux, TmuxError};

#[derive(Clone, Debug, Default)]
pub struct FakeSession {
    pub pane: Pane,
    pub screen: Vec<String>,
    pub typed: Vec<String>,
    pub spec: Option<SpawnSpec>,
}

#[derive(Debug, Default)]
pub struct FakeTmux {
    sessions: Mutex<BTreeMap<String, FakeSession>>,
    next_pid: Mutex<u32>,
    /// When set, `spawn` fails with this message.
    pub fail_spawn: Mutex<Option<String>>,
}

impl FakeTmux {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, FakeSession>) -> R) -> R {
        let mut guard = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn session(&self, name: &str) -> Option<FakeSession> {
        self.with(|s| s.get(name).cloned())
    }

    pub fn sessions(&self) -> Vec<String> {
        self.with(|s| s.keys().cloned().collect())
    }

    pub fn set_screen(&self, name: &str, text: &str) {
        self.with(|s| {
            if let Some(sess) = s.get_mut(name) {
                sess.screen = text.lines().map(str::to_owned).collect();
            }
        });
    }

    /// The pane's process exits with `status` (the pane remains, as with remain-on-exit).
    pub fn exit(&self, name: &str, status: i32) {
        self.with(|s| {
            if let Some(sess) = s.get_mut(name) {
                sess.pane.dead = true;
                sess.pane.dead_status = Some(status);
            }
        });
    }

    /// Adds a session as if someone else had started it.
    pub fn insert(&self, pane: Pane) {
        self.with(|s| {
            s.insert(
                pane.session.clone(),
                FakeSession {
                    pane,
                    ..FakeSession::default()
                },
            );
        });
    }
}

impl Tmux for FakeTmux {
    fn list_panes(&self) -> Result<Vec<Pane>, TmuxError> {
        Ok(self.with(|s| s.values().map(|x| x.pane.clone()).collect()))
    }

    fn capture(&self, session: &str, lines: usize) -> Result<Vec<String>, TmuxError> {
        self.with(|s| {
            let sess = s
                .get(session)
                .ok_or_else(|| TmuxError::NoSuchSession(session.to_owned()))?;
            let skip = sess.screen.len().saturating_sub(lines);
            Ok(sess.screen[skip..].to_vec())
        })
    }

    fn send_text(&self, session: &str, text: &str) -> Result<(), TmuxError> {
        self.with(|s| {
            let sess = s
                .get_mut(session)
                .ok_or_else(|| TmuxError::NoSuchSession(session.to_owned()))?;
            sess.typed.push(text.to_owned());
            sess.screen.push(text.to_owned());
            Ok(())
        })
    }

    fn spawn(&self, spec: &SpawnSpec) -> Result<(), TmuxError> {
        if let Some(msg) = self.fail_spawn.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(TmuxError::Failed {
                args: "new-session".into(),
                stderr: msg,
            });
        }
        let pid = {
            let mut next = self.next_pid.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            10_000 + *next
        };
        self.with(|s| {
            if s.contains_key(&spec.session) {
                return Err(TmuxError::SessionExists(spec.session.clone()));
            }
            let pane = Pane {
                session: spec.session.clone(),
                pane_pid: pid,
                dead: false,
                dead_status: None,
                dead_signal: None,
                agent: Some(spec.agent.clone()),
                incarnation: Some(spec.incarnation),
                run: Some(spec.run.clone()),
                exit_tag: None,
                activity: None,
                size: None,
            };
            s.insert(
                spec.session.clone(),
                FakeSession {
                    pane,
                    screen: Vec::new(),
                    typed: Vec::new(),
                    spec: Some(spec.clone()),
                },
            );
            Ok(())
        })
    }

    fn kill(&self, session: &str) -> Result<(), TmuxError> {
        self.with(|s| {
            s.remove(session)
                .map(|_| ())
                .ok_or_else(|| TmuxError::NoSuchSession(session.to_owned()))
        })
    }
}
