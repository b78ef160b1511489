//! Integration tests: one binary (faster to link) with a module per area. Everything
//! that concerns tmux runs against a real tmux server on a private socket.

mod cli;
mod config_errors;
mod durability;
mod harness;
mod presets;
mod supervise;
mod tui;
