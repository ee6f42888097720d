//! Mappings: how each agency's records become canonical ticket drafts.
//!
//! A [`Mapper`] is pure: bytes in, a draft (plus warnings) or a reason out.
//! It never touches the store, so it can be run again on a quarantined
//! record once the mapping is fixed.

mod canonical;
pub mod declarative;
mod decode;
pub mod feedback;
pub mod shipped;

use std::collections::HashMap;
use std::sync::Arc;

use connectors::RawRecord;

pub use canonical::CanonicalMapper;
pub use declarative::DeclarativeMapper;
pub use decode::decode_text;

use crate::store::Applied;

/// What a mapper made of a record.
#[derive(Clone, Debug)]
pub struct Mapped {
    /// The record's identity in its source system (the work-order number, the
    /// case number), which links every version of it to one ticket.
    pub record_id: String,
    pub version: i64,
    /// The message's own identity, when the source gives each message one
    /// (a terminal's `msgId`): then that, not (record id, version), says
    /// whether it was seen before, and the record id only names the ticket
    /// it belongs to. Several messages about one record may share a version.
    pub message_id: Option<String>,
    pub applied: Applied,
    /// Details left out so that the matter itself is not lost (an invalid
    /// phone number, an unknown category mapped to the default).
    pub warnings: Vec<String>,
}

/// Why a record could not be mapped, for a person to read. It names fields,
/// never their personal content. The identity is kept when it was readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmappable {
    pub reason: String,
    pub record_id: Option<String>,
    pub version: Option<i64>,
}

impl Unmappable {
    pub fn new(reason: impl Into<String>) -> Self {
        Unmappable { reason: reason.into(), record_id: None, version: None }
    }
}

/// A record id longer than this is refused (quarantined): ids key unique
/// indexes (PostgreSQL cannot index an entry over about 2.7 KB, and such an
/// error would come back on every delivery of the record) and travel in
/// every ticket body. The agencies' ids are 20 to 40 bytes.
pub const MAX_RECORD_ID_BYTES: usize = 256;

/// Why a record id cannot key a record, if it cannot: too long, or holding
/// a control character (U+0000 is refused by PostgreSQL). The id itself is
/// not quoted.
fn record_id_fault(id: &str) -> Option<String> {
    if id.len() > MAX_RECORD_ID_BYTES {
        Some(format!("the record id has {} bytes, more than the limit of {MAX_RECORD_ID_BYTES}", id.len()))
    } else if id.chars().any(char::is_control) {
        Some("the record id contains a control character".to_string())
    } else {
        None
    }
}

/// Transport metadata a connector sets on input it could not take apart (a
/// feed page with a DOCTYPE, a truncated file): the record goes straight to
/// quarantine with this text as its reason, kept whole for a person.
pub const DEFECT: &str = "defect";

/// Transport metadata beside [`DEFECT`] when the bad input stands for a
/// position of a feed (a page at a cursor) that the source may serve again
/// and again, each time with slightly different bytes: the record is kept
/// once per position (`connectors::court::META_DEFECT_AT`).
pub const DEFECT_AT: &str = "defect_at";

pub trait Mapper: Send + Sync {
    fn map(&self, record: &RawRecord) -> Result<Mapped, Unmappable>;

    /// How this source's records take part in cross-channel duplicate
    /// detection, over the config's `[dedup]`.
    fn dedup(&self) -> DedupOverride {
        DedupOverride::default()
    }
}

/// A source's own duplicate-detection settings (a mapping file's `[dedup]`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DedupOverride {
    pub enabled: Option<bool>,
    pub merge: Option<f64>,
    pub review: Option<f64>,
}

/// The mapper of each source system, by the system's name in the config.
#[derive(Clone, Default)]
pub struct Mappings {
    by_system: HashMap<String, Arc<dyn Mapper>>,
}

impl Mappings {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, system: impl Into<String>, mapper: Arc<dyn Mapper>) {
        self.by_system.insert(system.into(), mapper);
    }

    /// Maps a record with its system's mapper. Reasons and warnings come
    /// back masked (see `pii`): parsers quote what they choke on, and that
    /// may be a phone or ID number, a name or an address. Whatever the
    /// mapper, a record id must be one the store can key
    /// ([`MAX_RECORD_ID_BYTES`], no control characters), and a draft is held
    /// to the ticket's caps ([`crate::ticket::TicketDraft::bound`]: the first
    /// reporters and attachments kept, a warning for the rest).
    pub fn map(&self, record: &RawRecord) -> Result<Mapped, Unmappable> {
        let result = match (record.meta(DEFECT), self.by_system.get(&record.system)) {
            // The connector could not even split the input into records.
            (Some(defect), _) => Err(Unmappable::new(defect.to_string())),
            (None, Some(mapper)) => mapper.map(record),
            (None, None) => {
                Err(Unmappable::new(format!("no mapping is configured for source system `{}`", record.system)))
            }
        };
        // The message id keys the raw record like a record id does: held to the same rule.
        let result = result.and_then(|m| {
            let fault = record_id_fault(&m.record_id).or_else(|| {
                m.message_id.as_deref().and_then(record_id_fault).map(|f| f.replacen("record id", "message id", 1))
            });
            match fault {
                Some(reason) => Err(Unmappable { reason, record_id: None, version: Some(m.version) }),
                None => Ok(m),
            }
        });
        match result {
            Ok(mut m) => {
                let capped = m.applied.draft.bound();
                m.warnings.extend(capped);
                if !m.warnings.is_empty() {
                    // A warning may quote a value of the record: mask what the
                    // ticket knows to be personal (its reporters, its address)
                    // wherever it appears, then any number left.
                    let draft = serde_json::to_value(&m.applied.draft).unwrap_or_default();
                    let masker = crate::pii::Masker::of_ticket(&draft);
                    m.warnings = m.warnings.iter().map(|w| masker.text(w)).collect();
                }
                Ok(m)
            }
            Err(mut u) => {
                u.reason = crate::pii::scrub(&u.reason);
                Err(u)
            }
        }
    }

    /// The source's `[dedup]` override (the default when unknown).
    pub fn dedup(&self, system: &str) -> DedupOverride {
        self.by_system.get(system).map(|m| m.dedup()).unwrap_or_default()
    }

    pub fn systems(&self) -> impl Iterator<Item = &str> {
        self.by_system.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use connectors::{ContentType, RawRecord};

    use super::*;

    #[test]
    fn a_defect_named_by_the_connector_is_the_reason() {
        let mut m = Mappings::new();
        m.insert("court", Arc::new(CanonicalMapper));
        let rec =
            RawRecord::new("court", ContentType::Xml, "<!DOCTYPE x>").with_meta(DEFECT, "the page declares a DOCTYPE");
        assert_eq!(m.map(&rec).unwrap_err().reason, "the page declares a DOCTYPE");
    }

    /// A mapper that gives every record the message id it was sent with.
    struct WithMessageId;

    impl Mapper for WithMessageId {
        fn map(&self, record: &RawRecord) -> Result<Mapped, Unmappable> {
            let mut mapped = CanonicalMapper.map(&RawRecord { metadata: Vec::new(), ..record.clone() })?;
            mapped.message_id = record.meta("message_id").map(str::to_string);
            Ok(mapped)
        }
    }

    /// A message id keys the raw record: one PostgreSQL cannot index (or
    /// store: U+0000) would fail on every delivery and wedge its stream.
    #[test]
    fn a_message_id_is_held_to_the_record_ids_rule() {
        let mut m = Mappings::new();
        m.insert("canon", Arc::new(WithMessageId));
        let body = r#"{"recordId": "LY12345-20240715-000001", "version": 1, "channel": "hotline",
            "ticket": {"kind": "help", "category": "0101", "title": "义宁街下水井塌陷",
            "description": "义宁街与康宁路交汇处下水井塌陷", "status": "new",
            "region": {"code": "220402", "level": "county", "name": "龙山区"},
            "occurredAt": "2024-07-15T09:40:00+08:00", "reportedAt": "2024-07-15T09:41:00+08:00"}}"#;
        let good = RawRecord::new("canon", ContentType::Json, body).with_meta("message_id", "m-1");
        assert_eq!(m.map(&good).unwrap().message_id.as_deref(), Some("m-1"));
        let long = RawRecord { metadata: vec![("message_id".into(), "m".repeat(5000))], ..good.clone() };
        assert_eq!(m.map(&long).unwrap_err().reason, "the message id has 5000 bytes, more than the limit of 256");
        let nul = RawRecord { metadata: vec![("message_id".into(), "m\u{0}1".into())], ..good.clone() };
        assert_eq!(m.map(&nul).unwrap_err().reason, "the message id contains a control character");
    }
}
