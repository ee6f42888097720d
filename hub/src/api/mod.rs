//! The centre's side of the hub on `HUB_LISTEN`: the admin API (JSON, with
//! an OpenAPI document at `/api/openapi.json`), the live dashboard and
//! Open311, each behind bearer tokens with roles ([`auth`]).
//!
//! Every route takes a [`auth::Caller`], so none answers without a valid
//! token (401) or to a role that may not (403); `/healthz`, `/readyz` and
//! the platform's HMAC-signed callback live in `server.rs` outside it.

pub mod alerts;
pub mod auth;
pub mod courts;
pub mod dashboard;
pub mod deadlines;
pub mod live;
pub mod open311;
pub mod paging;
pub mod repairs;
pub mod screen;
pub mod sources;
pub mod stats;
pub mod tickets;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::app::readiness::Health;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use auth::ApiTokens;

/// Requests larger than this are refused (413): the API takes no uploads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request that takes longer is answered 408 (SSE streams excepted).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Lists answer at most this many rows per page.
pub const MAX_PAGE: i64 = 500;

/// What the routes share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Open311 answers without a token.
    pub open311_public: bool,
    /// The mappings and intake settings a quarantine replay maps with
    /// (the same as intake's), and the configured sources, for repairs.
    pub mappings: Arc<crate::mapping::Mappings>,
    pub intake: crate::intake::IntakeSettings,
    pub sources: Arc<sources::SourcesView>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Integration hub admin API", description = "Statistics, tickets, repairs and the live screen of the social-governance integration hub. Every route needs `Authorization: Bearer TOKEN` (roles viewer, operator, admin; a token may be scoped to a county or township)."),
    paths(stats::figures, stats::departments, stats::today,
        tickets::search, tickets::show,
        repairs::quarantine_list, repairs::quarantine_show, repairs::quarantine_replay,
        repairs::dead_letter_list, repairs::dead_letter_show, repairs::dead_letter_replay,
        repairs::callback_list, repairs::callback_show, repairs::callback_replay, repairs::callback_dismiss,
        repairs::duplicate_list, repairs::duplicate_confirm, repairs::duplicate_reject,
        sources::sources,
        open311::services_json, open311::services_xml, open311::requests_json, open311::requests_xml, open311::one_request,
        deadlines::deadlines, courts::pending, alerts::alerts, live::live,
    ),
    components(schemas(
        stats::FiguresReport, stats::Row, stats::DepartmentsReport, stats::TodayReport, stats::Count,
        crate::stats::figures::Figures, crate::stats::figures::Ranked,
        tickets::TicketPage, tickets::TicketItem, tickets::TicketDetail, tickets::SourceItem, tickets::RevisionItem,
        tickets::HistoryItem, tickets::FeedbackItem, tickets::DuplicateItem,
        repairs::Replay, repairs::QuarantinePage, repairs::QuarantineItem, repairs::QuarantineDetail,
        repairs::DeadLetterPage, repairs::DeadLetterItem, repairs::DeadLetterDetail, repairs::DeadLetterFix,
        repairs::CallbackPage, repairs::CallbackItem, repairs::CallbackDetail, repairs::DuplicatePage, repairs::Decision,
        sources::SourcesReport, sources::SourceReport, sources::LastRecordReport, sources::SinceStart, sources::Totals,
        open311::Service, open311::ServiceRequest, open311::Open311Error,
        screen::Place, deadlines::DeadlinesReport, deadlines::DueItem, courts::PendingReport, courts::PendingItem,
        alerts::AlertsReport, alerts::Alert, live::LiveEvent,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The API's routes, with the tokens they check, limits and timeouts.
pub fn router(state: ApiState, tokens: Arc<ApiTokens>) -> Router {
    let api = Router::new()
        .route("/api/openapi.json", axum::routing::get(openapi))
        .merge(stats::routes())
        .merge(tickets::routes().merge(repairs::routes()).merge(sources::routes()))
        .merge(open311::routes())
        .merge(deadlines::routes().merge(courts::routes()).merge(alerts::routes()).merge(dashboard::routes()))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A stream, outside the timeout; it ends when the hub stops.
        .merge(live::routes());
    api.layer(axum::Extension(tokens)).with_state(state)
}

/// The OpenAPI document, generated from the handlers' annotations.
async fn openapi(_caller: auth::Caller) -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// An error as the API answers it: a status and a sentence, never a
/// database's own text (which may quote a citizen's data).
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, m),
            StoreError::Invalid(m) => ApiError(StatusCode::CONFLICT, m),
            other => {
                tracing::error!(error = %crate::pii::scrub(&other.to_string()), "the admin API could not read the store");
                ApiError(StatusCode::SERVICE_UNAVAILABLE, "the store did not answer; try again".into())
            }
        }
    }
}

impl From<auth::Refused> for ApiError {
    fn from(r: auth::Refused) -> ApiError {
        let (status, message) = r.status_and_message();
        ApiError(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({"error": self.1}))).into_response()
    }
}
