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

/// What one source's records became, read from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Distinct records stored (each `(record id, version)` once).
    pub received: i64,
    pub created: i64,
    pub updated: i64,
    /// Records that joined another channel's ticket (cross-channel duplicates).
    pub merged: i64,
    pub stale: i64,
    pub quarantined: i64,
    /// Revisions this source's records caused that the platform has acknowledged.
    pub delivered: i64,
}

impl Store {
    /// Per source: records stored, what they became, and what was delivered.
    pub async fn source_counts(&self) -> Result<std::collections::BTreeMap<String, SourceCounts>, StoreError> {
        let mut out: std::collections::BTreeMap<String, SourceCounts> = Default::default();
        let rows = sqlx::query("SELECT system, outcome, COUNT(*) FROM raw_records GROUP BY system, outcome")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let (system, outcome, n): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
            let c = out.entry(system).or_default();
            c.received += n;
            match outcome.as_str() {
                "created" => c.created += n,
                "updated" => c.updated += n,
                "merged" => c.merged += n,
                "stale" => c.stale += n,
                "quarantined" => c.quarantined += n,
                _ => {}
            }
        }
        let rows = sqlx::query(
            "SELECT r.system, COUNT(*) FROM ticket_revisions v
               JOIN raw_records r ON r.id = v.raw_record_id
               JOIN deliveries d ON d.ticket_id = v.ticket_id
              WHERE v.revision <= d.revision
              GROUP BY r.system",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            out.entry(row.get(0)).or_default().delivered = row.get(1);
        }
        Ok(out)
    }

    pub async fn ticket(&self, ticket_id: &str) -> Result<StoredTicket, StoreError> {
        let row = sqlx::query(
            "SELECT t.body, COALESCE(d.revision, 0) FROM tickets t LEFT JOIN deliveries d ON d.ticket_id = t.ticket_id
              WHERE t.ticket_id = $1",
        )
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
               (SELECT CAST(COALESCE(SUM(revision), 0) AS BIGINT) FROM deliveries),
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
