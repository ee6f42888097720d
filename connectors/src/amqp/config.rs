//! What an AMQP source needs to be consumed: where the broker is, which
//! exchange the agency publishes to, and the queue the hub owns.

use std::time::Duration;

use lapin::uri::AMQPUri;

/// One agency's RabbitMQ source.
///
/// The hub owns `queue` (durable, bound to the agency's `exchange` with
/// `binding_keys`), so records published while the hub is down wait there.
#[derive(Clone, Debug)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:5672/%2f`. Holds a password: never log it.
    pub url: String,
    /// The source system as the hub names it (`hotline`, `petition`).
    pub system: String,
    /// The agency's topic exchange, declared durable if it does not exist yet.
    pub exchange: String,
    /// The hub's own durable queue.
    pub queue: String,
    pub binding_keys: Vec<String>,
    /// How many unacknowledged deliveries the broker may push at once; it is
    /// also how many records this connector has in flight towards the hub.
    /// Must be at least 1 (0 would mean "unlimited" to the broker).
    pub prefetch: u16,
    /// A fanout exchange for what the broker has to drop from `queue`
    /// (a rejection without requeue, a TTL or length limit an operator adds):
    /// it lands in the durable queue `{queue}.dead` instead of vanishing.
    /// `None` declares no dead-lettering.
    pub dead_letter_exchange: Option<String>,
    /// The `connection_name` client property, so an operator (or a test) can
    /// find this connection with `rabbitmqctl list_connections` and close it.
    pub connection_name: String,
    /// First wait before reconnecting; doubles (with jitter) up to `reconnect_max`.
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// How long a delivery the hub could not store is held before it is
    /// requeued: an immediate requeue would spin while the store is down.
    pub requeue_delay: Duration,
}

impl AmqpConfig {
    /// A config with the usual defaults: bound with `#`, prefetch 256,
    /// dead letters to `{queue}.dlx`, connection named `hub-{system}`,
    /// reconnecting after 0.5 s up to 30 s.
    pub fn new(
        url: impl Into<String>,
        system: impl Into<String>,
        exchange: impl Into<String>,
        queue: impl Into<String>,
    ) -> Self {
        let system = system.into();
        let queue = queue.into();
        AmqpConfig {
            url: url.into(),
            connection_name: format!("hub-{system}"),
            dead_letter_exchange: Some(format!("{queue}.dlx")),
            system,
            exchange: exchange.into(),
            queue,
            binding_keys: vec!["#".to_string()],
            prefetch: 256,
            reconnect_initial: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            requeue_delay: Duration::from_secs(1),
        }
    }

    /// The 12345 hotline's work orders (`hotline.orders`, `order.#`) into `hub.hotline`.
    pub fn hotline(url: impl Into<String>) -> Self {
        AmqpConfig::new(url, "hotline", "hotline.orders", "hub.hotline").with_binding_keys(["order.#"])
    }

    /// The petition bureau's records (`petition.records`, `record.#`) into `hub.petition`.
    pub fn petition(url: impl Into<String>) -> Self {
        AmqpConfig::new(url, "petition", "petition.records", "hub.petition").with_binding_keys(["record.#"])
    }

    pub fn with_binding_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.binding_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// The queue that receives what the dead-letter exchange gets.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    /// Checks what no retry can fix, so that `run` fails at once instead of
    /// reconnecting forever.
    pub(crate) fn validate(&self) -> Result<AMQPUri, String> {
        let uri = parse_url(&self.url)?;
        if self.prefetch == 0 {
            return Err("prefetch must be at least 1".into());
        }
        if self.queue.is_empty() {
            return Err("the queue name must not be empty".into());
        }
        if self.binding_keys.is_empty() {
            return Err("at least one binding key is needed".into());
        }
        if self.reconnect_initial.is_zero() || self.reconnect_max < self.reconnect_initial {
            return Err("reconnect_initial must be > 0 and <= reconnect_max".into());
        }
        Ok(uri)
    }
}

/// Parses an AMQP URL. The error names what is wrong without repeating the
/// URL, which may hold a password.
pub(crate) fn parse_url(url: &str) -> Result<AMQPUri, String> {
    // amq-protocol quotes the whole URL in some of its messages.
    url.parse::<AMQPUri>().map_err(|e| format!("invalid AMQP URL: {}", e.replace(url, "<url>")))
}

/// `host:port` (and `/vhost` unless it is `/`) of a URL, for logs: no credentials.
pub(crate) fn endpoint(uri: &AMQPUri) -> String {
    let authority = format!("{}:{}", uri.authority.host, uri.authority.port);
    if uri.vhost == "/" { authority } else { format!("{authority}/{}", uri.vhost) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_contracts() {
        let c = AmqpConfig::hotline("amqp://127.0.0.1");
        assert_eq!((c.exchange.as_str(), c.queue.as_str()), ("hotline.orders", "hub.hotline"));
        assert_eq!(c.binding_keys, ["order.#"]);
        assert_eq!(c.dead_letter_exchange.as_deref(), Some("hub.hotline.dlx"));
        assert_eq!(c.dead_letter_queue(), "hub.hotline.dead");
        assert_eq!(c.prefetch, 256);
        let p = AmqpConfig::petition("amqp://127.0.0.1");
        assert_eq!((p.system.as_str(), p.binding_keys[0].as_str()), ("petition", "record.#"));
    }

    #[test]
    fn bad_configs_are_refused() {
        let ok = AmqpConfig::hotline("amqp://guest:secret@127.0.0.1:5672/%2f");
        let uri = ok.validate().unwrap();
        assert_eq!(endpoint(&uri), "127.0.0.1:5672");
        let uri = parse_url("amqps://u:secret@mq.example:5671/gov").unwrap();
        assert_eq!(endpoint(&uri), "mq.example:5671/gov");
        assert!(!endpoint(&uri).contains("secret"));
        let err = AmqpConfig { url: "http://guest:secret@127.0.0.1/".into(), ..ok.clone() }.validate().unwrap_err();
        assert!(err.contains("scheme"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = AmqpConfig { url: "guest:secret".into(), ..ok.clone() }.validate().unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(AmqpConfig { prefetch: 0, ..ok.clone() }.validate().is_err());
        assert!(AmqpConfig { binding_keys: vec![], ..ok }.validate().is_err());
    }
}
