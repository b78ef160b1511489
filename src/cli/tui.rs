//! `vigil tui`: the dashboard, as the owner when the run is free, else as a viewer of
//! the process that owns it.

use std::process::ExitCode;

use anyhow::Result;

use super::Project;
use crate::store::Role;

impl Project {
    /// The dashboard: owner when the run is free, else a viewer of its owner.
    pub(super) fn tui(&self) -> Result<ExitCode> {
        let face = match self.claim(Role::Tui)? {
            Some(sup) => crate::tui::Face::Owner(Box::new(sup)),
            None => crate::tui::Face::Viewer,
        };
        crate::tui::run(crate::tui::Setup {
            config: self.config.clone(),
            tmux: self.tmux.clone(),
            store: self.store()?,
            face,
        })
    }
}
