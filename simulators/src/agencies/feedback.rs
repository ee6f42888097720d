//! The agencies' back-channels, heard: the hotline and the petition bureau
//! consume their feedback exchange (`hotline.feedback`,
//! `petition.feedback`) through a queue of their own. Each message is
//! counted by its AMQP `message_id`, which the hub keeps stable across
//! resends, so that a resend is recognised as one and not taken as a
//! second change. Only counts and what identifies a change are kept: no
//! body is logged.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::amqp::Agency;

/// What an agency heard on its back-channel.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct HeardTally {
    /// Messages received, resends included.
    pub heard: u64,
    /// Distinct messages (by message id; for MQTT by event, status and time).
    pub distinct: u64,
    /// Distinct messages by status.
    pub by_status: BTreeMap<String, u64>,
    /// Messages without an id, or with a body that is not a status message.
    pub unreadable: u64,
}

impl HeardTally {
    /// Copies of a message heard before.
    pub fn resends(&self) -> u64 {
        self.heard.saturating_sub(self.distinct)
    }
}

/// One distinct change an agency heard, by what names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeardChange {
    /// The message id (AMQP), or `eventId|status|at` (MQTT).
    pub key: String,
    /// The agency's own record: the order, registration or event number.
    pub record_id: String,
    pub status: String,
    /// The change's time, in Unix milliseconds (0 if unreadable).
    pub at_ms: i64,
}

/// Counts and the distinct changes, shared by a listener and its task.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    tally: HeardTally,
    seen: HashSet<String>,
    changes: Vec<HeardChange>,
}

impl Ledger {
    /// Counts one message; `change` is `None` when it cannot be read.
    pub(crate) fn hear(&mut self, change: Option<HeardChange>) {
        self.tally.heard += 1;
        let Some(change) = change else {
            self.tally.unreadable += 1;
            return;
        };
        if self.seen.insert(change.key.clone()) {
            self.tally.distinct += 1;
            *self.tally.by_status.entry(change.status.clone()).or_default() += 1;
            self.changes.push(change);
        }
    }

    pub(crate) fn snapshot(&self) -> (HeardTally, Vec<HeardChange>) {
        (self.tally.clone(), self.changes.clone())
    }
}

/// The `at` of a status message, in Unix milliseconds.
pub(crate) fn at_ms(body: &Value) -> i64 {
    body["at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map_or(0, |t| t.timestamp_millis())
}

impl Agency {
    /// The contract's feedback exchange.
    pub fn feedback_exchange(self) -> &'static str {
        match self {
            Agency::Hotline => "hotline.feedback",
            Agency::Petition => "petition.feedback",
        }
    }

    /// The field of a feedback message naming the agency's record.
    pub fn feedback_record_field(self) -> &'static str {
        match self {
            Agency::Hotline => "orderNo",
            Agency::Petition => "djbh",
        }
    }
}

/// A consumer on an agency's feedback exchange.
pub struct FeedbackListener {
    ledger: Arc<Mutex<Ledger>>,
    connection: Connection,
    task: JoinHandle<()>,
}

impl FeedbackListener {
    /// Declares `exchange` (durable topic, as the hub does) and `queue`
    /// (durable, so that nothing is lost while this listener reconnects),
    /// binds `feedback.#` and consumes, acknowledging each message once
    /// counted. Returns once the binding exists: what the hub publishes
    /// from then on reaches the queue.
    pub async fn start(agency: Agency, url: &str, exchange: &str, queue: &str) -> Result<FeedbackListener> {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .with_context(|| format!("the {agency:?} feedback listener cannot connect"))?;
        let channel = connection.create_channel().await.context("feedback listener channel")?;
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        channel
            .exchange_declare(exchange.into(), ExchangeKind::Topic, durable, FieldTable::default())
            .await
            .with_context(|| format!("declare the feedback exchange {exchange}"))?;
        let queue_options = QueueDeclareOptions { durable: true, ..Default::default() };
        channel
            .queue_declare(queue.into(), queue_options, FieldTable::default())
            .await
            .with_context(|| format!("declare the feedback queue {queue}"))?;
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "feedback.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("bind {queue} to {exchange}"))?;
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "agency-feedback".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("consume {queue}"))?;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let field = agency.feedback_record_field();
        let task = {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                while let Some(Ok(delivery)) = consumer.next().await {
                    let id = delivery.properties.message_id().as_ref().map(|s| s.as_str().to_string());
                    let change = id.and_then(|key| read(key, &delivery.data, field));
                    ledger.lock().unwrap_or_else(|e| e.into_inner()).hear(change);
                    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                        tracing::warn!(error = %e, "feedback listener: ack failed; the broker sends it again");
                    }
                }
            })
        };
        Ok(FeedbackListener { ledger, connection, task })
    }

    /// What was heard so far.
    pub fn tally(&self) -> HeardTally {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner()).snapshot().0
    }

    /// Stops consuming and closes the connection; what was heard.
    pub async fn stop(self) -> (HeardTally, Vec<HeardChange>) {
        let _ = self.connection.close(200, "done".into()).await;
        self.task.abort();
        let _ = self.task.await;
        self.ledger.lock().unwrap_or_else(|e| e.into_inner()).snapshot()
    }
}

/// A feedback body: `{field, status, department, note, at}`.
fn read(key: String, body: &[u8], field: &str) -> Option<HeardChange> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let record_id = v[field].as_str()?.to_string();
    let status = v["status"].as_str()?.to_string();
    Some(HeardChange { key, record_id, status, at_ms: at_ms(&v) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, status: &str) -> Option<HeardChange> {
        Some(HeardChange {
            key: key.into(),
            record_id: "LY12345-20241203-000123".into(),
            status: status.into(),
            at_ms: 1,
        })
    }

    #[test]
    fn a_resend_is_heard_but_counted_once_as_a_change() {
        let mut l = Ledger::default();
        l.hear(change("fb-1", "dispatched"));
        l.hear(change("fb-1", "dispatched"));
        l.hear(change("fb-2", "resolved"));
        l.hear(None);
        let (t, changes) = l.snapshot();
        assert_eq!((t.heard, t.distinct, t.resends(), t.unreadable), (4, 2, 2, 1));
        assert_eq!(t.by_status, BTreeMap::from([("dispatched".into(), 1), ("resolved".into(), 1)]));
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn a_feedback_body_is_read_by_the_agencys_own_field() {
        let body = br#"{"djbh":"220402-2024-001234","status":"urged","department":"x","note":null,"at":"2026-12-04T09:00:00.250+08:00"}"#;
        let c = read("fb-9".into(), body, Agency::Petition.feedback_record_field()).unwrap();
        assert_eq!((c.record_id.as_str(), c.status.as_str()), ("220402-2024-001234", "urged"));
        assert_eq!(c.at_ms, 1_796_346_000_250);
        assert!(read("fb-9".into(), body, Agency::Hotline.feedback_record_field()).is_none());
        assert!(read("fb-9".into(), b"not json", "djbh").is_none());
    }

    #[tokio::test]
    async fn agencies_feedback_listener_against_rabbitmq() {
        use lapin::BasicProperties;
        use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let (exchange, queue) = (format!("test.feedback.{nonce}"), format!("test.feedback.q.{nonce}"));
        let listener = FeedbackListener::start(Agency::Hotline, url, &exchange, &queue).await.unwrap();
        let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        let body = br#"{"orderNo":"LY12345-20241203-000123","status":"dispatched","department":"d","note":null,"at":"2026-12-04T09:00:00+08:00"}"#;
        for id in ["fb-a", "fb-a", "fb-b"] {
            let props = BasicProperties::default().with_message_id(id.into()).with_delivery_mode(2);
            let options = BasicPublishOptions { mandatory: true, ..Default::default() };
            let confirm = ch
                .basic_publish(exchange.as_str().into(), "feedback.dispatched".into(), options, body, props)
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(matches!(confirm, lapin::Confirmation::Ack(None)), "routed to the listener's queue");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while listener.tally().heard < 3 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (t, changes) = listener.stop().await;
        assert_eq!((t.heard, t.distinct, t.resends()), (3, 2, 1), "{t:?}");
        assert!(changes.iter().all(|c| c.record_id == "LY12345-20241203-000123"));
        let _ = ch.queue_delete(queue.as_str().into(), Default::default()).await;
        let _ = ch.exchange_delete(exchange.as_str().into(), Default::default()).await;
        let _ = conn.close(200, "bye".into()).await;
    }
}
