//! The consuming connector against the real broker.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::support::*;
use crate::amqp::{AmqpConfig, AmqpConnector};
use crate::{CancellationToken, Connector, ConnectorError, ContentType, intake_channel};

type Running = (JoinHandle<Result<(), ConnectorError>>, CancellationToken, std::sync::Arc<HubState>);

fn start(config: &AmqpConfig) -> Running {
    init_logs();
    let (intake, rx) = intake_channel(1024);
    let hub = fake_hub(rx);
    let stop = CancellationToken::new();
    let connector: crate::BoxedConnector = Box::new(AmqpConnector::new(config.clone()));
    let task = tokio::spawn(connector.run(intake, stop.clone()));
    (task, stop, hub)
}

async fn stop(running: Running) -> std::sync::Arc<HubState> {
    let (task, stop, hub) = running;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the connector stops").unwrap().unwrap();
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_message_with_its_metadata() {
    let config = test_config("meta");
    let _cleanup = Cleanup::of(&config);
    let broker = connect("meta-test").await;
    let running = start(&config);
    wait_consuming(&broker, &config.queue).await;

    let mut messages: Vec<Message> =
        (0..40).map(|i| Message::order(&format!("LY12345-20240501-{i:06}"), 1 + i % 3)).collect();
    // 你好，工单 in GB18030: bytes that are not UTF-8.
    let gb18030 = vec![0xc4, 0xe3, 0xba, 0xc3, 0xa3, 0xac, 0xb9, 0xa4, 0xb5, 0xa5];
    messages.push(Message {
        routing_key: "order.created".into(),
        message_id: Some("110105-2024-0000001:2".into()),
        content_type: Some("application/json".into()),
        encoding: Some("gb18030".into()),
        body: gb18030.clone(),
    });
    messages.push(Message {
        routing_key: "order.revoked".into(),
        message_id: Some("no-version".into()),
        content_type: None,
        encoding: None,
        body: b"{}".to_vec(),
    });
    messages.push(Message {
        routing_key: "order.created".into(),
        message_id: None,
        content_type: Some("image/png".into()),
        encoding: None,
        body: b"\x89PNG".to_vec(),
    });
    let channel = confirming_channel(&broker).await;
    publish(&channel, &config.exchange, &messages).await;

    let hub = running.2.clone();
    wait_for("every message", Duration::from_secs(10), || async { hub.seen() >= messages.len() }).await;
    let hub = stop(running).await;
    assert_eq!(queue_counts(&broker, &config.queue).await, Some((0, 0)), "all acked: nothing came back");

    let records = hub.records.lock().unwrap().clone();
    assert_eq!(records.len(), messages.len());
    for i in 0..40 {
        let id = format!("LY12345-20240501-{i:06}");
        let r = records.iter().find(|r| r.record_id.as_deref() == Some(&id)).expect("delivered");
        assert_eq!(r.version, Some(1 + i % 3));
        assert_eq!(r.system, "hotline");
        assert_eq!(r.content_type, ContentType::Json);
        assert_eq!(r.encoding.as_deref(), Some("utf-8"));
        assert_eq!(r.meta("routing_key"), Some(if i % 3 == 0 { "order.created" } else { "order.updated" }));
        assert_eq!(r.meta("exchange"), Some(config.exchange.as_str()));
        assert_eq!(r.meta("message_id"), Some(format!("{id}:{}", 1 + i % 3).as_str()));
        assert_eq!(r.meta("timestamp"), Some("1714500000"));
        assert_eq!(r.meta("redelivered"), Some("false"));
        assert_eq!(&r.payload[..], messages[i as usize].body.as_slice());
    }
    let gb = records.iter().find(|r| r.record_id.as_deref() == Some("110105-2024-0000001")).unwrap();
    assert_eq!((gb.version, gb.encoding.as_deref()), (Some(2), Some("gb18030")));
    assert_eq!(&gb.payload[..], gb18030.as_slice(), "bytes untouched");
    let bare = records.iter().find(|r| r.record_id.as_deref() == Some("no-version")).unwrap();
    assert_eq!((bare.version, bare.content_type, bare.encoding.as_deref()), (None, ContentType::Json, None));
    assert_eq!(bare.meta("routing_key"), Some("order.revoked"));
    let png = records.iter().find(|r| r.record_id.is_none()).unwrap();
    assert_eq!((png.content_type, png.meta("content_type")), (ContentType::Json, Some("image/png")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeues_what_the_hub_did_not_store() {
    let config = test_config("requeue");
    let _cleanup = Cleanup::of(&config);
    let broker = connect("requeue-test").await;
    let running = start(&config);
    let hub = running.2.clone();
    let ids: Vec<String> = (0..30).map(|i| format!("P-{i}")).collect();
    hub.fail_first.lock().unwrap().extend(ids.iter().step_by(3).cloned());
    wait_consuming(&broker, &config.queue).await;

    let messages: Vec<Message> = ids.iter().map(|id| Message::order(id, 1)).collect();
    publish(&confirming_channel(&broker).await, &config.exchange, &messages).await;

    wait_for("every id stored", Duration::from_secs(10), || async { hub.stored_count() == ids.len() }).await;
    let hub = stop(running).await;
    assert_eq!(hub.failures.load(Ordering::SeqCst), 10);
    let records = hub.records.lock().unwrap().clone();
    for id in ids.iter().step_by(3) {
        let attempts: Vec<_> = records.iter().filter(|r| r.record_id.as_deref() == Some(id)).collect();
        assert_eq!(attempts.len(), 2, "{id}: refused once, then redelivered and stored");
        assert_eq!(attempts[1].meta("redelivered"), Some("true"));
    }
    assert_eq!(hub.duplicates.load(Ordering::SeqCst), 0);
    assert_eq!(queue_counts(&broker, &config.queue).await, Some((0, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_nothing_before_the_hub_answers() {
    let config = test_config("noack");
    let _cleanup = Cleanup::of(&config);
    let broker = connect("noack-test").await;
    let running = start(&config);
    let hub = running.2.clone();
    hub.hold.store(true, Ordering::SeqCst);
    wait_consuming(&broker, &config.queue).await;

    let messages: Vec<Message> = (0..20).map(|i| Message::order(&format!("H-{i}"), 1)).collect();
    publish(&confirming_channel(&broker).await, &config.exchange, &messages).await;
    wait_for("20 submissions held", Duration::from_secs(10), || async { hub.held.lock().unwrap().len() == 20 }).await;
    // All delivered to the connector, none ready in the queue, none acked.
    assert_eq!(queue_counts(&broker, &config.queue).await, Some((0, 1)));

    // The connector dies with the submissions unanswered.
    running.0.abort();
    let _ = running.0.await;
    drop(drop_held(&hub));
    wait_for("the 20 to be back in the queue", Duration::from_secs(10), || async {
        queue_counts(&broker, &config.queue).await == Some((20, 0))
    })
    .await;

    let running = start(&config);
    let hub = running.2.clone();
    wait_for("all 20 stored by a new connector", Duration::from_secs(10), || async { hub.stored_count() == 20 }).await;
    let hub = stop(running).await;
    let records = hub.records.lock().unwrap().clone();
    assert!(records.iter().all(|r| r.meta("redelivered") == Some("true")));
    assert_eq!(queue_counts(&broker, &config.queue).await, Some((0, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_broker_closing_its_connection() {
    const N: usize = 2000;
    let config = test_config("close");
    let _cleanup = Cleanup::of(&config);
    let broker = connect("close-test").await;
    let running = start(&config);
    let hub = running.2.clone();
    *hub.commit_delay.lock().unwrap() = Duration::from_millis(2);
    wait_consuming(&broker, &config.queue).await;

    // The first half, then the second while the broker closes the connection.
    let second_half = std::sync::Arc::new(tokio::sync::Notify::new());
    let publisher = {
        let channel = confirming_channel(&broker).await;
        let (exchange, go) = (config.exchange.clone(), second_half.clone());
        tokio::spawn(async move {
            for batch in (0..N).collect::<Vec<_>>().chunks(100) {
                if batch[0] == N / 2 {
                    go.notified().await;
                }
                let messages: Vec<Message> = batch.iter().map(|i| Message::order(&format!("C-{i}"), 1)).collect();
                publish(&channel, &exchange, &messages).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    wait_for("a few hundred stored", Duration::from_secs(20), || async { hub.stored_count() >= 300 }).await;
    // Hold the hub's answers so deliveries are in flight when the connection goes.
    hub.hold.store(true, Ordering::SeqCst);
    wait_for("deliveries in flight", Duration::from_secs(10), || async { hub.held.lock().unwrap().len() >= 50 }).await;
    // Held before the close: all on the session about to be lost. What is
    // held later may be the new session's (the connector can reconnect
    // before the release), whose acks do reach the broker.
    let lost_acks = hub.held.lock().unwrap().len();
    let closing = tokio::spawn({
        let name = config.connection_name.clone();
        async move { rabbitmqctl_close(&name).await }
    });
    second_half.notify_one();
    assert_eq!(closing.await.unwrap(), 1, "the connector's connection is found by its name");
    // Stored now, but their acks can no longer reach the broker.
    let in_flight = release_held(&hub);
    let at_close = hub.stored_count();

    publisher.await.unwrap();
    wait_for("every message stored", Duration::from_secs(30), || async { hub.stored_count() == N }).await;
    let hub = stop(running).await;

    let ids: HashSet<String> = hub.stored.lock().unwrap().keys().map(|(id, _)| id.clone()).collect();
    assert!((0..N).all(|i| ids.contains(&format!("C-{i}"))));
    let records = hub.records.lock().unwrap().clone();
    let duplicates = hub.duplicates.load(Ordering::SeqCst);
    let redelivered = records.iter().filter(|r| r.meta("redelivered") == Some("true")).count();
    println!(
        "close_connection with {lost_acks} in flight ({in_flight} at the release), {at_close}/{N} stored: {} submissions, \
         {duplicates} answered Duplicate, {redelivered} redelivered",
        records.len()
    );
    assert_eq!(records.len(), N + duplicates, "each (id, version) stored once; the rest are duplicates");
    assert!(duplicates <= redelivered, "duplicates only come from redeliveries");
    // Each record stored while its ack could not reach the broker comes
    // back once, and one of the two copies is answered Duplicate.
    assert!(duplicates >= lost_acks, "what was in flight came back");
    assert_eq!(queue_counts(&broker, &config.queue).await, Some((0, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_settles_what_is_in_flight() {
    const N: usize = 2000;
    let config = test_config("graceful");
    let _cleanup = Cleanup::of(&config);
    let broker = connect("graceful-test").await;
    let running = start(&config);
    let hub = running.2.clone();
    // 256 in flight at 50 ms each: about 5,000/s, so 2,000 take a while.
    *hub.commit_delay.lock().unwrap() = Duration::from_millis(50);
    wait_consuming(&broker, &config.queue).await;

    let messages: Vec<Message> = (0..N).map(|i| Message::order(&format!("G-{i}"), 1)).collect();
    publish(&confirming_channel(&broker).await, &config.exchange, &messages).await;
    wait_for("some stored", Duration::from_secs(20), || async { hub.stored_count() >= 300 }).await;

    let hub = stop(running).await;
    let stored = hub.stored_count();
    let (remaining, consumers) = queue_counts(&broker, &config.queue).await.unwrap();
    println!("graceful stop: {stored} stored and acked, {remaining} left in the queue");
    assert_eq!(consumers, 0);
    assert_eq!(hub.duplicates.load(Ordering::SeqCst), 0, "nothing was stored twice");
    assert_eq!(stored + remaining as usize, N, "every message is stored-and-acked or back in the queue");
    assert!(remaining > 0, "stopped mid-load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_at_start_is_retried_until_it_is_up() {
    let proxy = Proxy::start(false).await;
    let config = AmqpConfig { url: proxy.url(), ..test_config("down") };
    let _cleanup = Cleanup::of(&config);
    let broker = connect("down-test").await;
    let running = start(&config);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!running.0.is_finished(), "broker-down is not fatal");
    assert_eq!(queue_counts(&broker, &config.queue).await, None, "never got through");

    proxy.set_up(true);
    wait_consuming(&broker, &config.queue).await;
    publish(&confirming_channel(&broker).await, &config.exchange, &[Message::order("D-1", 1)]).await;
    let hub = running.2.clone();
    wait_for("the message", Duration::from_secs(10), || async { hub.stored_count() == 1 }).await;

    // And down again in the middle: the connector waits, then resumes.
    proxy.set_up(false);
    publish(&confirming_channel(&broker).await, &config.exchange, &[Message::order("D-2", 1)]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_up(true);
    wait_for("the second message", Duration::from_secs(10), || async { hub.stored_count() == 2 }).await;
    stop(running).await;
}

#[tokio::test]
async fn a_bad_url_is_a_connector_error() {
    let config = AmqpConfig { url: "http://guest:guest@127.0.0.1:5672/".into(), ..test_config("badurl") };
    let (intake, _rx) = intake_channel(1);
    let error = Box::new(AmqpConnector::new(config)).run(intake, CancellationToken::new()).await.unwrap_err();
    assert_eq!(error.connector, "hotline");
    assert!(error.message.contains("scheme"), "{}", error.message);
}
