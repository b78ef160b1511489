//! The fleet as the dashboard shows it: one [`Row`] per configured agent with the
//! figures of the table, its [`Health`] (a word and a colour), and the urgency order.
//! Pure: reads the Mind and a `now`; no IO, no terminal, and it judges nothing the
//! engine has not already recorded.

use std::time::Duration;

use ratatui::style::Color;

use crate::engine::time::human;
use crate::engine::{Activity, AgentName, AgentRecord, Escalation, Lifecycle, Mind, Time};

/// How an agent is doing, at a glance. The order is the urgency order: most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Stalled, zombie or rate-limited: vigil is acting, or cannot.
    Bad,
    /// A dialog waits for a person (trust, permission, sign-in).
    Human,
    /// Idle at its prompt or quiet: maybe stuck.
    Unsure,
    /// Working, active, or starting.
    Good,
    /// Completed, stopped, or not started yet: nothing to watch.
    Off,
}

impl Health {
    /// A word that says it without colour (`NO_COLOR`), as wide as the column.
    pub fn word(self) -> &'static str {
        match self {
            Health::Bad => "!!",
            Health::Human => "HUMAN",
            Health::Unsure => "??",
            Health::Good => "OK",
            Health::Off => "--",
        }
    }

    pub fn color(self) -> Color {
        match self {
            Health::Bad => Color::Red,
            Health::Human => Color::Cyan,
            Health::Unsure => Color::Yellow,
            Health::Good => Color::Green,
            Health::Off => Color::DarkGray,
        }
    }
}

/// What the table shows of one agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub name: AgentName,
    pub session: String,
    pub health: Health,
    pub incarnation: String,
    pub lifecycle: String,
    pub activity: String,
    pub escalation: Escalation,
    /// Time in the current incarnation's state.
    pub in_state: String,
    pub unchanged: u32,
    pub restarts: u32,
    /// Time left before vigil may restart or resume it (backoff, crash loop, rate limit).
    pub cooldown: Option<Duration>,
    pub last_exit: String,
}

impl Row {
    pub fn cooldown_text(&self) -> String {
        // Rounded up, so a countdown never shows 0s while it still holds.
        self.cooldown.map_or("-".into(), |d| {
            human(Duration::from_secs(d.as_millis().div_ceil(1000) as u64))
        })
    }

    /// Whether the filter text (any case) appears in its name, lifecycle, activity or health.
    pub fn matches(&self, filter: &str) -> bool {
        if filter.is_empty() {
            return true;
        }
        let f = filter.to_lowercase();
        [self.name.as_str(), &self.lifecycle, &self.activity, self.health.word()]
            .iter()
            .any(|field| field.to_lowercase().contains(&f))
    }
}

pub fn health(rec: Option<&AgentRecord>, stopped: bool) -> Health {
    let Some(rec) = rec else { return Health::Off };
    if stopped && !rec.is_live() {
        return Health::Off;
    }
    if rec.deferred().is_some() {
        // Not running: host pressure holds its start back.
        return Health::Unsure;
    }
    match rec.lifecycle() {
        Lifecycle::Stalled | Lifecycle::Zombie => Health::Bad,
        Lifecycle::Completed => Health::Off,
        Lifecycle::Booting | Lifecycle::Working => match rec.activity() {
            Some(Activity::RateLimited) => Health::Bad,
            Some(Activity::Waiting) => Health::Human,
            Some(Activity::Idle | Activity::Quiet) => Health::Unsure,
            Some(Activity::Active) | None => Health::Good,
        },
    }
}

/// Time left on whichever hold ends last: restart cooldown or rate limit.
fn cooldown(rec: &AgentRecord, now: Time) -> Option<Duration> {
    let until = [rec.cooldown_until(), rec.rate_limit.as_ref().map(|r| r.until)]
        .into_iter()
        .flatten()
        .max()?;
    let left = until.since(now);
    (!left.is_zero()).then_some(left)
}

pub fn row(name: &AgentName, session: &str, mind: &Mind, now: Time) -> Row {
    let rec = mind.agents.get(name);
    let stopped = mind.stopped.contains(name);
    let health = health(rec, stopped);
    let Some(r) = rec else {
        return Row {
            name: name.clone(),
            session: session.to_owned(),
            health,
            incarnation: "-".into(),
            lifecycle: if stopped { "stopped" } else { "not started" }.into(),
            activity: "-".into(),
            escalation: Escalation::None,
            in_state: "-".into(),
            unchanged: 0,
            restarts: 0,
            cooldown: None,
            last_exit: "-".into(),
        };
    };
    let lifecycle = if stopped && !r.is_live() {
        "stopped".to_owned()
    } else if r.deferred().is_some() {
        "deferred".to_owned()
    } else {
        r.lifecycle().as_str().to_owned()
    };
    Row {
        name: name.clone(),
        session: r.session.clone(),
        health,
        incarnation: r.incarnation.to_string(),
        lifecycle,
        activity: r.activity().map_or("-", Activity::as_str).replace('_', "-"),
        escalation: r.escalation(),
        in_state: human(Duration::from_secs(now.since(r.since).as_secs())),
        unchanged: r.unchanged_checks(),
        restarts: r.restarts,
        cooldown: cooldown(r, now),
        last_exit: r
            .last_exit()
            .map_or("-".into(), |e| crate::present::shown(&e.reason).into_owned()),
    }
}

/// Every configured agent, most urgent first: health, then how far the escalation
/// ladder has climbed, then how long the screen has been unchanged; then by name.
pub fn rows<'a>(agents: impl IntoIterator<Item = (&'a AgentName, &'a str)>, mind: &Mind, now: Time) -> Vec<Row> {
    let mut rows: Vec<Row> = agents.into_iter().map(|(n, s)| row(n, s, mind, now)).collect();
    rows.sort_by(|a, b| {
        a.health
            .cmp(&b.health)
            .then(b.escalation.cmp(&a.escalation))
            .then(b.unchanged.cmp(&a.unchanged))
            .then(a.name.cmp(&b.name))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Incarnation, RateLimit};

    fn t(s: i64) -> Time {
        Time::from_millis(1_800_000_000_000 + s * 1000)
    }

    fn rec(lifecycle: Lifecycle, activity: Option<Activity>) -> AgentRecord {
        let mut r = AgentRecord::new(Incarnation(1), "p-x".into(), t(0), "".into());
        if let Some(live) = r.live_mut().filter(|_| lifecycle != Lifecycle::Booting) {
            live.work();
            live.activity = activity;
        }
        if let Some(end) = lifecycle.ended() {
            r.finish(end, crate::engine::LastExit::because("x"), None);
        }
        r
    }

    #[test]
    fn health_follows_the_issue_colours() {
        use Activity::*;
        use Lifecycle::*;
        let cases = [
            (Working, Some(Active), Health::Good, Color::Green),
            (Working, Some(Idle), Health::Unsure, Color::Yellow),
            (Working, Some(Quiet), Health::Unsure, Color::Yellow),
            (Working, Some(Waiting), Health::Human, Color::Cyan),
            (Working, Some(RateLimited), Health::Bad, Color::Red),
            (Stalled, None, Health::Bad, Color::Red),
            (Zombie, None, Health::Bad, Color::Red),
            (Completed, None, Health::Off, Color::DarkGray),
        ];
        for (l, a, h, c) in cases {
            let got = health(Some(&rec(l, a)), false);
            assert_eq!((got, got.color()), (h, c), "{l:?} {a:?}");
        }
        assert_eq!(health(None, false), Health::Off);
    }

    #[test]
    fn urgent_agents_sort_first_and_the_countdown_uses_the_later_hold() {
        let mut mind = Mind::default();
        let names: Vec<AgentName> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| AgentName::new(n).unwrap())
            .collect();
        mind.agents
            .insert(names[0].clone(), rec(Lifecycle::Working, Some(Activity::Active)));
        mind.agents
            .insert(names[1].clone(), rec(Lifecycle::Working, Some(Activity::Waiting)));
        let mut limited = rec(Lifecycle::Working, Some(Activity::RateLimited));
        limited.rate_limit = Some(RateLimit {
            until: t(100),
            renewals: 0,
            resumed: false,
            line: "429".into(),
            kind: Default::default(),
            seen: Default::default(),
            self_resumes: false,
            known: None,
        });
        mind.agents.insert(names[2].clone(), limited);
        let sessions = ["s"; 4];
        let rows = rows(names.iter().zip(sessions), &mind, t(10));
        let order: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(order, ["c", "b", "a", "d"]);
        assert_eq!(rows[0].cooldown_text(), "1m30s");
        assert_eq!(rows[3].lifecycle, "not started");
        assert!(rows[0].matches("RATE"));
        assert!(!rows[0].matches("zombie"));
    }
}
