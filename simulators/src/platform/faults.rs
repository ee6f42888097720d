//! Injected faults: what can go wrong on the platform side, and the per-request
//! dice rolls that decide whether it goes wrong this time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Faults the simulated platform injects. All rates are shares in `0.0..=1.0`
/// (values outside that range behave as the nearest bound, NaN as `0.0`).
///
/// `#[serde(default)]` lets tools send only the fields they care about to
/// `PUT /sim/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share of requests answered `500`.
    pub error_rate: f64,
    /// Milliseconds added to every request.
    pub latency_ms: u64,
    /// Share of requests that take `slow_ms` more.
    pub slow_rate: f64,
    /// Extra milliseconds for a slow request.
    pub slow_ms: u64,
    /// Share of requests answered `429` with `Retry-After`.
    pub throttle_rate: f64,
    /// `Retry-After` seconds for a `429`; `0` means 1.
    pub retry_after_secs: u64,
    /// Send `Retry-After` as an HTTP date instead of seconds.
    pub retry_after_http_date: bool,
    /// Answer `503` (without `Retry-After`) inside these windows.
    pub outages: Vec<Window>,
    /// Answer `401` inside these windows, as if the token had been revoked.
    pub unauthorized: Vec<Window>,
    /// Share of new idempotency keys answered `422`; the answer is remembered
    /// with the key like any other validation failure.
    pub reject_rate: f64,
    /// `422` for any ticket whose title contains this text.
    pub reject_title_contains: Option<String>,
    /// Other answers by title: the platform's remaining 4xx and 5xx (404,
    /// 405, 410, 413…), given before the key is remembered, as a gateway or
    /// web server in front of the platform would.
    pub answer_by_title: Vec<TitleAnswer>,
    /// The exact `Retry-After` value of a `429` (`"0"`, a past date, a year),
    /// instead of `retry_after_secs`.
    pub retry_after_raw: Option<String>,
}

/// `status` for any ticket whose title contains `title_contains`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TitleAnswer {
    pub title_contains: String,
    pub status: u16,
}

/// A span of time, relative to when the `PlatformSim` was created, so that a
/// test can script "down from second 10 to second 40" before starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: u64,
    pub duration_ms: u64,
}

impl Window {
    /// Whether `now_ms` (since the simulator was created) is inside the window.
    pub fn contains(&self, now_ms: u64) -> bool {
        now_ms >= self.start_ms && now_ms < self.start_ms.saturating_add(self.duration_ms)
    }
}

/// What the fault dice decided for one request, before any real processing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Injected {
    /// Behave normally.
    None,
    /// Inside an outage window: `503`.
    Outage,
    /// Throttled: `429` with this `Retry-After` header value.
    Throttle(String),
    /// Random internal failure: `500`.
    Error,
}

/// A rate as a probability the dice can use without panicking.
fn chance(rng: &mut impl Rng, rate: f64) -> bool {
    // NaN compares false, rates above 1 always hit, rates below 0 never do.
    rate > 0.0 && rng.random::<f64>() < rate
}

/// Longest `Retry-After` we will put in a date, so the date cannot overflow.
const MAX_RETRY_AFTER_SECS: u64 = 10 * 365 * 24 * 3600;

impl Faults {
    /// Whether the token is treated as revoked at `now_ms`.
    pub(crate) fn unauthorized_at(&self, now_ms: u64) -> bool {
        self.unauthorized.iter().any(|w| w.contains(now_ms))
    }

    /// Rolls the injected faults in the platform's order: outage, throttle, error.
    pub(crate) fn roll(&self, now_ms: u64, rng: &mut impl Rng) -> Injected {
        if self.outages.iter().any(|w| w.contains(now_ms)) {
            Injected::Outage
        } else if chance(rng, self.throttle_rate) {
            Injected::Throttle(self.retry_after_value(SystemTime::now()))
        } else if chance(rng, self.error_rate) {
            Injected::Error
        } else {
            Injected::None
        }
    }

    /// Whether a new idempotency key is randomly rejected.
    pub(crate) fn roll_reject(&self, rng: &mut impl Rng) -> bool {
        chance(rng, self.reject_rate)
    }

    /// Delay before answering: fixed latency plus, sometimes, the slow extra.
    pub(crate) fn roll_delay(&self, rng: &mut impl Rng) -> Duration {
        let mut ms = self.latency_ms;
        if chance(rng, self.slow_rate) {
            ms = ms.saturating_add(self.slow_ms);
        }
        Duration::from_millis(ms)
    }

    /// The `Retry-After` value for a `429`, in seconds or as an HTTP date.
    pub(crate) fn retry_after_value(&self, now: SystemTime) -> String {
        if let Some(raw) = &self.retry_after_raw {
            return raw.clone();
        }
        let secs = self.retry_after_secs.max(1);
        if !self.retry_after_http_date {
            return secs.to_string();
        }
        let secs = secs.min(MAX_RETRY_AFTER_SECS);
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        // HTTP dates have whole seconds; round up so that a client never reads
        // a shorter wait than configured.
        let whole = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0) + secs;
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds() {
        let w = Window { start_ms: 100, duration_ms: 50 };
        assert!(!w.contains(99));
        assert!(w.contains(100));
        assert!(w.contains(149));
        assert!(!w.contains(150));
        let open = Window { start_ms: 5, duration_ms: u64::MAX };
        assert!(open.contains(u64::MAX - 1));
    }

    #[test]
    fn rates_never_panic() {
        let mut rng = rand::rng();
        for rate in [f64::NAN, -1.0, 0.0, 1.0, 2.0, f64::INFINITY] {
            let _ = chance(&mut rng, rate);
        }
        assert!(chance(&mut rng, 1.0));
        assert!(!chance(&mut rng, 0.0));
        assert!(!chance(&mut rng, f64::NAN));
    }

    #[test]
    fn retry_after_forms() {
        let mut f = Faults::default();
        let now = UNIX_EPOCH + Duration::from_millis(1_000_000_500);
        assert_eq!(f.retry_after_value(now), "1");
        f.retry_after_secs = 7;
        assert_eq!(f.retry_after_value(now), "7");
        f.retry_after_http_date = true;
        let date = httpdate::parse_http_date(&f.retry_after_value(now)).unwrap();
        // Rounded up from 1_000_000.5 s, plus 7.
        assert_eq!(date, UNIX_EPOCH + Duration::from_secs(1_000_008));
        f.retry_after_secs = u64::MAX;
        let _ = f.retry_after_value(SystemTime::now());
        f.retry_after_raw = Some("0".into());
        assert_eq!(f.retry_after_value(now), "0");
    }

    #[test]
    fn delay_adds_slow() {
        let mut rng = rand::rng();
        let f = Faults { latency_ms: 5, slow_rate: 1.0, slow_ms: u64::MAX, ..Faults::default() };
        assert_eq!(f.roll_delay(&mut rng), Duration::from_millis(u64::MAX));
    }

    #[test]
    fn partial_json_uses_defaults() {
        let f: Faults = serde_json::from_str(r#"{"error_rate":0.5}"#).unwrap();
        assert_eq!(f.error_rate, 0.5);
        assert!(f.outages.is_empty());
    }
}
