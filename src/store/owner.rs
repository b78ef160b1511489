//! Who owns a run: the `lock` file, `flock`ed by the owner for its whole life (the
//! kernel drops it when the owner dies; it is opened close-on-exec so no agent or tmux
//! process inherits it), `owner.json` saying who holds it, and the `heartbeat` the
//! owner rewrites every loop.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, file};
use crate::adapters::process;
use crate::engine::Time;
use crate::engine::gap::Steady;

/// What the owning process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Watch,
    Tick,
    Up,
    Command,
    Tui,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Watch => "watch",
            Role::Tick => "tick",
            Role::Up => "up",
            Role::Command => "command",
            Role::Tui => "tui",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub pid: u32,
    /// The pid's start time (clock ticks since boot): a reused pid has another.
    pub start_time: Option<u64>,
    pub host: String,
    /// One more on every claim.
    pub epoch: u64,
    pub started_at: Time,
    pub role: Role,
    /// Which vigil command started this owner detached, when one did: `vigil down`
    /// stops an owner `up` started, never one a user or systemd runs. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_by: Option<Launcher>,
}

/// The vigil command that started an owner detached (see [`OwnerRecord::launched_by`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launcher {
    Up,
    Check,
}

impl Launcher {
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Up => "up",
            Launcher::Check => "check",
        }
    }
}

impl OwnerRecord {
    /// Whether the recorded process is still the one running under that pid.
    pub fn is_alive(&self) -> bool {
        process::alive(self.pid) && process::start_time(self.pid) == self.start_time
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub pid: u32,
    pub epoch: u64,
    pub t: Time,
    pub loops: u64,
    /// The steady clocks at `t`, and the boot they count from: the next owner tells
    /// from them a jump of the wall clock from time passing. Absent from old files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady: Option<Steady>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// What the owner that beat was doing (a `tick` leaves gaps by design).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Why the owner cannot do its work (the state dir is full or read-only): it is
    /// alive and observing, but acts on nothing it cannot journal first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// How long the pass that wrote this beat took, to the millisecond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_ms: Option<u64>,
}

/// Held for as long as this process owns the run; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub owner: OwnerRecord,
}

/// Another process owns the run.
#[derive(Debug)]
pub struct Held {
    pub owner: Option<OwnerRecord>,
    pub heartbeat: Option<Heartbeat>,
    pub now: Time,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.owner {
            Some(o) => write!(
                f,
                "another vigil owns this project: pid {} (`vigil {}`, epoch {}) since {}",
                o.pid,
                o.role.as_str(),
                o.epoch,
                o.started_at
            )?,
            None => write!(f, "another vigil owns this project (it has not said who it is yet)")?,
        }
        if let Some(hb) = &self.heartbeat {
            write!(f, ", heartbeat {}s ago", self.now.since(hb.t).as_secs())?;
        }
        Ok(())
    }
}

const LOCK: &str = "lock";
/// How long (× 20 ms) a refused claimant waits for the owner to say who it is.
const OWNER_WAIT_TRIES: u32 = 50;
const OWNER: &str = "owner.json";
const HEARTBEAT: &str = "heartbeat";
/// Most of a degraded owner's reason kept in its heartbeat (it must fit the file's block).
const MAX_DEGRADED: usize = 400;

fn read_json<T: for<'de> Deserialize<'de>>(store: &Store, name: &str) -> Option<T> {
    let bytes =
        crate::adapters::fs::read_regular(&store.path(name), 64 * 1024, crate::adapters::fs::Links::Refuse).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `value` as `name`: a new file renamed into place when it must survive a power
/// cut (`owner.json`), else swapped in from a spare (the heartbeat, every pass; see
/// [`file::rewrite_with`]).
fn write_json(
    store: &Store,
    name: &str,
    value: &impl Serialize,
    durability: file::Durability,
) -> Result<(), StoreError> {
    let path = store.path(name);
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    file::rewrite_with(&path, durability, |out| out.write_all(&bytes))
}

impl Store {
    /// Claims the run without waiting: the lock, then `owner.json` with the next epoch.
    /// When another process holds the lock, says who.
    pub fn claim(&self, role: Role, now: Time) -> Result<Lock, StoreError> {
        let path = self.path(LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The winner of a race writes owner.json just after taking the lock; wait
                // a moment for it rather than name a dead predecessor (or nobody).
                let mut owner = self.live_owner();
                for _ in 0..OWNER_WAIT_TRIES {
                    if owner.is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    owner = self.live_owner();
                }
                let held = Held {
                    owner,
                    heartbeat: self.heartbeat(),
                    now,
                };
                return Err(StoreError::Held { owner: Box::new(held) });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io { path, source: e }),
        }
        let epoch = self.owner_record().map_or(0, |o| o.epoch) + 1;
        let pid = std::process::id();
        let owner = OwnerRecord {
            pid,
            start_time: process::start_time(pid),
            host: process::hostname(),
            epoch,
            started_at: now,
            role,
            launched_by: None,
        };
        write_json(self, OWNER, &owner, file::Durability::Synced)?;
        Ok(Lock { _file: file, owner })
    }

    /// Records in `owner.json` which command started this owner detached; only the
    /// process that holds the run (`pid`) rewrites it.
    pub fn mark_launched(&self, pid: u32, by: Launcher) -> Result<(), StoreError> {
        match self.owner_record() {
            Some(mut owner) if owner.pid == pid => {
                owner.launched_by = Some(by);
                write_json(self, OWNER, &owner, file::Durability::Synced)
            }
            _ => Ok(()),
        }
    }

    /// The file the owner holds a `flock` on for its whole life.
    pub fn lock_path(&self) -> std::path::PathBuf {
        self.path(LOCK)
    }

    /// The last owner recorded, alive or not.
    pub fn owner_record(&self) -> Option<OwnerRecord> {
        read_json(self, OWNER)
    }

    /// The recorded owner, if that very process is still running.
    pub fn live_owner(&self) -> Option<OwnerRecord> {
        self.owner_record().filter(OwnerRecord::is_alive)
    }

    pub fn beat(
        &self,
        lock: &Lock,
        loops: u64,
        now: Time,
        steady: Option<Steady>,
        pass: Option<std::time::Duration>,
    ) -> Result<(), StoreError> {
        let hb = Heartbeat {
            pid: lock.owner.pid,
            epoch: lock.owner.epoch,
            t: now,
            loops,
            steady,
            boot: steady.and(crate::adapters::clock::boot_id()).map(str::to_owned),
            role: Some(lock.owner.role),
            degraded: None,
            pass_ms: pass.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        // A heartbeat lost to a power cut is an old one: not worth waiting for the disk.
        write_json(self, HEARTBEAT, &hb, file::Durability::Cached)
    }

    /// Removes the temp files the owner keeps beside the files it rewrites every pass
    /// (the snapshot, the heartbeat); for an owner about to end. A later owner's claim
    /// removes what one that was killed left.
    pub fn drop_spares(&self) {
        file::drop_spare(&self.path(HEARTBEAT));
        file::drop_spare(&self.path(super::snapshot::FILE));
    }

    /// The heartbeat of an owner that cannot write its state dir: rewritten in place,
    /// in the blocks the file already has, so it still works on a full disk and
    /// `vigil check` does not take a degraded owner for a hung one.
    pub fn beat_degraded(&self, lock: &Lock, loops: u64, now: Time, why: &str) -> Result<(), StoreError> {
        let hb = Heartbeat {
            pid: lock.owner.pid,
            epoch: lock.owner.epoch,
            t: now,
            loops,
            steady: None,
            boot: None,
            role: Some(lock.owner.role),
            degraded: Some(why.chars().take(MAX_DEGRADED).collect()),
            pass_ms: None,
        };
        let path = self.path(HEARTBEAT);
        let bytes = serde_json::to_vec_pretty(&hb).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        file::write_atomic(&path, &bytes).or_else(|_| file::overwrite(&path, &bytes))
    }

    pub fn heartbeat(&self) -> Option<Heartbeat> {
        // A reader that held the last heartbeat open while the owner rewrote it (it is
        // the owner's next temp file) read half of a rewrite: the one now standing is whole.
        read_json(self, HEARTBEAT).or_else(|| read_json(self, HEARTBEAT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time_and_each_claim_bumps_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store.claim(Role::Watch, Time::from_millis(0)).unwrap();
        assert_eq!(first.owner.epoch, 1);
        // flock is per open file description: a second open in this process conflicts too.
        let refused = store.claim(Role::Tick, Time::from_millis(5_000)).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        assert!(message.contains("`vigil watch`"), "{message}");
        assert!(store.live_owner().is_some());
        drop(first);
        let second = store.claim(Role::Tick, Time::from_millis(6_000)).unwrap();
        assert_eq!(second.owner.epoch, 2);
    }
}
