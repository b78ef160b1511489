//! How vigil's state and journal read to people and programs, shared by both faces
//! (`cli` and `tui`): the words for a command, one line per journal record, and the
//! status report (`vigil status`, its `--json` with the contract's field names).
//! Formats only: decides nothing, and writes nowhere but the string it returns.

pub mod fit;
pub mod metrics;
pub mod records;
pub mod status;

pub use records::record_line;

use std::borrow::Cow;

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

/// Text vigil did not write (pane lines, last words, triage output, names from files)
/// as it may reach a terminal: control characters (ESC, BEL, CR…) escaped, so nothing
/// shown can set a title, clear a screen or move the cursor.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_and_the_rest_as_is() {
        assert_eq!(shown("plain — text ✓"), "plain — text ✓");
        assert_eq!(shown("\u{1b}]0;pwned\u{7}\u{1b}[2J"), "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J");
        assert_eq!(shown("a\tb\r"), "a\\tb\\r");
    }
}
