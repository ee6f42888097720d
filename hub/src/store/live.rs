//! The live feed's reads: ticket revisions by their increasing number
//! (`ticket_revisions.id`, migration 0010), with where and what each
//! ticket is (`ticket_facts`), for the centre's screen. Nothing personal:
//! no body, no source record.

use sqlx::Row;

use super::{Store, StoreError};

/// One stored revision as the screen shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRevision {
    /// The revision's number in the store: the feed's event id.
    pub id: i64,
    pub ticket_id: String,
    pub revision: i64,
    /// `created`, `updated`, `merged`, a callback's status…
    pub cause: String,
    /// When the hub stored it, epoch ms.
    pub created_at: i64,
    /// The ticket's 12-digit division code as it stands now; empty when
    /// the ticket has no facts (yet).
    pub region: String,
    pub county: String,
    pub township: String,
    pub category: String,
    pub channel: String,
    pub status: String,
}

impl Store {
    /// Revisions numbered above `after`, lowest first, at most `limit`.
    pub async fn revisions_after(&self, after: i64, limit: i64) -> Result<Vec<LiveRevision>, StoreError> {
        // The revisions first, then their tickets counted, then their
        // facts: a ticket changed after the revisions were read is counted
        // later, but never shown without its facts.
        let revisions: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, ticket_id FROM ticket_revisions WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        let Some(&(last, _)) = revisions.last() else { return Ok(Vec::new()) };
        let mut tickets: Vec<String> = revisions.into_iter().map(|(_, t)| t).collect();
        tickets.sort_unstable();
        tickets.dedup();
        self.count_these(&tickets).await?;
        let rows = sqlx::query(
            "SELECT r.id, r.ticket_id, r.revision, r.cause, r.created_at,
                    COALESCE(f.region, ''), COALESCE(f.county, ''), COALESCE(f.township, ''),
                    COALESCE(f.category, ''), COALESCE(f.channel, ''), COALESCE(f.status, '')
               FROM ticket_revisions r LEFT JOIN ticket_facts f ON f.ticket_id = r.ticket_id
              WHERE r.id > $1 AND r.id <= $2 ORDER BY r.id",
        )
        .bind(after)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| LiveRevision {
                id: r.get(0),
                ticket_id: r.get(1),
                revision: r.get(2),
                cause: r.get(3),
                created_at: r.get(4),
                region: r.get(5),
                county: r.get(6),
                township: r.get(7),
                category: r.get(8),
                channel: r.get(9),
                status: r.get(10),
            })
            .collect())
    }

    /// The highest revision number stored, 0 when none: where a feed that
    /// starts now begins.
    pub async fn last_revision_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM ticket_revisions").fetch_one(&self.pool).await?;
        Ok(id.unwrap_or(0))
    }
}
