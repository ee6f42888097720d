//! The connector against real brokers (the machine's Mosquitto on 1883, a
//! private Mosquitto the test can restart, the embedded rumqttd) and a fake
//! hub. Every test uses its own county segment and client ids.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::testkit::*;
use super::{EmbeddedBroker, MqttConfig, MqttProtocol, Notifier, NotifyError};

const KINDS: [&str; 3] = ["report", "progress", "evaluation"];

fn topics(county: &str) -> Vec<String> {
    KINDS.iter().map(|k| format!("grid/{county}/+/{k}")).collect()
}

fn mosquitto_port() -> u16 {
    MOSQUITTO.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_messages_arrive_with_topic_metadata() {
    init_logs();
    let url = system_mosquitto();
    let county = unique("t");
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let connector = run_connector(config(&url, &unique("hub-"), &topics(&county)), intake);
    let terminal = Terminal::connect(mosquitto_port(), &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    let mut expected = Vec::new();
    for worker in ["W0001", "W0002", "W0003"] {
        for kind in KINDS {
            for n in 0..4 {
                let id = format!("{worker}-{kind}-{n}");
                terminal.send(&format!("grid/{county}/{worker}/{kind}"), &id).await;
                expected.push((id, worker, kind));
            }
        }
    }
    let n = expected.len();
    wait_until(Duration::from_secs(10), "all messages stored", || count_created(&store) == n).await;

    {
        let s = store.lock().unwrap();
        for (id, worker, kind) in &expected {
            let meta = &s.created[id];
            let get = |k: &str| meta.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
            assert_eq!(get("topic"), Some(format!("grid/{county}/{worker}/{kind}").as_str()));
            assert_eq!(get("county"), Some(county.as_str()));
            assert_eq!(get("worker_id"), Some(*worker));
            assert_eq!(get("kind"), Some(*kind));
            assert_eq!(get("qos"), Some("1"));
            assert!(get("pkid").is_some() && get("dup").is_some());
        }
        assert_eq!(s.duplicates, 0);
    }
    connector.stop().await.unwrap();
}

/// Holds every submit of `config`'s connector while `total` messages are
/// published on `port`, until `expected` of them reached the hub, and checks
/// that no more come (none was acknowledged, so the broker's window stays
/// full). Then kills the connector (no graceful shutdown, the held answers
/// never come) and checks that a new one on the same session is given all
/// `total`: nothing was acknowledged before the hub answered, nothing lost.
async fn held_hub_window(port: u16, make: impl Fn() -> MqttConfig, county: &str, total: usize, expected: usize) {
    let held = Shared::default();
    let (intake, seen) = fake_hub(held.clone(), Duration::ZERO, |_, _| Reply::Hold);
    let first = run_connector(make(), intake);
    let terminal = Terminal::connect(port, &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    let published: HashSet<String> = (0..total).map(|i| format!("m{i}")).collect();
    for i in 0..total {
        terminal.send(&format!("grid/{county}/W1/report"), &format!("m{i}")).await;
    }
    terminal.wait_acked(total, Duration::from_secs(10)).await;
    wait_until(Duration::from_secs(5), &format!("the hub holds {expected}"), || {
        held.lock().unwrap().held.len() >= expected
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.messages.load(Ordering::Relaxed),
        expected,
        "{expected} in flight to the hub at once, none acknowledged, nothing beyond the window"
    );

    first.task.abort();
    let _ = first.task.await;
    held.lock().unwrap().held.clear();

    let store = Shared::default();
    let (intake, _) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let second = run_connector(make(), intake);
    wait_until(Duration::from_secs(10), &format!("all {total} stored"), || count_created(&store) == total).await;
    assert_eq!(created_ids(&store), published);
    second.stop().await.unwrap();
}

/// The default configuration speaks MQTT 5 and tells the broker it takes
/// `inflight` (256) messages at once (Receive Maximum), so a Mosquitto with
/// its default `max_inflight_messages` (20) still has 256 unacknowledged
/// messages on their way to the hub, and one commit can hold all of them.
/// While the hub holds its answers none is acknowledged, and no 257th comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_by_default_more_than_20_in_flight_and_no_puback_before_the_hub_answers() {
    init_logs();
    let broker = PrivateMosquitto::start("");
    let county = unique("t");
    let client_id = unique("hub-");
    let make = || config(&broker.url(), &client_id, &topics(&county));
    assert_eq!((make().protocol, make().inflight), (MqttProtocol::V5, 256), "the defaults");
    held_hub_window(broker.port, make, &county, 300, 256).await;

    // The broker sends what the connector asks for, not its own 20.
    let county = unique("t");
    let client_id = unique("hub-");
    let make = || {
        let mut c = config(&broker.url(), &client_id, &topics(&county));
        c.inflight = 37;
        c
    };
    held_hub_window(broker.port, make, &county, 50, 37).await;
}

/// `protocol = "3.1.1"`, for brokers without MQTT 5: the broker cannot be
/// told a window, so Mosquitto's own `max_inflight_messages` (20 by
/// default) is what reaches the hub at once; messages are stored, and none
/// is acknowledged before the hub answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt311_when_told_works_with_the_brokers_window_of_20_and_no_puback_before_the_hub_answers() {
    init_logs();
    let url = system_mosquitto();
    let county = unique("t");
    let client_id = unique("hub-");
    let make = || config(&url, &client_id, &topics(&county)).with_protocol(MqttProtocol::V311);
    held_hub_window(mosquitto_port(), make, &county, 30, 20).await;

    // Stored and acknowledged as over MQTT 5, with the topic's metadata.
    let county = unique("t");
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let v311 = config(&url, &unique("hub-"), &topics(&county)).with_protocol(MqttProtocol::V311);
    let connector = run_connector(v311, intake);
    let terminal = Terminal::connect(mosquitto_port(), &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    for i in 0..50 {
        terminal.send(&format!("grid/{county}/W{}/{}", i % 3, KINDS[i % 3]), &format!("m{i}")).await;
    }
    wait_until(Duration::from_secs(10), "all 50 stored over 3.1.1", || count_created(&store) == 50).await;
    {
        let s = store.lock().unwrap();
        let meta = &s.created["m4"];
        assert!(meta.contains(&("worker_id".to_string(), "W1".to_string())), "{meta:?}");
        assert_eq!(s.duplicates, 0);
    }
    connector.stop().await.unwrap();
}

/// Store errors leave the message unacknowledged; it comes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_store_errors_are_delivered_again() {
    init_logs();
    let url = system_mosquitto();
    let county = unique("t");
    let store = Shared::default();
    // Every fifth message fails twice before it is stored.
    let policy = |id: &str, attempt: usize| {
        let n: usize = id[1..].parse().unwrap();
        if n.is_multiple_of(5) && attempt <= 2 { Reply::Fail } else { Reply::Store }
    };
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, policy);
    let connector = run_connector(config(&url, &unique("hub-"), &topics(&county)), intake);
    let terminal = Terminal::connect(mosquitto_port(), &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    let published: HashSet<String> = (0..50).map(|i| format!("m{i}")).collect();
    for i in 0..50 {
        terminal.send(&format!("grid/{county}/W{}/progress", i % 4), &format!("m{i}")).await;
    }
    wait_until(Duration::from_secs(20), "all 50 stored", || count_created(&store) == 50).await;
    assert_eq!(created_ids(&store), published);
    {
        let s = store.lock().unwrap();
        assert!(s.failures >= 20, "two failures for each of 10 messages, got {}", s.failures);
        println!("store errors: {} failures, {} redeliveries answered Duplicate", s.failures, s.duplicates);
    }
    connector.stop().await.unwrap();
}

/// Mosquitto stops and starts again (same port, same persistence file)
/// while terminals publish 1,000 messages; every one is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_survives_a_broker_restart() {
    init_logs();
    let mut broker = PrivateMosquitto::start("");
    let county = unique("t");
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let connector = run_connector(config(&broker.url(), &unique("hub-"), &topics(&county)), intake);
    until_subscribed(&Terminal::connect(broker.port, &unique("term-")), &format!("grid/{county}/W0/report"), &[&seen])
        .await;

    const TERMINALS: usize = 4;
    const EACH: usize = 250;
    let mut publishers = Vec::new();
    for t in 0..TERMINALS {
        let terminal = Terminal::connect(broker.port, &unique("term-"));
        let topic = format!("grid/{county}/W{t}/report");
        publishers.push(tokio::spawn(async move {
            for i in 0..EACH {
                terminal.send(&topic, &format!("t{t}-{i}")).await;
                if i % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(100)).await; // ~2.5 s in all
                }
            }
            terminal.wait_acked(EACH, Duration::from_secs(30)).await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = count_created(&store);
    broker.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.start_again();
    for p in publishers {
        p.await.unwrap();
    }
    let total = TERMINALS * EACH;
    wait_until(Duration::from_secs(30), "all 1,000 stored", || count_created(&store) == total).await;
    let expected: HashSet<String> = (0..TERMINALS).flat_map(|t| (0..EACH).map(move |i| format!("t{t}-{i}"))).collect();
    assert_eq!(created_ids(&store), expected);
    let duplicates = store.lock().unwrap().duplicates;
    println!(
        "broker restart: {before} stored before the stop, {total} stored once each as Created, \
         {duplicates} redeliveries answered Duplicate"
    );
    assert!(before > 0 && before < total, "the restart fell mid-stream ({before} before it)");
    connector.stop().await.unwrap();
}

/// The broker comes back without the session (its database lost): the
/// connector sees `session_present=false` and subscribes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_resubscribes_when_the_broker_lost_the_session() {
    init_logs();
    let mut broker = PrivateMosquitto::start("");
    let county = unique("t");
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let connector = run_connector(config(&broker.url(), &unique("hub-"), &topics(&county)), intake);
    let topic = format!("grid/{county}/W1/report");
    {
        let terminal = Terminal::connect(broker.port, &unique("term-"));
        until_subscribed(&terminal, &topic, &[&seen]).await;
        terminal.send(&topic, "before").await;
        wait_until(Duration::from_secs(5), "stored before the restart", || count_created(&store) == 1).await;
    }

    broker.stop();
    broker.forget_sessions();
    broker.start_again();
    // Until the connector has subscribed again the broker drops what is
    // published: without the new subscription no probe would ever arrive.
    let terminal = Terminal::connect(broker.port, &unique("term-"));
    let before = seen.probes.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while seen.probes.load(Ordering::Relaxed) == before {
        assert!(Instant::now() < deadline, "no probe arrived: not subscribed again");
        terminal.send(&topic, &format!("probe-again{n}")).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..10 {
        terminal.send(&topic, &format!("after{i}")).await;
    }
    wait_until(Duration::from_secs(5), "10 stored after the restart", || count_created(&store) == 11).await;
    connector.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_embedded_broker_carries_messages() {
    init_logs();
    let broker = EmbeddedBroker::start_on_free_port(1883).unwrap();
    let county = unique("t");
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    // The main listener speaks MQTT 3.1.1 (as the hub's `embedded_broker` uses it).
    let v311 = config(&broker.url(), &unique("hub-"), &topics(&county)).with_protocol(MqttProtocol::V311);
    let connector = run_connector(v311, intake);
    let terminal = Terminal::connect(broker.addr().port(), &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    for i in 0..40 {
        terminal.send(&format!("grid/{county}/W{}/{}", i % 3, KINDS[i % 3]), &format!("m{i}")).await;
    }
    wait_until(Duration::from_secs(10), "all 40 stored", || count_created(&store) == 40).await;
    connector.stop().await.unwrap();

    // MQTT 5 with a shared group, on the embedded broker's second listener.
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let v5 = config(&broker.v5_url(), &unique("hub-"), &topics(&county)).with_shared_group("hubs");
    let connector = run_connector(v5, intake);
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    for i in 0..10 {
        terminal.send(&format!("grid/{county}/W1/report"), &format!("v5-{i}")).await;
    }
    wait_until(Duration::from_secs(10), "10 stored over MQTT 5", || count_created(&store) == 10).await;
    connector.stop().await.unwrap();
}

/// rumqttd keeps persistent sessions in memory: what the killed connector
/// never acknowledged comes again to its successor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_embedded_broker_redelivers_unacknowledged() {
    init_logs();
    let broker = EmbeddedBroker::start_on_free_port(1883).unwrap();
    let county = unique("t");
    let client_id = unique("hub-");
    let held = Shared::default();
    let (intake, seen) = fake_hub(held.clone(), Duration::ZERO, |_, _| Reply::Hold);
    // The main listener speaks MQTT 3.1.1 (as the hub's `embedded_broker` uses it).
    let make = || config(&broker.url(), &client_id, &topics(&county)).with_protocol(MqttProtocol::V311);
    let first = run_connector(make(), intake);
    let terminal = Terminal::connect(broker.addr().port(), &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    for i in 0..30 {
        terminal.send(&format!("grid/{county}/W1/report"), &format!("m{i}")).await;
    }
    wait_until(Duration::from_secs(5), "the hub holds some", || held.lock().unwrap().held.len() >= 10).await;
    first.task.abort();
    let _ = first.task.await;

    let store = Shared::default();
    let (intake, _) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let second = run_connector(make(), intake);
    wait_until(Duration::from_secs(10), "all 30 stored", || count_created(&store) == 30).await;
    second.stop().await.unwrap();
}

/// Shutdown in the middle of a stream: the connector returns, having
/// acknowledged what the hub stored; a new connector gets exactly the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_graceful_shutdown_mid_load() {
    init_logs();
    let url = system_mosquitto();
    let county = unique("t");
    let client_id = unique("hub-");
    let first_store = Shared::default();
    // A hub that takes a while, so submits are in flight at shutdown.
    let (intake, seen) = fake_hub(first_store.clone(), Duration::from_millis(20), store_all);
    let first = run_connector(config(&url, &client_id, &topics(&county)), intake);
    const TOTAL: usize = 300;
    let terminal = Terminal::connect(mosquitto_port(), &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    let topic = format!("grid/{county}/W7/evaluation");
    let sender = tokio::spawn(async move {
        for i in 0..TOTAL {
            terminal.send(&topic, &format!("m{i}")).await;
            if i % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        terminal.wait_acked(TOTAL, Duration::from_secs(20)).await;
    });
    wait_until(Duration::from_secs(10), "some stored", || count_created(&first_store) >= 60).await;
    let started = Instant::now();
    first.stop().await.unwrap();
    let stopped_after = started.elapsed();
    let stored_first = created_ids(&first_store);
    assert!(stored_first.len() < TOTAL, "shutdown fell mid-stream");
    sender.await.unwrap();

    let second_store = Shared::default();
    let (intake, _) = fake_hub(second_store.clone(), Duration::ZERO, store_all);
    let second = run_connector(config(&url, &client_id, &topics(&county)), intake);
    let rest = TOTAL - stored_first.len();
    wait_until(Duration::from_secs(15), "the rest stored", || count_created(&second_store) >= rest).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored_second = created_ids(&second_store);
    let again: HashSet<_> = stored_first.intersection(&stored_second).collect();
    println!(
        "graceful shutdown in {stopped_after:?}: {} stored and acknowledged, {} resent to the next connector, {} both",
        stored_first.len(),
        stored_second.len(),
        again.len()
    );
    let all: HashSet<String> = stored_first.union(&stored_second).cloned().collect();
    assert_eq!(all, (0..TOTAL).map(|i| format!("m{i}")).collect::<HashSet<_>>());
    assert!(again.is_empty(), "everything stored before shutdown was acknowledged");
    second.stop().await.unwrap();
}

/// Two connectors in one MQTT 5 shared group split the messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_shared_subscription_splits_the_load() {
    init_logs();
    let url = system_mosquitto();
    let county = unique("t");
    let group = unique("g");
    let store = Shared::default();
    let (intake_a, got_a) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let (intake_b, got_b) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let a = run_connector(config(&url, &unique("hub-a-"), &topics(&county)).with_shared_group(&group), intake_a);
    let b = run_connector(config(&url, &unique("hub-b-"), &topics(&county)).with_shared_group(&group), intake_b);
    let terminal = Terminal::connect(mosquitto_port(), &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&got_a, &got_b]).await;
    for i in 0..200 {
        terminal.send(&format!("grid/{county}/W{}/report", i % 10), &format!("m{i}")).await;
    }
    wait_until(Duration::from_secs(10), "all 200 stored", || count_created(&store) == 200).await;
    let (a_n, b_n) = (got_a.messages.load(Ordering::Relaxed), got_b.messages.load(Ordering::Relaxed));
    println!("shared subscription: {a_n} + {b_n} = {}", a_n + b_n);
    assert!(a_n > 0 && b_n > 0, "both members get messages ({a_n}, {b_n})");
    assert_eq!(a_n + b_n, 200, "each message to one member only");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_notifier_publishes_and_waits_for_the_puback() {
    init_logs();
    let url = system_mosquitto();
    let county = unique("t");
    let (listener, mut events) = {
        let mut o = rumqttc::MqttOptions::new(unique("term-"), "127.0.0.1", mosquitto_port());
        o.set_keep_alive(Duration::from_secs(5));
        rumqttc::AsyncClient::new(o, 16)
    };
    listener.subscribe(format!("grid/{county}/W9/notify"), rumqttc::QoS::AtLeastOnce).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listening = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => tx.send(None).unwrap(),
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => tx.send(Some(p)).unwrap(),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    assert!(rx.recv().await.unwrap().is_none(), "subscribed");

    let notifier = Notifier::start(&MqttConfig::new(&url, "terminal"), unique("notify-"))
        .unwrap()
        .with_deadline(Duration::from_secs(5));
    let body = br#"{"eventId":"W9-20250101-0001","ticketId":"T1","status":"accepted"}"#;
    notifier.notify(&county, "W9", body).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.topic, format!("grid/{county}/W9/notify"));
    assert_eq!(&got.payload[..], &body[..]);
    assert!(!got.retain);
    assert_eq!(notifier.notify(&county, "W/9", body).await, Err(NotifyError::BadAddress));

    // Nothing listens on this port: the deadline ends the wait.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = MqttConfig::new(format!("mqtt://127.0.0.1:{port}"), "terminal");
    let stuck = Notifier::start(&nowhere, unique("notify-")).unwrap().with_deadline(Duration::from_millis(300));
    assert!(matches!(stuck.notify(&county, "W9", body).await, Err(NotifyError::Deadline(_))));
    listening.abort();
}

/// A notification sent while the broker is down goes out once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_notifier_retries_until_the_broker_is_back() {
    init_logs();
    let mut broker = PrivateMosquitto::start("");
    let mut config = MqttConfig::new(broker.url(), "terminal");
    config.reconnect_initial = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(200);
    let notifier = Notifier::start(&config, unique("notify-")).unwrap().with_deadline(Duration::from_secs(10));
    notifier.notify("330106", "W1", b"{}").await.unwrap();
    broker.stop();
    let sending = {
        let notifier = notifier.clone();
        tokio::spawn(async move { notifier.notify("330106", "W1", b"{}").await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!sending.is_finished(), "no PUBACK while the broker is down");
    broker.start_again();
    tokio::time::timeout(Duration::from_secs(5), sending).await.unwrap().unwrap().unwrap();
}

/// A burst of notifications with the broker restarted in the middle: every
/// `notify` returns only once its own publish was acknowledged (before or
/// after the restart), and the terminal, on a persistent session, gets
/// every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_notifier_burst_survives_a_broker_restart_mid_burst() {
    init_logs();
    // Large enough that stopping the broker (kill and wait) takes less time
    // than the rest of the burst: with 300 it sometimes ended first.
    const N: usize = 1500;
    let mut broker = PrivateMosquitto::start("");
    let port = broker.port;
    let terminal_id = unique("term-");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (subscribed_tx, mut subscribed) = tokio::sync::mpsc::unbounded_channel::<()>();
    let listening = tokio::spawn(async move {
        let mut o = rumqttc::MqttOptions::new(terminal_id, "127.0.0.1", port);
        o.set_clean_session(false).set_keep_alive(Duration::from_secs(5));
        let (client, mut events) = rumqttc::AsyncClient::new(o, 1000);
        client.subscribe("grid/330106/W1/notify", rumqttc::QoS::AtLeastOnce).await.unwrap();
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.send(p.payload.to_vec());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    subscribed.recv().await.unwrap();
    let mut config = MqttConfig::new(broker.url(), "terminal");
    config.reconnect_initial = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(200);
    let notifier = Notifier::start(&config, unique("notify-")).unwrap().with_deadline(Duration::from_secs(30));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sends: Vec<_> = (0..N)
        .map(|i| {
            let (notifier, done) = (notifier.clone(), done.clone());
            tokio::spawn(async move {
                let body = format!("{{\"n\":{i}}}");
                let r = notifier.notify("330106", "W1", body.as_bytes()).await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r
            })
        })
        .collect();
    // Mid-burst: the broker goes away and comes back.
    while done.load(std::sync::atomic::Ordering::SeqCst) < N / 4 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    broker.stop();
    let during = done.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.start_again();
    for s in sends {
        s.await.unwrap().expect("acknowledged, before or after the restart");
    }
    assert!(during < N, "the restart came before the burst ended ({during} of {N} done)");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < N {
        let got = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the terminal got {} of {N}", seen.len()))
            .unwrap();
        seen.insert(got);
    }
    listening.abort();
}

/// Throughput with an instant hub, against a bare rumqttc consumer that
/// acknowledges at once: both drain the same backlog from a private Mosquitto.
/// `cargo test -p connectors mqtt_throughput -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn mqtt_throughput() {
    init_logs();
    const N: usize = 20_000;
    // Over 3.1.1 the broker's window is what reaches the connector; over
    // MQTT 5 the connector's `inflight` (256), whatever the broker's setting.
    for (window, protocol) in [(20, MqttProtocol::V311), (100, MqttProtocol::V311), (20, MqttProtocol::V5)] {
        let broker = PrivateMosquitto::start(&format!("max_inflight_messages {window}"));
        let bare = bare_consumer(&broker, N).await;
        let connector = connector_consumer(&broker, N, protocol).await;
        println!(
            "mosquitto max_inflight_messages {window}, connector over {protocol}: connector + instant hub {:.0} msg/s; bare auto-ack 3.1.1 consumer {:.0} msg/s ({N} messages)",
            N as f64 / connector.as_secs_f64(),
            N as f64 / bare.as_secs_f64()
        );
    }
}

/// Queues `n` messages for a persistent session subscribed to `topic`.
async fn backlog(broker: &PrivateMosquitto, topic: &str, n: usize) {
    let terminal = Terminal::connect(broker.port, &unique("term-"));
    for i in 0..n {
        terminal.send(topic, &format!("m{i}")).await;
    }
    terminal.wait_acked(n, Duration::from_secs(60)).await;
}

async fn bare_consumer(broker: &PrivateMosquitto, n: usize) -> Duration {
    let county = unique("t");
    let topic = format!("grid/{county}/W1/report");
    let id = unique("bare-");
    let connect = || {
        let mut o = rumqttc::MqttOptions::new(id.clone(), "127.0.0.1", broker.port);
        o.set_clean_session(false).set_keep_alive(Duration::from_secs(30));
        rumqttc::AsyncClient::new(o, 256)
    };
    {
        let (client, mut events) = connect();
        client.subscribe(&topic, rumqttc::QoS::AtLeastOnce).await.unwrap();
        while !matches!(events.poll().await.unwrap(), rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) {}
        client.disconnect().await.unwrap();
        while events.poll().await.is_ok() {}
    }
    backlog(broker, &topic, n).await;
    let (_client, mut events) = connect();
    let started = Instant::now();
    let mut got = 0;
    while got < n {
        if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(_)) = events.poll().await.unwrap() {
            got += 1;
        }
    }
    started.elapsed()
}

async fn connector_consumer(broker: &PrivateMosquitto, n: usize, protocol: MqttProtocol) -> Duration {
    let county = unique("t");
    let client_id = unique("hub-");
    let store = Shared::default();
    let make = || config(&broker.url(), &client_id, &topics(&county)).with_protocol(protocol);
    {
        let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
        let connector = run_connector(make(), intake);
        let terminal = Terminal::connect(broker.port, &unique("term-"));
        until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
        connector.stop().await.unwrap();
    }
    backlog(broker, &format!("grid/{county}/W1/report"), n).await;
    let (intake, _) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let started = Instant::now();
    let connector = run_connector(make(), intake);
    wait_until(Duration::from_secs(120), "backlog drained", || count_created(&store) >= n).await;
    let elapsed = started.elapsed();
    connector.stop().await.unwrap();
    elapsed
}

/// A tracing writer that keeps what was logged on this thread, to check
/// what an operator would read (and that no password is in it).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    /// Logs of this (current-thread) test go here, and to nothing else.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

/// A Mosquitto that lets in only the users of a password file made with
/// `mosquitto_passwd`.
fn mosquitto_with_users(users: &[(&str, &str)]) -> (PrivateMosquitto, std::path::PathBuf) {
    let file = std::env::temp_dir().join(unique("mqtt-passwd-"));
    for (i, (user, password)) in users.iter().enumerate() {
        let mut cmd = std::process::Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let made = cmd.arg("-b").arg(&file).arg(user).arg(password).status().expect("mosquitto_passwd is installed");
        assert!(made.success());
    }
    let broker = PrivateMosquitto::start(&format!("allow_anonymous false\npassword_file {}", file.display()));
    (broker, file)
}

#[tokio::test]
async fn mqtt_credentials_right_ones_are_stored_wrong_ones_are_a_clear_error_and_never_logged() {
    let logs = Captured::default();
    let _guard = logs.install();
    let (broker, passwd) = mosquitto_with_users(&[("hub", "r1ght:p@ss"), ("term", "t-pass")]);
    let county = unique("t");
    let terminal = Terminal::connect_as(broker.port, &unique("term-"), Some(("term", "t-pass")));

    // The right password, percent-encoded in the URL.
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let url = format!("mqtt://hub:r1ght%3Ap%40ss@127.0.0.1:{}", broker.port);
    let connector = run_connector(config(&url, &unique("hub-"), &topics(&county)), intake);
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    for i in 0..5 {
        terminal.send(&format!("grid/{county}/W1/report"), &format!("cred{i}")).await;
    }
    wait_until(Duration::from_secs(10), "messages stored over an authenticated session", || count_created(&store) == 5)
        .await;
    connector.stop().await.unwrap();

    // A wrong password (given as a field, overriding the URL's): nothing
    // stored, and an error line that says what is wrong.
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let wrong = config(&url, &unique("hub-"), &topics(&county)).with_credentials("hub", "wr0ng-pw");
    let connector = run_connector(wrong, intake);
    for i in 0..5 {
        terminal.send(&format!("grid/{county}/W1/report"), &format!("probe-wrong{i}")).await;
    }
    wait_until(Duration::from_secs(10), "the refusal logged", || {
        logs.text().contains("refused the hub's user name or password")
    })
    .await;
    assert_eq!(seen.messages.load(Ordering::Relaxed) + seen.probes.load(Ordering::Relaxed), 0);
    connector.stop().await.unwrap();

    let text = logs.text();
    let line = text.lines().find(|l| l.contains("refused the hub's user name or password")).unwrap();
    assert!(line.contains("ERROR") && line.contains(&format!("127.0.0.1:{}", broker.port)), "{line}");
    for secret in ["r1ght", "p@ss", "p%40ss", "wr0ng-pw", "t-pass"] {
        assert!(!text.contains(secret), "a password in the logs: {secret}");
    }
    let _ = std::fs::remove_file(passwd);
}

/// A test CA and a broker certificate for 127.0.0.1 signed by it, made with
/// the openssl CLI (webpki refuses a self-signed CA certificate used as the
/// server's own). Returns (CA, broker certificate, broker key).
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let made = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(made.success(), "openssl {args:?}");
    };
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        .unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=hub test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "broker.crt",
    ]);
    (dir.join("ca.crt"), dir.join("broker.crt"), dir.join("broker.key"))
}

#[tokio::test]
async fn mqtts_with_the_brokers_ca_is_stored_and_an_untrusted_certificate_is_a_clear_error() {
    let logs = Captured::default();
    let _guard = logs.install();
    let dir = std::env::temp_dir().join(unique("mqtt-tls-"));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = test_pki(&dir);
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Terminals on the plain listener, the hub on the TLS one.
    let broker = PrivateMosquitto::start(&format!(
        "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}",
        cert.display(),
        key.display()
    ));
    let county = unique("t");
    let terminal = Terminal::connect(broker.port, &unique("term-"));
    let url = format!("mqtts://127.0.0.1:{tls_port}");

    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let mut trusted = config(&url, &unique("hub-"), &topics(&county));
    trusted.ca_file = Some(ca.clone());
    let connector = run_connector(trusted, intake);
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    for i in 0..5 {
        terminal.send(&format!("grid/{county}/W1/report"), &format!("tls{i}")).await;
    }
    wait_until(Duration::from_secs(10), "messages stored over TLS", || count_created(&store) == 5).await;
    connector.stop().await.unwrap();

    // The system's CAs do not know this certificate: refused, and said so.
    let (intake, seen) = fake_hub(Shared::default(), Duration::ZERO, store_all);
    let connector = run_connector(config(&url, &unique("hub-"), &topics(&county)), intake);
    wait_until(Duration::from_secs(10), "the TLS failure logged", || {
        logs.text().lines().any(|l| l.contains("cannot connect to the MQTT broker") && l.contains("TLS"))
    })
    .await;
    terminal.send(&format!("grid/{county}/W0/report"), "probe-untrusted").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.probes.load(Ordering::Relaxed), 0);
    connector.stop().await.unwrap();
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A terminal publishes a payload far above the contract's limit between
/// ordinary reports. Over MQTT 5 the hub told the broker its packet limit,
/// so the broker drops that one for the hub: it never takes the hub's
/// memory, the session is not blocked, and the reports after it are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_oversized_publish_is_refused_and_the_reports_after_it_are_stored() {
    init_logs();
    let broker = PrivateMosquitto::start("");
    let county = unique("t");
    let store = Shared::default();
    let (intake, seen) = fake_hub(store.clone(), Duration::ZERO, store_all);
    let v5 = config(&broker.url(), &unique("hub-"), &topics(&county)).with_shared_group(unique("g"));
    let connector = run_connector(v5, intake);
    let terminal = Terminal::connect(broker.port, &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    let topic = format!("grid/{county}/W1/report");
    terminal.send(&topic, "before").await;
    // Above the session's packet limit (sixteen times the contract's 256 KiB).
    let big = format!(r#"{{"msgId":"big","pad":"{}"}}"#, "x".repeat(5 * 1024 * 1024));
    terminal.client.publish(&topic, rumqttc::QoS::AtLeastOnce, false, big).await.unwrap();
    // Too big for the contract but under the packet limit: it reaches the
    // hub (which quarantines it with the reason), it is not lost.
    let mid = format!(r#"{{"msgId":"mid","pad":"{}"}}"#, "x".repeat(900 * 1024));
    terminal.client.publish(&topic, rumqttc::QoS::AtLeastOnce, false, mid).await.unwrap();
    for id in ["after1", "after2", "after3"] {
        terminal.send(&topic, id).await;
    }
    wait_until(Duration::from_secs(10), "the reports around the oversized one stored", || count_created(&store) == 5)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!created_ids(&store).contains("big"));
    assert!(created_ids(&store).contains("mid"), "a merely oversized report reaches the hub");
    // QoS 1 may deliver one twice (the hub stores it once); the far oversized
    // one never came: every message seen is one of the five.
    assert!(seen.messages.load(Ordering::Relaxed) >= 5);
    assert_eq!(created_ids(&store).len(), 5, "{:?}", created_ids(&store));
    assert!(!connector.task.is_finished(), "the connector keeps running");
    connector.stop().await.unwrap();
}

fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
}

/// Over MQTT 3.1.1 the broker cannot be told a window: the hub is held
/// while a broker with no inflight limit pours 60 MB of reports at it, and
/// the connector reads only a window ahead of the hub and leaves the rest
/// in the broker, instead of queueing all of it in memory. (Over MQTT 5 the
/// broker would send no more than the receive maximum in the first place.)
/// The reports come from `mosquitto_pub` in its own process, so that only
/// the connector's memory is in this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt311_a_held_hub_does_not_make_the_connector_queue_what_the_broker_sends() {
    init_logs();
    let broker = PrivateMosquitto::start("max_inflight_messages 0");
    let county = unique("t");
    let held = Shared::default();
    let (intake, seen) =
        fake_hub(held.clone(), Duration::ZERO, |id, _| if id == "first" { Reply::Store } else { Reply::Hold });
    let mut c = config(&broker.url(), &unique("hub-"), &topics(&county)).with_protocol(MqttProtocol::V311);
    c.inflight = 8;
    let connector = run_connector(c, intake);
    let terminal = Terminal::connect(broker.port, &unique("term-"));
    until_subscribed(&terminal, &format!("grid/{county}/W0/report"), &[&seen]).await;
    let before = resident_bytes();

    const N: usize = 600;
    let mut publisher = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1", "-l", "-t"])
        .arg(format!("grid/{county}/W1/report"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_pub is installed");
    {
        // Line by line: the test itself holds no more than one report.
        use std::io::Write;
        let pad = "x".repeat(100 * 1024);
        let mut stdin = publisher.stdin.take().unwrap();
        for i in 0..N {
            writeln!(stdin, "{{\"msgId\":\"m{i}\",\"pad\":\"{pad}\"}}").unwrap();
        }
    }
    assert!(publisher.wait().unwrap().success());
    // Whatever the broker could push to the connector, it has by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = resident_bytes().saturating_sub(before);
    let taken = seen.messages.load(Ordering::Relaxed);
    assert!(taken <= 8, "the hub got {taken} submits, more than the window");
    assert!(grown < 25 * 1024 * 1024, "the connector grew by {} MiB for 60 MB it could not store", grown >> 20);
    tracing::info!(grown_kib = grown >> 10, "resident growth while held");
    drop(connector);
}
