//! The statistics' aggregates, moved by every change to a ticket: its old
//! contribution leaves the cell it was in, its new one joins the cell it is
//! in now (`stats/facts.rs` says what they are). A request then sums cells
//! (`stats_cells`, `stats_daily`), never tickets. Callbacks and merges move
//! them in their own transaction; intake, the hot path, only lists the
//! tickets it writes, and [`fold`] counts the listed ones soon after, many
//! at a time. A read brings them up to date first
//! ([`Store::figures_current`]).

use std::collections::{BTreeMap, HashMap};

use sqlx::Row as _;

use super::batch::{self, MAX_ROWS};
use super::{Backend, Store, StoreError, Tx};
use crate::stats::facts::{BUCKETS, CellKey, Counts, Facts};
use crate::ticket::Ticket;
use crate::ticket::handling::Handling;

const FACT_COLUMNS: [&str; 16] = [
    "ticket_id",
    "month",
    "day",
    "received_at",
    "channel",
    "region",
    "county",
    "township",
    "category",
    "department",
    "status",
    "due_at",
    "finished_at",
    "evaluation",
    "reopened",
    "overdue",
];

const KEY_COLUMNS: [&str; 6] = ["month", "channel", "county", "township", "category", "department"];
const SUM_COLUMNS: [&str; 9] =
    ["received", "finished", "timed", "on_time", "rated", "satisfied", "reopened", "overdue", "handling_ms"];
const BUCKET_COLUMNS: [&str; BUCKETS] = ["h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10", "h11"];

/// One changed ticket: as it now stands, the platform's side of it, and
/// when the change happened (epoch ms: a finish is dated by it).
pub(crate) struct Changed<'a> {
    pub ticket: &'a Ticket,
    pub handling: Option<&'a Handling>,
    pub at: i64,
}

fn fact_row(r: &super::Row) -> (String, Facts) {
    let evaluation: Option<String> = r.get(13);
    let facts = Facts {
        key: CellKey {
            month: r.get(1),
            channel: r.get(4),
            county: r.get(6),
            township: r.get(7),
            category: r.get(8),
            department: r.get(9),
        },
        day: r.get(2),
        received_at: r.get(3),
        region: r.get(5),
        status: r.get(10),
        due_at: r.get(11),
        finished_at: r.get(12),
        evaluation: evaluation.and_then(|e| e.parse().ok()),
        reopened: r.get(14),
        overdue: r.get::<i64, _>(15) != 0,
    };
    (r.get(0), facts)
}

/// Moves the changed tickets' contributions. A ticket merged into another
/// (`duplicate_of`) leaves the figures: its matter is counted once, there.
pub(crate) async fn refresh(tx: &mut Tx, backend: Backend, changed: &[Changed<'_>]) -> Result<(), StoreError> {
    if changed.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = changed.iter().map(|c| c.ticket.ticket_id.clone()).collect();
    let select = format!("SELECT {} FROM ticket_facts", FACT_COLUMNS.join(", "));
    let mut before: HashMap<String, Facts> = HashMap::with_capacity(ids.len());
    for r in batch::fetch_in(tx, backend, &select, "ticket_id", &ids).await? {
        let (id, f) = fact_row(&r);
        before.insert(id, f);
    }
    let mut cells: BTreeMap<CellKey, Counts> = BTreeMap::new();
    let mut daily: BTreeMap<(String, String, String, String, String), i64> = BTreeMap::new();
    let mut upserts: BTreeMap<String, Facts> = BTreeMap::new();
    let mut gone: Vec<String> = Vec::new();
    for c in changed {
        let id = &c.ticket.ticket_id;
        // A ticket changed twice in one batch: the first change is "before".
        let old = upserts.get(id).or_else(|| before.get(id)).cloned();
        let new = c.ticket.duplicate_of.is_none().then(|| Facts::of(c.ticket, c.handling, old.as_ref(), c.at));
        if old == new {
            continue;
        }
        for (facts, sign) in [(&old, -1), (&new, 1)] {
            let Some(f) = facts else { continue };
            let contribution = if sign < 0 { f.contribution().negated() } else { f.contribution() };
            cells.entry(f.key.clone()).or_default().add(&contribution);
            let day = (
                f.day.clone(),
                f.key.county.clone(),
                f.key.township.clone(),
                f.key.category.clone(),
                f.key.channel.clone(),
            );
            *daily.entry(day).or_default() += sign;
        }
        match new {
            Some(f) => {
                upserts.insert(id.clone(), f);
            }
            None => {
                upserts.remove(id);
                gone.push(id.clone());
            }
        }
    }
    let upserts: Vec<(String, Facts)> = upserts.into_iter().collect();
    for chunk in batch::pieces(backend, &upserts) {
        let updates: Vec<String> = FACT_COLUMNS[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
        let suffix = format!("ON CONFLICT (ticket_id) DO UPDATE SET {}", updates.join(", "));
        let mut q = batch::insert(backend, "ticket_facts", &FACT_COLUMNS, chunk.len(), &suffix);
        for (id, f) in chunk {
            q = q
                .bind(id.clone())
                .bind(f.key.month.clone())
                .bind(f.day.clone())
                .bind(f.received_at)
                .bind(f.key.channel.clone())
                .bind(f.region.clone())
                .bind(f.key.county.clone())
                .bind(f.key.township.clone())
                .bind(f.key.category.clone())
                .bind(f.key.department.clone())
                .bind(f.status.clone())
                .bind(f.due_at)
                .bind(f.finished_at)
                .bind(f.evaluation.map(|e| e.as_str()))
                .bind(f.reopened)
                .bind(i64::from(f.overdue));
        }
        q.execute(tx).await?;
    }
    if !gone.is_empty() {
        let sql = format!("DELETE FROM ticket_facts WHERE ticket_id IN ({})", batch::list(backend, gone.len()));
        let mut q = super::query(sql);
        for id in &gone {
            q = q.bind(id.clone());
        }
        q.execute(tx).await?;
    }
    // In key order, so that two hubs on one PostgreSQL take the row locks alike.
    let cells: Vec<(CellKey, Counts)> = cells.into_iter().filter(|(_, c)| !c.is_zero()).collect();
    // The rollups: each cell's difference again by one dimension at a
    // time, for the city and for the cell's county.
    let mut rollups: BTreeMap<(&str, &str, &'static str, &str), Counts> = BTreeMap::new();
    for (k, c) in &cells {
        for (scope, dim, value) in rollup_rows(k) {
            rollups.entry((scope, k.month.as_str(), dim, value)).or_default().add(c);
        }
    }
    let columns: Vec<&str> = KEY_COLUMNS.iter().chain(&SUM_COLUMNS).chain(&BUCKET_COLUMNS).copied().collect();
    for chunk in batch::pieces(backend, &cells) {
        let sums: Vec<String> = SUM_COLUMNS
            .iter()
            .chain(&BUCKET_COLUMNS)
            .map(|c| format!("{c} = stats_cells.{c} + excluded.{c}"))
            .collect();
        let suffix = format!("ON CONFLICT ({}) DO UPDATE SET {}", KEY_COLUMNS.join(", "), sums.join(", "));
        let mut q = batch::insert(backend, "stats_cells", &columns, chunk.len(), &suffix);
        for (k, c) in chunk {
            q = q
                .bind(k.month.clone())
                .bind(k.channel.clone())
                .bind(k.county.clone())
                .bind(k.township.clone())
                .bind(k.category.clone())
                .bind(k.department.clone());
            q = bind_counts(q, c);
        }
        q.execute(tx).await?;
    }
    let rollups: Vec<_> = rollups.into_iter().collect();
    let rollup_columns: Vec<&str> =
        ["scope", "month", "dim", "value"].iter().chain(&SUM_COLUMNS).chain(&BUCKET_COLUMNS).copied().collect();
    for chunk in batch::pieces(backend, &rollups) {
        let sums: Vec<String> = SUM_COLUMNS
            .iter()
            .chain(&BUCKET_COLUMNS)
            .map(|c| format!("{c} = stats_rollups.{c} + excluded.{c}"))
            .collect();
        let suffix = format!("ON CONFLICT (scope, dim, month, value) DO UPDATE SET {}", sums.join(", "));
        let mut q = batch::insert(backend, "stats_rollups", &rollup_columns, chunk.len(), &suffix);
        for ((scope, month, dim, value), c) in chunk {
            q = q.bind(*scope).bind(*month).bind(*dim).bind(*value);
            q = bind_counts(q, c);
        }
        q.execute(tx).await?;
    }
    let daily: Vec<_> = daily.into_iter().filter(|(_, n)| *n != 0).collect();
    for chunk in batch::pieces(backend, &daily) {
        let suffix = "ON CONFLICT (day, county, township, category, channel) DO UPDATE SET received = stats_daily.received + excluded.received";
        let mut q = batch::insert(
            backend,
            "stats_daily",
            &["day", "county", "township", "category", "channel", "received"],
            chunk.len(),
            suffix,
        );
        for ((day, county, township, category, channel), n) in chunk {
            q = q
                .bind(day.clone())
                .bind(county.clone())
                .bind(township.clone())
                .bind(category.clone())
                .bind(channel.clone())
                .bind(*n);
        }
        q.execute(tx).await?;
    }
    Ok(())
}

/// The rollup rows a cell adds to: (scope, dimension, value) for the city
/// (scope `''`) and the cell's county, one dimension at a time.
fn rollup_rows(k: &CellKey) -> impl Iterator<Item = (&str, &'static str, &str)> {
    let dims = [
        ("total", ""),
        ("channel", k.channel.as_str()),
        ("county", k.county.as_str()),
        ("township", k.township.as_str()),
        ("category", k.category.as_str()),
        ("department", k.department.as_str()),
    ];
    ["", k.county.as_str()].into_iter().flat_map(move |scope| dims.map(|(dim, value)| (scope, dim, value)))
}

fn bind_counts(mut q: super::Query, c: &Counts) -> super::Query {
    q = q
        .bind(c.received)
        .bind(c.finished)
        .bind(c.timed)
        .bind(c.on_time)
        .bind(c.rated)
        .bind(c.satisfied)
        .bind(c.reopened)
        .bind(c.overdue)
        .bind(c.handling_ms);
    for b in c.buckets {
        q = q.bind(b);
    }
    q
}

/// Tickets as they stand, each with the platform's side and its time, as
/// changes to count.
fn changed_of(tickets: &[(Ticket, Option<Handling>, i64)]) -> Vec<Changed<'_>> {
    tickets.iter().map(|(ticket, handling, at)| Changed { ticket, handling: handling.as_ref(), at: *at }).collect()
}

/// How many listed tickets one counting transaction takes at most.
pub const FOLD_MAX: usize = 1000;

/// Which of the tickets listed in `stats_due` to count.
pub(crate) enum Due<'a> {
    /// Those listed longest ago, at most this many; on PostgreSQL, none
    /// that another hub is counting or writing (they are skipped, not
    /// waited for).
    Oldest(usize),
    /// These, if listed.
    These(&'a [String]),
}

/// Lists tickets an intake transaction changed, for [`fold`] to count:
/// (ticket id, whether the change leaves it finished), in key order, so
/// that two hubs on one PostgreSQL take the row locks alike. A ticket
/// listed already keeps its earlier time; its finish keeps the time of the
/// change that finished it, unless this change unfinishes it.
pub(crate) async fn mark_due(
    tx: &mut Tx,
    backend: Backend,
    tickets: &[(&str, bool)],
    at: i64,
) -> Result<(), StoreError> {
    for chunk in batch::pieces(backend, tickets) {
        let mut q = batch::insert(
            backend,
            "stats_due",
            &["ticket_id", "due_at", "finished_at"],
            chunk.len(),
            "ON CONFLICT (ticket_id) DO UPDATE SET finished_at = CASE WHEN excluded.finished_at IS NULL THEN NULL
                  ELSE COALESCE(stats_due.finished_at, excluded.finished_at) END",
        );
        for (id, finished) in chunk {
            q = q.bind(id.to_string()).bind(at).bind(finished.then_some(at));
        }
        q.execute(tx).await?;
    }
    Ok(())
}

/// Counts in the figures the tickets intake changed and listed
/// (`stats_due`), as they now stand, and takes them off the list, in
/// `tx`: intake's transaction only lists a ticket it writes, so that the
/// figures' statements are made once for many batches, in a transaction of
/// their own. The tickets are read under the writer (on PostgreSQL, their
/// rows and the list's locked), so what is counted is what the list
/// covers. Returns how many tickets were counted.
pub(crate) async fn fold(tx: &mut Tx, backend: Backend, due: Due<'_>) -> Result<usize, StoreError> {
    const SELECT: &str = "SELECT d.ticket_id, t.body, t.handling, COALESCE(d.finished_at, d.due_at) FROM stats_due d JOIN tickets t ON t.ticket_id = d.ticket_id";
    let lock = if backend == Backend::Postgres { " FOR UPDATE OF d, t" } else { "" };
    let rows = match due {
        Due::Oldest(n) => {
            let skip = if backend == Backend::Postgres { " SKIP LOCKED" } else { "" };
            let sql = format!("{SELECT} ORDER BY d.due_at LIMIT {n}{lock}{skip}");
            super::query(sql).fetch_all(tx).await?
        }
        Due::These([]) => return Ok(0),
        Due::These(ids) => {
            let sql = format!("{SELECT} WHERE d.ticket_id IN ({}){lock}", batch::list(backend, ids.len()));
            let mut q = super::query(sql);
            for id in ids {
                q = q.bind(id.clone());
            }
            q.fetch_all(tx).await?
        }
    };
    if rows.is_empty() {
        return Ok(0);
    }
    let read = read_tickets(&rows);
    refresh(tx, backend, &changed_of(&read)).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for chunk in batch::pieces(backend, &ids) {
        let sql = format!("DELETE FROM stats_due WHERE ticket_id IN ({})", batch::list(backend, chunk.len()));
        let mut q = super::query(sql);
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(tx).await?;
    }
    Ok(rows.len())
}

/// Tickets read back as (ticket, platform side, time) from rows of
/// `ticket_id, body, handling, time`; one that cannot be read back is left
/// out of the figures, with a warning.
fn read_tickets(rows: &[super::Row]) -> Vec<(Ticket, Option<Handling>, i64)> {
    let mut read = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.get(0);
        let body: String = r.get(1);
        let Ok(ticket) = serde_json::from_str::<Ticket>(&body) else {
            tracing::warn!(ticket_id = %id, "a stored ticket cannot be read back; it is left out of the figures");
            continue;
        };
        let handling: Option<String> = r.get(2);
        read.push((ticket, handling.and_then(|t| serde_json::from_str(&t).ok()), r.get(3)));
    }
    read
}

/// Refreshes one ticket whose platform side is stored with it.
pub(crate) async fn refresh_stored(tx: &mut Tx, backend: Backend, ticket: &Ticket, at: i64) -> Result<(), StoreError> {
    let handling: Option<Option<String>> = super::query_scalar("SELECT handling FROM tickets WHERE ticket_id = $1")
        .bind(&ticket.ticket_id)
        .fetch_optional(tx)
        .await?;
    let handling: Option<Handling> = handling.flatten().and_then(|t| serde_json::from_str(&t).ok());
    refresh(tx, backend, &[Changed { ticket, handling: handling.as_ref(), at }]).await
}

/// A ticket crossed its deadline unresolved: counted overdue, once.
pub(crate) async fn mark_overdue(tx: &mut Tx, ticket_id: &str) -> Result<(), StoreError> {
    let row = super::query(
        "UPDATE ticket_facts SET overdue = 1 WHERE ticket_id = $1 AND overdue = 0
         RETURNING month, channel, county, township, category, department",
    )
    .bind(ticket_id)
    .fetch_optional(tx)
    .await?;
    if let Some(r) = row {
        let k = CellKey {
            month: r.get(0),
            channel: r.get(1),
            county: r.get(2),
            township: r.get(3),
            category: r.get(4),
            department: r.get(5),
        };
        super::query(
            "UPDATE stats_cells SET overdue = overdue + 1
              WHERE month = $1 AND channel = $2 AND county = $3 AND township = $4 AND category = $5 AND department = $6",
        )
        .bind(&k.month)
        .bind(&k.channel)
        .bind(&k.county)
        .bind(&k.township)
        .bind(&k.category)
        .bind(&k.department)
        .execute(tx)
        .await?;
        // In the order `refresh` writes them (its map's key order), so
        // that this and a count on another hub never wait on each other.
        let mut rows: Vec<_> = rollup_rows(&k).collect();
        rows.sort_unstable();
        for (scope, dim, value) in rows {
            super::query(
                "UPDATE stats_rollups SET overdue = overdue + 1 WHERE scope = $1 AND dim = $2 AND month = $3 AND value = $4",
            )
            .bind(scope)
            .bind(dim)
            .bind(&k.month)
            .bind(value)
            .execute(tx)
            .await?;
        }
    }
    Ok(())
}

/// Which way the figures are broken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Channel,
    County,
    Township,
    Category,
    Department,
    Month,
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Dimension::Channel,
        Dimension::County,
        Dimension::Township,
        Dimension::Category,
        Dimension::Department,
        Dimension::Month,
    ];

    pub fn column(self) -> &'static str {
        match self {
            Dimension::Channel => "channel",
            Dimension::County => "county",
            Dimension::Township => "township",
            Dimension::Category => "category",
            Dimension::Department => "department",
            Dimension::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.column() == s)
    }
}

/// Which cells a figure sums: a range of cohort months and, for a scoped
/// caller, a county (6 digits) or township (9 digits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CellFilter {
    /// `YYYY-MM`, inclusive.
    pub from_month: String,
    pub to_month: String,
    pub region: Option<String>,
}

/// The column a region's significant digits are kept in, beside a
/// ticket's facts, cells and daily counts, and the value to compare: a
/// county's 6 digits, or a township's 9.
pub(super) fn region_column(prefix: &str) -> (&'static str, String) {
    if prefix.len() <= 6 {
        ("county", prefix.to_string())
    } else {
        ("township", prefix.get(..9).unwrap_or(prefix).to_string())
    }
}

impl CellFilter {
    /// The rollups' scope that holds these figures: the city's (`''`) or a
    /// county's; none for a township, read from its cells.
    fn rollup_scope(&self) -> Option<String> {
        match &self.region {
            None => Some(String::new()),
            Some(p) if p.len() <= 6 => Some(p.clone()),
            Some(_) => None,
        }
    }

    fn clause(&self) -> (String, Vec<String>) {
        let mut sql = String::from("month >= $1 AND month <= $2");
        let mut args = vec![self.from_month.clone(), self.to_month.clone()];
        if let Some(p) = &self.region {
            let (column, code) = region_column(p);
            sql.push_str(&format!(" AND {column} = $3"));
            args.push(code);
        }
        (sql, args)
    }
}

fn counts_of(r: &super::Row, first: usize) -> Counts {
    let get = |i: usize| -> i64 { r.try_get::<i64, _>(first + i).unwrap_or_default() };
    let mut c = Counts {
        received: get(0),
        finished: get(1),
        timed: get(2),
        on_time: get(3),
        rated: get(4),
        satisfied: get(5),
        reopened: get(6),
        overdue: get(7),
        handling_ms: get(8),
        buckets: [0; BUCKETS],
    };
    for (i, b) in c.buckets.iter_mut().enumerate() {
        *b = get(SUM_COLUMNS.len() + i);
    }
    c
}

fn sums_sql() -> String {
    // CAST: PostgreSQL's SUM of BIGINT is NUMERIC, which the Any driver does not read.
    SUM_COLUMNS
        .iter()
        .chain(&BUCKET_COLUMNS)
        .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Counts `tickets` (as they stand, with the platform's side of each)
    /// in the figures, as if each had just changed at its `at`: how the
    /// figures are rebuilt, and how a benchmark fills a year of a city
    /// without running each ticket through intake.
    pub async fn count_in_statistics(&self, tickets: &[(Ticket, Option<Handling>, i64)]) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        refresh(&mut w.tx, self.backend, &changed_of(tickets)).await?;
        w.commit().await
    }

    /// Counts the tickets listed longest ago in the figures ([`fold`]), in one
    /// transaction on the writer's own thread. Returns how many.
    pub async fn count_listed(&self) -> Result<usize, StoreError> {
        self.count_apart(None).await
    }

    /// [`fold`] in one transaction on the writer's own thread: the oldest
    /// listed tickets, or `these`.
    async fn count_apart(&self, these: Option<Vec<String>>) -> Result<usize, StoreError> {
        let store = self.clone();
        let counted = self.on_writer_lane(async move {
            let mut w = store.begin_write_as(super::Writer::Figures).await?;
            let n = match &these {
                None => fold(&mut w.tx, store.backend, Due::Oldest(FOLD_MAX)).await?,
                Some(ids) => {
                    let mut n = 0;
                    for chunk in ids.chunks(MAX_ROWS) {
                        n += fold(&mut w.tx, store.backend, Due::These(chunk)).await?;
                    }
                    n
                }
            };
            w.commit().await?;
            Ok::<_, StoreError>(n)
        });
        counted.await.map_err(|e| StoreError::Invalid(format!("counting changed tickets failed: {e}")))?
    }

    /// Brings the figures up to the changes committed so far: what reads
    /// them, or the facts they are made of, calls this first. Nothing to
    /// count costs one indexed read, and no writer. Bounded: under a flood
    /// the figures are as current as a few rounds make them, and the reader
    /// is not kept waiting for ever; should counting fail, the reader gets
    /// the figures as last counted (with a warning), not an error.
    pub async fn figures_current(&self) {
        for _ in 0..8 {
            let counted = async {
                let listed: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM stats_due LIMIT 1").fetch_optional(&self.pool).await?;
                Ok::<_, StoreError>(match listed {
                    Some(_) => self.count_listed().await?,
                    None => 0,
                })
            };
            match counted.await {
                Ok(n) if n >= FOLD_MAX => continue,
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "the figures could not be brought up to date; read as last counted");
                    return;
                }
            }
        }
    }

    /// Counts `ticket_ids` in the figures now if they are listed: what
    /// needs one ticket's facts exact (an access check by its region, the
    /// live feed's revisions) does not wait for the rest.
    pub(crate) async fn count_these(&self, ticket_ids: &[String]) -> Result<(), StoreError> {
        if ticket_ids.is_empty() {
            return Ok(());
        }
        let mut listed: Vec<String> = Vec::new();
        for chunk in ticket_ids.chunks(MAX_ROWS) {
            let sql = format!(
                "SELECT ticket_id FROM stats_due WHERE ticket_id IN ({})",
                batch::list(self.backend, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.clone());
            }
            listed.extend(q.fetch_all(&self.pool).await?);
        }
        if !listed.is_empty() {
            self.count_apart(Some(listed)).await?;
        }
        Ok(())
    }

    /// Recounts every ticket in the figures, a page at a time (after an
    /// upgrade from a version that kept none; counting again changes
    /// nothing). A ticket finished before is dated by its last update.
    /// Returns how many tickets were read; `on_page` hears each page's size.
    pub async fn rebuild_statistics(&self, mut on_page: impl FnMut(usize)) -> Result<usize, StoreError> {
        let mut after = String::new();
        let mut total = 0;
        loop {
            // Read in the writing transaction: on a running hub, a ticket
            // changed meanwhile is counted as it is, not as it was.
            let mut w = self.begin_write().await?;
            let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
            let sql = format!(
                "SELECT ticket_id, body, handling, updated_at FROM tickets WHERE ticket_id > $1 AND revision > 0 ORDER BY ticket_id LIMIT 500{lock}"
            );
            let rows = super::query(sql).bind(&after).fetch_all(&mut w.tx).await?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            let read = read_tickets(&rows);
            // The page in one refresh: one read of its facts, one upsert per table.
            refresh(&mut w.tx, self.backend, &changed_of(&read)).await?;
            // Deadlines crossed before the figures were kept count too.
            let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let crossed = batch::fetch_in(
                &mut w.tx,
                self.backend,
                "SELECT ticket_id FROM (SELECT ticket_id FROM deadlines WHERE overdue_at IS NOT NULL) AS crossed",
                "ticket_id",
                &ids,
            )
            .await?;
            for r in crossed {
                mark_overdue(&mut w.tx, &r.get::<String, _>(0)).await?;
            }
            w.commit().await?;
            total += rows.len();
            on_page(rows.len());
        }
        Ok(total)
    }

    /// The sums of the cells `filter` selects, broken down `by` a
    /// dimension, in the dimension's order. The city's and a county's
    /// figures come from the rollups (a few hundred rows for a year), a
    /// township's from its own cells.
    pub async fn cell_sums(&self, filter: &CellFilter, by: Dimension) -> Result<Vec<(String, Counts)>, StoreError> {
        self.figures_current().await;
        let (sql, args) = match filter.rollup_scope() {
            Some(scope) => {
                let (dim, group) = match by {
                    Dimension::Month => ("total", "month"),
                    other => (other.column(), "value"),
                };
                (
                    format!(
                        "SELECT {group}, {} FROM stats_rollups WHERE scope = $3 AND dim = $4 AND month >= $1 AND month <= $2
                          GROUP BY {group} HAVING SUM(received) > 0 ORDER BY {group}",
                        sums_sql()
                    ),
                    vec![filter.from_month.clone(), filter.to_month.clone(), scope, dim.to_string()],
                )
            }
            None => {
                let (clause, args) = filter.clause();
                let col = by.column();
                // A cell every ticket left (all its sums zero) is no group.
                (
                    format!(
                        "SELECT {col}, {} FROM stats_cells WHERE {clause} GROUP BY {col} HAVING SUM(received) > 0 ORDER BY {col}",
                        sums_sql()
                    ),
                    args,
                )
            }
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = q.bind(a);
        }
        super::tx::each(&q.fetch_all(&self.pool).await?, |r| (r.get::<String, _>(0), counts_of(r, 1)))
    }

    /// The sums of all the cells `filter` selects.
    pub async fn cell_total(&self, filter: &CellFilter) -> Result<Counts, StoreError> {
        self.figures_current().await;
        let (sql, args) = match filter.rollup_scope() {
            Some(scope) => (
                format!(
                    "SELECT {} FROM stats_rollups WHERE scope = $3 AND dim = 'total' AND month >= $1 AND month <= $2",
                    sums_sql()
                ),
                vec![filter.from_month.clone(), filter.to_month.clone(), scope],
            ),
            None => {
                let (clause, args) = filter.clause();
                (format!("SELECT {} FROM stats_cells WHERE {clause}", sums_sql()), args)
            }
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = q.bind(a);
        }
        Ok(counts_of(&super::Row::from_any(&q.fetch_one(&self.pool).await?)?, 0))
    }

    /// Matters received per day from `from_day` to `to_day` (`YYYY-MM-DD`,
    /// inclusive), per (day, county, township, category, channel), for
    /// today's counts and the early warning's series; only a region's when
    /// `region` is given.
    pub async fn daily_received(
        &self,
        from_day: &str,
        to_day: &str,
        region: Option<&str>,
    ) -> Result<Vec<DailyCount>, StoreError> {
        self.figures_current().await;
        let mut sql = String::from(
            "SELECT day, county, township, category, channel, received FROM stats_daily WHERE day >= $1 AND day <= $2 AND received <> 0",
        );
        let region = region.map(region_column);
        if let Some((column, _)) = &region {
            sql.push_str(&format!(" AND {column} = $3"));
        }
        sql.push_str(" ORDER BY day");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from_day.to_string()).bind(to_day.to_string());
        if let Some((_, code)) = region {
            q = q.bind(code);
        }
        Ok(q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| DailyCount {
                day: r.get(0),
                county: r.get(1),
                township: r.get(2),
                category: r.get(3),
                channel: r.get(4),
                received: r.get(5),
            })
            .collect())
    }
}

/// Matters received on one day in one place, category and channel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DailyCount {
    pub day: String,
    pub county: String,
    pub township: String,
    pub category: String,
    pub channel: String,
    pub received: i64,
}
