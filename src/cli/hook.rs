//! `vigil hook`: the command an agent's own hook system (Claude Code, Gemini CLI) or
//! notify command (Codex) runs. It reads the payload (the last argument when there is
//! one, Codex's way; else stdin, never a TTY, bounded in size and time), recognises it,
//! and drops a signal letter for the owner in the dir vigil named at launch. It must
//! never slow or break the agent: no config, no network, nothing printed, exit 0 always.
//! `vigil hook --statusline` is Claude Code's statusLine wrapper instead (`statusline.rs`).

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::engine::Time;
use crate::engine::signal::{MAX_PAYLOAD, Recognised, recognise};
use crate::store::signals::{SignalLetter, drop_letter};

/// The environment vigil gives every agent it starts, for `vigil hook`.
pub const ENV_AGENT: &str = "VIGIL_AGENT";
pub const ENV_INCARNATION: &str = "VIGIL_INCARNATION";
pub const ENV_RUN: &str = "VIGIL_RUN";
/// Where signal letters go (`<state dir>/signals`).
pub const ENV_SIGNALS: &str = "VIGIL_SIGNALS";

/// How long stdin is read (and drained) at most. A hook returns as soon as its writer
/// closes stdin (a few ms); this bounds only a writer that holds stdin open and sends
/// nothing. Claude Code writes the payload after the hook has started (checked live:
/// 25 ms was not enough on a loaded machine), so it is not a few ms.
const STDIN_DEADLINE: Duration = Duration::from_secs(1);

/// Runs the hook on the arguments after `hook`; always exit 0.
pub fn run(args: &[OsString]) -> ExitCode {
    let _ = hear(args);
    ExitCode::SUCCESS
}

fn hear(args: &[OsString]) -> Option<bool> {
    let dir = PathBuf::from(std::env::var_os(ENV_SIGNALS).filter(|d| !d.is_empty())?);
    let agent = std::env::var(ENV_AGENT).ok()?;
    let incarnation: u32 = std::env::var(ENV_INCARNATION).ok()?.parse().ok()?;
    let run = std::env::var(ENV_RUN).ok()?;
    let heard = match args.last() {
        Some(arg) => recognise(arg.as_bytes()),
        None => match read_stdin() {
            Some(bytes) => recognise(&bytes),
            None => Recognised::Garbage {
                why: "no payload (no argument, and stdin empty, a terminal or longer than 64 KiB)".into(),
            },
        },
    };
    let agent: String = agent.chars().take(2 * crate::engine::AgentName::MAX_LEN).collect();
    let run: String = run.chars().take(128).collect();
    let letter = SignalLetter::new(agent, incarnation, run, now(), heard);
    drop_letter(&dir, &letter).ok()
}

pub(super) fn now() -> Time {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Time::from_millis(ms)
}

/// The payload on stdin: `None` when stdin is a terminal, closed or empty, says nothing
/// within the deadline, or holds more than [`MAX_PAYLOAD`] (the rest is drained until
/// the deadline so the writer is not left blocked, then stdin is closed on exit).
pub(super) fn read_stdin() -> Option<Vec<u8>> {
    let stdin = std::io::stdin();
    let fd = std::io::stdin();
    if stdin.is_terminal() {
        return None;
    }
    let deadline = Instant::now() + STDIN_DEADLINE;
    let mut lock = stdin.lock();
    let mut payload = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let timeout = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(0),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // Readable (or hung up): this read does not block.
        match lock.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) if payload.len() <= MAX_PAYLOAD => payload.extend_from_slice(&chunk[..n]),
            Ok(_) => {}
        }
    }
    (!payload.is_empty() && payload.len() <= MAX_PAYLOAD).then_some(payload)
}
