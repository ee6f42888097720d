//! Mild validation of a ticket body, as the platform does it.
//!
//! Only the fields the platform routes on are checked; everything else is kept
//! as sent. The body is scanned once into a small struct (unknown fields are
//! skipped without building a tree) so that validation stays cheap at the
//! request rates of the hub's benchmark; the raw bytes are what gets stored.

use serde::Deserialize;
use serde_json::Value;
use serde_json::error::Category;

/// Ticket kinds the platform knows.
pub const KINDS: &[&str] = &["consultation", "help", "complaint", "report", "suggestion", "dispute", "grid_event"];

/// Ticket statuses the platform knows.
pub const STATUSES: &[&str] = &["new", "dispatched", "in_progress", "resolved", "closed", "withdrawn"];

/// Longest title, in characters (not bytes: titles are mostly Chinese).
pub const MAX_TITLE_CHARS: usize = 80;

/// A body the platform refuses, with the answer it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// `400` (not JSON) or `422` (JSON, but not an acceptable ticket).
    pub status: u16,
    pub error: String,
    pub field: &'static str,
}

impl Rejection {
    fn bad_request(error: String) -> Self {
        Rejection { status: 400, error, field: "body" }
    }
    fn invalid(field: &'static str, error: String) -> Self {
        Rejection { status: 422, error, field }
    }
}

/// What the platform needs from an accepted body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Checked {
    pub revision: i64,
    pub title: String,
}

/// The routed fields. `null` counts as missing; unknown fields are skipped.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "ticketId")]
    ticket_id: Option<Value>,
    revision: Option<Value>,
    kind: Option<Value>,
    category: Option<Value>,
    title: Option<Value>,
    region: Option<Value>,
    status: Option<Value>,
}

/// Checks `body` as the ticket `path_id`.
pub(crate) fn check(path_id: &str, body: &[u8]) -> Result<Checked, Rejection> {
    if std::str::from_utf8(body).is_err() {
        return Err(Rejection::bad_request("request body is not valid UTF-8".into()));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Tell "not JSON" (400) from "JSON, but not an object" (422).
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Rejection::invalid("body", "request body must be a JSON object (a ticket)".into()),
            Err(e) => Rejection::bad_request(format!("request body is not valid JSON: {e}")),
        });
    }
    let probe: Probe = serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => Rejection::invalid("body", format!("request body is not an acceptable ticket: {e}")),
        _ => Rejection::bad_request(format!("request body is not valid JSON: {e}")),
    })?;

    let ticket_id = required_str(&probe.ticket_id, "ticketId")?;
    if ticket_id != path_id {
        return Err(Rejection::invalid(
            "ticketId",
            format!("ticketId \"{ticket_id}\" does not match the ticket id \"{path_id}\" in the URL"),
        ));
    }

    let revision = match &probe.revision {
        None => return Err(missing("revision")),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => n,
            _ => {
                return Err(Rejection::invalid(
                    "revision",
                    format!("revision must be an integer of at least 1, got {v}"),
                ));
            }
        },
    };

    let kind = required_str(&probe.kind, "kind")?;
    if !KINDS.contains(&kind) {
        return Err(Rejection::invalid("kind", format!("kind \"{kind}\" is not one of {}", KINDS.join(", "))));
    }

    let category = required_str(&probe.category, "category")?;
    if !is_digits(category, 4) {
        return Err(Rejection::invalid("category", format!("category must be 4 digits, got \"{category}\"")));
    }

    let title = required_str(&probe.title, "title")?;
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(Rejection::invalid(
            "title",
            format!("title is {chars} characters long, the limit is {MAX_TITLE_CHARS}"),
        ));
    }

    if let Some(region) = &probe.region {
        let Some(region) = region.as_object() else {
            return Err(Rejection::invalid("region", "region must be an object with a code".into()));
        };
        match region.get("code").and_then(Value::as_str) {
            Some(code) if is_digits(code, 12) => {}
            Some(code) => {
                return Err(Rejection::invalid(
                    "region.code",
                    format!("region.code must be 12 digits, got \"{code}\""),
                ));
            }
            None => {
                return Err(Rejection::invalid("region.code", "region.code must be a string of 12 digits".into()));
            }
        }
    }

    let status = required_str(&probe.status, "status")?;
    if !STATUSES.contains(&status) {
        return Err(Rejection::invalid("status", format!("status \"{status}\" is not one of {}", STATUSES.join(", "))));
    }

    Ok(Checked { revision, title: title.to_owned() })
}

fn missing(field: &'static str) -> Rejection {
    Rejection::invalid(field, format!("{field} is required"))
}

fn required_str<'a>(value: &'a Option<Value>, field: &'static str) -> Result<&'a str, Rejection> {
    match value {
        None => Err(missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Rejection::invalid(field, format!("{field} must be a string, got {other}"))),
    }
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ticket() -> Value {
        json!({
            "ticketId": "T-1",
            "revision": 1,
            "kind": "complaint",
            "category": "0102",
            "title": "路灯不亮",
            "region": {"code": "110101001001", "name": "东华门街道"},
            "status": "new",
            "extra": {"anything": [1, 2, 3]}
        })
    }

    fn check_value(v: &Value) -> Result<Checked, Rejection> {
        check("T-1", &serde_json::to_vec(v).unwrap())
    }

    fn field_of(v: Value) -> (u16, &'static str) {
        let r = check_value(&v).unwrap_err();
        (r.status, r.field)
    }

    #[test]
    fn accepts_a_ticket() {
        let c = check_value(&ticket()).unwrap();
        assert_eq!(c.revision, 1);
        assert_eq!(c.title, "路灯不亮");
        let mut t = ticket();
        t["region"] = Value::Null;
        assert!(check_value(&t).is_ok());
    }

    #[test]
    fn not_json_is_400() {
        for body in [&b""[..], b"{", b"not json", b"{} x", b"\xff\xfe"] {
            assert_eq!(check("T-1", body).unwrap_err().status, 400, "{body:?}");
        }
    }

    #[test]
    fn json_but_wrong_is_422() {
        assert_eq!(check("T-1", b"[1,2]").unwrap_err().status, 422);
        assert_eq!(check("T-1", b"\"x\"").unwrap_err().status, 422);
        assert_eq!(check("T-1", br#"{"title":"a","title":"b"}"#).unwrap_err().status, 422);
        let cases: Vec<(&str, Value, &str)> = vec![
            ("ticketId", json!("T-2"), "ticketId"),
            ("ticketId", json!(5), "ticketId"),
            ("revision", json!(0), "revision"),
            ("revision", json!(1.5), "revision"),
            ("revision", json!("2"), "revision"),
            ("kind", json!("other"), "kind"),
            ("category", json!("12a4"), "category"),
            ("category", json!("１２３４"), "category"),
            ("title", json!("字".repeat(81)), "title"),
            ("region", json!("110101001001"), "region"),
            ("region", json!({"code": "1101"}), "region.code"),
            ("region", json!({}), "region.code"),
            ("status", json!("open"), "status"),
        ];
        for (key, value, field) in cases {
            let mut t = ticket();
            t[key] = value;
            assert_eq!(field_of(t), (422, field), "{key}");
        }
        for key in ["ticketId", "revision", "kind", "category", "title", "status"] {
            let mut t = ticket();
            t.as_object_mut().unwrap().remove(key);
            let r = check_value(&t).unwrap_err();
            assert_eq!((r.status, r.field), (422, key));
            assert_eq!(r.error, format!("{key} is required"));
        }
    }

    #[test]
    fn title_counts_chars_not_bytes() {
        let mut t = ticket();
        t["title"] = json!("字".repeat(80));
        assert!(check_value(&t).is_ok());
    }
}
