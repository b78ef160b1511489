//! Whole screens of the dashboard, drawn on a test backend and kept as snapshots.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::engine::{
    Activity, AgentName, AgentRecord, EndedLifecycle, Escalation, Hold, Incarnation, LastExit, RateLimit, Time, Wait,
};
use crate::store::{OwnerRecord, Role};
use crate::tui::app::{Agent, App, Mode};
use crate::tui::keys;

const T0: i64 = 1_800_000_000_000;

fn t(s: i64) -> Time {
    Time::from_millis(T0 + s * 1000)
}

fn name(n: &str) -> AgentName {
    AgentName::new(n).unwrap()
}

fn working<'a>(app: &'a mut App, agent: &str, since: i64, activity: Activity) -> &'a mut AgentRecord {
    let mut r = AgentRecord::new(Incarnation(1), format!("shop-{agent}"), t(since), "".into());
    let live = r.live_mut().unwrap();
    live.work();
    live.activity = Some(activity);
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
    let docs = app.mind.agents.get_mut(&name("docs")).unwrap();
    docs.live_mut().unwrap().last_exit = Some(LastExit::because("exited with status 3"));
    insta::assert_snapshot!(screen(&app, 120, 30));
}

#[test]
fn a_fleet_with_one_zombie_puts_it_first_with_its_exit_and_crashes() {
    let mut app = healthy();
    let r = working(&mut app, "tests", 3000, Activity::Active);
    let exit = LastExit {
        code: Some(3),
        reason: "exited with status 3".into(),
        last_lines: vec![],
        start_failed: false,
        host: None,
    };
    let hold = Hold::Until {
        at: t(3710),
        cause: Wait::CrashLoop { crashes: 3 },
    };
    r.finish(EndedLifecycle::Zombie, exit, Some(hold));
    r.restarts = 2;
    r.crashes = vec![t(3300), t(3500), t(3590)];
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
        seen: Default::default(),
        self_resumes: false,
        known: None,
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
fn an_agent_busy_off_screen_shows_its_process_tree() {
    let mut app = healthy();
    let r = working(&mut app, "backend", 0, Activity::Active);
    r.live_mut().unwrap().tree = Some(crate::engine::Tree {
        count: 4,
        cpu_pct: Some(87),
        busiest: vec![
            crate::engine::Busy {
                name: "cargo".into(),
                pct: 80,
            },
            crate::engine::Busy {
                name: "rustc".into(),
                pct: 7,
            },
        ],
    });
    r.reason = "working: busy: cargo at 80 % cpu under the agent (screen still)".into();
    app.selected = Some(name("backend"));
    let shown = screen(&app, 140, 30);
    assert!(
        shown.contains("tree 4 processes, 87 % cpu (cargo 80 %, rustc 7 %)"),
        "{shown}"
    );
    insta::assert_snapshot!(shown);
}

#[test]
fn a_deferred_agent_says_what_holds_its_start_back() {
    let mut app = healthy();
    let r = working(&mut app, "docs", 3590, Activity::Active);
    let live = r.live_mut().unwrap();
    live.activity = None;
    live.deferred = Some(crate::engine::Deferral {
        since: t(3590),
        cause: crate::engine::Pressured::Memory {
            free_memory: 412 << 20,
            min_free_memory: 512 << 20,
        },
        start: "first start".into(),
    });
    r.reason = "deferred: 412 MiB of memory available, under min_free_memory 512 MiB".into();
    app.selected = Some(name("docs"));
    let shown = screen(&app, 120, 30);
    let row = shown.lines().find(|l| l.contains(" docs ")).unwrap_or_default();
    assert!(row.contains("deferred"), "{shown}");
    insta::assert_snapshot!(shown);
}

#[test]
fn a_waiting_agent_asks_for_a_human() {
    let mut app = healthy();
    let r = working(&mut app, "docs", 1200, Activity::Waiting);
    r.live_mut().unwrap().escalation = Escalation::None;
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
            launched_by: None,
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

/// Every key a user can press outside a box: the printable ASCII and the named keys.
fn probes() -> Vec<KeyEvent> {
    let mut codes: Vec<KeyCode> = (' '..='~').map(KeyCode::Char).collect();
    codes.extend([
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::Left,
        KeyCode::Right,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::Esc,
        KeyCode::Enter,
        KeyCode::Tab,
        KeyCode::Backspace,
        KeyCode::Delete,
        KeyCode::F(1),
    ]);
    let plain = codes.iter().map(|c| KeyEvent::new(*c, KeyModifiers::NONE));
    let ctrl = ('a'..='z').map(|c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    plain.chain(ctrl).collect()
}

#[test]
fn the_footer_and_the_help_show_exactly_the_keys_dispatch_handles() {
    // Dispatch: a key does something exactly when the table has it.
    for event in probes() {
        let mut app = healthy();
        app.filter = "e".into();
        let before = format!("{:?}", (&app.overlay, &app.selected, &app.filter, &app.status));
        let effect = app.key(event);
        let after = format!("{:?}", (&app.overlay, &app.selected, &app.filter, &app.status));
        let handled = effect.is_some() || before != after;
        let chord = keys::Chord::of(event.code, event.modifiers);
        assert_eq!(handled, keys::action(chord).is_some(), "{}", chord.name());
    }
    // The footer: the table's footer words, in its order, and nothing else.
    let drawn = screen(&healthy(), 80, 24);
    let footer = drawn.lines().last().unwrap().trim_matches('"').trim().to_owned();
    let want: Vec<String> = keys::footer().map(|(k, w)| format!("{k} {w}")).collect();
    assert_eq!(footer, want.join("  "));
    // The help: every key of the table with its words.
    let mut app = healthy();
    app.key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
    let help = screen(&app, 80, 24);
    for k in KEYS {
        let line = help
            .lines()
            .find(|l| l.contains(k.help))
            .unwrap_or_else(|| panic!("{help}"));
        for (chord, _) in k.bindings {
            assert!(
                line.contains(&chord.name()),
                "{} on the line of `{}`",
                chord.name(),
                k.help
            );
        }
    }
}

#[test]
fn text_vigil_did_not_write_reaches_the_terminal_with_its_control_characters_escaped() {
    let mut app = healthy();
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J";
    app.tail = Some((name("backend"), vec![format!("done {hostile}")]));
    app.checkpoint = Some((name("backend"), format!("checkpoint {hostile}")));
    let backend = app.mind.agents.get_mut(&name("backend")).unwrap();
    backend.reason = format!("waiting: {hostile}");
    let mut terminal = Terminal::new(TestBackend::new(160, 30)).unwrap();
    terminal.draw(|f| render(f, &app)).unwrap();
    let buffer = terminal.backend().buffer();
    let control: Vec<&str> = buffer
        .content()
        .iter()
        .map(|c| c.symbol())
        .filter(|s| s.chars().any(char::is_control))
        .collect();
    assert!(control.is_empty(), "control characters drawn: {control:?}");
    let drawn = terminal.backend().to_string();
    assert!(drawn.contains(r"done \u{1b}]0;pwned\u{7}"), "{drawn}");
    assert!(drawn.contains(r"waiting: \u{1b}]0;pwned"), "{drawn}");
    assert!(drawn.contains(r"checkpoint \u{1b}]0;pwned"), "{drawn}");
}
