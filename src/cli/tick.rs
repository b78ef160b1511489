//! `vigil tick`: one supervision pass, for a systemd timer; waits for a triage it
//! started and acts on the answer before it exits.

use std::process::ExitCode;

use anyhow::Result;

use super::{Project, log};
use crate::adapters::clock::now;
use crate::store::Role;

impl Project {
    /// With `json`, each record the pass wrote is printed as its journal line (JSON), as
    /// `vigil log --json` prints it.
    pub(super) fn tick(&self, json: bool) -> Result<ExitCode> {
        let Some(mut sup) = self.claim(Role::Tick)? else {
            return Err(self.held());
        };
        let records = sup.pass(Vec::new(), true, crate::adapters::clock::read())?;
        log::print_records(&records, json);
        // A timer's pass ends here: wait for any triage it started and act on the answer.
        log::print_records(&sup.settle_triage(true, now)?, json);
        // And deliver what it has to tell before the process goes (the outbox keeps the rest).
        log::print_records(&sup.settle_notices(now())?, json);
        Ok(ExitCode::SUCCESS)
    }
}
