//! The admin API's tickets, repairs and sources through the real `hub`
//! binary: masking for viewers, replays for operators only, a county's
//! token confined to its county, and pages that list every ticket once.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::*;
use hub::callbacks::verify::sign;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};

const SECRET: &str = "callback-secret-for-admin-tests-01";
const DONGFENG_TOKEN: &str = "e2e-dongfeng-viewer-token-0123";
const DONGFENG: (&str, &str, &str) = ("220421100000", "township", "东丰镇");
const NANKANG: (&str, &str, &str) = ("220402002000", "township", "南康街道");

fn config(dir: &std::path::Path, db_url: &str, platform: &str, source: u16, endpoint: u16) -> std::path::PathBuf {
    let platform_extra = format!("secrets = [\"{SECRET}\"]\n[delivery]\nretry_initial = \"100ms\"\nretry_max = \"1s\"");
    CanonHub { db_url, platform, source, endpoint }.write(dir, "hub.toml", &platform_extra, "")
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let r = self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        Self::read(r).await
    }

    async fn post(&self, path: &str, token: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req.send().await.unwrap()).await
    }

    async fn read(r: reqwest::Response) -> (u16, serde_json::Value) {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// Every ticket a token sees, following `next` a page of `per_page` at a time.
    async fn all_tickets(&self, token: &str, per_page: usize) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/api/v1/tickets?per_page={per_page}&after={a}"),
                None => format!("/api/v1/tickets?per_page={per_page}"),
            };
            let (status, page) = self.get(&path, token).await;
            assert_eq!(status, 200, "{page}");
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= per_page, "{page}");
            out.extend(items.iter().cloned());
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return out,
            }
        }
    }
}

async fn post_callback(client: &reqwest::Client, endpoint: u16, event_id: &str, body: &str) -> u16 {
    let ts = chrono::Utc::now().timestamp().to_string();
    client
        .post(format!("http://127.0.0.1:{endpoint}/api/v1/platform/events"))
        .header("content-type", "application/json")
        .header("x-event-id", event_id)
        .header("x-timestamp", &ts)
        .header("x-signature", sign(SECRET.as_bytes(), &ts, body.as_bytes()))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_see_masked_operators_repair_and_counties_see_their_own() {
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-admin-api-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults { reject_title_contains: Some("拒收".into()), ..Faults::default() },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let (source, endpoint) = (free_port(), free_port());
    let cfg = config(&dir, &db.url, &server.base_url(), source, endpoint);
    let tokens = format!("{API_TOKENS},viewer@220421:{DONGFENG_TOKEN}");
    let mut hub = HubProcess::start_with_env(&cfg, &[("HUB_API_TOKENS", tokens.as_str())]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let api = Api { client: client.clone(), base: format!("http://127.0.0.1:{endpoint}") };
    let records = format!("http://127.0.0.1:{source}/records");

    // Thirteen matters: the first five in 东丰县, the rest in 龙山区; one
    // of them with a title the platform refuses (a dead letter).
    let ms = matters(4242, 13, "ADMIN");
    let mut ids: Vec<String> = Vec::new();
    let mut dongfeng: BTreeSet<String> = BTreeSet::new();
    let mut refused_id = String::new();
    for (i, m) in ms.iter().enumerate() {
        let mut r = m.record(1);
        let (code, level, name) = if i < 5 { DONGFENG } else { NANKANG };
        r["ticket"]["region"] = serde_json::json!({"code": code, "level": level, "name": name});
        if i == 6 {
            r["ticket"]["title"] = "拒收测试：平台拒收的工单".into();
        }
        let ack = send_until_acknowledged(&client, &records, r.to_string().into_bytes()).await;
        let id = ack["ticketId"].as_str().unwrap().to_string();
        if i < 5 {
            dongfeng.insert(id.clone());
        }
        if i == 6 {
            refused_id = id.clone();
        }
        ids.push(id);
    }
    let expected: BTreeSet<String> = ids.iter().cloned().collect();
    let refused_name = ms[6].record(1)["ticket"]["reporters"][0]["name"].as_str().unwrap().to_string();
    let refused_phone = ms[6].record(1)["ticket"]["reporters"][0]["phone"].as_str().unwrap().to_string();

    // Pages, by cursor and by number: every ticket exactly once.
    let listed = api.all_tickets(VIEWER_TOKEN, 4).await;
    let listed_ids: Vec<String> = listed.iter().map(|t| t["ticket_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed_ids.len(), expected.len(), "{listed_ids:?}");
    assert_eq!(listed_ids.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let mut by_number = Vec::new();
    for page in 1.. {
        let (status, p) = api.get(&format!("/api/v1/tickets?per_page=5&page={page}"), VIEWER_TOKEN).await;
        assert_eq!(status, 200, "{p}");
        by_number.extend(p["items"].as_array().unwrap().iter().map(|t| t["ticket_id"].as_str().unwrap().to_string()));
        if p["next_page"].is_null() {
            break;
        }
        assert_eq!(p["next_page"], page + 1);
    }
    assert_eq!(by_number, listed_ids, "the same order either way");

    // Filters, and a search by source record id.
    let (_, found) = api.get(&format!("/api/v1/tickets?q={}", ms[3].record_id), VIEWER_TOKEN).await;
    assert_eq!(found["items"][0]["ticket_id"], ids[3].as_str(), "{found}");
    let (_, found) = api.get(&format!("/api/v1/tickets?q={}", ids[8]), VIEWER_TOKEN).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    let (_, july) = api.get("/api/v1/tickets?from=2024-07-01&to=2024-07-31&per_page=500", VIEWER_TOKEN).await;
    assert_eq!(
        july["items"].as_array().unwrap().len(),
        expected.len(),
        "the generator's matters are from July 2024: {july}"
    );
    let (_, june) = api.get("/api/v1/tickets?to=2024-06-30", VIEWER_TOKEN).await;
    assert!(june["items"].as_array().unwrap().is_empty(), "{june}");
    let (_, narrower) = api.get("/api/v1/tickets?region=220421", VIEWER_TOKEN).await;
    assert_eq!(narrower["items"].as_array().unwrap().len(), dongfeng.len(), "{narrower}");

    // Bad parameters: 400 with a sentence.
    for bad in ["per_page=9999", "per_page=ten", "status=lost", "from=July", "after=nonsense", "page=0", "channel=fax"]
    {
        let (status, body) = api.get(&format!("/api/v1/tickets?{bad}"), VIEWER_TOKEN).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.len() > 10), "{bad}: {body}");
    }
    assert_eq!(api.get("/api/v1/deadletters/abc", VIEWER_TOKEN).await.0, 400);

    // 东丰县's token: its five tickets, and 404 for another county's.
    let own = api.all_tickets(DONGFENG_TOKEN, 2).await;
    let own_ids: BTreeSet<String> = own.iter().map(|t| t["ticket_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(own_ids, dongfeng);
    assert!(own.iter().all(|t| t["region"].as_str().unwrap().starts_with("220421")), "{own:?}");
    let (status, body) = api.get(&format!("/api/v1/tickets/{}", ids[8]), DONGFENG_TOKEN).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(api.get("/api/v1/tickets/no-such-ticket", DONGFENG_TOKEN).await.1, {
        serde_json::json!({"error": "no ticket no-such-ticket"})
    });
    assert_eq!(body, serde_json::json!({"error": format!("no ticket {}", ids[8])}), "nothing tells them apart");
    assert_eq!(api.get(&format!("/api/v1/tickets/{}", ids[0]), DONGFENG_TOKEN).await.0, 200);
    assert_eq!(api.get("/api/v1/tickets?region=220402", DONGFENG_TOKEN).await.0, 403);

    // A ticket: masked for a viewer, whole for an operator.
    let (status, shown) = api.get(&format!("/api/v1/tickets/{refused_id}"), VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{shown}");
    let text = shown.to_string();
    assert!(!text.contains(&refused_name) && !text.contains(&refused_phone[3..]), "masked: {text}");
    assert_eq!(shown["sources"][0]["record_id"], ms[6].record_id.as_str(), "{shown}");
    assert!(shown["revisions"].as_array().is_some_and(|r| !r.is_empty()), "{shown}");
    let (_, whole) = api.get(&format!("/api/v1/tickets/{refused_id}"), OPERATOR_TOKEN).await;
    assert!(whole.to_string().contains(&refused_name), "{whole}");

    // The dead letter: listed and shown masked to a viewer, who cannot replay it.
    let mut dead_id = 0;
    for _ in 0..200 {
        let (_, page) = api.get("/api/v1/deadletters", VIEWER_TOKEN).await;
        if let Some(d) = page["items"].as_array().unwrap().iter().find(|d| d["ticket_id"] == refused_id.as_str()) {
            assert_eq!(d["status_code"], 422, "{d}");
            dead_id = d["id"].as_i64().unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dead_id > 0, "the refused change was parked");
    let (status, dl) = api.get(&format!("/api/v1/deadletters/{dead_id}"), VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{dl}");
    assert!(dl["change"]["title"].as_str().unwrap().contains("拒收测试"), "{dl}");
    assert!(!dl.to_string().contains(&refused_name), "masked: {dl}");
    assert_eq!(api.get(&format!("/api/v1/deadletters/{dead_id}"), DONGFENG_TOKEN).await.0, 404);
    assert!(api.get("/api/v1/deadletters", DONGFENG_TOKEN).await.1["items"].as_array().unwrap().is_empty());
    let (status, body) = api.post(&format!("/api/v1/deadletters/{dead_id}/replay"), VIEWER_TOKEN, None).await;
    assert_eq!(status, 403, "{body}");

    // The operator replays it after the platform's fix; it reaches the platform.
    sim.set_faults(Faults::default());
    let (status, body) = api.post(&format!("/api/v1/deadletters/{dead_id}/replay"), OPERATOR_TOKEN, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ticket_id"], refused_id.as_str());
    wait_for(Duration::from_secs(15), "the replayed change on the platform", || async {
        sim.ticket(&refused_id).is_some()
    })
    .await;
    let (status, body) = api.post(&format!("/api/v1/deadletters/{dead_id}/replay"), OPERATOR_TOKEN, None).await;
    assert_eq!(status, 409, "{body}");

    // A callback about a ticket this hub does not know: held for a person,
    // seen by the city, not by a county; replayed (still held), dismissed.
    let unknown = serde_json::json!({"ticketId": "no-such", "status": "resolved", "at": "2026-12-04T10:00:00+08:00",
        "note": "已联系王女士 13904371234"});
    assert_eq!(post_callback(&client, endpoint, "ev-admin-unknown", &unknown.to_string()).await, 422);
    let (_, held) = api.get("/api/v1/callbacks?open=true", VIEWER_TOKEN).await;
    let cb = held["items"].as_array().unwrap().iter().find(|c| c["event_id"] == "ev-admin-unknown").unwrap().clone();
    let cb_id = cb["id"].as_i64().unwrap();
    assert_eq!(cb["state"], "open", "{cb}");
    let (_, cb_shown) = api.get(&format!("/api/v1/callbacks/{cb_id}"), VIEWER_TOKEN).await;
    assert!(!cb_shown["body"].as_str().unwrap().contains("13904371234"), "masked: {cb_shown}");
    assert!(api.get("/api/v1/callbacks?open=true", DONGFENG_TOKEN).await.1["items"].as_array().unwrap().is_empty());
    assert_eq!(api.get(&format!("/api/v1/callbacks/{cb_id}"), DONGFENG_TOKEN).await.0, 404);
    assert_eq!(api.post(&format!("/api/v1/callbacks/{cb_id}/replay"), VIEWER_TOKEN, None).await.0, 403);
    let (status, body) = api.post(&format!("/api/v1/callbacks/{cb_id}/replay"), OPERATOR_TOKEN, None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("still held"), "{body}");
    assert_eq!(api.post(&format!("/api/v1/callbacks/{cb_id}/dismiss"), VIEWER_TOKEN, None).await.0, 403);
    let (status, body) = api.post(&format!("/api/v1/callbacks/{cb_id}/dismiss"), OPERATOR_TOKEN, None).await;
    assert_eq!((status, &body["state"], &body["outcome"]), (200, &"done".into(), &"dismissed".into()), "{body}");
    assert_eq!(api.post(&format!("/api/v1/callbacks/{cb_id}/dismiss"), OPERATOR_TOKEN, None).await.0, 409);
    let (_, held) = api.get("/api/v1/callbacks?open=true", VIEWER_TOKEN).await;
    assert!(held["items"].as_array().unwrap().iter().all(|c| c["id"] != cb_id), "{held}");

    // A record that cannot be mapped: the city's quarantine, nobody's region.
    let ack = send_until_acknowledged(
        &client,
        &records,
        br#"{"recordId": "BAD-ADMIN-1", "channel": "hotline", "ticket": {"kind": "help"}}"#.to_vec(),
    )
    .await;
    assert_eq!(ack["outcome"], "quarantined", "{ack}");
    let (_, q) = api.get("/api/v1/quarantine", VIEWER_TOKEN).await;
    let qid = q["items"][0]["id"].as_i64().unwrap();
    assert!(q["items"][0]["reason"].as_str().unwrap().contains("missing field"), "{q}");
    let (_, qshown) = api.get(&format!("/api/v1/quarantine/{qid}"), VIEWER_TOKEN).await;
    assert!(qshown["payload"].as_str().unwrap().contains("BAD-ADMIN-1"), "{qshown}");
    assert!(api.get("/api/v1/quarantine", DONGFENG_TOKEN).await.1["items"].as_array().unwrap().is_empty());
    assert_eq!(api.get(&format!("/api/v1/quarantine/{qid}"), DONGFENG_TOKEN).await.0, 404);
    assert_eq!(api.post(&format!("/api/v1/quarantine/{qid}/replay"), VIEWER_TOKEN, None).await.0, 403);
    let (status, body) = api.post(&format!("/api/v1/quarantine/{qid}/replay"), OPERATOR_TOKEN, None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("still does not map"), "{body}");

    // Duplicates: a list (possibly empty) with a sentence for a bad state.
    assert_eq!(api.get("/api/v1/duplicates", VIEWER_TOKEN).await.0, 200);
    assert_eq!(api.get("/api/v1/duplicates?state=maybe", VIEWER_TOKEN).await.0, 400);
    assert_eq!(api.post("/api/v1/duplicates/1/confirm", VIEWER_TOKEN, None).await.0, 403);

    // The sources: the HTTP source running, its last record and counts.
    let (status, s) = api.get("/api/v1/sources", VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{s}");
    let canon = s["sources"].as_array().unwrap().iter().find(|x| x["name"] == "canon").unwrap();
    assert_eq!(canon["state"], "running", "{canon}");
    assert_eq!(canon["transport"], "http", "{canon}");
    assert_eq!(canon["last_record"]["outcome"], "quarantined", "{canon}");
    assert_eq!(canon["totals"]["received"], 14, "{canon}");
    assert_eq!(canon["since_start"]["quarantined"], 1, "{canon}");

    // The document lists the new routes.
    let (_, doc) = api.get("/api/openapi.json", VIEWER_TOKEN).await;
    for path in ["/api/v1/tickets", "/api/v1/tickets/{id}", "/api/v1/deadletters/{id}/replay", "/api/v1/sources"] {
        assert!(doc["paths"][path].is_object(), "{path} in {doc}");
    }

    assert!(hub.terminate().success());
    assert_no_personal_numbers(&cfg.with_extension("log"));
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
