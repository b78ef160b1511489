//! The supervisor: claim the run, load the Mind (rebuilding it from the journal when
//! the snapshot is unusable), settle what a dead owner left half-done, then pass after
//! pass — observe tmux and the OS, let the engine decide, snapshot, journal each
//! intent before acting on it, act through tmux, journal the outcome, beat.
//! Decides nothing itself: every judgement is the engine's.

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub mod runtime;
pub mod spawn;
pub mod triager;
pub mod watchdog;

use crate::adapters::git;
use crate::adapters::process;
use crate::adapters::tmux::{Pane, Tmux, TmuxError};
use crate::config::Config;
use crate::engine::{
    self, Action, AgentName, Command, Exit, Fleet, Incarnation, Inputs, Mind, Observation, PaneSeen, PaneState, Time,
};
use crate::store::failpoint;
use crate::store::record::{Checkpoint as Checkpointed, CommandSource, Failure, NotifyTag, Reload, Settled};
use crate::store::{
    CHECKPOINT_VERSION, Checkpoint, Entry, Journal, Lock, Record, Role, Store, StoreError, material, materials,
    read_journal,
};
use triager::Triager;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// tmux could not be asked what runs; nothing was decided on missing facts.
    #[error("cannot observe tmux: {0}")]
    Observe(TmuxError),
}

/// How often, and how long apart, panes caught between exit and reaping are re-read.
const SETTLE_TRIES: usize = 3;
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Lines of the pane a triage command and a checkpoint are given.
const CONTEXT_LINES: usize = 50;
/// Recent decisions about the agent a triage command is given.
const CONTEXT_DECISIONS: usize = 10;

/// The engine's view of the configured agents, with where this run's checkpoints live.
fn fleet_of(config: &Config, store: &Store) -> Fleet {
    let mut fleet = config.fleet();
    fleet.checkpoints = store.checkpoint_dir().to_string_lossy().into_owned();
    fleet
}

/// What one pass wrote to the journal, for a face to show.
pub type Records = Vec<Entry>;

pub struct Supervisor<T: Tmux> {
    config: Config,
    fleet: Fleet,
    tmux: T,
    store: Store,
    journal: Journal,
    lock: Lock,
    mind: Mind,
    /// The material state of each agent as last journaled, to journal only changes.
    journaled: BTreeMap<AgentName, Value>,
    loops: u64,
    intents: u64,
    triager: Triager,
    /// The machine's zone, read once: for limit messages and times in reasons.
    tz: jiff::tz::TimeZone,
}

impl<T: Tmux> Supervisor<T> {
    /// Claims the run (refusing when another process owns it), loads the Mind (or
    /// rebuilds it from the journal when the snapshot is unusable), and reconciles the
    /// intents a dead owner left open. What it found is in the returned records.
    pub fn claim(
        config: Config,
        tmux: T,
        store: Store,
        role: Role,
        now: Time,
    ) -> Result<(Self, Records), SupervisorError> {
        let lock = store.claim(role, now)?;
        store.tidy();
        let journal = store.journal();
        journal.seal()?;
        let owner = &lock.owner;
        let claimed = Record::Claimed {
            pid: owner.pid,
            epoch: owner.epoch,
            role,
            project: config.project.clone(),
        };
        let mut records = vec![journal.append(now, claimed)?];
        let loaded = store.load_mind(now)?;
        let mut mind = loaded.mind;
        if let Some(warning) = loaded.warning {
            let (rebuilt, how) = match journal.rebuild()? {
                Some(m) => {
                    let how = format!(
                        "rebuilt {} agent record(s) from the journal, then from what tmux shows",
                        m.agents.len()
                    );
                    (m, how)
                }
                None => (
                    Mind::default(),
                    "the journal holds no records; rebuilding from what tmux shows".to_owned(),
                ),
            };
            mind = rebuilt;
            let message = format!("{warning}; {how}");
            records.push(journal.append(now, Record::Warning { message })?);
        }
        // `always` (unlike `unless-stopped`) forgets a stop when a long-running supervisor
        // starts; a `tick` continues supervision and does not count as a restart.
        if matches!(role, Role::Watch | Role::Tui) {
            for agent in &config.agents {
                if agent.policy.restart == engine::RestartPolicy::Always && mind.stopped.remove(&agent.name) {
                    let reason = "restart policy `always`: a stop lasts until vigil restarts".to_owned();
                    let note = Record::Note {
                        agent: agent.name.clone(),
                        reason,
                    };
                    records.push(journal.append(now, note)?);
                }
            }
        }
        let fleet = fleet_of(&config, &store);
        let journaled = materials(&mind);
        let mut sup = Self {
            config,
            fleet,
            tmux,
            store,
            journal,
            lock,
            mind,
            journaled,
            loops: 0,
            intents: 0,
            triager: Triager::default(),
            tz: jiff::tz::TimeZone::system(),
        };
        records.extend(sup.reconcile(now)?);
        Ok((sup, records))
    }

    pub fn mind(&self) -> &Mind {
        &self.mind
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn tmux(&self) -> &T {
        &self.tmux
    }

    pub fn epoch(&self) -> u64 {
        self.lock.owner.epoch
    }

    /// Takes a new config while running, without touching a single agent: each keeps
    /// its session and incarnation (the engine recognises it by its tags); a changed
    /// policy or pattern applies from the next pass, a changed command, cwd or env from
    /// the agent's next start; a new agent is started by the next pass; one taken out
    /// is left running as a stray. The tmux socket and the state dir cannot move under
    /// a running owner: they keep their values until vigil restarts, and a warning says
    /// so. What changed is journaled as one `reloaded` record.
    pub fn reload(&mut self, mut config: Config, now: Time) -> Result<Records, StoreError> {
        let mut records = Records::new();
        let old = &self.config;
        let mut kept = Vec::new();
        if config.socket != old.socket {
            kept.push(format!(
                "`socket` changed to {:?}; vigil keeps using {:?} until it restarts",
                config.socket, old.socket
            ));
            config.socket = old.socket.clone();
        }
        if config.state_dir != old.state_dir {
            kept.push("`state_dir` changed; vigil keeps its state where it is until it restarts".to_owned());
            config.state_dir = old.state_dir.clone();
        }
        let names = |c: &Config| c.agents.iter().map(|a| a.name.to_string()).collect::<Vec<_>>();
        let added: Vec<String> = names(&config).into_iter().filter(|n| old.agent(n).is_none()).collect();
        let removed: Vec<String> = names(old).into_iter().filter(|n| config.agent(n).is_none()).collect();
        let changes: Vec<(&AgentName, Vec<Setting>)> = config
            .agents
            .iter()
            .filter_map(|new| {
                let what = agent_changes(old.agent(new.name.as_str())?, new);
                (!what.is_empty()).then_some((&new.name, what))
            })
            .collect();
        let later = changes.iter().flat_map(|(_, what)| what).any(|s| s.at_next_start());
        let changed: Vec<String> = changes
            .iter()
            .map(|(name, what)| {
                let keys: Vec<&str> = what.iter().map(|s| s.as_str()).collect();
                format!("{name} ({})", keys.join(", "))
            })
            .collect();
        let mut summary = Vec::new();
        if config.poll_interval != old.poll_interval {
            summary.push(format!(
                "poll interval {} → {}",
                engine::time::human(old.poll_interval),
                engine::time::human(config.poll_interval)
            ));
        }
        if !added.is_empty() {
            summary.push(format!("added {} (started by the next pass)", added.join(", ")));
        }
        if !removed.is_empty() {
            summary.push(format!(
                "removed {} (left running, no longer supervised)",
                removed.join(", ")
            ));
        }
        if !changed.is_empty() {
            summary.push(format!(
                "changed {}{}",
                changed.join("; "),
                if later {
                    " (a new command, cwd or env applies from that agent's next start)"
                } else {
                    ""
                }
            ));
        }
        if config.journal_max_bytes != old.journal_max_bytes || config.journal_keep != old.journal_keep {
            summary.push("journal rotation changed".to_owned());
        }
        let message = if summary.is_empty() {
            "config reloaded: nothing that matters changed".to_owned()
        } else {
            format!("config reloaded: {}; no agent was restarted", summary.join("; "))
        };
        let reload = Reload {
            path: config.path.clone(),
            added,
            removed,
            changed,
            poll_interval_ms: u64::try_from(config.poll_interval.as_millis()).unwrap_or(u64::MAX),
            message,
        };
        records.push(self.journal.append(now, Record::Reloaded(reload))?);
        for message in kept {
            records.push(self.journal.append(now, Record::Warning { message })?);
        }
        self.fleet = fleet_of(&config, &self.store);
        self.config = config;
        Ok(records)
    }

    /// Settles each intent a dead owner left without an outcome, by what tmux shows: a
    /// start whose tagged session exists is done; a start the record still waits for
    /// is redone; a kill whose session is gone is done, else redone; typing is never
    /// repeated. Each answer is journaled with its reason.
    fn reconcile(&mut self, now: Time) -> Result<Records, StoreError> {
        let open = self.journal.open_intents()?;
        let mut records = Records::new();
        if open.is_empty() {
            return Ok(records);
        }
        let panes = match self.tmux.list_panes() {
            Ok(p) => p,
            Err(e) => {
                let message = format!(
                    "cannot reconcile {} open intent(s): {e}; left for the next owner",
                    open.len()
                );
                records.push(self.journal.append(now, Record::Warning { message })?);
                return Ok(records);
            }
        };
        let run = self.fleet.run.clone();
        for (id, action) in open {
            let tagged = |agent: &AgentName, inc: Incarnation| {
                panes.iter().any(|p| {
                    p.is_ours(&run) && p.agent.as_deref() == Some(agent.as_str()) && p.incarnation == Some(inc.0)
                })
            };
            let (outcome, reason) = match &action {
                Action::Start { agent, incarnation, .. } if tagged(agent, *incarnation) => {
                    (Settled::Done, "its tagged session exists".to_owned())
                }
                Action::Start { agent, incarnation, .. } => {
                    let awaited =
                        self.mind.agents.get(agent).is_some_and(|r| {
                            r.incarnation == *incarnation && r.lifecycle == engine::Lifecycle::Booting
                        });
                    if awaited {
                        self.redo(&action, &panes, now, &mut records)?
                    } else {
                        (Settled::Abandoned, "the record has moved past it".to_owned())
                    }
                }
                Action::Kill { agent, incarnation, .. } if !tagged(agent, *incarnation) => {
                    (Settled::Done, "its session is gone".to_owned())
                }
                Action::Kill { .. } => self.redo(&action, &panes, now, &mut records)?,
                Action::Send { .. } | Action::Notify { .. } => (
                    Settled::Abandoned,
                    "typing twice is worse than not at all; the engine decides again".to_owned(),
                ),
                Action::Triage { .. } | Action::Checkpoint { .. } => (
                    Settled::Abandoned,
                    "not a change to tmux; the engine decides again".to_owned(),
                ),
            };
            let settled = Record::Reconciled {
                id,
                outcome,
                reason,
                action,
            };
            records.push(self.journal.append(now, settled)?);
        }
        records.extend(self.persist(now)?);
        Ok(records)
    }

    /// Tells the engine an action failed and journals what it made of that.
    fn failed(&mut self, action: &Action, error: &str, now: Time) -> Result<Records, StoreError> {
        let events = engine::action_failed(&mut self.mind, &self.fleet, action, error, now, &self.tz);
        events
            .into_iter()
            .map(|e| self.journal.append(now, Record::Event(e)))
            .collect()
    }

    /// Carries out a dead owner's action again; a failure goes to the engine.
    fn redo(
        &mut self,
        action: &Action,
        panes: &[Pane],
        now: Time,
        records: &mut Records,
    ) -> Result<(Settled, String), StoreError> {
        match self.execute(action, panes) {
            Ok(()) => Ok((Settled::Redone, "it had not happened; done now".to_owned())),
            Err(error) => {
                records.extend(self.failed(action, &error, now)?);
                Ok((Settled::Failed, format!("redoing it failed: {error}")))
            }
        }
    }

    /// One pass: observe, decide, persist, act. `commands` come from the user (the CLI
    /// or the inbox, which is read here too); `supervise` lets the engine act on its own
    /// judgement. The Mind is on disk before any action runs, and every action's intent
    /// is on disk before tmux is asked.
    pub fn pass(&mut self, commands: Vec<Command>, supervise: bool, now: Time) -> Result<Records, SupervisorError> {
        self.pass_with(commands, Vec::new(), supervise, now)
    }

    fn pass_with(
        &mut self,
        mut commands: Vec<Command>,
        mut answers: Vec<engine::TriageResult>,
        supervise: bool,
        now: Time,
    ) -> Result<Records, SupervisorError> {
        let mut records = Records::new();
        let config = &self.config;
        if self
            .journal
            .rotate_if_over(config.journal_max_bytes, config.journal_keep)?
        {
            let mind = Box::new(self.mind.clone());
            records.push(
                self.journal
                    .append(now, Record::Checkpoint(Checkpointed::Mind { mind }))?,
            );
        }
        let (from_inbox, problems) = self.store.inbox().take()?;
        for message in problems {
            records.push(self.journal.append(now, Record::Warning { message })?);
        }
        for command in &from_inbox {
            let request = Record::Command {
                from: CommandSource::Inbox,
                request: command.clone(),
            };
            records.push(self.journal.append(now, request)?);
        }
        commands.splice(0..0, from_inbox);

        let panes = match self.settled_panes() {
            Ok(p) => p,
            Err(e) => {
                let message = format!("cannot list tmux panes: {e}; nothing decided this pass");
                records.push(self.journal.append(now, Record::Warning { message })?);
                self.beat(now)?;
                return Err(SupervisorError::Observe(e));
            }
        };
        let (observation, capture_problems) = self.observe(&panes);
        for message in capture_problems {
            records.push(self.journal.append(now, Record::Warning { message })?);
        }
        answers.extend(self.triager.collect());
        for answer in &answers {
            records.push(self.journal.append(now, Record::Triaged(answer.clone()))?);
        }
        let inputs = Inputs {
            observation,
            commands,
            supervise,
            triage: answers,
            tz: self.tz.clone(),
        };
        let step = engine::step(&mut self.mind, &self.fleet, &inputs, now);
        for event in &step.events {
            records.push(self.journal.append(now, Record::Event(event.clone()))?);
        }
        records.extend(self.persist(now)?);
        let mut failed = false;
        for action in &step.actions {
            let (done, ok) = self.act(action, &panes, now)?;
            records.extend(done);
            failed |= !ok;
        }
        if failed {
            records.extend(self.persist(now)?);
        }
        self.beat(now)?;
        Ok(records)
    }

    /// Journals every agent record that changed materially, then snapshots the Mind.
    fn persist(&mut self, now: Time) -> Result<Records, StoreError> {
        let mut records = Records::new();
        for (name, rec) in &self.mind.agents {
            let stopped = self.mind.stopped.contains(name);
            let current = material(rec, stopped);
            if self.journaled.get(name) != Some(&current) {
                let record = Record::Record {
                    agent: name.clone(),
                    record: Box::new(rec.clone()),
                    stopped,
                };
                records.push(self.journal.append(now, record)?);
                self.journaled.insert(name.clone(), current);
            }
        }
        self.store.save_mind(&self.mind, now)?;
        Ok(records)
    }

    fn beat(&mut self, now: Time) -> Result<(), StoreError> {
        self.loops += 1;
        self.store.beat(&self.lock, self.loops, now)
    }

    /// All panes, looked at again (briefly) while one of ours is between exiting and
    /// being reaped: tmux marks a pane dead when its pty closes, a moment before it
    /// knows the exit status, and a process can be gone a moment before tmux notices.
    /// Judging in that moment would call a clean exit a crash.
    fn settled_panes(&self) -> Result<Vec<Pane>, TmuxError> {
        let mut panes = self.tmux.list_panes()?;
        for _ in 0..SETTLE_TRIES {
            let in_flux = panes.iter().filter(|p| p.is_ours(&self.fleet.run)).any(|p| {
                if p.dead {
                    p.exit_tag.is_none() && p.dead_status.is_none() && p.dead_signal.is_none()
                } else {
                    !process::alive(p.pane_pid)
                }
            });
            if !in_flux {
                break;
            }
            std::thread::sleep(SETTLE_WAIT);
            panes = self.tmux.list_panes()?;
        }
        Ok(panes)
    }

    /// What tmux and /proc say about this run's tagged panes.
    fn observe(&self, panes: &[Pane]) -> (Observation, Vec<String>) {
        let mut seen = Vec::new();
        let mut problems = Vec::new();
        for pane in panes.iter().filter(|p| p.is_ours(&self.fleet.run)) {
            let Some(agent) = pane.agent.clone() else { continue };
            let incarnation = Incarnation(pane.incarnation.unwrap_or(0));
            let state = if pane.dead {
                // The wrapper's record first: tmux sometimes never learns the status.
                PaneState::Dead(match (pane.exit_tag, pane.dead_status, pane.dead_signal) {
                    (Some(code), _, _) | (None, Some(code), _) => Exit::Code(code),
                    (None, None, Some(signal)) => Exit::Signal(signal),
                    (None, None, None) => Exit::Unknown,
                })
            } else if process::alive(pane.pane_pid) {
                PaneState::Alive
            } else {
                PaneState::ProcessGone
            };
            let fleet_agent = self.fleet.agents.iter().find(|a| a.name.as_str() == agent);
            let recorded_live = fleet_agent
                .and_then(|a| self.mind.agents.get(&a.name))
                .is_some_and(|r| r.lifecycle.is_live() && r.incarnation <= incarnation);
            // Alive panes are read every poll; a dead one only once, for its last words.
            let wants_tail = fleet_agent.is_some()
                && match state {
                    PaneState::Alive => true,
                    PaneState::Dead(_) => recorded_live,
                    PaneState::ProcessGone => false,
                };
            let tail = if wants_tail {
                let lines = fleet_agent.map_or(30, |a| a.policy.tail_lines);
                match self.tmux.capture(&pane.session, lines) {
                    Ok(t) => Some(t),
                    // Gone between the listing and the capture: not seen at all.
                    Err(TmuxError::NoSuchSession(_)) => continue,
                    Err(e) => {
                        problems.push(format!(
                            "cannot read the screen of `{}`: {e}; screen unjudged this poll",
                            pane.session
                        ));
                        None
                    }
                }
            } else {
                None
            };
            seen.push(PaneSeen {
                session: pane.session.clone(),
                agent,
                incarnation,
                pane_pid: pane.pane_pid,
                state,
                tail,
            });
        }
        (Observation { panes: seen }, problems)
    }

    /// Carries out one action: intent journaled (synced) first, then tmux, then the
    /// outcome. A failure goes back to the engine so the record reflects it. Returns
    /// the records written and whether the action succeeded.
    fn act(&mut self, action: &Action, panes: &[Pane], now: Time) -> Result<(Records, bool), StoreError> {
        if !action.mutates() {
            return self.act_aside(action, now);
        }
        self.intents += 1;
        let id = format!("{}-{}", self.lock.owner.epoch, self.intents);
        let intent = Record::Intent {
            id: id.clone(),
            action: action.clone(),
        };
        let mut records = vec![self.journal.append(now, intent)?];
        failpoint::hit("after-intent");
        let result = self.execute(action, panes);
        failpoint::hit("after-act");
        match result {
            Ok(()) => {
                records.push(self.journal.append(now, Record::Done { id })?);
                Ok((records, true))
            }
            Err(error) => {
                let failure = Failure {
                    id: Some(id),
                    action: None,
                    error: error.clone(),
                };
                records.push(self.journal.append(now, Record::Failed(failure))?);
                records.extend(self.failed(action, &error, now)?);
                Ok((records, false))
            }
        }
    }

    /// Actions that change nothing in tmux: telling the user, starting a triage,
    /// writing a checkpoint. Journaled once, with how they went.
    fn act_aside(&mut self, action: &Action, now: Time) -> Result<(Records, bool), StoreError> {
        let result = match action {
            Action::Triage {
                agent,
                incarnation,
                reason,
                ..
            } => self
                .start_triage(agent, *incarnation, now)
                .map(|command| Record::Triage {
                    agent: agent.clone(),
                    incarnation: *incarnation,
                    command,
                    reason: reason.clone(),
                }),
            Action::Checkpoint {
                agent,
                incarnation,
                session,
                reason,
            } => self.checkpoint(agent, *incarnation, session, reason, now).map(|path| {
                Record::Checkpoint(Checkpointed::Written {
                    agent: agent.clone(),
                    incarnation: *incarnation,
                    path,
                    reason: reason.clone(),
                })
            }),
            Action::Notify {
                agent,
                incarnation,
                reason,
            } => Ok(Record::Notify {
                action: NotifyTag::Notify,
                agent: agent.clone(),
                incarnation: *incarnation,
                reason: reason.clone(),
            }),
            Action::Start { .. } | Action::Kill { .. } | Action::Send { .. } => Ok(Record::Warning {
                message: format!("{} reached the aside path; not carried out", action.reason()),
            }),
        };
        match result {
            Ok(record) => Ok((vec![self.journal.append(now, record)?], true)),
            Err(error) => {
                let failure = Failure {
                    id: None,
                    action: Some(action.clone()),
                    error: error.clone(),
                };
                let mut records = vec![self.journal.append(now, Record::Failed(failure))?];
                records.extend(self.failed(action, &error, now)?);
                records.extend(self.persist(now)?);
                Ok((records, false))
            }
        }
    }

    /// Starts the triage command for an agent on its own thread.
    fn start_triage(&mut self, agent: &AgentName, incarnation: Incarnation, now: Time) -> Result<Vec<String>, String> {
        let config = self
            .config
            .agent(agent.as_str())
            .ok_or_else(|| format!("agent `{agent}` is not configured"))?;
        let argv = config.policy.triage.clone().ok_or("no triage command is configured")?;
        let rec = self.mind.agents.get(agent);
        let session = rec.map_or_else(String::new, |r| r.session.clone());
        let last_lines = self.tmux.capture(&session, CONTEXT_LINES).unwrap_or_default();
        let input = json!({
            "agent": agent,
            "incarnation": incarnation,
            "lifecycle": rec.map(|r| r.lifecycle),
            "activity": rec.and_then(|r| r.activity),
            "escalation": rec.map(|r| r.escalation),
            "reason": rec.map(|r| r.reason.clone()),
            "unchanged_for_s": rec.map(|r| now.since(r.last_change).as_secs()),
            "cwd": config.cwd,
            "last_lines": last_lines,
            "recent_decisions": self.recent_decisions(agent),
            "answer_with": {"verdict": "continue | nudge | restart | kill", "reason": "one line: why"},
        });
        let request = triager::Request {
            agent: agent.clone(),
            incarnation,
            argv: argv.clone(),
            cwd: config.cwd.clone(),
            input,
            timeout: config.policy.triage_timeout,
        };
        if !self.triager.start(request) {
            return Err("a triage of this agent is still running".into());
        }
        Ok(argv)
    }

    /// The reasons of the last decisions about `agent`, oldest first.
    fn recent_decisions(&self, agent: &AgentName) -> Vec<String> {
        let entries = read_journal(self.journal.path()).unwrap_or_default();
        let mut reasons: Vec<String> = entries
            .iter()
            .rev()
            .filter(|e| e.record.agent() == Some(agent.as_str()))
            .filter_map(|e| e.record.reason())
            .take(CONTEXT_DECISIONS)
            .map(str::to_owned)
            .collect();
        reasons.reverse();
        reasons
    }

    /// Writes down where a stuck incarnation was, before it is replaced.
    fn checkpoint(
        &self,
        agent: &AgentName,
        incarnation: Incarnation,
        session: &str,
        reason: &str,
        now: Time,
    ) -> Result<std::path::PathBuf, String> {
        let config = self
            .config
            .agent(agent.as_str())
            .ok_or_else(|| format!("agent `{agent}` is not configured"))?;
        let raw = self.tmux.capture(session, CONTEXT_LINES).unwrap_or_default();
        let last_lines = engine::screen::tail(&raw, CONTEXT_LINES)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let checkpoint = Checkpoint {
            version: CHECKPOINT_VERSION,
            agent: agent.clone(),
            incarnation,
            reason: reason.to_owned(),
            at: now,
            cwd: config.cwd.clone(),
            last_lines,
            git: git::git_state(&config.cwd),
        };
        self.store.write_checkpoint(&checkpoint).map_err(|e| e.to_string())
    }

    /// Whether a triage command is still running.
    pub fn triage_running(&self) -> bool {
        !self.triager.is_idle()
    }

    /// Waits (up to the longest triage timeout) for running triages, then makes one more
    /// pass so their answers are acted on; for one-shot runs (`tick`, `vigil triage`).
    pub fn settle_triage(&mut self, supervise: bool, now: impl Fn() -> Time) -> Result<Records, SupervisorError> {
        if self.triager.is_idle() {
            return Ok(Records::new());
        }
        let longest = self
            .config
            .agents
            .iter()
            .map(|a| a.policy.triage_timeout)
            .max()
            .unwrap_or_default();
        let answers = self.triager.wait(longest + std::time::Duration::from_secs(1));
        self.pass_with(Vec::new(), answers, supervise, now())
    }

    fn execute(&self, action: &Action, panes: &[Pane]) -> Result<(), String> {
        let gone_is_fine = |r: Result<(), TmuxError>| match r {
            Ok(()) | Err(TmuxError::NoSuchSession(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        match action {
            Action::Start {
                agent,
                incarnation,
                session,
                ..
            } => {
                let config = self
                    .config
                    .agent(agent.as_str())
                    .ok_or_else(|| format!("agent `{agent}` is not configured"))?;
                if let Some(p) = panes.iter().find(|p| &p.session == session)
                    && !p.is_ours(&self.fleet.run)
                {
                    return Err(format!(
                        "a tmux session named `{session}` already exists and vigil did not start it for this project; rename that session or the agent"
                    ));
                }
                // Replace every session of this agent: the dead pane, the hung one, strays.
                for old in panes
                    .iter()
                    .filter(|p| p.is_ours(&self.fleet.run) && p.agent.as_deref() == Some(agent.as_str()))
                {
                    gone_is_fine(self.tmux.kill(&old.session))?;
                }
                let spec = spawn::spec(config, session, *incarnation, &self.fleet.run);
                self.tmux.spawn(&spec).map_err(|e| e.to_string())
            }
            Action::Kill { session, .. } => gone_is_fine(self.tmux.kill(session)),
            Action::Send { session, text, .. } => self.tmux.send_text(session, text).map_err(|e| e.to_string()),
            Action::Notify { .. } | Action::Triage { .. } | Action::Checkpoint { .. } => Ok(()),
        }
    }
}

/// One key of an agent's config, as a reload compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setting {
    Command,
    Cwd,
    Env,
    Preset,
    Policy,
    Patterns,
}

impl Setting {
    fn as_str(self) -> &'static str {
        match self {
            Setting::Command => "command",
            Setting::Cwd => "cwd",
            Setting::Env => "env",
            Setting::Preset => "preset",
            Setting::Policy => "policy",
            Setting::Patterns => "patterns",
        }
    }

    /// Whether a change takes effect only when the agent next starts.
    fn at_next_start(self) -> bool {
        matches!(self, Setting::Command | Setting::Cwd | Setting::Env)
    }
}

/// Which settings of one agent differ between two configs.
fn agent_changes(old: &crate::config::AgentConfig, new: &crate::config::AgentConfig) -> Vec<Setting> {
    let patterns = |a: &crate::config::AgentConfig| {
        let p = &a.patterns;
        [&p.prompt, &p.busy, &p.waiting, &p.rate_limit, &p.volatile].map(|r| r.as_ref().map(|r| r.as_str().to_owned()))
    };
    [
        (old.command != new.command, Setting::Command),
        (old.cwd != new.cwd, Setting::Cwd),
        (old.env != new.env, Setting::Env),
        (old.preset != new.preset, Setting::Preset),
        (old.policy != new.policy, Setting::Policy),
        (patterns(old) != patterns(new), Setting::Patterns),
    ]
    .into_iter()
    .filter_map(|(differs, setting)| differs.then_some(setting))
    .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::adapters::tmux::FakeTmux;
    use crate::engine::{AgentName, Lifecycle};
    use crate::store::read_journal;

    fn config(dir: &Path) -> Config {
        let text = "[vigil]\npoll_interval = 1\n[[agent]]\nname = \"a\"\ncommand = [\"agent\"]\n[[agent]]\nname = \"b\"\ncommand = \"agent --b\"\n";
        Config::parse(text, &dir.join("vigil.toml")).unwrap()
    }

    fn t(s: i64) -> Time {
        Time::from_millis(1_800_000_000_000 + s * 1000)
    }

    #[test]
    fn a_pass_starts_the_fleet_journals_intents_before_outcomes_and_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let store = Store::open(&dir.path().join("state")).unwrap();
        let (mut sup, _) = Supervisor::claim(config, FakeTmux::default(), store.clone(), Role::Tick, t(0)).unwrap();
        sup.pass(Vec::new(), true, t(0)).unwrap();
        let sessions = sup.tmux().sessions();
        assert_eq!(sessions.len(), 2);
        let spec = sup.tmux().session(&sessions[0]).unwrap().spec.unwrap();
        assert_eq!(spec.argv, ["sh", "-c", spawn::WRAPPER, "vigil-agent", "agent"]);
        assert_eq!(spec.incarnation, 1);

        let journal = read_journal(store.journal().path()).unwrap();
        let first_intent = journal
            .iter()
            .position(|e| matches!(e.record, Record::Intent { .. }))
            .unwrap();
        let Record::Intent { id, action } = &journal[first_intent].record else {
            unreachable!()
        };
        assert_eq!(
            journal[first_intent + 1].record,
            Record::Done { id: id.clone() },
            "{journal:?}"
        );
        assert!(matches!(action, Action::Start { .. }), "{action:?}");
        assert!(!action.reason().is_empty());

        let loaded = store.load_mind(t(1)).unwrap().mind;
        assert_eq!(&loaded, sup.mind());
    }

    #[test]
    fn a_session_name_taken_by_someone_else_is_never_killed() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let taken = config.session_of(&AgentName::new("a").unwrap());
        let tmux = FakeTmux::default();
        tmux.insert(Pane {
            session: taken.clone(),
            pane_pid: 1,
            ..Pane::default()
        });
        let store = Store::open(&dir.path().join("state")).unwrap();
        let (mut sup, _) = Supervisor::claim(config, tmux, store, Role::Tick, t(0)).unwrap();
        let records = sup.pass(Vec::new(), true, t(0)).unwrap();
        assert!(
            sup.tmux().session(&taken).unwrap().spec.is_none(),
            "the foreign session is untouched"
        );
        let failed = records
            .iter()
            .find_map(|e| match &e.record {
                Record::Failed(f) => Some(f),
                _ => None,
            })
            .unwrap();
        assert!(failed.error.contains("vigil did not start it"), "{failed:?}");
        let a = &sup.mind().agents[&AgentName::new("a").unwrap()];
        assert_eq!(a.lifecycle, Lifecycle::Zombie);
        assert!(a.last_exit.as_ref().unwrap().reason.starts_with("could not start"));
        assert!(a.last_exit.as_ref().unwrap().start_failed);
    }

    #[test]
    fn commands_left_in_the_inbox_are_carried_out_by_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let store = Store::open(&dir.path().join("state")).unwrap();
        let (mut sup, _) = Supervisor::claim(config, FakeTmux::default(), store.clone(), Role::Watch, t(0)).unwrap();
        sup.pass(Vec::new(), true, t(0)).unwrap();
        store
            .inbox()
            .submit(&Command::Stop(AgentName::new("b").unwrap()), t(1))
            .unwrap();
        let records = sup.pass(Vec::new(), true, t(2)).unwrap();
        assert!(records.iter().any(|e| matches!(
            &e.record,
            Record::Command { request: Command::Stop(b), .. } if b.as_str() == "b"
        )));
        assert_eq!(sup.tmux().sessions().len(), 1, "b was stopped");
        assert!(sup.mind().stopped.contains(&AgentName::new("b").unwrap()));
    }

    #[test]
    fn when_tmux_cannot_be_listed_nothing_is_decided() {
        struct Broken;
        impl Tmux for Broken {
            fn list_panes(&self) -> Result<Vec<Pane>, TmuxError> {
                Err(TmuxError::Failed {
                    args: "list-panes".into(),
                    stderr: "server exited unexpectedly".into(),
                })
            }
            fn capture(&self, _: &str, _: usize) -> Result<Vec<String>, TmuxError> {
                unreachable!()
            }
            fn send_text(&self, _: &str, _: &str) -> Result<(), TmuxError> {
                unreachable!()
            }
            fn spawn(&self, _: &crate::adapters::tmux::SpawnSpec) -> Result<(), TmuxError> {
                unreachable!("no start on missing facts")
            }
            fn kill(&self, _: &str) -> Result<(), TmuxError> {
                unreachable!()
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let (mut sup, _) = Supervisor::claim(config(dir.path()), Broken, store, Role::Tick, t(0)).unwrap();
        assert!(matches!(
            sup.pass(Vec::new(), true, t(0)),
            Err(SupervisorError::Observe(_))
        ));
        assert!(sup.mind().agents.is_empty());
    }

    #[test]
    fn an_agent_named_envoy_whose_policy_changed_applies_it_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let text = |checks: u32| {
            format!(
                "[vigil]\npoll_interval = 1\n[[agent]]\nname = \"envoy\"\ncommand = [\"agent\"]\nidle_checks = {checks}\n"
            )
        };
        let parse = |t: String| Config::parse(&t, &dir.path().join("vigil.toml")).unwrap();
        let (mut sup, _) = Supervisor::claim(parse(text(3)), FakeTmux::default(), store, Role::Watch, t(0)).unwrap();
        let records = sup.reload(parse(text(9)), t(1)).unwrap();
        let Record::Reloaded(reloaded) = &records[0].record else {
            panic!("{records:?}")
        };
        assert_eq!(reloaded.changed, ["envoy (policy)"]);
        assert!(
            !reloaded.message.contains("next start"),
            "a policy applies from the next pass: {}",
            reloaded.message
        );
    }

    #[test]
    fn a_reload_applies_the_new_config_without_restarting_any_agent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let (mut sup, _) = Supervisor::claim(
            config(dir.path()),
            FakeTmux::default(),
            store.clone(),
            Role::Watch,
            t(0),
        )
        .unwrap();
        sup.pass(Vec::new(), true, t(0)).unwrap();
        let before = sup.tmux().sessions();
        let text = "[vigil]\npoll_interval = 2\nsocket = \"elsewhere\"\n\
                    [[agent]]\nname = \"a\"\ncommand = [\"agent\", \"--new-flag\"]\nidle_checks = 9\n\
                    [[agent]]\nname = \"c\"\ncommand = \"agent --c\"\n";
        let new = Config::parse(text, &dir.path().join("vigil.toml")).unwrap();
        let records = sup.reload(new, t(1)).unwrap();
        let Record::Reloaded(reloaded) = &records[0].record else {
            panic!("{records:?}")
        };
        assert_eq!(reloaded.added, ["c"]);
        assert_eq!(reloaded.removed, ["b"]);
        assert_eq!(reloaded.changed, ["a (command, policy)"]);
        assert!(
            matches!(&records[1].record, Record::Warning { message } if message.contains("`socket` changed")),
            "{records:?}"
        );
        assert_eq!(
            sup.config().socket,
            None,
            "the socket cannot move under a running owner"
        );
        assert_eq!(sup.config().poll_interval, std::time::Duration::from_secs(2));

        // Reloading touches nothing in tmux; the next pass starts c (the real-tmux test
        // in tests/it/systemd.rs shows a and b keep their processes).
        assert_eq!(sup.tmux().sessions(), before);
        assert_eq!(
            sup.mind().agents[&AgentName::new("a").unwrap()].incarnation,
            Incarnation(1)
        );
        sup.pass(Vec::new(), true, t(2)).unwrap();
        assert!(sup.tmux().sessions().iter().any(|s| s.ends_with("-c")), "c was started");
    }
}
