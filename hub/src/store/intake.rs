//! Storing what a connector handed over: the raw record, and the ticket
//! revision and outbox row it causes, all in the caller's transaction.

use sqlx::{Any, Row, Transaction};

use super::{StoreError, now_ms};
use crate::ticket::{Channel, Source, Ticket, TicketDraft, Timestamp};

/// One record ready to be stored: its identity, its bytes, and what the
/// mapping made of it.
pub struct IntakeItem {
    pub system: String,
    pub record_id: String,
    pub version: i64,
    pub received_at: Timestamp,
    pub content_type: &'static str,
    pub encoding: Option<String>,
    /// Transport metadata as a JSON object.
    pub metadata: String,
    pub payload: Vec<u8>,
    pub warnings: Vec<String>,
    pub change: Result<Applied, String>,
}

/// A mapped record: the draft of the ticket it describes.
#[derive(Clone, Debug)]
pub struct Applied {
    pub channel: Channel,
    pub draft: TicketDraft,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredOutcome {
    Created { ticket_id: String, revision: i64 },
    Updated { ticket_id: String, revision: i64 },
    Duplicate,
    Stale,
    Quarantined { reason: String, quarantine_id: i64 },
}

impl StoredOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            StoredOutcome::Created { .. } => "created",
            StoredOutcome::Updated { .. } => "updated",
            StoredOutcome::Duplicate => "duplicate",
            StoredOutcome::Stale => "stale",
            StoredOutcome::Quarantined { .. } => "quarantined",
        }
    }
}

enum Plan {
    Create,
    Update { ticket_id: String },
    Stale { ticket_id: String },
    Quarantine,
}

/// The key under which a quarantined record's bytes are kept. Its content
/// hash, not the identity it claims: the same bad bytes again are a
/// duplicate, while a corrected resend of the same record id and version is
/// a new record and goes through.
pub fn quarantine_key(payload: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(payload);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

pub(crate) async fn store_item(
    tx: &mut Transaction<'static, Any>,
    item: &IntakeItem,
) -> Result<StoredOutcome, StoreError> {
    let plan = match &item.change {
        Err(_) => Plan::Quarantine,
        Ok(_) => match find_link(tx, &item.system, &item.record_id).await? {
            None => Plan::Create,
            Some((ticket_id, version)) if item.version > version => Plan::Update { ticket_id },
            Some((ticket_id, _)) => Plan::Stale { ticket_id },
        },
    };
    let (key, version, outcome_label, ticket_id) = match &plan {
        Plan::Quarantine => (quarantine_key(&item.payload), 0, "quarantined", None),
        Plan::Create => (item.record_id.clone(), item.version, "created", None),
        Plan::Update { ticket_id } => (item.record_id.clone(), item.version, "updated", Some(ticket_id.clone())),
        Plan::Stale { ticket_id } => (item.record_id.clone(), item.version, "stale", Some(ticket_id.clone())),
    };
    let warnings = (!item.warnings.is_empty()).then(|| serde_json::to_string(&item.warnings).unwrap_or_default());
    let now = now_ms();
    let raw_id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO raw_records (system, record_id, version, received_at, stored_at, content_type, encoding, metadata, payload, outcome, ticket_id, warnings)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (system, record_id, version) DO NOTHING
         RETURNING id",
    )
    .bind(&item.system)
    .bind(&key)
    .bind(version)
    .bind(item.received_at.timestamp_millis())
    .bind(now)
    .bind(item.content_type)
    .bind(item.encoding.as_deref())
    .bind(&item.metadata)
    .bind(item.payload.as_slice())
    .bind(outcome_label)
    .bind(ticket_id.as_deref())
    .bind(warnings.as_deref())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(raw_id) = raw_id else {
        return Ok(StoredOutcome::Duplicate);
    };
    match (plan, &item.change) {
        (_, Err(reason)) => {
            let quarantine_id: i64 = sqlx::query_scalar(
                "INSERT INTO quarantine (raw_record_id, system, reason, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(raw_id)
            .bind(&item.system)
            .bind(reason)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            Ok(StoredOutcome::Quarantined { reason: reason.clone(), quarantine_id })
        }
        (Plan::Stale { .. }, Ok(_)) => Ok(StoredOutcome::Stale),
        (plan, Ok(applied)) => {
            let source = Source {
                channel: applied.channel,
                system: item.system.clone(),
                record_id: item.record_id.clone(),
                version: item.version,
                received_at: item.received_at,
            };
            let existing = match plan {
                Plan::Update { ticket_id } => Some(ticket_id),
                _ => None,
            };
            apply_change(tx, raw_id, existing, applied.draft.clone(), source).await
        }
    }
}

async fn find_link(
    tx: &mut Transaction<'static, Any>,
    system: &str,
    record_id: &str,
) -> Result<Option<(String, i64)>, StoreError> {
    let row = sqlx::query("SELECT ticket_id, version FROM source_links WHERE system = $1 AND record_id = $2")
        .bind(system)
        .bind(record_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Creates a ticket from a source record, or makes the next revision of the
/// ticket the source is linked to, and queues the change for the platform.
pub(crate) async fn apply_change(
    tx: &mut Transaction<'static, Any>,
    raw_id: i64,
    existing: Option<String>,
    draft: TicketDraft,
    source: Source,
) -> Result<StoredOutcome, StoreError> {
    let now = now_ms();
    let (ticket, created) = match existing {
        None => {
            let ticket_id = uuid::Uuid::now_v7().simple().to_string();
            (Ticket::create(ticket_id, draft, source.clone()), true)
        }
        Some(ticket_id) => {
            let mut ticket = super::tickets::load(tx, &ticket_id).await?;
            ticket.apply_update(draft, source.clone());
            (ticket, false)
        }
    };
    let body = serde_json::to_string(&ticket).expect("a ticket always serializes");
    if created {
        sqlx::query("INSERT INTO tickets (ticket_id, revision, status, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
            .bind(&ticket.ticket_id)
            .bind(ticket.revision)
            .bind(ticket.draft.status.as_str())
            .bind(&body)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO source_links (system, record_id, ticket_id, version, linked_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&source.system)
        .bind(&source.record_id)
        .bind(&ticket.ticket_id)
        .bind(source.version)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    } else {
        sqlx::query("UPDATE tickets SET revision = $2, status = $3, body = $4, updated_at = $5 WHERE ticket_id = $1")
            .bind(&ticket.ticket_id)
            .bind(ticket.revision)
            .bind(ticket.draft.status.as_str())
            .bind(&body)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE source_links SET version = $3 WHERE system = $1 AND record_id = $2")
            .bind(&source.system)
            .bind(&source.record_id)
            .bind(source.version)
            .execute(&mut **tx)
            .await?;
    }
    let cause = if created { "created" } else { "updated" };
    sqlx::query("INSERT INTO ticket_revisions (ticket_id, revision, raw_record_id, cause, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&ticket.ticket_id)
        .bind(ticket.revision)
        .bind(raw_id)
        .bind(cause)
        .bind(&body)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    super::outbox::enqueue(tx, &ticket.ticket_id, ticket.revision, &body, now).await?;
    Ok(if created {
        StoredOutcome::Created { ticket_id: ticket.ticket_id, revision: ticket.revision }
    } else {
        StoredOutcome::Updated { ticket_id: ticket.ticket_id, revision: ticket.revision }
    })
}

impl super::Store {
    /// Stores a batch in one transaction (group commit). If the batch fails
    /// as a whole (a concurrent hub on PostgreSQL linked the same record,
    /// say), each item is retried in a transaction of its own so that one
    /// record's trouble is only that record's.
    pub async fn store_batch(&self, items: &[IntakeItem]) -> Vec<Result<StoredOutcome, StoreError>> {
        match self.try_store_batch(items).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(err) if items.len() == 1 => vec![Err(err)],
            Err(err) => {
                tracing::debug!(error = %err, batch = items.len(), "batch commit failed, storing one by one");
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let one = self.try_store_batch(std::slice::from_ref(item)).await;
                    out.push(one.map(|mut v| v.remove(0)));
                }
                out
            }
        }
    }

    async fn try_store_batch(&self, items: &[IntakeItem]) -> Result<Vec<StoredOutcome>, StoreError> {
        let mut w = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            outcomes.push(store_item(&mut w.tx, item).await?);
        }
        w.commit().await?;
        Ok(outcomes)
    }

    /// Counts raw records by system and outcome, for summaries and metrics.
    pub async fn record_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT system, outcome, COUNT(*) FROM raw_records GROUP BY system, outcome ORDER BY system, outcome",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }
}
