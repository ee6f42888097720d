//! The platform simulator over real HTTP, as the hub sees it.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{Value, json};
use simulators::platform::{Faults, PlatformSim, ServerHandle, SimConfig, Stats, Window};

const TOKEN: &str = "test-token";

fn ticket(id: &str, revision: i64) -> Value {
    json!({
        "ticketId": id,
        "revision": revision,
        "kind": "complaint",
        "category": "0102",
        "title": "小区路灯不亮",
        "region": {"code": "110101001001", "name": "东华门街道"},
        "status": "new",
        "description": "晚上七点以后整条路都是黑的",
        "attachments": []
    })
}

async fn start(faults: Faults) -> (PlatformSim, ServerHandle) {
    let sim = PlatformSim::new(SimConfig { token: TOKEN.into(), faults });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    (sim, server)
}

/// A client that keeps no connections, so stop/start tests see fresh ones.
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn put_raw(
    base: &str,
    id: &str,
    key: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Result<(StatusCode, reqwest::header::HeaderMap, Value)> {
    let resp = client()
        .put(format!("{base}/api/v1/tickets/{id}"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, headers, body))
}

async fn put(base: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let id = body["ticketId"].as_str().unwrap_or("T-1");
    let (status, _, body) = put_raw(base, id, key, TOKEN, serde_json::to_vec(body).unwrap()).await.unwrap();
    (status, body)
}

#[tokio::test]
async fn created_then_updated() {
    let (sim, server) = start(Faults::default()).await;
    let base = server.base_url();
    let (status, body) = put(&base, "k1", &ticket("T-1", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["revision"], 1);
    let mut t2 = ticket("T-1", 2);
    t2["status"] = json!("dispatched");
    assert_eq!(put(&base, "k2", &t2).await.0, StatusCode::OK);

    let record = sim.ticket("T-1").unwrap();
    assert_eq!(record.revision, 2);
    assert_eq!(record.body["status"], "dispatched");
    assert_eq!(record.body["description"], "晚上七点以后整条路都是黑的");
    let keys: Vec<_> = record.history.iter().map(|c| c.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2"]);
    assert_eq!(sim.tickets(), vec![("T-1".to_owned(), 2)]);
    let stats = sim.stats();
    assert_eq!((stats.requests, stats.applied, stats.created, stats.tickets, stats.revision_gaps), (2, 2, 1, 1, 0));

    // The same over the tool endpoints.
    let c = client();
    let listed: Value = c.get(format!("{base}/sim/tickets")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([{"ticketId": "T-1", "revision": 2}]));
    let one: Value = c.get(format!("{base}/sim/tickets/T-1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["revision"], 2);
    let missing = c.get(format!("{base}/sim/tickets/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let stats_json: Stats = c.get(format!("{base}/sim/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats_json, sim.stats());
    let health = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn repeated_key_gets_the_first_answer() {
    let (sim, server) = start(Faults::default()).await;
    let base = server.base_url();
    let first = put(&base, "k1", &ticket("T-1", 1)).await;
    assert_eq!(first.0, StatusCode::CREATED);
    put(&base, "k2", &ticket("T-1", 2)).await;
    // A replay, even with a different body, gets the very first answer.
    assert_eq!(put(&base, "k1", &ticket("T-1", 1)).await, first);
    assert_eq!(put(&base, "k1", &ticket("T-1", 7)).await, first);
    let stats = sim.stats();
    assert_eq!((stats.duplicate_keys, stats.applied, stats.stale_revisions), (2, 2, 0));
    assert_eq!(sim.ticket("T-1").unwrap().revision, 2);
    server.stop().await;
}

#[tokio::test]
async fn stale_revision_is_409_with_current() {
    let (sim, server) = start(Faults::default()).await;
    let base = server.base_url();
    put(&base, "k1", &ticket("T-1", 1)).await;
    assert_eq!(put(&base, "k3", &ticket("T-1", 3)).await.0, StatusCode::OK);
    for (key, revision) in [("k2", 2), ("k3b", 3)] {
        let (status, body) = put(&base, key, &ticket("T-1", revision)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body, json!({"current": 3}));
    }
    let stats = sim.stats();
    assert_eq!((stats.stale_revisions, stats.revision_gaps, stats.applied), (2, 1, 2));
    server.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_rejected_readably() {
    let faults = Faults { reject_title_contains: Some("测试".into()), ..Faults::default() };
    let (sim, server) = start(faults).await;
    let base = server.base_url();

    let (status, _, body) = put_raw(&base, "T-1", "k0", TOKEN, "not json").await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"), "{body}");

    let mut bad = ticket("T-1", 1);
    bad["kind"] = json!("praise");
    let (status, body) = put(&base, "k1", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "kind");
    assert!(body["error"].as_str().unwrap().contains("\"praise\" is not one of"), "{body}");

    let (status, _, body) =
        put_raw(&base, "T-2", "k2", TOKEN, serde_json::to_vec(&ticket("T-1", 1)).unwrap()).await.unwrap();
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("ticketId")));

    let mut test_title = ticket("T-3", 1);
    test_title["title"] = json!("这是一条测试工单");
    let (status, body) = put(&base, "k3", &test_title).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "title");
    assert!(body["error"].as_str().unwrap().contains("测试"), "{body}");

    // Rejections are remembered with the key, even once the cause is gone.
    sim.set_faults(Faults::default());
    assert_eq!(put(&base, "k3", &test_title).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(put(&base, "k4", &test_title).await.0, StatusCode::CREATED);

    let stats = sim.stats();
    assert_eq!((stats.rejected, stats.duplicate_keys, stats.tickets), (4, 1, 1));
    server.stop().await;
}

#[tokio::test]
async fn missing_key_is_400_and_not_remembered() {
    let (sim, server) = start(Faults::default()).await;
    let resp = client()
        .put(format!("{}/api/v1/tickets/T-1", server.base_url()))
        .bearer_auth(TOKEN)
        .json(&ticket("T-1", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "Idempotency-Key");
    assert_eq!(sim.stats().rejected, 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_token_is_401_and_key_not_remembered() {
    let faults = Faults { unauthorized: vec![Window { start_ms: 3_600_000, duration_ms: 1 }], ..Faults::default() };
    let (sim, server) = start(faults).await;
    let base = server.base_url();
    let body = serde_json::to_vec(&ticket("T-1", 1)).unwrap();
    let (status, headers, _) = put_raw(&base, "T-1", "k1", "wrong", body.clone()).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let no_auth = client()
        .put(format!("{base}/api/v1/tickets/T-1"))
        .header("Idempotency-Key", "k1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);

    // The token revoked for a while, then valid again.
    sim.set_faults(Faults { unauthorized: vec![Window { start_ms: 0, duration_ms: u64::MAX }], ..Faults::default() });
    assert_eq!(put_raw(&base, "T-1", "k1", TOKEN, body.clone()).await.unwrap().0, StatusCode::UNAUTHORIZED);
    sim.set_faults(Faults::default());
    assert_eq!(put_raw(&base, "T-1", "k1", TOKEN, body).await.unwrap().0, StatusCode::CREATED);
    let stats = sim.stats();
    assert_eq!((stats.unauthorized, stats.duplicate_keys, stats.applied), (3, 0, 1));
    server.stop().await;
}

#[tokio::test]
async fn stop_refuses_connections_and_serving_again_keeps_state() {
    let (sim, server) = start(Faults::default()).await;
    let base = server.base_url();
    let addr = server.addr();
    assert_eq!(put(&base, "k1", &ticket("T-1", 1)).await.0, StatusCode::CREATED);

    // A keep-alive connection must not survive the stop either.
    let keep = reqwest::Client::new();
    let ok = keep.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    server.stop().await;
    let err = put_raw(&base, "T-1", "k2", TOKEN, serde_json::to_vec(&ticket("T-1", 2)).unwrap()).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(keep.get(format!("{base}/healthz")).send().await.is_err());

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = sim.serve(listener).await.unwrap();
    assert_eq!(server.base_url(), base);
    // The key and the ticket were kept.
    assert_eq!(put(&base, "k1", &ticket("T-1", 1)).await.0, StatusCode::CREATED);
    assert_eq!(put(&base, "k2", &ticket("T-1", 2)).await.0, StatusCode::OK);
    let stats = sim.stats();
    assert_eq!((stats.duplicate_keys, stats.applied, stats.tickets), (1, 2, 1));
    server.stop().await;
}

#[tokio::test]
async fn stop_aborts_requests_in_flight() {
    let faults = Faults { latency_ms: 5_000, ..Faults::default() };
    let (sim, server) = start(faults).await;
    let base = server.base_url();
    let body = serde_json::to_vec(&ticket("T-1", 1)).unwrap();
    let pending = tokio::spawn(async move { put_raw(&base, "T-1", "k1", TOKEN, body).await });
    // Wait until the request has been processed and is sleeping.
    for _ in 0..100 {
        if sim.stats().applied == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.stats().applied, 1);
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    // The client lost the answer although the change was applied.
    assert!(pending.await.unwrap().is_err());
}

#[tokio::test]
async fn outage_window_is_503_without_retry_after() {
    let faults = Faults { outages: vec![Window { start_ms: 0, duration_ms: 3_600_000 }], ..Faults::default() };
    let (sim, server) = start(faults).await;
    let base = server.base_url();
    let body = serde_json::to_vec(&ticket("T-1", 1)).unwrap();
    let (status, headers, _) = put_raw(&base, "T-1", "k1", TOKEN, body.clone()).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get("retry-after").is_none());
    // Faults can also be replaced over HTTP; the key was not remembered.
    let resp = client().put(format!("{base}/sim/faults")).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(put_raw(&base, "T-1", "k1", TOKEN, body).await.unwrap().0, StatusCode::CREATED);
    let stats = sim.stats();
    assert_eq!((stats.outage_answers, stats.duplicate_keys, stats.requests), (1, 0, 2));
    server.stop().await;
}

#[tokio::test]
async fn throttle_carries_retry_after_in_both_forms() {
    let faults = Faults { throttle_rate: 1.0, retry_after_secs: 2, ..Faults::default() };
    let (sim, server) = start(faults.clone()).await;
    let base = server.base_url();
    let body = serde_json::to_vec(&ticket("T-1", 1)).unwrap();
    let (status, headers, _) = put_raw(&base, "T-1", "k1", TOKEN, body.clone()).await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "2");

    sim.set_faults(Faults { retry_after_http_date: true, ..faults });
    let (status, headers, _) = put_raw(&base, "T-1", "k1", TOKEN, body.clone()).await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let date = httpdate::parse_http_date(headers["retry-after"].to_str().unwrap()).unwrap();
    let wait = date.duration_since(SystemTime::now()).unwrap();
    assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(3), "{wait:?}");

    sim.set_faults(Faults::default());
    assert_eq!(put_raw(&base, "T-1", "k1", TOKEN, body).await.unwrap().0, StatusCode::CREATED);
    assert_eq!(sim.stats().throttled, 2);
    server.stop().await;
}

#[tokio::test]
async fn injected_errors_and_random_rejections() {
    let (sim, server) = start(Faults { error_rate: 1.0, ..Faults::default() }).await;
    let base = server.base_url();
    assert_eq!(put(&base, "k1", &ticket("T-1", 1)).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    sim.set_faults(Faults { reject_rate: 1.0, ..Faults::default() });
    assert_eq!(put(&base, "k1", &ticket("T-1", 1)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    sim.set_faults(Faults::default());
    // Decided per key: the key keeps its 422, a new key goes through.
    assert_eq!(put(&base, "k1", &ticket("T-1", 1)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(put(&base, "k2", &ticket("T-1", 1)).await.0, StatusCode::CREATED);
    let stats = sim.stats();
    assert_eq!((stats.injected_errors, stats.rejected, stats.duplicate_keys), (1, 1, 1));
    server.stop().await;
}

#[tokio::test]
async fn concurrent_puts_of_many_tickets() {
    let (sim, server) = start(Faults::default()).await;
    let base = server.base_url();
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (c, base) = (c.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for revision in 1..=25 {
                let id = format!("T-{n}");
                let resp = c
                    .put(format!("{base}/api/v1/tickets/{id}"))
                    .bearer_auth(TOKEN)
                    .header("Idempotency-Key", format!("{id}-{revision}"))
                    .json(&ticket(&id, revision))
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = sim.stats();
    assert_eq!((stats.requests, stats.applied, stats.tickets, stats.revision_gaps), (200, 200, 8, 0));
    assert!(sim.tickets().iter().all(|(_, r)| *r == 25));
    server.stop().await;
}
