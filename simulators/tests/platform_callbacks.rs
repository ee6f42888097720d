//! The platform simulator's callbacks against a stand-in hub that answers
//! as the hub does (401 for a bad signature, 503 now and then, `duplicate`
//! for an event id seen before, `stale` for an older `at`, `reopened` for
//! a frown), so that the sender's retries and tally are checked without
//! building the hub.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use simulators::platform::callbacks::sign::sign;
use simulators::platform::{CallbackConfig, PlatformSim, SimConfig};

const SECRET: &str = "callback-test-secret";

#[derive(Default)]
struct Hub {
    seen: HashSet<String>,
    last_at: HashMap<String, String>,
    requests: u64,
    /// (ticket, status) of every event applied.
    applied: Vec<(String, String)>,
}

async fn events(State(hub): State<Arc<Mutex<Hub>>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut hub = hub.lock().unwrap();
    hub.requests += 1;
    if h("x-signature") != sign(SECRET.as_bytes(), &h("x-timestamp"), &body) {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    // Every fifth request finds the store busy: the platform sends it again.
    if hub.requests % 5 == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "{}".into());
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    if !hub.seen.insert(h("x-event-id")) {
        return (StatusCode::OK, json!({"outcome": "duplicate"}).to_string());
    }
    let (ticket, at) = (event["ticketId"].as_str().unwrap().to_string(), event["at"].as_str().unwrap().to_string());
    if hub.last_at.get(&ticket).is_some_and(|last| &at < last) {
        return (StatusCode::OK, json!({"outcome": "stale"}).to_string());
    }
    hub.last_at.insert(ticket.clone(), at);
    hub.applied.push((ticket, event["status"].as_str().unwrap().to_string()));
    let outcome = if event["evaluation"]["result"] == "unsatisfied" { "reopened" } else { "applied" };
    (StatusCode::OK, json!({"outcome": outcome}).to_string())
}

fn ticket(id: &str, case_no: Option<&str>) -> Value {
    let mut t = json!({
        "ticketId": id, "revision": 1, "kind": "complaint", "category": "0102", "title": "小区路灯不亮",
        "region": {"code": "220402002000", "name": "南康街道"}, "status": "new", "description": "晚上整条路都是黑的",
    });
    if let Some(no) = case_no {
        t["court"] = json!({"caseNo": no, "status": "MEDIATING"});
    }
    t
}

#[tokio::test]
async fn every_event_is_sent_until_taken_and_the_faults_are_counted() {
    let hub = Arc::new(Mutex::new(Hub::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/api/v1/platform/events", post(events)).with_state(hub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = PlatformSim::new(SimConfig::new("t"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let mut config = CallbackConfig::new(format!("http://{addr}"), SECRET);
    config.step = Duration::from_millis(20);
    config.urge_share = 1.0;
    config.out_of_order_share = 0.5;
    config.duplicate_share = 0.3;
    config.rate_share = 1.0;
    config.unsatisfied_share = 0.5;
    config.reopen_wait = Duration::from_millis(100);
    let callbacks = sim.send_callbacks(config).unwrap();

    let client = reqwest::Client::new();
    for n in 0..12 {
        let id = format!("T-{n}");
        let case_no = (n % 4 == 0).then(|| format!("(2024)吉0402民诉前调{n}号"));
        let r = client
            .put(format!("{}/api/v1/tickets/{id}", server.base_url()))
            .bearer_auth("t")
            .header("idempotency-key", format!("k-{n}"))
            .json(&ticket(&id, case_no.as_deref()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // An update is no new ticket: no second lifecycle.
    let mut again = ticket("T-0", None);
    again["revision"] = json!(2);
    let r = client
        .put(format!("{}/api/v1/tickets/T-0", server.base_url()))
        .bearer_auth("t")
        .header("idempotency-key", "k-again")
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (stats, applied) = callbacks.finish(Duration::from_secs(30)).await;
    assert_eq!(stats.tickets, 12, "{stats:?}");
    assert_eq!((stats.held, stats.abandoned, stats.refused), (0, 0, 0), "{stats:?}");
    assert_eq!((stats.forged_refused, stats.forged_accepted), (1, 0), "{stats:?}");
    assert!(stats.retried > 0, "the 503s were sent again: {stats:?}");
    assert_eq!(stats.duplicates, stats.repeats, "{stats:?}");
    assert_eq!(stats.stale, stats.late, "{stats:?}");
    assert!(stats.late > 0 && stats.repeats > 0 && stats.reopened > 0, "{stats:?}");
    assert_eq!(stats.mediations, 3, "one resolution with an outcome per court case: {stats:?}");
    assert_eq!(stats.by_status.values().sum::<u64>(), stats.events);
    assert_eq!(stats.applied + stats.stale, stats.events, "{stats:?}");
    // A frown is followed by a second round once the matter is reopened:
    // here no revision comes, so the round starts after the wait.
    assert!(stats.by_status["dispatched"] > 12, "{stats:?}");

    let hub_applied = hub.lock().unwrap().applied.len();
    assert_eq!(applied.len() as u64, stats.applied);
    assert_eq!(hub_applied, applied.len(), "the stand-in applied what the sender was told it did");
    for e in &applied {
        assert!(e.at_ms > 1_700_000_000_000);
    }
    server.stop().await;
}
