//! Instants in time as the domain sees them: UTC microseconds since the Unix
//! epoch. The domain never asks what time it is; callers pass `now` in.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A UTC instant with microsecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_microsecond(self.0) {
            Ok(ts) => write!(f, "{ts}"),
            Err(_) => write!(f, "@{}us", self.0),
        }
    }
}

/// Why a text is not a timestamp.
#[derive(Debug, thiserror::Error)]
#[error("not an RFC 3339 timestamp with offset (e.g. 2026-11-27T09:30:00Z): {0}")]
pub struct TimestampError(String);

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let ts: jiff::Timestamp = text.parse().map_err(|e: jiff::Error| TimestampError(e.to_string()))?;
        Ok(Self(ts.as_microsecond()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339_text() {
        let ts: Timestamp = "2026-11-27T09:30:00.123456+01:00".parse().expect("valid");
        assert_eq!(ts.to_string(), "2026-11-27T08:30:00.123456Z");
        assert_eq!(ts.to_string().parse::<Timestamp>().expect("valid"), ts);
    }

    #[test]
    fn timestamps_without_offset_are_rejected() {
        assert!("2026-11-27T09:30:00".parse::<Timestamp>().is_err());
    }
}
