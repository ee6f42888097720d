//! `/api/v1/courts/pending`: agreed court mediation cases still without
//! their legal document (due the same day), within the caller's region.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::screen::{Limit, Place, beijing_time};
use super::{ApiError, ApiState};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/courts/pending", get(pending))
}

/// One agreed case waiting for its document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingItem {
    #[serde(flatten)]
    pub place: Place,
    /// The court's case number (吉0402民诉前调…): no party's name.
    pub case_no: String,
    /// When the hub saw it agreed, RFC 3339, Beijing time.
    pub agreed_at: String,
    /// When the day's cut-off passed without a document, if it has.
    pub alarmed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingReport {
    pub region: Option<String>,
    /// The oldest agreement first.
    pub pending: Vec<PendingItem>,
}

/// Agreed cases without their legal document, in the caller's region.
#[utoipa::path(get, path = "/api/v1/courts/pending", params(Limit), tag = "screen",
    responses((status = 200, body = PendingReport), (status = 401)))]
pub async fn pending(
    caller: Caller,
    State(s): State<ApiState>,
    Query(limit): Query<Limit>,
) -> Result<axum::Json<PendingReport>, ApiError> {
    let region = caller.scope.prefix().map(str::to_string);
    let rows = s.store.pending_documents_in(region.as_deref(), limit.rows()).await?;
    let pending = rows
        .iter()
        .map(|p| PendingItem {
            place: Place::of(&p.placed),
            case_no: p.case_no.clone(),
            agreed_at: beijing_time(p.agreed_at),
            alarmed_at: p.alarmed_at.map(beijing_time),
        })
        .collect();
    Ok(axum::Json(PendingReport { region, pending }))
}
