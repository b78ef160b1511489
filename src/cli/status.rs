//! `vigil status [--json]`: what vigil believes about each agent, and why; works while
//! another process owns the run.

use std::process::ExitCode;

use anyhow::Result;

use super::Project;
use super::out::{self, say};
use crate::adapters::clock::now;
use crate::present::status::{StatusReport, table};
use crate::store::Store;

impl Project {
    pub(super) fn status(&self, json: bool) -> Result<ExitCode> {
        let store = Store::existing(&self.state_dir);
        let now = now();
        let report = StatusReport::read(&self.config, store.as_ref(), now);
        if json {
            say!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            out::print(&table(&report, store.as_ref(), now));
        }
        Ok(ExitCode::SUCCESS)
    }
}
