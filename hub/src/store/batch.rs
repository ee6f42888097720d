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

/// `rows` in chunks of a power of two rows each (the largest that fits,
/// at most `max`): 75 rows go as 64 + 8 + 2 + 1. A table's statements then
/// come in a handful of shapes that stay prepared on each connection,
/// instead of a new statement to parse for every batch's row count.
pub fn shaped<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let max = max.max(1);
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(max);
        let n = if n.is_power_of_two() { n } else { n.next_power_of_two() / 2 };
        let (chunk, after) = rest.split_at(n);
        rest = after;
        Some(chunk)
    })
}

/// A statement built here, for a read on the pool (a write transaction's
/// statements are [`super::query`]).
/// Rows per multi-row statement in a write transaction, at most.
pub const SHAPED_ROWS: usize = 256;

/// A write transaction's rows in [`shaped`] pieces of at most
/// [`SHAPED_ROWS`]: the SQLite writer runs its statements in place, where
/// preparing a statement of a new row count (parsing hundreds of
/// placeholders) cost more than running it; a few shapes stay prepared.
pub fn pieces<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    shaped(rows, SHAPED_ROWS)
}

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
        let mut q = super::query(format!("{select} WHERE {column} IN ({})", list(backend, padded)));
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
    fn shapes_chunks_as_powers_of_two() {
        let rows: Vec<u32> = (0..75).collect();
        let sizes: Vec<usize> = shaped(&rows, 256).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![64, 8, 2, 1]);
        let rows: Vec<u32> = (0..600).collect();
        let sizes: Vec<usize> = shaped(&rows, 256).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![256, 256, 64, 16, 8]);
        let chunks: Vec<&[u32]> = shaped(&rows[..3], 256).collect();
        assert_eq!(chunks, vec![&[0, 1][..], &[2][..]]);
        assert_eq!(shaped(&[] as &[u32], 256).count(), 0);
    }
}
