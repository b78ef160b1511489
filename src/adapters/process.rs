//! What the OS says about a process, from Linux's /proc: whether it is alive (a zombie
//! is not), when it started, so a recorded pid that now belongs to another process
//! is never mistaken for the one recorded, which processes hold a `flock` on a file
//! (from `/proc/locks`), which carry a marker in their environment, and where PATH finds
//! a program. Reads, except [`kill`], which helpers use to end what they started.

use std::fs;

/// Most files one cache of open files may hold, whatever the open-file limit.
const MOST_HELD: u64 = 8192;

/// How many open files one of vigil's caches of them (the pidfds that hear deaths, the
/// /proc files kept open) may hold: a quarter of this process's open-file limit, at most
/// 8192. Two such caches leave half the limit for the journal, tmux and the rest, so a
/// fleet larger than the limit falls back to the poll instead of running out of files.
pub fn open_file_room() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let room = limit.map_or(MOST_HELD, |n| (n / 4).min(MOST_HELD));
    usize::try_from(room).unwrap_or(0)
}

/// The fields of `/proc/<pid>/stat` after the command name, which may itself hold
/// spaces and parentheses.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// Alive: it exists and has not exited (state `Z` zombie or `X` dead). Read every
/// pass for every pane: the state's one letter, nothing split or kept.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|close| stat[close + 1..].split_ascii_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
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

/// The pids holding a `flock` on the file at `path`, from `/proc/locks`, whose lines
/// read `1: FLOCK  ADVISORY  WRITE 8381 fe:00:10010626 0 EOF` (major and minor in
/// hex, the inode in decimal). Only flock locks count; a pid the kernel cannot show in
/// this pid namespace (0 or -1) is left out, so an unproven holder is never named.
pub fn flock_holders(path: &std::path::Path) -> std::io::Result<Vec<u32>> {
    let meta = fs::metadata(path)?;
    let locks = fs::read_to_string("/proc/locks")?;
    Ok(holders_in(&locks, meta_key(&meta)))
}

/// A file as `/proc/locks` names it: (major, minor, inode).
type FileKey = (u32, u32, u64);

fn meta_key(meta: &fs::Metadata) -> FileKey {
    use std::os::unix::fs::MetadataExt;
    let dev = meta.dev();
    (rustix::fs::major(dev), rustix::fs::minor(dev), meta.ino())
}

fn holders_in(locks: &str, file: FileKey) -> Vec<u32> {
    let parse_key = |text: &str| -> Option<FileKey> {
        let mut parts = text.split(':');
        let major = u32::from_str_radix(parts.next()?, 16).ok()?;
        let minor = u32::from_str_radix(parts.next()?, 16).ok()?;
        let inode = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((major, minor, inode))
    };
    locks
        .lines()
        .filter_map(|line| {
            // A blocked waiter is listed as `1: -> FLOCK …`: it holds nothing.
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, kind, _, _, pid, key, ..] = fields.as_slice() else {
                return None;
            };
            let pid: u32 = pid.parse().ok().filter(|p| *p > 0)?;
            (*kind == "FLOCK" && parse_key(key)? == file).then_some(pid)
        })
        .collect()
}

/// This user's processes whose environment holds `key=value` (descendants of a helper
/// carry its marker even after `setsid`). Processes that cannot be read are left out.
pub fn with_env(key: &str, value: &str) -> Vec<u32> {
    let wanted = format!("{key}={value}");
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == wanted.as_bytes()))
        })
        .collect()
}

/// Sends SIGKILL to `pid`; a process already gone is not an error.
pub fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Where `program` would be found on PATH (an absolute directory holding an executable
/// file of that name), as `Command::new(program)` would run it.
pub fn on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// A regular file someone may execute (symlinks followed, as `execve` does).
pub fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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
    fn lock_holders_are_read_from_proc_locks_lines() {
        let locks = "1: FLOCK  ADVISORY  WRITE 8381 fe:00:10010626 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 9000 fe:00:10010626 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 777 fe:00:10010626 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 0 fe:00:10010626 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 55 fe:01:10010626 0 EOF\n\
                     5: FLOCK  ADVISORY  WRITE 66 103:0a:42 0 EOF\n";
        assert_eq!(holders_in(locks, (0xfe, 0, 10010626)), [8381]);
        assert_eq!(holders_in(locks, (0x103, 0x0a, 42)), [66]);
        assert!(holders_in("garbage\n\n1: FLOCK", (0xfe, 0, 1)).is_empty());
    }

    #[test]
    fn a_flock_this_process_holds_is_found_and_one_it_dropped_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let file = std::fs::File::create(&path).unwrap();
        assert!(flock_holders(&path).unwrap().is_empty());
        file.try_lock().unwrap();
        assert_eq!(flock_holders(&path).unwrap(), [std::process::id()]);
        drop(file);
        assert!(flock_holders(&path).unwrap().is_empty());
    }

    #[test]
    fn a_reaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }
}
