//! The courts' same-day documents: a case that reaches `AGREED` is to have
//! its legal document the same day. Intake notes each agreed case and each
//! document as they arrive; a check raises one alarm per case still
//! without a document at the day's cut-off (18:00 by default), and a
//! document that comes later clears it.

use chrono::{NaiveTime, TimeZone};
use sqlx::Row as _;

use super::callbacks::record_event;
use super::{Store, StoreError, Tx};
use crate::ticket::Ticket;

/// Notes what a ticket's court case says now: agreed (the first time the
/// hub sees it so), and whether its documents have come.
pub(crate) async fn watch(tx: &mut Tx, ticket: &Ticket, now: i64) -> Result<(), StoreError> {
    let Some(court) = &ticket.draft.court else { return Ok(()) };
    if court.status == "AGREED" && court.documents.is_empty() {
        super::query(
            "INSERT INTO court_documents (ticket_id, case_no, agreed_at) VALUES ($1, $2, $3) ON CONFLICT (ticket_id) DO NOTHING",
        )
        .bind(&ticket.ticket_id)
        .bind(&court.case_no)
        .bind(now)
        .execute(tx)
        .await?;
    } else if !court.documents.is_empty() {
        let alarmed: Option<Option<i64>> = super::query_scalar(
            "UPDATE court_documents SET documented_at = $2 WHERE ticket_id = $1 AND documented_at IS NULL RETURNING alarmed_at",
        )
        .bind(&ticket.ticket_id)
        .bind(now)
        .fetch_optional(tx)
        .await?;
        if let Some(Some(_)) = alarmed {
            record_event(
                tx,
                &ticket.ticket_id,
                now,
                "court",
                "legal document arrived after the day's cut-off: alarm cleared",
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// An agreed case still waiting for its document, for `hub courts pending`.
#[derive(Clone, Debug)]
pub struct PendingDocument {
    pub ticket_id: String,
    pub case_no: String,
    pub agreed_at: i64,
    pub alarmed_at: Option<i64>,
}

/// The cut-off for a case agreed at `agreed_at`: `by` o'clock (Beijing)
/// that day, or the next day's when it was agreed after it.
pub fn cut_off(agreed_at: i64, by: NaiveTime) -> i64 {
    let tz = crate::ticket::beijing();
    let agreed = chrono::DateTime::from_timestamp_millis(agreed_at).unwrap_or_default().with_timezone(&tz);
    let mut day = agreed.date_naive();
    if agreed.time() >= by {
        day = day.succ_opt().unwrap_or(day);
    }
    tz.from_local_datetime(&day.and_time(by)).single().map_or(agreed_at, |t| t.timestamp_millis())
}

impl Store {
    /// Raises the alarm, once per case and whichever hub looks first, for
    /// each agreed case without its document past its cut-off; returns
    /// those newly alarmed.
    pub async fn check_court_documents(&self, by: NaiveTime, now: i64) -> Result<Vec<PendingDocument>, StoreError> {
        let mut raised = Vec::new();
        for p in self.pending_documents().await? {
            if p.alarmed_at.is_some() || cut_off(p.agreed_at, by) > now {
                continue;
            }
            let mut w = self.begin_write().await?;
            let won = super::query(
                "UPDATE court_documents SET alarmed_at = $2 WHERE ticket_id = $1 AND alarmed_at IS NULL AND documented_at IS NULL",
            )
            .bind(&p.ticket_id)
            .bind(now)
            .execute(&mut w.tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                record_event(
                    &mut w.tx,
                    &p.ticket_id,
                    now,
                    "court",
                    "ALARM: agreed, and no legal document by the day's cut-off",
                    now,
                )
                .await?;
                raised.push(PendingDocument { alarmed_at: Some(now), ..p });
            }
            w.commit().await?;
        }
        Ok(raised)
    }

    /// Agreed cases without their document yet, the oldest first.
    pub async fn pending_documents(&self) -> Result<Vec<PendingDocument>, StoreError> {
        let rows = sqlx::query(
            "SELECT ticket_id, case_no, agreed_at, alarmed_at FROM court_documents WHERE documented_at IS NULL ORDER BY agreed_at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PendingDocument {
                ticket_id: r.get(0),
                case_no: r.get(1),
                agreed_at: r.get(2),
                alarmed_at: r.get(3),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_off_is_the_same_day_or_the_next_if_agreed_after_it() {
        let by = NaiveTime::from_hms_opt(18, 0, 0).unwrap();
        let at = |s: &str| s.parse::<crate::ticket::Timestamp>().unwrap().timestamp_millis();
        assert_eq!(cut_off(at("2026-12-04T10:00:00+08:00"), by), at("2026-12-04T18:00:00+08:00"));
        assert_eq!(cut_off(at("2026-12-04T19:30:00+08:00"), by), at("2026-12-05T18:00:00+08:00"));
        // 01:00 UTC is 09:00 in Beijing: the same Beijing day.
        assert_eq!(cut_off(at("2026-12-04T01:00:00+00:00"), by), at("2026-12-04T18:00:00+08:00"));
    }
}
