//! Control clients a dead vigil left on the hidden session. A vigil killed (`kill -9`,
//! the OOM killer, a power cut of its cgroup) cannot close its `tmux -C` client, and
//! tmux 3.3a never lets such a client go: it keeps writing to a pipe nobody reads. The
//! client lives on, adopted by init, and a server later told to exit (`kill-server`)
//! waits on it for ever while refusing every new client ("server exited
//! unexpectedly"; tmux/tmux#5444): no agent can start on that socket again. So each
//! new control client ends the ones whose vigil is gone: a control client on the
//! hidden session whose parent is not a vigil (same name as this one). Another live
//! vigil's client is left alone.

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::adapters::proctree;

/// The `list-clients` format [`end_left_behind`] reads.
pub(super) const CLIENTS_FORMAT: &str = "#{client_pid}\t#{client_control_mode}";

/// Ends the control clients of `listed` (lines of [`CLIENTS_FORMAT`]) that a dead
/// vigil left, never `mine`; the pids ended.
pub(super) fn end_left_behind(listed: &[String], mine: u32) -> Vec<u32> {
    let Some(me) = proctree::read(std::process::id()) else {
        return Vec::new();
    };
    listed
        .iter()
        .filter_map(|line| control_client(line))
        .filter(|&pid| pid != mine)
        .filter(|&pid| end_if_left(pid, &me.name))
        .collect()
}

/// The pid of a control client's line.
fn control_client(line: &str) -> Option<u32> {
    let (pid, control) = line.split_once('\t')?;
    (control == "1").then(|| pid.parse().ok()).flatten()
}

/// Whether `pid` is a tmux process whose parent is no process named `vigil_name`: an
/// orphan (its parent init or a subreaper).
fn left_behind(pid: u32, vigil_name: &str) -> bool {
    let Some(client) = proctree::read(pid) else {
        return false;
    };
    let parent = proctree::read(client.ppid).map(|p| p.name);
    client.name.starts_with("tmux") && parent.as_deref() != Some(vigil_name)
}

/// Ends `pid` if it was left behind, through a pidfd opened first, so the process
/// judged is the one signalled.
fn end_if_left(pid: u32, vigil_name: &str) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    let Ok(pidfd) = pidfd_open(raw, PidfdFlags::empty()) else {
        return false;
    };
    left_behind(pid, vigil_name) && pidfd_send_signal(&pidfd, Signal::KILL).is_ok()
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
        let me = proctree::read(std::process::id()).unwrap();
        assert!(
            !left_behind(child.id(), &me.name),
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
}
