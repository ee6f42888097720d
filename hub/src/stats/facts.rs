//! What the figures count of one ticket, and how much each ticket adds to
//! the aggregate it falls in. Kept pure: the store reads the old facts,
//! asks for the new ones and moves the difference between cells.

use chrono::TimeZone;

use crate::ticket::handling::Handling;
use crate::ticket::{EvaluationResult, Status, Ticket, beijing};

/// Upper bounds of the handling-time buckets, in hours; the last bucket
/// holds everything longer. Chosen around the deadlines the centres use
/// (same day, 1–3 working days, a week, a fortnight, a month).
pub const BUCKET_HOURS: [i64; 11] = [1, 4, 8, 24, 48, 72, 120, 168, 240, 360, 720];
pub const BUCKETS: usize = BUCKET_HOURS.len() + 1;

/// Where a ticket is counted: its cell's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    /// The cohort: the month it was received, `YYYY-MM`, Beijing time.
    pub month: String,
    pub channel: String,
    /// Six digits.
    pub county: String,
    /// Nine digits, or empty for a matter placed only at county level.
    pub township: String,
    pub category: String,
    /// Empty until the platform dispatches it.
    pub department: String,
}

/// The facts of one ticket as it now stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub key: CellKey,
    /// `YYYY-MM-DD`, Beijing time.
    pub day: String,
    pub received_at: i64,
    /// The full 12-digit division code, for scoped lists.
    pub region: String,
    pub status: String,
    pub due_at: Option<i64>,
    /// When it was resolved or closed; none while it is open.
    pub finished_at: Option<i64>,
    pub evaluation: Option<EvaluationResult>,
    pub reopened: i64,
    /// It crossed its deadline unresolved (stays so once marked).
    pub overdue: bool,
}

impl Facts {
    /// The facts of `ticket` after a change at `at` (epoch ms), given the
    /// platform's side of it and what was known before.
    pub fn of(ticket: &Ticket, handling: Option<&Handling>, before: Option<&Facts>, at: i64) -> Facts {
        let d = &ticket.draft;
        let received_at = before.map_or_else(|| d.reported_at.timestamp_millis(), |b| b.received_at);
        let local = beijing().timestamp_millis_opt(received_at).single().unwrap_or(d.reported_at);
        let region = d.region.code.as_str().to_string();
        let county = region.get(..6).unwrap_or_default().to_string();
        let township = match region.get(6..9) {
            Some(t) if t != "000" => region[..9].to_string(),
            _ => String::new(),
        };
        let channel = ticket.sources.first().map_or("unknown", |s| s.channel.as_str()).to_string();
        let department = handling.and_then(|h| h.department.clone()).unwrap_or_default();
        let finished = matches!(d.status, Status::Resolved | Status::Closed);
        let finished_at = match (finished, before.and_then(|b| b.finished_at)) {
            (false, _) => None,
            (true, Some(earlier)) => Some(earlier),
            (true, None) => Some(at.max(received_at)),
        };
        Facts {
            key: CellKey {
                month: local.format("%Y-%m").to_string(),
                channel,
                county,
                township,
                category: d.category.as_str().to_string(),
                department,
            },
            day: local.format("%Y-%m-%d").to_string(),
            received_at,
            region,
            status: d.status.as_str().to_string(),
            due_at: d.due_at.map(|t| t.timestamp_millis()),
            finished_at,
            evaluation: d.evaluation.as_ref().map(|e| e.result),
            reopened: handling.map_or(0, |h| i64::from(h.reopened)),
            overdue: before.is_some_and(|b| b.overdue),
        }
    }

    /// What this ticket adds to its cell.
    pub fn contribution(&self) -> Counts {
        let mut c =
            Counts { received: 1, reopened: self.reopened, overdue: i64::from(self.overdue), ..Counts::default() };
        if let Some(done) = self.finished_at {
            c.finished = 1;
            let took = (done - self.received_at).max(0);
            c.handling_ms = took;
            c.buckets[bucket(took)] = 1;
            if let Some(due) = self.due_at {
                c.timed = 1;
                c.on_time = i64::from(done <= due);
            }
        }
        if let Some(e) = self.evaluation {
            c.rated = 1;
            c.satisfied = i64::from(e == EvaluationResult::Satisfied);
        }
        c
    }
}

/// The bucket a handling time falls in.
pub fn bucket(ms: i64) -> usize {
    let hours_ms = |h: i64| h * 3_600_000;
    BUCKET_HOURS.iter().position(|&h| ms <= hours_ms(h)).unwrap_or(BUCKET_HOURS.len())
}

/// The sums a cell keeps (and a difference between two states of a ticket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub received: i64,
    pub finished: i64,
    /// Finished tickets that had a deadline: the on-time rate's denominator.
    pub timed: i64,
    pub on_time: i64,
    pub rated: i64,
    pub satisfied: i64,
    pub reopened: i64,
    pub overdue: i64,
    pub handling_ms: i64,
    pub buckets: [i64; BUCKETS],
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.received += o.received;
        self.finished += o.finished;
        self.timed += o.timed;
        self.on_time += o.on_time;
        self.rated += o.rated;
        self.satisfied += o.satisfied;
        self.reopened += o.reopened;
        self.overdue += o.overdue;
        self.handling_ms += o.handling_ms;
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
    }

    pub fn negated(&self) -> Counts {
        let mut n = Counts::default();
        n.add(self);
        n.received = -n.received;
        n.finished = -n.finished;
        n.timed = -n.timed;
        n.on_time = -n.on_time;
        n.rated = -n.rated;
        n.satisfied = -n.satisfied;
        n.reopened = -n.reopened;
        n.overdue = -n.overdue;
        n.handling_ms = -n.handling_ms;
        for b in &mut n.buckets {
            *b = -*b;
        }
        n
    }

    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_rated_ticket_counts_its_time_deadline_and_rating() {
        let f = Facts {
            key: CellKey {
                month: "2026-11".into(),
                channel: "hotline".into(),
                county: "220402".into(),
                township: "220402002".into(),
                category: "0101".into(),
                department: "龙山区住建局".into(),
            },
            day: "2026-11-03".into(),
            received_at: 0,
            region: "220402002000".into(),
            status: "closed".into(),
            due_at: Some(48 * 3_600_000),
            finished_at: Some(30 * 3_600_000),
            evaluation: Some(EvaluationResult::Unsatisfied),
            reopened: 1,
            overdue: false,
        };
        let c = f.contribution();
        assert_eq!((c.received, c.finished, c.timed, c.on_time, c.rated, c.satisfied), (1, 1, 1, 1, 1, 0));
        assert_eq!(c.buckets[4], 1, "30 h falls in the 24–48 h bucket");
        let mut sum = c;
        sum.add(&c.negated());
        assert!(sum.is_zero());
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(721 * 3_600_000), BUCKET_HOURS.len());
    }
}
