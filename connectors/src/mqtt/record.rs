//! The [`RawRecord`] made from a terminal's PUBLISH.

use crate::{ContentType, RawRecord};

use super::topic;
use super::wire::Delivery;

/// Builds the record. No `record_id`/`version`: the hub's mapping reads
/// `msgId`/`eventId` from the payload, and MQTT's packet id is only a slot
/// number on one session, reused all the time. The DUP flag is kept for
/// provenance only: a message resent after a reconnect may well carry
/// `dup=false`, so duplicates are the hub's to find, by the message's key.
pub(crate) fn record(system: &str, delivery: &Delivery) -> RawRecord {
    let mut record = RawRecord::new(system, ContentType::Json, delivery.payload.clone())
        .with_encoding("utf-8")
        .with_meta("topic", delivery.topic.clone());
    if let Some(parts) = topic::parse(&delivery.topic) {
        record = record
            .with_meta("county", parts.county)
            .with_meta("worker_id", parts.worker_id)
            .with_meta("kind", parts.kind);
    }
    record
        .with_meta("pkid", delivery.pkid.to_string())
        .with_meta("dup", delivery.dup.to_string())
        .with_meta("qos", delivery.qos.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_from_the_topic() {
        let d = Delivery::for_test("grid/330106/W0042/progress", br#"{"msgId":"m1"}"#, 7, true);
        let r = record("terminal", &d);
        assert_eq!(r.system, "terminal");
        assert_eq!(r.content_type, ContentType::Json);
        assert_eq!(r.encoding.as_deref(), Some("utf-8"));
        assert_eq!((r.record_id.as_deref(), r.version), (None, None));
        assert_eq!(&r.payload[..], br#"{"msgId":"m1"}"#);
        for (k, v) in [
            ("topic", "grid/330106/W0042/progress"),
            ("county", "330106"),
            ("worker_id", "W0042"),
            ("kind", "progress"),
            ("pkid", "7"),
            ("dup", "true"),
            ("qos", "1"),
        ] {
            assert_eq!(r.meta(k), Some(v), "{k}");
        }
    }

    #[test]
    fn other_topics_keep_only_the_topic() {
        let r = record("terminal", &Delivery::for_test("elsewhere/x", b"{}", 1, false));
        assert_eq!(r.meta("topic"), Some("elsewhere/x"));
        assert_eq!(r.meta("county"), None);
        assert_eq!(r.meta("dup"), Some("false"));
    }
}
