//! `vigil tui`: the dashboard, as the owner when the run is free, else as a viewer of
//! the process that owns it.

use std::process::ExitCode;

use anyhow::Result;

use super::Project;
use crate::store::Role;
use crate::supervisor::runtime::Signals;
use crate::tui::{Face, Setup};

impl Project {
    /// The dashboard: owner when the run is free, else a viewer of its owner.
    pub(super) fn tui(&self) -> Result<ExitCode> {
        let store = self.store()?;
        crate::tui::init_log(&store);
        // Two workers: the owner loop runs on them, so supervision goes on while the
        // dashboard's own thread is lent to `tmux attach` (which blocks until detach).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let result = runtime.block_on(async {
            // Signals first: from here on, a TERM waits for the pass in progress.
            let signals = Signals::install()?;
            let face = match self.claim(Role::Tui)? {
                Some(sup) => Face::Owner(Box::new(sup)),
                None => Face::Viewer,
            };
            crate::tui::run(Setup {
                config: self.config.clone(),
                tmux: self.tmux.clone(),
                store,
                face,
                signals,
            })
            .await
        });
        // As `vigil watch`: a pass the stop gave up waiting for does not hold the exit.
        runtime.shutdown_timeout(std::time::Duration::from_millis(100));
        result
    }
}
