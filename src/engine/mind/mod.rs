//! The Mind: everything the supervisor believes about its fleet, as plain data that the
//! store snapshots to disk. An agent's [`AgentRecord`] is in one [`Phase`]: live
//! ([`Live`]: booting or working, with what its screen showed) or ended ([`Ended`]:
//! completed, stalled or zombie, with how it ended and any [`Hold`] on its restart).
//! Lifecycle moves forward only, within one incarnation; a new incarnation starts again
//! at `booting`. No IO here.

pub mod name;
mod record;
pub mod v1;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use name::{AgentName, Incarnation};
pub use record::{AgentRecord, Ended, Hold, HumanNeeded, Live, Phase, Wait};

use super::limit::LimitKind;
use super::time::Time;

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

/// The lifecycle of a live incarnation: `booting → working`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveLifecycle {
    Booting,
    Working,
}

/// How an incarnation ended: the last step of its lifecycle, from which none leads on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedLifecycle {
    Completed,
    Stalled,
    Zombie,
}

impl From<LiveLifecycle> for Lifecycle {
    fn from(l: LiveLifecycle) -> Self {
        match l {
            LiveLifecycle::Booting => Lifecycle::Booting,
            LiveLifecycle::Working => Lifecycle::Working,
        }
    }
}

impl From<EndedLifecycle> for Lifecycle {
    fn from(l: EndedLifecycle) -> Self {
        match l {
            EndedLifecycle::Completed => Lifecycle::Completed,
            EndedLifecycle::Stalled => Lifecycle::Stalled,
            EndedLifecycle::Zombie => Lifecycle::Zombie,
        }
    }
}

impl EndedLifecycle {
    pub fn as_str(self) -> &'static str {
        Lifecycle::from(self).as_str()
    }
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

    /// Completed, stalled or zombie, as the end it is; `None` while live.
    pub fn ended(self) -> Option<EndedLifecycle> {
        match self {
            Lifecycle::Booting | Lifecycle::Working => None,
            Lifecycle::Completed => Some(EndedLifecycle::Completed),
            Lifecycle::Stalled => Some(EndedLifecycle::Stalled),
            Lifecycle::Zombie => Some(EndedLifecycle::Zombie),
        }
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The host failed under it (its tmux server lost): no crash of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<super::host::HostFailure>,
}

impl LastExit {
    /// An end with no exit status: the reason is all there is.
    pub fn because(reason: impl Into<String>) -> Self {
        Self {
            code: None,
            reason: reason.into(),
            last_lines: Vec::new(),
            start_failed: false,
            host: None,
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
    /// When vigil took this limit in (first seen, or renewed).
    #[serde(default)]
    pub seen: Time,
    /// The agent said it goes on by itself once the limit lifts: at the cooldown's
    /// end vigil checks that it did, and types its own resume only if it did not.
    #[serde(default)]
    pub self_resumes: bool,
    /// The structured source its reset time came from (a statusLine, a rollout file),
    /// with the facts; absent when the time is the screen's or a hook's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<crate::engine::resets::KnownReset>,
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
    /// The tmux server last seen and the host failures in a row (the host backoff).
    #[serde(default)]
    pub host: super::host::HostRecord,
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

    #[test]
    fn a_name_read_from_a_file_obeys_the_configs_rule() {
        let ok: AgentName = serde_json::from_str(r#""back-end_2""#).unwrap();
        assert_eq!(ok.as_str(), "back-end_2");
        let long = format!("{:?}", "x".repeat(65));
        for bad in [r#""../../etc""#, r#""""#, r#""a b""#, r#""é""#, &long] {
            let err = serde_json::from_str::<AgentName>(bad).unwrap_err();
            assert!(err.to_string().contains("is not an agent name"), "{bad}: {err}");
        }
        let map: BTreeMap<AgentName, u8> = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        assert_eq!(map.len(), 1);
        assert!(serde_json::from_str::<BTreeMap<AgentName, u8>>(r#"{"a/b": 1}"#).is_err());
    }

    const ALL: [Lifecycle; 5] = [
        Lifecycle::Booting,
        Lifecycle::Working,
        Lifecycle::Completed,
        Lifecycle::Stalled,
        Lifecycle::Zombie,
    ];

    /// A record whose incarnation is at `lifecycle`, reached the only ways there are.
    fn at(lifecycle: Lifecycle) -> AgentRecord {
        let mut rec = AgentRecord::new(Incarnation(1), "s".into(), Time::default(), "".into());
        if lifecycle != Lifecycle::Booting {
            assert!(rec.live_mut().is_some_and(Live::work));
        }
        if let Some(end) = lifecycle.ended() {
            assert!(rec.finish(end, LastExit::because("x"), None));
        }
        assert_eq!(rec.lifecycle(), lifecycle);
        rec
    }

    /// Every way a lifecycle moves within an incarnation, towards `to`. None leads to
    /// booting: only [`AgentRecord::begin`] does, and it makes a new incarnation.
    fn try_move(rec: &mut AgentRecord, to: Lifecycle) -> bool {
        match to.ended() {
            None if to == Lifecycle::Working => rec.live_mut().is_some_and(Live::work),
            None => false,
            Some(end) => rec.finish(end, LastExit::because("y"), None),
        }
    }

    #[test]
    fn lifecycle_only_moves_forward() {
        for from in ALL {
            for to in ALL {
                let mut rec = at(from);
                let moved = try_move(&mut rec, to);
                let forward = matches!(
                    (from, to),
                    (Lifecycle::Booting, Lifecycle::Working)
                        | (Lifecycle::Booting | Lifecycle::Working, Lifecycle::Completed)
                        | (Lifecycle::Booting | Lifecycle::Working, Lifecycle::Stalled)
                        | (Lifecycle::Booting | Lifecycle::Working, Lifecycle::Zombie)
                );
                assert_eq!(moved, forward, "{from:?} -> {to:?}");
                assert_eq!(rec.lifecycle(), if forward { to } else { from });
                assert_eq!(moved, from.can_become(to), "{from:?} -> {to:?}");
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
        rec.live_mut().unwrap().unchanged_checks = 7;
        rec.finish(EndedLifecycle::Zombie, LastExit::because("exit 3"), None);
        rec.restarts = 2;
        rec.crashes = vec![Time::from_millis(5)];
        rec.begin(Incarnation(2), Time::from_millis(10), "restart".into());
        assert_eq!(rec.incarnation, Incarnation(2));
        assert_eq!(rec.lifecycle(), Lifecycle::Booting);
        assert_eq!(rec.session, "p-a");
        assert_eq!(rec.restarts, 2);
        assert_eq!(rec.crashes, vec![Time::from_millis(5)]);
        assert_eq!(rec.unchanged_checks(), 0);
        assert_eq!(rec.since, Time::from_millis(10));
        assert_eq!(rec.last_exit().unwrap().reason, "exit 3", "the end of #1, kept for #2");
    }

    #[test]
    fn what_only_a_live_incarnation_has_goes_with_its_end() {
        let mut rec = at(Lifecycle::Working);
        let live = rec.live_mut().unwrap();
        live.activity = Some(Activity::Quiet);
        live.escalation = Escalation::Nudge;
        live.handoff = Some(Handoff {
            from: Incarnation(0),
            reason: "r".into(),
        });
        let hold = Hold::Until {
            at: Time::from_millis(9),
            cause: Wait::CrashLoop { crashes: 3 },
        };
        rec.finish(EndedLifecycle::Stalled, LastExit::because("stuck"), Some(hold));
        assert_eq!(rec.activity(), None);
        assert_eq!(rec.escalation(), Escalation::Terminate, "vigil gave up on it");
        assert!(rec.handoff().is_none());
        assert_eq!(rec.cooldown_until(), Some(Time::from_millis(9)));
        assert!(rec.hold().unwrap().holds_at(Time::from_millis(8)));
        assert!(!rec.hold().unwrap().holds_at(Time::from_millis(9)));
        assert!(
            Hold::UntilHuman {
                cause: HumanNeeded::NoResetLimit
            }
            .holds_at(Time::from_millis(i64::MAX))
        );
    }

    #[test]
    fn a_record_round_trips_through_json_in_either_phase() {
        for lifecycle in ALL {
            let rec = at(lifecycle);
            let json = serde_json::to_value(&rec).unwrap();
            assert!(json.get("phase").is_some(), "{json}");
            assert_eq!(serde_json::from_value::<AgentRecord>(json).unwrap(), rec);
        }
    }
}
