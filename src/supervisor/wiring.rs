//! Wiring an agent's own signals to `vigil hook`, per launch and never in the user's
//! files: the settings files vigil writes in its state dir (`hooks/`, 0600 in a 0700
//! dir) and the arguments and environment a start adds — Claude Code `--settings FILE`
//! (merged on top of the user's settings), Codex `-c notify=[VIGIL, "hook"]`, Gemini
//! CLI `GEMINI_CLI_SYSTEM_SETTINGS_PATH=FILE` (the machine's own system settings merged
//! in). What is written is data built with serde, never text pasted into a shell.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::adapters::fs::{Links, read_regular};
use crate::config::preset::Wiring;
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
        ..Files::default()
    };
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

impl Files {
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
    fn a_path_with_quotes_stays_one_word() {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", shell_quoted("/a b/it's;$x"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/a b/it's;$x");
    }
}
