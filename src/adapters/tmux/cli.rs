//! The real tmux, driven through its CLI: one process per call, argument vectors,
//! exact targets, and a timeout so a wedged tmux server cannot hang vigil forever.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{Host, Listing, Pane, ServerId, SpawnSpec, TAG_AGENT, TAG_INCARNATION, TAG_RUN, Tmux, TmuxError};

/// Size of a new session's window; big enough for agents' TUIs to lay out normally.
const WIDTH: &str = "200";
const HEIGHT: &str = "50";
/// Longest a single tmux call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of a `new-session` that met a server on its way out, and the wait between.
const SPAWN_TRIES: u32 = 5;
const SPAWN_RETRY_WAIT: Duration = Duration::from_millis(100);

/// Fields asked of `list-panes`, tab-separated; the session name last, so a tab in a
/// foreign session's name cannot shift the other fields. `#{pid}` and `#{start_time}`
/// are the server's, so a server replaced between two looks is noticed.
/// `#{window_activity}` and the size tell a screen that cannot have changed since it
/// was last captured.
const LIST_FORMAT: &str = "#{pane_pid}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}\t#{@vigil-agent}\t#{@vigil-incarnation}\t#{@vigil-run}\t#{@vigil-exit}\t#{pid}\t#{start_time}\t#{window_activity}\t#{pane_width}x#{pane_height}\t#{session_name}";

/// An argument exactly as tmux must receive it. tmux splits its own argument list into
/// commands at every argument that ends in `;` — even after `--`, even in `send-keys -l`
/// text — and reads a final `\;` as a literal `;` (cmd-parse.y,
/// `cmd_parse_from_arguments`). So a final `;` is escaped, and nothing else: tmux
/// removes exactly that one backslash, whatever precedes it.
fn literal(arg: &str) -> std::borrow::Cow<'_, str> {
    match arg.strip_suffix(';') {
        Some(head) => format!("{head}\\;").into(),
        None => arg.into(),
    }
}

/// A tmux command line as it may be shown in an error (and so printed, journaled and
/// snapshotted): the value of every `-e NAME=value` is left out, since env values are
/// the user's secrets (`API_KEY=…`); the names stay, to say what was passed.
fn described(args: &[&str]) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut env_next = false;
    for arg in args {
        if env_next {
            let name = arg.split_once('=').map_or(*arg, |(name, _)| name);
            out.push(format!("{name}=…"));
        } else {
            out.push((*arg).to_owned());
        }
        env_next = *arg == "-e";
    }
    out.join(" ")
}

/// tmux through its command line, on the user's default server or a named socket.
#[derive(Clone, Debug, Default)]
pub struct TmuxCli {
    socket: Option<String>,
}

impl TmuxCli {
    pub fn new(socket: Option<String>) -> Self {
        Self { socket }
    }

    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// The argv prefix that reaches this server (`tmux -L name`).
    pub fn base_argv(&self) -> Vec<String> {
        let mut argv = vec!["tmux".to_owned()];
        if let Some(socket) = &self.socket {
            argv.extend(["-L".to_owned(), socket.clone()]);
        }
        argv
    }

    /// Runs `tmux <args>`, returning stdout. Output is read on a helper thread while
    /// this one waits with a deadline, so neither a full pipe nor a hung server blocks.
    fn run(&self, args: &[&str]) -> Result<String, TmuxError> {
        let mut cmd = Command::new("tmux");
        if let Some(socket) = &self.socket {
            cmd.args(["-L", socket]);
        }
        // A tmux server started here passes its environment to every agent.
        for var in crate::adapters::SERVICE_ENV {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(TmuxError::Missing)?;
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut stdout);
            }
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut stderr);
            }
            let _ = tx.send((stdout, stderr));
        });
        let shown = || described(args);
        let Ok((stdout, stderr)) = rx.recv_timeout(CALL_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TmuxError::Timeout {
                args: shown(),
                secs: CALL_TIMEOUT.as_secs(),
            });
        };
        let status = child.wait().map_err(TmuxError::Missing)?;
        if status.success() {
            return Ok(String::from_utf8_lossy(&stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
        Err(TmuxError::Failed { args: shown(), stderr })
    }

    /// Shows `message` in the status line of every client attached to this server;
    /// returns how many there were. The message is data: tmux would expand `#{…}` and
    /// `#(…)` in it, so every `#` is doubled, and a final `;` is escaped.
    pub fn display_to_clients(&self, message: &str) -> Result<usize, TmuxError> {
        let clients = match self.run(&["list-clients", "-F", "#{client_name}"]) {
            Ok(out) => out,
            Err(e) if no_server_error(&e) => return Ok(0),
            Err(e) => return Err(e),
        };
        let text = format_literal(message);
        let text = literal(&text);
        let mut shown = 0;
        for client in clients.lines().map(str::trim).filter(|c| !c.is_empty()) {
            let client = literal(client);
            self.run(&["display-message", "-d", "15000", "-c", &client, "--", &text])?;
            shown += 1;
        }
        Ok(shown)
    }

    fn session_missing(err: &TmuxError) -> bool {
        matches!(err, TmuxError::Failed { stderr, .. }
            if stderr.starts_with("can't find") || stderr.starts_with("no such session")
                || no_server(stderr))
    }
}

/// The errors tmux gives when the server exits while the client talks to it: killing
/// the last session ends the server, and a `new-session` right after can reach it as
/// it goes. Starting again starts a fresh server.
fn server_went_away(err: &TmuxError) -> bool {
    matches!(err, TmuxError::Failed { stderr, .. }
        if stderr.contains("server exited unexpectedly") || stderr.contains("lost server"))
}

/// The errors tmux gives when no server runs on the socket.
fn no_server(stderr: &str) -> bool {
    stderr.starts_with("no server running") || stderr.starts_with("error connecting to")
}

/// Text that tmux's format expansion leaves as it is: every `#` doubled, control
/// characters dropped.
fn format_literal(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| if c == '#' { vec!['#', '#'] } else { vec![c] })
        .collect()
}

fn no_server_error(err: &TmuxError) -> bool {
    matches!(err, TmuxError::Failed { stderr, .. } if no_server(stderr))
}

fn pane_target(session: &str) -> String {
    format!("={session}:")
}

/// One `list-panes` line: the pane, and the server that listed it.
fn parse_pane(line: &str) -> Option<(Pane, Option<ServerId>)> {
    let mut f = line.splitn(13, '\t');
    let pane_pid = f.next()?.parse().ok()?;
    let dead = f.next()? == "1";
    let dead_status = f.next()?.parse().ok();
    let dead_signal = f.next()?.parse().ok();
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let agent = text(f.next()?);
    let incarnation = f.next()?.parse().ok();
    let run = text(f.next()?);
    let exit_tag = f.next()?.parse().ok();
    let pid = f.next()?.parse().ok();
    let started = f.next()?.parse().ok();
    let server = pid.zip(started).map(|(pid, started)| ServerId { pid, started });
    let activity = f.next()?.parse().ok();
    let size = f
        .next()?
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    let session = f.next()?.to_owned();
    let pane = Pane {
        session,
        pane_pid,
        dead,
        dead_status,
        dead_signal,
        agent,
        incarnation,
        run,
        exit_tag,
        activity,
        size,
    };
    Some((pane, server))
}

impl Tmux for TmuxCli {
    fn list_panes(&self) -> Result<Vec<Pane>, TmuxError> {
        self.survey().map(|listing| listing.panes)
    }

    fn survey(&self) -> Result<Listing, TmuxError> {
        match self.run(&["list-panes", "-a", "-F", LIST_FORMAT]) {
            Ok(out) => {
                let mut panes: Vec<Pane> = Vec::new();
                let mut server = None;
                for (pane, id) in out.lines().filter_map(parse_pane) {
                    server = server.or(id);
                    // One pane per session is vigil's: the first listed.
                    if !panes.iter().any(|p| p.session == pane.session) {
                        panes.push(pane);
                    }
                }
                Ok(Listing {
                    host: Host::Up { server },
                    panes,
                })
            }
            // tmux's own words for "nothing listens on this socket": the server is gone.
            Err(TmuxError::Failed { stderr, .. }) if no_server(&stderr) => Ok(Listing {
                host: Host::ServerGone,
                panes: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    fn capture(&self, session: &str, lines: usize) -> Result<Vec<String>, TmuxError> {
        let start = format!("-{lines}");
        let target = pane_target(session);
        match self.run(&["capture-pane", "-p", "-J", "-t", &target, "-S", &start]) {
            Ok(out) => Ok(out.lines().map(str::to_owned).collect()),
            Err(e) if Self::session_missing(&e) => Err(TmuxError::NoSuchSession(session.to_owned())),
            Err(e) => Err(e),
        }
    }

    fn send_text(&self, session: &str, text: &str) -> Result<(), TmuxError> {
        let target = pane_target(session);
        let typed = self.run(&["send-keys", "-t", &target, "-l", "--", &literal(text)]);
        let entered = typed.and_then(|_| self.run(&["send-keys", "-t", &target, "Enter"]));
        match entered {
            Ok(_) => Ok(()),
            Err(e) if Self::session_missing(&e) => Err(TmuxError::NoSuchSession(session.to_owned())),
            Err(e) => Err(e),
        }
    }

    fn spawn(&self, spec: &SpawnSpec) -> Result<(), TmuxError> {
        let target = pane_target(&spec.session);
        // `-c` is format-expanded by tmux (`#(cmd)` would run cmd): every `#` doubled.
        let cwd = literal(&spec.cwd.to_string_lossy().replace('#', "##")).into_owned();
        let incarnation = spec.incarnation.to_string();
        let mut env: Vec<String> = spec
            .env
            .iter()
            .map(|(k, v)| literal(&format!("{k}={v}")).into_owned())
            .collect();
        env.push(format!("VIGIL_AGENT={}", spec.agent));
        env.push(format!("VIGIL_INCARNATION={incarnation}"));
        let mut args: Vec<&str> = vec![
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
        ];
        for kv in &env {
            args.extend(["-e", kv]);
        }
        args.push("--");
        let argv: Vec<std::borrow::Cow<str>> = spec.argv.iter().map(|a| literal(a)).collect();
        args.extend(argv.iter().map(|a| a.as_ref()));
        // In the same invocation, so a command that exits at once still leaves its pane.
        args.extend([";", "set-option", "-w", "-t", &target, "remain-on-exit", "on"]);
        for (tag, value) in [
            (TAG_AGENT, spec.agent.as_str()),
            (TAG_INCARNATION, &incarnation),
            (TAG_RUN, &spec.run),
        ] {
            args.extend([";", "set-option", "-t", &target, tag, value]);
        }
        let mut tries = 1;
        loop {
            match self.run(&args) {
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

    fn kill(&self, session: &str) -> Result<(), TmuxError> {
        let target = format!("={session}");
        match self.run(&["kill-session", "-t", &target]) {
            Ok(_) => Ok(()),
            Err(e) if Self::session_missing(&e) => Err(TmuxError::NoSuchSession(session.to_owned())),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_env_it_passed_but_never_a_value() {
        let args = [
            "new-session",
            "-e",
            "API_KEY=sk-live-123",
            "-e",
            "X=y=z",
            "--",
            "claude",
        ];
        assert_eq!(described(&args), "new-session -e API_KEY=… -e X=… -- claude");
    }

    #[test]
    fn a_message_for_display_cannot_run_a_format_or_end_the_command() {
        assert_eq!(
            format_literal("a #(rm -rf ~) #{pane_pid}\u{7}"),
            "a ##(rm -rf ~) ##{pane_pid}"
        );
        assert_eq!(literal(&format_literal("done;")), "done\\;");
    }

    #[test]
    fn only_a_final_semicolon_is_escaped_the_way_tmux_unescapes_it() {
        assert_eq!(literal("continue"), "continue");
        assert_eq!(literal("a;b"), "a;b");
        assert_eq!(literal("100;"), "100\\;");
        assert_eq!(literal(";"), "\\;");
        assert_eq!(literal("x\\;"), "x\\\\;", "tmux turns `x\\\\;` back into `x\\;`");
    }

    #[test]
    fn no_server_on_the_socket_is_the_server_gone_not_an_empty_fleet() {
        let socket = format!("vigil-test-noserver-{}", std::process::id());
        let listing = TmuxCli::new(Some(socket)).survey().unwrap();
        assert_eq!(listing.host, Host::ServerGone);
        assert!(listing.panes.is_empty());
    }

    #[test]
    fn parses_list_panes_lines() {
        let line = "4242\t1\t3\t\tbackend\t2\tproj-1234abcd\t3\t77\t1800000000\t1800000042\t120x40\tproj-backend";
        let (pane, server) = parse_pane(line).unwrap();
        assert_eq!(
            server,
            Some(ServerId {
                pid: 77,
                started: 1_800_000_000
            })
        );
        assert_eq!(pane.pane_pid, 4242);
        assert!(pane.dead);
        assert_eq!(pane.dead_status, Some(3));
        assert_eq!(pane.dead_signal, None);
        assert_eq!(pane.agent.as_deref(), Some("backend"));
        assert_eq!(pane.incarnation, Some(2));
        assert_eq!(pane.exit_tag, Some(3));
        assert!(pane.is_ours("proj-1234abcd"));
        assert_eq!(pane.activity, Some(1_800_000_042));
        assert_eq!(pane.size, Some((120, 40)));

        let (foreign, _) = parse_pane("77\t0\t\t\t\t\t\t\t77\t1800000000\t\t\tmy\tweird session").unwrap();
        assert_eq!((foreign.activity, foreign.size), (None, None));
        assert_eq!(foreign.session, "my\tweird session");
        assert!(!foreign.is_ours("proj-1234abcd"));
        assert!(parse_pane("garbage").is_none());
    }
}
