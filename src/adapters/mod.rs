//! Adapters to the world outside vigil's mind: tmux, the OS's processes, git, systemd
//! and the helper programs vigil runs. Each turns one outside thing into plain values
//! (and plain errors) for the supervisor; none of them decides anything.

pub mod clock;
pub mod fs;
pub mod git;
pub mod helper;
pub mod process;
pub mod systemd;
pub mod tmux;
