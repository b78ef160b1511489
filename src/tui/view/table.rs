//! The fleet table: one row per agent, most urgent first, with the whole fleet's
//! counts in its title. Drawn from the state alone; no IO, no decisions.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Cell, Row as TableRow, Table, TableState};

use super::{WIDE, paint};
use crate::tui::app::App;
use crate::tui::fleet::{Health, Row};

/// "2 !!  1 HUMAN  5 OK": how the whole fleet does, filter or not.
fn counts(app: &App) -> String {
    let agents = app.agents.iter().map(|a| (&a.name, a.session.as_str()));
    let all = crate::tui::fleet::rows(agents, &app.mind, app.now);
    let counts: Vec<String> = [Health::Bad, Health::Human, Health::Unsure, Health::Good, Health::Off]
        .into_iter()
        .filter_map(|h| {
            let n = all.iter().filter(|r| r.health == h).count();
            (n > 0).then(|| format!("{n} {}", h.word()))
        })
        .collect();
    counts.join("  ")
}

pub(super) fn fleet_table(frame: &mut Frame, area: Rect, app: &App, rows: &[Row], selected: Option<usize>) {
    let wide = area.width >= WIDE;
    let fixed: u16 = 5 + 4 + 9 + 12 + 9 + 6 + 4 + 3 + 6 + 9;
    let inner = area.width.saturating_sub(2);
    let longest = rows.iter().map(|r| r.name.as_str().len()).max().unwrap_or(5);
    let room = if wide {
        inner.saturating_sub(fixed + 1 + 20)
    } else {
        inner.saturating_sub(fixed)
    };
    let agent_width = u16::try_from(longest).unwrap_or(u16::MAX).clamp(5, 24).min(room);
    let mut widths = vec![
        Constraint::Length(5),
        Constraint::Length(agent_width),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(3),
        Constraint::Length(6),
    ];
    let mut header = vec![
        "",
        "AGENT",
        "INC",
        "LIFECYCLE",
        "ACTIVITY",
        "ESCALATE",
        "FOR",
        "UNCH",
        "RST",
        "COOL",
    ];
    if wide {
        widths.push(Constraint::Fill(1));
        header.push("LAST EXIT");
    }
    let body = rows.iter().map(|r| {
        let mut cells = vec![
            Cell::from(r.health.word()),
            Cell::from(r.name.as_str()),
            Cell::from(r.incarnation.as_str()),
            Cell::from(r.lifecycle.as_str()),
            Cell::from(r.activity.as_str()),
            Cell::from(r.escalation.as_str()),
            Cell::from(r.in_state.as_str()),
            Cell::from(format!("{:>4}", r.unchanged)),
            Cell::from(format!("{:>3}", r.restarts)),
            Cell::from(r.cooldown_text()),
        ];
        if wide {
            cells.push(Cell::from(r.last_exit.as_str()));
        }
        let style = paint(app, r.health.color());
        let style = if r.health == Health::Off {
            style.add_modifier(Modifier::DIM)
        } else {
            style
        };
        TableRow::new(cells).style(style)
    });
    let mut title = format!(" fleet: {} ", counts(app));
    if app.filter.is_empty() {
        title.push_str("· most urgent first ");
    } else {
        title.push_str(&format!("· {} shown by filter “{}” ", rows.len(), app.filter));
    }
    let table = Table::new(body, widths)
        .header(TableRow::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}
