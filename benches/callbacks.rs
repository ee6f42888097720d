//! The way back's benchmarks (`cargo bench -p benches --bench callbacks`;
//! needs RabbitMQ and Mosquitto):
//!
//! 1. platform callbacks per second, verified, stored and applied by an
//!    in-process hub on SQLite, beside a baseline in the same run: a bare
//!    handler that only verifies the HMAC and answers 200, driven by the
//!    same client with the same concurrency;
//! 2. callback → origin-acknowledged latency, p50 and p99, at a steady
//!    200 callbacks/s, for each back-channel: the hotline's feedback
//!    exchange (publisher confirms, a consumer on a bound queue), the grid
//!    workers' notify topics (QoS 1, a subscriber), a court's outcomes
//!    endpoint (HTTP).
//!
//! `BENCH_CALLBACKS` (default 10000) and `BENCH_LATENCY` (default 2000
//! callbacks per back-channel) scale them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use benches::{header, rate, row};
use connectors::{ContentType, RawRecord};
use e2e::{TestDb, free_port};
use futures::StreamExt;
use hub::Hub;
use hub::callbacks::verify::{Secrets, sign};
use hub::config::Settings;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use simulators::platform::{PlatformSim, SimConfig};

const SECRET: &str = "bench-callback-secret-000001";
const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // As the hub does when it starts, for the baselines too.
    hub::prefer_small_pages();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let n = env_usize("BENCH_CALLBACKS", 10_000);
        let per_channel = env_usize("BENCH_LATENCY", 2_000);
        run(n, per_channel).await;
    });
}

/// When each callback was sent, and when its origin acknowledged it, by key.
#[derive(Default)]
struct Clock {
    sent: HashMap<String, Instant>,
    heard: HashMap<String, Instant>,
}

type Shared = Arc<Mutex<Clock>>;

fn signed(client: &reqwest::Client, url: &str, event_id: &str, body: String) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp().to_string();
    client
        .post(url)
        .header("x-event-id", event_id)
        .header("x-timestamp", &ts)
        .header("x-signature", sign(SECRET.as_bytes(), &ts, body.as_bytes()))
        .body(body)
}

async fn run(n: usize, per_channel: usize) {
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (orders, feedback, queue) =
        (format!("bench.orders.{sfx}"), format!("bench.feedback.{sfx}"), format!("bench.fb.{sfx}"));
    let county = "220402";
    let dir = std::env::temp_dir().join(format!("hub-bench-callbacks-{sfx}"));
    for f in hub::mapping::shipped::FILES {
        let path = dir.join(f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = if f.path == "hotline.toml" {
            f.text.replace("to = \"hotline.feedback\"", &format!("to = \"{feedback}\""))
        } else {
            f.text.to_string()
        };
        std::fs::write(path, text).unwrap();
    }

    // The court: an outcomes endpoint that notes when each case's outcome came.
    let clock: Shared = Arc::default();
    let court_clock = clock.clone();
    let court = axum::Router::new()
        .route(
            "/mediation/feed",
            axum::routing::get(|| async {
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><MediationFeed court=\"吉0402\" generated=\"2026-12-04T10:00:00+08:00\" next=\"c-0\" more=\"false\"></MediationFeed>"
            }),
        )
        .route(
            "/mediation/outcomes",
            axum::routing::post(move |body: String| {
                let clock = court_clock.clone();
                async move {
                    if let Some(case) = body.split("caseNo=\"").nth(1).and_then(|r| r.split('"').next()) {
                        clock.lock().unwrap().heard.entry(format!("court:{case}")).or_insert_with(Instant::now);
                    }
                    "ok"
                }
            }),
        );
    let court_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let court_url = format!("http://{}", court_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(court_listener, court).await.unwrap() });

    // The hotline's queue on its feedback exchange, and a terminal subscriber.
    let amqp = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("RabbitMQ");
    let channel = amqp.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    for x in [&orders, &feedback] {
        channel.exchange_declare(x.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default()).await.unwrap();
    }
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            feedback.as_str().into(),
            "feedback.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(queue.as_str().into(), "bench".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let amqp_clock = clock.clone();
    tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let v: serde_json::Value = serde_json::from_slice(&d.data).unwrap_or_default();
            if let Some(no) = v["orderNo"].as_str() {
                amqp_clock.lock().unwrap().heard.entry(format!("hotline:{no}")).or_insert_with(Instant::now);
            }
            let _ = d.ack(BasicAckOptions::default()).await;
        }
    });
    let mut options = MqttOptions::new(format!("bench-terminal-{sfx}"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(30));
    let (mqtt, mut eventloop) = AsyncClient::new(options, 10_000);
    let mqtt_clock = clock.clone();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                    if let Some(e) = v["eventId"].as_str() {
                        mqtt_clock.lock().unwrap().heard.entry(format!("terminal:{e}")).or_insert_with(Instant::now);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    mqtt.subscribe(format!("grid/{county}/B{sfx}/notify"), QoS::AtLeastOnce).await.unwrap();

    // The hub.
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let listen = free_port();
    let text = format!(
        r#"
[store]
url = "{db}"
[platform]
url = "{platform}"
token = "test-token"
secrets = ["{SECRET}"]
[server]
listen = "127.0.0.1:{listen}"
# The bench's records are one template each; merged as duplicates, a
# ticket would have hundreds of origins to tell. One record, one ticket.
[dedup]
enabled = false

# Tickets whose origin has no back-channel: the throughput run's.
[[sources]]
name = "canon"
mapping = "canonical"
transport = "http"
listen = "127.0.0.1:{canon_port}"
open = true

[[sources]]
name = "hotline"
mapping = "hotline.toml"
transport = "amqp"
url = "{AMQP_URL}"
exchange = "{orders}"
queue = "hub.{orders}"

[[sources]]
name = "terminal"
mapping = "terminal.toml"
transport = "mqtt"
url = "mqtt://127.0.0.1:1883"
topics = ["grid/{county}/B{sfx}/report"]
client_id = "bench-hub-{sfx}"

[[sources]]
name = "court"
mapping = "court.toml"
transport = "court_feed"
url = "{court_url}"
court = "吉0402"
poll_interval = "60s"
"#,
        db = db.url,
        platform = server.base_url(),
        canon_port = free_port(),
    );
    let no_env: [(&str, &str); 0] = [];
    let settings = Settings::parse_in(&text, "bench.toml", &dir, &no_env).expect("bench config");
    let hub = Hub::start(settings).await.expect("hub");
    let intake = hub.intake();

    // Tickets: n/4 without a back-channel for the throughput run (4
    // callbacks each), and per_channel of each origin for the latencies.
    let order = |i: usize| {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../mappings/samples/hotline-created.json")).unwrap();
        v["orderNo"] = format!("LY12345-20261204-{i:06}").into();
        v["content"] = format!("第{i}号：小区门口路灯不亮，夜间出行不便，请尽快修复。").into();
        RawRecord::new("hotline", ContentType::Json, serde_json::to_vec(&v).unwrap())
    };
    let report = |i: usize| {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../mappings/samples/terminal-report.json")).unwrap();
        v["msgId"] = uuid::Uuid::new_v4().to_string().into();
        v["eventId"] = format!("B{sfx}-20261204-{i:04}").into();
        v["workerId"] = format!("B{sfx}").into();
        v["reason"] = format!("第{i}处：人行道地砖松动翘起，行人易绊倒。").into();
        RawRecord::new("terminal", ContentType::Json, serde_json::to_vec(&v).unwrap())
            .with_encoding("utf-8")
            .with_meta("topic", format!("grid/{county}/B{sfx}/report"))
            .with_meta("county", county)
            .with_meta("worker_id", format!("B{sfx}"))
            .with_meta("kind", "report")
    };
    let case = |i: usize| {
        let page = include_str!("../mappings/samples/court-feed-page2.xml");
        let (a, b) = (page.find("<Case ").unwrap(), page.find("</Case>").unwrap() + "</Case>".len());
        let xml = page[a..b].replace("民诉前调123号", &format!("民诉前调{}号", 5000 + i));
        RawRecord::new("court", ContentType::Xml, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{xml}"))
    };
    // (kind, the key its origin hears it by, the record)
    let plain = n.div_ceil(4);
    let matters = simulators::canonical::matters(91, plain, "CBBENCH");
    let records: Vec<(&str, String, RawRecord)> = matters
        .iter()
        .map(|m| ("plain", String::new(), RawRecord::new("canon", ContentType::Json, m.payload(1))))
        .chain((0..per_channel).map(|i| ("hotline", format!("hotline:LY12345-20261204-{i:06}"), order(i))))
        .chain((0..per_channel).map(|i| ("terminal", format!("terminal:B{sfx}-20261204-{i:04}"), report(i))))
        .chain((0..per_channel).map(|i| ("court", format!("court:(2024)吉0402民诉前调{}号", 5000 + i), case(i))))
        .collect();
    let created: Vec<(&str, String, String)> = futures::stream::iter(records)
        .map(|(kind, key, r)| {
            let intake = intake.clone();
            async move {
                match intake.submit(r).await.expect("stored") {
                    connectors::Outcome::Created { ticket_id } | connectors::Outcome::Updated { ticket_id } => {
                        (kind, key, ticket_id)
                    }
                    other => panic!("{kind}: {other:?}"),
                }
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    // kind → (key, ticket id)
    let mut tickets: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for (kind, key, id) in created {
        tickets.entry(kind).or_default().push((key, id));
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).tcp_nodelay(true).build().unwrap();
    let hub_url = format!("http://127.0.0.1:{listen}/api/v1/platform/events");

    // 1. Throughput: n callbacks (4 statuses on each plain ticket), 64 at a time.
    let bodies: Vec<(String, String)> = tickets["plain"]
        .iter()
        .flat_map(|(_, t)| {
            ["dispatched", "urged", "escalated", "resolved"].into_iter().enumerate().map(move |(k, s)| {
                let body = serde_json::json!({"ticketId": t, "status": s, "department": "龙山区住建局",
                    "dueAt": "2026-12-09T18:00:00+08:00", "note": "请尽快处理", "at": format!("2026-12-04T1{k}:00:00+08:00")});
                (format!("{t}-{s}"), body.to_string())
            })
        })
        .take(n)
        .collect();
    let fire = |url: String, bodies: Vec<(String, String)>| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let ok = futures::stream::iter(bodies)
                .map(|(id, body)| {
                    let r = signed(&client, &url, &id, body);
                    async move { r.send().await.map(|r| r.status().is_success()).unwrap_or(false) }
                })
                .buffer_unordered(64)
                .filter(|ok| futures::future::ready(*ok))
                .count()
                .await;
            (ok, started.elapsed())
        }
    };
    let baseline_url = bare_verifier().await;
    let (base_ok, base_time) = fire(baseline_url, bodies.clone()).await;
    let (hub_ok, hub_time) = fire(hub_url.clone(), bodies.clone()).await;
    assert_eq!((base_ok, hub_ok), (bodies.len(), bodies.len()), "every callback answered 200");

    header(&format!("Platform callbacks in ({} callbacks, 64 in flight, SQLite)", bodies.len()));
    row(
        "callbacks/s verified, stored, applied",
        format!("{:.0}/s", rate(hub_ok, hub_time)),
        format!("{:.0}/s", rate(base_ok, base_time)),
        "baseline: a bare handler that verifies the HMAC and answers 200",
    );

    // 2. Latency at 200 callbacks/s per back-channel.
    header(&format!("Callback → origin-acknowledged at 200 callbacks/s ({per_channel} per back-channel)"));
    for origin in ["hotline", "terminal", "court"] {
        let ids = tickets[origin].clone();
        let mut interval = tokio::time::interval(Duration::from_millis(5));
        let mut sends = Vec::new();
        for (i, (key, t)) in ids.iter().enumerate() {
            interval.tick().await;
            let mut body = serde_json::json!({"ticketId": t, "status": "dispatched", "department": "龙山区住建局",
                "dueAt": "2026-12-09T18:00:00+08:00", "at": "2026-12-04T09:00:00+08:00"});
            if let Some(case_no) = key.strip_prefix("court:") {
                body = serde_json::json!({"ticketId": t, "status": "resolved", "note": "调解成功", "at": "2026-12-04T15:00:00+08:00",
                    "mediation": {"caseNo": case_no, "result": "AGREED"}});
            }
            clock.lock().unwrap().sent.insert(key.clone(), Instant::now());
            let r = signed(&client, &hub_url, &format!("lat-{origin}-{i}"), body.to_string());
            sends.push(tokio::spawn(async move { r.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }));
        }
        for s in sends {
            assert_eq!(s.await.unwrap(), 200);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut lat: Vec<Duration> = loop {
            let lat: Vec<Duration> = {
                let c = clock.lock().unwrap();
                c.sent
                    .iter()
                    .filter(|(k, _)| k.starts_with(origin))
                    .filter_map(|(k, s)| c.heard.get(k).map(|h| h.saturating_duration_since(*s)))
                    .collect()
            };
            if lat.len() == ids.len() || Instant::now() > deadline {
                break lat;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        lat.sort();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default()
        };
        row(
            &format!("{origin}: p50 / p99 ({} of {} heard)", lat.len(), ids.len()),
            format!("{:.1} / {:.1} ms", pct(0.5).as_secs_f64() * 1e3, pct(0.99).as_secs_f64() * 1e3),
            "-".to_string(),
            match origin {
                "hotline" => "publisher confirm, then a consumer on a bound queue",
                "terminal" => "QoS 1 PUBACK, then a subscriber",
                _ => "HTTP POST answered 200",
            },
        );
    }

    hub.shutdown().await;
    server.stop().await;
    let _ = channel.queue_delete(queue.as_str().into(), Default::default()).await;
    let _ = channel.queue_delete(format!("hub.{orders}").as_str().into(), Default::default()).await;
    for x in [&orders, &feedback] {
        let _ = channel.exchange_delete(x.as_str().into(), Default::default()).await;
    }
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The baseline: a handler that verifies the signature and answers 200.
async fn bare_verifier() -> String {
    let secrets = Arc::new(Secrets::new([SECRET]));
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let secrets = secrets.clone();
            async move {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
                match secrets.verify(h("x-timestamp"), h("x-signature"), &body, chrono::Utc::now().timestamp()) {
                    Ok(()) => axum::http::StatusCode::OK,
                    Err(_) => axum::http::StatusCode::UNAUTHORIZED,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
