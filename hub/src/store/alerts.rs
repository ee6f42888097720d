//! Early-warning alerts as raised (`stats/alerts.rs` decides them): each
//! (area, category, day, method) once, whichever hub raises it first.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// An alert as kept and shown.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredAlert {
    pub id: i64,
    /// A township's (9 digits) or county's (6 digits) code.
    pub area: String,
    pub category: String,
    /// `YYYY-MM-DD`, Beijing time.
    pub day: String,
    /// `EARS-C2` or `CUSUM`.
    pub method: String,
    pub count: i64,
    pub baseline_mean: f64,
    pub baseline_sd: f64,
    pub statistic: f64,
    pub threshold: f64,
    /// One line in Chinese with the figures that raised it.
    pub evidence: String,
    pub raised_at: i64,
}

impl Store {
    /// Keeps the alerts not raised before; returns those that are new.
    pub async fn raise_alerts(&self, alerts: &[StoredAlert]) -> Result<Vec<StoredAlert>, StoreError> {
        let mut new = Vec::new();
        let now = now_ms();
        let mut w = self.begin_write().await?;
        for a in alerts {
            let row = super::query(
                "INSERT INTO alerts (area, category, day, method, count, baseline_mean, baseline_sd, statistic, threshold, evidence, raised_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (area, category, day, method) DO NOTHING RETURNING id",
            )
            .bind(&a.area)
            .bind(&a.category)
            .bind(&a.day)
            .bind(&a.method)
            .bind(a.count)
            .bind(a.baseline_mean)
            .bind(a.baseline_sd)
            .bind(a.statistic)
            .bind(a.threshold)
            .bind(&a.evidence)
            .bind(now)
            .fetch_optional(&mut w.tx)
            .await?;
            if let Some(r) = row {
                new.push(StoredAlert { id: r.get(0), raised_at: now, ..a.clone() });
            }
        }
        w.commit().await?;
        Ok(new)
    }

    /// Alerts of days from `since_day` on, newest first; only those whose
    /// area is in `region` (a county's or township's code) when given.
    pub async fn alerts(
        &self,
        since_day: &str,
        region: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        self.alerts_between(since_day, "9999-12-31", region, limit).await
    }

    /// Alerts of days from `from_day` to `to_day` (inclusive), newest
    /// first: a past month's, which later alerts must not crowd out of
    /// the limit.
    pub async fn alerts_between(
        &self,
        from_day: &str,
        to_day: &str,
        region: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let mut sql = String::from(
            "SELECT id, area, category, day, method, count, baseline_mean, baseline_sd, statistic, threshold, evidence, raised_at
               FROM alerts WHERE day >= $1 AND day <= $2",
        );
        if region.is_some() {
            sql.push_str(" AND area LIKE $4");
        }
        sql.push_str(" ORDER BY day DESC, statistic DESC LIMIT $3");
        let mut q =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from_day.to_string()).bind(to_day.to_string()).bind(limit);
        if let Some(p) = region {
            // A county's token sees its county and its townships; a
            // township's only its own (a county-wide rise is not its area).
            q = q.bind(format!("{p}%"));
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| StoredAlert {
                id: r.get(0),
                area: r.get(1),
                category: r.get(2),
                day: r.get(3),
                method: r.get(4),
                count: r.get(5),
                baseline_mean: r.get(6),
                baseline_sd: r.get(7),
                statistic: r.get(8),
                threshold: r.get(9),
                evidence: r.get(10),
                raised_at: r.get(11),
            })
            .collect())
    }
}
