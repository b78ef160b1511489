//! Running a helper program (the triage command, `git` for a checkpoint) as an argv,
//! never through vigil's own shell, with one deadline over the process and its pipes
//! and bounded output: a helper that hangs is killed with everything it started —
//! its process group, and any process that left the group (`setsid`, a daemon) found
//! by the marker in its environment — one that floods is cut off, and either comes back
//! as an error that says so. A descendant that keeps the pipes open after the helper
//! has exited is killed too, so it can never hold an answer back.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::process;

/// Set in every helper's environment to a value unique to that run; its descendants
/// inherit it, so they can be found even after leaving the helper's process group.
pub const MARKER: &str = "VIGIL_HELPER";

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("did not answer within {}s and was killed", .0.as_secs())]
    Timeout(Duration),
    #[error("printed more than {0} bytes")]
    TooLong(usize),
    #[error("exited with {status}{}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Failed { status: String, stderr: String },
}

/// A pipe read on its own thread into a buffer that can be taken at any moment, with
/// word when it reaches its end.
struct Drain {
    bytes: Arc<Mutex<Vec<u8>>>,
    ended: Receiver<()>,
}

impl Drain {
    fn new(pipe: Option<impl Read + Send + 'static>, limit: u64) -> Self {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (tx, ended) = channel();
        let sink = Arc::clone(&bytes);
        std::thread::spawn(move || {
            if let Some(pipe) = pipe {
                let mut pipe = pipe.take(limit);
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    if let Ok(mut b) = sink.lock() {
                        b.extend_from_slice(&chunk[..n]);
                    }
                }
            }
            let _ = tx.send(());
        });
        Self { bytes, ended }
    }

    /// Waits until the pipe ends or `deadline` passes, then takes what was read.
    fn take(self, deadline: Instant) -> Vec<u8> {
        let _ = self
            .ended
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        self.bytes
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

/// Runs `argv` in `cwd` with `input` on its stdin; returns its stdout when it exits 0
/// within `timeout` having printed at most `max_output` bytes. Returns by the deadline
/// (plus a moment to kill and drain), whatever its descendants do.
pub fn run(
    argv: &[String],
    cwd: &Path,
    input: &[u8],
    timeout: Duration,
    max_output: usize,
) -> Result<String, HelperError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| HelperError::Spawn(std::io::Error::other("empty command")))?;
    let marker = marker_value();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env(MARKER, &marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too.
        .process_group(0)
        .spawn()
        .map_err(HelperError::Spawn)?;
    let pid = child.id();
    let _running = Running::register(pid, &marker);
    let deadline = Instant::now() + timeout;
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A helper that never reads its input must not block us on a full pipe.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let limit = max_output as u64 + 1;
    let stdout = Drain::new(child.stdout.take(), limit);
    let stderr = Drain::new(child.stderr.take(), limit);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                kill_all(pid, &marker);
                let _ = child.kill();
                let _ = child.wait();
                return Err(HelperError::Timeout(timeout));
            }
        }
    };
    // What it started may outlive it and keep the pipes open: end all of it, then read
    // what the pipes hold (their writers are gone, so they end at once).
    kill_all(pid, &marker);
    let drained = Instant::now() + DRAIN;
    let out = stdout.take(drained);
    let err = stderr.take(drained);
    if out.len() > max_output {
        return Err(HelperError::TooLong(max_output));
    }
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(HelperError::Failed {
            status: status.to_string(),
            stderr: last.chars().take(200).collect(),
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The helpers running now (their group's pid and marker), so that vigil leaving
/// mid-run ends them rather than leave a hung notify command or triager behind.
static RUNNING: std::sync::Mutex<Vec<(u32, String)>> = std::sync::Mutex::new(Vec::new());

/// One entry of [`RUNNING`], removed when the run returns.
struct Running(u32);

impl Running {
    fn register(pid: u32, marker: &str) -> Self {
        if let Ok(mut running) = RUNNING.lock() {
            running.push((pid, marker.to_owned()));
        }
        Self(pid)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|(pid, _)| *pid != self.0);
        }
    }
}

/// Kills every helper still running, with all it started; returns how many. For an
/// owner that is leaving: what they were doing is redone by the next one (a notice
/// stays in the outbox until delivered).
pub fn end_all() -> usize {
    let running = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    for (pid, marker) in &running {
        kill_all(*pid, marker);
    }
    running.len()
}

/// How long the pipes get to end once every writer vigil knows of is dead.
const DRAIN: Duration = Duration::from_millis(500);

/// A value no other helper run has: pid, a counter and the time.
fn marker_value() -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{n}-{nanos}", std::process::id())
}

/// Kills the helper's process group and every process carrying its marker.
fn kill_all(pid: u32, marker: &str) {
    kill_group(pid);
    for stray in process::with_env(MARKER, marker) {
        process::kill(stray);
    }
}

fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn stdin_goes_in_and_stdout_comes_back() {
        let out = run(&sh("tr a-z A-Z"), Path::new("/"), b"hello", Duration::from_secs(5), 100).unwrap();
        assert_eq!(out, "HELLO");
    }

    #[test]
    fn a_helper_that_hangs_is_killed_with_its_children() {
        let start = Instant::now();
        let err = run(
            &sh("sleep 1000 & sleep 1000"),
            Path::new("/"),
            b"",
            Duration::from_millis(300),
            100,
        )
        .unwrap_err();
        assert!(matches!(err, HelperError::Timeout(_)), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_descendant_in_its_own_session_holding_stdout_neither_holds_the_answer_back_nor_outlives_it() {
        let start = Instant::now();
        let out = run(
            &sh("setsid sleep 31.25 & echo answer"),
            Path::new("/"),
            b"",
            Duration::from_secs(3),
            100,
        )
        .unwrap();
        assert_eq!(out, "answer\n");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "answered after {:?}",
            start.elapsed()
        );
        assert!(still_running("sleep 31.25").is_empty(), "the setsid child was killed");
    }

    #[test]
    fn a_hung_helper_whose_child_left_its_group_is_killed_whole_at_the_deadline() {
        let start = Instant::now();
        let err = run(
            &sh("setsid sh -c 'sleep 32.5' & sleep 32.5"),
            Path::new("/"),
            b"",
            Duration::from_millis(500),
            100,
        )
        .unwrap_err();
        assert!(matches!(err, HelperError::Timeout(_)), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "returned after {:?}",
            start.elapsed()
        );
        assert!(still_running("sleep 32.5").is_empty(), "nothing it started is left");
    }

    /// Processes whose command line is exactly `cmdline`, a moment after a kill.
    fn still_running(cmdline: &str) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        let out = Command::new("pgrep").args(["-fx", cmdline]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn floods_and_failures_are_errors_that_say_so() {
        let err = run(&sh("yes"), Path::new("/"), b"", Duration::from_secs(5), 1000).unwrap_err();
        assert!(matches!(err, HelperError::TooLong(1000)), "{err}");
        let err = run(
            &sh("echo oops >&2; exit 4"),
            Path::new("/"),
            b"",
            Duration::from_secs(5),
            1000,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "exited with exit status: 4: oops");
    }
}
