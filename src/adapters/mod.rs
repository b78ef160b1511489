//! Adapters to the world outside vigil's mind: tmux, the OS's processes, git, systemd
//! and the helper programs vigil runs. Each turns one outside thing into plain values
//! (and plain errors) for the supervisor; none of them decides anything.

/// What the service manager hands vigil alone (its notification socket and watchdog):
/// never passed on to a process vigil starts, a tmux server least of all, since the
/// server would hand them to every agent.
pub const SERVICE_ENV: [&str; 3] = [systemd::NOTIFY_SOCKET, systemd::WATCHDOG_USEC, systemd::WATCHDOG_PID];

pub mod clock;
pub mod fs;
pub mod git;
pub mod helper;
pub mod load;
pub mod process;
pub mod proctree;
pub mod systemd;
pub mod tmux;
pub mod webhook;
