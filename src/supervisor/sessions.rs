//! Claude Code's session files (`~/.claude/sessions/<pid>.json`: `pid`, `procStart` =
//! field 22 of `/proc/<pid>/stat`, `status` busy | idle | waiting) as signals, for
//! agents wired as Claude Code. A file is trusted only when its `pid` and `procStart`
//! match a live process in the agent's pane tree: one left behind by a SIGKILLed
//! process (whose pid may since name another) is journaled once as untrusted and
//! never believed. Read-only, bounded, no links followed; a change is a signal, an
//! unchanged file is heard again only after half the freshness window.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Records, Supervisor, SupervisorError};
use crate::adapters::fs::{Links, read_regular};
use crate::adapters::proctree;
use crate::adapters::tmux::{Pane, Tmux};
use crate::config::preset::Wiring;
use crate::engine::signal::{Heard, Ignored, Said, Signal, Source, Via};
use crate::engine::{AgentName, Incarnation, Time};
use crate::store::Record;
use crate::store::record::SignalNote;

/// Largest session file read.
const MAX_SESSION_FILE: u64 = 64 * 1024;

/// What was last made of an agent's session file, so only a change is journaled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SessionSeen {
    /// `(pid, status, trusted)` of the file last read.
    last: Option<(u32, String, bool)>,
    /// When it was last handed to the engine.
    heard_at: Option<Time>,
}

/// The dir Claude Code keeps its session files in, under `HOME`.
fn sessions_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".claude/sessions"))
}

impl<T: Tmux> Supervisor<T> {
    /// The session-file signals of this pass's live Claude Code panes; each pane's
    /// process tree is the one the pass read from `since` on, if it did.
    pub(super) fn read_sessions(
        &mut self,
        panes: &[Pane],
        since: std::time::Instant,
        now: Time,
        records: &mut Records,
    ) -> Result<Vec<Signal>, SupervisorError> {
        let Some(dir) = sessions_dir().filter(|d| d.is_dir()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let configs = self.config.agents_by_name();
        for pane in panes.iter().filter(|p| p.is_ours(&self.fleet.run) && !p.dead) {
            let Some(name) = pane.agent.as_deref().and_then(AgentName::new) else {
                continue;
            };
            let Some(config) = configs.get(name.as_str()) else {
                continue;
            };
            if config.signals != Some(Wiring::ClaudeSettings) {
                continue;
            }
            let fresh = config.policy.signal_fresh;
            let incarnation = Incarnation(pane.incarnation.unwrap_or(0));
            // The tree as this pass read it, or read now when the pass did not.
            let procs: Vec<(u32, u64)> = match self.trees.read_since(&pane.session, since) {
                Some(procs) => procs.to_vec(),
                None => proctree::tree(pane.pane_pid).iter().map(|p| (p.pid, p.start)).collect(),
            };
            let Some((pid, status, trusted, why)) = read_one(&dir, &procs) else {
                continue;
            };
            let seen = self.sessions.entry(name.clone()).or_default();
            let same = seen.last.as_ref() == Some(&(pid, status.clone(), trusted));
            let due = seen.heard_at.is_none_or(|t| now.since(t) >= fresh / 2);
            if same && (!trusted || !due) {
                continue;
            }
            seen.last = Some((pid, status.clone(), trusted));
            let said = match status.as_str() {
                "busy" => Some((Said::Working, "is busy")),
                "idle" => Some((Said::Idle, "is idle at its prompt")),
                "waiting" => Some((Said::Waiting, "waits for an answer")),
                _ => None,
            };
            let event = format!("session:{status}");
            let (ignored, reason) = match (&said, trusted) {
                (_, false) => {
                    let why = Ignored::Untrusted { what: why };
                    let words = why.words();
                    (Some(why), format!("session file {pid}.json of {name} ignored: {words}"))
                }
                (None, true) => {
                    let why = Ignored::Unmapped { event: event.clone() };
                    let words = why.words();
                    (Some(why), format!("session file {pid}.json of {name} ignored: {words}"))
                }
                (Some((s, _)), true) => (
                    None,
                    format!(
                        "heard from {name} {incarnation}: Claude Code session file, {}",
                        s.as_str()
                    ),
                ),
            };
            if ignored.is_none() {
                seen.heard_at = Some(now);
            }
            if !same {
                let note = SignalNote {
                    agent: name.to_string(),
                    incarnation,
                    source: Some(Source::Claude),
                    event: Some(event.clone()),
                    said: said.as_ref().map(|(s, _)| s.clone()),
                    sent: Some(now),
                    age_ms: 0,
                    ignored: ignored.clone(),
                    reason,
                };
                records.push(self.journal.append(now, Record::Signal(note))?);
            }
            if let (Some((said, words)), None) = (said, ignored) {
                out.push(Signal {
                    agent: name,
                    incarnation,
                    at: now,
                    heard: Heard {
                        source: Source::Claude,
                        event,
                        said,
                        words: words.to_owned(),
                        via: Some(Via::SessionFile),
                        thread: None,
                    },
                });
            }
        }
        Ok(out)
    }
}

/// The session file of a process in the pane's tree: `(pid, status, trusted, why not)`.
fn read_one(dir: &Path, procs: &[(u32, u64)]) -> Option<(u32, String, bool, String)> {
    for &(pid, start) in procs {
        let path = dir.join(format!("{pid}.json"));
        let Ok(bytes) = read_regular(&path, MAX_SESSION_FILE, Links::Refuse) else {
            continue;
        };
        let Ok(Value::Object(file)) = serde_json::from_slice::<Value>(&bytes) else {
            return Some((pid, String::new(), false, "not a JSON object".into()));
        };
        let number = |key: &str| match file.get(key) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let status: String = file
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(32)
            .collect();
        if number("pid") != Some(u64::from(pid)) {
            return Some((
                pid,
                status,
                false,
                "its `pid` is not the process it is named for".into(),
            ));
        }
        if number("procStart") != Some(start) {
            return Some((
                pid,
                status,
                false,
                format!(
                    "its `procStart` is not the start of the live process {} (left by a process that died)",
                    pid
                ),
            ));
        }
        return Some((pid, status, true, String::new()));
    }
    None
}
