//! The durable store: one set of queries on SQLite (WAL, the embedded
//! default) and PostgreSQL (several hubs side by side).
//!
//! Statements are written once with `$n` placeholders, so both backends
//! run the same SQL; the few places where the dialects differ (locking)
//! ask [`Backend`]. Write transactions run their statements through [`tx`]:
//! on SQLite in place on the store's one writer connection, on PostgreSQL
//! through sqlx. Reads outside a write transaction go through sqlx's `Any`
//! pool on both. Times are epoch milliseconds.

mod admin;
mod alerts;
mod batch;
mod callbacks;
mod courts;
mod cursors;
mod deadletters;
mod deadlines;
mod duplicates;
mod failure;
mod feedback;
mod handoff;
mod intake;
mod lane;
mod live;
mod matching;
mod open311;
mod outbox;
mod quarantine;
mod screen;
mod stats;
pub mod testing;
pub mod text;
mod tickets;
mod tx;
mod writer;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use tokio::sync::Mutex;

pub use admin::{FoundTicket, LastRecord, TicketQuery, region_bounds};
pub use alerts::StoredAlert;
pub use callbacks::{CallbackOutcome, StoredCallback, TicketEvent};
pub use courts::{PendingDocument, cut_off};
pub use deadletters::{DeadLetter, Replayed};
pub use deadlines::{DeadlinePass, DueTicket};
pub use duplicates::{DuplicateLink, Unmerged};
pub use failure::Failure;
pub use feedback::{FeedbackEntry, FeedbackMessage, FeedbackResult};
pub use handoff::{Handed, Handoff};
pub use intake::{Applied, IntakeItem, StoredOutcome};
pub use live::LiveRevision;
pub use matching::{BatchPrints, MatchIndex, Matching};
pub use open311::{MAX_REQUESTS, PublicFilter, PublicRow};
pub use outbox::{DeliveryResult, LeaseRequest, LeasedChange};
pub use quarantine::{QuarantineEntry, QuarantinedRecord};
pub use screen::{DueInRegion, PendingInRegion, Placed};
pub use stats::{CellFilter, DailyCount, Dimension, FOLD_MAX};
pub use tickets::{SourceCounts, StoredTicket, TicketSummary};
pub use tx::{Commit, Query, Row, Tx, query, query_scalar};
pub use writer::{Writer, WriterUse};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// From the SQLite writer ([`tx`]).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row or a statement of a write transaction that does not fit the
    /// code reading or binding it (a bug, or a schema changed under the
    /// hub): named by column and type, never by the value it holds.
    #[error("a stored row does not fit: {0}")]
    Decode(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}`: use sqlite://FILE or postgres://…")]
    UnsupportedUrl(String),
    /// Shown by position only: serde's own message may quote the value it
    /// choked on, a citizen's name or phone number.
    #[error("stored ticket {ticket_id} cannot be read back: {}", json_position(source))]
    CorruptTicket { ticket_id: String, source: serde_json::Error },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// Another hub wrote what this transaction read and meant to write
    /// over; done again on what is there now.
    #[error("conflict with another hub: {0}")]
    Conflict(String),
}

/// What kind of JSON error, and where, without the text it quotes.
fn json_position(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "cannot be read",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a field does not fit the ticket's shape",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{kind} (line {}, column {})", e.line(), e.column())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time: the connection write
    /// transactions run on ([`tx`]), behind a lock. Queueing our own
    /// writers here is fair and immediate, where SQLite's busy handler
    /// would sleep and poll. The busy timeout still covers other processes
    /// (the CLI).
    writer: Option<Arc<Mutex<tx::SqliteWriter>>>,
    /// The open tickets' fingerprints for duplicate detection, shared by
    /// every clone of this store, synced inside the deciding transaction.
    matching: Arc<matching::Shared>,
    /// Records that failed with an unclear error, counted towards their
    /// quarantine ([`failure::UNCLEAR_TRIES`]).
    strikes: Arc<std::sync::Mutex<failure::Strikes>>,
    /// Which agencies hear of status changes, and how (their mappings'
    /// `[feedback]`); none until the hub sets it.
    feedback: Arc<std::sync::RwLock<Arc<crate::feedback::Plan>>>,
    /// Where intake hands the changes it leases to this process's dispatcher.
    handoff: Arc<std::sync::OnceLock<Arc<Handoff>>>,
    /// Where intake's and the dispatcher's transactions run.
    lane: Arc<lane::WriterLane>,
    /// Wakes this process's feedback senders when a change is queued for
    /// the agencies (other hubs on the same database find it by polling).
    feedback_queued: Arc<tokio::sync::Notify>,
    /// How long each kind of writer waits for the writer and holds it.
    writer_use: Arc<WriterUse>,
}

/// A write transaction; on SQLite it holds the store's writer and began
/// with `BEGIN IMMEDIATE`, so a read-then-write never fails as "locked".
pub struct WriteTx {
    pub tx: Tx,
    /// Who writes, since when, and where that is counted.
    held: (Writer, std::time::Instant, Arc<WriterUse>),
}

impl WriteTx {
    /// Commits, then lets the next writer in.
    pub async fn commit(self) -> Result<(), StoreError> {
        let (who, since, used) = self.held;
        self.tx.commit().await?;
        used.committed(who, since.elapsed());
        Ok(())
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

static DRIVERS: Once = Once::new();

/// Every SQLite connection's settings, the pool's and the writer's (see
/// `Store::open` for why each; the writer also keeps its statement journals
/// in memory, `SqliteWriter::connect`).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=8192; PRAGMA journal_size_limit=67108864;";

impl Store {
    /// Opens (and on SQLite creates) the database and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (backend, url) = normalize_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; FULL makes
                            // a commit survive power loss, not just a crash.
                            //
                            // The WAL is copied back into the database by
                            // `Store::checkpoint`, beside the writer; SQLite's
                            // own checkpoint, run inside the commit that
                            // crosses its mark (with the writer held), stays
                            // as the fallback at a higher mark (8,192 pages:
                            // 32 MiB of the default 4 KiB pages). Once reset,
                            // the WAL file is cut back to 64 MiB at most.
                            sqlx::raw_sql(SQLITE_PRAGMAS).execute(conn).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?
            }
        };
        let writer = match backend {
            Backend::Sqlite => Some(Arc::new(Mutex::new(tx::SqliteWriter::open(&sqlite_file(&pool).await?)?))),
            Backend::Postgres => None,
        };
        let store = Store {
            pool,
            backend,
            writer,
            matching: Arc::new(matching::Shared::new()),
            strikes: Arc::default(),
            feedback: Arc::default(),
            handoff: Arc::default(),
            lane: Arc::new(lane::WriterLane::start(backend)),
            feedback_queued: Arc::default(),
            writer_use: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    /// Sets which agencies hear of status changes (the configured sources'
    /// `[feedback]` sections); every clone of this store sees it.
    pub fn set_feedback_plan(&self, plan: crate::feedback::Plan) {
        *self.feedback.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
    }

    /// Notified when this process queued messages for the agencies.
    pub fn feedback_queued(&self) -> Arc<tokio::sync::Notify> {
        self.feedback_queued.clone()
    }

    /// Intake leases the changes it writes to this dispatcher, as far as it
    /// wants them ([`Handoff`]). Set once; later calls change nothing.
    pub fn set_handoff(&self, handoff: Arc<Handoff>) {
        let _ = self.handoff.set(handoff);
    }

    /// Runs a write transaction's future where it holds the writer least
    /// ([`lane::WriterLane`]).
    pub(crate) fn on_writer_lane<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.lane.spawn(f)
    }

    pub(crate) fn handoff(&self) -> Option<&Arc<Handoff>> {
        self.handoff.get()
    }

    pub(crate) fn feedback_plan(&self) -> Arc<crate::feedback::Plan> {
        self.feedback.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the candidate rules of duplicate detection (windows per kind).
    pub async fn set_match_rules(&self, rules: crate::dedup::CandidateRules) {
        self.matching.lock().await.rules = rules;
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        self.begin_write_as(Writer::Other).await
    }

    /// [`Store::begin_write`], counted as `who`'s in [`Store::writer_use`].
    pub async fn begin_write_as(&self, who: Writer) -> Result<WriteTx, StoreError> {
        let asked = std::time::Instant::now();
        let tx = match &self.writer {
            Some(writer) => Tx::begin_sqlite(writer.clone().lock_owned().await, who.commit()).await?,
            None => Tx::begin_postgres(&self.pool, who.commit()).await?,
        };
        let began = std::time::Instant::now();
        self.writer_use.waited(who, began - asked);
        Ok(WriteTx { tx, held: (who, began, self.writer_use.clone()) })
    }

    /// Copies what the WAL holds back into the database file without
    /// waiting for (or stopping) the writer or readers (SQLite's passive
    /// checkpoint), so that commits do not do it while holding the writer.
    /// Nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_all(&self.pool).await?;
        }
        Ok(())
    }

    /// Write transactions and the writer's time, by who wrote: `/metrics`.
    pub fn writer_use(&self) -> &WriterUse {
        &self.writer_use
    }

    /// Closes the pool and the writer: a write begun after this fails, and
    /// on SQLite the last connection to close folds the WAL back into the
    /// database file.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.lock().await.close();
        }
        self.pool.close().await;
    }
}

/// The file of the SQLite database the pool opened, for the writer to open
/// the same one whatever the URL's spelling.
async fn sqlite_file(pool: &AnyPool) -> Result<String, StoreError> {
    use sqlx::Row as _;
    let rows = sqlx::query("PRAGMA database_list").fetch_all(pool).await?;
    let main = rows.iter().find(|r| r.try_get::<String, _>(1).is_ok_and(|name| name == "main"));
    match main.map(|r| r.try_get::<String, _>(2)) {
        Some(Ok(file)) if !file.is_empty() => Ok(file),
        Some(Ok(_)) => Err(StoreError::Invalid(
            "an in-memory SQLite database cannot be used: the store needs a file (sqlite://FILE)".into(),
        )),
        _ => Err(StoreError::Invalid("the SQLite database's file name cannot be read (is it UTF-8?)".into())),
    }
}

/// Accepts `sqlite://FILE`, `sqlite:FILE`, a bare file path, or `postgres://…`.
fn normalize_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if !url.contains("://") {
        url
    } else {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    };
    let mut out = format!("sqlite://{path}");
    if !path.contains("mode=") {
        out.push(if path.contains('?') { '&' } else { '?' });
        out.push_str("mode=rwc");
    }
    Ok((Backend::Sqlite, out))
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(normalize_url("hub.db").unwrap(), (Backend::Sqlite, "sqlite://hub.db?mode=rwc".into()));
        assert_eq!(normalize_url("sqlite:///var/lib/hub.db").unwrap().1, "sqlite:///var/lib/hub.db?mode=rwc");
        assert_eq!(normalize_url("postgres://localhost/test").unwrap().0, Backend::Postgres);
        assert!(normalize_url("mysql://x").is_err());
    }

    #[test]
    fn a_ticket_that_cannot_be_read_back_is_named_without_quoting_its_content() {
        let source =
            serde_json::from_str::<crate::ticket::Ticket>(r#"{"ticketId": "t", "revision": "王女士 13904371234"}"#)
                .unwrap_err();
        assert!(source.to_string().contains("王女士"), "serde quotes it: {source}");
        let shown = StoreError::CorruptTicket { ticket_id: "t1".into(), source }.to_string();
        assert!(shown.starts_with("stored ticket t1 cannot be read back: a field does not fit"), "{shown}");
        assert!(!shown.contains("王女士") && !shown.contains("1390437"), "{shown}");
    }
}
