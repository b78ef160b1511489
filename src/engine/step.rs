//! One supervision step: adopt what tmux shows, notice deaths (tmux pane > process >
//! recorded state), read live screens, obey the user's commands, and decide restarts,
//! nudges, resumes and stall kills. Every decision is an [`Event`] or [`Action`] with a
//! reason. No IO here.

use std::collections::BTreeSet;

use super::mind::{Activity, AgentName, AgentRecord, Escalation, Incarnation, LastExit, Lifecycle, Mind, RateLimit};
use super::policy::{STABLE_AFTER, backoff, crashes_within};
use super::screen::{self, ScreenRead};
use super::time::{Time, human};
use super::{
    Action, Command, Event, Exit, Fleet, FleetAgent, Inputs, Observation, PaneSeen, PaneState, Purpose, Step, What,
};

/// How many of a dead pane's last lines are kept as its last words.
const LAST_WORDS: usize = 5;
/// Nudges in a row wait `idle_checks << n` unchanged checks; this caps the shift.
const NUDGE_SPACING_MAX_SHIFT: u32 = 6;
/// Polls in a row with a changing screen that count as real work (a nudge's own echo
/// changes the screen once or twice).
const WORK_STREAK: u32 = 3;
/// Polls an end without an exit status is seen before it is judged (see
/// [`AgentRecord::unconfirmed_end`]).
const UNCONFIRMED_END_POLLS: u32 = 1;
/// A rate limit renewed this many times forces a restart.
const RENEWALS_BEFORE_RESTART: u32 = 4;

/// Decides what to do about every configured agent at `now`.
///
/// When several commands name the same agent the last one wins, and an agent never
/// gets more than one start in a step.
pub fn step(mind: &mut Mind, fleet: &Fleet, inputs: &Inputs, now: Time) -> Step {
    let mut out = Step::default();
    let obs = &inputs.observation;
    for agent in &fleet.agents {
        let pane = obs
            .panes
            .iter()
            .filter(|p| p.agent == agent.name.as_str())
            .max_by_key(|p| p.incarnation);
        let command = inputs.commands.iter().rev().find(|c| c.agent() == &agent.name);
        let rec = mind.agents.remove(&agent.name);
        let mut ctx = Ctx {
            agent,
            now,
            out: &mut out,
            stopped: &mut mind.stopped,
            supervise: inputs.supervise,
        };
        if let Some(rec) = ctx.run(rec, pane, command) {
            mind.agents.insert(agent.name.clone(), rec);
        }
    }
    report_strays(mind, fleet, obs, &mut out);
    out
}

/// Tells the engine that carrying out `action` failed, so the record reflects it.
pub fn action_failed(mind: &mut Mind, fleet: &Fleet, action: &Action, error: &str, now: Time) -> Vec<Event> {
    let mut out = Step::default();
    let Some(agent) = fleet.agents.iter().find(|a| &a.name == action.agent()) else {
        return out.events;
    };
    let Some(rec) = mind.agents.get_mut(&agent.name) else {
        return out.events;
    };
    let mut ctx = Ctx {
        agent,
        now,
        out: &mut out,
        stopped: &mut mind.stopped,
        supervise: false,
    };
    match action {
        Action::Start { incarnation, .. } if *incarnation == rec.incarnation => {
            let exit = LastExit::because(format!("could not start: {error}"));
            ctx.end(rec, Lifecycle::Zombie, exit);
        }
        _ => ctx.note(rec, format!("{} failed: {error}", action_name(action))),
    }
    out.events
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Start { .. } => "start",
        Action::Kill { .. } => "kill",
        Action::Send {
            purpose: Purpose::Nudge,
            ..
        } => "nudge",
        Action::Send {
            purpose: Purpose::Resume,
            ..
        } => "resume",
        Action::Notify { .. } => "notify",
    }
}

/// Sessions tagged for this run whose agent the config does not name: reported once
/// each, never killed.
fn report_strays(mind: &mut Mind, fleet: &Fleet, obs: &Observation, out: &mut Step) {
    let known = |p: &&PaneSeen| fleet.agents.iter().any(|a| a.name.as_str() == p.agent);
    let strays: Vec<&PaneSeen> = obs.panes.iter().filter(|p| !known(p)).collect();
    for pane in &strays {
        if mind.strays.insert(pane.session.clone()) {
            out.events.push(Event {
                agent: pane.agent.clone(),
                incarnation: pane.incarnation,
                what: What::Stray,
                reason: format!(
                    "tmux session `{}` is tagged for this project as agent `{}`, which the config does not name; left running (kill it with `tmux kill-session -t {}` if unwanted)",
                    pane.session, pane.agent, pane.session
                ),
            });
        }
    }
    mind.strays.retain(|s| strays.iter().any(|p| &p.session == s));
}

/// The step for one agent.
struct Ctx<'a> {
    agent: &'a FleetAgent,
    now: Time,
    out: &'a mut Step,
    stopped: &'a mut BTreeSet<AgentName>,
    supervise: bool,
}

impl Ctx<'_> {
    fn run(
        &mut self,
        rec: Option<AgentRecord>,
        pane: Option<&PaneSeen>,
        command: Option<&Command>,
    ) -> Option<AgentRecord> {
        let mut rec = self.adopt(rec, pane);
        if let Some(r) = rec.as_mut()
            && start_never_happened(r, pane)
        {
            // Decided and recorded, but vigil died before tmux was asked: finish it.
            // Completing a decision already made is not a new judgement, so it is
            // done with or without supervision, and it is no crash.
            let reason = match pane {
                Some(p) => format!(
                    "the start of {} never happened (tmux still shows {}); starting it now",
                    r.incarnation, p.incarnation
                ),
                None => format!(
                    "the start of {} never happened (no session in tmux); starting it now",
                    r.incarnation
                ),
            };
            self.start(r, reason);
            return rec;
        }
        let read = match rec.as_mut() {
            Some(r) => self.observe(r, pane),
            None => None,
        };
        if let Some(command) = command
            && self.obey(&mut rec, pane, command)
        {
            return rec;
        }
        if !self.supervise {
            if let Some(r) = rec.as_mut() {
                self.describe_unsupervised(r);
            }
            return rec;
        }
        match rec.as_mut() {
            None if self.stopped.contains(&self.agent.name) => {}
            None => {
                let reason = "first start".to_owned();
                let mut r = AgentRecord::new(Incarnation(1), self.agent.session.clone(), self.now, reason.clone());
                self.start(&mut r, reason);
                rec = Some(r);
            }
            Some(r) => {
                if let Some(read) = read {
                    self.supervise(r, &read);
                }
                if !r.lifecycle.is_live() {
                    self.maybe_restart(r);
                }
            }
        }
        rec
    }

    /// Without supervision nothing is decided; the reason still says what was seen.
    fn describe_unsupervised(&mut self, r: &mut AgentRecord) {
        if r.lifecycle.is_live() {
            if let Some(activity) = r.activity {
                r.reason = format!(
                    "{} (not supervised: no `vigil watch` or `vigil tick` ran since)",
                    activity.as_str()
                );
            }
        } else {
            self.maybe_restart_reason(r);
        }
    }

    // ---- observed beats recorded -------------------------------------------------

    /// Takes over a tagged session newer than the record (or the only one known).
    fn adopt(&mut self, rec: Option<AgentRecord>, pane: Option<&PaneSeen>) -> Option<AgentRecord> {
        let Some(pane) = pane else { return rec };
        let recorded = rec.as_ref().map(|r| r.incarnation);
        if recorded.is_some_and(|inc| inc >= pane.incarnation) {
            return rec;
        }
        let reason = match recorded {
            None => format!(
                "found {} running in tmux session `{}`; adopted, not restarted",
                pane.incarnation, pane.session
            ),
            Some(inc) => format!(
                "found {} in tmux session `{}` while the record said {inc}; tmux wins, adopted",
                pane.incarnation, pane.session
            ),
        };
        let mut r = match rec {
            Some(mut r) => {
                r.begin(pane.incarnation, self.now, reason.clone());
                r.session = pane.session.clone();
                r
            }
            None => AgentRecord::new(pane.incarnation, pane.session.clone(), self.now, reason.clone()),
        };
        r.pane_pid = Some(pane.pane_pid);
        self.event(&r, What::Adopted, reason);
        Some(r)
    }

    /// Applies what tmux and the OS say about a live incarnation: it may have ended;
    /// if it runs, its screen is read and its counters updated.
    fn observe(&mut self, r: &mut AgentRecord, pane: Option<&PaneSeen>) -> Option<ScreenRead> {
        if !r.lifecycle.is_live() {
            return None;
        }
        let Some(pane) = pane else {
            let exit = LastExit::because("its tmux session disappeared");
            self.end(r, Lifecycle::Zombie, exit);
            return None;
        };
        r.pane_pid = Some(pane.pane_pid);
        let unconfirmed = matches!(pane.state, PaneState::ProcessGone | PaneState::Dead(Exit::Unknown));
        if !unconfirmed {
            r.unconfirmed_end = 0;
        } else if r.unconfirmed_end < UNCONFIRMED_END_POLLS {
            // tmux marks a pane dead (or its process exits) a moment before it has the
            // exit status; on a busy machine that moment outlasts the supervisor's own
            // settling. Judging now would lose the status, so judge on the next poll.
            r.unconfirmed_end += 1;
            r.reason = format!(
                "its process {} seems to have ended; waiting one poll for tmux to report how",
                pane.pane_pid
            );
            return None;
        }
        match pane.state {
            PaneState::Dead(exit) => {
                let last_lines = last_words(pane.tail.as_deref().unwrap_or_default());
                let (to, code, reason) = match exit {
                    Exit::Code(0) => (Lifecycle::Completed, Some(0), "exited with status 0".to_owned()),
                    Exit::Code(c @ 129..=192) => (
                        Lifecycle::Zombie,
                        Some(c),
                        format!("exited with status {c} (killed by signal {})", c - 128),
                    ),
                    Exit::Code(c) => (Lifecycle::Zombie, Some(c), format!("exited with status {c}")),
                    Exit::Signal(s) => (Lifecycle::Zombie, None, format!("killed by signal {s}")),
                    Exit::Unknown => (Lifecycle::Zombie, None, "its process ended (status unknown)".to_owned()),
                };
                self.end(
                    r,
                    to,
                    LastExit {
                        code,
                        reason,
                        last_lines,
                    },
                );
                None
            }
            PaneState::ProcessGone => {
                let reason = format!("its process {} is gone though tmux still shows the pane", pane.pane_pid);
                self.end(r, Lifecycle::Zombie, LastExit::because(reason));
                None
            }
            PaneState::Alive => {
                let policy = &self.agent.policy;
                let tail = pane.tail.as_ref()?;
                let read = screen::read(tail, &self.agent.patterns, policy.tail_lines, policy.rate_limit_lines);
                if r.screen_hash.as_deref() == Some(read.hash.as_str()) {
                    r.unchanged_checks = r.unchanged_checks.saturating_add(1);
                    r.checks_since_nudge = r.checks_since_nudge.saturating_add(1);
                    r.changes_in_row = 0;
                } else {
                    r.screen_hash = Some(read.hash.clone());
                    r.last_change = self.now;
                    r.unchanged_checks = 0;
                    r.checks_since_nudge = 0;
                    r.changes_in_row = r.changes_in_row.saturating_add(1);
                }
                if r.lifecycle == Lifecycle::Booting && !read.blank && r.advance(Lifecycle::Working) {
                    self.event(r, What::Lifecycle(Lifecycle::Working), "pane alive and printing".into());
                }
                Some(read)
            }
        }
    }

    // ---- the user's commands -------------------------------------------------------

    /// Carries out a user command; returns whether it acted (then nothing automatic
    /// happens to this agent in this step).
    fn obey(&mut self, rec: &mut Option<AgentRecord>, pane: Option<&PaneSeen>, command: &Command) -> bool {
        let name = &self.agent.name;
        match command {
            Command::Up(_) | Command::Restart(_) => {
                self.stopped.remove(name);
                let restart = matches!(command, Command::Restart(_));
                let how = if restart {
                    "restart requested by the user"
                } else {
                    "started by `vigil up`"
                };
                match rec.as_mut() {
                    None => {
                        let mut r = AgentRecord::new(Incarnation(1), self.agent.session.clone(), self.now, how.into());
                        self.start(&mut r, how.into());
                        *rec = Some(r);
                        true
                    }
                    Some(r) if r.lifecycle.is_live() && !restart => {
                        self.note(r, format!("`vigil up`: already running as {}", r.incarnation));
                        false
                    }
                    Some(r) => {
                        if r.lifecycle.is_live() {
                            let exit = LastExit::because("restarted by the user");
                            self.end(r, Lifecycle::Completed, exit);
                        }
                        self.start_next(r, how.into());
                        true
                    }
                }
            }
            Command::Stop(_) => {
                self.stopped.insert(name.clone());
                let Some(r) = rec.as_mut() else { return true };
                let pane_alive = pane.is_some_and(|p| p.incarnation == r.incarnation && p.state == PaneState::Alive);
                if r.lifecycle.is_live() {
                    let exit = LastExit::because("stopped by the user");
                    self.end(r, Lifecycle::Completed, exit);
                }
                r.reason = format!("stopped by the user; `vigil up {name}` starts it again");
                if pane_alive || pane.is_some() {
                    self.out.actions.push(Action::Kill {
                        agent: name.clone(),
                        incarnation: r.incarnation,
                        session: r.session.clone(),
                        reason: "stop requested by the user".into(),
                    });
                }
                true
            }
            Command::Nudge(_) => {
                let Some(r) = rec.as_mut() else { return false };
                if !r.lifecycle.is_live() {
                    self.note(
                        r,
                        format!("nudge refused: {} is {}", r.incarnation, r.lifecycle.as_str()),
                    );
                    false
                } else if r.activity == Some(Activity::Waiting) {
                    self.note(
                        r,
                        "nudge refused: a dialog is waiting for a human; attach and answer it".into(),
                    );
                    false
                } else {
                    self.send(r, Purpose::Nudge, "nudge requested by the user".into());
                    true
                }
            }
        }
    }

    // ---- live incarnations ---------------------------------------------------------

    /// Judges a live incarnation's screen: rate limits, dialogs, idleness, staleness.
    fn supervise(&mut self, r: &mut AgentRecord, read: &ScreenRead) {
        let policy = &self.agent.policy;
        let before = r.activity;
        if self.track_rate_limit(r, read) {
            return;
        }
        let cooling = r
            .rate_limit
            .as_ref()
            .filter(|rl| self.now < rl.until)
            .map(|rl| rl.until);
        let activity = if cooling.is_some() {
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
        if activity == Activity::Active && r.changes_in_row >= WORK_STREAK {
            r.escalation = Escalation::None;
        }
        let unchanged_for = self.now.since(r.last_change);
        match activity {
            Activity::RateLimited => {
                let until = cooling.unwrap_or(self.now);
                r.reason = format!(
                    "rate limited; cooling down until {}, then told to resume",
                    until.clock()
                );
            }
            Activity::Waiting => {
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
            Activity::Active | Activity::Idle | Activity::Quiet => {
                if let Some(rl) = r.rate_limit.as_mut()
                    && !rl.resumed
                {
                    rl.resumed = true;
                    self.send(r, Purpose::Resume, "rate-limit cooldown is over".into());
                    return;
                }
                if unchanged_for >= policy.stale_after {
                    let reason = format!(
                        "screen unchanged for {} (stale_after {})",
                        human(unchanged_for),
                        human(policy.stale_after)
                    );
                    r.escalation = Escalation::Terminate;
                    self.end(r, Lifecycle::Stalled, LastExit::because(reason));
                    return;
                }
                if activity == Activity::Idle {
                    if before != Some(Activity::Idle) {
                        self.event(
                            r,
                            What::Activity(Activity::Idle),
                            "screen unchanged with the prompt visible".into(),
                        );
                    }
                    let needed = policy
                        .idle_checks
                        .saturating_mul(1 << r.nudges.min(NUDGE_SPACING_MAX_SHIFT));
                    if r.checks_since_nudge >= needed {
                        let reason = format!(
                            "idle at its prompt for {} unchanged checks (nudge #{} after {needed})",
                            r.unchanged_checks,
                            r.nudges + 1
                        );
                        r.nudges = r.nudges.saturating_add(1);
                        r.escalation = Escalation::Nudge;
                        self.send(r, Purpose::Nudge, reason);
                        return;
                    }
                    r.reason = format!(
                        "idle at its prompt for {} unchanged checks; nudge after {needed}",
                        r.unchanged_checks
                    );
                } else if activity == Activity::Active {
                    r.reason = format!("working: screen changed at {}", r.last_change.clock());
                } else {
                    r.reason = format!(
                        "quiet: screen unchanged for {} (stalled at {})",
                        human(unchanged_for),
                        human(policy.stale_after)
                    );
                }
                if before.is_some_and(|b| b != activity && b != Activity::Active && b != Activity::Quiet) {
                    let reason = format!("no longer {}", before.map_or("", Activity::as_str));
                    self.event(r, What::Activity(activity), reason);
                }
            }
        }
    }

    /// Starts, renews or clears a rate-limit cooldown. A limit counts when its line is
    /// among the last lines and either appeared anew or the screen stopped changing (the
    /// agent is stuck on it); an old limit line on a screen that keeps changing is
    /// history. Returns whether the incarnation ended (the fourth renewal restarts it).
    fn track_rate_limit(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let policy = &self.agent.policy;
        let appeared = read.rate_limit.is_some() && !r.limit_visible;
        r.limit_visible = read.rate_limit.is_some();
        let stuck_on_it = read.rate_limit.is_some() && (appeared || r.unchanged_checks > 0);
        if stuck_on_it {
            let line = read.rate_limit.clone().unwrap_or_default();
            match r.rate_limit.as_mut() {
                None => {
                    let until = self.now.plus(policy.rate_limit_cooldown);
                    r.rate_limit = Some(RateLimit {
                        until,
                        renewals: 0,
                        resumed: false,
                        line: line.clone(),
                    });
                    let reason = format!(
                        "«{line}»; no nudges or restarts for {}, until {}",
                        human(policy.rate_limit_cooldown),
                        until.clock()
                    );
                    self.event(r, What::Activity(Activity::RateLimited), reason);
                }
                Some(rl) if rl.resumed => {
                    rl.renewals = rl.renewals.saturating_add(1);
                    let renewals = rl.renewals;
                    if renewals >= RENEWALS_BEFORE_RESTART {
                        r.rate_limit = None;
                        let reason = format!("rate limit came back {renewals} times after cooldowns («{line}»)");
                        self.end(r, Lifecycle::Stalled, LastExit::because(reason));
                        return true;
                    }
                    let cooldown = policy.rate_limit_cooldown / renewals;
                    rl.until = self.now.plus(cooldown);
                    rl.resumed = false;
                    rl.line = line.clone();
                    let reason = format!(
                        "again after resuming (renewal {renewals}; the {} renews with a restart): «{line}»; cooling down {} (cooldown / renewals), until {}",
                        ordinal(RENEWALS_BEFORE_RESTART),
                        human(cooldown),
                        rl.until.clock()
                    );
                    self.event(r, What::Activity(Activity::RateLimited), reason);
                }
                Some(_) => {}
            }
        }
        if let Some(rl) = &r.rate_limit
            && rl.resumed
            && !r.limit_visible
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

    // ---- ended incarnations --------------------------------------------------------

    /// Ends the live incarnation as `to`, records the crash, and sets any hold on the
    /// next restart (backoff, crash loop).
    fn end(&mut self, r: &mut AgentRecord, to: Lifecycle, exit: LastExit) {
        if !r.advance(to) {
            return;
        }
        let policy = &self.agent.policy;
        r.activity = None;
        r.limit_visible = false;
        if to != Lifecycle::Stalled {
            r.escalation = Escalation::None;
        }
        if self.now.since(r.since) >= STABLE_AFTER {
            r.failures_in_row = 0;
        }
        let failed = to != Lifecycle::Completed;
        if failed {
            r.failures_in_row = r.failures_in_row.saturating_add(1);
        }
        if to == Lifecycle::Zombie {
            r.crashes.push(self.now);
            let excess = r.crashes.len().saturating_sub(AgentRecord::CRASHES_KEPT);
            r.crashes.drain(..excess);
        }
        let mut reason = exit.reason.clone();
        if let Some(last) = exit.last_lines.last() {
            reason.push_str(&format!("; last words: «{last}»"));
        }
        r.reason = format!("{}: {reason}", to.as_str());
        r.last_exit = Some(exit);
        self.event(r, What::Lifecycle(to), reason);

        r.cooldown_until = None;
        let recent = crashes_within(&r.crashes, policy.crash_window, self.now);
        if to == Lifecycle::Zombie && recent >= policy.crash_max as usize {
            let until = self.now.plus(policy.crash_cooldown);
            r.cooldown_until = Some(until);
            let reason = format!(
                "crash loop: {recent} crashes within {}; no restart for {}, until {}",
                human(policy.crash_window),
                human(policy.crash_cooldown),
                until.clock()
            );
            r.reason = format!(
                "zombie ({}); {reason}",
                r.last_exit.as_ref().map_or("", |e| e.reason.as_str())
            );
            self.event(r, What::Held, reason);
        } else if failed {
            let wait = backoff(r.failures_in_row);
            if !wait.is_zero() {
                let until = self.now.plus(wait);
                r.cooldown_until = Some(until);
                let reason = format!(
                    "{} failures in a row; backing off {} before restarting, until {}",
                    r.failures_in_row,
                    human(wait),
                    until.clock()
                );
                self.event(r, What::Held, reason);
            }
        }
    }

    /// Replaces an ended incarnation when the policy says so and no hold applies.
    fn maybe_restart(&mut self, r: &mut AgentRecord) {
        if self.maybe_restart_reason(r) {
            let ended = r.last_exit.as_ref().map_or(String::new(), |e| e.reason.clone());
            let reason = format!("restart after {} {} ({ended})", r.lifecycle.as_str(), r.incarnation);
            self.start_next(r, reason);
        }
    }

    /// Says why an ended incarnation stays ended, or returns true when it is due a
    /// restart now.
    fn maybe_restart_reason(&mut self, r: &mut AgentRecord) -> bool {
        let name = &self.agent.name;
        let policy = &self.agent.policy;
        let ended = r.last_exit.as_ref().map_or(String::new(), |e| e.reason.clone());
        if self.stopped.contains(name) {
            r.reason = format!("stopped by the user; `vigil up {name}` starts it again");
        } else if !policy.restart.restarts_after(r.lifecycle) {
            r.reason = format!(
                "{} ({ended}); restart policy `{}` leaves it so",
                r.lifecycle.as_str(),
                policy.restart.as_str()
            );
        } else if let Some(until) = r.cooldown_until.filter(|u| self.now < *u) {
            if !r.reason.contains("until") {
                r.reason = format!(
                    "{} ({ended}); restart held until {}",
                    r.lifecycle.as_str(),
                    until.clock()
                );
            }
        } else {
            return true;
        }
        false
    }

    fn start_next(&mut self, r: &mut AgentRecord, reason: String) {
        r.restarts = r.restarts.saturating_add(1);
        r.begin(r.incarnation.next(), self.now, reason.clone());
        r.session = self.agent.session.clone();
        self.start(r, reason);
    }

    fn start(&mut self, r: &mut AgentRecord, reason: String) {
        r.reason = format!("starting: {reason}");
        self.out.actions.push(Action::Start {
            agent: self.agent.name.clone(),
            incarnation: r.incarnation,
            session: r.session.clone(),
            reason,
        });
    }

    fn send(&mut self, r: &mut AgentRecord, purpose: Purpose, reason: String) {
        let policy = &self.agent.policy;
        let text = match purpose {
            Purpose::Nudge => policy.nudge.clone(),
            Purpose::Resume => policy.resume.clone(),
        };
        let verb = match purpose {
            Purpose::Nudge => "nudged",
            Purpose::Resume => "told to resume",
        };
        r.reason = format!("{verb}: {reason}");
        r.checks_since_nudge = 0;
        self.out.actions.push(Action::Send {
            agent: self.agent.name.clone(),
            incarnation: r.incarnation,
            session: r.session.clone(),
            text,
            purpose,
            reason,
        });
    }

    fn note(&mut self, r: &AgentRecord, reason: String) {
        self.event(r, What::Note, reason);
    }

    fn event(&mut self, r: &AgentRecord, what: What, reason: String) {
        self.out.events.push(Event {
            agent: self.agent.name.to_string(),
            incarnation: r.incarnation,
            what,
            reason,
        });
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

/// A booting incarnation never yet seen, while tmux shows no session for the agent or
/// only an older one: the start was decided but never carried out.
fn start_never_happened(r: &AgentRecord, pane: Option<&PaneSeen>) -> bool {
    r.lifecycle == Lifecycle::Booting && r.pane_pid.is_none() && pane.is_none_or(|p| p.incarnation < r.incarnation)
}

/// A dead pane's last non-blank lines, tmux's own notice excluded.
fn last_words(raw: &[String]) -> Vec<String> {
    let tail = screen::tail(raw, usize::MAX);
    screen::last_non_blank(&tail, LAST_WORDS)
        .into_iter()
        .map(str::to_owned)
        .collect()
}
