//! When to reconnect, and what to say about it.
//!
//! rumqttc reconnects at once when polled after an error (#703), so the
//! connector waits itself: exponential backoff with jitter, so that a
//! restarted broker is not hit by every hub (and every retry) at the same
//! instant. The `backoff` crate is unmaintained (RUSTSEC-2025-0012, no
//! vulnerability); it is used only here.
//!
//! A flapping connection (up, down at once, up again…) is one outage, not
//! many: it logs one warning when it starts and one line when it is over,
//! and the wait keeps growing. An outage ends when a connection has stayed
//! up as long as the longest wait.
//!
//! Until the broker has answered once, every failed attempt is one `ERROR`
//! line naming the broker and the next wait: a hub started without its
//! broker keeps trying (its other sources run meanwhile, and the terminals'
//! reports wait in the broker's sessions), but says so, at most twice a
//! minute once the backoff is at its longest, rather than once and never again.

use std::fmt::Display;
use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;

use backoff::backoff::Backoff;

pub(crate) struct Reconnect {
    name: String,
    /// `host:port`, never the URL (it may carry credentials).
    broker: String,
    ever_connected: bool,
    backoff: ExponentialBackoff,
    max: Duration,
    stable_after: Duration,
    connected_at: Option<Instant>,
    outage: Option<Outage>,
    /// Told of every connection and failure, for the hub's `/readyz`.
    link: crate::Link,
}

struct Outage {
    since: Instant,
    attempts: u32,
    recovery_logged: bool,
}

impl Reconnect {
    pub(crate) fn new(name: impl Into<String>, broker: impl Into<String>, initial: Duration, max: Duration) -> Self {
        let backoff = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(initial)
            .with_multiplier(2.0)
            .with_randomization_factor(0.5)
            .with_max_interval(max)
            .with_max_elapsed_time(None)
            .build();
        Reconnect {
            name: name.into(),
            broker: broker.into(),
            ever_connected: false,
            backoff,
            max,
            stable_after: max.max(Duration::from_secs(1)),
            connected_at: None,
            outage: None,
            link: crate::Link::default(),
        }
    }

    /// Reports to `link` as well (the connector's, from its `Intake`).
    pub(crate) fn with_link(mut self, link: crate::Link) -> Self {
        self.link = link;
        self
    }

    /// The broker accepted a connection.
    pub(crate) fn connected(&mut self) {
        self.link.up();
        self.connected_at = Some(Instant::now());
        if !self.ever_connected {
            self.ever_connected = true;
            tracing::info!(connector = %self.name, broker = %self.broker, "mqtt broker answered");
        }
        if let Some(outage) = &mut self.outage
            && !outage.recovery_logged
        {
            outage.recovery_logged = true;
            tracing::info!(
                connector = %self.name,
                attempts = outage.attempts,
                down_ms = outage.since.elapsed().as_millis() as u64,
                "mqtt connection back"
            );
        }
    }

    /// A connection attempt or a connection failed: returns how long to wait
    /// before the next attempt.
    pub(crate) fn failed(&mut self, reason: &dyn Display) -> Duration {
        self.link.down(format!("{} ({reason})", self.broker));
        if let Some(up) = self.connected_at.take()
            && up.elapsed() >= self.stable_after
        {
            self.outage = None;
            self.backoff.reset();
        }
        let wait = self.backoff.next_backoff().unwrap_or(self.max).min(self.max);
        if !self.ever_connected {
            tracing::error!(
                connector = %self.name,
                "cannot connect to the MQTT broker at {} ({reason}); trying again in {:.1} s",
                self.broker,
                wait.as_secs_f64()
            );
            self.outage
                .get_or_insert(Outage { since: Instant::now(), attempts: 0, recovery_logged: false })
                .attempts += 1;
            return wait;
        }
        match &mut self.outage {
            None => {
                tracing::warn!(connector = %self.name, error = %reason, "mqtt connection lost; reconnecting with backoff");
                self.outage = Some(Outage { since: Instant::now(), attempts: 1, recovery_logged: false });
            }
            Some(outage) => {
                outage.attempts += 1;
                tracing::debug!(connector = %self.name, error = %reason, attempt = outage.attempts, "mqtt reconnect attempt failed");
            }
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_within_bounds_and_reset_after_a_stable_connection() {
        let mut r = Reconnect::new("t", "h:1", Duration::from_millis(100), Duration::from_millis(800));
        r.stable_after = Duration::from_millis(50);
        r.ever_connected = true;
        let waits: Vec<Duration> = (0..8).map(|_| r.failed(&"down")).collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(50) && *w <= Duration::from_millis(800)));
        assert!(waits[5] > Duration::from_millis(300), "{waits:?}");
        // A short-lived connection continues the outage…
        r.connected();
        assert!(r.failed(&"down") > Duration::from_millis(300));
        assert_eq!(r.outage.as_ref().map(|o| o.attempts), Some(9));
        // …a stable one ends it.
        r.connected();
        std::thread::sleep(Duration::from_millis(60));
        assert!(r.failed(&"down") <= Duration::from_millis(150));
        assert_eq!(r.outage.as_ref().map(|o| o.attempts), Some(1));
    }
}
