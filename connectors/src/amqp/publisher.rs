//! Publishing to an agency's back-channel (`hotline.feedback`,
//! `petition.feedback`) with publisher confirms: `publish` returns only once
//! the broker has taken responsibility for the message, so the caller (the
//! hub's outbox) may mark it sent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::parse_url;
use super::retry::Backoff;
use super::topology::{self, SetupError};

/// How long `publish` keeps retrying unless told otherwise.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    InvalidUrl(String),
    #[error("cannot connect to the broker: {0}")]
    Connect(String),
    /// A routing key or message id longer than AMQP's 255 bytes.
    #[error("{0}")]
    Invalid(String),
    /// Neither confirmed nor refused for good by the deadline: the caller
    /// should try again later (the broker may still have it: publish with the
    /// same message id so the receiver can dedupe).
    #[error("message `{message_id}` not confirmed by the deadline after {attempts} attempt(s): {last_error}")]
    Unconfirmed { message_id: String, attempts: u32, last_error: String },
    /// Confirmed, but no queue is bound for it: the broker dropped it.
    /// Not retried: only a binding on the receiving side fixes it.
    #[error("message `{message_id}` is unroutable: no queue bound to `{exchange}` for `{routing_key}`")]
    Unroutable { message_id: String, exchange: String, routing_key: String },
}

/// The open connection and its confirming channel; `generation` tells a
/// failed publisher whether someone already replaced it.
struct Link {
    generation: u64,
    connection: Connection,
    channel: Channel,
}

/// A confirming publisher to one durable topic exchange. Cheap to share
/// (`&self` methods); concurrent publishes pipeline on one channel.
pub struct ConfirmPublisher {
    uri: AMQPUri,
    exchange: String,
    connection_name: String,
    timeout: Duration,
    reconnect_initial: Duration,
    reconnect_max: Duration,
    link: Mutex<Option<Link>>,
    generations: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ConfirmPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmPublisher")
            .field("exchange", &self.exchange)
            .field("connection_name", &self.connection_name)
            .finish_non_exhaustive()
    }
}

/// One failed attempt: the error, and the link it happened on.
struct Failure {
    generation: Option<u64>,
    error: String,
}

impl ConfirmPublisher {
    /// Connects, declares `exchange` (durable topic; an existing one is
    /// accepted as it is) and turns confirms on. Fails if the broker cannot
    /// be reached now; later losses are retried by `publish`.
    pub async fn connect(url: &str, exchange: &str, connection_name: &str) -> Result<Self, PublishError> {
        let uri = parse_url(url).map_err(PublishError::InvalidUrl)?;
        let publisher = ConfirmPublisher {
            uri,
            exchange: exchange.to_string(),
            connection_name: connection_name.to_string(),
            timeout: DEFAULT_PUBLISH_TIMEOUT,
            reconnect_initial: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(5),
            link: Mutex::new(None),
            generations: Default::default(),
        };
        publisher.channel().await.map_err(|f| PublishError::Connect(f.error))?;
        Ok(publisher)
    }

    /// How long [`publish`](Self::publish) retries before giving up
    /// (default [`DEFAULT_PUBLISH_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Waits between retries: `initial` doubling (with jitter) up to `max`.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_initial = initial;
        self.reconnect_max = max.max(initial);
        self
    }

    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// Publishes a persistent JSON message and waits for the broker's
    /// confirm, retrying nacks and lost connections for up to the timeout.
    pub async fn publish(&self, routing_key: &str, body: &[u8], message_id: &str) -> Result<(), PublishError> {
        self.publish_by(routing_key, body, message_id, Instant::now() + self.timeout).await
    }

    /// [`publish`](Self::publish) with an explicit deadline.
    pub async fn publish_by(
        &self,
        routing_key: &str,
        body: &[u8],
        message_id: &str,
        deadline: Instant,
    ) -> Result<(), PublishError> {
        if routing_key.len() > 255 || message_id.len() > 255 {
            return Err(PublishError::Invalid("routing key and message id are limited to 255 bytes".into()));
        }
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_message_id(message_id.into())
            .with_timestamp(timestamp);
        let mut backoff = Backoff::new(self.reconnect_initial, self.reconnect_max);
        let mut attempts = 0u32;
        let unconfirmed = |attempts, last_error| PublishError::Unconfirmed {
            message_id: message_id.to_string(),
            attempts,
            last_error,
        };
        loop {
            attempts += 1;
            let attempt = self.attempt(routing_key, body, properties.clone());
            let failure = match tokio::time::timeout_at(deadline, attempt).await {
                Err(_) => return Err(unconfirmed(attempts, "no confirm before the deadline".into())),
                Ok(Ok(Confirmation::Ack(None))) => return Ok(()),
                Ok(Ok(Confirmation::Ack(Some(_)))) => {
                    return Err(PublishError::Unroutable {
                        message_id: message_id.to_string(),
                        exchange: self.exchange.clone(),
                        routing_key: routing_key.to_string(),
                    });
                }
                // The broker could not take it (an internal error): the
                // channel is fine, try again.
                Ok(Ok(Confirmation::Nack(_))) => Failure { generation: None, error: "nacked by the broker".into() },
                Ok(Err(failure)) => failure,
                // Cannot happen (every link is opened with confirm_select);
                // if it did, a fresh link turns confirms on again.
                Ok(Ok(Confirmation::NotRequested)) => {
                    Failure { generation: self.current_generation().await, error: "confirms were off".into() }
                }
            };
            if let Some(generation) = failure.generation {
                self.invalidate(generation).await;
            }
            let wait = backoff.next_wait();
            if Instant::now() + wait >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(unconfirmed(attempts, failure.error));
            }
            tracing::debug!(exchange = %self.exchange, message_id, error = %failure.error, ?wait, "publish not confirmed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Closes the connection; in-flight publishes fail.
    pub async fn close(&self) {
        if let Some(link) = self.link.lock().await.take() {
            let _ = link.channel.close(200, "OK".into()).await;
            let _ = link.connection.close(200, "OK".into()).await;
        }
    }

    async fn attempt(
        &self,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<Confirmation, Failure> {
        let (generation, channel) = self.channel().await?;
        let failed = |e: lapin::Error| Failure { generation: Some(generation), error: e.to_string() };
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let confirm = channel
            .basic_publish(self.exchange.as_str().into(), routing_key.into(), options, body, properties)
            .await
            .map_err(failed)?;
        confirm.await.map_err(failed)
    }

    /// The current confirming channel, reconnecting if there is none. The
    /// lock makes concurrent publishers wait for one reconnect.
    async fn channel(&self) -> Result<(u64, Channel), Failure> {
        let mut link = self.link.lock().await;
        if let Some(l) = link.as_ref().filter(|l| l.channel.status().connected()) {
            return Ok((l.generation, l.channel.clone()));
        }
        let failed = |e: SetupError| Failure { generation: None, error: e.to_string() };
        let connection = topology::connect(&self.uri, &self.connection_name).await.map_err(failed)?;
        topology::ensure_exchange(&connection, &self.exchange, ExchangeKind::Topic).await.map_err(failed)?;
        let declared = |source| failed(SetupError::Declare { what: "open a confirming channel".into(), source });
        let channel = connection.create_channel().await.map_err(declared)?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(declared)?;
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if generation > 1 {
            tracing::info!(exchange = %self.exchange, "publisher reconnected");
        }
        *link = Some(Link { generation, connection, channel: channel.clone() });
        Ok((generation, channel))
    }

    async fn current_generation(&self) -> Option<u64> {
        self.link.lock().await.as_ref().map(|l| l.generation)
    }

    /// Drops the link a publish failed on, unless it was replaced already.
    async fn invalidate(&self, generation: u64) {
        let mut link = self.link.lock().await;
        if link.as_ref().is_some_and(|l| l.generation == generation) {
            *link = None;
        }
    }
}
