//! Petition bureau registrations (petition.md): pinyin-field bodies, versions
//! registered → accepted → concluded, some GB18030-encoded.

use chrono::Duration;
use serde_json::{Map, Value, json};

use super::amqp::{AmqpMessage, MessageKind};
use super::content::{Matter, Rng, mobile};

/// `{6-digit area}-{YYYY}-{7 digits}`.
pub fn djbh(m: &Matter) -> String {
    format!("{}-{}-{:07}", m.township.county, m.occurred.format("%Y"), m.index % 10_000_000)
}

const STATES: [&str; 4] = ["已登记", "已受理", "办理中", "已办结"];

/// Body of version `bbh` (1-based); state follows the version.
pub fn record_body(m: &Matter, bbh: i64, last: bool) -> Value {
    let mut rng = Rng::new(m.seed ^ 0x9E7 ^ bbh as u64);
    let reg = m.occurred.date() + Duration::days(1);
    let zt = if last && bbh > 1 { "已办结" } else { STATES[((bbh - 1) as usize).min(2)] };
    let mut b = Map::new();
    b.insert("djbh".into(), json!(djbh(m)));
    b.insert("bbh".into(), json!(bbh));
    b.insert("xfxs".into(), json!(["来信", "来访", "网上", "电话"][(m.seed % 4) as usize]));
    b.insert("djrq".into(), json!(reg.format("%Y%m%d").to_string()));
    let mut xfr = vec![
        json!({"xm": m.reporter.name, "sfzh": m.reporter.id_no, "lxdh": m.reporter.landline.clone().unwrap_or_else(|| m.reporter.mobile.clone()), "zz": m.reporter.address}),
    ];
    for i in 1..m.people {
        let mut p = Map::new();
        p.insert(
            "xm".into(),
            json!(format!("{}某", ["孙", "周", "吴", "郑", "冯", "陈", "褚", "卫", "蒋", "沈", "韩"][i as usize % 11])),
        );
        if rng.chance(0.5) {
            p.insert("lxdh".into(), json!(mobile(&mut rng)));
        }
        xfr.push(Value::Object(p));
    }
    b.insert("xfr".into(), Value::Array(xfr));
    b.insert("rs".into(), json!(m.people));
    b.insert(
        "wtsd".into(),
        json!(if m.seed.is_multiple_of(2) { m.township.code.to_string() } else { m.village.clone() }),
    );
    b.insert("nrfl".into(), json!(m.subject.nrfl()));
    b.insert("xfmd".into(), json!("求决"));
    b.insert("zynr".into(), json!(m.petition_words()));
    b.insert("slqx".into(), json!((reg + Duration::days(15)).format("%Y-%m-%d").to_string()));
    if bbh >= 2 {
        b.insert("blqx".into(), json!((reg + Duration::days(75)).format("%Y-%m-%d").to_string()));
    }
    b.insert("zt".into(), json!(zt));
    if zt == "已办结" {
        b.insert("bjyj".into(), json!("经有关部门核实，问题已依法处理，已向信访人答复。"));
    }
    Value::Object(b)
}

/// GB18030 for about a third of the matters.
pub fn uses_gb18030(m: &Matter) -> bool {
    m.seed.is_multiple_of(3)
}

/// Every message for a matter, in order.
pub fn record_messages(m: &Matter) -> Vec<AmqpMessage> {
    let versions: i64 = match m.seed % 5 {
        0 => 3,
        1 | 2 => 2,
        _ => 1,
    };
    (1..=versions)
        .map(|v| {
            let last = v == versions;
            let body = record_body(m, v, last);
            let key = match body["zt"].as_str() {
                Some("已办结") => "record.concluded",
                _ if v == 1 => "record.registered",
                _ => "record.updated",
            };
            let text = serde_json::to_string(&body).expect("json");
            let (bytes, enc) = if uses_gb18030(m) {
                (encoding_rs::GB18030.encode(&text).0.into_owned(), "gb18030")
            } else {
                (text.into_bytes(), "utf-8")
            };
            AmqpMessage {
                routing_key: key.to_string(),
                message_id: format!("{}:{v}", djbh(m)),
                content_encoding: enc,
                body: bytes,
                kind: if v == 1 { MessageKind::New } else { MessageKind::Update },
            }
        })
        .collect()
}

/// Bad input: invalid ID/phone/area/class (like `bad-petition-bad-id.json`), a
/// GB18030 body declared UTF-8, or truncated JSON.
pub fn bad_record(rng: &mut Rng, n: u64) -> AmqpMessage {
    let id = format!("220402-2024-9{:06}", n % 1_000_000);
    let good_text = format!(
        "{{\"djbh\":\"{id}\",\"bbh\":1,\"xfxs\":\"来信\",\"djrq\":\"20240901\",\"xfr\":[{{\"xm\":\"钱某\"}}],\"rs\":1,\"wtsd\":\"220402\",\"nrfl\":\"0201\",\"xfmd\":\"求决\",\"zynr\":\"拖欠工资。\",\"zt\":\"已登记\"}}"
    );
    let body = match rng.below(3) {
        0 => serde_json::to_vec(&json!({"djbh": id, "bbh": 1, "xfxs": "来信", "djrq": "20240901",
            "xfr": [{"xm": "钱某", "sfzh": "220402197001011231", "lxdh": "12345"}], "rs": 1,
            "wtsd": "999999", "nrfl": "7777", "xfmd": "求决", "zynr": "反映问题。", "zt": "已登记"}))
        .expect("json"),
        // declared utf-8 below, but GB18030 bytes
        1 => encoding_rs::GB18030.encode(&good_text).0.into_owned(),
        _ => good_text.as_bytes()[..good_text.len() / 2].to_vec(),
    };
    AmqpMessage {
        routing_key: "record.registered".into(),
        message_id: format!("{id}:1"),
        content_encoding: "utf-8",
        body,
        kind: MessageKind::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::super::content::{is_valid_id_number, is_valid_phone, matters};
    use super::*;

    fn decode(x: &AmqpMessage) -> Value {
        let text = match x.content_encoding {
            "gb18030" => {
                let (t, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(&x.body);
                assert!(!had_errors);
                t.into_owned()
            }
            _ => String::from_utf8(x.body.clone()).expect("utf-8"),
        };
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn agencies_petition_bodies_follow_contract() {
        let (mut gb, mut group, mut concluded) = (0, 0, 0);
        for m in matters(5, 200) {
            for (i, x) in record_messages(&m).iter().enumerate() {
                let b = decode(x);
                let no = b["djbh"].as_str().unwrap();
                assert!(no.len() == 19 && no.as_bytes()[6] == b'-' && no.as_bytes()[11] == b'-', "{no}");
                assert_eq!(b["bbh"].as_i64().unwrap(), i as i64 + 1);
                assert_eq!(x.message_id, format!("{no}:{}", i + 1));
                assert!(["来信", "来访", "网上", "电话"].contains(&b["xfxs"].as_str().unwrap()));
                assert!(chrono::NaiveDate::parse_from_str(b["djrq"].as_str().unwrap(), "%Y%m%d").is_ok());
                let xfr = b["xfr"].as_array().unwrap();
                assert!(!xfr.is_empty());
                assert_eq!(b["rs"].as_u64().unwrap() as usize, xfr.len());
                for p in xfr {
                    assert!(p["xm"].is_string());
                    if let Some(id) = p["sfzh"].as_str() {
                        assert!(is_valid_id_number(id));
                    }
                    if let Some(t) = p["lxdh"].as_str() {
                        assert!(is_valid_phone(t), "{t}");
                    }
                }
                assert!(matches!(b["wtsd"].as_str().unwrap().len(), 6 | 9 | 12));
                let nrfl = b["nrfl"].as_str().unwrap();
                assert!(nrfl.len() == 4 && ["01", "02", "03", "04", "05", "06", "99"].contains(&&nrfl[..2]));
                let zt = b["zt"].as_str().unwrap();
                assert!(["已登记", "已受理", "不予受理", "办理中", "已办结"].contains(&zt));
                if x.routing_key == "record.concluded" {
                    concluded += 1;
                    assert!(b["bjyj"].is_string() && zt == "已办结");
                }
                if x.content_encoding == "gb18030" {
                    gb += 1;
                    assert!(std::str::from_utf8(&x.body).is_err());
                }
                if b["rs"].as_u64().unwrap() >= 5 {
                    group += 1;
                }
            }
        }
        assert!(gb > 10 && group > 0 && concluded > 10, "{gb} {group} {concluded}");
    }
}
