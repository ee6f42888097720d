//! The AMQP agencies (hotline CTI, petition registration system) as one
//! publisher: durable topic exchange, persistent messages, publisher
//! confirms, CTI-style resends with the same `message_id`, and bad input.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use serde::Serialize;

use super::content::{Matter, Rng};
use super::{hotline, petition};

/// What a message is, for the tally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum MessageKind {
    /// First version of a matter.
    New,
    /// A later version (update, revocation, conclusion).
    Update,
    /// Republished with the same `message_id` (CTI retry).
    Resend,
    /// Bad input.
    Bad,
}

/// One message as the agency publishes it.
#[derive(Clone, Debug)]
pub struct AmqpMessage {
    pub routing_key: String,
    pub message_id: String,
    /// `utf-8` or `gb18030`.
    pub content_encoding: &'static str,
    pub body: Vec<u8>,
    pub kind: MessageKind,
}

/// Which agency is played.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agency {
    Hotline,
    Petition,
}

impl Agency {
    /// The contract's exchange name.
    pub fn default_exchange(self) -> &'static str {
        match self {
            Agency::Hotline => "hotline.orders",
            Agency::Petition => "petition.records",
        }
    }
}

/// What a run sent (every message confirmed by the broker).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub good_new: u64,
    pub good_update: u64,
    pub duplicate_resend: u64,
    pub bad: u64,
    /// Distinct bad bodies: a hub keeps the same bad bytes once.
    pub bad_distinct: u64,
    #[serde(skip)]
    bad_seen: std::collections::HashSet<u64>,
    /// Publishes the broker nacked (not counted above).
    pub nacked: u64,
    /// Distinct matters started.
    pub matters: u64,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.good_new + self.good_update + self.duplicate_resend + self.bad
    }
    fn count(&mut self, kind: MessageKind) {
        match kind {
            MessageKind::New => self.good_new += 1,
            MessageKind::Update => self.good_update += 1,
            MessageKind::Resend => self.duplicate_resend += 1,
            MessageKind::Bad => self.bad += 1,
        }
    }
}

/// Deterministic message stream: matters in order, later versions a few
/// messages after the earlier ones, resends and bad input mixed in.
pub struct Plan {
    agency: Agency,
    seed: u64,
    rng: Rng,
    next_matter: u64,
    /// (due at message n, message)
    later: VecDeque<(u64, AmqpMessage)>,
    n: u64,
    pub bad_share: f64,
    pub resend_share: f64,
    last_good: Option<AmqpMessage>,
}

impl Plan {
    pub fn new(agency: Agency, seed: u64, bad_share: f64, resend_share: f64) -> Plan {
        Plan {
            agency,
            seed,
            rng: Rng::new(seed ^ 0xA9),
            next_matter: 0,
            later: VecDeque::new(),
            n: 0,
            bad_share,
            resend_share,
            last_good: None,
        }
    }

    fn messages_of(&self, m: &Matter) -> Vec<AmqpMessage> {
        match self.agency {
            Agency::Hotline => hotline::order_messages(m),
            Agency::Petition => petition::record_messages(m),
        }
    }

    fn reports(&self, m: &Matter) -> bool {
        match self.agency {
            Agency::Hotline => m.channels.hotline,
            Agency::Petition => m.channels.petition,
        }
    }

    /// The next message to publish.
    pub fn next_message(&mut self) -> AmqpMessage {
        self.n += 1;
        if self.rng.chance(self.bad_share) {
            return match self.agency {
                Agency::Hotline => hotline::bad_order(&mut self.rng, self.n),
                Agency::Petition => petition::bad_record(&mut self.rng, self.n),
            };
        }
        if let Some(prev) = &self.last_good
            && self.rng.chance(self.resend_share)
        {
            let mut m = prev.clone();
            m.kind = MessageKind::Resend;
            self.last_good = None;
            return m;
        }
        let msg = if self.later.front().is_some_and(|(due, _)| *due <= self.n) {
            self.later.pop_front().expect("front").1
        } else {
            // The matters this agency hears of: with the same seed, the
            // hotline and the petition bureau hear of some of the same ones,
            // as a city's agencies do.
            let mut m = Matter::new(self.seed, self.next_matter);
            while !self.reports(&m) {
                self.next_matter += 1;
                m = Matter::new(self.seed, self.next_matter);
            }
            self.next_matter += 1;
            let mut msgs = self.messages_of(&m).into_iter();
            let first = msgs.next().expect("at least one version");
            let mut due = self.n;
            for later in msgs {
                due += 1 + self.rng.below(5);
                let at = self.later.partition_point(|(d, _)| *d <= due);
                self.later.insert(at, (due, later));
            }
            first
        };
        self.last_good = Some(msg.clone());
        msg
    }

    /// Matters started so far.
    pub fn matters(&self) -> u64 {
        self.next_matter
    }
}

/// A publishing agency. `run` connects, declares the exchange and publishes.
#[derive(Clone, Debug)]
pub struct AmqpAgency {
    pub agency: Agency,
    pub seed: u64,
    /// Share of good messages published a second time (same message_id).
    pub resend_share: f64,
}

impl AmqpAgency {
    pub fn new(agency: Agency, seed: u64) -> Self {
        AmqpAgency { agency, seed, resend_share: 0.05 }
    }

    /// Publish at `rate` messages per second (0 = as fast as confirms allow)
    /// for `duration`, a share `bad_share` of them bad input. Returns what was
    /// confirmed. Stops early only on connection errors.
    pub async fn run(&self, url: &str, exchange: &str, rate: f64, duration: Duration, bad_share: f64) -> Result<Tally> {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.context("amqp connect")?;
        let ch = conn.create_channel().await?;
        ch.exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .context("exchange declare")?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let mut plan = Plan::new(self.agency, self.seed, bad_share, self.resend_share);
        let mut tally = Tally::default();
        let start = Instant::now();
        let interval = if rate > 0.0 { Some(Duration::from_secs_f64(1.0 / rate)) } else { None };
        let mut sent = 0u32;
        while start.elapsed() < duration {
            if let Some(iv) = interval {
                let due = start + iv * sent;
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                if start.elapsed() >= duration {
                    break;
                }
            }
            sent += 1;
            let msg = plan.next_message();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding(msg.content_encoding.into())
                .with_delivery_mode(2)
                .with_message_id(msg.message_id.as_str().into())
                .with_timestamp(now);
            let confirm = ch
                .basic_publish(
                    exchange.into(),
                    msg.routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &msg.body,
                    props,
                )
                .await?
                .await?;
            if confirm.is_nack() {
                tally.nacked += 1;
            } else {
                tally.count(msg.kind);
                if msg.kind == MessageKind::Bad && tally.bad_seen.insert(super::content::body_hash(&msg.body)) {
                    tally.bad_distinct += 1;
                }
            }
        }
        tally.matters = plan.matters();
        tracing::info!(agency = ?self.agency, exchange, total = tally.total(), "amqp agency done");
        let _ = conn.close(200, "done".into()).await;
        if tally.total() == 0 && duration > Duration::ZERO && sent > 0 {
            bail!("nothing confirmed");
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions};
    use std::collections::HashMap;

    #[test]
    fn agencies_plan_orders_versions() {
        let mut plan = Plan::new(Agency::Hotline, 9, 0.1, 0.1);
        let mut seen: HashMap<String, i64> = HashMap::new();
        let mut kinds = HashMap::new();
        for _ in 0..2000 {
            let m = plan.next_message();
            *kinds.entry(m.kind).or_insert(0) += 1;
            if m.kind == MessageKind::Bad {
                continue;
            }
            let (id, v) = m.message_id.rsplit_once(':').unwrap();
            let v: i64 = v.parse().unwrap();
            let prev = seen.get(id).copied().unwrap_or(0);
            if m.kind == MessageKind::Resend {
                assert_eq!(prev, v);
            } else {
                assert_eq!(v, prev + 1, "{id}");
            }
            seen.insert(id.to_string(), v);
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    }

    async fn roundtrip(agency: Agency) {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let exchange = format!("test.agencies.{nonce}");
        let queue = format!("test.agencies.q.{nonce}");
        // Declare the exchange and bind the queue before publishing.
        let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
        let opts = QueueDeclareOptions { auto_delete: false, exclusive: true, ..Default::default() };
        ch.queue_declare(queue.as_str().into(), opts, FieldTable::default()).await.unwrap();
        ch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

        let mut sim = AmqpAgency::new(agency, 77);
        sim.resend_share = 0.1;
        let tally = sim.run(url, &exchange, 0.0, Duration::from_millis(800), 0.1).await.unwrap();
        assert!(tally.total() > 20, "{tally:?}");
        assert!(tally.good_new > 0 && tally.bad > 0 && tally.duplicate_resend > 0, "{tally:?}");

        let mut got = 0u64;
        let mut ids: HashMap<String, u32> = HashMap::new();
        while let Some(d) = ch.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap() {
            got += 1;
            let p = &d.delivery.properties;
            assert_eq!(p.content_type().as_ref().unwrap().as_str(), "application/json");
            assert_eq!(*p.delivery_mode(), Some(2));
            let enc = p.content_encoding().as_ref().unwrap().as_str().to_string();
            assert!(enc == "utf-8" || enc == "gb18030");
            let key = d.delivery.routing_key.as_str();
            match agency {
                Agency::Hotline => assert!(key.starts_with("order.")),
                Agency::Petition => assert!(key.starts_with("record.")),
            }
            *ids.entry(p.message_id().as_ref().unwrap().as_str().to_string()).or_insert(0) += 1;
        }
        assert_eq!(got, tally.total());
        assert!(ids.values().any(|n| *n > 1), "resends keep the message_id");
        ch.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await.unwrap();
        let _ = conn.close(200, "bye".into()).await;
    }

    #[tokio::test]
    async fn agencies_hotline_publisher_against_rabbitmq() {
        roundtrip(Agency::Hotline).await;
    }

    #[tokio::test]
    async fn agencies_petition_publisher_against_rabbitmq() {
        roundtrip(Agency::Petition).await;
    }
}
