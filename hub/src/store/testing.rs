//! Fresh, isolated databases for tests and benchmarks: a new SQLite file,
//! or a new PostgreSQL database on the server named by
//! `HUB_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection};

pub fn postgres_admin_url() -> String {
    std::env::var("HUB_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    drop_database: Option<String>,
    dir: Option<PathBuf>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("hub-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TestDb { url: format!("sqlite://{}", dir.join("hub.db").display()), drop_database: None, dir: Some(dir) }
    }

    pub async fn postgres() -> TestDb {
        super::DRIVERS.call_once(sqlx::any::install_default_drivers);
        let admin = postgres_admin_url();
        let name = format!("hub_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AnyConnection::connect_with(&AnyConnectOptions::from_str(&admin).expect("admin url"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test (run .ci/services): {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let _ = conn.close().await;
        let (base, _) = admin.rsplit_once('/').expect("admin url has a database");
        TestDb { url: format!("{base}/{name}"), drop_database: Some(name), dir: None }
    }

    /// Removes the database; call at the end of a test (a failed test
    /// leaves it behind for a look).
    pub async fn cleanup(self) {
        if let Some(name) = &self.drop_database {
            let admin = postgres_admin_url();
            if let Ok(mut conn) =
                AnyConnection::connect_with(&AnyConnectOptions::from_str(&admin).expect("admin url")).await
            {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The body a ticket's revision holds, read on the pool.
#[cfg(test)]
pub(crate) async fn revision_body(store: &super::Store, ticket_id: &str, revision: i64) -> String {
    sqlx::query_scalar("SELECT body FROM ticket_revisions WHERE ticket_id = $1 AND revision = $2")
        .bind(ticket_id)
        .bind(revision)
        .fetch_one(store.pool())
        .await
        .unwrap()
}
