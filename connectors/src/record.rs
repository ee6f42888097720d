//! The raw record: what a connector hands over, before any mapping.

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// What the payload bytes are, as the transport declared them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentType {
    Json,
    Xml,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Xml => "application/xml",
        }
    }

    /// Parses a MIME type; parameters such as `; charset=…` are ignored.
    pub fn from_mime(mime: &str) -> Option<Self> {
        let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "text/json" => Some(ContentType::Json),
            "application/xml" | "text/xml" => Some(ContentType::Xml),
            _ if essence.ends_with("+json") => Some(ContentType::Json),
            _ if essence.ends_with("+xml") => Some(ContentType::Xml),
            _ => None,
        }
    }
}

/// One record as received from an agency's system.
///
/// `record_id` and `version` are whatever the transport itself carries (an
/// AMQP `message_id` of `{orderNo}:{version}`, a feed's sequence number); the
/// hub's mapping may read better ones out of the payload. Neither is required:
/// a record with no identity at all is still stored, keyed by its content.
#[derive(Clone, Debug)]
pub struct RawRecord {
    /// The source system, as named in the hub's config (`hotline`, `petition`, …).
    pub system: String,
    pub record_id: Option<String>,
    pub version: Option<i64>,
    pub received_at: DateTime<Utc>,
    pub payload: Bytes,
    pub content_type: ContentType,
    /// The character encoding the transport declared (`utf-8`, `gb18030`), if any.
    pub encoding: Option<String>,
    /// Transport details kept for provenance: routing key, topic, message id, file name…
    pub metadata: Vec<(String, String)>,
}

impl RawRecord {
    pub fn new(system: impl Into<String>, content_type: ContentType, payload: impl Into<Bytes>) -> Self {
        RawRecord {
            system: system.into(),
            record_id: None,
            version: None,
            received_at: Utc::now(),
            payload: payload.into(),
            content_type,
            encoding: None,
            metadata: Vec::new(),
        }
    }

    pub fn with_id(mut self, record_id: impl Into<String>, version: Option<i64>) -> Self {
        self.record_id = Some(record_id.into());
        self.version = version;
        self
    }

    pub fn with_encoding(mut self, encoding: impl Into<String>) -> Self {
        self.encoding = Some(encoding.into());
        self
    }

    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types() {
        assert_eq!(ContentType::from_mime("application/json; charset=utf-8"), Some(ContentType::Json));
        assert_eq!(ContentType::from_mime("Text/XML"), Some(ContentType::Xml));
        assert_eq!(ContentType::from_mime("application/vnd.court+xml"), Some(ContentType::Xml));
        assert_eq!(ContentType::from_mime("image/png"), None);
    }
}
