//! The transactional outbox: changes wait here until the platform has them.
//!
//! Rows are leased (owner + expiry) before delivery so that several hubs on
//! one PostgreSQL never send the same change at once, and only the oldest
//! pending change of a ticket is ever leased, so revisions of one ticket go
//! out in order while different tickets go in parallel.
//!
//! A result is recorded only by the lease it was leased under (owner and
//! expiry, the lease's token): a dispatcher whose lease ran out while its
//! request hung, and was taken by another hub, must not delete, retry or
//! release the other hub's lease. Its late result leaves the row alone (the
//! holder's request, sent with the same idempotency key, gets the same
//! answer); only the revision the platform acknowledged is recorded
//! (`deliveries`), which can only move forward.

use std::collections::BTreeMap;

use sqlx::Row as _;

use super::batch;
use super::{Backend, Store, StoreError, Tx, now_ms};

/// A change leased for delivery.
#[derive(Clone, Debug)]
pub struct LeasedChange {
    pub id: i64,
    pub ticket_id: String,
    pub revision: i64,
    pub idempotency_key: String,
    pub body: String,
    pub attempts: i64,
    /// Who holds the lease, and until when: together, the lease's token.
    pub lease_owner: String,
    pub lease_until: i64,
    /// When the change was queued (epoch ms): its delivery latency starts here.
    pub created_at: i64,
}

/// What became of a delivery attempt, to be committed.
#[derive(Clone, Debug)]
pub enum DeliveryResult {
    /// The platform has it (2xx), or has something newer (409): done.
    Done,
    /// The platform refused the change for good (4xx): to the dead letters.
    Rejected { status: u16, response: String },
    /// Try again at `next_attempt_at` (ms); counts as an attempt.
    Retry { next_attempt_at: i64, error: String },
    /// Not attempted (delivery paused): back to the queue as it was.
    Release,
}

/// An outbox row's body is empty when it is its revision's body
/// ([`REVISION_BODY`]): the lease reads it from `ticket_revisions`, so each
/// revision is written once, not once more for the platform. Rows queued
/// before carry their own body and are sent as they are. (Nothing deletes a
/// revision; were one missing, its change would go out empty, be refused
/// and wait in the dead letters, rather than stop the dispatcher.)
/// Migration 0013 makes an older hub refuse such a database.
pub(crate) const REVISION_BODY: &str = "";

/// What a lease returns, in [`leased_change`]'s order: a row's body is its
/// revision's unless the row carries its own.
macro_rules! leased_columns {
    () => {
        "id, ticket_id, revision, idempotency_key,
        CASE WHEN body = '' THEN COALESCE((SELECT r.body FROM ticket_revisions r
            WHERE r.ticket_id = outbox.ticket_id AND r.revision = outbox.revision), '') ELSE body END,
        attempts, lease_owner, lease_until, created_at"
    };
}

const LEASE_SQLITE: &str = concat!(
    "UPDATE outbox SET lease_owner = $1, lease_until = $2
    WHERE id IN (
        SELECT o.id FROM outbox o
        WHERE o.next_attempt_at <= $3 AND (o.lease_until IS NULL OR o.lease_until < $3)
          AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.id < o.id)
        ORDER BY o.id LIMIT $4)
    RETURNING ",
    leased_columns!()
);

const LEASE_POSTGRES: &str = concat!(
    "UPDATE outbox SET lease_owner = $1, lease_until = $2
    WHERE id IN (
        SELECT o.id FROM outbox o
        WHERE o.next_attempt_at <= $3 AND (o.lease_until IS NULL OR o.lease_until < $3)
          AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.id < o.id)
        ORDER BY o.id LIMIT $4
        FOR UPDATE SKIP LOCKED)
    RETURNING ",
    leased_columns!()
);

/// One row of a lease (the columns of `leased_columns!`).
pub(crate) fn leased_change(r: &super::Row) -> LeasedChange {
    LeasedChange {
        id: r.get(0),
        ticket_id: r.get(1),
        revision: r.get(2),
        idempotency_key: r.get(3),
        body: r.get(4),
        attempts: r.get(5),
        lease_owner: r.get(6),
        lease_until: r.get(7),
        created_at: r.get(8),
    }
}

/// A lease to take: who, how many changes at most, for how long.
#[derive(Clone, Debug)]
pub struct LeaseRequest {
    pub owner: String,
    pub limit: i64,
    pub lease_ms: i64,
}

impl Store {
    /// Leases up to `limit` due changes, each the oldest pending change of its ticket.
    pub async fn lease(&self, owner: &str, limit: i64, lease_ms: i64) -> Result<Vec<LeasedChange>, StoreError> {
        self.complete_and_lease(&[], Some(LeaseRequest { owner: owner.to_string(), limit, lease_ms })).await
    }

    /// Commits the results of a batch of deliveries in one transaction,
    /// one statement per kind of result.
    pub async fn complete(&self, results: &[(LeasedChange, DeliveryResult)]) -> Result<(), StoreError> {
        self.complete_and_lease(results, None).await.map(drop)
    }

    /// Commits delivery results and, in the same transaction, leases the
    /// next changes. The dispatcher's steady state is "record what came
    /// back, take more": one commit (one fsync on SQLite, one writer turn)
    /// instead of two. A change whose result is recorded here can be leased
    /// here too (its ticket's next revision), as the lease reads after the
    /// results are written.
    pub async fn complete_and_lease(
        &self,
        results: &[(LeasedChange, DeliveryResult)],
        lease: Option<LeaseRequest>,
    ) -> Result<Vec<LeasedChange>, StoreError> {
        if results.is_empty() && lease.as_ref().is_none_or(|l| l.limit <= 0) {
            return Ok(Vec::new());
        }
        let mut w = self.begin_write_as(super::Writer::Delivery).await?;
        complete_in(&mut w.tx, self.backend, results).await?;
        let leased = match lease {
            Some(l) if l.limit > 0 => lease_in(&mut w.tx, self.backend, &l).await?,
            _ => Vec::new(),
        };
        w.commit().await?;
        Ok(leased)
    }

    /// [`Store::complete_and_lease`] on the writer's own thread (see
    /// `store/lane.rs`): the results go in and come back, with what was
    /// leased or why nothing was.
    pub async fn complete_and_lease_owned(
        &self,
        results: Vec<(LeasedChange, DeliveryResult)>,
        lease: Option<LeaseRequest>,
    ) -> (Vec<(LeasedChange, DeliveryResult)>, Result<Vec<LeasedChange>, StoreError>) {
        let store = self.clone();
        let done = self.on_writer_lane(async move {
            let leased = store.complete_and_lease(&results, lease).await;
            (results, leased)
        });
        match done.await {
            Ok(done) => done,
            // The task died (a bug): the results are lost from memory, but
            // their leases run out and the changes go out again.
            Err(err) => (Vec::new(), Err(StoreError::Invalid(format!("recording delivery results failed: {err}")))),
        }
    }

    /// Frees every lease. Only for a hub that knows it is the store's only
    /// user (the embedded SQLite file), at start-up after a crash.
    pub async fn release_all_leases(&self) -> Result<u64, StoreError> {
        let mut w = self.begin_write().await?;
        let done =
            super::query("UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL")
                .execute(&mut w.tx)
                .await?;
        super::query("UPDATE feedback_outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL")
            .execute(&mut w.tx)
            .await?;
        w.commit().await?;
        Ok(done.rows_affected())
    }

    /// How many changes wait for the platform.
    pub async fn outbox_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&self.pool).await?)
    }

    /// Per destination (`platform` and each agency's back-channel): the
    /// messages waiting and the epoch ms of the oldest, for `/metrics`.
    pub async fn queue_depths(&self) -> Result<Vec<(String, i64, Option<i64>)>, StoreError> {
        let platform = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM outbox").fetch_one(&self.pool).await?;
        let mut out = vec![("platform".to_string(), platform.get(0), platform.get(1))];
        let rows = sqlx::query(
            "SELECT destination, COUNT(*), MIN(created_at) FROM feedback_outbox WHERE state = 'pending' GROUP BY destination ORDER BY destination",
        )
        .fetch_all(&self.pool)
        .await?;
        out.extend(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))));
        Ok(out)
    }

    /// The oldest pending changes, for `hub status`.
    pub async fn outbox_head(&self, limit: i64) -> Result<Vec<(i64, String, i64, i64, Option<String>)>, StoreError> {
        let rows = sqlx::query("SELECT id, ticket_id, revision, attempts, last_error FROM outbox ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
    }
}

async fn lease_in(tx: &mut Tx, backend: Backend, l: &LeaseRequest) -> Result<Vec<LeasedChange>, StoreError> {
    let now = now_ms();
    let sql = match backend {
        Backend::Sqlite => LEASE_SQLITE,
        Backend::Postgres => LEASE_POSTGRES,
    };
    let rows =
        super::query(sql).bind(l.owner.as_str()).bind(now + l.lease_ms).bind(now).bind(l.limit).fetch_all(tx).await?;
    let mut leased: Vec<LeasedChange> = rows.iter().map(leased_change).collect();
    leased.sort_by_key(|c| c.id);
    Ok(leased)
}

async fn complete_in(
    tx: &mut Tx,
    backend: Backend,
    results: &[(LeasedChange, DeliveryResult)],
) -> Result<(), StoreError> {
    if results.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let done: Vec<&LeasedChange> =
        results.iter().filter(|(_, r)| matches!(r, DeliveryResult::Done)).map(|(c, _)| c).collect();
    // The newest revision acknowledged per ticket (one row per ticket in a
    // statement: PostgreSQL refuses to upsert a row twice in one), in key
    // order, so that two hubs on one PostgreSQL take the row locks alike.
    // Tickets are never deleted, so a row of `deliveries` never outlives
    // its ticket; should that change, the rows here go with them.
    let mut acknowledged: BTreeMap<&str, i64> = BTreeMap::new();
    for c in &done {
        let newest = acknowledged.entry(c.ticket_id.as_str()).or_insert(c.revision);
        *newest = (*newest).max(c.revision);
    }
    let acknowledged: Vec<(&str, i64)> = acknowledged.into_iter().collect();
    for chunk in batch::pieces(backend, &acknowledged) {
        let mut q = batch::insert(
            backend,
            "deliveries",
            &["ticket_id", "revision"],
            chunk.len(),
            "ON CONFLICT (ticket_id) DO UPDATE SET revision = excluded.revision WHERE deliveries.revision < excluded.revision",
        );
        for (ticket_id, revision) in chunk {
            q = q.bind(ticket_id.to_string()).bind(*revision);
        }
        q.execute(tx).await?;
    }
    let mut lost = 0usize;
    for (change, result) in results {
        let held = match result {
            DeliveryResult::Done => continue,
            DeliveryResult::Rejected { status, response } => {
                let gone = super::query("DELETE FROM outbox WHERE id = $1 AND lease_owner = $2 AND lease_until = $3")
                    .bind(change.id)
                    .bind(&change.lease_owner)
                    .bind(change.lease_until)
                    .execute(tx)
                    .await?;
                let held = gone.rows_affected() == 1;
                if held {
                    super::query(
                        "INSERT INTO dead_letters (ticket_id, revision, idempotency_key, body, status_code, response, attempts, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&change.ticket_id)
                    .bind(change.revision)
                    .bind(&change.idempotency_key)
                    .bind(&change.body)
                    .bind(i64::from(*status))
                    .bind(response)
                    .bind(change.attempts + 1)
                    .bind(now)
                    .execute(tx)
                    .await?;
                }
                held
            }
            DeliveryResult::Retry { next_attempt_at, error } => {
                super::query(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL
                     WHERE id = $1 AND lease_owner = $4 AND lease_until = $5",
                )
                .bind(change.id)
                .bind(*next_attempt_at)
                .bind(error)
                .bind(&change.lease_owner)
                .bind(change.lease_until)
                .execute(tx)
                .await?
                .rows_affected()
                    == 1
            }
            DeliveryResult::Release => {
                super::query(
                    "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND lease_until = $3",
                )
                .bind(change.id)
                .bind(&change.lease_owner)
                .bind(change.lease_until)
                .execute(tx)
                .await?
                .rows_affected()
                    == 1
            }
        };
        lost += usize::from(!held);
    }
    // Done changes leave the outbox, each only by the lease it went out under.
    for chunk in batch::pieces(backend, &done) {
        let sql = format!(
            "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o JOIN {} AS v
               ON o.id = v.column1 AND o.lease_owner = v.column2 AND o.lease_until = v.column3)",
            batch::values_table(backend, 3, chunk.len(), 1)
        );
        let mut q = super::query(sql).reserve(3 * chunk.len());
        for c in chunk {
            q = q.bind(c.id).bind(c.lease_owner.clone()).bind(c.lease_until);
        }
        let deleted = usize::try_from(q.execute(tx).await?.rows_affected()).unwrap_or(usize::MAX);
        lost += chunk.len().saturating_sub(deleted);
    }
    if lost > 0 {
        // Another dispatcher took these over when their leases ran out: its
        // results count; ours, for the same idempotency keys, add nothing.
        tracing::info!(lost, "results arrived after their lease had passed to another dispatcher; left to it");
    }
    Ok(())
}
