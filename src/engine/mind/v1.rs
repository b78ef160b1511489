//! The agent record as vigil 0.1 wrote it (snapshot schema v1, and the journal's
//! `record` lines of that time): one flat struct in which every field could be set in
//! any lifecycle. [`RecordV1::into_current`] is the one conversion to today's
//! [`AgentRecord`]; the snapshot's migration and the journal's reader both go through
//! it: the `Deserialize` of `AgentRecord`, here, takes either shape.

use serde::{Deserialize, Deserializer};

use super::record::{Ended, Hold, Live, Phase, RecordV2, Wait};
use super::{
    Activity, AgentRecord, CheckpointNote, EndedLifecycle, Escalation, Handoff, Incarnation, LastExit, Lifecycle,
    LiveLifecycle, RateLimit,
};
use crate::engine::Purpose;
use crate::engine::time::Time;

/// An agent record of schema v1, field for field.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RecordV1 {
    pub incarnation: Incarnation,
    pub session: String,
    pub lifecycle: Lifecycle,
    pub activity: Option<Activity>,
    pub escalation: Escalation,
    pub since: Time,
    pub last_change: Time,
    pub unchanged_checks: u32,
    pub changes_in_row: u32,
    pub screen_hash: Option<String>,
    pub pane_pid: Option<u32>,
    pub nudges: u32,
    #[serde(default)]
    pub checks_since_nudge: u32,
    pub restarts: u32,
    pub crashes: Vec<Time>,
    pub failures_in_row: u32,
    pub cooldown_until: Option<Time>,
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub limit_visible: bool,
    #[serde(default)]
    pub unconfirmed_end: u32,
    #[serde(default)]
    pub ladder_from: Option<Time>,
    #[serde(default)]
    pub ladder_nudged: bool,
    #[serde(default)]
    pub pending_effect: Option<Purpose>,
    #[serde(default)]
    pub triage_since: Option<Time>,
    #[serde(default)]
    pub handoff: Option<Handoff>,
    #[serde(default)]
    pub checkpoint: Option<CheckpointNote>,
    pub last_exit: Option<LastExit>,
    pub reason: String,
}

impl RecordV1 {
    /// Today's record for it: a live one keeps what its screen showed, an ended one
    /// keeps how it ended and its hold; what v1 kept of a live incarnation after its
    /// end is dropped.
    pub fn into_current(self) -> AgentRecord {
        let phase = match self.lifecycle {
            Lifecycle::Booting | Lifecycle::Working => Phase::Live(self.live()),
            Lifecycle::Completed => Phase::Ended(self.ended(EndedLifecycle::Completed)),
            Lifecycle::Stalled => Phase::Ended(self.ended(EndedLifecycle::Stalled)),
            Lifecycle::Zombie => Phase::Ended(self.ended(EndedLifecycle::Zombie)),
        };
        AgentRecord {
            incarnation: self.incarnation,
            session: self.session,
            since: self.since,
            pane_pid: self.pane_pid,
            phase,
            rate_limit: self.rate_limit,
            restarts: self.restarts,
            crashes: self.crashes,
            failures_in_row: self.failures_in_row,
            checkpoint: self.checkpoint,
            alerts: Default::default(),
            reason: self.reason,
        }
    }

    fn live(&self) -> Live {
        let lifecycle = match self.lifecycle {
            Lifecycle::Booting => LiveLifecycle::Booting,
            _ => LiveLifecycle::Working,
        };
        let mut live = Live::new(lifecycle, self.last_change, self.last_exit.clone());
        live.activity = self.activity;
        live.escalation = self.escalation;
        live.unchanged_checks = self.unchanged_checks;
        live.changes_in_row = self.changes_in_row;
        live.screen_hash = self.screen_hash.clone();
        live.nudges = self.nudges;
        live.checks_since_nudge = self.checks_since_nudge;
        live.limit_visible = self.limit_visible;
        live.unconfirmed_end = self.unconfirmed_end;
        live.ladder_from = self.ladder_from;
        live.ladder_nudged = self.ladder_nudged;
        live.pending_effect = self.pending_effect;
        live.triage_since = self.triage_since;
        live.handoff = self.handoff.clone();
        live
    }

    fn ended(&self, lifecycle: EndedLifecycle) -> Ended {
        let exit = self
            .last_exit
            .clone()
            .unwrap_or_else(|| LastExit::because("ended (vigil 0.1 recorded no exit)"));
        let hold = self.cooldown_until.map(|at| Hold::Until {
            at,
            cause: self.hold_cause(&exit),
        });
        Ended {
            lifecycle,
            exit,
            hold,
            last_change: self.last_change,
        }
    }

    /// v1 kept a restart hold's time but not its cause. Its crash-loop hold was the one
    /// whose reason vigil wrote as `zombie (<exit>); crash loop: <n> crashes …` (the
    /// agent's own words never stand there); any other hold was a backoff. This is the
    /// one place a fact is read back from words, once, when old state is migrated.
    fn hold_cause(&self, exit: &LastExit) -> Wait {
        let prefix = format!("zombie ({}); crash loop: ", exit.reason);
        let Some(rest) = self.reason.strip_prefix(&prefix) else {
            return Wait::Backoff;
        };
        let crashes = rest
            .split_once(" crashes")
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or(u32::try_from(self.crashes.len()).unwrap_or(u32::MAX));
        Wait::CrashLoop { crashes }
    }
}

/// Either shape: a record with a `phase` is current; one without is vigil 0.1's, and
/// is converted by [`RecordV1::into_current`].
impl<'de> Deserialize<'de> for AgentRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let record = if value.get("phase").is_some() {
            serde_json::from_value::<RecordV2>(value).map(Self::from)
        } else {
            serde_json::from_value::<RecordV1>(value).map(RecordV1::into_current)
        };
        record.map_err(serde::de::Error::custom)
    }
}
