//! Starting agents: the exact argv and environment of a new incarnation, and the
//! fan-out report of `vigil up` — each agent on its own spawned, already running,
//! held or failed (with the reason and the last lines its pane printed), never silent.

use std::path::Path;

use serde::Serialize;

use super::wiring;
use crate::cli::hook;

use crate::adapters::tmux::SpawnSpec;
use crate::config::{AgentConfig, CommandLine};
use crate::engine::{AgentName, AgentRecord, Incarnation, Lifecycle};

/// The shell a pane runs the agent under. It records the agent's exit status as the
/// pane option `@vigil-exit` before the pane dies, because tmux 3.3a sometimes never
/// learns it (the pty closes before it reaps the child; tmux PR #4841), and a clean exit
/// must never read as a crash. The agent's argv follows as `"$@"`, never re-read by a
/// shell; a missing program says so in the pane and exits 127.
pub const WRAPPER: &str = r#""$@"; s=$?; tmux set-option -p -t "$TMUX_PANE" @vigil-exit "$s" 2>/dev/null; exit "$s""#;

/// The argv a pane runs: the wrapper, then the agent's command.
pub fn argv(command: &CommandLine) -> Vec<String> {
    let mut out = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        WRAPPER.to_owned(),
        "vigil-agent".to_owned(),
    ];
    match command {
        CommandLine::Argv(argv) => out.extend(argv.iter().cloned()),
        CommandLine::Shell(script) => out.extend(["sh".to_owned(), "-c".to_owned(), script.clone()]),
    }
    out
}

/// What can be known before starting: its cwd is a directory (tmux would silently
/// start the agent elsewhere), and a program named by a path exists and may be
/// executed. A bare program name is the shell's to find on the pane's own PATH: its
/// "not found" and exit 127 tell the engine the same, from the pane.
pub fn can_start(agent: &AgentConfig) -> Result<(), String> {
    if !agent.cwd.is_dir() {
        return Err(format!("its cwd {} is gone (not a directory)", agent.cwd.display()));
    }
    let CommandLine::Argv(argv) = &agent.command else {
        return Ok(());
    };
    let Some(program) = argv.first().filter(|p| p.contains('/')) else {
        return Ok(());
    };
    let path = agent.cwd.join(program);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("{program}: not found")),
        Err(e) => Err(format!("{program}: {e}")),
        Ok(_) if !crate::adapters::process::is_executable(&path) => {
            Err(format!("{program}: not executable (permission denied)"))
        }
        Ok(_) => Ok(()),
    }
}

/// The start of one incarnation. Unless `signals = false`, its env names it for `vigil
/// hook` (agent, incarnation, run, where letters go) and, where its preset is wired,
/// the arguments and env that make the agent CLI run `vigil hook` are added: arguments
/// right after the program, never by rewriting the user's command text.
pub fn spec(
    agent: &AgentConfig,
    session: &str,
    incarnation: Incarnation,
    run: &str,
    signals: Option<(&Path, &wiring::Files)>,
) -> SpawnSpec {
    let mut env = agent.env.clone();
    let mut command = agent.command.clone();
    if let Some((dir, files)) = signals.filter(|_| !agent.signals_off) {
        env.insert(hook::ENV_AGENT.into(), agent.name.to_string());
        env.insert(hook::ENV_INCARNATION.into(), incarnation.0.to_string());
        env.insert(hook::ENV_RUN.into(), run.to_owned());
        env.insert(hook::ENV_SIGNALS.into(), dir.to_string_lossy().into_owned());
        if let Some(wiring) = agent.signals {
            let added = files.added(wiring, matches!(command, CommandLine::Argv(_)));
            // Right after the agent CLI itself (`claude`, `npx claude`, `env X=1 codex`);
            // a command that does not name it (a wrapper script) gets no arguments.
            if let CommandLine::Argv(argv) = &mut command {
                let base = |a: &String| a.rsplit('/').next().map(str::to_owned).unwrap_or_default();
                if let Some(at) = argv.iter().position(|a| base(a) == wiring.program()) {
                    argv.splice(at + 1..at + 1, added.args);
                }
            }
            for (k, v) in added.env {
                env.entry(k).or_insert(v);
            }
        }
    }
    SpawnSpec {
        session: session.to_owned(),
        cwd: agent.cwd.clone(),
        env,
        argv: argv(&command),
        agent: agent.name.to_string(),
        incarnation: incarnation.0,
        run: run.to_owned(),
    }
}

/// How one agent fared in `vigil up`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Started now and still running after the settle time.
    Started,
    /// Was already running; nothing started.
    Running,
    /// Not started: the reason says why (a crash-loop hold, a stop).
    Held,
    /// Not started yet: host pressure (load, memory, starts at once) holds it back; it
    /// starts by itself when pressure clears. Not a failure.
    Deferred,
    /// Started but died at once, or could not be started.
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct UpResult {
    pub name: AgentName,
    pub outcome: Outcome,
    pub incarnation: Incarnation,
    pub session: String,
    pub pane_pid: Option<u32>,
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
}

/// Classifies an agent after `up`: `before` is its incarnation before the command,
/// `rec` the record after the settle pass.
pub fn outcome(name: &AgentName, before: Option<Incarnation>, rec: Option<&AgentRecord>) -> UpResult {
    let Some(rec) = rec else {
        return UpResult {
            name: name.clone(),
            outcome: Outcome::Held,
            incarnation: Incarnation(0),
            session: String::new(),
            pane_pid: None,
            reason: "not started".into(),
            last_lines: Vec::new(),
        };
    };
    let started = before != Some(rec.incarnation);
    let (outcome, reason, last_lines) = match (rec.is_live(), started) {
        _ if rec.deferred().is_some() => (Outcome::Deferred, rec.reason.clone(), Vec::new()),
        (true, true) => (Outcome::Started, format!("started as {}", rec.incarnation), Vec::new()),
        (true, false) => (
            Outcome::Running,
            format!("already running as {}", rec.incarnation),
            Vec::new(),
        ),
        (false, true) => {
            let exit = rec.last_exit().cloned();
            let words = exit.as_ref().map(|e| e.last_lines.clone()).unwrap_or_default();
            let start_failed = exit.as_ref().is_some_and(|e| e.start_failed);
            let why = exit.map_or_else(|| rec.reason.clone(), |e| e.reason);
            let outcome = if rec.lifecycle() == Lifecycle::Completed && !start_failed {
                Outcome::Started
            } else {
                Outcome::Failed
            };
            let reason = if start_failed {
                format!("{} failed to start: {why}", rec.incarnation)
            } else {
                format!("{} {}: {why}", rec.incarnation, rec.lifecycle().as_str())
            };
            (outcome, reason, words)
        }
        (false, false) => (Outcome::Held, rec.reason.clone(), Vec::new()),
    };
    UpResult {
        name: name.clone(),
        outcome,
        incarnation: rec.incarnation,
        session: rec.session.clone(),
        pane_pid: rec.pane_pid,
        reason,
        last_lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EndedLifecycle, LastExit, Time};

    fn ended(lifecycle: EndedLifecycle, exit: LastExit) -> AgentRecord {
        let mut rec = AgentRecord::new(Incarnation(2), "p-a".into(), Time::from_millis(0), "x".into());
        rec.finish(lifecycle, exit, None);
        rec
    }

    #[test]
    fn a_start_that_failed_is_failed_whatever_its_words_say() {
        let a = AgentName::new("a").unwrap();
        let done = ended(
            EndedLifecycle::Completed,
            LastExit::because("exit 0: could not start the linter, done"),
        );
        let up = outcome(&a, Some(Incarnation(1)), Some(&done));
        assert_eq!(up.outcome, Outcome::Started, "{up:?}");
        let refused = ended(EndedLifecycle::Completed, LastExit::could_not_start("no server"));
        assert_eq!(
            outcome(&a, Some(Incarnation(1)), Some(&refused)).outcome,
            Outcome::Failed
        );
    }

    #[test]
    fn argv_commands_run_without_a_shell_reading_them() {
        let argv = argv(&CommandLine::Argv(vec!["echo".into(), "$HOME; rm -rf /".into()]));
        assert_eq!(argv[..4], ["sh", "-c", WRAPPER, "vigil-agent"]);
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env_remove("TMUX_PANE")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "$HOME; rm -rf /\n");
    }

    fn agent(command: &str, extra: &str) -> AgentConfig {
        let text = format!("[[agent]]\nname = \"a\"\ncommand = {command}\ncwd = \"/\"\n{extra}\n");
        let config = crate::config::Config::parse(&text, Path::new("/tmp/vigil.toml")).unwrap();
        config.agents[0].clone()
    }

    fn files() -> wiring::Files {
        wiring::Files {
            vigil: Some("/bin/vigil".into()),
            claude: Some("/s/hooks/claude-settings.json".into()),
            gemini: Some("/s/hooks/gemini-settings.json".into()),
            ..wiring::Files::default()
        }
    }

    fn started(command: &str, extra: &str) -> SpawnSpec {
        spec(
            &agent(command, extra),
            "s",
            Incarnation(3),
            "run",
            Some((Path::new("/s/signals"), &files())),
        )
    }

    #[test]
    fn signals_are_wired_right_after_the_agent_cli_and_never_into_other_commands() {
        let s = started(r#"["npx", "claude", "--continue"]"#, "preset = \"claude\"");
        assert_eq!(
            s.argv[4..],
            [
                "npx",
                "claude",
                "--settings",
                "/s/hooks/claude-settings.json",
                "--continue"
            ]
        );
        assert_eq!(s.env["VIGIL_AGENT"], "a");
        assert_eq!(s.env["VIGIL_INCARNATION"], "3");
        assert_eq!(s.env["VIGIL_SIGNALS"], "/s/signals");
        let s = started(r#"["codex"]"#, "");
        assert_eq!(s.argv[4..], ["codex", "-c", r#"notify=["/bin/vigil", "hook"]"#]);
        let s = started(r#"["sh", "wrapper.sh"]"#, "preset = \"claude\"");
        assert_eq!(s.argv[4..], ["sh", "wrapper.sh"], "a wrapper gets no arguments");
        let s = started(r#""claude --continue""#, "");
        assert_eq!(s.argv[4..], ["sh", "-c", "claude --continue"], "nor a shell string");
        let s = started(r#"["gemini"]"#, "");
        assert_eq!(
            s.env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"],
            "/s/hooks/gemini-settings.json"
        );
        let s = started(r#"["claude"]"#, "signals = false");
        assert_eq!(s.argv[4..], ["claude"]);
        assert!(!s.env.contains_key("VIGIL_AGENT"), "off: not even the env");
    }

    #[test]
    fn the_wrapper_keeps_the_agents_exit_status() {
        let argv = argv(&CommandLine::Shell("exit 3".into()));
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env_remove("TMUX_PANE")
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
    }
}
