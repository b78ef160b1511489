//! `vigil status [--json]`: what vigil believes about each agent, and why; works while
//! another process owns the run. The table fits the terminal: `COLUMNS`, else the
//! tty's width; on a pipe with no `COLUMNS`, the columns of old, nothing cut.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;

use super::Project;
use super::out::{self, say};
use crate::adapters::clock::now;
use crate::present::status::{StatusReport, table_fitted};
use crate::store::Store;

impl Project {
    pub(super) fn status(&self, json: bool) -> Result<ExitCode> {
        let store = Store::existing(&self.state_dir);
        let now = now();
        let report = StatusReport::read(&self.config, store.as_ref(), now);
        if json {
            say!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            out::print(&table_fitted(&report, store.as_ref(), now, terminal_width()));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The width to fit: `COLUMNS` when set to a number, else the terminal's when stdout is
/// one, else `None` (a pipe or a file: nothing is cut).
fn terminal_width() -> Option<usize> {
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
    {
        return Some(cols).filter(|&c| c > 0);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    ratatui::crossterm::terminal::size()
        .ok()
        .map(|(cols, _)| usize::from(cols))
        .filter(|&c| c > 0)
}
