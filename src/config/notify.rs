//! `[notify]`: where vigil tells a human (a command, a webhook, the desktop, the
//! clients attached to tmux) and which events it tells. Strict like the rest of the
//! config: each problem names its key. Meaning only; delivery is the supervisor's.

use std::collections::BTreeSet;
use std::time::Duration;

use super::diagnostic::did_you_mean;
use super::load::{Loader, Result2};
use super::raw::{RawCommand, RawNotify};
use crate::engine::Alert;

/// How a webhook's body is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The event JSON as it is.
    Json,
    /// ntfy: a plain-text body with `Title`, `Priority` and `Tags` headers.
    Ntfy,
    /// Slack (and compatible): `{"text": …}`.
    Slack,
}

impl WebhookFormat {
    const ALL: [WebhookFormat; 3] = [WebhookFormat::Json, WebhookFormat::Ntfy, WebhookFormat::Slack];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Ntfy => "ntfy",
            WebhookFormat::Slack => "slack",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
}

/// A loaded `[notify]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Run with the event JSON on its stdin (argv only, never a shell of vigil's).
    pub command: Option<Vec<String>>,
    /// How long one delivery (the command, the webhook request) may take.
    pub timeout: Duration,
    pub webhook: Option<Webhook>,
    pub desktop: bool,
    pub tmux: bool,
    /// The alerts told; every one by default.
    pub events: BTreeSet<Alert>,
    /// Whether the end of an episode is told too (`"resolved"` in `events`; by default).
    pub resolved: bool,
    /// Notices delivered one by one per minute at most; the rest of a storm goes as
    /// one digest.
    pub max_per_minute: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            command: None,
            timeout: DEFAULT_TIMEOUT,
            webhook: None,
            desktop: false,
            tmux: false,
            events: Alert::ALL.into_iter().collect(),
            resolved: true,
            max_per_minute: DEFAULT_MAX_PER_MINUTE,
        }
    }
}

impl NotifyConfig {
    /// Whether any channel is configured.
    pub fn any(&self) -> bool {
        self.command.is_some() || self.webhook.is_some() || self.desktop || self.tmux
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_PER_MINUTE: u32 = 10;
/// Longest webhook URL accepted.
const MAX_URL: usize = 2048;

impl Loader<'_> {
    pub(super) fn notify(&self, raw: &Option<RawNotify>) -> Result2<NotifyConfig> {
        let Some(raw) = raw else {
            return Ok(NotifyConfig::default());
        };
        let d = NotifyConfig::default();
        let command = match &raw.command {
            None => None,
            Some(c) => match c.get_ref() {
                RawCommand::Argv(argv) if argv.first().is_some_and(|p| !p.trim().is_empty()) => Some(argv.clone()),
                RawCommand::Argv(_) => {
                    return Err(self.error(
                        Some(c.span()),
                        "notify.command",
                        "the command is empty; give the program to run, e.g. command = [\"./notify.sh\"]",
                    ));
                }
                RawCommand::Shell(s) => {
                    return Err(self.error(
                        Some(c.span()),
                        "notify.command",
                        format!(
                            "a notify command is an array (program and arguments), never a shell string; e.g. command = [\"sh\", \"-c\", {s:?}] if a shell is really wanted"
                        ),
                    ));
                }
            },
        };
        let timeout = match &raw.timeout {
            Some(t) if t.get_ref().0.is_zero() || t.get_ref().0 > Duration::from_secs(600) => {
                return Err(self.error(
                    Some(t.span()),
                    "notify.timeout",
                    "a notify timeout must be more than 0s and at most 10m",
                ));
            }
            Some(t) => t.get_ref().0,
            None => d.timeout,
        };
        let webhook = self.webhook(raw)?;
        let (events, resolved) = self.events(raw)?;
        Ok(NotifyConfig {
            command,
            timeout,
            webhook,
            desktop: raw.desktop.as_ref().is_some_and(|b| *b.get_ref()),
            tmux: raw.tmux.as_ref().is_some_and(|b| *b.get_ref()),
            events,
            resolved,
            max_per_minute: self.count(
                &raw.max_per_minute,
                "notify.max_per_minute",
                1..=10_000,
                d.max_per_minute,
            )?,
        })
    }

    fn webhook(&self, raw: &RawNotify) -> Result2<Option<Webhook>> {
        let format = match &raw.format {
            None => WebhookFormat::Json,
            Some(f) => match WebhookFormat::ALL.into_iter().find(|w| w.as_str() == f.get_ref()) {
                Some(w) => w,
                None => {
                    return Err(self.error(
                        Some(f.span()),
                        "notify.format",
                        format!("unknown webhook format `{}`; expected json, ntfy or slack", f.get_ref()),
                    ));
                }
            },
        };
        let Some(url) = &raw.webhook else {
            if let Some(f) = &raw.format {
                return Err(self.error(
                    Some(f.span()),
                    "notify.format",
                    "`format` shapes the webhook's body, but no `webhook` is set",
                ));
            }
            return Ok(None);
        };
        let text = url.get_ref().trim();
        let scheme_ok = ["http://", "https://"]
            .iter()
            .any(|s| text.len() > s.len() && text[..s.len()].eq_ignore_ascii_case(s));
        if !scheme_ok || text.len() > MAX_URL || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(self.error(
                Some(url.span()),
                "notify.webhook",
                format!(
                    "a webhook is an http:// or https:// URL of at most {MAX_URL} characters, without spaces (e.g. \"https://ntfy.sh/my-topic\")"
                ),
            ));
        }
        Ok(Some(Webhook {
            url: text.to_owned(),
            format,
        }))
    }

    fn events(&self, raw: &RawNotify) -> Result2<(BTreeSet<Alert>, bool)> {
        let Some(list) = &raw.events else {
            return Ok((Alert::ALL.into_iter().collect(), true));
        };
        let mut events = BTreeSet::new();
        let mut resolved = false;
        for word in list.get_ref() {
            if word == "resolved" {
                resolved = true;
                continue;
            }
            match Alert::parse(word) {
                Some(a) => {
                    events.insert(a);
                }
                None => {
                    let names = Alert::ALL.iter().map(|a| a.as_str()).chain(["resolved"]);
                    let hint = did_you_mean(word, names)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    let all: Vec<&str> = Alert::ALL.iter().map(|a| a.as_str()).collect();
                    return Err(self.error(
                        Some(list.span()),
                        "notify.events",
                        format!("unknown event `{word}`{hint} (known: {}, resolved)", all.join(", ")),
                    ));
                }
            }
        }
        Ok((events, resolved))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(notify: &str) -> Result<Config, String> {
        let text = format!("[notify]\n{notify}\n[[agent]]\nname = \"a\"\ncommand = \"x\"\ncwd = \"/tmp\"\n");
        Config::parse(&text, Path::new("/tmp/proj/vigil.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn channels_and_events_are_read_with_their_defaults() {
        let c =
            parse("command = [\"./n.sh\", \"--x\"]\nwebhook = \"https://ntfy.sh/t\"\nformat = \"ntfy\"\ntmux = true")
                .unwrap();
        let n = c.notify;
        assert_eq!(n.command, Some(vec!["./n.sh".into(), "--x".into()]));
        assert_eq!(n.webhook.unwrap().format, WebhookFormat::Ntfy);
        assert!(n.tmux && !n.desktop && n.resolved);
        assert_eq!(n.events.len(), Alert::ALL.len());
        assert_eq!(n.timeout, DEFAULT_TIMEOUT);
        let c = parse("desktop = true\nevents = [\"waiting\", \"crash_loop\"]").unwrap();
        assert_eq!(
            c.notify.events,
            [Alert::Waiting, Alert::CrashLoop].into_iter().collect()
        );
        assert!(!c.notify.resolved, "resolved only when asked for");
    }

    #[test]
    fn bad_notify_keys_are_errors_that_name_the_key() {
        for (text, key, words) in [
            ("command = \"notify-send hi\"", "notify.command", "never a shell string"),
            ("command = []", "notify.command", "empty"),
            ("webhook = \"ftp://x\"", "notify.webhook", "http:// or https://"),
            ("webhook = \"https://a b\"", "notify.webhook", "without spaces"),
            ("format = \"slack\"", "notify.format", "no `webhook`"),
            (
                "webhook = \"http://127.0.0.1:9/\"\nformat = \"xml\"",
                "notify.format",
                "json, ntfy or slack",
            ),
            ("events = [\"waitin\"]", "notify.events", "did you mean `waiting`"),
            ("timeout = \"0s\"", "notify.timeout", "more than 0s"),
            ("sound = true", "notify", "unknown field"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(key) && err.contains(words), "{text}: {err}");
        }
    }
}
