//! Multi-row SQL for group commits: one statement per table per batch
//! instead of one per record, which is what makes a commit of 256 records
//! cost about as much as a commit of a few.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

use super::{Backend, Row, StoreError, Tx};

/// Rows per statement at most (well under SQLite's 32,766 parameters).
pub const MAX_ROWS: usize = 500;

/// `INSERT INTO {table} ({columns}) VALUES ($1, $2), ($3, $4) … {suffix}`
///
/// On SQLite the placeholders are plain `?`: binding a numbered or named
/// parameter makes SQLite scan its list of names, which costs O(n²) for a
/// statement of n parameters and dominated a group commit's CPU time.
pub fn insert_sql(backend: Backend, table: &str, columns: &[&str], rows: usize, suffix: &str) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    push_values(backend, &mut sql, columns.len(), rows, 1);
    if !suffix.is_empty() {
        sql.push(' ');
        sql.push_str(suffix);
    }
    sql
}

/// [`insert_sql`] as a statement with room for its values.
pub fn insert(backend: Backend, table: &str, columns: &[&str], rows: usize, suffix: &str) -> super::Query {
    super::query(insert_sql(backend, table, columns, rows, suffix)).reserve(columns.len() * rows)
}

/// `(VALUES ($1, $2), …)`, starting at parameter `first`. Both SQLite and
/// PostgreSQL name its columns `column1`, `column2`, ….
pub fn values_table(backend: Backend, width: usize, rows: usize, first: usize) -> String {
    let mut sql = String::from("(VALUES ");
    push_values(backend, &mut sql, width, rows, first);
    sql.push(')');
    sql
}

/// `$1, $2, …` (or `?, ?, …` on SQLite) for an `IN (…)` list.
pub fn list(backend: Backend, n: usize) -> String {
    let mut sql = String::new();
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        push_placeholder(backend, &mut sql, i + 1);
    }
    sql
}

fn push_placeholder(backend: Backend, sql: &mut String, n: usize) {
    use std::fmt::Write;
    match backend {
        Backend::Sqlite => sql.push('?'),
        Backend::Postgres => {
            let _ = write!(sql, "${n}");
        }
    }
}

fn push_values(backend: Backend, sql: &mut String, width: usize, rows: usize, first: usize) {
    let mut n = first;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            push_placeholder(backend, sql, n);
            n += 1;
        }
        sql.push(')');
    }
}

/// Rows per multi-row statement in a write transaction on SQLite, at most.
pub const SHAPED_ROWS: usize = 256;

/// A write transaction's rows in pieces, one multi-row statement each. On
/// SQLite in pieces of a power of two rows each (the largest that fits, at
/// most [`SHAPED_ROWS`]: 75 rows go as 64 + 8 + 2 + 1): the writer runs
/// its statements in place, where preparing a statement of a new row
/// count (parsing hundreds of placeholders) cost more than running it, so
/// a few shapes stay prepared. On PostgreSQL each statement is a round
/// trip with the rows' locks held, so fewer, larger ones ([`MAX_ROWS`]).
pub fn pieces<T>(backend: Backend, rows: &[T]) -> Pieces<'_, T> {
    match backend {
        Backend::Sqlite => Pieces { rest: rows, max: SHAPED_ROWS, shaped: true },
        Backend::Postgres => Pieces { rest: rows, max: MAX_ROWS, shaped: false },
    }
}

/// [`pieces`]' iterator.
pub struct Pieces<'a, T> {
    rest: &'a [T],
    max: usize,
    /// In powers of two.
    shaped: bool,
}

impl<'a, T> Iterator for Pieces<'a, T> {
    type Item = &'a [T];

    fn next(&mut self) -> Option<&'a [T]> {
        if self.rest.is_empty() {
            return None;
        }
        let n = self.rest.len().min(self.max);
        let n = if self.shaped && !n.is_power_of_two() { n.next_power_of_two() / 2 } else { n };
        let (piece, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(piece)
    }
}

/// A statement built here, for a read on the pool (a write transaction's
/// statements are [`super::query`]).
pub fn query(sql: String) -> Query<'static, Any, AnyArguments> {
    sqlx::query(AssertSqlSafe(sql))
}

/// The rows of `{select} WHERE {column} IN (…)` for every one of `keys`,
/// in statements of at most [`MAX_ROWS`] keys. A list is padded to a power
/// of two with its last key again (which changes nothing in an `IN`), so
/// that lists of any length share a few prepared statements.
pub async fn fetch_in(
    tx: &mut Tx,
    backend: Backend,
    select: &str,
    column: &str,
    keys: &[String],
) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_ROWS) {
        let padded = chunk.len().next_power_of_two().min(MAX_ROWS);
        let mut q = super::query(format!("{select} WHERE {column} IN ({})", list(backend, padded))).reserve(padded);
        for key in chunk {
            q = q.bind(key.clone());
        }
        for _ in chunk.len()..padded {
            q = q.bind(chunk[chunk.len() - 1].clone());
        }
        rows.extend(q.fetch_all(tx).await?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_placeholders() {
        assert_eq!(
            insert_sql(Backend::Postgres, "t", &["a", "b"], 2, "RETURNING a"),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING a"
        );
        assert_eq!(insert_sql(Backend::Sqlite, "t", &["a", "b"], 2, ""), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert_eq!(values_table(Backend::Postgres, 2, 1, 3), "(VALUES ($3, $4))");
        assert_eq!(list(Backend::Postgres, 3), "$1, $2, $3");
    }

    #[test]
    fn shapes_pieces_as_powers_of_two_on_sqlite() {
        let on = |backend, n: u32| {
            let rows: Vec<u32> = (0..n).collect();
            pieces(backend, &rows).map(<[u32]>::len).collect::<Vec<_>>()
        };
        assert_eq!(on(Backend::Sqlite, 75), vec![64, 8, 2, 1]);
        assert_eq!(on(Backend::Sqlite, 600), vec![256, 256, 64, 16, 8]);
        assert_eq!(on(Backend::Sqlite, 3), vec![2, 1]);
        assert_eq!(on(Backend::Sqlite, 0), Vec::<usize>::new());
        assert_eq!(on(Backend::Postgres, 600), vec![500, 100], "fewer, larger statements");
        let rows: Vec<u32> = (0..5).collect();
        let pieced: Vec<&[u32]> = pieces(Backend::Sqlite, &rows).collect();
        assert_eq!(pieced, vec![&[0, 1, 2, 3][..], &[4][..]], "in order");
    }
}
