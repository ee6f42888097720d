//! Messages per second of the connector with an instant hub, against a bare
//! consumer that only acks, on the same broker in one run:
//! `cargo test --release -p connectors amqp::tests::throughput -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;

use super::support::*;
use crate::amqp::AmqpConnector;
use crate::{CancellationToken, Connector, intake_channel};

const N: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run it with --ignored --nocapture"]
async fn connector_against_a_bare_consumer() {
    let config = test_config("throughput");
    let _cleanup = Cleanup::of(&config);
    let broker = connect("throughput-test").await;
    let messages: Vec<Message> = (0..N).map(|i| Message::order(&format!("LY12345-20240501-{i:06}"), 1)).collect();

    // The connector declares the topology; stop it, then fill the queue.
    let fill = async |broker: &lapin::Connection| {
        let channel = confirming_channel(broker).await;
        for chunk in messages.chunks(1000) {
            publish(&channel, &config.exchange, chunk).await;
        }
        wait_for("the queue filled", Duration::from_secs(30), || async {
            queue_counts(broker, &config.queue).await.is_some_and(|(n, _)| n as usize == N)
        })
        .await;
    };

    // 1. The connector, with a hub that answers at once.
    {
        let (intake, rx) = intake_channel(1024);
        let stop = CancellationToken::new();
        let task = tokio::spawn(Box::new(AmqpConnector::new(config.clone())).run(intake, stop.clone()));
        wait_consuming(&broker, &config.queue).await;
        stop.cancel();
        task.await.unwrap().unwrap();
        drop(rx);
    }
    fill(&broker).await;
    let (intake, rx) = intake_channel(1024);
    let hub = fake_hub(rx);
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(Box::new(AmqpConnector::new(config.clone())).run(intake, stop.clone()));
    wait_for("all stored", Duration::from_secs(120), || async { hub.stored_count() == N }).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    let connector = started.elapsed();
    assert_eq!(queue_counts(&broker, &config.queue).await, Some((0, 0)));

    // 2. Bare consumers: same queue, same prefetch, ack each delivery and
    // do nothing else; once awaiting each ack in turn, once acking in
    // spawned tasks (the fastest a manual-ack consumer gets).
    let mut bare = Vec::new();
    for concurrent in [false, true] {
        fill(&broker).await;
        let connection = connect("throughput-bare").await;
        let channel = connection.create_channel().await.unwrap();
        channel.basic_qos(config.prefetch, BasicQosOptions::default()).await.unwrap();
        let started = Instant::now();
        let mut consumer = channel
            .basic_consume(
                config.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut acks = tokio::task::JoinSet::new();
        for _ in 0..N {
            let delivery = consumer.next().await.unwrap().unwrap();
            if concurrent {
                acks.spawn(async move { delivery.ack(BasicAckOptions::default()).await.unwrap() });
            } else {
                delivery.ack(BasicAckOptions::default()).await.unwrap();
            }
        }
        acks.join_all().await;
        bare.push(started.elapsed());
        let _ = channel.close(200, "OK".into()).await;
        let _ = connection.close(200, "OK".into()).await;
        assert_eq!(queue_counts(&broker, &config.queue).await, Some((0, 0)));
    }

    let rate = |d: Duration| N as f64 / d.as_secs_f64();
    let (connector, sequential, concurrent) = (rate(connector), rate(bare[0]), rate(bare[1]));
    println!(
        "{N} messages, prefetch {}: connector with an instant hub {connector:.0} msg/s; bare consumer \
         awaiting each ack {sequential:.0} msg/s ({:.0} %), acking concurrently {concurrent:.0} msg/s ({:.0} %)",
        config.prefetch,
        100.0 * connector / sequential,
        100.0 * connector / concurrent,
    );
}
