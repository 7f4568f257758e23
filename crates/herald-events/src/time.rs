//! Timestamps: RFC 3339 with a UTC offset, as RFC 5423 §5 asks ("expressed in local time and
//! contain the offset from UTC").
//!
//! Herald prints milliseconds, the precision of its clock readings; a timestamp read from
//! elsewhere keeps its own sub-second precision when printed again, so nothing is rounded away.

use chrono::{DateTime, FixedOffset, Local, SecondsFormat, Timelike, Utc};
use std::fmt;
use std::str::FromStr;

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time with offset: {0}")]
pub struct TimestampError(String);

/// A point in time with the UTC offset it was observed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<FixedOffset>);

impl Timestamp {
    /// Now, in the machine's local time zone, truncated to milliseconds.
    pub fn now() -> Timestamp {
        let now = Local::now().fixed_offset();
        Timestamp::from_datetime(now)
    }

    /// Wraps a date-time, truncating it to milliseconds as Herald's own timestamps are.
    pub fn from_datetime(dt: DateTime<FixedOffset>) -> Timestamp {
        let ms = dt.timestamp_subsec_millis();
        Timestamp(dt.with_nanosecond(ms * 1_000_000).unwrap_or(dt))
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Builds a timestamp from milliseconds since the epoch, shown at the given offset in seconds.
    pub fn from_unix_millis(ms: i64, offset_seconds: i32) -> Option<Timestamp> {
        let offset = FixedOffset::east_opt(offset_seconds)?;
        let utc = DateTime::<Utc>::from_timestamp_millis(ms)?;
        Some(Timestamp(utc.with_timezone(&offset)))
    }

    /// The underlying date-time.
    pub fn as_datetime(&self) -> &DateTime<FixedOffset> {
        &self.0
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(s)
            .map(Timestamp)
            .map_err(|_| TimestampError(s.to_owned()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = if self.0.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
            SecondsFormat::Millis
        } else {
            SecondsFormat::AutoSi
        };
        f.write_str(&self.0.to_rfc3339_opts(format, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_milliseconds_and_offset() {
        let t: Timestamp = "2026-11-23T08:15:02.417+01:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-23T08:15:02.417+01:00");
        let z: Timestamp = "2026-11-23T08:58:20Z".parse().unwrap();
        assert_eq!(z.to_string(), "2026-11-23T08:58:20.000+00:00");
    }

    #[test]
    fn keeps_foreign_precision() {
        let t: Timestamp = "2026-11-23T08:15:02.123456-05:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-23T08:15:02.123456-05:00");
    }

    #[test]
    fn rejects_times_without_offset() {
        assert!("2026-11-23T08:15:02".parse::<Timestamp>().is_err());
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!("1795428000".parse::<Timestamp>().is_err());
    }

    #[test]
    fn now_is_millisecond_precise() {
        let t = Timestamp::now();
        assert!(
            t.as_datetime()
                .timestamp_subsec_nanos()
                .is_multiple_of(1_000_000)
        );
        let back: Timestamp = t.to_string().parse().unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn from_unix_millis_keeps_offset() {
        let t = Timestamp::from_unix_millis(1_795_428_000_417, 3600).unwrap();
        assert_eq!(t.to_string(), "2026-11-23T11:00:00.417+01:00");
    }
}
