//! The admin API's reads: tickets found through their facts (`ticket_facts`,
//! indexed by time and by region and time, so a search reads one page of
//! index, then that page's bodies), and the repair lists a page at a time
//! within a region.
//!
//! A region is a division code's significant digits (`220421`, a county);
//! the 12-digit codes in it are those between the prefix padded with zeros
//! and with nines, a range every collation orders alike (digits only),
//! where `LIKE '2204%'` would not use the index on SQLite.

use sqlx::Row;

use super::callbacks::callback_row;
use super::deadletters::{COLUMNS as DEAD_LETTER_COLUMNS, from_row as dead_letter_row};
use super::duplicates::{LINK_COLUMNS, link};
use super::{DeadLetter, DuplicateLink, Store, StoreError, StoredCallback};

/// The 12-digit codes of a region: `(lowest, highest)`.
pub fn region_bounds(prefix: &str) -> (String, String) {
    (format!("{prefix:0<12}"), format!("{prefix:9<12}"))
}

/// `AND EXISTS (a ticket in the region)`: the repair lists' scope, read
/// from the ticket's facts. A ticket merged into another has no facts of
/// its own (its matter counts once, at the survivor), so a scoped list
/// does not show its rows; the whole city's does.
fn in_region(column: &str, first: usize) -> String {
    format!(
        " AND EXISTS (SELECT 1 FROM ticket_facts f WHERE f.ticket_id = {column} AND f.region >= ${first} AND f.region <= ${})",
        first + 1
    )
}

/// What a ticket search asks for. Every filter is optional.
#[derive(Clone, Debug, Default)]
pub struct TicketQuery {
    /// A region's significant digits.
    pub region: Option<String>,
    pub status: Option<String>,
    pub channel: Option<String>,
    pub category: Option<String>,
    /// Received at or after (epoch ms).
    pub from_ms: Option<i64>,
    /// Received before (epoch ms).
    pub to_ms: Option<i64>,
    /// Only these tickets (a search by ticket or record id).
    pub ids: Option<Vec<String>>,
    /// Newest first: the page after this (received_at, ticket_id).
    pub after: Option<(i64, String)>,
    pub offset: i64,
    pub limit: i64,
}

/// One ticket found: its facts and its stored body.
#[derive(Clone, Debug)]
pub struct FoundTicket {
    pub ticket_id: String,
    pub received_at: i64,
    pub channel: String,
    pub region: String,
    pub category: String,
    pub department: String,
    pub status: String,
    pub due_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub evaluation: Option<String>,
    pub reopened: i64,
    pub overdue: bool,
    pub revision: i64,
    pub delivered_revision: i64,
    /// The ticket as JSON (as the platform receives it).
    pub body: String,
}

/// The last record a source sent, as stored.
#[derive(Clone, Debug)]
pub struct LastRecord {
    pub record_id: String,
    pub received_at: i64,
    pub stored_at: i64,
    pub outcome: String,
}

impl Store {
    /// Tickets matching `q`, newest received first (ties by id), a page at
    /// a time. Tickets merged into another are not found: their matter is
    /// the survivor's.
    pub async fn search_tickets(&self, q: &TicketQuery) -> Result<Vec<FoundTicket>, StoreError> {
        self.figures_current().await;
        let mut clauses: Vec<String> = Vec::new();
        // Placeholders are numbered in order of appearance, each used once.
        let mut n = 0usize;
        let mut next = || {
            n += 1;
            n
        };
        enum Bind {
            Text(String),
            Int(i64),
        }
        let mut binds: Vec<Bind> = Vec::new();
        if let Some(prefix) = &q.region {
            let (lo, hi) = region_bounds(prefix);
            // On SQLite, newest first through the time index, skipping
            // other regions: a page is found in a few hundred rows, where the
            // region index would sort the whole county first (measured on
            // 300 000 facts: 0.3 ms against 140 ms; 65 ms for an empty region).
            // PostgreSQL's planner has statistics to choose with.
            let column = if self.backend == super::Backend::Sqlite { "+region" } else { "region" };
            clauses.push(format!("{column} >= ${} AND {column} <= ${}", next(), next()));
            binds.push(Bind::Text(lo));
            binds.push(Bind::Text(hi));
        }
        for (column, value) in [("status", &q.status), ("channel", &q.channel), ("category", &q.category)] {
            if let Some(v) = value {
                clauses.push(format!("{column} = ${}", next()));
                binds.push(Bind::Text(v.clone()));
            }
        }
        if let Some(from) = q.from_ms {
            clauses.push(format!("received_at >= ${}", next()));
            binds.push(Bind::Int(from));
        }
        if let Some(to) = q.to_ms {
            clauses.push(format!("received_at < ${}", next()));
            binds.push(Bind::Int(to));
        }
        if let Some(ids) = &q.ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let list: Vec<String> = ids.iter().map(|_| format!("${}", next())).collect();
            clauses.push(format!("ticket_id IN ({})", list.join(", ")));
            binds.extend(ids.iter().cloned().map(Bind::Text));
        }
        if let Some((at, id)) = &q.after {
            let (a, b, c) = (next(), next(), next());
            clauses.push(format!("(received_at < ${a} OR (received_at = ${b} AND ticket_id < ${c}))"));
            binds.push(Bind::Int(*at));
            binds.push(Bind::Int(*at));
            binds.push(Bind::Text(id.clone()));
        }
        let (limit, offset) = (next(), next());
        binds.push(Bind::Int(q.limit));
        binds.push(Bind::Int(q.offset));
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = format!(
            "SELECT ticket_id, received_at, channel, region, category, department, status, due_at, finished_at,
                    evaluation, reopened, overdue
               FROM ticket_facts {filter}
              ORDER BY received_at DESC, ticket_id DESC LIMIT ${limit} OFFSET ${offset}"
        );
        let mut query = super::batch::query(sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut found: Vec<FoundTicket> = rows
            .iter()
            .map(|r| FoundTicket {
                ticket_id: r.get(0),
                received_at: r.get(1),
                channel: r.get(2),
                region: r.get(3),
                category: r.get(4),
                department: r.get(5),
                status: r.get(6),
                due_at: r.get(7),
                finished_at: r.get(8),
                evaluation: r.get(9),
                reopened: r.get(10),
                overdue: r.get::<i64, _>(11) != 0,
                revision: 0,
                delivered_revision: 0,
                body: String::new(),
            })
            .collect();
        if found.is_empty() {
            return Ok(found);
        }
        // The page's bodies, in one statement (a page is at most MAX_ROWS).
        let ids: Vec<String> = found.iter().map(|f| f.ticket_id.clone()).collect();
        let mut bodies = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(super::batch::MAX_ROWS) {
            let mut q = super::batch::query(format!(
                "SELECT t.ticket_id, t.revision, COALESCE(d.revision, 0), t.body
                   FROM tickets t LEFT JOIN deliveries d ON d.ticket_id = t.ticket_id WHERE t.ticket_id IN ({})",
                super::batch::list(self.backend, chunk.len())
            ));
            for id in chunk {
                q = q.bind(id.clone());
            }
            for r in q.fetch_all(&self.pool).await? {
                let id: String = r.get(0);
                bodies.insert(id, (r.get::<i64, _>(1), r.get::<i64, _>(2), r.get::<String, _>(3)));
            }
        }
        for f in &mut found {
            if let Some((rev, delivered, body)) = bodies.remove(&f.ticket_id) {
                (f.revision, f.delivered_revision, f.body) = (rev, delivered, body);
            }
        }
        Ok(found)
    }

    /// The tickets a record id names, in any of `systems`, and the ticket
    /// of that id itself: what a search box finds.
    pub async fn tickets_named(&self, text: &str, systems: &[String]) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = Vec::new();
        // By system: the key (system, record_id) is the index's.
        for system in systems {
            if let Some(id) = self.ticket_for_source(system, text).await? {
                ids.push(id);
            }
        }
        let exists: Option<String> = sqlx::query_scalar("SELECT ticket_id FROM tickets WHERE ticket_id = $1")
            .bind(text)
            .fetch_optional(&self.pool)
            .await?;
        ids.extend(exists);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The 12-digit region of a ticket: from its facts, or from its body
    /// for a ticket merged into another (which has no facts). `None` when
    /// there is no such ticket.
    pub async fn ticket_region(&self, ticket_id: &str) -> Result<Option<String>, StoreError> {
        // An access check: the facts as the ticket now stands, not as last counted.
        self.count_these(&[ticket_id.to_string()]).await?;
        let region: Option<String> = sqlx::query_scalar("SELECT region FROM ticket_facts WHERE ticket_id = $1")
            .bind(ticket_id)
            .fetch_optional(&self.pool)
            .await?;
        if region.is_some() {
            return Ok(region);
        }
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM tickets WHERE ticket_id = $1")
            .bind(ticket_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(body.map(|b| {
            serde_json::from_str::<serde_json::Value>(&b)
                .ok()
                .and_then(|v| v.pointer("/region/code").and_then(|c| c.as_str()).map(str::to_string))
                .unwrap_or_default()
        }))
    }

    /// Dead letters with an id above `after`, oldest first; `all` includes
    /// replayed ones; only tickets in `region` when given.
    pub async fn dead_letters_page(
        &self,
        all: bool,
        after: i64,
        limit: i64,
        region: Option<&str>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        if region.is_some() {
            self.figures_current().await;
        }
        let mut sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters d WHERE d.id > $1");
        if !all {
            sql.push_str(" AND d.state = 'open'");
        }
        if region.is_some() {
            sql.push_str(&in_region("d.ticket_id", 3));
        }
        sql.push_str(" ORDER BY d.id LIMIT $2");
        let mut q = super::batch::query(sql).bind(after).bind(limit);
        if let Some(prefix) = region {
            let (lo, hi) = region_bounds(prefix);
            q = q.bind(lo).bind(hi);
        }
        Ok(q.fetch_all(&self.pool).await?.into_iter().map(dead_letter_row).collect())
    }

    /// Kept callbacks with an id below `before` (0: from the newest),
    /// newest first; only those waiting for a person when `open`. With a
    /// region, only callbacks about a ticket in it: a callback for a ticket
    /// this hub does not know belongs to no region and is shown to the
    /// whole city's tokens only.
    pub async fn callbacks_page(
        &self,
        open: bool,
        before: i64,
        limit: i64,
        region: Option<&str>,
    ) -> Result<Vec<StoredCallback>, StoreError> {
        if region.is_some() {
            self.figures_current().await;
        }
        let mut sql =
            "SELECT c.id, c.event_id, c.ticket_id, c.status, c.at, c.received_at, c.outcome, c.reason, c.state, c.body
                         FROM callbacks c WHERE c.id < $1"
                .to_string();
        if open {
            sql.push_str(" AND c.state = 'open'");
        }
        if region.is_some() {
            sql.push_str(&in_region("c.ticket_id", 3));
        }
        sql.push_str(" ORDER BY c.id DESC LIMIT $2");
        let before = if before <= 0 { i64::MAX } else { before };
        let mut q = super::batch::query(sql).bind(before).bind(limit);
        if let Some(prefix) = region {
            let (lo, hi) = region_bounds(prefix);
            q = q.bind(lo).bind(hi);
        }
        super::tx::each(&q.fetch_all(&self.pool).await?, callback_row)
    }

    /// Duplicate decisions with an id below `before` (0: from the newest),
    /// newest first, in `state` when given; with a region, those whose
    /// later ticket (the one that opened or joined) is in it.
    pub async fn duplicate_links_page(
        &self,
        state: Option<&str>,
        before: i64,
        limit: i64,
        region: Option<&str>,
    ) -> Result<Vec<DuplicateLink>, StoreError> {
        if region.is_some() {
            self.figures_current().await;
        }
        let mut sql = format!("SELECT {LINK_COLUMNS} FROM duplicate_links d WHERE d.id < $1");
        let mut n = 3;
        if state.is_some() {
            sql.push_str(" AND d.state = $3");
            n = 4;
        }
        if region.is_some() {
            sql.push_str(&in_region("d.ticket_id", n));
        }
        sql.push_str(" ORDER BY d.id DESC LIMIT $2");
        let before = if before <= 0 { i64::MAX } else { before };
        let mut q = super::batch::query(sql).bind(before).bind(limit);
        if let Some(s) = state {
            q = q.bind(s.to_string());
        }
        if let Some(prefix) = region {
            let (lo, hi) = region_bounds(prefix);
            q = q.bind(lo).bind(hi);
        }
        super::tx::each(&q.fetch_all(&self.pool).await?, link)
    }

    /// The newest record stored from `system`. Read through the primary
    /// key backwards, so a busy source answers at once; a source silent
    /// for long costs a scan back to its last record.
    pub async fn last_record(&self, system: &str) -> Result<Option<LastRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT record_id, received_at, stored_at, outcome FROM raw_records
              WHERE id = (SELECT MAX(id) FROM raw_records WHERE system = $1)",
        )
        .bind(system)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| LastRecord {
            record_id: r.get(0),
            received_at: r.get(1),
            stored_at: r.get(2),
            outcome: r.get(3),
        }))
    }

    /// When the cursor `name` last moved (epoch ms), if it exists.
    pub async fn cursor_moved_at(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT updated_at FROM cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }
}
