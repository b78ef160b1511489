//! The dashboard's keys, in one table: [`App::key`](super::app::App::key) dispatches
//! through [`KEYS`], and the footer and the help overlay are drawn from it, so a key
//! cannot be handled without being shown, nor shown without being handled. Pure data:
//! what a key does to the state is the app's business.

use ratatui::crossterm::event::{KeyCode, KeyModifiers};

/// A key as pressed: its code, and whether Ctrl was held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chord {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn key(code: KeyCode) -> Chord {
    Chord { code, ctrl: false }
}

const fn ch(c: char) -> Chord {
    key(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Chord {
    Chord {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

impl Chord {
    pub fn of(code: KeyCode, modifiers: KeyModifiers) -> Self {
        Self {
            code,
            ctrl: modifiers.contains(KeyModifiers::CONTROL),
        }
    }

    /// How the help names it.
    pub fn name(self) -> String {
        let base = match self.code {
            KeyCode::Char(c) if self.ctrl => c.to_uppercase().to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Enter => "Enter".into(),
            other => format!("{other:?}"),
        };
        if self.ctrl { format!("Ctrl-{base}") } else { base }
    }
}

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Move the selection by this many rows (clamped to the table).
    Move(isize),
    Nudge,
    Restart,
    Stop,
    Up,
    Attach,
    Triage,
    Filter,
    ClearFilter,
    Help,
    Quit,
}

/// One line of the help: the keys, what they do, and the footer's word if it has one.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The keys as the help shows them; names every chord of `bindings`.
    pub label: &'static str,
    pub bindings: &'static [(Chord, Action)],
    pub help: &'static str,
    /// Shown in the footer after the first chord's name.
    pub footer: Option<&'static str>,
}

const FIRST: isize = isize::MIN;
const LAST: isize = isize::MAX;

/// Every key of the dashboard outside its boxes (help, filter, confirm), in help order.
/// A chord with Ctrl works under any box.
pub const KEYS: &[Key] = &[
    Key {
        label: "↑ ↓  j k",
        bindings: &[
            (key(KeyCode::Up), Action::Move(-1)),
            (key(KeyCode::Down), Action::Move(1)),
            (ch('k'), Action::Move(-1)),
            (ch('j'), Action::Move(1)),
        ],
        help: "select an agent",
        footer: None,
    },
    Key {
        label: "PgUp PgDn",
        bindings: &[
            (key(KeyCode::PageUp), Action::Move(-10)),
            (key(KeyCode::PageDown), Action::Move(10)),
        ],
        help: "ten rows up or down",
        footer: None,
    },
    Key {
        label: "g G  Home End",
        bindings: &[
            (ch('g'), Action::Move(FIRST)),
            (ch('G'), Action::Move(LAST)),
            (key(KeyCode::Home), Action::Move(FIRST)),
            (key(KeyCode::End), Action::Move(LAST)),
        ],
        help: "the first or the last agent",
        footer: None,
    },
    Key {
        label: "n",
        bindings: &[(ch('n'), Action::Nudge)],
        help: "nudge: type the nudge text into its pane",
        footer: Some("nudge"),
    },
    Key {
        label: "r",
        bindings: &[(ch('r'), Action::Restart)],
        help: "restart: new incarnation (asks first)",
        footer: Some("restart"),
    },
    Key {
        label: "s",
        bindings: &[(ch('s'), Action::Stop)],
        help: "stop: kill it, keep it stopped (asks first)",
        footer: Some("stop"),
    },
    Key {
        label: "u",
        bindings: &[(ch('u'), Action::Up)],
        help: "up: start it again after a stop",
        footer: None,
    },
    Key {
        label: "a",
        bindings: &[(ch('a'), Action::Attach)],
        help: "attach to its tmux session; detach to return",
        footer: Some("attach"),
    },
    Key {
        label: "t",
        bindings: &[(ch('t'), Action::Triage)],
        help: "triage now and act on the verdict",
        footer: Some("triage"),
    },
    Key {
        label: "/",
        bindings: &[(ch('/'), Action::Filter)],
        help: "filter by name, lifecycle or activity",
        footer: Some("filter"),
    },
    Key {
        label: "Esc",
        bindings: &[(key(KeyCode::Esc), Action::ClearFilter)],
        help: "clear the filter, close a box",
        footer: None,
    },
    Key {
        label: "?",
        bindings: &[(ch('?'), Action::Help)],
        help: "this help (any key closes it)",
        footer: Some("help"),
    },
    Key {
        label: "q  Ctrl-C",
        bindings: &[(ch('q'), Action::Quit), (ctrl('c'), Action::Quit)],
        help: "quit (the agents keep running)",
        footer: Some("quit"),
    },
];

/// What `chord` does, when the table has it.
pub fn action(chord: Chord) -> Option<Action> {
    KEYS.iter()
        .flat_map(|k| k.bindings.iter())
        .find(|(c, _)| *c == chord)
        .map(|(_, a)| *a)
}

/// The footer: (the first chord's name, its word) for each key that has a word.
pub fn footer() -> impl Iterator<Item = (String, &'static str)> {
    KEYS.iter().filter_map(|k| {
        let (first, _) = k.bindings.first()?;
        Some((first.name(), k.footer?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_names_exactly_the_chords_it_binds() {
        for k in KEYS {
            let mut named: Vec<String> = k.bindings.iter().map(|(c, _)| c.name()).collect();
            let mut shown: Vec<String> = k.label.split_whitespace().map(str::to_owned).collect();
            named.sort();
            shown.sort();
            assert_eq!(named, shown, "the label `{}` and what it binds", k.label);
        }
    }

    #[test]
    fn no_chord_is_bound_twice() {
        let all: Vec<Chord> = KEYS.iter().flat_map(|k| k.bindings.iter().map(|(c, _)| *c)).collect();
        for (i, c) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(c), "{} is bound twice", c.name());
        }
    }
}
