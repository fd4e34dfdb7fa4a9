//! Human-friendly units in the config: durations like `5s` or `250ms`
//! (parsed by `humantime`, the de-facto crate for this) and sizes like
//! `1MiB` (parsed by `bytesize`). Both deserialize from strings and fail with a
//! message that names the accepted form.

use serde::{de, Deserialize, Deserializer};
use std::time::Duration;

/// A duration written as `500ms`, `5s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(ConfDuration).map_err(de::Error::custom)
    }
}

/// Parses `5s`, `250ms`, `1m30s`; a bare number is rejected so units are never guessed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); use a unit, e.g. \"500ms\", \"5s\", \"1m\""))
}

/// A size written as `512`, `64KiB`, `1MiB`, `2MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfSize(pub u64);

impl<'de> Deserialize<'de> for ConfSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(ConfSize(n)),
            Raw::Text(s) => parse_size(&s).map(ConfSize).map_err(de::Error::custom),
        }
    }
}

/// Parses a byte size with an optional unit (`KiB`, `MiB`, `KB`, ...).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("invalid size {s:?} ({e}); use e.g. \"64KiB\" or \"1MiB\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert!(parse_size("lots").is_err());
    }
}
