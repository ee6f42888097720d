//! A write transaction and its statements, one interface for both backends.
//!
//! On PostgreSQL a statement goes through sqlx as any other. On SQLite the
//! store's one writer is a connection of its own that the transaction
//! holds and runs each statement on in place, on the thread that runs the
//! transaction: no channel to SQLite's worker thread for each statement and
//! each row, no copy of every row into a driver-neutral one. That hop was
//! most of what a write cost beside SQLite's own work (a multi-row read ~12
//! µs a row against under 2 in SQLite itself), and the store's writer is
//! what bounds the hub's rate.
//!
//! The hot writers run on a thread of their own ([`super::lane`]), so a
//! statement that waits on the disk holds no shared worker; the others
//! (callbacks, replays, deadlines) are short and few, and their begin and
//! commit, which may wait on another process's lock or the disk, run on
//! the blocking pool.
//!
//! Statements are written once with `$n` (or, from [`super::batch`], `?`)
//! placeholders; values are bound as [`Value`]s and rows read back as
//! [`Row`]s with the same `get`/`try_get` as sqlx's.

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Any, AssertSqlSafe, Column, Row as _, Transaction, ValueRef as _};
use tokio::sync::OwnedMutexGuard;

use super::StoreError;

/// The store's SQLite writer: a connection only write transactions use,
/// one at a time (whoever holds the lock around it).
pub(crate) struct SqliteWriter {
    /// `None` once the store is closed, or after a transaction could not
    /// be rolled back (opened afresh at the next begin).
    conn: Option<rusqlite::Connection>,
    path: String,
    closed: bool,
    /// The connection's `synchronous` now (it opens with `FULL`).
    sync: Commit,
    /// Whether the database is in WAL mode, where a commit that does not
    /// wait for the disk still never overtakes one that does. In any other
    /// journal mode every commit waits.
    wal: bool,
}

/// What a write transaction's commit must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Power loss: the commit waits for the disk. Whatever a source is
    /// told is stored, or the platform that its callback is, and whatever
    /// is queued for anyone, is committed so.
    Durable,
    /// A crash of the hub (the WAL is in the operating system's hands at
    /// once), not power loss, after which the commit may be undone (on
    /// PostgreSQL: not a crash of the server or a failover either). Only
    /// for what is done again when undone, and whose undoing is seen by
    /// nobody outside: the dispatcher's bookkeeping (an undone result or
    /// lease sends the change again, under the same idempotency key, which
    /// the platform takes once) and the figures (an undone count leaves
    /// its tickets listed, and they are counted again). Its commit waits
    /// for no disk; the next durable commit writes it to disk before
    /// itself, so nothing after it can survive without it.
    Redone,
}

/// Prepared statements kept on the writer: its multi-row statements come
/// in power-of-two row counts ([`super::batch::pieces`]), a score of
/// statements in up to nine sizes each, and preparing one again costs
/// more than running it.
const STATEMENTS_KEPT: usize = 256;

impl SqliteWriter {
    /// Opens the writer on the database file the pool's connections use,
    /// with their settings (`synchronous` among them is a connection's own:
    /// a commit durable on power loss).
    pub(crate) fn open(path: &str) -> Result<SqliteWriter, StoreError> {
        let mut writer =
            SqliteWriter { conn: None, path: path.to_owned(), closed: false, sync: Commit::Durable, wal: false };
        writer.connect()?;
        Ok(writer)
    }

    fn connect(&mut self) -> Result<&rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(super::SQLITE_PRAGMAS)?;
        // A multi-row statement inside a transaction keeps the pages it
        // changes in a statement journal, to undo that statement alone if it
        // fails; past 64 KiB SQLite spills the journal to a temporary file,
        // and those writes were 5% of the hub's CPU under load. The journal
        // plays no part in recovery (the WAL does) and is emptied as each
        // statement ends; in memory it holds a copy of the pages one
        // statement rewrites: a batch's rows, at most about the payloads the
        // batch holds in memory already. A sort or temporary table on this
        // connection is held in memory too: every write transaction's
        // ordered read is by an index or bounded by a LIMIT, and migrations
        // run on the pool. Readers keep the default: their large sorts spill.
        conn.execute_batch("PRAGMA temp_store=MEMORY")?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        self.wal = mode.eq_ignore_ascii_case("wal");
        if !self.wal {
            tracing::warn!(journal_mode = %mode, "the SQLite store is not in WAL mode: every commit waits for the disk");
        }
        self.sync = Commit::Durable;
        Ok(self.conn.insert(conn))
    }

    /// Closes the connection; a transaction begun after fails.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.conn = None;
    }

    /// `BEGIN IMMEDIATE`: the writer's lock is taken now, so a read that
    /// leads to a write never fails as "locked" halfway. A connection left
    /// inside a transaction (its rollback failed) is opened afresh first:
    /// one failed rollback must not lock every writer out until a restart.
    fn begin(&mut self, commit: Commit) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Db(sqlx::Error::PoolClosed));
        }
        match self.conn.take() {
            Some(conn) if conn.is_autocommit() => self.conn = Some(conn),
            left => {
                drop(left);
                self.connect()?;
            }
        }
        let conn = self.conn.as_ref().expect("connected above");
        let commit = if self.wal { commit } else { Commit::Durable };
        if self.sync != commit {
            // Set outside a transaction, where SQLite takes it.
            conn.execute_batch(match commit {
                Commit::Durable => "PRAGMA synchronous=FULL",
                Commit::Redone => "PRAGMA synchronous=NORMAL",
            })?;
            self.sync = commit;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// The connection inside the transaction this writer's holder began.
    /// SQLite rolls a transaction back by itself on some errors (a full
    /// disk, an I/O error): a statement after that would run, and commit,
    /// on its own, so it fails instead.
    fn in_transaction(&self) -> Result<&rusqlite::Connection, StoreError> {
        match &self.conn {
            Some(conn) if !conn.is_autocommit() => Ok(conn),
            _ => Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT_ROLLBACK),
                Some("the write transaction was rolled back under it".into()),
            ))),
        }
    }

    fn end(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.in_transaction()?.execute_batch(sql)?)
    }
}

/// An open transaction.
pub enum Tx {
    /// On a connection of the pool, through sqlx: PostgreSQL's writes
    /// (several hubs on one database), and reads beside the writer on
    /// either backend.
    Pool(Transaction<'static, Any>),
    /// SQLite: the writer, held, inside `BEGIN IMMEDIATE`.
    Sqlite(Held),
}

impl Tx {
    pub(crate) async fn begin_postgres(pool: &sqlx::AnyPool, commit: Commit) -> Result<Tx, StoreError> {
        let mut tx = pool.begin().await?;
        if commit == Commit::Redone {
            // PostgreSQL's own name for the same promise.
            sqlx::query("SET LOCAL synchronous_commit TO OFF").execute(&mut *tx).await?;
        }
        Ok(Tx::Pool(tx))
    }

    pub(crate) async fn begin_sqlite(writer: OwnedMutexGuard<SqliteWriter>, commit: Commit) -> Result<Tx, StoreError> {
        let mut held = Held(writer);
        // `BEGIN IMMEDIATE` may wait out the busy timeout behind another
        // process (the CLI): off the shared workers.
        let held = blocking(move || held.0.begin(commit).map(|()| held)).await?;
        Ok(Tx::Sqlite(held))
    }

    /// Ends a transaction that only read.
    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Pool(tx) => Ok(tx.rollback().await?),
            Tx::Sqlite(mut held) => held.0.end("ROLLBACK"),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Pool(tx) => Ok(tx.commit().await?),
            // The commit waits for the disk (and, past the WAL's mark, for
            // SQLite's own checkpoint): off the shared workers. On failure,
            // letting go of the writer rolls back what is left.
            Tx::Sqlite(mut held) => blocking(move || held.0.end("COMMIT")).await,
        }
    }
}

/// Runs `f` in place on the writer lane's thread, where waiting is what
/// that thread is for; elsewhere on a thread for blocking work, so that a
/// shared worker never waits for the disk or another process's lock.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    if super::lane::on_lane() {
        return f();
    }
    match tokio::runtime::Handle::try_current() {
        // Its thread died (a panic): the database's trouble, as when
        // sqlx's own SQLite worker dies, not a row that does not fit.
        Ok(_) => tokio::task::spawn_blocking(f).await.unwrap_or(Err(StoreError::Db(sqlx::Error::WorkerCrashed))),
        Err(_) => f(),
    }
}

/// The SQLite writer while a transaction holds it.
pub struct Held(OwnedMutexGuard<SqliteWriter>);

impl Held {
    fn conn(&self) -> Result<&rusqlite::Connection, StoreError> {
        self.0.in_transaction()
    }
}

impl Drop for Held {
    /// A transaction let go without its commit (an error, a cancelled
    /// future, a failed commit) is rolled back before the next writer gets
    /// the connection; if even that fails, the connection is closed (which
    /// rolls back) and the next begin opens another.
    fn drop(&mut self) {
        if let Some(conn) = &self.0.conn
            && !conn.is_autocommit()
            && let Err(error) = conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(%error, "could not roll back an unfinished write transaction; the writer is opened afresh");
            self.0.conn = None;
        }
    }
}

/// A value bound to a statement, typed as sqlx's `Any` types it (a NULL
/// keeps the type PostgreSQL must see for it).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null(Kind),
    Bool(bool),
    SmallInt(i16),
    Integer(i32),
    BigInt(i64),
    Real(f32),
    Double(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind_name(&self) -> &'static str {
        match self {
            Value::Null(_) => "NULL",
            Value::Bool(_) => "a boolean",
            Value::SmallInt(_) | Value::Integer(_) | Value::BigInt(_) => "an integer",
            Value::Real(_) | Value::Double(_) => "a number",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// The type of a NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    Text,
    Blob,
}

/// Rows read on the pool, each through a reader written for [`Row`].
pub(crate) fn each<T>(rows: &[AnyRow], read: impl Fn(&Row) -> T) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|r| Row::from_any(r).map(|r| read(&r))).collect()
}

/// What can be bound to a statement.
pub trait Bind {
    const KIND: Kind;
    fn value(self) -> Value;
}

macro_rules! bind {
    ($($t:ty => $kind:ident, $v:ident => $e:expr;)*) => {$(
        impl Bind for $t {
            const KIND: Kind = Kind::$kind;
            fn value(self) -> Value {
                let $v = self;
                $e
            }
        }
    )*};
}

bind! {
    bool => Bool, v => Value::Bool(v);
    i16 => SmallInt, v => Value::SmallInt(v);
    i32 => Integer, v => Value::Integer(v);
    i64 => BigInt, v => Value::BigInt(v);
    f32 => Real, v => Value::Real(v);
    f64 => Double, v => Value::Double(v);
    String => Text, v => Value::Text(v);
    &str => Text, v => Value::Text(v.to_owned());
    &String => Text, v => Value::Text(v.clone());
    Cow<'_, str> => Text, v => Value::Text(v.into_owned());
    Vec<u8> => Blob, v => Value::Blob(v);
    &[u8] => Blob, v => Value::Blob(v.to_vec());
}

impl<T: Bind> Bind for Option<T> {
    const KIND: Kind = T::KIND;
    fn value(self) -> Value {
        match self {
            Some(v) => v.value(),
            None => Value::Null(T::KIND),
        }
    }
}

/// A statement with its values, run on a [`Tx`].
#[must_use = "a query does nothing until it is run on a transaction"]
pub struct Query {
    sql: Cow<'static, str>,
    args: Vec<Value>,
}

pub fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query { sql: sql.into(), args: Vec::new() }
}

/// A statement whose rows are one value each, as sqlx's `query_scalar`.
#[must_use = "a query does nothing until it is run on a transaction"]
pub struct Scalar<T> {
    query: Query,
    _as: std::marker::PhantomData<fn() -> T>,
}

pub fn query_scalar<T: Decode>(sql: impl Into<Cow<'static, str>>) -> Scalar<T> {
    Scalar { query: query(sql), _as: std::marker::PhantomData }
}

impl<T: Decode> Scalar<T> {
    pub fn bind<B: Bind>(self, value: B) -> Scalar<T> {
        Scalar { query: self.query.bind(value), _as: self._as }
    }

    pub async fn fetch_all(self, tx: &mut Tx) -> Result<Vec<T>, StoreError> {
        self.query.fetch_all(tx).await?.iter().map(|r| r.try_get(0)).collect()
    }

    pub async fn fetch_optional(self, tx: &mut Tx) -> Result<Option<T>, StoreError> {
        self.query.fetch_optional(tx).await?.map(|r| r.try_get(0)).transpose()
    }

    pub async fn fetch_one(self, tx: &mut Tx) -> Result<T, StoreError> {
        self.query.fetch_one(tx).await?.try_get(0)
    }
}

/// What a statement changed.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    rows_affected: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

impl Query {
    /// Room for `n` more values: a multi-row statement binds thousands, and
    /// growing to them copies them again and again into fresh memory (the
    /// kernel zeroing its pages showed in the profile).
    pub fn reserve(mut self, n: usize) -> Query {
        self.args.reserve_exact(n);
        self
    }

    pub fn bind<T: Bind>(mut self, value: T) -> Query {
        self.args.push(value.value());
        self
    }

    pub async fn execute(self, tx: &mut Tx) -> Result<Done, StoreError> {
        match tx {
            Tx::Pool(tx) => {
                let done = self.into_sqlx().execute(&mut **tx).await?;
                Ok(Done { rows_affected: done.rows_affected() })
            }
            Tx::Sqlite(held) => {
                let conn = held.conn()?;
                let mut stmt = self.prepare(conn)?;
                let mut rows = stmt.raw_query();
                while rows.next()?.is_some() {}
                drop(rows);
                let rows_affected = if stmt.readonly() { 0 } else { conn.changes() };
                Ok(Done { rows_affected })
            }
        }
    }

    pub async fn fetch_all(self, tx: &mut Tx) -> Result<Vec<Row>, StoreError> {
        match tx {
            Tx::Pool(tx) => {
                let rows = self.into_sqlx().fetch_all(&mut **tx).await?;
                rows.iter().map(Row::from_any).collect()
            }
            Tx::Sqlite(held) => self.sqlite_rows(held.conn()?, usize::MAX),
        }
    }

    pub async fn fetch_optional(self, tx: &mut Tx) -> Result<Option<Row>, StoreError> {
        match tx {
            Tx::Pool(tx) => self.into_sqlx().fetch_optional(&mut **tx).await?.as_ref().map(Row::from_any).transpose(),
            // SQLite makes all of a statement's changes at its first step,
            // so stopping after one row leaves none undone.
            Tx::Sqlite(held) => Ok(self.sqlite_rows(held.conn()?, 1)?.pop()),
        }
    }

    pub async fn fetch_one(self, tx: &mut Tx) -> Result<Row, StoreError> {
        self.fetch_optional(tx).await?.ok_or(StoreError::Db(sqlx::Error::RowNotFound))
    }

    fn sqlite_rows(self, conn: &rusqlite::Connection, limit: usize) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.prepare(conn)?;
        let columns: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let width = columns.len();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while out.len() < limit
            && let Some(row) = rows.next()?
        {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(from_sqlite(row.get_ref(i)?)?);
            }
            out.push(Row { columns: columns.clone(), values });
        }
        Ok(out)
    }

    /// Prepares (or takes from the cache) and binds. A `$n` placeholder
    /// takes the n-th value wherever it stands (and as often); a `?` the
    /// next in order.
    fn prepare(self, conn: &rusqlite::Connection) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        let mut stmt = conn.prepare_cached(&self.sql)?;
        let count = stmt.parameter_count();
        for index in 1..=count {
            let value = match stmt.parameter_name(index) {
                Some(name) => {
                    let n = name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok());
                    n.and_then(|n| self.args.get(n.wrapping_sub(1)))
                }
                None => self.args.get(index - 1),
            };
            let value = value.ok_or_else(|| {
                StoreError::Decode(format!("statement parameter {index} has no value bound: {}", self.sql))
            })?;
            stmt.raw_bind_parameter(index, value)?;
        }
        Ok(stmt)
    }

    fn into_sqlx(self) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
        let mut q = match self.sql {
            Cow::Borrowed(sql) => sqlx::query(sql),
            Cow::Owned(sql) => sqlx::query(AssertSqlSafe(sql)),
        };
        for value in self.args {
            q = match value {
                Value::Null(Kind::Bool) => q.bind(None::<bool>),
                Value::Null(Kind::SmallInt) => q.bind(None::<i16>),
                Value::Null(Kind::Integer) => q.bind(None::<i32>),
                Value::Null(Kind::BigInt) => q.bind(None::<i64>),
                Value::Null(Kind::Real) => q.bind(None::<f32>),
                Value::Null(Kind::Double) => q.bind(None::<f64>),
                Value::Null(Kind::Text) => q.bind(None::<String>),
                Value::Null(Kind::Blob) => q.bind(None::<Vec<u8>>),
                Value::Bool(v) => q.bind(v),
                Value::SmallInt(v) => q.bind(v),
                Value::Integer(v) => q.bind(v),
                Value::BigInt(v) => q.bind(v),
                Value::Real(v) => q.bind(v),
                Value::Double(v) => q.bind(v),
                Value::Text(v) => q.bind(v),
                Value::Blob(v) => q.bind(v),
            };
        }
        q
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null(_) => ValueRef::Null,
            Value::Bool(v) => ValueRef::Integer(i64::from(*v)),
            Value::SmallInt(v) => ValueRef::Integer(i64::from(*v)),
            Value::Integer(v) => ValueRef::Integer(i64::from(*v)),
            Value::BigInt(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(f64::from(*v)),
            Value::Double(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Result<Value, StoreError> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null(Kind::Text),
        ValueRef::Integer(i) => Value::BigInt(i),
        ValueRef::Real(f) => Value::Double(f),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec()).map_err(|_| StoreError::Decode("a stored text is not UTF-8".into()))?,
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

/// A row read in a write transaction.
#[derive(Clone, Debug)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// A column by position or by name.
pub trait ColumnIndex {
    fn position(&self, columns: &[String]) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| c == self)
    }
}

impl Row {
    /// The value of a column, as sqlx's `Row::get`: a column missing or of
    /// another type is a bug in the statement, and panics.
    #[track_caller]
    pub fn get<T: Decode, I: ColumnIndex + std::fmt::Debug + Copy>(&self, index: I) -> T {
        match self.try_get(index) {
            Ok(v) => v,
            Err(error) => panic!("column {index:?}: {error}"),
        }
    }

    pub fn try_get<T: Decode, I: ColumnIndex + std::fmt::Debug>(&self, index: I) -> Result<T, StoreError> {
        let at = index
            .position(&self.columns)
            .ok_or_else(|| StoreError::Decode(format!("no column {index:?} in the row")))?;
        // Named by the kind of value, never the value: it may be a body.
        T::decode(&self.values[at]).ok_or_else(|| {
            StoreError::Decode(format!("column {index:?} holds {}, not {}", self.values[at].kind_name(), T::NAME))
        })
    }

    /// A row read on the pool, for the readers both share.
    pub fn from_any(row: &AnyRow) -> Result<Row, StoreError> {
        let columns: Arc<[String]> = row.columns().iter().map(|c| c.name().to_owned()).collect();
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let raw = row.try_get_raw(i)?;
            let value = if raw.is_null() {
                Value::Null(Kind::Text)
            } else {
                match raw.type_info().kind() {
                    AnyTypeInfoKind::Null => Value::Null(Kind::Text),
                    AnyTypeInfoKind::Bool => Value::Bool(row.try_get(i)?),
                    AnyTypeInfoKind::SmallInt => Value::SmallInt(row.try_get(i)?),
                    AnyTypeInfoKind::Integer => Value::Integer(row.try_get(i)?),
                    AnyTypeInfoKind::BigInt => Value::BigInt(row.try_get(i)?),
                    AnyTypeInfoKind::Real => Value::Real(row.try_get(i)?),
                    AnyTypeInfoKind::Double => Value::Double(row.try_get(i)?),
                    AnyTypeInfoKind::Text => Value::Text(row.try_get(i)?),
                    AnyTypeInfoKind::Blob => Value::Blob(row.try_get(i)?),
                }
            };
            values.push(value);
        }
        Ok(Row { columns, values })
    }
}

/// What a column's value can be read as.
pub trait Decode: Sized {
    const NAME: &'static str;
    fn decode(value: &Value) -> Option<Self>;
}

impl Decode for i64 {
    const NAME: &'static str = "an integer";
    fn decode(value: &Value) -> Option<i64> {
        match *value {
            Value::SmallInt(v) => Some(v.into()),
            Value::Integer(v) => Some(v.into()),
            Value::BigInt(v) => Some(v),
            _ => None,
        }
    }
}

impl Decode for i32 {
    const NAME: &'static str = "a 32-bit integer";
    fn decode(value: &Value) -> Option<i32> {
        i64::decode(value).and_then(|v| i32::try_from(v).ok())
    }
}

impl Decode for bool {
    const NAME: &'static str = "a boolean";
    fn decode(value: &Value) -> Option<bool> {
        match *value {
            Value::Bool(v) => Some(v),
            _ => i64::decode(value).map(|v| v != 0),
        }
    }
}

impl Decode for f64 {
    const NAME: &'static str = "a number";
    fn decode(value: &Value) -> Option<f64> {
        match *value {
            Value::Real(v) => Some(v.into()),
            Value::Double(v) => Some(v),
            // An integer expression or column read as a number.
            _ => i64::decode(value).map(|v| v as f64),
        }
    }
}

impl Decode for String {
    const NAME: &'static str = "text";
    fn decode(value: &Value) -> Option<String> {
        match value {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl Decode for Vec<u8> {
    const NAME: &'static str = "a blob";
    fn decode(value: &Value) -> Option<Vec<u8>> {
        match value {
            Value::Blob(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    const NAME: &'static str = T::NAME;
    fn decode(value: &Value) -> Option<Option<T>> {
        match value {
            Value::Null(_) => Some(None),
            v => T::decode(v).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_sqlx_would() {
        assert_eq!(i64::decode(&Value::Integer(7)), Some(7));
        assert_eq!(bool::decode(&Value::BigInt(1)), Some(true));
        assert_eq!(Option::<String>::decode(&Value::Null(Kind::Text)), Some(None));
        assert_eq!(String::decode(&Value::BigInt(1)), None, "no silent conversions");
        assert_eq!(i32::decode(&Value::BigInt(i64::MAX)), None);
    }

    #[test]
    fn the_writer_keeps_statement_journals_in_memory() {
        let dir = std::env::temp_dir().join(format!("hub-writer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db");
        std::fs::File::create(&path).unwrap();
        let mut writer = SqliteWriter::open(path.to_str().unwrap()).unwrap();
        let conn = writer.connect().unwrap();
        let store: i64 = conn.query_row("PRAGMA temp_store", [], |r| r.get(0)).unwrap();
        assert_eq!(store, 2, "MEMORY: a statement journal never spills to a file");
        // A statement that fails after rewriting thousands of rows (far past
        // the 64 KiB a journal keeps before it would spill), inside a
        // transaction that wrote them first: its failure undoes that
        // statement alone, from the journal in memory.
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)").unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.execute_batch("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO t SELECT i, printf('%0200d', i) FROM n").unwrap();
        conn.execute_batch("INSERT INTO t VALUES (0, 'x')").unwrap();
        // Whatever the order it visits the rows in, it fails only at 5000.
        let failed = conn.execute_batch("UPDATE t SET v = CASE WHEN k = 5000 THEN 'x' ELSE v || 'y' END WHERE k > 0");
        assert!(failed.is_err(), "row 5000 collides with row 0");
        conn.execute_batch("COMMIT").unwrap();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM t WHERE v = printf('%0200d', k)", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 5000, "the failed statement alone was undone");
        writer.close();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_null_keeps_its_type() {
        assert_eq!(None::<i64>.value(), Value::Null(Kind::BigInt));
        assert_eq!(Some("a").value(), Value::Text("a".into()));
    }
}
