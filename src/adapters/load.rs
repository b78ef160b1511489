//! The host's pressure as Linux tells it, read before a pass (at most every 5 s) for
//! the engine's start decision: the one-minute load average (`/proc/loadavg`) per core
//! vigil may use, and `MemAvailable` (`/proc/meminfo`). Two small reads of kernel
//! files, no process table walked; what cannot be read is `None`, never a guess. Reads
//! only.
//!
//! Read directly rather than through `sysinfo`: these are the two figures needed,
//! `sysinfo` reads the same files, and vigil is Linux-only already (pidfds, /proc
//! trees).

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::{Centi, Pressure};

/// More than either file ever holds; a stranger file is cut here.
const MAX_READ: u64 = 64 * 1024;

fn read(path: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_READ)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// How long the cores vigil may use are taken as known: asking reads the cgroup's
/// quota and the affinity mask, which change about never, every pass otherwise.
const CORES_KNOWN_FOR: Duration = Duration::from_secs(60);

/// The cores vigil may use, asked again once a minute.
fn cores() -> usize {
    static KNOWN: Mutex<Option<(Instant, usize)>> = Mutex::new(None);
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    match *known {
        Some((at, cores)) if at.elapsed() < CORES_KNOWN_FOR => cores,
        _ => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            *known = Some((Instant::now(), cores));
            cores
        }
    }
}

/// How long one reading of the host's pressure stands: the kernel computes the load
/// average every 5 s, and making `/proc/meminfo` costs it more than anything else a
/// quiet pass reads; a start held back waits for a pass anyway.
const PRESSURE_KNOWN_FOR: Duration = Duration::from_secs(5);

/// The host's pressure, as read at most [`PRESSURE_KNOWN_FOR`] ago.
pub fn pressure() -> Pressure {
    static KNOWN: Mutex<Option<(Instant, Pressure)>> = Mutex::new(None);
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    match *known {
        Some((at, pressure)) if at.elapsed() < PRESSURE_KNOWN_FOR => pressure,
        _ => {
            let cores = cores();
            let pressure = Pressure {
                load_per_core: read("/proc/loadavg").and_then(|t| load_per_core(&t, cores)),
                free_memory: read("/proc/meminfo").and_then(|t| mem_available(&t)),
            };
            *known = Some((Instant::now(), pressure));
            pressure
        }
    }
}

/// The first field of `/proc/loadavg`, divided by `cores`.
fn load_per_core(loadavg: &str, cores: usize) -> Option<Centi> {
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    let cores = u32::try_from(cores.max(1)).unwrap_or(u32::MAX);
    load.is_finite().then(|| Centi::from_f64(load / f64::from(cores)))
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_and_memory_are_read_from_the_kernel_s_own_lines() {
        assert_eq!(load_per_core("3.10 2.00 1.50 2/345 6789\n", 2), Some(Centi(155)));
        assert_eq!(load_per_core("nonsense", 2), None);
        let meminfo = "MemTotal:       16314064 kB\nMemFree:          812344 kB\nMemAvailable:    8157032 kB\n";
        assert_eq!(mem_available(meminfo), Some(8_157_032 * 1024));
        assert_eq!(mem_available("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn this_host_can_be_read() {
        let p = pressure();
        assert!(
            p.load_per_core.is_some() && p.free_memory.is_some_and(|m| m > 0),
            "{p:?}"
        );
    }
}
