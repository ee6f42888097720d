//! Records the database refuses, through the real connectors on the real
//! brokers into an in-process hub on PostgreSQL: a hotline order whose
//! `orderNo` holds U+0000 (AMQP would requeue it for ever) and a terminal
//! report whose `eventId` is 5 KB (the MQTT session would stop at it on
//! every reconnect). Each is quarantined with a reason a person can read,
//! and the records after it on the same stream are stored.

use std::sync::Arc;
use std::time::Duration;

use connectors::BoxedConnector;
use connectors::amqp::{AmqpConfig, AmqpConnector};
use connectors::mqtt::{MqttConfig, MqttConnector};
use e2e::*;
use hub::Hub;
use hub::mapping::Mappings;
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use simulators::platform::{PlatformSim, SimConfig};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn order(order_no: &str, n: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "orderNo": order_no, "version": 1, "callerNumber": "13904371234", "callerName": "王女士",
        "callTime": "2022-07-12 16:05:41", "appealType": "2", "category": "市政设施-下水井",
        "content": format!("第{n}件：{}", ["路灯不亮已有三天", "小区垃圾无人清运", "公交站牌被撞倒", "河道漂浮大量杂物"][n % 4]),
        "address": format!("龙山区第{n}大街"), "areaCode": "220402", "agentId": "0712"
    }))
    .unwrap()
}

fn report(worker: &str, event_id: &str, n: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "msgId": format!("5b0e7c2a-3f1d-4e8b-9a61-{:012x}", n), "eventId": event_id, "workerId": worker,
        "gridId": "220402002007-G05", "reason": format!("第{n}处：{}", ["井盖缺失", "围墙倒塌", "路面塌陷"][n as usize % 3]),
        "category": "城市管理/市政设施", "occurredAt": 1657613100000_u64 + n
    }))
    .unwrap()
}

/// 5,000 letters and digits that do not compress.
fn long_event_id(worker: &str) -> String {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let letters: String = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize] as char
        })
        .collect();
    format!("{worker}{letters}-20220712-0001")
}

/// The worker of [`long_event_id`]: its prefix.
fn long_worker(worker: &str) -> String {
    long_event_id(worker).split('-').next().unwrap().to_string()
}

/// (stored, quarantined) raw records of `system`.
async fn counts(hub: &Hub, system: &str) -> (i64, i64) {
    let rows = hub.store.record_counts().await.unwrap();
    let of = |f: &dyn Fn(&str) -> bool| rows.iter().filter(|(s, o, _)| s == system && f(o)).map(|r| r.2).sum::<i64>();
    (of(&|o| o != "quarantined"), of(&|o| o == "quarantined"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_postgres_refuses_are_quarantined_and_their_streams_go_on() {
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let worker = format!("W{sfx}");
    let (exchange, queue) = (format!("e2e.unstorable.{sfx}"), format!("hub.e2e.unstorable.{sfx}"));
    let db = TestDb::postgres().await;
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let mut s = settings(&db.url, &server.base_url());
    s.embedded_mqtt = None;

    let mut mappings = Mappings::new();
    for agency in ["hotline", "terminal"] {
        let mapper = hub::mapping::shipped::mapper(agency).unwrap().unwrap();
        mappings.insert(agency, Arc::new(mapper));
    }
    let mut amqp_config = AmqpConfig::new(AMQP_URL, "hotline", &exchange, &queue).with_binding_keys(["order.#"]);
    amqp_config.requeue_delay = Duration::from_millis(200);
    let mqtt_config = MqttConfig::new("mqtt://127.0.0.1:1883", "terminal")
        .with_client_id(format!("hub-e2e-{sfx}"))
        .with_topics([format!("grid/220402/{worker}/#"), format!("grid/220402/{}/#", long_worker(&worker))]);
    let connectors: Vec<BoxedConnector> =
        vec![Box::new(AmqpConnector::new(amqp_config)), Box::new(MqttConnector::new(mqtt_config).unwrap())];

    // The agencies' side; the exchange exists before the hub binds to it.
    let amqp = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .unwrap();
    let hub = Hub::start_with(s, mappings, connectors).await.unwrap();
    let publish = |body: Vec<u8>| {
        let (channel, exchange) = (channel.clone(), exchange.clone());
        async move {
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("utf-8".into())
                .with_delivery_mode(2);
            let opts = BasicPublishOptions::default();
            let key = "order.created".into();
            channel.basic_publish(exchange.as_str().into(), key, opts, &body, props).await.unwrap().await.unwrap();
        }
    };
    let mut options = MqttOptions::new(format!("terminal-{sfx}"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(10)).set_max_packet_size(1 << 20, 1 << 20);
    let (mqtt, mut eventloop) = AsyncClient::new(options, 100);
    tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let topic = format!("grid/220402/{worker}/report");
    let send = |body: Vec<u8>| {
        let (mqtt, topic) = (mqtt.clone(), topic.clone());
        async move { mqtt.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap() }
    };

    // A good record of each first, again until it is in (the queue and the
    // subscription are the hub's to make): both streams flow.
    wait_for(Duration::from_secs(60), "a first order and a first report stored", || async {
        publish(order("LY12345-20220712-000001", 1)).await;
        send(report(&worker, &format!("{worker}-20220712-0001"), 1)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        counts(&hub, "hotline").await.0 == 1 && counts(&hub, "terminal").await.0 == 1
    })
    .await;

    // The bad ones, then more good ones behind them on the same streams.
    let long = long_event_id(&worker);
    publish(order("LY12345-20220712-\u{0}00002", 2)).await;
    // From a worker whose id is as long as the event's prefix: the mapping
    // takes it, the record id is what is too long.
    let long_topic = format!("grid/220402/{}/report", long_worker(&worker));
    mqtt.publish(long_topic, QoS::AtLeastOnce, false, report(&long_worker(&worker), &long, 2)).await.unwrap();
    for n in 3..6 {
        publish(order(&format!("LY12345-20220712-00000{n}"), n)).await;
        send(report(&worker, &format!("{worker}-20220712-000{n}"), n as u64)).await;
    }
    wait_for(Duration::from_secs(60), "the later records stored, the bad ones quarantined", || async {
        counts(&hub, "hotline").await == (4, 1) && counts(&hub, "terminal").await == (4, 1)
    })
    .await;

    let held = hub.store.quarantined(false).await.unwrap();
    let reason = |system: &str| held.iter().find(|q| q.system == system).map(|q| q.reason.clone()).unwrap();
    let hotline = reason("hotline");
    assert!(hotline.contains("orderNo") && hotline.contains("\\u{0}"), "a readable reason: {hotline}");
    let terminal = reason("terminal");
    let said = format!("record id has {} bytes", long.len());
    assert!(terminal.contains(&said), "a readable reason: {terminal}");
    wait_for(Duration::from_secs(30), "the stored records delivered", || async { sim.tickets().len() >= 2 }).await;

    hub.shutdown().await;
    // The hub's persistent session would stay on the shared broker: end it.
    let mut options = MqttOptions::new(format!("hub-e2e-{sfx}"), "127.0.0.1", 1883);
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while !matches!(eventloop.poll().await, Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) {}
    })
    .await;
    let _ = client.disconnect().await;
    let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = channel.queue_delete(format!("{queue}.dead").as_str().into(), QueueDeleteOptions::default()).await;
    let _ = channel.exchange_delete(format!("{queue}.dlx").as_str().into(), ExchangeDeleteOptions::default()).await;
    let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
    let _ = amqp.close(0, "done".into()).await;
    server.stop().await;
    db.cleanup().await;
}
