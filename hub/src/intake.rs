//! Intake: records from the connectors → mapping → one group commit → the
//! outcome each connector waits for before it acknowledges at its source.

use std::sync::Arc;

use connectors::{Cursor, IntakeError, Outcome, PageRequest, RawRecord, Submission};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::mapping::{DEFECT, DEFECT_AT, Mappings, Unmappable};
use crate::metrics::{self, Metrics};
use crate::store::{IntakeItem, Matching, Store, StoreError, StoredOutcome};
use crate::ticket::{Timestamp, beijing};

#[derive(Clone, Debug)]
pub struct IntakeSettings {
    /// Records committed together at most; a batch is whatever is waiting
    /// when the previous commit ends, so a quiet hub commits one by one.
    pub max_batch: usize,
    /// Payloads larger than this are quarantined unread.
    pub max_payload_bytes: usize,
    pub dedup: DedupSettings,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings { max_batch: 256, max_payload_bytes: 1024 * 1024, dedup: DedupSettings::default() }
    }
}

/// Cross-channel duplicate detection (`[dedup]` in the config; a mapping
/// file's `[dedup]` overrides the thresholds for its source).
#[derive(Clone, Debug, PartialEq)]
pub struct DedupSettings {
    pub enabled: bool,
    pub thresholds: crate::dedup::Thresholds,
    pub rules: crate::dedup::CandidateRules,
    /// How long fingerprints stay in the store (`match_prints`) before the
    /// newest record: at least the rules' reach. Past the reach they are no
    /// longer matched against; this only keeps them for un-merging.
    pub retention: std::time::Duration,
}

impl DedupSettings {
    /// Half a year: three times the longest default window.
    pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(180 * 24 * 3600);
}

impl Default for DedupSettings {
    fn default() -> Self {
        DedupSettings {
            enabled: true,
            thresholds: Default::default(),
            rules: Default::default(),
            retention: Self::DEFAULT_RETENTION,
        }
    }
}

/// Maps a record and readies it for the store. Pure: never fails, a record
/// that cannot be mapped becomes a quarantine item with its reason.
pub fn prepare(record: &RawRecord, mappings: &Mappings, settings: &IntakeSettings) -> IntakeItem {
    // A defect the connector named keeps its own reason whatever its size:
    // the connector bounds what it keeps of bad input.
    let oversized = record.payload.len() > settings.max_payload_bytes && record.meta(DEFECT).is_none();
    let mapped = if oversized {
        Err(Unmappable::new(format!(
            "the payload has {} bytes, more than the limit of {} bytes; only its first {} bytes and its SHA-256 are kept",
            record.payload.len(),
            settings.max_payload_bytes,
            OVERSIZED_PREFIX_BYTES.min(settings.max_payload_bytes)
        )))
    } else {
        mappings.map(record)
    };
    let received_at: Timestamp = record.received_at.with_timezone(&beijing());
    let metadata =
        serde_json::to_string(&record.metadata.iter().cloned().collect::<std::collections::BTreeMap<_, _>>())
            .unwrap_or_else(|_| "{}".into());
    let (record_id, version, message_id, warnings, change) = match mapped {
        Ok(m) => (m.record_id, m.version, m.message_id, m.warnings, Ok(m.applied)),
        Err(u) => (
            u.record_id.or_else(|| record.record_id.clone()).unwrap_or_default(),
            u.version.or(record.version).unwrap_or(0),
            None,
            Vec::new(),
            Err(u.reason),
        ),
    };
    let matching = match &change {
        Ok(applied) if settings.dedup.enabled => {
            let own = mappings.dedup(&record.system);
            (own.enabled != Some(false)).then(|| {
                let ids = crate::dedup::SourceIds { channel: Some(applied.channel), record_id: Some(&record_id) };
                let base = settings.dedup.thresholds;
                Matching {
                    print: crate::dedup::Fingerprint::new(&applied.draft, ids),
                    thresholds: crate::dedup::Thresholds {
                        merge: own.merge.unwrap_or(base.merge),
                        review: own.review.unwrap_or(base.review),
                    },
                }
            })
        }
        _ => None,
    };
    let position = match &change {
        Err(_) if record.meta(DEFECT).is_some() => record.meta(DEFECT_AT).map(str::to_string),
        _ => None,
    };
    IntakeItem {
        matching,
        position,
        system: record.system.clone(),
        record_id,
        version,
        message_id,
        received_at,
        content_type: record.content_type.as_str(),
        encoding: record.encoding.clone(),
        metadata,
        payload: if oversized {
            oversized_payload(&record.payload, settings.max_payload_bytes)
        } else {
            record.payload.to_vec()
        },
        warnings,
        change,
    }
}

/// How much of a payload over `max_payload_bytes` quarantine keeps: enough
/// for a person to see what it was, not enough to fill the store.
pub const OVERSIZED_PREFIX_BYTES: usize = 4096;

/// The prefix of an oversized payload and a line with its size and SHA-256.
/// Bytes that differ after the prefix still make different quarantine
/// entries (the entry's key is the hash of what is kept).
fn oversized_payload(payload: &[u8], limit: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(payload).iter().map(|b| format!("{b:02x}")).collect();
    let keep = OVERSIZED_PREFIX_BYTES.min(limit);
    let mut kept = payload[..keep].to_vec();
    kept.extend_from_slice(
        format!("\n[cut: {} bytes in all, the first {keep} kept; sha256 {digest}]", payload.len()).as_bytes(),
    );
    kept
}

pub fn to_outcome(stored: StoredOutcome) -> Outcome {
    match stored {
        StoredOutcome::Created { ticket_id, .. } => Outcome::Created { ticket_id },
        StoredOutcome::Updated { ticket_id, .. } => Outcome::Updated { ticket_id },
        StoredOutcome::Duplicate => Outcome::Duplicate,
        StoredOutcome::Stale => Outcome::Stale,
        StoredOutcome::Quarantined { reason, .. } => Outcome::Quarantined { reason },
    }
}

/// What the intake worker works with.
pub struct Worker {
    pub store: Store,
    pub mappings: Arc<Mappings>,
    pub metrics: Arc<Metrics>,
    pub settings: IntakeSettings,
    /// Rung after each commit: the dispatcher need not wait for its next poll.
    pub wake: Arc<tokio::sync::Notify>,
    pub stop: CancellationToken,
}

/// Runs until `stop` is cancelled (or every `Intake` handle is dropped),
/// then commits whatever is still queued before it returns: that is the
/// "finish in-flight commits" half of a graceful shutdown. Hand-overs after
/// `stop` fail with `ShuttingDown`, so their sources keep the records.
///
/// Three stages, so that CPU and the database's writing overlap: a
/// preparing task maps the records that arrive; this loop scores a batch's
/// duplicate decisions while the batch before it is written and committed
/// by a task of its own. Batches are still stored one after the
/// other and answered in order, and nothing is answered before its commit,
/// so a record between the stages is one its source still holds.
pub async fn run(
    Worker { store, mappings, metrics, settings, wake, stop }: Worker,
    rx: mpsc::Receiver<Submission>,
    mut pages: mpsc::Receiver<PageRequest>,
) {
    let max_batch = settings.max_batch.max(1);
    let (prepared_tx, mut prepared) = mpsc::channel::<(Submission, IntakeItem)>(max_batch * 2);
    let preparer = tokio::spawn(prepare_stage(rx, prepared_tx, mappings.clone(), settings.clone(), stop.clone()));
    let mut batch: Vec<(Submission, IntakeItem)> = Vec::with_capacity(max_batch);
    let mut pages_open = true;
    let mut storing: Option<Storing> = None;
    loop {
        let received = tokio::select! {
            n = prepared.recv_many(&mut batch, max_batch) => n,
            stored = async { (&mut storing.as_mut().expect("guarded").done).await }, if storing.is_some() => {
                let Storing { submissions, .. } = storing.take().expect("guarded");
                answer(&metrics, &wake, submissions, stored);
                continue;
            }
            page = pages.recv(), if pages_open => {
                if let Some(s) = storing.take() {
                    s.finish(&metrics, &wake).await;
                }
                match page {
                    Some(request) => handle_page(&store, &mappings, &metrics, &settings, request).await,
                    None => pages_open = false,
                }
                wake.notify_one();
                continue;
            }
            // Refuse new pages; the preparing stage refuses new records and
            // hands on what is queued, which is still committed.
            _ = stop.cancelled(), if !stop.is_cancelled() => { pages.close(); continue; }
        };
        if received == 0 {
            if let Some(s) = storing.take() {
                s.finish(&metrics, &wake).await;
            }
            // Pages still queued after the records are committed too.
            while let Ok(request) = pages.try_recv() {
                handle_page(&store, &mappings, &metrics, &settings, request).await;
            }
            break;
        }
        let (submissions, items): (Vec<Submission>, Vec<IntakeItem>) = batch.drain(..).unzip();
        // Score while the batch before is written, against what it is
        // deciding; then wait for its commit: batches are stored in order.
        let mut ahead = store.score_ahead(&items).await;
        if let Some(s) = storing.take() {
            s.finish(&metrics, &wake).await;
        }
        store.publish_ahead(&items, &mut ahead).await;
        let task_store = store.clone();
        let done = store.on_writer_lane(async move {
            let results = task_store.store_scored(&items, Some(ahead)).await;
            (items, results)
        });
        storing = Some(Storing { submissions, done });
    }
    let _ = preparer.await;
    tracing::debug!("intake stopped: every connector has finished");
}

/// What storing a batch gives back: its items and one result per item.
type Stored = (Vec<IntakeItem>, Vec<Result<StoredOutcome, StoreError>>);

/// A batch being stored by a task of its own.
struct Storing {
    submissions: Vec<Submission>,
    done: tokio::task::JoinHandle<Stored>,
}

impl Storing {
    async fn finish(self, metrics: &Metrics, wake: &tokio::sync::Notify) {
        let stored = self.done.await;
        answer(metrics, wake, self.submissions, stored);
    }
}

/// Answers each connector for its record once the batch is committed.
fn answer(
    metrics: &Metrics,
    wake: &tokio::sync::Notify,
    submissions: Vec<Submission>,
    stored: Result<Stored, tokio::task::JoinError>,
) {
    metrics::inc(&metrics.intake_batches);
    // New changes may wait in the outbox: tell the dispatcher now rather
    // than at its next poll.
    wake.notify_one();
    let (items, results) = match stored {
        Ok(stored) => stored,
        Err(err) => {
            // The storing task died (a bug, not the input): nothing of it is
            // answered as stored, so every source delivers its record again.
            tracing::error!(error = %err, records = submissions.len(), "storing a batch failed; the sources will deliver it again");
            for submission in submissions {
                metrics::inc(&metrics.intake_errors);
                let _ = submission.reply.send(Err(IntakeError::Store("the batch could not be stored".into())));
            }
            return;
        }
    };
    for ((submission, item), result) in submissions.into_iter().zip(&items).zip(results) {
        metrics.source(&item.system, "received");
        let answer = match result {
            Ok(stored) => {
                metrics.source(&item.system, "acknowledged");
                metrics.record(&item.system, stored.label());
                log_outcome(item, &stored);
                if !item.warnings.is_empty()
                    && matches!(stored, StoredOutcome::Created { .. } | StoredOutcome::Updated { .. })
                {
                    metrics
                        .mapping_warnings
                        .fetch_add(item.warnings.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(to_outcome(stored))
            }
            Err(err) => {
                metrics::inc(&metrics.intake_errors);
                tracing::error!(system = %item.system, error = %err, "could not store a record; the source will deliver it again");
                Err(IntakeError::Store(err.to_string()))
            }
        };
        // A connector that gave up waiting is fine: the record is stored
        // and a redelivery will be a duplicate.
        let _ = submission.reply.send(answer);
    }
}

/// The first stage: maps each record as it arrives and hands it on, in
/// arrival order. Ends when every `Intake` handle is dropped, or after
/// `stop` once what was queued has been handed on.
async fn prepare_stage(
    mut rx: mpsc::Receiver<Submission>,
    out: mpsc::Sender<(Submission, IntakeItem)>,
    mappings: Arc<Mappings>,
    settings: IntakeSettings,
    stop: CancellationToken,
) {
    let max_batch = settings.max_batch.max(1);
    let mut batch: Vec<Submission> = Vec::with_capacity(max_batch);
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut batch, max_batch) => n,
            _ = stop.cancelled(), if !stop.is_cancelled() => { rx.close(); continue; }
        };
        if received == 0 {
            break;
        }
        for submission in batch.drain(..) {
            let item = prepare(&submission.record, &mappings, &settings);
            if out.send((submission, item)).await.is_err() {
                return;
            }
        }
    }
}

async fn handle_page(
    store: &Store,
    mappings: &Mappings,
    metrics: &Metrics,
    settings: &IntakeSettings,
    request: PageRequest,
) {
    match request {
        PageRequest::LoadCursor { name, reply } => {
            let answer = store
                .cursor(&name)
                .await
                .map(|c| c.map(|(value, etag)| Cursor { value, etag }))
                .map_err(|e| IntakeError::Store(e.to_string()));
            let _ = reply.send(answer);
        }
        PageRequest::Page { records, cursor, reply } => {
            let items: Vec<IntakeItem> = records.iter().map(|r| prepare(r, mappings, settings)).collect();
            let cursor_ref = cursor.as_ref().map(|(name, c)| (name.as_str(), c.value.as_str(), c.etag.as_deref()));
            let answer = match store.store_page(&items, cursor_ref).await {
                Ok(stored) => {
                    let mut outcomes = Vec::with_capacity(stored.len());
                    for (item, s) in items.iter().zip(stored) {
                        metrics.record(&item.system, s.label());
                        log_outcome(item, &s);
                        outcomes.push(to_outcome(s));
                    }
                    Ok(outcomes)
                }
                Err(err) => {
                    metrics::inc(&metrics.intake_errors);
                    tracing::error!(error = %err, records = items.len(), "could not store a page; the source will send it again");
                    Err(IntakeError::Store(err.to_string()))
                }
            };
            let _ = reply.send(answer);
        }
    }
}

fn log_outcome(item: &IntakeItem, stored: &StoredOutcome) {
    match stored {
        StoredOutcome::Quarantined { reason, quarantine_id } => {
            tracing::warn!(system = %item.system, quarantine_id, %reason, "record quarantined");
        }
        StoredOutcome::Stale => {
            tracing::info!(system = %item.system, version = item.version, "older version than the one applied: kept, not applied");
        }
        _ => {
            for warning in &item.warnings {
                tracing::warn!(system = %item.system, %warning, "detail left out of the ticket");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use connectors::{ContentType, RawRecord};

    use super::*;

    #[test]
    fn an_oversized_payload_is_quarantined_as_its_prefix_and_hash() {
        let settings = IntakeSettings::default();
        let mut payload = b"{\"recordId\":\"BIG\",\"pad\":\"".to_vec();
        payload.resize(settings.max_payload_bytes * 3, b'x');
        let item =
            prepare(&RawRecord::new("amqp-source", ContentType::Json, payload.clone()), &Mappings::new(), &settings);
        let reason = item.change.as_ref().expect_err("quarantined");
        assert!(reason.contains(&format!("the payload has {} bytes", payload.len())), "{reason}");
        assert!(item.payload.len() < OVERSIZED_PREFIX_BYTES + 200, "kept {} bytes", item.payload.len());
        assert!(item.payload.starts_with(&payload[..OVERSIZED_PREFIX_BYTES]));
        let tail = String::from_utf8_lossy(&item.payload[OVERSIZED_PREFIX_BYTES..]).into_owned();
        use sha2::{Digest, Sha256};
        let whole: String = Sha256::digest(&payload).iter().map(|b| format!("{b:02x}")).collect();
        assert!(tail.contains(&whole) && tail.contains(&payload.len().to_string()), "{tail}");
        // Another payload with the same beginning is another entry.
        payload.push(b'y');
        let other = prepare(&RawRecord::new("amqp-source", ContentType::Json, payload), &Mappings::new(), &settings);
        assert_ne!(item.payload, other.payload);
        // One within the limit is kept whole.
        let small = prepare(&RawRecord::new("s", ContentType::Json, b"not json".to_vec()), &Mappings::new(), &settings);
        assert_eq!(small.payload, b"not json");
    }
}
