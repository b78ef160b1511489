//! The supervisor: claim the run, load the Mind (rebuilding it from the journal when
//! the snapshot is unusable), settle what a dead owner left half-done, then pass after
//! pass — observe tmux and the OS, let the engine decide, snapshot, journal each
//! intent before acting on it, act through tmux, journal the outcome, beat.
//! Decides nothing itself: every judgement is the engine's.

use std::collections::BTreeMap;

mod act;
mod gap;
mod known;
mod letters;
mod metrics;
pub mod notify;
mod observe;
mod reconcile;
mod reload;
pub mod runtime;
mod sessions;
mod signals;
pub mod spawn;
pub mod trees;
pub mod triager;
pub mod watchdog;
pub mod wiring;

pub use act::ActionError;
pub use letters::SETTLE;

use crate::adapters::tmux::{Tmux, TmuxError};
use crate::config::Config;
use crate::engine::gap::{Reading, Since};
use crate::engine::{self, AgentName, Command, Fleet, Inputs, Mind, Time};
use crate::store::record::Checkpoint as Checkpointed;
use crate::store::{Durability, Entry, Journal, Lock, Record, Role, Store, StoreError, fingerprint, materials};
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
    /// The material state of each agent as last journaled (its fingerprint), to
    /// journal only changes.
    journaled: BTreeMap<AgentName, u64>,
    loops: u64,
    intents: u64,
    triager: Triager,
    /// The machine's zone, read once: for limit messages and times in reasons.
    tz: jiff::tz::TimeZone,
    /// The clocks at the last step (or the previous owner's last beat), to notice a
    /// jump of the wall clock or unwatched time at the next.
    before: Option<(Reading, Since)>,
    /// The clocks at the start of the pass running, for the heartbeat.
    reading: Option<Reading>,
    /// Since when, and why, passes cannot write the state dir; `None` while they can.
    degraded: Option<(Time, String)>,
    /// Whether the Mind holds decisions not yet on disk (between the step and the
    /// snapshot); a pass that fails then rolls the Mind back to what disk says.
    unsaved: bool,
    /// The journal's count of appends when the snapshot was last synced to disk: a
    /// snapshot with nothing journaled since differs only in counters and is written
    /// without waiting for the disk.
    synced_at: Option<u64>,
    /// Inbox letters whose answers wait for a later pass.
    awaiting: Vec<letters::Awaiting>,
    /// Letters a dead owner journaled but did not delete: never obeyed twice.
    taken_before: std::collections::BTreeSet<crate::store::LetterId>,
    /// Whether a step has run since the claim: the first one looks at what went
    /// while nobody watched.
    stepped: bool,
    /// The last screen read of each live session, for a checkpoint written after the
    /// server that showed it is gone (host failure).
    /// It is also what a pane whose window has printed nothing since shows now.
    screens: BTreeMap<String, observe::Screen>,
    /// The last reading of each live pane's process tree, for its CPU since then.
    trees: trees::Trees,
    /// When the pass running began (its length goes into the heartbeat).
    pass_started: Option<std::time::Instant>,
    /// Why the metrics file could not be written last time, to say so once.
    metrics_problem: Option<String>,
    /// Delivers notices off the loop; `None` when `[notify]` names no channel.
    notifier: Option<notify::Notifier>,
    /// The settings files that wire agents' own signals to `vigil hook`.
    wiring: wiring::Files,
    /// What each agent's Claude Code session file last said.
    sessions: BTreeMap<AgentName, sessions::SessionSeen>,
    /// What each agent's structured limit source (statusLine, rollout) last said.
    known: BTreeMap<AgentName, known::KnownSeen>,
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
        let before = gap::last_owner(&store);
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
        let system_gemini = std::env::var_os(wiring::GEMINI_ENV).map(std::path::PathBuf::from);
        let (wired, notes) = wiring::prepare(&store, system_gemini.as_deref());
        for message in notes {
            records.push(journal.append(now, Record::Warning { message })?);
        }
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
            before,
            reading: None,
            degraded: None,
            unsaved: false,
            synced_at: None,
            awaiting: Vec::new(),
            taken_before: Default::default(),
            stepped: false,
            screens: BTreeMap::new(),
            trees: Default::default(),
            pass_started: None,
            metrics_problem: None,
            notifier: None,
            wiring: wired,
            sessions: BTreeMap::new(),
            known: BTreeMap::new(),
        };
        sup.notifier = sup.start_notifier();
        sup.taken_before = sup.letters_taken_before()?;
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

    /// One pass: observe, decide, persist, act. `commands` come from the user (the CLI
    /// or the inbox, which is read here too); `supervise` lets the engine act on its own
    /// judgement. The Mind is on disk before any action runs, and every action's intent
    /// is on disk before tmux is asked. `now` is the wall clock alone or, from a loop
    /// that reads them ([`crate::adapters::clock::read`]), with the steady clocks.
    pub fn pass(
        &mut self,
        commands: Vec<Command>,
        supervise: bool,
        now: impl Into<Reading>,
    ) -> Result<Records, SupervisorError> {
        self.pass_with(commands, Vec::new(), supervise, now.into())
    }

    /// Why (and since when) passes cannot write the state dir, while they cannot.
    pub fn degraded(&self) -> Option<&(Time, String)> {
        self.degraded.as_ref()
    }

    /// A pass that cannot write the state dir (a full disk, a read-only or failing
    /// filesystem) decides nothing: the Mind goes back to what disk says, no action runs
    /// (none could be journaled first), the heartbeat says why, and the next pass tries
    /// again. The first pass that can write again journals how long it could not.
    fn pass_with(
        &mut self,
        commands: Vec<Command>,
        answers: Vec<engine::TriageResult>,
        supervise: bool,
        reading: Reading,
    ) -> Result<Records, SupervisorError> {
        let now = reading.wall;
        // The clocks roll back with the Mind: time in which nothing could be decided
        // is unwatched time to the next pass that can decide.
        let before = (self.mind.clone(), self.journaled.clone(), self.before);
        self.pass_started = Some(std::time::Instant::now());
        let result = self.pass_once(commands, answers, supervise, reading);
        let mut result = self.after_pass(result, before, reading);
        let pass = self.pass_started.take().map(|t| t.elapsed());
        if let Some(warning) = self.write_metrics(now, pass) {
            // A journal that cannot be written is the degraded state's business.
            if let (Ok(entry), Ok(records)) = (self.journal.append(now, warning), &mut result) {
                records.push(entry);
            }
        }
        result
    }

    /// The degraded state, entered or left on the outcome of a pass.
    fn after_pass(
        &mut self,
        result: Result<Records, SupervisorError>,
        before: (Mind, BTreeMap<AgentName, u64>, Option<(Reading, Since)>),
        reading: Reading,
    ) -> Result<Records, SupervisorError> {
        let now = reading.wall;
        match result {
            Err(SupervisorError::Store(e)) => {
                if std::mem::take(&mut self.unsaved) {
                    (self.mind, self.journaled, self.before) = before;
                }
                let why = format!("cannot write the state dir ({e}); observing only, acting on nothing");
                if self.degraded.is_none() {
                    self.tell_degraded(&why, now);
                }
                let since = self.degraded.get_or_insert((now, why.clone())).0;
                self.degraded = Some((since, why));
                self.loops += 1;
                let _ = self.store.beat_degraded(&self.lock, self.loops, now, &e.to_string());
                Err(SupervisorError::Store(e))
            }
            Ok(mut records) => {
                if let Some((since, why)) = self.degraded.take() {
                    let message = format!(
                        "the state dir is writable again; supervision resumed after {} degraded ({why})",
                        engine::time::human(now.since(since))
                    );
                    self.tell_fleet(engine::Alert::Degraded, engine::Episode::Resolved, &message, now)?;
                    records.push(self.journal.append(now, Record::Warning { message })?);
                }
                Ok(records)
            }
            other => other,
        }
    }

    fn pass_once(
        &mut self,
        mut commands: Vec<Command>,
        mut answers: Vec<engine::TriageResult>,
        supervise: bool,
        reading: Reading,
    ) -> Result<Records, SupervisorError> {
        let now = reading.wall;
        self.reading = Some(reading);
        let mut records = self.journal_deliveries(now)?;
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
        let (listing, roots) = match self.settled_panes() {
            Ok(settled) => settled,
            Err(e) => {
                let message = format!("cannot list tmux panes: {e}; nothing decided this pass");
                records.push(self.journal.append(now, Record::Warning { message })?);
                self.beat(now)?;
                return Err(SupervisorError::Observe(e));
            }
        };
        // Read after tmux answered, so a letter is never taken on a pass that decides nothing.
        let letters = self.take_letters(now, &mut records)?;
        commands.splice(0..0, letters.iter().map(|l| l.command().clone()));
        let mut signals = self.take_signals(now, &mut records)?;
        let looked_at = std::time::Instant::now();
        let (observation, capture_problems) = self.observe(&listing, roots);
        signals.extend(self.read_sessions(&listing.panes, looked_at, now, &mut records)?);
        let resets = self.read_known(&listing.panes, &mut signals, now, &mut records)?;
        let panes = listing.panes;
        for message in capture_problems {
            records.push(self.journal.append(now, Record::Warning { message })?);
        }
        answers.extend(self.triager.collect());
        for answer in &answers {
            records.push(self.journal.append(now, Record::Triaged(answer.clone()))?);
        }
        let gap = self.gap_to(reading);
        if let Some(gap) = &gap {
            records.push(self.journal.append(now, Record::Gap(gap.clone()))?);
        }
        let inputs = Inputs {
            observation,
            commands,
            supervise,
            triage: answers,
            tz: self.tz.clone(),
            gap,
            first_look: !self.stepped,
            pressure: crate::adapters::load::pressure(),
            signals,
            resets,
        };
        self.unsaved = true;
        let step = engine::step(&mut self.mind, &self.fleet, &inputs, now);
        if let Some(host) = &step.host {
            records.push(self.journal.append(now, Record::Host(host.clone()))?);
            self.tell_fleet(engine::Alert::HostFailure, engine::Episode::Raised, &host.reason, now)?;
        }
        for event in &step.events {
            records.push(self.journal.append(now, Record::Event(event.clone()))?);
        }
        records.extend(self.persist(now)?);
        // On disk: a step that a full disk rolls back was never the first look.
        self.stepped = true;
        let mut failed = false;
        let mut failures = BTreeMap::new();
        for action in &step.actions {
            let (done, ok) = self.act(action, &panes, now)?;
            if !ok {
                let error = done.iter().find_map(|e| match &e.record {
                    Record::Failed(f) => Some(f.error.clone()),
                    _ => None,
                });
                failures.insert(
                    action.agent().clone(),
                    error.unwrap_or_else(|| "the action failed".into()),
                );
            }
            records.extend(done);
            failed |= !ok;
        }
        if failed {
            records.extend(self.persist(now)?);
        }
        let done = letters::Done {
            commands: &inputs.commands,
            step: &step,
            failures: &failures,
            triaged: &inputs.triage,
        };
        self.answer_letters(letters, &done, now, &mut records)?;
        self.beat(now)?;
        Ok(records)
    }

    /// Journals every agent record that changed materially, then snapshots the Mind.
    fn persist(&mut self, now: Time) -> Result<Records, StoreError> {
        let mut records = Records::new();
        for (name, rec) in &self.mind.agents {
            let stopped = self.mind.stopped.contains(name);
            let current = fingerprint(rec, stopped);
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
        let appended = self.journal.appended();
        let durability = if self.synced_at == Some(appended) {
            Durability::Cached
        } else {
            Durability::Synced
        };
        self.store.save_mind(&self.mind, now, durability)?;
        if durability == Durability::Synced {
            self.synced_at = Some(appended);
        }
        self.unsaved = false;
        Ok(records)
    }

    fn beat(&mut self, now: Time) -> Result<(), StoreError> {
        self.loops += 1;
        let steady = self.reading.filter(|r| r.wall == now).and_then(|r| r.steady);
        let pass = self.pass_started.map(|t| t.elapsed());
        self.store.beat(&self.lock, self.loops, now, steady, pass)
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
        self.pass_with(Vec::new(), answers, supervise, now().into())
    }
}

impl<T: Tmux> Drop for Supervisor<T> {
    /// An owner that ends leaves no hidden copy of its last snapshot and heartbeat.
    fn drop(&mut self) {
        self.store.drop_spares();
    }
}

#[cfg(test)]
mod tests;
