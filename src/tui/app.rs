//! The dashboard's state and what each key does to it: pure data and pure functions,
//! so every key is tested without a terminal. A key either changes this state or
//! yields an [`Effect`] for the runtime to carry out (a [`Command`] — the same ones the
//! CLI sends —, an attach, quitting). No IO, no clock, no terminal here.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

use super::fleet::{self, Row};
use super::keys::{self, Action, Chord};
use crate::engine::{AgentName, Command, Mind, Time};
use crate::present::record_line;
use crate::store::{Entry, OwnerRecord};

/// How many lines the event log and each agent's decision list keep.
const LOG_KEPT: usize = 200;
const DECISIONS_KEPT: usize = 40;
/// How long a status message stays on screen.
const STATUS_FOR: Duration = Duration::from_secs(15);

/// Whether this dashboard owns the run or follows the one that does.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// It claimed the run and supervises, every `poll`.
    Owner { poll: Duration, socket: Option<String> },
    /// Another process owns the run; commands go through its inbox.
    Viewer {
        owner: Option<OwnerRecord>,
        heartbeat: Option<Time>,
    },
}

/// What covers (part of) the screen and takes the keys first.
#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    None,
    Help,
    /// Typing the filter text.
    Filter,
    /// A destructive command waits for `y`.
    Confirm(Command),
}

/// What the runtime must do for a key.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Send(Command),
    /// Suspend the dashboard and attach to the agent's tmux session.
    Attach {
        session: String,
    },
    Quit,
}

/// One configured agent, in config order.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub name: AgentName,
    pub session: String,
}

#[derive(Clone, Debug)]
pub struct App {
    pub project: String,
    pub mode: Mode,
    pub agents: Vec<Agent>,
    pub mind: Mind,
    /// The time every duration on screen is measured to, taken once per tick.
    pub now: Time,
    /// Why the state may be stale or missing (an unreadable snapshot, tmux down).
    pub problem: Option<String>,
    /// Followed by name, so it stays on its agent while the urgency order changes.
    pub selected: Option<AgentName>,
    pub filter: String,
    pub overlay: Overlay,
    pub status: Option<(String, Time)>,
    /// Newest first.
    pub log: VecDeque<String>,
    /// Per agent, newest first.
    pub decisions: BTreeMap<AgentName, VecDeque<String>>,
    /// The selected agent's pane as last captured: (agent, lines).
    pub tail: Option<(AgentName, Vec<String>)>,
    /// The selected agent's checkpoint, in a line, when it has one.
    pub checkpoint: Option<(AgentName, String)>,
    /// `NO_COLOR`: say everything with words and weight, never hue.
    pub no_color: bool,
}

impl App {
    pub fn new(project: String, mode: Mode, agents: Vec<Agent>, now: Time, no_color: bool) -> Self {
        Self {
            project,
            mode,
            agents,
            mind: Mind::default(),
            now,
            problem: None,
            selected: None,
            filter: String::new(),
            overlay: Overlay::None,
            status: None,
            log: VecDeque::new(),
            decisions: BTreeMap::new(),
            tail: None,
            checkpoint: None,
            no_color,
        }
    }

    /// The rows on screen: urgency order, filtered.
    pub fn rows(&self) -> Vec<Row> {
        let agents = self.agents.iter().map(|a| (&a.name, a.session.as_str()));
        let mut rows = fleet::rows(agents, &self.mind, self.now);
        rows.retain(|r| r.matches(&self.filter));
        rows
    }

    /// Index of the selected agent among `rows`; the first row when it is not shown.
    pub fn selected_index(&self, rows: &[Row]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        let found = self
            .selected
            .as_ref()
            .and_then(|s| rows.iter().position(|r| &r.name == s));
        Some(found.unwrap_or(0))
    }

    /// The agent the detail pane and the action keys are about.
    pub fn current(&self) -> Option<Row> {
        let rows = self.rows();
        let i = self.selected_index(&rows)?;
        rows.into_iter().nth(i)
    }

    pub fn note(&mut self, message: impl Into<String>) {
        self.status = Some((message.into(), self.now));
    }

    /// The status message, while it is fresh.
    pub fn status_line(&self) -> Option<&str> {
        self.status
            .as_ref()
            .filter(|(_, at)| self.now.since(*at) < STATUS_FOR)
            .map(|(m, _)| m.as_str())
    }

    /// Takes journal records (oldest first) into the event log and the per-agent lists.
    pub fn absorb(&mut self, records: &[Entry]) {
        for r in records {
            let Some(line) = record_line(r, false) else { continue };
            if let Some(agent) = r.record.agent().and_then(AgentName::new) {
                let list = self.decisions.entry(agent).or_default();
                list.push_front(line.clone());
                list.truncate(DECISIONS_KEPT);
            }
            self.log.push_front(line);
        }
        self.log.truncate(LOG_KEPT);
    }

    /// What a key does: changes the state, and maybe asks the runtime for an effect.
    /// Outside a box, and for chords with Ctrl everywhere, the key table decides.
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let chord = Chord::of(key.code, key.modifiers);
        if chord.ctrl
            && let Some(action) = keys::action(chord)
        {
            self.overlay = Overlay::None;
            return self.act(action);
        }
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::Help => None, // any key closes it
            Overlay::Confirm(command) => {
                if matches!(key.code, KeyCode::Char('y' | 'Y') | KeyCode::Enter) {
                    Some(Effect::Send(command))
                } else {
                    self.note(format!("cancelled: {}", crate::present::command_words(&command)));
                    None
                }
            }
            Overlay::Filter => {
                match key.code {
                    KeyCode::Enter => {}
                    KeyCode::Esc => self.filter.clear(),
                    KeyCode::Backspace => {
                        self.filter.pop();
                        self.overlay = Overlay::Filter;
                    }
                    KeyCode::Char(c) => {
                        self.filter.push(c);
                        self.overlay = Overlay::Filter;
                    }
                    _ => self.overlay = Overlay::Filter,
                }
                None
            }
            Overlay::None => keys::action(chord).and_then(|action| self.act(action)),
        }
    }

    /// Carries out what the key table says a key is for.
    fn act(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit => return Some(Effect::Quit),
            Action::Help => self.overlay = Overlay::Help,
            Action::Filter => self.overlay = Overlay::Filter,
            Action::ClearFilter => self.filter.clear(),
            Action::Move(delta) => self.move_by(delta),
            Action::Nudge => return self.on_current(|r| Some(Effect::Send(Command::Nudge(r.name)))),
            Action::Up => return self.on_current(|r| Some(Effect::Send(Command::Up(r.name)))),
            // A verdict may restart or stop it: asked first, like `r` and `s`.
            Action::Triage => return self.confirm(Command::Triage),
            Action::Attach => return self.on_current(|r| Some(Effect::Attach { session: r.session })),
            Action::Restart => return self.confirm(Command::Restart),
            Action::Stop => return self.confirm(Command::Stop),
        }
        None
    }

    fn confirm(&mut self, make: fn(AgentName) -> Command) -> Option<Effect> {
        let row = self.current();
        match row {
            Some(r) => self.overlay = Overlay::Confirm(make(r.name)),
            None => self.note("no agent selected"),
        }
        None
    }

    fn on_current(&mut self, then: impl FnOnce(Row) -> Option<Effect>) -> Option<Effect> {
        match self.current() {
            Some(r) => then(r),
            None => {
                self.note("no agent selected");
                None
            }
        }
    }

    fn move_by(&mut self, delta: isize) {
        let rows = self.rows();
        let Some(i) = self.selected_index(&rows) else { return };
        let last = rows.len() - 1;
        let next = i.saturating_add_signed(delta).min(last);
        self.selected = Some(rows[next].name.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Activity, AgentRecord, Incarnation};
    use ratatui::crossterm::event::KeyModifiers;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn app() -> App {
        let agents: Vec<Agent> = ["alpha", "beta", "gamma"]
            .iter()
            .map(|n| Agent {
                name: AgentName::new(n).unwrap(),
                session: format!("p-{n}"),
            })
            .collect();
        let mut app = App::new(
            "p".into(),
            Mode::Owner {
                poll: Duration::from_secs(5),
                socket: None,
            },
            agents.clone(),
            Time::from_millis(0),
            false,
        );
        for a in &agents {
            let mut r = AgentRecord::new(Incarnation(1), a.session.clone(), Time::from_millis(0), "".into());
            let live = r.live_mut().unwrap();
            live.work();
            live.activity = Some(Activity::Active);
            app.mind.agents.insert(a.name.clone(), r);
        }
        app
    }

    fn selected(app: &App) -> String {
        app.current().unwrap().name.to_string()
    }

    #[test]
    fn keys_move_the_selection_within_the_rows() {
        let mut app = app();
        assert_eq!(selected(&app), "alpha");
        app.key(key('j'));
        app.key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        app.key(key('j'));
        assert_eq!(selected(&app), "gamma", "stops at the last row");
        app.key(key('k'));
        assert_eq!(selected(&app), "beta");
        app.key(key('g'));
        assert_eq!(selected(&app), "alpha");
    }

    #[test]
    fn nudge_acts_at_once_and_destructive_keys_ask_first() {
        let mut app = app();
        app.key(key('j'));
        let beta = AgentName::new("beta").unwrap();
        assert_eq!(app.key(key('n')), Some(Effect::Send(Command::Nudge(beta.clone()))));
        assert_eq!(app.key(key('r')), None);
        assert_eq!(app.overlay, Overlay::Confirm(Command::Restart(beta.clone())));
        assert_eq!(app.key(key('y')), Some(Effect::Send(Command::Restart(beta.clone()))));
        assert_eq!(app.key(key('s')), None);
        assert_eq!(app.key(key('x')), None, "anything but y cancels");
        assert_eq!(app.overlay, Overlay::None);
        assert_eq!(app.status_line(), Some("cancelled: stop beta"));
        assert_eq!(
            app.key(key('a')),
            Some(Effect::Attach {
                session: "p-beta".into()
            })
        );
        assert_eq!(app.key(key('q')), Some(Effect::Quit));
    }

    #[test]
    fn triage_asks_first_then_asks_for_a_verdict_on_the_selected_agent() {
        let mut app = app();
        assert_eq!(app.key(key('t')), None, "confirmation first");
        assert!(matches!(app.overlay, Overlay::Confirm(Command::Triage(_))));
        assert!(matches!(app.key(key('y')), Some(Effect::Send(Command::Triage(_)))));
        app.key(key('t'));
        assert_eq!(app.key(key('n')), None, "any other key cancels");
    }

    #[test]
    fn the_filter_narrows_the_rows_and_esc_clears_it() {
        let mut app = app();
        app.key(key('/'));
        for c in "gam".chars() {
            app.key(key(c));
        }
        assert_eq!(app.rows().len(), 1);
        app.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(app.overlay, Overlay::None);
        assert_eq!(selected(&app), "gamma");
        assert_eq!(app.key(key('q')), Some(Effect::Quit), "q quits once the filter is set");
        app.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(app.rows().len(), 3);
    }

    #[test]
    fn records_land_in_the_log_newest_first_and_with_their_agent() {
        let mut app = app();
        let intent = serde_json::json!({"kind": "intent", "t": "2027-01-15T08:00:00Z", "id": "1-1",
            "action": {"action": "send", "agent": "beta", "incarnation": 1, "session": "p-beta",
                       "text": "continue", "purpose": "nudge", "reason": "asked by the user"}});
        let event = serde_json::json!({"kind": "event", "t": "2027-01-15T08:00:01Z", "agent": "alpha",
            "incarnation": 1, "event": "activity", "to": "idle", "reason": "prompt visible"});
        let done = serde_json::json!({"kind": "done", "t": "2027-01-15T08:00:02Z", "id": "1-1"});
        let entries: Vec<Entry> = [intent, event, done]
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
        app.absorb(&entries);
        assert_eq!(app.log.len(), 2, "records for machines only are left out");
        assert!(app.log[0].contains("alpha #1 is idle: prompt visible"), "{:?}", app.log);
        assert!(
            app.log[1].contains("beta #1 → nudge (types \"continue\")"),
            "{:?}",
            app.log
        );
        assert_eq!(app.decisions[&AgentName::new("beta").unwrap()].len(), 1);
    }
}
