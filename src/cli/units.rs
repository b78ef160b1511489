//! `vigil install-units`: writes the systemd user units (`vigil@.service`, the
//! `vigil-check@` and `vigil-tick@` services and timers) with this binary's path and the
//! environment vigil needs, and prints the exact `systemctl --user` lines that enable
//! them for this project. Never runs systemctl itself.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};

use super::out::say;
use super::{Project, Usage};
use crate::adapters::systemd::{UNITS, escape_path, render_unit};
use crate::store::STATE_DIR_ENV;

pub fn run(project: &Project, user: bool, dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match (dir, user) {
        (Some(dir), _) => dir,
        (None, true) => user_unit_dir()?,
        (None, false) => {
            return Err(anyhow!(Usage(
                "vigil runs as you, beside your tmux server, so its units are user units: pass --user (to write them to ~/.config/systemd/user) or --dir DIR".into()
            )));
        }
    };
    let exe = std::env::current_exe().context("finding the vigil binary")?;
    let config = std::fs::canonicalize(&project.config.path)
        .with_context(|| format!("resolving {}", project.config.path.display()))?;
    let environment = environment();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, template) in UNITS {
        let text = render_unit(template, &exe, &environment).map_err(|e| anyhow!(Usage(e)))?;
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        say!("wrote {}", path.display());
    }
    let instance = escape_path(&config);
    let (service, timer) = (
        format!("vigil@{instance}.service"),
        format!("vigil-check@{instance}.timer"),
    );
    say!();
    say!("For {} (instance `{instance}`), run:", config.display());
    say!();
    say!("  loginctl enable-linger \"$USER\"   # once: your units run without a login, and across reboots");
    say!("  systemctl --user daemon-reload");
    say!("  systemctl --user enable --now '{service}' '{timer}'");
    say!();
    say!("Then `systemctl --user status '{service}'` and `journalctl --user -u '{service}'` show it;");
    say!("`systemctl --user reload '{service}'` re-reads the config (so does saving the file).");
    say!();
    say!("Or, instead of both (one pass a minute, no long-running vigil):");
    say!();
    say!("  systemctl --user enable --now 'vigil-tick@{instance}.timer'");
    if std::env::var_os(STATE_DIR_ENV).is_some_and(|v| !v.is_empty()) {
        say!();
        say!(
            "note: {STATE_DIR_ENV} is set here but not written into the units (they serve every project); use `state_dir` in {} if you need it",
            config.display()
        );
    }
    if project
        .tmux
        .socket()
        .is_some_and(|s| project.config.socket.as_deref() != Some(s))
    {
        say!();
        say!(
            "note: --socket is not written into the units; put `socket = ...` in {} instead",
            config.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub(super) fn user_unit_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set; pass --dir DIR"))?;
    Ok(base.join("systemd").join("user"))
}

/// What the service needs from this shell: the `PATH` the agents' programs are found
/// on (a user manager's own is minimal). Nothing project-specific: the units serve
/// every project.
fn environment() -> Vec<(String, String)> {
    std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| ("PATH".to_owned(), p))
        .into_iter()
        .collect()
}
