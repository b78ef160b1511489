//! `journal.jsonl`: append-only, one JSON object per line, each synced to disk before
//! the action it announces is carried out: events with reasons, intents and their
//! outcomes, warnings, and the agent records whenever they change materially (so a lost
//! snapshot can be rebuilt). Bounded: past a size it is rotated to `journal.1.jsonl`…
//! and the new file opens with a checkpoint of the whole Mind.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{StoreError, file};
use crate::engine::{Action, AgentName, AgentRecord, Mind, Time};

pub const FILE: &str = "journal.jsonl";

/// How much of the journal's end is read to find intents a dead owner left open.
const TAIL_BYTES: u64 = 512 * 1024;

#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cuts a torn last line (a crash mid-append) off, so every line parses and the
    /// next record starts on a line of its own. A torn line's action never ran: its
    /// intent was not on disk yet. Called by a new owner before its first append.
    pub fn seal(&self) -> Result<(), StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    source: e,
                });
            }
        };
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            return Ok(());
        }
        let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(StoreError::io(&self.path))?;
        f.set_len(keep as u64)
            .and_then(|_| f.sync_all())
            .map_err(StoreError::io(&self.path))
    }

    /// Appends `{"t": now, "kind": kind, ...body}` durably.
    pub fn append(&self, now: Time, kind: &str, body: &impl Serialize) -> Result<Value, StoreError> {
        let mut line = Map::new();
        line.insert("t".into(), Value::String(now.to_string()));
        line.insert("kind".into(), Value::String(kind.into()));
        match serde_json::to_value(body) {
            Ok(Value::Object(fields)) => line.extend(fields),
            Ok(Value::Null) => {}
            Ok(other) => {
                line.insert("value".into(), other);
            }
            Err(e) => {
                line.insert("error".into(), Value::String(format!("unserializable record: {e}")));
            }
        }
        let value = Value::Object(line);
        let text = value.to_string();
        if crate::store::failpoint::armed("mid-journal") {
            let _ = file::append_bytes(&self.path, &text.as_bytes()[..text.len() / 2]);
            crate::store::failpoint::abort("mid-journal");
        }
        file::append_line(&self.path, &text)?;
        Ok(value)
    }

    /// Rotates when the journal has grown past `max_bytes`: `journal.jsonl` becomes
    /// `journal.1.jsonl` (older ones shift up, the oldest beyond `keep` is dropped).
    /// Returns whether it rotated; the caller then opens the new file with a checkpoint.
    pub fn rotate_if_over(&self, max_bytes: u64, keep: usize) -> Result<bool, StoreError> {
        let size = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(_) => return Ok(false),
        };
        if size < max_bytes {
            return Ok(false);
        }
        let numbered = |n: usize| self.path.with_extension(format!("{n}.jsonl"));
        let _ = std::fs::remove_file(numbered(keep.max(1)));
        for n in (1..keep.max(1)).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1)).map_err(StoreError::io(&from))?;
            }
        }
        std::fs::rename(&self.path, numbered(1)).map_err(StoreError::io(&self.path))?;
        Ok(true)
    }

    /// Intents in the journal's tail that no `done`, `failed` or `reconciled` record
    /// answers: what the last owner was doing when it died.
    pub fn open_intents(&self) -> Result<Vec<(String, Action)>, StoreError> {
        let mut intents: Vec<(String, Value)> = Vec::new();
        let mut answered: HashSet<String> = HashSet::new();
        for record in read_tail(&self.path, TAIL_BYTES)? {
            let id = record["id"].as_str().unwrap_or_default().to_owned();
            match record["kind"].as_str() {
                Some("intent") => intents.push((id, record["action"].clone())),
                Some("done" | "failed" | "reconciled") => {
                    answered.insert(id);
                }
                _ => {}
            }
        }
        Ok(intents
            .into_iter()
            .filter(|(id, _)| !answered.contains(id))
            .filter_map(|(id, action)| serde_json::from_value(action).ok().map(|a| (id, a)))
            .collect())
    }

    /// The Mind as the journal last recorded it: the last checkpoint, then every agent
    /// record written after it. `None` when the journal holds none.
    pub fn rebuild(&self) -> Result<Option<Mind>, StoreError> {
        let mut mind: Option<Mind> = None;
        for record in read_journal(&self.path)? {
            match record["kind"].as_str() {
                Some("checkpoint") => {
                    if let Ok(m) = serde_json::from_value(record["mind"].clone()) {
                        mind = Some(m);
                    }
                }
                Some("record") => {
                    let name: Option<AgentName> = serde_json::from_value(record["agent"].clone()).ok();
                    let rec: Option<AgentRecord> = serde_json::from_value(record["record"].clone()).ok();
                    if let (Some(name), Some(rec)) = (name, rec) {
                        let m = mind.get_or_insert_with(Mind::default);
                        if record["stopped"] == Value::Bool(true) {
                            m.stopped.insert(name.clone());
                        } else {
                            m.stopped.remove(&name);
                        }
                        m.agents.insert(name, rec);
                    }
                }
                _ => {}
            }
        }
        Ok(mind)
    }
}

/// Records of the last `bytes` of a journal (the first, probably partial, line dropped).
fn read_tail(path: &Path, bytes: u64) -> Result<Vec<Value>, StoreError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: e,
            });
        }
    };
    let len = f.metadata().map_err(StoreError::io(path))?.len();
    let start = len.saturating_sub(bytes);
    f.seek(SeekFrom::Start(start)).map_err(StoreError::io(path))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(StoreError::io(path))?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.lines();
    if start > 0 {
        lines.next();
    }
    Ok(lines.filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Every complete record of the journal at `path`, oldest first. A line that does not
/// parse is skipped.
pub fn read_journal(path: &Path) -> Result<Vec<Value>, StoreError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(StoreError::io(path))?;
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The part of an agent record worth journaling when it changes: not the counters and
/// hashes that move every poll.
pub fn material(rec: &AgentRecord, stopped: bool) -> Value {
    serde_json::json!({
        "incarnation": rec.incarnation,
        "session": rec.session,
        "lifecycle": rec.lifecycle,
        "escalation": rec.escalation,
        "since": rec.since,
        "pane_pid": rec.pane_pid,
        "restarts": rec.restarts,
        "crashes": rec.crashes,
        "failures_in_row": rec.failures_in_row,
        "cooldown_until": rec.cooldown_until,
        "rate_limit": rec.rate_limit,
        "last_exit": rec.last_exit,
        "stopped": stopped,
    })
}

/// The material state of every agent, to notice what changed between passes.
pub fn materials(mind: &Mind) -> BTreeMap<AgentName, Value> {
    mind.agents
        .iter()
        .map(|(n, r)| (n.clone(), material(r, mind.stopped.contains(n))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Incarnation;

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join(FILE));
        (dir, j)
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_every_line_parses() {
        let (_dir, journal) = journal();
        journal
            .append(
                Time::from_millis(0),
                "event",
                &serde_json::json!({"agent": "a", "reason": "r"}),
            )
            .unwrap();
        journal
            .append(Time::from_millis(1), "warning", &serde_json::json!({"message": "m"}))
            .unwrap();
        let mut raw = std::fs::read_to_string(journal.path()).unwrap();
        raw.push_str("{\"t\": \"2026-");
        std::fs::write(journal.path(), raw).unwrap();
        journal.seal().unwrap();
        journal
            .append(Time::from_millis(2), "event", &serde_json::json!({"agent": "b"}))
            .unwrap();
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert!(text.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{text}");
        assert_eq!(read_journal(journal.path()).unwrap().len(), 3);
    }

    #[test]
    fn intents_without_an_outcome_are_open() {
        let (_dir, journal) = journal();
        let start = |inc: u32| Action::Start {
            agent: AgentName::new("a").unwrap(),
            incarnation: Incarnation(inc),
            session: "p-a".into(),
            reason: "r".into(),
        };
        let t = Time::from_millis(0);
        journal
            .append(t, "intent", &serde_json::json!({"id": "1-1", "action": start(1)}))
            .unwrap();
        journal.append(t, "done", &serde_json::json!({"id": "1-1"})).unwrap();
        journal
            .append(t, "intent", &serde_json::json!({"id": "1-2", "action": start(2)}))
            .unwrap();
        let open = journal.open_intents().unwrap();
        assert_eq!(open, vec![("1-2".to_owned(), start(2))]);
    }

    #[test]
    fn the_mind_is_rebuilt_from_the_last_checkpoint_and_later_records() {
        let (_dir, journal) = journal();
        let t = Time::from_millis(0);
        let a = AgentName::new("a").unwrap();
        let mut mind = Mind::default();
        mind.agents
            .insert(a.clone(), AgentRecord::new(Incarnation(1), "p-a".into(), t, "x".into()));
        journal
            .append(t, "checkpoint", &serde_json::json!({ "mind": mind }))
            .unwrap();
        let mut later = AgentRecord::new(Incarnation(4), "p-a".into(), t, "y".into());
        later.crashes = vec![Time::from_millis(77)];
        journal
            .append(
                t,
                "record",
                &serde_json::json!({"agent": a, "record": later, "stopped": true}),
            )
            .unwrap();
        let rebuilt = journal.rebuild().unwrap().unwrap();
        assert_eq!(rebuilt.agents[&a].incarnation, Incarnation(4));
        assert_eq!(rebuilt.agents[&a].crashes, vec![Time::from_millis(77)]);
        assert!(rebuilt.stopped.contains(&a));
    }

    #[test]
    fn rotation_keeps_n_old_files() {
        let (dir, journal) = journal();
        for round in 0..5 {
            journal
                .append(
                    Time::from_millis(round),
                    "warning",
                    &serde_json::json!({"message": "x".repeat(100)}),
                )
                .unwrap();
            assert!(journal.rotate_if_over(50, 2).unwrap());
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["journal.1.jsonl", "journal.2.jsonl"]);
        assert!(!journal.rotate_if_over(50, 2).unwrap(), "nothing to rotate");
    }
}
