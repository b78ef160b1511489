//! `state.json`: the Mind, snapshotted atomically with a schema version. A snapshot
//! that is corrupt, truncated or of an unknown version is moved aside to
//! `state.json.corrupt-<time>` and the Mind rebuilt from what tmux shows; the caller
//! is told why. Never a silent reset.
//!
//! Schema versions: 1 (vigil 0.1: every agent record one flat struct) and 2 (each
//! record in its phase, live or ended, with its hold as a field). A v1 snapshot is
//! migrated when read ([`migrate`]); it is written back as v2 at the next save.

use crate::adapters::fs::{Links, read_regular};
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, file};
use crate::engine::mind::FleetRestarts;
use crate::engine::mind::v1::RecordV1;
use crate::engine::{AgentName, Mind, Time};

pub(super) const FILE: &str = "state.json";
/// Bumped whenever the Mind's shape changes incompatibly; [`migrate`] reads every
/// earlier one.
pub const VERSION: u32 = 2;

/// The Mind of schema v1: its agent records are of v1's shape.
#[derive(Deserialize)]
struct MindV1 {
    agents: BTreeMap<AgentName, RecordV1>,
    #[serde(default)]
    stopped: BTreeSet<AgentName>,
    #[serde(default)]
    strays: BTreeSet<String>,
    #[serde(default)]
    fleet: FleetRestarts,
}

/// The Mind a snapshot of schema `version` holds, in today's shape; `Err` says why it
/// cannot be read.
pub fn migrate(version: u32, mind: serde_json::Value) -> Result<Mind, String> {
    match version {
        VERSION => serde_json::from_value(mind).map_err(|e| e.to_string()),
        1 => {
            let v1: MindV1 = serde_json::from_value(mind).map_err(|e| e.to_string())?;
            Ok(Mind {
                agents: v1.agents.into_iter().map(|(n, r)| (n, r.into_current())).collect(),
                stopped: v1.stopped,
                strays: v1.strays,
                fleet: v1.fleet,
                host: Default::default(),
            })
        }
        v => Err(format!(
            "schema version {v} is not one this vigil reads (1 to {VERSION})"
        )),
    }
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: u32,
    saved_at: Time,
    mind: &'a Mind,
}

#[derive(Deserialize)]
struct SnapshotIn {
    version: u32,
    mind: serde_json::Value,
}

/// A loaded Mind, and the warning to give when the snapshot could not be used.
#[derive(Debug, Default)]
pub struct Loaded {
    pub mind: Mind,
    pub warning: Option<String>,
}

impl Store {
    pub fn save_mind(&self, mind: &Mind, now: Time, durability: file::Durability) -> Result<(), StoreError> {
        let path = self.path(FILE);
        let snapshot = SnapshotOut {
            version: VERSION,
            saved_at: now,
            mind,
        };
        if crate::store::failpoint::armed("mid-snapshot") {
            let bytes = serde_json::to_vec(&snapshot).unwrap_or_default();
            let _ = std::fs::write(file::temp_path(&path), &bytes[..bytes.len() / 2]);
            crate::store::failpoint::abort("mid-snapshot");
        }
        // Written as it is serialized: a thousand agents' Mind is never held as text.
        file::rewrite_with(&path, durability, |out| {
            serde_json::to_writer(out, &snapshot).map_err(std::io::Error::from)
        })
    }

    /// Reads the snapshot without touching it (for readers such as `vigil status`):
    /// `Ok(None)` when there is none yet, `Err` saying what is wrong with it.
    pub fn peek_mind(&self) -> Result<Option<(Mind, Time)>, String> {
        #[derive(Deserialize)]
        struct Peek {
            version: u32,
            saved_at: Time,
            mind: serde_json::Value,
        }
        let path = self.path(FILE);
        let read = || match read_regular(&path, MAX_SNAPSHOT, Links::Refuse) {
            Ok(bytes) => Ok(Some(serde_json::from_slice::<Peek>(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        // A reader that held the last file open while the owner rewrote it (it is the
        // owner's next temp file) read half of a rewrite: the file now standing is whole.
        let peek = match read()? {
            Some(Err(_)) => read()?,
            first => first,
        };
        let Some(peek) = peek else { return Ok(None) };
        let peek = peek.map_err(|e| format!("{} does not parse: {e}", path.display()))?;
        if !(1..=VERSION).contains(&peek.version) {
            return Err(format!(
                "{} has schema version {}; this vigil reads 1 to {VERSION}",
                path.display(),
                peek.version
            ));
        }
        let mind = migrate(peek.version, peek.mind)
            .map_err(|e| format!("{} does not fit schema v{}: {e}", path.display(), peek.version))?;
        Ok(Some((mind, peek.saved_at)))
    }

    /// Reads the snapshot; a missing one is an empty Mind. An unusable one is
    /// quarantined (renamed with `now` in its name) and an empty Mind returned with a
    /// warning saying where the old file went.
    pub fn load_mind(&self, now: Time) -> Result<Loaded, StoreError> {
        let path = self.path(FILE);
        let read = match read_regular(&path, MAX_SNAPSHOT, Links::Refuse) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
            // A link, a FIFO or a huge file in its place: not vigil's snapshot; set aside.
            Err(e) if not_a_snapshot(&e) => Err(format!("it is not a regular file vigil wrote ({e})")),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let problem = match read.map(|bytes| serde_json::from_slice::<SnapshotIn>(&bytes)) {
            Err(why) => why,
            Ok(parsed) => match parsed {
                Err(e) => format!("it does not parse ({e})"),
                Ok(s) if !(1..=VERSION).contains(&s.version) => {
                    format!(
                        "its schema version is {} and this vigil reads versions 1 to {VERSION}",
                        s.version
                    )
                }
                Ok(s) => match migrate(s.version, s.mind) {
                    Ok(mind) => return Ok(Loaded { mind, warning: None }),
                    Err(e) => format!("its content does not fit schema v{} ({e})", s.version),
                },
            },
        };
        let stamp = now.to_string().replace(':', "-");
        let aside = self.path(&format!("{FILE}.corrupt-{stamp}"));
        std::fs::rename(&path, &aside).map_err(StoreError::io(&path))?;
        Ok(Loaded {
            mind: Mind::default(),
            warning: Some(format!(
                "state.json was unusable: {problem}; moved to {} and rebuilding from what tmux shows",
                aside.display()
            )),
        })
    }
}

/// Largest snapshot read; a Mind of a thousand agents is well under a megabyte.
const MAX_SNAPSHOT: u64 = 256 * 1024 * 1024;

/// Whether a read failed because something other than a plain file stands there (a
/// FIFO or device, a symlink refused by `O_NOFOLLOW`, a file over the limit).
fn not_a_snapshot(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
    ) || e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{
        Activity, AgentRecord, EndedLifecycle, Escalation, Hold, Incarnation, Lifecycle, LimitKind, Phase, Wait,
    };
    use crate::store::Journal;

    const V1_STATE: &str = include_str!("../../fixtures/v1/state.json");

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/v1")
            .join(name)
    }

    fn t(rfc3339: &str) -> Time {
        Time::from_millis(rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond())
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_saved_mind_loads_back_the_same() {
        let (_dir, store) = store();
        let mut mind = Mind::default();
        let rec = AgentRecord::new(Incarnation(3), "p-a".into(), Time::from_millis(1000), "r".into());
        mind.agents.insert(AgentName::new("a").unwrap(), rec);
        store
            .save_mind(&mind, Time::from_millis(2000), file::Durability::Synced)
            .unwrap();
        let loaded = store.load_mind(Time::from_millis(3000)).unwrap();
        assert_eq!(loaded.mind, mind);
        assert!(loaded.warning.is_none());
    }

    #[test]
    fn a_snapshot_or_journal_line_naming_no_valid_agent_is_set_aside_not_obeyed() {
        let (dir, store) = store();
        let mut mind = Mind::default();
        let rec = AgentRecord::new(Incarnation(1), "p-a".into(), Time::from_millis(1000), "r".into());
        mind.agents.insert(AgentName::new("a").unwrap(), rec.clone());
        store
            .save_mind(&mind, Time::from_millis(2000), file::Durability::Synced)
            .unwrap();
        let path = dir.path().join("state.json");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"a\":", "\"../../etc\":");
        std::fs::write(&path, text).unwrap();
        let loaded = store.load_mind(Time::from_millis(3000)).unwrap();
        let warning = loaded.warning.unwrap();
        assert!(warning.contains("is not an agent name"), "{warning}");
        assert_eq!(loaded.mind, Mind::default());

        let journal = store.journal();
        let good = crate::store::Entry::new(
            Time::from_millis(1),
            crate::store::Record::Note {
                agent: AgentName::new("a").unwrap(),
                reason: "x".into(),
            },
        );
        let line = good.to_line().unwrap();
        let bad = line.replace("\"agent\":\"a\"", "\"agent\":\"a/../b\"");
        assert_ne!(line, bad);
        std::fs::write(journal.path(), format!("{bad}\n{line}\n")).unwrap();
        assert_eq!(crate::store::read_journal(journal.path()).unwrap(), [good]);
    }

    #[test]
    fn a_v2_snapshot_written_before_host_failures_were_known_still_loads() {
        let (dir, store) = store();
        let mut mind = Mind::default();
        let mut rec = AgentRecord::new(Incarnation(2), "p-a".into(), Time::from_millis(1000), "r".into());
        let exit = crate::engine::LastExit::because("exited with status 3");
        assert!(rec.finish(EndedLifecycle::Zombie, exit, None));
        mind.agents.insert(AgentName::new("a").unwrap(), rec);
        store
            .save_mind(&mind, Time::from_millis(2000), file::Durability::Synced)
            .unwrap();
        // The file as vigil wrote it before: no `host` in the Mind nor in an exit.
        let path = dir.path().join(FILE);
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json["mind"].as_object_mut().unwrap().remove("host").unwrap();
        let text = json.to_string();
        assert!(!text.contains("\"host\""), "{text}");
        std::fs::write(&path, text).unwrap();
        let loaded = store.load_mind(Time::from_millis(3000)).unwrap();
        assert!(loaded.warning.is_none(), "{:?}", loaded.warning);
        assert_eq!(loaded.mind, mind);
        assert_eq!(loaded.mind.host, crate::engine::HostRecord::default());
    }

    #[test]
    fn unusable_snapshots_are_moved_aside_and_the_user_is_told() {
        for (what, content) in [
            ("truncated", "{\"version\": 1, \"mind\": {\"agen"),
            ("garbage", "\u{0}\u{1}not json at all"),
            ("future", "{\"version\": 999, \"mind\": {}}"),
        ] {
            let (dir, store) = store();
            std::fs::write(dir.path().join("state.json"), content).unwrap();
            let loaded = store.load_mind(Time::from_millis(0)).unwrap();
            assert_eq!(loaded.mind, Mind::default(), "{what}");
            let warning = loaded.warning.unwrap();
            assert!(warning.contains("moved to"), "{what}: {warning}");
            let aside: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("state.json.corrupt-"))
                .collect();
            assert_eq!(aside.len(), 1, "{what}");
            assert_eq!(
                std::fs::read_to_string(dir.path().join(&aside[0])).unwrap(),
                content,
                "kept byte for byte"
            );
            if what == "future" {
                assert!(warning.contains("version is 999"), "{warning}");
            }
        }
    }

    /// The state vigil 0.1 wrote, read by this vigil: six agents, each in its phase.
    fn check_v1_fixture(mind: &Mind) {
        let rec = |n: &str| &mind.agents[&AgentName::new(n).unwrap()];
        assert_eq!(mind.agents.len(), 6);
        assert!(mind.stopped.contains(&AgentName::new("worker").unwrap()));
        assert_eq!(mind.stopped.len(), 1);
        assert_eq!(mind.fleet.times.len(), 4);

        let worker = rec("worker");
        assert_eq!(worker.lifecycle(), Lifecycle::Completed);
        assert_eq!(worker.last_exit().unwrap().reason, "stopped by the user");
        assert!(worker.hold().is_none());

        let crasher = rec("crasher");
        assert_eq!(
            (crasher.incarnation, crasher.lifecycle()),
            (Incarnation(3), Lifecycle::Zombie)
        );
        assert_eq!(crasher.crashes.len(), 3);
        assert_eq!(crasher.restarts, 2);
        assert_eq!(
            crasher.hold(),
            Some(&Hold::Until {
                at: t("2026-12-01T09:47:57.776Z"),
                cause: Wait::CrashLoop { crashes: 3 }
            })
        );
        assert_eq!(crasher.cooldown_until(), Some(t("2026-12-01T09:47:57.776Z")));
        let exit = crasher.last_exit().unwrap();
        assert_eq!(exit.code, Some(3));
        assert_eq!(exit.last_lines.len(), 2);
        assert_eq!(crasher.activity(), None);
        assert_eq!(crasher.unchanged_checks(), 0);
        assert_eq!(
            crasher.last_change(),
            t("2026-12-01T09:45:57.575Z"),
            "kept from its last look"
        );
        assert_eq!(crasher.pane_pid, Some(4808));

        let finisher = rec("finisher");
        assert_eq!(
            (finisher.incarnation, finisher.lifecycle()),
            (Incarnation(2), Lifecycle::Completed)
        );
        assert_eq!(finisher.last_exit().unwrap().code, Some(0));
        assert!(finisher.hold().is_none());

        let limited = rec("limited");
        assert_eq!(limited.lifecycle(), Lifecycle::Zombie);
        let rl = limited.rate_limit.as_ref().unwrap();
        assert_eq!(rl.kind, LimitKind::Throttle);
        assert_eq!(
            rl.until,
            t("2026-12-01T10:45:55.966Z"),
            "a 1h throttle, kept past its death"
        );
        assert!(limited.hold().is_none(), "no backoff after its first failure");

        let clash = rec("clash");
        assert_eq!(clash.lifecycle(), Lifecycle::Zombie);
        assert!(clash.last_exit().unwrap().reason.starts_with("could not start: "));
        assert!(matches!(
            clash.hold(),
            Some(Hold::Until {
                cause: Wait::CrashLoop { crashes: 3 },
                ..
            })
        ));

        let waiter = rec("waiter");
        let Phase::Live(live) = waiter.phase() else {
            panic!("waiter is live: {waiter:?}")
        };
        assert_eq!(waiter.lifecycle(), Lifecycle::Working);
        assert_eq!(live.activity, Some(Activity::Active));
        assert_eq!(live.nudges, 1);
        assert_eq!(live.escalation, Escalation::None);
        assert_eq!(waiter.last_change(), t("2026-12-01T09:46:23.407Z"));
    }

    #[test]
    fn a_v1_snapshot_is_migrated_when_loaded_and_saved_back_as_v2() {
        let (dir, store) = store();
        std::fs::write(dir.path().join("state.json"), V1_STATE).unwrap();
        let (peeked, saved_at) = store.peek_mind().unwrap().unwrap();
        assert_eq!(saved_at, t("2026-12-01T09:46:23.407Z"));
        check_v1_fixture(&peeked);
        let loaded = store.load_mind(Time::from_millis(0)).unwrap();
        assert!(loaded.warning.is_none(), "{:?}", loaded.warning);
        assert_eq!(loaded.mind, peeked);
        store
            .save_mind(&loaded.mind, Time::from_millis(1), file::Durability::Synced)
            .unwrap();
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
        assert_eq!(saved["version"], VERSION);
        assert!(
            saved["mind"]["agents"]["crasher"]["phase"]["ended"]["hold"].is_object(),
            "{saved}"
        );
        let again = store.load_mind(Time::from_millis(2)).unwrap();
        assert_eq!(again.mind, loaded.mind);
        check_v1_fixture(&again.mind);
    }

    #[test]
    fn a_v1_crash_loop_reason_that_only_quotes_the_words_is_a_backoff() {
        let mut state: serde_json::Value = serde_json::from_str(V1_STATE).unwrap();
        let crasher = &mut state["mind"]["agents"]["crasher"];
        crasher["reason"] =
            "zombie: exited with status 3; last words: «zombie (exited with status 3); crash loop: »".into();
        let mind = migrate(1, state["mind"].take()).unwrap();
        let hold = mind.agents[&AgentName::new("crasher").unwrap()].hold().cloned();
        assert!(
            matches!(
                hold,
                Some(Hold::Until {
                    cause: Wait::Backoff,
                    ..
                })
            ),
            "{hold:?}"
        );
    }

    #[test]
    fn every_v1_journal_record_still_deserializes_and_the_journal_rebuilds() {
        let text = std::fs::read_to_string(fixture("journal.jsonl")).unwrap();
        let mut records = 0;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["kind"] == "record" {
                let rec: AgentRecord = serde_json::from_value(v["record"].clone()).unwrap();
                assert_eq!(
                    rec.lifecycle(),
                    serde_json::from_value(v["record"]["lifecycle"].clone()).unwrap()
                );
                let material = crate::store::material(&rec, false);
                assert_eq!(material["lifecycle"], v["record"]["lifecycle"]);
                assert_eq!(material["cooldown_until"], v["record"]["cooldown_until"]);
                assert_eq!(material["last_exit"], v["record"]["last_exit"]);
                assert_eq!(material["pane_pid"], v["record"]["pane_pid"]);
                records += 1;
            }
        }
        assert_eq!(records, 31);
        let mind = Journal::new(fixture("journal.jsonl")).rebuild().unwrap().unwrap();
        assert!(!mind.agents.is_empty());
        let crasher = &mind.agents[&AgentName::new("crasher").unwrap()];
        assert_eq!(crasher.lifecycle(), Lifecycle::Zombie);
        assert!(matches!(
            crasher.ended().map(|e| e.lifecycle),
            Some(EndedLifecycle::Zombie)
        ));
    }

    #[test]
    fn a_v2_record_has_no_field_of_a_phase_it_is_not_in() {
        let mind = migrate(
            1,
            serde_json::from_str::<serde_json::Value>(V1_STATE).unwrap()["mind"].take(),
        )
        .unwrap();
        let json = serde_json::to_value(&mind).unwrap();
        let crasher = &json["agents"]["crasher"];
        for gone in [
            "activity",
            "screen_hash",
            "unchanged_checks",
            "nudges",
            "lifecycle",
            "cooldown_until",
        ] {
            assert!(crasher.get(gone).is_none(), "{gone} in {crasher}");
        }
        assert!(crasher["phase"]["ended"].get("activity").is_none());
        assert_eq!(json["agents"]["waiter"]["phase"]["live"]["lifecycle"], "working");
    }

    #[test]
    fn a_symlink_or_fifo_in_place_of_the_snapshot_is_set_aside_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, store.path(FILE)).unwrap();
        let loaded = store.load_mind(Time::from_millis(0)).unwrap();
        assert!(loaded.warning.unwrap().contains("not a regular file"));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(store.path(FILE))
                .status()
                .unwrap()
                .success()
        );
        let loaded = store.load_mind(Time::from_millis(1)).unwrap();
        assert!(loaded.warning.unwrap().contains("a FIFO"));
        assert!(!store.path(FILE).exists());
    }
}
