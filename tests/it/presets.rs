//! The presets against real captured screens (fixtures/screens/index.toml says what
//! each screen must be read as).

use std::sync::Arc;

use vigil::config::Config;
use vigil::engine::screen;

use super::harness::fixtures;

#[derive(serde::Deserialize)]
struct Index {
    screen: Vec<Screen>,
}

#[derive(serde::Deserialize)]
struct Screen {
    file: String,
    preset: String,
    expect: String,
    #[serde(default)]
    same_hash_as: Option<String>,
}

fn agent_for(preset: &str) -> (Arc<vigil::engine::Patterns>, vigil::engine::Policy) {
    let text = format!("[[agent]]\nname = \"x\"\ncommand = \"x\"\npreset = \"{preset}\"\ncwd = \"/\"\n");
    let config = Config::parse(&text, std::path::Path::new("/tmp/vigil.toml")).unwrap();
    let a = &config.agents[0];
    (a.patterns.clone(), a.policy.clone())
}

fn read(file: &str, preset: &str) -> screen::ScreenRead {
    let text = std::fs::read_to_string(fixtures().join("screens").join(file)).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let (patterns, policy) = agent_for(preset);
    screen::read(&lines, &patterns, policy.tail_lines, policy.rate_limit_lines)
}

fn class(r: &screen::ScreenRead) -> &'static str {
    r.verdict().as_str()
}

fn index() -> Index {
    toml::from_str(&std::fs::read_to_string(fixtures().join("screens/index.toml")).unwrap()).unwrap()
}

/// What the generic menu rule alone says of a capture: no guard, no preset pattern
/// but the prompt's.
fn menu_alone(file: &str, preset: &str) -> Option<String> {
    let text = std::fs::read_to_string(fixtures().join("screens").join(file)).unwrap();
    let raw: Vec<String> = text.lines().map(str::to_owned).collect();
    let (patterns, policy) = agent_for(preset);
    let tail = screen::tail(&raw, policy.tail_lines);
    screen::menu::spot(&tail, patterns.prompt.as_ref())
}

#[test]
fn every_captured_screen_is_read_as_its_index_says() {
    let index = index();
    assert!(index.screen.len() >= 10, "the index lists the captured screens");
    let mut wrong = Vec::new();
    for s in &index.screen {
        let r = read(&s.file, &s.preset);
        if class(&r) != s.expect {
            wrong.push(format!(
                "{} ({}): expected {}, read {} ({r:?})",
                s.file,
                s.preset,
                s.expect,
                class(&r)
            ));
        }
        if let Some(other) = &s.same_hash_as {
            let o = read(other, &s.preset);
            if o.hash != r.hash {
                wrong.push(format!(
                    "{} and {other} should hash the same once volatile text is stripped",
                    s.file
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_preset_has_captured_screens() {
    let index = std::fs::read_to_string(fixtures().join("screens/index.toml")).unwrap();
    for preset in vigil::config::preset::names() {
        assert!(
            index.contains(&format!("preset = \"{preset}\"")),
            "no screens for {preset}"
        );
    }
}

#[test]
fn the_menu_rule_never_fires_on_a_captured_busy_idle_or_quiet_screen() {
    // Not even unguarded: the numbered tips over Gemini's prompt, Claude's answers,
    // Codex's slash-command list, a spinner under a plan.
    let ordinary: Vec<Screen> = index()
        .screen
        .into_iter()
        .filter(|s| matches!(s.expect.as_str(), "busy" | "idle" | "quiet"))
        .collect();
    assert!(ordinary.len() >= 30, "{} ordinary screens", ordinary.len());
    let fired: Vec<String> = ordinary
        .iter()
        .filter_map(|s| menu_alone(&s.file, &s.preset).map(|line| format!("{}: «{line}»", s.file)))
        .collect();
    assert!(fired.is_empty(), "{}", fired.join("\n"));
}

#[test]
fn the_menu_rule_alone_finds_the_dialogs_of_the_live_check_and_the_made_up_ones() {
    let spotted = |f: &str, p: &str| menu_alone(f, p).is_some();
    for (file, preset) in [
        ("codex-0.171.0-hooks-review.txt", "codex"),
        ("codex-0.171.0-sign-in.txt", "codex"),
        ("claude-2.1.332-trust-dialog.txt", "claude"),
        ("claude-2.1.332-api-key-dialog.txt", "claude"),
        ("gemini-0.61.0-trust-dialog.txt", "gemini"),
        ("gemini-0.61.0-auth-dialog.txt", "gemini"),
        ("shell-made-up-menu.txt", "shell"),
        ("shell-made-up-confirm-hint.txt", "shell"),
    ] {
        assert!(spotted(file, preset), "{file} is not spotted as a dialog");
    }
    let r = read("shell-made-up-menu.txt", "shell");
    let w = r.waiting.expect("waiting");
    assert_eq!(
        (w.rule, w.line.as_str()),
        (screen::WaitingRule::Menu, "› 1. Deploy all")
    );
}

#[test]
fn menus_off_leaves_a_dialog_nobody_listed_to_the_ladder() {
    let text = "[[agent]]\nname = \"x\"\ncommand = \"x\"\npreset = \"shell\"\ncwd = \"/\"\nmenus = \"off\"\n";
    let config = Config::parse(text, std::path::Path::new("/tmp/vigil.toml")).unwrap();
    let a = &config.agents[0];
    let raw: Vec<String> = std::fs::read_to_string(fixtures().join("screens/shell-made-up-menu.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let r = screen::read(&raw, &a.patterns, a.policy.tail_lines, a.policy.rate_limit_lines);
    assert_eq!(r.verdict(), screen::Verdict::Quiet);
}
