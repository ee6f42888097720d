//! Changes the platform refused for good (400, 422 and any other 4xx
//! without a rule of its own), parked with its answer for a person. The
//! ticket's later revisions are not held back by a dead letter: each carries
//! the whole ticket.

use sqlx::Row;

use super::{Store, StoreError, now_ms};
use crate::ticket::Ticket;

#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub id: i64,
    pub ticket_id: String,
    pub revision: i64,
    pub idempotency_key: String,
    pub body: String,
    pub status_code: i64,
    pub response: String,
    pub attempts: i64,
    pub state: String,
    pub created_at: i64,
}

pub(super) const COLUMNS: &str =
    "id, ticket_id, revision, idempotency_key, body, status_code, response, attempts, state, created_at";

pub(super) fn from_row(r: sqlx::any::AnyRow) -> DeadLetter {
    DeadLetter {
        id: r.get(0),
        ticket_id: r.get(1),
        revision: r.get(2),
        idempotency_key: r.get(3),
        body: r.get(4),
        status_code: r.get(5),
        response: r.get(6),
        attempts: r.get(7),
        state: r.get(8),
        created_at: r.get(9),
    }
}

impl Store {
    /// Dead letters, newest last; `all` includes those already replayed.
    pub async fn dead_letters(&self, all: bool) -> Result<Vec<DeadLetter>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM dead_letters {} ORDER BY id", if all { "" } else { "WHERE state = 'open'" });
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    pub async fn dead_letter(&self, id: i64) -> Result<DeadLetter, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(from_row)
            .ok_or_else(|| StoreError::NotFound(format!("no dead letter {id}")))
    }

    /// Sends a refused ticket again, as its newest revision.
    ///
    /// The replay is a new revision of the ticket (written to the ticket, its
    /// revisions and the outbox in one transaction), never the refused
    /// revision again: the ticket may have moved on since (a later revision
    /// delivered, which the platform would hold against the old number with
    /// a `409`, and the correction would be lost as "done"), and a correction
    /// must also reach the ticket itself, or the next change of the ticket
    /// would undo it. It goes out after the ticket's changes already queued.
    ///
    /// Without `body` the ticket as the hub holds it now is sent (the fix
    /// was on the platform's side). `body` is a corrected ticket: the same
    /// ticket, at the revision the hub holds now (`hub deadletters show`), so that
    /// a correction made to an old revision cannot undo later changes.
    pub async fn replay_dead_letter(&self, id: i64, body: Option<&str>) -> Result<Replayed, StoreError> {
        let dl = self.dead_letter(id).await?;
        if dl.state != "open" {
            return Err(StoreError::Invalid(format!("dead letter {id} was already {}", dl.state)));
        }
        let corrected = match body {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Ticket>(text)
                    .map_err(|e| StoreError::Invalid(format!("the replacement body is not a valid ticket: {e}")))?,
            ),
        };
        let now = now_ms();
        let mut w = self.begin_write().await?;
        let updated = super::query(
            "UPDATE dead_letters SET state = 'replayed', resolved_at = $2 WHERE id = $1 AND state = 'open'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut w.tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Invalid(format!("dead letter {id} was replayed meanwhile")));
        }
        let current = super::duplicates::load(&mut w.tx, &dl.ticket_id).await?;
        let mut ticket = match corrected {
            None => current.clone(),
            Some(t) if t.ticket_id == current.ticket_id && t.revision == current.revision => t,
            Some(t) if t.ticket_id != current.ticket_id => {
                return Err(StoreError::Invalid(format!(
                    "the replacement body is ticket {}, not {}",
                    t.ticket_id, current.ticket_id
                )));
            }
            Some(t) => {
                return Err(StoreError::Invalid(format!(
                    "the replacement body has revision {}, but ticket {} is at revision {} now (the refused one was {}): \
                     correct the ticket as it is now (`hub deadletters show {id}` shows it), so that no later change is undone",
                    t.revision, current.ticket_id, current.revision, dl.revision
                )));
            }
        };
        ticket.revision = current.revision + 1;
        super::duplicates::save(&mut w.tx, self.backend, &ticket, &format!("dead letter {id} replayed"), now).await?;
        w.commit().await?;
        // The key `save` gave the outbox row: new, as the revision is new.
        let idempotency_key = format!("{}:{}", ticket.ticket_id, ticket.revision);
        Ok(Replayed { ticket_id: ticket.ticket_id, revision: ticket.revision, idempotency_key })
    }
}

/// A replayed dead letter: the new revision that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    pub ticket_id: String,
    pub revision: i64,
    pub idempotency_key: String,
}
