//! Running a helper program (the triage command, `git` for a checkpoint) as an argv,
//! never through vigil's own shell, with a deadline and bounded output: a helper that
//! hangs is killed with its whole process group, one that floods is cut off, and
//! either comes back as an error that says so.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Runs `argv` in `cwd` with `input` on its stdin; returns its stdout when it exits 0
/// within `timeout` having printed at most `max_output` bytes.
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
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too.
        .process_group(0)
        .spawn()
        .map_err(HelperError::Spawn)?;
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A helper that never reads its input must not block us on a full pipe.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let limit = max_output as u64 + 1;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(limit).read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                kill_group(pid);
                let _ = child.kill();
                let _ = child.wait();
                return Err(HelperError::Timeout(timeout));
            }
        }
    };
    // The group may outlive its leader and keep the pipes open: end it before reading.
    kill_group(pid);
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
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
