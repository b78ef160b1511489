//! `journal.jsonl`: append-only, one JSON object per line, each synced to disk before
//! the action it announces is carried out: events with reasons, intents and their
//! outcomes, warnings, and the agent records whenever they change materially (so a lost
//! snapshot can be rebuilt). Bounded: past a size it is rotated to `journal.1.jsonl`…
//! and the new file opens with a checkpoint of the whole Mind.

use crate::adapters::fs::{Links, open_regular};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::record::{Checkpoint, Entry, Failure, Record};
use super::{Line, StoreError, file};
use crate::engine::{Action, AgentName, AgentRecord, Mind, Time};

pub const FILE: &str = "journal.jsonl";

/// How much of the journal's end is read to find intents a dead owner left open.
const TAIL_BYTES: u64 = 512 * 1024;

#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
    /// Records appended through this handle and its clones: what changed since a
    /// count taken before.
    appended: Arc<AtomicU64>,
}

impl Journal {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            appended: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many records were appended through this handle and its clones.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Cuts a torn last line (a crash mid-append) off, so every line parses and the
    /// next record starts on a line of its own. A torn line's action never ran: its
    /// intent was not on disk yet. Called by a new owner before its first append.
    pub fn seal(&self) -> Result<(), StoreError> {
        let bytes = match crate::adapters::fs::read_regular(&self.path, u64::MAX, Links::Refuse) {
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
        let f = file::open_existing(&self.path).map_err(StoreError::io(&self.path))?;
        f.set_len(keep as u64)
            .and_then(|_| f.sync_all())
            .map_err(StoreError::io(&self.path))
    }

    /// Appends `{"t": now, "kind": …, …fields}` durably; returns the entry written.
    pub fn append(&self, now: Time, record: Record) -> Result<Entry, StoreError> {
        let entry = Entry::new(now, record);
        let text = entry.to_line().map_err(|e| StoreError::Encode {
            path: self.path.clone(),
            source: e,
        })?;
        if crate::store::failpoint::armed("mid-journal") {
            let _ = file::append_bytes(&self.path, &text.as_bytes()[..text.len() / 2]);
            crate::store::failpoint::abort("mid-journal");
        }
        file::append_line(&self.path, &text)?;
        self.appended.fetch_add(1, Ordering::Relaxed);
        Ok(entry)
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
        let mut intents: Vec<(String, Action)> = Vec::new();
        let mut answered: HashSet<String> = HashSet::new();
        for entry in read_tail(&self.path, TAIL_BYTES)? {
            match entry.record {
                Record::Intent { id, action } => intents.push((id, action)),
                Record::Done { id } | Record::Reconciled { id, .. } | Record::Failed(Failure { id: Some(id), .. }) => {
                    answered.insert(id);
                }
                _ => {}
            }
        }
        intents.retain(|(id, _)| !answered.contains(id));
        Ok(intents)
    }

    /// The Mind as the journal last recorded it: the last checkpoint, then every agent
    /// record written after it. `None` when the journal holds none.
    pub fn rebuild(&self) -> Result<Option<Mind>, StoreError> {
        let mut mind: Option<Mind> = None;
        for entry in read_journal(&self.path)? {
            match entry.record {
                Record::Checkpoint(Checkpoint::Mind { mind: m }) => mind = Some(*m),
                Record::Record { agent, record, stopped } => {
                    let m = mind.get_or_insert_with(Mind::default);
                    if stopped {
                        m.stopped.insert(agent.clone());
                    } else {
                        m.stopped.remove(&agent);
                    }
                    m.agents.insert(agent, *record);
                }
                _ => {}
            }
        }
        Ok(mind)
    }
}

/// Records of the last `bytes` of a journal (the first, probably partial, line dropped).
fn read_tail(path: &Path, bytes: u64) -> Result<Vec<Entry>, StoreError> {
    let mut f = match open_regular(path, Links::Refuse) {
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
    Ok(lines.filter_map(Entry::parse).collect())
}

/// Every known record of the journal at `path`, oldest first. A line that is no known
/// record (a torn line, a future kind) is skipped.
pub fn read_journal(path: &Path) -> Result<Vec<Entry>, StoreError> {
    Ok(read_lines(path)?.into_iter().filter_map(|l| l.entry).collect())
}

/// Every complete line of the journal at `path`, oldest first, each with its record
/// when it is a known one.
pub fn read_lines(path: &Path) -> Result<Vec<Line>, StoreError> {
    let file = match open_regular(path, Links::Refuse) {
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
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(StoreError::io(path))?;
        out.push(Line::new(String::from_utf8_lossy(&line).into_owned()));
    }
    Ok(out)
}

/// The part of an agent record worth journaling when it changes: not the counters and
/// hashes that move every poll.
pub fn material(rec: &AgentRecord, stopped: bool) -> Value {
    serde_json::to_value(Material::of(rec, stopped)).unwrap_or(Value::Null)
}

/// What [`material`] is made of, borrowed from the record.
#[derive(serde::Serialize)]
struct Material<'a> {
    incarnation: crate::engine::Incarnation,
    session: &'a str,
    lifecycle: crate::engine::Lifecycle,
    escalation: crate::engine::Escalation,
    since: Time,
    pane_pid: Option<u32>,
    restarts: u32,
    crashes: &'a [Time],
    failures_in_row: u32,
    cooldown_until: Option<Time>,
    rate_limit: &'a Option<crate::engine::RateLimit>,
    last_exit: Option<&'a crate::engine::LastExit>,
    stopped: bool,
}

impl<'a> Material<'a> {
    fn of(rec: &'a AgentRecord, stopped: bool) -> Self {
        Self {
            incarnation: rec.incarnation,
            session: &rec.session,
            lifecycle: rec.lifecycle(),
            escalation: rec.escalation(),
            since: rec.since,
            pane_pid: rec.pane_pid,
            restarts: rec.restarts,
            crashes: &rec.crashes,
            failures_in_row: rec.failures_in_row,
            cooldown_until: rec.cooldown_until(),
            rate_limit: &rec.rate_limit,
            last_exit: rec.last_exit(),
            stopped,
        }
    }
}

/// A fingerprint of [`material`]: equal for equal material states (within one
/// process), so what changed between passes is noticed without keeping each agent's
/// material state as JSON. Hashed field by field (it is computed for every agent on
/// every pass); a rate limit, rare and rich, is hashed as its JSON.
pub fn fingerprint(rec: &AgentRecord, stopped: bool) -> u64 {
    use std::hash::{Hash, Hasher};
    struct Hashing<'h>(&'h mut std::hash::DefaultHasher);
    impl std::io::Write for Hashing<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Every field, by name: one added to `Material` cannot be left out of its hash.
    let Material {
        incarnation,
        session,
        lifecycle,
        escalation,
        since,
        pane_pid,
        restarts,
        crashes,
        failures_in_row,
        cooldown_until,
        rate_limit,
        last_exit,
        stopped,
    } = Material::of(rec, stopped);
    let mut hasher = std::hash::DefaultHasher::new();
    (incarnation, session, lifecycle, escalation, since, pane_pid).hash(&mut hasher);
    (restarts, crashes, failures_in_row, cooldown_until, last_exit, stopped).hash(&mut hasher);
    if let Some(limit) = rate_limit {
        // Writing to a hasher cannot fail; a value that cannot be written hashes as
        // what was written of it.
        let _ = serde_json::to_writer(Hashing(&mut hasher), limit);
    }
    hasher.finish()
}

/// The material fingerprint of every agent, to notice what changed between passes.
pub fn materials(mind: &Mind) -> BTreeMap<AgentName, u64> {
    mind.agents
        .iter()
        .map(|(n, r)| (n.clone(), fingerprint(r, mind.stopped.contains(n))))
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

    fn warning(message: &str) -> Record {
        Record::Warning {
            message: message.into(),
        }
    }

    fn v1() -> Journal {
        Journal::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/journal.jsonl"))
    }

    #[test]
    fn the_fingerprint_moves_with_material_state_and_never_with_counters() {
        let rec = AgentRecord::new(Incarnation(1), "s".into(), Time::from_millis(1), "r".into());
        let print = |r: &AgentRecord| fingerprint(r, false);
        let mut counted = rec.clone();
        counted.reason = "idle for 13 unchanged checks".into();
        if let Some(live) = counted.live_mut() {
            live.unchanged_checks += 13;
            live.screen_hash = Some("0123".into());
        }
        assert_eq!(print(&rec), print(&counted), "counters and reasons are not material");
        assert_ne!(print(&rec), fingerprint(&rec, true), "a stop is");
        let mut crashed = rec.clone();
        crashed.crashes.push(Time::from_millis(5));
        assert_ne!(print(&rec), print(&crashed), "a crash is");
        let mut moved = rec.clone();
        moved.pane_pid = Some(42);
        assert_ne!(print(&rec), print(&moved), "another pane process is");
        let limit: crate::engine::RateLimit = serde_json::from_value(serde_json::json!({
            "until": "2026-12-01T10:00:00Z", "renewals": 0, "resumed": false, "line": "limit"
        }))
        .unwrap();
        let mut limited = rec.clone();
        limited.rate_limit = Some(limit.clone());
        assert_ne!(print(&rec), print(&limited), "a rate limit is");
        let mut renewed = limited.clone();
        if let Some(l) = renewed.rate_limit.as_mut() {
            l.line = "limit again".into();
        }
        assert_ne!(print(&limited), print(&renewed), "and so is every part of it");
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_every_line_parses() {
        let (_dir, journal) = journal();
        journal.append(Time::from_millis(0), warning("a")).unwrap();
        journal.append(Time::from_millis(1), warning("m")).unwrap();
        let mut raw = std::fs::read_to_string(journal.path()).unwrap();
        raw.push_str("{\"t\": \"2026-");
        std::fs::write(journal.path(), raw).unwrap();
        journal.seal().unwrap();
        journal.append(Time::from_millis(2), warning("b")).unwrap();
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert!(text.lines().all(|l| Entry::parse(l).is_some()), "{text}");
        assert_eq!(read_journal(journal.path()).unwrap().len(), 3);
    }

    #[test]
    fn a_line_is_written_as_vigil_0_1_wrote_it() {
        let (_dir, journal) = journal();
        let done = Record::Done { id: "1-1".into() };
        journal.append(Time::from_millis(1_800_000_000_000), done).unwrap();
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert_eq!(
            text,
            "{\"id\":\"1-1\",\"kind\":\"done\",\"t\":\"2027-01-15T08:00:00Z\"}\n"
        );
    }

    #[test]
    fn lines_that_are_no_known_record_are_skipped() {
        let (_dir, journal) = journal();
        journal.append(Time::from_millis(0), warning("a")).unwrap();
        let future = "{\"kind\":\"hologram\",\"t\":\"2030-01-01T00:00:00Z\"}\nnot json at all\n";
        file::append_bytes(journal.path(), future.as_bytes()).unwrap();
        journal.append(Time::from_millis(1), warning("b")).unwrap();
        assert_eq!(read_journal(journal.path()).unwrap().len(), 2);
        let lines = read_lines(journal.path()).unwrap();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].entry.is_none() && lines[1].raw.contains("hologram"));
        assert!(journal.open_intents().unwrap().is_empty());
        assert_eq!(journal.rebuild().unwrap(), None);
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
        let intent = |id: &str, inc| Record::Intent {
            id: id.into(),
            action: start(inc),
        };
        journal.append(t, intent("1-1", 1)).unwrap();
        journal.append(t, Record::Done { id: "1-1".into() }).unwrap();
        journal.append(t, intent("1-2", 2)).unwrap();
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
        let checkpoint = Checkpoint::Mind { mind: Box::new(mind) };
        journal.append(t, Record::Checkpoint(checkpoint)).unwrap();
        let mut later = AgentRecord::new(Incarnation(4), "p-a".into(), t, "y".into());
        later.crashes = vec![Time::from_millis(77)];
        let record = Record::Record {
            agent: a.clone(),
            record: Box::new(later),
            stopped: true,
        };
        journal.append(t, record).unwrap();
        let rebuilt = journal.rebuild().unwrap().unwrap();
        assert_eq!(rebuilt.agents[&a].incarnation, Incarnation(4));
        assert_eq!(rebuilt.agents[&a].crashes, vec![Time::from_millis(77)]);
        assert!(rebuilt.stopped.contains(&a));
    }

    #[test]
    fn every_line_of_a_v1_journal_is_a_known_record() {
        let text = std::fs::read_to_string(v1().path()).unwrap();
        for line in text.lines() {
            let entry = Entry::parse(line).unwrap_or_else(|| panic!("not a record: {line}"));
            let written = entry.to_line().unwrap();
            if let Record::Record { .. } = entry.record {
                // An agent record migrates to schema v2 as it is read; what it says stays.
                assert_eq!(Entry::parse(&written), Some(entry), "{line}");
            } else {
                let again: Value = serde_json::from_str(&written).unwrap();
                assert_eq!(
                    again,
                    serde_json::from_str::<Value>(line).unwrap(),
                    "written back the same"
                );
            }
        }
    }

    #[test]
    fn a_v1_journal_rebuilds_its_six_agents_and_has_no_open_intent() {
        let journal = v1();
        let mind = journal.rebuild().unwrap().unwrap();
        let names: Vec<&str> = mind.agents.keys().map(AgentName::as_str).collect();
        assert_eq!(names, ["clash", "crasher", "finisher", "limited", "waiter", "worker"]);
        assert_eq!(
            mind.stopped.iter().map(AgentName::as_str).collect::<Vec<_>>(),
            ["waiter", "worker"]
        );
        assert_eq!(journal.open_intents().unwrap(), []);
    }

    #[test]
    fn rotation_keeps_n_old_files() {
        let (dir, journal) = journal();
        for round in 0..5 {
            journal
                .append(Time::from_millis(round), warning(&"x".repeat(100)))
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
