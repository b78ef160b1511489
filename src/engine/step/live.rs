//! Judging a live incarnation's screen: its activity, dialogs, the handoff it is owed,
//! idle nudges, and what typed text did.

use super::*;

impl Ctx<'_> {
    /// Judges a live incarnation's screen: rate limits, dialogs, the handoff it is
    /// owed, idleness and the escalation ladder.
    pub(super) fn supervise(&mut self, r: &mut AgentRecord, read: &ScreenRead) {
        let before = r.activity;
        self.notice_effect(r);
        if self.track_rate_limit(r, read) {
            return;
        }
        let limited = r.rate_limit.as_ref().and_then(|rl| match rl.kind {
            LimitKind::NoReset if r.limit_visible => Some(None),
            _ if self.now < rl.until => Some(Some(rl.until)),
            _ => None,
        });
        let activity = if limited.is_some() {
            Activity::RateLimited
        } else if read.waiting.is_some() {
            Activity::Waiting
        } else if r.unchanged_checks == 0 {
            Activity::Active
        } else if read.prompt && !read.busy {
            Activity::Idle
        } else {
            Activity::Quiet
        };
        r.activity = Some(activity);
        if r.changes_in_row >= WORK_STREAK || read.busy {
            r.nudges = 0;
        }
        if activity == Activity::Active && r.changes_in_row >= WORK_STREAK && r.escalation != Escalation::None {
            let from = r.escalation;
            r.escalation = Escalation::None;
            r.ladder_nudged = false;
            self.note(
                r,
                format!("working again: escalation back from {} to none", from.as_str()),
            );
        }
        match activity {
            Activity::RateLimited => {
                let line = r.rate_limit.as_ref().map_or(String::new(), |rl| rl.line.clone());
                r.reason = match limited.flatten() {
                    Some(until) => format!(
                        "rate limited («{line}»); cooling down until {}, then told to resume",
                        self.clock(until)
                    ),
                    None => format!(
                        "limit that waiting will not lift («{line}»): a human must act; never nudged or restarted meanwhile"
                    ),
                };
            }
            Activity::Waiting => self.waiting(r, read, before),
            Activity::Active | Activity::Idle | Activity::Quiet => self.unhindered(r, read, activity, before),
        }
    }

    /// A dialog waits for a human: the ladder stops at warn, and the user is told once.
    fn waiting(&mut self, r: &mut AgentRecord, read: &ScreenRead, before: Option<Activity>) {
        let line = read.waiting.clone().unwrap_or_default();
        r.escalation = Escalation::Warn;
        r.reason = format!("needs a human: «{line}» (never nudged or killed; attach and answer)");
        if before != Some(Activity::Waiting) {
            self.event(
                r,
                What::Activity(Activity::Waiting),
                format!("a dialog is on screen: «{line}»"),
            );
            let reason = format!("«{line}» is waiting for an answer; vigil will not touch it");
            self.out.actions.push(Action::Notify {
                agent: self.agent.name.clone(),
                incarnation: r.incarnation,
                reason,
            });
        }
    }

    /// Nothing holds it back (no limit, no dialog): the resume after a cooldown, the
    /// handoff, the ladder, then idle nudges.
    fn unhindered(&mut self, r: &mut AgentRecord, read: &ScreenRead, activity: Activity, before: Option<Activity>) {
        if let Some(rl) = r.rate_limit.as_mut()
            && !rl.resumed
        {
            rl.resumed = true;
            // The cooldown was not the agent being stuck: the ladder starts afresh.
            r.ladder_from = Some(self.now);
            self.send(r, Purpose::Resume, "rate-limit cooldown is over".into());
            return;
        }
        if self.hand_off(r, read) || self.climb(r, read) {
            return;
        }
        let policy = &self.agent.policy;
        if activity == Activity::Idle {
            if self.idle(r, before) {
                return;
            }
        } else if activity == Activity::Active {
            r.reason = format!("working: screen changed at {}", self.clock(r.last_change));
        } else {
            r.reason = format!(
                "quiet: screen unchanged for {} ({}; stalled at {})",
                human(self.now.since(r.last_change)),
                self.next_step_words(r),
                human(policy.stale_after)
            );
        }
        if before.is_some_and(|b| b != activity && b != Activity::Active && b != Activity::Quiet) {
            let reason = format!("no longer {}", before.map_or("", Activity::as_str));
            self.event(r, What::Activity(activity), reason);
        }
    }

    /// Idle at its prompt: nudged after `idle_checks` unchanged checks, each further
    /// nudge twice as long after the last. Returns whether it was nudged.
    fn idle(&mut self, r: &mut AgentRecord, before: Option<Activity>) -> bool {
        if before != Some(Activity::Idle) {
            self.event(
                r,
                What::Activity(Activity::Idle),
                "screen unchanged with the prompt visible".into(),
            );
        }
        let needed = self
            .agent
            .policy
            .idle_checks
            .saturating_mul(1 << r.nudges.min(NUDGE_SPACING_MAX_SHIFT));
        if r.checks_since_nudge >= needed {
            let reason = format!(
                "idle at its prompt for {} unchanged checks (nudge #{} after {needed})",
                r.unchanged_checks,
                r.nudges + 1
            );
            r.nudges = r.nudges.saturating_add(1);
            self.send(r, Purpose::Nudge, reason);
            return true;
        }
        r.reason = format!(
            "idle at its prompt for {} unchanged checks; nudge after {needed}",
            r.unchanged_checks
        );
        false
    }

    /// Gives a replacement incarnation its handoff as its first message, once it is
    /// ready for input (its prompt shows, or it has settled) and not busy.
    pub(super) fn hand_off(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let Some(handoff) = r.handoff.clone() else { return false };
        let ready = (read.prompt || r.unchanged_checks >= self.agent.policy.idle_checks) && r.unchanged_checks > 0;
        if !ready || read.busy || read.waiting.is_some() {
            return false;
        }
        r.handoff = None;
        let reason = format!("handoff from {} ({})", handoff.from, handoff.reason);
        self.send(r, Purpose::Handoff, reason);
        true
    }

    /// Journals whether typed text had a visible effect (the screen changed).
    pub(super) fn notice_effect(&mut self, r: &mut AgentRecord) {
        let Some(purpose) = r.pending_effect else { return };
        let what = purpose_name(purpose);
        if r.unchanged_checks == 0 {
            r.pending_effect = None;
            self.note(r, format!("{what} took: the screen changed"));
        } else if r.checks_since_nudge >= self.agent.policy.idle_checks {
            r.pending_effect = None;
            self.note(
                r,
                format!(
                    "{what} had no visible effect: screen unchanged for {} checks",
                    r.checks_since_nudge
                ),
            );
        }
    }

    pub(super) fn send(&mut self, r: &mut AgentRecord, purpose: Purpose, reason: String) {
        let policy = &self.agent.policy;
        let text = match purpose {
            Purpose::Nudge => policy.nudge.clone(),
            Purpose::Resume => policy.resume.clone(),
            Purpose::Handoff => self.handoff_text(r, &reason),
        };
        let verb = match purpose {
            Purpose::Nudge => "nudged",
            Purpose::Resume => "told to resume",
            Purpose::Handoff => "given its handoff",
        };
        r.reason = format!("{verb}: {reason}");
        r.checks_since_nudge = 0;
        r.pending_effect = Some(purpose);
        self.out.actions.push(Action::Send {
            agent: self.agent.name.clone(),
            incarnation: r.incarnation,
            session: r.session.clone(),
            text,
            purpose,
            reason,
        });
    }

    /// The handoff template filled in, on one line (a newline would press Enter early).
    pub(super) fn handoff_text(&self, r: &AgentRecord, reason: &str) -> String {
        let previous = r.checkpoint.as_ref().map_or(Incarnation(0), |c| c.incarnation);
        let why = r.checkpoint.as_ref().map_or(reason, |c| c.reason.as_str());
        let checkpoint = format!("{}/{}.json", self.fleet.checkpoints, self.agent.name);
        self.agent
            .policy
            .handoff
            .replace("{agent}", self.agent.name.as_str())
            .replace("{previous}", &previous.to_string())
            .replace("{reason}", why)
            .replace("{checkpoint}", &checkpoint)
            .replace(['\n', '\r'], " ")
    }
}
