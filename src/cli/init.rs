//! `vigil init`: writes a commented `vigil.toml` for the agent CLIs found on PATH (and
//! any `--agent NAME=COMMAND`), checked by the real loader before it is written. Never
//! overwrites a file without `--force`, never follows a link named `vigil.toml`, and
//! writes no environment values (nothing secret reaches the file).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};

use super::Usage;
use super::out::say;
use crate::config::{Config, FILE_NAME, preset};
use crate::engine::AgentName;

/// The agent CLIs looked for on PATH, with the command each is started with.
const KNOWN: [(&str, &[&str]); 4] = [
    ("claude", &["claude"]),
    ("codex", &["codex"]),
    ("gemini", &["gemini"]),
    ("aider", &["aider"]),
];

/// `--agent NAME=COMMAND`: an agent to add, run with `sh -c COMMAND`.
#[derive(Clone, Debug)]
pub struct ExtraAgent {
    pub name: AgentName,
    pub command: String,
}

/// Parses `NAME=COMMAND` for clap.
pub fn parse_extra(text: &str) -> Result<ExtraAgent, String> {
    let (name, command) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=COMMAND (e.g. --agent docs='aider --yes-always')"))?;
    let name = AgentName::new(name.trim())
        .ok_or_else(|| format!("`{name}` is not a usable agent name: 1 to 64 ASCII letters, digits, `-` or `_`"))?;
    if command.trim().is_empty() {
        return Err(format!("agent `{name}` has an empty command"));
    }
    Ok(ExtraAgent {
        name,
        command: command.to_owned(),
    })
}

/// One `[[agent]]` the file will hold.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Planned {
    name: String,
    command: Launch,
    preset: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Launch {
    Argv(Vec<String>),
    Shell(String),
}

pub fn run(target: Option<PathBuf>, extra: &[ExtraAgent], force: bool) -> Result<ExitCode> {
    let path = match target {
        Some(p) => p,
        None => std::env::current_dir()
            .context("reading the current directory")?
            .join(FILE_NAME),
    };
    let found: Vec<&str> = KNOWN
        .iter()
        .map(|(program, _)| *program)
        .filter(|program| crate::adapters::process::on_path(program).is_some())
        .collect();
    let mut agents: Vec<Planned> = KNOWN
        .iter()
        .filter(|(program, _)| found.contains(program))
        .map(|(program, argv)| Planned {
            name: (*program).to_owned(),
            command: Launch::Argv(argv.iter().map(|a| (*a).to_owned()).collect()),
            preset: (*program).to_owned(),
        })
        .collect();
    for e in extra {
        let program = e.command.split_whitespace().next().unwrap_or("");
        let planned = Planned {
            name: e.name.to_string(),
            command: Launch::Shell(e.command.clone()),
            preset: preset::for_program(program).to_owned(),
        };
        match agents.iter_mut().find(|a| a.name == planned.name) {
            Some(a) => *a = planned,
            None => agents.push(planned),
        }
    }
    let placeholder = agents.is_empty();
    if placeholder {
        agents.push(Planned {
            name: "shell".into(),
            command: Launch::Argv(vec!["sh".into()]),
            preset: preset::FALLBACK.into(),
        });
    }
    let text = render(&agents, placeholder);
    // The loader is the judge: what init writes, every other command accepts.
    Config::parse(&text, &path).map_err(|e| anyhow!(Usage(format!("the config init would write is refused: {e}"))))?;
    match write(&path, &text, force)? {
        Written::Refused(why) => {
            eprintln!("vigil init: {why}; not overwritten (pass --force to replace it)");
            return Ok(ExitCode::from(1));
        }
        Written::Done => {}
    }
    say!("vigil init: wrote {}", path.display());
    for a in &agents {
        let command = match &a.command {
            Launch::Argv(argv) => argv.join(" "),
            Launch::Shell(s) => s.clone(),
        };
        say!("  agent {:<10} preset {:<7} command {command}", a.name, a.preset);
    }
    if placeholder {
        say!(
            "  no agent CLI ({}) was found on PATH: the `shell` agent is a placeholder; edit its command",
            KNOWN.map(|(p, _)| p).join(", ")
        );
        say!("  or add one: vigil init --force --agent NAME=COMMAND");
    }
    say!("next: vigil up (starts them in tmux and leaves them supervised); vigil status or vigil tui to see them");
    Ok(ExitCode::SUCCESS)
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The file's text: the agents, and the most useful defaults shown commented out.
fn render(agents: &[Planned], placeholder: bool) -> String {
    let mut out = String::from(HEADER);
    for a in agents {
        out.push_str("\n[[agent]]\n");
        if placeholder {
            out.push_str(
                "# No agent CLI (claude, codex, gemini, aider) was found on PATH; this placeholder\n\
                 # runs a shell. Put your agent's command here, e.g. command = [\"claude\"].\n",
            );
        }
        out.push_str(&format!("name = {}\n", quoted(&a.name)));
        match &a.command {
            Launch::Argv(argv) => {
                let items: Vec<String> = argv.iter().map(|s| quoted(s)).collect();
                out.push_str(&format!("command = [{}]\n", items.join(", ")));
            }
            Launch::Shell(s) => out.push_str(&format!("command = {}   # run with sh -c\n", quoted(s))),
        }
        out.push_str("cwd = \".\"                   # relative to this file\n");
        out.push_str(&format!("preset = {}\n", quoted(&a.preset)));
    }
    out
}

const HEADER: &str = r#"# vigil.toml — written by `vigil init`. vigil finds this file from any directory below
# it. Unknown keys are errors, so a typo never silently falls back to a default.
# Durations are whole seconds or strings like "90s", "5m", "1h30m".
# `vigil up` starts the agents and leaves them supervised; `vigil status` tells why each
# is in its state.

[vigil]
# How often each agent's pane and process are looked at.
# poll_interval = "5s"
# A private tmux server (`tmux -L NAME`); absent: your default tmux server.
# socket = "vigil"

[defaults]
# Every key here may also be set on one [[agent]], which wins. The values shown are
# the defaults.
# restart = "on-failure"       # no | on-failure | always | unless-stopped
# idle_checks = 3              # unchanged checks at its prompt before it is nudged
# nudge = "continue"           # typed into an idle agent's pane
# stale_after = "1h"           # screen unchanged this long: replaced, with a handoff
# rate_limit_cooldown = "5m"   # wait after a rate limit that names no end
# crash_max = 3                # this many crashes within crash_window...
# crash_window = "2m"
# crash_cooldown = "2m"        # ...hold restarts this long
# triage = ["claude", "-p", "You triage a stuck coding agent; answer only the JSON asked for."]

# Each agent: a name (letters, digits, `-`, `_`), a command (an array runs as it is, a
# string with sh -c), a cwd and a preset (claude | codex | gemini | aider | shell) that
# tells its prompt, busy marker, dialogs and rate limits apart. Any preset pattern may be
# overridden per agent, e.g. prompt = "^>$" (lines are matched with trailing spaces
# removed). env = { KEY = "value" } sets environment variables for it.
"#;

enum Written {
    Done,
    Refused(String),
}

/// Writes `text` at `path` as a new file (O_CREAT|O_EXCL, so neither an existing file
/// nor a link in its place is followed or replaced). With `force`, an existing regular
/// file is replaced through a temp file and a rename; a link is still refused.
fn write(path: &Path, text: &str, force: bool) -> Result<Written> {
    let existing = std::fs::symlink_metadata(path).ok();
    if let Some(m) = &existing {
        if m.file_type().is_symlink() {
            return Ok(Written::Refused(format!(
                "{} is a symbolic link; vigil init never writes through one",
                path.display()
            )));
        }
        if !force {
            return Ok(Written::Refused(format!("{} already exists", path.display())));
        }
        if !m.is_file() {
            return Ok(Written::Refused(format!("{} is not a regular file", path.display())));
        }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if existing.is_none() {
        return match create_new(path, text) {
            Ok(()) => {
                sync_dir(dir);
                Ok(Written::Done)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(Written::Refused(format!("{} appeared meanwhile", path.display())))
            }
            Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
        };
    }
    let tmp = dir.join(format!(".{FILE_NAME}.init-{}", std::process::id()));
    create_new(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("replacing {}", path.display()));
    }
    sync_dir(dir);
    Ok(Written::Done)
}

/// Creates `path` (never there before), writes and syncs it; a half-written file is removed.
fn create_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o644)
        .open(path)?;
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str, argv: &[&str]) -> Planned {
        Planned {
            name: name.into(),
            command: Launch::Argv(argv.iter().map(|s| (*s).to_owned()).collect()),
            preset: preset::for_program(argv[0]).into(),
        }
    }

    #[test]
    fn the_rendered_file_loads_with_each_agent_and_its_preset() {
        let dir = tempfile::tempdir().unwrap();
        let mut agents = vec![planned("claude", &["claude"]), planned("codex", &["codex"])];
        agents.push(Planned {
            name: "docs".into(),
            command: Launch::Shell("aider --yes-always \"it's\" \\ done".into()),
            preset: "aider".into(),
        });
        let text = render(&agents, false);
        let c = Config::parse(&text, &dir.path().join(FILE_NAME)).unwrap();
        let got: Vec<(&str, &str)> = c.agents.iter().map(|a| (a.name.as_str(), a.preset.as_str())).collect();
        assert_eq!(got, [("claude", "claude"), ("codex", "codex"), ("docs", "aider")]);
        assert_eq!(
            c.agents[2].command,
            crate::config::CommandLine::Shell("aider --yes-always \"it's\" \\ done".into())
        );
    }

    #[test]
    fn extra_agents_are_name_equals_command() {
        let e = parse_extra("docs=aider --yes-always").unwrap();
        assert_eq!((e.name.as_str(), e.command.as_str()), ("docs", "aider --yes-always"));
        assert!(parse_extra("docs").unwrap_err().contains("NAME=COMMAND"));
        assert!(parse_extra("a b=x").unwrap_err().contains("agent name"));
        assert!(parse_extra("a= ").unwrap_err().contains("empty command"));
    }

    #[test]
    fn a_link_named_vigil_toml_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let link = dir.path().join(FILE_NAME);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for force in [false, true] {
            assert!(matches!(write(&link, "x", force).unwrap(), Written::Refused(_)));
        }
        assert!(!target.exists(), "nothing written through the dangling link");
    }
}
