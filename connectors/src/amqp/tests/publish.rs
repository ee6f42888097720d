//! The confirming publisher against the real broker.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};

use super::support::*;
use crate::amqp::{ConfirmPublisher, PublishError};

/// A test queue bound to `exchange` with `feedback.#`, and its consumer.
async fn bound_queue(channel: &Channel, exchange: &str) -> (String, Consumer) {
    let queue = unique("feedback-test");
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), FieldTable::default()).await.unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.into(),
            "feedback.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let consumer = channel
        .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    (queue, consumer)
}

/// Receives until `n` distinct message ids arrived; returns them and how many deliveries it took.
async fn receive(consumer: &mut Consumer, n: usize) -> (HashSet<String>, usize) {
    let mut ids = HashSet::new();
    let mut deliveries = 0;
    while ids.len() < n {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("all confirmed messages arrive")
            .unwrap()
            .unwrap();
        let p = &delivery.properties;
        assert_eq!(p.content_type().as_ref().map(|s| s.as_str()), Some("application/json"));
        assert_eq!(p.content_encoding().as_ref().map(|s| s.as_str()), Some("utf-8"));
        assert_eq!(*p.delivery_mode(), Some(2));
        let id = p.message_id().as_ref().unwrap().to_string();
        assert_eq!(delivery.data, body(&id), "body untouched");
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        ids.insert(id);
        deliveries += 1;
    }
    (ids, deliveries)
}

fn body(id: &str) -> Vec<u8> {
    format!(r#"{{"orderNo":"{id}","status":"resolved","department":"区住建局","note":"已修复","at":"2024-05-02T10:00:00+08:00"}}"#)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_publisher_delivers_every_message() {
    let exchange = unique("hotline.feedback");
    let publisher = ConfirmPublisher::connect(URL, &exchange, &unique("hub-feedback")).await.unwrap();
    let broker = connect("feedback-test").await;
    let channel = broker.create_channel().await.unwrap();
    let (queue, mut consumer) = bound_queue(&channel, &exchange).await;
    let _cleanup = Cleanup::new(&[&queue], &[&exchange]);

    let ids: Vec<String> = (0..200).map(|i| format!("LY12345-20240501-{i:06}:resolved")).collect();
    // Concurrent publishes pipeline on the one confirming channel.
    let results = futures::stream::iter(&ids)
        .map(|id| async { publisher.publish("feedback.resolved", &body(id), id).await })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));

    let (received, deliveries) = receive(&mut consumer, ids.len()).await;
    assert_eq!(received, ids.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(deliveries, 200);

    let unroutable = publisher.publish("nobody.listens", b"{}", "x:1").await.unwrap_err();
    assert!(matches!(unroutable, PublishError::Unroutable { .. }), "{unroutable}");

    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_publisher_reconnects_after_the_broker_closes_it() {
    let exchange = unique("petition.feedback");
    let name = unique("hub-feedback");
    let publisher = ConfirmPublisher::connect(URL, &exchange, &name)
        .await
        .unwrap()
        .with_backoff(Duration::from_millis(50), Duration::from_millis(500));
    let broker = connect("feedback-close-test").await;
    let channel = broker.create_channel().await.unwrap();
    let (queue, mut consumer) = bound_queue(&channel, &exchange).await;
    let _cleanup = Cleanup::new(&[&queue], &[&exchange]);

    // Publish one at a time until the broker closed the connection, then 100 more.
    let closed_at = std::sync::Mutex::new(None::<usize>);
    let published = std::sync::atomic::AtomicUsize::new(0);
    let publishing = async {
        let mut ids = Vec::new();
        for i in 0.. {
            if closed_at.lock().unwrap().is_some_and(|at| i >= at + 100) {
                break;
            }
            let id = format!("110105-2024-{i:07}:concluded");
            publisher.publish("feedback.concluded", &body(&id), &id).await.unwrap();
            ids.push(id);
            published.store(ids.len(), std::sync::atomic::Ordering::SeqCst);
        }
        ids
    };
    let closing = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let closed = rabbitmqctl_close(&name).await;
        *closed_at.lock().unwrap() = Some(published.load(std::sync::atomic::Ordering::SeqCst));
        closed
    };
    let (ids, closed) = tokio::join!(publishing, closing);
    assert_eq!(closed, 1);

    // A publish whose confirm was lost with the connection is sent again:
    // at least once, deduped by message id at the receiver.
    let (received, deliveries) = receive(&mut consumer, ids.len()).await;
    assert_eq!(received, ids.iter().cloned().collect::<HashSet<_>>());
    println!("{} confirmed publishes across a closed connection: {deliveries} deliveries", ids.len());

    let expired = ConfirmPublisher::connect("amqp://guest:guest@127.0.0.1:1/%2f", &exchange, &name).await;
    assert!(matches!(expired, Err(PublishError::Connect(_))), "{expired:?}");

    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_publisher_gives_up_at_the_deadline_and_recovers() {
    let proxy = Proxy::start(true).await;
    let exchange = unique("hotline.feedback");
    let publisher = ConfirmPublisher::connect(&proxy.url(), &exchange, &unique("hub-feedback"))
        .await
        .unwrap()
        .with_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .with_timeout(Duration::from_millis(800));
    let broker = connect("feedback-deadline-test").await;
    let channel = broker.create_channel().await.unwrap();
    let (queue, mut consumer) = bound_queue(&channel, &exchange).await;
    let _cleanup = Cleanup::new(&[&queue], &[&exchange]);
    publisher.publish("feedback.dispatched", &body("A:1"), "A:1").await.unwrap();

    proxy.set_up(false);
    let started = tokio::time::Instant::now();
    let error = publisher.publish("feedback.dispatched", &body("B:1"), "B:1").await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(&error, PublishError::Unconfirmed { attempts, .. } if *attempts > 1), "{error}");
    assert!(waited >= Duration::from_millis(700) && waited < Duration::from_secs(3), "{waited:?}");

    proxy.set_up(true);
    publisher.publish("feedback.dispatched", &body("C:1"), "C:1").await.unwrap();
    // B may have reached the broker just before the cut, its confirm lost:
    // "unconfirmed" means "maybe", which is why message ids are stable.
    let mut received = HashSet::new();
    while !received.contains("C:1") {
        received.extend(receive(&mut consumer, 1).await.0);
    }
    assert!(received.contains("A:1"), "{received:?}");

    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_publisher_retries_a_nack() {
    let exchange = unique("hotline.feedback");
    let publisher = ConfirmPublisher::connect(URL, &exchange, &unique("hub-feedback"))
        .await
        .unwrap()
        .with_backoff(Duration::from_millis(50), Duration::from_millis(100));
    let broker = connect("feedback-nack-test").await;
    let channel = broker.create_channel().await.unwrap();
    // A queue that holds one message and makes the broker nack the next publish.
    let queue = unique("feedback-full");
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), lapin::types::AMQPValue::LongInt(1));
    arguments.insert("x-overflow".into(), lapin::types::AMQPValue::LongString("reject-publish".into()));
    let _cleanup = Cleanup::new(&[&queue], &[&exchange]);
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), arguments).await.unwrap();
    channel
        .queue_bind(queue.as_str().into(), exchange.as_str().into(), "#".into(), Default::default(), Default::default())
        .await
        .unwrap();

    publisher.publish("feedback.resolved", &body("A:1"), "A:1").await.unwrap();
    let full = publisher
        .publish_by("feedback.resolved", &body("B:1"), "B:1", tokio::time::Instant::now() + Duration::from_millis(400))
        .await
        .unwrap_err();
    assert!(matches!(&full, PublishError::Unconfirmed { last_error, .. } if last_error.contains("nack")), "{full}");

    // Room again while B is being retried: it goes through.
    let retried = async { publisher.publish("feedback.resolved", &body("B:1"), "B:1").await };
    let make_room = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let a = channel.basic_get(queue.as_str().into(), Default::default()).await.unwrap().unwrap();
        a.delivery.ack(BasicAckOptions::default()).await.unwrap();
        a.delivery.properties.message_id().as_ref().unwrap().to_string()
    };
    let (retried, taken) = tokio::join!(retried, make_room);
    retried.unwrap();
    assert_eq!(taken, "A:1");
    let b = channel.basic_get(queue.as_str().into(), Default::default()).await.unwrap().unwrap();
    assert_eq!(b.delivery.properties.message_id().as_ref().map(|s| s.as_str()), Some("B:1"));

    publisher.close().await;
}
