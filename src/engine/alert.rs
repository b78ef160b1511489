//! What kind of "a human is needed" moment an [`Alert`] is, and whether a notice opens
//! its episode or says it ended ([`Episode`]). Types only: the engine raises them in
//! `Action::Notify`, the supervisor and `vigil check` raise the owner-level ones, the
//! notifier delivers them. No IO here.

use serde::{Deserialize, Serialize};

/// Why a human is needed. The snake-case name is the `event` of the notification JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alert {
    /// A trust, sign-in or permission dialog is on screen.
    Waiting,
    /// A limit that waiting will not lift (a plan's quota, a billing stop).
    LimitNoReset,
    /// Crashes came too fast: restarts are held for the crash cooldown.
    CrashLoop,
    /// The fleet-wide restart cap was reached: vigil only observes for now.
    FleetCapped,
    /// An agent was terminated after triage (or at its stale timeout) and replaced.
    Terminated,
    /// An agent could not be started.
    SpawnFailed,
    /// The owner was replaced by the external watchdog (`vigil check`).
    OwnerReplaced,
    /// tmux's server was lost (or the host rebooted): the fleet went with it.
    HostFailure,
    /// The state dir cannot be written: vigil observes but takes no action.
    Degraded,
}

impl Alert {
    pub const ALL: [Alert; 9] = [
        Alert::Waiting,
        Alert::LimitNoReset,
        Alert::CrashLoop,
        Alert::FleetCapped,
        Alert::Terminated,
        Alert::SpawnFailed,
        Alert::OwnerReplaced,
        Alert::HostFailure,
        Alert::Degraded,
    ];

    /// Its name as the config's `events` and the notification JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Alert::Waiting => "waiting",
            Alert::LimitNoReset => "limit_no_reset",
            Alert::CrashLoop => "crash_loop",
            Alert::FleetCapped => "fleet_capped",
            Alert::Terminated => "terminated",
            Alert::SpawnFailed => "spawn_failed",
            Alert::OwnerReplaced => "owner_replaced",
            Alert::HostFailure => "host_failure",
            Alert::Degraded => "degraded",
        }
    }

    pub fn parse(word: &str) -> Option<Alert> {
        Alert::ALL.into_iter().find(|a| a.as_str() == word)
    }

    /// Whether the condition lasts (and so has an end worth a `resolved`), rather than
    /// being one moment (a termination, a failed start, a replaced owner).
    pub fn lasts(self) -> bool {
        match self {
            Alert::Waiting | Alert::LimitNoReset | Alert::CrashLoop | Alert::FleetCapped | Alert::Degraded => true,
            Alert::Terminated | Alert::SpawnFailed | Alert::OwnerReplaced | Alert::HostFailure => false,
        }
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a notice opens an episode of its alert or says that it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Episode {
    /// The condition began (one notice per episode, not one per poll).
    #[default]
    Raised,
    /// The condition cleared.
    Resolved,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_parses_back_from_its_name() {
        for a in Alert::ALL {
            assert_eq!(Alert::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(a.as_str()));
        }
        assert_eq!(Alert::parse("resolved"), None);
    }
}
