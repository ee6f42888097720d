//! The platform's status callbacks through the real `hub` binary over real
//! HTTP: signed, repeated, forged, stale, out of order, for an unknown
//! ticket, and a frown that sends the matter back to the platform.

use std::time::Duration;

use e2e::*;
use hub::callbacks::verify::sign;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};

const SECRET: &str = "callback-secret-for-tests-0001";

fn config(dir: &std::path::Path, db_url: &str, platform: &str, source: u16, endpoint: u16) -> std::path::PathBuf {
    let path = dir.join("hub.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
url = "{db_url}"

[platform]
url = "{platform}"
token = "test-token"
secrets = ["{SECRET}"]

[delivery]
retry_initial = "100ms"
retry_max = "1s"

[server]
listen = "127.0.0.1:{endpoint}"

[[sources]]
name = "canon"
mapping = "canonical"
transport = "http"
listen = "127.0.0.1:{source}"
open = true
"#
        ),
    )
    .unwrap();
    path
}

/// Posts a callback as the platform does; returns the status code.
async fn post(client: &reqwest::Client, endpoint: u16, event_id: &str, body: &str, secret: &str, ts: i64) -> u16 {
    let ts = ts.to_string();
    client
        .post(format!("http://127.0.0.1:{endpoint}/api/v1/platform/events"))
        .header("content-type", "application/json")
        .header("x-event-id", event_id)
        .header("x-timestamp", &ts)
        .header("x-signature", sign(secret.as_bytes(), &ts, body.as_bytes()))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_verified_applied_once_and_a_frown_reaches_the_platform() {
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-callbacks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig { token: "test-token".into(), faults: Faults::default() });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let (source, endpoint) = (free_port(), free_port());
    let cfg = config(&dir, &db.url, &server.base_url(), source, endpoint);
    let mut hub = HubProcess::start(&cfg);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    let m = &matters(51, 1, "CALLBACK")[0];
    let answer = send_until_acknowledged(&client, &format!("http://127.0.0.1:{source}/records"), m.payload(1)).await;
    let ticket_id = answer["ticketId"].as_str().unwrap().to_string();
    wait_for(Duration::from_secs(30), "the ticket on the platform", || async { sim.tickets().len() == 1 }).await;

    let dispatched = serde_json::json!({
        "ticketId": ticket_id, "status": "dispatched", "department": "南康街道城管科",
        "dueAt": "2026-12-09T18:00:00+08:00", "note": "已联系王女士 13904371234", "at": "2026-12-04T09:00:00+08:00",
    })
    .to_string();
    // The platform retries until it hears 2xx: three times, applied once.
    for _ in 0..3 {
        assert_eq!(post(&client, endpoint, "ev-dispatch-1", &dispatched, SECRET, now()).await, 200);
    }
    // Forged, and a recording played again ten minutes later: 401, nothing applied.
    let forged = dispatched.replace("dispatched", "resolved");
    assert_eq!(post(&client, endpoint, "ev-forged", &forged, "a-guessed-secret-000000", now()).await, 401);
    assert_eq!(post(&client, endpoint, "ev-replayed", &forged, SECRET, now() - 600).await, 401);
    let unsigned = client
        .post(format!("http://127.0.0.1:{endpoint}/api/v1/platform/events"))
        .header("x-event-id", "ev-unsigned")
        .body(forged.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    // An older event after a newer one: recorded, the status stays.
    let urged = serde_json::json!({"ticketId": ticket_id, "status": "urged", "at": "2026-12-03T09:00:00+08:00"});
    assert_eq!(post(&client, endpoint, "ev-old", &urged.to_string(), SECRET, now()).await, 200);
    // Unknown ticket: 422, kept for a person.
    let unknown = serde_json::json!({"ticketId": "no-such", "status": "resolved", "at": "2026-12-04T10:00:00+08:00"});
    assert_eq!(post(&client, endpoint, "ev-unknown", &unknown.to_string(), SECRET, now()).await, 422);

    let (ok, shown) = hub.cli(&["ticket", "show", &ticket_id]);
    assert!(ok, "{shown}");
    assert!(shown.contains("on the platform: dispatched, department 南康街道城管科, due 2026-12-09 18:00"), "{shown}");
    assert_eq!(shown.matches("callback: dispatched to 南康街道城管科").count(), 1, "applied once: {shown}");
    assert!(shown.contains("callback: urged (older than the last event applied"), "{shown}");
    let (ok, held) = hub.cli(&["callbacks", "list", "--open"]);
    assert!(ok && held.contains("ev-unknown") && held.contains("no ticket no-such"), "{held}");
    assert!(!held.contains("ev-forged"), "a refused callback is not kept: {held}");

    // A frown: back to in_progress, and the platform hears it as a revision.
    let frown = serde_json::json!({
        "ticketId": ticket_id, "status": "closed", "at": "2026-12-08T09:00:00+08:00",
        "evaluation": {"result": "unsatisfied", "by": "citizen", "at": "2026-12-08T09:00:00+08:00"},
    });
    assert_eq!(post(&client, endpoint, "ev-frown", &frown.to_string(), SECRET, now()).await, 200);
    wait_for(Duration::from_secs(30), "the reopened revision on the platform", || async {
        sim.ticket(&ticket_id).is_some_and(|t| t.revision == 2)
    })
    .await;
    let on_platform = sim.ticket(&ticket_id).unwrap().body;
    assert_eq!(on_platform["status"], "in_progress", "{on_platform}");
    assert_eq!(on_platform["dueAt"], "2026-12-09T18:00:00+08:00", "{on_platform}");
    assert_eq!(on_platform["evaluation"]["result"], "unsatisfied", "{on_platform}");

    let metrics = client
        .get(format!("http://127.0.0.1:{endpoint}/metrics"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hub_callbacks_total{outcome=\"duplicate\"} 2"), "{metrics}");
    assert!(metrics.contains("hub_callbacks_total{outcome=\"refused\"} 3"), "{metrics}");
    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
    let log = hub.log();
    assert!(!log.contains("王女士") && !log.contains("南康街道城管科"), "no callback body in the log:\n{log}");
    assert_no_personal_numbers_in(&log);
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
