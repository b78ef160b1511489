//! Starting an owner that outlives the command that starts it: a detached `vigil watch`
//! (its own process group, stdin null, output appended to `watch.log` in the state dir,
//! no systemd service variables), then waiting until a live owner newer than the old
//! one has claimed the run and beaten once. Used by `vigil check --restart` and `vigil up`.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Project;
use crate::store::{Launcher, OwnerRecord, Store};

/// Where a detached watch writes what it prints, in the state dir.
pub const WATCH_LOG: &str = "watch.log";
/// How long a starter waits for the new watch to claim, on top of one poll.
pub const CLAIM_WAIT: Duration = Duration::from_secs(10);

/// A `vigil watch` started detached.
pub struct Started {
    pub child: Child,
    pub log: PathBuf,
}

impl Started {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// How the wait for a claim ended.
pub enum Claim {
    /// A live owner newer than the old one has claimed and beaten (ours, or another's
    /// that won the race: compare its pid).
    Claimed(OwnerRecord),
    /// Ours exited before any new owner claimed.
    Exited(ExitStatus),
    /// No new owner within the wait.
    TimedOut,
}

/// Starts `vigil watch` detached; `by` is recorded in its `owner.json` once it claims.
pub fn start_watch(project: &Project, store: &Store, by: Launcher) -> Result<Started> {
    let log_path = store.path(WATCH_LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding the vigil binary")?;
    let config = std::path::absolute(&project.config.path).unwrap_or_else(|_| project.config.path.clone());
    let mut cmd = Command::new(exe);
    cmd.arg("--config").arg(&config);
    if let Some(socket) = project.tmux.socket() {
        cmd.args(["--socket", socket]);
    }
    for var in crate::adapters::SERVICE_ENV {
        cmd.env_remove(var);
    }
    cmd.args(["watch", "--launched-by", by.as_str()])
        .env(crate::store::STATE_DIR_ENV, &project.state_dir)
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .with_context(|| format!("opening {}", log_path.display()))?,
        )
        .stderr(log)
        .process_group(0);
    let child = cmd.spawn().context("starting `vigil watch`")?;
    Ok(Started { child, log: log_path })
}

/// Waits (up to [`CLAIM_WAIT`] and one poll) until a live owner with an epoch above
/// `old_epoch` has claimed the run and beaten once, or `started` exits first.
pub fn await_claim(project: &Project, store: &Store, started: &mut Started, old_epoch: u64) -> Claim {
    let deadline = Instant::now() + CLAIM_WAIT + project.config.poll_interval;
    loop {
        if let Some(owner) = await_step(store, old_epoch) {
            return Claim::Claimed(owner);
        }
        if let Ok(Some(status)) = started.child.try_wait() {
            return Claim::Exited(status);
        }
        if Instant::now() >= deadline {
            return Claim::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `wait` for a live owner newer than `old_epoch` that has beaten once (one
/// that systemd starts, say).
pub fn await_any_claim(store: &Store, old_epoch: u64, wait: Duration) -> Option<OwnerRecord> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(owner) = await_step(store, old_epoch) {
            return Some(owner);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn await_step(store: &Store, old_epoch: u64) -> Option<OwnerRecord> {
    let owner = store.live_owner().filter(|o| o.epoch > old_epoch)?;
    let beaten = store
        .heartbeat()
        .is_some_and(|h| h.pid == owner.pid && h.epoch == owner.epoch);
    beaten.then_some(owner)
}
