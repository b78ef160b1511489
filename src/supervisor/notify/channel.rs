//! The channels a notice goes through (`[notify]`: command, webhook, desktop, tmux) and
//! how one notice is delivered through one of them. Blocking, each bounded by the
//! configured timeout; called from the notifier's own thread and `vigil notify --test`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::adapters::helper;
use crate::adapters::tmux::TmuxCli;
use crate::adapters::webhook::{self, Post};
use crate::config::notify::{NotifyConfig, WebhookFormat};
use crate::store::outbox::{Notice, NoticeKind};

/// Most a notify command may print (it is read and dropped).
const MAX_OUTPUT: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Command,
    Webhook,
    Desktop,
    Tmux,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::Command, Channel::Webhook, Channel::Desktop, Channel::Tmux];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Command => "command",
            Channel::Webhook => "webhook",
            Channel::Desktop => "desktop",
            Channel::Tmux => "tmux",
        }
    }

    pub fn parse(word: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == word)
    }
}

/// How a delivery went, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// The channel cannot work here (no session bus, no tmux client): nothing to retry.
    Skipped(String),
}

/// Everything a delivery needs: the `[notify]` settings, where a command runs, and the
/// agents' tmux server.
#[derive(Clone, Debug)]
pub struct Channels {
    pub config: NotifyConfig,
    /// The project directory: the command's working directory.
    pub cwd: PathBuf,
    pub tmux: TmuxCli,
}

impl Channels {
    /// The configured channels, in a fixed order.
    pub fn configured(&self) -> Vec<Channel> {
        let c = &self.config;
        Channel::ALL
            .into_iter()
            .filter(|ch| match ch {
                Channel::Command => c.command.is_some(),
                Channel::Webhook => c.webhook.is_some(),
                Channel::Desktop => c.desktop,
                Channel::Tmux => c.tmux,
            })
            .collect()
    }

    /// Delivers `notice` through `channel` (blocking, bounded by the timeout).
    pub fn deliver(&self, channel: Channel, notice: &Notice) -> Result<Sent, String> {
        match channel {
            Channel::Command => self.command(notice),
            Channel::Webhook => self.webhook(notice),
            Channel::Desktop => self.desktop(notice),
            Channel::Tmux => self.tmux(notice),
        }
    }

    fn command(&self, notice: &Notice) -> Result<Sent, String> {
        let Some(argv) = &self.config.command else {
            return Ok(Sent::Skipped("no command is configured".into()));
        };
        let json = serde_json::to_vec(notice).map_err(|e| e.to_string())?;
        helper::run(argv, &self.cwd, &json, self.config.timeout, MAX_OUTPUT)
            .map(|_| Sent::Delivered)
            .map_err(|e| format!("`{}` {e}", argv[0]))
    }

    fn webhook(&self, notice: &Notice) -> Result<Sent, String> {
        let Some(hook) = &self.config.webhook else {
            return Ok(Sent::Skipped("no webhook is configured".into()));
        };
        let post = body(&hook.url, hook.format, notice).map_err(|e| e.to_string())?;
        webhook::send(&post, self.config.timeout)
            .map(|()| Sent::Delivered)
            .map_err(|e| e.to_string())
    }

    fn desktop(&self, notice: &Notice) -> Result<Sent, String> {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none_or(|v| v.is_empty()) {
            return Ok(Sent::Skipped(
                "no session bus (DBUS_SESSION_BUS_ADDRESS is not set)".into(),
            ));
        }
        let urgency = if notice.event == NoticeKind::Resolved {
            "--urgency=normal"
        } else {
            "--urgency=critical"
        };
        let argv: Vec<String> = [
            "notify-send",
            "--app-name=vigil",
            urgency,
            "--",
            &notice.title(),
            &body_text(notice),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        match helper::run(&argv, &self.cwd, b"", self.config.timeout, MAX_OUTPUT) {
            Ok(_) => Ok(Sent::Delivered),
            Err(helper::HelperError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Sent::Skipped("`notify-send` is not on PATH".into()))
            }
            Err(e) => Err(format!("`notify-send` {e}")),
        }
    }

    fn tmux(&self, notice: &Notice) -> Result<Sent, String> {
        let message = notice.text().replace('\n', " — ");
        match self.tmux.display_to_clients(&message) {
            Ok(0) => Ok(Sent::Skipped("no client is attached to the agents' tmux server".into())),
            Ok(_) => Ok(Sent::Delivered),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The text of a notice without its title (for channels that show the title apart).
fn body_text(notice: &Notice) -> String {
    let text = notice.text();
    let title = format!("{}: ", notice.title());
    text.strip_prefix(&title).map(str::to_owned).unwrap_or(text)
}

/// The request a webhook of `format` gets for `notice`.
pub fn body(url: &str, format: WebhookFormat, notice: &Notice) -> Result<Post, serde_json::Error> {
    Ok(match format {
        WebhookFormat::Json => Post {
            url: url.to_owned(),
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(notice)?,
        },
        WebhookFormat::Ntfy => {
            let (priority, tags) = match notice.event {
                NoticeKind::Resolved => ("default", "white_check_mark"),
                NoticeKind::Test => ("low", "test_tube"),
                NoticeKind::Raised(_) | NoticeKind::Digest => ("high", "warning"),
            };
            Post {
                url: url.to_owned(),
                content_type: "text/plain; charset=utf-8",
                headers: vec![
                    ("Title", notice.title()),
                    ("Priority", priority.to_owned()),
                    ("Tags", tags.to_owned()),
                ],
                body: body_text(notice).into_bytes(),
            }
        }
        WebhookFormat::Slack => Post {
            url: url.to_owned(),
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(&serde_json::json!({ "text": notice.text() }))?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Alert, Time};
    use crate::store::outbox::NOTICE_VERSION;

    fn notice() -> Notice {
        Notice {
            version: NOTICE_VERSION,
            id: "1-2-3".into(),
            time: Time::from_millis(0),
            project: "p".into(),
            event: NoticeKind::Raised(Alert::Waiting),
            resolves: None,
            agent: Some("backend".into()),
            incarnation: Some(2),
            reason: "«Do you trust this folder?» is waiting for an answer".into(),
            last_lines: vec!["Do you trust this folder?".into(), "> 1. Yes".into()],
            attach: Some("tmux -L s attach-session -t =p-backend".into()),
            digest: vec![],
        }
    }

    #[test]
    fn each_webhook_format_shapes_the_body_its_service_expects() {
        let n = notice();
        let json = body("http://x", WebhookFormat::Json, &n).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
        assert_eq!(v["event"], "waiting");
        let ntfy = body("http://x", WebhookFormat::Ntfy, &n).unwrap();
        assert_eq!(ntfy.headers[0], ("Title", "vigil: backend waiting".to_owned()));
        assert_eq!(ntfy.headers[1].1, "high");
        let text = String::from_utf8(ntfy.body).unwrap();
        assert!(
            text.starts_with("«Do you trust") && text.contains("last line: > 1. Yes"),
            "{text}"
        );
        let slack = body("http://x", WebhookFormat::Slack, &n).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&slack.body).unwrap();
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with("vigil: backend waiting: «Do you trust")
        );
    }
}
