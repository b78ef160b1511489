//! The wall clock, read in one place. The engine never reads it: the supervisor and the
//! faces read it here and hand the time in as an argument.

use crate::engine::Time;

/// The time now, to the millisecond.
pub fn now() -> Time {
    Time::from_millis(jiff::Timestamp::now().as_millisecond())
}

impl Time {
    /// The time of day in the system's zone, for the faces (CLI, TUI). Defined here,
    /// beside the wall clock, because it reads the machine's zone, which the engine
    /// never does (it is handed a zone).
    pub fn clock(self) -> String {
        self.clock_in(&jiff::tz::TimeZone::system())
    }
}
