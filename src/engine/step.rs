//! One supervision step: adopt what tmux shows, notice deaths (tmux pane > process >
//! recorded state), read live screens, obey the user's commands, and decide restarts,
//! nudges, resumes and stall kills. Every decision is an [`Event`] or [`Action`] with a
//! reason. No IO here.

use std::collections::BTreeSet;

use std::time::Duration;

use jiff::tz::TimeZone;

use super::limit::{self, LimitKind};
use super::mind::{
    Activity, AgentName, AgentRecord, CheckpointNote, Escalation, FleetRestarts, Handoff, Incarnation, LastExit,
    Lifecycle, Mind, RateLimit,
};
use super::policy::{backoff, crashes_within};
use super::screen::{self, ScreenRead};
use super::time::{Time, human};
use super::triage::{self, Answer, TriageOutcome, TriageResult, VerdictKind};
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
/// The window of the fleet-wide restart cap.
const FLEET_CAP_WINDOW: Duration = Duration::from_secs(3600);
/// A triage answer not back this long after the command's own timeout is taken as lost
/// (vigil restarted while it ran); the rules decide.
const TRIAGE_GRACE: Duration = Duration::from_secs(30);
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
        let triage = inputs.triage.iter().rev().find(|t| t.agent == agent.name);
        let rec = mind.agents.remove(&agent.name);
        let mut ctx = Ctx {
            agent,
            fleet,
            now,
            tz: &inputs.tz,
            out: &mut out,
            stopped: &mut mind.stopped,
            restarts: &mut mind.fleet,
            supervise: inputs.supervise,
        };
        if let Some(rec) = ctx.run(rec, pane, command, triage) {
            mind.agents.insert(agent.name.clone(), rec);
        }
    }
    report_strays(mind, fleet, obs, &mut out);
    out
}

/// Tells the engine that carrying out `action` failed, so the record reflects it.
pub fn action_failed(
    mind: &mut Mind,
    fleet: &Fleet,
    action: &Action,
    error: &str,
    now: Time,
    tz: &TimeZone,
) -> Vec<Event> {
    let mut out = Step::default();
    let Some(agent) = fleet.agents.iter().find(|a| &a.name == action.agent()) else {
        return out.events;
    };
    let Some(rec) = mind.agents.get_mut(&agent.name) else {
        return out.events;
    };
    let mut ctx = Ctx {
        agent,
        fleet,
        now,
        tz,
        out: &mut out,
        stopped: &mut mind.stopped,
        restarts: &mut mind.fleet,
        supervise: false,
    };
    match action {
        Action::Start { incarnation, .. } if *incarnation == rec.incarnation => {
            let exit = LastExit::could_not_start(error);
            ctx.end(rec, Lifecycle::Zombie, exit);
        }
        Action::Triage { incarnation, .. } if *incarnation == rec.incarnation => {
            // The supervisor could not even run it: the answer will never come.
            rec.triage_since = None;
            ctx.note(
                rec,
                format!("triage failed: {error}; the built-in rules decide at the next look"),
            );
        }
        _ => ctx.note(rec, format!("{} failed: {error}", action_name(action))),
    }
    out.events
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Start { .. } => "start",
        Action::Kill { .. } => "kill",
        Action::Send { purpose, .. } => purpose_name(*purpose),
        Action::Notify { .. } => "notify",
        Action::Triage { .. } => "triage",
        Action::Checkpoint { .. } => "checkpoint",
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
    fleet: &'a Fleet,
    now: Time,
    tz: &'a TimeZone,
    out: &'a mut Step,
    stopped: &'a mut BTreeSet<AgentName>,
    restarts: &'a mut FleetRestarts,
    supervise: bool,
}

impl Ctx<'_> {
    fn run(
        &mut self,
        rec: Option<AgentRecord>,
        pane: Option<&PaneSeen>,
        command: Option<&Command>,
        triage: Option<&TriageResult>,
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
            && self.obey(&mut rec, pane, command, read.as_ref())
        {
            return rec;
        }
        if let Some(r) = rec.as_mut()
            && self.triaged(r, triage, read.as_ref())
        {
            // A verdict was asked for (by the ladder or the user): carry it out whole.
            if !r.lifecycle.is_live() {
                self.maybe_restart(r);
            }
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
                        start_failed: false,
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
    fn obey(
        &mut self,
        rec: &mut Option<AgentRecord>,
        pane: Option<&PaneSeen>,
        command: &Command,
        read: Option<&ScreenRead>,
    ) -> bool {
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
            Command::Triage(_) => {
                let Some(r) = rec.as_mut() else { return false };
                if !r.lifecycle.is_live() {
                    self.note(
                        r,
                        format!("triage refused: {} is {}", r.incarnation, r.lifecycle.as_str()),
                    );
                    return false;
                }
                let Some(read) = read else {
                    self.note(r, "triage postponed: the screen could not be read this poll".into());
                    return false;
                };
                self.triage(r, read, "triage requested by the user".into());
                if !r.lifecycle.is_live() {
                    self.maybe_restart(r);
                }
                true
            }
        }
    }

    // ---- triage --------------------------------------------------------------------

    /// Asks the triage command, or lets the built-in rules decide at once.
    fn triage(&mut self, r: &mut AgentRecord, read: &ScreenRead, why: String) {
        if self.agent.policy.triage.is_some() {
            if r.triage_since.is_none() {
                r.triage_since = Some(self.now);
                r.reason = format!("triage: asked the triage command ({why})");
                self.out.actions.push(Action::Triage {
                    agent: self.agent.name.clone(),
                    incarnation: r.incarnation,
                    session: r.session.clone(),
                    reason: why,
                });
            }
            return;
        }
        let answer = triage::rules(read, self.now.since(r.last_change));
        self.verdict(r, read, answer, "built-in rules");
    }

    /// Applies a triage answer that arrived for this incarnation, or the rules when the
    /// command failed or its answer is overdue. Returns whether it acted.
    fn triaged(&mut self, r: &mut AgentRecord, result: Option<&TriageResult>, read: Option<&ScreenRead>) -> bool {
        let Some(asked) = r.triage_since else { return false };
        let result = result.filter(|t| t.incarnation == r.incarnation);
        let overdue = self.now.since(asked) > self.agent.policy.triage_timeout + TRIAGE_GRACE;
        if result.is_none() && !overdue {
            return false;
        }
        r.triage_since = None;
        if !r.lifecycle.is_live() {
            return false;
        }
        let Some(read) = read else {
            self.note(
                r,
                "triage answer set aside: the screen could not be read this poll".into(),
            );
            return false;
        };
        match result.map(|t| &t.outcome) {
            Some(TriageOutcome::Answered(answer)) => {
                self.verdict(r, read, answer.clone(), "triage command");
            }
            Some(TriageOutcome::Failed { why }) => {
                let answer = triage::rules(read, self.now.since(r.last_change));
                self.verdict(r, read, answer, &format!("built-in rules, as the triage command {why}"));
            }
            None => {
                let answer = triage::rules(read, self.now.since(r.last_change));
                let by = format!(
                    "built-in rules, as the triage command's answer never came (asked at {})",
                    self.clock(asked)
                );
                self.verdict(r, read, answer, &by);
            }
        }
        true
    }

    fn verdict(&mut self, r: &mut AgentRecord, read: &ScreenRead, answer: Answer, by: &str) {
        let Answer { verdict, reason } = answer;
        let said = format!("triage ({by}): {verdict} — {reason}");
        match verdict {
            VerdictKind::Continue => {
                r.reason = format!("{said}; left running");
                self.note(r, said);
            }
            VerdictKind::Nudge if read.waiting.is_some() || read.busy => {
                let why = if read.busy {
                    "its busy marker is visible"
                } else {
                    "a dialog waits for a human"
                };
                r.reason = format!("{said}; not typed: {why}");
                self.note(r, r.reason.clone());
            }
            VerdictKind::Nudge => {
                self.note(r, said.clone());
                self.send(r, Purpose::Nudge, said);
            }
            VerdictKind::Restart => {
                r.escalation = Escalation::Terminate;
                self.end(r, Lifecycle::Stalled, LastExit::because(said));
            }
            VerdictKind::Kill => {
                r.escalation = Escalation::Terminate;
                self.end(r, Lifecycle::Stalled, LastExit::because(said.clone()));
                self.stopped.insert(self.agent.name.clone());
                let name = &self.agent.name;
                r.reason = format!("{said}; held stopped: `vigil up {name}` starts it again");
                self.out.actions.push(Action::Kill {
                    agent: name.clone(),
                    incarnation: r.incarnation,
                    session: r.session.clone(),
                    reason: said,
                });
            }
        }
    }

    // ---- live incarnations ---------------------------------------------------------

    /// Judges a live incarnation's screen: rate limits, dialogs, the handoff it is
    /// owed, idleness and the escalation ladder.
    fn supervise(&mut self, r: &mut AgentRecord, read: &ScreenRead) {
        let policy = &self.agent.policy;
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
            Activity::Waiting => {
                let line = read.waiting.clone().unwrap_or_default();
                // A human is needed: the ladder stops at warn.
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
                    // The cooldown was not the agent being stuck: the ladder starts afresh.
                    r.ladder_from = Some(self.now);
                    self.send(r, Purpose::Resume, "rate-limit cooldown is over".into());
                    return;
                }
                if self.hand_off(r, read) {
                    return;
                }
                if self.climb(r, read) {
                    return;
                }
                let unchanged_for = self.now.since(r.last_change);
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
                        self.send(r, Purpose::Nudge, reason);
                        return;
                    }
                    r.reason = format!(
                        "idle at its prompt for {} unchanged checks; nudge after {needed}",
                        r.unchanged_checks
                    );
                } else if activity == Activity::Active {
                    r.reason = format!("working: screen changed at {}", self.clock(r.last_change));
                } else {
                    r.reason = format!(
                        "quiet: screen unchanged for {} ({}; stalled at {})",
                        human(unchanged_for),
                        self.next_step_words(r),
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

    /// How long the screen has counted as stuck for the ladder.
    fn dwell(&self, r: &AgentRecord) -> Duration {
        let from = r.ladder_from.map_or(r.last_change, |f| f.max(r.last_change));
        self.now.since(from)
    }

    fn next_step_words(&self, r: &AgentRecord) -> String {
        let p = &self.agent.policy;
        let next = match r.escalation {
            Escalation::None => Some(("warn", p.warn_after)),
            Escalation::Warn => Some(("nudge", p.nudge_after)),
            Escalation::Nudge => Some(("triage", p.triage_after)),
            Escalation::Triage | Escalation::Terminate => None,
        };
        match next {
            Some((step, at)) if at < p.stale_after => {
                format!("escalation {}, {step} at {}", r.escalation.as_str(), human(at))
            }
            _ => format!("escalation {}", r.escalation.as_str()),
        }
    }

    /// The escalation ladder: one step per poll at most, each after its dwell, up to
    /// terminate at `stale_after`. Returns whether the step acted (typed, asked triage,
    /// or ended the incarnation).
    fn climb(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let policy = &self.agent.policy;
        let dwell = self.dwell(r);
        if dwell >= policy.stale_after {
            let reason = format!(
                "screen unchanged for {} (stale_after {})",
                human(dwell),
                human(policy.stale_after)
            );
            r.escalation = Escalation::Terminate;
            self.end(r, Lifecycle::Stalled, LastExit::because(reason));
            return true;
        }
        let due = [
            (Escalation::Triage, policy.triage_after),
            (Escalation::Nudge, policy.nudge_after),
            (Escalation::Warn, policy.warn_after),
        ]
        .into_iter()
        .find(|(_, after)| dwell >= *after)
        .map_or(Escalation::None, |(step, _)| step);
        if due <= r.escalation {
            // At the nudge step, one nudge per dwell: typed once it is safe to type.
            if r.escalation == Escalation::Nudge && !r.ladder_nudged && !read.busy && read.waiting.is_none() {
                return self.ladder_nudge(r, dwell);
            }
            return false;
        }
        let next = match r.escalation {
            Escalation::None => Escalation::Warn,
            Escalation::Warn => Escalation::Nudge,
            Escalation::Nudge | Escalation::Triage | Escalation::Terminate => Escalation::Triage,
        };
        if next <= r.escalation {
            return false;
        }
        r.escalation = next;
        let why = format!("screen unchanged for {}", human(dwell));
        match next {
            Escalation::Warn => {
                self.note(r, format!("warn: {why}; nudge at {}", human(policy.nudge_after)));
                false
            }
            Escalation::Nudge if read.busy || read.waiting.is_some() => {
                self.note(
                    r,
                    format!("nudge step: {why}, but its busy marker is visible; not typed yet"),
                );
                false
            }
            Escalation::Nudge => self.ladder_nudge(r, dwell),
            _ => {
                self.note(r, format!("triage step: {why}"));
                self.triage(r, read, why);
                true
            }
        }
    }

    fn ladder_nudge(&mut self, r: &mut AgentRecord, dwell: Duration) -> bool {
        r.ladder_nudged = true;
        let reason = format!(
            "escalation nudge: screen unchanged for {} (triage at {})",
            human(dwell),
            human(self.agent.policy.triage_after)
        );
        self.send(r, Purpose::Nudge, reason);
        true
    }

    /// Gives a replacement incarnation its handoff as its first message, once it is
    /// ready for input (its prompt shows, or it has settled) and not busy.
    fn hand_off(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
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
    fn notice_effect(&mut self, r: &mut AgentRecord) {
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

    /// Starts, renews or clears a rate-limit cooldown. A limit counts when its line is
    /// among the last lines and either appeared anew or the screen stopped changing (the
    /// agent is stuck on it); an old limit line on a screen that keeps changing is
    /// history. The message says which kind of limit it is: a throttle waits the
    /// cooldown, a limit with a reset time waits until then (plus a margin), one that no
    /// waiting lifts is left to a human. Returns whether the incarnation ended (the
    /// fourth renewal restarts it).
    fn track_rate_limit(&mut self, r: &mut AgentRecord, read: &ScreenRead) -> bool {
        let policy = &self.agent.policy;
        let appeared = read.rate_limit.is_some() && !r.limit_visible;
        r.limit_visible = read.rate_limit.is_some();
        let stuck_on_it = read.rate_limit.is_some() && (appeared || r.unchanged_checks > 0);
        if stuck_on_it {
            let line = read.rate_limit.clone().unwrap_or_default();
            let text = match &read.rate_limit_more {
                Some(more) => format!("{line} {more}"),
                None => line.clone(),
            };
            let kind = limit::classify(&text, self.now, self.tz);
            match r.rate_limit.as_mut() {
                None => {
                    let (until, wait) = self.cooldown(&kind, 1);
                    r.rate_limit = Some(RateLimit {
                        until,
                        renewals: 0,
                        resumed: kind == LimitKind::NoReset,
                        line: line.clone(),
                        kind: kind.clone(),
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
                        self.end(r, Lifecycle::Stalled, LastExit::because(reason));
                        return true;
                    }
                    let (until, wait) = self.cooldown(&kind, renewals);
                    rl.until = until;
                    rl.resumed = kind == LimitKind::NoReset;
                    rl.line = line.clone();
                    rl.kind = kind.clone();
                    self.limit_seen(r, &line, &kind, until, wait, Some(renewals));
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
        r: &AgentRecord,
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
            self.out.actions.push(Action::Notify {
                agent: self.agent.name.clone(),
                incarnation: r.incarnation,
                reason,
            });
        }
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
        r.triage_since = None;
        r.pending_effect = None;
        if to != Lifecycle::Stalled {
            r.escalation = Escalation::None;
        }
        if to == Lifecycle::Stalled {
            // Given up on while still running: write down where it was first.
            r.checkpoint = Some(CheckpointNote {
                incarnation: r.incarnation,
                reason: exit.reason.clone(),
                at: self.now,
            });
            self.out.actions.push(Action::Checkpoint {
                agent: self.agent.name.clone(),
                incarnation: r.incarnation,
                session: r.session.clone(),
                reason: exit.reason.clone(),
            });
        }
        if self.now.since(r.since) >= policy.stable_after {
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
                self.clock(until)
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
                    self.clock(until)
                );
                self.event(r, What::Held, reason);
            }
        }
    }

    /// Replaces an ended incarnation when the policy says so and no hold applies.
    fn maybe_restart(&mut self, r: &mut AgentRecord) {
        if !self.maybe_restart_reason(r) || self.fleet_capped(r) {
            return;
        }
        let ended = r.last_exit.as_ref().map_or(String::new(), |e| e.reason.clone());
        let reason = format!("restart after {} {} ({ended})", r.lifecycle.as_str(), r.incarnation);
        self.restarts.times.push(self.now);
        let handoff = (r.lifecycle == Lifecycle::Stalled).then_some(Handoff {
            from: r.incarnation,
            reason: ended,
        });
        self.start_next(r, reason);
        r.handoff = handoff;
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
        r.reason = format!("{} ({}); restart held: {reason}", r.lifecycle.as_str(), r.incarnation);
        if !self.restarts.capped {
            self.restarts.capped = true;
            self.event(r, What::Held, reason.clone());
            self.out.actions.push(Action::Notify {
                agent: self.agent.name.clone(),
                incarnation: r.incarnation,
                reason,
            });
        }
        true
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
        } else if let Some(until) = r.rate_limit.as_ref().map(|rl| rl.until).filter(|u| self.now < *u) {
            // A new incarnation would only hit the same limit.
            r.reason = format!(
                "{} ({ended}); restart held until {}, when the rate-limit cooldown ends",
                r.lifecycle.as_str(),
                self.clock(until)
            );
        } else if let Some(until) = r.cooldown_until.filter(|u| self.now < *u) {
            if !r.reason.contains("until") {
                r.reason = format!(
                    "{} ({ended}); restart held until {}",
                    r.lifecycle.as_str(),
                    self.clock(until)
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

    /// A time of day for a reason, in the zone the step was given.
    fn clock(&self, t: Time) -> String {
        t.clock_in(self.tz)
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

fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Nudge => "nudge",
        Purpose::Resume => "resume",
        Purpose::Handoff => "handoff",
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
