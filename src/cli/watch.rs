//! `vigil watch`: the owner loop ([`runtime`]) with a face that prints — each pass's
//! records as lines, problems and warnings on stderr — until SIGTERM or Ctrl-C, then a
//! clean exit that leaves the agents running. Signals, reloads (SIGHUP or an edit of
//! the file) and sd_notify are the runtime's; this file only says what happens.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;

use super::{Project, log};
use crate::adapters::clock::now;
use crate::engine::time::human;
use crate::present;
use crate::store::Role;
use crate::supervisor::runtime::{self, Signals, Update};

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Stop after this long (the demo); `None` runs until a signal.
    pub until: Option<Duration>,
    /// Print the status table this often (the demo).
    pub status_every: Option<Duration>,
    /// The command that started this watch detached, recorded in `owner.json`.
    pub launched_by: Option<crate::store::Launcher>,
}

pub fn run(project: &Project, options: Options) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(watch(project, options));
    // A pass the stop gave up waiting for (see `runtime::STOP_WAIT`) must not hold the
    // exit: journal-before-act lets the next owner settle whatever it left open.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

async fn watch(project: &Project, options: Options) -> Result<ExitCode> {
    // Signals first: from here on, a TERM waits for the pass in progress.
    let signals = Signals::install()?;
    let Some(sup) = project.claim(Role::Watch)? else {
        return Err(project.held());
    };
    if let Some(by) = options.launched_by {
        // Before the first beat: a starter waiting for the claim sees the mark with it.
        sup.store().mark_launched(std::process::id(), by)?;
    }
    let mut config = sup.config().clone();
    println!(
        "vigil watch: supervising {} agent(s) of {} every {} (tmux {}, state in {}); SIGTERM or Ctrl-C stops vigil, not the agents; SIGHUP or an edit of the file reloads it",
        config.agents.len(),
        config.path.display(),
        human(config.poll_interval),
        project
            .tmux
            .socket()
            .map_or("default server".to_owned(), |s| format!("-L {s}")),
        project.state_dir.display(),
    );
    let store = sup.store().clone();
    let (owner, mut updates) = runtime::spawn(sup, signals, runtime::Face::Headless);
    let until = options.until.map(|u| Instant::now() + u);
    let mut stopping = false;
    let mut last_status = Instant::now();
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Some(Update::Pass { records, .. }) => {
                    log::print_records(&records, false);
                    if let Some(every) = options.status_every
                        && last_status.elapsed() >= every
                    {
                        last_status = Instant::now();
                        println!();
                        let report = present::status::StatusReport::read(&config, Some(&store), now());
                        super::out::print(&present::status::table(&report, Some(&store), now()));
                        println!();
                    }
                }
                Some(Update::Reloaded { records, config: new }) => {
                    log::print_records(&records, false);
                    config = *new;
                }
                Some(Update::Problem(message) | Update::Warning(message)) => eprintln!("vigil watch: {message}"),
                Some(Update::Ready) => {}
                Some(Update::Stopped) | None => break,
            },
            _ = sleep_until(until), if !stopping && until.is_some() => {
                stopping = true;
                owner.stop();
            }
        }
    }
    owner.finished().await?;
    println!("vigil watch: stopped; the agents keep running (`vigil status` shows them)");
    Ok(ExitCode::SUCCESS)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
