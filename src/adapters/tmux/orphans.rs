//! Control clients a dead vigil left on the hidden session. A vigil killed (`kill -9`,
//! the OOM killer, a power cut of its cgroup) cannot close its `tmux -C` client, and
//! tmux 3.3a never lets such a client go: it keeps writing to a pipe nobody reads. The
//! client lives on, adopted by init, and a server later told to exit (`kill-server`)
//! waits on it for ever while refusing every new client ("server exited
//! unexpectedly"; tmux/tmux#5444): no agent can start on that socket again. So each
//! new control client ends the ones whose vigil is gone: a control client on the
//! hidden session whose parent is not a vigil (this one's name, or this program).
//! Another live vigil's client is left alone.

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::adapters::proctree;

/// The `list-clients` format [`end_left_behind`] reads.
pub(super) const CLIENTS_FORMAT: &str = "#{client_pid}\t#{client_control_mode}";

/// Ends the control clients of `listed` (lines of [`CLIENTS_FORMAT`]) that a dead
/// vigil left, never `mine`; the pids ended.
pub(super) fn end_left_behind(listed: &[String], mine: u32) -> Vec<u32> {
    let Some(me) = Vigil::this() else {
        return Vec::new();
    };
    listed
        .iter()
        .filter_map(|line| control_client(line))
        .filter(|&pid| pid != mine)
        .filter(|&pid| end_if_left(pid, &me))
        .collect()
}

/// What tells a vigil: this process's name, and the program it runs.
struct Vigil {
    name: String,
    exe: Option<std::path::PathBuf>,
}

impl Vigil {
    fn this() -> Option<Self> {
        Some(Self {
            name: proctree::read(std::process::id())?.name,
            exe: exe(std::process::id()),
        })
    }

    /// Whether `pid` is a vigil: the same name (an older binary, replaced since,
    /// included), or the same program (started through a link of another name).
    fn is(&self, pid: u32) -> bool {
        let Some(p) = proctree::read(pid) else { return false };
        p.name == self.name || (self.exe.is_some() && exe(pid) == self.exe)
    }
}

/// The program `pid` runs (`/proc/<pid>/exe`, links resolved by the kernel).
fn exe(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The pid of a control client's line.
fn control_client(line: &str) -> Option<u32> {
    let (pid, control) = line.split_once('\t')?;
    (control == "1").then(|| pid.parse().ok()).flatten()
}

/// Whether `pid` is a tmux process whose parent is no vigil: an orphan (its parent
/// init or a subreaper).
fn left_behind(pid: u32, vigil: &Vigil) -> bool {
    let Some(client) = proctree::read(pid) else {
        return false;
    };
    client.name.starts_with("tmux") && !vigil.is(client.ppid)
}

/// Ends `pid` if it was left behind, through a pidfd opened first, so the process
/// judged is the one signalled.
fn end_if_left(pid: u32, vigil: &Vigil) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    let Ok(pidfd) = pidfd_open(raw, PidfdFlags::empty()) else {
        return false;
    };
    left_behind(pid, vigil) && pidfd_send_signal(&pidfd, Signal::KILL).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_control_clients_lines_are_read() {
        assert_eq!(control_client("123\t1"), Some(123));
        assert_eq!(control_client("123\t0"), None, "a terminal's client");
        assert_eq!(control_client("garbage"), None);
        assert_eq!(control_client("x\t1"), None);
    }

    #[test]
    fn a_process_whose_parent_is_alive_and_like_this_one_is_not_left_behind() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let me = Vigil::this().unwrap();
        assert!(me.is(std::process::id()));
        assert!(
            !left_behind(child.id(), &me),
            "not tmux, and its parent is this process"
        );
        assert!(
            end_left_behind(&[format!("{}\t1", child.id())], 0).is_empty(),
            "never ended"
        );
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_process_of_another_name_running_this_program_is_a_vigil() {
        let other = Vigil {
            name: "not-this-name".into(),
            exe: exe(std::process::id()),
        };
        assert!(other.is(std::process::id()), "the same program");
        let stranger = Vigil {
            name: "not-this-name".into(),
            exe: Some("/nonexistent/vigil".into()),
        };
        assert!(!stranger.is(std::process::id()));
        assert!(!stranger.is(u32::MAX), "no such process");
    }
}
