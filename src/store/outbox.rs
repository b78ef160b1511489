//! `outbox/`: notices waiting to be delivered, one file each (`<id>.json`, written
//! atomically, owner-only, never through a link), with the channels still to hear it.
//! A file goes only when every channel has delivered it or given up, so a notice
//! survives vigil being killed before delivery (at least once; `id` is stable for the
//! receiver to drop repeats). Also the notice itself: the versioned event JSON.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StoreError, file};
use crate::adapters::fs::{Links, read_regular};
use crate::engine::{Alert, Time};

/// The version of the event JSON that channels receive.
pub const NOTICE_VERSION: u32 = 1;
const PENDING_VERSION: u32 = 1;
/// Largest outbox file read: a notice with its last lines.
const MAX_PENDING: u64 = 256 * 1024;
/// Most pane lines a notice carries, and most characters of each.
pub const NOTICE_LINES: usize = 10;
const LINE_CHARS: usize = 300;

/// What a notice tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// An alert began.
    Raised(Alert),
    /// The episode of an alert ended.
    Resolved,
    /// `vigil notify --test`.
    Test,
    /// Several notices at once, past the rate cap.
    Digest,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Raised(a) => a.as_str(),
            NoticeKind::Resolved => "resolved",
            NoticeKind::Test => "test",
            NoticeKind::Digest => "digest",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word {
            "resolved" => Some(NoticeKind::Resolved),
            "test" => Some(NoticeKind::Test),
            "digest" => Some(NoticeKind::Digest),
            other => Alert::parse(other).map(NoticeKind::Raised),
        }
    }
}

impl Serialize for NoticeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NoticeKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        NoticeKind::parse(&word).ok_or_else(|| serde::de::Error::custom(format!("unknown event `{word}`")))
    }
}

/// One notification as every channel receives it (the command on stdin, the webhook
/// as its body with `format = "json"`). A contract: fields are added, never renamed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub version: u32,
    /// Unique and stable across redeliveries: a receiver drops a repeat by it.
    pub id: String,
    pub time: Time,
    pub project: String,
    pub event: NoticeKind,
    /// For `resolved`: the alert whose episode ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolves: Option<Alert>,
    pub agent: Option<String>,
    pub incarnation: Option<u32>,
    pub reason: String,
    /// The pane's last lines, control characters escaped.
    pub last_lines: Vec<String>,
    /// The command that attaches a terminal to the agent.
    pub attach: Option<String>,
    /// For a digest: the notices it stands for, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digest: Vec<String>,
}

impl Notice {
    /// The alert it is about: the raised one, or the one resolved.
    pub fn alert(&self) -> Option<Alert> {
        match self.event {
            NoticeKind::Raised(a) => Some(a),
            NoticeKind::Resolved => self.resolves,
            NoticeKind::Test | NoticeKind::Digest => None,
        }
    }

    /// A short title: "vigil: backend waiting".
    pub fn title(&self) -> String {
        let what = match (self.event, self.resolves) {
            (NoticeKind::Resolved, Some(a)) => format!("{a} resolved"),
            (kind, _) => kind.as_str().replace('_', " "),
        };
        match &self.agent {
            Some(agent) => format!("vigil: {agent} {what}"),
            None => format!("vigil: {what}"),
        }
    }

    /// The notice in a few lines of plain text (reason, last line, how to attach).
    pub fn text(&self) -> String {
        let mut text = format!("{}: {}", self.title(), self.reason);
        for item in &self.digest {
            text.push_str(&format!("\n- {item}"));
        }
        if let Some(last) = self.last_lines.iter().rev().find(|l| !l.trim().is_empty()) {
            text.push_str(&format!("\nlast line: {last}"));
        }
        if let Some(attach) = &self.attach {
            text.push_str(&format!("\nattach: {attach}"));
        }
        text
    }
}

/// A pane's last lines as a notice carries them: at most [`NOTICE_LINES`] (trailing
/// blank ones dropped), each cut to a length, control characters escaped.
pub fn last_lines(lines: &[String]) -> Vec<String> {
    let end = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    let start = end.saturating_sub(NOTICE_LINES);
    lines[start..end].iter().map(|l| escaped(l, LINE_CHARS)).collect()
}

/// Text with control characters shown as escapes, cut to `max` characters.
pub fn escaped(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

/// A new notice id: sortable by time, unique per process and call.
pub fn new_id(now: Time) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:013}-{}-{n}", now.millis().max(0), std::process::id())
}

/// An id that can name a file: digits and `-` only.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// One outbox file: the notice and the channels still to deliver it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub version: u32,
    pub notice: Notice,
    /// Channel names still to deliver it.
    pub channels: Vec<String>,
    /// Failed attempts so far, per channel still to deliver.
    #[serde(default)]
    pub attempts: u32,
}

impl Pending {
    pub fn new(notice: Notice, channels: Vec<String>) -> Self {
        Self {
            version: PENDING_VERSION,
            notice,
            channels,
            attempts: 0,
        }
    }
}

/// How one delivery of a notice through one channel went: journaled, one line each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub event: NoticeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub channel: String,
    #[serde(flatten)]
    pub outcome: DeliveryOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    Delivered,
    /// The channel cannot work here; said once, not retried.
    Skipped {
        why: String,
    },
    /// Tried and failed; tried again in `retry_in_s`.
    Failed {
        error: String,
        attempt: u32,
        retry_in_s: u64,
    },
    /// Failed too often: this channel will not deliver it.
    GaveUp {
        error: String,
        attempt: u32,
    },
}

#[derive(Clone, Debug)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes (or rewrites) a pending notice, synced before it returns.
    pub fn post(&self, pending: &Pending) -> Result<(), StoreError> {
        let id = &pending.notice.id;
        if !usable_id(id) {
            return Err(StoreError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(format!("notice id `{}` cannot name a file", escaped(id, 80))),
            });
        }
        file::create_dir(&self.dir)?;
        let path = self.path(id);
        let bytes = serde_json::to_vec(pending).map_err(|e| StoreError::Encode {
            path: path.clone(),
            source: e,
        })?;
        file::write_atomic(&path, &bytes)
    }

    /// Removes a notice that every channel is done with.
    pub fn remove(&self, id: &str) {
        if usable_id(id) {
            let _ = std::fs::remove_file(self.path(id));
        }
    }

    /// Every pending notice, oldest first. A file that is no notice (or a link, a FIFO)
    /// is renamed to `<name>.bad` (kept for a person, no longer pending) and reported.
    pub fn list(&self) -> (Vec<Pending>, Vec<String>) {
        let mut found = Vec::new();
        let mut problems = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (found, problems);
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && n.ends_with(".json"))
            .collect();
        names.sort();
        for name in names {
            let path = self.dir.join(&name);
            let read = read_regular(&path, MAX_PENDING, Links::Refuse)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Pending>(&b).map_err(|e| e.to_string()))
                .and_then(|p| match name.strip_suffix(".json") {
                    Some(id) if id == p.notice.id => Ok(p),
                    _ => Err("its id is not its name".to_owned()),
                });
            match read {
                Ok(p) => found.push(p),
                Err(e) => {
                    let aside = self.dir.join(format!("{name}.bad"));
                    let _ = std::fs::rename(&path, &aside);
                    problems.push(format!(
                        "outbox file {name} is no notice ({e}); moved to {}",
                        aside.display()
                    ));
                }
            }
        }
        (found, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn notice(id: &str) -> Notice {
        Notice {
            version: NOTICE_VERSION,
            id: id.into(),
            time: Time::from_millis(0),
            project: "p".into(),
            event: NoticeKind::Raised(Alert::Waiting),
            resolves: None,
            agent: Some("a".into()),
            incarnation: Some(1),
            reason: "dialog".into(),
            last_lines: vec!["Do you trust this folder?".into()],
            attach: Some("tmux attach -t =s".into()),
            digest: vec![],
        }
    }

    #[test]
    fn a_posted_notice_is_listed_until_removed_and_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("outbox"));
        let id = new_id(Time::from_millis(5));
        outbox.post(&Pending::new(notice(&id), vec!["command".into()])).unwrap();
        let (found, problems) = outbox.list();
        assert_eq!((found.len(), problems.len()), (1, 0));
        assert_eq!(found[0].notice.id, id);
        let mode = std::fs::metadata(dir.path().join(format!("outbox/{id}.json")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        outbox.remove(&id);
        assert!(outbox.list().0.is_empty());
    }

    #[test]
    fn a_file_that_is_no_notice_is_set_aside_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().to_owned());
        std::fs::write(dir.path().join("1-2-3.json"), "{not json").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("4-5-6.json")).unwrap();
        let (found, problems) = outbox.list();
        assert!(found.is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(dir.path().join("1-2-3.json.bad").exists());
    }

    #[test]
    fn the_event_json_has_the_documented_fields_and_escapes_control_characters() {
        let mut n = notice("1-2-3");
        n.last_lines = last_lines(&["ok".into(), "\u{1b}[31mred\u{7}".into(), "".into()]);
        let v = serde_json::to_value(&n).unwrap();
        for key in [
            "version",
            "id",
            "time",
            "project",
            "event",
            "agent",
            "incarnation",
            "reason",
            "last_lines",
            "attach",
        ] {
            assert!(v.get(key).is_some(), "{key} in {v}");
        }
        assert_eq!(v["event"], "waiting");
        assert_eq!(v["last_lines"], serde_json::json!(["ok", "\\u{1b}[31mred\\u{7}"]));
        let back: Notice = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }
}
