//! `[vigil] metrics_file`: after every pass the owner rewrites the fleet's Prometheus
//! text (see [`crate::present::metrics`]) for node_exporter's textfile collector.
//! The file is replaced whole (a temp file beside it, renamed), so a scrape never
//! reads half of it; it is readable by others (a collector runs as another user) and
//! holds nothing the status does not show. A write that fails never stops supervision:
//! the journal says so once, and again when it works.

use std::time::Duration;

use super::Supervisor;
use crate::adapters::fs::replace_public;
use crate::adapters::tmux::Tmux;
use crate::engine::Time;
use crate::present::metrics::{Extras, render};
use crate::present::status::{OwnerStatus, StatusReport};
use crate::store::record::Record;

impl<T: Tmux> Supervisor<T> {
    /// Rewrites the metrics file, when one is configured. Returns the warning to
    /// journal when writing it starts or stops failing.
    pub(super) fn write_metrics(&mut self, now: Time, pass: Option<Duration>) -> Option<Record> {
        let path = self.config.metrics_file.clone()?;
        let owner = OwnerStatus {
            pid: self.lock.owner.pid,
            epoch: self.lock.owner.epoch,
            heartbeat_age_s: Some(0.0),
            role: self.lock.owner.role,
            since: self.lock.owner.started_at,
            degraded: self.degraded.as_ref().map(|(_, why)| why.clone()),
            last_pass_ms: pass.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let report = StatusReport::of(&self.config, &self.mind, Some(now), None, Some(owner));
        let extras = Extras {
            notifications_pending: self.store.notifications_pending(),
        };
        let text = render(&report, extras, now);
        match replace_public(&path, text.as_bytes()) {
            Ok(()) => self.metrics_problem.take().map(|_| Record::Warning {
                message: format!("metrics file {} is written again", path.display()),
            }),
            Err(e) => {
                let why = e.to_string();
                if self.metrics_problem.as_deref() == Some(why.as_str()) {
                    return None;
                }
                self.metrics_problem = Some(why.clone());
                Some(Record::Warning {
                    message: format!(
                        "cannot write the metrics file {}: {why}; supervision goes on without it",
                        path.display()
                    ),
                })
            }
        }
    }
}
