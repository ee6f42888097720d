//! Whose trouble a failed store is: the database's (wait, the source sends
//! the record again) or the record's (it can never be stored as it is, so
//! it goes to quarantine and the stream goes on).
//!
//! The line matters both ways. A record quarantined because the database
//! was busy leaves the normal path for a person's desk; a record retried
//! for ever because the database refuses its bytes wedges its whole
//! stream (an AMQP requeue loop, an MQTT session that receives it first on
//! every reconnect, a feed cursor that never moves). What neither list
//! names is [`Failure::Unclear`]: retried, and quarantined only after it
//! failed [`UNCLEAR_TRIES`] times on its own.

use std::collections::HashMap;

use super::StoreError;

/// Failures of one record in a row, each when stored on its own, after
/// which an unclear error is taken as the record's.
pub const UNCLEAR_TRIES: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The database cannot take anything right now (connection lost, busy
    /// or locked, serialization failure, deadlock, disk or memory full,
    /// read-only, shutting down). Never the record's fault: it is retried
    /// however long this lasts.
    Database,
    /// The database refuses this record's values (bad encoding, a value
    /// too long for an index, a type or range error) or the store cannot
    /// apply it (the ticket it updates cannot be read). Retrying cannot help.
    Record,
    /// Anything else (a constraint, an error we did not foresee).
    Unclear,
}

impl StoreError {
    pub fn failure(&self) -> Failure {
        match self {
            StoreError::Db(e) => sqlx_failure(e),
            StoreError::Sqlite(e) => match e.sqlite_error() {
                Some(e) => sqlite(e.extended_code),
                None => Failure::Unclear,
            },
            StoreError::Migrate(_) | StoreError::UnsupportedUrl(_) | StoreError::Conflict(_) => Failure::Database,
            StoreError::CorruptTicket { .. } | StoreError::NotFound(_) | StoreError::Invalid(_) => Failure::Record,
            // Not this record's doing as far as anyone can tell.
            StoreError::Decode(_) => Failure::Unclear,
        }
    }
}

fn sqlx_failure(e: &sqlx::Error) -> Failure {
    use sqlx::Error as E;
    match e {
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() && code.len() == 5 {
                postgres(&code)
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite gives its extended result code, in decimal.
                code.parse::<i32>().map_or(Failure::Unclear, sqlite)
            } else {
                Failure::Unclear
            }
        }
        E::Io(_)
        | E::Tls(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed
        | E::BeginFailed
        | E::Configuration(_)
        | E::Protocol(_)
        | E::Migrate(_) => Failure::Database,
        E::Encode(_) => Failure::Record,
        _ => Failure::Unclear,
    }
}

/// By SQLSTATE: https://www.postgresql.org/docs/current/errcodes-appendix.html
fn postgres(code: &str) -> Failure {
    match code {
        // A read-only transaction (a standby after a failover), lock not
        // available, object in use, query cancelled or the server shutting down.
        "25006" | "55P03" | "55006" | "57014" | "57P01" | "57P02" | "57P03" | "57P04" | "57P05" => Failure::Database,
        _ => match &code[..2] {
            // Connection, serialization failure and deadlock, out of
            // resources (disk, memory, connections), system and I/O errors;
            // and what fails for every record alike, so is never one
            // record's to carry: a transaction already aborted (25), a
            // missing table or privilege after a change of the schema or
            // its grants (42), an object in the wrong state (55), a feature
            // the server lacks (0A), an internal error (XX), the server's
            // configuration (F0).
            "08" | "40" | "53" | "58" | "25" | "42" | "55" | "0A" | "XX" | "F0" => Failure::Database,
            // Data exceptions (U+0000, invalid byte sequences, values out
            // of range) and program limits (an index row too large).
            "22" | "54" => Failure::Record,
            _ => Failure::Unclear,
        },
    }
}

/// By primary result code: https://www.sqlite.org/rescode.html
fn sqlite(code: i32) -> Failure {
    match code & 0xff {
        // ERROR (an SQL error: a missing table after a change of the
        // schema fails every record alike), ABORT (a transaction rolled
        // back under it), BUSY, LOCKED, NOMEM, READONLY, INTERRUPT, IOERR,
        // CORRUPT, FULL, CANTOPEN, PROTOCOL, SCHEMA, NOTADB: the
        // database's trouble, not the record's.
        1 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 13 | 14 | 15 | 17 | 26 => Failure::Database,
        // TOOBIG, MISMATCH, RANGE.
        18 | 20 | 25 => Failure::Record,
        _ => Failure::Unclear,
    }
}

/// How often each record has failed with an unclear error, by a key of
/// its content. Bounded: past [`Strikes::MAX_KEYS`] records it starts
/// over, which only delays a quarantine.
#[derive(Default)]
pub struct Strikes {
    counts: HashMap<String, u32>,
}

impl Strikes {
    const MAX_KEYS: usize = 10_000;

    /// Counts one more failure of `key`; true once it has failed
    /// [`UNCLEAR_TRIES`] times.
    pub fn strike(&mut self, key: &str) -> bool {
        if self.counts.len() >= Self::MAX_KEYS && !self.counts.contains_key(key) {
            self.counts.clear();
        }
        let n = self.counts.entry(key.to_string()).or_default();
        *n += 1;
        *n >= UNCLEAR_TRIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_trouble_is_never_the_records() {
        assert_eq!(postgres("08006"), Failure::Database);
        assert_eq!(postgres("40001"), Failure::Database);
        assert_eq!(postgres("40P01"), Failure::Database);
        assert_eq!(postgres("53100"), Failure::Database);
        assert_eq!(postgres("57P01"), Failure::Database);
        assert_eq!(postgres("25006"), Failure::Database);
        assert_eq!(sqlite(5), Failure::Database);
        assert_eq!(sqlite(517), Failure::Database, "SQLITE_BUSY_SNAPSHOT");
        assert_eq!(sqlite(13), Failure::Database);
        // What fails for every record alike: never a record's quarantine.
        assert_eq!(postgres("42P01"), Failure::Database, "a missing table");
        assert_eq!(postgres("42501"), Failure::Database, "a privilege revoked");
        assert_eq!(postgres("25P02"), Failure::Database, "a transaction already aborted");
        assert_eq!(postgres("XX000"), Failure::Database);
        assert_eq!(sqlite(1), Failure::Database, "no such table");
        assert_eq!(sqlite(17), Failure::Database, "SQLITE_SCHEMA");
        assert_eq!(sqlx_failure(&sqlx::Error::PoolTimedOut), Failure::Database);
        assert_eq!(sqlx_failure(&sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())), Failure::Database);
    }

    #[test]
    fn refused_values_are_the_records() {
        assert_eq!(postgres("22021"), Failure::Record, "U+0000 in text");
        assert_eq!(postgres("54000"), Failure::Record, "index row too large");
        assert_eq!(sqlite(18), Failure::Record);
        assert_eq!(postgres("23505"), Failure::Unclear, "a race between two hubs, or not");
        assert_eq!(sqlite(2067), Failure::Unclear);
        assert_eq!(StoreError::NotFound("x".into()).failure(), Failure::Record);
    }

    #[test]
    fn the_sqlite_writers_errors_are_told_apart_by_their_code_as_sqlxs() {
        let of = |code: i32| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)).failure()
        };
        assert_eq!(of(5), Failure::Database, "SQLITE_BUSY");
        assert_eq!(of(13), Failure::Database, "SQLITE_FULL");
        assert_eq!(of(10 | (12 << 8)), Failure::Database, "SQLITE_IOERR_READ");
        assert_eq!(of(18), Failure::Record, "SQLITE_TOOBIG");
        assert_eq!(of(516), Failure::Database, "SQLITE_ABORT_ROLLBACK");
        assert_eq!(StoreError::Decode("column 0".into()).failure(), Failure::Unclear);
        assert_eq!(of(2067), Failure::Unclear, "SQLITE_CONSTRAINT_UNIQUE");
        assert_eq!(StoreError::Sqlite(rusqlite::Error::InvalidQuery).failure(), Failure::Unclear);
    }

    #[test]
    fn strikes_count_to_the_limit() {
        let mut s = Strikes::default();
        for _ in 1..UNCLEAR_TRIES {
            assert!(!s.strike("a"));
        }
        assert!(s.strike("a"));
        assert!(s.strike("a"), "and stay there");
        assert!(!s.strike("b"));
    }
}
