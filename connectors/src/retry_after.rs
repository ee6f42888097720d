//! `Retry-After` (RFC 9110 §10.2.3), read and kept within bounds.
//!
//! A server's `Retry-After` is advice, not an order: `0` or a date already
//! past would make a client ask again at once, in a loop, and a value of a
//! year (or of `u64::MAX` seconds) would stop it for good or overflow the
//! clock arithmetic behind the wait. Every client of the hub reads the
//! header here and waits within [`RetryAfterBounds`].

use std::time::{Duration, SystemTime};

/// The shortest and longest wait a `Retry-After` can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfterBounds {
    pub min: Duration,
    pub max: Duration,
}

impl Default for RetryAfterBounds {
    /// One second to one hour: never a busy loop, never more than an hour
    /// without asking again (the platform's maintenance windows are about
    /// that long; a longer answer is more likely a mistake than a plan).
    fn default() -> Self {
        RetryAfterBounds { min: Duration::from_secs(1), max: Duration::from_secs(3600) }
    }
}

impl RetryAfterBounds {
    /// The wait `value` asks for, within the bounds; `None` when the value
    /// is neither seconds nor an HTTP date (the caller then uses its own
    /// backoff).
    pub fn wait(&self, value: &str, now: SystemTime) -> Option<Duration> {
        parse(value, now).map(|asked| self.clamp(asked))
    }

    /// `asked`, raised to `min` and lowered to `max`. Should the bounds be
    /// given the wrong way round, `max` wins: waiting too little is safer
    /// than waiting for ever.
    pub fn clamp(&self, asked: Duration) -> Duration {
        asked.max(self.min).min(self.max)
    }
}

/// `Retry-After` as seconds or as an HTTP date, unbounded. A past date is
/// zero. Prefer [`RetryAfterBounds::wait`].
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Seconds too large for u64 are "very long", not garbage.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::MAX);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_dates_and_garbage() {
        let now = SystemTime::now();
        assert_eq!(parse("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999999", now), Some(Duration::MAX));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        let d = parse(&later, now).unwrap();
        assert!(d > Duration::from_secs(118) && d <= Duration::from_secs(120), "{d:?}");
        assert_eq!(parse("Thu, 01 Jan 2015 00:00:00 GMT", now), Some(Duration::ZERO));
        for bad in ["soon", "", "-5", "1.5"] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn zero_past_and_huge_stay_within_bounds() {
        let b = RetryAfterBounds::default();
        let now = SystemTime::now();
        assert_eq!(b.wait("0", now), Some(Duration::from_secs(1)));
        assert_eq!(b.wait("Thu, 01 Jan 2015 00:00:00 GMT", now), Some(Duration::from_secs(1)));
        assert_eq!(b.wait("31536000", now), Some(Duration::from_secs(3600)));
        assert_eq!(b.wait(&u64::MAX.to_string(), now), Some(Duration::from_secs(3600)));
        assert_eq!(b.wait("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(Duration::from_secs(3600)));
        assert_eq!(b.wait("30", now), Some(Duration::from_secs(30)));
        assert_eq!(b.wait("soon", now), None);
        let upside_down = RetryAfterBounds { min: Duration::from_secs(10), max: Duration::from_secs(2) };
        assert_eq!(upside_down.clamp(Duration::ZERO), Duration::from_secs(2));
    }
}
