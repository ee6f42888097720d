//! The terminals' MQTT connector: subscribes on a persistent session with
//! manual acks, and PUBACKs a message only once the hub has stored it.
//!
//! Two tasks: this one polls the connection and hands each PUBLISH to the
//! [committer](super::commit), which submits and acknowledges. Each network
//! connection gets a fresh rumqttc client (see the `wire` module), so an
//! acknowledgement can never leak from one connection to the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{CancellationToken, Connector, ConnectorError, Intake};

use super::commit::{Committer, DropConnection, Received};
use super::config::{ConfigError, MqttConfig, MqttProtocol};
use super::reconnect::Reconnect;
use super::wire::{Connection, Event, Options, Protocol};

/// How long a graceful shutdown waits, after queueing its DISCONNECT, for
/// the broker to close the connection. Closing it ourselves while the
/// broker's PUBLISHes sit unread in our socket makes the kernel send a RST,
/// and a RST lets the broker's kernel discard our last PUBACKs before the
/// broker has read them (seen with Mosquitto: ~20 stored messages were
/// delivered again after every graceful shutdown). So the connector keeps
/// reading (and ignoring) until the broker, having read the DISCONNECT,
/// closes its end.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Subscribes to the terminals' topics and hands every message to the hub.
pub struct MqttConnector {
    config: MqttConfig,
    options: Options,
}

impl MqttConnector {
    /// Checks the configuration; connects only when run.
    pub fn new(config: MqttConfig) -> Result<Self, ConfigError> {
        let endpoint = config.validate()?;
        // Either way the session is persistent and every PUBACK waits for
        // the hub's commit (the committer); only MQTT 5 can also tell the
        // broker how many messages the hub takes at once.
        let protocol = match config.protocol {
            MqttProtocol::V5 => {
                Protocol::V5 { session_expiry: config.session_expiry, receive_maximum: config.inflight }
            }
            MqttProtocol::V311 => Protocol::V4,
        };
        let options = Options {
            protocol,
            persistent: true,
            manual_acks: true,
            // Above anything the broker may have in flight to us, so that
            // queueing a PUBACK rarely waits (#1025).
            request_capacity: usize::from(config.inflight) * 2 + 64,
            outgoing_inflight: 1,
            ..Options::from_config(&config, endpoint)?
        };
        if options.tls_roots.is_none() && options.credentials.as_ref().is_some_and(|(_, p)| !p.0.is_empty()) {
            let loopback = matches!(options.host.as_str(), "localhost" | "127.0.0.1" | "::1");
            if !loopback {
                tracing::warn!(connector = %config.system, host = %options.host, "the MQTT password goes over plain TCP: use mqtts://");
            }
        }
        Ok(MqttConnector { config, options })
    }

    pub fn config(&self) -> &MqttConfig {
        &self.config
    }
}

impl Connector for MqttConnector {
    fn name(&self) -> &str {
        &self.config.system
    }

    fn run(
        self: Box<Self>,
        intake: Intake,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), ConnectorError>> {
        Box::pin(async move {
            // Bounded: when the hub falls behind, the poller stops reading and
            // the broker keeps the messages, rather than this process.
            let (work_tx, work_rx) = mpsc::channel(usize::from(self.config.inflight));
            let (drop_tx, drop_rx) = mpsc::channel(4);
            let current = Arc::new(AtomicU64::new(0));
            let link = intake.link().clone();
            let committer = Committer {
                name: self.config.system.clone(),
                system: self.config.system.clone(),
                intake,
                inflight: usize::from(self.config.inflight),
                max_payload_bytes: self.config.max_payload_bytes,
                drop_tx,
                current: current.clone(),
            };
            let committer = AbortOnDrop(Some(tokio::spawn(committer.run(work_rx, shutdown.clone()))));
            let poller = Poller {
                name: self.config.system.clone(),
                filters: self.config.subscriptions(),
                reconnect: Reconnect::new(
                    self.config.system.clone(),
                    format!("{}:{}", self.options.host, self.options.port),
                    self.config.reconnect_initial,
                    self.config.reconnect_max,
                )
                .with_link(link),
                options: self.options,
                work_tx,
                drop_rx,
                current,
                committer,
                shutdown,
                subscribed: false,
            };
            poller.run().await
        })
    }
}

/// The polling side's state across connections.
struct Poller {
    name: String,
    options: Options,
    filters: Vec<String>,
    reconnect: Reconnect,
    work_tx: mpsc::Sender<Received>,
    drop_rx: mpsc::Receiver<DropConnection>,
    /// The connection being polled, for the committer (0: none).
    current: Arc<AtomicU64>,
    committer: AbortOnDrop,
    shutdown: CancellationToken,
    /// Subscribed at least once by this process. The first connection always
    /// subscribes, even to a present session, in case the filters changed.
    subscribed: bool,
}

/// How one connection ended.
enum End {
    /// Shutdown asked; what could be acknowledged was.
    Shutdown,
    /// Lost (or dropped on purpose); reconnect after a wait.
    Lost(String),
    /// Cannot work (the broker refused a subscription).
    Fatal(String),
}

impl Poller {
    async fn run(mut self) -> Result<(), ConnectorError> {
        let protocol = match self.options.protocol {
            Protocol::V4 => "3.1.1",
            Protocol::V5 { .. } => "5",
        };
        tracing::info!(connector = %self.name, host = %self.options.host, port = self.options.port, tls = self.options.tls_roots.is_some(), protocol, "mqtt connector starting");
        let mut number = 0u64;
        let end = loop {
            if self.shutdown.is_cancelled() {
                break Ok(());
            }
            number += 1;
            self.current.store(number, Ordering::Release);
            let ended = self.connection(Connection::new(&self.options), number).await;
            self.current.store(0, Ordering::Release);
            match ended {
                End::Shutdown => break Ok(()),
                End::Fatal(message) => break Err(message),
                End::Lost(reason) => {
                    let wait = self.reconnect.failed(&reason);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.shutdown.cancelled() => break Ok(()),
                    }
                }
            }
        };
        match end {
            Ok(()) => {
                // Not connected any more: the committer's remaining PUBACKs
                // fail, and the broker resends those messages.
                if let Some(committer) = self.committer.0.take()
                    && let Err(e) = committer.await
                {
                    return Err(self.fail(format!("committer task failed: {e}")));
                }
                tracing::info!(connector = %self.name, "mqtt connector stopped");
                Ok(())
            }
            Err(message) => Err(self.fail(message)),
        }
    }

    fn fail(&self, message: String) -> ConnectorError {
        ConnectorError { connector: self.name.clone(), message }
    }

    /// Polls one connection until it ends.
    async fn connection(&mut self, mut conn: Connection, number: u64) -> End {
        // Disjoint borrows, for the branches of the select below.
        let Poller { name, filters, reconnect, work_tx, drop_rx, committer, shutdown, subscribed, .. } = self;
        let client = conn.client().clone();
        let mut connected = false;
        // Shutdown seen: no new deliveries, waiting for the committer.
        let mut stopping = false;
        let mut disconnect_by: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    if !connected {
                        return End::Shutdown;
                    }
                }
                done = async { committer.0.as_mut().expect("checked by the branch condition").await },
                    if stopping && committer.0.is_some() =>
                {
                    committer.0 = None;
                    if let Err(e) = done {
                        return End::Fatal(format!("committer task failed: {e}"));
                    }
                    // Queued behind the last PUBACKs, so they go out first.
                    if client.try_disconnect().is_err() {
                        return End::Shutdown;
                    }
                    disconnect_by = Some(tokio::time::Instant::now() + DISCONNECT_TIMEOUT);
                }
                _ = sleep_until(disconnect_by), if disconnect_by.is_some() => return End::Shutdown,
                Some(drop) = drop_rx.recv() => {
                    if drop.connection == number && !stopping {
                        return End::Lost(drop.reason);
                    }
                }
                event = conn.poll() => match event {
                    Err(e) if stopping => {
                        tracing::debug!(connector = %name, error = %e, "mqtt connection ended during shutdown");
                        return End::Shutdown;
                    }
                    Err(e) => return End::Lost(e.to_string()),
                    Ok(Event::Connected { session_present }) => {
                        connected = true;
                        reconnect.connected();
                        tracing::debug!(connector = %name, session_present, "mqtt connected");
                        if !session_present || !*subscribed {
                            if !session_present && *subscribed {
                                tracing::info!(connector = %name, "mqtt broker lost the session; subscribing again");
                            }
                            if client.try_subscribe(filters).is_err() {
                                return End::Lost("could not queue the subscription".into());
                            }
                        }
                    }
                    Ok(Event::Subscribed { granted }) => {
                        for (filter, granted) in filters.iter().zip(&granted) {
                            match granted {
                                Err(reason) => {
                                    return End::Fatal(format!(
                                        "the broker refused the subscription to `{filter}`: {reason}"
                                    ));
                                }
                                Ok(0) => tracing::warn!(
                                    connector = %name, %filter,
                                    "broker granted QoS 0 only: messages may be lost in transit"
                                ),
                                Ok(_) => {}
                            }
                        }
                        if !*subscribed {
                            tracing::info!(connector = %name, filters = filters.len(), "mqtt subscribed");
                        }
                        *subscribed = true;
                    }
                    Ok(Event::Message(delivery)) => {
                        // After shutdown began a delivery is left unacknowledged:
                        // it comes after every acknowledged one, and comes again.
                        if !stopping {
                            let received = Received { connection: number, client: client.clone(), delivery };
                            // Waits while the committer is a full window behind.
                            tokio::select! {
                                sent = work_tx.send(received) => if sent.is_err() {
                                    return End::Fatal("committer task stopped".into());
                                },
                                // Left unacknowledged: it comes again.
                                _ = shutdown.cancelled() => stopping = true,
                            }
                        }
                    }
                    // Our DISCONNECT is out; keep reading until the broker closes (see
                    // DISCONNECT_TIMEOUT).
                    Ok(_) => {}
                },
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The committer task dies with the connector: if the connector's future is
/// dropped (its task aborted), nothing keeps acknowledging behind its back.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}
