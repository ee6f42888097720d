//! The hub's own record format: a ticket draft as JSON, for systems that
//! already speak the canonical model (and for tests and benchmarks).
//!
//! ```json
//! {"recordId": "A-1", "version": 2, "channel": "hotline",
//!  "ticket": {"kind": "help", "category": "0101", "title": "…", …}}
//! ```

use connectors::{ContentType, RawRecord};
use serde::Deserialize;
use serde_json::Value;

use super::{Mapped, Mapper, Unmappable, decode_text};
use crate::store::Applied;
use crate::ticket::{Channel, IdNumber, Phone, TicketDraft};

#[derive(Debug, Default, Clone, Copy)]
pub struct CanonicalMapper;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    record_id: Option<String>,
    version: Option<i64>,
    channel: Channel,
    ticket: Value,
}

impl Mapper for CanonicalMapper {
    /// The canonical format comes from systems that already keep one record
    /// per matter (and from the hub's own tests and benchmarks): exact
    /// dedup only.
    fn dedup(&self) -> crate::mapping::DedupOverride {
        crate::mapping::DedupOverride { enabled: Some(false), ..Default::default() }
    }

    fn map(&self, record: &RawRecord) -> Result<Mapped, Unmappable> {
        if record.content_type != ContentType::Json {
            return Err(Unmappable::new(format!("expected JSON, got {}", record.content_type.as_str())));
        }
        let text = decode_text(&record.payload, record.encoding.as_deref()).map_err(Unmappable::new)?;
        let envelope: Envelope = serde_json::from_str(&text)
            .map_err(|e| Unmappable::new(format!("the body is not a canonical record: {e}")))?;
        let record_id = envelope
            .record_id
            .or_else(|| record.record_id.clone())
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| Unmappable::new("recordId is missing"))?;
        let version = envelope.version.or(record.version).unwrap_or(1);
        let fail = |reason: String| Unmappable { reason, record_id: Some(record_id.clone()), version: Some(version) };
        if version < 1 {
            return Err(fail(format!("version must be 1 or more, got {version}")));
        }
        let mut ticket = envelope.ticket;
        let warnings = clean_reporters(&mut ticket);
        let draft: TicketDraft =
            serde_json::from_value(ticket).map_err(|e| fail(format!("the ticket is not valid: {e}")))?;
        Ok(Mapped {
            record_id,
            version,
            message_id: None,
            applied: Applied { channel: envelope.channel, draft, patch: None },
            warnings,
        })
    }
}

/// Leaves out reporters' phone and ID numbers that are not valid, with a
/// warning each: the citizen's matter goes on without them.
fn clean_reporters(ticket: &mut Value) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(reporters) = ticket.get_mut("reporters").and_then(Value::as_array_mut) else {
        return warnings;
    };
    for (i, reporter) in reporters.iter_mut().enumerate() {
        let Some(obj) = reporter.as_object_mut() else { continue };
        if let Some(Value::String(phone)) = obj.get("phone")
            && let Err(e) = Phone::parse(phone)
        {
            warnings.push(format!("reporters[{i}].phone left out: {e}"));
            obj.insert("phone".into(), Value::Null);
        }
        if let Some(Value::String(id)) = obj.get("idNumber")
            && let Err(e) = IdNumber::parse(id)
        {
            warnings.push(format!("reporters[{i}].idNumber left out: {e}"));
            obj.insert("idNumber".into(), Value::Null);
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(record_id: &str, version: i64, phone: &str) -> String {
        serde_json::json!({
            "recordId": record_id, "version": version, "channel": "hotline",
            "ticket": {
                "kind": "help", "category": "0101", "title": "义宁街下水井塌陷",
                "description": "义宁街与康宁路交汇处下水井塌陷", "region": {"code": "220402000000", "level": "county", "name": "龙山区"},
                "occurredAt": "2022-07-12T16:05:41+08:00", "reportedAt": "2022-07-12T16:05:41+08:00",
                "status": "new",
                "reporters": [{"channel": "hotline", "name": "王女士", "phone": phone, "idNumber": "220402197001011231", "anonymous": false}]
            }
        })
        .to_string()
    }

    #[test]
    fn maps_and_drops_invalid_personal_numbers_with_warnings() {
        let rec = RawRecord::new("canon", ContentType::Json, sample("A-1", 2, "12345"));
        let m = CanonicalMapper.map(&rec).unwrap();
        assert_eq!((m.record_id.as_str(), m.version), ("A-1", 2));
        assert_eq!(m.applied.draft.reporters[0].phone, None);
        assert_eq!(m.applied.draft.reporters[0].id_number, None);
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert!(!m.warnings.join(" ").contains("197001011231"));
    }

    #[test]
    fn bad_input_gets_a_reason() {
        let rec =
            RawRecord::new("canon", ContentType::Json, "{\"recordId\": \"A\", \"channel\": \"hotline\", \"ticket\": {");
        assert!(CanonicalMapper.map(&rec).unwrap_err().reason.contains("not a canonical record"));
        let no_kind = sample("A-2", 1, "13904371234").replace("\"kind\":\"help\",", "");
        let err = CanonicalMapper.map(&RawRecord::new("canon", ContentType::Json, no_kind)).unwrap_err();
        assert!(err.reason.contains("missing field `kind`"), "{}", err.reason);
        assert_eq!(err.record_id.as_deref(), Some("A-2"));
    }
}
