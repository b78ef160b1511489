//! Talking to tmux: a small trait (list every pane at once, capture a pane's tail, type
//! literal text, start a tagged session, kill one) with two real clients (one
//! control-mode `tmux -C` kept open, the `tmux` CLI per call), one type choosing
//! between them, and an in-memory fake for unit tests. Arguments are always vectors,
//! never shell strings; targets are exact (`=name:`).

mod cli;
mod client;
mod commands;
mod control;
#[cfg(test)]
mod fake;
mod listing;
mod orphans;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::engine::{Host, ServerId};
pub use cli::TmuxCli;
pub use client::{CLIENT_ENV, ClientKind, TmuxClient};
pub use control::CONTROL_SESSION;
#[cfg(test)]
pub use fake::FakeTmux;

/// The user options that tag a session as vigil's.
pub const TAG_AGENT: &str = "@vigil-agent";
pub const TAG_INCARNATION: &str = "@vigil-incarnation";
pub const TAG_RUN: &str = "@vigil-run";
/// Set on the hidden session vigil's control-mode clients sit in: nobody's pane.
pub const TAG_CONTROL: &str = "@vigil-control";
/// Set on the pane by the wrapper the agent runs under: its exit status.
pub const TAG_EXIT: &str = "@vigil-exit";

/// One pane as `list-panes -a` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pane {
    pub session: String,
    pub pane_pid: u32,
    pub dead: bool,
    /// Exit status of a dead pane that exited normally.
    pub dead_status: Option<i32>,
    /// Signal that killed a dead pane's process.
    pub dead_signal: Option<i32>,
    pub agent: Option<String>,
    pub incarnation: Option<u32>,
    pub run: Option<String>,
    /// The agent's exit status as its wrapper recorded it (see `spawn::WRAPPER`).
    pub exit_tag: Option<i32>,
    /// When its window last printed, in whole seconds of the wall clock
    /// (`#{window_activity}`: tmux moves it on output only); `None` when unknown.
    pub activity: Option<i64>,
    /// Its size (columns, rows): a resize redraws the screen without output.
    pub size: Option<(u16, u16)>,
}

impl Pane {
    /// Whether this pane is tagged as `agent` of `run`.
    pub fn is_ours(&self, run: &str) -> bool {
        self.run.as_deref() == Some(run) && self.agent.is_some()
    }
}

/// Every pane at one look, and whether a server answered at all (and which one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub host: Host,
    pub panes: Vec<Pane>,
}

/// Everything needed to start one tagged incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnSpec {
    pub session: String,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    /// Run as is, without a shell in between.
    pub argv: Vec<String>,
    pub agent: String,
    pub incarnation: u32,
    pub run: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    #[error("cannot run tmux ({0}); is it installed and on PATH?")]
    Missing(std::io::Error),
    #[error("no tmux session `{0}`")]
    NoSuchSession(String),
    /// `new-session` found a session of that name already there.
    #[error("a tmux session named `{0}` already exists")]
    SessionExists(String),
    #[error("`tmux {args}` did not answer within {secs}s; killed it")]
    Timeout { args: String, secs: u64 },
    #[error("`tmux {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
}

/// What vigil asks of tmux.
pub trait Tmux {
    /// Every pane of every session, in one call. No server running = no panes.
    fn list_panes(&self) -> Result<Vec<Pane>, TmuxError>;
    /// [`Tmux::list_panes`], saying whether a server answered (decided from how tmux
    /// answered, never from pane text) and which one. A tmux that cannot tell says
    /// "up, unknown server", which never reads as a host failure.
    ///
    /// It may be a glance ([`listing`]): each pane's process, state and server as the
    /// last full listing said, its activity and size now. The caller checks each live
    /// pane's process, and asks [`Tmux::survey_afresh`] when one has gone.
    fn survey(&self) -> Result<Listing, TmuxError> {
        Ok(Listing {
            host: Host::default(),
            panes: self.list_panes()?,
        })
    }
    /// [`Tmux::survey`] as a full listing, never a glance: what tmux says of every
    /// pane now.
    fn survey_afresh(&self) -> Result<Listing, TmuxError> {
        self.survey()
    }
    /// The last `lines` lines of a session's pane (history included), wrapped lines
    /// joined.
    fn capture(&self, session: &str, lines: usize) -> Result<Vec<String>, TmuxError>;
    /// [`Tmux::capture`] of each of `asks` (session, lines), sent together where the
    /// client can; each one's outcome, in order, one failing none of the others.
    fn capture_each(&self, asks: &[(&str, usize)]) -> Vec<Result<Vec<String>, TmuxError>> {
        asks.iter()
            .map(|(session, lines)| self.capture(session, *lines))
            .collect()
    }
    /// Types `text` literally (never interpreted as key names), then Enter on its own.
    fn send_text(&self, session: &str, text: &str) -> Result<(), TmuxError>;
    /// Starts a detached, tagged session with `remain-on-exit on`, so a dead pane keeps
    /// its exit status and last words.
    fn spawn(&self, spec: &SpawnSpec) -> Result<(), TmuxError>;
    fn kill(&self, session: &str) -> Result<(), TmuxError>;
}
