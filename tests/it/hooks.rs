//! Hearing the agent: fake agents in real tmux run `vigil hook` with each CLI's real
//! payload shape (fixtures/hooks), and the owner's status follows within a poll with
//! the signal cited in the reason; `vigil hook` itself never fails or talks, whatever
//! it is given, and the owner journals what it ignored and why.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::harness::*;
use vigil::engine::signal::{Ignored, Said, Source};

/// A project of hooker agents, one per `(name, preset, extra)`, each in its own cwd.
fn world(agents: &[(&str, &str, &str)]) -> World {
    let mut body = String::new();
    for (name, preset, extra) in agents {
        // The fake runs under its CLI's name, as the real one would be found on PATH.
        body.push_str(&format!(
            "[[agent]]\nname = \"{name}\"\ncommand = [\"../bin/{preset}\"]\npreset = \"{preset}\"\ncwd = \"{name}\"\nenv = {{ VIGIL_BIN = \"{VIGIL}\", HOOKS = \"{}\" }}\n{extra}\n",
            fixtures().join("hooks").display()
        ));
    }
    let w = World::new(&body);
    let bin = w.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, preset, _) in agents {
        std::fs::create_dir(w.dir.path().join(name)).unwrap();
        let link = bin.join(preset);
        if !link.exists() {
            std::os::unix::fs::symlink(fixtures().join("agents/hooker.sh"), link).unwrap();
        }
    }
    w
}

/// Makes agent `name` run `vigil hook` with the payload `fixtures/hooks/<payload>`.
fn say(w: &World, name: &str, payload: &str) {
    let dir = w.dir.path().join(name);
    std::fs::write(dir.join(".say"), payload).unwrap();
    std::fs::rename(dir.join(".say"), dir.join("say")).unwrap();
}

fn signal_notes(w: &World) -> Vec<vigil::store::record::SignalNote> {
    w.journal()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Signal(n) => Some(n),
            _ => None,
        })
        .collect()
}

#[test]
fn each_clis_payloads_change_status_with_the_signal_in_the_reason() {
    let mut w = world(&[("cl", "claude", ""), ("cx", "codex", ""), ("ge", "gemini", "")]);
    w.watch();
    for name in ["cl", "cx", "ge"] {
        w.wait_for(name, 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    }
    // What vigil wired reached each agent, without touching its command text.
    let settings = w.state().join("hooks/claude-cl.json");
    let screen = w.wait_screen(&w.agent("cl").session, 10, "hooker: args:");
    assert!(
        screen.contains(&format!("args: --settings {}", settings.display())),
        "{screen}"
    );
    let screen = w.wait_screen(&w.agent("cx").session, 10, "hooker: args:");
    assert!(
        screen.contains(&format!(r#"args: -c notify=["{VIGIL}", "hook"]"#)),
        "{screen}"
    );
    let screen = w.wait_screen(&w.agent("ge").session, 10, "gemini settings:");
    let gemini = w.state().join("hooks/gemini-settings.json");
    assert!(
        screen.contains(&format!("gemini settings: {}", gemini.display())),
        "{screen}"
    );

    say(&w, "cl", "claude-permission-prompt.json");
    let a = w.wait_for("cl", 20, "waiting on its hook", |a| {
        a.activity == Some(Activity::Waiting)
    });
    assert!(
        a.reason
            .contains("Claude Code asked for permission to use Bash (hook, "),
        "{}",
        a.reason
    );
    let signal = a.signal.unwrap();
    assert_eq!((signal.source, signal.event.as_str()), (Source::Claude, "Notification"));

    say(&w, "ge", "gemini-notification-tool-permission.json");
    let a = w.wait_for("ge", 20, "waiting on its hook", |a| {
        a.activity == Some(Activity::Waiting)
    });
    assert!(a.reason.contains("Gemini CLI asked for permission"), "{}", a.reason);

    say(&w, "cx", "codex-agent-turn-complete.json");
    let a = w.wait_for("cx", 20, "idle on its notify", |a| {
        a.signal.as_ref().is_some_and(|s| s.said == Said::Idle) && a.activity == Some(Activity::Idle)
    });
    assert!(a.reason.contains("Codex finished its turn (notify, "), "{}", a.reason);

    let notes = signal_notes(&w);
    for (agent, source) in [("cl", Source::Claude), ("ge", Source::Gemini), ("cx", Source::Codex)] {
        let n = notes.iter().find(|n| n.agent == agent).unwrap();
        assert_eq!((n.source, n.ignored.clone()), (Some(source), None), "{n:?}");
    }
}

#[test]
fn a_permission_prompt_on_an_idle_looking_screen_is_waiting_and_never_nudged() {
    let mut w = world(&[("cl", "claude", "idle_checks = 1\nsignal_fresh = \"1s\"")]);
    w.watch();
    w.wait_for("cl", 20, "idle at its prompt", |a| a.activity == Some(Activity::Idle));
    // Nudges on an idle screen are what this agent gets when nothing is said.
    w.wait_journal(20, "a nudge while idle", |e| types_for(e, Purpose::Nudge));
    let nudges = || w.journal().iter().filter(|e| types_for(e, Purpose::Nudge)).count();
    w.wait_for("cl", 20, "idle again", |a| a.activity == Some(Activity::Idle));
    say(&w, "cl", "claude-permission-prompt.json");
    w.wait_for("cl", 20, "waiting", |a| a.activity == Some(Activity::Waiting));
    let before = nudges();
    wait_out(
        Duration::from_secs(3),
        "polls past the signal's window on an unchanged screen",
    );
    let a = w.agent("cl");
    assert_eq!(a.activity, Some(Activity::Waiting), "{}", a.reason);
    assert!(
        a.reason.starts_with("waiting: Claude Code asked for permission"),
        "{}",
        a.reason
    );
    assert_eq!(nudges(), before, "never nudged while the dialog is up");
}

#[test]
fn a_stale_signal_expires_back_to_the_screens_verdict() {
    let mut w = world(&[("cl", "claude", "idle_checks = 1000\nsignal_fresh = \"2s\"")]);
    w.watch();
    w.wait_for("cl", 20, "idle at its prompt", |a| a.activity == Some(Activity::Idle));
    say(&w, "cl", "claude-pre-tool-use.json");
    let a = w.wait_for("cl", 20, "working on its hook", |a| {
        a.activity == Some(Activity::Active)
    });
    assert!(
        a.reason.contains("working: Claude Code is using Bash (hook, "),
        "{}",
        a.reason
    );
    let a = w.wait_for("cl", 20, "idle again by its screen", |a| {
        a.activity == Some(Activity::Idle)
    });
    assert!(!a.reason.starts_with("working"), "{}", a.reason);
}

/// Runs `vigil hook ARGS` with `env` and `input` on stdin (`None`: stdin /dev/null).
pub(super) fn hook(env: &[(&str, &str)], args: &[&str], input: Option<Vec<u8>>) -> Output {
    let mut cmd = Command::new(VIGIL);
    cmd.arg("hook")
        .args(args)
        .env_remove("VIGIL_AGENT")
        .env_remove("VIGIL_SIGNALS")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().unwrap();
    let writer = input.map(|bytes| {
        let mut stdin = child.stdin.take().unwrap();
        // A hook that stops reading closes the pipe: the writer sees EPIPE, never blocks.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(w) = writer {
        w.join().unwrap();
    }
    out
}

pub(super) fn quiet_success(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}");
    assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
    assert!(
        out.stderr.is_empty(),
        "{what}: stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn vigil_hook_exits_0_silently_on_anything_and_the_owner_journals_what_it_ignored() {
    let mut w = world(&[("cl", "claude", "")]);
    let payload = std::fs::read(fixtures().join("hooks/claude-stop.json")).unwrap();
    // No owner, no env: nothing to tell, nothing said.
    quiet_success(&hook(&[], &[], Some(payload.clone())), "no env");
    quiet_success(&hook(&[], &[], None), "no env, no stdin");
    w.watch();
    let a = w.wait_for("cl", 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    // The run vigil named in the agent's env, as a real hook inherits it.
    let environ = std::fs::read(format!("/proc/{}/environ", a.pane_pid.unwrap())).unwrap();
    let run = environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"VIGIL_RUN="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap();
    let signals = w.state().join("signals");
    let signals = signals.to_str().unwrap();
    let env = |agent: &'static str, incarnation: &'static str| {
        vec![
            ("VIGIL_SIGNALS", signals),
            ("VIGIL_AGENT", agent),
            ("VIGIL_INCARNATION", incarnation),
            ("VIGIL_RUN", run.trim()),
        ]
    };
    quiet_success(&hook(&env("cl", "1"), &[], Some(b"\x00garbage{".to_vec())), "garbage");
    quiet_success(&hook(&env("cl", "1"), &[], Some(vec![b'x'; 10 << 20])), "10 MB");
    quiet_success(&hook(&env("ghost", "1"), &[], Some(payload.clone())), "unknown agent");
    quiet_success(&hook(&env("cl", "7"), &[], Some(payload.clone())), "stale incarnation");
    // Codex's way: the payload as the last argument, stdin left open and silent.
    let codex = std::fs::read_to_string(fixtures().join("hooks/codex-agent-turn-complete.json")).unwrap();
    let mut child = Command::new(VIGIL)
        .args(["hook", &codex])
        .envs(env("cl", "1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let open_stdin = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    drop(open_stdin);
    quiet_success(&out, "argv payload with stdin open");
    // A dir that is not vigil's (open to others) gets no letter.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut stranger = env("cl", "1");
    stranger[0].1 = open.path().to_str().unwrap();
    quiet_success(&hook(&stranger, &[], Some(payload)), "a dir open to others");
    assert_eq!(std::fs::read_dir(open.path()).unwrap().count(), 0);

    let ignored = |check: fn(&Ignored) -> bool| {
        w.eventually(Duration::from_secs(20), "the owner journals it", || {
            signal_notes(&w)
                .into_iter()
                .find(|n| n.ignored.as_ref().is_some_and(check))
        })
    };
    let g = ignored(|i| matches!(i, Ignored::Garbage { what } if what.contains("not JSON")));
    assert!(g.reason.contains("ignored"), "{}", g.reason);
    ignored(|i| matches!(i, Ignored::Garbage { what } if what.contains("64 KiB")));
    let u = ignored(|i| matches!(i, Ignored::UnknownAgent { agent } if agent == "ghost"));
    assert!(u.reason.contains("unknown agent `ghost`"), "{}", u.reason);
    let s = ignored(|i| matches!(i, Ignored::OtherIncarnation { .. }));
    assert!(s.reason.contains("stale incarnation"), "{}", s.reason);
    w.wait_for("cl", 20, "the codex-style payload taken", |a| {
        a.signal.as_ref().is_some_and(|s| s.source == Source::Codex)
    });
    assert!(Path::new(signals).read_dir().unwrap().count() <= 1);
}

#[test]
fn a_claude_session_file_is_trusted_only_for_the_live_process_it_names() {
    let mut w = world(&[("cl", "claude", "idle_checks = 1000")]);
    let home = w.dir.path().join("home");
    let sessions = home.join(".claude/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    w.watch_env(&[("HOME", &home)]);
    w.wait_for("cl", 20, "idle at its prompt", |a| a.activity == Some(Activity::Idle));

    // A process that wrote "waiting" and was SIGKILLed leaves its file behind; its pid
    // came back as the agent's, whose start time differs: never believed.
    let scratch = w.dir.path().join("scratch.json");
    let mut dead = Command::new("sh")
        .args([
            "-c",
            r#"printf '{"pid":%s,"procStart":"%s","status":"waiting"}' $$ "$(awk '{print $22}' /proc/$$/stat)" >"$1"; exec sleep 1000"#,
            "writer",
        ])
        .arg(&scratch)
        .spawn()
        .unwrap();
    let child = dead.id();
    w.eventually(Duration::from_secs(10), "its session file", || {
        std::fs::metadata(&scratch).ok().filter(|m| m.len() > 0)
    });
    dead.kill().unwrap();
    dead.wait().unwrap();
    let agent = std::fs::read_to_string(format!("/proc/{}/task/{0}/children", w.agent("cl").pane_pid.unwrap()))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse::<u32>()
        .unwrap();
    let left = std::fs::read_to_string(&scratch)
        .unwrap()
        .replace(&child.to_string(), &agent.to_string());
    std::fs::write(sessions.join(format!("{agent}.json")), left).unwrap();
    let note = w.wait_journal(
        20,
        "the file left behind ignored",
        |e| matches!(&e.record, Record::Signal(n) if matches!(n.ignored, Some(Ignored::Untrusted { .. }))),
    );
    let Record::Signal(note) = note.record else {
        unreachable!()
    };
    assert!(note.reason.contains("procStart"), "{}", note.reason);
    wait_out(Duration::from_secs(1), "polls that could believe it");
    let a = w.agent("cl");
    assert_eq!(a.activity, Some(Activity::Idle), "{}", a.reason);

    // The agent's own file, naming it rightly, is its word.
    say(&w, "cl", "session:waiting");
    let a = w.wait_for("cl", 20, "waiting on its own file", |a| {
        a.activity == Some(Activity::Waiting) && a.signal.as_ref().is_some_and(|s| s.event == "session:waiting")
    });
    assert!(
        a.reason.contains("Claude Code waits for an answer (session file, "),
        "{}",
        a.reason
    );
    let _ = std::fs::remove_dir_all(&sessions);
}
