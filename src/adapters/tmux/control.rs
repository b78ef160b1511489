//! tmux through one long-lived control-mode client (`tmux -C`): commands are written to
//! its stdin one line at a time and each answer is read back between `%begin` and
//! `%end`/`%error`, skipping the notifications that interleave. The client sits in a
//! hidden session tagged `@vigil-control` (never an agent, never listed), never sizes a
//! window, and takes no pane output; each new one ends the clients a dead vigil left
//! there ([`super::orphans`]). This module only talks; when it cannot (no server, the
//! client died, a reply hangs or is garbage) it says so and the caller asks the CLI.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use super::TAG_CONTROL;
use super::cli::TmuxCli;
use super::orphans;

/// The hidden session every control client of vigil sits in, one per server, shared by
/// every vigil on it; its pane sleeps. It stays until the server ends.
pub const CONTROL_SESSION: &str = "_vigil-control";
/// Longest one reply may take before the client is given up (the CLI then answers).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// After a client could not start, how long the CLI serves before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Largest reply read; past it the client is out of step and is given up.
const MAX_REPLY_BYTES: usize = 16 << 20;
/// How long a closed client is given to leave before it is killed.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Why control mode did not answer a call; the caller asks the CLI instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// No server runs on the socket: tmux's own words, from the probe.
    NoServer(String),
    /// The client could not start, or was found gone: the commands were not sent.
    Broken(String),
    /// The commands were sent, but the client died, hung or answered out of step: they
    /// may or may not have run.
    Lost(String),
}

/// One answer block: the command's output lines, and whether it succeeded.
#[derive(Debug)]
struct Block {
    ok: bool,
    /// Sent by this client's own commands (`1`), not by its startup command (`0`).
    ours: bool,
    lines: Vec<String>,
}

/// What the reader thread hands over.
#[derive(Debug)]
enum Heard {
    Block(Block),
    /// The stream went out of step (an oversized reply): the connection is unusable.
    Garbage(String),
}

/// A running client: its stdin, and the blocks its reader thread has parsed.
struct Conn {
    child: Child,
    stdin: Option<ChildStdin>,
    heard: Receiver<Heard>,
}

impl Drop for Conn {
    /// Closing stdin makes the client detach and leave; it is waited for (briefly), so
    /// once vigil is done no client of it is left attached.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + CLOSE_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct State {
    conn: Option<Conn>,
    /// No new client is tried before this, after one failed to start.
    retry_at: Option<Instant>,
    /// The last reason given for not using control mode, said once.
    said: Option<String>,
}

/// The control-mode client of one server (started on first use, restarted after the
/// server or the client went away).
pub struct Control {
    cli: TmuxCli,
    state: Mutex<State>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("socket", &self.cli.socket()).finish()
    }
}

/// One command's outcome: its output lines, or tmux's error message.
pub type Outcome = Result<Vec<String>, String>;

impl Control {
    pub fn new(cli: TmuxCli) -> Self {
        Self {
            cli,
            state: Mutex::new(State::default()),
        }
    }

    /// The pid of the running client, if one runs (for tests that kill it).
    pub fn client_pid(&self) -> Option<u32> {
        self.lock().conn.as_ref().map(|c| c.child.id())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `commands` (each an argument vector) as one line, so tmux runs them back to
    /// back with nothing in between; returns each one's outcome, up to and including the
    /// first that failed (tmux skips the rest).
    pub fn run(&self, commands: &[Vec<String>]) -> Result<Vec<Outcome>, Unavailable> {
        self.send(&command_line(commands), commands.len(), Reading::UntilFailed)
    }

    /// Runs each of `commands` on a line of its own, all written at once, so tmux reads
    /// them in one go and one failing (a session gone) skips none of the others;
    /// returns every one's outcome, in order. One write and one wake-up for a pass's
    /// captures, instead of one round trip each.
    pub fn run_each(&self, commands: &[Vec<String>]) -> Result<Vec<Outcome>, Unavailable> {
        let lines: String = commands.iter().map(|c| command_line(std::slice::from_ref(c))).collect();
        self.send(&lines, commands.len(), Reading::All)
    }

    /// Writes `lines` and reads `count` replies to them.
    fn send(&self, lines: &str, count: usize, reading: Reading) -> Result<Vec<Outcome>, Unavailable> {
        let mut state = self.lock();
        // A client found dead before anything was written is replaced at once: the
        // command has not run.
        for _ in 0..2 {
            if state.conn.is_none() {
                self.connect(&mut state)?;
            }
            let Some(conn) = state.conn.as_mut() else {
                return Err(Unavailable::Broken("no control client".into()));
            };
            match write_line(conn, lines) {
                Ok(()) => {}
                Err(_) => {
                    state.conn = None;
                    continue;
                }
            }
            return match read_blocks(conn, count, reading) {
                Ok(outcomes) => Ok(outcomes),
                Err(why) => {
                    state.conn = None;
                    self.broken(&mut state, why.clone());
                    Err(Unavailable::Lost(why))
                }
            };
        }
        Err(self.broken(&mut state, "the control client exited".into()))
    }

    /// Starts a client on the hidden session. A server is never started here: the
    /// probe first asks (through the CLI) whether one runs.
    fn connect(&self, state: &mut State) -> Result<(), Unavailable> {
        if state.retry_at.is_some_and(|t| Instant::now() < t) {
            return Err(Unavailable::Broken(
                state.said.clone().unwrap_or_else(|| "control mode failed".into()),
            ));
        }
        let target = format!("={CONTROL_SESSION}");
        match self.cli.run(&["has-session", "-t", &target]) {
            Ok(_) => {}
            Err(super::TmuxError::Failed { stderr, .. }) if super::commands::no_server(&stderr) => {
                return Err(Unavailable::NoServer(stderr));
            }
            Err(super::TmuxError::Failed { stderr, .. }) if stderr.starts_with("can't find session") => {}
            Err(e) => return Err(self.failed_start(state, e.to_string())),
        }
        match self.start() {
            Ok(conn) => {
                state.conn = Some(conn);
                state.retry_at = None;
                state.said = None;
                Ok(())
            }
            Err(why) => Err(self.failed_start(state, why)),
        }
    }

    fn failed_start(&self, state: &mut State, why: String) -> Unavailable {
        state.retry_at = Some(Instant::now() + RETRY_AFTER);
        self.broken(state, why)
    }

    /// The reason, said once on stderr (the owner's log) until control mode works again.
    fn broken(&self, state: &mut State, why: String) -> Unavailable {
        if state.said.as_deref() != Some(why.as_str()) {
            eprintln!("vigil: tmux control mode: {why}; using the tmux CLI meanwhile");
            state.said = Some(why.clone());
        }
        Unavailable::Broken(why)
    }

    fn start(&self) -> Result<Conn, String> {
        let mut cmd = Command::new("tmux");
        if let Some(socket) = self.cli.socket() {
            cmd.args(["-L", socket]);
        }
        // Sessions it creates get its environment, as the CLI's would.
        for var in crate::adapters::SERVICE_ENV {
            cmd.env_remove(var);
        }
        // `-A`: attach to the hidden session if another vigil made it already.
        cmd.args([
            "-C",
            "new-session",
            "-A",
            "-s",
            CONTROL_SESSION,
            "-c",
            "/",
            "-x",
            "80",
            "-y",
            "24",
            "--",
            "sleep",
            "2147483647",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Out of the terminal's process group: a Ctrl-C meant for vigil would end it
        // mid-pass. It still leaves when vigil does, at the end of its stdin.
        .process_group(0);
        let mut child = cmd.spawn().map_err(|e| format!("cannot run tmux -C ({e})"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("tmux -C has no pipes".into());
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tmux-control".into())
            .spawn(move || listen(stdout, &tx))
            .map_err(|e| format!("cannot start the control reader ({e})"))?;
        let mut conn = Conn {
            child,
            stdin: Some(stdin),
            heard: rx,
        };
        // The startup command's own answer first.
        match next_block(&conn, false, Instant::now() + REPLY_TIMEOUT)? {
            b if b.ok => {}
            b => return Err(format!("tmux -C new-session failed: {}", b.lines.join(" "))),
        }
        // No pane output for this client, ever (tmux would otherwise wait on vigil to
        // read it); tag the session so it is never taken for anyone's. Not
        // `destroy-unattached`: its sweeps, with clients coming and going, can crash a
        // tmux server (tmux/tmux#5497; seen here under the crash suite), so the hidden
        // session stays, asleep, until its server ends.
        let target = format!("={CONTROL_SESSION}:");
        let setup = [
            words(&["refresh-client", "-f", "no-output"]),
            words(&["set-option", "-t", &target, TAG_CONTROL, "1"]),
        ];
        write_line(&mut conn, &command_line(&setup)).map_err(|e| format!("writing to tmux -C: {e}"))?;
        let answers = read_blocks(&conn, setup.len(), Reading::UntilFailed)?;
        if let Some(Err(e)) = answers.iter().find(|a| a.is_err()) {
            return Err(format!("setting up the control client: {e}"));
        }
        end_left_behind(&mut conn);
        Ok(conn)
    }
}

/// Ends the control clients on the hidden session that a dead vigil left
/// ([`orphans`]), said on stderr; a listing that fails is only said.
fn end_left_behind(conn: &mut Conn) {
    let target = format!("={CONTROL_SESSION}");
    let list = [words(&["list-clients", "-t", &target, "-F", orphans::CLIENTS_FORMAT])];
    let listed = write_line(conn, &command_line(&list))
        .map_err(|e| e.to_string())
        .and_then(|()| read_blocks(conn, 1, Reading::All));
    match listed.as_deref() {
        Ok([Ok(lines)]) => {
            let ended = orphans::end_left_behind(lines, conn.child.id());
            if !ended.is_empty() {
                eprintln!(
                    "vigil: ended {} tmux control client(s) left on {CONTROL_SESSION} by a vigil that died: pid {ended:?}",
                    ended.len()
                );
            }
        }
        Ok(other) => eprintln!("vigil: cannot list the control clients of {CONTROL_SESSION}: {other:?}"),
        Err(why) => eprintln!("vigil: cannot list the control clients of {CONTROL_SESSION}: {why}"),
    }
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn write_line(conn: &mut Conn, line: &str) -> std::io::Result<()> {
    let stdin = conn
        .stdin
        .as_mut()
        .ok_or_else(|| std::io::Error::other("stdin closed"))?;
    // Anything still queued is from a client that has exited: not worth a write.
    loop {
        match conn.heard.try_recv() {
            Ok(_) => {}
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => return Err(std::io::Error::other("the control client exited")),
        }
    }
    stdin.write_all(line.as_bytes())?;
    stdin.flush()
}

/// The answers to a line of `count` commands: up to `count` blocks, stopping at the
/// first error (tmux runs nothing after it).
fn read_blocks(conn: &Conn, count: usize, reading: Reading) -> Result<Vec<Outcome>, String> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let block = next_block(conn, true, deadline)?;
        let failed = !block.ok;
        out.push(if block.ok {
            Ok(block.lines)
        } else {
            Err(block.lines.join(" "))
        });
        if failed && reading == Reading::UntilFailed {
            break;
        }
    }
    Ok(out)
}

/// How many replies a write gets: commands on one line stop at the first that fails;
/// commands on lines of their own each answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    UntilFailed,
    All,
}

/// The next block from this client's own commands (`ours`) or its startup command.
fn next_block(conn: &Conn, ours: bool, deadline: Instant) -> Result<Block, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match conn.heard.recv_timeout(left) {
            Ok(Heard::Block(b)) if b.ours == ours => return Ok(b),
            Ok(Heard::Block(_)) => {}
            Ok(Heard::Garbage(why)) => return Err(why),
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("no answer within {}s", REPLY_TIMEOUT.as_secs()));
            }
            Err(RecvTimeoutError::Disconnected) => return Err("the control client exited".into()),
        }
    }
}

/// The reader thread: parses the client's stdout into blocks until it ends. Lines
/// outside a block are notifications (`%…`) and are dropped, as is a partial block at
/// the end.
fn listen(stdout: ChildStdout, tx: &Sender<Heard>) {
    let mut reader = BufReader::new(stdout);
    let mut parser = Parser::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if let Some(heard) = parser.feed(&String::from_utf8_lossy(&buf)) {
            let garbage = matches!(heard, Heard::Garbage(_));
            if tx.send(heard).is_err() || garbage {
                return;
            }
        }
    }
}

/// The block being read: the guard its `%end`/`%error` must repeat (`time number
/// flags`), and its lines so far.
#[derive(Default)]
struct Parser {
    open: Option<(String, Vec<String>, usize)>,
}

impl Parser {
    fn feed(&mut self, line: &str) -> Option<Heard> {
        let Some((guard, lines, bytes)) = self.open.as_mut() else {
            if let Some(guard) = line.strip_prefix("%begin ") {
                self.open = Some((guard.to_owned(), Vec::new(), 0));
            }
            return None;
        };
        // Only the exact guard closes the block: a pane line that looks like an end
        // (in a capture) cannot know the server's time and command number.
        let end = |tag: &str| line.strip_prefix(tag).is_some_and(|g| g == guard.as_str());
        let ok = if end("%end ") {
            true
        } else if end("%error ") {
            false
        } else {
            *bytes += line.len() + 1;
            if *bytes > MAX_REPLY_BYTES {
                self.open = None;
                return Some(Heard::Garbage(format!("a reply longer than {MAX_REPLY_BYTES} bytes")));
            }
            lines.push(line.to_owned());
            return None;
        };
        let (guard, lines, _) = self.open.take()?;
        let ours = guard.rsplit(' ').next() == Some("1");
        Some(Heard::Block(Block { ok, ours, lines }))
    }
}

/// Commands as one line tmux's parser reads back into exactly these arguments.
fn command_line(commands: &[Vec<String>]) -> String {
    let mut line = commands
        .iter()
        .map(|args| args.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" ; ");
    line.push('\n');
    line
}

/// One argument for tmux's command parser (cmd-parse.y): in double quotes, with `\`,
/// `"`, `$` (environment expansion) and `~` (home expansion) escaped by a backslash, and
/// every control character (a newline would end the command) as a three-digit octal
/// escape. `;`, `#`, `{` and spaces are plain text inside quotes. NUL cannot reach tmux
/// at all (it ends a C string) and is dropped, as the CLI could not pass it either.
pub(super) fn quoted(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        match c {
            '\0' => {}
            '\\' | '"' | '$' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_arguments_are_quoted_so_tmux_reads_them_back_as_one_plain_word() {
        assert_eq!(quoted("continue"), "\"continue\"");
        assert_eq!(quoted("a b;c"), "\"a b;c\"");
        assert_eq!(quoted("x;"), "\"x;\"");
        assert_eq!(quoted("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quoted("$HOME ~/x"), "\"\\$HOME \\~/x\"");
        assert_eq!(quoted("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(quoted("one\ntwo\r\u{1b}[A\u{7f}"), "\"one\\012two\\015\\033[A\\177\"");
        assert_eq!(quoted("nul\0gone"), "\"nulgone\"");
        assert_eq!(
            quoted("#(touch /tmp/x) #{pane_pid} {"),
            "\"#(touch /tmp/x) #{pane_pid} {\""
        );
        assert_eq!(quoted("ünï ☃"), "\"ünï ☃\"");
        let line = command_line(&[words(&["send-keys", "-l", "--", "a\nkill-server"]), words(&["x"])]);
        assert_eq!(line, "\"send-keys\" \"-l\" \"--\" \"a\\012kill-server\" ; \"x\"\n");
        assert_eq!(line.matches('\n').count(), 1, "one command line, whatever the text");
    }

    #[test]
    fn blocks_are_read_between_matching_guards_and_notifications_are_skipped() {
        let mut p = Parser::default();
        assert!(p.feed("%session-changed $1 _vigil-control").is_none());
        assert!(p.feed("%begin 1796149505 271 1").is_none());
        assert!(p.feed("a line").is_none());
        assert!(p.feed("%end 1796149505 270 1").is_none(), "another guard is text");
        assert!(p.feed("%output %1 hi").is_none());
        let Some(Heard::Block(b)) = p.feed("%end 1796149505 271 1") else {
            panic!("the block ends at its own guard")
        };
        assert!(b.ok && b.ours);
        assert_eq!(b.lines, ["a line", "%end 1796149505 270 1", "%output %1 hi"]);
        assert!(p.feed("%window-add @1").is_none());
        assert!(p.feed("%begin 1 2 0").is_none());
        assert!(p.feed("can't find session: x").is_none());
        let Some(Heard::Block(b)) = p.feed("%error 1 2 0") else {
            panic!("an error ends a block too")
        };
        assert!(!b.ok && !b.ours);
        assert_eq!(b.lines, ["can't find session: x"]);
    }
}
