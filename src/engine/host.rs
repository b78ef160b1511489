//! The host the fleet runs on, as opposed to one agent: whether tmux's server answered
//! ([`Host`]), which server it was ([`ServerId`]), what vigil remembers of it across
//! passes ([`HostRecord`], in the Mind) and which failure it was ([`HostFailure`]); the
//! one journal line a host failure gets is [`super::HostEvent`], beside the other step
//! outputs. A lost server is one host failure, never N crashes. Types only; no IO.

use serde::{Deserialize, Serialize};

use super::time::Time;

/// What tmux's server looked like at one poll, decided by the tmux adapter from how
/// tmux answered (never from text in a pane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// A server answered. `server` is which one, when it listed any pane to say so (a
    /// server with no sessions at all names no pane).
    Up { server: Option<ServerId> },
    /// No server runs on the socket: every session went with it.
    ServerGone,
}

impl Default for Host {
    /// A server that answered without saying which: what tests and fakes see.
    fn default() -> Self {
        Host::Up { server: None }
    }
}

/// One tmux server's identity: its pid and the second it started (a pid alone may be
/// reused by a later server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerId {
    pub pid: u32,
    pub started: u64,
}

/// Which host failure ended the fleet's incarnations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostFailure {
    /// The server vanished while vigil watched.
    ServerGone,
    /// Another server answers (its pid or start time differ) and the fleet's sessions
    /// are not in it: the server was lost and a new one started between two looks.
    ServerReplaced,
    /// The owner found the server (or the fleet's sessions) gone when it took the run
    /// over: a reboot, or the server lost together with its owner.
    HostRestart,
}

impl HostFailure {
    /// The first words of its journal line.
    pub fn words(self) -> &'static str {
        match self {
            HostFailure::ServerGone => "host failure: tmux server gone",
            HostFailure::ServerReplaced => "host failure: tmux server replaced",
            HostFailure::HostRestart => "host restart",
        }
    }
}

/// What the Mind keeps about the host between passes (and vigil restarts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// Host failures in a row without a stable run in between; drives the host backoff.
    #[serde(default)]
    pub outages: u32,
    /// When the last host failure was noticed.
    #[serde(default)]
    pub last_outage: Option<Time>,
    /// The server last seen, to notice one replaced between two looks.
    #[serde(default)]
    pub server: Option<ServerId>,
}
