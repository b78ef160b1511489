//! Host pressure before a start (seed 002): what the supervisor measured (load per
//! core, available memory) and how many agents are starting at once, against the
//! `[vigil]` thresholds. Over one, a start is deferred, not failed: the agent keeps its
//! record with the [`Deferral`] and is started when pressure clears. No IO here: the
//! supervisor measures, the engine decides.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::time::Time;

/// A load figure in hundredths (`250` is 2.5), so that facts compare exactly; written
/// as a plain number (`2.5`) in files and JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Centi(pub u32);

impl Centi {
    /// From a float, rounded; negative or not a number is 0, past the range is the max.
    pub fn from_f64(v: f64) -> Self {
        if v.is_nan() || v <= 0.0 {
            return Self(0);
        }
        let c = (v * 100.0).round();
        Self(if c >= f64::from(u32::MAX) { u32::MAX } else { c as u32 })
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for Centi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Centi {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Centi {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d).map(Self::from_f64)
    }
}

/// What the host showed just before this step; `None` where it could not be read
/// (then that threshold does not hold a start back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    /// The one-minute load average divided by the cores vigil may use.
    pub load_per_core: Option<Centi>,
    /// Memory available for new work (`MemAvailable`), in bytes.
    pub free_memory: Option<u64>,
}

/// The `[vigil]` thresholds a start must pass; `None` is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartLimits {
    pub max_load_per_core: Option<Centi>,
    pub min_free_memory: Option<u64>,
    /// Agents starting at once: started within the last minute and not yet showing
    /// output, plus the starts decided in the same pass.
    pub max_concurrent_starts: Option<u32>,
}

/// Defaults that never hold back a normal laptop: a load of 20 per core (a shared
/// 2-core build box peaks near 10), 64 MiB free and 16 agents starting at once are a
/// host already in trouble.
impl Default for StartLimits {
    fn default() -> Self {
        Self {
            max_load_per_core: Some(Centi(2000)),
            min_free_memory: Some(64 * 1024 * 1024),
            max_concurrent_starts: Some(16),
        }
    }
}

/// Which threshold held a start back, with the measured figure and the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pressured {
    Load {
        load_per_core: Centi,
        max_load_per_core: Centi,
    },
    Memory {
        free_memory: u64,
        min_free_memory: u64,
    },
    Starts {
        starting: u32,
        max_concurrent_starts: u32,
    },
}

impl Pressured {
    /// In words: "load 3.10 per core, over max_load_per_core 2.00".
    pub fn words(&self) -> String {
        match self {
            Pressured::Load {
                load_per_core,
                max_load_per_core,
            } => format!("load {load_per_core} per core, over max_load_per_core {max_load_per_core}"),
            Pressured::Memory {
                free_memory,
                min_free_memory,
            } => format!(
                "{} of memory available, under min_free_memory {}",
                bytes(*free_memory),
                bytes(*min_free_memory)
            ),
            Pressured::Starts {
                starting,
                max_concurrent_starts,
            } => format!("{starting} agents starting at once, max_concurrent_starts {max_concurrent_starts}"),
        }
    }
}

/// A start decided but held back by host pressure; kept in the record (and so in the
/// snapshot) until the start is carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferral {
    /// When the start was first deferred.
    pub since: Time,
    /// What held it back at the last try.
    pub cause: Pressured,
    /// Why it was to start ("first start", "restart after …").
    pub start: String,
}

/// The first threshold that `pressure` and `starting` (agents starting at once, this
/// one included) cross; `None` when the start may go ahead.
pub fn judge(limits: &StartLimits, pressure: &Pressure, starting: u32) -> Option<Pressured> {
    if let (Some(max), Some(load)) = (limits.max_load_per_core, pressure.load_per_core)
        && load > max
    {
        return Some(Pressured::Load {
            load_per_core: load,
            max_load_per_core: max,
        });
    }
    if let (Some(min), Some(free)) = (limits.min_free_memory, pressure.free_memory)
        && free < min
    {
        return Some(Pressured::Memory {
            free_memory: free,
            min_free_memory: min,
        });
    }
    match limits.max_concurrent_starts {
        Some(max) if starting > max => Some(Pressured::Starts {
            starting,
            max_concurrent_starts: max,
        }),
        _ => None,
    }
}

/// Bytes for people: "512 MiB", "3.2 GiB", "1000.0 TiB".
pub fn bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    const TIB: u64 = 1024 * GIB;
    if n >= TIB {
        format!("{}.{} TiB", n / TIB, (n % TIB) * 10 / TIB)
    } else if n >= GIB {
        format!("{}.{} GiB", n / GIB, (n % GIB) * 10 / GIB)
    } else if n >= MIB {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_threshold_crossed_is_the_reason_and_unknown_figures_hold_nothing() {
        let limits = StartLimits {
            max_load_per_core: Some(Centi(200)),
            min_free_memory: Some(512 * 1024 * 1024),
            max_concurrent_starts: Some(2),
        };
        let calm = Pressure {
            load_per_core: Some(Centi(50)),
            free_memory: Some(8 << 30),
        };
        assert_eq!(judge(&limits, &calm, 2), None);
        let loaded = Pressure {
            load_per_core: Some(Centi(310)),
            ..calm
        };
        let why = judge(&limits, &loaded, 1).unwrap();
        assert_eq!(why.words(), "load 3.10 per core, over max_load_per_core 2.00");
        let short = Pressure {
            free_memory: Some(100 * 1024 * 1024),
            ..calm
        };
        assert_eq!(
            judge(&limits, &short, 1).unwrap().words(),
            "100 MiB of memory available, under min_free_memory 512 MiB"
        );
        assert!(matches!(
            judge(&limits, &calm, 3),
            Some(Pressured::Starts { starting: 3, .. })
        ));
        assert_eq!(judge(&limits, &Pressure::default(), 1), None, "unread: no hold");
    }

    #[test]
    fn load_figures_are_plain_numbers_on_the_wire() {
        let json = serde_json::to_string(&Centi::from_f64(2.5)).unwrap();
        assert_eq!(json, "2.5");
        assert_eq!(serde_json::from_str::<Centi>("3.104").unwrap(), Centi(310));
        assert_eq!(Centi::from_f64(-1.0), Centi(0));
        assert_eq!(Centi::from_f64(f64::NAN), Centi(0));
    }
}
