//! `vigil.toml`: where it is found, what its keys mean, and every way it can be wrong.
//! Strict: an unknown key, a wrong type, a duplicate or unusable agent name, a missing
//! cwd, an empty command or a bad regex is an error that names `file:line:column` and
//! the key. Reads the file and checks directories exist; touches nothing else.

mod diagnostic;
mod load;
pub mod notify;
pub mod preset;
mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use diagnostic::Diagnostic;
use load::Loader;

pub use crate::adapters::fs::canonical;

use crate::engine::{AgentName, Fleet, FleetAgent, Patterns, Policy};

/// Parses a duration as the config writes them (`"90s"`, `"5m"`, `"1h30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    raw::Dur::parse(text)
}

/// The file looked for from the current directory upward.
pub const FILE_NAME: &str = "vigil.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no {FILE_NAME} in {} or any directory above it; run `vigil init` to write one, or pass --config FILE",
        start.display()
    )]
    NotFound { start: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

/// A command line for an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandLine {
    /// Program and arguments, run as they are (no shell).
    Argv(Vec<String>),
    /// Run with `sh -c`.
    Shell(String),
}

impl CommandLine {
    /// Bytes it takes on a command line: every argument and a separator each.
    fn byte_len(&self) -> usize {
        match self {
            CommandLine::Argv(argv) => argv.iter().map(|a| a.len() + 1).sum(),
            CommandLine::Shell(s) => s.len(),
        }
    }
}

/// One `[[agent]]`, with everything resolved.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub name: AgentName,
    pub command: CommandLine,
    /// Absolute.
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    pub preset: String,
    pub policy: Policy,
    pub patterns: Arc<Patterns>,
    /// The agent's process in its pane's tree (`process`, from the agent or its preset);
    /// `None`: the pane's own process is the agent.
    pub process: Option<regex::Regex>,
    /// How its own signals reach vigil (`vigil hook`), wired at each start; `None`:
    /// its preset offers none, or `signals = false`.
    pub signals: Option<preset::Wiring>,
    /// `signals = false`: not even the env `vigil hook` reads is set.
    pub signals_off: bool,
}

impl AgentConfig {
    /// A digest of what starting the agent runs: its command, cwd and env (names and
    /// values, in one digest, so no value can be read back from it).
    pub fn start_key(&self) -> u64 {
        let mut digest = md5::Context::new();
        let mut feed = |part: &[u8]| {
            digest.consume(part.len().to_le_bytes());
            digest.consume(part);
        };
        match &self.command {
            CommandLine::Argv(argv) => {
                feed(b"argv");
                argv.iter().for_each(|a| feed(a.as_bytes()));
            }
            CommandLine::Shell(script) => {
                feed(b"shell");
                feed(script.as_bytes());
            }
        }
        feed(self.cwd.as_os_str().as_encoded_bytes());
        for (k, v) in &self.env {
            feed(k.as_bytes());
            feed(v.as_bytes());
        }
        let bytes = digest.finalize().0;
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(first)
    }
}

/// A loaded, valid `vigil.toml`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file, as given or found.
    pub path: PathBuf,
    pub poll_interval: Duration,
    /// tmux `-L` socket name; `None` is the user's default server.
    pub socket: Option<String>,
    /// How vigil talks to tmux (`[vigil] tmux_client`); `VIGIL_TMUX_CLIENT` overrides it.
    pub tmux_client: crate::adapters::tmux::ClientKind,
    /// From the config (absolute); `VIGIL_STATE_DIR` and the XDG default are the
    /// store's business.
    pub state_dir: Option<PathBuf>,
    /// Stable id of this project: `<dir name>-<hash of the config path>`.
    pub project: String,
    /// The journal is rotated past this size, keeping `journal_keep` old files.
    pub journal_max_bytes: u64,
    pub journal_keep: usize,
    /// Automatic restarts allowed per hour across all agents.
    pub max_restarts_per_hour: u32,
    /// Where the owner rewrites the fleet's Prometheus text each pass (absolute), for
    /// node_exporter's textfile collector; `None`: nowhere.
    pub metrics_file: Option<PathBuf>,
    /// Host pressure over which a start is deferred (`max_load_per_core`,
    /// `min_free_memory`, `max_concurrent_starts`).
    pub start_limits: crate::engine::StartLimits,
    pub agents: Vec<AgentConfig>,
    /// `[notify]`: where and what to tell a human.
    pub notify: notify::NotifyConfig,
    /// Problems that do not stop the config from loading (a pattern that can never
    /// match), each located like an error; commands print them and carry on.
    pub warnings: Vec<Diagnostic>,
}

impl Config {
    /// Finds `vigil.toml` in `start` or the nearest directory above it.
    pub fn find(start: &Path) -> Result<PathBuf, ConfigError> {
        start
            .ancestors()
            .map(|dir| dir.join(FILE_NAME))
            .find(|p| p.is_file())
            .ok_or_else(|| ConfigError::NotFound {
                start: start.to_owned(),
            })
    }

    /// Reads and parses the file. A FIFO or device in its place, or a file over 1 MiB,
    /// is refused at once (never waited on); so is text that is not UTF-8.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = crate::adapters::fs::read_regular(path, MAX_CONFIG_BYTES, crate::adapters::fs::Links::Follow)
            .map_err(read)?;
        let text = String::from_utf8(bytes)
            .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error())))?;
        Self::parse(&text, path)
    }

    /// Parses `text` as the config at `path` (relative paths in it are resolved
    /// against the directory of `path`).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let loader = Loader {
            path,
            text,
            warnings: Default::default(),
        };
        loader.load().map_err(ConfigError::Invalid)
    }

    /// What the engine needs to know of the agents.
    pub fn fleet(&self) -> Fleet {
        Fleet {
            run: self.project.clone(),
            max_restarts_per_hour: self.max_restarts_per_hour,
            checkpoints: "checkpoints".into(),
            start_limits: self.start_limits,
            agents: self
                .agents
                .iter()
                .map(|a| FleetAgent {
                    name: a.name.clone(),
                    session: self.session_of(&a.name),
                    policy: a.policy.clone(),
                    patterns: a.patterns.clone(),
                    start_key: a.start_key(),
                    process: a.process.as_ref().map(|p| p.as_str().to_owned()),
                })
                .collect(),
        }
    }

    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.name.as_str() == name)
    }

    /// Every agent by name: for a walk over all panes, which would otherwise scan the
    /// agents once per pane.
    pub fn agents_by_name(&self) -> std::collections::HashMap<&str, &AgentConfig> {
        self.agents.iter().map(|a| (a.name.as_str(), a)).collect()
    }

    /// The tmux session of an agent: `<project dir>-<4 hex of the project hash>-<agent>`,
    /// short enough to type and unique per project, so `~/a/app` and `~/b/app` on one
    /// tmux server never want the same name. (vigil recognises its sessions by their
    /// tags, never by this name.)
    pub fn session_of(&self, agent: &AgentName) -> String {
        match self.project.rsplit_once('-') {
            Some((dir, hash)) => format!("{dir}-{}-{agent}", hash.get(..4).unwrap_or(hash)),
            None => format!("{}-{agent}", self.project),
        }
    }
}

/// The project id for a config file: its directory's name made tmux-safe, and a short
/// hash of its canonical path so two checkouts with the same name differ and one
/// checkout reached through a symlink does not.
fn project_id(path: &Path) -> String {
    let abs = canonical(path);
    let dir = abs
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vigil".into());
    let mut safe: String = dir
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .take(24)
        .collect();
    if safe.is_empty() {
        safe = "vigil".into();
    }
    let hash = format!("{:x}", md5::compute(abs.to_string_lossy().as_bytes()));
    format!("{safe}-{}", &hash[..8])
}

/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/tmp/proj/vigil.toml"))
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let c = parse("[[agent]]\nname = \"a\"\ncommand = [\"claude\", \"--continue\"]\ncwd = \"/tmp\"\n").unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(5));
        let a = &c.agents[0];
        assert_eq!(a.preset, "claude", "guessed from the program");
        assert_eq!(a.policy.stale_after, Duration::from_secs(3600));
        assert_eq!(a.policy.idle_checks, 3);
        assert_eq!(a.command, CommandLine::Argv(vec!["claude".into(), "--continue".into()]));
        assert!(c.project.starts_with("proj-"));
        assert_eq!(c.session_of(&a.name), format!("proj-{}-a", &c.project[5..9]));
    }

    #[test]
    fn agent_keys_override_defaults() {
        let c = parse(
            "[defaults]\nstale_after = \"10m\"\nrestart = \"always\"\n\
             [[agent]]\nname = \"a\"\ncommand = \"sleep 1\"\ncwd = \"/tmp\"\nstale_after = 30\n\
             [[agent]]\nname = \"b\"\ncommand = \"sleep 1\"\ncwd = \"/tmp\"\n",
        )
        .unwrap();
        assert_eq!(c.agents[0].policy.stale_after, Duration::from_secs(30));
        assert_eq!(c.agents[1].policy.stale_after, Duration::from_secs(600));
        assert_eq!(c.agents[1].policy.restart, crate::engine::RestartPolicy::Always);
    }

    #[test]
    fn agents_with_the_same_patterns_share_one_compiled_set() {
        let c = parse(
            "[[agent]]\nname = \"a\"\ncommand = \"x\"\ncwd = \"/tmp\"\n\
             [[agent]]\nname = \"b\"\ncommand = \"y\"\ncwd = \"/tmp\"\n\
             [[agent]]\nname = \"c\"\ncommand = \"y\"\ncwd = \"/tmp\"\nprompt = \"^>$\"\n",
        )
        .unwrap();
        assert!(Arc::ptr_eq(&c.agents[0].patterns, &c.agents[1].patterns));
        assert!(!Arc::ptr_eq(&c.agents[0].patterns, &c.agents[2].patterns));
    }

    #[test]
    fn two_checkouts_with_the_same_name_get_different_ids() {
        assert_ne!(
            project_id(Path::new("/a/app/vigil.toml")),
            project_id(Path::new("/b/app/vigil.toml"))
        );
        assert!(project_id(Path::new("/a/my.app/vigil.toml")).starts_with("my_app-"));
    }

    #[test]
    fn a_project_reached_through_a_symlink_is_the_same_project() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("svc")).unwrap();
        std::os::unix::fs::symlink(&app, dir.path().join("alias")).unwrap();
        let text = "[vigil]\nstate_dir = \"state\"\n[[agent]]\nname = \"a\"\ncommand = \"x\"\ncwd = \"svc\"\n";
        let direct = Config::parse(text, &app.join("vigil.toml")).unwrap();
        let aliased = Config::parse(text, &dir.path().join("alias/vigil.toml")).unwrap();
        assert_eq!(direct.project, aliased.project);
        assert_eq!(direct.state_dir, aliased.state_dir);
        assert_eq!(direct.agents[0].cwd, aliased.agents[0].cwd);
        assert_eq!(direct.agents[0].cwd, std::fs::canonicalize(app.join("svc")).unwrap());
    }

    #[test]
    fn text_too_long_for_tmux_is_refused_at_load() {
        let agent = |extra: &str| format!("[[agent]]\nname = \"a\"\ncommand = \"x\"\ncwd = \"/tmp\"\n{extra}\n");
        let long = "y".repeat(20_000);
        for (extra, key) in [
            (format!("env = {{ BIG = \"{long}\" }}"), "agent[0].env.BIG"),
            (format!("nudge = \"{long}\""), "agent[0].nudge"),
            (format!("resume = \"{long}\""), "agent[0].resume"),
            (format!("handoff = \"{long}\""), "agent[0].handoff"),
        ] {
            let err = parse(&agent(&extra)).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{key}`")) && err.contains("20000 bytes"),
                "{key}: {err:.300}"
            );
        }
        let many: String = (0..3).map(|i| format!("V{i} = \"{}\", ", "z".repeat(4000))).collect();
        let err = parse(&agent(&format!("env = {{ {} }}", many.trim_end_matches(", ")))).unwrap_err();
        assert!(err.to_string().contains("`agent[0].command`"), "{err}");
    }

    /// Any text, and a good config bent a few characters at a time: the loader never
    /// panics, and what it refuses it refuses with a diagnostic that points into the text.
    mod props {
        use proptest::prelude::*;

        use super::*;

        const GOOD: &str = "[vigil]\npoll_interval = \"5s\"\nsocket = \"s\"\n\n[defaults]\nrestart = \"on-failure\"\n\
            stale_after = \"1h\"\ncrash_max = 3\n\n[[agent]]\nname = \"a\"\n\
            command = [\"claude\", \"--continue\"]\ncwd = \"/tmp\"\nenv = { K = \"v\" }\nprompt = \"^> $\"\nvolatile = [\"\\\\d+s\"]\n\n\
            [[agent]]\nname = \"b\"\ncommand = \"sleep 1\"\ncwd = \"/tmp\"\nrate_limit_cooldown = 300\n";

        /// What a bent character may become: TOML's own punctuation, digits, odd text.
        const NOISE: &[char] = &[
            '"', '\'', '=', '[', ']', '{', '}', ',', '.', '#', '\\', '\n', ' ', '0', '9', '-', 'x', 'é', '\u{0}',
            '\u{7f}', '(',
        ];

        #[derive(Clone, Debug)]
        enum Bend {
            Delete(prop::sample::Index),
            Insert(prop::sample::Index, char),
            DuplicateLine(prop::sample::Index),
        }

        fn bend() -> impl Strategy<Value = Bend> {
            prop_oneof![
                any::<prop::sample::Index>().prop_map(Bend::Delete),
                (any::<prop::sample::Index>(), prop::sample::select(NOISE)).prop_map(|(i, c)| Bend::Insert(i, c)),
                any::<prop::sample::Index>().prop_map(Bend::DuplicateLine),
            ]
        }

        fn bent(bends: &[Bend]) -> String {
            let mut chars: Vec<char> = GOOD.chars().collect();
            for b in bends {
                match b {
                    Bend::Delete(i) if !chars.is_empty() => {
                        chars.remove(i.index(chars.len()));
                    }
                    Bend::Delete(_) => {}
                    Bend::Insert(i, c) => chars.insert(i.index(chars.len() + 1), *c),
                    Bend::DuplicateLine(i) => {
                        let text: String = chars.iter().collect();
                        let lines: Vec<&str> = text.split('\n').collect();
                        let at = i.index(lines.len());
                        let mut out = lines.clone();
                        out.insert(at, lines[at]);
                        chars = out.join("\n").chars().collect();
                    }
                }
            }
            chars.into_iter().collect()
        }

        fn judged(text: &str) -> Result<(), TestCaseError> {
            match parse(text) {
                Ok(c) => prop_assert!(!c.agents.is_empty()),
                Err(ConfigError::Invalid(d)) => {
                    prop_assert!(d.line >= 1 && d.line <= text.split('\n').count() + 1, "{d}");
                    prop_assert!(!d.message.is_empty());
                    prop_assert!(d.to_string().contains("vigil.toml"), "{d}");
                }
                Err(other) => prop_assert!(false, "a parse is no read: {other}"),
            }
            Ok(())
        }

        #[test]
        fn the_good_config_is_good() {
            assert!(parse(GOOD).is_ok(), "{:?}", parse(GOOD).err().map(|e| e.to_string()));
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

            #[test]
            fn a_bent_config_is_loaded_or_refused_with_a_diagnostic(bends in prop::collection::vec(bend(), 1..6)) {
                judged(&bent(&bends))?;
            }

            #[test]
            fn any_text_is_loaded_or_refused_with_a_diagnostic(text in any::<String>()) {
                judged(&text)?;
            }
        }
    }
}
