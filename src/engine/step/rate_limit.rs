//! Rate limits: noticing one on screen, its kind (throttle, reset time, no reset), the
//! cooldown it imposes, renewals, and its end: the one resume vigil types, or none when
//! the agent said it goes on by itself and did.

use super::Ctx;
use crate::engine::limit::AfterReset;
use crate::engine::limit::{self, LimitKind};
use crate::engine::mind::{Activity, AgentRecord, EndedLifecycle, LastExit, RateLimit};
use crate::engine::resets::{self, KnownReset, Unused};
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
        self.refine_limit(r);
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
        // A structured reset time (statusLine, rollout) beats one the agent gave in a
        // signal, which beats one read from the screen; a limit no waiting lifts stays so.
        let screen = limit::classify(&text, self.now, self.tz);
        let definite = matches!(screen, LimitKind::Resets { .. });
        let structured = match screen {
            LimitKind::NoReset => None,
            _ => self.known_reset(r, definite),
        };
        let (kind, known, aside) = match structured {
            Some(Ok(k)) => (LimitKind::Resets { at: k.resets_at }, Some(k), None),
            other => {
                let aside = other.and_then(Result::err).map(|why| self.unused_words(&why));
                let kind = self.signalled_reset(r).map_or(screen, |at| LimitKind::Resets { at });
                (kind, None, aside)
            }
        };
        let evidence = match (&known, aside) {
            (Some(k), _) => Some(format!("limit: {}, which beats the screen", self.known_words(k))),
            (None, Some(aside)) => Some(aside),
            (None, None) => None,
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
                    known,
                });
                self.limit_seen(r, &line, evidence.as_deref(), &kind, until, wait, None);
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
                rl.known = known;
                self.limit_seen(r, &line, evidence.as_deref(), &kind, until, wait, Some(renewals));
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
                    known: None,
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

    /// A hold whose reset time came from the screen, a hook or a cooldown, while the
    /// agent's structured source now gives one (it wrote after the screen showed the
    /// limit): the structured time wins, once per distinct time. A limit no waiting
    /// lifts, and one already resumed, are left alone.
    fn refine_limit(&mut self, r: &mut AgentRecord) {
        let Some(rl) = r
            .rate_limit
            .as_ref()
            .filter(|rl| !rl.resumed && rl.kind != LimitKind::NoReset)
        else {
            return;
        };
        let definite = matches!(rl.kind, LimitKind::Resets { .. });
        let had = rl.known.as_ref().map(|k| k.resets_at);
        let Some(Ok(known)) = self.known_reset(r, definite) else {
            return;
        };
        if had == Some(known.resets_at) {
            return;
        }
        let kind = LimitKind::Resets { at: known.resets_at };
        let (until, wait) = self.cooldown(&kind, 1);
        let words = self.known_words(&known);
        let Some(rl) = r.rate_limit.as_mut() else { return };
        let reason = format!(
            "limit: {words}, which beats «{}»; no nudges or restarts for {wait}, until {}",
            rl.line,
            self.clock(until)
        );
        rl.until = until;
        rl.kind = kind;
        rl.known = Some(known);
        self.event(r, What::Activity(Activity::RateLimited), reason);
    }

    /// The reset the agent's structured source gives for the limit it is at: `None`
    /// when it has said nothing for this incarnation. A full window always counts; a
    /// near-full one only when the limit is `definite`ly a usage limit (the screen gave
    /// a reset time, or the agent reported a usage limit), never for a bare throttle (a
    /// 429 is not the 5-hour window running out).
    pub(super) fn known_reset(&self, r: &AgentRecord, definite: bool) -> Option<Result<KnownReset, Unused>> {
        let report = self.known.filter(|k| k.incarnation == r.incarnation)?;
        let definite = definite || report.limit_hit.is_some();
        Some(resets::choose(report, self.now).and_then(|k| {
            if definite || k.why == resets::Pick::Full {
                Ok(k)
            } else {
                Err(Unused::NoneNearFull)
            }
        }))
    }

    /// "Claude Code's statusLine says the 5-hour limit resets at 15:00:00 (100% used, said 2m ago)".
    pub(super) fn known_words(&self, known: &KnownReset) -> String {
        known.words(&self.clock(known.resets_at), self.now)
    }

    fn unused_words(&self, why: &Unused) -> String {
        let origin = self.known.map_or(resets::Origin::ClaudeStatusLine, |k| k.origin);
        why.words(origin, self.now)
    }

    #[allow(clippy::too_many_arguments)]
    fn limit_seen(
        &mut self,
        r: &mut AgentRecord,
        line: &str,
        evidence: Option<&str>,
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
        let shown = match evidence {
            Some(e) => format!("«{line}» ({e})"),
            None => format!("«{line}»"),
        };
        let reason = match kind {
            LimitKind::NoReset => format!(
                "{again}{shown}: a limit that waiting will not lift; no nudges or restarts, a human must act (then `vigil nudge {}`)",
                self.agent.name
            ),
            LimitKind::Throttle if renewal.is_some() => format!(
                "{again}{shown}; cooling down {wait} (cooldown / renewals), until {}",
                self.clock(until)
            ),
            _ => format!(
                "{again}{shown}; no nudges or restarts for {wait}, until {}",
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
