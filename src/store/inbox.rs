//! `inbox/`: commands from processes that do not own the run (`vigil stop AGENT` while
//! `vigil watch` runs), one file each, written atomically; the owner takes them in
//! order of arrival, deletes them, and answers in the journal.

use std::path::PathBuf;

use super::{StoreError, file};
use crate::adapters::fs::{Links, read_regular};

/// Largest inbox file read as a letter.
const MAX_LETTER: u64 = 64 * 1024;
use crate::engine::{Command, Time};

#[derive(Clone, Debug)]
pub struct Inbox {
    dir: PathBuf,
}

/// One file of the inbox: `{"command": "stop", "agent": "b", "from_pid": 4242}`.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Letter {
    #[serde(flatten)]
    command: Command,
    from_pid: u32,
}

impl Inbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Leaves a command for the owner.
    pub fn submit(&self, command: &Command, now: Time) -> Result<(), StoreError> {
        let letter = Letter {
            command: command.clone(),
            from_pid: std::process::id(),
        };
        // Unique even for letters written in the same millisecond by one process: a
        // name that repeated would replace a letter not yet read.
        static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "{:020}-{}-{n:06}-{}.json",
            now.millis(),
            std::process::id(),
            command.verb()
        );
        let bytes = serde_json::to_vec(&letter).map_err(|e| StoreError::Io {
            path: self.dir.clone(),
            source: e.into(),
        })?;
        file::write_atomic(&self.dir.join(name), &bytes)
    }

    /// Takes every waiting command, oldest first. A file that cannot be understood is
    /// moved aside as `*.bad` and reported, not retried forever.
    pub fn take(&self) -> Result<(Vec<Command>, Vec<String>), StoreError> {
        let mut names: Vec<_> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => {
                return Err(StoreError::Io {
                    path: self.dir.clone(),
                    source: e,
                });
            }
        };
        names.sort();
        let mut commands = Vec::new();
        let mut problems = Vec::new();
        for path in names {
            // A letter is a few dozen bytes; a FIFO, a link or a huge file is not one.
            let parsed = read_regular(&path, MAX_LETTER, Links::Refuse)
                .ok()
                .and_then(|b| serde_json::from_slice::<Letter>(&b).ok())
                .map(|l| l.command);
            match parsed {
                Some(c) => {
                    commands.push(c);
                    std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                }
                None => {
                    let bad = path.with_extension("bad");
                    std::fs::rename(&path, &bad).map_err(StoreError::io(&path))?;
                    problems.push(format!(
                        "inbox file {} is not a command; moved to {}",
                        path.display(),
                        bad.display()
                    ));
                }
            }
        }
        Ok((commands, problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AgentName;

    #[test]
    fn a_letter_left_by_vigil_0_1_is_still_a_command() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/inbox-letter.json");
        std::fs::copy(fixture, dir.path().join("00000000000000000001-4242-stop.json")).unwrap();
        let (commands, problems) = Inbox::new(dir.path().to_owned()).take().unwrap();
        assert_eq!(commands, [Command::Stop(AgentName::new("worker").unwrap())]);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_letter_reads_as_vigil_0_1_wrote_it() {
        let letter = Letter {
            command: Command::Nudge(AgentName::new("b").unwrap()),
            from_pid: 7,
        };
        let json: serde_json::Value = serde_json::to_value(&letter).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"command": "nudge", "agent": "b", "from_pid": 7})
        );
    }

    #[test]
    fn an_unknown_verb_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let letter = dir.path().join("1-1-explode.json");
        std::fs::write(&letter, r#"{"command":"explode","agent":"a","from_pid":1}"#).unwrap();
        let (commands, problems) = Inbox::new(dir.path().to_owned()).take().unwrap();
        assert!(commands.is_empty());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("moved to"), "{problems:?}");
        assert!(letter.with_extension("bad").exists());
    }

    #[test]
    fn commands_come_out_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let a = AgentName::new("a").unwrap();
        inbox.submit(&Command::Stop(a.clone()), Time::from_millis(2)).unwrap();
        inbox.submit(&Command::Nudge(a.clone()), Time::from_millis(1)).unwrap();
        std::fs::write(dir.path().join("zz.json"), "nonsense").unwrap();
        let (commands, problems) = inbox.take().unwrap();
        assert_eq!(commands, [Command::Nudge(a.clone()), Command::Stop(a)]);
        assert_eq!(problems.len(), 1);
        assert!(inbox.take().unwrap().0.is_empty());
    }

    #[test]
    fn letters_written_in_the_same_millisecond_all_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let names = ["a", "b", "c", "d"].map(|n| AgentName::new(n).unwrap());
        for n in &names {
            inbox.submit(&Command::Up(n.clone()), Time::from_millis(7)).unwrap();
        }
        let (commands, problems) = inbox.take().unwrap();
        assert_eq!(commands, names.map(Command::Up), "{problems:?}");
    }

    #[test]
    fn a_fifo_or_an_oversized_letter_is_moved_aside_without_blocking_or_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let fifo = dir.path().join("x.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let padding = " ".repeat(300_000);
        std::fs::write(
            dir.path().join("y.json"),
            format!("{{\"command\": \"stop\", \"agent\": \"a\", \"from_pid\": 1{padding}}}"),
        )
        .unwrap();
        let (commands, problems) = inbox.take().unwrap();
        assert!(commands.is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(dir.path().join("x.bad").exists() && dir.path().join("y.bad").exists());
    }
}
