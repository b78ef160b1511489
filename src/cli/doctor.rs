//! `vigil doctor`: one line per check, ✓ or ✗ with the fix — tmux and its server, the
//! state dir, the config and its warnings, each agent's command, working directory and
//! screen as vigil would read it now, and systemd's linger when units are installed.
//! Reads only; starts, signals and writes nothing. Exit 0 when every check passes, 1
//! when any fails.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Project;
use super::out::say;
use crate::adapters::process;
use crate::adapters::tmux::{Tmux, TmuxError};
use crate::config::AgentConfig;
use crate::engine::screen;
use crate::present::shown;

/// The oldest tmux vigil is known to work with.
const TMUX_MIN: (u32, u32) = (3, 0);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Pass,
    Fail,
    /// Not applicable here (no session to read, no units installed).
    Skip,
}

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    verdict: Verdict,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            verdict: Verdict::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn skip(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            verdict: Verdict::Skip,
            detail: detail.into(),
            fix: None,
        }
    }
}

impl Project {
    pub(super) fn doctor(&self, json: bool) -> Result<ExitCode> {
        // Listed once: a wedged server costs one tmux timeout, not one per check.
        let listed = self.tmux.list_panes();
        let mut checks = vec![tmux_version(), self.tmux_server(&listed), self.state_dir_fit()];
        checks.push(Check::pass(
            "config",
            format!(
                "{} is valid ({} agent(s))",
                self.config.path.display(),
                self.config.agents.len()
            ),
        ));
        for w in &self.config.warnings {
            let key = w.key.as_deref().map_or(String::new(), |k| format!("`{k}`: "));
            let what = format!("{}:{}:{}: {key}{}", w.file.display(), w.line, w.column, w.message);
            checks.push(Check::fail(
                "config warning",
                shown(&what).into_owned(),
                w.help
                    .as_deref()
                    .map_or("edit the config as the warning says".to_owned(), |h| {
                        shown(h).into_owned()
                    }),
            ));
        }
        let panes = listed.unwrap_or_default();
        let run = &self.config.project;
        for agent in &self.config.agents {
            checks.push(command_check(agent));
            checks.push(cwd_check(agent));
            let session = panes
                .iter()
                .find(|p| p.is_ours(run) && p.agent.as_deref() == Some(agent.name.as_str()) && !p.dead)
                .map(|p| p.session.clone());
            checks.push(self.screen_check(agent, session.as_deref()));
        }
        checks.push(linger_check());
        let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
        if json {
            let doc = serde_json::json!({ "ok": !failed, "checks": checks });
            say!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            for c in &checks {
                let mark = match c.verdict {
                    Verdict::Pass => "✓",
                    Verdict::Fail => "✗",
                    Verdict::Skip => "-",
                };
                say!("{mark} {}: {}", c.check, c.detail);
                if let Some(fix) = &c.fix {
                    say!("    fix: {fix}");
                }
            }
        }
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    }

    fn tmux_server(&self, listed: &Result<Vec<crate::adapters::tmux::Pane>, TmuxError>) -> Check {
        let on = self
            .tmux
            .socket()
            .map_or("the default server".to_owned(), |s| format!("socket `{s}`"));
        match listed {
            Ok(panes) if panes.is_empty() => Check::pass(
                "tmux server",
                format!("no server runs on {on} yet; `vigil up` starts one"),
            ),
            Ok(panes) => Check::pass("tmux server", format!("{on} answers ({} pane(s))", panes.len())),
            Err(e @ (TmuxError::Timeout { .. } | TmuxError::Failed { .. })) => Check::fail(
                "tmux server",
                format!("{on} does not answer: {e}"),
                "see whether a tmux server is stuck (`tmux -L NAME ls`); kill it if it hangs",
            ),
            Err(e) => Check::fail("tmux server", e.to_string(), "install tmux and put it on PATH"),
        }
    }

    fn state_dir_fit(&self) -> Check {
        let dir = &self.state_dir;
        match crate::store::fitness(dir) {
            Ok(true) => Check::pass("state dir", format!("{} is yours and closed to others", dir.display())),
            Ok(false) => Check::pass(
                "state dir",
                format!("{} does not exist yet; vigil creates it owner-only", dir.display()),
            ),
            Err(e) => Check::fail(
                "state dir",
                e.to_string(),
                format!(
                    "`chmod go-w {}`, or set `state_dir` to a directory of your own",
                    dir.display()
                ),
            ),
        }
    }

    /// What vigil would conclude from the agent's screen right now, and why.
    fn screen_check(&self, agent: &AgentConfig, session: Option<&str>) -> Check {
        let name = format!("{} screen", agent.name);
        let Some(session) = session else {
            return Check::skip(name, "not running; nothing to read (`vigil up` starts it)");
        };
        let policy = &agent.policy;
        let tail = match self.tmux.capture(session, policy.tail_lines) {
            Ok(t) => t,
            Err(e) => return Check::fail(name, format!("cannot read `{session}`: {e}"), "see `vigil status`"),
        };
        let read = screen::read(&tail, &agent.patterns, policy.tail_lines, policy.tail_lines);
        let quote = |line: &str| shown(line).into_owned();
        let detail = if let Some(w) = &read.waiting {
            let by = match w.rule {
                screen::WaitingRule::Pattern => format!("preset `{}`", agent.preset),
                screen::WaitingRule::Menu => "a menu at the foot of the screen".to_owned(),
                screen::WaitingRule::Signal => "the agent's own signal".to_owned(),
            };
            format!("waiting for a human ({by}: «{}»)", quote(&w.line))
        } else if let Some(line) = &read.rate_limit {
            format!("rate-limited (preset `{}`: «{}»)", agent.preset, quote(line))
        } else if read.busy {
            format!("busy (preset `{}`'s busy marker is on screen)", agent.preset)
        } else if read.prompt {
            format!("at its prompt (preset `{}`'s prompt pattern matches)", agent.preset)
        } else if read.blank {
            "nothing printed yet".to_owned()
        } else {
            format!(
                "neither busy nor at its prompt by preset `{}`: judged by whether the screen changes",
                agent.preset
            )
        };
        Check::pass(name, format!("in `{session}`: {detail}"))
    }
}

/// `tmux -V` is there and new enough.
fn tmux_version() -> Check {
    let out = std::process::Command::new("tmux").arg("-V").output();
    let Ok(out) = out else {
        return Check::fail(
            "tmux",
            "tmux is not on PATH",
            "install tmux 3.0 or newer (e.g. `apt-get install tmux`)",
        );
    };
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match parse_version(&text) {
        Some(v) if v >= TMUX_MIN => Check::pass("tmux", text),
        Some(_) => Check::fail(
            "tmux",
            format!("{text} is older than {}.{}", TMUX_MIN.0, TMUX_MIN.1),
            "install tmux 3.0 or newer",
        ),
        None => Check::fail(
            "tmux",
            format!("cannot read a version from `tmux -V` («{}»)", shown(&text)),
            "install a released tmux",
        ),
    }
}

/// `tmux 3.3a` → (3, 3); `tmux next-3.4` → (3, 4).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let number = text.split_whitespace().nth(1)?;
    let number = number.trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor.parse().ok()?))
}

fn command_check(agent: &AgentConfig) -> Check {
    let name = format!("{} command", agent.name);
    // A shell command is judged by its first word, as `sh -c` would look it up.
    let program = match &agent.command {
        crate::config::CommandLine::Argv(argv) => argv.first().map(String::as_str),
        crate::config::CommandLine::Shell(line) => line.split_whitespace().next(),
    };
    let Some(program) = program else {
        return Check::fail(name, "the command is empty", "set `command` for this agent");
    };
    let found = if program.contains('/') {
        let path = agent.cwd.join(program);
        process::is_executable(&path).then_some(path)
    } else {
        process::on_path(program)
    };
    match found {
        Some(path) => Check::pass(name, format!("`{program}` is {}", path.display())),
        None => Check::fail(
            name,
            format!(
                "`{program}` is not an executable file (looked on PATH and in {})",
                agent.cwd.display()
            ),
            format!("install `{program}`, or give its full path in `command`"),
        ),
    }
}

fn cwd_check(agent: &AgentConfig) -> Check {
    let name = format!("{} cwd", agent.name);
    if agent.cwd.is_dir() {
        Check::pass(name, agent.cwd.display().to_string())
    } else {
        Check::fail(
            name,
            format!("{} is not a directory", agent.cwd.display()),
            "create it, or fix `cwd`",
        )
    }
}

/// With vigil's user units installed, they only run unattended if the user lingers.
fn linger_check() -> Check {
    let units = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .map(|c| c.join("systemd/user/vigil@.service"));
    if !units.as_deref().is_some_and(Path::exists) {
        return Check::skip("systemd", "no vigil units installed (`vigil install-units --user`)");
    }
    let user = std::env::var("USER").unwrap_or_default();
    let out = std::process::Command::new("loginctl")
        .args(["show-user", &user, "--property=Linger", "--value"])
        .output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "yes" => {
            Check::pass("systemd", "units installed and the user lingers")
        }
        Ok(o) if o.status.success() => Check::fail(
            "systemd",
            "units installed, but the user does not linger: they stop at logout",
            "`loginctl enable-linger \"$USER\"`",
        ),
        _ => Check::skip("systemd", "units installed; no user manager to ask (loginctl failed)"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn tmux_versions_read_as_released() {
        assert_eq!(parse_version("tmux 3.3a"), Some((3, 3)));
        assert_eq!(parse_version("tmux 2.9"), Some((2, 9)));
        assert_eq!(parse_version("tmux next-3.4"), Some((3, 4)));
        assert_eq!(parse_version("tmux master"), None);
        assert_eq!(parse_version(""), None);
    }
}
