//! Wiring an agent's own signals to `vigil hook`, per launch and never in the user's
//! files: the settings files vigil writes in its state dir (`hooks/`, 0600 in a 0700
//! dir) and the arguments and environment a start adds — Claude Code `--settings FILE`
//! (merged on top of the user's settings), Codex `-c notify=[VIGIL, "hook"]`, Gemini
//! CLI `GEMINI_CLI_SYSTEM_SETTINGS_PATH=FILE` (the machine's own system settings merged
//! in). A Claude Code agent gets its own settings file whose statusLine runs `vigil hook
//! --statusline` (for the rate limits it is shown), the user's own statusLine found at
//! launch and kept beside it for the wrapper to run. What is written is data built with
//! serde, never text pasted into a shell.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::adapters::fs::{Links, read_regular};
use crate::cli::statusline::{self, UserStatusLine};
use crate::config::preset::Wiring;
use crate::engine::AgentName;
use crate::store::Store;

/// Gemini CLI's own system settings file on Linux, when no env names another.
const GEMINI_SYSTEM: &str = "/etc/gemini-cli/settings.json";
/// The env var Gemini CLI reads its system settings path from.
pub const GEMINI_ENV: &str = "GEMINI_CLI_SYSTEM_SETTINGS_PATH";
/// Largest system settings file merged in.
const MAX_SETTINGS: u64 = 1024 * 1024;

/// Claude Code events vigil listens to (`vigil hook` maps them, [`crate::engine::signal`]).
const CLAUDE_EVENTS: [&str; 8] = [
    "Notification",
    "PermissionRequest",
    "Stop",
    "StopFailure",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "SessionEnd",
];
const GEMINI_EVENTS: [&str; 6] = [
    "Notification",
    "BeforeAgent",
    "AfterAgent",
    "BeforeTool",
    "AfterTool",
    "SessionEnd",
];

/// Where the wiring of this run lives, once written.
#[derive(Clone, Debug, Default)]
pub struct Files {
    /// The absolute path of this vigil binary, which the hooks run.
    pub vigil: Option<PathBuf>,
    pub claude: Option<PathBuf>,
    pub gemini: Option<PathBuf>,
    /// The command the hooks run (`'<vigil>' hook`), a shell word as Claude runs it.
    pub hook_command: Option<String>,
    /// The user's Claude Code config dir (`$CLAUDE_CONFIG_DIR`, else `~/.claude`).
    pub claude_config: Option<PathBuf>,
}

/// What a start adds for signals: arguments right after the program, and env.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Added {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Writes the settings files into `<state>/hooks/`; returns where they are and, in
/// words, what could not be wired (the agents then run on screens alone).
pub fn prepare(store: &Store, system_gemini: Option<&Path>) -> (Files, Vec<String>) {
    let mut notes = Vec::new();
    let vigil = match std::env::current_exe() {
        Ok(p) => Some(p),
        Err(e) => {
            notes.push(format!(
                "signals not wired: cannot tell where this vigil binary is ({e})"
            ));
            return (Files::default(), notes);
        }
    };
    let Some(vigil_path) = vigil.as_deref() else {
        return (Files::default(), notes);
    };
    let command = format!("{} hook", shell_quoted(&vigil_path.to_string_lossy()));
    let mut files = Files {
        vigil: vigil.clone(),
        hook_command: Some(command.clone()),
        claude_config: claude_config_dir(),
        ..Files::default()
    };
    if let Err(e) = store.limits_dir() {
        notes.push(format!("Claude Code rate limits not recorded: {e}"));
    }
    let claude = json!({ "hooks": hooks(&CLAUDE_EVENTS, &command, json!(10)) });
    match store.write_hook_file("claude-settings.json", &claude) {
        Ok(p) => files.claude = Some(p),
        Err(e) => notes.push(format!("Claude Code signals not wired: {e}")),
    }
    let system = system_gemini.map_or_else(|| PathBuf::from(GEMINI_SYSTEM), Path::to_owned);
    match gemini_settings(&system, &command) {
        Ok(settings) => match store.write_hook_file("gemini-settings.json", &settings) {
            Ok(p) => files.gemini = Some(p),
            Err(e) => notes.push(format!("Gemini CLI signals not wired: {e}")),
        },
        Err(why) => notes.push(format!("Gemini CLI signals not wired: {why}")),
    }
    (files, notes)
}

/// `{"Event": [{"hooks": [{"type": "command", "command": …, "timeout": …}]}], …}`, the
/// shape Claude Code and Gemini CLI share (Claude's timeout in seconds, Gemini's in ms).
fn hooks(events: &[&str], command: &str, timeout: Value) -> Value {
    let entry = json!([{ "hooks": [{ "type": "command", "command": command, "timeout": timeout }] }]);
    Value::Object(events.iter().map(|e| ((*e).to_owned(), entry.clone())).collect())
}

/// vigil's hooks on top of the machine's own system settings (kept whole; vigil's
/// hooks are added to any it has for the same event).
fn gemini_settings(system: &Path, command: &str) -> Result<Value, String> {
    let mut settings = match read_regular(system, MAX_SETTINGS, Links::Follow) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(format!(
                    "the machine's system settings {} are not a plain JSON object vigil can merge; they are kept as they are",
                    system.display()
                ));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => {
            return Err(format!(
                "cannot read the machine's system settings {}: {e}",
                system.display()
            ));
        }
    };
    let ours = hooks(&GEMINI_EVENTS, command, json!(10_000));
    let merged = settings.entry("hooks").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(existing) = merged else {
        return Err(format!("`hooks` in {} is not an object", system.display()));
    };
    if let Value::Object(ours) = ours {
        for (event, entries) in ours {
            match existing.entry(event).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(list) => list.extend(entries.as_array().cloned().unwrap_or_default()),
                _ => return Err(format!("a hook event in {} is not a list", system.display())),
            }
        }
    }
    Ok(Value::Object(settings))
}

/// A word the shell reads back as exactly `text`.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The user's Claude Code config dir: `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
fn claude_config_dir() -> Option<PathBuf> {
    std::env::var_os("CLAUDE_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".claude"))
        })
}

/// Largest Claude Code settings file read for the user's statusLine.
const MAX_CLAUDE_SETTINGS: u64 = 1024 * 1024;

/// The user's own Claude Code statusLine as Claude would use it in `cwd`: from the
/// user's settings (`$CLAUDE_CONFIG_DIR/settings.json`, else `~/.claude/settings.json`;
/// a link there is followed, it is the user's own dotfile), then the project's
/// `.claude/settings.json` and `.claude/settings.local.json` (regular files only, no
/// link followed: the project may not be the user's); later ones win. A file that is
/// missing, too big, not JSON or whose `statusLine` is no `{"type": "command",
/// "command": "…"}` gives none.
pub fn user_statusline(user_dir: Option<&Path>, cwd: &Path) -> Option<Map<String, Value>> {
    let mut files = Vec::new();
    if let Some(dir) = user_dir {
        files.push((dir.join("settings.json"), Links::Follow));
    }
    files.push((cwd.join(".claude/settings.json"), Links::Refuse));
    files.push((cwd.join(".claude/settings.local.json"), Links::Refuse));
    let mut found = None;
    for (path, links) in files {
        let Ok(bytes) = read_regular(&path, MAX_CLAUDE_SETTINGS, links) else {
            continue;
        };
        let Ok(Value::Object(settings)) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        match settings.get("statusLine") {
            Some(Value::Object(line))
                if line.get("type").and_then(Value::as_str) == Some("command")
                    && line
                        .get("command")
                        .and_then(Value::as_str)
                        .is_some_and(|c| !c.trim().is_empty()) =>
            {
                found = Some(line.clone());
            }
            // A later file that sets it to something else replaces it with nothing usable.
            Some(_) => found = None,
            None => {}
        }
    }
    found
}

impl Files {
    /// The wiring of one Claude Code agent starting in `cwd`: its own settings file
    /// (vigil's hooks, and a statusLine running `vigil hook --statusline` that keeps
    /// the user's other statusLine fields, `padding` and the rest), and the user's
    /// statusLine command in `hooks/statusline-<agent>.json` for the wrapper (removed
    /// when they have none). On error the shared settings (hooks only) stay in use.
    pub fn for_claude_agent(&self, store: &Store, agent: &AgentName, cwd: &Path) -> Result<Files, String> {
        let Some(command) = &self.hook_command else {
            return Err("signals not wired".into());
        };
        let user = user_statusline(self.claude_config.as_deref(), cwd);
        let user_file = statusline::user_file_name(agent);
        let mut line = user.clone().unwrap_or_default();
        line.insert("type".into(), json!("command"));
        line.insert("command".into(), json!(format!("{command} {}", statusline::FLAG)));
        match user.as_ref().and_then(|u| u.get("command")).and_then(Value::as_str) {
            Some(theirs) => {
                let keep = UserStatusLine {
                    version: 1,
                    command: theirs.to_owned(),
                };
                let value = serde_json::to_value(&keep).map_err(|e| e.to_string())?;
                store.write_hook_file(&user_file, &value).map_err(|e| e.to_string())?;
            }
            None => match std::fs::remove_file(store.path("hooks").join(&user_file)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.to_string()),
                _ => {}
            },
        }
        let settings = json!({
            "hooks": hooks(&CLAUDE_EVENTS, command, json!(10)),
            "statusLine": Value::Object(line),
        });
        let path = store
            .write_hook_file(&format!("claude-{agent}.json"), &settings)
            .map_err(|e| e.to_string())?;
        Ok(Files {
            claude: Some(path),
            ..self.clone()
        })
    }

    /// What starting an agent wired as `wiring` adds; nothing when its file could not
    /// be written, or (Claude Code, Codex) when its command is a shell string vigil
    /// cannot add arguments to.
    pub fn added(&self, wiring: Wiring, argv: bool) -> Added {
        let mut added = Added::default();
        match wiring {
            Wiring::ClaudeSettings => {
                if let (Some(file), true) = (&self.claude, argv) {
                    added.args = vec!["--settings".into(), file.to_string_lossy().into_owned()];
                }
            }
            Wiring::CodexNotify => {
                if let (Some(vigil), true) = (&self.vigil, argv) {
                    let list = toml::Value::Array(vec![
                        toml::Value::String(vigil.to_string_lossy().into_owned()),
                        toml::Value::String("hook".into()),
                    ]);
                    added.args = vec!["-c".into(), format!("notify={list}")];
                }
            }
            Wiring::GeminiSettings => {
                if let Some(file) = &self.gemini {
                    added.env = vec![(GEMINI_ENV.into(), file.to_string_lossy().into_owned())];
                }
            }
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        (dir, store)
    }

    #[test]
    fn the_settings_files_run_this_vigil_and_are_private() {
        let (dir, store) = store();
        let (files, notes) = prepare(&store, Some(&dir.path().join("none.json")));
        assert!(notes.is_empty(), "{notes:?}");
        let claude = files.claude.clone().unwrap();
        let mode = std::fs::metadata(&claude).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let json: Value = serde_json::from_slice(&std::fs::read(&claude).unwrap()).unwrap();
        let command = json["hooks"]["Notification"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(command, format!("'{}' hook", exe.display()));
        let added = files.added(Wiring::ClaudeSettings, true);
        assert_eq!(
            added.args,
            ["--settings".to_owned(), claude.to_string_lossy().into_owned()]
        );
        assert!(
            files.added(Wiring::ClaudeSettings, false).args.is_empty(),
            "a shell string is left alone"
        );
        let codex = files.added(Wiring::CodexNotify, true);
        let value: toml::Table = toml::from_str(&codex.args[1]).unwrap();
        assert_eq!(
            value["notify"],
            toml::Value::Array(vec![exe.to_string_lossy().into_owned().into(), "hook".into()])
        );
        let gemini = files.added(Wiring::GeminiSettings, false);
        assert_eq!(gemini.env[0].0, GEMINI_ENV);
    }

    #[test]
    fn the_machines_gemini_system_settings_are_kept() {
        let (dir, store) = store();
        let system = dir.path().join("system.json");
        std::fs::write(
            &system,
            r#"{"security": {"auth": {"selectedType": "oauth"}}, "hooks": {"BeforeTool": [{"hooks": [{"type": "command", "command": "audit"}]}]}}"#,
        )
        .unwrap();
        let (files, notes) = prepare(&store, Some(&system));
        assert!(notes.is_empty(), "{notes:?}");
        let json: Value = serde_json::from_slice(&std::fs::read(files.gemini.unwrap()).unwrap()).unwrap();
        assert_eq!(json["security"]["auth"]["selectedType"], "oauth");
        let before = json["hooks"]["BeforeTool"].as_array().unwrap();
        assert_eq!(before.len(), 2);
        assert_eq!(before[0]["hooks"][0]["command"], "audit");
        std::fs::write(&system, "// a comment\n{}").unwrap();
        let (files, notes) = prepare(&store, Some(&system));
        assert!(files.gemini.is_none());
        assert!(notes[0].contains("kept as they are"), "{notes:?}");
    }

    #[test]
    fn a_claude_agents_statusline_wraps_the_users_and_keeps_its_fields() {
        let (dir, store) = store();
        let (mut files, _) = prepare(&store, Some(&dir.path().join("none.json")));
        files.claude_config = Some(dir.path().join("home-claude"));
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join(".claude")).unwrap();
        std::fs::write(
            project.join(".claude/settings.json"),
            r#"{"statusLine": {"type": "command", "command": "echo project", "padding": 2}}"#,
        )
        .unwrap();
        let name = AgentName::new("a").unwrap();
        let own = files.for_claude_agent(&store, &name, &project).unwrap();
        let settings: Value = serde_json::from_slice(&std::fs::read(own.claude.unwrap()).unwrap()).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            settings["statusLine"],
            json!({"type": "command", "command": format!("'{}' hook --statusline", exe.display()), "padding": 2})
        );
        assert!(settings["hooks"]["Stop"].is_array());
        let kept = store.path("hooks").join("statusline-a.json");
        let user: UserStatusLine = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
        assert_eq!(user.command, "echo project");
        // The local file wins; a linked one is not followed.
        std::fs::write(
            dir.path().join("elsewhere.json"),
            r#"{"statusLine": {"type": "command", "command": "echo linked"}}"#,
        )
        .unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("elsewhere.json"),
            project.join(".claude/settings.local.json"),
        )
        .unwrap();
        assert_eq!(user_statusline(None, &project).unwrap()["command"], "echo project");
        std::fs::remove_file(project.join(".claude/settings.local.json")).unwrap();
        std::fs::write(
            project.join(".claude/settings.local.json"),
            r#"{"statusLine": {"type": "command", "command": "echo local"}}"#,
        )
        .unwrap();
        assert_eq!(user_statusline(None, &project).unwrap()["command"], "echo local");
        // None at all: the wrapper has nothing to run.
        std::fs::remove_dir_all(project.join(".claude")).unwrap();
        let own = files.for_claude_agent(&store, &name, &project).unwrap();
        let settings: Value = serde_json::from_slice(&std::fs::read(own.claude.unwrap()).unwrap()).unwrap();
        assert!(settings["statusLine"].get("padding").is_none());
        assert!(!kept.exists());
    }

    #[test]
    fn a_path_with_quotes_stays_one_word() {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", shell_quoted("/a b/it's;$x"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/a b/it's;$x");
    }
}
