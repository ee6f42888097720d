//! `/api/v1/deadlines`: the open matters past their deadline and those
//! whose reminder has gone out (due soon), within the caller's region,
//! for the centre's screen. Codes with names; no personal data.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::screen::{Limit, Place, beijing_time};
use super::{ApiError, ApiState};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/deadlines", get(deadlines))
}

/// One matter near or past its deadline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DueItem {
    #[serde(flatten)]
    pub place: Place,
    /// RFC 3339, Beijing time.
    pub due_at: String,
    /// When the reminder went out.
    pub reminded_at: Option<String>,
    /// When the hub marked it overdue.
    pub overdue_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadlinesReport {
    /// The region listed; none for the whole city.
    pub region: Option<String>,
    /// Past their deadline and not resolved, the longest overdue first.
    pub overdue: Vec<DueItem>,
    /// Reminded, not yet overdue, the soonest due first.
    pub due_soon: Vec<DueItem>,
}

/// Overdue and due-soon matters in the caller's region.
#[utoipa::path(get, path = "/api/v1/deadlines", params(Limit), tag = "screen",
    responses((status = 200, body = DeadlinesReport), (status = 401)))]
pub async fn deadlines(
    caller: Caller,
    State(s): State<ApiState>,
    Query(limit): Query<Limit>,
) -> Result<axum::Json<DeadlinesReport>, ApiError> {
    let region = caller.scope.prefix().map(str::to_string);
    let rows = s.store.due_tickets_in(region.as_deref(), limit.rows()).await?;
    let (mut overdue, mut due_soon) = (Vec::new(), Vec::new());
    for d in rows {
        let item = DueItem {
            place: Place::of(&d.placed),
            due_at: beijing_time(d.due_at),
            reminded_at: d.reminded_at.map(beijing_time),
            overdue_at: d.overdue_at.map(beijing_time),
        };
        if d.overdue_at.is_some() { overdue.push(item) } else { due_soon.push(item) }
    }
    Ok(axum::Json(DeadlinesReport { region, overdue, due_soon }))
}
