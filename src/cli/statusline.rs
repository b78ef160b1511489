//! `vigil hook --statusline`: the statusLine command vigil gives Claude Code. It reads
//! the JSON Claude pipes to it (bounded, like `vigil hook`), records the rate-limit
//! windows in it for the owner (`limits/<agent>.json`, only when they changed), and
//! keeps the user's own statusLine working: their command (looked up by vigil at
//! launch, kept in `hooks/statusline-<agent>.json`) runs with the same stdin, its
//! stdout passed through, cut off after [`DEADLINE`]. Never fails Claude: exit 0,
//! nothing on stderr, nothing printed when there is no user statusLine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::hook::{ENV_AGENT, ENV_INCARNATION, ENV_RUN, ENV_SIGNALS};
use crate::adapters::fs::{Links, read_regular};
use crate::adapters::helper;
use crate::engine::AgentName;
use crate::engine::resets::statusline_windows;
use crate::store::limits::{self, Recorded};

/// The flag of `vigil hook` that makes it the statusLine wrapper.
pub const FLAG: &str = "--statusline";
/// How long the user's statusLine may take; then it is killed and nothing is shown.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Most the user's statusLine may print.
const MAX_OUTPUT: usize = 64 * 1024;
/// Largest file naming the user's statusLine.
const MAX_USER_FILE: u64 = 64 * 1024;

/// The user's own statusLine command, as vigil found it at launch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserStatusLine {
    pub version: u32,
    /// The command text exactly as the user wrote it in their Claude settings (their
    /// own trusted text, run with `sh -c` as Claude Code would run it).
    pub command: String,
}

/// The file holding `agent`'s user statusLine, in the state dir's `hooks/`.
pub fn user_file_name(agent: &AgentName) -> String {
    format!("statusline-{agent}.json")
}

/// Runs the wrapper; always exit 0.
pub fn run() -> ExitCode {
    let payload = super::hook::read_stdin().unwrap_or_default();
    let state = std::env::var_os(ENV_SIGNALS)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .and_then(|signals| signals.parent().map(Path::to_owned));
    let agent = std::env::var(ENV_AGENT).ok().and_then(|a| AgentName::new(&a));
    if let (Some(state), Some(agent)) = (&state, &agent) {
        let _ = record(state, agent, &payload);
        if let Some(out) = user_statusline(state, agent, &payload) {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&out);
            let _ = stdout.flush();
        }
    }
    ExitCode::SUCCESS
}

fn record(state: &Path, agent: &AgentName, payload: &[u8]) -> Option<bool> {
    let windows = statusline_windows(payload)?;
    let incarnation: u32 = std::env::var(ENV_INCARNATION).ok()?.parse().ok()?;
    let run: String = std::env::var(ENV_RUN).ok()?.chars().take(128).collect();
    let now = super::hook::now();
    let file = Recorded::new(agent.clone(), incarnation, run, now, windows);
    limits::record(&state.join(limits::DIR), &file).ok()
}

/// The user's statusLine output, when they have one and it answered in time.
fn user_statusline(state: &Path, agent: &AgentName, payload: &[u8]) -> Option<Vec<u8>> {
    let path = state.join("hooks").join(user_file_name(agent));
    let bytes = read_regular(&path, MAX_USER_FILE, Links::Refuse).ok()?;
    let user: UserStatusLine = serde_json::from_slice(&bytes)
        .ok()
        .filter(|u: &UserStatusLine| u.version == 1)?;
    let argv = ["sh".to_owned(), "-c".to_owned(), user.command];
    let cwd = std::env::current_dir().ok()?;
    helper::run(&argv, &cwd, payload, DEADLINE, MAX_OUTPUT)
        .ok()
        .map(String::into_bytes)
}
