//! The rules an agent is judged by, as plain values built from the config: thresholds,
//! the restart policy and the backoff and crash-loop arithmetic. No IO here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mind::EndedLifecycle;
use super::time::Time;

/// When an ended incarnation is replaced by a new one (Docker's vocabulary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart; an ended agent stays ended.
    No,
    /// Restart after a failure (crash, lost pane, stall), not after a clean exit 0.
    OnFailure,
    /// Always restart; a `vigil stop` lasts until vigil itself restarts.
    Always,
    /// Always restart, except after a `vigil stop`, which holds across vigil restarts.
    UnlessStopped,
}

impl RestartPolicy {
    pub const NAMES: [&'static str; 4] = ["no", "on-failure", "always", "unless-stopped"];

    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// Whether an incarnation that ended in `ended` is replaced.
    pub fn restarts_after(self, ended: EndedLifecycle) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure => ended != EndedLifecycle::Completed,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

/// Every threshold vigil applies to one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub restart: RestartPolicy,
    /// Lines of the pane's tail hashed and searched.
    pub tail_lines: usize,
    /// Unchanged checks with the prompt visible before a nudge.
    pub idle_checks: u32,
    /// Unchanged this long → stalled → restarted.
    pub stale_after: Duration,
    /// Last non-blank lines searched for a rate-limit message.
    pub rate_limit_lines: usize,
    pub rate_limit_cooldown: Duration,
    pub crash_window: Duration,
    pub crash_max: u32,
    pub crash_cooldown: Duration,
    /// Text typed (literally, then Enter) to nudge an idle agent.
    pub nudge: String,
    /// Text typed when a rate-limit cooldown ends.
    pub resume: String,
    /// Waited past a reset time an agent announced, so it has surely passed.
    pub rate_limit_margin: Duration,
    /// The escalation ladder: unchanged this long → warn, → nudge, → triage; terminate
    /// comes at `stale_after`.
    pub warn_after: Duration,
    pub nudge_after: Duration,
    pub triage_after: Duration,
    /// An incarnation up this long clears the failures-in-a-row count (and so the backoff).
    pub stable_after: Duration,
    /// The triage command's argv; `None`: the built-in rules decide.
    pub triage: Option<Vec<String>>,
    /// How long the triage command may take; past it (plus a grace) the rules decide.
    pub triage_timeout: Duration,
    /// A still screen over a process tree using at least this much CPU (percent of one
    /// core) is working off-screen: `active`, and the ladder does not climb.
    pub busy_cpu: u32,
    /// First message of an incarnation that replaces a stuck one; `{agent}`,
    /// `{previous}`, `{reason}` and `{checkpoint}` are filled in.
    pub handoff: String,
    /// How long a signal from the agent's own hooks counts before the screen decides
    /// again (a waiting one holds while its dialog's screen is unchanged).
    pub signal_fresh: Duration,
}

/// The default handoff message (one line: typed text must not press Enter early).
pub const HANDOFF: &str = "vigil restarted you: your previous session ({previous}) was stopped because {reason}. Its last screen, git branch and changed files are in {checkpoint}. Read it, check git status, and continue the task where it left off.";

impl Default for Policy {
    fn default() -> Self {
        Self {
            restart: RestartPolicy::OnFailure,
            tail_lines: 30,
            idle_checks: 3,
            stale_after: Duration::from_secs(3600),
            rate_limit_lines: 3,
            rate_limit_cooldown: Duration::from_secs(300),
            crash_window: Duration::from_secs(120),
            crash_max: 3,
            crash_cooldown: Duration::from_secs(120),
            nudge: "continue".into(),
            resume: "continue".into(),
            rate_limit_margin: Duration::from_secs(60),
            warn_after: Duration::from_secs(300),
            nudge_after: Duration::from_secs(600),
            triage_after: Duration::from_secs(1200),
            stable_after: Duration::from_secs(600),
            triage: None,
            triage_timeout: Duration::from_secs(60),
            handoff: HANDOFF.into(),
            busy_cpu: BUSY_CPU,
            signal_fresh: super::signal::FRESH,
        }
    }
}

/// The CPU (percent of one core) over which a still screen counts as working: a build,
/// a test run or an install uses far more; an agent waiting on its API, nearly none.
pub const BUSY_CPU: u32 = 25;

/// First restart after a failure is immediate; further failures in a row wait 1 s,
/// doubling up to this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// At most this many automatic restarts per hour across the fleet, by default.
pub const FLEET_RESTARTS_PER_HOUR: u32 = 60;

/// The wait before restarting after `failures_in_row` failures without a stable run.
pub fn backoff(failures_in_row: u32) -> Duration {
    match failures_in_row {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(20)).min(BACKOFF_MAX),
    }
}

/// The host backoff's longest wait: a lost server costs the whole fleet, so it waits
/// less long than one agent's backoff does.
pub const HOST_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A fleet that ran this long since the last host failure starts its host backoff over.
pub const HOST_STABLE_AFTER: Duration = Duration::from_secs(600);

/// The wait before bringing the fleet back after `outages` host failures in a row: the
/// first at once, then 1 s, doubling up to [`HOST_BACKOFF_MAX`].
pub fn host_backoff(outages: u32) -> Duration {
    match outages {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(20)).min(HOST_BACKOFF_MAX),
    }
}

/// Crashes within the window that ends at `now`.
pub fn crashes_within(crashes: &[Time], window: Duration, now: Time) -> usize {
    crashes.iter().filter(|t| now.since(**t) <= window).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes() {
        let waits: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn host_backoff_doubles_from_one_second_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| host_backoff(n).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(host_backoff(u32::MAX), HOST_BACKOFF_MAX);
    }

    #[test]
    fn policies_follow_docker() {
        use EndedLifecycle::*;
        use RestartPolicy::*;
        assert!(!No.restarts_after(Zombie));
        assert!(OnFailure.restarts_after(Zombie) && OnFailure.restarts_after(Stalled));
        assert!(!OnFailure.restarts_after(Completed));
        assert!(Always.restarts_after(Completed) && UnlessStopped.restarts_after(Completed));
    }

    #[test]
    fn the_crash_window_slides() {
        let crashes = [
            Time::from_millis(0),
            Time::from_millis(60_000),
            Time::from_millis(100_000),
        ];
        let window = Duration::from_secs(120);
        assert_eq!(crashes_within(&crashes, window, Time::from_millis(110_000)), 3);
        assert_eq!(crashes_within(&crashes, window, Time::from_millis(130_000)), 2);
        assert_eq!(crashes_within(&crashes, window, Time::from_millis(300_000)), 0);
    }
}
