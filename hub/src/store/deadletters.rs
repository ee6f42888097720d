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

const COLUMNS: &str =
    "id, ticket_id, revision, idempotency_key, body, status_code, response, attempts, state, created_at";

fn from_row(r: sqlx::any::AnyRow) -> DeadLetter {
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

    /// Sends a refused change again, with a fresh idempotency key (the
    /// platform would answer the old key with its old refusal). `body`
    /// replaces the stored one when the fix was in the ticket itself; it must
    /// be the same ticket at the same revision. Returns the new key.
    pub async fn replay_dead_letter(&self, id: i64, body: Option<&str>) -> Result<String, StoreError> {
        let dl = self.dead_letter(id).await?;
        if dl.state != "open" {
            return Err(StoreError::Invalid(format!("dead letter {id} was already {}", dl.state)));
        }
        let body = match body {
            None => dl.body.clone(),
            Some(text) => {
                let ticket: Ticket = serde_json::from_str(text)
                    .map_err(|e| StoreError::Invalid(format!("the replacement body is not a valid ticket: {e}")))?;
                if ticket.ticket_id != dl.ticket_id || ticket.revision != dl.revision {
                    return Err(StoreError::Invalid(format!(
                        "the replacement body must be ticket {} at revision {}",
                        dl.ticket_id, dl.revision
                    )));
                }
                serde_json::to_string(&ticket).expect("a ticket always serializes")
            }
        };
        let now = now_ms();
        let key = format!("{}:{}:replay-{}-{}", dl.ticket_id, dl.revision, dl.id, now);
        let mut w = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE dead_letters SET state = 'replayed', resolved_at = $2 WHERE id = $1 AND state = 'open'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Invalid(format!("dead letter {id} was replayed meanwhile")));
        }
        sqlx::query("INSERT INTO outbox (ticket_id, revision, idempotency_key, body, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $5)")
            .bind(&dl.ticket_id)
            .bind(dl.revision)
            .bind(&key)
            .bind(&body)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(key)
    }
}
