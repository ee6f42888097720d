//! `POST /api/v1/platform/events`: verified, kept, applied, then answered.
//!
//! - 401 when the signature does not verify or the timestamp is more than
//!   300 s away: nothing is applied, nothing of the body is logged;
//! - 200 once the callback is durably kept (applied, stale, or seen before);
//! - 422 for an unknown ticket or status, kept for a person (`hub callbacks`);
//! - 503 while no secret is configured or the store does not answer: the
//!   platform keeps the callback and sends it again.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::verify::Secrets;
use crate::metrics::Metrics;
use crate::store::{CallbackOutcome, Store};

/// A status event is a few hundred bytes; a mediation note a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A slow sender is cut off: the platform sends its callbacks whole.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Event ids are the platform's UUIDs; anything much longer is not one.
const MAX_EVENT_ID_BYTES: usize = 128;

#[derive(Clone)]
pub struct Callbacks {
    pub store: Store,
    pub secrets: Arc<Secrets>,
    pub metrics: Arc<Metrics>,
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

pub async fn events(State(c): State<Callbacks>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(REQUEST_TIMEOUT, axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)).await
    {
        Err(_) => return answer(StatusCode::REQUEST_TIMEOUT, json!({"error": "the body did not arrive in time"})),
        Ok(Err(_)) => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": format!("a callback body is at most {MAX_BODY_BYTES} bytes")}),
            );
        }
        Ok(Ok(b)) => b,
    };
    if c.secrets.is_empty() {
        tracing::error!(
            "a platform callback came and no secret is configured (HUB_PLATFORM_SECRET): answered 503, the platform keeps it"
        );
        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "callbacks are not configured on this hub"}));
    }
    let headers = &parts.headers;
    let now = chrono::Utc::now().timestamp();
    if let Err(refused) = c.secrets.verify(header(headers, "x-timestamp"), header(headers, "x-signature"), &body, now) {
        c.metrics.callback("refused");
        tracing::warn!(reason = %refused, "platform callback refused (401)");
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "the signature or the timestamp does not verify"}));
    }
    let Some(event_id) = header(headers, "x-event-id")
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= MAX_EVENT_ID_BYTES && !id.chars().any(char::is_control))
    else {
        c.metrics.callback("refused");
        return answer(StatusCode::BAD_REQUEST, json!({"error": "X-Event-Id is missing or not an event id"}));
    };
    match c.store.take_signed_callback(event_id, header(headers, "x-timestamp"), &body).await {
        Ok(outcome) => {
            c.metrics.callback(outcome.label());
            tracing::debug!(event_id, outcome = outcome.label(), "platform callback taken");
            match outcome {
                CallbackOutcome::Held { reason } | CallbackOutcome::Duplicate { held: Some(reason) } => {
                    tracing::warn!(event_id, %reason, "platform callback kept for a person (422): see hub callbacks list");
                    answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": reason}))
                }
                other => answer(StatusCode::OK, json!({"outcome": other.label()})),
            }
        }
        Err(e) => {
            c.metrics.callback("failed");
            tracing::error!(event_id, error = %e, "platform callback not stored; answered 503, the platform sends it again");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "the hub could not store the callback; send it again"}),
            )
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
