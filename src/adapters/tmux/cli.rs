//! The real tmux, driven through its CLI: one process per call, argument vectors,
//! exact targets, and a timeout so a wedged tmux server cannot hang vigil forever.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::commands::{Effect, Exec, no_server_error};
use super::{TAG_CONTROL, TmuxError};

/// Longest a single tmux call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

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
pub(super) fn described(args: &[&str]) -> String {
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
    pub(super) fn run(&self, args: &[&str]) -> Result<String, TmuxError> {
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

    /// When this process runs in a pane of this very server: the client (a terminal's,
    /// never one of vigil's control clients) showing that pane's session, which
    /// `switch-client -c` may move. `None` outside tmux, under another server, or when
    /// no terminal shows the session (a bare `switch-client` would then pick any
    /// client, a control client included).
    pub fn own_client(&self) -> Option<String> {
        let ours = std::env::var("TMUX").ok()?;
        let pane = std::env::var("TMUX_PANE").ok()?;
        let socket = self.run(&["display-message", "-p", "#{socket_path}"]).ok()?;
        let socket = socket.trim();
        if socket.is_empty() || ours.split(',').next() != Some(socket) {
            return None;
        }
        let format = format!("#{{{TAG_CONTROL}}}\t#{{client_name}}");
        let out = self.run(&["list-clients", "-t", &literal(&pane), "-F", &format]).ok()?;
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(tag, name)| tag.is_empty() && !name.is_empty())
            .map(|(_, name)| name.to_owned())
    }

    /// Shows `message` in the status line of every client attached to this server;
    /// returns how many there were. The message is data: tmux would expand `#{…}` and
    /// `#(…)` in it, so every `#` is doubled, and a final `;` is escaped.
    pub fn display_to_clients(&self, message: &str) -> Result<usize, TmuxError> {
        let format = format!("#{{{TAG_CONTROL}}}\t#{{client_name}}");
        let clients = match self.run(&["list-clients", "-F", &format]) {
            Ok(out) => out,
            Err(e) if no_server_error(&e) => return Ok(0),
            Err(e) => return Err(e),
        };
        let text = format_literal(message);
        let text = literal(&text);
        let mut shown = 0;
        // vigil's own control clients sit in the tagged hidden session: nobody reads it.
        let names = clients
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(tag, _)| tag.is_empty());
        for client in names.map(|(_, name)| name.trim()).filter(|c| !c.is_empty()) {
            let client = literal(client);
            self.run(&["display-message", "-d", "15000", "-c", &client, "--", &text])?;
            shown += 1;
        }
        Ok(shown)
    }
}

/// Text that tmux's format expansion leaves as it is: every `#` doubled, control
/// characters dropped.
fn format_literal(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| if c == '#' { vec!['#', '#'] } else { vec![c] })
        .collect()
}

impl Exec for TmuxCli {
    /// One process for the lot, the commands chained with `;` arguments; every
    /// argument escaped for tmux's argument list.
    fn exec(&self, commands: &[Vec<String>], _effect: Effect) -> Result<String, TmuxError> {
        let escaped: Vec<Vec<std::borrow::Cow<str>>> = commands
            .iter()
            .map(|c| c.iter().map(|a| literal(a)).collect())
            .collect();
        let mut args: Vec<&str> = Vec::new();
        for (i, command) in escaped.iter().enumerate() {
            if i > 0 {
                args.push(";");
            }
            args.extend(command.iter().map(|a| a.as_ref()));
        }
        self.run(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::tmux::{Host, Tmux};

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
}
