//! 12345 hotline work orders (hotline.md): bodies, versions, revocations and
//! bad input like `samples/bad-hotline-*.json`.

use serde_json::{Map, Value, json};

use super::amqp::{AmqpMessage, MessageKind};
use super::content::{Matter, Rng, dial_in_form, plus_minutes};

/// `LY12345-YYYYMMDD-NNNNNN` for the matter's call date.
pub fn order_no(m: &Matter) -> String {
    format!("LY12345-{}-{:06}", m.occurred.format("%Y%m%d"), m.index % 1_000_000)
}

/// Body of version `version` (1 = created). `revoked` adds `revokeReason`.
pub fn order_body(m: &Matter, version: i64, revoked: bool) -> Value {
    let mut rng = Rng::new(m.seed ^ version as u64);
    let call = plus_minutes(m.occurred, 10 + 25 * (version - 1));
    let anonymous = m.seed.is_multiple_of(13);
    let mut b = Map::new();
    b.insert("orderNo".into(), json!(order_no(m)));
    b.insert("version".into(), json!(version));
    b.insert("callId".into(), json!(format!("CTI-{}", 8_000_000 + rng.below(1_000_000))));
    if anonymous {
        b.insert("anonymous".into(), json!(true));
    } else {
        let number = m.reporter.landline.clone().unwrap_or_else(|| m.reporter.mobile.clone());
        b.insert("callerNumber".into(), json!(dial_in_form(&mut rng, &number)));
        if rng.chance(0.7) {
            b.insert("callerName".into(), json!(m.reporter.salutation()));
        }
    }
    b.insert("callTime".into(), json!(call.format("%Y-%m-%d %H:%M:%S").to_string()));
    b.insert("appealType".into(), json!(m.subject.appeal_type()));
    b.insert("category".into(), json!(m.subject.hotline_category()));
    let content = if version == 1 || revoked { m.operator_summary() } else { m.operator_followup(version) };
    b.insert("content".into(), json!(content));
    b.insert("address".into(), json!(m.place));
    let area = match m.seed % 3 {
        0 => m.township.county.to_string(),
        1 => m.township.code.to_string(),
        _ => m.village.clone(),
    };
    b.insert("areaCode".into(), json!(area));
    if m.urgent {
        b.insert("urgent".into(), json!(true));
    }
    b.insert("handleDays".into(), json!(if m.urgent { 1 } else { *rng.pick(&[3, 5, 5, 10]) }));
    b.insert("agentId".into(), json!(format!("{:04}", 200 + rng.below(600))));
    if revoked {
        b.insert("revokeReason".into(), json!("问题已解决，来电人撤回诉求"));
    }
    Value::Object(b)
}

/// Every message the CTI publishes for a matter, in order: created, maybe
/// updated, maybe revoked (the last version).
pub fn order_messages(m: &Matter) -> Vec<AmqpMessage> {
    let versions = match m.seed % 7 {
        0 | 1 => 2,
        2 => 3,
        _ => 1,
    };
    let revoked_last = m.seed.is_multiple_of(11);
    let id = order_no(m);
    let mut out = Vec::new();
    for v in 1..=versions {
        out.push(msg(&id, v, "order.created", m, false, MessageKind::New));
        if v > 1 {
            let last = out.len() - 1;
            out[last] = msg(&id, v, "order.updated", m, false, MessageKind::Update);
        }
    }
    if revoked_last {
        let v = versions + 1;
        out.push(msg(&id, v, "order.revoked", m, true, MessageKind::Update));
    }
    out
}

fn msg(id: &str, v: i64, key: &str, m: &Matter, revoked: bool, kind: MessageKind) -> AmqpMessage {
    AmqpMessage {
        routing_key: key.to_string(),
        message_id: format!("{id}:{v}"),
        content_encoding: "utf-8",
        body: serde_json::to_vec(&order_body(m, v, revoked)).expect("json"),
        kind,
    }
}

/// Bad input like the samples: truncated JSON, impossible time, missing orderNo.
pub fn bad_order(rng: &mut Rng, n: u64) -> AmqpMessage {
    let id = format!("LY12345-20240304-9{:05}", n % 100_000);
    let (body, key) = match rng.below(3) {
        0 => (format!("{{\"orderNo\": \"{id}\", \"version\": 1, \"content\": \"未闭合").into_bytes(), "order.created"),
        1 => (
            serde_json::to_vec(&json!({"orderNo": id, "version": 1, "callerNumber": "13904371234",
                "callTime": "2024/13/45 25:61", "appealType": "9", "category": "住房-物业管理",
                "content": "x", "agentId": "0233"}))
            .expect("json"),
            "order.created",
        ),
        _ => (
            serde_json::to_vec(&json!({"version": 1, "callerNumber": "13904371234",
                "callTime": "2024-03-04 10:40:00", "appealType": "3", "category": "住房-物业管理",
                "content": "投诉小区物业未清理楼道杂物。", "agentId": "0233"}))
            .expect("json"),
            "order.created",
        ),
    };
    AmqpMessage {
        routing_key: key.to_string(),
        message_id: format!("{id}:1"),
        content_encoding: "utf-8",
        body,
        kind: MessageKind::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::super::content::{is_valid_phone, matters};
    use super::*;

    #[test]
    fn agencies_hotline_bodies_follow_contract() {
        let re_time = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok();
        let mut revoked = 0;
        let mut updated = 0;
        for m in matters(3, 200) {
            let msgs = order_messages(&m);
            for (i, x) in msgs.iter().enumerate() {
                let b: Value = serde_json::from_slice(&x.body).unwrap();
                let no = b["orderNo"].as_str().unwrap();
                assert_eq!(no.len(), "LY12345-YYYYMMDD-NNNNNN".len());
                assert!(no.starts_with("LY12345-2024"));
                assert_eq!(b["version"].as_i64().unwrap(), i as i64 + 1);
                assert_eq!(x.message_id, format!("{no}:{}", i + 1));
                assert!(re_time(b["callTime"].as_str().unwrap()));
                assert!(("1"..="5").contains(&b["appealType"].as_str().unwrap()));
                assert_eq!(b["category"].as_str().unwrap().split('-').count(), 2);
                assert!(!b["content"].as_str().unwrap().is_empty());
                assert!(b["agentId"].is_string());
                assert!(matches!(b["areaCode"].as_str().unwrap().len(), 6 | 9 | 12));
                if b["anonymous"] == json!(true) {
                    assert!(b.get("callerNumber").is_none() && b.get("callerName").is_none());
                } else {
                    assert!(is_valid_phone(b["callerNumber"].as_str().unwrap()));
                }
                match x.routing_key.as_str() {
                    "order.revoked" => {
                        revoked += 1;
                        assert!(b["revokeReason"].is_string());
                    }
                    "order.updated" => updated += 1,
                    k => assert_eq!((k, i), ("order.created", 0)),
                }
            }
        }
        assert!(revoked > 5 && updated > 20, "{revoked} {updated}");
        let mut rng = Rng::new(1);
        for n in 0..10 {
            let bad = bad_order(&mut rng, n);
            let ok = serde_json::from_slice::<Value>(&bad.body)
                .ok()
                .filter(|b| b["orderNo"].is_string() && b["callTime"].as_str().is_some_and(re_time));
            assert!(ok.is_none());
        }
    }
}
