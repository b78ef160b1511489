//! `vigil watch`: pass after pass until SIGTERM or Ctrl-C, then a clean exit that
//! leaves the agents running. A signal never interrupts a pass half-way: it is
//! noticed between passes, after the Mind is on disk.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};

use super::{Project, now, render};
use crate::engine::time::human;
use crate::store::Role;
use crate::supervisor::SupervisorError;

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Stop after this long (the demo); `None` runs until a signal.
    pub until: Option<Duration>,
    /// Print the status table this often (the demo).
    pub status_every: Option<Duration>,
}

pub fn run(project: &Project, options: Options) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(watch(project, options))
}

async fn watch(project: &Project, options: Options) -> Result<ExitCode> {
    // Signals first: from here on, a TERM waits for the pass in progress.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let Some(mut sup) = project.claim(Role::Watch)? else {
        return Err(project.held());
    };
    let config = sup.config();
    println!(
        "vigil watch: supervising {} agent(s) of {} every {} (tmux {}, state in {}); SIGTERM or Ctrl-C stops vigil, not the agents",
        config.agents.len(),
        config.path.display(),
        human(config.poll_interval),
        project
            .tmux
            .socket()
            .map_or("default server".to_owned(), |s| format!("-L {s}")),
        project.state_dir.display(),
    );
    let poll = config.poll_interval;
    let started = Instant::now();
    let mut last_status = Instant::now();
    loop {
        match sup.pass(Vec::new(), true, now()) {
            Ok(records) => render::print_records(&records, false),
            // Journaled already; try again next poll rather than act blind.
            Err(SupervisorError::Observe(e)) => eprintln!("vigil watch: cannot observe tmux ({e}); retrying"),
            Err(e) => return Err(e.into()),
        }
        if let Some(every) = options.status_every
            && last_status.elapsed() >= every
        {
            last_status = Instant::now();
            println!();
            render::print_status(sup.config(), Some(sup.store()), now(), false)?;
            println!();
        }
        if options.until.is_some_and(|u| started.elapsed() >= u) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let journal = sup.store().journal();
    journal.append(
        now(),
        "released",
        &serde_json::json!({"pid": std::process::id(), "epoch": sup.epoch()}),
    )?;
    println!("vigil watch: stopped; the agents keep running (`vigil status` shows them)");
    Ok(ExitCode::SUCCESS)
}
