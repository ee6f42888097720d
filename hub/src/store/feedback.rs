//! The feedback outbox: status changes on their way back to each origin of
//! a ticket, the mirror of the platform's outbox. Written with the callback
//! that caused them (`store/callbacks.rs`), leased per destination in order,
//! deleted once the agency has taken them, kept as dead with the answer
//! when it refuses them for good.

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::callbacks::record_event;
use super::text::{MAX_REASON_CHARS, clean};
use super::{Backend, Store, StoreError, Tx, now_ms};
use crate::callbacks::event::EventStatus;
use crate::feedback::Plan;
use crate::mapping::feedback::Notice;
use crate::ticket::{Ticket, Timestamp};

/// A message leased for sending.
#[derive(Clone, Debug)]
pub struct FeedbackMessage {
    pub id: i64,
    pub destination: String,
    pub ticket_id: String,
    pub status: String,
    pub message_id: String,
    pub address: String,
    pub body: Vec<u8>,
    pub content_type: String,
    pub attempts: i64,
}

/// What came of sending one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedbackResult {
    /// The agency took it (publisher confirm, PUBACK, 2xx or 409).
    Delivered,
    /// Not taken now: try again at `next_at` (epoch ms).
    Retry { error: String, next_at: i64 },
    /// Refused for good: kept as dead with the answer.
    Dead { error: String },
}

/// A line of `hub feedback list`.
#[derive(Clone, Debug)]
pub struct FeedbackEntry {
    pub id: i64,
    pub destination: String,
    pub ticket_id: String,
    pub status: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A stable id per (event, origin): a resend after a crash is recognisable.
/// Hashed, as AMQP keeps message ids under 256 bytes.
fn message_id(event_id: &str, system: &str, record_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{event_id}\u{1f}{system}\u{1f}{record_id}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("fb-{hex}")
}

/// Queues, for every origin of `ticket` whose mapping has a back-channel,
/// what it is told of `event`. An origin whose message cannot be made (its
/// topic needs a worker the record does not name) gets a line in the
/// ticket's history instead.
/// A change the origins are told of: a platform callback, or a worker's
/// frown that reopened the matter.
#[derive(Clone, Debug)]
pub(crate) struct Told<'a> {
    /// What makes it this change and no other (the callback's event id, the
    /// raw record's id): with the origin, the message's stable id.
    pub key: &'a str,
    pub status: EventStatus,
    pub department: Option<&'a str>,
    pub note: Option<&'a str>,
    pub at: Timestamp,
    pub due_at: Option<Timestamp>,
    pub mediation: Option<(&'a str, &'a str)>,
}

pub(crate) async fn enqueue(
    tx: &mut Tx,
    plan: &Plan,
    ticket: &Ticket,
    change: &Told<'_>,
    now: i64,
) -> Result<usize, StoreError> {
    let status = change.status;
    let mut queued = 0;
    for source in &ticket.sources {
        let Some(spec) = plan.spec(&source.system) else { continue };
        let metadata: Option<String> = super::query_scalar(
            "SELECT metadata FROM raw_records WHERE system = $1 AND (record_id = $2 OR about = $2)
              AND outcome NOT IN ('quarantined', 'duplicate') ORDER BY id DESC LIMIT 1",
        )
        .bind(&source.system)
        .bind(&source.record_id)
        .fetch_optional(tx)
        .await?;
        let meta: BTreeMap<String, String> = metadata.and_then(|m| serde_json::from_str(&m).ok()).unwrap_or_default();
        let notice = Notice {
            ticket_id: &ticket.ticket_id,
            record_id: &source.record_id,
            status,
            department: change.department,
            note: change.note,
            at: change.at,
            due_at: change.due_at.or(ticket.draft.due_at),
            mediation: change.mediation,
            meta: &meta,
        };
        match spec.render(&notice) {
            Ok(None) => {}
            Ok(Some(r)) => {
                super::query(
                    "INSERT INTO feedback_outbox (destination, ticket_id, status, message_id, address, body, content_type,
                        next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(&source.system)
                .bind(&ticket.ticket_id)
                .bind(status.as_str())
                .bind(message_id(change.key, &source.system, &source.record_id))
                .bind(clean(&r.address, 1024).into_owned())
                .bind(r.body)
                .bind(r.content_type)
                .bind(now)
                .execute(tx)
                .await?;
                queued += 1;
            }
            Err(reason) => {
                let line = format!("{} cannot be told of {}: {reason}", source.system, status.as_str());
                record_event(tx, &ticket.ticket_id, now, "feedback", &line, now).await?;
            }
        }
    }
    Ok(queued)
}

/// A line of the outbox as `hub feedback list` shows it.
fn entry(r: &super::Row) -> FeedbackEntry {
    FeedbackEntry {
        id: r.get(0),
        destination: r.get(1),
        ticket_id: r.get(2),
        status: r.get(3),
        state: r.get(4),
        attempts: r.get(5),
        last_error: r.get(6),
        created_at: r.get(7),
    }
}

const COLUMNS: &str = "id, destination, ticket_id, status, message_id, address, body, content_type, attempts";

fn message(r: &super::Row) -> FeedbackMessage {
    FeedbackMessage {
        id: r.get(0),
        destination: r.get(1),
        ticket_id: r.get(2),
        status: r.get(3),
        message_id: r.get(4),
        address: r.get(5),
        body: r.get(6),
        content_type: r.get(7),
        attempts: r.get(8),
    }
}

impl Store {
    /// Leases up to `limit` of `destination`'s oldest pending messages, in
    /// order, from its head while they are due. Nothing while another
    /// sender holds a lease on the destination: its messages go one sender
    /// at a time, in the order they were written.
    pub async fn lease_feedback(
        &self,
        destination: &str,
        owner: &str,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<FeedbackMessage>, StoreError> {
        let now = now_ms();
        // Most looks find nothing: a read first, so that an idle sender
        // does not take the writer's turn (SQLite has one) every poll.
        // Only the head counts: the messages behind one that waits for its
        // next attempt wait with it.
        let head: Option<i64> = sqlx::query_scalar(
            "SELECT next_attempt_at FROM feedback_outbox WHERE destination = $1 AND state = 'pending' ORDER BY id LIMIT 1",
        )
        .bind(destination)
        .fetch_optional(&self.pool)
        .await?;
        if head.is_none_or(|at| at > now) {
            return Ok(Vec::new());
        }
        let mut w = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Hubs sharing the database lease one destination in turn.
            super::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind(destination)
                .execute(&mut w.tx)
                .await?;
        }
        let held: i64 = super::query_scalar(
            "SELECT COUNT(*) FROM feedback_outbox WHERE destination = $1 AND state = 'pending'
               AND lease_until > $2 AND lease_owner <> $3",
        )
        .bind(destination)
        .bind(now)
        .bind(owner)
        .fetch_one(&mut w.tx)
        .await?;
        if held > 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {COLUMNS}, next_attempt_at FROM feedback_outbox WHERE destination = $1 AND state = 'pending' ORDER BY id LIMIT $2"
        );
        let rows = super::query(sql).bind(destination).bind(limit).fetch_all(&mut w.tx).await?;
        let due: Vec<FeedbackMessage> = rows.iter().take_while(|r| r.get::<i64, _>(9) <= now).map(message).collect();
        for m in &due {
            super::query("UPDATE feedback_outbox SET lease_owner = $2, lease_until = $3 WHERE id = $1")
                .bind(m.id)
                .bind(owner)
                .bind(now + lease_ms)
                .execute(&mut w.tx)
                .await?;
        }
        w.commit().await?;
        Ok(due)
    }

    /// Records what came of a batch of sends, in one transaction: taken
    /// messages leave the outbox (a line in their ticket's history), those
    /// not taken now wait until their next attempt, those refused for good
    /// are kept as dead with the answer. Only results under `owner`'s lease
    /// count; whatever else `owner` held of those destinations is released.
    /// Returns how many results counted.
    pub async fn settle_feedback(
        &self,
        owner: &str,
        results: &[(FeedbackMessage, FeedbackResult)],
    ) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut w = self.begin_write().await?;
        let mut counted = 0;
        for (m, result) in results {
            let (done, line) = match result {
                FeedbackResult::Delivered => {
                    let q = super::query("DELETE FROM feedback_outbox WHERE id = $1 AND lease_owner = $2");
                    let done = q.bind(m.id).bind(owner).execute(&mut w.tx).await?.rows_affected() == 1;
                    (done, Some(format!("{} told of {} ({})", m.destination, m.status, m.message_id)))
                }
                FeedbackResult::Retry { error, next_at } => {
                    let q = super::query(
                        "UPDATE feedback_outbox SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4,
                            lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
                    );
                    let q = q.bind(m.id).bind(owner).bind(clean(error, MAX_REASON_CHARS).into_owned()).bind(*next_at);
                    (q.execute(&mut w.tx).await?.rows_affected() == 1, None)
                }
                FeedbackResult::Dead { error } => {
                    let error = clean(error, MAX_REASON_CHARS).into_owned();
                    let q = super::query(
                        "UPDATE feedback_outbox SET state = 'dead', attempts = attempts + 1, last_error = $3,
                            lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
                    );
                    let done = q.bind(m.id).bind(owner).bind(&error).execute(&mut w.tx).await?.rows_affected() == 1;
                    (done, Some(format!("{} refused {} for good: {error}", m.destination, m.status)))
                }
            };
            if done {
                counted += 1;
                if let Some(line) = line {
                    record_event(&mut w.tx, &m.ticket_id, now, "feedback", &line, now).await?;
                }
            }
        }
        let mut destinations: Vec<&str> = results.iter().map(|(m, _)| m.destination.as_str()).collect();
        destinations.dedup();
        for d in destinations {
            super::query(
                "UPDATE feedback_outbox SET lease_owner = NULL, lease_until = NULL WHERE destination = $1 AND lease_owner = $2",
            )
            .bind(d)
            .bind(owner)
            .execute(&mut w.tx)
            .await?;
        }
        w.commit().await?;
        Ok(counted)
    }

    /// Messages waiting (or dead), oldest first: `hub feedback list`.
    pub async fn feedback_entries(&self, dead_only: bool, limit: i64) -> Result<Vec<FeedbackEntry>, StoreError> {
        let filter = if dead_only { "WHERE state = 'dead'" } else { "" };
        let sql = format!(
            "SELECT id, destination, ticket_id, status, state, attempts, last_error, created_at FROM feedback_outbox {filter} ORDER BY id LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&self.pool).await?;
        super::tx::each(&rows, entry)
    }

    /// A ticket's messages still waiting for their agency, or refused.
    pub async fn feedback_of(&self, ticket_id: &str) -> Result<Vec<FeedbackEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, destination, ticket_id, status, state, attempts, last_error, created_at FROM feedback_outbox
              WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        super::tx::each(&rows, entry)
    }

    /// Pending messages per destination, for `hub status` and metrics.
    pub async fn feedback_depths(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT destination, COUNT(*) FROM feedback_outbox WHERE state = 'pending' GROUP BY destination ORDER BY destination",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
