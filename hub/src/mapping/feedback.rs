//! A mapping file's `[feedback]` section: how a status change of a ticket
//! goes back to the agency that brought it in, the mirror of how its
//! records come in. Data, not code: a fifth agency gets its back-channel
//! from its mapping file.
//!
//! ```toml
//! [feedback]
//! transport = "amqp"                 # amqp | mqtt | http
//! to = "hotline.feedback"            # exchange; topic template; path under the feed's base URL
//! key = "feedback.{status}"          # routing key (amqp only)
//! statuses = ["dispatched", "resolved", "closed"]   # default: every status
//! format = "json"                    # json (body) | xml (template)
//! [feedback.body]                    # JSON field = one of the values below
//! orderNo = "record_id"
//! status = "status"
//! ```
//!
//! Values: `record_id`, `ticket_id`, `status`, `department`, `note`, `at`,
//! `at_ms`, `due_at`, `due_at_ms`, `case_no`, `result`, and `meta.NAME`
//! (what the source's transport said of the record, e.g. the terminal
//! topic's `county` and `worker_id`). Templates name them in braces.
//! `requires = "mediation"` sends only for events that carry a mediation
//! outcome (the courts').

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::callbacks::event::EventStatus;
use crate::diagnostic::Diagnostic;
use crate::ticket::Timestamp;

/// How the hub reaches the agency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Amqp,
    Mqtt,
    Http,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Xml,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    transport: Transport,
    to: String,
    key: Option<String>,
    statuses: Option<Vec<String>>,
    requires: Option<String>,
    #[serde(default)]
    format: Format,
    body: Option<BTreeMap<String, String>>,
    template: Option<String>,
}

#[derive(Deserialize)]
struct File {
    feedback: Option<toml::Value>,
}

/// A checked `[feedback]` section.
#[derive(Clone, Debug)]
pub struct FeedbackSpec {
    pub transport: Transport,
    /// The exchange (amqp); unused otherwise.
    pub exchange: Option<String>,
    /// Where each message goes: the routing key, the topic, or the path.
    address: String,
    statuses: Option<Vec<EventStatus>>,
    needs_mediation: bool,
    body: Body,
}

#[derive(Clone, Debug)]
enum Body {
    Json(Vec<(String, String)>),
    Xml(String),
}

/// What is known of one status change, for one origin of the ticket.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    pub ticket_id: &'a str,
    pub record_id: &'a str,
    pub status: EventStatus,
    pub department: Option<&'a str>,
    pub note: Option<&'a str>,
    pub at: Timestamp,
    pub due_at: Option<Timestamp>,
    /// The case number and `AGREED`/`FAILED` of a mediation outcome.
    pub mediation: Option<(&'a str, &'a str)>,
    pub meta: &'a BTreeMap<String, String>,
}

/// A message ready for the agency's transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub address: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

const VALUES: &[&str] = &[
    "record_id",
    "ticket_id",
    "status",
    "department",
    "note",
    "at",
    "at_ms",
    "due_at",
    "due_at_ms",
    "case_no",
    "result",
];

fn known(name: &str) -> bool {
    VALUES.contains(&name) || name.strip_prefix("meta.").is_some_and(|m| !m.is_empty())
}

/// The names a template uses, in braces.
fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    out
}

impl FeedbackSpec {
    /// Reads the `[feedback]` section of a mapping file, if it has one.
    pub fn from_mapping(text: &str, origin: &str) -> Result<Option<FeedbackSpec>, Vec<Diagnostic>> {
        let error =
            |message: String| vec![Diagnostic { origin: origin.to_string(), line: None, column: None, message }];
        let file: File = toml::from_str(text).map_err(|e| error(format!("[feedback]: {}", e.message())))?;
        let Some(value) = file.feedback else { return Ok(None) };
        let s: Section =
            value.try_into().map_err(|e: toml::de::Error| error(format!("[feedback]: {}", e.message())))?;
        let mut problems = Vec::new();
        let statuses = s.statuses.as_ref().map(|list| {
            list.iter()
                .filter_map(|t| {
                    let parsed = EventStatus::parse(t);
                    if parsed.is_none() {
                        problems
                            .push(format!("[feedback] statuses: `{t}` is not one of {}", EventStatus::ALL.join(", ")));
                    }
                    parsed
                })
                .collect::<Vec<_>>()
        });
        let needs_mediation = match s.requires.as_deref() {
            None => false,
            Some("mediation") => true,
            Some(other) => {
                problems.push(format!("[feedback] requires = \"{other}\": only \"mediation\" is known"));
                false
            }
        };
        let (exchange, address) = match s.transport {
            Transport::Amqp => match &s.key {
                Some(key) => (Some(s.to.clone()), key.clone()),
                None => {
                    problems.push("[feedback]: transport \"amqp\" needs `key`, the routing key".into());
                    (Some(s.to.clone()), String::new())
                }
            },
            Transport::Mqtt | Transport::Http => {
                if s.key.is_some() {
                    problems.push("[feedback]: `key` is for transport \"amqp\" only".into());
                }
                if s.transport == Transport::Http && !s.to.starts_with('/') {
                    problems.push(format!(
                        "[feedback] to = \"{}\": a path under the feed's base URL, starting with /",
                        s.to
                    ));
                }
                (None, s.to.clone())
            }
        };
        if exchange.as_deref().is_some_and(|e| e.is_empty() || e.contains('{')) {
            problems.push("[feedback] to: the exchange is a plain name".into());
        }
        let body = match (s.format, s.body, s.template) {
            (Format::Json, Some(fields), None) => {
                for (field, value) in &fields {
                    if !known(value) {
                        problems.push(format!(
                            "[feedback.body] {field} = \"{value}\": not one of {} or meta.NAME",
                            VALUES.join(", ")
                        ));
                    }
                }
                Body::Json(fields.into_iter().collect())
            }
            (Format::Xml, None, Some(template)) => Body::Xml(template),
            (Format::Json, _, _) => {
                problems.push("[feedback]: format \"json\" needs a [feedback.body] table and no template".into());
                Body::Json(Vec::new())
            }
            (Format::Xml, _, _) => {
                problems.push("[feedback]: format \"xml\" needs `template` and no [feedback.body]".into());
                Body::Xml(String::new())
            }
        };
        let templates = [Some(address.as_str()), if let Body::Xml(t) = &body { Some(t.as_str()) } else { None }];
        for t in templates.into_iter().flatten() {
            for name in placeholders(t) {
                if !known(name) {
                    problems.push(format!("[feedback]: `{{{name}}}` is not one of {} or meta.NAME", VALUES.join(", ")));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems.into_iter().flat_map(error).collect());
        }
        Ok(Some(FeedbackSpec { transport: s.transport, exchange, address, statuses, needs_mediation, body }))
    }

    /// The message for `n`, or `None` when this agency is not told of it
    /// (a status it does not take, or no mediation outcome for a court).
    /// An error when the address cannot be made (a topic's worker missing).
    pub fn render(&self, n: &Notice<'_>) -> Result<Option<Rendered>, String> {
        if self.statuses.as_ref().is_some_and(|s| !s.contains(&n.status)) {
            return Ok(None);
        }
        if self.needs_mediation && n.mediation.is_none() {
            return Ok(None);
        }
        let mut address = String::new();
        let mut rest = self.address.as_str();
        while let Some(open) = rest.find('{') {
            address.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}').unwrap_or(after.len());
            let name = &after[..close];
            match value(n, name) {
                Some(Value::Text(t)) if !t.is_empty() && !t.contains(['/', '+', '#']) => address.push_str(&t),
                Some(Value::Int(i)) => address.push_str(&i.to_string()),
                _ => {
                    return Err(format!(
                        "the address `{}` needs `{name}`, which this record does not have",
                        self.address
                    ));
                }
            }
            rest = after.get(close + 1..).unwrap_or("");
        }
        address.push_str(rest);
        let (body, content_type) = match &self.body {
            Body::Json(fields) => {
                let mut object = serde_json::Map::new();
                for (field, name) in fields {
                    let v = match value(n, name) {
                        Some(Value::Text(t)) => serde_json::Value::String(t),
                        Some(Value::Int(i)) => serde_json::Value::from(i),
                        None => serde_json::Value::Null,
                    };
                    object.insert(field.clone(), v);
                }
                (serde_json::to_vec(&object).expect("a JSON object always serializes"), "application/json")
            }
            Body::Xml(template) => {
                let mut out = String::new();
                let mut rest = template.as_str();
                while let Some(open) = rest.find('{') {
                    out.push_str(&rest[..open]);
                    let after = &rest[open + 1..];
                    let close = after.find('}').unwrap_or(after.len());
                    match value(n, &after[..close]) {
                        Some(Value::Text(t)) => out.push_str(&crate::markup::escape(&t)),
                        Some(Value::Int(i)) => out.push_str(&i.to_string()),
                        None => {}
                    }
                    rest = after.get(close + 1..).unwrap_or("");
                }
                out.push_str(rest);
                (out.into_bytes(), "application/xml; charset=utf-8")
            }
        };
        Ok(Some(Rendered { address, body, content_type }))
    }
}

enum Value {
    Text(String),
    Int(i64),
}

fn value(n: &Notice<'_>, name: &str) -> Option<Value> {
    let text = |s: &str| Some(Value::Text(s.to_string()));
    match name {
        "record_id" => text(n.record_id),
        "ticket_id" => text(n.ticket_id),
        "status" => text(n.status.as_str()),
        "department" => n.department.and_then(text),
        "note" => n.note.and_then(text),
        "at" => Some(Value::Text(n.at.to_rfc3339())),
        "at_ms" => Some(Value::Int(n.at.timestamp_millis())),
        "due_at" => n.due_at.map(|d| Value::Text(d.to_rfc3339())),
        "due_at_ms" => n.due_at.map(|d| Value::Int(d.timestamp_millis())),
        "case_no" => n.mediation.and_then(|(c, _)| text(c)),
        "result" => n.mediation.and_then(|(_, r)| text(r)),
        other => other.strip_prefix("meta.").and_then(|m| n.meta.get(m)).and_then(|v| text(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice<'a>(status: EventStatus, meta: &'a BTreeMap<String, String>) -> Notice<'a> {
        Notice {
            ticket_id: "0193abc",
            record_id: "LY12345-20241203-000123",
            status,
            department: Some("龙山区住建局"),
            note: Some("已派 <紧急> & 催"),
            at: "2026-12-04T09:00:00+08:00".parse().unwrap(),
            due_at: Some("2026-12-09T18:00:00+08:00".parse().unwrap()),
            mediation: None,
            meta,
        }
    }

    fn shipped(name: &str) -> FeedbackSpec {
        let text = crate::mapping::shipped::text(name).expect("shipped");
        FeedbackSpec::from_mapping(text, name).unwrap().expect("has [feedback]")
    }

    #[test]
    fn the_hotline_hears_dispatch_resolution_and_closure() {
        let spec = shipped("hotline");
        assert_eq!((spec.transport, spec.exchange.as_deref()), (Transport::Amqp, Some("hotline.feedback")));
        let meta = BTreeMap::new();
        let r = spec.render(&notice(EventStatus::Dispatched, &meta)).unwrap().unwrap();
        assert_eq!(r.address, "feedback.dispatched");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["orderNo"], "LY12345-20241203-000123");
        assert_eq!(body["department"], "龙山区住建局");
        assert_eq!(body["at"], "2026-12-04T09:00:00+08:00");
        assert_eq!(spec.render(&notice(EventStatus::Urged, &meta)).unwrap(), None, "not a status the hotline takes");
    }

    #[test]
    fn a_terminal_is_notified_on_its_workers_topic() {
        let spec = shipped("terminal");
        let meta = BTreeMap::from([("county".to_string(), "220402".to_string()), ("worker_id".into(), "W0412".into())]);
        let r = spec.render(&notice(EventStatus::Urged, &meta)).unwrap().unwrap();
        assert_eq!(r.address, "grid/220402/W0412/notify");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["eventId"], "LY12345-20241203-000123");
        assert_eq!(body["dueAt"], "2026-12-09T18:00:00+08:00");
        let none = BTreeMap::new();
        assert!(spec.render(&notice(EventStatus::Urged, &none)).unwrap_err().contains("meta.county"));
    }

    #[test]
    fn a_court_hears_only_mediation_outcomes_as_escaped_xml() {
        let spec = shipped("court");
        let meta = BTreeMap::new();
        assert_eq!(spec.render(&notice(EventStatus::Resolved, &meta)).unwrap(), None);
        let mut n = notice(EventStatus::Resolved, &meta);
        n.mediation = Some(("(2026)吉0402民诉前调12号", "AGREED"));
        let r = spec.render(&n).unwrap().unwrap();
        assert_eq!(r.address, "/mediation/outcomes");
        let xml = String::from_utf8(r.body).unwrap();
        assert_eq!(
            xml,
            "<Outcome caseNo=\"(2026)吉0402民诉前调12号\" result=\"AGREED\" at=\"2026-12-04T09:00:00+08:00\"><Note>已派 &lt;紧急&gt; &amp; 催</Note></Outcome>"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let bad = "[feedback]\ntransport = \"amqp\"\nto = \"x.feedback\"\nstatuses = [\"archived\"]\n[feedback.body]\na = \"phone\"\n";
        let errors = FeedbackSpec::from_mapping(bad, "x.toml").unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text.iter().any(|e| e.contains("needs `key`")), "{text:?}");
        assert!(text.iter().any(|e| e.contains("`archived`")), "{text:?}");
        assert!(text.iter().any(|e| e.contains("a = \"phone\"")), "{text:?}");
        assert!(FeedbackSpec::from_mapping("[source]\nname = \"x\"\n", "x.toml").unwrap().is_none());
    }
}
