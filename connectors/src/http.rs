//! HTTP intake: a source POSTs a record and gets the answer after the
//! hub's commit, so a `200` is the acknowledgement and anything else (or no
//! answer at all) means "send it again".
//!
//! `POST /records` with the payload as body, `Content-Type` (JSON or XML,
//! with an optional `charset`), and optionally `X-Record-Id` and
//! `X-Record-Version`. The answer is JSON: `{"outcome": "created",
//! "ticketId": "…"}`; `503` when the hub could not store it.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::json;

use crate::{CancellationToken, Connector, ConnectorError, ContentType, Intake, IntakeError, Outcome, RawRecord};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

pub struct HttpConnector {
    system: String,
    config: HttpConfig,
}

impl HttpConnector {
    pub fn new(system: impl Into<String>, config: HttpConfig) -> Self {
        HttpConnector { system: system.into(), config }
    }
}

#[derive(Clone)]
struct AppState {
    system: String,
    intake: Intake,
}

/// Bodies above this are refused by the server itself; the hub's own
/// (smaller, configurable) limit quarantines what lies between.
const HARD_BODY_LIMIT: usize = 64 * 1024 * 1024;

impl Connector for HttpConnector {
    fn name(&self) -> &str {
        &self.system
    }

    fn run(
        self: Box<Self>,
        intake: Intake,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), ConnectorError>> {
        Box::pin(async move {
            let fail = |message: String| ConnectorError { connector: self.system.clone(), message };
            let listener = tokio::net::TcpListener::bind(self.config.listen)
                .await
                .map_err(|e| fail(format!("cannot listen on {}: {e}", self.config.listen)))?;
            tracing::info!(source = %self.system, listen = %self.config.listen, "http intake listening");
            let app = Router::new()
                .route("/records", post(receive))
                .layer(DefaultBodyLimit::max(HARD_BODY_LIMIT))
                .with_state(AppState { system: self.system.clone(), intake });
            // Graceful: stop accepting, let requests in flight get their commit.
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
                .map_err(|e| fail(format!("server failed: {e}")))
        })
    }
}

/// Why a request was refused before intake: its status and what to tell
/// the sender.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub error: String,
}

/// The record a `POST /records` carries, from its headers and body, or why
/// the request is refused before intake (an unsupported content type, a
/// version that is no number). Whatever the body holds is the mapping's to
/// judge: it is handed over as it came.
pub fn request_record(system: &str, headers: &HeaderMap, body: Bytes) -> Result<RawRecord, Refusal> {
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let Some(content_type) = ContentType::from_mime(mime) else {
        return Err(Refusal {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error: format!("unsupported content type `{mime}`; send application/json or application/xml"),
        });
    };
    let mut record = RawRecord::new(system.to_string(), content_type, body);
    if let Some(charset) = charset(mime) {
        record = record.with_encoding(charset);
    }
    let header_text =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(id) = header_text("x-record-id") {
        let version = match header_text("x-record-version").map(str::parse::<i64>) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                return Err(Refusal {
                    status: StatusCode::BAD_REQUEST,
                    error: "X-Record-Version must be an integer".into(),
                });
            }
        };
        record = record.with_id(id, version).with_meta("x-record-id", id);
    }
    Ok(record)
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let record = match request_record(&state.system, &headers, body) {
        Ok(r) => r,
        Err(Refusal { status, error }) => return (status, axum::Json(json!({ "error": error }))).into_response(),
    };
    match state.intake.submit(record).await {
        Ok(outcome) => (StatusCode::OK, axum::Json(outcome_json(&outcome))).into_response(),
        Err(e @ IntakeError::ShuttingDown) => {
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], axum::Json(json!({"error": e.to_string()})))
                .into_response()
        }
        Err(e @ (IntakeError::Store(_) | IntakeError::Unsupported)) => {
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], axum::Json(json!({"error": e.to_string()})))
                .into_response()
        }
    }
}

fn charset(mime: &str) -> Option<String> {
    mime.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn outcome_json(outcome: &Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Created { ticket_id } => json!({"outcome": "created", "ticketId": ticket_id}),
        Outcome::Updated { ticket_id } => json!({"outcome": "updated", "ticketId": ticket_id}),
        Outcome::Duplicate => json!({"outcome": "duplicate"}),
        Outcome::Stale => json!({"outcome": "stale"}),
        Outcome::Quarantined { reason } => json!({"outcome": "quarantined", "reason": reason}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(charset("application/json; charset=GB18030").as_deref(), Some("GB18030"));
        assert_eq!(charset("application/json"), None);
    }

    #[test]
    fn what_a_request_carries_or_why_it_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json; charset=gb18030".parse().unwrap());
        h.insert("x-record-id", " LY-1 ".parse().unwrap());
        h.insert("x-record-version", "3".parse().unwrap());
        let r = request_record("canon", &h, Bytes::from_static(b"{}")).unwrap();
        assert_eq!(
            (r.record_id.as_deref(), r.version, r.encoding.as_deref()),
            (Some("LY-1"), Some(3), Some("gb18030"))
        );
        h.insert("x-record-version", "three".parse().unwrap());
        assert_eq!(request_record("canon", &h, Bytes::new()).unwrap_err().status, StatusCode::BAD_REQUEST);
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(request_record("canon", &h, Bytes::new()).unwrap_err().status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
