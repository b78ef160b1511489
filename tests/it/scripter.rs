//! The command line a scripter expects: completions and the man page from the clap
//! definitions, several agents and `--all` for stop/restart/nudge, `attach`, `peek`,
//! `check --json`, and `status` fitting the terminal.

use std::process::{Command, Output, Stdio};

use super::harness::*;

/// `vigil ARGS` with no project at all (completions and the man page need none).
fn bare(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(VIGIL)
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const SUBCOMMANDS: [&str; 8] = [
    "up",
    "watch",
    "status",
    "stop",
    "restart",
    "nudge",
    "completions",
    "man",
];

#[test]
fn completions_generate_for_bash_zsh_and_fish_and_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(&["completions", shell]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.len() > 500, "{shell}: {text}");
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completion lacks `{sub}`:\n{text}");
        }
        assert!(text.contains("config"), "{shell}: {text}");
    }
    let out = bare(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad usage");
}

#[test]
fn the_man_page_is_roff_with_every_command() {
    let out = bare(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let roff = String::from_utf8(out.stdout).unwrap();
    assert!(roff.contains(".TH vigil 1"), "{roff}");
    assert!(roff.contains(".SH SYNOPSIS"), "{roff}");
    for sub in SUBCOMMANDS {
        assert!(
            roff.contains(&format!(".SH \"VIGIL {}\"", sub.to_uppercase())),
            "lacks {sub}:\n{roff}"
        );
    }
    // Rendered by man(1) when it is there: a bonus, not required.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("vigil.1");
    std::fs::write(&page, &roff).unwrap();
    if let Ok(shown) = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        && shown.status.success()
    {
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("VIGIL STOP") && text.contains("SYNOPSIS"), "{text}");
    }
}

fn three() -> World {
    World::new(&(agent("a", "worker.sh", "") + &agent("b", "worker.sh", "") + &agent("c", "worker.sh", "")))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The agents whose session is there, by the status report's `session`.
fn live(w: &World) -> Vec<String> {
    let sessions = w.sessions();
    w.status()
        .agents
        .iter()
        .filter(|a| sessions.contains(&a.session))
        .map(|a| a.name.clone())
        .collect()
}

#[test]
fn stop_of_two_agents_stops_exactly_those_and_stop_all_the_rest() {
    let w = three();
    assert_eq!(w.vigil(&["up"]).status.code(), Some(0));
    assert_eq!(live(&w), ["a", "b", "c"]);
    let out = w.vigil(&["stop", "a", "zzz"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(live(&w), ["a", "b", "c"], "a bad name stops nothing");
    let out = w.vigil(&["stop", "a", "b"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live(&w), ["c"]);
    let report = w.status();
    let stopped: Vec<_> = report.agents.iter().map(|a| (a.name.as_str(), a.stopped)).collect();
    assert_eq!(stopped, [("a", true), ("b", true), ("c", false)]);
    let out = w.vigil(&["stop", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(live(&w).is_empty());
    assert!(w.status().agents.iter().all(|a| a.stopped));
    let out = w.vigil(&["stop"]);
    assert_eq!(out.status.code(), Some(2), "no agent and no --all is bad usage");
    let out = w.vigil(&["restart", "b", "c", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let reported: Vec<_> = doc["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["command"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reported,
        [("b", "restart b", "done"), ("c", "restart c", "done")],
        "{doc:#}"
    );
    assert_eq!(live(&w), ["b", "c"]);
}

#[test]
fn stop_of_two_agents_through_the_owner_reports_each() {
    let mut w = three();
    w.watch();
    for name in ["a", "b", "c"] {
        w.wait_for(name, 20, "working", |a| a.lifecycle == Some(Lifecycle::Working));
    }
    let out = w.vigil(&["stop", "a", "c"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("to stop a:") && said.contains("to stop c:"), "{said}");
    assert_eq!(said.matches("asked the owner").count(), 2, "{said}");
    w.eventually(std::time::Duration::from_secs(20), "only b left", || {
        Some(()).filter(|()| live(&w) == ["b"])
    });
    let out = w.vigil(&["stop", "b", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(doc["agents"][0]["name"], "b", "{doc:#}");
    assert_eq!(doc["agents"][0]["outcome"], "done", "{doc:#}");
    let out = w.vigil(&["nudge", "--all", "--wait", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(text(&out).matches("asked the owner").count(), 3, "{}", text(&out));
}

#[test]
fn check_json_prints_the_verdict_with_the_exit_code_unchanged() {
    let mut w = World::new(&agent("a", "worker.sh", ""));
    let json = |w: &World| {
        let out = w.vigil(&["check", "--json"]);
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        (out.status.code(), doc)
    };
    let (code, doc) = json(&w);
    assert_eq!(code, Some(1), "{doc:#}");
    assert_eq!(doc["verdict"], "no_owner", "{doc:#}");
    assert_eq!(doc["ok"], false);
    assert!(doc["owner"].is_null());
    assert!(!doc["steps"].as_array().unwrap().is_empty(), "{doc:#}");
    w.watch();
    let pid = w.watch_pid();
    let doc = w.eventually(std::time::Duration::from_secs(20), "a fresh owner", || {
        let (code, doc) = json(&w);
        Some(doc).filter(|d| code == Some(0) && d["verdict"] == "fresh")
    });
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["owner"]["pid"], pid);
    assert!(doc["age_s"].as_f64().is_some(), "{doc:#}");
    let plain = w.vigil(&["check"]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(text(&plain).starts_with("vigil check: ok:"), "{}", text(&plain));
}

fn status_with(w: &World, columns: Option<&str>) -> String {
    let mut cmd = Command::new(VIGIL);
    cmd.arg("--config")
        .arg(w.config())
        .arg("status")
        .env("VIGIL_STATE_DIR", w.state());
    match columns {
        Some(c) => cmd.env("COLUMNS", c),
        None => cmd.env_remove("COLUMNS"),
    };
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn status_at_80_columns_fits_and_shows_each_session() {
    let w = World::new(&(agent("a", "worker.sh", "") + &agent("backend-with-a-long-name", "worker.sh", "")));
    assert_eq!(w.vigil(&["up"]).status.code(), Some(0));
    let report = w.status();
    for columns in ["80", "60"] {
        let table = status_with(&w, Some(columns));
        let limit: usize = columns.parse().unwrap();
        for line in table.lines() {
            assert!(
                line.chars().count() <= limit,
                "longer than {columns}: {line:?}\n{table}"
            );
        }
        assert!(table.contains("SESSION"), "{table}");
        // 60 is narrower than this name and session side by side: only the fit holds.
        for a in report.agents.iter().filter(|_| limit >= 80) {
            assert!(table.contains(&a.session), "{} not shown:\n{table}", a.session);
        }
        // Words are cut whole or marked, never broken across lines.
        let words: Vec<&str> = table.split_whitespace().collect();
        for word in ["nothing", "supervises", "(run", "`vigil", "watch`,", "timer)"] {
            assert!(words.contains(&word), "`{word}` broken:\n{table}");
        }
    }
    // On a pipe with no COLUMNS, nothing is cut: the reason is there whole.
    let table = status_with(&w, None);
    for a in &report.agents {
        let row = table.lines().find(|l| l.starts_with(&format!("{} ", a.name))).unwrap();
        assert!(row.contains(&a.session) && row.ends_with(&a.reason), "{row:?}");
    }
}

/// A second private tmux server, killed on drop, to hold a terminal for `vigil attach`.
struct Outer(String);

impl Drop for Outer {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.0, "kill-server"]).output();
    }
}

#[test]
fn attach_puts_a_tmux_client_on_the_agents_session_and_refuses_without_one() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let out = w.vigil(&["attach", "a"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("a has no tmux session"), "{}", text(&out));
    assert_eq!(w.vigil(&["up"]).status.code(), Some(0));
    let session = w.agent("a").session;
    let out = w.vigil(&["attach", "a"]);
    assert_eq!(out.status.code(), Some(1), "stdin is /dev/null: {}", text(&out));
    assert!(text(&out).contains("stdin is not a terminal"), "{}", text(&out));
    assert!(w.tmux(&["list-clients"]).is_empty(), "nothing attached");

    // A real terminal: a pane of another server, running `vigil attach a` inside it.
    let outer = Outer(format!("{}-outer", w.socket));
    let state = format!("VIGIL_STATE_DIR={}", w.state().display());
    let config = w.config();
    let started = Command::new("tmux")
        .args([
            "-L",
            &outer.0,
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "-s",
            "outer",
            "env",
            &state,
        ])
        .arg(VIGIL)
        .arg("--config")
        .arg(&config)
        .args(["attach", "a"])
        .status()
        .unwrap();
    assert!(started.success());
    let clients = w.eventually(
        std::time::Duration::from_secs(10),
        "a client on the agent's session",
        || Some(w.tmux(&["list-clients", "-F", "#{client_session}"])).filter(|c| !c.trim().is_empty()),
    );
    assert_eq!(clients.trim(), session, "attached to exactly the agent's session");
    // Detaching ends the attach, and the agent runs on.
    w.tmux(&["detach-client", "-s", &format!("={session}")]);
    w.eventually(std::time::Duration::from_secs(10), "the client gone", || {
        Some(()).filter(|()| w.tmux(&["list-clients"]).trim().is_empty())
    });
    assert_eq!(live(&w), ["a"]);
}

#[test]
fn peek_shows_the_last_lines_and_follow_prints_what_comes_after() {
    let w = World::new(&agent("a", "worker.sh", "env = { WORKER_PAUSE = \"0.1\" }"));
    let out = w.vigil(&["peek", "a"]);
    assert_eq!(out.status.code(), Some(1), "no session yet: {}", text(&out));
    assert_eq!(w.vigil(&["up"]).status.code(), Some(0));
    let session = w.agent("a").session;
    w.wait_screen(&session, 20, "finished step 8\n");
    let steps = |stdout: &str| -> Vec<u32> {
        stdout
            .lines()
            .map(|l| {
                l.strip_prefix("worker: finished step ")
                    .unwrap_or_else(|| panic!("not a step: {l:?}"))
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let out = w.vigil(&["peek", "a", "-n", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let got = steps(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(
        got.windows(2).all(|p| p[1] == p[0] + 1),
        "the last five, in order: {got:?}"
    );
    assert!(got[0] >= 4, "{got:?}");

    // --follow: the last 2, then every new line once, in order, until killed.
    let mut child = Command::new(VIGIL)
        .arg("--config")
        .arg(w.config())
        .args(["peek", "a", "-n", "2", "--follow"])
        .env("VIGIL_STATE_DIR", w.state())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lines.len() < 12 && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let got = steps(&lines.join("\n"));
    assert_eq!(got.len(), 12, "new lines kept coming: {got:?}");
    assert!(got.windows(2).all(|p| p[1] == p[0] + 1), "each once, in order: {got:?}");
}

#[test]
fn tick_json_prints_each_record_of_its_pass_as_a_journal_line() {
    let w = World::new(&agent("a", "worker.sh", ""));
    let out = w.vigil(&["tick", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let entries: Vec<Entry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        entries.iter().any(|e| matches!(&e.record, Record::Intent { .. })),
        "the start is among them: {text}"
    );
}
