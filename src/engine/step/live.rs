//! Judging a live incarnation's screen: its activity, a rate limit's [`Hold`], dialogs,
//! the handoff it is owed, idle nudges, and what typed text did.

use super::{Ctx, purpose_name};
use crate::engine::mind::{Activity, AgentRecord, Escalation, Hold, HumanNeeded, Incarnation, Wait};
use crate::engine::screen::{ScreenRead, WaitingRule};
use crate::engine::signal::{self, Said, Signal};
use crate::engine::time::human;
use crate::engine::{Action, Alert, LimitKind, OffScreen, Purpose, Tree, What};

/// Nudges in a row wait `idle_checks << n` unchanged checks; this caps the shift.
const NUDGE_SPACING_MAX_SHIFT: u32 = 6;
/// Polls in a row with a changing screen that count as real work (a nudge's own echo
/// changes the screen once or twice).
const WORK_STREAK: u32 = 3;

impl Ctx<'_> {
    /// Judges a live incarnation's screen: rate limits, dialogs, the handoff it is
    /// owed, idleness and the escalation ladder.
    pub(super) fn supervise(&mut self, r: &mut AgentRecord, read: &ScreenRead) {
        let before = r.activity();
        self.notice_effect(r);
        if self.track_rate_limit(r, read) {
            return;
        }
        // A fresh signal from the agent itself outranks the screen.
        let heard = self.current_signal(r, read);
        let read = &signal::overlay(read, heard.as_ref(), self.now);
        let working = heard.as_ref().is_some_and(|s| s.heard.said == Said::Working);
        // A fresh word from the agent outranks its tree's CPU too.
        let said_idle = heard.as_ref().is_some_and(|s| s.heard.said == Said::Idle);
        let hold = self.limit_hold(r);
        let off_screen = self.busy_off_screen(r);
        let Some(live) = r.live_mut() else { return };
        // Evidence below the screen's: only a still screen with no limit and no dialog
        // on it is kept `active` by its tree.
        let off_screen =
            off_screen.filter(|_| live.unchanged_checks > 0 && hold.is_none() && read.waiting.is_none() && !said_idle);
        let activity = if hold.is_some() {
            Activity::RateLimited
        } else if read.waiting.is_some() {
            Activity::Waiting
        } else if live.unchanged_checks == 0 || off_screen.is_some() || working {
            Activity::Active
        } else if read.prompt && !read.busy {
            Activity::Idle
        } else {
            Activity::Quiet
        };
        live.activity = Some(activity);
        if live.changes_in_row >= WORK_STREAK || read.busy {
            live.nudges = 0;
        }
        let was_off_screen = std::mem::replace(&mut live.busy_off_screen, off_screen.is_some());
        if off_screen.is_some() {
            // Working, though not on screen: the ladder's dwell starts again.
            live.ladder_from = Some(self.now);
        }
        let from = live.escalation;
        if activity == Activity::Active && live.changes_in_row >= WORK_STREAK && from != Escalation::None {
            live.escalation = Escalation::None;
            live.ladder_nudged = false;
            let said = format!("working again: escalation back from {} to none", from.as_str());
            self.note(r, said);
        }
        let busy_cpu = self.agent.policy.busy_cpu;
        match &off_screen {
            Some(tree) if !was_off_screen => {
                let said = format!(
                    "{}; its screen is still but it works: the ladder waits",
                    tree.busy_words()
                );
                let what = What::OffScreen(OffScreen {
                    working: true,
                    tree: tree.clone(),
                    busy_cpu,
                });
                self.event(r, what, said);
            }
            None if was_off_screen => {
                let tree = r.live().and_then(|l| l.tree.clone()).unwrap_or_default();
                let said = format!("its process tree went quiet ({})", tree.words());
                let what = What::OffScreen(OffScreen {
                    working: false,
                    tree,
                    busy_cpu,
                });
                self.event(r, what, said);
            }
            _ => {}
        }
        let words = off_screen.as_ref().map(Tree::busy_words);
        match (activity, hold) {
            (Activity::RateLimited, Some(hold)) => self.limited(r, &hold),
            (Activity::Waiting, _) => self.waiting(r, read, before),
            _ => self.unhindered(r, read, activity, before, words.as_deref()),
        }
        if let Some(heard) = &heard {
            self.cite_signal(r, heard, activity);
        }
    }

    /// The reason names the signal it rests on, with its source and age.
    fn cite_signal(&mut self, r: &mut AgentRecord, heard: &Signal, activity: Activity) {
        let cited = signal::cite(heard, self.now);
        match (&heard.heard.said, activity) {
            // A waiting signal's words are already the dialog's line.
            (Said::Waiting, Activity::Waiting) => {}
            (Said::Working, Activity::Active) if r.reason.starts_with("working: screen") => {
                r.reason = format!("working: {cited}");
            }
            _ => r.reason = format!("{}; last signal: {cited}", r.reason),
        }
    }

    /// The tree of an agent whose process tree used at least `busy_cpu` since the pass
    /// before, as the last look measured it; `None` below, or before two looks.
    fn busy_off_screen(&self, r: &AgentRecord) -> Option<Tree> {
        let tree = r.live()?.tree.as_ref()?;
        let pct = tree.cpu_pct?;
        (pct >= self.agent.policy.busy_cpu).then(|| tree.clone())
    }

    /// The hold a rate limit puts on a live incarnation now: until its cooldown ends,
    /// or, for a limit that waiting will not lift and that is still on screen, until a
    /// human acts.
    fn limit_hold(&self, r: &AgentRecord) -> Option<Hold> {
        let rl = r.rate_limit.as_ref()?;
        let visible = r.live().is_some_and(|l| l.limit_visible);
        match rl.kind {
            LimitKind::NoReset if visible => Some(Hold::UntilHuman {
                cause: HumanNeeded::NoResetLimit,
            }),
            _ if self.now < rl.until => Some(Hold::Until {
                at: rl.until,
                cause: Wait::RateLimit,
            }),
            _ => None,
        }
    }

    /// Rate limited: nothing is typed or restarted while the hold lasts.
    fn limited(&mut self, r: &mut AgentRecord, hold: &Hold) {
        let line = r.rate_limit.as_ref().map_or(String::new(), |rl| rl.line.clone());
        r.reason = match hold.until() {
            Some(until) => format!(
                "rate limited («{line}»); cooling down until {}, then told to resume",
                self.clock(until)
            ),
            None => format!(
                "limit that waiting will not lift («{line}»): a human must act; never nudged or restarted meanwhile"
            ),
        };
    }

    /// A dialog waits for a human: the ladder stops at warn, and the user is told once.
    fn waiting(&mut self, r: &mut AgentRecord, read: &ScreenRead, before: Option<Activity>) {
        let line = read.waiting.as_ref().map_or_else(String::new, |w| w.line.clone());
        if let Some(live) = r.live_mut() {
            live.escalation = Escalation::Warn;
        }
        r.reason = match read.waiting.as_ref().map(|w| w.rule) {
            Some(WaitingRule::Signal) => format!("waiting: {line} (never nudged or killed; attach and answer)"),
            _ => format!("needs a human: «{line}» (never nudged or killed; attach and answer)"),
        };
        if before != Some(Activity::Waiting) {
            self.event(
                r,
                What::Activity(Activity::Waiting),
                match read.waiting.as_ref().map(|w| w.rule) {
                    Some(WaitingRule::Signal) => format!("the agent says it waits: {line}"),
                    _ => format!("a dialog is on screen: «{line}»"),
                },
            );
        }
        let reason = format!("«{line}» is waiting for an answer; vigil will not touch it");
        self.raise(r, Alert::Waiting, reason);
    }

    /// Nothing holds it back (no limit, no dialog): the resume after a cooldown, the
    /// handoff, the ladder, then idle nudges.
    fn unhindered(
        &mut self,
        r: &mut AgentRecord,
        read: &ScreenRead,
        activity: Activity,
        before: Option<Activity>,
        off_screen: Option<&str>,
    ) {
        if self.after_cooldown(r) {
            return;
        }
        if self.hand_off(r, read) || self.climb(r, read) {
            return;
        }
        if activity == Activity::Idle {
            if self.idle(r, before) {
                return;
            }
        } else if let Some(words) = off_screen {
            r.reason = format!("working: {words} (screen still)");
        } else if let Some(live) = r.live() {
            r.reason = if activity == Activity::Active {
                format!("working: screen changed at {}", self.clock(live.last_change))
            } else {
                format!(
                    "quiet: screen unchanged for {} ({}; stalled at {})",
                    human(self.now.since(live.last_change)),
                    self.next_step_words(live),
                    human(self.agent.policy.stale_after)
                )
            };
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
        let Some(live) = r.live_mut() else { return false };
        let needed = self
            .agent
            .policy
            .idle_checks
            .saturating_mul(1 << live.nudges.min(NUDGE_SPACING_MAX_SHIFT));
        if live.checks_since_nudge >= needed {
            let reason = format!(
                "idle at its prompt for {} unchanged checks (nudge #{} after {needed})",
                live.unchanged_checks,
                live.nudges + 1
            );
            live.nudges = live.nudges.saturating_add(1);
            self.send(r, Purpose::Nudge, reason);
            return true;
        }
        r.reason = format!(
            "idle at its prompt for {} unchanged checks; nudge after {needed}",
            live.unchanged_checks
        );
        false
    }

    /// Gives a replacement incarnation its handoff as its first message, once it is
    /// ready for input (its prompt shows, or it has settled) and not busy.
    fn hand_off(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let Some(live) = r.live_mut() else { return false };
        let Some(handoff) = live.handoff.clone() else {
            return false;
        };
        let settled = live.unchanged_checks >= self.agent.policy.idle_checks;
        let ready = (read.prompt || settled) && live.unchanged_checks > 0;
        if !ready || read.busy || read.waiting.is_some() {
            return false;
        }
        live.handoff = None;
        let reason = format!("handoff from {} ({})", handoff.from, handoff.reason);
        self.send(r, Purpose::Handoff, reason);
        true
    }

    /// Journals whether typed text had a visible effect (the screen changed).
    fn notice_effect(&mut self, r: &mut AgentRecord) {
        let Some(live) = r.live_mut() else { return };
        let Some(purpose) = live.pending_effect else { return };
        let what = purpose_name(purpose);
        if live.unchanged_checks == 0 {
            live.pending_effect = None;
            self.note(r, format!("{what} took: the screen changed"));
        } else if live.checks_since_nudge >= self.agent.policy.idle_checks {
            live.pending_effect = None;
            let said = format!(
                "{what} had no visible effect: screen unchanged for {} checks",
                live.checks_since_nudge
            );
            self.note(r, said);
        }
    }

    /// Types `purpose`'s text into a live incarnation's pane.
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
        if let Some(live) = r.live_mut() {
            live.checks_since_nudge = 0;
            live.pending_effect = Some(purpose);
        }
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
    fn handoff_text(&self, r: &AgentRecord, reason: &str) -> String {
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
