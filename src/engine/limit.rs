//! Rate and usage limits as agents word them: a passing throttle (429, "overloaded"),
//! a limit that says when it lifts ("resets 4:50pm (Asia/Shanghai)", "try again in
//! 2h52m39s"), or one that no amount of waiting lifts (a spend limit, an exhausted
//! plan). Also what an agent says once a limit lifted: that it goes on by itself
//! ("Continuing automatically"), or that it waits for Enter ("Usage limit has reset ·
//! Press enter to continue"). Pure: zones come from the tz database bundled in the
//! binary, the local zone and the time are arguments.

use std::sync::LazyLock;
use std::time::Duration;

use jiff::civil::{Date, Time as Clock};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::time::Time;

/// What kind of limit a message announces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LimitKind {
    /// A throttle with no stated end: wait the configured cooldown.
    #[default]
    Throttle,
    /// The message says when the limit lifts.
    Resets { at: Time },
    /// Waiting will not lift it (spend limit, plan or credits exhausted): a human must act.
    NoReset,
}

/// Longest wait a message is believed about; anything further is misread.
const FURTHEST_RESET: Duration = Duration::from_secs(32 * 24 * 3600);

/// "in 2h52m39s", "after 5 days 22 hours 11 minutes", "in 2.252s".
static WAIT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:try again|retry|retrying|resets?|reset|available again|wait)\s+(?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b?[\s,]*(?:and\s+)?)+)",
    )
});
static WAIT_PART: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)"));
/// "resets 12:50am (America/Los_Angeles)", "resets Jul 31, 2am (UTC)", "resets Sep 15
/// at 7pm", "reset at 9:30 AM", "try again at 12:16 PM", "try again at Sep 11th, 2026
/// 12:26 AM", "Access resets at 4:05 PM PST".
static AT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:resets?|reset at|try again at|available at|until)\s+(?:at\s+)?(?:(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?:(?P<year>20\d\d),?\s+)?(?:at\s+)?)?(?P<h>\d{1,2})(?::(?P<min>\d{2}))?\s*(?P<ampm>[ap]\.?m\b\.?)?(?:\s*\((?P<tz>[A-Za-z][A-Za-z0-9_+\-/]*)\)|\s+(?P<abbr>(?:P|M|C|E)[SD]T|UTC|GMT)\b)?",
    )
});
/// Limits that do not lift by waiting.
static NO_RESET: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)spend(ing)? limit|quota exceeded\. check your plan|check your plan and billing|insufficient[_ ]quota|credit balance (is )?too low|out of (extra usage|usage credits)|billing (hard )?limit|exceeded your current quota|increase your limits to continue",
    )
});

/// "Claude AI usage limit reached|1760000400": the reset as epoch seconds.
static EPOCH: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(?i)limit reached\|(\d{10})\b"));
/// A daily quota with no stated end: Google's lift at midnight Pacific time.
static DAILY: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(?i)\bdaily quota\b"));
/// The zone whose midnight ends a daily quota.
const DAILY_ZONE: &str = "America/Los_Angeles";
/// The agent says it goes on by itself once the limit lifts.
static CONTINUES: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?i)continuing automatically|(will|it'll) (continue|resume) automatically|resuming automatically")
});
/// The agent says the limit lifted and it waits for Enter.
static AWAITS_ENTER: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)\blimit (has )?(been )?reset\b.*\bpress enter\b"));

/// What an agent says once a limit lifted (or will have).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterReset {
    /// It goes on by itself: vigil waits for the reset and checks it did.
    Continues,
    /// It waits for Enter: the limit is over, tell it to resume now.
    AwaitsEnter,
}

impl AfterReset {
    pub fn as_str(self) -> &'static str {
        match self {
            AfterReset::Continues => "continues",
            AfterReset::AwaitsEnter => "awaits_enter",
        }
    }
}

/// What `line` says about the end of a limit, if anything.
pub fn after_reset(line: &str) -> Option<AfterReset> {
    if CONTINUES.as_ref().is_some_and(|r| r.is_match(line)) {
        Some(AfterReset::Continues)
    } else if AWAITS_ENTER.as_ref().is_some_and(|r| r.is_match(line)) {
        Some(AfterReset::AwaitsEnter)
    } else {
        None
    }
}

/// Compiles a regex written in this file (`None` never matches; a typo fails this
/// module's tests, never a user's run).
fn re(source: &str) -> Option<Regex> {
    Regex::new(source).ok()
}

/// Classifies the text of a limit message (its line and the one after, joined), seen
/// at `now` on a machine whose zone is `local`.
pub fn classify(text: &str, now: Time, local: &TimeZone) -> LimitKind {
    if let Some(at) = reset_time(text, now, local) {
        return LimitKind::Resets { at };
    }
    if NO_RESET.as_ref().is_some_and(|r| r.is_match(text)) {
        return LimitKind::NoReset;
    }
    LimitKind::Throttle
}

fn reset_time(text: &str, now: Time, local: &TimeZone) -> Option<Time> {
    if let Some(at) = epoch_reset(text, now) {
        return Some(at);
    }
    stated_reset(text, now, local).or_else(|| daily_reset(text, now))
}

/// "…limit reached|1760000400": believed when not long past and not too far ahead.
fn epoch_reset(text: &str, now: Time) -> Option<Time> {
    let secs: i64 = EPOCH.as_ref()?.captures(text)?.get(1)?.as_str().parse().ok()?;
    let at = Time::from_millis(secs.checked_mul(1000)?);
    fresh(at, now).then_some(at)
}

/// A daily quota without a stated end lifts at the next midnight Pacific time.
fn daily_reset(text: &str, now: Time) -> Option<Time> {
    if !DAILY.as_ref()?.is_match(text) {
        return None;
    }
    let zone = TimeZoneDatabase::bundled().get(DAILY_ZONE).ok()?;
    let today = jiff::Timestamp::from_millisecond(now.millis())
        .ok()?
        .to_zoned(zone.clone())
        .date();
    let midnight = today.tomorrow().ok()?.to_zoned(zone).ok()?.timestamp();
    Some(Time::from_millis(midnight.as_millisecond()))
}

/// Whether a reset at `at`, read at `now`, is believable: not past (a minute's grace
/// for a message read late) and not further than any real limit lasts.
fn fresh(at: Time, now: Time) -> bool {
    at.plus(Duration::from_secs(60)) >= now && now.plus(FURTHEST_RESET) >= at
}

/// A zone named by its abbreviation: a fixed offset, as the message means it.
fn abbreviated_zone(abbr: &str) -> Option<TimeZone> {
    let hours: i8 = match abbr.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" => 0,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => return None,
    };
    Some(TimeZone::fixed(jiff::tz::Offset::constant(hours)))
}

fn stated_reset(text: &str, now: Time, local: &TimeZone) -> Option<Time> {
    if let Some(wait) = WAIT
        .as_ref()
        .and_then(|r| r.captures(text))
        .and_then(|c| c.get(1))
        .and_then(|m| wait_of(m.as_str()))
    {
        return (wait <= FURTHEST_RESET).then(|| now.plus(wait));
    }
    let caps = AT.as_ref()?.captures(text)?;
    // A bare number ("resets 5") is no time of day: ask for am/pm or minutes.
    if caps.name("ampm").is_none() && caps.name("min").is_none() {
        return None;
    }
    let mut hour: i8 = caps.name("h")?.as_str().parse().ok()?;
    let minute: i8 = caps.name("min").map_or(Some(0), |m| m.as_str().parse().ok())?;
    if let Some(ampm) = caps.name("ampm") {
        if !(1..=12).contains(&hour) {
            return None;
        }
        let pm = ampm.as_str().to_ascii_lowercase().starts_with('p');
        hour = match (hour, pm) {
            (12, false) => 0,
            (12, true) => 12,
            (h, false) => h,
            (h, true) => h + 12,
        };
    }
    let clock = Clock::new(hour, minute, 0, 0).ok()?;
    let zone = match (caps.name("tz"), caps.name("abbr")) {
        (Some(name), _) => TimeZoneDatabase::bundled().get(name.as_str()).ok()?,
        (None, Some(abbr)) => abbreviated_zone(abbr.as_str())?,
        (None, None) => local.clone(),
    };
    let now_z = jiff::Timestamp::from_millisecond(now.millis())
        .ok()?
        .to_zoned(zone.clone());
    let candidates: Vec<Date> = match (caps.name("mon"), caps.name("day")) {
        (Some(mon), Some(day)) => {
            let month = month_of(mon.as_str())?;
            let day: i8 = day.as_str().parse().ok()?;
            let years: Vec<i16> = match caps.name("year").and_then(|y| y.as_str().parse().ok()) {
                Some(year) => vec![year],
                None => vec![now_z.year(), now_z.year() + 1],
            };
            years
                .into_iter()
                .filter_map(|y| Date::new(y, month, day).ok())
                .collect()
        }
        _ => {
            let today = now_z.date();
            [Some(today), today.tomorrow().ok()].into_iter().flatten().collect()
        }
    };
    // The first such instant not in the past (a minute's grace for a message read late).
    candidates.into_iter().find_map(|date| {
        let at = date.to_datetime(clock).to_zoned(zone.clone()).ok()?.timestamp();
        let at = Time::from_millis(at.as_millisecond());
        fresh(at, now).then_some(at)
    })
}

fn wait_of(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    for part in WAIT_PART.as_ref()?.captures_iter(text) {
        let n: f64 = part.get(1)?.as_str().parse().ok()?;
        let unit = part.get(2)?.as_str().to_ascii_lowercase();
        let secs = match unit.chars().next()? {
            'd' => 86_400.0,
            'h' => 3600.0,
            'm' => 60.0,
            _ => 1.0,
        };
        total += n * secs;
    }
    (total > 0.0 && total.is_finite()).then(|| Duration::from_secs_f64(total.min(FURTHEST_RESET.as_secs_f64() * 2.0)))
}

fn month_of(name: &str) -> Option<i8> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = name.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == prefix)
        .and_then(|i| i8::try_from(i + 1).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Time {
        Time::from_millis(rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond())
    }

    fn tz(name: &str) -> TimeZone {
        TimeZoneDatabase::bundled().get(name).unwrap()
    }

    #[test]
    fn the_patterns_compile() {
        for r in [
            &WAIT,
            &WAIT_PART,
            &AT,
            &NO_RESET,
            &EPOCH,
            &DAILY,
            &CONTINUES,
            &AWAITS_ENTER,
        ] {
            assert!(r.is_some());
        }
    }

    #[test]
    fn a_reset_time_in_another_zone_is_the_next_such_instant() {
        // 10:00 in Shanghai is 02:00 UTC; the limit lifts at 16:50 Shanghai, 08:50 UTC.
        let now = at("2026-11-23T02:00:00Z");
        let kind = classify(
            "You've hit your limit · resets 4:50pm (Asia/Shanghai)",
            now,
            &tz("Europe/Paris"),
        );
        assert_eq!(
            kind,
            LimitKind::Resets {
                at: at("2026-11-23T08:50:00Z")
            }
        );
        // Past 16:50 there, it is tomorrow's.
        let late = at("2026-11-23T09:30:00Z");
        let kind = classify("resets 4:50pm (Asia/Shanghai)", late, &TimeZone::UTC);
        assert_eq!(
            kind,
            LimitKind::Resets {
                at: at("2026-11-24T08:50:00Z")
            }
        );
    }

    #[test]
    fn a_reset_time_without_a_zone_is_local() {
        let now = at("2026-11-23T10:00:00Z");
        let kind = classify("Limits will reset at 9:30 AM.", now, &tz("America/New_York"));
        // 9:30 New York is 14:30 UTC in November.
        assert_eq!(
            kind,
            LimitKind::Resets {
                at: at("2026-11-23T14:30:00Z")
            }
        );
    }

    #[test]
    fn a_reset_date_is_honoured() {
        let now = at("2026-07-27T12:00:00Z");
        let kind = classify(
            "You've hit your weekly limit · resets Jul 31, 2am (UTC)",
            now,
            &tz("Asia/Tokyo"),
        );
        assert_eq!(
            kind,
            LimitKind::Resets {
                at: at("2026-07-31T02:00:00Z")
            }
        );
        let kind = classify(
            "You've hit your weekly limit · resets Sep 15 at 7pm",
            at("2026-09-08T00:00:00Z"),
            &TimeZone::UTC,
        );
        assert_eq!(
            kind,
            LimitKind::Resets {
                at: at("2026-09-15T19:00:00Z")
            }
        );
    }

    #[test]
    fn durations_in_words_or_units() {
        let now = at("2026-11-23T00:00:00Z");
        let cases = [
            ("Gemini quota exhausted; reset after 2h52m39s.", 2 * 3600 + 52 * 60 + 39),
            (
                "Upgrade to Pro or try again in 5 days 22 hours 11 minutes.",
                ((5 * 24 + 22) * 60 + 11) * 60,
            ),
            ("Please try again in 2.252s. Visit https://platform.openai.com", 2),
            ("✻ Session limit reached · Retrying in 21s (4:21am) · attempt 1/10", 21),
        ];
        for (text, secs) in cases {
            let LimitKind::Resets { at: when } = classify(text, now, &TimeZone::UTC) else {
                panic!("{text}: no reset read");
            };
            assert_eq!(when.since(now).as_secs(), secs, "{text}");
        }
    }

    #[test]
    fn limits_that_waiting_will_not_lift() {
        let now = at("2026-11-23T00:00:00Z");
        for text in [
            "■ Quota exceeded. Check your plan and billing details.",
            "You've hit your spend limit",
            "Error: insufficient_quota",
            "Your credit balance is too low to access the Anthropic API.",
        ] {
            assert_eq!(classify(text, now, &TimeZone::UTC), LimitKind::NoReset, "{text}");
        }
    }

    #[test]
    fn throttles_wait_the_configured_cooldown() {
        let now = at("2026-11-23T00:00:00Z");
        for text in [
            "● API Error: Request rejected (429) · This request would exceed your account's rate limit. Please try again later.",
            "■ exceeded retry limit, last status: 429 Too Many Requests",
            "API Error: 529 {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}",
            "resets 5 and counting",
        ] {
            assert_eq!(classify(text, now, &TimeZone::UTC), LimitKind::Throttle, "{text}");
        }
    }
}
