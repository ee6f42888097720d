//! How the store's writer is used. On SQLite one transaction writes at a
//! time, so how long intake and delivery each wait for the writer and hold
//! it says what serialises the hub (`/metrics`: `hub_store_writer_*`); on
//! PostgreSQL the same figures are the time to begin and the time from
//! begin to commit.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Who writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Records and their tickets, revisions and outbox rows.
    Intake,
    /// The dispatcher's results and leases.
    Delivery,
    /// The statistics, counting what intake changed ([`super::stats::fold`]).
    Figures,
    /// Everything else: callbacks, feedback, deadlines, replays, the CLI.
    Other,
}

impl Writer {
    const ALL: [Writer; 4] = [Writer::Intake, Writer::Delivery, Writer::Figures, Writer::Other];

    /// What its commits must survive ([`super::Commit`]): the dispatcher's
    /// bookkeeping and the figures are done again if undone; the rest
    /// (records a source was told are stored, callbacks the platform was
    /// told are, messages queued for anyone) must survive power loss.
    pub fn commit(self) -> super::Commit {
        match self {
            Writer::Delivery | Writer::Figures => super::Commit::Redone,
            Writer::Intake | Writer::Other => super::Commit::Durable,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Writer::Intake => "intake",
            Writer::Delivery => "delivery",
            Writer::Figures => "figures",
            Writer::Other => "other",
        }
    }
}

#[derive(Default)]
struct Use {
    transactions: AtomicU64,
    wait_micros: AtomicU64,
    hold_micros: AtomicU64,
}

/// Committed write transactions, and the time spent waiting for the writer
/// and holding it, by who wrote.
#[derive(Default)]
pub struct WriterUse {
    by: [Use; 4],
}

impl WriterUse {
    pub(super) fn waited(&self, who: Writer, wait: Duration) {
        self.by[who as usize].wait_micros.fetch_add(micros(wait), Ordering::Relaxed);
    }

    pub(super) fn committed(&self, who: Writer, held: Duration) {
        let u = &self.by[who as usize];
        u.transactions.fetch_add(1, Ordering::Relaxed);
        u.hold_micros.fetch_add(micros(held), Ordering::Relaxed);
    }

    /// (transactions, seconds waited, seconds held) of one kind of writer.
    pub fn of(&self, who: Writer) -> (u64, f64, f64) {
        let u = &self.by[who as usize];
        (
            u.transactions.load(Ordering::Relaxed),
            u.wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
            u.hold_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut series = |name: &str, help: &str, value: &dyn Fn((u64, f64, f64)) -> String| {
            let _ = writeln!(out, "# HELP {name} {help}, by who wrote");
            let _ = writeln!(out, "# TYPE {name} counter");
            for who in Writer::ALL {
                let _ = writeln!(out, "{name}{{by=\"{}\"}} {}", who.as_str(), value(self.of(who)));
            }
        };
        series("hub_store_write_transactions_total", "write transactions committed", &|u| u.0.to_string());
        series("hub_store_writer_wait_seconds_total", "time spent waiting for the writer", &|u| format!("{:.6}", u.1));
        series("hub_store_writer_busy_seconds_total", "time the writer was held, begin to commit", &|u| {
            format!("{:.6}", u.2)
        });
        out
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_writer_and_renders() {
        let u = WriterUse::default();
        u.waited(Writer::Intake, Duration::from_millis(3));
        u.committed(Writer::Intake, Duration::from_millis(20));
        u.committed(Writer::Delivery, Duration::from_millis(2));
        assert_eq!(u.of(Writer::Intake), (1, 0.003, 0.02));
        assert_eq!(u.of(Writer::Other).0, 0);
        let text = u.render();
        assert!(text.contains("hub_store_write_transactions_total{by=\"delivery\"} 1"), "{text}");
        assert!(text.contains("hub_store_writer_busy_seconds_total{by=\"intake\"} 0.020000"), "{text}");
        assert!(text.contains("# TYPE hub_store_writer_wait_seconds_total counter"), "{text}");
    }
}
