//! HTTP surface: the platform's ticket endpoint and the `/sim/*` tool endpoints.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Serialize;
use serde_json::json;

use super::faults::{Faults, Injected};
use super::state::{Answer, Put, bump};
use super::validate::{self, Rejection};
use super::{PlatformSim, Shared};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/tickets/{ticket_id}", put(put_ticket))
        .route("/sim/stats", get(stats))
        .route("/sim/tickets", get(list_tickets))
        .route("/sim/tickets/{ticket_id}", get(get_ticket))
        .route("/sim/faults", get(get_faults).put(put_faults))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(shared)
}

async fn put_ticket(
    State(shared): State<Arc<Shared>>,
    Path(ticket_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, delay) = handle_put(&shared, &ticket_id, &headers, body);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    respond(answer)
}

/// Everything a PUT does except waiting: synchronous, so the thread-local RNG
/// never lives across an await.
fn handle_put(shared: &Shared, ticket_id: &str, headers: &HeaderMap, body: Bytes) -> (Answer, Duration) {
    let c = &shared.store.counters;
    bump(&c.requests);
    let faults = shared.faults();
    let now_ms = shared.now_ms();
    let mut rng = rand::rng();
    let delay = faults.roll_delay(&mut rng);

    if !authorized(headers, &shared.token) || faults.unauthorized_at(now_ms) {
        bump(&c.unauthorized);
        return (Answer::json(401, &json!({"error": "missing or invalid bearer token"})), delay);
    }
    match faults.roll(now_ms, &mut rng) {
        Injected::None => {}
        Injected::Outage => {
            bump(&c.outage_answers);
            let body = json!({"error": "the platform is temporarily unavailable (simulated outage)"});
            return (Answer::json(503, &body), delay);
        }
        Injected::Throttle(retry_after) => {
            bump(&c.throttled);
            let mut answer = Answer::json(429, &json!({"error": "too many requests, retry later"}));
            answer.retry_after = Some(retry_after);
            return (answer, delay);
        }
        Injected::Error => {
            bump(&c.injected_errors);
            return (Answer::json(500, &json!({"error": "internal error (simulated)"})), delay);
        }
    }
    let Some(key) = idempotency_key(headers) else {
        bump(&c.rejected);
        let r = Rejection {
            status: 400,
            error: "the Idempotency-Key header is required (visible ASCII, not empty)".into(),
            field: "Idempotency-Key",
        };
        return (Answer::rejected(&r), delay);
    };

    let checked = validate::check(ticket_id, &body);
    if let Some(forced) = checked.as_ref().ok().and_then(|c| {
        faults.answer_by_title.iter().find(|a| !a.title_contains.is_empty() && c.title.contains(&a.title_contains))
    }) {
        bump(&c.forced_answers);
        let body = json!({"error": format!("answered {} for titles containing \"{}\" (simulated)", forced.status, forced.title_contains)});
        return (Answer::json(forced.status, &body), delay);
    }
    let reject = checked.as_ref().ok().and_then(|c| extra_rejection(&faults, &c.title, &mut rng));
    let reported = shared.reports_tickets().then(|| body.clone());
    let answer = shared.store.put(Put { ticket_id, key, checked, body, reject, now_ms });
    if let Some(body) = reported
        && answer.status == 201
    {
        shared.ticket_accepted(ticket_id, &body);
    }
    (answer, delay)
}

/// The fault-driven `422`s: a forbidden title, or a random rejection.
fn extra_rejection(faults: &Faults, title: &str, rng: &mut impl rand::Rng) -> Option<Rejection> {
    // An empty needle would reject everything, which is never what was meant.
    if let Some(needle) = faults.reject_title_contains.as_deref().filter(|n| !n.is_empty())
        && title.contains(needle)
    {
        return Some(Rejection {
            status: 422,
            error: format!("the title contains \"{needle}\", which the platform does not accept"),
            field: "title",
        });
    }
    faults.roll_reject(rng).then(|| Rejection {
        status: 422,
        error: "the platform rejected this ticket (simulated random rejection)".into(),
        field: "body",
    })
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t.trim() == token)
}

fn idempotency_key(headers: &HeaderMap) -> Option<&str> {
    let key = headers.get("idempotency-key")?.to_str().ok()?.trim();
    (!key.is_empty()).then_some(key)
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, Body::from(answer.body)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = answer.retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

fn sim(shared: Arc<Shared>) -> PlatformSim {
    PlatformSim { shared }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(sim(shared).stats()).into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    ticket_id: String,
    revision: i64,
}

async fn list_tickets(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<Listed> =
        sim(shared).tickets().into_iter().map(|(ticket_id, revision)| Listed { ticket_id, revision }).collect();
    axum::Json(list).into_response()
}

async fn get_ticket(State(shared): State<Arc<Shared>>, Path(ticket_id): Path<String>) -> Response {
    match sim(shared).ticket(&ticket_id) {
        Some(record) => axum::Json(record).into_response(),
        None => respond(Answer::json(404, &json!({"error": format!("no ticket \"{ticket_id}\"")}))),
    }
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(sim(shared).faults()).into_response()
}

async fn put_faults(State(shared): State<Arc<Shared>>, axum::Json(faults): axum::Json<Faults>) -> Response {
    tracing::info!(?faults, "faults replaced");
    shared.set_faults(faults.clone());
    axum::Json(faults).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "t"));
        for (value, ok) in [
            ("Bearer t", true),
            ("bearer t", true),
            ("Bearer  t ", true),
            ("Bearer x", false),
            ("Basic t", false),
            ("t", false),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(authorized(&h, "t"), ok, "{value}");
        }
    }

    #[test]
    fn title_rule_ignores_empty_needle() {
        let mut rng = rand::rng();
        let mut f = Faults { reject_title_contains: Some(String::new()), ..Faults::default() };
        assert!(extra_rejection(&f, "anything", &mut rng).is_none());
        f.reject_title_contains = Some("测试".into());
        let r = extra_rejection(&f, "这是测试工单", &mut rng).unwrap();
        assert_eq!((r.status, r.field), (422, "title"));
    }
}
