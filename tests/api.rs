//! The admin API through the real `hub` binary: tokens, roles, regions,
//! the OpenAPI document and the figures.

use std::time::Duration;

use e2e::*;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};

const DONGFENG_TOKEN: &str = "e2e-dongfeng-viewer-token-0123";

fn config(dir: &std::path::Path, db_url: &str, platform: &str, source: u16, endpoint: u16) -> std::path::PathBuf {
    CanonHub { db_url, platform, source, endpoint }.write(dir, "hub.toml", "", "")
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_each_token_within_its_role_and_region() {
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-api-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig { token: "test-token".into(), faults: Faults::default() });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let (source, endpoint) = (free_port(), free_port());
    let cfg = config(&dir, &db.url, &server.base_url(), source, endpoint);
    let tokens = format!("{API_TOKENS},viewer@220421:{DONGFENG_TOKEN}");
    let mut hub = HubProcess::start_with_env(&cfg, &[("HUB_API_TOKENS", tokens.as_str())]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let base = format!("http://127.0.0.1:{endpoint}");

    let ms = matters(77, 12, "API");
    for m in &ms {
        send_until_acknowledged(&client, &format!("http://127.0.0.1:{source}/records"), m.payload(1)).await;
    }
    let stats = format!("{base}/api/v1/stats?from=2024-07&to=2024-07&by=county");
    wait_for(Duration::from_secs(20), "twelve matters in the figures", || {
        let (client, stats) = (&client, &stats);
        async move { get(client, stats, Some(VIEWER_TOKEN)).await.1["total"]["received"] == 12 }
    })
    .await;

    // No token, a wrong one: 401, and nothing of the figures.
    for token in [None, Some("not-a-token-0123456789")] {
        let (status, body) = get(&client, &stats, token).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.get("total").is_none());
        assert_eq!(get(&client, &format!("{base}/metrics"), token).await.0, 401);
        assert_eq!(get(&client, &format!("{base}/api/openapi.json"), token).await.0, 401);
    }
    assert_eq!(get(&client, &format!("{base}/healthz"), None).await.0, 200);

    // The city's viewer sees every county; 东丰县's only its own, the same figure.
    let (_, city) = get(&client, &stats, Some(VIEWER_TOKEN)).await;
    let dongfeng_in_city = city["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "220421")
        .map_or(0, |r| r["figures"]["received"].as_i64().unwrap());
    let (status, own) = get(&client, &stats, Some(DONGFENG_TOKEN)).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["region"], "220421");
    assert_eq!(own["total"]["received"].as_i64().unwrap(), dongfeng_in_city, "{own}");
    assert!(own["rows"].as_array().unwrap().iter().all(|r| r["key"] == "220421"), "{own}");
    // The whole city's counters and sources are not a county's to read.
    assert_eq!(get(&client, &format!("{base}/api/v1/sources"), Some(DONGFENG_TOKEN)).await.0, 403);
    assert_eq!(get(&client, &format!("{base}/metrics"), Some(DONGFENG_TOKEN)).await.0, 403);
    let elsewhere = format!("{stats}&region=220402");
    assert_eq!(get(&client, &elsewhere, Some(DONGFENG_TOKEN)).await.0, 403);
    assert_eq!(get(&client, &elsewhere, Some(VIEWER_TOKEN)).await.0, 200);
    let named = city["rows"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect::<Vec<_>>();
    assert!(named.iter().all(|n| n.ends_with('区') || n.ends_with('县')), "{named:?}");

    // Clear errors for bad input.
    let (status, body) = get(&client, &format!("{base}/api/v1/stats?from=2024-13"), Some(VIEWER_TOKEN)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("2026-11"), "{body}");
    assert_eq!(get(&client, &format!("{base}/api/v1/stats?by=weather"), Some(VIEWER_TOKEN)).await.0, 400);

    // The document describes the routes, generated from the code.
    let (status, doc) = get(&client, &format!("{base}/api/openapi.json"), Some(VIEWER_TOKEN)).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'), "{doc}");
    assert!(doc["paths"]["/api/v1/stats"]["get"].is_object(), "{doc}");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "{doc}");

    // What the hub counts, for the operator's monitoring.
    // (The gauges are refreshed every 2 s: one read before the records
    // came says 0 too, so the deliveries are waited for as well.)
    wait_for(Duration::from_secs(10), "the queues' gauges", || {
        let (client, base) = (&client, &base);
        async move {
            let (_, text) = get(client, &format!("{base}/metrics"), Some(VIEWER_TOKEN)).await;
            text.as_str().is_some_and(|t| {
                let delivered = t.lines().find_map(|l| l.strip_prefix("hub_delivered_total ")?.parse::<u64>().ok());
                t.contains("hub_queue_depth{destination=\"platform\"} 0") && delivered >= Some(12)
            })
        }
    })
    .await;
    let (_, metrics) = get(&client, &format!("{base}/metrics"), Some(VIEWER_TOKEN)).await;
    let metrics = metrics.as_str().unwrap().to_string();
    for line in [
        "hub_source_records_total{system=\"canon\",stage=\"received\"} 12",
        "hub_source_records_total{system=\"canon\",stage=\"acknowledged\"} 12",
        "hub_delivery_latency_seconds_count 12",
        "hub_delivery_retries_by_cause_total{cause=\"failed\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    // Who held the store's writer: intake stored the records, delivery sent them.
    for by in ["intake", "delivery"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("hub_store_write_transactions_total{{by=\"{by}\"}}")))
            .unwrap_or_else(|| panic!("no writer line for {by} in {metrics}"));
        assert!(line.split_whitespace().last().and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0), "{line}");
    }
    assert!(metrics.contains("# TYPE hub_store_writer_busy_seconds_total counter"), "{metrics}");

    // The monthly analysis: the same figures, in a page that fetches nothing, and CSV.
    let out = dir.join("reports");
    let (ok, said) = hub.cli(&["report", "--month", "2024-07", "--out", out.to_str().unwrap()]);
    assert!(ok, "{said}");
    assert!(said.contains("12 matters received in 2024-07"), "{said}");
    let html = std::fs::read_to_string(out.join("report-2024-07.html")).unwrap();
    assert!(html.contains("辽源市 2024-07 社会治理月度分析研判") && html.contains("<svg"), "{html}");
    assert!(!html.contains("src=") && !html.contains("https://"), "self-contained");
    let csv = std::fs::read_to_string(out.join("report-2024-07.csv")).unwrap();
    assert!(csv.lines().nth(1).unwrap().starts_with("2024-07,220400,total,,合计,12,"), "{csv}");
    for m in &ms {
        let phone = m.record(1)["ticket"]["reporters"][0]["phone"].as_str().unwrap().to_string();
        assert!(!html.contains(&phone) && !csv.contains(&phone), "no personal data in the report");
    }
    let (ok, said) = hub.cli(&["report", "--month", "2024-7"]);
    assert!(!ok && said.contains("not a month like 2026-11"), "{said}");

    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
