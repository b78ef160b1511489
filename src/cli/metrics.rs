//! `vigil metrics`: the fleet in Prometheus text format on stdout, read from the state
//! dir like `vigil status` (works with or without an owner, never writes). For a
//! scrape over ssh or a cron job; an owner with `[vigil] metrics_file` writes the same
//! text each pass for node_exporter.

use std::process::ExitCode;

use anyhow::Result;

use super::Project;
use super::out;
use crate::adapters::clock::now;
use crate::present::metrics::{Extras, render};
use crate::present::status::StatusReport;
use crate::store::Store;

impl Project {
    pub(super) fn metrics(&self) -> Result<ExitCode> {
        let store = Store::existing(&self.state_dir);
        let now = now();
        let report = StatusReport::read(&self.config, store.as_ref(), now);
        let extras = Extras {
            notifications_pending: store.as_ref().map_or(0, Store::notifications_pending),
        };
        out::print(&render(&report, extras, now));
        Ok(ExitCode::SUCCESS)
    }
}
