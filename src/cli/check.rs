//! `vigil check`: the external watchdog pass, for a systemd timer or cron. Says whether
//! the owner is alive and its heartbeat fresh; stops a hung or stopped owner (see
//! [`crate::supervisor::watchdog`]); with `--restart`, starts a new detached `vigil watch` that
//! claims and adopts, and waits until it has. Exit 0 when the project is supervised by
//! a live, fresh owner at the end, 1 when it is not; `--json` prints the verdict and
//! what was done as one document at the end, with the same exit code.

use std::cell::RefCell;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

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

/// `vigil check --json`: the verdict for programs, printed once at the end; the exit
/// code is the same as without `--json`.
#[derive(Debug, Serialize)]
struct CheckReport {
    /// `no_owner`, `gone`, `fresh`, `stale` or `stopped`: what was found at the start.
    verdict: &'static str,
    /// The verdict in words.
    found: String,
    /// The recorded owner the verdict is about, if any.
    owner: Option<OwnerRecord>,
    /// Seconds since the owner's last sign of life, when it is alive.
    age_s: Option<f64>,
    stale_after_s: u64,
    /// Whether a live, fresh owner supervises the project at the end (exit 0).
    ok: bool,
    /// Everything the pass said, in order (what it stopped, what it started).
    steps: Vec<String>,
}

fn kind(verdict: &Verdict) -> (&'static str, Option<OwnerRecord>, Option<Duration>) {
    match verdict {
        Verdict::NoOwner => ("no_owner", None, None),
        Verdict::Gone { owner, .. } => ("gone", Some(owner.clone()), None),
        Verdict::Fresh { owner, age } => ("fresh", Some(owner.clone()), Some(*age)),
        Verdict::Stale { owner, age } => ("stale", Some(owner.clone()), Some(*age)),
        Verdict::Stopped { owner, age } => ("stopped", Some(owner.clone()), Some(*age)),
    }
}

pub fn run(project: &Project, options: Options, json: bool) -> Result<ExitCode> {
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
    let steps = RefCell::new(Vec::new());
    let say = |line: &str| {
        if json {
            steps.borrow_mut().push(line.to_owned());
        } else {
            say!("vigil check: {line}");
        }
    };
    let ok = act(project, options, &verdict, &found, store, &say)?;
    if json {
        let (verdict, owner, age) = kind(&verdict);
        let report = CheckReport {
            verdict,
            found,
            owner,
            age_s: age.map(|a| (a.as_secs_f64() * 10.0).round() / 10.0),
            stale_after_s: stale_after.as_secs(),
            ok,
            steps: steps.into_inner(),
        };
        say!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Acts on the verdict; true when a live, fresh owner supervises the project at the end.
fn act(
    project: &Project,
    options: Options,
    verdict: &Verdict,
    found: &str,
    store: Option<Store>,
    say: &dyn Fn(&str),
) -> Result<bool> {
    let (old, stopped) = match verdict {
        Verdict::Fresh { .. } => {
            say(&format!("ok: {found}"));
            return Ok(true);
        }
        Verdict::NoOwner => (None, true),
        Verdict::Gone { owner, .. } => (Some(owner.clone()), true),
        Verdict::Stale { owner, .. } | Verdict::Stopped { owner, .. } => (Some(owner.clone()), false),
    };
    say(found);
    let stopped = if stopped {
        if let (Some(store), Some(owner)) = (&store, &old) {
            watchdog::journal(store, now(), CheckStep::Found, Some(owner), found)?;
        }
        true
    } else {
        // A hung owner has a state dir: it wrote owner.json there.
        let store = store.context("the owner's state dir vanished")?;
        let owner = old.as_ref().context("a hung owner is recorded")?;
        watchdog::journal(&store, now(), CheckStep::Found, Some(owner), found)?;
        let outcome = watchdog::stop(&store, owner, options.grace, now, &mut |line| say(line))?;
        if outcome == Stop::NotHolder {
            say(&format!(
                "refusing to act on {}: it names a process that is not this project's owner; \
                 remove it only if you know why it is there",
                store.path("owner.json").display()
            ));
            return Ok(false);
        }
        !matches!(outcome, Stop::Survived)
    };
    if !options.restart {
        say(&format!(
            "nothing supervises this project now; start `vigil watch` (under systemd, vigil@.service restarts by itself), or run `vigil check --restart`{}",
            if stopped { "" } else { " once the old owner is gone" }
        ));
        return Ok(false);
    }
    if !stopped {
        say("not starting a new supervisor while the old one is still there");
        return Ok(false);
    }
    restart(project, old.as_ref(), say)
}

/// Starts `vigil watch` detached from this process (see [`detach`]) and waits until a
/// live owner newer than `old` has claimed the run and beaten once.
fn restart(project: &Project, old: Option<&OwnerRecord>, say: &dyn Fn(&str)) -> Result<bool> {
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
            if let Some(old) = old {
                let reason = format!(
                    "vigil pid {} (epoch {}) was replaced by `vigil check`: {message}",
                    old.pid, old.epoch
                );
                let alert = crate::engine::Alert::OwnerReplaced;
                if let Err(e) =
                    crate::supervisor::notify::post_from_outside(&project.config, &store, alert, &reason, now())
                {
                    say(&format!("could not leave the notice in the outbox: {e}"));
                }
            }
            return Ok(true);
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
    Ok(false)
}
