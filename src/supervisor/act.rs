//! Carrying out the engine's actions: an intent journaled (synced) before tmux is
//! asked and its outcome after; asides (notify, triage, checkpoint) journaled once.
//! A failure is a typed [`ActionError`], handed back to the engine in words.

use super::{CONTEXT_DECISIONS, CONTEXT_LINES, Records, Supervisor, spawn, triager};
use crate::adapters::git;
use crate::adapters::proctree;
use crate::adapters::tmux::{Pane, Tmux, TmuxError};
use crate::engine::{self, Action, AgentName, Incarnation, Time};
use crate::store::failpoint;
use crate::store::record::{Checkpoint as Checkpointed, Failure, NotifyTag, ReapedProcess};
use crate::store::{CHECKPOINT_VERSION, Checkpoint, Record, StoreError, read_journal};

/// Why an action could not be carried out. Its words become the engine's reason.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("agent `{0}` is not configured")]
    NotConfigured(AgentName),
    #[error(
        "tmux sessions `{session}` to `{session}-{}` all exist and vigil did not start them for this project; rename those sessions or the agent",
        ALTERNATIVE_NAMES
    )]
    SessionTaken { session: String },
    #[error("tmux session `{session}` is not this agent's (vigil did not start it for this project); left alone")]
    NotOurs { session: String },
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error("no triage command is configured")]
    NoTriageCommand,
    #[error("a triage of this agent is still running")]
    TriageRunning,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What starting it runs cannot run: the shell would fail (or tmux would silently
    /// start it elsewhere). The start failed; the agent is held, not retried.
    #[error("{0}")]
    CannotStart(String),
}

/// How long what a killed session left behind has after SIGTERM before SIGKILL.
const REAP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Ends what the killed sessions left running (recorded before the kill, same pid and
/// start time), and says what was ended; `None` when nothing outlived them.
fn reap(action: &Action, doomed: &[(Incarnation, Vec<proctree::Proc>)]) -> Option<Record> {
    let recorded: Vec<proctree::Proc> = doomed.iter().flat_map(|(_, tree)| tree.iter().cloned()).collect();
    let ended = proctree::reap(&recorded, REAP_GRACE);
    if ended.is_empty() {
        return None;
    }
    let incarnation = doomed.iter().map(|(inc, _)| *inc).max().unwrap_or_default();
    let words: Vec<String> = ended
        .iter()
        .map(|(p, how)| {
            let signal = match how {
                proctree::Signalled::Term => "SIGTERM",
                proctree::Signalled::Kill => "SIGKILL",
            };
            format!("{} (pid {}, {signal})", p.name, p.pid)
        })
        .collect();
    let processes = ended
        .into_iter()
        .map(|(p, signal)| ReapedProcess {
            pid: p.pid,
            name: p.name,
            signal,
        })
        .collect();
    Some(Record::Reaped {
        agent: action.agent().clone(),
        incarnation,
        processes,
        reason: format!("ended what its killed session left running: {}", words.join(", ")),
    })
}

/// How many other names (`<session>-2` …) a start tries when the agent's session name
/// is taken by a session vigil did not start.
const ALTERNATIVE_NAMES: u32 = 9;

/// Says that an agent was started under another session name than its own.
pub(super) fn renamed(action: &Action, actual: &str) -> Option<Record> {
    let Action::Start { agent, session, .. } = action else {
        return None;
    };
    Some(Record::Note {
        agent: agent.clone(),
        reason: format!(
            "tmux session `{session}` belongs to something vigil did not start for this project; left it alone and started {agent} as `{actual}` (vigil knows its sessions by their tags, not their names)"
        ),
    })
}

impl<T: Tmux> Supervisor<T> {
    /// Carries out one action: intent journaled (synced) first, then tmux, then the
    /// outcome. A failure goes back to the engine so the record reflects it. Returns
    /// the records written and whether the action succeeded.
    pub(super) fn act(&mut self, action: &Action, panes: &[Pane], now: Time) -> Result<(Records, bool), StoreError> {
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
        let doomed = self.doomed(action, panes);
        let result = self.execute(action, panes);
        failpoint::hit("after-act");
        match result {
            Ok(actual) => {
                if let Some(note) = actual.and_then(|a| renamed(action, &a)) {
                    records.push(self.journal.append(now, note)?);
                }
                records.push(self.journal.append(now, Record::Done { id })?);
                if let Some(reaped) = reap(action, &doomed) {
                    records.push(self.journal.append(now, reaped)?);
                }
                Ok((records, true))
            }
            Err(error) => {
                let failure = Failure {
                    id: Some(id),
                    action: None,
                    error: error.to_string(),
                };
                records.push(self.journal.append(now, Record::Failed(failure))?);
                records.extend(self.execution_failed(action, &error, now)?);
                Ok((records, false))
            }
        }
    }

    /// The processes under the live panes an action is about to kill (every session of
    /// the agent a start replaces, or the one a kill names), read before the kill so
    /// what outlives it can be ended after: pane, then its tree.
    fn doomed(&self, action: &Action, panes: &[Pane]) -> Vec<(Incarnation, Vec<proctree::Proc>)> {
        let run = &self.fleet.run;
        let of_agent = |p: &&Pane, agent: &AgentName| p.is_ours(run) && p.agent.as_deref() == Some(agent.as_str());
        let killed: Vec<&Pane> = match action {
            Action::Start { agent, .. } => panes.iter().filter(|p| of_agent(p, agent)).collect(),
            Action::Kill {
                agent,
                incarnation,
                session,
                ..
            } => match self.ours(panes, agent, *incarnation, session) {
                Ok(target) => panes
                    .iter()
                    .filter(|p| of_agent(p, agent) && p.session == target)
                    .collect(),
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        };
        killed
            .into_iter()
            .filter(|p| !p.dead)
            .map(|p| (Incarnation(p.incarnation.unwrap_or(0)), proctree::tree(p.pane_pid)))
            .collect()
    }

    /// Tells the engine a mutating action failed: a start that cannot run is held as
    /// failed to start (and the user told), any other failure is the engine's to weigh.
    pub(super) fn execution_failed(
        &mut self,
        action: &Action,
        error: &ActionError,
        now: Time,
    ) -> Result<Records, StoreError> {
        match (action, error) {
            (Action::Start { agent, incarnation, .. }, ActionError::CannotStart(why)) => {
                self.start_refused(agent, *incarnation, why, now)
            }
            _ => self.failed(action, &error.to_string(), now),
        }
    }

    /// A start refused before tmux was asked: the engine holds the agent as failed to
    /// start, and the user is told.
    fn start_refused(
        &mut self,
        agent: &AgentName,
        incarnation: Incarnation,
        why: &str,
        now: Time,
    ) -> Result<Records, StoreError> {
        let step = engine::start_failed(&mut self.mind, &self.fleet, agent, incarnation, why, now, &self.tz);
        let mut records = Records::new();
        for event in step.events {
            records.push(self.journal.append(now, Record::Event(event))?);
        }
        for action in &step.actions {
            records.extend(self.act_aside(action, now)?.0);
        }
        Ok(records)
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
                alert,
                episode,
                reason,
            } => self
                .tell_agent(agent, *incarnation, *alert, *episode, reason, now)
                .map_err(ActionError::from)
                .map(|()| Record::Notify {
                    action: NotifyTag::Notify,
                    agent: agent.clone(),
                    incarnation: *incarnation,
                    alert: Some(*alert),
                    episode: *episode,
                    reason: reason.clone(),
                }),
            Action::Start { .. } | Action::Kill { .. } | Action::Send { .. } => Ok(Record::Warning {
                message: format!("{} reached the aside path; not carried out", action.reason()),
            }),
        };
        match result {
            Ok(record) => Ok((vec![self.journal.append(now, record)?], true)),
            Err(error) => {
                let error = error.to_string();
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

    /// Tells the engine an action failed and journals what it made of that.
    pub(super) fn failed(&mut self, action: &Action, error: &str, now: Time) -> Result<Records, StoreError> {
        let events = engine::action_failed(&mut self.mind, &self.fleet, action, error, now, &self.tz);
        events
            .into_iter()
            .map(|e| self.journal.append(now, Record::Event(e)))
            .collect()
    }

    /// Starts the triage command for an agent on its own thread.
    fn start_triage(
        &mut self,
        agent: &AgentName,
        incarnation: Incarnation,
        now: Time,
    ) -> Result<Vec<String>, ActionError> {
        let config = self
            .config
            .agent(agent.as_str())
            .ok_or_else(|| ActionError::NotConfigured(agent.clone()))?;
        let argv = config.policy.triage.clone().ok_or(ActionError::NoTriageCommand)?;
        let rec = self.mind.agents.get(agent);
        let session = rec.map_or_else(String::new, |r| r.session.clone());
        let last_lines = self.tmux.capture(&session, CONTEXT_LINES).unwrap_or_default();
        let input = serde_json::json!({
            "agent": agent,
            "incarnation": incarnation,
            "lifecycle": rec.map(|r| r.lifecycle()),
            "activity": rec.and_then(|r| r.activity()),
            "escalation": rec.map(|r| r.escalation()),
            "reason": rec.map(|r| r.reason.clone()),
            "unchanged_for_s": rec.map(|r| now.since(r.last_change()).as_secs()),
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
            return Err(ActionError::TriageRunning);
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
    ) -> Result<std::path::PathBuf, ActionError> {
        let config = self
            .config
            .agent(agent.as_str())
            .ok_or_else(|| ActionError::NotConfigured(agent.clone()))?;
        // A server that is gone took the screen with it: the last one read stands in.
        let raw = match self.tmux.capture(session, CONTEXT_LINES) {
            Ok(lines) => lines,
            Err(_) => self.screens.get(session).map(|s| s.lines.to_vec()).unwrap_or_default(),
        };
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
        Ok(self.store.write_checkpoint(&checkpoint)?)
    }

    /// Does to tmux what a mutating action says. Sessions are this agent's by their
    /// tags only: a session vigil did not start is never killed or typed into, and a
    /// start whose name is taken by one goes under the next free `<name>-N` (returned).
    pub(super) fn execute(&self, action: &Action, panes: &[Pane]) -> Result<Option<String>, ActionError> {
        let gone_is_fine = |r: Result<(), TmuxError>| match r {
            Ok(()) | Err(TmuxError::NoSuchSession(_)) => Ok(None),
            Err(e) => Err(ActionError::Tmux(e)),
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
                    .ok_or_else(|| ActionError::NotConfigured(agent.clone()))?;
                spawn::can_start(config).map_err(ActionError::CannotStart)?;
                // Replace every session of this agent: the dead pane, the hung one, strays.
                for old in panes
                    .iter()
                    .filter(|p| p.is_ours(&self.fleet.run) && p.agent.as_deref() == Some(agent.as_str()))
                {
                    gone_is_fine(self.tmux.kill(&old.session))?;
                }
                let foreign = |name: &str| panes.iter().any(|p| p.session == name && !p.is_ours(&self.fleet.run));
                let names = std::iter::once(session.clone())
                    .chain((2..=ALTERNATIVE_NAMES + 1).map(|n| format!("{session}-{n}")))
                    .filter(|name| !foreign(name));
                // A Claude Code agent's own settings (its statusLine keeps the user's);
                // if they cannot be written, the shared ones (hooks only) do.
                let own = (config.signals == Some(crate::config::preset::Wiring::ClaudeSettings)
                    && !config.signals_off)
                    .then(|| {
                        self.wiring
                            .for_claude_agent(&self.store, &config.name, &config.cwd)
                            .ok()
                    })
                    .flatten();
                let files = own.as_ref().unwrap_or(&self.wiring);
                for name in names {
                    let signals = self.store.signals();
                    let wired = Some((signals.dir(), files));
                    let spec = spawn::spec(config, &name, *incarnation, &self.fleet.run, wired);
                    match self.tmux.spawn(&spec) {
                        Ok(()) => return Ok((&name != session).then_some(name)),
                        // Made since the listing: try the next name.
                        Err(TmuxError::SessionExists(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(ActionError::SessionTaken {
                    session: session.clone(),
                })
            }
            Action::Kill {
                agent,
                incarnation,
                session,
                ..
            } => match self.ours(panes, agent, *incarnation, session) {
                Ok(target) => gone_is_fine(self.tmux.kill(&target)),
                Err(ActionError::NotOurs { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            Action::Send {
                agent,
                incarnation,
                session,
                text,
                ..
            } => {
                let target = self.ours(panes, agent, *incarnation, session)?;
                self.tmux.send_text(&target, text)?;
                Ok(None)
            }
            Action::Notify { .. } | Action::Triage { .. } | Action::Checkpoint { .. } => Ok(None),
        }
    }

    /// The session of this agent's incarnation, found by its tags (the recorded name
    /// may be out of date); the recorded name when tmux did not list it (started this
    /// pass), unless a session vigil did not start has that name.
    fn ours(
        &self,
        panes: &[Pane],
        agent: &AgentName,
        incarnation: Incarnation,
        session: &str,
    ) -> Result<String, ActionError> {
        let run = &self.fleet.run;
        let tagged = panes.iter().find(|p| {
            p.is_ours(run) && p.agent.as_deref() == Some(agent.as_str()) && p.incarnation == Some(incarnation.0)
        });
        match tagged {
            Some(p) => Ok(p.session.clone()),
            None if panes.iter().any(|p| p.session == session && !p.is_ours(run)) => Err(ActionError::NotOurs {
                session: session.to_owned(),
            }),
            None => Ok(session.to_owned()),
        }
    }
}
