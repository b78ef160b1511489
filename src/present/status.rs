//! `vigil status`: what vigil believes about each configured agent and why, as a table
//! for people and as JSON with the field names of the CLI contract. Reads the state dir
//! (snapshot, owner record, heartbeat) and never writes it.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::config::Config;
use crate::engine::time::human;
use crate::engine::{AgentRecord, Time};
use crate::store::Store;

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
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
