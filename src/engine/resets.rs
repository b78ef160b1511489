//! Known resets: the structured limit facts an agent CLI writes for itself — Claude
//! Code's statusLine input (`rate_limits.five_hour` / `seven_day`) and Codex's rollout
//! files (`token_count.rate_limits.primary` / `secondary`, a `usage_limit_exceeded`
//! error) — parsed strictly from bytes, and the choice of the one reset time that
//! counts. A structured reset beats one parsed from the screen. Pure: bytes and time
//! are arguments; no file is read here.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mind::name::{AgentName, Incarnation};
use super::time::{Time, human};

/// Largest statusLine payload read (a real one is 1–3 KiB).
pub const MAX_STATUSLINE: usize = 64 * 1024;
/// How much of a rollout file's end is read (its last lines).
pub const ROLLOUT_TAIL: usize = 64 * 1024;
/// A reset further ahead than this is misread (the longest window is a week).
pub const FURTHEST: Duration = Duration::from_secs(8 * 24 * 3600);
/// A window used at least this much is "near full": when a limit is seen and no window
/// says 100 %, the nearest reset among these is the one that lifts it.
pub const NEAR_FULL: u32 = 90;
/// How deep a rollout line is searched for `usage_limit_exceeded`.
const SEARCH_DEPTH: usize = 6;

/// Where the facts came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Claude Code's statusLine input, recorded by `vigil statusline`.
    ClaudeStatusLine,
    /// A Codex rollout file (`$CODEX_HOME/sessions/…/rollout-*.jsonl`).
    CodexRollout,
}

impl Origin {
    /// The source in reasons ("Claude Code's statusLine").
    pub fn words(self) -> &'static str {
        match self {
            Origin::ClaudeStatusLine => "Claude Code's statusLine",
            Origin::CodexRollout => "Codex's rollout file",
        }
    }
}

/// Which limit window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowName {
    /// Claude's 5-hour window.
    FiveHour,
    /// Claude's 7-day window.
    SevenDay,
    /// Codex's primary window (its length in `window_minutes`).
    Primary,
    /// Codex's secondary window.
    Secondary,
}

impl WindowName {
    fn words(self, minutes: Option<u32>) -> String {
        match (self, minutes) {
            (WindowName::FiveHour, _) => "5-hour limit".into(),
            (WindowName::SevenDay, _) => "weekly limit".into(),
            (_, Some(m)) if m >= 60 * 24 && m % (60 * 24) == 0 => format!("{}-day limit", m / (60 * 24)),
            (_, Some(m)) if m >= 60 && m % 60 == 0 => format!("{}-hour limit", m / 60),
            (_, Some(m)) => format!("{m}-minute limit"),
            (WindowName::Primary, None) => "primary limit".into(),
            (WindowName::Secondary, None) => "secondary limit".into(),
        }
    }
}

/// One window as the source gave it; any part may be unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub name: WindowName,
    /// Percent used, rounded down (so 99.6 is not yet full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<Time>,
}

/// What one source last said about an agent's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    pub agent: AgentName,
    /// The incarnation it is about (the statusLine's env, the rollout's start).
    pub incarnation: Incarnation,
    pub origin: Origin,
    /// When the source said it (the statusLine call, the rollout line's `timestamp`).
    pub at: Time,
    pub windows: Vec<Window>,
    /// When the source said the agent's turn ended on its usage limit (a rollout's
    /// `usage_limit_exceeded`): the limit is then surely a usage limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_hit: Option<Time>,
}

/// The reset time chosen from a report, with the facts behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownReset {
    pub origin: Origin,
    pub window: WindowName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<u32>,
    pub resets_at: Time,
    /// When the source said it.
    pub reported_at: Time,
    pub why: Pick,
}

/// Why that window was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// It is at 100 %: nothing runs before it lifts.
    Full,
    /// No window says 100 %; it is the nearest reset among those near full.
    NearestNearFull,
}

/// Why a report gave no reset time, in fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Unused {
    /// No window is full or near full (or none gives a reset): the limit seen is
    /// another one (an Opus limit, a throttle).
    NoneNearFull,
    /// The window's reset is already past.
    Past { window: WindowName, resets_at: Time },
    /// The window's reset is absurdly far ahead.
    TooFar { window: WindowName, resets_at: Time },
}

impl Unused {
    pub fn words(&self, origin: Origin, now: Time) -> String {
        match self {
            Unused::NoneNearFull => format!("{} shows no limit window full or near full", origin.words()),
            Unused::Past { window, resets_at } => format!(
                "{} says the {} reset at {resets_at} ({} ago): past, ignored",
                origin.words(),
                window.words(None),
                human(now.since(*resets_at))
            ),
            Unused::TooFar { window, resets_at } => format!(
                "{} says the {} resets at {resets_at}, more than {} ahead: ignored",
                origin.words(),
                window.words(None),
                human(FURTHEST)
            ),
        }
    }
}

impl KnownReset {
    /// "Claude Code's statusLine says the 5-hour limit resets at 15:00:00 (said 2m ago)".
    pub fn words(&self, clock: &str, now: Time) -> String {
        format!(
            "{} says the {} resets at {clock} ({}, said {} ago)",
            self.origin.words(),
            self.window.words(self.window_minutes),
            match self.used_percent {
                Some(p) => format!("{p}% used"),
                None => "use unknown".into(),
            },
            human(now.since(self.reported_at))
        )
    }
}

/// The reset that lifts the limit the agent is at, from what `report` says, at `now`.
///
/// Which window: one at 100 % whose reset is ahead (of several, the latest: the agent
/// runs again only when every full window has lifted); else the nearest reset ahead
/// among windows at least [`NEAR_FULL`] % used (a limit was seen, so a window near
/// full is the likely one, and the nearest is the first moment worth a try; a wrong
/// guess costs one resume that the renewal path handles). A window with no known use
/// is never guessed at. A reset in the past or more than [`FURTHEST`] ahead is ignored
/// with that reason.
pub fn choose(report: &Reported, now: Time) -> Result<KnownReset, Unused> {
    let mut rejected = None;
    let mut ahead = Vec::new();
    for w in &report.windows {
        let (Some(at), Some(used)) = (w.resets_at, w.used_percent) else {
            continue;
        };
        if used < NEAR_FULL {
            continue;
        }
        if at <= now {
            rejected.get_or_insert(Unused::Past {
                window: w.name,
                resets_at: at,
            });
        } else if at.since(now) > FURTHEST {
            rejected.get_or_insert(Unused::TooFar {
                window: w.name,
                resets_at: at,
            });
        } else {
            ahead.push((w, at, used));
        }
    }
    let full = ahead.iter().filter(|(_, _, u)| *u >= 100).max_by_key(|(_, at, _)| *at);
    let (pick, chosen) = match full {
        Some(c) => (Pick::Full, Some(c)),
        None => (Pick::NearestNearFull, ahead.iter().min_by_key(|(_, at, _)| *at)),
    };
    match chosen {
        Some((w, at, used)) => Ok(KnownReset {
            origin: report.origin,
            window: w.name,
            window_minutes: w.window_minutes,
            used_percent: Some(*used),
            resets_at: *at,
            reported_at: report.at,
            why: pick,
        }),
        None => Err(rejected.unwrap_or(Unused::NoneNearFull)),
    }
}

/// The windows in Claude Code's statusLine input: `None` when it has no `rate_limits`
/// (API-key users, before the first response) or is no JSON object.
pub fn statusline_windows(payload: &[u8]) -> Option<Vec<Window>> {
    if payload.len() > MAX_STATUSLINE {
        return None;
    }
    let value: Value = serde_json::from_slice(payload).ok()?;
    let limits = value.get("rate_limits")?.as_object()?;
    let windows: Vec<Window> = [("five_hour", WindowName::FiveHour), ("seven_day", WindowName::SevenDay)]
        .into_iter()
        .filter_map(|(key, name)| {
            let w = limits.get(key)?.as_object()?;
            Some(Window {
                name,
                used_percent: w.get("used_percentage").and_then(percent),
                window_minutes: None,
                resets_at: w.get("resets_at").and_then(instant),
            })
        })
        .collect();
    (!windows.is_empty()).then_some(windows)
}

/// What the end of a rollout file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutTail {
    /// The newest `token_count` with rate limits: its line's time and windows.
    pub limits: Option<(Time, Vec<Window>)>,
    /// When the newest turn ended on `usage_limit_exceeded` (none once a newer turn
    /// started).
    pub limit_hit: Option<Time>,
    /// Lines skipped as garbage (not JSON, cut, no time).
    pub skipped: usize,
}

/// Parses the last bytes of a rollout file; `whole` says whether `tail` starts at the
/// file's start (else its first, cut line is dropped). A line without a parseable
/// `timestamp` or that is not JSON is skipped and counted.
pub fn rollout_tail(tail: &[u8], whole: bool) -> RolloutTail {
    let mut out = RolloutTail::default();
    let mut lines = tail.split(|b| *b == b'\n');
    if !whole {
        lines.next();
    }
    for line in lines {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Some((at, kind, payload)) = rollout_line(line) else {
            out.skipped += 1;
            continue;
        };
        if kind != "event_msg" {
            continue;
        }
        match payload.get("type").and_then(Value::as_str) {
            Some("task_started" | "turn_started" | "user_message") => out.limit_hit = None,
            Some("token_count") => {
                if let Some(windows) = payload.get("rate_limits").and_then(|r| codex_windows(r, at)) {
                    out.limits = Some((at, windows));
                }
            }
            _ => {}
        }
        if mentions_usage_limit(&payload, SEARCH_DEPTH) {
            out.limit_hit = Some(at);
        }
    }
    out
}

/// A rollout line: its time, `type` and `payload`.
fn rollout_line(line: &[u8]) -> Option<(Time, String, Value)> {
    let Value::Object(mut line) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    let at = line.get("timestamp").and_then(instant)?;
    let kind = line.get("type")?.as_str()?.to_owned();
    let payload = line.remove("payload").unwrap_or(Value::Null);
    Some((at, kind, payload))
}

/// `primary` / `secondary` of a `rate_limits` object; `resets_in_seconds` (older
/// files) counts from the line's time `at`. `None` when both are null or absent.
fn codex_windows(limits: &Value, at: Time) -> Option<Vec<Window>> {
    let windows: Vec<Window> = [("primary", WindowName::Primary), ("secondary", WindowName::Secondary)]
        .into_iter()
        .filter_map(|(key, name)| {
            let w = limits.get(key)?.as_object()?;
            let resets_at = w.get("resets_at").and_then(instant).or_else(|| {
                let secs = w.get("resets_in_seconds")?.as_f64()?;
                (0.0..1e9)
                    .contains(&secs)
                    .then(|| at.plus(Duration::from_secs_f64(secs)))
            });
            Some(Window {
                name,
                used_percent: w.get("used_percent").and_then(percent),
                window_minutes: w
                    .get("window_minutes")
                    .and_then(Value::as_u64)
                    .and_then(|m| u32::try_from(m).ok()),
                resets_at,
            })
        })
        .collect();
    (!windows.is_empty()).then_some(windows)
}

/// Whether `usage_limit_exceeded` is a value or a key anywhere in `value` (its nesting
/// has moved between Codex versions: `error.codex_error_info`, `codex_error_info`, an
/// enum as `{"usage_limit_exceeded": …}`).
fn mentions_usage_limit(value: &Value, depth: usize) -> bool {
    const NEEDLE: &str = "usage_limit_exceeded";
    if depth == 0 {
        return false;
    }
    match value {
        Value::String(s) => s.eq_ignore_ascii_case(NEEDLE),
        Value::Array(items) => items.iter().any(|v| mentions_usage_limit(v, depth - 1)),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(NEEDLE) || mentions_usage_limit(v, depth - 1)),
        _ => false,
    }
}

/// A percentage (number, or a numeric string), rounded down, at most 1000.
fn percent(value: &Value) -> Option<u32> {
    let p = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('%').parse().ok()?,
        _ => return None,
    };
    (p.is_finite() && p >= 0.0).then(|| p.floor().min(1000.0) as u32)
}

/// An instant: epoch seconds (number or numeric string; milliseconds when it is too
/// big to be seconds) or an RFC 3339 string.
pub fn instant(value: &Value) -> Option<Time> {
    let from_secs = |s: f64| {
        if !s.is_finite() || s <= 0.0 {
            return None;
        }
        let ms = if s > 1e11 { s } else { s * 1000.0 };
        (ms < 1e15).then(|| Time::from_millis(ms as i64))
    };
    match value {
        Value::Number(n) => from_secs(n.as_f64()?),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => from_secs(n),
            Err(_) => {
                let ts: jiff::Timestamp = s.trim().parse().ok()?;
                Some(Time::from_millis(ts.as_millisecond()))
            }
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/limits/", $name))[..]
        };
    }

    /// 2026-12-01T14:00:00Z.
    const T0: Time = Time::from_millis(1_796_133_600_000);
    const MIN: Duration = Duration::from_secs(60);

    fn report(origin: Origin, windows: Vec<Window>) -> Reported {
        Reported {
            agent: AgentName::new("a").unwrap(),
            incarnation: Incarnation(1),
            origin,
            at: T0,
            windows,
            limit_hit: None,
        }
    }

    fn window(name: WindowName, used: u32, resets_at: Time) -> Window {
        Window {
            name,
            used_percent: Some(used),
            window_minutes: None,
            resets_at: Some(resets_at),
        }
    }

    #[test]
    fn a_statusline_gives_its_windows_with_resets_as_numbers_or_strings() {
        let numbers = statusline_windows(fixture!("claude-statusline-numbers.json")).unwrap();
        let strings = statusline_windows(fixture!("claude-statusline-strings.json")).unwrap();
        let five = Time::from_millis(1_796_140_800_000); // 16:00Z
        let seven = Time::from_millis(1_796_400_000_000);
        assert_eq!(numbers, strings);
        assert_eq!(
            numbers,
            [
                window(WindowName::FiveHour, 100, five),
                window(WindowName::SevenDay, 41, seven)
            ]
        );
    }

    #[test]
    fn a_statusline_without_rate_limits_teaches_nothing() {
        assert_eq!(statusline_windows(fixture!("claude-statusline-no-limits.json")), None);
        assert_eq!(statusline_windows(b"garbage"), None);
        assert_eq!(statusline_windows(br#"{"rate_limits": null}"#), None);
        assert_eq!(statusline_windows(&vec![b' '; MAX_STATUSLINE + 1]), None);
    }

    #[test]
    fn a_rollout_with_a_usage_limit_gives_the_hit_and_its_resets() {
        let tail = rollout_tail(fixture!("codex-rollout-usage-limit.jsonl"), true);
        let hit = Time::from_millis(1_796_134_500_000); // 14:15Z
        assert_eq!(tail.limit_hit, Some(hit));
        let (at, windows) = tail.limits.unwrap();
        assert_eq!(at, Time::from_millis(1_796_134_490_000));
        assert_eq!(windows[0].used_percent, Some(100));
        assert_eq!(windows[0].window_minutes, Some(300));
        assert_eq!(windows[0].resets_at, Some(Time::from_millis(1_796_142_600_000)));
        assert_eq!(windows[1].used_percent, Some(63));
    }

    #[test]
    fn an_older_rollout_counts_resets_in_seconds_from_its_line() {
        let tail = rollout_tail(fixture!("codex-rollout-resets-in-seconds.jsonl"), true);
        let (at, windows) = tail.limits.unwrap();
        assert_eq!(windows[0].resets_at, Some(at.plus(Duration::from_secs(3600))));
        assert_eq!(tail.limit_hit, None, "a newer turn started after the limit");
    }

    #[test]
    fn null_windows_garbage_and_huge_lines_are_skipped() {
        let tail = rollout_tail(fixture!("codex-rollout-nulls.jsonl"), true);
        let (_, windows) = tail.limits.unwrap();
        assert_eq!(windows.len(), 1, "secondary is null: {windows:?}");
        assert_eq!(windows[0].resets_at, None, "primary's resets_at is null");
        assert_eq!(tail.skipped, 1, "the garbage line");
        let mut huge = b"{\"timestamp\":\"2026-12-01T14:00:00Z\",\"type\":\"event_msg\",\"payload\":{\"x\":\"".to_vec();
        huge.extend(std::iter::repeat_n(b'x', ROLLOUT_TAIL));
        huge.extend_from_slice(b"\"}}\n");
        huge.extend_from_slice(fixture!("codex-rollout-usage-limit.jsonl"));
        let cut = &huge[huge.len() - ROLLOUT_TAIL..];
        let tail = rollout_tail(cut, false);
        assert!(tail.limit_hit.is_some(), "the lines after a cut one still count");
    }

    #[test]
    fn a_full_window_wins_and_near_full_takes_the_nearest_reset() {
        let soon = T0.plus(30 * MIN);
        let later = T0.plus(600 * MIN);
        let both = report(
            Origin::ClaudeStatusLine,
            vec![
                window(WindowName::FiveHour, 95, soon),
                window(WindowName::SevenDay, 100, later),
            ],
        );
        let got = choose(&both, T0).unwrap();
        assert_eq!(
            (got.window, got.resets_at, got.why),
            (WindowName::SevenDay, later, Pick::Full)
        );
        let near = report(
            Origin::CodexRollout,
            vec![
                window(WindowName::Primary, 92, later),
                window(WindowName::Secondary, 97, soon),
            ],
        );
        let got = choose(&near, T0).unwrap();
        assert_eq!((got.window, got.why), (WindowName::Secondary, Pick::NearestNearFull));
        let low = report(Origin::CodexRollout, vec![window(WindowName::Primary, 40, soon)]);
        assert_eq!(choose(&low, T0), Err(Unused::NoneNearFull));
    }

    #[test]
    fn a_past_or_absurdly_far_reset_is_ignored_with_a_reason() {
        let past = report(
            Origin::ClaudeStatusLine,
            vec![window(WindowName::FiveHour, 100, T0.minus(MIN))],
        );
        let err = choose(&past, T0).unwrap_err();
        assert!(matches!(err, Unused::Past { .. }), "{err:?}");
        assert!(err.words(Origin::ClaudeStatusLine, T0).contains("past, ignored"));
        let far = report(
            Origin::ClaudeStatusLine,
            vec![window(WindowName::SevenDay, 100, T0.plus(FURTHEST + MIN))],
        );
        assert!(matches!(choose(&far, T0), Err(Unused::TooFar { .. })));
    }

    #[test]
    fn instants_read_epoch_seconds_millis_and_rfc3339() {
        let want = Some(Time::from_millis(1_796_140_800_000));
        assert_eq!(instant(&serde_json::json!(1_796_140_800)), want);
        assert_eq!(instant(&serde_json::json!(1_796_140_800_000_u64)), want);
        assert_eq!(instant(&serde_json::json!("1796140800")), want);
        assert_eq!(instant(&serde_json::json!("2026-12-01T16:00:00Z")), want);
        assert_eq!(instant(&serde_json::json!("2026-12-01T17:00:00+01:00")), want);
        assert_eq!(instant(&serde_json::json!(-5)), None);
        assert_eq!(instant(&serde_json::json!("soon")), None);
    }
}
