//! Making sure something supervises the project before `vigil up` hands it the agents:
//! nothing to do when a live owner runs; else the systemd unit `vigil@<instance>.service`
//! when it is installed for the user and `systemctl --user start` succeeds, else a
//! detached `vigil watch` marked as `up`'s own (so `vigil down` may stop it). Says
//! which, in words and in fields.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Result;
use serde::Serialize;

use super::Project;
use super::detach::{self, Claim};
use crate::adapters::systemd::escape_path;
use crate::engine::time::human;
use crate::store::{Launcher, Store};

/// How the owner `up` relies on came to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// `systemctl --user start vigil@<instance>.service`.
    Systemd,
    /// A detached `vigil watch` that `up` started.
    Detached,
}

/// The owner `up` started (`pid` set), or why it could not (`pid` absent).
#[derive(Clone, Debug, Serialize)]
pub struct Supervision {
    pub how: How,
    pub pid: Option<u32>,
    pub epoch: Option<u64>,
    pub reason: String,
}

/// Starts an owner when none runs; `None` when one already does (then `up` goes through
/// it as before).
pub fn ensure_owner(project: &Project) -> Result<Option<Supervision>> {
    let store = project.store()?;
    if store.live_owner().is_some() {
        return Ok(None);
    }
    let old_epoch = store.owner_record().map_or(0, |o| o.epoch);
    let mut fallback = String::new();
    if let Some(unit) = installed_unit(project) {
        match systemctl_start(&unit) {
            Ok(()) => {
                let wait = detach::CLAIM_WAIT + project.config.poll_interval;
                if let Some(o) = detach::await_any_claim(&store, old_epoch, wait) {
                    return Ok(Some(Supervision {
                        how: How::Systemd,
                        pid: Some(o.pid),
                        epoch: Some(o.epoch),
                        reason: format!(
                            "supervised by {unit} (pid {}, epoch {}); `systemctl --user stop {unit}` stops it",
                            o.pid, o.epoch
                        ),
                    }));
                }
                fallback = format!("{unit} started but did not claim the project within {}; ", human(wait));
            }
            Err(why) => fallback = format!("{unit} did not start ({why}); "),
        }
    }
    Ok(Some(detached(project, &store, old_epoch, &fallback)?))
}

fn detached(project: &Project, store: &Store, old_epoch: u64, fallback: &str) -> Result<Supervision> {
    let mut started = detach::start_watch(project, store, Launcher::Up)?;
    let pid = started.pid();
    let log = started.log.display().to_string();
    let claim = detach::await_claim(project, store, &mut started, old_epoch);
    let (owner, reason) = match claim {
        Claim::Claimed(o) if o.pid == pid => (
            Some(o.clone()),
            format!(
                "{fallback}supervised by a detached `vigil watch` (pid {pid}, epoch {}, output in {log}); `vigil down` stops it and the agents",
                o.epoch
            ),
        ),
        Claim::Claimed(o) => (
            Some(o.clone()),
            format!(
                "{fallback}pid {} (`vigil {}`, epoch {}) claimed the project first; the agents went through it",
                o.pid,
                o.role.as_str(),
                o.epoch
            ),
        ),
        Claim::Exited(status) => (
            None,
            format!(
                "{fallback}the detached `vigil watch` (pid {pid}) exited ({status}) before claiming the project; see {log}; nothing supervises the agents"
            ),
        ),
        Claim::TimedOut => {
            // Not left to claim later, unseen: the agents were started without it.
            crate::adapters::process::kill(pid);
            let _ = started.child.wait();
            (
                None,
                format!(
                    "{fallback}the detached `vigil watch` (pid {pid}) did not claim the project within {}; it was killed; see {log}; nothing supervises the agents",
                    human(detach::CLAIM_WAIT)
                ),
            )
        }
    };
    Ok(Supervision {
        how: How::Detached,
        pid: owner.as_ref().map(|o| o.pid),
        epoch: owner.map(|o| o.epoch),
        reason,
    })
}

/// `vigil@<instance>.service` for this config, when `vigil install-units --user` wrote
/// the template where the user manager reads it.
pub fn installed_unit(project: &Project) -> Option<String> {
    let dir = super::units::user_unit_dir().ok()?;
    if !dir.join("vigil@.service").is_file() {
        return None;
    }
    let config = std::fs::canonicalize(&project.config.path).ok()?;
    Some(unit_name(&config))
}

fn unit_name(config: &Path) -> String {
    format!("vigil@{}.service", escape_path(config))
}

/// `systemctl --user start UNIT`; why not, when it did not.
fn systemctl_start(unit: &str) -> Result<(), String> {
    let out = Command::new("systemctl")
        .args(["--user", "start", unit])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or("").trim();
    Err(format!("systemctl {}: {}", out.status, crate::present::shown(first)))
}
