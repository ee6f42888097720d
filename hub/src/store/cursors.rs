//! Where the feeds the hub polls stand: an operator moving a cursor past a
//! page that cannot be parsed. (Committing a cursor with the page it covers
//! is in `intake.rs`.)

use super::{Store, StoreError, now_ms};

impl Store {
    /// Moves the cursor `name` from `from` (`None`: the feed's start, no
    /// cursor stored yet) to `to`, and closes the quarantined page
    /// `quarantine_id` as `skipped`, in one transaction. Refused when the
    /// cursor is no longer at `from` (the page went through, or someone
    /// moved it already) or the quarantined record is not open: moving a
    /// cursor is never done on stale information. The stored ETag is
    /// dropped so the next poll fetches the page at `to`.
    pub async fn skip_cursor(
        &self,
        name: &str,
        from: Option<&str>,
        to: &str,
        quarantine_id: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut w = self.begin_write().await?;
        let state: Option<String> = super::query_scalar("SELECT state FROM quarantine WHERE id = $1")
            .bind(quarantine_id)
            .fetch_optional(&mut w.tx)
            .await?;
        match state.as_deref() {
            None => return Err(StoreError::NotFound(format!("no quarantined record {quarantine_id}"))),
            Some("open") => {}
            Some(other) => {
                return Err(StoreError::Invalid(format!("quarantined record {quarantine_id} was already {other}")));
            }
        }
        let moved = match from {
            Some(from) => {
                super::query(
                    "UPDATE cursors SET value = $3, etag = NULL, updated_at = $4 WHERE name = $1 AND value = $2",
                )
                .bind(name)
                .bind(from)
                .bind(to)
                .bind(now)
                .execute(&mut w.tx)
                .await?
            }
            None => {
                super::query(
                    "INSERT INTO cursors (name, value, etag, updated_at) VALUES ($1, $2, NULL, $3)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(to)
                .bind(now)
                .execute(&mut w.tx)
                .await?
            }
        };
        if moved.rows_affected() != 1 {
            let current: Option<String> = super::query_scalar("SELECT value FROM cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut w.tx)
                .await?;
            let shown = |c: Option<&str>| c.map_or_else(|| "at the start".to_string(), |c| format!("at `{c}`"));
            return Err(StoreError::Invalid(format!(
                "the cursor {name} is {}, not {}: the feed has moved since; nothing changed",
                shown(current.as_deref()),
                shown(from)
            )));
        }
        super::query("UPDATE quarantine SET state = 'skipped', resolved_at = $2 WHERE id = $1")
            .bind(quarantine_id)
            .bind(now)
            .execute(&mut w.tx)
            .await?;
        w.commit().await?;
        Ok(())
    }
}
