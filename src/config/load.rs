//! From `vigil.toml`'s text to a [`Config`]: every key checked for its type, range and
//! meaning, relative paths resolved (canonically) against the config's directory, the
//! preset chosen and its patterns compiled. Each problem is one [`Diagnostic`] naming
//! `file:line:column` and the key. Reads nothing but the directories it checks exist.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::diagnostic::{Diagnostic, did_you_mean, parse_unknown};
use super::preset::{self, Preset, Sources};
use super::raw::{self, RawAgent, RawCommand, RawConfig, Tuning};
use super::{AgentConfig, CommandLine, Config, canonical, project_id};
use crate::engine::screen::PatternKind;
use crate::engine::{AgentName, Centi, Patterns, Policy, StartLimits};

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

pub(super) struct Loader<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    /// Collected while loading; handed to the [`Config`].
    pub(super) warnings: std::cell::RefCell<Vec<Diagnostic>>,
}

pub(super) type Result2<T> = std::result::Result<T, Box<Diagnostic>>;

impl Loader<'_> {
    pub(super) fn error(
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

    pub(super) fn load(&self) -> Result2<Config> {
        let raw = self.deserialize()?;
        let base = self.base_dir();
        let poll_interval = self.poll_interval(&raw)?;
        let socket = self.socket(&raw)?;
        let tmux_client = self.tmux_client(&raw)?;
        let state_dir = self.state_dir(&raw, &base)?;
        let metrics_file = self.metrics_file(&raw, &base)?;
        if raw.agent.is_empty() {
            return Err(self.error(
                None,
                "agent",
                "no agents: add at least one [[agent]] table with a `name` and a `command`",
            ));
        }
        let agents = self.agents(&raw, &base)?;
        Ok(Config {
            path: self.path.to_owned(),
            poll_interval,
            socket,
            tmux_client,
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
            metrics_file,
            start_limits: self.start_limits(&raw)?,
            agents,
            notify: self.notify(&raw.notify)?,
            warnings: self.warnings.take(),
        })
    }

    /// `[vigil] poll_interval`: at least 50 ms; 5 s when absent.
    fn poll_interval(&self, raw: &RawConfig) -> Result2<Duration> {
        Ok(match &raw.vigil.poll_interval {
            Some(p) if p.get_ref().0 < Duration::from_millis(50) => {
                return Err(self.error(
                    Some(p.span()),
                    "vigil.poll_interval",
                    "poll interval must be at least 50ms",
                ));
            }
            Some(p) => p.get_ref().0,
            None => Duration::from_secs(5),
        })
    }

    /// `[vigil] max_load_per_core`, `min_free_memory`, `max_concurrent_starts`: what
    /// host pressure defers a start; the defaults never hold back a normal laptop.
    fn start_limits(&self, raw: &RawConfig) -> Result2<StartLimits> {
        let d = StartLimits::default();
        let load = match &raw.vigil.max_load_per_core {
            None => d.max_load_per_core,
            Some(v) if v.get_ref().0.is_finite() && (0.01..=1000.0).contains(&v.get_ref().0) => {
                Some(Centi::from_f64(v.get_ref().0))
            }
            Some(v) => {
                return Err(self.error(
                    Some(v.span()),
                    "vigil.max_load_per_core",
                    format!(
                        "expected a load per core from 0.01 to 1000 (e.g. 4 or 1.5), found {}",
                        v.get_ref().0
                    ),
                ));
            }
        };
        let memory = raw
            .vigil
            .min_free_memory
            .as_ref()
            .map_or(d.min_free_memory, |m| Some(m.get_ref().0));
        let default_starts = d.max_concurrent_starts.unwrap_or(u32::MAX);
        let starts = self.count(
            &raw.vigil.max_concurrent_starts,
            "vigil.max_concurrent_starts",
            1..=100_000,
            default_starts,
        )?;
        Ok(StartLimits {
            max_load_per_core: load,
            min_free_memory: memory,
            max_concurrent_starts: Some(starts),
        })
    }

    /// `[vigil] socket`: a plain name `tmux -L` can take.
    fn socket(&self, raw: &RawConfig) -> Result2<Option<String>> {
        Ok(match &raw.vigil.socket {
            Some(s) if !usable_socket(s.get_ref()) => {
                return Err(self.error(
                    Some(s.span()),
                    "vigil.socket",
                    "a tmux socket name must be 1 to 64 ASCII letters, digits, `-`, `_` or `.`, not starting with `.` (it is passed as `tmux -L NAME` and names a file)",
                ));
            }
            s => s.as_ref().map(|s| s.get_ref().clone()),
        })
    }

    /// `[vigil] tmux_client`: `control` (the default) or `cli`.
    fn tmux_client(&self, raw: &RawConfig) -> Result2<crate::adapters::tmux::ClientKind> {
        use crate::adapters::tmux::ClientKind;
        match &raw.vigil.tmux_client {
            None => Ok(ClientKind::default()),
            Some(k) => ClientKind::parse(k.get_ref()).ok_or_else(|| {
                self.error(
                    Some(k.span()),
                    "vigil.tmux_client",
                    "expected `control` (one long-lived `tmux -C` client) or `cli` (a `tmux` process per call)",
                )
            }),
        }
    }

    /// `[vigil] state_dir`, canonical; never empty or `/`.
    fn state_dir(&self, raw: &RawConfig, base: &Path) -> Result2<Option<PathBuf>> {
        Ok(match &raw.vigil.state_dir {
            None => None,
            Some(s) => {
                let dir = canonical(&base.join(s.get_ref()));
                if s.get_ref().trim().is_empty() || dir.parent().is_none() {
                    return Err(self.error(
                        Some(s.span()),
                        "vigil.state_dir",
                        "the state dir must be a directory of its own (not empty, not `/`); vigil makes it owner-only",
                    ));
                }
                Some(dir)
            }
        })
    }

    /// `[vigil] metrics_file`: a file (relative to the config's directory) whose
    /// directory must exist by the time the owner writes it; never a directory.
    fn metrics_file(&self, raw: &RawConfig, base: &Path) -> Result2<Option<PathBuf>> {
        let Some(m) = &raw.vigil.metrics_file else {
            return Ok(None);
        };
        let text = m.get_ref();
        let path = base.join(text);
        let named = Path::new(text).file_name().is_some() && !text.ends_with('/');
        if text.trim().is_empty() || !named || path.is_dir() {
            return Err(self.error(
                Some(m.span()),
                "vigil.metrics_file",
                "metrics_file must name a file (e.g. \"/var/lib/node_exporter/textfile/vigil.prom\"), not a directory",
            ));
        }
        Ok(Some(path))
    }

    /// Every `[[agent]]`, each name usable and unique.
    fn agents(&self, raw: &RawConfig, base: &Path) -> Result2<Vec<AgentConfig>> {
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
            agents.push(self.agent(&key, agent, name, &defaults, base, &mut cache)?);
        }
        Ok(agents)
    }

    /// A whole number within `range`, or `default` when absent; anything else is an
    /// error naming the key and the range.
    pub(super) fn count<T: TryFrom<i64>>(
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
        let command = self.command(key, raw)?;
        let cwd = self.cwd(key, raw, base)?;
        let env = self.env(key, raw, &command)?;
        let preset_name = self.preset_name(key, raw, &command)?;
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
        let process = self.process(key, raw, &preset)?;
        // `signals = true` on the agent itself asks for wiring its preset must have; in
        // `[defaults]` it means "where the preset has some".
        let signals = match &tuning.signals {
            Some(on) if *on.get_ref() && preset.signals.is_none() && raw.signals.is_some() => {
                return Err(self.error(
                    Some(on.span()),
                    format!("{key}.signals"),
                    format!(
                        "preset `{preset_name}` has no signals to wire (claude, codex and gemini do); remove `signals = true`"
                    ),
                ));
            }
            Some(on) if !*on.get_ref() => None,
            _ => preset.signals,
        };
        Ok(AgentConfig {
            name,
            command,
            cwd,
            env,
            preset: preset_name,
            policy,
            patterns,
            process,
            signals,
            signals_off: tuning.signals.as_ref().is_some_and(|on| !*on.get_ref()),
        })
    }

    /// `process`: the agent's own regex, else its preset's; matched against the names of
    /// the processes in its pane's tree.
    fn process(&self, key: &str, raw: &RawAgent, preset: &Preset) -> Result2<Option<regex::Regex>> {
        let (source, span) = match (&raw.process, &preset.process) {
            (Some(p), _) => (p.get_ref().clone(), Some(p.span())),
            (None, Some(p)) => (p.clone(), None),
            (None, None) => return Ok(None),
        };
        if source.trim().is_empty() {
            return Err(self.error(
                span,
                format!("{key}.process"),
                "the process pattern is empty; name the agent's process, e.g. process = \"claude\"",
            ));
        }
        regex::Regex::new(&source).map(Some).map_err(|e| {
            let text = e.to_string();
            let last = text.lines().last().unwrap_or("").trim();
            let first_line = last.strip_prefix("error: ").unwrap_or(last).to_owned();
            self.error(span, format!("{key}.process"), format!("invalid regex: {first_line}"))
        })
    }

    fn command(&self, key: &str, raw: &RawAgent) -> Result2<CommandLine> {
        match raw.command.get_ref() {
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
        })
    }

    /// The agent's working directory, canonical; it must exist.
    fn cwd(&self, key: &str, raw: &RawAgent, base: &Path) -> Result2<PathBuf> {
        let Some(cwd) = &raw.cwd else {
            return Ok(base.to_owned());
        };
        let dir = base.join(cwd.get_ref());
        if !dir.is_dir() {
            let file = self
                .path
                .file_name()
                .map_or_else(|| self.path.display().to_string(), |f| f.to_string_lossy().into_owned());
            return Err(self.error(
                Some(cwd.span()),
                format!("{key}.cwd"),
                format!(
                    "no such directory `{}` (relative paths start at the directory of {file})",
                    cwd.get_ref()
                ),
            ));
        }
        Ok(canonical(&dir))
    }

    /// The agent's environment, each value small enough to reach it through tmux.
    fn env(&self, key: &str, raw: &RawAgent, command: &CommandLine) -> Result2<BTreeMap<String, String>> {
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
        Ok(env)
    }

    /// The preset asked for, or the one guessed from the program.
    fn preset_name(&self, key: &str, raw: &RawAgent, command: &CommandLine) -> Result2<String> {
        let Some(p) = &raw.preset else {
            return Ok(match command {
                CommandLine::Argv(argv) => preset::for_program(&argv[0]).to_owned(),
                CommandLine::Shell(s) => preset::for_program(s.split_whitespace().next().unwrap_or("")).to_owned(),
            });
        };
        let wanted = p.get_ref();
        if preset::names().any(|n| n == wanted) {
            return Ok(wanted.clone());
        }
        let known: Vec<&str> = preset::names().collect();
        Err(self
            .error(
                Some(p.span()),
                format!("{key}.preset"),
                format!(
                    "unknown preset `{wanted}`, expected one of {}",
                    known.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
            )
            .with_help(did_you_mean(wanted, known)))
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
            busy_cpu: count(&t.busy_cpu, "busy_cpu", 1, 10_000, i64::from(d.busy_cpu))? as u32,
            signal_fresh: dur(&t.signal_fresh, "signal_fresh", d.signal_fresh)?,
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

    /// A pattern that needs whitespace just before `$` can never match: lines are
    /// compared with trailing spaces removed (tmux trims them). Warned, with the fix.
    fn warn_trailing_whitespace(&self, key: &str, sources: &Sources, span: Option<std::ops::Range<usize>>) {
        for source in &sources.0 {
            let Some(fixed) = without_trailing_whitespace(source) else {
                continue;
            };
            let message = format!(
                "the pattern `{source}` can never match: vigil matches each line with its trailing \
                 spaces removed (tmux trims them), so no whitespace is left before `$`"
            );
            let help = format!("write `{fixed}` instead");
            self.warnings.borrow_mut().push(
                *Box::new(Diagnostic::new(
                    self.path,
                    self.text,
                    span.clone(),
                    Some(key.to_owned()),
                    message,
                ))
                .with_help(Some(help)),
            );
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
        for (kind, sources, span) in &chosen {
            if span.is_some() {
                self.warn_trailing_whitespace(&format!("{key}.{}", kind.key()), sources, span.clone());
            }
        }
        let menus = raw
            .menus
            .as_ref()
            .map(|m| *m.get_ref())
            .or(preset.menus)
            .unwrap_or_default();
        let mut cache_key: Vec<Vec<String>> = chosen.iter().map(|(_, s, _)| s.0.clone()).collect();
        cache_key.push(vec![format!("{menus:?}")]);
        if let Some(hit) = cache.get(&cache_key) {
            return Ok(hit.clone());
        }
        let mut patterns = Patterns {
            menus,
            ..Patterns::default()
        };
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

/// Whitespace a regex may require right before its final `$`.
const TRAILING_WHITESPACE: [&str; 8] = [" +", "\\s+", "\\t+", "[ ]+", " ", "\\s", "\\t", "[ ]"];

/// `pattern` (or one `|` branch of it) with the whitespace it requires before its end
/// anchor removed, when it requires some; `None` when it can match a trimmed line.
fn without_trailing_whitespace(pattern: &str) -> Option<String> {
    let mut changed = false;
    let branches: Vec<String> = pattern
        .split('|')
        .map(|branch| {
            let Some(body) = branch.strip_suffix('$').filter(|b| !b.ends_with('\\')) else {
                return branch.to_owned();
            };
            match TRAILING_WHITESPACE.iter().find_map(|ws| body.strip_suffix(ws)) {
                Some(rest) => {
                    changed = true;
                    format!("{rest}$")
                }
                None => branch.to_owned(),
            }
        })
        .collect();
    changed.then(|| branches.join("|"))
}

#[cfg(test)]
mod tests {
    use super::without_trailing_whitespace as fix;

    #[test]
    fn a_pattern_that_needs_trailing_whitespace_gets_its_fix() {
        assert_eq!(fix("^> $").as_deref(), Some("^>$"));
        assert_eq!(fix("^>\\s+$").as_deref(), Some("^>$"));
        assert_eq!(fix("done|^> $").as_deref(), Some("done|^>$"));
        for fine in ["^>$", "^>\\s*$", "^> ", "cost \\$", "^\\$ $x", "[$] ?$"] {
            assert_eq!(fix(fine), None, "{fine}");
        }
    }
}
