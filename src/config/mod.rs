//! `vigil.toml`: where it is found, what its keys mean, and every way it can be wrong.
//! Strict: an unknown key, a wrong type, a duplicate or unusable agent name, a missing
//! cwd, an empty command or a bad regex is an error that names `file:line:column` and
//! the key. Reads the file and checks directories exist; touches nothing else.

mod diagnostic;
pub mod preset;
mod raw;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

pub use diagnostic::Diagnostic;
use diagnostic::{did_you_mean, parse_unknown};
use raw::{RawAgent, RawCommand, RawConfig, Tuning};

use crate::engine::screen::PatternKind;
use crate::engine::{AgentName, Fleet, FleetAgent, Patterns, Policy};
use preset::{Preset, Sources};

/// Parses a duration as the config writes them (`"90s"`, `"5m"`, `"1h30m"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    raw::Dur::parse(text)
}

/// The file looked for from the current directory upward.
pub const FILE_NAME: &str = "vigil.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no {FILE_NAME} in {} or any directory above it; write one (see config.example.toml) or pass --config FILE",
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
}

/// A loaded, valid `vigil.toml`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file, as given or found.
    pub path: PathBuf,
    pub poll_interval: Duration,
    /// tmux `-L` socket name; `None` is the user's default server.
    pub socket: Option<String>,
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
    pub agents: Vec<AgentConfig>,
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
        let loader = Loader { path, text };
        loader.load().map_err(ConfigError::Invalid)
    }

    /// What the engine needs to know of the agents.
    pub fn fleet(&self) -> Fleet {
        Fleet {
            run: self.project.clone(),
            max_restarts_per_hour: self.max_restarts_per_hour,
            checkpoints: "checkpoints".into(),
            agents: self
                .agents
                .iter()
                .map(|a| FleetAgent {
                    name: a.name.clone(),
                    session: self.session_of(&a.name),
                    policy: a.policy.clone(),
                    patterns: a.patterns.clone(),
                })
                .collect(),
        }
    }

    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.name.as_str() == name)
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

/// `path` with every symlink resolved, so that one project reached through two paths
/// (`app` and `alias -> app`) is one project with one state dir and one lock. The part of
/// the path that does not exist yet (a state dir about to be made) is kept as written,
/// after the longest prefix that does exist has been resolved.
pub fn canonical(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut missing = Vec::new();
    let mut existing = abs.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return missing.iter().rev().fold(real, |p: PathBuf, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => return abs,
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

/// Longest env value, and longest command with its env, that fit in one tmux command
/// (tmux's own messages carry at most 16 KiB, with room kept for vigil's tags).
const MAX_ENV_VALUE: usize = 4096;
const MAX_COMMAND: usize = 8192;
/// Longest text (nudge, resume, handoff template) typed into a pane in one go.
const MAX_TYPED: usize = 2048;

/// A name `tmux -L` turns into a socket file of its own: no path, no `.`/`..`.
fn usable_socket(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

struct Loader<'a> {
    path: &'a Path,
    text: &'a str,
}

type Result2<T> = std::result::Result<T, Box<Diagnostic>>;

impl Loader<'_> {
    fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Box<Diagnostic> {
        Box::new(Diagnostic::new(
            self.path,
            self.text,
            span,
            Some(key.into()),
            message.into(),
        ))
    }

    fn load(&self) -> Result2<Config> {
        let raw = self.deserialize()?;
        let base = self.base_dir();
        let poll_interval = match &raw.vigil.poll_interval {
            Some(p) if p.get_ref().0 < Duration::from_millis(50) => {
                return Err(self.error(
                    Some(p.span()),
                    "vigil.poll_interval",
                    "poll interval must be at least 50ms",
                ));
            }
            Some(p) => p.get_ref().0,
            None => Duration::from_secs(5),
        };
        let socket = match &raw.vigil.socket {
            Some(s) if !usable_socket(s.get_ref()) => {
                return Err(self.error(
                    Some(s.span()),
                    "vigil.socket",
                    "a tmux socket name must be 1 to 64 ASCII letters, digits, `-`, `_` or `.`, not starting with `.` (it is passed as `tmux -L NAME` and names a file)",
                ));
            }
            s => s.as_ref().map(|s| s.get_ref().clone()),
        };
        let state_dir = raw.vigil.state_dir.as_ref().map(|s| canonical(&base.join(s.get_ref())));
        if raw.agent.is_empty() {
            return Err(self.error(
                None,
                "agent",
                "no agents: add at least one [[agent]] table with a `name` and a `command`",
            ));
        }
        let defaults = raw.defaults.clone();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cache: HashMap<Vec<Vec<String>>, Arc<Patterns>> = HashMap::new();
        let mut agents = Vec::new();
        for (i, agent) in raw.agent.iter().enumerate() {
            let key = format!("agent[{i}]");
            let name_text = agent.name.get_ref();
            let name = AgentName::new(name_text).ok_or_else(|| {
                self.error(
                    Some(agent.name.span()),
                    format!("{key}.name"),
                    format!(
                        "agent name `{name_text}` cannot be used: it names a tmux session and files, so use 1 to {} ASCII letters, digits, `-` or `_`",
                        AgentName::MAX_LEN
                    ),
                )
            })?;
            if let Some(first) = seen.insert(name_text.clone(), agent.name.span().start) {
                let first_line = self.text[..first].matches('\n').count() + 1;
                return Err(self.error(
                    Some(agent.name.span()),
                    format!("{key}.name"),
                    format!("duplicate agent name `{name_text}` (first defined on line {first_line}); agent names must be unique"),
                ));
            }
            agents.push(self.agent(&key, agent, name, &defaults, &base, &mut cache)?);
        }
        Ok(Config {
            path: self.path.to_owned(),
            poll_interval,
            socket,
            state_dir,
            project: project_id(self.path),
            journal_max_bytes: self.count(&raw.vigil.journal_max_mb, "vigil.journal_max_mb", 1..=4096, 16)?
                * 1024
                * 1024,
            journal_keep: self.count(&raw.vigil.journal_keep, "vigil.journal_keep", 1..=100, 4)?,
            max_restarts_per_hour: self.count(
                &raw.vigil.max_restarts_per_hour,
                "vigil.max_restarts_per_hour",
                1..=100_000,
                crate::engine::policy::FLEET_RESTARTS_PER_HOUR,
            )?,
            agents,
        })
    }

    /// A whole number within `range`, or `default` when absent; anything else is an
    /// error naming the key and the range.
    fn count<T: TryFrom<i64>>(
        &self,
        value: &Option<Spanned<raw::Count>>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        default: T,
    ) -> Result2<T> {
        let Some(v) = value else { return Ok(default) };
        let n = v.get_ref().0;
        match T::try_from(n) {
            Ok(t) if range.contains(&n) => Ok(t),
            _ => Err(self.error(
                Some(v.span()),
                key,
                format!(
                    "expected a whole number from {} to {}, found {n}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// The canonical directory of the config file: relative paths in it start here.
    fn base_dir(&self) -> PathBuf {
        canonical(self.path).parent().map(Path::to_owned).unwrap_or_default()
    }

    fn deserialize(&self) -> Result2<RawConfig> {
        let de = toml::Deserializer::parse(self.text).map_err(|e| {
            Box::new(Diagnostic::new(
                self.path,
                self.text,
                e.span(),
                None,
                e.message().to_owned(),
            ))
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string().replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let message = inner.message().to_owned();
            let help = parse_unknown(&message)
                .and_then(|(word, expected)| did_you_mean(&word, expected.iter().map(String::as_str)));
            let key = (!path.is_empty() && path != ".").then_some(path);
            Box::new(Diagnostic::new(self.path, self.text, inner.span(), key, message)).with_help(help)
        })
    }

    fn agent(
        &self,
        key: &str,
        raw: &RawAgent,
        name: AgentName,
        defaults: &Tuning,
        base: &Path,
        cache: &mut HashMap<Vec<Vec<String>>, Arc<Patterns>>,
    ) -> Result2<AgentConfig> {
        let command = match raw.command.get_ref() {
            RawCommand::Shell(s) if s.trim().is_empty() => None,
            RawCommand::Shell(s) => Some(CommandLine::Shell(s.clone())),
            RawCommand::Argv(argv) if argv.first().is_none_or(|p| p.trim().is_empty()) => None,
            RawCommand::Argv(argv) => Some(CommandLine::Argv(argv.clone())),
        }
        .ok_or_else(|| {
            self.error(
                Some(raw.command.span()),
                format!("{key}.command"),
                "the command is empty; give the program to run, e.g. command = [\"claude\", \"--continue\"]",
            )
        })?;

        let cwd = match &raw.cwd {
            None => base.to_owned(),
            Some(cwd) => {
                let dir = base.join(cwd.get_ref());
                if !dir.is_dir() {
                    return Err(self.error(
                        Some(cwd.span()),
                        format!("{key}.cwd"),
                        format!(
                            "no such directory `{}` (relative paths start at the directory of {})",
                            cwd.get_ref(),
                            self.path
                                .file_name()
                                .map_or_else(|| self.path.display().to_string(), |f| f.to_string_lossy().into_owned())
                        ),
                    ));
                }
                canonical(&dir)
            }
        };

        let mut env = BTreeMap::new();
        for (var, value) in &raw.env {
            if var.is_empty() || var.contains('=') || var.contains('\0') || value.get_ref().contains('\0') {
                return Err(self.error(
                    Some(value.span()),
                    format!("{key}.env.{var}"),
                    "an environment variable needs a name without `=` and a value without NUL bytes",
                ));
            }
            if value.get_ref().len() > MAX_ENV_VALUE {
                return Err(self.error(
                    Some(value.span()),
                    format!("{key}.env.{var}"),
                    format!(
                        "this value is {} bytes; at most {MAX_ENV_VALUE} fit through tmux (put a long value in a file and pass its path)",
                        value.get_ref().len()
                    ),
                ));
            }
            env.insert(var.clone(), value.get_ref().clone());
        }
        let size = command.byte_len() + env.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>();
        if size > MAX_COMMAND {
            return Err(self.error(
                Some(raw.command.span()),
                format!("{key}.command"),
                format!("the command and env come to {size} bytes; at most {MAX_COMMAND} fit through tmux"),
            ));
        }

        let preset_name = match &raw.preset {
            Some(p) => {
                let wanted = p.get_ref();
                if !preset::names().any(|n| n == wanted) {
                    let known: Vec<&str> = preset::names().collect();
                    return Err(self
                        .error(
                            Some(p.span()),
                            format!("{key}.preset"),
                            format!(
                                "unknown preset `{wanted}`, expected one of {}",
                                known.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                            ),
                        )
                        .with_help(did_you_mean(wanted, known)));
                }
                wanted.clone()
            }
            None => match &command {
                CommandLine::Argv(argv) => preset::for_program(&argv[0]).to_owned(),
                CommandLine::Shell(s) => preset::for_program(s.split_whitespace().next().unwrap_or("")).to_owned(),
            },
        };
        let preset = match preset::builtin(&preset_name) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                return Err(self.error(
                    None,
                    format!("{key}.preset"),
                    format!("built-in preset `{preset_name}` is broken: {e}"),
                ));
            }
            None => return Err(self.error(None, format!("{key}.preset"), format!("unknown preset `{preset_name}`"))),
        };

        let tuning = raw.tuning().over(defaults.clone());
        let policy = self.policy(key, &tuning, &preset)?;
        let patterns = self.patterns(key, raw, &preset, cache)?;
        Ok(AgentConfig {
            name,
            command,
            cwd,
            env,
            preset: preset_name,
            policy,
            patterns,
        })
    }

    fn policy(&self, key: &str, t: &Tuning, preset: &Preset) -> Result2<Policy> {
        let d = Policy::default();
        let count = |v: &Option<Spanned<raw::Count>>, field: &str, min: i64, max: i64, default: i64| -> Result2<i64> {
            match v {
                None => Ok(default),
                Some(s) if (min..=max).contains(&s.get_ref().0) => Ok(s.get_ref().0),
                Some(s) => Err(self.error(
                    Some(s.span()),
                    format!("{key}.{field}"),
                    format!("expected a whole number from {min} to {max}, found {}", s.get_ref().0),
                )),
            }
        };
        let dur = |v: &Option<Spanned<raw::Dur>>, field: &str, default: Duration| -> Result2<Duration> {
            match v {
                None => Ok(default),
                Some(s) if s.get_ref().0.is_zero() => Err(self.error(
                    Some(s.span()),
                    format!("{key}.{field}"),
                    "expected a duration longer than zero",
                )),
                Some(s) => Ok(s.get_ref().0),
            }
        };
        let text = |v: &Option<Spanned<String>>, field: &str, default: String| -> Result2<String> {
            match v {
                None => Ok(default),
                Some(s) if s.get_ref().len() > MAX_TYPED => Err(self.error(
                    Some(s.span()),
                    format!("{key}.{field}"),
                    format!(
                        "this text is {} bytes; vigil types at most {MAX_TYPED} into a pane",
                        s.get_ref().len()
                    ),
                )),
                Some(s) => Ok(s.get_ref().clone()),
            }
        };
        let preset_lines = preset.rate_limit_lines.unwrap_or(d.rate_limit_lines) as i64;
        Ok(Policy {
            restart: t.restart.as_ref().map_or(d.restart, |r| *r.get_ref()),
            tail_lines: count(&t.tail_lines, "tail_lines", 1, 1000, d.tail_lines as i64)? as usize,
            idle_checks: count(&t.idle_checks, "idle_checks", 1, 1000, i64::from(d.idle_checks))? as u32,
            stale_after: dur(&t.stale_after, "stale_after", d.stale_after)?,
            rate_limit_lines: count(&t.rate_limit_lines, "rate_limit_lines", 1, 1000, preset_lines)? as usize,
            rate_limit_cooldown: dur(&t.rate_limit_cooldown, "rate_limit_cooldown", d.rate_limit_cooldown)?,
            crash_window: dur(&t.crash_window, "crash_window", d.crash_window)?,
            crash_max: count(&t.crash_max, "crash_max", 1, 1000, i64::from(d.crash_max))? as u32,
            crash_cooldown: dur(&t.crash_cooldown, "crash_cooldown", d.crash_cooldown)?,
            nudge: text(&t.nudge, "nudge", d.nudge)?,
            resume: text(&t.resume, "resume", preset.resume.clone().unwrap_or(d.resume))?,
            rate_limit_margin: match &t.rate_limit_margin {
                Some(s) => s.get_ref().0,
                None => d.rate_limit_margin,
            },
            warn_after: dur(&t.warn_after, "warn_after", d.warn_after)?,
            nudge_after: dur(&t.nudge_after, "nudge_after", d.nudge_after)?,
            triage_after: dur(&t.triage_after, "triage_after", d.triage_after)?,
            stable_after: dur(&t.stable_after, "stable_after", d.stable_after)?,
            triage: match &t.triage {
                None => None,
                Some(c) => Some(self.command_argv(c, &format!("{key}.triage"))?),
            },
            triage_timeout: dur(&t.triage_timeout, "triage_timeout", d.triage_timeout)?,
            handoff: text(&t.handoff, "handoff", d.handoff)?,
        })
    }

    /// A command as the argv that runs it (a string runs with `sh -c`); empty is an error.
    fn command_argv(&self, c: &Spanned<RawCommand>, key: &str) -> Result2<Vec<String>> {
        match c.get_ref() {
            RawCommand::Shell(s) if !s.trim().is_empty() => Ok(vec!["sh".into(), "-c".into(), s.clone()]),
            RawCommand::Argv(argv) if argv.first().is_some_and(|p| !p.trim().is_empty()) => Ok(argv.clone()),
            _ => Err(self.error(
                Some(c.span()),
                key,
                "the command is empty; give the program to run, e.g. triage = [\"./triage.sh\"]",
            )),
        }
    }

    /// The preset's patterns with the agent's overrides, compiled once per distinct set.
    fn patterns(
        &self,
        key: &str,
        raw: &RawAgent,
        preset: &Preset,
        cache: &mut HashMap<Vec<Vec<String>>, Arc<Patterns>>,
    ) -> Result2<Arc<Patterns>> {
        let overrides: [(PatternKind, &Option<Spanned<Sources>>); 5] = [
            (PatternKind::Prompt, &raw.prompt),
            (PatternKind::Busy, &raw.busy),
            (PatternKind::Waiting, &raw.waiting),
            (PatternKind::RateLimit, &raw.rate_limit),
            (PatternKind::Volatile, &raw.volatile),
        ];
        let chosen: Vec<(PatternKind, &Sources, Option<std::ops::Range<usize>>)> = overrides
            .iter()
            .map(|(kind, o)| match o {
                Some(s) => (*kind, s.get_ref(), Some(s.span())),
                None => (*kind, preset.sources(*kind), None),
            })
            .collect();
        let cache_key: Vec<Vec<String>> = chosen.iter().map(|(_, s, _)| s.0.clone()).collect();
        if let Some(hit) = cache.get(&cache_key) {
            return Ok(hit.clone());
        }
        let mut patterns = Patterns::default();
        for (kind, sources, span) in chosen {
            let regex = Patterns::join(&sources.0).map_err(|e| {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or("").trim();
                let first_line = last.strip_prefix("error: ").unwrap_or(last).to_owned();
                self.error(
                    span,
                    format!("{key}.{}", kind.key()),
                    format!("invalid regex: {first_line}"),
                )
            })?;
            patterns.set(kind, regex);
        }
        let patterns = Arc::new(patterns);
        cache.insert(cache_key, patterns.clone());
        Ok(patterns)
    }
}

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
}
