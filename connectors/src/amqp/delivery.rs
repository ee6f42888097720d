//! Turning an AMQP delivery into a [`RawRecord`], and settling it at the
//! broker once the hub has answered.

use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};

use crate::{ContentType, RawRecord};

/// What stays behind once the payload went to the hub: enough to settle the
/// delivery and to name it in a log line (never the payload).
pub(crate) struct Settle {
    pub acker: Acker,
    pub delivery_tag: u64,
    pub message_id: Option<String>,
}

/// Splits a delivery into the record for the hub and its [`Settle`] handle.
///
/// Nothing is dropped here: an absent content type is JSON (as both
/// agencies' contracts say), and an unknown one is handed over as JSON too,
/// with the declared type kept in `metadata["content_type"]`, so the hub
/// quarantines it with a reason instead of the connector losing it.
pub(crate) fn into_record(system: &str, delivery: Delivery) -> (RawRecord, Settle) {
    let Delivery { delivery_tag, exchange, routing_key, redelivered, properties, data, acker } = delivery;
    let declared = properties.content_type().as_ref().map(|t| t.as_str().to_string());
    let content_type = declared.as_deref().and_then(ContentType::from_mime).unwrap_or(ContentType::Json);
    let message_id = properties.message_id().as_ref().map(|m| m.as_str().to_string()).filter(|m| !m.is_empty());

    let mut record = RawRecord::new(system, content_type, data);
    if let Some(encoding) = properties.content_encoding().as_ref().map(|e| e.as_str().trim()).filter(|e| !e.is_empty())
    {
        record = record.with_encoding(encoding);
    }
    if let Some(id) = &message_id {
        let (record_id, version) = split_message_id(id);
        record = record.with_id(record_id, version);
    }
    record = record.with_meta("routing_key", routing_key.as_str()).with_meta("exchange", exchange.as_str());
    if let Some(id) = &message_id {
        record = record.with_meta("message_id", id.as_str());
    }
    if let Some(timestamp) = properties.timestamp() {
        record = record.with_meta("timestamp", timestamp.to_string());
    }
    if let Some(declared) = declared {
        record = record.with_meta("content_type", declared);
    }
    record = record.with_meta("redelivered", redelivered.to_string());

    (record, Settle { acker, delivery_tag, message_id })
}

/// `{id}:{version}` with an integer version gives both; anything else is an
/// id without version. The last colon splits, so ids may contain colons.
pub(crate) fn split_message_id(message_id: &str) -> (&str, Option<i64>) {
    match message_id.rsplit_once(':') {
        Some((id, version)) if !id.is_empty() => match version.trim().parse::<i64>() {
            Ok(version) => (id, Some(version)),
            Err(_) => (message_id, None),
        },
        _ => (message_id, None),
    }
}

impl Settle {
    /// Acknowledges after the hub's commit. `Err` carries why it did not
    /// happen (the channel is gone): no loss, the broker redelivers and the
    /// hub's dedup answers `Duplicate`.
    pub async fn ack(&self) -> Result<(), String> {
        match self.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the channel is closed".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Gives the delivery back to the queue: the hub stored nothing. If the
    /// channel is gone the broker requeues it by itself.
    pub async fn requeue(&self) -> Result<(), String> {
        match self.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the channel is closed".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use lapin::BasicProperties;

    use super::*;

    fn delivery(properties: BasicProperties, data: &[u8]) -> Delivery {
        let mut d = Delivery::mock(7, "hotline.orders".into(), "order.created".into(), true, data.to_vec());
        d.properties = properties;
        d
    }

    #[test]
    fn message_ids() {
        assert_eq!(split_message_id("LY12345-20240501-000001:3"), ("LY12345-20240501-000001", Some(3)));
        assert_eq!(split_message_id("a:b:12"), ("a:b", Some(12)));
        assert_eq!(split_message_id("abc"), ("abc", None));
        assert_eq!(split_message_id("abc:v2"), ("abc:v2", None));
        assert_eq!(split_message_id(":5"), (":5", None));
        assert_eq!(split_message_id("abc:"), ("abc:", None));
    }

    #[test]
    fn a_full_delivery() {
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("gb18030".into())
            .with_message_id("110105-2024-0000001:2".into())
            .with_timestamp(1_714_500_000);
        let body = [0xc4, 0xe3, 0xba, 0xc3];
        let (record, settle) = into_record("petition", delivery(props, &body));
        assert_eq!(record.system, "petition");
        assert_eq!(record.content_type, ContentType::Json);
        assert_eq!(record.encoding.as_deref(), Some("gb18030"));
        assert_eq!(record.record_id.as_deref(), Some("110105-2024-0000001"));
        assert_eq!(record.version, Some(2));
        assert_eq!(&record.payload[..], &body);
        assert_eq!(record.meta("routing_key"), Some("order.created"));
        assert_eq!(record.meta("exchange"), Some("hotline.orders"));
        assert_eq!(record.meta("message_id"), Some("110105-2024-0000001:2"));
        assert_eq!(record.meta("timestamp"), Some("1714500000"));
        assert_eq!(record.meta("redelivered"), Some("true"));
        assert_eq!(settle.delivery_tag, 7);
    }

    #[test]
    fn no_properties_is_json_without_identity() {
        let (record, settle) = into_record("hotline", delivery(BasicProperties::default(), b"{}"));
        assert_eq!(record.content_type, ContentType::Json);
        assert_eq!((&record.record_id, record.version, &record.encoding), (&None, None, &None));
        assert_eq!(record.meta("message_id"), None);
        assert_eq!(record.meta("timestamp"), None);
        assert!(settle.message_id.is_none());
    }

    #[test]
    fn unknown_types_are_handed_over_as_json_with_the_declared_type() {
        let props = BasicProperties::default().with_content_type("image/png".into());
        let (record, _) = into_record("hotline", delivery(props, b"\x89PNG"));
        assert_eq!(record.content_type, ContentType::Json);
        assert_eq!(record.meta("content_type"), Some("image/png"));
        let props = BasicProperties::default().with_content_type("text/xml; charset=gb18030".into());
        assert_eq!(into_record("x", delivery(props, b"<a/>")).0.content_type, ContentType::Xml);
    }
}
