//! One supervision step, split along its seams: [`observe`] (adopt what tmux shows,
//! notice deaths, read live screens), [`commands`] (obey the user), [`live`] and
//! [`ladder`] (judge a live screen, climb the escalation ladder), [`rate_limit`],
//! [`triage`], [`signals`] (what the agent's own hooks said), [`ending`] (the end of a lifecycle), [`restart`] (policy, holds, the
//! fleet cap) and [`host`] (a lost tmux server: one host failure, not N crashes). Every decision is an [`Event`] or [`Action`] with a reason. No IO here.

mod alerts;
mod commands;
mod ending;
mod host;
mod ladder;
mod live;
mod observe;
mod rate_limit;
mod restart;
mod signals;
mod triage;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::tz::TimeZone;

use super::mind::{AgentName, AgentRecord, EndedLifecycle, FleetRestarts, Incarnation, LastExit, Mind};
use super::signal::Signal;
use super::time::Time;
use super::triage::TriageResult;
use super::{Action, Command, Event, Fleet, FleetAgent, Inputs, Observation, PaneSeen, Pressure, Purpose, Step, What};
use observe::start_never_happened;

/// Decides what to do about every configured agent at `now`.
///
/// When several commands name the same agent the last one wins, and an agent never
/// gets more than one start in a step.
pub fn step(mind: &mut Mind, fleet: &Fleet, inputs: &Inputs, now: Time) -> Step {
    let mut out = Step::default();
    let obs = &inputs.observation;
    if let Some(gap) = &inputs.gap {
        super::gap::rebase(mind, gap, now);
    }
    super::gap::bound(mind, fleet, now);
    let outage = host::notice(mind, fleet, inputs, now).map(|(outage, event)| {
        out.host = Some(event);
        outage
    });
    // Each agent's newest pane (the last listed of the newest incarnation), found in
    // one walk of the panes, not one per agent.
    let mut newest: HashMap<&str, &PaneSeen> = HashMap::with_capacity(obs.panes.len());
    for p in &obs.panes {
        let slot = newest.entry(p.agent.as_str()).or_insert(p);
        if p.incarnation >= slot.incarnation {
            *slot = p;
        }
    }
    for agent in &fleet.agents {
        let pane = newest.get(agent.name.as_str()).copied();
        let command = inputs.commands.iter().rev().find(|c| c.agent() == &agent.name);
        let triage = inputs.triage.iter().rev().find(|t| t.agent == agent.name);
        let heard: Vec<&Signal> = inputs.signals.iter().filter(|s| s.agent == agent.name).collect();
        let rec = mind.agents.remove(&agent.name);
        let known = inputs.resets.iter().find(|k| k.agent == agent.name);
        let mut ctx = Ctx {
            agent,
            fleet,
            now,
            tz: &inputs.tz,
            out: &mut out,
            stopped: &mut mind.stopped,
            restarts: &mut mind.fleet,
            supervise: inputs.supervise,
            host: outage.as_ref(),
            pressure: &inputs.pressure,
            others: &mind.agents,
            known,
        };
        if let Some(rec) = ctx.run(rec, pane, command, triage, &heard) {
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
    let step = aside(mind, fleet, action.agent(), now, tz, |ctx, rec| match action {
        Action::Start { incarnation, .. } if *incarnation == rec.incarnation => {
            let exit = LastExit::could_not_start(error);
            ctx.end(rec, EndedLifecycle::Zombie, exit);
        }
        Action::Triage { incarnation, .. } if *incarnation == rec.incarnation => {
            // The supervisor could not even run it: the answer will never come.
            if let Some(live) = rec.live_mut() {
                live.triage_since = None;
            }
            ctx.note(
                rec,
                format!("triage failed: {error}; the built-in rules decide at the next look"),
            );
        }
        _ => ctx.note(rec, format!("{} failed: {error}", action_name(action))),
    });
    step.events
}

/// Tells the engine that the start of `incarnation` was refused before tmux was asked
/// (its cwd is gone, its program is missing or not executable): the start failed, held
/// as the shell's own failure would be. Its events and the notice for the user.
pub fn start_failed(
    mind: &mut Mind,
    fleet: &Fleet,
    agent: &AgentName,
    incarnation: Incarnation,
    why: &str,
    now: Time,
    tz: &TimeZone,
) -> Step {
    aside(mind, fleet, agent, now, tz, |ctx, rec| {
        if rec.incarnation == incarnation {
            let exit = LastExit {
                start_failed: true,
                ..LastExit::because(why)
            };
            ctx.fail_start(rec, exit);
        }
    })
}

/// Runs `f` over one agent's record outside a pass (no supervision, no outage: what an
/// adapter reports back about an action), and returns what it said.
fn aside(
    mind: &mut Mind,
    fleet: &Fleet,
    name: &AgentName,
    now: Time,
    tz: &TimeZone,
    f: impl FnOnce(&mut Ctx<'_>, &mut AgentRecord),
) -> Step {
    let mut out = Step::default();
    let Some(agent) = fleet.agents.iter().find(|a| &a.name == name) else {
        return out;
    };
    let Some(rec) = mind.agents.get_mut(&agent.name) else {
        return out;
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
        host: None,
        pressure: &Pressure::default(),
        others: &BTreeMap::new(),
        known: None,
    };
    f(&mut ctx, rec);
    out
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
    let named: HashSet<&str> = fleet.agents.iter().map(|a| a.name.as_str()).collect();
    let strays: Vec<&PaneSeen> = obs.panes.iter().filter(|p| !named.contains(p.agent.as_str())).collect();
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
    let standing: HashSet<&str> = strays.iter().map(|p| p.session.as_str()).collect();
    mind.strays.retain(|s| standing.contains(s.as_str()));
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
    /// The host failure this step noticed, if any.
    host: Option<&'a host::Outage>,
    /// The host's load and memory before this step, for [`Ctx::start`].
    pressure: &'a Pressure,
    /// Every other agent's record as this step has left it so far (this one's is out
    /// of the map while it is decided): those booting are starting at once.
    others: &'a BTreeMap<AgentName, AgentRecord>,
    /// What the agent's structured limit source last said ([`Ctx::known_reset`]).
    known: Option<&'a super::resets::Reported>,
}

impl Ctx<'_> {
    fn run(
        &mut self,
        rec: Option<AgentRecord>,
        pane: Option<&PaneSeen>,
        command: Option<&Command>,
        triage: Option<&TriageResult>,
        heard: &[&Signal],
    ) -> Option<AgentRecord> {
        let mut rec = self.decide(rec, pane, command, triage, heard);
        if let Some(r) = rec.as_mut() {
            self.settle_alerts(r);
        }
        rec
    }

    fn decide(
        &mut self,
        rec: Option<AgentRecord>,
        pane: Option<&PaneSeen>,
        command: Option<&Command>,
        triage: Option<&TriageResult>,
        heard: &[&Signal],
    ) -> Option<AgentRecord> {
        let mut rec = self.adopt(rec, pane);
        let never = rec.as_ref().is_some_and(|r| start_never_happened(r, pane));
        if never && let Some(stop @ Command::Stop(_)) = command {
            // Nothing runs yet: a stop needs no kill, and wins over the start.
            self.obey(&mut rec, pane, stop, None);
            return rec;
        }
        if let Some(r) = rec.as_mut()
            && never
        {
            // Decided and recorded, but vigil died before tmux was asked, or host
            // pressure deferred it: finish it. Completing a decision already made is
            // not a new judgement, so it is done with or without supervision, and it
            // is no crash.
            let reason = match (r.deferred(), pane) {
                (Some(d), _) => format!("{} (deferred since {} by host pressure)", d.start, self.clock(d.since)),
                (None, Some(p)) => format!(
                    "the start of {} never happened (tmux still shows {}); starting it now",
                    r.incarnation, p.incarnation
                ),
                (None, None) => format!(
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
        if let Some(r) = rec.as_mut() {
            self.hear(r, heard, read.as_ref());
        }
        if let Some(command) = command
            && self.obey(&mut rec, pane, command, read.as_ref())
        {
            return rec;
        }
        if let Some(r) = rec.as_mut()
            && self.triaged(r, triage, read.as_ref())
        {
            // A verdict was asked for (by the ladder or the user): carry it out whole.
            if !r.is_live() {
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
                if !r.is_live() {
                    self.maybe_restart(r);
                }
            }
        }
        rec
    }

    /// Without supervision nothing is decided; the reason still says what was seen.
    fn describe_unsupervised(&mut self, r: &mut AgentRecord) {
        if r.is_live() {
            if let Some(activity) = r.activity() {
                r.reason = format!(
                    "{} (not supervised: no `vigil watch` or `vigil tick` ran since)",
                    activity.as_str()
                );
            }
        } else {
            self.maybe_restart_reason(r);
        }
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
