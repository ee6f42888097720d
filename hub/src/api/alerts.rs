//! `/api/v1/alerts`: the early warning's alerts, a day's count in an area
//! and category well above its baseline. A stub for now, answering no
//! alerts: the detector comes later and keeps [`Alert`]'s shape, which
//! the screen already shows.

use axum::Router;
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

/// The early warning's current alerts in the caller's region (none yet).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "screen",
    responses((status = 200, body = AlertsReport), (status = 401)))]
pub async fn alerts(_caller: Caller) -> Result<axum::Json<AlertsReport>, ApiError> {
    Ok(axum::Json(AlertsReport { alerts: Vec::new() }))
}
