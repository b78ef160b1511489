//! Draws the dashboard from the [`App`] state and nothing else: no IO, no clock (every
//! duration is measured to `app.now`), no decisions. Title bar, fleet table, detail
//! pane, event log, status line and key footer; the help and confirm overlays; and a
//! plain message when the terminal is smaller than 80×24.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row as TableRow, Table, TableState, Wrap};

use super::app::{App, Mode, Overlay};
use super::fleet::{Health, Row};
use crate::engine::Command;
use crate::engine::time::human;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// From this width the table has room for the last exit too.
const WIDE: u16 = 110;

/// The keys in the footer; the help overlay lists them all.
const FOOTER: [(&str, &str); 8] = [
    ("n", "nudge"),
    ("r", "restart"),
    ("s", "stop"),
    ("a", "attach"),
    ("t", "triage"),
    ("/", "filter"),
    ("?", "help"),
    ("q", "quit"),
];

const HELP: [(&str, &str); 17] = [
    ("↑ ↓  j k", "select an agent (PgUp PgDn g G jump)"),
    ("n", "nudge: type the nudge text into its pane"),
    ("r", "restart: new incarnation (asks first)"),
    ("s", "stop: kill it, keep it stopped (asks first)"),
    ("u", "up: start it again after a stop"),
    ("t", "triage now and act on the verdict"),
    ("a", "attach to its tmux session; detach to return"),
    ("/", "filter by name, lifecycle or activity"),
    ("Esc", "clear the filter, close a box"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit (the agents keep running)"),
    ("", ""),
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
    fleet_table(frame, fleet_area, app, &rows, selected);
    detail(frame, detail_area, app, selected.map(|i| &rows[i]));
    event_log(frame, log_area, app);
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

fn paint(app: &App, color: Color) -> Style {
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

/// "2 !!  1 HUMAN  5 OK": how the whole fleet does, filter or not.
fn counts(app: &App) -> String {
    let agents = app.agents.iter().map(|a| (&a.name, a.session.as_str()));
    let all = super::fleet::rows(agents, &app.mind, app.now);
    let counts: Vec<String> = [Health::Bad, Health::Human, Health::Unsure, Health::Good, Health::Off]
        .into_iter()
        .filter_map(|h| {
            let n = all.iter().filter(|r| r.health == h).count();
            (n > 0).then(|| format!("{n} {}", h.word()))
        })
        .collect();
    counts.join("  ")
}

fn fleet_table(frame: &mut Frame, area: Rect, app: &App, rows: &[Row], selected: Option<usize>) {
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

fn detail(frame: &mut Frame, area: Rect, app: &App, row: Option<&Row>) {
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

    // The pane's last lines, bottom-aligned like the pane itself.
    let tail: &[String] = match &app.tail {
        Some((agent, lines)) if agent == &row.name => lines,
        _ => &[],
    };
    let end = tail.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    let room = usize::from(pane.height.saturating_sub(1));
    let shown = &tail[end.saturating_sub(room)..end];
    let mut lines = vec![Line::styled(
        "last lines (live)",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if shown.is_empty() {
        lines.push(Line::styled(
            "(no pane to show)",
            Style::new().add_modifier(Modifier::DIM),
        ));
    }
    lines.extend(shown.iter().map(|l| Line::raw(l.as_str())));
    frame.render_widget(Paragraph::new(lines), pane);

    let rec = app.mind.agents.get(&row.name);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    if let Some(r) = rec {
        lines.push(Line::from(vec![
            Span::styled("why ", bold),
            Span::raw(r.reason.as_str()),
        ]));
        if let Some(e) = &r.last_exit {
            lines.push(Line::from(vec![
                Span::styled("exit ", bold),
                Span::raw(e.reason.as_str()),
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
    }
    let checkpoint = match &app.checkpoint {
        Some((agent, text)) if agent == &row.name => text.as_str(),
        _ => "none recorded",
    };
    lines.push(Line::from(vec![
        Span::styled("checkpoint ", bold),
        Span::raw(checkpoint),
    ]));
    lines.push(Line::styled("decisions, newest first", bold));
    match app.decisions.get(&row.name) {
        Some(list) if !list.is_empty() => lines.extend(list.iter().map(|l| Line::raw(l.as_str()))),
        _ => lines.push(Line::styled("(none yet)", Style::new().add_modifier(Modifier::DIM))),
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), facts);
}

fn event_log(frame: &mut Frame, area: Rect, app: &App) {
    let lines: Vec<Line> = app.log.iter().map(|l| Line::raw(l.as_str())).collect();
    let block = Block::bordered().title(" events, newest first ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
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
    for (i, (key, what)) in FOOTER.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(*key, Style::new().add_modifier(Modifier::REVERSED)));
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
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<10} "), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(*what),
            ])
        })
        .collect();
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
        Command::Up(_) | Command::Nudge(_) | Command::Triage(_) => {
            (format!("{}?", crate::present::command_words(command)), String::new())
        }
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
mod tests {
    use std::time::Duration;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::engine::{
        Activity, AgentName, AgentRecord, Escalation, Incarnation, LastExit, Lifecycle, RateLimit, Time,
    };
    use crate::store::{OwnerRecord, Role};
    use crate::tui::app::{Agent, App, Mode};

    const T0: i64 = 1_800_000_000_000;

    fn t(s: i64) -> Time {
        Time::from_millis(T0 + s * 1000)
    }

    fn name(n: &str) -> AgentName {
        AgentName::new(n).unwrap()
    }

    fn working<'a>(app: &'a mut App, agent: &str, since: i64, activity: Activity) -> &'a mut AgentRecord {
        let mut r = AgentRecord::new(Incarnation(1), format!("shop-{agent}"), t(since), "".into());
        r.lifecycle = Lifecycle::Working;
        r.activity = Some(activity);
        r.reason = "the screen changes: it is working".into();
        app.mind.agents.insert(name(agent), r);
        app.mind.agents.get_mut(&name(agent)).unwrap()
    }

    /// Five agents an hour into a run, all working; the clock at t(3600).
    fn healthy() -> App {
        let agents = ["backend", "frontend", "docs", "tests", "migrations"]
            .iter()
            .map(|n| Agent {
                name: name(n),
                session: format!("shop-{n}"),
            })
            .collect();
        let mode = Mode::Owner {
            poll: Duration::from_secs(5),
            socket: Some("vigil".into()),
        };
        let mut app = App::new("shop-1a2b3c4d".into(), mode, agents, t(3600), false);
        working(&mut app, "backend", 0, Activity::Active);
        working(&mut app, "frontend", 600, Activity::Active);
        working(&mut app, "docs", 1200, Activity::Active).restarts = 1;
        working(&mut app, "tests", 3000, Activity::Active);
        working(&mut app, "migrations", 3590, Activity::Active);
        app.tail = Some((
            name("backend"),
            vec![
                "cargo test: 212 passed".into(),
                "editing src/orders.rs".into(),
                "✻ Thinking… (esc to interrupt)".into(),
                "".into(),
            ],
        ));
        app.decisions.insert(
            name("backend"),
            ["09:00:00 backend #1 is working: the screen changes".to_owned()].into(),
        );
        app.log = [
            "09:59:50 migrations #1 is working: the screen changes",
            "09:50:00 tests #1 is working: the screen changes",
            "09:20:00 docs #1 → start: restart after exit 3",
        ]
        .map(str::to_owned)
        .into();
        app
    }

    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, app)).unwrap();
        terminal.backend().to_string()
    }

    #[test]
    fn a_healthy_fleet() {
        insta::assert_snapshot!(screen(&healthy(), 80, 24));
    }

    #[test]
    fn a_healthy_fleet_on_a_wide_terminal_shows_the_last_exit() {
        let mut app = healthy();
        app.mind.agents.get_mut(&name("docs")).unwrap().last_exit = Some(LastExit::because("exited with status 3"));
        insta::assert_snapshot!(screen(&app, 120, 30));
    }

    #[test]
    fn a_fleet_with_one_zombie_puts_it_first_with_its_exit_and_crashes() {
        let mut app = healthy();
        let r = working(&mut app, "tests", 3000, Activity::Active);
        r.lifecycle = Lifecycle::Zombie;
        r.activity = None;
        r.restarts = 2;
        r.crashes = vec![t(3300), t(3500), t(3590)];
        r.cooldown_until = Some(t(3710));
        r.last_exit = Some(LastExit {
            code: Some(3),
            reason: "exited with status 3".into(),
            last_lines: vec![],
            start_failed: false,
        });
        r.reason = "crash loop: 3 crashes within 2m; no restart for 2m".into();
        app.selected = Some(name("tests"));
        app.tail = Some((
            name("tests"),
            vec![
                "error: cannot connect to api.example.com".into(),
                "Pane is dead (status 3)".into(),
            ],
        ));
        app.decisions.insert(
            name("tests"),
            [
                "09:59:50 tests #1 held: crash loop, no restart for 2m",
                "09:59:50 tests #1 is zombie: exited with status 3",
            ]
            .map(str::to_owned)
            .into(),
        );
        insta::assert_snapshot!(screen(&app, 80, 24));
    }

    #[test]
    fn a_rate_limited_agent_counts_its_cooldown_down() {
        let mut app = healthy();
        let r = working(&mut app, "frontend", 600, Activity::RateLimited);
        r.rate_limit = Some(RateLimit {
            until: t(3600 + 272),
            renewals: 1,
            resumed: false,
            line: "429 Too Many Requests".into(),
            kind: Default::default(),
        });
        r.reason = "rate limited (429 Too Many Requests): cooldown until 10:04:32".into();
        app.selected = Some(name("frontend"));
        let first = screen(&app, 80, 24);
        assert!(first.contains("4m32s"), "{first}");
        app.now = t(3601);
        let later = screen(&app, 80, 24);
        assert!(later.contains("4m31s"), "the countdown moves with the clock: {later}");
        insta::assert_snapshot!(first);
    }

    #[test]
    fn a_waiting_agent_asks_for_a_human() {
        let mut app = healthy();
        let r = working(&mut app, "docs", 1200, Activity::Waiting);
        r.escalation = Escalation::None;
        r.reason = "a dialog needs a human: \"Do you trust the files in this folder?\"".into();
        app.selected = Some(name("docs"));
        app.log
            .push_front("10:00:00 docs #1 NEEDS A HUMAN: a dialog is open".into());
        insta::assert_snapshot!(screen(&app, 80, 24));
    }

    #[test]
    fn the_help_overlay() {
        let mut app = healthy();
        app.key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
        insta::assert_snapshot!(screen(&app, 80, 24));
    }

    #[test]
    fn restart_asks_for_confirmation() {
        let mut app = healthy();
        app.key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE));
        let s = screen(&app, 80, 24);
        assert!(s.contains("Restart backend #1?"), "{s}");
        assert!(s.contains("y / Enter: yes"), "{s}");
    }

    #[test]
    fn a_terminal_below_80x24_says_so_and_nothing_else() {
        insta::assert_snapshot!(screen(&healthy(), 79, 24));
        let s = screen(&healthy(), 100, 23);
        assert!(s.contains("terminal too small: need 80×24, have 100×23"), "{s}");
        assert!(!s.contains("backend"));
    }

    #[test]
    fn the_viewer_title_names_the_owner_and_its_heartbeat() {
        let mut app = healthy();
        app.mode = Mode::Viewer {
            owner: Some(OwnerRecord {
                pid: 4242,
                start_time: None,
                host: "box".into(),
                epoch: 7,
                started_at: t(0),
                role: Role::Watch,
            }),
            heartbeat: Some(t(3597)),
        };
        insta::assert_snapshot!(screen(&app, 80, 24));
    }

    #[test]
    fn health_is_coloured_and_still_readable_without_colour() {
        let mut app = healthy();
        working(&mut app, "tests", 3000, Activity::Waiting);
        let cell_of = |app: &App, text: &str| {
            let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
            terminal.draw(|f| render(f, app)).unwrap();
            let buffer = terminal.backend().buffer().clone();
            let area = buffer.area;
            (3..area.height)
                .flat_map(|y| (0..area.width).map(move |x| (x, y)))
                .find(|&(x, y)| {
                    (0..text.len()).all(|i| {
                        buffer
                            .cell((x + i as u16, y))
                            .is_some_and(|c| c.symbol() == &text[i..i + 1])
                    })
                })
                .map(|(x, y)| buffer.cell((x, y)).unwrap().clone())
                .unwrap()
        };
        assert_eq!(cell_of(&app, "HUMAN").fg, Color::Cyan);
        assert_eq!(cell_of(&app, "OK ").fg, Color::Green);
        app.no_color = true;
        let human = cell_of(&app, "HUMAN");
        assert_eq!(human.fg, Color::Reset, "NO_COLOR: the word says it");
    }
}
