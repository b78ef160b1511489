//! Time that lies: the wall clock jumping (an NTP step, `date -s`) and time nobody
//! watched (the machine asleep, vigil stopped or starved, no owner at all). Found by
//! comparing two clock [`Reading`]s ([`between`]); answered by re-basing what the Mind
//! recorded ([`rebase`]) so that no duration counts time vigil did not see, and by
//! [`bound`], which keeps every recorded instant out of the future whatever the clock
//! did. Rate-limit reset times are wall-clock facts and never move. Pure: the readings
//! arrive as arguments.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Fleet;
use super::mind::{AgentRecord, Mind, Wait};
use super::policy::backoff;
use super::time::Time;

/// A wall clock that disagrees with the steady clocks by less than this has only
/// drifted (or been slewed by NTP): not worth re-basing anything for.
pub const JUMP_TOLERANCE: Duration = Duration::from_secs(2);
/// Time between two passes longer than this many polls was not watched…
pub const UNWATCHED_POLLS: u32 = 5;
/// …and never less than this, so a pass slowed by a busy tmux is no gap.
pub const UNWATCHED_FLOOR: Duration = Duration::from_secs(2);

/// The clocks read together, at the start of a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The wall clock: for display, reset times, the journal.
    pub wall: Time,
    /// The steady clocks, when the caller read them; without them only the wall clock
    /// can be compared, and a wall clock that moved forward reads as unwatched time.
    pub steady: Option<Steady>,
}

/// The system's steady clocks, which no one can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steady {
    /// Time the machine was awake since it booted (Linux `CLOCK_MONOTONIC`).
    #[serde(with = "ms")]
    pub awake: Duration,
    /// Time since it booted, asleep or not (Linux `CLOCK_BOOTTIME`).
    #[serde(with = "ms")]
    pub since_boot: Duration,
}

impl From<Time> for Reading {
    fn from(wall: Time) -> Self {
        Self { wall, steady: None }
    }
}

/// What lay between two readings, when anything did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The wall clock moved by more (or less) than time passed.
    pub jump: Option<Jump>,
    /// Time passed that nobody watched.
    pub unwatched: Option<Unwatched>,
}

/// How the wall clock moved beyond the time that passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "direction", rename_all = "snake_case")]
pub enum Jump {
    Forward {
        #[serde(with = "ms", rename = "ms")]
        by: Duration,
    },
    Back {
        #[serde(with = "ms", rename = "ms")]
        by: Duration,
    },
}

/// Time that passed while vigil did not watch, and why it did not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unwatched {
    #[serde(with = "ms", rename = "ms")]
    pub for_: Duration,
    pub cause: Unseen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unseen {
    /// The machine was suspended.
    Asleep,
    /// The owner was not running: stopped (SIGSTOP), or starved of CPU.
    Paused,
    /// No process owned the run.
    NoOwner,
}

/// What the earlier reading was, which says what an unwatched stretch means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// This owner's previous pass.
    LastPass,
    /// The previous owner's last heartbeat.
    LastOwner,
    /// The previous `vigil tick`'s heartbeat: ticks are apart by design (a systemd
    /// timer), so only a jump of the wall clock counts.
    LastTick,
}

/// When time between two passes counts as unwatched, for a poll of `poll`.
pub fn unwatched_after(poll: Duration) -> Duration {
    poll.saturating_mul(UNWATCHED_POLLS).max(UNWATCHED_FLOOR)
}

/// What lay between `prev` and `cur`, passes `poll` apart as configured.
pub fn between(prev: &Reading, cur: &Reading, poll: Duration, since: Since) -> Option<Gap> {
    let wall = cur.wall.millis().saturating_sub(prev.wall.millis());
    let (passed, asleep) = match (prev.steady, cur.steady) {
        (Some(p), Some(c)) => {
            let passed = c.since_boot.saturating_sub(p.since_boot);
            let awake = c.awake.saturating_sub(p.awake);
            (passed, passed.saturating_sub(awake))
        }
        // The wall clock alone: a step back is certain, a step forward cannot be told
        // from time passing.
        _ => (Duration::from_millis(u64::try_from(wall).unwrap_or(0)), Duration::ZERO),
    };
    let moved = wall.saturating_sub(i64::try_from(passed.as_millis()).unwrap_or(i64::MAX));
    let by = Duration::from_millis(moved.unsigned_abs());
    let jump = (by > JUMP_TOLERANCE).then_some(if moved > 0 {
        Jump::Forward { by }
    } else {
        Jump::Back { by }
    });
    let cause = match since {
        _ if asleep > passed / 2 => Some(Unseen::Asleep),
        Since::LastPass => Some(Unseen::Paused),
        Since::LastOwner => Some(Unseen::NoOwner),
        Since::LastTick => None,
    };
    let unwatched = cause
        .filter(|_| passed > unwatched_after(poll))
        .map(|cause| Unwatched { for_: passed, cause });
    (jump.is_some() || unwatched.is_some()).then_some(Gap { jump, unwatched })
}

/// Re-bases every recorded duration after `gap`, at `now`, the first pass after it.
/// A jump re-expresses recorded instants in the new clock, so durations go on as they
/// were, and a hold (backoff, crash loop) keeps the time it had left. Unwatched time is
/// no evidence that an agent is stuck: the ladder's dwell, the stale timer and triage
/// waits restart from now. It did pass, though, for an ended agent's hold, which waits
/// out real time (a service coming back), so holds count it. Rate limits keep their
/// wall-clock reset times.
pub fn rebase(mind: &mut Mind, gap: &Gap, now: Time) {
    let shift = |t: Time| match gap.jump {
        Some(Jump::Forward { by }) => t.plus(by),
        Some(Jump::Back { by }) => t.minus(by),
        None => t,
    };
    for rec in mind.agents.values_mut() {
        rec.retime(shift, |at, cause| match cause {
            Wait::Backoff | Wait::CrashLoop { .. } | Wait::Host { .. } => shift(at),
            Wait::RateLimit => at,
        });
        if gap.unwatched.is_some()
            && let Some(live) = rec.live_mut()
        {
            live.ladder_from = Some(now);
            if live.triage_since.is_some() {
                live.triage_since = Some(now);
            }
        }
    }
    for t in &mut mind.fleet.times {
        *t = shift(*t);
    }
    mind.host.last_outage = mind.host.last_outage.map(shift);
}

/// Keeps the Mind believable whatever the clock did, even a move no reading caught (a
/// step back between two owners): no recorded instant lies in the future, and no hold
/// lasts longer from now than its cause ever makes one last.
pub fn bound(mind: &mut Mind, fleet: &Fleet, now: Time) {
    for agent in &fleet.agents {
        let Some(rec) = mind.agents.get_mut(&agent.name) else {
            continue;
        };
        let policy = &agent.policy;
        let failures = rec.failures_in_row;
        rec.retime(
            |t| t.min(now),
            |at, cause| match cause {
                Wait::Backoff => at.min(now.plus(backoff(failures))),
                Wait::CrashLoop { .. } => at.min(now.plus(policy.crash_cooldown)),
                Wait::Host { outages } => at.min(now.plus(super::policy::host_backoff(outages))),
                Wait::RateLimit => at,
            },
        );
        bound_throttle(rec, policy.rate_limit_cooldown, now);
    }
    for t in &mut mind.fleet.times {
        *t = (*t).min(now);
    }
    mind.host.last_outage = mind.host.last_outage.map(|t| t.min(now));
}

/// A throttle (a limit with no stated end) cools down for at most the configured
/// cooldown from now; a reset time the message gave is left as it was.
fn bound_throttle(rec: &mut AgentRecord, cooldown: Duration, now: Time) {
    if let Some(rl) = rec.rate_limit.as_mut()
        && rl.kind == super::LimitKind::Throttle
    {
        rl.until = rl.until.min(now.plus(cooldown));
    }
}

/// Durations as whole milliseconds on disk.
mod ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(5);

    fn at(wall_s: i64, awake_s: u64, boot_s: u64) -> Reading {
        Reading {
            wall: Time::from_millis(1_800_000_000_000 + wall_s * 1000),
            steady: Some(Steady {
                awake: Duration::from_secs(awake_s),
                since_boot: Duration::from_secs(boot_s),
            }),
        }
    }

    #[test]
    fn a_pass_on_time_is_no_gap() {
        assert_eq!(between(&at(0, 100, 100), &at(5, 105, 105), POLL, Since::LastPass), None);
        assert_eq!(
            between(&at(0, 100, 100), &at(6, 105, 105), POLL, Since::LastPass),
            None,
            "a second of drift"
        );
    }

    #[test]
    fn a_wall_clock_moved_forward_or_back_is_a_jump_and_nothing_unwatched() {
        let fwd = between(&at(0, 100, 100), &at(7205, 105, 105), POLL, Since::LastPass).unwrap();
        assert_eq!(
            fwd.jump,
            Some(Jump::Forward {
                by: Duration::from_secs(7200)
            })
        );
        assert_eq!(fwd.unwatched, None);
        let back = between(&at(7200, 100, 100), &at(5, 105, 105), POLL, Since::LastPass).unwrap();
        assert_eq!(
            back.jump,
            Some(Jump::Back {
                by: Duration::from_secs(7200)
            })
        );
    }

    #[test]
    fn a_stopped_owner_a_sleeping_machine_and_no_owner_are_unwatched() {
        let stopped = between(&at(0, 100, 100), &at(600, 700, 700), POLL, Since::LastPass).unwrap();
        assert_eq!(stopped.jump, None);
        let unwatched = Unwatched {
            for_: Duration::from_secs(600),
            cause: Unseen::Paused,
        };
        assert_eq!(stopped.unwatched, Some(unwatched));
        // Suspended for 2 h: the wall clock and the boot clock moved, the awake one did not.
        let slept = between(&at(0, 100, 100), &at(7205, 105, 7305), POLL, Since::LastPass).unwrap();
        assert_eq!(slept.jump, None, "the wall clock told the truth");
        assert_eq!(slept.unwatched.unwrap().cause, Unseen::Asleep);
        let gone = between(&at(0, 100, 100), &at(600, 700, 700), POLL, Since::LastOwner).unwrap();
        assert_eq!(gone.unwatched.unwrap().cause, Unseen::NoOwner);
        assert_eq!(
            between(&at(0, 100, 100), &at(600, 700, 700), POLL, Since::LastTick),
            None,
            "ticks are apart by design"
        );
    }

    #[test]
    fn with_the_wall_clock_alone_a_step_back_is_a_jump_and_a_step_forward_unwatched() {
        let wall = |s: i64| Reading::from(Time::from_millis(1_800_000_000_000 + s * 1000));
        let back = between(&wall(7200), &wall(5), POLL, Since::LastOwner).unwrap();
        assert!(matches!(back.jump, Some(Jump::Back { .. })));
        assert_eq!(back.unwatched, None);
        let fwd = between(&wall(0), &wall(7200), POLL, Since::LastOwner).unwrap();
        assert_eq!(fwd.jump, None);
        assert_eq!(fwd.unwatched.unwrap().for_, Duration::from_secs(7200));
    }

    #[test]
    fn a_gap_reads_back_from_its_json() {
        let gap = Gap {
            jump: Some(Jump::Back {
                by: Duration::from_millis(7_200_000),
            }),
            unwatched: Some(Unwatched {
                for_: Duration::from_secs(3),
                cause: Unseen::Paused,
            }),
        };
        let json = serde_json::to_value(&gap).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"jump": {"direction": "back", "ms": 7_200_000}, "unwatched": {"ms": 3000, "cause": "paused"}})
        );
        assert_eq!(serde_json::from_value::<Gap>(json).unwrap(), gap);
    }
}
