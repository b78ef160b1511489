//! What the agent's own hooks said: the newest signal of the running incarnation is
//! kept (with the screen it came on), one from another incarnation is dropped, and a
//! limit signal starts a rate-limit hold as a limit line on screen would. How a kept
//! signal weighs against the screen is [`crate::engine::signal`]'s.

use super::Ctx;
use crate::engine::mind::{AgentRecord, RateLimit};
use crate::engine::screen::ScreenRead;
use crate::engine::signal::{self, Kept, Said, Signal, Via};
use crate::engine::time::Time;
use crate::engine::{Activity, LimitKind, What};

impl Ctx<'_> {
    /// Keeps the newest signal of the live incarnation; a limit among them starts a
    /// cooldown unless one already holds.
    pub(super) fn hear(&mut self, r: &mut AgentRecord, heard: &[&Signal], read: Option<&ScreenRead>) {
        let incarnation = r.incarnation;
        let Some(live) = r.live_mut() else { return };
        let mut limit = None;
        for s in heard.iter().filter(|s| s.incarnation == incarnation) {
            if live.signal.as_ref().is_some_and(|k| k.signal.at > s.at) {
                continue;
            }
            if let Said::Limit { resets_at } = s.heard.said {
                limit = Some(((*s).clone(), resets_at));
            }
            live.signal = Some(Box::new(Kept {
                signal: (*s).clone(),
                screen: read.map(|r| r.hash.clone()),
            }));
        }
        if let Some((s, resets_at)) = limit {
            self.limit_signalled(r, &s, resets_at);
        }
    }

    /// A limit the agent itself reported: a cooldown as for a limit line, until the
    /// reset it gave, else the one its structured source gives (a usage limit in the
    /// rollout file is definitely one: a near-full window counts), plus the margin; or
    /// for the cooldown.
    fn limit_signalled(&mut self, r: &mut AgentRecord, s: &Signal, resets_at: Option<Time>) {
        if r.rate_limit.as_ref().is_some_and(|rl| !rl.resumed) {
            return;
        }
        let known = match resets_at {
            Some(_) => None,
            None => self
                .known_reset(r, s.heard.via == Some(Via::RolloutFile))
                .and_then(Result::ok),
        };
        let kind = match (&known, resets_at) {
            (Some(k), _) => LimitKind::Resets { at: k.resets_at },
            (None, Some(at)) => LimitKind::Resets { at },
            (None, None) => LimitKind::Throttle,
        };
        let policy = &self.agent.policy;
        let until = match &kind {
            LimitKind::Resets { at } => (*at).max(self.now).plus(policy.rate_limit_margin),
            _ => self.now.plus(policy.rate_limit_cooldown),
        };
        let line = signal::cite(s, self.now);
        let renewals = r.rate_limit.as_ref().map_or(0, |rl| rl.renewals.saturating_add(1));
        r.rate_limit = Some(RateLimit {
            until,
            renewals,
            resumed: false,
            line: line.clone(),
            kind,
            seen: self.now,
            // A hook says nothing of going on by itself; the screen may, later.
            self_resumes: false,
            known: known.clone(),
        });
        let reason = match &known {
            Some(k) => format!(
                "«{line}»; limit: {}; no nudges or restarts until {}",
                self.known_words(k),
                self.clock(until)
            ),
            None => format!("«{line}»; no nudges or restarts until {}", self.clock(until)),
        };
        self.event(r, What::Activity(Activity::RateLimited), reason);
    }

    /// The reset time a fresh limit signal gave, which beats one read from the screen.
    pub(super) fn signalled_reset(&self, r: &AgentRecord) -> Option<Time> {
        let kept = r.live()?.signal.as_ref()?;
        let fresh = self.now.since(kept.signal.at) < self.agent.policy.signal_fresh;
        match kept.signal.heard.said {
            Said::Limit { resets_at } if fresh => resets_at,
            _ => None,
        }
    }

    /// The kept signal when it still counts against this screen.
    pub(super) fn current_signal(&self, r: &AgentRecord, read: &ScreenRead) -> Option<Signal> {
        let live = r.live()?;
        signal::current(
            live.signal.as_deref(),
            &read.hash,
            self.now,
            self.agent.policy.signal_fresh,
        )
        .cloned()
    }
}
