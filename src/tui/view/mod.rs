//! Draws the dashboard from the [`App`] state and nothing else: no IO, no clock (every
//! duration is measured to `app.now`), no decisions. Title bar, fleet table, detail
//! pane, event log, status line and key footer; the help and confirm overlays; and a
//! plain message when the terminal is smaller than 80×24.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

mod detail;
mod table;

use super::app::{App, Mode, Overlay};
use super::keys::{self, KEYS};
use crate::engine::Command;
use crate::engine::time::human;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// From this width the table has room for the last exit too.
pub(super) const WIDE: u16 = 110;

/// What the health words mean, below the keys in the help.
const LEGEND: [(&str, &str); 5] = [
    ("OK", "working or active"),
    ("??", "idle or quiet: maybe stuck"),
    ("HUMAN", "a dialog waits for a person"),
    ("!!", "stalled, zombie or rate-limited"),
    ("--", "done, stopped or not started"),
];

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let rows = app.rows();
    let selected = app.selected_index(&rows);
    let [title, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let log_height = if body.height >= 36 { 9 } else { 5 };
    let detail_min = (body.height / 4).max(8);
    let fleet_needed = u16::try_from(rows.len()).unwrap_or(u16::MAX).saturating_add(3);
    let fleet_height = fleet_needed
        .min(body.height.saturating_sub(log_height + detail_min))
        .max(4);
    let [fleet_area, detail_area, log_area] = Layout::vertical([
        Constraint::Length(fleet_height),
        Constraint::Fill(1),
        Constraint::Length(log_height),
    ])
    .areas(body);

    title_bar(frame, title, app);
    table::fleet_table(frame, fleet_area, app, &rows, selected);
    detail::detail(frame, detail_area, app, selected.map(|i| &rows[i]));
    detail::event_log(frame, log_area, app);
    status_line(frame, status, app);
    key_footer(frame, footer);
    match &app.overlay {
        Overlay::Help => help(frame, area),
        Overlay::Confirm(command) => confirm(frame, area, app, command),
        Overlay::None | Overlay::Filter => {}
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "terminal too small: need {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}",
        area.width, area.height
    );
    let [middle] = Layout::vertical([Constraint::Length(1)])
        .flex(ratatui::layout::Flex::Center)
        .areas(area);
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center), middle);
}

pub(super) fn paint(app: &App, color: Color) -> Style {
    if app.no_color {
        Style::new()
    } else {
        Style::new().fg(color)
    }
}

fn title_bar(frame: &mut Frame, area: Rect, app: &App) {
    let who = match &app.mode {
        Mode::Owner { poll, socket } => format!(
            "OWNER · supervising {} agents every {} · tmux {}",
            app.agents.len(),
            human(*poll),
            socket
                .as_deref()
                .map_or("default server".to_owned(), |s| format!("-L {s}"))
        ),
        Mode::Viewer { owner, heartbeat } => match owner {
            Some(o) => {
                let beat = heartbeat.map_or("no heartbeat yet".to_owned(), |t| {
                    format!(
                        "heartbeat {} ago",
                        human(Duration::from_secs(app.now.since(t).as_secs()))
                    )
                });
                format!(
                    "VIEWER · owner pid {} (vigil {}, epoch {}) · {beat}",
                    o.pid,
                    o.role.as_str(),
                    o.epoch
                )
            }
            None => "VIEWER · no vigil owns this project now: nothing supervises".to_owned(),
        },
    };
    let bar = Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD);
    frame.render_widget(
        Paragraph::new(format!(" vigil {who} · {}", app.project)).style(bar),
        area,
    );
}

fn status_line(frame: &mut Frame, area: Rect, app: &App) {
    let line = if app.overlay == Overlay::Filter {
        Line::raw(format!(" filter: {}▏ (Enter keeps it, Esc clears it)", app.filter))
    } else if let Some(message) = app.status_line() {
        Line::styled(format!(" {message}"), Style::new().add_modifier(Modifier::BOLD))
    } else if let Some(problem) = &app.problem {
        Line::styled(
            format!(" !! {problem}"),
            paint(app, Color::Red).add_modifier(Modifier::BOLD),
        )
    } else {
        Line::raw("")
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn key_footer(frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    for (i, (key, what)) in keys::footer().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(key, Style::new().add_modifier(Modifier::REVERSED)));
        spans.push(Span::raw(format!(" {what}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn popup(frame: &mut Frame, area: Rect, width: u16, height: u16) -> Rect {
    let rect = area.centered(Constraint::Length(width), Constraint::Length(height));
    frame.render_widget(Clear, rect);
    rect
}

fn help(frame: &mut Frame, area: Rect) {
    let width = KEYS.iter().map(|k| k.label.chars().count()).max().unwrap_or(0);
    let line = |key: &str, what: &str| {
        Line::from(vec![
            Span::styled(format!(" {key:<width$} "), Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(what.to_owned()),
        ])
    };
    let mut lines: Vec<Line> = KEYS.iter().map(|k| line(k.label, k.help)).collect();
    lines.push(Line::raw(""));
    lines.extend(LEGEND.iter().map(|(word, what)| line(word, what)));
    let height = u16::try_from(lines.len()).unwrap_or(0) + 2;
    let rect = popup(frame, area, 62, height);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys — any key closes ")),
        rect,
    );
}

fn confirm(frame: &mut Frame, area: Rect, app: &App, command: &Command) {
    let agent = command.agent();
    let incarnation = app
        .mind
        .agents
        .get(agent)
        .map_or(String::new(), |r| format!(" {}", r.incarnation));
    let (question, consequence) = match command {
        Command::Restart(_) => (
            format!("Restart {agent}{incarnation}?"),
            "Its session is killed and a new incarnation starts.".to_owned(),
        ),
        Command::Stop(_) => (
            format!("Stop {agent}{incarnation}?"),
            format!("It stays stopped until `u` or `vigil up {agent}`."),
        ),
        Command::Triage(_) => (
            format!("Triage {agent}{incarnation}?"),
            "Its verdict is acted on: it may be nudged, restarted or stopped.".to_owned(),
        ),
        Command::Up(_) | Command::Nudge(_) => (format!("{}?", crate::present::command_words(command)), String::new()),
    };
    let lines = vec![
        Line::styled(format!(" {question}"), Style::new().add_modifier(Modifier::BOLD)),
        Line::raw(format!(" {consequence}")),
        Line::raw(""),
        Line::raw(" y / Enter: yes      any other key: no"),
    ];
    let rect = popup(frame, area, 60, 6);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" confirm ")), rect);
}

#[cfg(test)]
mod tests;
