//! What the OS says about a process, from Linux's /proc: whether it is alive (a zombie
//! is not), and when it started, so a recorded pid that now belongs to another process
//! is never mistaken for the one recorded. Reads only; never signals.

use std::fs;

/// The fields of `/proc/<pid>/stat` after the command name, which may itself hold
/// spaces and parentheses.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Alive: it exists and has not exited (state `Z` zombie or `X` dead).
pub fn alive(pid: u32) -> bool {
    match stat_fields(pid) {
        Some(f) => !matches!(f.first().map(String::as_str), Some("Z" | "X") | None),
        None => false,
    }
}

/// Whether the process is stopped (SIGSTOP or traced): alive, but not running.
pub fn stopped(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| matches!(f.first().map(String::as_str), Some("T" | "t")))
}

/// Start time in clock ticks since boot (field 22 of stat); with the pid, it names a
/// process uniquely.
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_with_a_start_time() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(!stopped(me));
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
    }

    #[test]
    fn a_reaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }
}
