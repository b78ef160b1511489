//! The real binary on bent configs and junk letters: whatever the text, vigil exits 0, 1
//! or 2 and never panics. A handful of cases (each runs vigil two or three times); the loader and the
//! inbox have their own, larger property tests beside their code.

use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::harness::*;

/// What a bent character may become.
const NOISE: &[char] = &[
    '"', '=', '[', ']', '{', '}', ',', '#', '\\', '\n', ' ', '0', 'x', 'é', '\u{0}',
];

fn bent(good: &str, bends: &[(prop::sample::Index, Option<char>)]) -> String {
    let mut chars: Vec<char> = good.chars().collect();
    for (at, c) in bends {
        match c {
            Some(c) => chars.insert(at.index(chars.len() + 1), *c),
            None if !chars.is_empty() => {
                chars.remove(at.index(chars.len()));
            }
            None => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    #[test]
    fn on_any_config_text_and_any_letter_vigil_exits_0_1_or_2_and_never_panics(
        bends in prop::collection::vec((any::<prop::sample::Index>(), prop::option::of(prop::sample::select(NOISE))), 0..4),
        letter in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let w = World::new(&agent("a", "worker.sh", "restart = \"no\""));
        let good = std::fs::read_to_string(w.config()).unwrap();
        std::fs::write(w.config(), bent(&good, &bends)).unwrap();
        std::fs::create_dir_all(w.state().join("inbox")).unwrap();
        std::fs::write(w.state().join("inbox/00000000000000000001-1-000000-up.json"), &letter).unwrap();
        // A bend may rename the socket: any tmux server vigil starts stays in here.
        let private = w.dir.path().join("tmux");
        std::fs::create_dir_all(&private).unwrap();
        // `up` waits half a second for what it started, so only in some cases.
        let up = letter.len() % 3 == 0;
        let runs: &[&[&str]] = if up { &[&["status"], &["stop", "a"], &["up", "--no-watch"]] } else { &[&["status"], &["stop", "a"]] };
        for &args in runs {
            let out = Command::new(VIGIL)
                .arg("--config")
                .arg(w.config())
                .args(args)
                .env("VIGIL_STATE_DIR", w.state())
                .env("TMUX_TMPDIR", &private)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            prop_assert!(matches!(out.status.code(), Some(0..=2)), "{args:?}: {:?} {stderr}", out.status);
            prop_assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        }
        let sockets = std::fs::read_dir(&private).into_iter().flatten().flatten();
        for dir in sockets {
            for socket in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let _ = Command::new("tmux").arg("-S").arg(socket.path()).arg("kill-server").output();
            }
        }
    }
}
