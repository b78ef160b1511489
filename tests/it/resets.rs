//! Structured reset times from fake agents in real tmux: Claude Code's statusLine run
//! through `vigil hook --statusline` (the user's own statusLine still prints through
//! it, a hung one is cut off, and its rate limits beat the screen's prose reset), and a
//! Codex rollout file saying `usage_limit_exceeded` whose `resets_at` beats the screen.

use std::path::Path;

use super::harness::*;
use vigil::engine::Time;
use vigil::engine::limit::LimitKind;
use vigil::engine::resets::{Origin, WindowName};

/// A project of limiter agents `(name, preset, extra)`, each in its own cwd, run under
/// its CLI's name; `LIMITS` is where the test puts statusLine payloads.
fn world(agents: &[(&str, &str, &str)]) -> World {
    let mut body = String::new();
    for (name, preset, extra) in agents {
        body.push_str(&format!(
            "[[agent]]\nname = \"{name}\"\ncommand = [\"../bin/{preset}\"]\npreset = \"{preset}\"\ncwd = \"{name}\"\n{extra}\n"
        ));
    }
    let w = World::new(&body);
    let bin = w.dir.path().join("bin");
    std::fs::create_dir_all(bin.clone()).unwrap();
    std::fs::create_dir_all(w.dir.path().join("payloads")).unwrap();
    for (name, preset, _) in agents {
        std::fs::create_dir_all(w.dir.path().join(name)).unwrap();
        let link = bin.join(preset);
        if !link.exists() {
            std::os::unix::fs::symlink(fixtures().join("agents/limiter.sh"), link).unwrap();
        }
    }
    w
}

fn env_line(w: &World, more: &str) -> String {
    format!(
        "env = {{ LIMITS = \"{}\"{more} }}",
        w.dir.path().join("payloads").display()
    )
}

/// Drops `file` with `text` into agent `name`'s cwd, whole.
fn drop_file(w: &World, name: &str, file: &str, text: &str) {
    let dir = w.dir.path().join(name);
    std::fs::write(dir.join(format!(".{file}")), text).unwrap();
    std::fs::rename(dir.join(format!(".{file}")), dir.join(file)).unwrap();
}

fn epoch_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn time(secs: i64) -> Time {
    Time::from_millis(secs * 1000)
}

/// The statusLine payload of fixtures/limits with its 5-hour window at 100 % resetting
/// at `resets` (epoch seconds), as Claude Code sends it.
fn statusline_payload(resets: i64) -> String {
    let text = std::fs::read_to_string(fixtures().join("limits/claude-statusline-numbers.json")).unwrap();
    text.replace("1796140800", &resets.to_string())
}

fn user_settings(w: &World, name: &str, command: &str) {
    let dir = w.dir.path().join(name).join(".claude");
    std::fs::create_dir_all(&dir).unwrap();
    let settings = serde_json::json!({"statusLine": {"type": "command", "command": command, "padding": 0}});
    std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
}

fn watch_at_home(w: &mut World) {
    let home = w.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let claude = home.join(".claude");
    w.watch_env(&[("HOME", &home), ("CLAUDE_CONFIG_DIR", Path::new(&claude))]);
}

#[test]
fn claudes_statusline_keeps_the_users_line_and_its_reset_beats_the_screens() {
    let mut w = world(&[("cl", "claude", ""), ("hung", "claude", "")]);
    let config = std::fs::read_to_string(w.config()).unwrap();
    let env = env_line(&w, "");
    std::fs::write(
        w.config(),
        config
            .replace("cwd = \"cl\"\n", &format!("cwd = \"cl\"\n{env}\n"))
            .replace("cwd = \"hung\"\n", &format!("cwd = \"hung\"\n{env}\n")),
    )
    .unwrap();
    // The user's own statusLine reads the same stdin; the hung one never answers.
    user_settings(&w, "cl", r#"printf 'mine:%s' "$(grep -o '"version":"[^"]*"')""#);
    user_settings(&w, "hung", "sleep 30; echo late");
    watch_at_home(&mut w);
    for name in ["cl", "hung"] {
        w.wait_for(name, 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    }
    let screen = w.wait_screen(&w.agent("cl").session, 10, "limiter: statusLine:");
    assert!(screen.contains("hook --statusline"), "{screen}");

    let resets = epoch_now() + 2 * 3600;
    std::fs::write(w.dir.path().join("payloads/limits.json"), statusline_payload(resets)).unwrap();
    drop_file(&w, "cl", "status", "limits.json");
    let screen = w.wait_screen(&w.agent("cl").session, 10, "statusline limits.json:");
    assert!(
        screen.contains(r#"statusline limits.json: [mine:"version":"2.1.332"] rc=0"#),
        "the user's line, fed the same stdin, passes through: {screen}"
    );
    let recorded = w.state().join("limits/cl.json");
    assert!(recorded.is_file(), "the rate limits are recorded for the owner");

    drop_file(&w, "hung", "status", "limits.json");
    let screen = w.wait_screen(&w.agent("hung").session, 15, "statusline limits.json:");
    assert!(
        screen.contains("statusline limits.json: [] rc=0"),
        "a hung user statusLine is cut off: nothing shown, no failure: {screen}"
    );

    // A limit on screen whose prose says another time: the statusLine's wins.
    drop_file(
        &w,
        "cl",
        "screen",
        "\n⎿  You've hit your limit · resets 4:50pm (Asia/Shanghai)\n",
    );
    let a = w.wait_for("cl", 20, "held until the statusLine's reset", |a| {
        a.rate_limit.as_ref().is_some_and(|rl| rl.known.is_some())
    });
    let rl = a.rate_limit.unwrap();
    assert_eq!(rl.kind, LimitKind::Resets { at: time(resets) });
    let known = rl.known.unwrap();
    assert_eq!(
        (known.origin, known.window),
        (Origin::ClaudeStatusLine, WindowName::FiveHour)
    );
    assert_eq!(known.resets_at, time(resets));
    let said = w
        .journal()
        .into_iter()
        .any(|e| matches!(&e.record, Record::Event(ev) if ev.reason.contains("Claude Code's statusLine says the 5-hour limit resets at")));
    assert!(said, "the reason cites the statusLine");
}

#[test]
fn a_codex_rollout_with_usage_limit_exceeded_gives_its_reset_time() {
    let mut w = world(&[("cx", "codex", "")]);
    let codex_home = w.dir.path().join("codex-home");
    let config = std::fs::read_to_string(w.config()).unwrap();
    let env = env_line(&w, &format!(", CODEX_HOME = \"{}\"", codex_home.display()));
    std::fs::write(
        w.config(),
        config.replace("cwd = \"cx\"\n", &format!("cwd = \"cx\"\n{env}\n")),
    )
    .unwrap();
    watch_at_home(&mut w);
    w.wait_for("cx", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));

    // The rollout Codex would write for this session, after the agent started.
    let now = jiff::Zoned::now();
    let day = codex_home
        .join("sessions")
        .join(now.date().strftime("%Y/%m/%d").to_string());
    std::fs::create_dir_all(&day).unwrap();
    let cwd = std::fs::canonicalize(w.dir.path().join("cx")).unwrap();
    let stamp = jiff::Timestamp::now().to_string();
    let resets = epoch_now() + 90 * 60;
    let lines = [
        serde_json::json!({"timestamp": stamp, "type": "session_meta", "payload": {"id": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "cwd": cwd, "cli_version": "0.171.0"}}),
        serde_json::json!({"timestamp": stamp, "type": "event_msg", "payload": {"type": "task_started"}}),
        serde_json::json!({"timestamp": stamp, "type": "event_msg", "payload": {"type": "token_count", "info": null, "rate_limits": {"primary": {"used_percent": 100.0, "window_minutes": 300, "resets_at": resets}, "secondary": null}}}),
        serde_json::json!({"timestamp": stamp, "type": "event_msg", "payload": {"type": "task_complete", "error": {"codex_error_info": "usage_limit_exceeded"}}}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(
        day.join("rollout-2026-12-01T14-00-00-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl"),
        text,
    )
    .unwrap();
    // Its screen says a limit with another time.
    drop_file(
        &w,
        "cx",
        "screen",
        "\n■ You've hit your usage limit. Upgrade to Pro, or try again in 4 days 6 hours 37 minutes.\n",
    );
    let a = w.wait_for("cx", 20, "held until the rollout's reset", |a| {
        a.rate_limit.as_ref().is_some_and(|rl| rl.known.is_some())
    });
    let rl = a.rate_limit.unwrap();
    assert_eq!(rl.kind, LimitKind::Resets { at: time(resets) });
    let known = rl.known.unwrap();
    assert_eq!((known.origin, known.window_minutes), (Origin::CodexRollout, Some(300)));
    let journal = w.journal();
    assert!(
        journal
            .iter()
            .any(|e| matches!(&e.record, Record::Limits { report, .. } if report.limit_hit.is_some())),
        "the rollout's facts are journaled"
    );
}

#[test]
fn the_statusline_wrapper_never_fails_claude_and_records_only_changes() {
    use super::hooks::{hook, quiet_success};
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    for (input, what) in [
        (None, "no stdin, no owner"),
        (Some(b"garbage".to_vec()), "garbage"),
        (Some(vec![b'x'; 10 << 20]), "10 MB"),
    ] {
        quiet_success(&hook(&[], &["--statusline"], input), what);
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for sub in ["signals", "limits"] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state.join(sub))
            .unwrap();
    }
    let signals = state.join("signals");
    let env = [
        ("VIGIL_AGENT", "a"),
        ("VIGIL_INCARNATION", "1"),
        ("VIGIL_RUN", "run"),
        ("VIGIL_SIGNALS", signals.to_str().unwrap()),
    ];
    let payload = statusline_payload(epoch_now() + 3600).into_bytes();
    quiet_success(
        &hook(&env, &["--statusline"], Some(payload.clone())),
        "no user statusLine: nothing printed",
    );
    let file = state.join("limits/a.json");
    let stamp = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.ino(), m.mtime_nsec(), m.mtime())
    };
    let first = stamp(&file);
    quiet_success(&hook(&env, &["--statusline"], Some(payload)), "the same values again");
    let none = std::fs::read(fixtures().join("limits/claude-statusline-no-limits.json")).unwrap();
    quiet_success(&hook(&env, &["--statusline"], Some(none)), "no rate limits");
    assert_eq!(stamp(&file), first, "unchanged values are not rewritten");
    let changed = statusline_payload(epoch_now() + 7200).into_bytes();
    quiet_success(&hook(&env, &["--statusline"], Some(changed)), "new values");
    assert_ne!(stamp(&file), first, "changed values are");
}
