//! The owner's side of telling a human: an engine's `Action::Notify`, a host failure
//! or degraded mode becomes a [`Notice`] (with the pane's last lines and how to attach)
//! posted to the outbox, and what the notifier reports back is journaled.

use super::{Channels, Notifier, Report, notice};
use crate::adapters::tmux::{Tmux, TmuxCli};
use crate::engine::{AgentName, Alert, Episode, Incarnation, Time};
use crate::store::outbox::{Notice, NoticeKind, last_lines};
use crate::store::{Record, StoreError};
use crate::supervisor::{Records, Supervisor};

/// The channels a config asks for, run from the project's directory.
pub fn channels(config: &crate::config::Config) -> Channels {
    let cwd = config
        .path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(std::path::Path::new("."))
        .to_owned();
    Channels {
        config: config.notify.clone(),
        cwd,
        tmux: TmuxCli::new(config.socket.clone()),
    }
}

/// The command that attaches a terminal to a session on this socket.
fn attach_command(socket: Option<&str>, session: &str) -> String {
    match socket {
        Some(s) => format!("tmux -L {s} attach-session -t ={session}"),
        None => format!("tmux attach-session -t ={session}"),
    }
}

impl<T: Tmux> Supervisor<T> {
    /// Starts the notifier when the config names a channel.
    pub(in crate::supervisor) fn start_notifier(&self) -> Option<Notifier> {
        self.config
            .notify
            .any()
            .then(|| Notifier::start(self.store.outbox(), channels(&self.config)))
    }

    /// Whether the config asks to hear of this alert (and of its end).
    fn wanted(&self, alert: Alert, episode: Episode) -> bool {
        let n = &self.config.notify;
        n.events.contains(&alert) && (episode == Episode::Raised || n.resolved)
    }

    /// Posts the notice for an agent's alert: with its last lines and how to attach.
    pub(in crate::supervisor) fn tell_agent(
        &self,
        agent: &AgentName,
        incarnation: Incarnation,
        alert: Alert,
        episode: Episode,
        reason: &str,
        now: Time,
    ) -> Result<(), StoreError> {
        let Some(notifier) = &self.notifier else { return Ok(()) };
        if !self.wanted(alert, episode) {
            return Ok(());
        }
        let mut n = self.notice_of(alert, episode, reason, now);
        n.agent = Some(agent.to_string());
        n.incarnation = Some(incarnation.0);
        if let Some(rec) = self.mind.agents.get(agent) {
            if let Some(screen) = self.screens.get(&rec.session) {
                n.last_lines = last_lines(&screen.lines);
            }
            n.attach = Some(attach_command(self.config.socket.as_deref(), &rec.session));
        }
        notifier.post(n)
    }

    /// Posts a notice about the whole fleet or the owner (a host failure, degraded mode).
    pub(in crate::supervisor) fn tell_fleet(
        &self,
        alert: Alert,
        episode: Episode,
        reason: &str,
        now: Time,
    ) -> Result<(), StoreError> {
        match &self.notifier {
            Some(notifier) if self.wanted(alert, episode) => notifier.post(self.notice_of(alert, episode, reason, now)),
            _ => Ok(()),
        }
    }

    /// Degraded mode: the state dir cannot be written, so the notice goes from memory.
    pub(in crate::supervisor) fn tell_degraded(&self, reason: &str, now: Time) {
        if let Some(notifier) = &self.notifier
            && self.wanted(Alert::Degraded, Episode::Raised)
        {
            notifier.post_volatile(self.notice_of(Alert::Degraded, Episode::Raised, reason, now));
        }
    }

    fn notice_of(&self, alert: Alert, episode: Episode, reason: &str, now: Time) -> Notice {
        let kind = match episode {
            Episode::Raised => NoticeKind::Raised(alert),
            Episode::Resolved => NoticeKind::Resolved,
        };
        let mut n = notice(&self.config.project, kind, now, reason.to_owned());
        if episode == Episode::Resolved {
            n.resolves = Some(alert);
        }
        n
    }

    /// Journals what the notifier reported since the last pass.
    pub(in crate::supervisor) fn journal_deliveries(&mut self, now: Time) -> Result<Records, StoreError> {
        let reports = self.notifier.as_ref().map(Notifier::collect).unwrap_or_default();
        self.journal_reports(reports, now)
    }

    pub(in crate::supervisor) fn journal_reports(
        &mut self,
        reports: Vec<Report>,
        now: Time,
    ) -> Result<Records, StoreError> {
        let mut records = Records::new();
        for report in reports {
            let record = match report {
                Report::Delivery(d) => Record::Notified(d),
                Report::Warning(message) => Record::Warning { message },
            };
            records.push(self.journal.append(now, record)?);
        }
        Ok(records)
    }

    /// For one-shot runs: waits (a bounded time) for the notices due now to be tried,
    /// and journals how they went.
    pub fn settle_notices(&mut self, now: Time) -> Result<Records, StoreError> {
        let Some(notifier) = &self.notifier else {
            return Ok(Records::new());
        };
        let limit = self.config.notify.timeout * 4 + std::time::Duration::from_secs(2);
        let reports = notifier.flush(limit);
        self.journal_reports(reports, now)
    }

    /// New `[notify]` settings after a reload.
    pub(in crate::supervisor) fn reconfigure_notifier(&mut self) {
        if let Some(notifier) = self.notifier.as_mut() {
            notifier.configure(channels(&self.config));
        } else {
            self.notifier = self.start_notifier();
        }
    }
}

/// Posts a notice from a process that does not own the run (`vigil check` replacing a
/// hung owner): written to the outbox, for the owner's notifier to deliver.
pub fn post_from_outside(
    config: &crate::config::Config,
    store: &crate::store::Store,
    alert: Alert,
    reason: &str,
    now: Time,
) -> Result<(), StoreError> {
    let n = &config.notify;
    let names: Vec<String> = channels(config)
        .configured()
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    if names.is_empty() || !n.events.contains(&alert) {
        return Ok(());
    }
    let notice = notice(&config.project, NoticeKind::Raised(alert), now, reason.to_owned());
    store.outbox().post(&crate::store::outbox::Pending::new(notice, names))
}
