//! Agent presets: for each known agent CLI, the regexes that tell its prompt, its busy
//! marker, a dialog waiting for a human, a rate limit, and the volatile text to strip
//! before hashing. They live in `assets/presets/*.toml`, embedded in the binary; a
//! config may override any pattern per agent. No IO here.

use serde::Deserialize;

use crate::engine::screen::{MenuRule, PatternKind};

/// The presets vigil ships, by name, with their embedded TOML.
const EMBEDDED: [(&str, &str); 5] = [
    ("claude", include_str!("../../assets/presets/claude.toml")),
    ("codex", include_str!("../../assets/presets/codex.toml")),
    ("gemini", include_str!("../../assets/presets/gemini.toml")),
    ("aider", include_str!("../../assets/presets/aider.toml")),
    ("shell", include_str!("../../assets/presets/shell.toml")),
];

/// The generic preset for any terminal program.
pub const FALLBACK: &str = "shell";

pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

/// One regex or a list of them (any may match); the form config and presets share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources(pub Vec<String>);

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Sources;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a regex string or an array of regex strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Sources, E> {
                Ok(Sources(vec![v.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sources, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Sources(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A preset as written in `assets/presets/<name>.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub description: String,
    pub prompt: Sources,
    pub busy: Sources,
    pub waiting: Sources,
    pub rate_limit: Sources,
    pub volatile: Sources,
    /// How many last non-blank lines may announce a rate limit for this agent (its
    /// input box and footer sit below its messages).
    pub rate_limit_lines: Option<usize>,
    /// Text typed when a rate-limit cooldown ends.
    pub resume: Option<String>,
    /// A regex over the process names in the pane's tree that finds the agent itself.
    pub process: Option<String>,
    /// Whether a dialog none of `waiting` lists is spotted by its shape (default `spot`).
    pub menus: Option<MenuRule>,
    /// How vigil hears the agent's own signals, per launch (none: screens only).
    pub signals: Option<Wiring>,
}

/// How an agent CLI is told, for one launch and never in the user's files, to run
/// `vigil hook` on its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wiring {
    /// Claude Code: `--settings <file>` with hooks, merged on top of the user's settings.
    ClaudeSettings,
    /// Codex: `-c notify=[vigil, hook]` (any `-c` runs Codex embedded).
    CodexNotify,
    /// Gemini CLI: `GEMINI_CLI_SYSTEM_SETTINGS_PATH` naming a settings file with hooks.
    GeminiSettings,
}

impl Wiring {
    /// The agent CLI's program name, after which its arguments go.
    pub fn program(self) -> &'static str {
        match self {
            Wiring::ClaudeSettings => "claude",
            Wiring::CodexNotify => "codex",
            Wiring::GeminiSettings => "gemini",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Wiring::ClaudeSettings => "claude-settings",
            Wiring::CodexNotify => "codex-notify",
            Wiring::GeminiSettings => "gemini-settings",
        }
    }
}

impl Preset {
    pub fn sources(&self, kind: PatternKind) -> &Sources {
        match kind {
            PatternKind::Prompt => &self.prompt,
            PatternKind::Busy => &self.busy,
            PatternKind::Waiting => &self.waiting,
            PatternKind::RateLimit => &self.rate_limit,
            PatternKind::Volatile => &self.volatile,
        }
    }
}

/// The embedded preset called `name`. An embedded preset that does not parse is a
/// build defect (a unit test parses them all); it is reported, not panicked on.
pub fn builtin(name: &str) -> Option<Result<Preset, toml::de::Error>> {
    EMBEDDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| toml::from_str(text))
}

/// The preset for a program, by the name of its executable (`claude`, `/usr/bin/codex`).
pub fn for_program(program: &str) -> &'static str {
    let base = program.rsplit('/').next().unwrap_or(program);
    names().find(|n| *n == base).unwrap_or(FALLBACK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Patterns;

    #[test]
    fn every_embedded_preset_parses_and_compiles() {
        for name in names() {
            let preset = builtin(name).unwrap().unwrap_or_else(|e| panic!("{name}: {e}"));
            for kind in PatternKind::ALL {
                Patterns::join(&preset.sources(kind).0).unwrap_or_else(|e| panic!("{name}.{}: {e}", kind.key()));
            }
        }
    }

    #[test]
    fn the_preset_is_guessed_from_the_program() {
        assert_eq!(for_program("claude"), "claude");
        assert_eq!(for_program("/usr/local/bin/codex"), "codex");
        assert_eq!(for_program("python3"), "shell");
    }
}
