//! One journal record as a line for a person, for `vigil log`, `vigil watch` and the
//! dashboard's event log. Formats only.

use serde_json::Value;

use crate::engine::Time;

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn time_of(v: &Value, full: bool) -> String {
    let t: Option<Time> = serde_json::from_value(v["t"].clone()).ok();
    match t {
        Some(t) if full => t.to_string(),
        Some(t) => t.clock(),
        None => "--:--:--".into(),
    }
}

/// One journal record as a line for a person; `None` for records only machines need.
pub fn record_line(v: &Value, full_time: bool) -> Option<String> {
    let t = time_of(v, full_time);
    let who = |v: &Value| {
        let agent = text(v, "agent");
        match v.get("incarnation").and_then(Value::as_u64) {
            Some(i) => format!("{agent} #{i}"),
            None => agent.to_owned(),
        }
    };
    let line = match text(v, "kind") {
        "event" => {
            let what = match (text(v, "event"), text(v, "to")) {
                ("lifecycle", to) => format!("is {to}"),
                ("activity", to) => format!("is {}", to.replace('_', " ")),
                ("adopted", _) => "adopted".into(),
                ("held", _) => "held".into(),
                ("stray", _) => "stray session".into(),
                _ => "note".into(),
            };
            format!("{t} {} {what}: {}", who(v), text(v, "reason"))
        }
        "intent" => {
            let a = &v["action"];
            let verb = match (text(a, "action"), text(a, "purpose")) {
                ("start", _) => "start".to_owned(),
                ("kill", _) => "kill".to_owned(),
                ("send", "resume") => format!("resume (types {:?})", text(a, "text")),
                ("send", "handoff") => format!("handoff (types {:?})", text(a, "text")),
                ("send", _) => format!("nudge (types {:?})", text(a, "text")),
                (other, _) => other.to_owned(),
            };
            format!("{t} {} → {verb}: {}", who(a), text(a, "reason"))
        }
        "notify" => format!("{t} {} NEEDS A HUMAN: {}", who(v), text(v, "reason")),
        "failed" => format!("{t} ✗ action {} failed: {}", text(v, "id"), text(v, "error")),
        "warning" => format!("{t} warning: {}", text(v, "message")),
        "note" => format!("{t} {}: {}", who(v), text(v, "reason")),
        "command" => {
            let r = &v["request"];
            format!(
                "{t} command from {}: {} {}",
                text(v, "from"),
                text(r, "command"),
                text(r, "agent")
            )
        }
        "triage" => format!(
            "{t} {} → triage: asked `{}` ({})",
            who(v),
            v["command"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            text(v, "reason")
        ),
        "triaged" => {
            let o = &v["outcome"];
            let said = match text(o, "outcome") {
                "answered" => format!("{} — {}", text(o, "verdict"), text(o, "reason")),
                _ => format!("no usable answer: the command {}", text(o, "why")),
            };
            format!("{t} {} triage answer: {said}", who(v))
        }
        "checkpoint" => format!("{t} {} checkpoint written to {}", who(v), text(v, "path")),
        "claimed" => format!(
            "{t} vigil pid {} (`vigil {}`) owns project {} (epoch {})",
            v["pid"],
            text(v, "role"),
            text(v, "project"),
            v["epoch"]
        ),
        "check" => format!("{t} check (pid {}): {}", v["checker"], text(v, "message")),
        "reloaded" => format!("{t} {}", text(v, "message")),
        "released" => format!(
            "{t} vigil pid {} stopped (epoch {}); the agents keep running",
            v["pid"], v["epoch"]
        ),
        _ => return None,
    };
    Some(line)
}
