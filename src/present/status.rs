//! `vigil status`: what vigil believes about each configured agent and why, as a table
//! for people and as JSON with the field names of the CLI contract. Reads the state dir
//! (snapshot, owner record, heartbeat) and never writes it.

use std::time::Duration;

use std::path::PathBuf;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{fit, shown};
use crate::config::Config;
use crate::engine::signal::{Said, Source};
use crate::engine::time::human;
use crate::engine::{Activity, AgentName, AgentRecord, CheckpointNote, Escalation, Lifecycle, LimitKind, Mind, Time};
use crate::store::{Role, Store};

/// `vigil status --json`: the whole report, with the field names of the CLI contract.
/// Public and deserializable so tests (and other programs) read it typed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub project: String,
    pub config: PathBuf,
    /// When the owner last wrote the snapshot this report is read from.
    pub saved_at: Option<Time>,
    /// Why the snapshot could not be read, when it could not.
    pub problem: Option<String>,
    pub owner: Option<OwnerStatus>,
    pub agents: Vec<AgentStatus>,
}

/// The live process that owns the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnerStatus {
    pub pid: u32,
    pub epoch: u64,
    /// Seconds since its last heartbeat, to a tenth; `None` before its first.
    pub heartbeat_age_s: Option<f64>,
    pub role: Role,
    pub since: Time,
    /// Why the owner cannot write the state dir, while it cannot: it observes but acts
    /// on nothing it cannot journal first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// How long its last pass took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass_ms: Option<u64>,
}

/// One configured agent as vigil last recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: String,
    /// 0 before its first start.
    pub incarnation: u32,
    /// `None` before its first start.
    pub lifecycle: Option<Lifecycle>,
    pub activity: Option<Activity>,
    pub escalation: Escalation,
    pub session: String,
    pub pane_pid: Option<u32>,
    pub since: Option<Time>,
    pub last_change: Option<Time>,
    pub unchanged_checks: u32,
    pub restarts: u32,
    pub crashes: Vec<Time>,
    pub cooldown_until: Option<Time>,
    pub rate_limit: Option<RateLimitStatus>,
    pub checkpoint: Option<CheckpointNote>,
    pub handoff_pending: bool,
    pub last_exit: Option<ExitStatus>,
    pub stopped: bool,
    pub reason: String,
    /// Its pane's process tree at the last look (count, CPU since the pass before, the
    /// busiest names); absent until one was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<crate::engine::Tree>,
    /// Its start held back by host pressure: since when, and the measured cause
    /// (`kind` load | memory | starts, with the figure and the threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<crate::engine::Deferral>,
    /// The last signal the agent's own hooks sent its live incarnation, counted or
    /// not (the reason says whether it decided anything).
    #[serde(default)]
    pub signal: Option<SignalStatus>,
}

/// A signal as `status` shows it: its facts as fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalStatus {
    pub source: Source,
    pub event: String,
    pub said: Said,
    pub words: String,
    pub at: Time,
    /// Seconds since it was heard, to a tenth, when the report was made.
    pub age_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimitStatus {
    pub until: Time,
    pub renewals: u32,
    pub kind: LimitKind,
    pub line: String,
    /// The agent said it goes on by itself once the limit lifts.
    #[serde(default)]
    pub self_resumes: bool,
    /// The structured source its reset time came from (Claude Code's statusLine, a
    /// Codex rollout file), with the window, its use and when the source said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<crate::engine::resets::KnownReset>,
    /// Whether the cooldown's end was answered (resumed by vigil, or by itself).
    #[serde(default)]
    pub resumed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub reason: String,
    pub last_lines: Vec<String>,
}

impl AgentStatus {
    /// An agent as recorded, or (`rec` is `None`) one never started.
    fn new(name: &str, session: String, rec: Option<&AgentRecord>, stopped: bool) -> Self {
        let Some(r) = rec else {
            let reason = if stopped {
                "stopped by the user; `vigil up` starts it"
            } else {
                "not started yet (`vigil up` or `vigil watch` starts it)"
            };
            return Self {
                name: name.to_owned(),
                incarnation: 0,
                lifecycle: None,
                activity: None,
                escalation: Escalation::None,
                session,
                pane_pid: None,
                since: None,
                last_change: None,
                unchanged_checks: 0,
                restarts: 0,
                crashes: Vec::new(),
                cooldown_until: None,
                rate_limit: None,
                checkpoint: None,
                handoff_pending: false,
                last_exit: None,
                stopped,
                reason: reason.to_owned(),
                tree: None,
                deferred: None,
                signal: None,
            };
        };
        Self {
            name: name.to_owned(),
            incarnation: r.incarnation.0,
            lifecycle: Some(r.lifecycle()),
            activity: r.activity(),
            escalation: r.escalation(),
            session: r.session.clone(),
            pane_pid: r.pane_pid,
            since: Some(r.since),
            last_change: Some(r.last_change()),
            unchanged_checks: r.unchanged_checks(),
            restarts: r.restarts,
            crashes: r.crashes.clone(),
            cooldown_until: r.cooldown_until(),
            rate_limit: r.rate_limit.as_ref().map(|rl| RateLimitStatus {
                until: rl.until,
                renewals: rl.renewals,
                kind: rl.kind.clone(),
                line: rl.line.clone(),
                self_resumes: rl.self_resumes,
                resumed: rl.resumed,
                known: rl.known.clone(),
            }),
            checkpoint: r.checkpoint.clone(),
            handoff_pending: r.handoff().is_some(),
            last_exit: r.last_exit().map(|e| ExitStatus {
                code: e.code,
                reason: e.reason.clone(),
                last_lines: e.last_lines.clone(),
            }),
            stopped,
            reason: r.reason.clone(),
            tree: r.live().and_then(|l| l.tree.clone()),
            deferred: r.deferred().cloned(),
            signal: r.live().and_then(|l| l.signal.as_ref()).map(|k| SignalStatus {
                source: k.signal.heard.source,
                event: k.signal.heard.event.clone(),
                said: k.signal.heard.said.clone(),
                words: k.signal.heard.words.clone(),
                at: k.signal.at,
                age_s: None,
            }),
        }
    }
}

impl StatusReport {
    /// Reads what the state dir holds about `config`'s agents (`store` is `None` when
    /// the project has no state dir yet). Never writes.
    pub fn read(config: &Config, store: Option<&Store>, now: Time) -> Self {
        let (mind, saved_at, problem) = match store.map(Store::peek_mind) {
            Some(Ok(Some((m, t)))) => (m, Some(t), None),
            Some(Err(e)) => (Mind::default(), None, Some(e)),
            _ => (Mind::default(), None, None),
        };
        let heartbeat = store.and_then(Store::heartbeat);
        let owner = store.and_then(Store::live_owner).map(|o| {
            let beat = heartbeat.as_ref().filter(|h| h.pid == o.pid && h.epoch == o.epoch);
            OwnerStatus {
                pid: o.pid,
                epoch: o.epoch,
                heartbeat_age_s: beat.map(|h| (now.since(h.t).as_secs_f64() * 10.0).round() / 10.0),
                role: o.role,
                since: o.started_at,
                degraded: beat.and_then(|h| h.degraded.clone()),
                last_pass_ms: beat.and_then(|h| h.pass_ms),
            }
        });
        let mut report = Self::of(config, &mind, saved_at, problem, owner);
        for signal in report.agents.iter_mut().filter_map(|a| a.signal.as_mut()) {
            signal.age_s = Some((now.since(signal.at).as_secs_f64() * 10.0).round() / 10.0);
        }
        report
    }

    /// The report of a Mind in hand (the owner's own, for its metrics file).
    pub fn of(
        config: &Config,
        mind: &Mind,
        saved_at: Option<Time>,
        problem: Option<String>,
        owner: Option<OwnerStatus>,
    ) -> Self {
        let agents = config
            .agents
            .iter()
            .map(|a| {
                let stopped = mind.stopped.contains(&a.name);
                AgentStatus::new(
                    a.name.as_str(),
                    config.session_of(&a.name),
                    mind.agents.get(&a.name),
                    stopped,
                )
            })
            .collect();
        Self {
            project: config.project.clone(),
            config: config.path.clone(),
            saved_at,
            problem,
            owner,
            agents,
        }
    }

    pub fn agent(&self, name: &str) -> Option<&AgentStatus> {
        self.agents.iter().find(|a| a.name == name)
    }
}

/// The report as a table for people. Text vigil did not write (reasons quote the
/// agent's last words) is shown with control characters escaped.
pub fn table(report: &StatusReport, store: Option<&Store>, now: Time) -> String {
    table_fitted(report, store, now, None)
}

/// Fewer chars than this left for the reason on an agent's row, and it goes on a line
/// of its own below.
const MIN_REASON: usize = 24;

/// [`table`] for a terminal `width` chars wide: no line longer, columns as narrow as
/// their contents, the reason cut at a word ("…") and prose wrapped between words.
/// `None`: the columns of old, nothing cut.
pub fn table_fitted(report: &StatusReport, store: Option<&Store>, now: Time, width: Option<usize>) -> String {
    let mut out = String::new();
    let prose = |out: &mut String, line: String| match width {
        Some(w) => {
            for l in fit::wrap(&line, w, 2) {
                let _ = writeln!(out, "{l}");
            }
        }
        None => {
            let _ = writeln!(out, "{line}");
        }
    };
    match &report.owner {
        Some(o) => {
            let age = o
                .heartbeat_age_s
                .map_or("no heartbeat yet".into(), |a| format!("heartbeat {a:.0}s ago"));
            prose(
                &mut out,
                format!(
                    "owner: pid {} (`vigil {}`, epoch {}), {age}",
                    o.pid,
                    o.role.as_str(),
                    o.epoch
                ),
            );
            if let Some(why) = &o.degraded {
                prose(
                    &mut out,
                    format!(
                        "owner DEGRADED: {}; it observes but acts on nothing until the state dir can be written",
                        shown(why)
                    ),
                );
            }
        }
        None => prose(
            &mut out,
            "owner: none — nothing supervises this project now (run `vigil watch`, or `vigil tick` from a timer)"
                .into(),
        ),
    }
    if let Some(t) = report.saved_at {
        prose(&mut out, format!("state: recorded {} ago", human(now.since(t))));
    }
    if let Some(p) = &report.problem {
        prose(&mut out, format!("state: {}", shown(p)));
    }
    out.push('\n');
    let rows: Vec<[String; 8]> = report
        .agents
        .iter()
        .map(|a| {
            let for_ = a
                .since
                .map_or("-".into(), |s| human(Duration::from_secs(now.since(s).as_secs())));
            [
                shown(&a.name).into_owned(),
                format!("#{}", a.incarnation),
                if a.deferred.is_some() {
                    "deferred".to_owned()
                } else {
                    a.lifecycle.map_or("-", Lifecycle::as_str).to_owned()
                },
                a.activity.map_or("-", Activity::as_str).to_owned(),
                a.escalation.as_str().to_owned(),
                a.restarts.to_string(),
                for_,
                shown(&a.session).into_owned(),
            ]
        })
        .collect();
    let header = [
        "AGENT",
        "INC",
        "LIFECYCLE",
        "ACTIVITY",
        "ESCALATE",
        "RESTARTS",
        "FOR",
        "SESSION",
    ];
    // The widths of old when not fitting; else each column as wide as its contents.
    let old = [5, 4, 9, 12, 9, 8, 7, 0];
    let mut widths = [0usize; 8];
    for (i, w) in widths.iter_mut().enumerate() {
        let content = rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let floor = if width.is_some() || i == 0 || i == 7 { 0 } else { old[i] };
        *w = content.max(header[i].len()).max(floor);
    }
    // Numbers to the right, as before.
    let right = [false, true, false, false, false, true, true, false];
    // Too narrow for every column: the least telling go first (never the name or the
    // session), and a row still too wide is cut.
    let mut keep = [true; 8];
    let total = |keep: &[bool; 8]| -> usize { (0..8).filter(|&i| keep[i]).map(|i| widths[i] + 2).sum() };
    for i in [5, 4, 1, 6, 3, 2] {
        if width.is_some_and(|w| total(&keep) > w) {
            keep[i] = false;
        }
    }
    let cells = |out: &mut String, row: &[&str]| {
        for (i, cell) in row.iter().enumerate().filter(|&(i, _)| keep[i]) {
            let w = widths[i];
            let _ = if right[i] {
                write!(out, "{cell:>w$}  ")
            } else {
                write!(out, "{cell:w$}  ")
            };
        }
    };
    let fixed = total(&keep);
    let room = width.map(|w| w.saturating_sub(fixed));
    let below = room.is_some_and(|r| r < MIN_REASON);
    let mut line = String::new();
    cells(&mut line, &header);
    if let Some(w) = width.filter(|&w| fixed > w) {
        line = fit::truncate(line.trim_end(), w);
    }
    out.push_str(&line);
    out.push_str(if below { "" } else { "REASON" });
    trim_end(&mut out);
    out.push('\n');
    for (a, row) in report.agents.iter().zip(&rows) {
        let row: Vec<&str> = row.iter().map(String::as_str).collect();
        let mut line = String::new();
        cells(&mut line, &row);
        if let Some(w) = width.filter(|&w| fixed > w) {
            line = fit::truncate(line.trim_end(), w);
        }
        out.push_str(&line);
        let reason = shown(&a.reason);
        match (width, room) {
            (Some(w), Some(_)) if below => {
                trim_end(&mut out);
                let _ = write!(out, "\n    {}", fit::truncate(&reason, w.saturating_sub(4)));
            }
            (_, Some(r)) => out.push_str(&fit::truncate(&reason, r)),
            _ => out.push_str(&reason),
        }
        trim_end(&mut out);
        out.push('\n');
        // Its tree, when something in it used CPU since the pass before.
        if let Some(tree) = a.tree.as_ref().filter(|t| !t.busiest.is_empty()) {
            let line = format!("tree: {}", shown(&tree.words()));
            let _ = writeln!(out, "{:name$}  {line}", "", name = widths[0]);
        }
        if let Some(cp) = &a.checkpoint {
            let path = match (store, AgentName::new(&a.name)) {
                (Some(s), Some(n)) => format!(" ({})", s.checkpoint_path(&n).display()),
                _ => String::new(),
            };
            let line = format!(
                "checkpoint of {} at {}: {}{path}",
                cp.incarnation,
                cp.at.clock(),
                shown(&cp.reason)
            );
            let lines = match width {
                Some(w) => fit::wrap(&line, w.saturating_sub(widths[0] + 2), 2),
                None => vec![line],
            };
            for l in lines {
                let _ = writeln!(out, "{:name$}  {l}", "", name = widths[0]);
            }
        }
    }
    out
}

fn trim_end(out: &mut String) {
    out.truncate(out.trim_end_matches(' ').len());
}
