//! Signals: what an agent's own hook system or notify command said about itself
//! (Claude Code and Gemini CLI hooks, Codex's notify command), as evidence with a
//! source, an event and an age. Recognising a payload, admitting a signal (right agent
//! and incarnation, not too old, not from the future), how long one counts, and how it
//! weighs against the screen: pane death > a fresh signal > the screen > recorded
//! state. Pure: payloads are bytes given as arguments, time is an argument.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mind::{AgentName, Incarnation};
use super::screen::{ScreenRead, Waiting, WaitingRule};
use super::time::{Time, human};

/// Longest payload `vigil hook` reads; a real one is a few hundred bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Longest event name, kind or tool name kept from a payload.
const MAX_NAME: usize = 64;
/// Longest message kept from a payload (for reasons).
const MAX_WORDS: usize = 160;
/// How long a signal counts by default (`signal_fresh`); then the screen decides again.
pub const FRESH: Duration = Duration::from_secs(10 * 60);
/// How far ahead of the owner's clock a signal's time may be.
pub const SKEW: Duration = Duration::from_secs(60);

/// Which agent CLI spoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Claude,
    Codex,
    Gemini,
}

impl Source {
    /// The CLI's name in reasons.
    pub fn name(self) -> &'static str {
        match self {
            Source::Claude => "Claude Code",
            Source::Codex => "Codex",
            Source::Gemini => "Gemini CLI",
        }
    }

    /// How it reached vigil, in reasons.
    pub fn channel(self) -> &'static str {
        match self {
            Source::Claude | Source::Gemini => "hook",
            Source::Codex => "notify",
        }
    }
}

/// What a signal says the agent is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Said {
    /// A prompt was submitted or a tool runs.
    Working,
    /// A dialog needs a human (permission, a question).
    Waiting,
    /// Its turn is over; it waits at its prompt.
    Idle,
    /// It hit a rate or usage limit; `resets_at` when the agent said when it lifts.
    Limit { resets_at: Option<Time> },
    /// Its turn ended on an error other than a limit.
    Failed { error: String },
    /// Its session ended (the pane's end follows).
    Ended,
}

impl Said {
    pub fn as_str(&self) -> &'static str {
        match self {
            Said::Working => "working",
            Said::Waiting => "waiting",
            Said::Idle => "idle",
            Said::Limit { .. } => "limit",
            Said::Failed { .. } => "failed",
            Said::Ended => "ended",
        }
    }
}

/// One recognised payload: who spoke, the event as it named it, what it means, and
/// words for reasons ("asked for permission to use Bash").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heard {
    pub source: Source,
    pub event: String,
    pub said: Said,
    pub words: String,
    /// How it reached vigil, when not the source's usual way ([`Source::channel`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
    /// Codex's `thread-id` (its rollout file's name ends with it), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

/// A way a signal reaches vigil other than the CLI's hooks or notify command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Claude Code's `~/.claude/sessions/<pid>.json`, trusted only for the live process
    /// it names.
    SessionFile,
    /// Codex's rollout file (`usage_limit_exceeded` at the end of a turn).
    RolloutFile,
}

impl Heard {
    /// What a Codex rollout file's `usage_limit_exceeded` says: a limit, its reset
    /// left to the rollout's windows.
    pub fn rollout_usage_limit() -> Self {
        Heard {
            source: Source::Codex,
            event: "usage_limit_exceeded".into(),
            said: Said::Limit { resets_at: None },
            words: "hit its usage limit".into(),
            via: Some(Via::RolloutFile),
            thread: None,
        }
    }

    /// How it reached vigil, in reasons.
    pub fn channel(&self) -> &'static str {
        match self.via {
            Some(Via::SessionFile) => "session file",
            Some(Via::RolloutFile) => "rollout file",
            None => self.source.channel(),
        }
    }
}

/// A payload as `vigil hook` recognised it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Recognised {
    Heard(Heard),
    /// A known CLI's event that says nothing about activity (`SessionStart`, …).
    Unmapped {
        source: Source,
        event: String,
    },
    /// Not a payload of any CLI vigil knows.
    Garbage {
        why: String,
    },
}

/// A signal delivered to the engine: what was heard, from which incarnation, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub agent: AgentName,
    pub incarnation: Incarnation,
    /// When `vigil hook` heard it (the hook's wall clock).
    pub at: Time,
    pub heard: Heard,
}

/// The signal a live incarnation last heard, and the screen it came on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub signal: Signal,
    /// The screen's hash when it was heard: a waiting signal holds while the screen
    /// still shows what it showed then (the dialog has not been answered).
    pub screen: Option<String>,
}

/// Why a signal letter was not taken as evidence, in fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Ignored {
    /// The letter is no payload of a known CLI.
    Garbage { what: String },
    /// A known event that says nothing about activity.
    Unmapped { event: String },
    /// It names an agent the config does not have.
    UnknownAgent { agent: String },
    /// It comes from an incarnation that is not the running one.
    OtherIncarnation { running: Option<Incarnation> },
    /// Heard longer ago than its freshness window.
    TooOld { age_s: u64 },
    /// Its time is ahead of the owner's clock.
    FromTheFuture { ahead_s: u64 },
    /// It is not for this run (another project's vigil, or an older run).
    OtherRun,
    /// A state file that names no live process of the agent's pane (left by a process
    /// that died, its pid since reused).
    Untrusted { what: String },
}

impl Ignored {
    pub fn words(&self) -> String {
        match self {
            Ignored::Garbage { what } => format!("garbage: {what}"),
            Ignored::Unmapped { event } => format!("event `{event}` says nothing about activity"),
            Ignored::UnknownAgent { agent } => format!("unknown agent `{agent}` (not in the config)"),
            Ignored::OtherIncarnation { running: Some(r) } => format!("stale incarnation: {r} runs now"),
            Ignored::OtherIncarnation { running: None } => "stale incarnation: none runs now".into(),
            Ignored::TooOld { age_s } => format!("too old: heard {} ago", human(Duration::from_secs(*age_s))),
            Ignored::FromTheFuture { ahead_s } => {
                format!(
                    "from the future: {} ahead of the owner's clock",
                    human(Duration::from_secs(*ahead_s))
                )
            }
            Ignored::OtherRun => "not for this run".into(),
            Ignored::Untrusted { what } => format!("not trusted: {what}"),
        }
    }
}

/// Whether a signal heard at `at` from `incarnation` counts for an agent whose live
/// incarnation is `running`, at `now`.
pub fn admit(
    incarnation: Incarnation,
    at: Time,
    running: Option<Incarnation>,
    now: Time,
    fresh: Duration,
) -> Result<(), Ignored> {
    if running != Some(incarnation) {
        return Err(Ignored::OtherIncarnation { running });
    }
    let ahead = at.since(now);
    if ahead > SKEW {
        return Err(Ignored::FromTheFuture {
            ahead_s: ahead.as_secs(),
        });
    }
    let age = now.since(at);
    if age >= fresh {
        return Err(Ignored::TooOld { age_s: age.as_secs() });
    }
    Ok(())
}

/// The kept signal, when it still counts at `now`: younger than `fresh`, or a waiting
/// signal whose screen has not changed since (the dialog it announced is still up).
pub fn current<'a>(kept: Option<&'a Kept>, screen: &str, now: Time, fresh: Duration) -> Option<&'a Signal> {
    let kept = kept?;
    let young = now.since(kept.signal.at) < fresh;
    let unanswered = kept.signal.heard.said == Said::Waiting && kept.screen.as_deref() == Some(screen);
    (young || unanswered).then_some(&kept.signal)
}

/// A fresh signal laid over what the screen says: a waiting signal is a dialog (never
/// nudged), working is busy, idle is the prompt. Limits, failures and ends leave the
/// screen as it is (the rate-limit path and the pane's end weigh those).
pub fn overlay(read: &ScreenRead, signal: Option<&Signal>, now: Time) -> ScreenRead {
    let mut read = read.clone();
    let Some(signal) = signal else { return read };
    match signal.heard.said {
        Said::Waiting => {
            read.waiting = Some(Waiting {
                line: cite(signal, now),
                rule: WaitingRule::Signal,
            });
        }
        Said::Working => read.busy = true,
        Said::Idle if read.waiting.is_none() => {
            read.prompt = true;
            read.busy = false;
        }
        Said::Idle | Said::Limit { .. } | Said::Failed { .. } | Said::Ended => {}
    }
    read
}

/// The signal in words with its source and age: "Claude Code asked for permission to
/// use Bash (hook, 12s ago)".
pub fn cite(signal: &Signal, now: Time) -> String {
    let heard = &signal.heard;
    format!(
        "{} {} ({}, {} ago)",
        heard.source.name(),
        heard.words,
        heard.channel(),
        human(now.since(signal.at))
    )
}

/// Recognises a payload: Codex's notify JSON (`type`), or a hook's (`hook_event_name`),
/// told apart between Claude Code and Gemini CLI by the events and fields only each has.
pub fn recognise(payload: &[u8]) -> Recognised {
    let garbage = |why: &str| Recognised::Garbage { why: why.to_owned() };
    if payload.len() > MAX_PAYLOAD {
        return garbage("longer than 64 KiB");
    }
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        return garbage("not JSON");
    };
    let Some(object) = value.as_object() else {
        return garbage("not a JSON object");
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(|s| clean(s, MAX_NAME));
    let words = |key: &str| object.get(key).and_then(Value::as_str).map(|s| clean(s, MAX_WORDS));
    if let Some(kind) = text("type") {
        if object.contains_key("thread-id") || object.contains_key("turn-id") || kind == "agent-turn-complete" {
            let thread = object
                .get("thread-id")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
                .map(str::to_owned);
            return codex(&kind, thread);
        }
        if !object.contains_key("hook_event_name") {
            return garbage("a `type` no known CLI sends");
        }
    }
    let Some(event) = text("hook_event_name") else {
        return garbage("no `hook_event_name` or notify `type`");
    };
    let source = if gemini_event(&event)
        || object.contains_key("timestamp")
        || text("notification_type").as_deref() == Some("ToolPermission")
    {
        Source::Gemini
    } else {
        Source::Claude
    };
    let heard = |said: Said, words: String| {
        Recognised::Heard(Heard {
            source,
            event: event.clone(),
            said,
            words,
            via: None,
            thread: None,
        })
    };
    let tool = text("tool_name");
    let using = |verb: &str| match &tool {
        Some(t) => format!("{verb} {t}"),
        None => verb.trim_end_matches(" using").trim_end_matches(" to use").to_owned(),
    };
    match (source, event.as_str()) {
        (_, "Notification") => {
            let kind = text("notification_type").unwrap_or_default();
            let message = words("message").unwrap_or_default();
            match kind.as_str() {
                "permission_prompt" | "ToolPermission" => heard(Said::Waiting, permission(&message)),
                "elicitation_dialog" | "agent_needs_input" => heard(Said::Waiting, asks(&message)),
                "idle_prompt" => heard(Said::Idle, "waits for input at its prompt".into()),
                _ => Recognised::Unmapped {
                    source,
                    event: format!("{event}/{kind}"),
                },
            }
        }
        (Source::Claude, "PermissionRequest") => heard(Said::Waiting, using("asked for permission to use")),
        (Source::Claude, "Stop") => heard(Said::Idle, "finished its turn".into()),
        (Source::Claude, "StopFailure") => {
            let error = text("error").unwrap_or_else(|| "unknown".into());
            if error == "rate_limit" {
                heard(Said::Limit { resets_at: None }, "hit a rate limit".into())
            } else {
                let words = format!("stopped on an error: {error}");
                heard(Said::Failed { error }, words)
            }
        }
        (Source::Claude, "UserPromptSubmit") | (Source::Gemini, "BeforeAgent") => {
            heard(Said::Working, "got a prompt".into())
        }
        (Source::Claude, "PreToolUse") | (Source::Gemini, "BeforeTool") => heard(Said::Working, using("is using")),
        (Source::Claude, "PostToolUse") | (Source::Gemini, "AfterTool") => heard(Said::Working, using("used")),
        (Source::Gemini, "AfterAgent") => heard(Said::Idle, "finished its turn".into()),
        (_, "SessionEnd") => {
            let why = text("reason").map_or_else(String::new, |r| format!(" ({r})"));
            heard(Said::Ended, format!("ended its session{why}"))
        }
        _ => Recognised::Unmapped { source, event },
    }
}

fn codex(kind: &str, thread: Option<String>) -> Recognised {
    match kind {
        "agent-turn-complete" => Recognised::Heard(Heard {
            source: Source::Codex,
            event: kind.to_owned(),
            said: Said::Idle,
            words: "finished its turn".into(),
            via: None,
            thread,
        }),
        _ => Recognised::Unmapped {
            source: Source::Codex,
            event: kind.to_owned(),
        },
    }
}

/// Events only Gemini CLI sends.
fn gemini_event(event: &str) -> bool {
    matches!(
        event,
        "BeforeAgent"
            | "AfterAgent"
            | "BeforeTool"
            | "AfterTool"
            | "BeforeModel"
            | "AfterModel"
            | "BeforeToolSelection"
            | "PreCompress"
    )
}

/// "Claude needs your permission to use Bash" → "asked for permission to use Bash".
fn permission(message: &str) -> String {
    match message.split_once("permission to use ") {
        Some((_, tool)) if !tool.is_empty() => format!("asked for permission to use {tool}"),
        _ if message.is_empty() => "asked for permission".into(),
        _ => format!("asked for permission: «{message}»"),
    }
}

fn asks(message: &str) -> String {
    if message.is_empty() {
        "asked a question".into()
    } else {
        format!("needs an answer: «{message}»")
    }
}

/// Payload text for a reason: control characters escaped, one line, bounded.
fn clean(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.chars().count() >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload from `fixtures/hooks/` (embedded: the engine reads no files).
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/hooks/", $name))[..],
            )
        };
    }

    fn said((name, bytes): (&str, &[u8])) -> (Source, Said, String) {
        match recognise(bytes) {
            Recognised::Heard(h) => (h.source, h.said, h.words),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn each_clis_payloads_are_recognised_and_mapped() {
        let cases = [
            (fixture!("claude-permission-prompt.json"), Source::Claude, Said::Waiting),
            (
                fixture!("claude-elicitation-dialog.json"),
                Source::Claude,
                Said::Waiting,
            ),
            (fixture!("claude-idle-prompt.json"), Source::Claude, Said::Idle),
            (fixture!("claude-stop.json"), Source::Claude, Said::Idle),
            (
                fixture!("claude-stop-failure-rate-limit.json"),
                Source::Claude,
                Said::Limit { resets_at: None },
            ),
            (
                fixture!("claude-stop-failure-overloaded.json"),
                Source::Claude,
                Said::Failed {
                    error: "overloaded".into(),
                },
            ),
            (
                fixture!("claude-user-prompt-submit.json"),
                Source::Claude,
                Said::Working,
            ),
            (fixture!("claude-pre-tool-use.json"), Source::Claude, Said::Working),
            (fixture!("claude-post-tool-use.json"), Source::Claude, Said::Working),
            (fixture!("claude-session-end.json"), Source::Claude, Said::Ended),
            (fixture!("codex-agent-turn-complete.json"), Source::Codex, Said::Idle),
            (
                fixture!("gemini-notification-tool-permission.json"),
                Source::Gemini,
                Said::Waiting,
            ),
            (fixture!("gemini-after-agent.json"), Source::Gemini, Said::Idle),
            (fixture!("gemini-before-agent.json"), Source::Gemini, Said::Working),
            (fixture!("gemini-before-tool.json"), Source::Gemini, Said::Working),
        ];
        for (payload, source, want) in cases {
            let (got_source, got, _) = said(payload);
            assert_eq!((got_source, got), (source, want), "{}", payload.0);
        }
    }

    #[test]
    fn a_permission_prompt_names_its_tool() {
        let (_, _, words) = said(fixture!("claude-permission-prompt.json"));
        assert_eq!(words, "asked for permission to use Bash");
    }

    #[test]
    fn garbage_and_unknown_events_are_told_apart() {
        for bad in [&b"not json"[..], b"[1,2]", b"{}", b"{\"type\":\"x\"}", &[0xff, 0xfe]] {
            assert!(matches!(recognise(bad), Recognised::Garbage { .. }), "{bad:?}");
        }
        let big = vec![b' '; MAX_PAYLOAD + 1];
        assert!(matches!(recognise(&big), Recognised::Garbage { .. }));
        let start = br#"{"session_id":"s","hook_event_name":"SessionStart","source":"startup"}"#;
        assert_eq!(
            recognise(start),
            Recognised::Unmapped {
                source: Source::Claude,
                event: "SessionStart".into()
            }
        );
    }

    #[test]
    fn payload_text_is_escaped_and_bounded() {
        let evil = format!(
            r#"{{"hook_event_name":"Notification","notification_type":"permission_prompt","message":"permission to use \u001b[2J{}"}}"#,
            "x".repeat(500)
        );
        let Recognised::Heard(h) = recognise(evil.as_bytes()) else {
            panic!()
        };
        assert!(!h.words.chars().any(char::is_control), "{}", h.words);
        assert!(h.words.chars().count() < 200, "{}", h.words.len());
    }

    const T0: Time = Time::from_millis(1_795_000_000_000);

    #[test]
    fn a_signal_counts_only_for_the_running_incarnation_within_its_window() {
        let fresh = Duration::from_secs(60);
        let now = T0.plus(Duration::from_secs(10));
        assert_eq!(admit(Incarnation(2), T0, Some(Incarnation(2)), now, fresh), Ok(()));
        assert_eq!(
            admit(Incarnation(1), T0, Some(Incarnation(2)), now, fresh),
            Err(Ignored::OtherIncarnation {
                running: Some(Incarnation(2))
            })
        );
        assert_eq!(
            admit(Incarnation(2), T0, Some(Incarnation(2)), T0.plus(fresh), fresh),
            Err(Ignored::TooOld { age_s: 60 })
        );
        assert_eq!(
            admit(
                Incarnation(2),
                now.plus(Duration::from_secs(120)),
                Some(Incarnation(2)),
                now,
                fresh
            ),
            Err(Ignored::FromTheFuture { ahead_s: 120 })
        );
    }

    fn kept(said: Said, screen: &str) -> Kept {
        Kept {
            signal: Signal {
                agent: AgentName::new("a").unwrap(),
                incarnation: Incarnation(1),
                at: T0,
                heard: Heard {
                    source: Source::Claude,
                    event: "e".into(),
                    said,
                    words: "w".into(),
                    via: None,
                    thread: None,
                },
            },
            screen: Some(screen.into()),
        }
    }

    #[test]
    fn a_stale_signal_expires_but_an_unanswered_dialog_holds() {
        let fresh = Duration::from_secs(60);
        let later = T0.plus(Duration::from_secs(61));
        let working = kept(Said::Working, "h1");
        assert!(current(Some(&working), "h1", T0.plus(Duration::from_secs(59)), fresh).is_some());
        assert!(current(Some(&working), "h1", later, fresh).is_none(), "expired");
        let waiting = kept(Said::Waiting, "h1");
        assert!(current(Some(&waiting), "h1", later, fresh).is_some(), "dialog still up");
        assert!(current(Some(&waiting), "h2", later, fresh).is_none(), "screen moved on");
    }

    #[test]
    fn a_waiting_signal_makes_an_idle_screen_a_dialog_citing_its_source() {
        let read = ScreenRead {
            hash: "h".into(),
            rate_limit: None,
            rate_limit_more: None,
            limit_over: None,
            waiting: None,
            busy: false,
            prompt: true,
            blank: false,
        };
        let mut k = kept(Said::Waiting, "h");
        k.signal.heard.words = "asked for permission to use Bash".into();
        let over = overlay(&read, Some(&k.signal), T0.plus(Duration::from_secs(12)));
        let w = over.waiting.unwrap();
        assert_eq!(w.rule, WaitingRule::Signal);
        assert_eq!(w.line, "Claude Code asked for permission to use Bash (hook, 12s ago)");
        let working = kept(Said::Working, "h");
        assert!(overlay(&read, Some(&working.signal), T0).busy);
        assert_eq!(overlay(&read, None, T0), read);
    }
}
