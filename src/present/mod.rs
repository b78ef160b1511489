//! How vigil's state and journal read to people and programs, shared by both faces
//! (`cli` and `tui`): the words for a command, one line per journal record, and the
//! status report (`vigil status`, its `--json` with the contract's field names).
//! Formats only: decides nothing, and writes nowhere but the string it returns.

pub mod records;
pub mod status;

pub use records::record_line;

use crate::engine::Command;

/// A user's command in words: "restart backend".
pub fn command_words(command: &Command) -> String {
    match command {
        Command::Up(a) => format!("start {a}"),
        Command::Stop(a) => format!("stop {a}"),
        Command::Restart(a) => format!("restart {a}"),
        Command::Nudge(a) => format!("nudge {a}"),
        Command::Triage(a) => format!("triage {a}"),
    }
}
