//! The detail pane (the selected agent's live pane beside its facts: why, exit,
//! crashes, checkpoint, decisions) and the event log. Drawn from the state alone.
//! Text vigil did not write (pane lines, reasons quoting them, checkpoints) is drawn
//! through [`shown`], so no escape sequence in it reaches the terminal.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::engine::time::human;
use crate::present::shown;
use crate::tui::app::App;
use crate::tui::fleet::Row;

pub(super) fn detail(frame: &mut Frame, area: Rect, app: &App, row: Option<&Row>) {
    let Some(row) = row else {
        let text = if app.agents.is_empty() {
            "no agents configured"
        } else {
            "no agent matches the filter (Esc clears it)"
        };
        frame.render_widget(Paragraph::new(text).block(Block::bordered().title(" detail ")), area);
        return;
    };
    let title = format!(
        " {} {} · {} · {} / {} ",
        row.name, row.incarnation, row.session, row.lifecycle, row.activity
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [pane, _, facts] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    live_pane(frame, pane, app, row);
    agent_facts(frame, facts, app, row);
}

/// The pane's last lines, bottom-aligned like the pane itself.
fn live_pane(frame: &mut Frame, pane: Rect, app: &App, row: &Row) {
    let tail: &[String] = match &app.tail {
        Some((agent, lines)) if agent == &row.name => lines,
        _ => &[],
    };
    let end = tail.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    let room = usize::from(pane.height.saturating_sub(1));
    let last = &tail[end.saturating_sub(room)..end];
    let mut lines = vec![Line::styled(
        "last lines (live)",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if last.is_empty() {
        lines.push(Line::styled(
            "(no pane to show)",
            Style::new().add_modifier(Modifier::DIM),
        ));
    }
    lines.extend(last.iter().map(|l| Line::raw(shown(l).into_owned())));
    frame.render_widget(Paragraph::new(lines), pane);
}

/// Why it is as it is, its last exit and crashes, its checkpoint, its decisions.
fn agent_facts(frame: &mut Frame, facts: Rect, app: &App, row: &Row) {
    let rec = app.mind.agents.get(&row.name);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    if let Some(r) = rec {
        lines.push(Line::from(vec![
            Span::styled("why ", bold),
            Span::raw(shown(&r.reason).into_owned()),
        ]));
        if let Some(e) = r.last_exit() {
            lines.push(Line::from(vec![
                Span::styled("exit ", bold),
                Span::raw(shown(&e.reason).into_owned()),
            ]));
        }
        let crashes = if r.crashes.is_empty() {
            "none".to_owned()
        } else {
            let ago: Vec<String> = r
                .crashes
                .iter()
                .rev()
                .map(|t| human(Duration::from_secs(app.now.since(*t).as_secs())))
                .collect();
            format!("{} — {} ago", r.crashes.len(), ago.join(", "))
        };
        lines.push(Line::from(vec![Span::styled("crashes ", bold), Span::raw(crashes)]));
        if let Some(tree) = r.live().and_then(|l| l.tree.as_ref()) {
            lines.push(Line::from(vec![
                Span::styled("tree ", bold),
                Span::raw(shown(&tree.words()).into_owned()),
            ]));
        }
    }
    let checkpoint = match &app.checkpoint {
        Some((agent, text)) if agent == &row.name => text.as_str(),
        _ => "none recorded",
    };
    lines.push(Line::from(vec![
        Span::styled("checkpoint ", bold),
        Span::raw(shown(checkpoint).into_owned()),
    ]));
    lines.push(Line::styled("decisions, newest first", bold));
    match app.decisions.get(&row.name) {
        Some(list) if !list.is_empty() => lines.extend(list.iter().map(|l| Line::raw(l.as_str()))),
        _ => lines.push(Line::styled("(none yet)", Style::new().add_modifier(Modifier::DIM))),
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), facts);
}

pub(super) fn event_log(frame: &mut Frame, area: Rect, app: &App) {
    let lines: Vec<Line> = app.log.iter().map(|l| Line::raw(l.as_str())).collect();
    let block = Block::bordered().title(" events, newest first ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
