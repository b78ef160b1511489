//! `vigil --version`: vigil's own version and the tmux it would run (found on PATH, as
//! the tmux adapter runs it), so a bug report names both. Only reads; never starts tmux.

/// `0.1.0 (tmux 3.4 at /usr/bin/tmux)`, or says that no tmux was found.
pub fn line() -> String {
    let own = env!("CARGO_PKG_VERSION");
    let Some(path) = crate::adapters::process::on_path("tmux") else {
        return format!("{own} (tmux: not found on PATH; vigil needs it)");
    };
    let said = std::process::Command::new(&path)
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty());
    match said {
        Some(v) => format!("{own} ({} at {})", crate::present::shown(&v), path.display()),
        None => format!("{own} (tmux at {} did not say its version)", path.display()),
    }
}
