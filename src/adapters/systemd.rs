//! Being a systemd service: the `sd_notify` protocol (`READY=1`, `WATCHDOG=1`,
//! `STOPPING=1`, `STATUS=…` datagrams to `$NOTIFY_SOCKET`, a path or an abstract `@name`)
//! and the unit files `vigil install-units` writes. Without `NOTIFY_SOCKET` the notifier
//! does not exist and nothing is sent. Sends only: never reads the socket, never blocks.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// The environment systemd gives a `Type=notify` service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{NOTIFY_SOCKET}={value} cannot be used: {source}")]
    Socket { value: String, source: io::Error },
    #[error("cannot tell systemd `{message}` through {value}: {source}")]
    Send {
        message: String,
        value: String,
        source: io::Error,
    },
}

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// `$NOTIFY_SOCKET` as given, for messages.
    value: String,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd asked for through the environment; `None` when not run as a
    /// `Type=notify` service.
    pub fn from_env() -> Result<Option<Self>, NotifyError> {
        let Some(value) = std::env::var(NOTIFY_SOCKET).ok().filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let usec = std::env::var(WATCHDOG_USEC).ok();
        let pid = std::env::var(WATCHDOG_PID).ok();
        Self::new(&value, usec.as_deref(), pid.as_deref(), std::process::id()).map(Some)
    }

    /// A notifier for the socket `value` (`/path` or `@abstract`). The watchdog is on
    /// when `watchdog_usec` is a positive number of microseconds and `watchdog_pid`, if
    /// given, is `me`: a watchdog meant for another process is not ours to feed.
    pub fn new(
        value: &str,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        me: u32,
    ) -> Result<Self, NotifyError> {
        let bad = |source| NotifyError::Socket {
            value: value.to_owned(),
            source,
        };
        let addr = match value.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(Path::new(value)),
        }
        .map_err(bad)?;
        let socket = UnixDatagram::unbound().map_err(bad)?;
        // Never wait on a full socket: a supervisor that blocks on systemd is the hang
        // the watchdog exists to catch.
        socket.set_nonblocking(true).map_err(bad)?;
        let for_us = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(me));
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Self {
            socket,
            addr,
            value: value.to_owned(),
            watchdog,
        })
    }

    /// How often systemd wants `WATCHDOG=1`, when it does.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Start-up is over: the run is claimed and the live agents adopted.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// The loop is alive; sent only when systemd set a watchdog.
    pub fn watchdog_ping(&self) -> Result<(), NotifyError> {
        if self.watchdog.is_none() {
            return Ok(());
        }
        self.send("WATCHDOG=1")
    }

    pub fn stopping(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }

    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    fn send(&self, message: &str) -> Result<(), NotifyError> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(|_| ())
            .map_err(|source| NotifyError::Send {
                message: message.lines().next().unwrap_or_default().to_owned(),
                value: self.value.clone(),
                source,
            })
    }
}

/// A `STATUS=` value ends at the first newline.
fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// `systemd-escape --path`: the instance name of a unit for a file, as systemd would
/// write it (slashes become `-`, anything outside `[A-Za-z0-9:_.]` and a leading `.`
/// become `\xHH`).
pub fn escape_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() {
        return "-".to_owned();
    }
    let joined = parts.join("/");
    let mut out = String::new();
    for (i, b) in joined.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The unit files, with `{vigil}` (the binary) and `{environment}` still to fill.
pub const UNITS: [(&str, &str); 5] = [
    ("vigil@.service", include_str!("../../assets/systemd/vigil@.service")),
    (
        "vigil-check@.service",
        include_str!("../../assets/systemd/vigil-check@.service"),
    ),
    (
        "vigil-check@.timer",
        include_str!("../../assets/systemd/vigil-check@.timer"),
    ),
    (
        "vigil-tick@.service",
        include_str!("../../assets/systemd/vigil-tick@.service"),
    ),
    (
        "vigil-tick@.timer",
        include_str!("../../assets/systemd/vigil-tick@.timer"),
    ),
];

/// A unit file with the binary and the environment filled in. `%` is doubled, since
/// systemd reads it as a specifier.
pub fn render_unit(template: &str, vigil: &Path, environment: &[(String, String)]) -> Result<String, String> {
    let exe = vigil.to_string_lossy();
    if exe.contains(['"', '\n', '\\']) {
        return Err(format!(
            "the vigil binary's path {exe:?} holds a quote, backslash or newline; install vigil elsewhere"
        ));
    }
    let exe = exe.replace('%', "%%");
    let exe = if exe.contains(char::is_whitespace) {
        format!("\"{exe}\"")
    } else {
        exe
    };
    let mut env = String::new();
    for (key, value) in environment {
        if value.contains(['"', '\n', '\\']) {
            return Err(format!(
                "{key} holds a quote, backslash or newline; set it in a drop-in with `systemctl --user edit`"
            ));
        }
        env.push_str(&format!("Environment=\"{key}={}\"\n", value.replace('%', "%%")));
    }
    Ok(template.replace("{vigil}", &exe).replace("{environment}\n", &env))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (tempfile::TempDir, UnixDatagram, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        (dir, sock, path.to_string_lossy().into_owned())
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_watchdog_and_stopping_reach_a_path_socket_in_order() {
        let (_dir, sock, path) = listener();
        let n = Notifier::new(&path, Some("2000000"), None, 1).unwrap();
        assert_eq!(n.watchdog(), Some(Duration::from_secs(2)));
        n.ready("supervising 2 agents").unwrap();
        n.watchdog_ping().unwrap();
        n.stopping("stopping").unwrap();
        assert_eq!(recv(&sock), "READY=1\nSTATUS=supervising 2 agents");
        assert_eq!(recv(&sock), "WATCHDOG=1");
        assert_eq!(recv(&sock), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn an_abstract_socket_is_named_with_a_leading_at() {
        let name = format!("vigil-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(&format!("@{name}"), None, None, 1).unwrap();
        n.ready("up").unwrap();
        assert_eq!(recv(&sock), "READY=1\nSTATUS=up");
    }

    #[test]
    fn no_watchdog_pings_unless_systemd_asked_for_them_for_this_pid() {
        let (_dir, sock, path) = listener();
        assert_eq!(Notifier::new(&path, None, None, 7).unwrap().watchdog(), None);
        assert_eq!(Notifier::new(&path, Some("0"), None, 7).unwrap().watchdog(), None);
        assert_eq!(
            Notifier::new(&path, Some("1000"), Some("8"), 7).unwrap().watchdog(),
            None
        );
        let n = Notifier::new(&path, Some("1000"), Some("7"), 7).unwrap();
        assert_eq!(n.watchdog(), Some(Duration::from_millis(1)));
        Notifier::new(&path, None, None, 7).unwrap().watchdog_ping().unwrap();
        n.status("x").unwrap();
        assert_eq!(recv(&sock), "STATUS=x", "the unasked ping was never sent");
    }

    #[test]
    fn paths_escape_as_systemd_escape_does() {
        assert_eq!(
            escape_path(Path::new("/home/me/proj/vigil.toml")),
            "home-me-proj-vigil.toml"
        );
        assert_eq!(
            escape_path(Path::new("/srv/my app/v-1/.vigil.toml")),
            "srv-my\\x20app-v\\x2d1-.vigil.toml"
        );
        assert_eq!(escape_path(Path::new("/.hidden//x/")), "\\x2ehidden-x");
        assert_eq!(escape_path(Path::new("/")), "-");
    }

    #[test]
    fn units_get_the_binary_and_environment_with_percent_signs_doubled() {
        let unit = render_unit(
            "ExecStart={vigil} watch\n{environment}\nKillMode=process\n",
            Path::new("/opt/my tools/vigil"),
            &[("PATH".into(), "/usr/bin:/opt/100%/bin".into())],
        )
        .unwrap();
        assert_eq!(
            unit,
            "ExecStart=\"/opt/my tools/vigil\" watch\nEnvironment=\"PATH=/usr/bin:/opt/100%%/bin\"\nKillMode=process\n"
        );
        assert!(render_unit("{vigil}", Path::new("/a\"b"), &[]).is_err());
    }
}
