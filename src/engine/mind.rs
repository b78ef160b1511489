//! The Mind: everything the supervisor believes about its fleet, as plain data that the
//! store snapshots to disk. Lifecycle moves forward only, within one incarnation; a new
//! incarnation starts again at `booting`. No IO here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Purpose;
use super::limit::LimitKind;
use super::time::Time;

/// A configured agent's name; also the suffix of its tmux session and its file names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentName(String);

impl AgentName {
    /// Longest name accepted; tmux and file systems cope with far more, humans do not.
    pub const MAX_LEN: usize = 64;

    /// A name usable as a tmux session name and a file name: ASCII letters, digits, `-`, `_`.
    pub fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One run of an agent in one tmux session; a restart makes the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Incarnation(pub u32);

impl Incarnation {
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Forward-only, per incarnation: `booting → working → completed | stalled | zombie`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Booting,
    Working,
    /// Ended on its own with exit 0, or ended by the user (`vigil stop`).
    Completed,
    /// Alive but unchanged past the stale timeout; vigil gave up on it.
    Stalled,
    /// Its pane or process is gone, or it exited with a failure.
    Zombie,
}

impl Lifecycle {
    fn rank(self) -> u8 {
        match self {
            Lifecycle::Booting => 0,
            Lifecycle::Working => 1,
            Lifecycle::Completed | Lifecycle::Stalled | Lifecycle::Zombie => 2,
        }
    }

    /// Whether an incarnation in this state may move to `next`: strictly forward only.
    pub fn can_become(self, next: Lifecycle) -> bool {
        next.rank() > self.rank()
    }

    /// Booting or working: there is (or should be) a process to watch.
    pub fn is_live(self) -> bool {
        self.rank() < 2
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Booting => "booting",
            Lifecycle::Working => "working",
            Lifecycle::Completed => "completed",
            Lifecycle::Stalled => "stalled",
            Lifecycle::Zombie => "zombie",
        }
    }
}

/// What a live agent's screen says, recomputed on every poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// The screen changed since the last poll.
    Active,
    /// Unchanged, and the agent's prompt is visible: it stopped and waits for input.
    Idle,
    /// A dialog needs a human (trust, permission, sign-in): never nudged or killed.
    Waiting,
    /// Unchanged with no prompt: thinking, or hung.
    Quiet,
    /// The agent reported a rate or usage limit.
    RateLimited,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Active => "active",
            Activity::Idle => "idle",
            Activity::Waiting => "waiting",
            Activity::Quiet => "quiet",
            Activity::RateLimited => "rate_limited",
        }
    }
}

/// How far vigil has gone to get a stuck incarnation moving again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escalation {
    None,
    Warn,
    Nudge,
    Triage,
    Terminate,
}

impl Escalation {
    pub fn as_str(self) -> &'static str {
        match self {
            Escalation::None => "none",
            Escalation::Warn => "warn",
            Escalation::Nudge => "nudge",
            Escalation::Triage => "triage",
            Escalation::Terminate => "terminate",
        }
    }
}

/// How an incarnation ended, for `status` and the restart policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    /// The exit status when the process exited normally.
    pub code: Option<i32>,
    /// Human words: "exit 3", "killed by signal 9", "tmux session disappeared".
    pub reason: String,
    /// The last non-blank lines the pane showed, the agent's last words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
    /// The incarnation never ran: tmux could not start it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start_failed: bool,
}

impl LastExit {
    /// An end with no exit status: the reason is all there is.
    pub fn because(reason: impl Into<String>) -> Self {
        Self {
            code: None,
            reason: reason.into(),
            last_lines: Vec::new(),
            start_failed: false,
        }
    }

    /// A start that failed before the agent ran.
    pub fn could_not_start(error: &str) -> Self {
        Self {
            start_failed: true,
            ..Self::because(format!("could not start: {error}"))
        }
    }
}

/// A rate limit the agent reported, persisted so a vigil restart keeps honouring it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub until: Time,
    /// How many times the limit came back after a cooldown ended.
    pub renewals: u32,
    /// Whether the agent has been told to resume since the cooldown ended.
    pub resumed: bool,
    /// The line that announced the limit.
    pub line: String,
    /// What the message said about its end.
    #[serde(default)]
    pub kind: LimitKind,
}

/// The checkpoint written when vigil gave up on a stuck incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointNote {
    pub incarnation: Incarnation,
    pub reason: String,
    pub at: Time,
}

/// A handoff the new incarnation is still to be given as its first message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The incarnation it takes over from.
    pub from: Incarnation,
    pub reason: String,
}

/// Everything recorded about one agent: its current incarnation and the history that
/// outlives incarnations (restarts, crash times, backoff).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub incarnation: Incarnation,
    pub session: String,
    pub lifecycle: Lifecycle,
    /// `None` until the first look at a live pane, and once the incarnation has ended.
    pub activity: Option<Activity>,
    pub escalation: Escalation,
    /// When this incarnation started (or was adopted).
    pub since: Time,
    /// When the screen last changed.
    pub last_change: Time,
    pub unchanged_checks: u32,
    /// Consecutive polls on which the screen changed; two in a row means real work.
    pub changes_in_row: u32,
    pub screen_hash: Option<String>,
    pub pane_pid: Option<u32>,
    /// Nudges sent since the agent last showed real work; spaces further nudges out.
    pub nudges: u32,
    /// Unchanged checks since the last nudge (or resume) was typed.
    #[serde(default)]
    pub checks_since_nudge: u32,
    pub restarts: u32,
    /// Times of recent crashes, oldest first, at most [`AgentRecord::CRASHES_KEPT`].
    pub crashes: Vec<Time>,
    /// Failures in a row without a stable run in between; drives the backoff.
    pub failures_in_row: u32,
    /// No automatic restart before this time (backoff or crash-loop hold).
    pub cooldown_until: Option<Time>,
    pub rate_limit: Option<RateLimit>,
    /// Whether a rate-limit line was on screen at the last poll; a limit counts again
    /// only when its line appears anew.
    #[serde(default)]
    pub limit_visible: bool,
    /// Consecutive polls that showed the incarnation ending without saying how (its
    /// process gone while tmux still shows the pane, or a dead pane with no status):
    /// usually tmux has not reaped it yet, so the end is judged on the next poll.
    #[serde(default)]
    pub unconfirmed_end: u32,
    /// The escalation ladder's dwell counts from the later of this and the last screen
    /// change (set when a rate-limit cooldown ends, so the wait does not count as stuck).
    #[serde(default)]
    pub ladder_from: Option<Time>,
    /// Whether the ladder's nudge step has typed its one nudge.
    #[serde(default)]
    pub ladder_nudged: bool,
    /// Text typed whose effect (the screen changing) is still to be seen.
    #[serde(default)]
    pub pending_effect: Option<Purpose>,
    /// When the triage command was asked about this incarnation; `None` when no answer
    /// is awaited.
    #[serde(default)]
    pub triage_since: Option<Time>,
    /// The handoff this incarnation is still to be given.
    #[serde(default)]
    pub handoff: Option<Handoff>,
    /// The last checkpoint written for this agent (kept across incarnations).
    #[serde(default)]
    pub checkpoint: Option<CheckpointNote>,
    pub last_exit: Option<LastExit>,
    /// Why the agent is in the state it is in, in words for `vigil status`.
    pub reason: String,
}

impl AgentRecord {
    pub const CRASHES_KEPT: usize = 10;

    /// A record for an incarnation that is starting (or was found running) now.
    pub fn new(incarnation: Incarnation, session: String, now: Time, reason: String) -> Self {
        Self {
            incarnation,
            session,
            lifecycle: Lifecycle::Booting,
            activity: None,
            escalation: Escalation::None,
            since: now,
            last_change: now,
            unchanged_checks: 0,
            changes_in_row: 0,
            screen_hash: None,
            pane_pid: None,
            nudges: 0,
            checks_since_nudge: 0,
            restarts: 0,
            crashes: Vec::new(),
            failures_in_row: 0,
            cooldown_until: None,
            rate_limit: None,
            limit_visible: false,
            unconfirmed_end: 0,
            ladder_from: None,
            ladder_nudged: false,
            pending_effect: None,
            triage_since: None,
            handoff: None,
            checkpoint: None,
            last_exit: None,
            reason,
        }
    }

    /// Moves on to a new incarnation, keeping the history that spans incarnations.
    pub fn begin(&mut self, incarnation: Incarnation, now: Time, reason: String) {
        let fresh = Self::new(incarnation, std::mem::take(&mut self.session), now, reason);
        *self = Self {
            restarts: self.restarts,
            crashes: std::mem::take(&mut self.crashes),
            failures_in_row: self.failures_in_row,
            last_exit: self.last_exit.take(),
            checkpoint: self.checkpoint.take(),
            ..fresh
        };
    }

    /// Moves the lifecycle forward; refuses (and returns false) any backward step.
    pub fn advance(&mut self, next: Lifecycle) -> bool {
        if !self.lifecycle.can_become(next) {
            return false;
        }
        self.lifecycle = next;
        true
    }
}

/// The supervisor's whole belief about its fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Mind {
    pub agents: BTreeMap<AgentName, AgentRecord>,
    /// Agents the user stopped: not started or restarted until `vigil up` or `restart`.
    #[serde(default)]
    pub stopped: BTreeSet<AgentName>,
    /// Sessions tagged for this run whose agent the config does not name; reported once.
    #[serde(default)]
    pub strays: BTreeSet<String>,
    /// Automatic restarts across the fleet, for the fleet-wide cap.
    #[serde(default)]
    pub fleet: FleetRestarts,
}

/// Recent automatic restarts of all agents, so a bad config cannot thrash the machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRestarts {
    /// Times of automatic restarts within the last hour, oldest first.
    pub times: Vec<Time>,
    /// Whether the cap is holding restarts back (announced once per episode).
    pub capped: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Lifecycle; 5] = [
        Lifecycle::Booting,
        Lifecycle::Working,
        Lifecycle::Completed,
        Lifecycle::Stalled,
        Lifecycle::Zombie,
    ];

    #[test]
    fn lifecycle_only_moves_forward() {
        for from in ALL {
            for to in ALL {
                let mut rec = AgentRecord::new(Incarnation(1), "s".into(), Time::default(), "".into());
                rec.lifecycle = from;
                let moved = rec.advance(to);
                let forward = matches!(
                    (from, to),
                    (Lifecycle::Booting, Lifecycle::Working)
                        | (Lifecycle::Booting | Lifecycle::Working, Lifecycle::Completed)
                        | (Lifecycle::Booting | Lifecycle::Working, Lifecycle::Stalled)
                        | (Lifecycle::Booting | Lifecycle::Working, Lifecycle::Zombie)
                );
                assert_eq!(moved, forward, "{from:?} -> {to:?}");
                assert_eq!(rec.lifecycle, if forward { to } else { from });
            }
        }
    }

    #[test]
    fn names_must_be_usable_by_tmux_and_the_file_system() {
        assert!(AgentName::new("backend-2_x").is_some());
        for bad in ["", "a.b", "a:b", "a b", "../x", "é", &"x".repeat(65)] {
            assert!(AgentName::new(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_new_incarnation_keeps_history_and_resets_the_rest() {
        let mut rec = AgentRecord::new(Incarnation(1), "p-a".into(), Time::from_millis(0), "".into());
        rec.lifecycle = Lifecycle::Zombie;
        rec.restarts = 2;
        rec.crashes = vec![Time::from_millis(5)];
        rec.unchanged_checks = 7;
        rec.begin(Incarnation(2), Time::from_millis(10), "restart".into());
        assert_eq!(rec.incarnation, Incarnation(2));
        assert_eq!(rec.lifecycle, Lifecycle::Booting);
        assert_eq!(rec.session, "p-a");
        assert_eq!(rec.restarts, 2);
        assert_eq!(rec.crashes, vec![Time::from_millis(5)]);
        assert_eq!(rec.unchanged_checks, 0);
        assert_eq!(rec.since, Time::from_millis(10));
    }
}
