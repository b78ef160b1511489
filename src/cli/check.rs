//! `vigil check`: the external watchdog pass, for a systemd timer or cron. Says whether
//! the owner is alive and its heartbeat fresh; stops a hung or stopped owner (see
//! [`crate::supervisor::watchdog`]); with `--restart`, starts a new detached `vigil watch` that
//! claims and adopts, and waits until it has. Exit 0 when the project is supervised by
//! a live, fresh owner at the end, 1 when it is not.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use super::Project;
use super::detach::{self, Claim};
use super::out::say;
use crate::adapters::clock::now;
use crate::engine::time::human;
use crate::store::record::CheckStep;
use crate::store::{Launcher, OwnerRecord, Store};
use crate::supervisor::watchdog::{self, DEFAULT_STALE_AFTER, Proc, Stop, Verdict};

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `None`: the default, 10 minutes or three polls, whichever is longer.
    pub stale_after: Option<Duration>,
    pub grace: Duration,
    pub restart: bool,
}

pub fn run(project: &Project, options: Options) -> Result<ExitCode> {
    let stale_after = options
        .stale_after
        .unwrap_or_else(|| DEFAULT_STALE_AFTER.max(project.config.poll_interval * 3));
    let store = Store::existing(&project.state_dir);
    let owner = store.as_ref().and_then(Store::owner_record);
    let heartbeat = store.as_ref().and_then(Store::heartbeat);
    let verdict = watchdog::judge(
        owner,
        heartbeat.as_ref(),
        Proc::read,
        stale_after,
        crate::adapters::clock::read(),
    );
    let found = verdict.describe(stale_after);
    let say = |line: &str| say!("vigil check: {line}");
    let (old, stopped) = match &verdict {
        Verdict::Fresh { .. } => {
            say(&format!("ok: {found}"));
            return Ok(ExitCode::SUCCESS);
        }
        Verdict::NoOwner => (None, true),
        Verdict::Gone { owner, .. } => (Some(owner.clone()), true),
        Verdict::Stale { owner, .. } | Verdict::Stopped { owner, .. } => (Some(owner.clone()), false),
    };
    say(&found);
    let stopped = if stopped {
        if let (Some(store), Some(owner)) = (&store, &old) {
            watchdog::journal(store, now(), CheckStep::Found, Some(owner), &found)?;
        }
        true
    } else {
        // A hung owner has a state dir: it wrote owner.json there.
        let store = store.context("the owner's state dir vanished")?;
        let owner = old.as_ref().context("a hung owner is recorded")?;
        watchdog::journal(&store, now(), CheckStep::Found, Some(owner), &found)?;
        let outcome = watchdog::stop(&store, owner, options.grace, now, &mut |line| say(line))?;
        if outcome == Stop::NotHolder {
            say(&format!(
                "refusing to act on {}: it names a process that is not this project's owner; \
                 remove it only if you know why it is there",
                store.path("owner.json").display()
            ));
            return Ok(ExitCode::from(1));
        }
        !matches!(outcome, Stop::Survived)
    };
    if !options.restart {
        say(&format!(
            "nothing supervises this project now; start `vigil watch` (under systemd, vigil@.service restarts by itself), or run `vigil check --restart`{}",
            if stopped { "" } else { " once the old owner is gone" }
        ));
        return Ok(ExitCode::from(1));
    }
    if !stopped {
        say("not starting a new supervisor while the old one is still there");
        return Ok(ExitCode::from(1));
    }
    restart(project, old.as_ref(), &say)
}

/// Starts `vigil watch` detached from this process (see [`detach`]) and waits until a
/// live owner newer than `old` has claimed the run and beaten once.
fn restart(project: &Project, old: Option<&OwnerRecord>, say: &dyn Fn(&str)) -> Result<ExitCode> {
    let store = Store::open(&project.state_dir)
        .with_context(|| format!("opening the state dir {}", project.state_dir.display()))?;
    let mut started = detach::start_watch(project, &store, Launcher::Check)?;
    let pid = started.pid();
    let log_path = started.log.clone();
    say(&format!(
        "started `vigil watch` as pid {pid} (output in {})",
        log_path.display()
    ));
    let (message, step) = match detach::await_claim(project, &store, &mut started, old.map_or(0, |o| o.epoch)) {
        Claim::Claimed(o) => {
            let message = if o.pid == pid {
                format!(
                    "new supervisor pid {pid} claimed the project (epoch {}) and adopted the agents",
                    o.epoch
                )
            } else {
                format!(
                    "pid {} (epoch {}) claimed the project first (systemd's restart?); pid {pid} stands down",
                    o.pid, o.epoch
                )
            };
            say(&message);
            watchdog::journal(&store, now(), CheckStep::Restarted, Some(&o), &message)?;
            return Ok(ExitCode::SUCCESS);
        }
        Claim::Exited(status) => (
            format!(
                "the new `vigil watch` (pid {pid}) exited ({status}) before claiming; see {}",
                log_path.display()
            ),
            CheckStep::RestartFailed,
        ),
        Claim::TimedOut => (
            format!(
                "the new `vigil watch` (pid {pid}) has not claimed the project within {}; see {}",
                human(detach::CLAIM_WAIT),
                log_path.display()
            ),
            CheckStep::RestartFailed,
        ),
    };
    say(&message);
    watchdog::journal(&store, now(), step, None, &message)?;
    Ok(ExitCode::from(1))
}
