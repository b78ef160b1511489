//! `answers/`: the owner's answer to each inbox letter, `answers/<letter id>.json`,
//! written atomically after the pass that carried the letter out (and journaled first),
//! read and deleted by the sender that waits for it. Answers nobody collected are
//! swept once they are older than a letter may be.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::inbox::{LETTER_TTL, LetterId};
use super::{StoreError, file};
use crate::adapters::fs::{Links, read_regular};
use crate::engine::{Command, Incarnation};

/// Largest answer file read: a reason and an agent's last lines.
const MAX_ANSWER: u64 = 256 * 1024;

const ANSWER_VERSION: u32 = 1;

/// How a letter's command went, as its sender reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `up`/`restart`: a new incarnation started and lived past the settle time.
    Started,
    /// `up`: it was running already.
    Running,
    /// `up`/`restart`: not started; the reason says why (a crash-loop hold, a stop).
    Held,
    /// `up`/`restart`: host pressure holds the start back; the owner starts it when
    /// pressure clears.
    Deferred,
    /// The command was tried and failed (tmux refused, the agent died at once).
    Failed,
    /// `stop`, `nudge`, `triage`: carried out.
    Done,
    /// Not carried out: the reason says why (the agent has ended, a later command for
    /// the same agent won, the owner's config has no such agent).
    Refused,
    /// The letter was too old (or from the future) to be obeyed.
    Expired,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Running => "running",
            Outcome::Held => "held",
            Outcome::Deferred => "deferred",
            Outcome::Failed => "failed",
            Outcome::Done => "done",
            Outcome::Refused => "refused",
            Outcome::Expired => "expired",
        }
    }

    /// Whether the sender's job failed (exit 1).
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Expired)
    }
}

/// The owner's answer to one letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub version: u32,
    pub letter: LetterId,
    pub request: Command,
    pub outcome: Outcome,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<Incarnation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pane_pid: Option<u32>,
    /// The pane's last words, when the agent died at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
}

impl Answer {
    pub fn new(letter: LetterId, request: Command, outcome: Outcome, reason: String) -> Self {
        Self {
            version: ANSWER_VERSION,
            letter,
            request,
            outcome,
            reason,
            incarnation: None,
            session: None,
            pane_pid: None,
            last_lines: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Answers {
    dir: PathBuf,
}

impl Answers {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, letter: &LetterId) -> PathBuf {
        self.dir.join(format!("{letter}.json"))
    }

    /// Writes an answer where its sender looks (owner only).
    pub fn write(&self, answer: &Answer) -> Result<(), StoreError> {
        file::create_dir(&self.dir)?;
        let path = self.path(&answer.letter);
        let bytes = serde_json::to_vec(answer).map_err(|e| StoreError::Encode {
            path: path.clone(),
            source: e,
        })?;
        file::write_atomic(&path, &bytes)
    }

    /// The answer to `letter` if it has come, deleting it: `Ok(None)` while it has not.
    /// An answer that cannot be read is an error that says why (and is left there).
    pub fn collect(&self, letter: &LetterId) -> Result<Option<Answer>, String> {
        let path = self.path(letter);
        let bytes = match read_regular(&path, MAX_ANSWER, Links::Refuse) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let answer: Answer =
            serde_json::from_slice(&bytes).map_err(|e| format!("{} is not an answer: {e}", path.display()))?;
        let _ = std::fs::remove_file(&path);
        Ok(Some(answer))
    }

    /// Deletes answers (and temp files) older than a letter may be: their senders are
    /// gone. For the owner, now and then.
    pub fn sweep(&self) {
        file::remove_stale_temps(&self.dir);
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > LETTER_TTL));
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AgentName;

    #[test]
    fn an_answer_is_collected_once_and_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let answers = Answers::new(dir.path().join("answers"));
        let id = LetterId::new("00000000000000000001-2-000000-up").unwrap();
        assert_eq!(answers.collect(&id), Ok(None));
        let mut answer = Answer::new(
            id.clone(),
            Command::Up(AgentName::new("a").unwrap()),
            Outcome::Started,
            "started as #1".into(),
        );
        answer.incarnation = Some(Incarnation(1));
        answers.write(&answer).unwrap();
        let path = dir.path().join(format!("answers/{id}.json"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(answers.collect(&id), Ok(Some(answer)));
        assert!(!path.exists());
        assert_eq!(answers.collect(&id), Ok(None));
    }

    #[test]
    fn a_link_in_place_of_an_answer_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("answers")).unwrap();
        std::fs::write(dir.path().join("secret"), "{}").unwrap();
        let id = LetterId::new("1-2-3-up").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("answers/1-2-3-up.json")).unwrap();
        let err = Answers::new(dir.path().join("answers")).collect(&id).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }
}
