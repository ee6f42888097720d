//! HTTP intake: a source POSTs a record and gets the answer after the
//! hub's commit, so a `200` is the acknowledgement and anything else (or no
//! answer at all) means "send it again".
//!
//! `POST /records` with `Authorization: Bearer TOKEN`, the payload as body,
//! `Content-Type` (JSON or XML, with an optional `charset`), and optionally
//! `X-Record-Id` and `X-Record-Version`. The answer is JSON: `{"outcome":
//! "created", "ticketId": "…"}`; `401` without a token the source accepts;
//! `413` for a body over the source's limit (nothing of it is stored);
//! `408` when the request took too long; `503` when the hub could not
//! store it.
//!
//! Anyone who can reach the port could otherwise change a real ticket by
//! posting `version + 1`: a source needs tokens unless it listens on a
//! loopback address and is explicitly open ([`Access`]). Connections are
//! capped, headers must arrive within `header_timeout` and the whole
//! request within `request_timeout`, so slow or many clients cannot hold
//! the hub's memory or tasks.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::BoxFuture;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::{CancellationToken, Connector, ConnectorError, ContentType, Intake, IntakeError, Outcome, RawRecord};

/// Who may post to a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Requests must carry one of these bearer tokens.
    Tokens(Tokens),
    /// No token asked. Only on a loopback address (the demo, tests):
    /// [`HttpConfig::new`] refuses it anywhere else.
    OpenOnLoopback,
}

/// The bearer tokens a source accepts: several at once, so that a new one
/// can be handed out before the old one is withdrawn. Only their SHA-256
/// digests are kept, and a presented token is hashed and compared with
/// each of them in constant time, so neither the comparison's time nor a
/// memory dump gives a token away.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens(Arc<[[u8; 32]]>);

/// Shorter tokens can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

impl Tokens {
    pub fn new<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> Result<Tokens, String> {
        let mut digests = Vec::new();
        for (i, token) in tokens.into_iter().enumerate() {
            let token = token.as_ref();
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(format!("token {} is shorter than {MIN_TOKEN_CHARS} characters", i + 1));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("token {} must be printable ASCII without spaces", i + 1));
            }
            digests.push(Sha256::digest(token.as_bytes()).into());
        }
        if digests.is_empty() {
            return Err("no token given".into());
        }
        Ok(Tokens(digests.into()))
    }

    /// Whether `presented` is one of the tokens. Every digest is compared,
    /// whichever matches.
    pub fn admit(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.iter().fold(subtle::Choice::from(0), |found, t| found | t.ct_eq(&digest)).into()
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} hidden)", self.0.len())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    listen: SocketAddr,
    access: Access,
    /// Larger bodies are answered `413` and not stored (the hub sets the
    /// mapping's `max_bytes`, at most `intake.max_payload_bytes`).
    pub max_body_bytes: usize,
    /// A connection that has not sent a request's headers in this time is closed.
    pub header_timeout: Duration,
    /// A request not answered in this time (body and commit) gets `408`;
    /// if its record was committed after all, the source's resend is a duplicate.
    pub request_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl HttpConfig {
    /// Defaults: bodies up to 1 MiB, headers within 10 s, requests within
    /// 30 s, 256 connections.
    pub fn new(listen: SocketAddr, access: Access) -> Result<HttpConfig, String> {
        if access == Access::OpenOnLoopback && !listen.ip().is_loopback() {
            return Err(format!(
                "an open source (no tokens) may listen only on a loopback address, not {listen}: anyone who reaches it could change tickets"
            ));
        }
        Ok(HttpConfig {
            listen,
            access,
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
        })
    }

    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    pub fn access(&self) -> &Access {
        &self.access
    }
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
    access: Access,
    max_body_bytes: usize,
    request_timeout: Duration,
}

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
            let listener = TcpListener::bind(self.config.listen)
                .await
                .map_err(|e| fail(format!("cannot listen on {}: {e}", self.config.listen)))?;
            tracing::info!(source = %self.system, listen = %self.config.listen, "http intake listening");
            let c = &self.config;
            let app = Router::new().route("/records", post(receive)).with_state(AppState {
                system: self.system.clone(),
                intake,
                access: c.access.clone(),
                max_body_bytes: c.max_body_bytes,
                request_timeout: c.request_timeout,
            });
            serve(listener, app, c.header_timeout, c.max_connections, shutdown).await;
            Ok(())
        })
    }
}

/// Serves connections itself (not `axum::serve`) for what that cannot do:
/// a header timeout and a cap on connections. On `shutdown` it stops
/// accepting, closes idle connections and lets requests in flight get their
/// commit (each bounded by the request timeout).
async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        let accept = async {
            let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
            (slot, listener.accept().await)
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            (slot, accepted) = accept => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    let stop = shutdown.clone();
                    conns.spawn(async move {
                        let _slot = slot;
                        let mut conn = pin!(http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(header_timeout)
                            .serve_connection(TokioIo::new(stream), service));
                        // Connection errors (resets, timeouts, bad requests) are the client's business.
                        tokio::select! {
                            _ = conn.as_mut() => return,
                            _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
                        }
                        let _ = conn.await;
                    });
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if let Access::Tokens(tokens) = &state.access {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let message = match presented {
            None => Some("send `Authorization: Bearer TOKEN` with a token of this source"),
            Some(token) if !tokens.admit(token) => Some("the token is not one of this source's"),
            Some(_) => None,
        };
        if let Some(message) = message {
            tracing::debug!(source = %state.system, "refused a request without a valid token");
            let mut response = refuse(StatusCode::UNAUTHORIZED, message.into());
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    let timeout = state.request_timeout;
    match tokio::time::timeout(timeout, take(state, headers, body)).await {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than {timeout:?}; send it again (a record stored meanwhile comes out a duplicate)"
            ),
        ),
    }
}

/// Reads the body within the source's limit and hands the record over.
async fn take(state: AppState, headers: HeaderMap, body: Body) -> Response {
    let limit = state.max_body_bytes;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {limit} bytes, the limit of source `{}`; nothing of it was stored",
                state.system
            ),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let mut data = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) if data.len() + chunk.len() > limit => return too_large(),
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")),
        }
    }
    let body: Bytes = data.freeze();
    let record = match request_record(&state.system, &headers, body) {
        Ok(r) => r,
        Err(Refusal { status, error }) => return refuse(status, error),
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
    fn tokens_admit_each_of_theirs_and_nothing_else() {
        let t = Tokens::new(["old-token-0123456789", "new-token-9876543210"]).unwrap();
        assert!(t.admit("old-token-0123456789") && t.admit("new-token-9876543210"));
        assert!(!t.admit("old-token-012345678") && !t.admit("") && !t.admit("new-token-9876543210 "));
        assert_eq!(format!("{t:?}"), "Tokens(2 hidden)");
        assert!(Tokens::new(Vec::<String>::new()).is_err());
        assert!(Tokens::new(["short"]).unwrap_err().contains("shorter than 16"));
        assert!(Tokens::new(["with a space in the middle"]).is_err());
    }

    #[test]
    fn an_open_source_listens_only_on_loopback() {
        assert!(HttpConfig::new("127.0.0.1:9401".parse().unwrap(), Access::OpenOnLoopback).is_ok());
        assert!(HttpConfig::new("[::1]:9401".parse().unwrap(), Access::OpenOnLoopback).is_ok());
        let err = HttpConfig::new("0.0.0.0:9401".parse().unwrap(), Access::OpenOnLoopback).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let tokens = Access::Tokens(Tokens::new(["a-long-enough-token"]).unwrap());
        assert!(HttpConfig::new("0.0.0.0:9401".parse().unwrap(), tokens).is_ok());
    }

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
