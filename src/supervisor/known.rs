//! Structured limit sources through a pass, read only when they matter (the agent is
//! held on a limit, shows one, or its own signal says it hit one or ended a turn) and
//! only when the file changed (size, mtime, inode): Claude Code's statusLine record
//! (`limits/<agent>.json`, written by `vigil hook --statusline`) and Codex's rollout
//! file (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`: by the notify's
//! `thread-id`, else the newest whose `session_meta.cwd` is the agent's and that was
//! written since the incarnation started; its last 64 KiB only). Read-only, bounded,
//! regular files, no links followed. What they say goes to the engine as
//! [`Reported`]; a rollout's `usage_limit_exceeded` becomes a limit signal. Decides
//! nothing.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Records, Supervisor, SupervisorError};
use crate::adapters::fs::{Links, canonical, open_regular};
use crate::adapters::tmux::{Pane, Tmux};
use crate::config::preset::Wiring;
use crate::engine::resets::{self, Origin, ROLLOUT_TAIL, Reported};
use crate::engine::signal::{self, Heard, Said, Signal, Source};
use crate::engine::{AgentName, Incarnation, Time};
use crate::store::Record;
use crate::store::limits;
use crate::store::record::SignalNote;

/// How often at most a Codex agent's rollout file is looked for while none is found.
const SEARCH_EVERY: Duration = Duration::from_secs(30);
/// How much of a rollout file's start is read for its `session_meta` (which may carry
/// long instructions after its `cwd`).
const META_HEAD: u64 = 64 * 1024;
/// Rollout files looked at per search, at most (newest first by name).
const MAX_CANDIDATES: usize = 64;

/// A file's identity and version, to read it only when it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// What was last read of one agent's source, for the incarnation it was read for.
#[derive(Clone, Debug, Default)]
pub(super) struct KnownSeen {
    incarnation: Incarnation,
    stamp: Option<Stamp>,
    report: Option<Reported>,
    /// The Codex rollout file, once found.
    rollout: Option<PathBuf>,
    searched_at: Option<Time>,
    /// The `usage_limit_exceeded` already turned into a signal.
    hit_heard: Option<Time>,
}

impl<T: Tmux> Supervisor<T> {
    /// The structured limit reports of this pass's live agents (the newest known, for
    /// their running incarnation); a rollout's fresh limit hit is added to `signals`.
    pub(super) fn read_known(
        &mut self,
        panes: &[Pane],
        signals: &mut Vec<Signal>,
        now: Time,
        records: &mut Records,
    ) -> Result<Vec<Reported>, SupervisorError> {
        let mut out = Vec::new();
        let configs = self.config.agents_by_name();
        for pane in panes.iter().filter(|p| p.is_ours(&self.fleet.run) && !p.dead) {
            let Some(name) = pane.agent.as_deref().and_then(AgentName::new) else {
                continue;
            };
            let Some(config) = configs.get(name.as_str()).filter(|c| !c.signals_off) else {
                continue;
            };
            let wiring = config.signals;
            let incarnation = Incarnation(pane.incarnation.unwrap_or(0));
            let needed = self.needs_reset(&name, wiring, signals);
            let since = self.mind.agents.get(&name).map(|r| r.since);
            let fresh = config.policy.signal_fresh;
            let seen = self.known.entry(name.clone()).or_default();
            if seen.incarnation != incarnation {
                *seen = KnownSeen {
                    incarnation,
                    ..KnownSeen::default()
                };
            }
            // What a source is read with is made only when it is read (most passes
            // read none).
            let changed = match (wiring, needed) {
                (Some(Wiring::ClaudeSettings), true) => {
                    claude(seen, &self.store.path(limits::DIR), &name, &self.fleet.run)
                }
                (Some(Wiring::CodexNotify), true) => {
                    let codex_home = config.env.get("CODEX_HOME").map(PathBuf::from).or_else(codex_home);
                    let thread = signals
                        .iter()
                        .filter(|s| s.agent == name)
                        .find_map(|s| s.heard.thread.clone());
                    codex(seen, &name, codex_home.as_deref(), &config.cwd, since, thread, now)
                }
                _ => false,
            };
            let Some(report) = seen.report.clone() else { continue };
            if changed {
                let reason = describe(&report, now);
                records.push(self.journal.append(
                    now,
                    Record::Limits {
                        report: report.clone(),
                        reason,
                    },
                )?);
            }
            if let Some(hit) = report.limit_hit
                && seen.hit_heard != Some(hit)
            {
                seen.hit_heard = Some(hit);
                let running = self
                    .mind
                    .agents
                    .get(&name)
                    .filter(|r| r.is_live())
                    .map(|r| r.incarnation);
                let verdict = signal::admit(incarnation, hit, running, now, fresh);
                let heard = Heard::rollout_usage_limit();
                let reason = match &verdict {
                    Ok(()) => {
                        format!("heard from {name} {incarnation}: Codex rollout file `usage_limit_exceeded`, limit")
                    }
                    Err(why) => format!(
                        "rollout file of {name} {incarnation}: `usage_limit_exceeded` ignored: {}",
                        why.words()
                    ),
                };
                let note = SignalNote {
                    agent: name.to_string(),
                    incarnation,
                    source: Some(Source::Codex),
                    event: Some(heard.event.clone()),
                    said: Some(heard.said.clone()),
                    sent: Some(hit),
                    age_ms: u64::try_from(now.since(hit).as_millis()).unwrap_or(u64::MAX),
                    ignored: verdict.clone().err(),
                    reason,
                };
                records.push(self.journal.append(now, Record::Signal(note))?);
                if verdict.is_ok() {
                    signals.push(Signal {
                        agent: name.clone(),
                        incarnation,
                        at: hit,
                        heard,
                    });
                }
            }
            out.push(report);
        }
        Ok(out)
    }

    /// Whether a reset time matters for `name` now: held on a limit not yet resumed,
    /// a limit on its screen at the last look, a limit signal this pass, or (Codex) a
    /// turn that just ended (the rollout says how).
    fn needs_reset(&self, name: &AgentName, wiring: Option<Wiring>, signals: &[Signal]) -> bool {
        let record = self.mind.agents.get(name);
        let holding = record.and_then(|r| r.rate_limit.as_ref()).is_some_and(|rl| !rl.resumed);
        let visible = record.and_then(|r| r.live()).is_some_and(|l| l.limit_visible);
        let said = signals.iter().filter(|s| &s.agent == name).any(|s| match s.heard.said {
            Said::Limit { .. } => true,
            Said::Idle => wiring == Some(Wiring::CodexNotify) && s.heard.source == Source::Codex,
            _ => false,
        });
        holding || visible || said
    }
}

/// `$CODEX_HOME`, else `~/.codex`.
fn codex_home() -> Option<PathBuf> {
    std::env::var_os("CODEX_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".codex"))
        })
}

/// Re-reads the statusLine record when it changed; whether the report changed.
fn claude(seen: &mut KnownSeen, dir: &Path, name: &AgentName, run: &str) -> bool {
    let path = limits::path(dir, name);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return false;
    };
    let stamp = Stamp::of(&meta);
    if seen.stamp == Some(stamp) {
        return false;
    }
    seen.stamp = Some(stamp);
    let Ok(file) = limits::read(&path) else { return false };
    if file.run != run || file.incarnation != seen.incarnation.0 || &file.agent != name {
        return false;
    }
    let report = Reported {
        agent: name.clone(),
        incarnation: seen.incarnation,
        origin: Origin::ClaudeStatusLine,
        at: file.at,
        windows: file.windows,
        limit_hit: None,
    };
    let changed = seen.report.as_ref() != Some(&report);
    seen.report = Some(report);
    changed
}

/// Finds (once) and re-reads the tail of the agent's rollout file when it changed;
/// whether the report changed.
fn codex(
    seen: &mut KnownSeen,
    name: &AgentName,
    home: Option<&Path>,
    cwd: &Path,
    since: Option<Time>,
    thread: Option<String>,
    now: Time,
) -> bool {
    let Some(home) = home else { return false };
    let sessions = home.join("sessions");
    if let Some(thread) = thread.filter(|_| seen.rollout.is_none()) {
        seen.rollout = find_rollout(&sessions, now, |path, _| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&format!("-{thread}.jsonl")))
        });
    }
    if seen.rollout.is_none() && seen.searched_at.is_none_or(|t| now.since(t) >= SEARCH_EVERY) {
        seen.searched_at = Some(now);
        let cwd = canonical(cwd);
        let after = since.map(|s| s.minus(Duration::from_secs(5)));
        seen.rollout = find_rollout(&sessions, now, |path, modified| {
            after.is_none_or(|a| modified >= a) && meta_cwd(path).is_some_and(|c| canonical(&c) == cwd)
        });
    }
    let Some(path) = seen.rollout.clone() else { return false };
    let Ok(mut file) = open_regular(&path, Links::Refuse) else {
        return false;
    };
    let Ok(meta) = file.metadata() else { return false };
    let stamp = Stamp::of(&meta);
    if seen.stamp == Some(stamp) {
        return false;
    }
    seen.stamp = Some(stamp);
    let from = meta.len().saturating_sub(ROLLOUT_TAIL as u64);
    let mut tail = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.take(ROLLOUT_TAIL as u64).read_to_end(&mut tail).is_err() {
        return false;
    }
    let read = resets::rollout_tail(&tail, from == 0);
    let (at, windows) = read.limits.unwrap_or((read.limit_hit.unwrap_or(now), Vec::new()));
    if windows.is_empty() && read.limit_hit.is_none() {
        return false;
    }
    let report = Reported {
        agent: name.clone(),
        incarnation: seen.incarnation,
        origin: Origin::CodexRollout,
        at,
        windows,
        limit_hit: read.limit_hit,
    };
    let changed = seen.report.as_ref() != Some(&report);
    seen.report = Some(report);
    changed
}

/// The newest `rollout-*.jsonl` of today's and yesterday's date dirs (local and UTC
/// dates: Codex names them by its local day) for which `fits(path, mtime)` holds.
fn find_rollout(sessions: &Path, now: Time, fits: impl Fn(&Path, Time) -> bool) -> Option<PathBuf> {
    let mut dirs = Vec::new();
    let ts = jiff::Timestamp::from_millisecond(now.millis()).ok()?;
    for tz in [jiff::tz::TimeZone::system(), jiff::tz::TimeZone::UTC] {
        let today = ts.to_zoned(tz).date();
        for day in [Some(today), today.yesterday().ok()].into_iter().flatten() {
            let dir = sessions.join(day.strftime("%Y/%m/%d").to_string());
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    let mut found: Vec<(Time, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(".jsonl"))
            })
            .collect();
        names.sort_unstable_by(|a, b| b.cmp(a));
        for path in names.into_iter().take(MAX_CANDIDATES) {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.file_type().is_file() {
                continue;
            }
            let modified = Time::from_millis(meta.mtime().saturating_mul(1000));
            if fits(&path, modified) {
                found.push((modified, path));
            }
        }
    }
    found.into_iter().max_by_key(|(t, _)| *t).map(|(_, p)| p)
}

/// The `cwd` of a rollout file's `session_meta` (its first line). A first line longer
/// than [`META_HEAD`] (long instructions) is cut: its `cwd` is then read as the first
/// JSON string after `"cwd":`, which Codex writes before the instructions.
fn meta_cwd(path: &Path) -> Option<PathBuf> {
    let file = open_regular(path, Links::Refuse).ok()?;
    let mut head = Vec::new();
    file.take(META_HEAD).read_to_end(&mut head).ok()?;
    let line = head.split(|b| *b == b'\n').next()?;
    if let Ok(value) = serde_json::from_slice::<Value>(line) {
        if value.get("type").and_then(Value::as_str) != Some("session_meta") {
            return None;
        }
        return value.get("payload")?.get("cwd")?.as_str().map(PathBuf::from);
    }
    let key = b"\"cwd\":";
    if !line.starts_with(b"{") || !contains(line, b"\"session_meta\"") {
        return None;
    }
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = line[at..].trim_ascii_start();
    let cwd: String = serde_json::Deserializer::from_slice(rest)
        .into_iter::<String>()
        .next()?
        .ok()?;
    Some(PathBuf::from(cwd))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// "a 1: Codex's rollout file: primary 100% (resets 2026-…), secondary 63%; usage limit hit".
fn describe(report: &Reported, now: Time) -> String {
    let windows: Vec<String> = report
        .windows
        .iter()
        .map(|w| {
            let used = w.used_percent.map_or("?".to_owned(), |u| format!("{u}%"));
            match w.resets_at {
                Some(at) => format!("{:?} {used} (resets {at})", w.name),
                None => format!("{:?} {used}", w.name),
            }
        })
        .collect();
    let hit = if report.limit_hit.is_some() {
        "; usage limit hit"
    } else {
        ""
    };
    format!(
        "{} {}: {} (said {} ago): {}{hit}",
        report.agent,
        report.incarnation,
        report.origin.words(),
        crate::engine::time::human(now.since(report.at)),
        windows.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_meta_cut_by_long_instructions_still_gives_its_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollout-x.jsonl");
        let long = "x".repeat(2 * META_HEAD as usize);
        let line = format!(
            r#"{{"timestamp":"2026-12-01T14:00:00Z","type":"session_meta","payload":{{"id":"u","cwd":"/home/dev/app","instructions":"{long}"}}}}"#
        );
        std::fs::write(&path, format!("{line}\n")).unwrap();
        assert_eq!(meta_cwd(&path), Some(PathBuf::from("/home/dev/app")));
        std::fs::write(&path, r#"{"type":"session_meta","payload":{"cwd":"/a"}}"#).unwrap();
        assert_eq!(meta_cwd(&path), Some(PathBuf::from("/a")));
        std::fs::write(&path, r#"{"type":"event_msg","payload":{"cwd":"/a"}}"#).unwrap();
        assert_eq!(meta_cwd(&path), None);
        let link = dir.path().join("rollout-link.jsonl");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(meta_cwd(&link), None, "a link is not followed");
    }
}
