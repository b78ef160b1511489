//! The wall clock, read in one place. The engine never reads it: the supervisor and the
//! faces read it here and hand the time in as an argument.

use crate::engine::Time;

/// The time now, to the millisecond.
pub fn now() -> Time {
    Time::from_millis(jiff::Timestamp::now().as_millisecond())
}
