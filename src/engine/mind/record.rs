//! One agent's record: its current incarnation, in one [`Phase`] — [`Live`] (what its
//! screen showed and what vigil did about it) or [`Ended`] (how it ended and any
//! [`Hold`] on its restart) — beside the history that outlives incarnations. What only
//! means something while an incarnation is live cannot be written once it has ended,
//! and the lifecycle moves only forward: `Live::work` (booting → working),
//! [`AgentRecord::finish`] (live → ended), [`AgentRecord::begin`] (a new incarnation).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{
    Activity, CheckpointNote, EndedLifecycle, Escalation, Handoff, Incarnation, LastExit, Lifecycle, LiveLifecycle,
    RateLimit,
};
use crate::engine::time::Time;
use crate::engine::{Alert, Purpose};

/// Everything recorded about one agent: its current incarnation, in its phase, and the
/// history that outlives incarnations (restarts, crashes, failures in a row, the last
/// checkpoint).
///
/// Deserializes from both the current shape and the shape vigil 0.1 wrote (snapshot
/// schema v1, and the journal's `record` lines of that time): the reader of either
/// shape is in [`super::v1`], so this file knows only today's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentRecord {
    pub incarnation: Incarnation,
    pub session: String,
    /// When this incarnation started (or was adopted).
    pub since: Time,
    /// The process of its pane, once seen; kept when it ends (the dead pane may remain).
    pub pane_pid: Option<u32>,
    /// Live or ended; outside `mind`, changed only by [`AgentRecord::begin`],
    /// [`Live::work`] and [`AgentRecord::finish`].
    pub(super) phase: Phase,
    /// A rate limit this incarnation reported, persisted so a vigil restart keeps
    /// honouring it. It outlives the incarnation's death (a replacement would only hit
    /// the same limit) but not a new incarnation.
    pub rate_limit: Option<RateLimit>,
    pub restarts: u32,
    /// Times of recent crashes, oldest first, at most [`AgentRecord::CRASHES_KEPT`].
    pub crashes: Vec<Time>,
    /// Failures in a row without a stable run in between; drives the backoff.
    pub failures_in_row: u32,
    /// The last checkpoint written for this agent (kept across incarnations).
    pub checkpoint: Option<CheckpointNote>,
    /// The lasting alerts whose episode is open (the user was told it began and not yet
    /// that it ended), so one episode is one notice, across vigil restarts too.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub alerts: BTreeSet<Alert>,
    /// Why the agent is in the state it is in, in words for `vigil status`. Words only:
    /// nothing is decided from them.
    pub reason: String,
}

/// Where an incarnation is in its lifecycle, with what only that part of it has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Live(Live),
    Ended(Ended),
}

/// A live incarnation (booting or working): what its screen showed, and how far vigil
/// has gone to keep it moving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Live {
    /// Outside `mind`, it moves only forward, through [`Live::work`].
    pub(super) lifecycle: LiveLifecycle,
    /// `None` until the first look at its pane.
    pub activity: Option<Activity>,
    pub escalation: Escalation,
    /// When the screen last changed.
    pub last_change: Time,
    pub unchanged_checks: u32,
    /// Consecutive polls on which the screen changed; a few in a row mean real work.
    pub changes_in_row: u32,
    pub screen_hash: Option<String>,
    /// Nudges sent since the agent last showed real work; spaces further nudges out.
    pub nudges: u32,
    /// Unchanged checks since the last nudge (or resume) was typed.
    pub checks_since_nudge: u32,
    /// Whether a rate-limit line was on screen at the last poll; a limit counts again
    /// only when its line appears anew.
    pub limit_visible: bool,
    /// Consecutive polls that showed the incarnation ending without saying how (its
    /// process gone while tmux still shows the pane, or a dead pane with no status):
    /// usually tmux has not reaped it yet, so the end is judged on the next poll.
    pub unconfirmed_end: u32,
    /// The escalation ladder's dwell counts from the later of this and the last screen
    /// change (set when a rate-limit cooldown ends, so the wait does not count as stuck).
    pub ladder_from: Option<Time>,
    /// Whether the ladder's nudge step has typed its one nudge.
    pub ladder_nudged: bool,
    /// Text typed whose effect (the screen changing) is still to be seen.
    pub pending_effect: Option<Purpose>,
    /// When the triage command was asked about this incarnation; `None` when no answer
    /// is awaited.
    pub triage_since: Option<Time>,
    /// The handoff this incarnation is still to be given as its first message.
    pub handoff: Option<Handoff>,
    /// How the previous incarnation ended; `None` for a first one.
    pub last_exit: Option<LastExit>,
    /// Whether the agent's own process (its `process` pattern) was seen in the pane's
    /// tree in this incarnation.
    #[serde(default)]
    pub agent_seen: bool,
    /// Polls in a row whose pane was alive with no agent process in its tree.
    #[serde(default)]
    pub agent_missing: u32,
    /// Its pane's process tree at the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<crate::engine::Tree>,
    /// Whether the last look judged it working off-screen (its screen still, its tree
    /// busy), so the journal says so once per stretch.
    #[serde(default)]
    pub busy_off_screen: bool,
    /// Its start, decided but held back by host pressure: nothing runs yet, and the
    /// start is tried again every pass until pressure clears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<crate::engine::Deferral>,
    /// The last signal this incarnation's own hooks sent ([`crate::engine::signal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Box<crate::engine::signal::Kept>>,
}

/// An ended incarnation: how it ended, and what holds its restart back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub lifecycle: EndedLifecycle,
    pub exit: LastExit,
    /// The hold its end put on the next restart (backoff, crash loop); kept once it
    /// has passed, until the next incarnation begins.
    pub hold: Option<Hold>,
    /// When its screen last changed, before it ended.
    pub last_change: Time,
}

/// Something holding automatic action back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// Nothing automatic before `at`.
    Until { at: Time, cause: Wait },
    /// Nothing automatic until a human acts.
    UntilHuman { cause: HumanNeeded },
}

/// Why a hold lasts until a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wait {
    /// Failures in a row: each waits twice as long as the last.
    Backoff,
    /// `crashes` crashes within the crash window.
    CrashLoop { crashes: u32 },
    /// A rate-limit cooldown.
    RateLimit,
    /// The host backoff after a host failure (`outages` in a row): the whole fleet
    /// waits, and no agent's own crash count is touched.
    Host { outages: u32 },
}

/// Why a hold lasts until a human acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HumanNeeded {
    /// A limit that waiting will not lift (a plan, a quota, billing).
    NoResetLimit,
    /// Its command could not start (not found, not executable, its cwd gone): retried
    /// when what starting it runs changes (`start` is [`FleetAgent::start_key`] at the
    /// failure) or on `vigil up`, never into a crash loop.
    ///
    /// [`FleetAgent::start_key`]: crate::engine::FleetAgent::start_key
    StartFailed { start: u64 },
}

impl Hold {
    /// When it ends by itself; `None` when only a human ends it.
    pub fn until(&self) -> Option<Time> {
        match self {
            Hold::Until { at, .. } => Some(*at),
            Hold::UntilHuman { .. } => None,
        }
    }

    /// Whether it still holds at `now`.
    pub fn holds_at(&self, now: Time) -> bool {
        self.until().is_none_or(|at| now < at)
    }
}

impl Live {
    pub(super) fn new(lifecycle: LiveLifecycle, now: Time, last_exit: Option<LastExit>) -> Self {
        Self {
            lifecycle,
            activity: None,
            escalation: Escalation::None,
            last_change: now,
            unchanged_checks: 0,
            changes_in_row: 0,
            screen_hash: None,
            nudges: 0,
            checks_since_nudge: 0,
            limit_visible: false,
            unconfirmed_end: 0,
            ladder_from: None,
            ladder_nudged: false,
            pending_effect: None,
            triage_since: None,
            handoff: None,
            last_exit,
            agent_seen: false,
            agent_missing: 0,
            tree: None,
            busy_off_screen: false,
            deferred: None,
            signal: None,
        }
    }

    pub fn lifecycle(&self) -> LiveLifecycle {
        self.lifecycle
    }

    /// Booting → working; refuses (and returns false) when it is working already.
    pub fn work(&mut self) -> bool {
        let moved = self.lifecycle == LiveLifecycle::Booting;
        self.lifecycle = LiveLifecycle::Working;
        moved
    }
}

impl AgentRecord {
    pub const CRASHES_KEPT: usize = 10;

    /// A record for an incarnation that is starting (or was found running) now.
    pub fn new(incarnation: Incarnation, session: String, now: Time, reason: String) -> Self {
        Self {
            incarnation,
            session,
            since: now,
            pane_pid: None,
            phase: Phase::Live(Live::new(LiveLifecycle::Booting, now, None)),
            rate_limit: None,
            restarts: 0,
            crashes: Vec::new(),
            failures_in_row: 0,
            checkpoint: None,
            alerts: BTreeSet::new(),
            reason,
        }
    }

    /// Moves on to a new (later) incarnation, booting, keeping the history that spans
    /// incarnations; how the last one ended becomes the new one's `last_exit`.
    pub fn begin(&mut self, incarnation: Incarnation, now: Time, reason: String) {
        debug_assert!(
            incarnation > self.incarnation,
            "{incarnation} after {}",
            self.incarnation
        );
        let last_exit = self.last_exit().cloned();
        self.incarnation = incarnation;
        self.since = now;
        self.pane_pid = None;
        self.phase = Phase::Live(Live::new(LiveLifecycle::Booting, now, last_exit));
        self.rate_limit = None;
        self.reason = reason;
    }

    /// Ends the live incarnation as `lifecycle`; refuses (and returns false, changing
    /// nothing) when it has ended already.
    pub fn finish(&mut self, lifecycle: EndedLifecycle, exit: LastExit, hold: Option<Hold>) -> bool {
        let Phase::Live(live) = &self.phase else { return false };
        self.phase = Phase::Ended(Ended {
            lifecycle,
            exit,
            hold,
            last_change: live.last_change,
        });
        true
    }

    /// Its start is carried out after a deferral: the incarnation begins now, so the
    /// time it waited never counts as a still screen. Returns the deferral it ends.
    pub fn undefer(&mut self, now: Time) -> Option<crate::engine::Deferral> {
        let Phase::Live(live) = &mut self.phase else {
            return None;
        };
        let deferral = live.deferred.take()?;
        self.since = now;
        live.last_change = now;
        live.ladder_from = None;
        Some(deferral)
    }

    /// The deferral holding its start back, if any.
    pub fn deferred(&self) -> Option<&crate::engine::Deferral> {
        self.live().and_then(|l| l.deferred.as_ref())
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn live(&self) -> Option<&Live> {
        match &self.phase {
            Phase::Live(live) => Some(live),
            Phase::Ended(_) => None,
        }
    }

    pub fn live_mut(&mut self) -> Option<&mut Live> {
        match &mut self.phase {
            Phase::Live(live) => Some(live),
            Phase::Ended(_) => None,
        }
    }

    pub fn ended(&self) -> Option<&Ended> {
        match &self.phase {
            Phase::Live(_) => None,
            Phase::Ended(ended) => Some(ended),
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        match &self.phase {
            Phase::Live(live) => live.lifecycle.into(),
            Phase::Ended(ended) => ended.lifecycle.into(),
        }
    }

    /// Booting or working: there is (or should be) a process to watch.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live(_))
    }

    /// What its screen says; `None` before the first look and once it has ended.
    pub fn activity(&self) -> Option<Activity> {
        self.live().and_then(|l| l.activity)
    }

    /// How far vigil has gone with it: for an ended incarnation, `terminate` when vigil
    /// gave up on it (stalled), else `none`.
    pub fn escalation(&self) -> Escalation {
        match &self.phase {
            Phase::Live(live) => live.escalation,
            Phase::Ended(ended) if ended.lifecycle == EndedLifecycle::Stalled => Escalation::Terminate,
            Phase::Ended(_) => Escalation::None,
        }
    }

    /// When its screen last changed (before it ended, for an ended one).
    pub fn last_change(&self) -> Time {
        match &self.phase {
            Phase::Live(live) => live.last_change,
            Phase::Ended(ended) => ended.last_change,
        }
    }

    /// Polls in a row that showed the same screen; 0 once it has ended.
    pub fn unchanged_checks(&self) -> u32 {
        self.live().map_or(0, |l| l.unchanged_checks)
    }

    /// The handoff a live incarnation is still to be given.
    pub fn handoff(&self) -> Option<&Handoff> {
        self.live().and_then(|l| l.handoff.as_ref())
    }

    /// How the last ended incarnation ended: this one if it has ended, else the one
    /// before it.
    pub fn last_exit(&self) -> Option<&LastExit> {
        match &self.phase {
            Phase::Live(live) => live.last_exit.as_ref(),
            Phase::Ended(ended) => Some(&ended.exit),
        }
    }

    /// The hold the end of this incarnation put on its restart, if it has ended.
    pub fn hold(&self) -> Option<&Hold> {
        self.ended().and_then(|e| e.hold.as_ref())
    }

    /// Moves every recorded instant that measures a duration, for [`crate::engine::gap`]:
    /// `past` maps those already behind (its start, its crashes, the last screen change,
    /// the starts of the ladder's dwell and of a triage wait), `hold` the end of the hold
    /// its end set, given the hold's cause. Rate-limit times are no such instants.
    pub fn retime(&mut self, past: impl Fn(Time) -> Time, hold: impl Fn(Time, Wait) -> Time) {
        self.since = past(self.since);
        for t in &mut self.crashes {
            *t = past(*t);
        }
        match &mut self.phase {
            Phase::Live(live) => {
                live.last_change = past(live.last_change);
                live.ladder_from = live.ladder_from.map(&past);
                live.triage_since = live.triage_since.map(&past);
            }
            Phase::Ended(ended) => {
                ended.last_change = past(ended.last_change);
                if let Some(Hold::Until { at, cause }) = &mut ended.hold {
                    *at = hold(*at, *cause);
                }
            }
        }
    }

    /// Until when its end holds restarts back (backoff or crash loop), as `status`
    /// reports it.
    pub fn cooldown_until(&self) -> Option<Time> {
        self.hold().and_then(Hold::until)
    }
}

/// The current shape, as written since snapshot schema v2.
#[derive(Deserialize)]
pub(super) struct RecordV2 {
    incarnation: Incarnation,
    session: String,
    since: Time,
    pane_pid: Option<u32>,
    phase: Phase,
    rate_limit: Option<RateLimit>,
    restarts: u32,
    crashes: Vec<Time>,
    failures_in_row: u32,
    checkpoint: Option<CheckpointNote>,
    #[serde(default)]
    alerts: BTreeSet<Alert>,
    reason: String,
}

impl From<RecordV2> for AgentRecord {
    fn from(r: RecordV2) -> Self {
        Self {
            incarnation: r.incarnation,
            session: r.session,
            since: r.since,
            pane_pid: r.pane_pid,
            phase: r.phase,
            rate_limit: r.rate_limit,
            restarts: r.restarts,
            crashes: r.crashes,
            failures_in_row: r.failures_in_row,
            checkpoint: r.checkpoint,
            alerts: r.alerts,
            reason: r.reason,
        }
    }
}
