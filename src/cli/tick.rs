//! `vigil tick`: one supervision pass, for a systemd timer; waits for a triage it
//! started and acts on the answer before it exits.

use std::process::ExitCode;

use anyhow::Result;

use super::{Project, log};
use crate::adapters::clock::now;
use crate::store::Role;

impl Project {
    pub(super) fn tick(&self) -> Result<ExitCode> {
        let Some(mut sup) = self.claim(Role::Tick)? else {
            return Err(self.held());
        };
        let records = sup.pass(Vec::new(), true, crate::adapters::clock::read())?;
        log::print_records(&records, false);
        // A timer's pass ends here: wait for any triage it started and act on the answer.
        log::print_records(&sup.settle_triage(true, now)?, false);
        Ok(ExitCode::SUCCESS)
    }
}
