//! The retry policy: exponential backoff with jitter between reconnects,
//! and a throttle so a broker that stays down does not flood the log.
//!
//! The `backoff` crate is flagged unmaintained (RUSTSEC-2025-0012, no
//! vulnerability); it is only used here, so replacing it touches this file.

use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff as _;

/// Waits between attempts: `initial`, then doubling up to `max`, each wait
/// randomised by ±50 % so that many clients do not reconnect in step.
pub(crate) struct Backoff {
    inner: ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let inner = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(initial)
            .with_max_interval(max)
            .with_multiplier(2.0)
            .with_randomization_factor(0.5)
            // Never give up: a source that comes back must be consumed again.
            .with_max_elapsed_time(None)
            .build();
        Backoff { inner, max }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        self.inner.next_backoff().unwrap_or(self.max)
    }

    /// Back to `initial`, after a connection that worked.
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

/// Lets one log line through per `every`, counting the ones held back.
pub(crate) struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle { every, last: None, suppressed: 0 }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were
    /// held back since the last one.
    pub fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_with_jitter_and_stay_under_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = b.next_wait();
        assert!((Duration::from_millis(50)..=Duration::from_millis(150)).contains(&first), "{first:?}");
        let later: Vec<_> = (0..20).map(|_| b.next_wait()).collect();
        assert!(later.iter().all(|w| *w <= Duration::from_millis(1500)), "{later:?}");
        assert!(later.last().unwrap() >= &Duration::from_millis(500));
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(150));
    }

    #[test]
    fn throttle_counts_what_it_holds_back() {
        let mut t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        t.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(t.ready(), Some(2));
    }
}
