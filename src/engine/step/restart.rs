//! Restarts: whether an ended incarnation is replaced (policy, stop, the [`Hold`]s on
//! it), the fleet-wide cap, and starting the next incarnation.

use std::time::Duration;

use super::Ctx;
use crate::engine::mind::{AgentRecord, EndedLifecycle, Handoff, Hold, HumanNeeded, Lifecycle, Wait};
use crate::engine::pressure::{self, Deferral, Pressured};
use crate::engine::time::human;
use crate::engine::{Action, Alert, What};

/// How long a started agent without output yet counts as starting, for
/// `max_concurrent_starts`.
const STARTING_WINDOW: Duration = Duration::from_secs(60);

/// The window of the fleet-wide restart cap.
const FLEET_CAP_WINDOW: Duration = Duration::from_secs(3600);

impl Ctx<'_> {
    /// Replaces an ended incarnation when the policy says so and no hold applies.
    pub(super) fn maybe_restart(&mut self, r: &mut AgentRecord) {
        if !self.maybe_restart_reason(r) || self.fleet_capped(r) {
            return;
        }
        let Some(ended) = r.ended() else { return };
        let (lifecycle, why) = (ended.lifecycle, ended.exit.reason.clone());
        let by_host = ended.exit.host.is_some();
        let reason = format!("restart after {} {} ({why})", lifecycle.as_str(), r.incarnation);
        // The host backoff paces the fleet's return; the cap is for agents that thrash.
        if !by_host {
            self.restarts.times.push(self.now);
        }
        let handoff = (lifecycle == EndedLifecycle::Stalled || by_host).then_some(Handoff {
            from: r.incarnation,
            reason: why,
        });
        self.start_next(r, reason);
        if let Some(live) = r.live_mut() {
            live.handoff = handoff;
        }
    }

    /// The fleet-wide cap: past `max_restarts_per_hour` automatic restarts within the
    /// hour, vigil only observes (and says so loudly, once) until there is room again.
    fn fleet_capped(&mut self, r: &mut AgentRecord) -> bool {
        let cap = self.fleet.max_restarts_per_hour;
        let now = self.now;
        self.restarts.times.retain(|t| now.since(*t) < FLEET_CAP_WINDOW);
        if self.restarts.times.len() < cap as usize {
            if self.restarts.capped {
                self.restarts.capped = false;
                self.note(
                    r,
                    format!("fleet restart cap: room again ({cap} per hour); restarting resumes"),
                );
            }
            return false;
        }
        let room_at = self.restarts.times.first().map_or(now, |t| t.plus(FLEET_CAP_WINDOW));
        let reason = format!(
            "fleet-wide cap: {} automatic restarts across all agents within the hour (max_restarts_per_hour = {cap}); observe-only until {} — check the config and the agents' last words",
            self.restarts.times.len(),
            self.clock(room_at)
        );
        r.reason = format!("{} ({}); restart held: {reason}", r.lifecycle().as_str(), r.incarnation);
        if !self.restarts.capped {
            self.restarts.capped = true;
            self.event(r, What::Held, reason.clone());
            self.raise(r, Alert::FleetCapped, reason);
        }
        true
    }

    /// Says why an ended incarnation stays ended, or returns true when it is due a
    /// restart now.
    pub(super) fn maybe_restart_reason(&mut self, r: &mut AgentRecord) -> bool {
        let name = &self.agent.name;
        let policy = &self.agent.policy;
        let Some(ended) = r.ended() else { return false };
        if self.stopped.contains(name) {
            r.reason = format!("stopped by the user; `vigil up {name}` starts it again");
        } else if !policy.restart.restarts_after(ended.lifecycle) {
            r.reason = format!(
                "{} ({}); restart policy `{}` leaves it so",
                ended.lifecycle.as_str(),
                ended.exit.reason,
                policy.restart.as_str()
            );
        } else if let Some(hold) = self.restart_hold(r) {
            r.reason = self.held_words(ended, &hold);
        } else {
            return true;
        }
        false
    }

    /// What holds an ended incarnation's restart back now: its rate limit (a new
    /// incarnation would only hit the same limit), else the hold its end set.
    fn restart_hold(&self, r: &AgentRecord) -> Option<Hold> {
        let limit = r
            .rate_limit
            .as_ref()
            .filter(|rl| self.now < rl.until)
            .map(|rl| Hold::Until {
                at: rl.until,
                cause: Wait::RateLimit,
            });
        let holds = |h: &&Hold| match h {
            // Held for what starting it ran: a changed command, cwd or env lifts it.
            Hold::UntilHuman {
                cause: HumanNeeded::StartFailed { start },
            } => *start == self.agent.start_key,
            _ => h.holds_at(self.now),
        };
        limit.or_else(|| r.hold().filter(holds).cloned())
    }

    pub(super) fn start_next(&mut self, r: &mut AgentRecord, reason: String) {
        r.restarts = r.restarts.saturating_add(1);
        r.begin(r.incarnation.next(), self.now, reason.clone());
        r.session = self.agent.session.clone();
        self.start(r, reason);
    }

    /// Starts the record's incarnation, unless host pressure defers it: then nothing
    /// runs, the record keeps the [`Deferral`], and the start is tried again each pass.
    pub(super) fn start(&mut self, r: &mut AgentRecord, reason: String) {
        // Starting at once: the others started (this step or within the last
        // STARTING_WINDOW) with no output yet, and this one. An agent that never prints
        // holds no slot past the window: twenty quiet agents must not block the rest.
        let booting = self
            .others
            .values()
            .filter(|o| {
                o.lifecycle() == Lifecycle::Booting
                    && o.deferred().is_none()
                    && self.now.since(o.since) < STARTING_WINDOW
            })
            .count();
        let starting = u32::try_from(booting).unwrap_or(u32::MAX).saturating_add(1);
        if let Some(cause) = pressure::judge(&self.fleet.start_limits, self.pressure, starting) {
            self.defer(r, cause, reason);
            return;
        }
        if let Some(d) = r.undefer(self.now) {
            let said = format!(
                "host pressure cleared after {} (last: {}); starting",
                human(self.now.since(d.since)),
                d.cause.words()
            );
            self.note(r, said);
        }
        r.reason = format!("starting: {reason}");
        self.out.actions.push(Action::Start {
            agent: self.agent.name.clone(),
            incarnation: r.incarnation,
            session: r.session.clone(),
            reason,
        });
    }
}

impl Ctx<'_> {
    /// Holds a start back for host pressure: journaled when it begins and when its
    /// cause changes kind, not every pass.
    fn defer(&mut self, r: &mut AgentRecord, cause: Pressured, start: String) {
        let now = self.now;
        let Some(live) = r.live_mut() else { return };
        let kind = |c: &Pressured| std::mem::discriminant(c);
        let news = live.deferred.as_ref().is_none_or(|d| kind(&d.cause) != kind(&cause));
        let d = live.deferred.get_or_insert(Deferral {
            since: now,
            cause,
            start,
        });
        d.cause = cause;
        let d = d.clone();
        r.reason = format!(
            "deferred: {}; the start ({}) goes ahead when it clears (waiting since {})",
            cause.words(),
            d.start,
            self.clock(d.since)
        );
        if news {
            let said = format!("start deferred: host under pressure ({})", cause.words());
            self.event(r, What::Deferred(d), said);
        }
    }
}
