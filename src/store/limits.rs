//! `limits/<agent>.json`: the rate-limit windows Claude Code last showed its statusLine
//! for one agent, recorded by `vigil hook --statusline` and read by the owner when it
//! needs a reset time. One small file per agent, overwritten atomically (temp file,
//! rename, 0600, never through a link) and only when the values changed, so a
//! statusLine run several times a second writes nothing. Read strictly and bounded.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::adapters::fs::{Links, read_regular};
use crate::engine::resets::Window;
use crate::engine::{AgentName, Time};

/// The state dir's subdirectory for the recorded windows.
pub const DIR: &str = "limits";
/// Largest file read (a real one is a few hundred bytes).
const MAX_FILE: u64 = 8 * 1024;
const VERSION: u32 = 1;

/// What one agent's statusLine last said about its limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    pub version: u32,
    pub agent: AgentName,
    pub incarnation: u32,
    pub run: String,
    /// When these values were first seen (the statusLine's clock).
    pub at: Time,
    pub windows: Vec<Window>,
}

impl Recorded {
    pub fn new(agent: AgentName, incarnation: u32, run: String, at: Time, windows: Vec<Window>) -> Self {
        Self {
            version: VERSION,
            agent,
            incarnation,
            run,
            at,
            windows,
        }
    }

    fn same_values(&self, other: &Recorded) -> bool {
        (self.incarnation, &self.run, &self.windows) == (other.incarnation, &other.run, &other.windows)
    }
}

/// The file of `agent` in `dir`.
pub fn path(dir: &Path, agent: &AgentName) -> PathBuf {
    dir.join(format!("{agent}.json"))
}

/// Records `new` unless the file already holds the same values, or `dir` is not a
/// directory of this user closed to others. Returns whether it wrote.
pub fn record(dir: &Path, new: &Recorded) -> std::io::Result<bool> {
    let fit = fs::symlink_metadata(dir).is_ok_and(|m| {
        m.file_type().is_dir() && m.uid() == rustix::process::geteuid().as_raw() && m.mode() & 0o022 == 0
    });
    if !fit {
        return Ok(false);
    }
    let target = path(dir, &new.agent);
    if read(&target).is_ok_and(|old| old.same_values(new)) {
        return Ok(false);
    }
    let bytes = serde_json::to_vec(new).map_err(std::io::Error::other)?;
    super::file::write_atomic(&target, &bytes).map_err(std::io::Error::other)?;
    Ok(true)
}

/// The file at `path`, strictly: a regular file (no link), bounded, this format.
pub fn read(path: &Path) -> Result<Recorded, String> {
    let bytes = read_regular(path, MAX_FILE, Links::Refuse).map_err(|e| e.to_string())?;
    let file: Recorded = serde_json::from_slice(&bytes).map_err(|e| format!("not a limits file: {e}"))?;
    if file.version != VERSION {
        return Err(format!(
            "limits file version {} (this vigil reads {VERSION})",
            file.version
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::engine::resets::WindowName;

    fn recorded(used: u32, at: i64) -> Recorded {
        Recorded::new(
            AgentName::new("a").unwrap(),
            1,
            "run".into(),
            Time::from_millis(at),
            vec![Window {
                name: WindowName::FiveHour,
                used_percent: Some(used),
                window_minutes: None,
                resets_at: Some(Time::from_millis(1_796_140_800_000)),
            }],
        )
    }

    fn dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn the_same_values_are_written_once_and_a_change_overwrites_them() {
        let dir = dir();
        assert!(record(dir.path(), &recorded(50, 1)).unwrap());
        assert!(
            !record(dir.path(), &recorded(50, 2)).unwrap(),
            "same values, later call"
        );
        assert!(record(dir.path(), &recorded(51, 3)).unwrap());
        let file = path(dir.path(), &AgentName::new("a").unwrap());
        assert_eq!(read(&file).unwrap(), recorded(51, 3));
        let mode = fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn a_link_garbage_or_an_open_dir_is_refused() {
        let dir = dir();
        let file = path(dir.path(), &AgentName::new("a").unwrap());
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, serde_json::to_vec(&recorded(1, 1)).unwrap()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        assert!(read(&file).is_err(), "a link is not followed");
        fs::remove_file(&file).unwrap();
        fs::write(&file, b"{\"version\":1}").unwrap();
        assert!(read(&file).is_err());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!record(dir.path(), &recorded(2, 2)).unwrap(), "a dir open to others");
    }
}
