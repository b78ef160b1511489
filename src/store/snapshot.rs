//! `state.json`: the Mind, snapshotted atomically with a schema version. A snapshot
//! that is corrupt, truncated or of an unknown version is moved aside to
//! `state.json.corrupt-<time>` and the Mind rebuilt from what tmux shows; the caller
//! is told why. Never a silent reset.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, file};
use crate::engine::{Mind, Time};

const FILE: &str = "state.json";
/// Bumped whenever the Mind's shape changes incompatibly.
pub const VERSION: u32 = 1;

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
    pub fn save_mind(&self, mind: &Mind, now: Time) -> Result<(), StoreError> {
        let path = self.path(FILE);
        let snapshot = SnapshotOut {
            version: VERSION,
            saved_at: now,
            mind,
        };
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        if crate::store::failpoint::armed("mid-snapshot") {
            let _ = std::fs::write(file::temp_path(&path), &bytes[..bytes.len() / 2]);
            crate::store::failpoint::abort("mid-snapshot");
        }
        file::write_atomic(&path, &bytes)
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
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let peek: Peek =
            serde_json::from_slice(&bytes).map_err(|e| format!("{} does not parse: {e}", path.display()))?;
        if peek.version != VERSION {
            return Err(format!(
                "{} has schema version {}; this vigil reads {VERSION}",
                path.display(),
                peek.version
            ));
        }
        let mind = serde_json::from_value(peek.mind)
            .map_err(|e| format!("{} does not fit the schema: {e}", path.display()))?;
        Ok(Some((mind, peek.saved_at)))
    }

    /// Reads the snapshot; a missing one is an empty Mind. An unusable one is
    /// quarantined (renamed with `now` in its name) and an empty Mind returned with a
    /// warning saying where the old file went.
    pub fn load_mind(&self, now: Time) -> Result<Loaded, StoreError> {
        let path = self.path(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let problem = match serde_json::from_slice::<SnapshotIn>(&bytes) {
            Err(e) => format!("it does not parse ({e})"),
            Ok(s) if s.version != VERSION => {
                format!(
                    "its schema version is {} and this vigil reads version {VERSION}",
                    s.version
                )
            }
            Ok(s) => match serde_json::from_value::<Mind>(s.mind) {
                Ok(mind) => return Ok(Loaded { mind, warning: None }),
                Err(e) => format!("its content does not fit the schema ({e})"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AgentName, AgentRecord, Incarnation};

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
        store.save_mind(&mind, Time::from_millis(2000)).unwrap();
        let loaded = store.load_mind(Time::from_millis(3000)).unwrap();
        assert_eq!(loaded.mind, mind);
        assert!(loaded.warning.is_none());
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
}
