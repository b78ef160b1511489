//! Following a journal as it grows, for readers that do not own the run (`vigil log
//! --follow`, `vigil watch --viewer`, the dashboard as viewer): new complete lines
//! since the last look, a line still being written kept until its end arrives, and a
//! rotation or truncation noticed by the file's identity. Reads only; never writes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::record::Entry;

/// One complete journal line, with its record when it is a known one.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub raw: String,
    pub entry: Option<Entry>,
}

impl Line {
    pub fn new(raw: String) -> Self {
        let entry = Entry::parse(&raw);
        Self { raw, entry }
    }
}

/// A reader at some point of a journal file.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    /// The file being read and its identity (device, inode), once it has been opened.
    file: Option<(File, (u64, u64))>,
    offset: u64,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
    /// Skip what the file holds when it is first opened.
    skip_existing: bool,
}

impl Follower {
    /// Follows `path` from its first line.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            offset: 0,
            partial: Vec::new(),
            skip_existing: false,
        }
    }

    /// Starts after what the journal holds now: only lines written later are read.
    pub fn from_end(mut self) -> Self {
        self.skip_existing = true;
        let _ = self.open();
        self
    }

    /// The known records written since the last look, oldest first.
    pub fn read_new(&mut self) -> Vec<Entry> {
        self.read_new_lines().into_iter().filter_map(|l| l.entry).collect()
    }

    /// Every complete line written since the last look, oldest first. After a
    /// rotation the rest of the old file comes first, then the new file from its start.
    pub fn read_new_lines(&mut self) -> Vec<Line> {
        let mut bytes = Vec::new();
        self.drain(&mut bytes);
        let current = std::fs::metadata(&self.path).ok().map(|m| (m.dev(), m.ino()));
        let rotated = match (&self.file, current) {
            (Some((_, id)), Some(now)) => *id != now,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if rotated && self.open() {
            // A half line at the end of the old file was torn (it is sealed away).
            self.partial.clear();
            self.drain(&mut bytes);
        }
        self.split(bytes)
    }

    /// Opens the file at the path, at its end when existing lines are to be skipped.
    fn open(&mut self) -> bool {
        let Ok(file) = crate::adapters::fs::open_regular(&self.path, crate::adapters::fs::Links::Refuse) else {
            return false;
        };
        let Ok(meta) = file.metadata() else { return false };
        self.offset = if std::mem::take(&mut self.skip_existing) {
            meta.len()
        } else {
            0
        };
        self.file = Some((file, (meta.dev(), meta.ino())));
        true
    }

    /// Reads what the open file holds past the offset; starts over when it shrank.
    fn drain(&mut self, into: &mut Vec<u8>) {
        let Some((file, _)) = &mut self.file else { return };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            self.offset = 0; // truncated in place
            self.partial.clear();
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut chunk = Vec::new();
        if let Ok(n) = file.take(len - self.offset).read_to_end(&mut chunk) {
            self.offset += n as u64;
            self.partial.extend_from_slice(&chunk);
        }
        if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
            into.extend(self.partial.drain(..=end));
        }
    }

    fn split(&self, bytes: Vec<u8>) -> Vec<Line> {
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| Line::new(String::from_utf8_lossy(l).into_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Time;
    use crate::store::Journal;
    use crate::store::record::Record;

    fn warning(journal: &Journal, n: i64) {
        let message = format!("w{n}");
        journal
            .append(Time::from_millis(n), Record::Warning { message })
            .unwrap();
    }

    fn messages(entries: Vec<Entry>) -> Vec<String> {
        entries
            .into_iter()
            .map(|e| match e.record {
                Record::Warning { message } => message,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn new_lines_come_once_and_a_half_written_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("journal.jsonl"));
        let mut from_start = Follower::new(journal.path().to_owned());
        assert!(from_start.read_new().is_empty(), "no file yet");
        warning(&journal, 1);
        let mut from_end = Follower::new(journal.path().to_owned()).from_end();
        warning(&journal, 2);
        assert_eq!(messages(from_start.read_new()), ["w1", "w2"]);
        assert_eq!(messages(from_end.read_new()), ["w2"]);
        let line = Entry::new(Time::from_millis(3), Record::Warning { message: "w3".into() })
            .to_line()
            .unwrap();
        let (head, tail) = line.split_at(10);
        crate::store::file::append_bytes(journal.path(), head.as_bytes()).unwrap();
        assert!(from_end.read_new().is_empty(), "not a line yet");
        crate::store::file::append_bytes(journal.path(), format!("{tail}\n{{\"kind\": \"future\"}}\n").as_bytes())
            .unwrap();
        let lines = from_end.read_new_lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].raw, "{\"kind\": \"future\"}", "an unknown kind is kept raw");
        assert_eq!(lines[1].entry, None);
        assert_eq!(messages(lines.into_iter().filter_map(|l| l.entry).collect()), ["w3"]);
    }

    #[test]
    fn after_a_rotation_the_old_files_rest_comes_then_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("journal.jsonl"));
        warning(&journal, 1);
        let mut follower = Follower::new(journal.path().to_owned());
        assert_eq!(messages(follower.read_new()), ["w1"]);
        warning(&journal, 2);
        assert!(journal.rotate_if_over(1, 2).unwrap());
        warning(&journal, 3);
        assert_eq!(messages(follower.read_new()), ["w2", "w3"]);
        std::fs::write(journal.path(), "").unwrap();
        assert!(follower.read_new().is_empty());
        warning(&journal, 4);
        assert_eq!(
            messages(follower.read_new()),
            ["w4"],
            "truncated in place: read from its start"
        );
    }
}
