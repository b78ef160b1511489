//! `vigil demo`: the fake agents of `fixtures/agents/` under a real `vigil watch`, in a
//! temporary directory and a private tmux server that are removed afterwards.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};

use super::out::say;
use super::watch::{self, Options};
use super::{Project, Usage};
use crate::config::{Config, parse_duration};

const CONFIG: &str = include_str!("../../assets/demo/vigil.toml");

const AGENTS: [(&str, &str); 7] = [
    ("worker.sh", include_str!("../../fixtures/agents/worker.sh")),
    ("prompt.sh", include_str!("../../fixtures/agents/prompt.sh")),
    ("spinner.sh", include_str!("../../fixtures/agents/spinner.sh")),
    ("finisher.sh", include_str!("../../fixtures/agents/finisher.sh")),
    ("crasher.sh", include_str!("../../fixtures/agents/crasher.sh")),
    ("ratelimit.sh", include_str!("../../fixtures/agents/ratelimit.sh")),
    ("dialog.sh", include_str!("../../fixtures/agents/dialog.sh")),
];

/// Writes the demo project into `dir`; returns the tmux socket name it uses.
pub fn write_project(dir: &Path, socket: &str) -> Result<()> {
    let agents = dir.join("agents");
    std::fs::create_dir_all(&agents).with_context(|| format!("creating {}", agents.display()))?;
    for (name, script) in AGENTS {
        let path = agents.join(name);
        std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let config = dir.join("vigil.toml");
    std::fs::write(&config, CONFIG.replace("@SOCKET@", socket))
        .with_context(|| format!("writing {}", config.display()))?;
    Ok(())
}

pub fn run(duration: Option<&str>, keep: bool) -> Result<ExitCode> {
    let until = duration
        .map(parse_duration)
        .transpose()
        .map_err(|e| anyhow!(Usage(format!("--for: {e}"))))?;
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("vigil-demo-{pid}"));
    let socket = format!("vigil-demo-{pid}");
    write_project(&dir, &socket)?;
    let config = Config::load(&dir.join("vigil.toml"))?;
    let project = Project::with_state_dir(config, dir.join("state"));
    say!(
        "vigil demo: seven fake agents in a private tmux server (socket {socket}), project {}",
        dir.display()
    );
    say!(
        "  watch one live:  tmux -L {socket} attach -t {}   (detach: Ctrl-b d)",
        project.config.session_of(&project.config.agents[0].name)
    );
    let config_path = dir.join("vigil.toml");
    let me = std::env::current_exe().map_or_else(|_| "vigil".into(), |p| p.display().to_string());
    say!("  in another terminal:  {me} --config {} status", config_path.display());
    say!("  expect within a minute: prompt nudged, spinner stalled and restarted, crasher held as a crash loop,");
    say!("  ratelimit cooled down then resumed, dialog waiting for a human, finisher completed.\n");
    let outcome = watch::run(
        &project,
        Options {
            until,
            status_every: Some(std::time::Duration::from_secs(10)),
            launched_by: None,
        },
    );
    say!(
        "\nvigil demo: how it ended ({}):",
        match &outcome {
            Ok(_) => "the watch stopped cleanly".to_owned(),
            Err(e) => format!("the watch failed: {e:#}"),
        }
    );
    let store = crate::store::Store::existing(&project.state_dir);
    let report =
        crate::present::status::StatusReport::read(&project.config, store.as_ref(), crate::adapters::clock::now());
    for a in &report.agents {
        let restarts = match a.restarts {
            0 => String::new(),
            1 => " (restarted once)".to_owned(),
            n => format!(" (restarted {n} times)"),
        };
        say!("  {:<10} {}{restarts}", a.name, a.reason);
    }
    if keep {
        say!(
            "vigil demo: kept {} and the agents in tmux server -L {socket}",
            dir.display()
        );
        say!("  look again:  {me} --config {} status", config_path.display());
        say!("  end it:      tmux -L {socket} kill-server; rm -r {}", dir.display());
    } else {
        let killed = std::process::Command::new("tmux")
            .args(["-L", &socket, "kill-server"])
            .stdin(std::process::Stdio::null())
            .output();
        match killed {
            Ok(o) if o.status.success() => say!("vigil demo: ended tmux server -L {socket} and the agents in it"),
            Ok(o) => say!(
                "vigil demo: tmux -L {socket} kill-server said: {}",
                crate::present::shown(String::from_utf8_lossy(&o.stderr).trim())
            ),
            Err(e) => say!("vigil demo: could not run tmux -L {socket} kill-server: {e}"),
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => say!("vigil demo: removed {}", dir.display()),
            Err(e) => say!("vigil demo: could not remove {}: {e}", dir.display()),
        }
    }
    outcome
}
