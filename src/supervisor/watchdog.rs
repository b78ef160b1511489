//! The external watchdog behind `vigil check`: judges the recorded owner from
//! `owner.json`, its `heartbeat` and /proc, and stops one that hangs — TERM, a grace
//! period, KILL — through a pidfd that is matched against the recorded start time
//! before any signal, so a pid that now names another process is never signalled, and
//! only when `/proc/locks` shows that very pid holding the project's lock: a forged or
//! stale `owner.json` never gets a stranger signalled.
//! Each step it takes is journaled as a `check` record. Never claims the run and
//! never touches tmux or the agents.

use std::io;
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::adapters::process;
use crate::engine::Time;
use crate::engine::gap::Reading;
use crate::engine::time::human;
use crate::store::record::{Check, CheckStep};
use crate::store::{Entry, Heartbeat, OwnerRecord, Record, Store, StoreError};

/// An owner silent this long is hung (seed 004: 600 s).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(600);
/// How long a TERMed owner gets to finish its pass and go before KILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How long a KILLed process may take to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

/// What /proc says of a pid now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub alive: bool,
    pub start_time: Option<u64>,
    pub stopped: bool,
}

impl Proc {
    pub fn read(pid: u32) -> Self {
        Self {
            alive: process::alive(pid),
            start_time: process::start_time(pid),
            stopped: process::stopped(pid),
        }
    }
}

/// What the check makes of the recorded owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No owner was ever recorded.
    NoOwner,
    /// The recorded process is gone; `reused` when its pid now names another process.
    Gone { owner: OwnerRecord, reused: bool },
    /// Alive, and its last sign of life is recent.
    Fresh { owner: OwnerRecord, age: Duration },
    /// Alive, but silent for longer than the limit: hung.
    Stale { owner: OwnerRecord, age: Duration },
    /// Stopped (SIGSTOP, or traced): it cannot supervise anything.
    Stopped { owner: OwnerRecord, age: Duration },
}

impl Verdict {
    /// The verdict in words, for the terminal and the journal.
    pub fn describe(&self, stale_after: Duration) -> String {
        let who = |o: &OwnerRecord| format!("pid {} (`vigil {}`, epoch {})", o.pid, o.role.as_str(), o.epoch);
        match self {
            Verdict::NoOwner => "no vigil has ever owned this project".to_owned(),
            Verdict::Gone { owner, reused: false } => format!("the last owner, {}, is gone", who(owner)),
            Verdict::Gone { owner, reused: true } => format!(
                "the last owner, {}, is gone; its pid now belongs to another process, which is left alone",
                who(owner)
            ),
            Verdict::Fresh { owner, age } => format!(
                "{} is alive; last heartbeat {} ago (limit {})",
                who(owner),
                human(*age),
                human(stale_after)
            ),
            Verdict::Stale { owner, age } => format!(
                "{} is hung: no heartbeat for {} (limit {})",
                who(owner),
                human(*age),
                human(stale_after)
            ),
            Verdict::Stopped { owner, age } => format!(
                "{} is stopped (SIGSTOP or a debugger); last heartbeat {} ago",
                who(owner),
                human(*age)
            ),
        }
    }
}

/// The owner's last sign of life: its own heartbeat, else the moment it claimed (a
/// heartbeat left by an earlier owner says nothing about this one).
pub fn last_sign(owner: &OwnerRecord, heartbeat: Option<&Heartbeat>) -> Time {
    match heartbeat {
        Some(hb) if hb.pid == owner.pid && hb.epoch == owner.epoch => hb.t.max(owner.started_at),
        _ => owner.started_at,
    }
}

/// How long the owner has been silent. Measured on the steady clock the machine was
/// awake on when its heartbeat carries one from this boot: a jump of the wall clock is
/// no silence, and neither is a suspend (the owner could not beat while the machine
/// slept, and beats on its first pass after). The wall clock otherwise.
fn silence(owner: &OwnerRecord, heartbeat: Option<&Heartbeat>, now: Reading) -> Duration {
    let wall = now.wall.since(last_sign(owner, heartbeat));
    let ours = heartbeat.filter(|hb| hb.pid == owner.pid && hb.epoch == owner.epoch);
    match (ours.and_then(|hb| hb.steady.zip(hb.boot.as_deref())), now.steady) {
        (Some((then, boot)), Some(steady)) if Some(boot) == crate::adapters::clock::boot_id() => {
            steady.awake.saturating_sub(then.awake)
        }
        _ => wall,
    }
}

/// Judges the recorded owner. `proc_of` reads /proc (a fake in tests).
pub fn judge(
    owner: Option<OwnerRecord>,
    heartbeat: Option<&Heartbeat>,
    proc_of: impl Fn(u32) -> Proc,
    stale_after: Duration,
    now: impl Into<Reading>,
) -> Verdict {
    let now = now.into();
    let Some(owner) = owner else {
        return Verdict::NoOwner;
    };
    let p = proc_of(owner.pid);
    if !p.alive {
        return Verdict::Gone { owner, reused: false };
    }
    if owner.start_time.is_none() || p.start_time != owner.start_time {
        return Verdict::Gone { owner, reused: true };
    }
    let age = silence(&owner, heartbeat, now);
    if p.stopped {
        Verdict::Stopped { owner, age }
    } else if age > stale_after {
        Verdict::Stale { owner, age }
    } else {
        Verdict::Fresh { owner, age }
    }
}

/// How stopping the owner ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// It went after TERM, within the grace.
    Termed { after: Duration },
    /// It outlived the grace and went after KILL.
    Killed { after: Duration },
    /// It was gone before any signal was sent.
    AlreadyGone,
    /// Its pid names another process now: nothing was sent.
    NotOurs,
    /// The process is the one recorded but does not hold the project's lock, so
    /// `owner.json` is not the owner's word (forged, or left by a process that let the
    /// lock go): nothing was sent.
    NotHolder,
    /// Still there after KILL (uninterruptible sleep in the kernel?).
    Survived,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot send {signal} to pid {pid}: {source}")]
    Signal {
        signal: &'static str,
        pid: u32,
        source: io::Error,
    },
}

/// Journals one step of the check, labelled as the checker's, not the owner's.
pub fn journal(
    store: &Store,
    now: Time,
    step: CheckStep,
    owner: Option<&OwnerRecord>,
    message: &str,
) -> Result<Entry, StoreError> {
    let check = Check {
        step,
        checker: std::process::id(),
        message: message.to_owned(),
        pid: owner.map(|o| o.pid),
        epoch: owner.map(|o| o.epoch),
    };
    store.journal().append(now, Record::Check(check))
}

/// Stops a hung or stopped owner: TERM, up to `grace` for it to go, then KILL. Only
/// the very process recorded is signalled: a pidfd is opened first and the pid's start
/// time compared with the record's after, so the pidfd cannot name a newcomer. Every
/// signal is journaled before it is sent; `say` hears each step too.
pub fn stop(
    store: &Store,
    owner: &OwnerRecord,
    grace: Duration,
    clock: fn() -> Time,
    say: &mut dyn FnMut(&str),
) -> Result<Stop, WatchdogError> {
    let pid = owner.pid;
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Ok(Stop::NotOurs);
    };
    let pidfd = match pidfd_open(raw, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(Stop::AlreadyGone),
        Err(e) => {
            return Err(WatchdogError::Signal {
                signal: "a pidfd",
                pid,
                source: e.into(),
            });
        }
    };
    let ours = || owner.start_time.is_some() && process::start_time(pid) == owner.start_time;
    if !process::alive(pid) {
        return Ok(Stop::AlreadyGone);
    }
    if !ours() {
        let message = format!("pid {pid} now belongs to another process (its start time differs); not signalled");
        say(&message);
        journal(store, clock(), CheckStep::Spared, Some(owner), &message)?;
        return Ok(Stop::NotOurs);
    }
    let lock = store.lock_path();
    let holders = process::flock_holders(&lock).unwrap_or_default();
    if !holders.contains(&pid) {
        let held_by = match holders.as_slice() {
            [] => "nobody holds it".to_owned(),
            pids => format!(
                "it is held by pid {}",
                pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let message = format!(
            "pid {pid} does not hold the project's lock {} ({held_by}), so owner.json does not name the owner; not signalled",
            lock.display()
        );
        say(&message);
        journal(store, clock(), CheckStep::Spared, Some(owner), &message)?;
        return Ok(Stop::NotHolder);
    }
    let gone = || !process::alive(pid) || !ours();
    let send = |signal: Signal, name: &'static str| match pidfd_send_signal(&pidfd, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(WatchdogError::Signal {
            signal: name,
            pid,
            source: e.into(),
        }),
    };
    let message = format!(
        "sending SIGTERM to pid {pid}; it has {} to finish its pass and exit",
        human(grace)
    );
    say(&message);
    journal(store, clock(), CheckStep::Term, Some(owner), &message)?;
    let started = Instant::now();
    send(Signal::TERM, "SIGTERM")?;
    if wait_until(grace, gone) {
        let after = started.elapsed();
        let message = format!("pid {pid} exited {} after SIGTERM", human(after));
        say(&message);
        journal(store, clock(), CheckStep::Exited, Some(owner), &message)?;
        return Ok(Stop::Termed { after });
    }
    let message = format!("pid {pid} is still there after {}: sending SIGKILL", human(grace));
    say(&message);
    journal(store, clock(), CheckStep::Kill, Some(owner), &message)?;
    send(Signal::KILL, "SIGKILL")?;
    if wait_until(KILL_WAIT, gone) {
        let after = started.elapsed();
        let message = format!("pid {pid} was killed; the lock is free");
        say(&message);
        journal(store, clock(), CheckStep::Killed, Some(owner), &message)?;
        return Ok(Stop::Killed { after });
    }
    let message = format!(
        "pid {pid} is still there {} after SIGKILL (stuck in the kernel?); nothing more can be done",
        human(KILL_WAIT)
    );
    say(&message);
    journal(store, clock(), CheckStep::Survived, Some(owner), &message)?;
    Ok(Stop::Survived)
}

/// Polls `done` until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    fn t(s: i64) -> Time {
        Time::from_millis(1_800_000_000_000 + s * 1000)
    }

    fn owner() -> OwnerRecord {
        OwnerRecord {
            pid: 4242,
            start_time: Some(99),
            host: "h".into(),
            epoch: 3,
            started_at: t(0),
            role: Role::Watch,
            launched_by: None,
        }
    }

    fn beat(at: i64) -> Heartbeat {
        Heartbeat {
            pid: 4242,
            epoch: 3,
            t: t(at),
            loops: 7,
            steady: None,
            boot: None,
            role: None,
            degraded: None,
            pass_ms: None,
        }
    }

    const RUNNING: Proc = Proc {
        alive: true,
        start_time: Some(99),
        stopped: false,
    };
    const LIMIT: Duration = Duration::from_secs(600);

    #[test]
    fn an_owner_that_beat_recently_is_fresh() {
        let v = judge(Some(owner()), Some(&beat(1000)), |_| RUNNING, LIMIT, t(1300));
        assert_eq!(
            v,
            Verdict::Fresh {
                owner: owner(),
                age: Duration::from_secs(300)
            }
        );
    }

    #[test]
    fn a_wall_clock_jump_is_no_silence_when_the_heartbeat_carries_the_steady_clock() {
        let Some(boot) = crate::adapters::clock::boot_id() else {
            return;
        };
        let steady = |s: u64| crate::engine::gap::Steady {
            awake: Duration::from_secs(s),
            since_boot: Duration::from_secs(s),
        };
        let hb = Heartbeat {
            steady: Some(steady(100)),
            boot: Some(boot.to_owned()),
            ..beat(1000)
        };
        // Two hours later by the wall clock, five seconds later by the steady one.
        let jumped = Reading {
            wall: t(1000 + 7200),
            steady: Some(steady(105)),
        };
        let v = judge(Some(owner()), Some(&hb), |_| RUNNING, LIMIT, jumped);
        assert!(
            matches!(v, Verdict::Fresh { age, .. } if age == Duration::from_secs(5)),
            "{v:?}"
        );
        let other_boot = Heartbeat {
            boot: Some("another boot".into()),
            ..hb
        };
        let v = judge(Some(owner()), Some(&other_boot), |_| RUNNING, LIMIT, jumped);
        assert!(matches!(v, Verdict::Stale { .. }), "{v:?}");
    }

    #[test]
    fn an_owner_silent_past_the_limit_is_stale() {
        let v = judge(Some(owner()), Some(&beat(1000)), |_| RUNNING, LIMIT, t(1601));
        assert!(
            matches!(v, Verdict::Stale { age, .. } if age == Duration::from_secs(601)),
            "{v:?}"
        );
        assert!(
            v.describe(LIMIT).contains("no heartbeat for 10m1s"),
            "{}",
            v.describe(LIMIT)
        );
    }

    #[test]
    fn a_stopped_owner_is_judged_stopped_whatever_its_heartbeat() {
        let stopped = Proc {
            stopped: true,
            ..RUNNING
        };
        let v = judge(Some(owner()), Some(&beat(1000)), |_| stopped, LIMIT, t(1001));
        assert!(matches!(v, Verdict::Stopped { .. }), "{v:?}");
    }

    #[test]
    fn a_heartbeat_of_an_earlier_owner_does_not_count_for_this_one() {
        let old = Heartbeat { epoch: 2, ..beat(5000) };
        let v = judge(Some(owner()), Some(&old), |_| RUNNING, LIMIT, t(700));
        assert!(
            matches!(v, Verdict::Stale { age, .. } if age == Duration::from_secs(700)),
            "{v:?}"
        );
    }

    #[test]
    fn a_pid_that_now_names_another_process_is_gone_and_reused() {
        let other = Proc {
            start_time: Some(12345),
            ..RUNNING
        };
        let v = judge(Some(owner()), Some(&beat(0)), |_| other, LIMIT, t(5000));
        assert_eq!(
            v,
            Verdict::Gone {
                owner: owner(),
                reused: true
            }
        );
        let dead = Proc {
            alive: false,
            ..RUNNING
        };
        assert!(matches!(
            judge(Some(owner()), None, |_| dead, LIMIT, t(1)),
            Verdict::Gone { reused: false, .. }
        ));
        assert_eq!(judge(None, None, |_| RUNNING, LIMIT, t(1)), Verdict::NoOwner);
    }

    #[test]
    fn stop_never_signals_a_process_whose_start_time_differs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut recorded = owner();
        recorded.pid = sleeper.id();
        recorded.start_time = process::start_time(sleeper.id()).map(|s| s + 1);
        let mut said = Vec::new();
        let outcome = stop(&store, &recorded, Duration::from_millis(100), || t(0), &mut |s| {
            said.push(s.to_owned())
        })
        .unwrap();
        assert_eq!(outcome, Stop::NotOurs);
        assert!(process::alive(sleeper.id()), "the other process was not touched");
        let journal = crate::store::read_journal(store.journal().path()).unwrap();
        assert_eq!(journal.len(), 1);
        assert!(
            matches!(&journal[0].record, Record::Check(c) if c.step == CheckStep::Spared),
            "{journal:?}"
        );
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn stop_never_signals_a_process_that_does_not_hold_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut forged = owner();
        forged.pid = sleeper.id();
        forged.start_time = process::start_time(sleeper.id());
        let mut said = Vec::new();
        let outcome = stop(&store, &forged, Duration::from_millis(100), || t(0), &mut |s| {
            said.push(s.to_owned())
        })
        .unwrap();
        assert_eq!(outcome, Stop::NotHolder);
        assert!(
            process::alive(sleeper.id()),
            "the forged owner's process was not touched"
        );
        assert!(said[0].contains("does not hold the project's lock"), "{said:?}");
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn stop_terms_then_kills_a_process_that_ignores_term() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // It holds the project's lock as an owner does (flock(1) takes it in its own
        // pid, after `exec`), and ignores TERM (the ignore is inherited through exec).
        let mut stubborn = std::process::Command::new("sh")
            .args([
                "-c",
                "trap '' TERM; exec flock -o \"$0\" sleep 10",
                &*store.lock_path().to_string_lossy(),
            ])
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(5), || {
            process::flock_holders(&store.lock_path())
                .unwrap_or_default()
                .contains(&stubborn.id())
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut recorded = owner();
        recorded.pid = stubborn.id();
        recorded.start_time = process::start_time(stubborn.id());
        // The test is this child's parent: reap it as soon as it dies so it reads gone.
        let pid = stubborn.id();
        let reaper = std::thread::spawn(move || stubborn.wait().unwrap());
        let outcome = stop(&store, &recorded, Duration::from_millis(300), || t(0), &mut |_| {}).unwrap();
        assert!(matches!(outcome, Stop::Killed { .. }), "{outcome:?}");
        assert!(!process::alive(pid));
        let status = reaper.join().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        let steps: Vec<CheckStep> = crate::store::read_journal(store.journal().path())
            .unwrap()
            .into_iter()
            .map(|e| match e.record {
                Record::Check(c) => c.step,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(steps, [CheckStep::Term, CheckStep::Kill, CheckStep::Killed]);
    }
}
