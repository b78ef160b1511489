//! The service manager as the owner loop sees it: `sd_notify` through
//! [`Notifier`] when systemd gave a socket, nothing otherwise. A failure to reach it is
//! reported to the face once per message and never stops supervision; never blocks.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::Update;
use crate::adapters::systemd::{Notifier, NotifyError};

pub(super) struct Service {
    notifier: Option<Notifier>,
    updates: UnboundedSender<Update>,
}

impl Service {
    /// The notifier the environment asks for; a bad `NOTIFY_SOCKET` is said and ignored.
    pub(super) fn connect(updates: UnboundedSender<Update>) -> Self {
        let notifier = match Notifier::from_env() {
            Ok(n) => n,
            Err(e) => {
                let _ = updates.send(Update::Warning(format!("{e}; not talking to systemd")));
                None
            }
        };
        Self { notifier, updates }
    }

    /// Half the watchdog timeout, as sd_watchdog_enabled(3) advises.
    pub(super) fn ping_every(&self) -> Option<Duration> {
        self.notifier.as_ref()?.watchdog().map(|w| w / 2)
    }

    fn say(&self, result: Option<Result<(), NotifyError>>) {
        if let Some(Err(e)) = result {
            let _ = self.updates.send(Update::Warning(e.to_string()));
        }
    }

    pub(super) fn ready(&self, status: &str) {
        self.say(self.notifier.as_ref().map(|n| n.ready(status)));
    }

    pub(super) fn alive(&self) {
        self.say(self.notifier.as_ref().map(Notifier::watchdog_ping));
    }

    pub(super) fn status(&self, status: &str) {
        self.say(self.notifier.as_ref().map(|n| n.status(status)));
    }

    pub(super) fn stopping(&self, status: &str) {
        self.say(self.notifier.as_ref().map(|n| n.stopping(status)));
    }
}
