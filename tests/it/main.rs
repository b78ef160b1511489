//! Integration tests: one binary (faster to link) with a module per area. Everything
//! that concerns tmux runs against a real tmux server on a private socket.

mod cli;
mod config_errors;
mod control;
mod doctor;
mod durability;
mod faults;
mod harness;
mod hooks;
mod host;
mod init;
mod letters;
mod limits;
mod looking;
mod metrics;
mod notify;
mod presets;
mod procs;
mod recovery;
mod replay;
mod resets;
mod robust;
mod scripter;
mod security;
mod supervise;
mod systemd;
mod time;
mod tui;
mod upwatch;
