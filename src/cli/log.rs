//! `vigil log [--json] [--follow]` and `vigil watch --viewer`: the journal, every
//! decision with its reason, as lines for people or raw JSON; and printing what one
//! pass journaled for the commands that run passes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::Project;
use crate::present::record_line;
use crate::store::{Store, read_journal};

impl Project {
    /// Follows the owner's journal without claiming anything.
    pub(super) fn view(&self) -> Result<ExitCode> {
        let owner = Store::existing(&self.state_dir).and_then(|s| s.live_owner());
        match owner {
            Some(o) => println!(
                "vigil watch --viewer: following pid {} (`vigil {}`, epoch {}); Ctrl-C to stop",
                o.pid,
                o.role.as_str(),
                o.epoch
            ),
            None => println!("vigil watch --viewer: no vigil owns this project now; showing its journal as it grows"),
        }
        self.log(false, true, 20)
    }

    pub(super) fn log(&self, json: bool, follow: bool, lines: usize) -> Result<ExitCode> {
        print_log(&self.state_dir.join("journal.jsonl"), json, follow, lines)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints what a pass journaled: a line each for people, or raw JSON lines.
pub(super) fn print_records(records: &[Value], json: bool) {
    let mut out = std::io::stdout().lock();
    for r in records {
        let line = if json {
            Some(r.to_string())
        } else {
            record_line(r, false)
        };
        if let Some(line) = line {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Prints the last `lines` records, then (with `follow`) new ones as they come.
fn print_log(path: &Path, json: bool, follow: bool, lines: usize) -> Result<()> {
    let records = read_journal(path)?;
    let shown: Vec<&Value> = records
        .iter()
        .filter(|r| json || record_line(r, true).is_some())
        .collect();
    let skip = shown.len().saturating_sub(lines);
    for r in &shown[skip..] {
        print_one(r, json);
    }
    if !follow {
        return Ok(());
    }
    let mut offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut pending = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let Ok(mut file) = std::fs::File::open(path) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // rotated or replaced
        }
        if len == offset {
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut chunk = String::new();
        file.read_to_string(&mut chunk)?;
        offset = len;
        pending.push_str(&chunk);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                print_one(&v, json);
            }
        }
    }
}

fn print_one(v: &Value, json: bool) {
    let line = if json {
        Some(v.to_string())
    } else {
        record_line(v, true)
    };
    if let Some(line) = line {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            std::process::exit(0); // the reader went away (e.g. `| head`)
        }
    }
}
