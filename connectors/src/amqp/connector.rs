//! The consuming side: one connection, one channel, one consumer with
//! manual acks; each delivery goes to the hub in its own task and is acked
//! only once the hub has answered.
//!
//! Reconnecting is a plain loop (connect, declare, consume, and on any loss
//! start over after a backoff) rather than lapin's auto-recovery: a fresh
//! channel has no state to reason about. Deliveries in flight on a dead
//! channel can no longer be acked; the broker redelivers them and the hub's
//! exact dedup answers `Duplicate`, so nothing is lost and nothing doubled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, Consumer};
use tokio::task::{JoinError, JoinSet};

use super::AmqpConfig;
use super::config::endpoint;
use super::delivery::into_record;
use super::retry::{Backoff, Throttle};
use super::topology::{self, SetupError};
use crate::{CancellationToken, Connector, ConnectorError, Intake};

/// How long closing a channel or connection, or waiting for the broker's
/// cancel-ok, may take before we just drop it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one warn line per this about a broker that stays unreachable,
/// or a hub that keeps failing to store.
const LOG_EVERY: Duration = Duration::from_secs(30);
/// A session that lasted this long, or delivered anything, was healthy:
/// the next reconnect starts from the shortest wait again.
const HEALTHY_SESSION: Duration = Duration::from_secs(10);

/// Consumes one agency's queue into the hub. See [`AmqpConfig`].
pub struct AmqpConnector {
    config: AmqpConfig,
}

impl AmqpConnector {
    pub fn new(config: AmqpConfig) -> Self {
        AmqpConnector { config }
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }
}

impl Connector for AmqpConnector {
    fn name(&self) -> &str {
        &self.config.system
    }

    fn run(
        self: Box<Self>,
        intake: Intake,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), ConnectorError>> {
        Box::pin(run(self.config, intake, shutdown))
    }
}

/// What the per-delivery tasks share.
struct Context {
    source: Arc<str>,
    intake: Intake,
    shutdown: CancellationToken,
    requeue_delay: Duration,
    /// Tasks of lost sessions still wait for the hub beside the current
    /// window: past this many in all, no new delivery is taken.
    max_in_flight: usize,
    store_failures: Mutex<Throttle>,
    ack_failures: Mutex<Throttle>,
}

impl Context {
    fn log_now(throttle: &Mutex<Throttle>) -> Option<u64> {
        throttle.lock().unwrap_or_else(|e| e.into_inner()).ready()
    }
}

/// How a consuming session ended.
enum End {
    Shutdown,
    Lost { reason: String, healthy: bool },
}

struct Session {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
}

async fn run(config: AmqpConfig, intake: Intake, shutdown: CancellationToken) -> Result<(), ConnectorError> {
    let uri = config.validate().map_err(|message| ConnectorError { connector: config.system.clone(), message })?;
    let ctx = Arc::new(Context {
        source: config.system.as_str().into(),
        intake,
        shutdown: shutdown.clone(),
        requeue_delay: config.requeue_delay,
        max_in_flight: 2 * usize::from(config.prefetch),
        store_failures: Mutex::new(Throttle::new(LOG_EVERY)),
        ack_failures: Mutex::new(Throttle::new(LOG_EVERY)),
    });
    let source = config.system.as_str();
    let endpoint = endpoint(&uri);
    let mut tasks = JoinSet::new();
    let mut backoff = Backoff::new(config.reconnect_initial, config.reconnect_max);
    let mut unreachable = Throttle::new(LOG_EVERY);
    let mut attempts = 0u64;

    while !shutdown.is_cancelled() {
        let opened = tokio::select! {
            _ = shutdown.cancelled() => break,
            opened = open(&uri, &config) => opened,
        };
        match opened {
            Ok(session) => {
                ctx.intake.link().up();
                tracing::info!(source, %endpoint, queue = %config.queue, prefetch = config.prefetch, "consuming");
                attempts = 0;
                unreachable = Throttle::new(LOG_EVERY);
                match consume(session, &ctx, &mut tasks).await {
                    End::Shutdown => break,
                    End::Lost { reason, healthy } => {
                        if healthy {
                            backoff.reset();
                        }
                        ctx.intake.link().down(format!("{endpoint}: connection lost ({reason})"));
                        tracing::warn!(source, %endpoint, %reason, "AMQP connection lost; reconnecting");
                    }
                }
            }
            Err(e) => {
                ctx.intake.link().down(format!("{endpoint}: {e}"));
                attempts += 1;
                if let Some(held_back) = unreachable.ready() {
                    if e.is_mismatch() {
                        tracing::error!(source, %endpoint, error = %e, attempts, held_back,
                            "the broker's topology does not match the config; retrying until someone fixes it");
                    } else {
                        tracing::warn!(source, %endpoint, error = %e, attempts, held_back, "cannot consume; retrying");
                    }
                }
            }
        }
        let wait = backoff.next_wait();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }

    // Deliveries of lost sessions may still wait for the hub; they settle
    // (or fail to ack, harmlessly) before we return.
    while let Some(joined) = tasks.join_next().await {
        reap(source, joined);
    }
    tracing::info!(source, "AMQP connector stopped");
    Ok(())
}

/// Connects, declares the topology, sets the prefetch window and starts consuming.
async fn open(uri: &AMQPUri, config: &AmqpConfig) -> Result<Session, SetupError> {
    let connection = topology::connect(uri, &config.connection_name).await?;
    match subscribe(&connection, config).await {
        Ok((channel, consumer)) => Ok(Session { connection, channel, consumer }),
        Err(e) => {
            close_connection(&connection).await;
            Err(e)
        }
    }
}

async fn subscribe(connection: &Connection, config: &AmqpConfig) -> Result<(Channel, Consumer), SetupError> {
    topology::declare(connection, config).await?;
    let failed = |what: &str| {
        let what = what.to_string();
        move |source| SetupError::Declare { what, source }
    };
    let channel = connection.create_channel().await.map_err(failed("open the consuming channel"))?;
    // The window bounds both what the broker pushes and how many records
    // are in flight towards the hub.
    channel.basic_qos(config.prefetch, BasicQosOptions::default()).await.map_err(failed("set the prefetch"))?;
    let consumer = channel
        .basic_consume(config.queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .map_err(failed(&format!("consume `{}`", config.queue)))?;
    Ok((channel, consumer))
}

/// Hands deliveries over until the shutdown (then drains gracefully) or the
/// loss of the connection, channel or consumer.
async fn consume(mut session: Session, ctx: &Arc<Context>, tasks: &mut JoinSet<()>) -> End {
    let started = Instant::now();
    let mut delivered = 0u64;
    let source = &*ctx.source;
    let end = loop {
        tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => {
                drain(&mut session, ctx, tasks).await;
                return End::Shutdown;
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => reap(source, joined),
            next = session.consumer.next(), if tasks.len() < ctx.max_in_flight => match next {
                Some(Ok(delivery)) => {
                    delivered += 1;
                    tasks.spawn(handle(delivery, ctx.clone()));
                }
                Some(Err(e)) => break e.to_string(),
                None => break "the broker cancelled the consumer (queue deleted?)".to_string(),
            },
        }
    };
    // If only the consumer or channel went, the connection may live on:
    // close it so the broker requeues what this session had unacked.
    close_connection(&session.connection).await;
    End::Lost { reason: end, healthy: delivered > 0 || started.elapsed() >= HEALTHY_SESSION }
}

/// Graceful stop: no new deliveries, the ones already received go to the
/// hub and are acked, then the channel and connection close (whatever the
/// broker had not delivered stays in the queue).
async fn drain(session: &mut Session, ctx: &Arc<Context>, tasks: &mut JoinSet<()>) {
    let source = &*ctx.source;
    let tag = session.consumer.tag();
    match tokio::time::timeout(CLOSE_TIMEOUT, session.channel.basic_cancel(tag, BasicCancelOptions::default())).await {
        Ok(Ok(())) => {
            // Deliveries that arrived before the cancel-ok are still
            // buffered in the consumer, followed by its end.
            while let Ok(Some(Ok(delivery))) = tokio::time::timeout(CLOSE_TIMEOUT, session.consumer.next()).await {
                tasks.spawn(handle(delivery, ctx.clone()));
            }
        }
        Ok(Err(e)) => tracing::debug!(source, error = %e, "basic.cancel failed"),
        Err(_) => tracing::debug!(source, "no cancel-ok from the broker"),
    }
    let in_flight = tasks.len();
    tracing::info!(source, in_flight, "stopping: waiting for the hub's answers to the records in flight");
    while let Some(joined) = tasks.join_next().await {
        reap(source, joined);
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.channel.close(200, "OK".into())).await;
    close_connection(&session.connection).await;
}

/// One delivery: to the hub, then ack on any outcome, or requeue after a
/// pause if the hub stored nothing.
async fn handle(delivery: Delivery, ctx: Arc<Context>) {
    let source = &*ctx.source;
    let (record, settle) = into_record(source, delivery);
    let (message_id, delivery_tag) = (settle.message_id.as_deref(), settle.delivery_tag);
    match ctx.intake.submit(record).await {
        Ok(_) => {
            if let Err(error) = settle.ack().await {
                // After a lost connection every delivery in flight lands
                // here: one line per LOG_EVERY, the others counted in it.
                match Context::log_now(&ctx.ack_failures) {
                    Some(held_back) => tracing::warn!(source, message_id, delivery_tag, %error, held_back,
                        "stored but not acked; the broker will redeliver it and the hub will see a duplicate"),
                    None => tracing::debug!(source, message_id, delivery_tag, %error, "stored but not acked"),
                }
            }
        }
        Err(e) => {
            if let Some(held_back) = Context::log_now(&ctx.store_failures) {
                tracing::warn!(source, message_id, error = %e, held_back,
                    "the hub did not store a record; it goes back to the queue");
            }
            // Requeued at once it would come straight back while the store
            // is still down; the pause keeps its prefetch slot meanwhile.
            tokio::select! {
                _ = tokio::time::sleep(ctx.requeue_delay) => {}
                _ = ctx.shutdown.cancelled() => {}
            }
            if let Err(error) = settle.requeue().await {
                tracing::debug!(source, message_id, %error, "nack failed; the broker requeues it with the channel");
            }
        }
    }
}

fn reap(source: &str, joined: Result<(), JoinError>) {
    match joined {
        // Left unacked: the broker redelivers it with the next connection.
        Err(e) if e.is_panic() => tracing::error!(source, "a delivery task panicked"),
        _ => {}
    }
}

async fn close_connection(connection: &Connection) {
    if connection.status().connected() {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, "OK".into())).await;
    }
}
