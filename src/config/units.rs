//! Human-friendly units in the config: durations like `5s` or `250ms`
//! (parsed by `humantime`, the de-facto crate for this) and sizes like
//! `1MiB` (parsed by `bytesize`). Both deserialize from strings and fail with a
//! message that names the accepted form.

use serde::{de, Deserialize, Deserializer};

use std::time::Duration;

/// A duration written as `500ms`, `5s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfDuration(pub Duration);

// Errors are raised inside the visitor so serde_yaml attaches the value's own
// position and path (an error after deserializing would get the parent's).
struct DurationVisitor;

impl de::Visitor<'_> for DurationVisitor {
    type Value = ConfDuration;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration with a unit, e.g. \"500ms\", \"5s\", \"1m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfDuration, E> {
        parse_duration(v).map(ConfDuration).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfDuration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfDuration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConfDuration, E> {
        self.visit_str(&v.to_string())
    }
}

impl<'de> Deserialize<'de> for ConfDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
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

struct SizeVisitor;

impl de::Visitor<'_> for SizeVisitor {
    type Value = ConfSize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a size, e.g. 65536, \"64KiB\" or \"1MiB\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfSize, E> {
        parse_size(v).map(ConfSize).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfSize, E> {
        Ok(ConfSize(v))
    }
}

impl<'de> Deserialize<'de> for ConfSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor)
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
