//! Agency records over the real brokers, through the real `hub` process,
//! with a SIGKILL in the middle.

use std::time::Duration;

use e2e::*;
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use simulators::canonical::matters;
use simulators::platform::{PlatformSim, SimConfig};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_and_mqtt_sources_survive_a_sigkill_of_the_hub() {
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let (exchange, queue, topic) = (format!("e2e.orders.{sfx}"), format!("hub.e2e.{sfx}"), format!("e2e/{sfx}"));
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-brokers-{sfx}"));
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
timeout = "5s"
[delivery]
retry_initial = "100ms"
retry_max = "1s"
pause_max = "1s"

[[sources]]
name = "orders"
mapping = "canonical"
transport = "amqp"
url = "{AMQP_URL}"
exchange = "{exchange}"
queue = "{queue}"
bindings = ["order.#"]

[[sources]]
name = "grid"
mapping = "canonical"
transport = "mqtt"
url = "mqtt://127.0.0.1:1883"
topics = ["{topic}/#"]
client_id = "hub-e2e-{sfx}"
"#,
            db = db.url,
            platform = server.base_url()
        ),
    )
    .unwrap();

    // The agency side: the exchange exists before the hub binds to it.
    let amqp = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .unwrap();
    let mut options = MqttOptions::new(format!("terminal-{sfx}"), "127.0.0.1", 1883);
    options.set_clean_session(false).set_keep_alive(Duration::from_secs(10));
    let (mqtt, mut eventloop) = AsyncClient::new(options, 1000);
    tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    let mut hub = HubProcess::start(&cfg);
    // Wait until both connectors are subscribed: probes go through.
    let probe = |id: &str| {
        let mut r = matters(60, 1, "PROBE")[0].record(1);
        r["recordId"] = id.into();
        serde_json::to_vec(&r).unwrap()
    };
    let publish_amqp = |key: String, body: Vec<u8>, id: String| {
        let channel = channel.clone();
        let exchange = exchange.clone();
        async move {
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("utf-8".into())
                .with_delivery_mode(2)
                .with_message_id(id.into());
            channel
                .basic_publish(
                    exchange.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    wait_for(Duration::from_secs(30), "both connectors ready", || {
        let (publish_amqp, mqtt, topic, sim) = (&publish_amqp, &mqtt, &topic, &sim);
        async move {
            publish_amqp("order.created".into(), probe("PROBE-A"), "PROBE-A:1".into()).await;
            mqtt.publish(format!("{topic}/W1/report"), QoS::AtLeastOnce, false, probe("PROBE-M")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            sim.tickets().len() == 2
        }
    })
    .await;

    // 400 records on each broker, the hub SIGKILLed in the middle.
    let ms = matters(61, 800, "BRK");
    for (i, m) in ms.iter().enumerate() {
        if i % 2 == 0 {
            publish_amqp("order.created".into(), m.payload(1), format!("{}:1", m.record_id)).await;
        } else {
            mqtt.publish(format!("{topic}/W{}/report", i % 7), QoS::AtLeastOnce, false, m.payload(1)).await.unwrap();
        }
        if i == 300 {
            // Mid-stream: whatever the hub had not committed is redelivered.
            tokio::time::sleep(Duration::from_millis(150)).await;
            hub.kill9();
        }
        if i == 500 {
            // 200 records waited in the broker while the hub was down.
            tokio::time::sleep(Duration::from_millis(500)).await;
            hub.restart();
        }
    }
    let expected = ms.len() + 2;
    wait_for(Duration::from_secs(60), "every record on the platform", || async { sim.tickets().len() == expected })
        .await;
    assert!(hub.terminate().success());

    let stats = sim.stats();
    assert_eq!(stats.applied as usize, expected, "each record applied once: {stats:?}");
    let store = hub::store::Store::open(&db.url).await.unwrap();
    let counts = store.record_counts().await.unwrap();
    let created: i64 = counts.iter().filter(|(_, o, _)| o == "created").map(|(_, _, n)| n).sum();
    assert_eq!(created as usize, expected, "{counts:?}");
    store.close().await;
    assert_no_personal_numbers(&cfg.with_extension("log"));

    let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = channel.queue_delete(format!("{queue}.dead").as_str().into(), QueueDeleteOptions::default()).await;
    let _ = channel.exchange_delete(exchange.as_str().into(), Default::default()).await;
    let _ = channel.exchange_delete(format!("{queue}.dlx").as_str().into(), Default::default()).await;
    let _ = amqp.close(0, "done".into()).await;
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default setup (an mqtt source that names no broker) must not lose
/// what a terminal was told was received. Terminals publish while the hub's
/// intake is held, get their PUBACKs from the broker, and the hub is then
/// killed (first round: intake held by another writer on its SQLite file)
/// or stopped gracefully (second round: the whole process held by
/// SIGSTOP), and started again: every report is stored. With the in-memory
/// broker the hub used to start by default, the PUBACKs came from inside
/// the hub's own process and what it had not stored went down with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_setup_keeps_terminal_reports_acknowledged_while_the_hub_was_held_across_restarts() {
    const N: usize = 150;
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let topic = format!("e2e-default/{sfx}");
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-mqtt-default-{sfx}"));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let cfg = dir.join("hub.toml");
    // No `url`: the default broker. (HUB_MQTT_URL, if the environment has
    // one, names the same local Mosquitto in CI.)
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
url = "{db}"
[platform]
url = "{platform}"
token = "test-token"
timeout = "5s"
[delivery]
retry_initial = "100ms"
retry_max = "1s"

[[sources]]
name = "grid"
mapping = "canonical"
transport = "mqtt"
topics = ["{topic}/#"]
client_id = "hub-e2e-default-{sfx}"
"#,
            db = db.url,
            platform = server.base_url()
        ),
    )
    .unwrap();

    let mut options = MqttOptions::new(format!("terminal-default-{sfx}"), "127.0.0.1", 1883);
    options.set_clean_session(false).set_keep_alive(Duration::from_secs(10));
    let (mqtt, mut eventloop) = AsyncClient::new(options, 1000);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = acked.clone();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    let acked_now = || acked.load(std::sync::atomic::Ordering::Relaxed);

    let mut hub = HubProcess::start(&cfg);
    let mut probe = matters(70, 1, "PROBE")[0].record(1);
    probe["recordId"] = "PROBE-DEFAULT".into();
    let probe = serde_json::to_vec(&probe).unwrap();
    wait_for(Duration::from_secs(30), "the hub subscribed to the default broker", || {
        let (mqtt, topic, sim, probe) = (&mqtt, &topic, &sim, probe.clone());
        async move {
            mqtt.publish(format!("{topic}/W0/report"), QoS::AtLeastOnce, false, probe).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            sim.tickets().len() == 1
        }
    })
    .await;
    let probes = acked_now();

    let ms = matters(71, 2 * N, "DFLT");
    for (round, batch) in ms.chunks(N).enumerate() {
        // Round 0: the store is locked by another writer, so the hub takes
        // messages but cannot commit them. Round 1: the hub hangs.
        let mut lock = None;
        if round == 0 {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
            lock = Some(conn);
        } else {
            hub.signal("STOP");
        }
        for (i, m) in batch.iter().enumerate() {
            mqtt.publish(format!("{topic}/W{}/report", i % 5), QoS::AtLeastOnce, false, m.payload(1)).await.unwrap();
        }
        let sent = probes + (round + 1) * N;
        wait_for(Duration::from_secs(30), "the broker acknowledged every report to the terminal", || async {
            acked_now() >= sent
        })
        .await;
        if let Some(mut conn) = lock.take() {
            hub.kill9();
            sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
            drop(conn);
        } else {
            hub.signal("CONT");
            assert!(hub.terminate().success(), "graceful stop");
        }
        hub.restart();
        let expected = 1 + (round + 1) * N;
        wait_for(Duration::from_secs(60), "every acknowledged report stored and delivered", || async {
            sim.tickets().len() == expected
        })
        .await;
    }
    assert!(hub.terminate().success());

    let store = hub::store::Store::open(&db.url).await.unwrap();
    let counts = store.record_counts().await.unwrap();
    let created: i64 = counts.iter().filter(|(_, o, _)| o == "created").map(|(_, _, n)| n).sum();
    assert_eq!(created as usize, 1 + 2 * N, "{counts:?}");
    store.close().await;
    assert_no_personal_numbers(&cfg.with_extension("log"));
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
