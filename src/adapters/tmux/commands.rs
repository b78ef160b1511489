//! The tmux commands vigil runs, as argument vectors, and how their answers are read:
//! shared by the CLI client (one process per call) and the control-mode client (one
//! line per call), which differ only in how a list of commands reaches tmux
//! ([`Exec`]). Targets are exact (`=name:`); errors are classified from tmux's words.

use super::listing::{Ask, GLANCE_FORMAT, LIST_FORMAT, LastListing, Look};
use super::{Listing, Pane, SpawnSpec, TAG_AGENT, TAG_INCARNATION, TAG_RUN, Tmux, TmuxError};

/// Size of a new session's window; big enough for agents' TUIs to lay out normally.
const WIDTH: &str = "200";
const HEIGHT: &str = "50";
/// Tries of a `new-session` that met a server on its way out, and the wait between.
const SPAWN_TRIES: u32 = 5;
const SPAWN_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// What a list of commands does, so a client that lost its answer knows whether asking
/// again elsewhere is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// Only looks.
    Look,
    /// Ends a session: a second try finds it gone, which is what was asked.
    Kill,
    /// Types into a pane: never twice.
    Type,
    /// Starts a session, and a server when none runs: never twice (a second try would
    /// meet the first session and start the agent again under another name).
    Start,
}

impl Effect {
    /// Whether running it again, when the first answer was lost, is harmless.
    pub(super) fn repeatable(self) -> bool {
        matches!(self, Effect::Look | Effect::Kill)
    }
}

/// How a list of commands reaches tmux, run back to back with nothing in between; the
/// output of the last.
pub(super) trait Exec {
    fn exec(&self, commands: &[Vec<String>], effect: Effect) -> Result<String, TmuxError>;

    /// Each of `commands` on its own, one failing none of the others: each one's
    /// output as lines, in order. One at a time unless the client can send them at
    /// once (the control client hands on the lines it read, never joined and split).
    fn exec_each(&self, commands: &[Vec<String>], effect: Effect) -> Vec<Result<Vec<String>, TmuxError>> {
        each_alone(commands, |c| self.exec(c, effect))
    }

    /// Every one of `commands`' output, in order, each ending in a newline but the
    /// last (as the CLI prints them: the default).
    fn exec_all(&self, commands: &[Vec<String>], effect: Effect) -> Result<String, TmuxError> {
        self.exec(commands, effect)
    }

    /// The last full listing kept for glances, by a client that keeps one.
    fn last_listing(&self) -> Option<&LastListing> {
        None
    }
}

/// Every client that can run tmux commands is a [`Tmux`]: the commands are the same,
/// only how they reach tmux differs.
impl<E: Exec> Tmux for E {
    fn list_panes(&self) -> Result<Vec<Pane>, TmuxError> {
        self.survey_afresh().map(|listing| listing.panes)
    }

    fn survey(&self) -> Result<Listing, TmuxError> {
        survey(self, Look::Glance)
    }

    fn survey_afresh(&self) -> Result<Listing, TmuxError> {
        survey(self, Look::Full)
    }

    fn capture(&self, session: &str, lines: usize) -> Result<Vec<String>, TmuxError> {
        capture(self, session, lines)
    }

    fn capture_each(&self, asks: &[(&str, usize)]) -> Vec<Result<Vec<String>, TmuxError>> {
        capture_each(self, asks)
    }

    fn send_text(&self, session: &str, text: &str) -> Result<(), TmuxError> {
        send_text(self, session, text)
    }

    fn spawn(&self, spec: &SpawnSpec) -> Result<(), TmuxError> {
        spawn(self, spec)
    }

    fn kill(&self, session: &str) -> Result<(), TmuxError> {
        kill(self, session)
    }
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// The errors tmux gives when the server exits while the client talks to it: killing
/// the last session ends the server, and a `new-session` right after can reach it as
/// it goes. Starting again starts a fresh server.
fn server_went_away(err: &TmuxError) -> bool {
    matches!(err, TmuxError::Failed { stderr, .. }
        if stderr.contains("server exited unexpectedly") || stderr.contains("lost server"))
}

/// The errors tmux gives when no server runs on the socket.
pub(super) fn no_server(stderr: &str) -> bool {
    stderr.starts_with("no server running") || stderr.starts_with("error connecting to")
}

pub(super) fn no_server_error(err: &TmuxError) -> bool {
    matches!(err, TmuxError::Failed { stderr, .. } if no_server(stderr))
}

fn session_missing(err: &TmuxError) -> bool {
    matches!(err, TmuxError::Failed { stderr, .. }
        if stderr.starts_with("can't find") || stderr.starts_with("no such session")
            || no_server(stderr))
}

fn pane_target(session: &str) -> String {
    format!("={session}:")
}

/// Every pane, as `look` allows ([`super::listing::survey`]).
fn survey(e: &impl Exec, look: Look) -> Result<Listing, TmuxError> {
    let list = |ask: Ask| {
        let answer = match ask {
            Ask::Full => e.exec(&[words(&["list-panes", "-a", "-F", LIST_FORMAT])], Effect::Look),
            Ask::Glance => e.exec_all(
                &[
                    words(&["display-message", "-p", "#{pid}"]),
                    words(&["list-panes", "-a", "-F", GLANCE_FORMAT]),
                ],
                Effect::Look,
            ),
        };
        match answer {
            Ok(out) => Ok(Some(out)),
            Err(e) if no_server_error(&e) => Ok(None),
            Err(e) => Err(e),
        }
    };
    super::listing::survey(e.last_listing(), look, list)
}

/// One capture, made as [`capture_each`] makes them: the same lines through either
/// client (the control client's as read, never joined and split again).
pub(super) fn capture(e: &impl Exec, session: &str, lines: usize) -> Result<Vec<String>, TmuxError> {
    capture_each(e, &[(session, lines)]).pop().unwrap_or_else(|| {
        Err(TmuxError::Failed {
            args: capture_command(session, lines).join(" "),
            stderr: "no answer".into(),
        })
    })
}

/// Each of `commands` run alone by `exec`, as lines.
pub(super) fn each_alone(
    commands: &[Vec<String>],
    exec: impl Fn(&[Vec<String>]) -> Result<String, TmuxError>,
) -> Vec<Result<Vec<String>, TmuxError>> {
    commands
        .iter()
        .map(|c| exec(std::slice::from_ref(c)).map(|out| lines_of(&out)))
        .collect()
}

/// A command's output as the lines it printed.
pub(super) fn lines_of(out: &str) -> Vec<String> {
    out.lines().map(str::to_owned).collect()
}

/// Every capture of `asks` (session, lines) sent together; each one's screen, in order.
pub(super) fn capture_each(e: &impl Exec, asks: &[(&str, usize)]) -> Vec<Result<Vec<String>, TmuxError>> {
    let commands: Vec<Vec<String>> = asks.iter().map(|(s, n)| capture_command(s, *n)).collect();
    let outputs = e.exec_each(&commands, Effect::Look);
    asks.iter().zip(outputs).map(|((s, _), out)| captured(s, out)).collect()
}

fn capture_command(session: &str, lines: usize) -> Vec<String> {
    let start = format!("-{lines}");
    let target = pane_target(session);
    words(&["capture-pane", "-p", "-J", "-t", &target, "-S", &start])
}

fn captured(session: &str, out: Result<Vec<String>, TmuxError>) -> Result<Vec<String>, TmuxError> {
    match out {
        Ok(lines) => Ok(lines),
        Err(e) if session_missing(&e) => Err(TmuxError::NoSuchSession(session.to_owned())),
        Err(e) => Err(e),
    }
}

pub(super) fn send_text(e: &impl Exec, session: &str, text: &str) -> Result<(), TmuxError> {
    let target = pane_target(session);
    let typed = e.exec(&[words(&["send-keys", "-t", &target, "-l", "--", text])], Effect::Type);
    let entered = typed.and_then(|_| e.exec(&[words(&["send-keys", "-t", &target, "Enter"])], Effect::Type));
    match entered {
        Ok(_) => Ok(()),
        Err(e) if session_missing(&e) => Err(TmuxError::NoSuchSession(session.to_owned())),
        Err(e) => Err(e),
    }
}

/// `new-session` and, in the same run so a command that exits at once still leaves
/// its pane, `remain-on-exit` and the tags.
fn spawn_commands(spec: &SpawnSpec) -> Vec<Vec<String>> {
    let target = pane_target(&spec.session);
    // `-c` is format-expanded by tmux (`#(cmd)` would run cmd): every `#` doubled.
    let cwd = spec.cwd.to_string_lossy().replace('#', "##");
    let incarnation = spec.incarnation.to_string();
    let mut new = words(&[
        "new-session",
        "-d",
        "-s",
        &spec.session,
        "-c",
        &cwd,
        "-x",
        WIDTH,
        "-y",
        HEIGHT,
    ]);
    let env = spec.env.iter().map(|(k, v)| format!("{k}={v}")).chain([
        format!("VIGIL_AGENT={}", spec.agent),
        format!("VIGIL_INCARNATION={incarnation}"),
    ]);
    for kv in env {
        new.extend(["-e".to_owned(), kv]);
    }
    new.push("--".to_owned());
    new.extend(spec.argv.iter().cloned());
    let mut commands = vec![new, words(&["set-option", "-w", "-t", &target, "remain-on-exit", "on"])];
    for (tag, value) in [
        (TAG_AGENT, spec.agent.as_str()),
        (TAG_INCARNATION, &incarnation),
        (TAG_RUN, &spec.run),
    ] {
        commands.push(words(&["set-option", "-t", &target, tag, value]));
    }
    commands
}

pub(super) fn spawn(e: &impl Exec, spec: &SpawnSpec) -> Result<(), TmuxError> {
    let commands = spawn_commands(spec);
    let mut tries = 1;
    loop {
        match e.exec(&commands, Effect::Start) {
            Err(e) if server_went_away(&e) && tries < SPAWN_TRIES => {
                tries += 1;
                std::thread::sleep(SPAWN_RETRY_WAIT);
            }
            // tmux runs none of the chained tag commands after this error, so the
            // session already there is left untagged and untouched.
            Err(TmuxError::Failed { stderr, .. }) if stderr.starts_with("duplicate session") => {
                return Err(TmuxError::SessionExists(spec.session.clone()));
            }
            other => return other.map(|_| ()),
        }
    }
}

pub(super) fn kill(e: &impl Exec, session: &str) -> Result<(), TmuxError> {
    let target = format!("={session}");
    match e.exec(&[words(&["kill-session", "-t", &target])], Effect::Kill) {
        Ok(_) => Ok(()),
        Err(e) if session_missing(&e) => Err(TmuxError::NoSuchSession(session.to_owned())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawn_is_one_run_of_new_session_remain_on_exit_and_the_tags() {
        let spec = SpawnSpec {
            session: "p-a".into(),
            cwd: "/w/#(x)".into(),
            env: [("K".to_owned(), "v;".to_owned())].into(),
            argv: vec!["sleep".into(), "1;".into()],
            agent: "a".into(),
            incarnation: 2,
            run: "r".into(),
        };
        let c = spawn_commands(&spec);
        assert_eq!(c.len(), 5);
        assert_eq!(&c[0][..6], ["new-session", "-d", "-s", "p-a", "-c", "/w/##(x)"]);
        assert!(
            c[0].contains(&"K=v;".to_owned()),
            "raw: each client escapes its own way"
        );
        assert_eq!(c[0][c[0].len() - 2..], ["sleep", "1;"]);
        assert_eq!(c[1], ["set-option", "-w", "-t", "=p-a:", "remain-on-exit", "on"]);
    }
}
