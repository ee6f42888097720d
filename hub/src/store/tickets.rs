//! Reading tickets back: for updates, for `hub ticket show`, for summaries.

use sqlx::Row;

use super::{Store, StoreError};
use crate::ticket::Ticket;

/// A ticket with the hub's delivery bookkeeping.
#[derive(Debug)]
pub struct StoredTicket {
    pub ticket: Ticket,
    pub delivered_revision: i64,
    /// (revision, cause, created_at ms)
    pub revisions: Vec<(i64, String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSummary {
    pub tickets: i64,
    pub revisions: i64,
    pub delivered_revisions: i64,
    pub pending: i64,
    pub dead_letters: i64,
    pub quarantined: i64,
}

impl Store {
    pub async fn ticket(&self, ticket_id: &str) -> Result<StoredTicket, StoreError> {
        let row = sqlx::query("SELECT body, delivered_revision FROM tickets WHERE ticket_id = $1")
            .bind(ticket_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no ticket {ticket_id}")))?;
        let body: String = row.get(0);
        let ticket = serde_json::from_str(&body)
            .map_err(|source| StoreError::CorruptTicket { ticket_id: ticket_id.to_string(), source })?;
        let revisions = sqlx::query(
            "SELECT revision, cause, created_at FROM ticket_revisions WHERE ticket_id = $1 ORDER BY revision",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        Ok(StoredTicket { ticket, delivered_revision: row.get(1), revisions })
    }

    /// The ticket a source record is linked to, if any.
    pub async fn ticket_for_source(&self, system: &str, record_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT ticket_id FROM source_links WHERE system = $1 AND record_id = $2")
            .bind(system)
            .bind(record_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every ticket with its current revision, sorted by id.
    pub async fn ticket_revisions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT ticket_id, revision FROM tickets ORDER BY ticket_id").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn summary(&self) -> Result<TicketSummary, StoreError> {
        let row = sqlx::query(
            "SELECT
               (SELECT COUNT(*) FROM tickets),
               (SELECT CAST(COALESCE(SUM(revision), 0) AS BIGINT) FROM tickets),
               (SELECT CAST(COALESCE(SUM(delivered_revision), 0) AS BIGINT) FROM tickets),
               (SELECT COUNT(*) FROM outbox),
               (SELECT COUNT(*) FROM dead_letters WHERE state = 'open'),
               (SELECT COUNT(*) FROM quarantine WHERE state = 'open')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(TicketSummary {
            tickets: row.get(0),
            revisions: row.get(1),
            delivered_revisions: row.get(2),
            pending: row.get(3),
            dead_letters: row.get(4),
            quarantined: row.get(5),
        })
    }
}
