//! `vigil status [--json]`: what vigil believes about each agent, and why; works while
//! another process owns the run.

use std::process::ExitCode;

use anyhow::Result;

use super::Project;
use crate::adapters::clock::now;
use crate::present;
use crate::store::Store;

impl Project {
    pub(super) fn status(&self, json: bool) -> Result<ExitCode> {
        let store = Store::existing(&self.state_dir);
        present::status::print_status(&self.config, store.as_ref(), now(), json)?;
        Ok(ExitCode::SUCCESS)
    }
}
