//! Checkpoints and handoffs: where a stuck incarnation was when vigil gave up on it
//! (`checkpoints/<agent>.json`, replaced atomically, one per agent) and the history of
//! handoffs (`handoffs.jsonl`, appended), so the next incarnation can pick up the work
//! and a person can see what happened.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, file};
use crate::engine::{AgentName, Incarnation, Time};

const DIR: &str = "checkpoints";
const HANDOFFS: &str = "handoffs.jsonl";
pub const CHECKPOINT_VERSION: u32 = 1;

/// What vigil wrote down about a stuck incarnation before replacing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub agent: AgentName,
    pub incarnation: Incarnation,
    pub reason: String,
    pub at: Time,
    pub cwd: PathBuf,
    /// The pane's last lines, oldest first.
    pub last_lines: Vec<String>,
    /// `None` when the cwd is not a git work tree (or git could not say).
    pub git: Option<GitState>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    pub branch: String,
    /// `<short hash> <subject>` of HEAD.
    pub last_commit: String,
    /// `git status --porcelain` lines: files modified, added, untracked.
    pub modified: Vec<String>,
}

impl Store {
    pub fn checkpoint_path(&self, agent: &AgentName) -> PathBuf {
        self.path(DIR).join(format!("{agent}.json"))
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        self.path(DIR)
    }

    /// Writes the checkpoint (replacing the agent's previous one) and appends a handoff
    /// record; returns the checkpoint's path.
    pub fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<PathBuf, StoreError> {
        file::create_dir(&self.path(DIR))?;
        let path = self.checkpoint_path(&checkpoint.agent);
        let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        file::write_atomic(&path, &bytes)?;
        let handoff = serde_json::json!({
            "t": checkpoint.at,
            "agent": checkpoint.agent,
            "from": checkpoint.incarnation,
            "reason": checkpoint.reason,
            "checkpoint": path,
        });
        file::append_line(&self.path(HANDOFFS), &handoff.to_string())?;
        Ok(path)
    }

    /// The agent's last checkpoint, if there is a readable one.
    pub fn checkpoint(&self, agent: &AgentName) -> Option<Checkpoint> {
        let bytes = crate::adapters::fs::read_regular(
            &self.checkpoint_path(agent),
            16 * 1024 * 1024,
            crate::adapters::fs::Links::Refuse,
        )
        .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_written_read_back_and_its_handoff_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cp = Checkpoint {
            version: CHECKPOINT_VERSION,
            agent: AgentName::new("a").unwrap(),
            incarnation: Incarnation(3),
            reason: "screen unchanged for 1h".into(),
            at: Time::from_millis(1_800_000_000_000),
            cwd: "/tmp".into(),
            last_lines: vec!["thinking…".into()],
            git: None,
        };
        let path = store.write_checkpoint(&cp).unwrap();
        assert_eq!(store.checkpoint(&cp.agent), Some(cp.clone()));
        let handoffs = std::fs::read_to_string(dir.path().join(HANDOFFS)).unwrap();
        assert!(handoffs.contains("\"from\":3"), "{handoffs}");
        assert!(handoffs.contains(path.to_str().unwrap()));
    }
}
