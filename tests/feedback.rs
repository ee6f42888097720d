//! The way back over the real brokers: a platform callback reaches the
//! hotline's feedback exchange (publisher-confirmed, persistent, with a
//! stable message id) and the grid worker's notify topic (QoS 1), also
//! when the hub is SIGKILLed right after answering the callback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::*;
use futures::StreamExt;
use hub::callbacks::verify::sign;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use simulators::platform::{PlatformSim, SimConfig};
use tokio::sync::mpsc;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SECRET: &str = "feedback-secret-for-tests-0001";

/// The shipped mappings in `dir`, the hotline's feedback going to `exchange`.
fn mappings(dir: &std::path::Path, exchange: &str) {
    for f in hub::mapping::shipped::FILES {
        let path = dir.join(f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = if f.path == "hotline.toml" {
            f.text.replace("to = \"hotline.feedback\"", &format!("to = \"{exchange}\""))
        } else {
            f.text.to_string()
        };
        std::fs::write(path, text).unwrap();
    }
}

/// The hotline's side: its orders exchange, and a durable queue bound to
/// its feedback exchange. The connection is returned to be kept open.
async fn hotline_side(orders: &str, feedback: &str, queue: &str) -> (Connection, lapin::Channel) {
    let amqp = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    for x in [orders, feedback] {
        channel.exchange_declare(x.into(), ExchangeKind::Topic, durable, FieldTable::default()).await.unwrap();
    }
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(queue.into(), options, FieldTable::default()).await.unwrap();
    let bind = QueueBindOptions::default();
    channel.queue_bind(queue.into(), feedback.into(), "feedback.#".into(), bind, FieldTable::default()).await.unwrap();
    (amqp, channel)
}

/// A grid worker's terminal: a client to publish reports with, and what
/// arrives on the worker's notify topic.
async fn terminal_side(sfx: &str, worker: &str) -> (AsyncClient, mpsc::UnboundedReceiver<serde_json::Value>) {
    let mut options = MqttOptions::new(format!("terminal-{sfx}"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(10));
    let (mqtt, mut eventloop) = AsyncClient::new(options, 100);
    let (notified_tx, notified) = mpsc::unbounded_channel::<serde_json::Value>();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = notified_tx.send(serde_json::from_slice(&p.payload).unwrap_or_default());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    mqtt.subscribe(format!("grid/220402/{worker}/notify"), QoS::AtLeastOnce).await.unwrap();
    (mqtt, notified)
}

async fn callback(client: &reqwest::Client, endpoint: u16, event_id: &str, body: &serde_json::Value) -> u16 {
    let ts = chrono::Utc::now().timestamp().to_string();
    let body = body.to_string();
    client
        .post(format!("http://127.0.0.1:{endpoint}/api/v1/platform/events"))
        .header("x-event-id", event_id)
        .header("x-timestamp", &ts)
        .header("x-signature", sign(SECRET.as_bytes(), &ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_reaches_the_hotline_and_the_worker_once_each_across_a_sigkill() {
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let (orders, feedback, queue) =
        (format!("e2e.orders.{sfx}"), format!("e2e.feedback.{sfx}"), format!("e2e.callback.{sfx}"));
    let worker = format!("W{}", &sfx[..6]);
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-feedback-{sfx}"));
    mappings(&dir, &feedback);
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let endpoint = free_port();
    let cfg = dir.join("hub.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
url = "{db}"
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
name = "hotline"
mapping = "hotline.toml"
transport = "amqp"
url = "{AMQP_URL}"
exchange = "{orders}"
queue = "hub.{orders}"
bindings = ["order.#"]

[[sources]]
name = "terminal"
mapping = "terminal.toml"
transport = "mqtt"
url = "mqtt://127.0.0.1:1883"
topics = ["grid/220402/{worker}/report"]
client_id = "hub-feedback-{sfx}"
"#,
            db = db.url,
            platform = server.base_url()
        ),
    )
    .unwrap();

    // The hotline's side: its orders exchange, and a queue on its feedback exchange.
    let (_amqp, channel) = hotline_side(&orders, &feedback, &queue).await;
    let mut heard = channel
        .basic_consume(queue.as_str().into(), "test".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();

    // The worker's terminal: reports, and listens on its notify topic.
    let (mqtt, mut notified) = terminal_side(&sfx, &worker).await;

    let mut hub = HubProcess::start(&cfg);
    let mut order: serde_json::Value =
        serde_json::from_str(include_str!("../mappings/samples/hotline-created.json")).unwrap();
    let order_no = format!(
        "LY12345-20221203-{}",
        &sfx.chars().filter(char::is_ascii_digit).chain("000000".chars()).take(6).collect::<String>()
    );
    order["orderNo"] = order_no.clone().into();
    let mut report: serde_json::Value =
        serde_json::from_str(include_str!("../mappings/samples/terminal-report.json")).unwrap();
    let event_id = format!("{worker}-20221203-0001");
    report["msgId"] = uuid::Uuid::new_v4().to_string().into();
    report["eventId"] = event_id.clone().into();
    report["workerId"] = worker.clone().into();
    report["reason"] = "红旗街小学门口人行道护栏倒伏，学生上下学经过，存在安全隐患。".into();
    report["location"]["address"] = "龙山区红旗街小学门口".into();
    let props = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2);
    // Until both records are tickets on the platform (the connectors subscribe meanwhile).
    wait_for(Duration::from_secs(40), "both records on the platform", || {
        let (channel, mqtt, sim) = (&channel, &mqtt, &sim);
        let (orders, order, report, worker, props) = (&orders, &order, &report, &worker, props.clone());
        async move {
            let body = serde_json::to_vec(order).unwrap();
            channel
                .basic_publish(
                    orders.as_str().into(),
                    "order.created".into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await
                .unwrap()
                .await
                .unwrap();
            let topic = format!("grid/220402/{worker}/report");
            mqtt.publish(topic, QoS::AtLeastOnce, false, serde_json::to_vec(report).unwrap()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            sim.tickets().len() >= 2
        }
    })
    .await;
    // The ticket of each record, by what the platform got.
    let ticket_of = |record_id: &str| {
        sim.tickets()
            .into_iter()
            .find(|(id, _)| {
                sim.ticket(id)
                    .is_some_and(|t| t.body["sources"].as_array().unwrap().iter().any(|s| s["recordId"] == record_id))
            })
            .map(|(id, _)| id)
            .unwrap_or_else(|| panic!("no ticket for {record_id}"))
    };
    let (hotline_ticket, terminal_ticket) = (ticket_of(&order_no), ticket_of(&event_id));
    assert_ne!(hotline_ticket, terminal_ticket, "two matters");

    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let dispatched = |ticket: &str| {
        serde_json::json!({"ticketId": ticket, "status": "dispatched", "department": "龙山区住建局",
            "dueAt": "2026-12-09T18:00:00+08:00", "note": "请于三日内处理", "at": "2026-12-04T09:00:00+08:00"})
    };
    assert_eq!(callback(&client, endpoint, "ev-h-1", &dispatched(&hotline_ticket)).await, 200);
    assert_eq!(callback(&client, endpoint, "ev-t-1", &dispatched(&terminal_ticket)).await, 200);
    // Killed at once: what the callbacks queued is sent after the restart.
    hub.kill9();
    hub.restart();
    // The platform retries (the same event id) until the hub answers: applied once.
    let mut answer = 0;
    for _ in 0..100 {
        answer = callback(&client, endpoint, "ev-h-1", &dispatched(&hotline_ticket)).await;
        if answer != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, 200);

    // The hotline hears it: one message id, persistent, the order's number.
    let mut by_id: HashMap<String, (serde_json::Value, String)> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while by_id.is_empty() {
        let Ok(Some(Ok(d))) = tokio::time::timeout_at(deadline, heard.next()).await else {
            panic!("the hotline heard nothing\n{}", hub.log())
        };
        let id = d.properties.message_id().as_ref().map(|s| s.as_str().to_string()).expect("a message id");
        assert_eq!(d.properties.delivery_mode(), &Some(2), "persistent");
        let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
        by_id.insert(id, (body, d.routing_key.as_str().to_string()));
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    // Anything more within a few seconds is a resend of the same message.
    while let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(3), heard.next()).await {
        by_id
            .entry(d.properties.message_id().as_ref().unwrap().as_str().to_string())
            .or_insert((serde_json::Value::Null, String::new()));
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(by_id.len(), 1, "one change, one message id: {by_id:?}");
    let (body, key) = by_id.into_values().next().unwrap();
    assert_eq!(key, "feedback.dispatched");
    assert_eq!(body["orderNo"], order_no.as_str());
    assert_eq!((body["status"].as_str(), body["department"].as_str()), (Some("dispatched"), Some("龙山区住建局")));

    // The worker's terminal hears it on its notify topic.
    let note = tokio::time::timeout(Duration::from_secs(30), notified.recv()).await.expect("notified").unwrap();
    assert_eq!(note["eventId"], event_id.as_str(), "{note}");
    assert_eq!(note["ticketId"], terminal_ticket.as_str(), "{note}");
    assert_eq!(note["dueAt"], "2026-12-09T18:00:00+08:00", "{note}");

    let (ok, shown) = hub.cli(&["ticket", "show", &hotline_ticket]);
    assert!(ok && shown.contains("hotline told of dispatched"), "{shown}");
    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
    assert_no_personal_numbers_in(&hub.log());

    let _ = channel.queue_delete(queue.as_str().into(), Default::default()).await;
    let _ = channel.queue_delete(format!("hub.{orders}").as_str().into(), Default::default()).await;
    for x in [&orders, &feedback] {
        let _ = channel.exchange_delete(x.as_str().into(), Default::default()).await;
    }
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A court: its feed serves the sample page once; its outcomes endpoint can
/// be taken down (503 with Retry-After) and keeps what it accepts.
#[derive(Clone, Default)]
struct Court {
    down: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<String>>>,
}

async fn serve_court(court: Court) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::{Query, State};
    use axum::routing::{get, post};
    let page = include_str!("../mappings/samples/court-feed-page1.xml").replace("more=\"true\"", "more=\"false\"");
    let app = axum::Router::new()
        .route(
            "/mediation/feed",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let page = page.clone();
                async move {
                    if q.contains_key("after") {
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><MediationFeed court=\"吉0402\" generated=\"2024-07-15T10:00:00+08:00\" next=\"c-1723\" more=\"false\"></MediationFeed>".to_string()
                    } else {
                        page
                    }
                }
            }),
        )
        .route(
            "/mediation/outcomes",
            post(|State(c): State<Court>, body: String| async move {
                if c.down.load(Ordering::SeqCst) {
                    // No Retry-After: the hub's own backoff paces its tries.
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, [("x-down", "1")], String::new());
                }
                c.outcomes.lock().unwrap().push(body);
                (axum::http::StatusCode::OK, [("retry-after", "0")], String::new())
            }),
        )
        .with_state(court);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (base, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agencies_down_delay_only_their_own_messages_and_get_each_once_when_back() {
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let (orders, feedback, queue) =
        (format!("e2e.orders.{sfx}"), format!("e2e.feedback.{sfx}"), format!("e2e.outage.{sfx}"));
    let db = TestDb::postgres().await;
    let dir = std::env::temp_dir().join(format!("hub-outage-{sfx}"));
    mappings(&dir, &feedback);
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let court = Court::default();
    let (court_url, court_task) = serve_court(court.clone()).await;
    // The hub reaches RabbitMQ through a relay that can go down.
    let relay = TcpRelay::start("127.0.0.1:5672").await;
    let (endpoint, canon) = (free_port(), free_port());
    let cfg = dir.join("hub.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
url = "{db}"
[platform]
url = "{platform}"
token = "test-token"
secrets = ["{SECRET}"]
[delivery]
retry_initial = "50ms"
retry_max = "250ms"
[server]
listen = "127.0.0.1:{endpoint}"

[[sources]]
name = "canon"
mapping = "canonical"
transport = "http"
listen = "127.0.0.1:{canon}"
open = true

[[sources]]
name = "hotline"
mapping = "hotline.toml"
transport = "amqp"
url = "amqp://guest:guest@127.0.0.1:{relay}/%2f"
exchange = "{orders}"
queue = "hub.{orders}"
bindings = ["order.#"]

[[sources]]
name = "court"
mapping = "court.toml"
transport = "court_feed"
url = "{court_url}"
court = "吉0402"
poll_interval = "1s"
"#,
            db = db.url,
            platform = server.base_url(),
            relay = relay.port,
        ),
    )
    .unwrap();
    let (_amqp, channel) = hotline_side(&orders, &feedback, &queue).await;

    let mut hub = HubProcess::start(&cfg);
    let mut order: serde_json::Value =
        serde_json::from_str(include_str!("../mappings/samples/hotline-created.json")).unwrap();
    let digits: String = sfx.chars().filter(char::is_ascii_digit).chain("000000".chars()).take(6).collect();
    let order_no = format!("LY12345-20221204-{digits}");
    order["orderNo"] = order_no.clone().into();
    let props = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2);
    wait_for(Duration::from_secs(40), "the order and both court cases on the platform", || {
        let (channel, sim, orders, order, props) = (&channel, &sim, &orders, &order, props.clone());
        async move {
            let body = serde_json::to_vec(order).unwrap();
            channel
                .basic_publish(
                    orders.as_str().into(),
                    "order.created".into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await
                .unwrap()
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            sim.tickets().len() >= 3
        }
    })
    .await;
    let ticket_of = |record_id: &str| {
        sim.tickets()
            .into_iter()
            .find(|(id, _)| {
                sim.ticket(id)
                    .is_some_and(|t| t.body["sources"].as_array().unwrap().iter().any(|s| s["recordId"] == record_id))
            })
            .map(|(id, _)| id)
            .unwrap_or_else(|| panic!("no ticket for {record_id}: {:?}", sim.tickets()))
    };
    let case_no = "(2024)吉0402民诉前调122号";
    let (hotline_ticket, court_ticket) = (ticket_of(&order_no), ticket_of(case_no));

    // Both agencies go away.
    relay.down();
    court.down.store(true, Ordering::SeqCst);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let dispatched = serde_json::json!({"ticketId": hotline_ticket, "status": "dispatched", "department": "龙山区住建局",
        "dueAt": "2026-12-09T18:00:00+08:00", "note": "请于三日内处理", "at": "2026-12-04T09:00:00+08:00"});
    let resolved = serde_json::json!({"ticketId": court_ticket, "status": "resolved", "department": "龙山区司法局",
        "note": "双方达成调解协议", "at": "2026-12-04T15:00:00+08:00",
        "mediation": {"caseNo": case_no, "result": "AGREED"}});
    assert_eq!(callback(&client, endpoint, "ev-o-1", &dispatched).await, 200);
    assert_eq!(callback(&client, endpoint, "ev-o-2", &resolved).await, 200);

    // Meanwhile the platform still gets what comes in.
    let m = &simulators::canonical::matters(71, 1, "OUTAGE")[0];
    let created = send_until_acknowledged(&client, &format!("http://127.0.0.1:{canon}/records"), m.payload(1)).await;
    let during = created["ticketId"].as_str().unwrap().to_string();
    wait_for(Duration::from_secs(20), "a new ticket on the platform during the outage", || {
        let (sim, during) = (&sim, &during);
        async move { sim.ticket(during).is_some() }
    })
    .await;
    // Both messages wait, tried and not lost, for a long outage in
    // simulated time: ten minutes at the default backoff cap (30 s) is
    // twenty tries at the cap; here the cap is 250 ms.
    wait_for(Duration::from_secs(60), "both messages tried twenty times during the outage", || {
        let hub = &hub;
        async move {
            let (_, listed) = hub.cli(&["feedback", "list"]);
            let tries = |l: &str| {
                let (head, _) = l.split_once(" attempt(s))")?;
                head.rsplit('(').next()?.parse::<u32>().ok()
            };
            listed.lines().filter_map(tries).filter(|&n| n >= 20).count() == 2
        }
    })
    .await;
    let (_, dead) = hub.cli(&["feedback", "list", "--dead"]);
    assert!(!dead.contains("attempt(s)"), "nothing given up during the outage: {dead}");
    assert!(court.outcomes.lock().unwrap().is_empty());

    // Back: each arrives, once.
    relay.up();
    court.down.store(false, Ordering::SeqCst);
    wait_for(Duration::from_secs(60), "the court's outcome", || {
        let court = &court;
        async move { !court.outcomes.lock().unwrap().is_empty() }
    })
    .await;
    let mut heard = channel
        .basic_consume(queue.as_str().into(), "outage".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let d =
        tokio::time::timeout(Duration::from_secs(60), heard.next()).await.expect("the hotline heard").unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
    assert_eq!((body["orderNo"].as_str(), body["status"].as_str()), (Some(order_no.as_str()), Some("dispatched")));
    d.ack(BasicAckOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcomes = court.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(outcomes[0].starts_with(&format!("<Outcome caseNo=\"{case_no}\" result=\"AGREED\"")), "{outcomes:?}");
    let (_, listed) = hub.cli(&["feedback", "list"]);
    assert!(listed.contains("no status messages waiting"), "{listed}");

    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
    let _ = channel.queue_delete(queue.as_str().into(), Default::default()).await;
    let _ = channel.queue_delete(format!("hub.{orders}").as_str().into(), Default::default()).await;
    for x in [&orders, &feedback] {
        let _ = channel.exchange_delete(x.as_str().into(), Default::default()).await;
    }
    court_task.abort();
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_crossing_reminds_the_worker_once_across_restarts() {
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let worker = format!("W{}", &sfx[..6]);
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-deadline-{sfx}"));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let cfg = dir.join("hub.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
url = "{db}"
[platform]
url = "{platform}"
token = "test-token"
[deadlines]
remind_at = 0.8
check_every = "200ms"

[[sources]]
name = "terminal"
mapping = "builtin:terminal"
transport = "mqtt"
url = "mqtt://127.0.0.1:1883"
topics = ["grid/220402/{worker}/report"]
client_id = "hub-deadline-{sfx}"
"#,
            db = db.url,
            platform = server.base_url()
        ),
    )
    .unwrap();
    let (mqtt, mut notified) = terminal_side(&sfx, &worker).await;

    let mut hub = HubProcess::start(&cfg);
    // Reported 20 hours ago with 24 hours to go: past 80% of its time.
    let mut report: serde_json::Value =
        serde_json::from_str(include_str!("../mappings/samples/terminal-report.json")).unwrap();
    let event_id = format!("{worker}-20261206-0001");
    report["msgId"] = uuid::Uuid::new_v4().to_string().into();
    report["eventId"] = event_id.clone().into();
    report["workerId"] = worker.clone().into();
    report["occurredAt"] = (chrono::Utc::now().timestamp_millis() - 20 * 3_600_000).into();
    report["deadlineHours"] = 24.into();
    wait_for(Duration::from_secs(30), "the report on the platform", || {
        let (mqtt, sim, worker, report) = (&mqtt, &sim, &worker, &report);
        async move {
            let topic = format!("grid/220402/{worker}/report");
            mqtt.publish(topic, QoS::AtLeastOnce, false, serde_json::to_vec(report).unwrap()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            !sim.tickets().is_empty()
        }
    })
    .await;
    let note = tokio::time::timeout(Duration::from_secs(30), notified.recv()).await.expect("reminded").unwrap();
    assert_eq!(
        (note["status"].as_str(), note["eventId"].as_str()),
        (Some("due_soon"), Some(event_id.as_str())),
        "{note}"
    );
    let ticket = sim.tickets()[0].0.clone();

    // Killed, started again, stopped and started again: no second reminder.
    hub.kill9();
    hub.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    hub.terminate();
    hub.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ok, shown) = hub.cli(&["ticket", "show", &ticket]);
    assert!(ok, "{shown}");
    assert_eq!(shown.matches("due soon: reminder sent").count(), 1, "{shown}");
    let (_, due) = hub.cli(&["tickets", "due"]);
    assert!(due.contains(&format!("due soon {ticket}")), "{due}");
    let mut more = Vec::new();
    while let Ok(Some(n)) = tokio::time::timeout(Duration::from_millis(500), notified.recv()).await {
        more.push(n);
    }
    // A resend of the same reminder (QoS 1 after a kill) carries the same `at`.
    assert!(more.iter().all(|n| n["at"] == note["at"]), "a second reminder: {more:?}");

    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
