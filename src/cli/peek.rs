//! `vigil peek AGENT [-n LINES] [--follow]`: the agent's recent pane output, each line
//! shown with control characters escaped; `--follow` keeps printing the lines that come
//! after, until interrupted or the session ends. Only reads the pane.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use super::Project;
use super::out::say;
use crate::adapters::tmux::{Tmux, TmuxError};
use crate::present::shown;

/// How often `--follow` looks at the pane again.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// How far back `--follow` looks each time, at least, to find where it left off.
const FOLLOW_WINDOW: usize = 200;

impl Project {
    pub(super) fn peek(&self, agent: &str, lines: usize, follow: bool) -> Result<ExitCode> {
        let Some(session) = self.live_session(agent)? else {
            return Ok(ExitCode::from(1));
        };
        let window = if follow { lines.max(FOLLOW_WINDOW) } else { lines };
        let Some(mut seen) = self.last_lines(&session, window)? else {
            eprintln!("vigil: {agent}'s session ended");
            return Ok(ExitCode::from(1));
        };
        for line in &seen[seen.len().saturating_sub(lines)..] {
            say!("{}", shown(line));
        }
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        loop {
            std::thread::sleep(FOLLOW_POLL);
            let Some(now) = self.last_lines(&session, window)? else {
                eprintln!("vigil: {agent}'s session ended");
                return Ok(ExitCode::SUCCESS);
            };
            for line in &now[new_from(&seen, &now)..] {
                say!("{}", shown(line));
            }
            seen = now;
        }
    }

    /// The pane's last `n` lines (blank lines below the cursor left out); `None` when
    /// the session is gone.
    fn last_lines(&self, session: &str, n: usize) -> Result<Option<Vec<String>>> {
        match self.tmux.capture(session, n) {
            Ok(mut lines) => {
                while lines.last().is_some_and(|l| l.trim().is_empty()) {
                    lines.pop();
                }
                let cut = lines.len().saturating_sub(n);
                Ok(Some(lines.split_off(cut)))
            }
            Err(TmuxError::NoSuchSession(_)) => Ok(None),
            Err(e) => Err(e).context("capturing the pane"),
        }
    }
}

/// Where the lines not yet printed start in `now`, a later window of the same pane as
/// `seen`: after the longest run at its start that ends `seen` (or `seen` but its last
/// line, which may have grown since). Nothing in common: all of `now` is new.
fn new_from(seen: &[String], now: &[String]) -> usize {
    let overlap = |seen: &[String]| {
        (1..=seen.len().min(now.len()))
            .rev()
            .find(|&k| seen[seen.len() - k..] == now[..k])
    };
    if let Some(k) = overlap(seen) {
        return k;
    }
    match seen.split_last() {
        Some((_, rest)) if !rest.is_empty() => overlap(rest).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|&l| l.to_owned()).collect()
    }

    #[test]
    fn only_the_lines_after_what_was_seen_are_new() {
        assert_eq!(new_from(&v(&["a", "b", "c"]), &v(&["b", "c", "d", "e"])), 2);
        assert_eq!(new_from(&v(&["a", "b"]), &v(&["a", "b", "c"])), 2);
        assert_eq!(new_from(&v(&["a", "b"]), &v(&["a", "b"])), 2, "nothing new");
        assert_eq!(
            new_from(&v(&["a", "> "]), &v(&["a", "> x", "y"])),
            1,
            "a grown last line"
        );
        assert_eq!(new_from(&v(&["a", "b"]), &v(&["x", "y"])), 0, "cleared: all new");
        assert_eq!(new_from(&[], &v(&["x"])), 0);
    }
}
