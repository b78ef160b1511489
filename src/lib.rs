//! vigil keeps AI coding agents alive and working inside tmux, unattended.
//!
//! The [`engine`] decides (pure: no IO, no clock); [`adapters`] (tmux, processes, git,
//! systemd, helper commands) and [`store`] (the state dir) are what it is fed from and
//! acts through; [`supervisor`] runs the loop; [`present`] words it all for people and
//! programs; [`cli`] and [`tui`] are the faces. `docs/architecture.md` tells the layers.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod adapters;
pub mod cli;
pub mod config;
pub mod engine;
pub mod present;
pub mod store;
pub mod supervisor;
pub mod tui;
