//! The way back out: a message the hub has durably queued for an agency
//! (a status change for the hotline, a notification for a terminal, an
//! outcome for a court), and the transports that deliver it. The hub says
//! what and to which address; a [`Sender`] knows how. A send returns `Ok`
//! only once the other side has taken responsibility (a publisher confirm,
//! a PUBACK, a 2xx), so the hub may then mark it done.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Mutex;

use crate::amqp::{ConfirmPublisher, PublishError};
use crate::mqtt::{Notifier, NotifyError};

/// One message to send. `address` is the routing key (AMQP), the topic
/// (MQTT) or the path below the base URL (HTTP).
#[derive(Clone, Debug)]
pub struct Outbound {
    pub address: String,
    pub body: Vec<u8>,
    /// Stable across resends, so that the receiver recognises a repeat.
    pub message_id: String,
    pub content_type: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not taken now (broker or server down, no confirm, 5xx, 429): send
    /// again later, not before `after` if the other side said so.
    #[error("{reason}")]
    Retry { reason: String, after: Option<Duration> },
    /// Refused for good (a 4xx, no queue bound): sending again will not
    /// help; a person must look.
    #[error("{reason}")]
    Refused { reason: String },
}

/// Delivers [`Outbound`] messages to one agency.
pub trait Sender: Send + Sync + 'static {
    fn send<'a>(&'a self, message: &'a Outbound) -> BoxFuture<'a, Result<(), SendError>>;

    /// Whether messages sent at once still arrive in the order they were
    /// sent (one AMQP channel, one MQTT connection). HTTP requests on a
    /// pool of connections do not: they go one after the other.
    fn keeps_order(&self) -> bool {
        true
    }
}

/// Publishes to one exchange with publisher confirms, connecting when first
/// needed (and again after a loss), so that a broker down at start delays
/// only this agency's messages.
pub struct AmqpSender {
    url: String,
    exchange: String,
    connection_name: String,
    timeout: Duration,
    publisher: Mutex<Option<Arc<ConfirmPublisher>>>,
}

impl AmqpSender {
    pub fn new(url: &str, exchange: &str, connection_name: &str, timeout: Duration) -> AmqpSender {
        AmqpSender {
            url: url.to_string(),
            exchange: exchange.to_string(),
            connection_name: connection_name.to_string(),
            timeout,
            publisher: Mutex::new(None),
        }
    }

    async fn publisher(&self) -> Result<Arc<ConfirmPublisher>, SendError> {
        let mut slot = self.publisher.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p = ConfirmPublisher::connect(&self.url, &self.exchange, &self.connection_name)
            .await
            .map_err(|e| retry(e.to_string()))?
            .with_timeout(self.timeout);
        let p = Arc::new(p);
        *slot = Some(p.clone());
        Ok(p)
    }
}

fn retry(reason: String) -> SendError {
    SendError::Retry { reason, after: None }
}

impl Sender for AmqpSender {
    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let publisher = self.publisher().await?;
            match publisher.publish(&m.address, &m.body, &m.message_id).await {
                Ok(()) => Ok(()),
                Err(e @ PublishError::Invalid(_)) => Err(SendError::Refused { reason: e.to_string() }),
                // The agency's queue is not bound yet (its system starts
                // after the hub, or is being redeployed): the message waits
                // for it rather than being dropped.
                Err(e @ PublishError::Unroutable { .. }) => Err(retry(e.to_string())),
                Err(e) => Err(retry(e.to_string())),
            }
        })
    }
}

/// Publishes at QoS 1 and returns on the broker's PUBACK for that publish.
pub struct MqttSender(pub Notifier);

impl Sender for MqttSender {
    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            match self.0.publish(m.address.clone(), &m.body).await {
                Ok(()) => Ok(()),
                Err(NotifyError::BadAddress) => {
                    Err(SendError::Refused { reason: format!("`{}` is not a topic to publish to", m.address) })
                }
                Err(e) => Err(retry(e.to_string())),
            }
        })
    }
}

/// POSTs to `{base}{address}`; 2xx and 409 (the other side has it already)
/// are success, 408, 429 and 5xx are tried again (after `Retry-After`), any
/// other answer is refused for good.
pub struct HttpSender {
    base: String,
    client: reqwest::Client,
    retry_after: crate::retry_after::RetryAfterBounds,
}

impl HttpSender {
    pub fn new(base: &str, timeout: Duration) -> Result<HttpSender, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpSender {
            base: base.trim_end_matches('/').to_string(),
            client,
            retry_after: crate::retry_after::RetryAfterBounds::default(),
        })
    }
}

impl Sender for HttpSender {
    fn keeps_order(&self) -> bool {
        false
    }

    fn send<'a>(&'a self, m: &'a Outbound) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let answer = self
                .client
                .post(format!("{}{}", self.base, m.address))
                .header(reqwest::header::CONTENT_TYPE, &m.content_type)
                .header("Idempotency-Key", &m.message_id)
                .body(m.body.clone())
                .send()
                .await
                .map_err(|e| retry(e.without_url().to_string()))?;
            let status = answer.status();
            if status.is_success() || status == reqwest::StatusCode::CONFLICT {
                return Ok(());
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT
                || status.is_server_error()
            {
                let after = answer
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| self.retry_after.wait(v, std::time::SystemTime::now()));
                return Err(SendError::Retry { reason: format!("answered {status}"), after });
            }
            // The status only: an agency's error text may quote what it
            // was sent (a name, a phone number), and this reason is logged
            // and kept in the ticket's history.
            Err(SendError::Refused { reason: format!("answered {status}") })
        })
    }
}
