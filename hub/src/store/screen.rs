//! The centre's screen's lists, within a region: tickets near or past
//! their deadline, and agreed court cases still without their document.
//! Each is joined with `ticket_facts` for where and what the matter is,
//! so the region is filtered in the database, before the limit.

use sqlx::Row;

use super::{Store, StoreError};

/// Where and what a listed ticket is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub ticket_id: String,
    /// 12-digit division code; empty when the ticket has no facts.
    pub region: String,
    pub county: String,
    pub category: String,
    pub channel: String,
    pub department: String,
}

/// A ticket reminded (due soon) or overdue, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueInRegion {
    pub placed: Placed,
    pub due_at: i64,
    pub reminded_at: Option<i64>,
    pub overdue_at: Option<i64>,
}

/// An agreed court case waiting for its document, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInRegion {
    pub placed: Placed,
    pub case_no: String,
    pub agreed_at: i64,
    pub alarmed_at: Option<i64>,
}

/// `AND county = $n` / `AND township = $n` for a 6- or 9-digit prefix.
fn region_clause(region: Option<&str>, n: usize) -> (String, Option<String>) {
    match region {
        None => (String::new(), None),
        Some(p) => {
            let (column, code) = super::stats::region_column(p);
            (format!(" AND f.{column} = ${n}"), Some(code))
        }
    }
}

const PLACED: &str = "COALESCE(f.region, ''), COALESCE(f.county, ''), COALESCE(f.category, ''),
    COALESCE(f.channel, ''), COALESCE(f.department, '')";

fn placed(ticket_id: String, r: &sqlx::any::AnyRow, first: usize) -> Placed {
    Placed {
        ticket_id,
        region: r.get(first),
        county: r.get(first + 1),
        category: r.get(first + 2),
        channel: r.get(first + 3),
        department: r.get(first + 4),
    }
}

impl Store {
    /// Open tickets reminded or overdue in `region` (a county's or
    /// township's code; all when none), the soonest due first. Tickets
    /// without facts are listed only for the whole city.
    /// Runs `sql` (its `$1` the limit, its `$2` the region's code when
    /// [`region_clause`] gave one).
    async fn rows_in_region(
        &self,
        sql: String,
        region: Option<String>,
        limit: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        self.figures_current().await;
        // Only our own column names and a placeholder are formatted in.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit);
        if let Some(a) = region {
            q = q.bind(a);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    pub async fn due_tickets_in(&self, region: Option<&str>, limit: i64) -> Result<Vec<DueInRegion>, StoreError> {
        let (clause, arg) = region_clause(region, 2);
        let sql = format!(
            "SELECT d.ticket_id, d.due_at, d.reminded_at, d.overdue_at, {PLACED}
               FROM deadlines d LEFT JOIN ticket_facts f ON f.ticket_id = d.ticket_id
              WHERE d.closed = 0 AND (d.reminded_at IS NOT NULL OR d.overdue_at IS NOT NULL){clause}
              ORDER BY d.due_at, d.ticket_id LIMIT $1"
        );
        let rows = self.rows_in_region(sql, arg, limit).await?;
        Ok(rows
            .iter()
            .map(|r| DueInRegion {
                placed: placed(r.get(0), r, 4),
                due_at: r.get(1),
                reminded_at: r.get(2),
                overdue_at: r.get(3),
            })
            .collect())
    }

    /// Agreed court cases without their document in `region`, the oldest first.
    pub async fn pending_documents_in(
        &self,
        region: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PendingInRegion>, StoreError> {
        let (clause, arg) = region_clause(region, 2);
        let sql = format!(
            "SELECT c.ticket_id, c.case_no, c.agreed_at, c.alarmed_at, {PLACED}
               FROM court_documents c LEFT JOIN ticket_facts f ON f.ticket_id = c.ticket_id
              WHERE c.documented_at IS NULL{clause}
              ORDER BY c.agreed_at, c.ticket_id LIMIT $1"
        );
        let rows = self.rows_in_region(sql, arg, limit).await?;
        Ok(rows
            .iter()
            .map(|r| PendingInRegion {
                placed: placed(r.get(0), r, 4),
                case_no: r.get(1),
                agreed_at: r.get(2),
                alarmed_at: r.get(3),
            })
            .collect())
    }
}
