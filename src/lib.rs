//! vigil keeps AI coding agents alive and working inside tmux, unattended.
//!
//! The [`engine`] decides (pure: no IO, no clock); [`tmux`] and [`store`] are the
//! adapters it is fed from and acts through; [`supervisor`] runs the loop; [`cli`] is
//! the face. See DESIGN.md for the words used here.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod checkpoint;
pub mod cli;
pub mod command;
pub mod config;
pub mod engine;
pub mod failpoint;
pub mod preset;
pub mod process;
pub mod spawn;
pub mod store;
pub mod supervisor;
pub mod systemd;
pub mod tmux;
pub mod triage;
pub mod tui;
pub mod watchdog;
