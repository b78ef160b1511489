//! `vigil notify --test`: sends a test notice through every channel of `[notify]` now,
//! one after the other, and reports each result: exit 0 when all delivered, 1 when any
//! failed, 2 when no channel is configured. Writes nothing to the state dir.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::{Project, Usage, out};
use crate::adapters::clock::now;
use crate::store::outbox::NoticeKind;
use crate::supervisor::notify::{Sent, channels, notice};

impl Project {
    pub(super) fn notify_test(&self, json: bool) -> Result<ExitCode> {
        let channels = channels(&self.config);
        let configured = channels.configured();
        if configured.is_empty() {
            return Err(Usage(format!(
                "{}: no [notify] channel is configured (command, webhook, desktop or tmux); see config.example.toml",
                self.config.path.display()
            ))
            .into());
        }
        let n = notice(
            &self.config.project,
            NoticeKind::Test,
            now(),
            "a test notice from `vigil notify --test`; if you read this, this channel works".into(),
        );
        let mut failed = false;
        let mut results = Vec::new();
        for ch in configured {
            let (outcome, detail) = match channels.deliver(ch, &n) {
                Ok(Sent::Delivered) => ("delivered", String::new()),
                Ok(Sent::Skipped(why)) => ("skipped", why),
                Err(e) => {
                    failed = true;
                    ("failed", e)
                }
            };
            if !json {
                let sep = if detail.is_empty() { "" } else { ": " };
                out::print(&format!("{}: {outcome}{sep}{detail}\n", ch.as_str()));
            }
            results.push(json!({"channel": ch.as_str(), "outcome": outcome, "detail": detail}));
        }
        if json {
            out::print(&format!("{}\n", json!({"id": n.id, "channels": results})));
        }
        Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
    }
}
