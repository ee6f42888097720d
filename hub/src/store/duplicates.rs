//! A person's side of duplicate detection: the decisions kept in
//! `duplicate_links`, and confirming, rejecting or undoing them. Every
//! change to a ticket is a revision with its outbox row, delivered like any
//! other; nothing is deleted.

use sqlx::Row as _;

use super::matching::{self, PrintRow};
use super::{Store, StoreError, Tx, now_ms};
use crate::mapping::Mapped;
use crate::ticket::{Change, Patch, Source, Ticket, TicketDraft, Timestamp};

/// One kept decision.
#[derive(Clone, Debug)]
pub struct DuplicateLink {
    pub id: i64,
    /// The ticket the record opened (possible) or joined (merged).
    pub ticket_id: String,
    /// The earlier ticket it was found alike (the same as `ticket_id` for a merge).
    pub other_id: String,
    pub system: String,
    pub record_id: String,
    pub score: f64,
    /// One readable line per piece of evidence, no personal data.
    pub reasons: Vec<String>,
    /// `merged`, `possible`, `confirmed`, `rejected`, `unmerged`.
    pub state: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub note: Option<String>,
}

pub(super) const LINK_COLUMNS: &str =
    "id, ticket_id, other_id, system, record_id, score, reasons, state, created_at, decided_at, note";

pub(super) fn link(r: &super::Row) -> DuplicateLink {
    let reasons: String = r.get(6);
    DuplicateLink {
        id: r.get(0),
        ticket_id: r.get(1),
        other_id: r.get(2),
        system: r.get(3),
        record_id: r.get(4),
        score: r.get(5),
        reasons: reasons.lines().map(str::to_string).collect(),
        state: r.get(7),
        created_at: r.get(8),
        decided_at: r.get(9),
        note: r.get(10),
    }
}

/// What a record that is taken out of a ticket becomes: its own messages,
/// mapped again by the caller (who has the mappings) and put together by
/// [`Unmerged::rebuild`].
pub struct Unmerged {
    pub draft: TicketDraft,
    pub source: Source,
}

impl Unmerged {
    /// The record as its own messages say it, applied in their order the
    /// way intake applies them: whole records replace, partial updates
    /// (progress notes, evaluations) set their fields, and a whole record
    /// after partial updates keeps what they set. Not just the newest
    /// message: a terminal's newest is often a progress note, whose draft
    /// alone has no report in it. `None` when there is no message.
    pub fn rebuild(system: &str, mut messages: Vec<(Mapped, Timestamp)>) -> Option<Unmerged> {
        messages.sort_by_key(|(m, _)| m.version);
        let mut ticket: Option<Ticket> = None;
        let mut patched: Option<Patch> = None;
        for (m, received_at) in messages {
            let source = Source {
                channel: m.applied.channel,
                system: system.to_string(),
                record_id: m.record_id,
                version: m.version,
                received_at,
            };
            let Some(t) = ticket.as_mut() else {
                patched = m.applied.patch;
                ticket = Some(Ticket::create(String::new(), m.applied.draft, source));
                continue;
            };
            match (&m.applied.patch, &patched) {
                (Some(patch), _) => {
                    t.apply_update(m.applied.draft.clone(), source, Change::Patch(patch));
                    patched = Some(patched.as_ref().map_or_else(|| patch.clone(), |p| p.union(patch)));
                }
                (None, Some(kept)) => {
                    t.apply_update(m.applied.draft, source, Change::Fill(kept));
                }
                (None, None) => {
                    t.apply_update(m.applied.draft, source, Change::Whole);
                }
            }
        }
        let t = ticket?;
        let source = t.sources.into_iter().next()?;
        Some(Unmerged { draft: t.draft, source })
    }
}

impl Store {
    /// Kept decisions, newest first: those in `state` (all when `None`).
    pub async fn duplicate_links(&self, state: Option<&str>, limit: i64) -> Result<Vec<DuplicateLink>, StoreError> {
        let rows = match state {
            Some(s) => {
                super::batch::query(format!(
                    "SELECT {LINK_COLUMNS} FROM duplicate_links WHERE state = $1 ORDER BY id DESC LIMIT $2"
                ))
                .bind(s.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                super::batch::query(format!("SELECT {LINK_COLUMNS} FROM duplicate_links ORDER BY id DESC LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        super::tx::each(&rows, link)
    }

    /// The decisions that name a ticket, on either side: the first 500 (a
    /// matter reported a thousand times reads as its first reports).
    pub async fn duplicate_links_of(&self, ticket_id: &str) -> Result<Vec<DuplicateLink>, StoreError> {
        let rows = super::batch::query(format!(
            "SELECT {LINK_COLUMNS} FROM duplicate_links WHERE ticket_id = $1 OR other_id = $1 ORDER BY id LIMIT 500"
        ))
        .bind(ticket_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        super::tx::each(&rows, link)
    }

    pub async fn duplicate_link(&self, id: i64) -> Result<DuplicateLink, StoreError> {
        let row = super::batch::query(format!("SELECT {LINK_COLUMNS} FROM duplicate_links WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("duplicate link {id}")))?;
        Ok(link(&super::Row::from_any(&row)?))
    }

    /// A person confirms a possible duplicate: the later ticket gets
    /// `duplicateOf` and the earlier one takes its sources (and its records'
    /// future versions). Two revisions, both delivered.
    pub async fn confirm_duplicate(&self, id: i64, note: Option<&str>) -> Result<DuplicateLink, StoreError> {
        let mut w = self.begin_write().await?;
        let l = locked_link(&mut w.tx, id, "possible", "confirm").await?;
        let mut later = load(&mut w.tx, &l.ticket_id).await?;
        let mut survivor = load(&mut w.tx, &l.other_id).await?;
        if later.duplicate_of.is_some() {
            return Err(StoreError::Invalid(format!("ticket {} is already a duplicate", later.ticket_id)));
        }
        let moved = later.sources.clone();
        for (n, source) in moved.iter().enumerate() {
            if n == 0 {
                survivor.merge_in(later.draft.clone(), source.clone());
            } else if !survivor.sources.iter().any(|s| s.system == source.system && s.record_id == source.record_id) {
                survivor.sources.push(source.clone());
            }
        }
        later.duplicate_of = Some(survivor.ticket_id.clone());
        later.revision += 1;
        let now = now_ms();
        save(&mut w.tx, self.backend, &later, "duplicate confirmed", now).await?;
        save(&mut w.tx, self.backend, &survivor, "duplicate absorbed", now).await?;
        move_records(&mut w.tx, self.backend, &later.ticket_id, &survivor.ticket_id, &moved).await?;
        decide_link(&mut w.tx, id, "confirmed", note, now).await?;
        w.commit().await?;
        self.duplicate_link(id).await
    }

    /// A person says a possible duplicate is a matter of its own.
    pub async fn reject_duplicate(&self, id: i64, note: Option<&str>) -> Result<DuplicateLink, StoreError> {
        let mut w = self.begin_write().await?;
        locked_link(&mut w.tx, id, "possible", "reject").await?;
        decide_link(&mut w.tx, id, "rejected", note, now_ms()).await?;
        w.commit().await?;
        self.duplicate_link(id).await
    }

    /// Undoes a merge: the record leaves the ticket it joined and opens its
    /// own (`record`, mapped again by the caller). Returns the new ticket id.
    pub async fn unmerge(&self, id: i64, record: Unmerged, note: Option<&str>) -> Result<String, StoreError> {
        let mut w = self.begin_write().await?;
        let l = locked_link(&mut w.tx, id, "merged", "unmerge").await?;
        let mut joined = load(&mut w.tx, &l.ticket_id).await?;
        if joined.sources.first().is_some_and(|s| s.system == l.system && s.record_id == l.record_id) {
            return Err(StoreError::Invalid("the record opened this ticket; it cannot leave it".into()));
        }
        joined.remove_source(&l.system, &l.record_id);
        let new_id = uuid::Uuid::now_v7().simple().to_string();
        let own = Ticket::create(new_id.clone(), record.draft, record.source.clone());
        let now = now_ms();
        save(&mut w.tx, self.backend, &joined, "unmerged", now).await?;
        insert_ticket(&mut w.tx, &own, now).await?;
        save(&mut w.tx, self.backend, &own, "unmerged", now).await?;
        move_records(&mut w.tx, self.backend, &joined.ticket_id, &new_id, std::slice::from_ref(&record.source)).await?;
        decide_link(&mut w.tx, id, "unmerged", note, now).await?;
        w.commit().await?;
        Ok(new_id)
    }

    /// Every stored message of a source record, oldest version first, to
    /// map again (a message keyed on its own id names its record in
    /// `about`).
    pub async fn raw_messages(
        &self,
        system: &str,
        record_id: &str,
    ) -> Result<Vec<super::QuarantinedRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, content_type, encoding, metadata, payload, received_at FROM raw_records
              WHERE system = $1 AND (record_id = $2 OR about = $2) AND outcome NOT IN ('quarantined', 'duplicate')
              ORDER BY version, id",
        )
        .bind(system.to_string())
        .bind(record_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound(format!("record {system}/{record_id}")));
        }
        Ok(rows
            .into_iter()
            .map(|row| super::QuarantinedRecord {
                id: 0,
                raw_record_id: row.get(0),
                system: system.to_string(),
                reason: String::new(),
                state: String::new(),
                created_at: row.get(5),
                received_at: row.get(5),
                content_type: row.get(1),
                encoding: row.get(2),
                metadata: row.get(3),
                payload: row.get(4),
            })
            .collect())
    }
}

/// Reads a link in the write transaction (after the decision lock) and
/// checks that it is in `state`.
async fn locked_link(tx: &mut Tx, id: i64, state: &str, what: &str) -> Result<DuplicateLink, StoreError> {
    matching::take_clock(tx, 0).await?;
    let row = super::query(format!("SELECT {LINK_COLUMNS} FROM duplicate_links WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("duplicate link {id}")))?;
    let l = link(&row);
    if l.state != state {
        return Err(StoreError::Invalid(format!("cannot {what} link {id}: it is {}, not {state}", l.state)));
    }
    Ok(l)
}

async fn decide_link(tx: &mut Tx, id: i64, state: &str, note: Option<&str>, now: i64) -> Result<(), StoreError> {
    super::query("UPDATE duplicate_links SET state = $1, decided_at = $2, note = $3 WHERE id = $4")
        .bind(state.to_string())
        .bind(now)
        .bind(note.map(str::to_string))
        .bind(id)
        .execute(tx)
        .await?;
    Ok(())
}

pub(super) async fn load(tx: &mut Tx, ticket_id: &str) -> Result<Ticket, StoreError> {
    let row = super::query("SELECT body FROM tickets WHERE ticket_id = $1")
        .bind(ticket_id.to_string())
        .fetch_optional(tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {ticket_id}")))?;
    let body: String = row.get(0);
    serde_json::from_str(&body).map_err(|source| StoreError::CorruptTicket { ticket_id: ticket_id.to_string(), source })
}

async fn insert_ticket(tx: &mut Tx, t: &Ticket, now: i64) -> Result<(), StoreError> {
    super::query(
        "INSERT INTO tickets (ticket_id, revision, status, body, created_at, updated_at) VALUES ($1, 0, $2, '{}', $3, $3)",
    )
    .bind(t.ticket_id.clone())
    .bind(t.draft.status.as_str())
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

/// Writes a ticket's new revision and the outbox row that carries it.
pub(crate) async fn save(
    tx: &mut Tx,
    backend: super::Backend,
    t: &Ticket,
    cause: &str,
    now: i64,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(t).expect("a ticket always serializes");
    super::query(
        "UPDATE tickets SET revision = $1, status = $2, body = $3, updated_at = $4, stamp = stamp + 1 WHERE ticket_id = $5",
    )
        .bind(t.revision)
        .bind(t.draft.status.as_str())
        .bind(body.clone())
        .bind(now)
        .bind(t.ticket_id.clone())
        .execute(tx)
        .await?;
    super::query(
        "INSERT INTO ticket_revisions (ticket_id, revision, raw_record_id, cause, body, created_at) VALUES ($1, $2, NULL, $3, $4, $5)",
    )
    .bind(t.ticket_id.clone())
    .bind(t.revision)
    .bind(cause.to_string())
    .bind(body)
    .bind(now)
    .execute(tx)
    .await?;
    super::query(
        "INSERT INTO outbox (ticket_id, revision, idempotency_key, body, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(t.ticket_id.clone())
    .bind(t.revision)
    .bind(format!("{}:{}", t.ticket_id, t.revision))
    .bind(super::outbox::REVISION_BODY)
    .bind(now)
    .execute(tx)
    .await?;
    super::stats::refresh_stored(tx, backend, t, now).await
}

/// Points records (their future versions, and their fingerprints) at another ticket.
async fn move_records(
    tx: &mut Tx,
    backend: super::Backend,
    from: &str,
    to: &str,
    sources: &[Source],
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    for s in sources {
        super::query("UPDATE source_links SET ticket_id = $1 WHERE system = $2 AND record_id = $3 AND ticket_id = $4")
            .bind(to.to_string())
            .bind(s.system.clone())
            .bind(s.record_id.clone())
            .bind(from.to_string())
            .execute(tx)
            .await?;
        let print = super::query(
            "SELECT p.fingerprint, p.print FROM source_links l JOIN match_prints p ON p.seq = l.print_seq \
             WHERE l.system = $1 AND l.record_id = $2",
        )
        .bind(s.system.clone())
        .bind(s.record_id.clone())
        .fetch_optional(tx)
        .await?;
        if let Some(print) = print.and_then(|r| matching::stored_print(&r, 0)) {
            rows.push(PrintRow {
                ticket_id: to.to_string(),
                system: s.system.clone(),
                record_id: s.record_id.clone(),
                print,
            });
        }
    }
    if !rows.is_empty() {
        let first = matching::take_clock(tx, rows.len()).await?;
        matching::insert_prints(tx, backend, first, &rows).await?;
        for (r, seq) in rows.iter().zip(first..) {
            super::query("UPDATE source_links SET print_seq = $1 WHERE system = $2 AND record_id = $3")
                .bind(seq)
                .bind(r.system.clone())
                .bind(r.record_id.clone())
                .execute(tx)
                .await?;
        }
    }
    Ok(())
}
