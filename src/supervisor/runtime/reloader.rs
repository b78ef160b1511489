//! Reading the config file again into a running supervisor: on SIGHUP (always) or
//! when a watcher sees the file change (only when its text did). A file that does not
//! load is refused, journaled as a warning, and the running config kept; never exits.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::Supervisor;
use crate::adapters::clock::now;
use crate::adapters::fs::{Links, read_regular};
use crate::adapters::tmux::Tmux;
use crate::config::Config;
use crate::store::{Record, StoreError};
use crate::supervisor::Records;

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    Hangup,
    Edit,
}

impl Cause {
    fn words(self) -> &'static str {
        match self {
            Cause::Hangup => "SIGHUP",
            Cause::Edit => "the file changed",
        }
    }
}

/// How one reload went.
pub(super) enum Reload {
    /// The new config runs; what reloading journaled.
    Applied(Records),
    /// An edit event that left the text as it was.
    Unchanged,
    /// The running config stays; why, for the user.
    Refused(String),
}

pub(super) struct Reloader {
    path: PathBuf,
    /// The text last read, so an event that changed nothing changes nothing.
    last: Option<String>,
    /// How the last reload went, for systemd's status line.
    pub(super) status: String,
}

impl Reloader {
    pub(super) fn new(path: PathBuf) -> Self {
        let last = read_text(&path).ok();
        Self {
            path,
            last,
            status: String::new(),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and validates the file; applies it when it loads, else journals why it
    /// was refused and keeps the running config. A SIGHUP reloads an unchanged file too.
    pub(super) fn reload<T: Tmux>(&mut self, sup: &mut Supervisor<T>, cause: Cause) -> Result<Reload, StoreError> {
        let why = cause.words();
        let journal = sup.store().journal();
        let text = match read_text(&self.path) {
            Ok(t) => t,
            Err(e) => {
                let message = format!(
                    "config not reloaded ({why}): cannot read {}: {e}; the running config stays",
                    self.path.display()
                );
                journal.append(
                    now(),
                    Record::Warning {
                        message: message.clone(),
                    },
                )?;
                self.status = message.clone();
                return Ok(Reload::Refused(message));
            }
        };
        if cause == Cause::Edit && self.last.as_deref() == Some(text.as_str()) {
            return Ok(Reload::Unchanged);
        }
        self.last = Some(text.clone());
        match Config::parse(&text, &self.path) {
            Ok(config) => {
                let records = sup.reload(config, now())?;
                self.status = format!("config reloaded ({why})");
                Ok(Reload::Applied(records))
            }
            Err(e) => {
                let message = format!("config not reloaded ({why}), the running config stays: {e}");
                journal.append(
                    now(),
                    Record::Warning {
                        message: message.clone(),
                    },
                )?;
                self.status = format!("config not reloaded ({why}): see `vigil log`");
                Ok(Reload::Refused(message))
            }
        }
    }
}

/// The file's text, read as `Config::load` reads it: a FIFO or device in its place, or
/// a file over 1 MiB, is refused at once rather than waited on.
fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = read_regular(path, MAX_CONFIG_BYTES, Links::Follow)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Watches the config file's directory (editors replace the file rather than write
/// it), passing on every change that names the file.
pub(super) fn watch_file(path: &Path, changed: UnboundedSender<()>) -> notify::Result<RecommendedWatcher> {
    let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| p.file_name() == name.as_deref()) {
            let _ = changed.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
