//! Running the configured triage command about one stuck incarnation, off the
//! supervision loop: it gets a JSON description on stdin and must print one answer,
//! `{"verdict": "continue|nudge|restart|kill", "reason": "…"}`, within its timeout.
//! Anything else (a hang, a non-zero exit, too much or malformed output) comes back as
//! a failure with its reason, and the engine's built-in rules decide instead.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use serde_json::Value;

use crate::adapters::helper::{self, HelperError};
use crate::engine::{AgentName, Answer, Incarnation, TriageOutcome, TriageResult};

/// Most a triage command may print; an answer is a line.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// One triage to run.
#[derive(Clone, Debug)]
pub struct Request {
    pub agent: AgentName,
    pub incarnation: Incarnation,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// What the command is told, as JSON on its stdin.
    pub input: Value,
    pub timeout: Duration,
}

/// Why a triage command gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error(transparent)]
    Helper(#[from] HelperError),
    #[error("printed «{shown}», which is not an answer ({source})")]
    NotAnAnswer { shown: String, source: serde_json::Error },
}

/// Runs a triage command and reads its answer (blocking; see [`Triager`]).
pub fn run(request: &Request) -> TriageOutcome {
    match ask(request) {
        Ok(answer) => TriageOutcome::Answered(answer),
        Err(e) => TriageOutcome::Failed { why: e.to_string() },
    }
}

fn ask(request: &Request) -> Result<Answer, TriageError> {
    let input = request.input.to_string();
    let out = helper::run(
        &request.argv,
        &request.cwd,
        input.as_bytes(),
        request.timeout,
        MAX_OUTPUT,
    )?;
    serde_json::from_str::<Answer>(out.trim()).map_err(|source| TriageError::NotAnAnswer {
        shown: out.trim().chars().take(120).collect(),
        source,
    })
}

/// Triage commands in flight, each on its own thread so one slow command never
/// holds up the loop for other agents; answers are collected on the next pass.
pub struct Triager {
    tx: Sender<TriageResult>,
    rx: Receiver<TriageResult>,
    running: BTreeSet<AgentName>,
}

impl Default for Triager {
    fn default() -> Self {
        let (tx, rx) = channel();
        Self {
            tx,
            rx,
            running: BTreeSet::new(),
        }
    }
}

impl Triager {
    /// Starts a triage unless one runs for this agent already; returns whether it started.
    pub fn start(&mut self, request: Request) -> bool {
        if !self.running.insert(request.agent.clone()) {
            return false;
        }
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let outcome = run(&request);
            let _ = tx.send(TriageResult {
                agent: request.agent,
                incarnation: request.incarnation,
                outcome,
            });
        });
        true
    }

    /// The answers that have arrived.
    pub fn collect(&mut self) -> Vec<TriageResult> {
        let done: Vec<TriageResult> = self.rx.try_iter().collect();
        for result in &done {
            self.running.remove(&result.agent);
        }
        done
    }

    /// Waits up to `limit` for every running triage to answer.
    pub fn wait(&mut self, limit: Duration) -> Vec<TriageResult> {
        let deadline = std::time::Instant::now() + limit;
        let mut done = Vec::new();
        while !self.running.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(result) => {
                    self.running.remove(&result.agent);
                    done.push(result);
                }
                Err(_) => break,
            }
        }
        done
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::VerdictKind;

    fn request(script: &str, timeout_ms: u64) -> Request {
        Request {
            agent: AgentName::new("a").unwrap(),
            incarnation: Incarnation(1),
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd: "/".into(),
            input: serde_json::json!({"agent": "a", "last_lines": ["$ "]}),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn an_answer_on_stdout_is_the_verdict() {
        let script = r#"grep -q '"agent":"a"' && echo '{"verdict": "nudge", "reason": "at its prompt"}'"#;
        let TriageOutcome::Answered(answer) = run(&request(script, 5000)) else {
            panic!("no answer");
        };
        assert_eq!(answer.verdict, VerdictKind::Nudge);
        assert_eq!(answer.reason, "at its prompt");
    }

    #[test]
    fn hangs_garbage_and_failures_are_failures_with_their_reason() {
        let cases = [
            ("sleep 30", "did not answer within"),
            ("echo 'I think you should restart it'", "not an answer"),
            (r#"echo '{"verdict": "explode", "reason": "x"}'"#, "not an answer"),
            ("echo nope >&2; exit 2", "exited with"),
            ("head -c 100000 /dev/zero", "printed more than"),
        ];
        for (script, expected) in cases {
            match run(&request(script, 500)) {
                TriageOutcome::Failed { why } => assert!(why.contains(expected), "{script}: {why}"),
                other => panic!("{script}: {other:?}"),
            }
        }
    }

    #[test]
    fn triages_run_off_the_loop_one_per_agent() {
        let mut triager = Triager::default();
        assert!(triager.start(request(
            r#"sleep 0.2; echo '{"verdict":"continue","reason":"ok"}'"#,
            5000
        )));
        assert!(!triager.start(request("true", 5000)), "one at a time per agent");
        assert!(triager.collect().is_empty(), "not blocked waiting for it");
        let done = triager.wait(Duration::from_secs(5));
        assert_eq!(done.len(), 1);
        assert!(triager.is_idle());
    }
}
