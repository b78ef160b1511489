//! A newcomer's first minutes: `vigil init` writes a config the other commands accept
//! (one agent per agent CLI on PATH, never over an existing file), the missing-config
//! error points at it, a pattern that can never match is a warning with its fix, and
//! `--version` names tmux.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::harness::*;

/// A project dir, and a bin dir holding fake agent CLIs (tiny shell scripts).
struct Newcomer {
    dir: tempfile::TempDir,
    bin: tempfile::TempDir,
}

impl Newcomer {
    fn with_clis(clis: &[&str]) -> Self {
        let bin = tempfile::tempdir().unwrap();
        for cli in clis {
            let path = bin.path().join(cli);
            std::fs::write(&path, "#!/bin/sh\necho fake agent\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self {
            dir: tempfile::tempdir().unwrap(),
            bin,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("vigil.toml")
    }

    /// `vigil ARGS` in the project dir, with only the fake bin dir on PATH when `alone`,
    /// else the fake bin dir first.
    fn run(&self, args: &[&str], alone: bool) -> Output {
        let path = if alone {
            self.bin.path().as_os_str().to_owned()
        } else {
            let mut dirs = vec![self.bin.path().to_owned()];
            dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
            std::env::join_paths(dirs).unwrap()
        };
        Command::new(VIGIL)
            .args(args)
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("VIGIL_STATE_DIR", self.dir.path().join("state"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn init(&self, args: &[&str]) -> Output {
        let mut all = vec!["init"];
        all.extend(args);
        self.run(&all, true)
    }

    /// `vigil status --json` on the written config, on a private tmux socket.
    fn status_names(&self) -> Vec<String> {
        let socket = format!("vigil-test-init-{}", std::process::id());
        let out = self.run(&["--socket", &socket, "status", "--json"], false);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn presets(&self) -> Vec<(String, String)> {
        let c = vigil::config::Config::load(&self.config()).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        c.agents
            .iter()
            .map(|a| (a.name.to_string(), a.preset.clone()))
            .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn init_writes_a_config_with_each_agent_cli_on_path_that_status_accepts() {
    let n = Newcomer::with_clis(&["claude", "codex"]);
    let out = n.init(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("claude") && said.contains("codex"), "{said}");
    assert_eq!(n.presets(), pairs(&[("claude", "claude"), ("codex", "codex")]));
    assert_eq!(n.status_names(), ["claude", "codex"]);
    let written = std::fs::read_to_string(n.config()).unwrap();
    assert!(
        written.contains("# stale_after = \"1h\""),
        "defaults shown commented out:\n{written}"
    );
    let mode = std::fs::metadata(n.config()).unwrap().permissions().mode();
    assert_eq!(mode & 0o022, 0, "not writable by others: {mode:o}");
}

#[test]
fn a_second_init_refuses_with_exit_1_and_names_force() {
    let n = Newcomer::with_clis(&["claude"]);
    assert_eq!(n.init(&[]).status.code(), Some(0));
    std::fs::write(n.config(), "# mine\n").unwrap();
    let out = n.init(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--force"), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(n.config()).unwrap(),
        "# mine\n",
        "nothing overwritten"
    );
    let out = n.init(&["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(n.presets(), pairs(&[("claude", "claude")]));
}

#[test]
fn init_never_writes_through_a_link_named_vigil_toml() {
    let n = Newcomer::with_clis(&["claude"]);
    let target = n.dir.path().join("elsewhere.toml");
    std::os::unix::fs::symlink(&target, n.config()).unwrap();
    for args in [&[][..], &["--force"][..]] {
        let out = n.init(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains("symbolic link"), "{}", text(&out.stderr));
    }
    assert!(!target.exists());
}

#[test]
fn init_agent_flag_adds_an_agent_with_its_command() {
    let n = Newcomer::with_clis(&["codex"]);
    let out = n.init(&[
        "--agent",
        "docs=aider --yes-always",
        "--agent",
        "tests=sh ./run-tests.sh",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        n.presets(),
        pairs(&[("codex", "codex"), ("docs", "aider"), ("tests", "shell")])
    );
    let c = vigil::config::Config::load(&n.config()).unwrap();
    assert_eq!(
        c.agents[1].command,
        vigil::config::CommandLine::Shell("aider --yes-always".into())
    );
    assert_eq!(n.status_names(), ["codex", "docs", "tests"]);
    let bad = n.run(&["init", "--force", "--agent", "no-equals-sign"], true);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("NAME=COMMAND"), "{}", text(&bad.stderr));
}

#[test]
fn init_with_no_agent_cli_on_path_writes_a_valid_placeholder_and_says_so() {
    let n = Newcomer::with_clis(&[]);
    let out = n.init(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no agent CLI"), "{}", text(&out.stdout));
    assert_eq!(n.presets(), pairs(&[("shell", "shell")]));
    assert_eq!(n.status_names(), ["shell"]);
}

#[test]
fn no_config_anywhere_names_vigil_init() {
    let n = Newcomer::with_clis(&[]);
    let out = n.run(&["status"], false);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("vigil.toml") && err.contains("`vigil init`"), "{err}");
}

#[test]
fn a_pattern_needing_trailing_whitespace_is_a_warning_naming_file_line_and_fix() {
    let w = World::new(&agent("a", "prompt.sh", "prompt = \"^> $\""));
    let out = w.vigil(&["status"]);
    assert_eq!(out.status.code(), Some(0), "a warning does not change the exit code");
    let err = text(&out.stderr);
    let line = std::fs::read_to_string(w.config())
        .unwrap()
        .lines()
        .position(|l| l.starts_with("prompt ="))
        .unwrap()
        + 1;
    let at = format!("warning: {}:{line}:", w.config().display());
    assert!(err.contains(&at), "wanted {at} in:\n{err}");
    assert!(
        err.contains("`agent[0].prompt`") && err.contains("write `^>$` instead"),
        "{err}"
    );
}

#[test]
fn the_example_config_has_no_warnings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Its commented pattern overrides, switched on, still load without a warning.
    let on = text.replace("# prompt = ", "prompt = ").replace("# busy = ", "busy = ");
    let c = vigil::config::Config::parse(&on, &path).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn version_names_the_tmux_found() {
    let out = Command::new(VIGIL).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let said = text(&out.stdout);
    assert!(
        said.starts_with(&format!("vigil {}", env!("CARGO_PKG_VERSION"))),
        "{said}"
    );
    assert!(said.contains("tmux "), "{said}");
    let none = Command::new(VIGIL)
        .arg("--version")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(text(&none.stdout).contains("tmux: not found"), "{}", text(&none.stdout));
}
