//! Counters the hub keeps while it runs, served as Prometheus text on
//! `/metrics` and printed in summaries.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    /// system → outcome → records
    records: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    /// outcome → platform callbacks
    callbacks: Mutex<BTreeMap<&'static str, u64>>,
    /// (destination, outcome) → feedback messages
    feedback: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// (system, stage) → records: received by intake, acknowledged to the source.
    sources: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// destination → (messages waiting, age of the oldest in seconds)
    queues: Mutex<BTreeMap<String, (i64, f64)>>,
    /// Queued → accepted by the platform.
    pub delivery_latency: Histogram,
    /// Early-warning alerts raised.
    pub alerts_raised: AtomicU64,
    pub mapping_warnings: AtomicU64,
    pub intake_batches: AtomicU64,
    pub intake_errors: AtomicU64,
    pub delivered: AtomicU64,
    pub stale_answers: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub retried: AtomicU64,
    pub throttled: AtomicU64,
    pub auth_failures: AtomicU64,
    pub outbox_depth: AtomicI64,
    /// 1 while delivery is paused because the platform refused our token.
    pub delivery_paused: AtomicI64,
    /// Open tickets past their deadline.
    pub overdue: AtomicI64,
    /// Agreed court cases without their document past the day's cut-off.
    pub court_documents_missing: AtomicI64,
}

impl Metrics {
    pub fn record(&self, system: &str, outcome: &'static str) {
        let mut map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        // Called for every record: the system's name is copied only the first time.
        match map.get_mut(system) {
            Some(by_outcome) => *by_outcome.entry(outcome).or_default() += 1,
            None => {
                map.insert(system.to_string(), BTreeMap::from([(outcome, 1)]));
            }
        }
    }

    /// A record at a stage of its way in: `received` (handed to intake),
    /// `acknowledged` (stored, so its source is answered).
    pub fn source(&self, system: &str, stage: &'static str) {
        *self.sources.lock().unwrap_or_else(|e| e.into_inner()).entry((system.to_string(), stage)).or_default() += 1;
    }

    /// Replaces the queues' depths and ages (`Store::queue_depths`).
    pub fn set_queues(&self, queues: impl IntoIterator<Item = (String, i64, f64)>) {
        let mut map = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        // A destination that emptied stays, at zero.
        for v in map.values_mut() {
            *v = (0, 0.0);
        }
        for (destination, depth, age) in queues {
            map.insert(destination, (depth, age));
        }
    }

    /// A platform callback taken (or refused) with this outcome.
    pub fn callback(&self, outcome: &'static str) {
        *self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).entry(outcome).or_default() += 1;
    }

    /// A status message to an agency delivered, retried or refused.
    pub fn feedback(&self, destination: &str, outcome: &'static str) {
        *self
            .feedback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((destination.to_string(), outcome))
            .or_default() += 1;
    }

    /// (system, outcome) → records
    pub fn records(&self) -> BTreeMap<(String, &'static str), u64> {
        let map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().flat_map(|(system, by)| by.iter().map(|(o, n)| ((system.clone(), *o), *n))).collect()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE hub_records_total counter\n");
        for ((system, outcome), n) in self.records() {
            let _ = writeln!(out, "hub_records_total{{system=\"{system}\",outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# TYPE hub_callbacks_total counter\n");
        for (outcome, n) in self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "hub_callbacks_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# TYPE hub_feedback_total counter\n");
        for ((destination, outcome), n) in self.feedback.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "hub_feedback_total{{destination=\"{destination}\",outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# TYPE hub_source_records_total counter\n");
        for ((system, stage), n) in self.sources.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "hub_source_records_total{{system=\"{system}\",stage=\"{stage}\"}} {n}");
        }
        out.push_str("# TYPE hub_queue_depth gauge\n");
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (destination, (depth, _)) in &queues {
            let _ = writeln!(out, "hub_queue_depth{{destination=\"{destination}\"}} {depth}");
        }
        out.push_str("# TYPE hub_queue_oldest_age_seconds gauge\n");
        for (destination, (_, age)) in &queues {
            let _ = writeln!(out, "hub_queue_oldest_age_seconds{{destination=\"{destination}\"}} {age:.3}");
        }
        out.push_str("# TYPE hub_delivery_retries_by_cause_total counter\n");
        for (cause, n) in
            [("failed", &self.retried), ("throttled", &self.throttled), ("unauthorized", &self.auth_failures)]
        {
            let _ =
                writeln!(out, "hub_delivery_retries_by_cause_total{{cause=\"{cause}\"}} {}", n.load(Ordering::Relaxed));
        }
        self.delivery_latency.render(&mut out, "hub_delivery_latency_seconds");
        let counters: [(&str, &AtomicU64); 10] = [
            ("hub_alerts_raised_total", &self.alerts_raised),
            ("hub_mapping_warnings_total", &self.mapping_warnings),
            ("hub_intake_batches_total", &self.intake_batches),
            ("hub_intake_errors_total", &self.intake_errors),
            ("hub_delivered_total", &self.delivered),
            ("hub_delivery_stale_total", &self.stale_answers),
            ("hub_dead_lettered_total", &self.dead_lettered),
            ("hub_delivery_retries_total", &self.retried),
            ("hub_delivery_throttled_total", &self.throttled),
            ("hub_delivery_auth_failures_total", &self.auth_failures),
        ];
        for (name, value) in counters {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        let gauges: [(&str, &AtomicI64); 4] = [
            ("hub_outbox_depth", &self.outbox_depth),
            ("hub_delivery_paused", &self.delivery_paused),
            ("hub_tickets_overdue", &self.overdue),
            ("hub_court_documents_missing", &self.court_documents_missing),
        ];
        for (name, value) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}

/// A Prometheus histogram with fixed buckets (seconds), lock-free.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

/// From a local answer in milliseconds to a broker outage of minutes.
const LATENCY_BOUNDS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds: LATENCY_BOUNDS,
            counts: (0..=LATENCY_BOUNDS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let i = self.bounds.iter().position(|&b| seconds <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {:.6}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    #[test]
    fn records_are_counted_by_system_and_outcome() {
        let m = super::Metrics::default();
        m.record("hotline", "created");
        m.record("hotline", "created");
        m.record("hotline", "duplicate");
        m.record("court", "quarantined");
        let text = m.render();
        assert!(text.contains("hub_records_total{system=\"hotline\",outcome=\"created\"} 2"), "{text}");
        assert!(text.contains("hub_records_total{system=\"hotline\",outcome=\"duplicate\"} 1"), "{text}");
        assert!(text.contains("hub_records_total{system=\"court\",outcome=\"quarantined\"} 1"), "{text}");
        m.delivery_latency.observe(0.2);
        m.delivery_latency.observe(7.0);
        m.set_queues([("platform".to_string(), 3, 12.5)]);
        let text = m.render();
        assert!(text.contains("hub_delivery_latency_seconds_bucket{le=\"0.25\"} 1"), "{text}");
        assert!(text.contains("hub_delivery_latency_seconds_bucket{le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("hub_queue_oldest_age_seconds{destination=\"platform\"} 12.500"), "{text}");
    }
}
