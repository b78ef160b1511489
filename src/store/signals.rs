//! `signals/`: letters from `vigil hook`, one small file each (what an agent's own hook
//! said, from which agent, incarnation and run, and when), kept apart from the inbox so
//! a flood of them never delays a user's command. Written atomically (temp file, then
//! rename; 0600, never through a link) and not fsynced: a signal lost in a crash is
//! worth less than the agent's time. At most [`MAX_WAITING`] wait on disk; beyond
//! that new ones are dropped. The owner reads them strictly, bounded, and deletes each.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::adapters::fs::{Links, read_regular};
use crate::engine::Time;
use crate::engine::signal::Recognised;

/// The state dir's subdirectory for signal letters.
pub const DIR: &str = "signals";
/// Letters waiting on disk beyond which `vigil hook` drops new ones.
pub const MAX_WAITING: usize = 256;
/// Largest signal letter read.
const MAX_LETTER: u64 = 8 * 1024;
/// The letter format this vigil writes and reads.
const VERSION: u32 = 1;

/// One signal letter, exactly; anything else in it makes it garbage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalLetter {
    pub version: u32,
    /// `VIGIL_AGENT` as the hook found it (checked by the owner).
    pub agent: String,
    pub incarnation: u32,
    /// `VIGIL_RUN`: the run the agent was started for.
    pub run: String,
    /// When the hook ran.
    pub sent: Time,
    pub heard: Recognised,
}

impl SignalLetter {
    pub fn new(agent: String, incarnation: u32, run: String, sent: Time, heard: Recognised) -> Self {
        Self {
            version: VERSION,
            agent,
            incarnation,
            run,
            sent,
            heard,
        }
    }
}

/// One file of `signals/` as the owner took it (and deleted).
#[derive(Debug, PartialEq)]
pub enum Taken {
    Letter(SignalLetter),
    /// Not a signal letter (unreadable, malformed, a link or FIFO, too big).
    Bad {
        file: String,
        why: String,
    },
}

/// Whether `dir` may receive letters: a real directory of this user, closed to others.
fn fit(dir: &Path) -> bool {
    fs::symlink_metadata(dir).is_ok_and(|m| {
        m.file_type().is_dir() && m.uid() == rustix::process::geteuid().as_raw() && m.mode() & 0o022 == 0
    })
}

/// Drops a letter into `dir` for the owner, unless the dir is unfit or already holds
/// [`MAX_WAITING`] letters (then it is dropped: the agent must never wait on vigil).
/// Returns whether it was written.
pub fn drop_letter(dir: &Path, letter: &SignalLetter) -> std::io::Result<bool> {
    if !fit(dir) {
        return Ok(false);
    }
    let waiting = fs::read_dir(dir)?.take(MAX_WAITING + 1).count();
    if waiting >= MAX_WAITING {
        return Ok(false);
    }
    let bytes = serde_json::to_vec(letter).map_err(std::io::Error::other)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "{:020}-{:09}-{}.json",
        letter.sent.millis().max(0),
        nanos,
        std::process::id()
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        fs::rename(&tmp, dir.join(&name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| true)
}

/// The owner's side of `signals/`.
#[derive(Clone, Debug)]
pub struct Signals {
    dir: PathBuf,
}

impl Signals {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes (reads and deletes) the waiting letters, oldest first, at most
    /// [`MAX_WAITING`] per call. A missing dir holds none.
    pub fn take(&self) -> Result<Vec<Taken>, StoreError> {
        let mut paths: Vec<PathBuf> = match fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter(|p| p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&self.dir)(e)),
        };
        paths.sort();
        paths.truncate(MAX_WAITING);
        let mut taken = Vec::with_capacity(paths.len());
        for path in paths {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let read = read_regular(&path, MAX_LETTER, Links::Refuse)
                .map_err(|e| format!("cannot be read as a signal letter: {e}"))
                .and_then(|bytes| {
                    serde_json::from_slice::<SignalLetter>(&bytes).map_err(|e| format!("is not a signal letter: {e}"))
                })
                .and_then(|l| match l.version {
                    VERSION => Ok(l),
                    v => Err(format!("is a signal letter of version {v}; this vigil reads {VERSION}")),
                });
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(StoreError::io(&path)(e)),
                _ => {}
            }
            taken.push(match read {
                Ok(letter) => Taken::Letter(letter),
                Err(why) => Taken::Bad { file, why },
            });
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::engine::signal::recognise;

    fn letter(n: i64) -> SignalLetter {
        let heard = recognise(br#"{"type":"agent-turn-complete","thread-id":"t"}"#);
        SignalLetter::new("a".into(), 1, "r".into(), Time::from_millis(n), heard)
    }

    fn state() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn letters_go_through_in_order_and_are_deleted() {
        let dir = state();
        assert!(drop_letter(dir.path(), &letter(2)).unwrap());
        assert!(drop_letter(dir.path(), &letter(1)).unwrap());
        let signals = Signals::new(dir.path().to_owned());
        let taken = signals.take().unwrap();
        assert_eq!(taken, vec![Taken::Letter(letter(1)), Taken::Letter(letter(2))]);
        assert!(signals.take().unwrap().is_empty());
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_full_dir_drops_new_letters_and_an_open_one_gets_none() {
        let dir = state();
        for n in 0..MAX_WAITING {
            assert!(drop_letter(dir.path(), &letter(n as i64)).unwrap());
        }
        assert!(!drop_letter(dir.path(), &letter(9999)).unwrap());
        assert_eq!(Signals::new(dir.path().to_owned()).take().unwrap().len(), MAX_WAITING);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!drop_letter(dir.path(), &letter(1)).unwrap(), "others may write there");
    }

    #[test]
    fn garbage_links_and_unknown_fields_are_bad_letters() {
        let dir = state();
        fs::write(dir.path().join("1.json"), "{").unwrap();
        let mut json = serde_json::to_value(letter(1)).unwrap();
        json["shell"] = "rm -rf /".into();
        fs::write(dir.path().join("2.json"), json.to_string()).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("3.json")).unwrap();
        let taken = Signals::new(dir.path().to_owned()).take().unwrap();
        assert_eq!(taken.len(), 3);
        assert!(taken.iter().all(|t| matches!(t, Taken::Bad { .. })), "{taken:?}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
