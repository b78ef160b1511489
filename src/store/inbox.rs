//! `inbox/`: commands from processes that do not own the run (`vigil stop AGENT` while
//! `vigil watch` runs), one letter each, written atomically under a unique name that is
//! also the letter's id. The owner reads them in order of arrival, strictly and bounded;
//! it deletes each only after journaling it, and answers each in `answers/`.
//! A letter older than [`LETTER_TTL`] (or sent from the future) is refused, not obeyed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{StoreError, file};
use crate::adapters::fs::{Links, read_regular};
use crate::engine::{AgentName, Command, Time};

/// Largest inbox file read as a letter.
const MAX_LETTER: u64 = 64 * 1024;

/// A letter this old is not obeyed: whoever sent it has long stopped waiting, and what
/// it asked for may no longer be wanted.
pub const LETTER_TTL: Duration = Duration::from_secs(10 * 60);

/// How far ahead of the owner's clock a letter's time may be (clocks of two processes
/// on one machine agree; this is for a stamp that is simply wrong).
pub const LETTER_SKEW: Duration = Duration::from_secs(60);

/// The letter format this vigil writes. Version 1 (vigil 0.1) had no `version` and no
/// `sent`: its time is read from its file name.
const LETTER_VERSION: u32 = 2;

/// A letter's id: its file name without `.json` (`<ms>-<pid>-<n>-<verb>`), so unique
/// and safe as a file name; its answer is `answers/<id>.json`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LetterId(String);

impl LetterId {
    const MAX_LEN: usize = 100;

    pub fn new(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sender's clock when it named the letter: the leading milliseconds.
    fn stamp(&self) -> Option<Time> {
        let digits = self.0.split('-').next()?;
        digits.parse::<i64>().ok().map(Time::from_millis)
    }
}

impl std::fmt::Display for LetterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LetterId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        LetterId::new(&text).ok_or_else(|| serde::de::Error::custom("not a letter id"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Verb {
    Up,
    Stop,
    Restart,
    Nudge,
    Triage,
}

impl Verb {
    fn of(command: &Command) -> Self {
        match command {
            Command::Up(_) => Verb::Up,
            Command::Stop(_) => Verb::Stop,
            Command::Restart(_) => Verb::Restart,
            Command::Nudge(_) => Verb::Nudge,
            Command::Triage(_) => Verb::Triage,
        }
    }

    fn to(self, agent: AgentName) -> Command {
        match self {
            Verb::Up => Command::Up(agent),
            Verb::Stop => Command::Stop(agent),
            Verb::Restart => Command::Restart(agent),
            Verb::Nudge => Command::Nudge(agent),
            Verb::Triage => Command::Triage(agent),
        }
    }
}

/// One file of the inbox, exactly: `{"version": 2, "command": "stop", "agent": "b",
/// "from_pid": 4242, "sent": "2025-…Z"}`. Anything else in it makes it no letter.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Paper {
    #[serde(default = "version_1")]
    version: u32,
    command: Verb,
    agent: AgentName,
    from_pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent: Option<Time>,
}

fn version_1() -> u32 {
    1
}

/// A letter as the owner took it.
#[derive(Clone, Debug, PartialEq)]
pub struct Letter {
    pub id: LetterId,
    pub command: Command,
    pub sent: Time,
    pub from_pid: u32,
    path: PathBuf,
}

/// Why a well-formed letter is not obeyed, in fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Refusal {
    /// Sent longer than [`LETTER_TTL`] ago.
    Expired { age_s: u64 },
    /// Sent later than the owner's clock allows.
    FromTheFuture { ahead_s: u64 },
}

impl Refusal {
    pub fn words(&self) -> String {
        match self {
            Refusal::Expired { age_s } => format!(
                "expired: sent {} ago, and letters older than {} are not obeyed",
                crate::engine::time::human(Duration::from_secs(*age_s)),
                crate::engine::time::human(LETTER_TTL)
            ),
            Refusal::FromTheFuture { ahead_s } => format!(
                "refused: its time is {} ahead of the owner's clock",
                crate::engine::time::human(Duration::from_secs(*ahead_s))
            ),
        }
    }
}

/// One inbox file as the owner found it.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// To obey; delete it with [`Inbox::remove`] once its command is journaled.
    Letter(Letter),
    /// Well formed but not to obey; delete it once the refusal is journaled.
    Refused { letter: Letter, refusal: Refusal },
    /// Not a letter (unreadable, malformed, a FIFO or link, too big): already moved
    /// aside to `aside`.
    SetAside {
        file: String,
        aside: PathBuf,
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub struct Inbox {
    dir: PathBuf,
}

impl Inbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Leaves a command for the owner; returns the letter's id, to wait for its answer.
    pub fn submit(&self, command: &Command, now: Time) -> Result<LetterId, StoreError> {
        let paper = Paper {
            version: LETTER_VERSION,
            command: Verb::of(command),
            agent: command.agent().clone(),
            from_pid: std::process::id(),
            sent: Some(now),
        };
        // Unique even for letters written in the same millisecond by one process: a
        // name that repeated would replace a letter not yet read.
        static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "{:020}-{}-{n:06}-{}",
            now.millis().max(0),
            std::process::id(),
            command.verb()
        );
        let id = LetterId(name);
        let bytes = serde_json::to_vec(&paper).map_err(|e| StoreError::Encode {
            path: self.dir.clone(),
            source: e,
        })?;
        file::write_atomic(&self.dir.join(format!("{id}.json")), &bytes)?;
        Ok(id)
    }

    /// Reads every waiting letter, oldest first. A file that is no letter is moved aside
    /// as `*.bad` at once, with the reason; letters stay until [`Inbox::remove`].
    pub fn take(&self, now: Time) -> Result<Vec<Taken>, StoreError> {
        let mut names: Vec<_> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&self.dir)(e)),
        };
        names.sort();
        let mut taken = Vec::new();
        for path in names {
            match read_letter(&path, now) {
                Ok(t) => taken.push(t),
                Err(reason) => {
                    let aside = path.with_extension("bad");
                    std::fs::rename(&path, &aside).map_err(StoreError::io(&path))?;
                    let file = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    taken.push(Taken::SetAside { file, aside, reason });
                }
            }
        }
        Ok(taken)
    }

    /// Whether any file waits in the inbox (cheap: no file is read).
    pub fn is_empty(&self) -> bool {
        std::fs::read_dir(&self.dir).map_or(true, |mut rd| {
            !rd.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))
        })
    }

    /// Deletes a letter that has been journaled (obeyed or refused).
    pub fn remove(&self, letter: &Letter) -> Result<(), StoreError> {
        match std::fs::remove_file(&letter.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::io(&letter.path)(e)),
            _ => Ok(()),
        }
    }
}

/// One inbox file as a letter, or why it is none.
fn read_letter(path: &Path, now: Time) -> Result<Taken, String> {
    // A letter is a few dozen bytes; a FIFO, a link or a huge file is not one.
    let bytes =
        read_regular(path, MAX_LETTER, Links::Refuse).map_err(|e| format!("cannot be read as a letter: {e}"))?;
    let paper: Paper = serde_json::from_slice(&bytes).map_err(|e| format!("is not a letter: {e}"))?;
    if !(1..=LETTER_VERSION).contains(&paper.version) {
        return Err(format!(
            "is a letter of version {}; this vigil reads 1 to {LETTER_VERSION}",
            paper.version
        ));
    }
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(LetterId::new)
        .ok_or("has a name that is no letter id (ASCII letters, digits, `-`, `_`)")?;
    let sent = match (paper.version, paper.sent) {
        (_, Some(t)) => t,
        // vigil 0.1 wrote no time in the letter, only in its name.
        (1, None) => id
            .stamp()
            .ok_or("says not when it was sent (no `sent`, no time in its name)")?,
        (_, None) => return Err("has no `sent` time".into()),
    };
    let letter = Letter {
        id,
        command: paper.command.to(paper.agent),
        sent,
        from_pid: paper.from_pid,
        path: path.to_owned(),
    };
    let age = now.since(sent);
    let ahead = sent.since(now);
    let refusal = if age > LETTER_TTL {
        Some(Refusal::Expired { age_s: age.as_secs() })
    } else if ahead > LETTER_SKEW {
        Some(Refusal::FromTheFuture {
            ahead_s: ahead.as_secs(),
        })
    } else {
        None
    };
    Ok(match refusal {
        Some(refusal) => Taken::Refused { letter, refusal },
        None => Taken::Letter(letter),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wall-clock instant for tests: 2026-11-13.
    const NOW: Time = Time::from_millis(1_795_000_000_000);

    fn name(n: &str) -> AgentName {
        AgentName::new(n).unwrap()
    }

    fn commands(taken: &[Taken]) -> Vec<Command> {
        taken
            .iter()
            .filter_map(|t| match t {
                Taken::Letter(l) => Some(l.command.clone()),
                _ => None,
            })
            .collect()
    }

    fn set_aside(taken: &[Taken]) -> Vec<&str> {
        taken
            .iter()
            .filter_map(|t| match t {
                Taken::SetAside { reason, .. } => Some(reason.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_letter_left_by_vigil_0_1_is_still_a_command_dated_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/inbox-letter.json");
        let sent = NOW.millis() - 5_000;
        std::fs::copy(fixture, dir.path().join(format!("{sent:020}-4242-stop.json"))).unwrap();
        let taken = Inbox::new(dir.path().to_owned()).take(NOW).unwrap();
        assert_eq!(commands(&taken), [Command::Stop(name("worker"))]);
        let Taken::Letter(l) = &taken[0] else { panic!() };
        assert_eq!((l.sent, l.from_pid), (Time::from_millis(sent), 4242));
    }

    #[test]
    fn a_letter_is_written_with_its_version_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let id = inbox.submit(&Command::Nudge(name("b")), NOW).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(format!("{id}.json"))).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 2, "command": "nudge", "agent": "b",
                "from_pid": std::process::id(), "sent": NOW.to_string()})
        );
        assert!(id.as_str().ends_with("-nudge"), "{id}");
    }

    #[test]
    fn unknown_verbs_fields_versions_and_bad_agent_names_are_set_aside_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = NOW.millis();
        let cases = [
            (
                r#"{"command":"explode","agent":"a","from_pid":1}"#,
                "unknown variant `explode`",
            ),
            (
                r#"{"command":"stop","agent":"a","from_pid":1,"shell":"rm -rf /"}"#,
                "unknown field `shell`",
            ),
            (
                r#"{"command":"stop","agent":"../../etc","from_pid":1}"#,
                "is not an agent name",
            ),
            (
                r#"{"version":3,"command":"stop","agent":"a","from_pid":1}"#,
                "version 3",
            ),
            (
                r#"{"version":2,"command":"stop","agent":"a","from_pid":1}"#,
                "no `sent`",
            ),
            (r#"{"command":"stop","agent":"a"}"#, "missing field `from_pid`"),
        ];
        for (i, (text, _)) in cases.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{stamp:020}-1-{i}.json")), text).unwrap();
        }
        let taken = Inbox::new(dir.path().to_owned()).take(NOW).unwrap();
        let reasons = set_aside(&taken);
        assert_eq!(reasons.len(), cases.len(), "{taken:?}");
        for ((_, want), got) in cases.iter().zip(reasons) {
            assert!(got.contains(want), "{got} lacks {want}");
        }
        for i in 0..cases.len() {
            assert!(dir.path().join(format!("{stamp:020}-1-{i}.bad")).exists());
        }
    }

    #[test]
    fn an_old_letter_or_one_from_the_future_is_refused_with_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let stop = Command::Stop(name("a"));
        inbox.submit(&stop, Time::from_millis(0)).unwrap();
        inbox.submit(&stop, NOW).unwrap();
        let old = Time::from_millis(NOW.millis() - 11 * 60 * 1000);
        inbox.submit(&stop, old).unwrap();
        inbox.submit(&stop, NOW.plus(Duration::from_secs(3600))).unwrap();
        let taken = inbox.take(NOW).unwrap();
        let refusals: Vec<Refusal> = taken
            .iter()
            .filter_map(|t| match t {
                Taken::Refused { refusal, .. } => Some(*refusal),
                _ => None,
            })
            .collect();
        assert_eq!(
            refusals,
            [
                Refusal::Expired {
                    age_s: NOW.millis() as u64 / 1000
                },
                Refusal::Expired { age_s: 660 },
                Refusal::FromTheFuture { ahead_s: 3600 },
            ]
        );
        assert_eq!(commands(&taken), [stop]);
        assert!(
            refusals[1].words().starts_with("expired: sent 11m ago"),
            "{}",
            refusals[1].words()
        );
    }

    #[test]
    fn letters_stay_until_removed_and_come_out_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let a = name("a");
        inbox
            .submit(&Command::Stop(a.clone()), NOW.plus(Duration::from_millis(2)))
            .unwrap();
        inbox
            .submit(&Command::Nudge(a.clone()), NOW.plus(Duration::from_millis(1)))
            .unwrap();
        std::fs::write(dir.path().join("zz.json"), "nonsense").unwrap();
        let taken = inbox.take(NOW).unwrap();
        assert_eq!(commands(&taken), [Command::Nudge(a.clone()), Command::Stop(a)]);
        assert_eq!(set_aside(&taken).len(), 1);
        assert_eq!(commands(&inbox.take(NOW).unwrap()).len(), 2, "not removed yet");
        for t in &taken {
            if let Taken::Letter(l) = t {
                inbox.remove(l).unwrap();
            }
        }
        assert!(inbox.take(NOW).unwrap().is_empty());
    }

    #[test]
    fn letters_written_in_the_same_millisecond_all_arrive_with_distinct_ids() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let names = ["a", "b", "c", "d"].map(name);
        let ids: std::collections::BTreeSet<_> = names
            .iter()
            .map(|n| inbox.submit(&Command::Up(n.clone()), NOW).unwrap())
            .collect();
        assert_eq!(ids.len(), 4);
        let taken = inbox.take(NOW).unwrap();
        assert_eq!(commands(&taken), names.map(Command::Up));
    }

    #[test]
    fn a_fifo_or_an_oversized_letter_is_moved_aside_without_blocking_or_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::new(dir.path().to_owned());
        let fifo = dir.path().join("x.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let padding = " ".repeat(300_000);
        std::fs::write(
            dir.path().join("y.json"),
            format!("{{\"command\": \"stop\", \"agent\": \"a\", \"from_pid\": 1{padding}}}"),
        )
        .unwrap();
        let taken = inbox.take(NOW).unwrap();
        let reasons = set_aside(&taken);
        assert_eq!(reasons.len(), 2, "{taken:?}");
        assert!(reasons[0].contains("a FIFO"), "{reasons:?}");
        assert!(reasons[1].contains("more than the 65536 allowed"), "{reasons:?}");
        assert!(dir.path().join("x.bad").exists() && dir.path().join("y.bad").exists());
    }

    /// Any bytes, and letters one field away from good, through `take`: never a panic,
    /// one outcome per file, good letters obeyed, everything else refused or set aside.
    mod props {
        use proptest::prelude::*;

        use super::*;

        /// One field of a letter: its JSON text (`None` leaves it out) and whether it is good.
        fn field(choices: &'static [(Option<&'static str>, bool)]) -> impl Strategy<Value = (Option<String>, bool)> {
            prop::sample::select(choices).prop_map(|(text, good)| (text.map(str::to_owned), good))
        }

        fn near_valid() -> impl Strategy<Value = (String, Expect)> {
            let version = field(&[
                (None, true),
                (Some("1"), true),
                (Some("2"), true),
                (Some("3"), false),
                (Some("\"2\""), false),
                (Some("-1"), false),
            ]);
            let verb = field(&[
                (Some("\"up\""), true),
                (Some("\"triage\""), true),
                (Some("\"explode\""), false),
                (Some("\"UP\""), false),
                (None, false),
                (Some("7"), false),
            ]);
            let agent = field(&[
                (Some("\"a\""), true),
                (Some("\"back-end_2\""), true),
                (Some("\"../../etc\""), false),
                (Some("\"\""), false),
                (Some("\"a b\""), false),
                (Some("null"), false),
            ]);
            let pid = field(&[
                (Some("4242"), true),
                (Some("0"), true),
                (Some("-1"), false),
                (Some("4294967296"), false),
                (Some("\"1\""), false),
                (None, false),
            ]);
            let sent = prop::sample::select(vec![
                (None, Sent::Absent),
                (Some(format!("{:?}", NOW.to_string())), Sent::Fresh),
                (Some("\"1970-01-01T00:00:00Z\"".to_owned()), Sent::Refused),
                (
                    Some(format!("{:?}", NOW.plus(Duration::from_secs(7200)).to_string())),
                    Sent::Refused,
                ),
                (Some("\"yesterday\"".to_owned()), Sent::Bad),
                (Some("1795000000000".to_owned()), Sent::Bad),
            ]);
            let extra = prop::sample::select(vec![None, Some("\"shell\": \"rm -rf /\"")]);
            (version, verb, agent, pid, sent, extra).prop_map(|(version, verb, agent, pid, sent, extra)| {
                let mut parts = Vec::new();
                for (key, (text, _)) in [
                    ("version", &version),
                    ("command", &verb),
                    ("agent", &agent),
                    ("from_pid", &pid),
                ] {
                    if let Some(t) = text {
                        parts.push(format!("\"{key}\": {t}"));
                    }
                }
                if let Some(t) = &sent.0 {
                    parts.push(format!("\"sent\": {t}"));
                }
                parts.extend(extra.map(str::to_owned));
                let v2 = version.0.as_deref() == Some("2");
                let shape = version.1 && verb.1 && agent.1 && pid.1 && extra.is_none();
                let expect = match (shape, sent.1) {
                    (false, _) | (_, Sent::Bad) => Expect::SetAside,
                    (true, Sent::Absent) if v2 => Expect::SetAside,
                    (true, Sent::Refused) => Expect::Refused,
                    (true, Sent::Absent | Sent::Fresh) => Expect::Obeyed,
                };
                (format!("{{{}}}", parts.join(", ")), expect)
            })
        }

        #[derive(Clone, Copy, Debug, PartialEq)]
        enum Sent {
            Absent,
            Fresh,
            Refused,
            Bad,
        }

        #[derive(Clone, Copy, Debug, PartialEq)]
        enum Expect {
            Obeyed,
            Refused,
            SetAside,
        }

        fn expect_of(t: &Taken) -> Expect {
            match t {
                Taken::Letter(_) => Expect::Obeyed,
                Taken::Refused { .. } => Expect::Refused,
                Taken::SetAside { .. } => Expect::SetAside,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            #[test]
            fn any_bytes_and_near_letters_are_obeyed_refused_or_set_aside_never_a_panic(
                noise in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..4),
                letters in prop::collection::vec(near_valid(), 1..6),
                cut in any::<prop::sample::Index>(),
            ) {
                let dir = tempfile::tempdir().unwrap();
                // Named a second before NOW, so a letter without `sent` is fresh by its name.
                let stamp = NOW.millis() - 1000;
                let mut want = Vec::new();
                for (i, (text, expect)) in letters.iter().enumerate() {
                    std::fs::write(dir.path().join(format!("{stamp:020}-1-{i:06}-x.json")), text).unwrap();
                    want.push(*expect);
                }
                for (i, bytes) in noise.iter().enumerate() {
                    std::fs::write(dir.path().join(format!("{stamp:020}-2-{i:06}-x.json")), bytes).unwrap();
                }
                // And one good letter cut short anywhere: never a panic, at most a letter.
                let good = br#"{"version":2,"command":"stop","agent":"a","from_pid":1}"#;
                std::fs::write(dir.path().join(format!("{stamp:020}-3-000000-x.json")), &good[..cut.index(good.len())]).unwrap();
                let taken = Inbox::new(dir.path().to_owned()).take(NOW).unwrap();
                prop_assert_eq!(taken.len(), letters.len() + noise.len() + 1);
                let got: Vec<Expect> = taken[..letters.len()].iter().map(expect_of).collect();
                prop_assert_eq!(got, want, "{:?}", letters);
                for t in &taken[letters.len()..] {
                    prop_assert_eq!(expect_of(t), Expect::SetAside);
                }
                let left = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json")).count();
                let letters_left = taken.iter().filter(|t| !matches!(t, Taken::SetAside { .. })).count();
                prop_assert_eq!(left, letters_left, "set aside ones were moved");
            }
        }
    }
}
