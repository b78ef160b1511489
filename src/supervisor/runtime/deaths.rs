//! Deaths by event: a thread holds a pidfd for each live agent's pane process and
//! wakes the owner loop the moment one exits, so a death is answered at once instead
//! of at the next poll (a 5 s poll no longer means a 5 s outage). The poll stays the
//! safety net: a pid that cannot be opened (gone already, another namespace, pidfds
//! not supported, or no room: at most a quarter of the open-file limit is held) is
//! simply not watched, and a pid reused before it was opened only costs an early pass.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use tokio::sync::mpsc::UnboundedSender;

/// The owner loop's side: the pids to watch now.
pub(super) struct Deaths {
    pids: Sender<Vec<u32>>,
    /// A byte here interrupts the thread's wait, to take a new set of pids.
    nudge: UnixStream,
}

impl Deaths {
    /// Starts the watching thread; each death it sees is one `()` on `died`. `None`
    /// when no thread or socket could be had (the poll alone then notices deaths).
    pub(super) fn start(died: UnboundedSender<()>) -> Option<Self> {
        let (nudge, woken) = UnixStream::pair().ok()?;
        woken.set_nonblocking(true).ok()?;
        let (pids, wanted) = channel();
        std::thread::Builder::new()
            .name("vigil-deaths".into())
            .spawn(move || watch(&wanted, &woken, &died))
            .ok()?;
        Some(Self { pids, nudge })
    }

    /// Watches exactly these pids from now on.
    pub(super) fn watch(&mut self, pids: Vec<u32>) {
        if self.pids.send(pids).is_ok() {
            let _ = self.nudge.write(&[1]);
        }
    }
}

/// The thread: waits on every pidfd and the nudge socket at once; ends when the owner
/// loop drops its side.
fn watch(wanted: &Receiver<Vec<u32>>, woken: &UnixStream, died: &UnboundedSender<()>) {
    let mut fds: BTreeMap<u32, OwnedFd> = BTreeMap::new();
    let room = crate::adapters::process::open_file_room();
    loop {
        match latest(wanted) {
            Latest::Gone => return,
            Latest::Pids(pids) => hold(&mut fds, &pids, room),
            Latest::Same => {}
        }
        let watched: Vec<u32> = fds.keys().copied().collect();
        let mut polled: Vec<PollFd<'_>> = Vec::with_capacity(fds.len() + 1);
        polled.push(PollFd::new(woken, PollFlags::IN));
        polled.extend(fds.values().map(|fd| PollFd::new(fd, PollFlags::IN)));
        if poll(&mut polled, None).is_err() {
            // EINTR and the like: look again (a lasting error would spin, so pause).
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        let nudged = !polled[0].revents().is_empty();
        let ended: Vec<u32> = polled[1..]
            .iter()
            .zip(&watched)
            .filter(|(p, _)| !p.revents().is_empty())
            .map(|(_, pid)| *pid)
            .collect();
        drop(polled);
        if nudged && drain(woken) {
            return;
        }
        if !ended.is_empty() {
            for pid in ended {
                fds.remove(&pid);
            }
            if died.send(()).is_err() {
                return;
            }
        }
    }
}

/// Holds a pidfd for each of `pids` (and for no other), at most `room` of them: the
/// rest are left to the poll.
fn hold(fds: &mut BTreeMap<u32, OwnedFd>, pids: &[u32], room: usize) {
    fds.retain(|pid, _| pids.contains(pid));
    for &pid in pids {
        if fds.len() >= room {
            break;
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = fds.entry(pid)
            && let Some(fd) = open(pid)
        {
            slot.insert(fd);
        }
    }
}

enum Latest {
    Pids(Vec<u32>),
    Same,
    Gone,
}

/// The newest set of pids sent, if any came since the last look.
fn latest(wanted: &Receiver<Vec<u32>>) -> Latest {
    let mut newest = Latest::Same;
    loop {
        match wanted.try_recv() {
            Ok(pids) => newest = Latest::Pids(pids),
            Err(TryRecvError::Empty) => return newest,
            Err(TryRecvError::Disconnected) => return Latest::Gone,
        }
    }
}

/// Empties the nudge socket; whether the other end is gone.
fn drain(woken: &UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut stream = woken;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

fn open(pid: u32) -> Option<OwnedFd> {
    let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
    pidfd_open(pid, PidfdFlags::empty()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn no_more_pidfds_are_held_than_there_is_room_for_and_only_for_the_pids_asked() {
        let mut kids: Vec<std::process::Child> = (0..3)
            .map(|_| std::process::Command::new("sleep").arg("30").spawn().unwrap())
            .collect();
        let pids: Vec<u32> = kids.iter().map(std::process::Child::id).collect();
        let mut fds = BTreeMap::new();
        hold(&mut fds, &pids, 2);
        assert_eq!(fds.len(), 2, "the third is left to the poll");
        hold(&mut fds, &pids[2..], 2);
        assert_eq!(fds.keys().copied().collect::<Vec<_>>(), [pids[2]]);
        for kid in &mut kids {
            kid.kill().unwrap();
            kid.wait().unwrap();
        }
    }

    #[test]
    fn a_watched_process_that_exits_wakes_the_loop_at_once() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut deaths = Deaths::start(tx).unwrap();
        let mut quick = std::process::Command::new("sleep").arg("0.3").spawn().unwrap();
        let mut long = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        deaths.watch(vec![quick.id(), long.id()]);
        let start = Instant::now();
        let _ = quick.wait();
        let woke = (0..200).find(|_| {
            std::thread::sleep(Duration::from_millis(10));
            rx.try_recv().is_ok()
        });
        assert!(woke.is_some(), "no wake after the process exited");
        assert!(start.elapsed() < Duration::from_secs(2));
        // Watching only `long` from now on: nothing more until it ends.
        deaths.watch(vec![long.id()]);
        std::thread::sleep(Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "a pid no longer watched wakes nothing");
        let _ = long.kill();
        let _ = long.wait();
        let woke = (0..200).find(|_| {
            std::thread::sleep(Duration::from_millis(10));
            rx.try_recv().is_ok()
        });
        assert!(woke.is_some(), "the kill of the other one wakes it too");
    }
}
