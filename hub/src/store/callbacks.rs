//! The platform's callbacks, the mirror of intake: each is kept as received
//! and applied to its ticket in one transaction, before it is answered. The
//! same `X-Event-Id` again finds its row and changes nothing.

use sqlx::Row as _;

use super::duplicates::save;
use super::feedback;
use super::text::{MAX_REASON_CHARS, clean};
use super::{Backend, Store, StoreError, Tx, now_ms};
use crate::callbacks::event::{EventStatus, PlatformEvent};
use crate::feedback::Plan;
use crate::ticket::Ticket;
use crate::ticket::handling::{Effect, Handling};

/// Lines of a ticket's history read at most.
pub const MAX_HISTORY: i64 = 1000;

/// What taking a callback did, and so how it is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The ticket's state moved (200).
    Applied { ticket_id: String },
    /// A frown sent the matter back: a new revision is on its way to the
    /// platform (200).
    Reopened { ticket_id: String, revision: i64 },
    /// Older than the last event applied to its ticket: recorded, nothing
    /// moved back (200).
    Stale { ticket_id: String },
    /// This event id was taken before (200, or 422 again if it was held).
    Duplicate { held: Option<String> },
    /// Unknown ticket or status, or a body that cannot be read: kept for a
    /// person (422).
    Held { reason: String },
}

impl CallbackOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            CallbackOutcome::Applied { .. } => "applied",
            CallbackOutcome::Reopened { .. } => "reopened",
            CallbackOutcome::Stale { .. } => "stale",
            CallbackOutcome::Duplicate { .. } => "duplicate",
            CallbackOutcome::Held { .. } => "held",
        }
    }
}

/// A kept callback, for `hub callbacks list|show`.
#[derive(Clone, Debug)]
pub struct StoredCallback {
    pub id: i64,
    pub event_id: String,
    pub ticket_id: Option<String>,
    pub status: Option<String>,
    pub at: Option<i64>,
    pub received_at: i64,
    pub outcome: String,
    pub reason: Option<String>,
    /// `done`, or `open` while it waits for a person.
    pub state: String,
    pub body: Vec<u8>,
}

/// One line of a ticket's history.
#[derive(Clone, Debug)]
pub struct TicketEvent {
    pub at: i64,
    pub recorded_at: i64,
    pub kind: String,
    pub detail: String,
}

/// Reads a callback's body: the event and its known status, or why not.
fn read(body: &[u8]) -> Result<(PlatformEvent, EventStatus), String> {
    let event: PlatformEvent = serde_json::from_slice(body).map_err(|e| {
        // By position: serde's message may quote a value.
        format!("the body is not a status event (line {}, column {})", e.line(), e.column())
    })?;
    let status = EventStatus::parse(&event.status).ok_or_else(|| {
        format!("unknown status `{}` (known: {})", clean(&event.status, 40), EventStatus::ALL.join(", "))
    })?;
    Ok((event, status))
}

/// The line a callback leaves in its ticket's history: its status, the
/// department and deadline it names, never the note (which may name people).
fn describe(status: EventStatus, e: &PlatformEvent, effect: Effect) -> String {
    let mut line = status.as_str().to_string();
    if let Some(d) = &e.department {
        // Sent to a department (派单, 上报); anything else was done by it.
        let by = if matches!(status, EventStatus::Dispatched | EventStatus::Escalated) { "to" } else { "by" };
        line.push_str(&format!(" {by} {}", clean(d, 80)));
    }
    if let Some(due) = e.due_at {
        line.push_str(&format!(", due {}", due.format("%Y-%m-%d %H:%M")));
    }
    if let Some(ev) = &e.evaluation {
        line.push_str(&format!(", rated {}", ev.result.as_str()));
    }
    if let Some(m) = &e.mediation {
        line.push_str(&format!(", mediation {:?} for {}", m.result, clean(&m.case_no, 80)));
    }
    match effect {
        Effect::Stale => line.push_str(" (older than the last event applied: recorded, status unchanged)"),
        Effect::Reopened => line.push_str(" (reopened: sent back to in_progress)"),
        Effect::Confirmed => line.push_str(" (sent back already: the origins are not told twice)"),
        Effect::Applied => {}
    }
    line
}

impl Store {
    /// Keeps a verified callback and applies it, in one transaction.
    /// Every origin of the ticket with a back-channel (see
    /// [`Store::set_feedback_plan`]) is told of the change through the
    /// feedback outbox, in the same transaction.
    pub async fn take_callback(&self, event_id: &str, body: &[u8]) -> Result<CallbackOutcome, StoreError> {
        self.take_signed_callback(event_id, None, body).await
    }

    /// [`Store::take_callback`] for a callback signed at `timestamp` (its
    /// `X-Timestamp`): the same signed bytes sent again under another event
    /// id, a replay by whoever saw them, are answered as seen before and
    /// not applied again.
    pub async fn take_signed_callback(
        &self,
        event_id: &str,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<CallbackOutcome, StoreError> {
        let digest = timestamp.map(|ts| {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(ts.trim().as_bytes());
            h.update(b".");
            h.update(body);
            h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
        let plan = self.feedback_plan();
        let now = now_ms();
        let mut w = self.begin_write().await?;
        let seen: Option<(String, Option<String>)> =
            super::query("SELECT outcome, reason FROM callbacks WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&mut w.tx)
                .await?
                .map(|r| (r.get(0), r.get(1)));
        if let Some((outcome, reason)) = seen {
            return Ok(CallbackOutcome::Duplicate { held: (outcome == "held").then(|| reason.unwrap_or_default()) });
        }
        let parsed = read(body);
        let (ticket_id, status, at) = match &parsed {
            Ok((e, s)) => {
                (Some(clean(&e.ticket_id, 256).into_owned()), Some(s.as_str()), Some(e.at.timestamp_millis()))
            }
            Err(_) => (None, None, None),
        };
        let inserted = super::query(
            "INSERT INTO callbacks (event_id, ticket_id, status, at, received_at, body, outcome, state, digest)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 'done', $7) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(event_id)
        .bind(ticket_id.clone())
        .bind(status)
        .bind(at)
        .bind(now)
        .bind(body.to_vec())
        .bind(digest)
        .fetch_optional(&mut w.tx)
        .await?;
        let Some(row) = inserted else {
            // Another hub took this event meanwhile, or these signed bytes
            // came before under another id (a replay): seen before.
            return Ok(CallbackOutcome::Duplicate { held: None });
        };
        let id: i64 = row.get(0);
        let outcome = match parsed {
            Err(reason) => hold(&mut w.tx, id, reason).await?,
            Ok((event, status)) => apply(&mut w.tx, self.backend, &plan, (id, event_id), &event, status, now).await?,
        };
        w.commit().await?;
        if matches!(outcome, CallbackOutcome::Applied { .. } | CallbackOutcome::Reopened { .. }) {
            self.feedback_queued.notify_waiters();
        }
        Ok(outcome)
    }

    /// Applies a held callback again, as received, under its own event id:
    /// after the hub learnt its status, say, or its ticket was restored.
    /// Held again, with the reason of now, if it still cannot be applied.
    pub async fn replay_callback(&self, id: i64) -> Result<CallbackOutcome, StoreError> {
        let plan = self.feedback_plan();
        let now = now_ms();
        let mut w = self.begin_write().await?;
        let (event_id, body) = held_callback(&mut w.tx, self.backend, id).await?;
        let outcome = match read(&body) {
            Err(reason) => hold(&mut w.tx, id, reason).await?,
            Ok((event, status)) => {
                super::query("UPDATE callbacks SET ticket_id = $2, status = $3, at = $4, state = 'done' WHERE id = $1")
                    .bind(id)
                    .bind(clean(&event.ticket_id, 256).into_owned())
                    .bind(status.as_str())
                    .bind(event.at.timestamp_millis())
                    .execute(&mut w.tx)
                    .await?;
                apply(&mut w.tx, self.backend, &plan, (id, &event_id), &event, status, now).await?
            }
        };
        w.commit().await?;
        self.feedback_queued.notify_waiters();
        Ok(outcome)
    }

    /// Closes a held callback without applying it: a person decided it
    /// has no ticket here to change.
    pub async fn dismiss_callback(&self, id: i64) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        held_callback(&mut w.tx, self.backend, id).await?;
        super::query("UPDATE callbacks SET outcome = 'dismissed', state = 'done' WHERE id = $1")
            .bind(id)
            .execute(&mut w.tx)
            .await?;
        w.commit().await
    }

    /// Kept callbacks, newest first: only those waiting for a person when `open`.
    pub async fn callbacks(&self, open: bool, limit: i64) -> Result<Vec<StoredCallback>, StoreError> {
        let filter = if open { "WHERE state = 'open'" } else { "" };
        let sql = format!(
            "SELECT id, event_id, ticket_id, status, at, received_at, outcome, reason, state, body FROM callbacks {filter} ORDER BY id DESC LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(&self.pool).await?;
        super::tx::each(&rows, callback_row)
    }

    pub async fn callback(&self, id: i64) -> Result<StoredCallback, StoreError> {
        sqlx::query(
            "SELECT id, event_id, ticket_id, status, at, received_at, outcome, reason, state, body FROM callbacks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| super::Row::from_any(&r).map(|r| callback_row(&r)))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("no callback {id}")))
    }

    /// A ticket's history, oldest first: its last [`MAX_HISTORY`] lines
    /// (a matter urged every hour for months stays readable).
    pub async fn ticket_events(&self, ticket_id: &str) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, recorded_at, kind, detail FROM ticket_events WHERE ticket_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(ticket_id)
        .bind(MAX_HISTORY)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .rev()
            .map(|r| TicketEvent { at: r.get(0), recorded_at: r.get(1), kind: r.get(2), detail: r.get(3) })
            .collect())
    }

    /// The platform's side of a ticket's state, if it has sent any event.
    pub async fn handling(&self, ticket_id: &str) -> Result<Option<Handling>, StoreError> {
        let text: Option<Option<String>> = sqlx::query_scalar("SELECT handling FROM tickets WHERE ticket_id = $1")
            .bind(ticket_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(text.flatten().and_then(|t| serde_json::from_str(&t).ok()))
    }
}

pub(super) fn callback_row(r: &super::Row) -> StoredCallback {
    StoredCallback {
        id: r.get(0),
        event_id: r.get(1),
        ticket_id: r.get(2),
        status: r.get(3),
        at: r.get(4),
        received_at: r.get(5),
        outcome: r.get(6),
        reason: r.get(7),
        state: r.get(8),
        body: r.get(9),
    }
}

/// A callback held for a person: its event id and body, locked for the
/// transaction on PostgreSQL; anything else is refused with what it is.
async fn held_callback(tx: &mut Tx, backend: Backend, id: i64) -> Result<(String, Vec<u8>), StoreError> {
    let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT event_id, body, state, outcome FROM callbacks WHERE id = $1{lock}");
    let row = super::query(sql)
        .bind(id)
        .fetch_optional(tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no callback {id}")))?;
    let (state, outcome): (String, String) = (row.get(2), row.get(3));
    if state != "open" {
        return Err(StoreError::Invalid(format!("callback {id} is not held for a person: it was {outcome}")));
    }
    Ok((row.get(0), row.get(1)))
}

async fn hold(tx: &mut Tx, id: i64, reason: String) -> Result<CallbackOutcome, StoreError> {
    let reason = clean(&reason, MAX_REASON_CHARS).into_owned();
    super::query("UPDATE callbacks SET outcome = 'held', reason = $2, state = 'open' WHERE id = $1")
        .bind(id)
        .bind(&reason)
        .execute(tx)
        .await?;
    Ok(CallbackOutcome::Held { reason })
}

async fn apply(
    tx: &mut Tx,
    backend: Backend,
    plan: &Plan,
    (id, event_id): (i64, &str),
    event: &PlatformEvent,
    status: EventStatus,
    now: i64,
) -> Result<CallbackOutcome, StoreError> {
    // Another hub on the same database waits here for this ticket's row.
    let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT body, handling FROM tickets WHERE ticket_id = $1{lock}");
    let row = super::query(sql).bind(&event.ticket_id).fetch_optional(tx).await?;
    let Some(row) = row else {
        return hold(tx, id, format!("no ticket {} in this hub", clean(&event.ticket_id, 80))).await;
    };
    let body: String = row.get(0);
    let handling: Option<String> = row.get(1);
    let mut ticket: Ticket = serde_json::from_str(&body)
        .map_err(|source| StoreError::CorruptTicket { ticket_id: event.ticket_id.clone(), source })?;
    let mut h: Handling = handling.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let effect = h.apply(status, event);
    let ticket_id = ticket.ticket_id.clone();
    let (label, outcome) = match effect {
        Effect::Stale => ("stale", CallbackOutcome::Stale { ticket_id: ticket_id.clone() }),
        Effect::Confirmed => ("confirmed", CallbackOutcome::Applied { ticket_id: ticket_id.clone() }),
        Effect::Applied => {
            // An event that sets no status (urged) leaves the ticket's own
            // (a withdrawal stays a withdrawal).
            if status.ticket_status().is_some() {
                h.impose(&mut ticket.draft);
            } else {
                h.overlay(&mut ticket.draft);
            }
            let body = serde_json::to_string(&ticket).expect("a ticket always serializes");
            super::query("UPDATE tickets SET status = $2, body = $3, updated_at = $4 WHERE ticket_id = $1")
                .bind(&ticket_id)
                .bind(ticket.draft.status.as_str())
                .bind(body)
                .bind(now)
                .execute(tx)
                .await?;
            ("applied", CallbackOutcome::Applied { ticket_id: ticket_id.clone() })
        }
        Effect::Reopened => {
            h.impose(&mut ticket.draft);
            ticket.revision += 1;
            save(tx, backend, &ticket, "reopened", now).await?;
            ("reopened", CallbackOutcome::Reopened { ticket_id: ticket_id.clone(), revision: ticket.revision })
        }
    };
    if effect != Effect::Stale {
        // The origins hear what happened: the event's own status, then,
        // when a frown came with it (on `closed`, say), the reopening it
        // caused, each under its own message id. What they heard already
        // they do not hear again.
        let reopen_key = format!("{event_id}:reopened");
        let mut told = Vec::new();
        if effect != Effect::Confirmed {
            told.push((event_id, status));
        }
        if effect == Effect::Reopened && status != EventStatus::Reopened {
            told.push((reopen_key.as_str(), EventStatus::Reopened));
        }
        for (key, status) in told {
            let change = feedback::Told {
                key,
                status,
                department: event.department.as_deref(),
                note: event.note.as_deref(),
                at: event.at,
                due_at: event.due_at,
                mediation: event.mediation.as_ref().map(|m| (m.case_no.as_str(), m.result.as_str())),
            };
            feedback::enqueue(tx, plan, &ticket, &change, now).await?;
        }
        super::deadlines::track_all(tx, backend, &[(&ticket, event.at)]).await?;
        let changed = super::stats::Changed { ticket: &ticket, handling: Some(&h), at: event.at.timestamp_millis() };
        super::stats::refresh(tx, backend, &[changed]).await?;
        // The stamp moves: an intake that read this row before is planned again.
        super::query("UPDATE tickets SET handling = $2, stamp = stamp + 1 WHERE ticket_id = $1")
            .bind(&ticket_id)
            .bind(serde_json::to_string(&h).expect("handling always serializes"))
            .execute(tx)
            .await?;
    }
    super::query("UPDATE callbacks SET outcome = $2 WHERE id = $1").bind(id).bind(label).execute(tx).await?;
    record_event(tx, &ticket_id, event.at.timestamp_millis(), "callback", &describe(status, event, effect), now)
        .await?;
    Ok(outcome)
}

/// Adds a line to a ticket's history.
pub(crate) async fn record_event(
    tx: &mut Tx,
    ticket_id: &str,
    at: i64,
    kind: &str,
    detail: &str,
    now: i64,
) -> Result<(), StoreError> {
    super::query("INSERT INTO ticket_events (ticket_id, at, recorded_at, kind, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(ticket_id)
        .bind(at)
        .bind(now)
        .bind(kind)
        .bind(clean(detail, MAX_REASON_CHARS).into_owned())
        .execute(tx)
        .await?;
    Ok(())
}
