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
    if r.rate_limit.is_some() {
        "rate_limited"
    } else if r.waiting.is_some() {
        "waiting"
    } else if r.busy {
        "busy"
    } else if r.prompt {
        "idle"
    } else {
        "quiet"
    }
}

#[test]
fn every_captured_screen_is_read_as_its_index_says() {
    let index: Index =
        toml::from_str(&std::fs::read_to_string(fixtures().join("screens/index.toml")).unwrap()).unwrap();
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
