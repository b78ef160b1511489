//! `vigil.toml` exactly as written: serde structs with spans, strict about unknown keys
//! and types. Meaning (paths, presets, defaults) is given in `config/mod.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::preset::Sources;
use crate::engine::RestartPolicy;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub vigil: RawVigil,
    #[serde(default)]
    pub defaults: Tuning,
    #[serde(default)]
    pub agent: Vec<RawAgent>,
    pub notify: Option<RawNotify>,
}

/// `[notify]` exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub command: Option<Spanned<RawCommand>>,
    pub timeout: Option<Spanned<Dur>>,
    pub webhook: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub desktop: Option<Spanned<bool>>,
    pub tmux: Option<Spanned<bool>>,
    pub events: Option<Spanned<Vec<String>>>,
    pub max_per_minute: Option<Spanned<Count>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVigil {
    pub poll_interval: Option<Spanned<Dur>>,
    pub socket: Option<Spanned<String>>,
    pub tmux_client: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub journal_max_mb: Option<Spanned<Count>>,
    pub journal_keep: Option<Spanned<Count>>,
    pub max_restarts_per_hour: Option<Spanned<Count>>,
    pub metrics_file: Option<Spanned<String>>,
    pub max_load_per_core: Option<Spanned<Number>>,
    pub min_free_memory: Option<Spanned<Bytes>>,
    pub max_concurrent_starts: Option<Spanned<Count>>,
}

/// The tuning keys, named once: `[defaults]` is exactly these, and every `[[agent]]`
/// has them too (serde cannot flatten with `deny_unknown_fields`, hence the macro).
macro_rules! tuning_keys {
    ($($field:ident: $ty:ty,)*) => {
        /// `[defaults]`, or the tuning keys of one `[[agent]]`.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Tuning {
            $(pub $field: Option<Spanned<$ty>>,)*
        }

        impl Tuning {
            /// Keys set here win; unset ones come from `under`.
            pub fn over(self, under: Tuning) -> Tuning {
                Tuning { $($field: self.$field.or(under.$field),)* }
            }
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawAgent {
            pub name: Spanned<String>,
            pub command: Spanned<RawCommand>,
            pub cwd: Option<Spanned<String>>,
            pub preset: Option<Spanned<String>>,
            #[serde(default)]
            pub env: BTreeMap<String, Spanned<String>>,
            pub prompt: Option<Spanned<Sources>>,
            pub busy: Option<Spanned<Sources>>,
            pub waiting: Option<Spanned<Sources>>,
            pub rate_limit: Option<Spanned<Sources>>,
            pub volatile: Option<Spanned<Sources>>,
            pub process: Option<Spanned<String>>,
            pub menus: Option<Spanned<crate::engine::screen::MenuRule>>,
            $(pub $field: Option<Spanned<$ty>>,)*
        }

        impl RawAgent {
            pub fn tuning(&self) -> Tuning {
                Tuning { $($field: self.$field.clone(),)* }
            }
        }
    };
}

tuning_keys! {
    restart: RestartPolicy,
    tail_lines: Count,
    idle_checks: Count,
    stale_after: Dur,
    rate_limit_lines: Count,
    rate_limit_cooldown: Dur,
    crash_window: Dur,
    crash_max: Count,
    crash_cooldown: Dur,
    nudge: String,
    resume: String,
    rate_limit_margin: Dur,
    warn_after: Dur,
    nudge_after: Dur,
    triage_after: Dur,
    stable_after: Dur,
    triage: RawCommand,
    triage_timeout: Dur,
    handoff: String,
    busy_cpu: Count,
    signals: bool,
    signal_fresh: Dur,
}

/// A command: an argv list run as is, or a string run with `sh -c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawCommand {
    Shell(String),
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawCommand;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command: an array of strings (program and arguments) or a string run with `sh -c`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawCommand, E> {
                Ok(RawCommand::Shell(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawCommand, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(RawCommand::Argv(argv))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A whole number (line counts, check counts), range-checked where it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub i64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A number, whole or not (`2`, `1.5`), range-checked where it is used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number such as 2 or 1.5")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// An amount of memory: whole bytes, or a string with a unit (`"512MiB"`, `"2GiB"`,
/// `"1.5GB"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl Bytes {
    pub fn parse(text: &str) -> Result<u64, String> {
        let expected = "expected bytes, or a size like \"512MiB\", \"2GiB\" or \"1.5GB\"";
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let n: f64 = match number.parse() {
            Ok(n) if !number.is_empty() => n,
            _ => return Err(format!("invalid size \"{text}\"; {expected}")),
        };
        let scale: f64 = match unit.trim() {
            "" | "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            "KB" | "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            other => return Err(format!("unknown unit \"{other}\" in size \"{text}\"; {expected}")),
        };
        let bytes = n * scale;
        if !bytes.is_finite() || bytes >= 2f64.powi(63) {
            return Err(format!("size \"{text}\" is too large"));
        }
        Ok(bytes.round() as u64)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: whole bytes, or a string like \"512MiB\" or \"2GiB\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Bytes, E> {
                u64::try_from(v)
                    .map(Bytes)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                Bytes::parse(v).map(Bytes).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A duration: integer seconds, or a string of number-unit pairs (`"90s"`, `"5m"`,
/// `"1h30m"`, `"250ms"`, `"1d"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// Longest duration accepted anywhere: beyond this a value is surely a mistake.
const DUR_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

impl Dur {
    pub fn parse(text: &str) -> Result<Duration, String> {
        let expected = "expected a duration like \"90s\", \"5m\", \"1h30m\" or \"250ms\"";
        let mut total = Duration::ZERO;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(format!("empty duration; {expected}"));
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("invalid duration \"{text}\"; {expected}"));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("duration \"{text}\" is too long"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ms" => Duration::from_millis(n),
                "s" | "" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                "d" => Duration::from_secs(n.saturating_mul(86_400)),
                other => return Err(format!("unknown unit \"{other}\" in duration \"{text}\"; {expected}")),
            };
            rest = &rest[unit_len..];
            total = total.saturating_add(unit);
        }
        if total > DUR_MAX {
            return Err(format!("duration \"{text}\" is longer than a year"));
        }
        Ok(total)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration: whole seconds, or a string like \"90s\", \"5m\", \"1h\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                let secs = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
                let d = Duration::from_secs(secs);
                if d > DUR_MAX {
                    return Err(E::custom("duration is longer than a year"));
                }
                Ok(Dur(d))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(Dur::parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(Dur::parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(Dur::parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(Dur::parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(Dur::parse("2"), Ok(Duration::from_secs(2)));
        assert!(Dur::parse("5 minutes").unwrap_err().contains("unknown unit"));
        assert!(Dur::parse("m5").is_err());
        assert!(Dur::parse("").is_err());
        assert!(Dur::parse("400d").unwrap_err().contains("longer than a year"));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(Bytes::parse("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(Bytes::parse("2GiB"), Ok(2 << 30));
        assert_eq!(Bytes::parse("1.5GB"), Ok(1_500_000_000));
        assert_eq!(Bytes::parse("4096"), Ok(4096));
        assert!(Bytes::parse("512 megs").unwrap_err().contains("unknown unit"));
        assert!(Bytes::parse("MiB").is_err());
        assert!(Bytes::parse("1.2.3MiB").is_err());
        assert!(Bytes::parse("99999999999TiB").unwrap_err().contains("too large"));
    }
}
