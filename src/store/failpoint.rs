//! Test-only crash points: `VIGIL_FAILPOINT=<name>[@<n>]` makes the process abort the
//! n-th time (default the first) it reaches the named point, so tests can kill vigil
//! exactly between an intent and its action, mid-write, and so on. Compiled out of
//! release builds: there `hit` and `armed` are no-ops.
//!
//! Points: `after-intent` (intent on disk, tmux not yet called), `after-act` (tmux
//! called, outcome not yet written), `mid-snapshot` (temp file half written),
//! `mid-journal` (half a journal line written).

pub const ENV: &str = "VIGIL_FAILPOINT";

/// Aborts here if this point is armed and due.
pub fn hit(name: &str) {
    if armed(name) {
        abort(name);
    }
}

/// Whether this point is armed and due now (counts a hit). For points that must do
/// something half-way before aborting.
#[cfg(debug_assertions)]
pub fn armed(name: &str) -> bool {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HITS: AtomicU32 = AtomicU32::new(0);
    let Ok(spec) = std::env::var(ENV) else { return false };
    let (point, nth) = match spec.split_once('@') {
        Some((p, n)) => (p.to_owned(), n.parse().unwrap_or(1)),
        None => (spec, 1),
    };
    point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn armed(_name: &str) -> bool {
    false
}

pub fn abort(name: &str) -> ! {
    eprintln!("vigil: failpoint `{name}` reached; aborting");
    std::process::abort()
}
