//! Backoff with jitter, from the `backoff` crate, behind one small type so
//! the crate can be swapped without touching the dispatcher.

use std::time::Duration;

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// Jitter: each delay is drawn from ±this share around the nominal one.
    pub randomization: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            randomization: 0.3,
        }
    }
}

impl RetryPolicy {
    /// A fresh backoff sequence that never gives up: the platform may be down
    /// for maintenance for hours, and a change is never dropped for time.
    pub fn backoff(&self) -> ExponentialBackoff {
        backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(self.initial)
            .with_max_interval(self.max)
            .with_multiplier(self.multiplier)
            .with_randomization_factor(self.randomization)
            .with_max_elapsed_time(None)
            .build()
    }

    /// The delay before attempt `attempts + 1` of a change that failed
    /// `attempts` times. The count lives in the outbox row (it survives
    /// restarts), so the sequence is replayed up to it; it reaches `max`
    /// within a few dozen steps.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let mut b = self.backoff();
        let mut delay = self.initial;
        for _ in 0..=attempts.min(64) {
            delay = b.next_backoff().unwrap_or(self.max);
        }
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_stays_under_the_cap() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            randomization: 0.5,
        };
        let first = p.delay_after(0);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150), "{first:?}");
        let late = p.delay_after(40);
        assert!(late <= Duration::from_secs(3) && late >= Duration::from_secs(1), "{late:?}");
    }
}
