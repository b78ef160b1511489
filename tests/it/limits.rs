//! Limit messages from real agents (fixtures/limits.toml) are classified as the file
//! says: a throttle, a limit that resets at a given instant, or one that does not lift.

use vigil::engine::Time;
use vigil::engine::limit::{AfterReset, LimitKind, after_reset, classify};

use super::harness::fixtures;

#[derive(serde::Deserialize)]
struct File {
    message: Vec<Message>,
}

#[derive(serde::Deserialize)]
struct Message {
    source: String,
    text: String,
    now: String,
    tz: String,
    kind: String,
    at: Option<String>,
}

fn time(rfc3339: &str) -> Time {
    Time::from_millis(rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond())
}

#[test]
fn real_limit_messages_are_read_as_their_fixture_says() {
    let file: File = toml::from_str(&std::fs::read_to_string(fixtures().join("limits.toml")).unwrap()).unwrap();
    assert!(file.message.len() >= 30);
    let mut wrong = Vec::new();
    for m in &file.message {
        let tz = jiff::tz::TimeZone::get(&m.tz).unwrap();
        let after = match m.kind.as_str() {
            "continues" => Some(AfterReset::Continues),
            "awaits_enter" => Some(AfterReset::AwaitsEnter),
            _ => None,
        };
        if after.is_some() || after_reset(&m.text).is_some() {
            if after_reset(&m.text) != after {
                wrong.push(format!(
                    "{}: «{}»\n  expected {after:?} after a reset\n  got      {:?}",
                    m.source,
                    m.text,
                    after_reset(&m.text)
                ));
            }
            continue;
        }
        let expected = match m.kind.as_str() {
            "throttle" => LimitKind::Throttle,
            "no_reset" => LimitKind::NoReset,
            "resets" => LimitKind::Resets {
                at: time(m.at.as_deref().unwrap()),
            },
            other => panic!("unknown kind {other}"),
        };
        let got = classify(&m.text, time(&m.now), &tz);
        if got != expected {
            wrong.push(format!(
                "{}: «{}»\n  expected {expected:?}\n  got      {got:?}",
                m.source, m.text
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
