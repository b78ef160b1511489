//! `vigil metrics` and `[vigil] metrics_file`: the fleet as Prometheus text
//! (exposition format 0.0.4, what node_exporter's textfile collector and a scrape
//! read). Built from the same [`StatusReport`] as `vigil status`, so both always say
//! the same; formats only.
//!
//! Names are stable (dashboards and alert rules use them): every family starts
//! `vigil_`, carries `project`, and per-agent families carry `agent`. Times are gauges
//! in seconds; `*_timestamp_seconds` are Unix times, so an alert can compute an age
//! from a file that a dead owner stopped rewriting (`time() - …`).

use std::fmt::Write as _;

use super::status::{AgentStatus, StatusReport};
use crate::engine::{Activity, Escalation, Lifecycle, Time};

/// What the metrics add to the status report: facts the report does not hold.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras {
    /// Events in the outbox not yet delivered to every channel.
    pub notifications_pending: u64,
}

/// Each lifecycle an agent can be in, and `not_started` for one never started, so a
/// count of 0 is written too (an alert on `> 0` needs the series to exist).
const LIFECYCLES: [Option<Lifecycle>; 6] = [
    None,
    Some(Lifecycle::Booting),
    Some(Lifecycle::Working),
    Some(Lifecycle::Completed),
    Some(Lifecycle::Stalled),
    Some(Lifecycle::Zombie),
];

const ACTIVITIES: [Activity; 5] = [
    Activity::Active,
    Activity::Idle,
    Activity::Waiting,
    Activity::Quiet,
    Activity::RateLimited,
];

/// The report as Prometheus text, read at `now`.
pub fn render(report: &StatusReport, extras: Extras, now: Time) -> String {
    let mut out = Out::new(&report.project);
    let owner = report.owner.as_ref();

    out.family(
        "vigil_owner_up",
        "gauge",
        "1 while a live vigil owns the project, else 0.",
    );
    out.sample("vigil_owner_up", &[], u8::from(owner.is_some()));
    out.family(
        "vigil_owner_degraded",
        "gauge",
        "1 while the owner cannot write its state dir (it observes but acts on nothing).",
    );
    out.sample(
        "vigil_owner_degraded",
        &[],
        u8::from(owner.is_some_and(|o| o.degraded.is_some())),
    );
    if let Some(o) = owner {
        if let Some(age) = o.heartbeat_age_s {
            out.family(
                "vigil_heartbeat_age_seconds",
                "gauge",
                "Seconds since the owner's last heartbeat, when this was written.",
            );
            out.sample("vigil_heartbeat_age_seconds", &[], age);
            out.family(
                "vigil_heartbeat_timestamp_seconds",
                "gauge",
                "Unix time of the owner's last heartbeat (alert on time() minus this).",
            );
            out.sample("vigil_heartbeat_timestamp_seconds", &[], seconds(now) - age);
        }
        if let Some(ms) = o.last_pass_ms {
            out.family(
                "vigil_pass_duration_seconds",
                "gauge",
                "How long the owner's last supervision pass took.",
            );
            out.sample("vigil_pass_duration_seconds", &[], ms as f64 / 1000.0);
        }
    }
    out.family(
        "vigil_notifications_pending",
        "gauge",
        "Notifications in the outbox not yet delivered.",
    );
    out.sample("vigil_notifications_pending", &[], extras.notifications_pending as f64);

    out.family(
        "vigil_agents",
        "gauge",
        "Configured agents by lifecycle (not_started: never started).",
    );
    for lifecycle in LIFECYCLES {
        let n = report.agents.iter().filter(|a| a.lifecycle == lifecycle).count();
        out.sample("vigil_agents", &[("lifecycle", lifecycle_name(lifecycle))], n as f64);
    }
    out.family(
        "vigil_agents_by_activity",
        "gauge",
        "Agents by what their screen last showed.",
    );
    for activity in ACTIVITIES {
        let n = report.agents.iter().filter(|a| a.activity == Some(activity)).count();
        out.sample("vigil_agents_by_activity", &[("activity", activity.as_str())], n as f64);
    }

    out.family(
        "vigil_agent_info",
        "gauge",
        "Always 1; the labels say the agent's lifecycle, activity and escalation.",
    );
    for a in &report.agents {
        let labels = [
            ("agent", a.name.as_str()),
            ("lifecycle", lifecycle_name(a.lifecycle)),
            ("activity", a.activity.map_or("none", Activity::as_str)),
            ("escalation", a.escalation.as_str()),
            ("stopped", if a.stopped { "true" } else { "false" }),
        ];
        out.sample("vigil_agent_info", &labels, 1);
    }
    for (name, kind, help, value) in PER_AGENT {
        out.family(name, kind, help);
        for a in &report.agents {
            out.sample(name, &[("agent", a.name.as_str())], value(a, now));
        }
    }
    out.text
}

/// One number per agent: name, type, help, and how to read it from the report.
type PerAgent = (&'static str, &'static str, &'static str, fn(&AgentStatus, Time) -> f64);

const PER_AGENT: [PerAgent; 6] = [
    (
        "vigil_agent_incarnation",
        "gauge",
        "The agent's incarnation (0 before its first start).",
        |a, _| f64::from(a.incarnation),
    ),
    (
        "vigil_agent_restarts_total",
        "counter",
        "Restarts of the agent that vigil made.",
        |a, _| f64::from(a.restarts),
    ),
    (
        "vigil_agent_recent_crashes",
        "gauge",
        "Crashes inside the crash-loop window.",
        |a, _| a.crashes.len() as f64,
    ),
    (
        "vigil_agent_cooldown_seconds",
        "gauge",
        "Seconds left before vigil acts on the agent again (a backoff, a crash-loop hold or a rate limit); 0 when none.",
        |a, now| {
            let until = a.cooldown_until.or(a.rate_limit.as_ref().map(|r| r.until));
            until.map_or(0.0, |u| u.since(now).as_secs_f64())
        },
    ),
    (
        "vigil_agent_escalation_level",
        "gauge",
        "How far up the ladder the agent is: 0 none, 1 warn, 2 nudge, 3 triage, 4 terminate.",
        |a, _| f64::from(level(a.escalation)),
    ),
    (
        "vigil_agent_unchanged_checks",
        "gauge",
        "Polls in a row the agent's screen has not changed.",
        |a, _| f64::from(a.unchanged_checks),
    ),
];

fn lifecycle_name(lifecycle: Option<Lifecycle>) -> &'static str {
    lifecycle.map_or("not_started", Lifecycle::as_str)
}

fn level(e: Escalation) -> u8 {
    match e {
        Escalation::None => 0,
        Escalation::Warn => 1,
        Escalation::Nudge => 2,
        Escalation::Triage => 3,
        Escalation::Terminate => 4,
    }
}

/// A time as Unix seconds, to the millisecond.
fn seconds(t: Time) -> f64 {
    t.millis() as f64 / 1000.0
}

/// The text being written, with the project label every sample carries.
struct Out<'a> {
    text: String,
    project: &'a str,
}

impl<'a> Out<'a> {
    fn new(project: &'a str) -> Self {
        Self {
            text: String::new(),
            project,
        }
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", help_escaped(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<f64>) {
        let _ = write!(self.text, "{name}{{project=\"{}\"", label_escaped(self.project));
        for (k, v) in labels {
            let _ = write!(self.text, ",{k}=\"{}\"", label_escaped(v));
        }
        let _ = writeln!(self.text, "}} {}", value_text(value.into()));
    }
}

/// A sample's value as the format writes it: whole numbers without a fraction, the
/// rest to the millisecond.
fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

/// A label value: `\`, `"` and newlines escaped, as the format requires. Names come
/// from the config (agents) or a path (the project); nothing else can break a line.
fn label_escaped(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text: `\` and newlines escaped.
fn help_escaped(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_that_would_break_a_line_are_escaped() {
        assert_eq!(label_escaped("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn values_are_whole_or_to_the_millisecond() {
        assert_eq!(value_text(3.0), "3");
        assert_eq!(value_text(1.5), "1.5");
        assert_eq!(value_text(0.123_456), "0.123");
        assert_eq!(value_text(f64::NAN), "NaN");
    }
}
