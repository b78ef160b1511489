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

const SUBCOMMANDS: [&str; 8] = ["up", "watch", "status", "stop", "restart", "nudge", "completions", "man"];

#[test]
fn completions_generate_for_bash_zsh_and_fish_and_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
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
        assert!(roff.contains(&format!(".SH \"VIGIL {}\"", sub.to_uppercase())), "lacks {sub}:\n{roff}");
    }
    // Rendered by man(1) when it is there: a bonus, not required.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("vigil.1");
    std::fs::write(&page, &roff).unwrap();
    if let Ok(shown) = Command::new("man").arg("-l").arg(&page).env("MANPAGER", "cat").env("MANWIDTH", "80").output()
        && shown.status.success()
    {
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("VIGIL STOP") && text.contains("SYNOPSIS"), "{text}");
    }
}
