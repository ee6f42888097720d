//! Bad input, kept with the reason, for a person to inspect and replay.

use sqlx::Row;

use super::intake::{IntakeItem, Pending, StoredOutcome, rekey_replayed, store_pending};
use super::text::{MAX_REASON_CHARS, clean};
use super::{Store, StoreError, now_ms};

#[derive(Clone, Debug)]
pub struct QuarantinedRecord {
    pub id: i64,
    pub raw_record_id: i64,
    pub system: String,
    pub reason: String,
    pub state: String,
    pub created_at: i64,
    pub content_type: String,
    pub encoding: Option<String>,
    pub metadata: String,
    pub payload: Vec<u8>,
    pub received_at: i64,
}

const SELECT: &str = "SELECT q.id, q.raw_record_id, q.system, q.reason, q.state, q.created_at,
        r.content_type, r.encoding, r.metadata, r.payload, r.received_at
    FROM quarantine q JOIN raw_records r ON r.id = q.raw_record_id";

fn from_row(r: sqlx::any::AnyRow) -> QuarantinedRecord {
    QuarantinedRecord {
        id: r.get(0),
        raw_record_id: r.get(1),
        system: r.get(2),
        reason: r.get(3),
        state: r.get(4),
        created_at: r.get(5),
        content_type: r.get(6),
        encoding: r.get(7),
        metadata: r.get(8),
        payload: r.get(9),
        received_at: r.get(10),
    }
}

impl QuarantinedRecord {
    /// The record as its connector handed it over, to map again: its bytes,
    /// encoding, time and transport metadata (the topic's worker, the
    /// message kind, the routing key are what a mapping checks and reads;
    /// without them a replayed terminal message would pass the worker
    /// checks on its own word).
    pub fn record(&self) -> connectors::RawRecord {
        let content_type =
            connectors::ContentType::from_mime(&self.content_type).unwrap_or(connectors::ContentType::Json);
        let mut record = connectors::RawRecord::new(self.system.clone(), content_type, self.payload.clone());
        record.encoding = self.encoding.clone();
        record.received_at = chrono::DateTime::from_timestamp_millis(self.received_at).unwrap_or_else(chrono::Utc::now);
        if let Ok(meta) = serde_json::from_str::<std::collections::BTreeMap<String, String>>(&self.metadata) {
            record.metadata = meta.into_iter().collect();
        }
        record
    }
}

/// A line of the quarantine list: everything but the record's bytes, of
/// which only the size is read.
#[derive(Clone, Debug)]
pub struct QuarantineEntry {
    pub id: i64,
    pub raw_record_id: i64,
    pub system: String,
    pub reason: String,
    pub state: String,
    pub created_at: i64,
    pub received_at: i64,
    pub payload_bytes: i64,
}

impl Store {
    /// The quarantine list, oldest first. The payloads stay in the
    /// database: a list of thousands of megabyte records would otherwise be
    /// read whole to print one line each ([`Store::quarantined_record`]
    /// reads one).
    pub async fn quarantined(&self, all: bool) -> Result<Vec<QuarantineEntry>, StoreError> {
        self.quarantined_page(all, 0, i64::MAX).await
    }

    /// At most `limit` entries of the quarantine list with an id above `after`.
    pub async fn quarantined_page(
        &self,
        all: bool,
        after: i64,
        limit: i64,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let sql = format!(
            "SELECT q.id, q.raw_record_id, q.system, q.reason, q.state, q.created_at, r.received_at,
                CAST(LENGTH(r.payload) AS BIGINT)
             FROM quarantine q JOIN raw_records r ON r.id = q.raw_record_id
             WHERE q.id > $1 {} ORDER BY q.id LIMIT $2",
            if all { "" } else { "AND q.state = 'open'" }
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| QuarantineEntry {
                id: r.get(0),
                raw_record_id: r.get(1),
                system: r.get(2),
                reason: r.get(3),
                state: r.get(4),
                created_at: r.get(5),
                received_at: r.get(6),
                payload_bytes: r.get(7),
            })
            .collect())
    }

    pub async fn quarantined_record(&self, id: i64) -> Result<QuarantinedRecord, StoreError> {
        let sql = format!("{SELECT} WHERE q.id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(from_row)
            .ok_or_else(|| StoreError::NotFound(format!("no quarantined record {id}")))
    }

    /// Records the outcome of replaying a quarantined record through the
    /// current mappings: applied like a new record if it maps now, or kept
    /// in quarantine with the new reason if it still does not.
    pub async fn resolve_quarantine(&self, id: i64, item: &IntakeItem) -> Result<StoredOutcome, StoreError> {
        let q = self.quarantined_record(id).await?;
        if q.state != "open" {
            return Err(StoreError::Invalid(format!("quarantined record {id} was already {}", q.state)));
        }
        let now = now_ms();
        let mut w = self.begin_write().await?;
        let outcome = match &item.change {
            Err(reason) => {
                let reason = clean(reason, MAX_REASON_CHARS).into_owned();
                super::query("UPDATE quarantine SET reason = $2 WHERE id = $1")
                    .bind(id)
                    .bind(&reason)
                    .execute(&mut w.tx)
                    .await?;
                StoredOutcome::Quarantined { reason, quarantine_id: id }
            }
            Ok(_) => {
                let outcome = if rekey_replayed(&mut w.tx, q.raw_record_id, item).await? {
                    let pending = [Pending { item, raw_id: Some(q.raw_record_id) }];
                    let (mut outcomes, _) = store_pending(
                        &mut w.tx,
                        self.backend,
                        &self.matching,
                        &self.feedback_plan(),
                        &pending,
                        None,
                        None,
                    )
                    .await?;
                    outcomes.remove(0)
                } else {
                    StoredOutcome::Duplicate
                };
                super::query("UPDATE quarantine SET state = 'replayed', resolved_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut w.tx)
                    .await?;
                outcome
            }
        };
        w.commit().await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_record_keeps_its_transport_metadata() {
        let q = QuarantinedRecord {
            id: 1,
            raw_record_id: 1,
            system: "terminal".into(),
            reason: "eventId belongs to another worker".into(),
            state: "open".into(),
            created_at: 0,
            content_type: "application/json".into(),
            encoding: Some("utf-8".into()),
            metadata: r#"{"kind":"evaluation","topic":"grid/220402/W0412/evaluation","worker_id":"W0412"}"#.into(),
            payload: b"{}".to_vec(),
            received_at: 1_657_613_100_000,
        };
        let r = q.record();
        assert_eq!(r.meta("worker_id"), Some("W0412"));
        assert_eq!(r.meta("kind"), Some("evaluation"));
        assert_eq!(r.encoding.as_deref(), Some("utf-8"));
        assert_eq!(r.received_at.timestamp_millis(), 1_657_613_100_000);
    }
}
