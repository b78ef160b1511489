//! Rate limits: noticing one on screen, its kind (throttle, reset time, no reset), the
//! cooldown it imposes, renewals, and its end: the one resume vigil types, or none when
//! the agent said it goes on by itself and did.

use super::Ctx;
use crate::engine::limit::AfterReset;
use crate::engine::limit::{self, LimitKind};
use crate::engine::mind::{Activity, AgentRecord, EndedLifecycle, LastExit, RateLimit};
use crate::engine::screen::{LimitOver, ScreenRead};
use crate::engine::time::{Time, human};
use crate::engine::{Alert, Purpose, What};

/// A rate limit renewed this many times forces a restart.
const RENEWALS_BEFORE_RESTART: u32 = 4;

impl Ctx<'_> {
    /// Starts, renews or clears a rate-limit cooldown. A limit counts when its line is
    /// among the last lines and either appeared anew or the screen stopped changing (the
    /// agent is stuck on it); an old limit line on a screen that keeps changing is
    /// history. The message says which kind of limit it is: a throttle waits the
    /// cooldown, a limit with a reset time waits until then (plus a margin), one that no
    /// waiting lifts is left to a human. Returns whether the incarnation ended (the
    /// fourth renewal restarts it).
    pub(super) fn track_rate_limit(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let policy = &self.agent.policy;
        if let Some(over) = &read.limit_over {
            self.limit_over(r, over);
        }
        let Some(live) = r.live_mut() else { return false };
        let appeared = read.rate_limit.is_some() && !live.limit_visible;
        live.limit_visible = read.rate_limit.is_some();
        let stuck_on_it = read.rate_limit.is_some() && (appeared || live.unchanged_checks > 0);
        if let Some(line) = read.rate_limit.clone().filter(|_| stuck_on_it)
            && self.limit_on_screen(r, read, line)
        {
            return true;
        }
        let visible = r.live().is_some_and(|l| l.limit_visible);
        if let Some(rl) = &r.rate_limit
            && rl.resumed
            && !visible
            && self.now >= rl.until.plus(policy.rate_limit_cooldown)
        {
            r.rate_limit = None;
            self.note(
                r,
                format!("rate limit over: none seen for {}", human(policy.rate_limit_cooldown)),
            );
        }
        false
    }

    /// A limit the agent is stuck on: a first one starts its cooldown, one that comes
    /// back after the resume renews it, and the fourth renewal ends the incarnation
    /// (returns true).
    fn limit_on_screen(&mut self, r: &mut AgentRecord, read: &ScreenRead, line: String) -> bool {
        let text = match &read.rate_limit_more {
            Some(more) => format!("{line} {more}"),
            None => line.clone(),
        };
        // A reset time the agent gave in a signal beats one read from the screen.
        let kind = match self.signalled_reset(r) {
            Some(at) => LimitKind::Resets { at },
            None => limit::classify(&text, self.now, self.tz),
        };
        match r.rate_limit.as_mut() {
            None => {
                let (until, wait) = self.cooldown(&kind, 1);
                r.rate_limit = Some(RateLimit {
                    until,
                    renewals: 0,
                    resumed: kind == LimitKind::NoReset,
                    line: line.clone(),
                    kind: kind.clone(),
                    seen: self.now,
                    self_resumes: read
                        .limit_over
                        .as_ref()
                        .is_some_and(|o| o.then == AfterReset::Continues),
                });
                self.limit_seen(r, &line, &kind, until, wait, None);
            }
            Some(rl) if rl.resumed && rl.kind == LimitKind::NoReset && kind == LimitKind::NoReset => {}
            Some(rl) if rl.resumed => {
                rl.renewals = rl.renewals.saturating_add(1);
                let renewals = rl.renewals;
                if renewals >= RENEWALS_BEFORE_RESTART {
                    r.rate_limit = None;
                    let reason = format!("rate limit came back {renewals} times after cooldowns («{line}»)");
                    self.end(r, EndedLifecycle::Stalled, LastExit::because(reason));
                    return true;
                }
                let (until, wait) = self.cooldown(&kind, renewals);
                rl.until = until;
                rl.resumed = kind == LimitKind::NoReset;
                rl.line = line.clone();
                rl.kind = kind.clone();
                rl.seen = self.now;
                self.limit_seen(r, &line, &kind, until, wait, Some(renewals));
            }
            Some(_) => {}
        }
        false
    }

    /// What the agent says of its limit's end: that it goes on by itself (vigil will
    /// check rather than type), or that the limit lifted and it waits for Enter (the
    /// cooldown is over now; with no limit on record, one is taken in as just ended so
    /// the resume goes out once).
    fn limit_over(&mut self, r: &mut AgentRecord, over: &LimitOver) {
        let line = &over.line;
        match (over.then, r.rate_limit.as_mut()) {
            (AfterReset::Continues, Some(rl)) if !rl.self_resumes && !rl.resumed => {
                rl.self_resumes = true;
                let said = format!(
                    "«{line}»: it goes on by itself once the limit lifts; at {} vigil checks that it did and types its resume only if not",
                    self.clock(rl.until)
                );
                self.note(r, said);
            }
            (AfterReset::AwaitsEnter, Some(rl)) if !rl.resumed && self.now < rl.until => {
                rl.until = self.now;
                self.note(r, format!("«{line}»: the limit lifted early; resuming it now"));
            }
            (AfterReset::AwaitsEnter, None) => {
                r.rate_limit = Some(RateLimit {
                    until: self.now,
                    renewals: 0,
                    resumed: false,
                    line: line.clone(),
                    kind: LimitKind::Resets { at: self.now },
                    seen: self.now,
                    self_resumes: false,
                });
                self.note(
                    r,
                    format!("«{line}»: a limit lifted and it waits for Enter; resuming it"),
                );
            }
            _ => {}
        }
    }

    /// The end of a cooldown not yet answered: vigil types the resume, once, unless
    /// the agent said it goes on by itself and its screen has moved since the limit
    /// lifted (then nothing is typed: never a second resume). Returns whether a resume
    /// was sent.
    pub(super) fn after_cooldown(&mut self, r: &mut AgentRecord) -> bool {
        let Some(rl) = r.rate_limit.as_mut().filter(|rl| !rl.resumed) else {
            return false;
        };
        rl.resumed = true;
        let lifted = match rl.kind {
            LimitKind::Resets { at } => at.max(rl.seen),
            _ => rl.seen,
        };
        let self_resumes = rl.self_resumes;
        let moved = r.live().map(|l| l.last_change).filter(|&changed| changed > lifted);
        // The cooldown was not the agent being stuck: the ladder starts afresh.
        if let Some(live) = r.live_mut() {
            live.ladder_from = Some(self.now);
        }
        match (self_resumes, moved) {
            (true, Some(changed)) => {
                let said = format!(
                    "went on by itself after the limit (screen changed at {}); vigil typed nothing",
                    self.clock(changed)
                );
                self.note(r, said);
                false
            }
            (true, None) => {
                let why = format!(
                    "it said it would go on by itself, but its screen has not moved since {}",
                    self.clock(lifted)
                );
                self.send(r, Purpose::Resume, why);
                true
            }
            (false, _) => {
                self.send(r, Purpose::Resume, "rate-limit cooldown is over".into());
                true
            }
        }
    }

    /// Until when to hold off, and the wait in words, for a limit of `kind` seen for the
    /// `n`th time (1 = first; a throttle's cooldown is divided by renewals).
    fn cooldown(&self, kind: &LimitKind, n: u32) -> (Time, String) {
        let policy = &self.agent.policy;
        match kind {
            LimitKind::Throttle => {
                let wait = policy.rate_limit_cooldown / n.max(1);
                (self.now.plus(wait), human(wait))
            }
            LimitKind::Resets { at } => {
                let until = (*at).max(self.now).plus(policy.rate_limit_margin);
                let words = format!(
                    "{} (it resets at {}, plus a {} margin)",
                    human(until.since(self.now)),
                    self.clock(*at),
                    human(policy.rate_limit_margin)
                );
                (until, words)
            }
            LimitKind::NoReset => (self.now, "until a human acts".to_owned()),
        }
    }

    fn limit_seen(
        &mut self,
        r: &mut AgentRecord,
        line: &str,
        kind: &LimitKind,
        until: Time,
        wait: String,
        renewal: Option<u32>,
    ) {
        let again = match renewal {
            Some(n) => format!(
                "again after resuming (renewal {n}; the {} renewal restarts it): ",
                ordinal(RENEWALS_BEFORE_RESTART)
            ),
            None => String::new(),
        };
        let reason = match kind {
            LimitKind::NoReset => format!(
                "{again}«{line}»: a limit that waiting will not lift; no nudges or restarts, a human must act (then `vigil nudge {}`)",
                self.agent.name
            ),
            LimitKind::Throttle if renewal.is_some() => format!(
                "{again}«{line}»; cooling down {wait} (cooldown / renewals), until {}",
                self.clock(until)
            ),
            _ => format!(
                "{again}«{line}»; no nudges or restarts for {wait}, until {}",
                self.clock(until)
            ),
        };
        self.event(r, What::Activity(Activity::RateLimited), reason.clone());
        if *kind == LimitKind::NoReset {
            self.raise(r, Alert::LimitNoReset, reason);
        }
    }
}

fn ordinal(n: u32) -> String {
    match n {
        1 => "1st".into(),
        2 => "2nd".into(),
        3 => "3rd".into(),
        n => format!("{n}th"),
    }
}
