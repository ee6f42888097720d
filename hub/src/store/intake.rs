//! Storing what connectors handed over, a batch at a time: the raw records,
//! the ticket revisions and outbox rows they cause, in the caller's
//! transaction, with one multi-row statement per table.
//!
//! The order of work is what makes it safe:
//! 1. insert every raw record (`ON CONFLICT DO NOTHING`): a record that was
//!    stored before is a duplicate and does nothing else; on PostgreSQL a
//!    second hub inserting the same record waits here for the first;
//! 2. read the links and tickets the rest touch; for records that would
//!    open a ticket, take the decision lock and find whether their matter
//!    already has one (`matching.rs`: join it, or open a ticket flagged as a
//!    possible duplicate, or a plain new one). The scoring is done before
//!    the transaction, from a read snapshot ([`predecide`]); under the lock
//!    it stands if nothing it read has changed, or is done again, opening
//!    tickets under the ids chosen in advance (a batch decided alike still
//!    commits what the next batch was scored against);
//! 3. plan in arrival order, in memory (two versions of one record in one
//!    batch see each other);
//! 4. write the plan.

use std::collections::{HashMap, HashSet};

use sqlx::Row as _;

use super::batch::{self, MAX_ROWS};
use super::failure::Failure;
use super::matching::{self, LinkRow, MatchIndex, PrintRow};
use super::text::{MAX_META_CHARS, MAX_REASON_CHARS, clean};
use super::{Backend, StoreError, Tx, now_ms};
use crate::dedup::Decision;
use crate::feedback::Plan;
use crate::ticket::handling::Handling;
use crate::ticket::{Change, Channel, EvaluationResult, Patch, Source, Ticket, TicketDraft, Timestamp};

/// One record ready to be stored: its identity, its bytes, and what the
/// mapping made of it.
pub struct IntakeItem {
    pub system: String,
    /// The source record whose ticket this is (the key of its source link).
    pub record_id: String,
    pub version: i64,
    /// The message's own identity, when the source gives one: then the raw
    /// record is keyed on it instead of (record id, version).
    pub message_id: Option<String>,
    pub received_at: Timestamp,
    pub content_type: &'static str,
    pub encoding: Option<String>,
    /// Transport metadata as a JSON object.
    pub metadata: String,
    pub payload: Vec<u8>,
    pub warnings: Vec<String>,
    pub change: Result<Applied, String>,
    /// Set when the record takes part in cross-channel duplicate detection.
    pub matching: Option<super::Matching>,
    /// For bad input that stands for a position of a feed (a page that
    /// cannot be parsed at a cursor): the position, kept as its key instead
    /// of its content hash, so a page the source regenerates on every poll
    /// is quarantined once (`mapping::DEFECT_AT`).
    pub position: Option<String>,
}

/// A mapped record: the draft of the ticket it describes.
#[derive(Clone, Debug)]
pub struct Applied {
    pub channel: Channel,
    pub draft: TicketDraft,
    /// Set for a partial update: only these fields change an existing
    /// ticket (a new ticket still starts from the whole draft).
    pub patch: Option<crate::ticket::Patch>,
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

impl IntakeItem {
    /// The raw record's unique key: (record id, version), (message id,
    /// version) for a source whose messages carry ids of their own, or for
    /// what goes to quarantine the feed position it stands for, else its
    /// content hash.
    fn raw_key(&self) -> (String, i64) {
        match (&self.change, &self.message_id, &self.position) {
            (Ok(_), Some(message_id), _) => (message_id.clone(), self.version),
            (Ok(_), None, _) => (self.record_id.clone(), self.version),
            (Err(_), _, Some(at)) => (format!("at:{at}"), 0),
            (Err(_), _, None) => (quarantine_key(&self.payload), 0),
        }
    }

    /// The record a raw record keyed on its message id is about.
    fn about(&self) -> Option<String> {
        (self.change.is_ok() && self.message_id.is_some()).then(|| self.record_id.clone())
    }
}

/// Whether a partial update just set a dissatisfied evaluation (a worker's
/// 苦脸): the matter goes back to the department.
fn frowned(applied: &Applied, ticket: &Ticket) -> bool {
    applied.patch.as_ref().is_some_and(Patch::sets_evaluation)
        && applied.draft.evaluation.as_ref().is_some_and(|e| e.result == EvaluationResult::Unsatisfied)
        && ticket.draft.evaluation == applied.draft.evaluation
}

/// Whether a ticket ends its batch reopened: dissatisfied and not closed.
fn frowned_last(ticket: &Ticket) -> bool {
    ticket.draft.evaluation.as_ref().is_some_and(|e| e.result == EvaluationResult::Unsatisfied)
        && ticket.draft.status == crate::ticket::Status::InProgress
}

/// A worker's frown reopened `ticket` (its revision, back in progress, is
/// already planned): the platform's side of its state says so, its history
/// too, and every origin with a back-channel is told `reopened`. Returns
/// the handling as written.
async fn reopen(
    tx: &mut Tx,
    plan: &Plan,
    ticket: &Ticket,
    mut handling: Handling,
    raw_id: i64,
    now: i64,
) -> Result<Handling, StoreError> {
    let at = ticket.draft.evaluation.as_ref().map_or_else(|| ticket.draft.reported_at, |e| e.at);
    handling.send_back();
    handling.evaluation = ticket.draft.evaluation.clone();
    super::query("UPDATE tickets SET handling = $2 WHERE ticket_id = $1")
        .bind(&ticket.ticket_id)
        .bind(serde_json::to_string(&handling).expect("handling always serializes"))
        .execute(tx)
        .await?;
    super::callbacks::record_event(
        tx,
        &ticket.ticket_id,
        at.timestamp_millis(),
        "evaluation",
        "unsatisfied (苦脸): reopened, back to in_progress",
        now,
    )
    .await?;
    let key = format!("raw:{raw_id}");
    let change = super::feedback::Told {
        key: &key,
        status: crate::callbacks::event::EventStatus::Reopened,
        department: handling.department.as_deref(),
        note: None,
        at,
        due_at: handling.due_at,
        mediation: None,
    };
    super::feedback::enqueue(tx, plan, ticket, &change, now).await?;
    Ok(handling)
}

/// Every revision the hub sends carries what the platform said of the
/// ticket (its status, deadline, evaluation): a source's later record says
/// what the source knows, not that the matter is new again.
fn carry(ticket: &mut Ticket, handlings: &HashMap<String, Handling>) {
    if let Some(h) = handlings.get(&ticket.ticket_id) {
        h.overlay(&mut ticket.draft);
    }
}

/// Gives a quarantined record that maps now the key it would have had if it
/// had mapped on arrival, so that a later resend of it is a duplicate and
/// `hub duplicates unmerge` finds it by its record id. False if a record
/// under that key is already stored: the replay is then a duplicate.
pub(crate) async fn rekey_replayed(tx: &mut Tx, raw_id: i64, item: &IntakeItem) -> Result<bool, StoreError> {
    let (key, version) = item.raw_key();
    let taken: Option<i64> =
        super::query_scalar("SELECT id FROM raw_records WHERE system = $1 AND record_id = $2 AND version = $3")
            .bind(&item.system)
            .bind(&key)
            .bind(version)
            .fetch_optional(tx)
            .await?;
    if taken.is_some_and(|id| id != raw_id) {
        super::query("UPDATE raw_records SET outcome = 'duplicate' WHERE id = $1").bind(raw_id).execute(tx).await?;
        return Ok(false);
    }
    super::query("UPDATE raw_records SET record_id = $2, version = $3, about = $4 WHERE id = $1")
        .bind(raw_id)
        .bind(&key)
        .bind(version)
        .bind(item.about())
        .execute(tx)
        .await?;
    Ok(true)
}

/// A source record's link to its ticket, and how far its messages have
/// been applied. Whole records and partial updates each keep their own
/// order: a report overtaken by its progress note still fills the ticket,
/// and an old progress note cannot take back a newer one's status.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub ticket_id: String,
    /// The version of the newest whole record applied; none while only
    /// partial updates have come.
    whole: Option<i64>,
    /// The version of the newest partial update applied, and every field
    /// partial updates have set.
    patched: Option<(i64, Patch)>,
}

impl Link {
    fn opened(ticket_id: String, version: i64, patch: Option<&Patch>) -> Link {
        let mut link = Link { ticket_id, whole: None, patched: None };
        link.advance(version, patch);
        link
    }

    /// How a message of `version` changes the ticket; `None` when it is
    /// older than what it would replace (kept as `stale`).
    fn change<'a>(&'a self, version: i64, patch: Option<&'a Patch>) -> Option<Change<'a>> {
        match patch {
            None if self.whole.is_some_and(|w| version <= w) => None,
            None => match &self.patched {
                Some((p, kept)) if self.whole.is_none() || *p >= version => Some(Change::Fill(kept)),
                _ => Some(Change::Whole),
            },
            Some(patch) => match &self.patched {
                Some((p, _)) if version < *p => Some(Change::OlderPatch(patch)),
                _ => Some(Change::Patch(patch)),
            },
        }
    }

    fn advance(&mut self, version: i64, patch: Option<&Patch>) {
        match patch {
            None => self.whole = Some(self.whole.map_or(version, |w| w.max(version))),
            Some(patch) => {
                self.patched = Some(match self.patched.take() {
                    None => (version, patch.clone()),
                    Some((p, kept)) => (p.max(version), kept.union(patch)),
                })
            }
        }
    }

    /// The newest version applied of either kind (`source_links.version`).
    fn version(&self) -> i64 {
        self.whole.max(self.patched.as_ref().map(|(p, _)| *p)).unwrap_or_default()
    }
}

/// An item to store; `raw_id` is set when its raw record is already stored
/// (a quarantined record being replayed).
pub(crate) struct Pending<'a> {
    pub item: &'a IntakeItem,
    pub raw_id: Option<i64>,
}

/// The bytes kept of a record that cannot be stored as it is, at most.
/// Binary columns take any bytes; this only bounds the row.
/// Times a batch is planned again at once when another hub changed one of
/// its tickets meanwhile, before it is stored record by record.
const CONFLICT_RETRIES: usize = 3;

pub const UNSTORABLE_PAYLOAD_MAX: usize = 16 * 1024 * 1024;

const RAW_COLUMNS: [&str; 13] = [
    "system",
    "record_id",
    "version",
    "received_at",
    "stored_at",
    "content_type",
    "encoding",
    "metadata",
    "payload",
    "outcome",
    "ticket_id",
    "warnings",
    "about",
];

/// What the plan writes besides the raw records.
#[derive(Default)]
struct Writes {
    /// raw id → (outcome, ticket id)
    raw_outcomes: Vec<(i64, &'static str, Option<String>)>,
    created: Vec<String>,
    updated: Vec<String>,
    /// Links opened in this batch, and links moved on, as they end.
    links_new: HashMap<(String, String), Link>,
    links_moved: HashMap<(String, String), Link>,
    /// (ticket id, revision, raw id, cause, body)
    revisions: Vec<(String, i64, i64, &'static str, String)>,
    /// (raw id, system, reason)
    quarantine: Vec<(i64, String, String)>,
    /// Tickets a worker's frown sent back: (ticket id, raw id).
    reopened: Vec<(String, i64)>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_pending(
    tx: &mut Tx,
    backend: Backend,
    index: &matching::Shared,
    plan: &Plan,
    pending: &[Pending<'_>],
    pre: Option<Predecided>,
    published: Option<u64>,
) -> Result<(Vec<StoredOutcome>, Written), StoreError> {
    let now = now_ms();
    let mut outcomes: Vec<Option<StoredOutcome>> = vec![None; pending.len()];
    let mut raw_ids: Vec<Option<i64>> = pending.iter().map(|p| p.raw_id).collect();

    // 1. Raw records. A key seen twice in this batch is a duplicate at once.
    let mut seen = HashSet::new();
    let mut to_insert = Vec::new();
    for (i, p) in pending.iter().enumerate() {
        if p.raw_id.is_some() {
            continue;
        }
        let (key, version) = p.item.raw_key();
        if seen.insert((p.item.system.clone(), key.clone(), version)) {
            to_insert.push((i, key, version));
        } else {
            outcomes[i] = Some(StoredOutcome::Duplicate);
        }
    }
    for chunk in batch::pieces(backend, &to_insert) {
        let mut q = batch::insert(
            backend,
            "raw_records",
            &RAW_COLUMNS,
            chunk.len(),
            "ON CONFLICT (system, record_id, version) DO NOTHING RETURNING id, system, record_id, version",
        );
        for (i, key, version) in chunk {
            let item = pending[*i].item;
            let warnings = (!item.warnings.is_empty()).then(|| {
                let bounded: Vec<_> = item.warnings.iter().map(|w| clean(w, MAX_REASON_CHARS)).collect();
                serde_json::to_string(&bounded).unwrap_or_default()
            });
            q = q
                .bind(item.system.clone())
                .bind(key.clone())
                .bind(*version)
                .bind(item.received_at.timestamp_millis())
                .bind(now)
                .bind(item.content_type)
                .bind(item.encoding.as_deref().map(|e| clean(e, MAX_META_CHARS).into_owned()))
                .bind(item.metadata.clone())
                .bind(item.payload.clone())
                .bind("pending")
                .bind(None::<String>)
                .bind(warnings)
                .bind(item.about());
        }
        let rows = q.fetch_all(tx).await?;
        let mut inserted: HashMap<(String, String, i64), i64> = HashMap::with_capacity(rows.len());
        for r in rows {
            inserted.insert((r.get(1), r.get(2), r.get(3)), r.get(0));
        }
        for (i, key, version) in chunk {
            match inserted.remove(&(pending[*i].item.system.clone(), key.clone(), *version)) {
                Some(id) => raw_ids[*i] = Some(id),
                None => outcomes[*i] = Some(StoredOutcome::Duplicate),
            }
        }
    }

    // 2. The links and tickets the remaining records touch.
    let live: Vec<usize> = (0..pending.len()).filter(|&i| outcomes[i].is_none()).collect();
    let link_keys: Vec<(String, String)> = live
        .iter()
        .filter(|&&i| pending[i].item.change.is_ok())
        .map(|&i| (pending[i].item.system.clone(), pending[i].item.record_id.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut links = load_links(tx, backend, &link_keys).await?;
    let wanted: Vec<String> = live
        .iter()
        .filter_map(|&i| {
            let item = pending[i].item;
            let link = links.get(&(item.system.clone(), item.record_id.clone()))?;
            let applied = item.change.as_ref().ok()?;
            link.change(item.version, applied.patch.as_ref()).map(|_| link.ticket_id.clone())
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut loaded = load_tickets(tx, backend, &wanted).await?;
    #[cfg(test)]
    pause::here().await;

    // 2b. Records that would open a ticket: is their matter already one?
    let mut dup = find_duplicates(tx, backend, index, pending, &live, &links, pre).await?;
    let targets: Vec<String> = dup
        .decisions
        .values()
        .filter_map(|d| match d {
            Decision::Merge { ticket, .. } if !loaded.tickets.contains_key(ticket) => Some(ticket.clone()),
            _ => None,
        })
        .filter(|t| !dup.opened.values().any(|o| o == t))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    loaded.extend(load_tickets(tx, backend, &targets).await?);
    let Loaded { mut tickets, mut handlings, stamps } = loaded;

    // 3. Plan, in arrival order.
    let mut w = Writes::default();
    for &i in &live {
        let item = pending[i].item;
        let raw_id = raw_ids[i].expect("a live item has a raw record");
        let applied = match &item.change {
            Err(reason) => {
                w.raw_outcomes.push((raw_id, "quarantined", None));
                w.quarantine.push((raw_id, item.system.clone(), reason.clone()));
                continue; // its outcome comes with the quarantine id
            }
            Ok(applied) => applied,
        };
        let source = Source {
            channel: applied.channel,
            system: item.system.clone(),
            record_id: item.record_id.clone(),
            version: item.version,
            received_at: item.received_at,
        };
        let link_key = (item.system.clone(), item.record_id.clone());
        let outcome = match links.get(&link_key).cloned() {
            None if matches!(dup.decisions.get(&i), Some(Decision::Merge { .. })) => {
                let Some(Decision::Merge { ticket: ticket_id, score }) = dup.decisions.remove(&i) else {
                    unreachable!("matched above")
                };
                let ticket = tickets
                    .get_mut(&ticket_id)
                    .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id} to merge into is missing")))?;
                ticket.merge_in(applied.draft.clone(), source);
                carry(ticket, &handlings);
                let revision = ticket.revision;
                w.revisions.push((ticket_id.clone(), revision, raw_id, "merged", body(ticket)));
                if !w.created.contains(&ticket_id) && !w.updated.contains(&ticket_id) {
                    w.updated.push(ticket_id.clone());
                }
                let link = Link::opened(ticket_id.clone(), item.version, applied.patch.as_ref());
                w.links_new.insert(link_key.clone(), link.clone());
                links.insert(link_key.clone(), link);
                dup.links.push(LinkRow {
                    ticket_id: ticket_id.clone(),
                    other_id: ticket_id.clone(),
                    system: link_key.0.clone(),
                    record_id: link_key.1.clone(),
                    score,
                    state: "merged",
                });
                if let Some(m) = &item.matching {
                    dup.prints.push(PrintRow {
                        ticket_id: ticket_id.clone(),
                        system: link_key.0,
                        record_id: link_key.1,
                        print: m.print.clone(),
                    });
                }
                w.raw_outcomes.push((raw_id, "merged", Some(ticket_id.clone())));
                outcomes[i] = Some(StoredOutcome::Updated { ticket_id, revision });
                continue;
            }
            None => {
                let ticket_id = dup.opened.remove(&i).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
                if let Some(Decision::Possible { ticket: other, score }) = dup.decisions.remove(&i) {
                    dup.links.push(LinkRow {
                        ticket_id: ticket_id.clone(),
                        other_id: other,
                        system: link_key.0.clone(),
                        record_id: link_key.1.clone(),
                        score,
                        state: "possible",
                    });
                }
                if let Some(m) = &item.matching {
                    dup.prints.push(PrintRow {
                        ticket_id: ticket_id.clone(),
                        system: link_key.0.clone(),
                        record_id: link_key.1.clone(),
                        print: m.print.clone(),
                    });
                }
                let ticket = Ticket::create(ticket_id.clone(), applied.draft.clone(), source);
                let link = Link::opened(ticket_id.clone(), item.version, applied.patch.as_ref());
                w.links_new.insert(link_key.clone(), link.clone());
                links.insert(link_key, link);
                w.created.push(ticket_id.clone());
                w.revisions.push((ticket_id.clone(), 1, raw_id, "created", body(&ticket)));
                tickets.insert(ticket_id.clone(), ticket);
                StoredOutcome::Created { ticket_id, revision: 1 }
            }
            Some(mut link) => {
                let ticket_id = link.ticket_id.clone();
                let Some(change) = link.change(item.version, applied.patch.as_ref()) else {
                    w.raw_outcomes.push((raw_id, "stale", Some(ticket_id)));
                    outcomes[i] = Some(StoredOutcome::Stale);
                    continue;
                };
                let ticket = tickets
                    .get_mut(&ticket_id)
                    .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id} linked but missing")))?;
                if !ticket.apply_update(applied.draft.clone(), source, change) {
                    // An old partial update that adds nothing new.
                    w.raw_outcomes.push((raw_id, "stale", Some(ticket_id)));
                    outcomes[i] = Some(StoredOutcome::Stale);
                    continue;
                }
                carry(ticket, &handlings);
                if frowned(applied, ticket) && !w.reopened.iter().any(|(t, _)| *t == ticket_id) {
                    w.reopened.push((ticket_id.clone(), raw_id));
                }
                let revision = ticket.revision;
                w.revisions.push((ticket_id.clone(), revision, raw_id, "updated", body(ticket)));
                if !w.created.contains(&ticket_id) && !w.updated.contains(&ticket_id) {
                    w.updated.push(ticket_id.clone());
                }
                link.advance(item.version, applied.patch.as_ref());
                match w.links_new.get_mut(&link_key) {
                    Some(opened) => *opened = link.clone(),
                    None => {
                        w.links_moved.insert(link_key.clone(), link.clone());
                    }
                }
                links.insert(link_key, link);
                StoredOutcome::Updated { ticket_id, revision }
            }
        };
        let (label, ticket_id) = match &outcome {
            StoredOutcome::Created { ticket_id, .. } => ("created", ticket_id.clone()),
            StoredOutcome::Updated { ticket_id, .. } => ("updated", ticket_id.clone()),
            _ => unreachable!("only creations and updates get here"),
        };
        w.raw_outcomes.push((raw_id, label, Some(ticket_id)));
        outcomes[i] = Some(outcome);
    }

    // 4. Write it.
    // Each new record's fingerprint row, numbered in order by insert_prints.
    let print_seqs: HashMap<(&str, &str), i64> = dup
        .first_seq
        .map(|first| {
            dup.prints.iter().zip(first..).map(|(p, seq)| ((p.system.as_str(), p.record_id.as_str()), seq)).collect()
        })
        .unwrap_or_default();
    let outbox = write_plan(tx, backend, &w, &tickets, &stamps, &print_seqs, now).await?;
    drop(print_seqs);
    // The bodies just written, for the changes handed to the dispatcher.
    let bodies = std::mem::take(&mut w.revisions).into_iter().map(|(id, rev, _, _, text)| ((id, rev), text)).collect();
    let touched: Vec<(&Ticket, crate::ticket::Timestamp)> = w
        .created
        .iter()
        .chain(&w.updated)
        .filter_map(|id| tickets.get(id))
        .map(|ticket| (ticket, ticket.draft.reported_at))
        .collect();
    super::deadlines::track_all(tx, backend, &touched).await?;
    for (ticket, _) in &touched {
        super::courts::watch(tx, ticket, now).await?;
    }
    for (ticket_id, raw_id) in &w.reopened {
        // Reopened as the batch leaves it: a smile that closed it after the
        // frown, in the same batch, has the last word.
        if let Some(ticket) = tickets.get(ticket_id).filter(|t| frowned_last(t)) {
            let handling = handlings.get(ticket_id).cloned().unwrap_or_default();
            let handling = reopen(tx, plan, ticket, handling, *raw_id, now).await?;
            handlings.insert(ticket_id.clone(), handling);
        }
    }
    for ticket_id in &w.updated {
        // A matter sent back that a source now says is done (a worker's
        // smile that closes it): the next `reopened` or frown is news again.
        let done = tickets
            .get(ticket_id)
            .is_some_and(|t| matches!(t.draft.status, crate::ticket::Status::Resolved | crate::ticket::Status::Closed));
        if let Some(h) = handlings.get_mut(ticket_id).filter(|h| done && h.sent_back) {
            h.sent_back = false;
            super::query("UPDATE tickets SET handling = $2 WHERE ticket_id = $1")
                .bind(ticket_id)
                .bind(serde_json::to_string(&*h).expect("handling always serializes"))
                .execute(tx)
                .await?;
        }
    }
    // The figures follow in a transaction of their own (`stats::fold`).
    let mut changed: Vec<(&str, bool)> = w
        .created
        .iter()
        .chain(&w.updated)
        .filter_map(|id| tickets.get(id))
        .map(|t| {
            let finished = matches!(t.draft.status, crate::ticket::Status::Resolved | crate::ticket::Status::Closed);
            (t.ticket_id.as_str(), finished)
        })
        .collect();
    changed.sort_unstable();
    super::stats::mark_due(tx, backend, &changed, now).await?;
    if let Some(first_seq) = dup.first_seq {
        matching::insert_prints(tx, backend, first_seq, &dup.prints).await?;
    }
    matching::insert_links(tx, backend, &dup.links, now).await?;
    let quarantine_ids = insert_quarantine(tx, backend, &w.quarantine, now).await?;
    for &i in &live {
        if outcomes[i].is_none() {
            let raw_id = raw_ids[i].expect("live");
            let reason = pending[i].item.change.as_ref().err().map(|r| clean(r, MAX_REASON_CHARS).into_owned());
            let reason = reason.unwrap_or_default();
            let quarantine_id = quarantine_ids.get(&raw_id).copied().unwrap_or_default();
            outcomes[i] = Some(StoredOutcome::Quarantined { reason, quarantine_id });
        }
    }
    let outcomes = outcomes.into_iter().map(|o| o.expect("every item has an outcome")).collect();
    let stood = dup.stood.then_some(published).flatten();
    let prints = dup.first_seq.map(|first| (first, dup.prints));
    Ok((outcomes, Written { prints, published, stood, outbox, bodies }))
}

/// What a transaction wrote that this process takes up once it has
/// committed: the fingerprints, from their first sequence number, which
/// the index takes as they are instead of reading them back
/// ([`MatchIndex::absorb`]), and the outbox rows, which intake can lease
/// to the dispatcher before the commit ([`super::handoff`]).
pub(crate) struct Written {
    prints: Option<(i64, Vec<PrintRow>)>,
    /// The ids of the outbox rows written, in order.
    pub(crate) outbox: Vec<i64>,
    /// Their revisions' bodies by (ticket, revision), which the changes
    /// leased to the dispatcher carry without reading them back.
    pub(crate) bodies: HashMap<(String, i64), String>,
    /// The token under which the batch's decisions were published ahead.
    published: Option<u64>,
    /// That token, when the published decisions stood: what was published
    /// is what was committed, every fingerprint under the same ticket (the
    /// possible-duplicate links beside them may differ; the index holds
    /// none of them).
    stood: Option<u64>,
}

impl Written {
    pub(crate) async fn committed(self, index: &matching::Shared) {
        let mut index = index.lock().await;
        if let Some(token) = self.published {
            index.withdraw(token);
        }
        if let Some((first_seq, prints)) = self.prints {
            index.absorb(first_seq, prints, self.stood);
        }
    }
}

/// The duplicate decisions of one batch.
#[derive(Default)]
struct Duplicates {
    /// item → merge into / possible duplicate of / new
    decisions: HashMap<usize, Decision<String>>,
    /// item → the id of the ticket it opens (chosen while deciding, so that
    /// later records of the batch can join it)
    opened: HashMap<usize, String>,
    prints: Vec<PrintRow>,
    links: Vec<LinkRow>,
    /// The first of the sequence numbers reserved for `prints`.
    first_seq: Option<i64>,
    /// The decisions taken in advance stood.
    stood: bool,
}

/// The records of a batch that would open a ticket and take part in
/// duplicate detection, first version of each record only, in arrival order.
fn new_records(
    pending: &[Pending<'_>],
    candidates: impl IntoIterator<Item = usize>,
    links: &HashMap<(String, String), Link>,
) -> Vec<usize> {
    let mut firsts = HashSet::new();
    candidates
        .into_iter()
        .filter(|&i| {
            let item = pending[i].item;
            let key = (item.system.clone(), item.record_id.clone());
            item.change.is_ok() && item.matching.is_some() && !links.contains_key(&key) && firsts.insert(key)
        })
        .collect()
}

/// What was decided about a batch's new records, and on what grounds.
#[derive(Default)]
struct Decided {
    /// item → merge into / possible duplicate of / new
    decisions: HashMap<usize, Decision<String>>,
    /// item → the id of the ticket it opens
    opened: HashMap<usize, String>,
    /// The tickets whose state (finished or not) a decision read.
    checked: Vec<(String, bool)>,
}

/// Decides, in arrival order, about the records `new` against `index` and
/// the tickets opened earlier in the batch. A ticket that no longer takes
/// records (closed) is passed over for the next best. The states of the
/// tickets decided on are read together after a pass; only when one of
/// them turns out finished is the batch decided again, knowing it.
async fn decide_records(
    tx: &mut Tx,
    backend: Backend,
    index: &MatchIndex,
    ahead: &[(String, crate::dedup::Fingerprint)],
    pending: &[Pending<'_>],
    new: &[usize],
    reuse: Option<&HashMap<usize, String>>,
) -> Result<Decided, StoreError> {
    let mut known: HashMap<String, bool> = HashMap::new();
    loop {
        let (mut decided, unknown) = decide_pass(index, ahead, pending, new, &known, reuse);
        if unknown.is_empty() {
            return Ok(decided);
        }
        let states = matching::finished_states(tx, backend, &unknown).await?;
        let any_finished = states.values().any(|&done| done);
        known.extend(states);
        if !any_finished {
            // Every ticket decided on is open: the pass stands.
            decided.checked.extend(unknown.into_iter().map(|t| (t, false)));
            return Ok(decided);
        }
    }
}

/// One pass of [`decide_records`]: tickets of unknown state count as open
/// and are returned, to be read. `ahead` are fingerprints another batch is
/// committing: compared with like the batch's own, but their tickets'
/// states are read like stored ones.
fn decide_pass(
    index: &MatchIndex,
    ahead: &[(String, crate::dedup::Fingerprint)],
    pending: &[Pending<'_>],
    new: &[usize],
    known: &HashMap<String, bool>,
    reuse: Option<&HashMap<usize, String>>,
) -> (Decided, Vec<String>) {
    let mut out = Decided::default();
    let mut unknown: Vec<String> = Vec::new();
    let mut opened_here = matching::BatchPrints::with_capacity(ahead.len() + new.len());
    for (t, p) in ahead {
        opened_here.push(t.clone(), p.clone());
    }
    let mut finished = HashSet::new();
    for &i in new {
        let m = pending[i].item.matching.as_ref().expect("filtered");
        let decision = loop {
            let d = index.decide(&m.print, &opened_here, &m.thresholds, &finished);
            let other = match &d {
                Decision::Merge { ticket, .. } | Decision::Possible { ticket, .. } => ticket,
                Decision::New => break d,
            };
            if opened_here.has_ticket_from(other, ahead.len()) {
                break d;
            }
            match known.get(other) {
                Some(true) => {
                    out.checked.push((other.clone(), true));
                    finished.insert(other.clone());
                }
                Some(false) => {
                    out.checked.push((other.clone(), false));
                    break d;
                }
                None => {
                    if !unknown.contains(other) {
                        unknown.push(other.clone());
                    }
                    break d;
                }
            }
        };
        match &decision {
            Decision::Merge { ticket, .. } => opened_here.push(ticket.clone(), m.print.clone()),
            _ => {
                let id =
                    reuse.and_then(|r| r.get(&i).cloned()).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
                opened_here.push(id.clone(), m.print.clone());
                out.opened.insert(i, id);
            }
        }
        out.decisions.insert(i, decision);
    }
    (out, unknown)
}

/// Duplicate decisions taken before the write lock, from a read snapshot,
/// so that the scoring (the costly part) does not hold up every other
/// writer. They stand only if, under the lock, nothing they read has
/// changed: no fingerprint committed since, the same records new, the same
/// tickets open. Otherwise the batch is decided again under the lock.
pub(crate) struct Predecided {
    seen: i64,
    /// Set when it was scored against the decisions of the batch being
    /// stored ([`MatchIndex::ahead`]): `seen` is then where that batch
    /// ends, and the decision stands only if those decisions stood and
    /// were taken in, and nothing else was.
    ahead: Option<u64>,
    new: Vec<usize>,
    decided: Decided,
}

impl Predecided {
    /// The fingerprints the batch commits if these decisions stand, by the
    /// ticket each joins or opens, in arrival order.
    fn prints(&self, pending: &[Pending<'_>]) -> Vec<(String, crate::dedup::Fingerprint)> {
        prints_of(&self.new, &self.decided, pending)
            .into_iter()
            .map(|(ticket, i)| (ticket.to_string(), pending[i].item.matching.as_ref().expect("new").print.clone()))
            .collect()
    }
}

/// The ticket each of the records `new` joins or opens, as decided, with
/// the record's place in the batch, in arrival order: the fingerprints the
/// batch commits.
fn prints_of<'d>(new: &[usize], decided: &'d Decided, pending: &[Pending<'_>]) -> Vec<(&'d str, usize)> {
    new.iter()
        .filter_map(|&i| {
            pending[i].item.matching.as_ref()?;
            let ticket = match decided.decisions.get(&i) {
                Some(Decision::Merge { ticket, .. }) => ticket,
                _ => decided.opened.get(&i)?,
            };
            Some((ticket.as_str(), i))
        })
        .collect()
}

/// A batch's decisions scored ahead of its transaction (none when it has
/// nothing to score, or the scoring could not read), and the token they
/// were published under for the next batch to be scored against.
pub(crate) struct Ahead {
    pre: Option<Predecided>,
    published: Option<u64>,
}

#[cfg(test)]
impl Ahead {
    /// Whether anything was scored in advance.
    pub(crate) fn scored(&self) -> bool {
        self.pre.is_some()
    }

    /// The token the decisions were published under.
    pub(crate) fn token(&self) -> Option<u64> {
        self.published
    }
}

pub(crate) async fn predecide(
    pool: &sqlx::AnyPool,
    backend: Backend,
    index: &matching::Shared,
    pending: &[Pending<'_>],
) -> Result<Option<Predecided>, StoreError> {
    let candidates: Vec<usize> = (0..pending.len())
        .filter(|&i| {
            pending[i].raw_id.is_none() && pending[i].item.change.is_ok() && pending[i].item.matching.is_some()
        })
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let keys: Vec<(String, String)> = candidates
        .iter()
        .map(|&i| (pending[i].item.system.clone(), pending[i].item.record_id.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut tx = Tx::Pool(pool.begin().await?);
    let links = load_links(&mut tx, backend, &keys).await?;
    let mut new = new_records(pending, candidates, &links);
    if new.is_empty() {
        return Ok(None);
    }
    let mut index = index.lock().await;
    index.sync(&mut tx).await?;
    let ahead = index.ahead();
    if let Some(f) = ahead {
        // Records the batch being stored links (earlier versions of these)
        // will have their links when this batch is stored, as if read.
        new.retain(|&i| !f.linked.contains(&(pending[i].item.system.clone(), pending[i].item.record_id.clone())));
        if new.is_empty() {
            return Ok(None);
        }
    }
    let (seen, token) = match ahead {
        Some(f) => (index.seen() + f.prints.len() as i64, Some(f.token())),
        None => (index.seen(), None),
    };
    let prints = ahead.map_or(&[][..], |f| &f.prints[..]);
    let decided = decide_records(&mut tx, backend, &index, prints, pending, &new, None).await?;
    tx.rollback().await?;
    Ok(Some(Predecided { seen, ahead: token, new, decided }))
}

/// Decides about every record that would open a ticket and takes part in
/// duplicate detection. Holds the decision lock (`match_clock`) from here
/// to the commit.
async fn find_duplicates(
    tx: &mut Tx,
    backend: Backend,
    index: &matching::Shared,
    pending: &[Pending<'_>],
    live: &[usize],
    links: &HashMap<(String, String), Link>,
    pre: Option<Predecided>,
) -> Result<Duplicates, StoreError> {
    let mut out = Duplicates::default();
    let new = new_records(pending, live.iter().copied(), links);
    if new.is_empty() {
        return Ok(out);
    }
    let first_seq = matching::take_clock(tx, new.len()).await?;
    out.first_seq = Some(first_seq);
    // Decisions taken in advance stand if nothing they read has changed.
    // That is checked without the index's lock, which the scoring of the
    // next batch may hold: under the decision lock nobody commits
    // fingerprints, so none committed after the index's mark means the
    // index is complete as it is.
    let stands = match &pre {
        Some(pre) => {
            index.mark().holds(pre.seen, pre.ahead)
                && pre.new == new
                && first_seq - 1 <= pre.seen
                && still_so(tx, backend, &pre.decided.checked).await?
        }
        None => false,
    };
    if stands && let Some(pre) = pre {
        out.stood = true;
        out.decisions = pre.decided.decisions;
        out.opened = pre.decided.opened;
        return Ok(out);
    }
    let mut index = index.lock().await;
    index.sync(tx).await?;
    // Tickets opened under the ids chosen in advance: decided alike, the
    // batch commits what it published, and the next batch's decisions,
    // scored against that, can stand.
    let reuse = pre.as_ref().map(|p| &p.decided.opened);
    let decided = decide_records(tx, backend, &index, &[], pending, &new, reuse).await?;
    out.stood = pre
        .as_ref()
        .is_some_and(|p| p.new == new && prints_of(&p.new, &p.decided, pending) == prints_of(&new, &decided, pending));
    out.decisions = decided.decisions;
    out.opened = decided.opened;
    Ok(out)
}

/// Whether every ticket is still as finished (or not) as a decision saw it.
async fn still_so(tx: &mut Tx, backend: Backend, checked: &[(String, bool)]) -> Result<bool, StoreError> {
    if checked.is_empty() {
        return Ok(true);
    }
    let ids: Vec<String> = checked.iter().map(|(t, _)| t.clone()).collect();
    let now = matching::finished_states(tx, backend, &ids).await?;
    Ok(checked.iter().all(|(t, done)| now.get(t).copied().unwrap_or(false) == *done))
}

fn body(ticket: &Ticket) -> String {
    serde_json::to_string(ticket).expect("a ticket always serializes")
}

async fn load_links(
    tx: &mut Tx,
    backend: Backend,
    keys: &[(String, String)],
) -> Result<HashMap<(String, String), Link>, StoreError> {
    let mut links = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_ROWS) {
        // Padded to a power of two with the last key again, as
        // `batch::fetch_in` does: a few statements stay prepared.
        let padded = chunk.len().next_power_of_two().min(MAX_ROWS);
        let sql = format!(
            "SELECT l.system, l.record_id, l.ticket_id, l.whole_version, l.patch_version, l.patched FROM source_links l JOIN {} AS v ON l.system = v.column1 AND l.record_id = v.column2",
            batch::values_table(backend, 2, padded, 1)
        );
        let mut q = super::query(sql).reserve(2 * padded);
        for (system, record_id) in
            chunk.iter().chain(std::iter::repeat_n(&chunk[chunk.len() - 1], padded - chunk.len()))
        {
            q = q.bind(system.clone()).bind(record_id.clone());
        }
        for r in q.fetch_all(tx).await? {
            let patch_version: Option<i64> = r.get(4);
            let patched: Option<String> = r.get(5);
            // Fields that no longer parse keep nothing: the whole record wins.
            let kept = patched.and_then(|words| Patch::parse(&words).ok()).unwrap_or_default();
            let link = Link { ticket_id: r.get(2), whole: r.get(3), patched: patch_version.map(|p| (p, kept)) };
            links.insert((r.get(0), r.get(1)), link);
        }
    }
    Ok(links)
}

/// Tickets as read for planning their next revisions.
#[derive(Default)]
struct Loaded {
    tickets: HashMap<String, Ticket>,
    /// The platform's side of those that have one.
    handlings: HashMap<String, Handling>,
    /// Each row's stamp as read: written back only where it is unchanged.
    stamps: HashMap<String, i64>,
}

impl Loaded {
    fn extend(&mut self, more: Loaded) {
        self.tickets.extend(more.tickets);
        self.handlings.extend(more.handlings);
        self.stamps.extend(more.stamps);
    }
}

/// The tickets `ids`, the platform's side of those that have one, and
/// their stamps.
async fn load_tickets(tx: &mut Tx, backend: Backend, ids: &[String]) -> Result<Loaded, StoreError> {
    let mut out = Loaded { tickets: HashMap::with_capacity(ids.len()), ..Loaded::default() };
    let sql = "SELECT ticket_id, body, handling, stamp FROM tickets";
    for r in batch::fetch_in(tx, backend, sql, "ticket_id", ids).await? {
        let id: String = r.get(0);
        let text: String = r.get(1);
        let ticket = serde_json::from_str(&text)
            .map_err(|source| StoreError::CorruptTicket { ticket_id: id.clone(), source })?;
        let handling: Option<String> = r.get(2);
        if let Some(h) = handling.and_then(|t| serde_json::from_str(&t).ok()) {
            out.handlings.insert(id.clone(), h);
        }
        out.stamps.insert(id.clone(), r.get(3));
        out.tickets.insert(id, ticket);
    }
    Ok(out)
}

async fn write_plan(
    tx: &mut Tx,
    backend: Backend,
    w: &Writes,
    tickets: &HashMap<String, Ticket>,
    stamps: &HashMap<String, i64>,
    print_seqs: &HashMap<(&str, &str), i64>,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    for chunk in batch::pieces(backend, &w.raw_outcomes) {
        let sql = format!(
            "UPDATE raw_records SET outcome = v.column2, ticket_id = v.column3 FROM {} AS v WHERE raw_records.id = v.column1",
            batch::values_table(backend, 3, chunk.len(), 1)
        );
        let mut q = super::query(sql).reserve(3 * chunk.len());
        for (id, outcome, ticket_id) in chunk {
            q = q.bind(*id).bind(*outcome).bind(ticket_id.clone());
        }
        q.execute(tx).await?;
    }
    // A ticket's row carries the body of its last revision in this batch,
    // serialized once already.
    let mut last_body: HashMap<&str, &str> = HashMap::with_capacity(w.revisions.len());
    for (ticket_id, _, _, _, text) in &w.revisions {
        last_body.insert(ticket_id, text);
    }
    for chunk in batch::pieces(backend, &w.created) {
        let mut q = batch::insert(
            backend,
            "tickets",
            &["ticket_id", "revision", "status", "body", "created_at", "updated_at"],
            chunk.len(),
            "",
        );
        for id in chunk {
            let t = &tickets[id];
            q = q
                .bind(id.clone())
                .bind(t.revision)
                .bind(t.draft.status.as_str())
                .bind(last_body[id.as_str()])
                .bind(now)
                .bind(now);
        }
        q.execute(tx).await?;
    }
    for chunk in batch::pieces(backend, &w.updated) {
        // Only rows nobody wrote since they were read (another hub's
        // callback, on PostgreSQL): else the batch is planned again.
        let sql = format!(
            "UPDATE tickets SET revision = v.column2, status = v.column3, body = v.column4, updated_at = v.column5, stamp = tickets.stamp + 1
               FROM {} AS v WHERE tickets.ticket_id = v.column1 AND tickets.stamp = v.column6",
            batch::values_table(backend, 6, chunk.len(), 1)
        );
        let mut q = super::query(sql).reserve(6 * chunk.len());
        for id in chunk {
            let t = &tickets[id];
            q = q
                .bind(id.clone())
                .bind(t.revision)
                .bind(t.draft.status.as_str())
                .bind(last_body[id.as_str()])
                .bind(now)
                .bind(stamps.get(id).copied().unwrap_or_default());
        }
        let written = q.execute(tx).await?.rows_affected();
        if written != chunk.len() as u64 {
            return Err(StoreError::Conflict(format!(
                "{} of {} tickets changed while their next revisions were planned",
                chunk.len() as u64 - written,
                chunk.len()
            )));
        }
    }
    // In key order, so that two hubs on one PostgreSQL take row locks alike.
    let mut opened: Vec<_> = w.links_new.iter().collect();
    opened.sort_by(|a, b| a.0.cmp(b.0));
    for chunk in batch::pieces(backend, &opened) {
        let mut q = batch::insert(
            backend,
            "source_links",
            &[
                "system",
                "record_id",
                "ticket_id",
                "version",
                "whole_version",
                "patch_version",
                "patched",
                "linked_at",
                "print_seq",
            ],
            chunk.len(),
            "",
        );
        for ((system, record_id), link) in chunk {
            q = q
                .bind(system.clone())
                .bind(record_id.clone())
                .bind(link.ticket_id.clone())
                .bind(link.version())
                .bind(link.whole)
                .bind(link.patched.as_ref().map(|(p, _)| *p))
                .bind(link.patched.as_ref().map(|(_, kept)| kept.words()))
                .bind(now)
                .bind(print_seqs.get(&(system.as_str(), record_id.as_str())).copied());
        }
        q.execute(tx).await?;
    }
    let mut moved: Vec<_> = w.links_moved.iter().collect();
    moved.sort_by(|a, b| a.0.cmp(b.0));
    for chunk in batch::pieces(backend, &moved) {
        let sql = format!(
            "UPDATE source_links SET version = v.column3, whole_version = v.column4, patch_version = v.column5, patched = v.column6
               FROM {} AS v WHERE source_links.system = v.column1 AND source_links.record_id = v.column2",
            batch::values_table(backend, 6, chunk.len(), 1)
        );
        let mut q = super::query(sql).reserve(6 * chunk.len());
        for ((system, record_id), link) in chunk {
            q = q
                .bind(system.clone())
                .bind(record_id.clone())
                .bind(link.version())
                .bind(link.whole)
                .bind(link.patched.as_ref().map(|(p, _)| *p))
                .bind(link.patched.as_ref().map(|(_, kept)| kept.words()));
        }
        q.execute(tx).await?;
    }
    for chunk in batch::pieces(backend, &w.revisions) {
        let mut q = batch::insert(
            backend,
            "ticket_revisions",
            &["ticket_id", "revision", "raw_record_id", "cause", "body", "created_at"],
            chunk.len(),
            "",
        );
        for (ticket_id, revision, raw_id, cause, text) in chunk {
            q = q.bind(ticket_id.clone()).bind(*revision).bind(*raw_id).bind(*cause).bind(text.clone()).bind(now);
        }
        q.execute(tx).await?;
    }
    // Every revision is a change for the platform, in the same transaction;
    // its body is the revision's, read when leased. Their ids say which
    // rows the dispatcher can be handed ([`super::handoff`]).
    let mut outbox_ids = Vec::with_capacity(w.revisions.len());
    for chunk in batch::pieces(backend, &w.revisions) {
        let mut q = batch::insert(
            backend,
            "outbox",
            &["ticket_id", "revision", "idempotency_key", "body", "next_attempt_at", "created_at"],
            chunk.len(),
            "RETURNING id",
        );
        for (ticket_id, revision, _, _, _) in chunk {
            q = q
                .bind(ticket_id.clone())
                .bind(*revision)
                .bind(format!("{ticket_id}:{revision}"))
                .bind(super::outbox::REVISION_BODY)
                .bind(now)
                .bind(now);
        }
        outbox_ids.extend(q.fetch_all(tx).await?.iter().map(|r| r.get::<i64, _>(0)));
    }
    Ok(outbox_ids)
}

async fn insert_quarantine(
    tx: &mut Tx,
    backend: Backend,
    rows: &[(i64, String, String)],
    now: i64,
) -> Result<HashMap<i64, i64>, StoreError> {
    let mut ids = HashMap::with_capacity(rows.len());
    for chunk in batch::pieces(backend, rows) {
        let mut q = batch::insert(
            backend,
            "quarantine",
            &["raw_record_id", "system", "reason", "created_at"],
            chunk.len(),
            "RETURNING id, raw_record_id",
        );
        for (raw_id, system, reason) in chunk {
            q = q.bind(*raw_id).bind(system.clone()).bind(clean(reason, MAX_REASON_CHARS).into_owned()).bind(now);
        }
        for r in q.fetch_all(tx).await? {
            ids.insert(r.get::<i64, _>(1), r.get::<i64, _>(0));
        }
    }
    Ok(ids)
}

impl super::Store {
    /// Stores a batch in one transaction (group commit). If the batch fails
    /// as a whole (a concurrent hub on PostgreSQL linked the same record,
    /// say), each item is retried in a transaction of its own so that one
    /// record's trouble is only that record's; a record that cannot be
    /// stored as it is goes to quarantine ([`Store::settle`]), so that it
    /// is answered and its source's stream goes on.
    pub async fn store_batch(&self, items: &[IntakeItem]) -> Vec<Result<StoredOutcome, StoreError>> {
        self.store_scored(items, None).await
    }

    /// [`Store::store_batch`] for a batch scored with [`Store::score_ahead`].
    pub(crate) async fn store_scored(
        &self,
        items: &[IntakeItem],
        ahead: Option<Ahead>,
    ) -> Vec<Result<StoredOutcome, StoreError>> {
        let mut first = self.try_store_batch(items, ahead).await;
        for _ in 0..CONFLICT_RETRIES {
            // Another hub changed a ticket this batch updates: plan it
            // again on what is there now.
            if !matches!(first, Err(StoreError::Conflict(_))) {
                break;
            }
            first = self.try_store_batch(items, None).await;
        }
        let results = match first {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(err) if items.len() == 1 => vec![Err(err)],
            Err(err) => {
                tracing::debug!(error = %err, batch = items.len(), "batch commit failed, storing one by one");
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let one = self.try_store_batch(std::slice::from_ref(item), None).await;
                    out.push(one.map(|mut v| v.remove(0)));
                }
                out
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (item, result) in items.iter().zip(results) {
            out.push(match result {
                Err(err) => self.settle(item, err).await,
                stored => stored,
            });
        }
        out
    }

    /// A record that failed to store in a transaction of its own: the
    /// error stands when it is the database's trouble (the source sends
    /// the record again later); when it is the record's, or an unclear one
    /// came [`super::failure::UNCLEAR_TRIES`] times, the record is kept in
    /// quarantine in a form that stores whatever it holds
    /// ([`Store::quarantine_unstorable`]) and that is its outcome.
    async fn settle(&self, item: &IntakeItem, err: StoreError) -> Result<StoredOutcome, StoreError> {
        let key = format!("{}\n{}", item.system, quarantine_key(&item.payload));
        let give_up = match err.failure() {
            Failure::Database => false,
            Failure::Record => true,
            Failure::Unclear => self.strikes.lock().unwrap_or_else(|p| p.into_inner()).strike(&key),
        };
        if !give_up {
            return Err(err);
        }
        // The strikes are kept: the same bytes failing again are answered
        // at once, as the duplicate of what is in quarantine.
        match self.quarantine_unstorable(item, &err).await {
            Ok(outcome) => Ok(outcome),
            Err(again) => {
                tracing::error!(system = %item.system, error = %again, "could not keep an unstorable record in quarantine either");
                Err(err)
            }
        }
    }

    /// Keeps a record the store cannot take as it is: a raw record under
    /// its content hash with the bytes as received (binary, so storable;
    /// a payload beyond [`UNSTORABLE_PAYLOAD_MAX`] keeps its head), the
    /// transport's texts only when they are clean, and a quarantine entry
    /// whose reason says why, so that a person can look and replay it.
    async fn quarantine_unstorable(&self, item: &IntakeItem, err: &StoreError) -> Result<StoredOutcome, StoreError> {
        let payload = &item.payload[..item.payload.len().min(UNSTORABLE_PAYLOAD_MAX)];
        let mut reason = format!(
            "the record could not be stored as it is ({}); kept here so that its source goes on",
            crate::pii::scrub(&err.to_string())
        );
        if payload.len() < item.payload.len() {
            reason.push_str(&format!("; only its first {} of {} bytes are kept", payload.len(), item.payload.len()));
        }
        if let Err(mapping) = &item.change {
            reason.push_str("; the mapping said: ");
            reason.push_str(mapping);
        }
        let reason = clean(&reason, MAX_REASON_CHARS).into_owned();
        let system = clean(&item.system, MAX_META_CHARS).into_owned();
        let metadata = match clean(&item.metadata, MAX_META_CHARS) {
            std::borrow::Cow::Borrowed(m) => m.to_string(),
            std::borrow::Cow::Owned(_) => "{}".to_string(),
        };
        let encoding = item.encoding.as_deref().map(|e| clean(e, MAX_META_CHARS).into_owned());
        let now = now_ms();
        let mut w = self.begin_write_as(super::Writer::Intake).await?;
        let sql = batch::insert_sql(
            self.backend,
            "raw_records",
            &RAW_COLUMNS,
            1,
            "ON CONFLICT (system, record_id, version) DO NOTHING RETURNING id",
        );
        let raw_id: Option<i64> = super::query(sql)
            .bind(system.clone())
            .bind(quarantine_key(&item.payload))
            .bind(0_i64)
            .bind(item.received_at.timestamp_millis())
            .bind(now)
            .bind(item.content_type)
            .bind(encoding)
            .bind(metadata)
            .bind(payload.to_vec())
            .bind("quarantined")
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .fetch_optional(&mut w.tx)
            .await?
            .map(|r| r.get(0));
        let Some(raw_id) = raw_id else {
            // These bytes are kept already (an earlier delivery of them).
            w.commit().await?;
            return Ok(StoredOutcome::Duplicate);
        };
        let ids = insert_quarantine(&mut w.tx, self.backend, &[(raw_id, system.clone(), reason.clone())], now).await?;
        w.commit().await?;
        let quarantine_id = ids.get(&raw_id).copied().unwrap_or_default();
        tracing::warn!(%system, quarantine_id, %reason, "a record that cannot be stored is kept in quarantine");
        Ok(StoredOutcome::Quarantined { reason, quarantine_id })
    }

    /// Scores a batch's duplicate decisions before it is stored, against
    /// what is committed and what the batch being stored is deciding (see
    /// [`Store::publish_ahead`]): the scoring of one batch then overlaps
    /// the writing of the one before.
    pub(crate) async fn score_ahead(&self, items: &[IntakeItem]) -> Ahead {
        let pending: Vec<Pending> = items.iter().map(|item| Pending { item, raw_id: None }).collect();
        Ahead { pre: self.predecide(&pending).await, published: None }
    }

    /// Publishes the decisions scored for a batch about to be stored, so
    /// that the next batch is scored against them while this one writes.
    /// If they do not stand in its transaction, nothing scored against them
    /// does either ([`MatchIndex::holds`]).
    pub(crate) async fn publish_ahead(&self, items: &[IntakeItem], ahead: &mut Ahead) {
        let Some(pre) = &ahead.pre else { return };
        let pending: Vec<Pending> = items.iter().map(|item| Pending { item, raw_id: None }).collect();
        let prints = pre.prints(&pending);
        if prints.is_empty() {
            return;
        }
        let linked = pre.new.iter().map(|&i| (items[i].system.clone(), items[i].record_id.clone())).collect();
        let token = matching::token();
        self.matching.lock().await.publish(token, prints, linked);
        ahead.published = Some(token);
    }

    /// Takes back what [`Store::publish_ahead`] published, as a failed
    /// transaction does.
    #[cfg(test)]
    pub(crate) async fn withdraw_ahead(&self, ahead: &Ahead) {
        if let Some(token) = ahead.published {
            self.matching.lock().await.withdraw(token);
        }
    }

    /// Scores in advance where it can; a read that fails only means the
    /// batch is scored under the lock instead.
    async fn predecide(&self, pending: &[Pending<'_>]) -> Option<Predecided> {
        predecide(&self.pool, self.backend, &self.matching, pending).await.unwrap_or_else(|err| {
            tracing::debug!(error = %err, "could not score a batch in advance; it is scored under the lock");
            None
        })
    }

    pub(super) async fn try_store_batch(
        &self,
        items: &[IntakeItem],
        ahead: Option<Ahead>,
    ) -> Result<Vec<StoredOutcome>, StoreError> {
        let pending: Vec<Pending> = items.iter().map(|item| Pending { item, raw_id: None }).collect();
        let (pre, published) = match ahead {
            Some(Ahead { pre, published }) => (pre, published),
            None => (self.predecide(&pending).await, None),
        };
        let stored = async {
            let mut w = self.begin_write_as(super::Writer::Intake).await?;
            // The new changes are leased to the dispatcher as this commits.
            let handoff = self.handoff().map(|handoff| (handoff, super::handoff::mark(self.backend, handoff)));
            let (outcomes, mut prints) =
                store_pending(&mut w.tx, self.backend, &self.matching, &self.feedback_plan(), &pending, pre, published)
                    .await?;
            let leased = match handoff {
                Some((handoff, mark)) => {
                    Some((handoff, mark.lease(&mut w.tx, handoff, &prints.outbox, &mut prints.bodies).await?))
                }
                None => None,
            };
            w.commit().await?;
            Ok::<_, StoreError>((outcomes, prints, leased))
        };
        match stored.await {
            Ok((outcomes, prints, leased)) => {
                if let Some((handoff, leased)) = leased {
                    leased.hand(handoff);
                }
                prints.committed(&self.matching).await;
                Ok(outcomes)
            }
            Err(err) => {
                if let Some(token) = published {
                    self.matching.lock().await.withdraw(token);
                }
                Err(err)
            }
        }
    }

    /// Stores a page of records and the cursor after it in one transaction:
    /// the cursor never runs ahead of the records it covers. When the page
    /// fails for something other than the database's trouble, its records
    /// are stored one by one (an unstorable one goes to quarantine, see
    /// [`Store::settle`]) and then the cursor alone: one bad record does
    /// not hold the cursor back for ever, and still nothing is skipped.
    pub async fn store_page(
        &self,
        items: &[IntakeItem],
        cursor: Option<(&str, &str, Option<&str>)>,
    ) -> Result<Vec<StoredOutcome>, StoreError> {
        let mut first = self.try_store_page(items, cursor).await;
        for _ in 0..CONFLICT_RETRIES {
            if !matches!(first, Err(StoreError::Conflict(_))) {
                break;
            }
            first = self.try_store_page(items, cursor).await;
        }
        let err = match first {
            Ok(outcomes) => return Ok(outcomes),
            Err(err) if err.failure() == Failure::Database => return Err(err),
            Err(err) => err,
        };
        tracing::debug!(error = %err, records = items.len(), "page commit failed, storing its records one by one");
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let one = match self.try_store_batch(std::slice::from_ref(item), None).await {
                Ok(mut stored) => stored.remove(0),
                Err(err) => self.settle(item, err).await?,
            };
            outcomes.push(one);
        }
        if cursor.is_some() {
            self.try_store_page(&[], cursor).await?;
        }
        Ok(outcomes)
    }

    async fn try_store_page(
        &self,
        items: &[IntakeItem],
        cursor: Option<(&str, &str, Option<&str>)>,
    ) -> Result<Vec<StoredOutcome>, StoreError> {
        let pending: Vec<Pending> = items.iter().map(|item| Pending { item, raw_id: None }).collect();
        let pre = self.predecide(&pending).await;
        let mut w = self.begin_write_as(super::Writer::Intake).await?;
        let (outcomes, prints) =
            store_pending(&mut w.tx, self.backend, &self.matching, &self.feedback_plan(), &pending, pre, None).await?;
        if let Some((name, value, etag)) = cursor {
            super::query(
                "INSERT INTO cursors (name, value, etag, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, etag = excluded.etag, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(value)
            .bind(etag)
            .bind(now_ms())
            .execute(&mut w.tx)
            .await?;
        }
        w.commit().await?;
        if let Some(handoff) = self.handoff() {
            // A page's changes are leased by the dispatcher from the outbox.
            handoff.left_in_outbox();
        }
        prints.committed(&self.matching).await;
        Ok(outcomes)
    }

    /// The cursor stored under `name`: (value, etag).
    pub async fn cursor(&self, name: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT value, etag FROM cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
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

/// A place where a test holds a batch between reading its tickets and
/// writing them, to change them from another hub meanwhile.
#[cfg(test)]
pub(crate) mod pause {
    use std::sync::{Arc, Mutex};

    use tokio::sync::oneshot;

    /// Held once: the first batch to come by under [`Pause::scope`] says
    /// so and waits for [`Pause::go`].
    /// Where a batch says it arrived, and where it waits to go on.
    type Held = (oneshot::Sender<()>, oneshot::Receiver<()>);

    #[derive(Clone)]
    pub struct Pause(Arc<Mutex<Option<Held>>>);

    tokio::task_local! {
        static PAUSE: Pause;
    }

    impl Pause {
        /// The pause, a signal that a batch reached it, and the way to let it go.
        pub fn new() -> (Pause, oneshot::Receiver<()>, oneshot::Sender<()>) {
            let (reached, on_reached) = oneshot::channel();
            let (go, on_go) = oneshot::channel();
            (Pause(Arc::new(Mutex::new(Some((reached, on_go))))), on_reached, go)
        }

        pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
            PAUSE.scope(self, f).await
        }
    }

    pub(super) async fn here() {
        let Ok(held) = PAUSE.try_with(|p| p.0.lock().unwrap().take()) else { return };
        if let Some((reached, go)) = held {
            let _ = reached.send(());
            let _ = go.await;
        }
    }
}
