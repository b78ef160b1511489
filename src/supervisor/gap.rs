//! Noticing time that lies, between two passes that reach the engine (or between the
//! previous owner's last heartbeat and this owner's first pass): the clocks read at
//! each are compared by [`engine::gap::between`], and what it finds goes to the engine
//! as [`Inputs::gap`](crate::engine::Inputs) and to the journal once, for the fleet.
//! Measures only; what a gap means is the engine's to decide.

use crate::adapters::clock;
use crate::adapters::tmux::Tmux;
use crate::engine::gap::{self, Gap, Reading, Since};
use crate::store::{Heartbeat, Role, Store};

use super::Supervisor;

/// The previous owner's last heartbeat as a reading: its steady clocks count only when
/// it ran in this very boot.
pub(super) fn last_owner(store: &Store) -> Option<(Reading, Since)> {
    let Heartbeat {
        t, steady, boot, role, ..
    } = store.heartbeat()?;
    let same_boot = boot.is_some() && boot.as_deref() == clock::boot_id();
    let reading = Reading {
        wall: t,
        steady: steady.filter(|_| same_boot),
    };
    let since = if role == Some(Role::Tick) {
        Since::LastTick
    } else {
        Since::LastOwner
    };
    Some((reading, since))
}

impl<T: Tmux> Supervisor<T> {
    /// What lay between the last reading the engine saw and `now`, which becomes the
    /// last. Called only when a step follows, so a pass that could not observe tmux
    /// leaves its time to be counted by the next one.
    pub(super) fn gap_to(&mut self, now: Reading) -> Option<Gap> {
        let (before, since) = self.before.replace((now, Since::LastPass))?;
        gap::between(&before, &now, self.config.poll_interval, since)
    }
}
