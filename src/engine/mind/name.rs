//! Who an agent is: its configured name ([`AgentName`], held to the config's rule
//! wherever it is read from) and which run of it ([`Incarnation`]). Plain data, no IO;
//! the leaf every record of the mind, the signals and the resets name agents by.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A configured agent's name; also the suffix of its tmux session and its file names.
/// Read from a file (a letter, the snapshot, the journal) it is held to the same rule as
/// in the config, so `../../etc` is never a name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AgentName(String);

impl<'de> Deserialize<'de> for AgentName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        AgentName::new(&text).ok_or_else(|| {
            let shown: String = text.chars().take(2 * AgentName::MAX_LEN).collect();
            serde::de::Error::custom(format!(
                "{shown:?} is not an agent name (1 to {} ASCII letters, digits, `-` or `_`)",
                AgentName::MAX_LEN
            ))
        })
    }
}

impl AgentName {
    /// Longest name accepted; tmux and file systems cope with far more, humans do not.
    pub const MAX_LEN: usize = 64;

    /// A name usable as a tmux session name and a file name: ASCII letters, digits, `-`, `_`.
    pub fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One run of an agent in one tmux session; a restart makes the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Incarnation(pub u32);

impl Incarnation {
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
