//! `/api/v1/alerts`: the early warning's alerts, a day's count in an area
//! and category well above its baseline (EARS C2, or a CUSUM for slow
//! rises: `stats/warning.rs`, `docs/early-warning.md`), as raised by the
//! hub's watcher (`stats/alerts.rs`), within the caller's region.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::{ApiError, ApiState};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/alerts", get(alerts))
}

/// One alert: a day's count in an area and category against its baseline.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "area": "220421", "areaName": "东丰县", "category": "0401", "categoryName": "劳动保障/欠薪",
    "day": "2026-12-01", "count": 12, "baselineMean": 2.1, "baselineSd": 1.3, "statistic": 7.6,
    "threshold": 3.0, "method": "EARS C2", "evidence": "12 matters against 2.1 ± 1.3 a day over the 7 days before a 2-day guard"
}))]
pub struct Alert {
    /// A county's or township's division code.
    pub area: String,
    pub area_name: Option<String>,
    /// Platform category code.
    pub category: String,
    pub category_name: Option<String>,
    /// `YYYY-MM-DD`, Beijing time.
    pub day: String,
    /// Matters received that day.
    pub count: i64,
    pub baseline_mean: f64,
    pub baseline_sd: f64,
    /// The method's statistic for the day.
    pub statistic: f64,
    /// Above this the day is an alert.
    pub threshold: f64,
    /// `EARS C2`, …
    pub method: String,
    /// A sentence a person can check.
    pub evidence: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsReport {
    pub alerts: Vec<Alert>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct Since {
    /// Alerts of the last this many days (30, at most 366).
    pub days: Option<i64>,
}

/// The early warning's alerts of the last days in the caller's region,
/// newest first, each with the figures that raised it.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "screen", params(Since),
    responses((status = 200, body = AlertsReport), (status = 400), (status = 401)))]
pub async fn alerts(
    caller: Caller,
    State(s): State<ApiState>,
    Query(q): Query<Since>,
) -> Result<axum::Json<AlertsReport>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::bad_request("`days` must be 1 to 366"));
    }
    let today = chrono::Utc::now().with_timezone(&crate::ticket::beijing()).date_naive();
    let since = (today - chrono::Duration::days(days - 1)).format("%Y-%m-%d").to_string();
    let stored = s.store.alerts(&since, caller.scope.prefix(), super::MAX_PAGE).await?;
    let alerts = stored
        .into_iter()
        .map(|a| Alert {
            area_name: crate::stats::names::region(&a.area).map(str::to_string),
            category_name: crate::stats::names::category(&a.category).map(str::to_string),
            area: a.area,
            category: a.category,
            day: a.day,
            count: a.count,
            baseline_mean: a.baseline_mean,
            baseline_sd: a.baseline_sd,
            statistic: a.statistic,
            threshold: a.threshold,
            method: a.method,
            evidence: a.evidence,
        })
        .collect();
    Ok(axum::Json(AlertsReport { alerts }))
}
