//! `vigil log [--json] [--follow]` and `vigil watch --viewer`: the journal, every
//! decision with its reason, as lines for people or raw JSON; and printing what one
//! pass journaled for the commands that run passes.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::Project;
use super::out::say;
use crate::present::record_line;
use crate::store::{Entry, Follower, Line, Store};

impl Project {
    /// Follows the owner's journal without claiming anything.
    pub(super) fn view(&self) -> Result<ExitCode> {
        let owner = Store::existing(&self.state_dir).and_then(|s| s.live_owner());
        match owner {
            Some(o) => say!(
                "vigil watch --viewer: following pid {} (`vigil {}`, epoch {}); Ctrl-C to stop",
                o.pid,
                o.role.as_str(),
                o.epoch
            ),
            None => say!("vigil watch --viewer: no vigil owns this project now; showing its journal as it grows"),
        }
        self.log(false, true, 20)
    }

    pub(super) fn log(&self, json: bool, follow: bool, lines: usize) -> Result<ExitCode> {
        print_log(&self.state_dir.join("journal.jsonl"), json, follow, lines)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints what a pass journaled: a line each for people, or JSON lines as on disk.
pub(super) fn print_records(records: &[Entry], json: bool) {
    let mut out = std::io::stdout().lock();
    for r in records {
        let line = if json { r.to_line().ok() } else { record_line(r, false) };
        if let Some(line) = line {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Prints the last `lines` records, then (with `follow`) new ones as they come. With
/// `json` every line that is JSON is printed as written, a kind this vigil does not
/// know included.
fn print_log(path: &Path, json: bool, follow: bool, lines: usize) -> Result<()> {
    let mut follower = Follower::new(path.to_owned());
    let shown: Vec<String> = follower
        .read_new_lines()
        .into_iter()
        .filter_map(|l| shown_line(l, json))
        .collect();
    let skip = shown.len().saturating_sub(lines);
    for line in &shown[skip..] {
        print_one(line);
    }
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_millis(300));
        for line in follower.read_new_lines() {
            if let Some(line) = shown_line(line, json) {
                print_one(&line);
            }
        }
    }
}

/// What `vigil log` prints for one journal line, if anything.
fn shown_line(line: Line, json: bool) -> Option<String> {
    if json {
        serde_json::from_str::<serde_json::Value>(&line.raw)
            .ok()
            .map(|_| line.raw)
    } else {
        line.entry.as_ref().and_then(|e| record_line(e, true))
    }
}

fn print_one(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0); // the reader went away (e.g. `| head`)
    }
}
