//! Deadlines: each open ticket's `dueAt` (from its source, or from the
//! platform's `dispatched`), one reminder to the reporting grid workers
//! when a share of the time has passed, one overdue mark when it has all
//! passed. "Once" holds across restarts and hubs: each mark is an
//! `UPDATE … WHERE … IS NULL` that only one transaction wins, written with
//! the reminder it sends.

use sqlx::Row as _;

use super::callbacks::record_event;
use super::feedback::{Told, enqueue};
use super::{Store, StoreError, Tx};
use crate::callbacks::event::EventStatus;
use crate::ticket::handling::Handling;
use crate::ticket::{Channel, Status, Ticket};

const TRACK_ON_CONFLICT: &str = "ON CONFLICT (ticket_id) DO UPDATE SET
    reminded_at = CASE WHEN deadlines.due_at = excluded.due_at THEN deadlines.reminded_at ELSE NULL END,
    overdue_at = CASE WHEN deadlines.due_at = excluded.due_at THEN deadlines.overdue_at ELSE NULL END,
    started_at = CASE WHEN deadlines.due_at = excluded.due_at THEN deadlines.started_at ELSE excluded.started_at END,
    due_at = excluded.due_at,
    closed = excluded.closed";

/// Keeps each ticket's deadline row in step with the ticket: a new
/// deadline starts its clock (at its `started`: when the matter was
/// reported, or when the platform set the new deadline) and its marks
/// over; a ticket that is resolved, closed or withdrawn has no clock
/// running. One statement for a batch's tickets (a statement each was a
/// round trip to SQLite's thread per record); a ticket listed twice keeps
/// its last state, as tracking it twice would.
pub(crate) async fn track_all(
    tx: &mut Tx,
    backend: super::Backend,
    tickets: &[(&Ticket, crate::ticket::Timestamp)],
) -> Result<(), StoreError> {
    let mut rows: Vec<(&str, i64, i64, i64)> = Vec::with_capacity(tickets.len());
    for (ticket, started) in tickets {
        let Some(due) = ticket.draft.due_at else { continue };
        let closed = i64::from(matches!(ticket.draft.status, Status::Resolved | Status::Closed | Status::Withdrawn));
        let row = (
            ticket.ticket_id.as_str(),
            started.timestamp_millis().min(due.timestamp_millis()),
            due.timestamp_millis(),
            closed,
        );
        // One row per ticket in a statement (PostgreSQL refuses to update
        // a row twice in one), the last state winning.
        match rows.iter_mut().find(|r| r.0 == row.0) {
            Some(r) => *r = row,
            None => rows.push(row),
        }
    }
    for chunk in super::batch::pieces(backend, &rows) {
        let mut q = super::batch::insert(
            backend,
            "deadlines",
            &["ticket_id", "started_at", "due_at", "closed"],
            chunk.len(),
            TRACK_ON_CONFLICT,
        );
        for (id, started, due, closed) in chunk {
            q = q.bind(id.to_string()).bind(*started).bind(*due).bind(*closed);
        }
        q.execute(tx).await?;
    }
    Ok(())
}

/// A ticket whose deadline is near or past, for `hub tickets due`.
#[derive(Clone, Debug)]
pub struct DueTicket {
    pub ticket_id: String,
    pub due_at: i64,
    pub reminded_at: Option<i64>,
    pub overdue_at: Option<i64>,
}

/// What one pass over the deadlines did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeadlinePass {
    pub reminded: usize,
    pub overdue: usize,
}

impl Store {
    /// Gives each open ticket whose `remind_at` share (0–1) of its time has
    /// passed its one reminder (queued to its grid workers' terminals), and
    /// each that is past due its overdue mark. Safe to run from several
    /// hubs at once.
    pub async fn check_deadlines(&self, remind_at: f64, now: i64) -> Result<DeadlinePass, StoreError> {
        let permille = (remind_at.clamp(0.0, 1.0) * 1000.0).round() as i64;
        let mut pass = DeadlinePass::default();
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT ticket_id FROM deadlines WHERE closed = 0 AND reminded_at IS NULL
               AND started_at * 1000 + (due_at - started_at) * $1 <= $2 * 1000 ORDER BY due_at LIMIT 500",
        )
        .bind(permille)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let plan = self.feedback_plan();
        for ticket_id in due {
            let mut w = self.begin_write().await?;
            let won = super::query(
                "UPDATE deadlines SET reminded_at = $2 WHERE ticket_id = $1 AND reminded_at IS NULL AND closed = 0",
            )
            .bind(&ticket_id)
            .bind(now)
            .execute(&mut w.tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                let row = super::query("SELECT body, handling FROM tickets WHERE ticket_id = $1")
                    .bind(&ticket_id)
                    .fetch_optional(&mut w.tx)
                    .await?;
                if let Some(row) = row {
                    let body: String = row.get(0);
                    let handling: Option<String> = row.get(1);
                    let ticket: Ticket = serde_json::from_str(&body)
                        .map_err(|source| StoreError::CorruptTicket { ticket_id: ticket_id.clone(), source })?;
                    let h: Handling = handling.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
                    let at = chrono::DateTime::from_timestamp_millis(now)
                        .unwrap_or_default()
                        .with_timezone(&crate::ticket::beijing());
                    let key = format!("due:{ticket_id}:{}", ticket.draft.due_at.map_or(0, |d| d.timestamp_millis()));
                    let change = Told {
                        key: &key,
                        status: EventStatus::DueSoon,
                        department: h.department.as_deref(),
                        note: None,
                        at,
                        due_at: ticket.draft.due_at,
                        mediation: None,
                    };
                    // The reminder is for the grid workers who reported it.
                    let workers = Ticket {
                        sources: ticket.sources.iter().filter(|s| s.channel == Channel::Terminal).cloned().collect(),
                        ..ticket.clone()
                    };
                    enqueue(&mut w.tx, &plan, &workers, &change, now).await?;
                    record_event(
                        &mut w.tx,
                        &ticket_id,
                        now,
                        "deadline",
                        "due soon: reminder sent to the reporting grid workers",
                        now,
                    )
                    .await?;
                }
                pass.reminded += 1;
            }
            w.commit().await?;
        }
        if pass.reminded > 0 {
            self.feedback_queued.notify_waiters();
        }
        let past: Vec<String> = sqlx::query_scalar(
            "SELECT ticket_id FROM deadlines WHERE closed = 0 AND overdue_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT 500",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for ticket_id in past {
            let mut w = self.begin_write().await?;
            if self.backend == super::Backend::Postgres {
                // The ticket's row first, as intake and callbacks take it
                // before the deadline's: its figures' facts are written
                // under it, so a change in flight is not written over.
                super::query("SELECT 1 FROM tickets WHERE ticket_id = $1 FOR UPDATE")
                    .bind(&ticket_id)
                    .fetch_optional(&mut w.tx)
                    .await?;
            }
            let won = super::query(
                "UPDATE deadlines SET overdue_at = $2 WHERE ticket_id = $1 AND overdue_at IS NULL AND closed = 0",
            )
            .bind(&ticket_id)
            .bind(now)
            .execute(&mut w.tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                record_event(&mut w.tx, &ticket_id, now, "deadline", "overdue: not resolved by its deadline", now)
                    .await?;
                // Counted as it stands first, if intake changed it since.
                let due = super::stats::Due::These(std::slice::from_ref(&ticket_id));
                super::stats::fold(&mut w.tx, self.backend, due).await?;
                super::stats::mark_overdue(&mut w.tx, &ticket_id).await?;
                pass.overdue += 1;
            }
            w.commit().await?;
        }
        Ok(pass)
    }

    /// Open tickets that were reminded or are overdue, the soonest due first.
    pub async fn due_tickets(&self, limit: i64) -> Result<Vec<DueTicket>, StoreError> {
        let rows = sqlx::query(
            "SELECT ticket_id, due_at, reminded_at, overdue_at FROM deadlines
              WHERE closed = 0 AND (reminded_at IS NOT NULL OR overdue_at IS NOT NULL) ORDER BY due_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DueTicket { ticket_id: r.get(0), due_at: r.get(1), reminded_at: r.get(2), overdue_at: r.get(3) })
            .collect())
    }

    /// How many open tickets are overdue now (for the metric).
    pub async fn overdue_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deadlines WHERE closed = 0 AND overdue_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await?)
    }
}
