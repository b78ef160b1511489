//! The supervisor's mind on disk, in one state directory per project: the owner lock
//! and record, the heartbeat, the journal, the Mind snapshot and the inbox. Every file
//! is written so a crash at any instant leaves either the old or the new content
//! (temp file, fsync, rename, fsync dir) or a journal whose last line may be cut short.
//! Files 0600, directories 0700.

mod answer;
mod checkpoint;
pub mod failpoint;
mod file;
mod follow;
mod inbox;
mod journal;
pub mod limits;
pub mod outbox;
mod owner;
pub mod record;
pub mod signals;
mod snapshot;

use std::path::{Path, PathBuf};

pub use answer::{Answer, Answers, Outcome as AnswerOutcome};
pub use checkpoint::{CHECKPOINT_VERSION, Checkpoint, GitState};
pub use file::Durability;
pub use follow::{Follower, Line};
pub use inbox::{Inbox, LETTER_TTL, Letter, LetterId, Refusal, Taken};
pub use journal::{Journal, fingerprint, material, materials, read_journal, read_lines};
pub use owner::{Heartbeat, Launcher, Lock, OwnerRecord, Role};
pub use record::{Entry, Record};
pub use snapshot::Loaded;

use crate::adapters::fs::canonical;

/// The environment variable that names the state directory outright.
pub const STATE_DIR_ENV: &str = "VIGIL_STATE_DIR";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: cannot encode a record: {source}", path.display())]
    Encode { path: PathBuf, source: serde_json::Error },
    /// A state dir vigil will not use: someone else's, or open to others.
    #[error("will not keep state in {}: {why}", path.display())]
    Unfit { path: PathBuf, why: String },
    #[error("cannot find a home directory for the state dir; set {STATE_DIR_ENV} or `state_dir` in the config")]
    NoHome,
    #[error("{owner}")]
    Held { owner: Box<owner::Held> },
}

impl StoreError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Whether `dir` would be accepted as a state dir, without creating or changing it:
/// `Ok(true)` when it exists and is fit, `Ok(false)` when it does not exist yet.
pub fn fitness(dir: &Path) -> Result<bool, StoreError> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => file::check_dir(dir, &meta).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(dir)(e)),
    }
}

/// One project's state directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Where a project's state lives: `VIGIL_STATE_DIR`, else `state_dir` from the
    /// config, else `$XDG_STATE_HOME/vigil/<project-id>/`.
    pub fn locate(state_dir: Option<&Path>, project: &str) -> Result<PathBuf, StoreError> {
        // Canonical, like the project itself: two paths to one dir are one lock.
        if let Some(dir) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(canonical(Path::new(&dir)));
        }
        if let Some(dir) = state_dir {
            return Ok(dir.to_owned());
        }
        let dirs = directories::ProjectDirs::from("", "", "vigil").ok_or(StoreError::NoHome)?;
        let base = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
        Ok(canonical(&base.join(project)))
    }

    /// Opens (creating, 0700) the state directory.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        file::create_dir(dir)?;
        file::create_dir(&dir.join("inbox"))?;
        file::create_dir(&dir.join(signals::DIR))?;
        Ok(Self { dir: dir.to_owned() })
    }

    /// Opens an existing state directory without creating anything (for readers).
    pub fn existing(dir: &Path) -> Option<Self> {
        dir.is_dir().then(|| Self { dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Removes what a dead writer left half-done (temp files) and answers nobody
    /// collected; for a new owner.
    pub fn tidy(&self) {
        file::remove_stale_temps(&self.dir);
        self.answers().sweep();
    }

    pub fn journal(&self) -> Journal {
        Journal::new(self.path(journal::FILE))
    }

    pub fn inbox(&self) -> Inbox {
        Inbox::new(self.path("inbox"))
    }

    /// Writes `hooks/<name>` (the dir 0700, the file 0600, atomically): a settings file
    /// an agent CLI is pointed at for one launch. Returns its path.
    pub fn write_hook_file(&self, name: &str, value: &serde_json::Value) -> Result<PathBuf, StoreError> {
        let dir = self.path("hooks");
        file::create_dir(&dir)?;
        let path = dir.join(name);
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Encode {
            path: path.clone(),
            source: e,
        })?;
        file::write_atomic(&path, &bytes)?;
        Ok(path)
    }

    /// `limits/`, made if missing (0700): where `vigil hook --statusline` records what
    /// Claude Code's statusLine says of each agent's limits.
    pub fn limits_dir(&self) -> Result<PathBuf, StoreError> {
        let dir = self.path(limits::DIR);
        file::create_dir(&dir)?;
        Ok(dir)
    }

    /// Letters from `vigil hook`: what the agents' own hooks said.
    pub fn signals(&self) -> signals::Signals {
        signals::Signals::new(self.path(signals::DIR))
    }

    /// The owner's answers to inbox letters.
    pub fn answers(&self) -> Answers {
        Answers::new(self.path("answers"))
    }

    /// Notices waiting for delivery, one file each.
    pub fn outbox(&self) -> outbox::Outbox {
        outbox::Outbox::new(self.path("outbox"))
    }

    /// How many events wait in `outbox/` for delivery (one `*.json` file each); 0
    /// when there is no outbox.
    pub fn notifications_pending(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(self.path("outbox")) else {
            return 0;
        };
        let pending = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && name.ends_with(".json") && e.file_type().is_ok_and(|t| t.is_file())
            })
            .count();
        pending as u64
    }
}
