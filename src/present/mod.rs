//! How vigil's state and journal read to a person (tables, one line per record) and to
//! a program (`--json`, with the field names of the CLI contract in DESIGN.md).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::config::Config;
use crate::engine::time::human;
use crate::engine::{AgentRecord, Command, Time};
use crate::store::{Store, read_journal};
use crate::supervisor::spawn::UpResult;

pub fn command_words(command: &Command) -> String {
    match command {
        Command::Up(a) => format!("start {a}"),
        Command::Stop(a) => format!("stop {a}"),
        Command::Restart(a) => format!("restart {a}"),
        Command::Nudge(a) => format!("nudge {a}"),
        Command::Triage(a) => format!("triage {a}"),
    }
}

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

/// Prints what a pass journaled: a line each for people, or raw JSON lines.
pub fn print_records(records: &[Value], json: bool) {
    let mut out = std::io::stdout().lock();
    for r in records {
        let line = if json {
            Some(r.to_string())
        } else {
            record_line(r, false)
        };
        if let Some(line) = line {
            let _ = writeln!(out, "{line}");
        }
    }
}

pub fn print_up(results: &[UpResult], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&json!({ "agents": results }))?);
        return Ok(());
    }
    let width = results.iter().map(|r| r.name.as_str().len()).max().unwrap_or(5).max(5);
    for r in results {
        let outcome = serde_json::to_value(&r.outcome)?;
        println!(
            "{:width$}  {:8}  {}",
            r.name.as_str(),
            outcome.as_str().unwrap_or(""),
            r.reason
        );
        for line in &r.last_lines {
            println!("{:width$}  {:8}  │ {line}", "", "");
        }
    }
    Ok(())
}

/// One agent in `status --json`, with the contract's field names.
fn agent_json(name: &str, session: String, rec: Option<&AgentRecord>, stopped: bool) -> Value {
    let Some(r) = rec else {
        return json!({
            "name": name, "incarnation": 0, "lifecycle": null, "activity": null,
            "escalation": "none", "session": session, "pane_pid": null, "since": null,
            "last_change": null, "unchanged_checks": 0, "restarts": 0, "crashes": [],
            "cooldown_until": null, "rate_limit": null, "last_exit": null,
            "checkpoint": null, "handoff_pending": false, "stopped": stopped,
            "reason": if stopped { "stopped by the user; `vigil up` starts it" } else { "not started yet (`vigil up` or `vigil watch` starts it)" },
        });
    };
    json!({
        "name": name,
        "incarnation": r.incarnation.0,
        "lifecycle": r.lifecycle,
        "activity": r.activity,
        "escalation": r.escalation,
        "session": r.session,
        "pane_pid": r.pane_pid,
        "since": r.since,
        "last_change": r.last_change,
        "unchanged_checks": r.unchanged_checks,
        "restarts": r.restarts,
        "crashes": r.crashes,
        "cooldown_until": r.cooldown_until,
        "rate_limit": r.rate_limit.as_ref().map(|rl| json!({"until": rl.until, "renewals": rl.renewals, "kind": rl.kind, "line": rl.line})),
        "checkpoint": r.checkpoint,
        "handoff_pending": r.handoff.is_some(),
        "last_exit": r.last_exit.as_ref().map(|e| json!({"code": e.code, "reason": e.reason, "last_lines": e.last_lines})),
        "stopped": stopped,
        "reason": r.reason,
    })
}

pub fn print_status(config: &Config, store: Option<&Store>, now: Time, json: bool) -> Result<()> {
    let (mind, saved_at, problem) = match store.map(Store::peek_mind) {
        Some(Ok(Some((m, t)))) => (m, Some(t), None),
        Some(Err(e)) => (Default::default(), None, Some(e)),
        _ => (Default::default(), None, None),
    };
    let owner = store.and_then(Store::live_owner);
    let heartbeat = store.and_then(Store::heartbeat);
    let owner_json = owner.as_ref().map(|o| {
        let age = heartbeat
            .as_ref()
            .filter(|h| h.pid == o.pid && h.epoch == o.epoch)
            .map(|h| (now.since(h.t).as_secs_f64() * 10.0).round() / 10.0);
        json!({"pid": o.pid, "epoch": o.epoch, "heartbeat_age_s": age, "role": o.role, "since": o.started_at})
    });
    let agents: Vec<Value> = config
        .agents
        .iter()
        .map(|a| {
            let stopped = mind.stopped.contains(&a.name);
            agent_json(
                a.name.as_str(),
                config.session_of(&a.name),
                mind.agents.get(&a.name),
                stopped,
            )
        })
        .collect();
    if json {
        let doc = json!({
            "project": config.project,
            "config": config.path,
            "saved_at": saved_at,
            "problem": problem,
            "owner": owner_json,
            "agents": agents,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    match (&owner, &owner_json) {
        (Some(o), Some(j)) => {
            let age = j["heartbeat_age_s"]
                .as_f64()
                .map_or("no heartbeat yet".into(), |a| format!("heartbeat {a:.0}s ago"));
            println!(
                "owner: pid {} (`vigil {}`, epoch {}), {age}",
                o.pid,
                o.role.as_str(),
                o.epoch
            );
        }
        _ => println!(
            "owner: none — nothing supervises this project now (run `vigil watch`, or `vigil tick` from a timer)"
        ),
    }
    if let Some(t) = saved_at {
        println!("state: recorded {} ago", human(now.since(t)));
    }
    if let Some(p) = problem {
        println!("state: {p}");
    }
    println!();
    let width = agents.iter().map(|a| text(a, "name").len()).max().unwrap_or(5).max(5);
    println!(
        "{:width$}  {:>4}  {:9}  {:12}  {:9}  {:>8}  {:>7}  REASON",
        "AGENT", "INC", "LIFECYCLE", "ACTIVITY", "ESCALATE", "RESTARTS", "FOR"
    );
    for (a, agent) in agents.iter().zip(&config.agents) {
        let since: Option<Time> = serde_json::from_value(a["since"].clone()).ok();
        let for_ = since.map_or("-".into(), |s| human(Duration::from_secs(now.since(s).as_secs())));
        println!(
            "{:width$}  {:>4}  {:9}  {:12}  {:9}  {:>8}  {:>7}  {}",
            text(a, "name"),
            format!("#{}", a["incarnation"]),
            a["lifecycle"].as_str().unwrap_or("-"),
            a["activity"].as_str().unwrap_or("-"),
            text(a, "escalation"),
            a["restarts"],
            for_,
            text(a, "reason"),
        );
        if let Some(cp) = mind.agents.get(&agent.name).and_then(|r| r.checkpoint.as_ref()) {
            let path = store.map_or_else(String::new, |s| {
                format!(" ({})", s.checkpoint_path(&agent.name).display())
            });
            println!(
                "{:width$}  checkpoint of {} at {}: {}{path}",
                "",
                cp.incarnation,
                cp.at.clock(),
                cp.reason
            );
        }
    }
    Ok(())
}

/// Prints the last `lines` records, then (with `follow`) new ones as they come.
pub fn print_log(path: &Path, json: bool, follow: bool, lines: usize) -> Result<()> {
    let records = read_journal(path)?;
    let shown: Vec<&Value> = records
        .iter()
        .filter(|r| json || record_line(r, true).is_some())
        .collect();
    let skip = shown.len().saturating_sub(lines);
    for r in &shown[skip..] {
        print_one(r, json);
    }
    if !follow {
        return Ok(());
    }
    let mut offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut pending = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let Ok(mut file) = std::fs::File::open(path) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // rotated or replaced
        }
        if len == offset {
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut chunk = String::new();
        file.read_to_string(&mut chunk)?;
        offset = len;
        pending.push_str(&chunk);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                print_one(&v, json);
            }
        }
    }
}

fn print_one(v: &Value, json: bool) {
    let line = if json {
        Some(v.to_string())
    } else {
        record_line(v, true)
    };
    if let Some(line) = line {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            std::process::exit(0); // the reader went away (e.g. `| head`)
        }
    }
}
