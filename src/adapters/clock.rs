//! The clocks, read in one place. The engine never reads them: the supervisor and the
//! faces read them here and hand the time in as an argument — the wall clock for
//! display, reset times and the journal, the steady clocks (which no one can set) to
//! tell a jump of the wall clock or a sleep of the machine from time passing.
//!
//! A test seam: when `VIGIL_TEST_WALL_SKEW_FILE` names a file, the wall clock reads the
//! signed number of milliseconds in it added to the real time (a missing or unreadable
//! file adds nothing). It lets the integration tests move vigil's wall clock as
//! `date -s` would, without root and without touching tmux's or the agents' clocks;
//! the steady clocks are never skewed.

use std::sync::OnceLock;
use std::time::Duration;

use crate::engine::Time;
use crate::engine::gap::{Reading, Steady};

const SKEW_FILE: &str = "VIGIL_TEST_WALL_SKEW_FILE";

/// The wall time now, to the millisecond.
pub fn now() -> Time {
    let real = jiff::Timestamp::now().as_millisecond();
    Time::from_millis(real.saturating_add(skew_ms()))
}

/// All the clocks, read together (the steady ones first: a pass compares them).
pub fn read() -> Reading {
    let steady = steady();
    Reading {
        wall: now(),
        steady: Some(steady),
    }
}

/// The steady clocks: `CLOCK_MONOTONIC` stops while the machine sleeps,
/// `CLOCK_BOOTTIME` does not.
fn steady() -> Steady {
    let since = |id| {
        let ts = rustix::time::clock_gettime(id);
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    };
    Steady {
        awake: since(rustix::time::ClockId::Monotonic),
        since_boot: since(rustix::time::ClockId::Boottime),
    }
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`): steady readings of
/// two processes compare only within one boot.
pub fn boot_id() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        let path = std::path::Path::new("/proc/sys/kernel/random/boot_id");
        let bytes = crate::adapters::fs::read_regular(path, 128, crate::adapters::fs::Links::Follow).ok()?;
        let id = String::from_utf8(bytes).ok()?.trim().to_owned();
        (!id.is_empty()).then_some(id)
    })
    .as_deref()
}

fn skew_ms() -> i64 {
    static FILE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    let Some(path) = FILE.get_or_init(|| std::env::var_os(SKEW_FILE).map(Into::into)) else {
        return 0;
    };
    // Bounded and regular files only: a FIFO must not hang the clock.
    crate::adapters::fs::read_regular(path, 64, crate::adapters::fs::Links::Follow)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

impl Time {
    /// The time of day in the system's zone, for the faces (CLI, TUI). Defined here,
    /// beside the wall clock, because it reads the machine's zone, which the engine
    /// never does (it is handed a zone).
    pub fn clock(self) -> String {
        self.clock_in(&jiff::tz::TimeZone::system())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steady_clocks_count_from_boot_and_the_boot_clock_is_never_behind() {
        let a = steady();
        let b = steady();
        assert!(b.awake >= a.awake && b.since_boot >= a.since_boot);
        assert!(a.since_boot + Duration::from_millis(5) >= a.awake, "{a:?}");
        assert!(boot_id().is_some_and(|id| id.len() >= 16));
    }
}
