//! The four agencies' mapping files against the contract samples (copied to
//! `mappings/samples/`), the bad samples, mapping-file validation, a fifth
//! agency onboarded with a mapping file only, and junk input.

use std::path::{Path, PathBuf};

use connectors::{ContentType, RawRecord};

use super::{DeclarativeMapper, MappingErrors};
use crate::mapping::{Mapped, Mapper, Unmappable};
use crate::ticket::{Channel, EvaluationResult, Kind, RegionLevel, Status, TicketDraft};

fn mappings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings")
}

fn mapper(name: &str) -> DeclarativeMapper {
    let path = mappings_dir().join(format!("{name}.toml"));
    DeclarativeMapper::load(&path).unwrap_or_else(|e| panic!("{name}.toml does not load:\n{e}"))
}

fn sample(file: &str) -> Vec<u8> {
    std::fs::read(mappings_dir().join("samples").join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn json(system: &str, file: &str) -> RawRecord {
    RawRecord::new(system, ContentType::Json, sample(file))
}

fn hotline(file: &str, routing_key: &str) -> RawRecord {
    json("hotline", file).with_encoding("utf-8").with_meta("routing_key", routing_key)
}

fn terminal(file: &str, kind: &str, worker: &str) -> RawRecord {
    json("terminal", file)
        .with_encoding("utf-8")
        .with_meta("topic", format!("grid/220402/{worker}/{kind}"))
        .with_meta("county", "220402")
        .with_meta("worker_id", worker)
        .with_meta("kind", kind)
}

/// What the court connector will do: cut a feed page into `<Case>` documents,
/// each with the page's XML declaration (byte-wise, so GB18030 stays GB18030).
fn cases(page: &[u8]) -> Vec<Vec<u8>> {
    let decl_end = if page.starts_with(b"<?xml") { find(page, b"?>", 0).map_or(0, |i| i + 2) } else { 0 };
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = find(page, b"<Case ", from) {
        let Some(end) = find(page, b"</Case>", start) else { break };
        let mut doc = page[..decl_end].to_vec();
        doc.extend_from_slice(&page[start..end + "</Case>".len()]);
        out.push(doc);
        from = end;
    }
    out
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn court_case(bytes: Vec<u8>) -> RawRecord {
    RawRecord::new("court", ContentType::Xml, bytes)
}

fn ok(m: &DeclarativeMapper, r: &RawRecord) -> Mapped {
    m.map(r).unwrap_or_else(|u| panic!("unmappable: {}", u.reason))
}

fn bad(m: &DeclarativeMapper, r: &RawRecord) -> Unmappable {
    match m.map(r) {
        Ok(mapped) => panic!("mapped, but should not: {:?}", mapped.applied.draft),
        Err(u) => u,
    }
}

fn time(d: &crate::ticket::Timestamp) -> String {
    d.to_rfc3339()
}

fn phones(d: &TicketDraft) -> Vec<Option<&str>> {
    d.reporters.iter().map(|r| r.phone.as_ref().map(|p| p.as_str())).collect()
}

// ---- hotline -------------------------------------------------------------------

#[test]
fn hotline_created_becomes_a_ticket() {
    let m = mapper("hotline");
    let out = ok(&m, &hotline("hotline-created.json", "order.created"));
    assert_eq!((out.record_id.as_str(), out.version), ("LY12345-20220712-000318", 1));
    assert_eq!(out.applied.channel, Channel::Hotline);
    let d = &out.applied.draft;
    assert_eq!(d.kind, Kind::Help);
    assert_eq!(d.category.as_str(), "0101");
    assert!(d.title.as_str().starts_with("【市政设施】义宁街与康宁路交汇处下水井塌陷"), "{}", d.title.as_str());
    assert!(d.title.as_str().chars().count() <= 80);
    assert!(d.description.starts_with("义宁街与康宁路交汇处下水井塌陷"));
    assert_eq!(d.region.code.as_str(), "220402000000");
    assert_eq!(d.region.level, RegionLevel::County);
    assert_eq!(d.region.name, "龙山区");
    assert_eq!(d.address.as_deref(), Some("龙山区义宁街与康宁路交汇处"));
    assert_eq!(time(&d.occurred_at), "2022-07-12T16:05:41+08:00");
    assert_eq!(d.reported_at, d.occurred_at);
    // handleDays 1, a Tuesday: due Wednesday at the same time.
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2022-07-13T16:05:41+08:00"));
    assert!(d.urgent);
    assert_eq!(d.status, Status::New);
    assert_eq!(d.reporters.len(), 1);
    assert_eq!(d.reporters[0].name.as_deref(), Some("王女士"));
    assert_eq!(phones(d), vec![Some("+8613904371234")]);
    assert!(!d.reporters[0].anonymous);
    assert_eq!(d.reporters[0].channel, Channel::Hotline);
    assert!(d.geo.is_none() && d.court.is_none() && d.evaluation.is_none() && d.attachments.is_empty());
    // The contract's sample is from 2022, before the holiday table begins.
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].contains("runs into 2022, which the holiday table `holidays` does not cover"));
}

/// A hotline order called in at `call_time` with `days` to handle it, mapped
/// with the shipped mapping and holiday table.
fn hotline_due(m: &DeclarativeMapper, call_time: &str, days: i64) -> Mapped {
    let mut body: serde_json::Value = serde_json::from_slice(&sample("hotline-created.json")).unwrap();
    body["callTime"] = call_time.into();
    body["handleDays"] = days.into();
    ok(m, &RawRecord::new("hotline", ContentType::Json, body.to_string()).with_meta("routing_key", "order.created"))
}

/// The table stopped at 2025 and 2026 silently counted Monday–Friday.
#[test]
fn working_days_in_2026_follow_the_state_councils_arrangement() {
    let m = mapper("hotline");
    let due = |call: &str, days| {
        let out = hotline_due(&m, call, days);
        assert!(out.warnings.is_empty(), "{call}: {:?}", out.warnings);
        out.applied.draft.due_at.as_ref().map(time).unwrap()
    };
    // Friday 13 February + 5: Saturday 14th is worked, 15th–23rd is the
    // Spring Festival, then Tuesday 24th to Friday 27th.
    assert_eq!(due("2026-02-13 10:00:00", 5), "2026-02-27T10:00:00+08:00");
    // Thursday 26 February + 2: Friday 27th, then Saturday 28th, a make-up day.
    assert_eq!(due("2026-02-26 10:00:00", 2), "2026-02-28T10:00:00+08:00");
    // National Day: Sunday 20 September is worked, 1–7 October off, Saturday 10th worked.
    assert_eq!(due("2026-09-30 09:00:00", 2), "2026-10-09T09:00:00+08:00");
    assert_eq!(due("2026-10-09 09:00:00", 1), "2026-10-10T09:00:00+08:00");
    assert_eq!(m.deadlines_past_holidays(), 0);
}

#[test]
fn a_deadline_past_the_holiday_table_warns_and_is_counted() {
    let m = mapper("hotline");
    let out = hotline_due(&m, "2026-12-30 10:00:00", 5);
    // Counted Monday–Friday: Thursday 31st, Friday 1 January 2027, then 4–6 January.
    assert_eq!(out.applied.draft.due_at.as_ref().map(time).as_deref(), Some("2027-01-06T10:00:00+08:00"));
    let w = out.warnings.join("\n");
    assert!(
        w.contains("dueAt: the deadline runs into 2027, which the holiday table `holidays` does not cover (2024–2026); counted Monday–Friday"),
        "{w}"
    );
    assert_eq!(m.deadlines_past_holidays(), 1);
    let metrics = m.render_metrics("hotline");
    assert!(metrics.contains("hub_deadlines_past_holidays_total{system=\"hotline\"} 1"), "{metrics}");
    // `hub check` says so ahead of time.
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    let why = m.holiday_coverage(today).expect("2027 is not covered");
    assert!(why.contains("covers 2024–2026, not 2027"), "{why}");
    assert_eq!(m.holiday_coverage(chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()), None);
}

#[test]
fn an_operators_holiday_table_replaces_the_shipped_one() {
    let dir = std::env::temp_dir().join(format!("hub-holidays-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("holidays.csv");
    std::fs::write(&file, "date,type\n2027-01-01,holiday\n2027-01-04,holiday\n").unwrap();
    let table = super::HolidayTable::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(table.years(), "2027");
    let m = mapper("hotline").with_holidays(&table);
    let out = hotline_due(&m, "2026-12-31 10:00:00", 1);
    // 1 and 4 January are off in this table: Tuesday the 5th.
    assert_eq!(out.applied.draft.due_at.as_ref().map(time).as_deref(), Some("2027-01-05T10:00:00+08:00"));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    std::fs::write(&file, "date,type\n2027-13-01,holiday\n").unwrap();
    let e = super::HolidayTable::load(&file).unwrap_err().to_string();
    assert!(e.contains("`2027-13-01` is not a date"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hotline_updated_is_a_newer_version_of_the_same_order() {
    let m = mapper("hotline");
    let out = ok(&m, &hotline("hotline-updated.json", "order.updated"));
    assert_eq!((out.record_id.as_str(), out.version), ("LY12345-20220712-000318", 2));
    assert_eq!(phones(&out.applied.draft), vec![Some("+8613904371234")], "+86 139 0437 1234 is normalized");
    assert!(out.applied.draft.description.starts_with("来电人补充"));
}

#[test]
fn hotline_anonymous_caller_leaves_no_name_or_number() {
    let m = mapper("hotline");
    let out = ok(&m, &hotline("hotline-anonymous.json", "order.created"));
    let d = &out.applied.draft;
    assert_eq!(d.kind, Kind::Report);
    assert_eq!(d.category.as_str(), "0301");
    assert_eq!(
        (d.region.code.as_str(), d.region.level, d.region.name.as_str()),
        ("220422000000", RegionLevel::County, "东辽县")
    );
    assert!(!d.urgent);
    // Monday + 5 working days.
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-03-11T08:12:09+08:00"));
    assert_eq!(d.reporters.len(), 1);
    let r = &d.reporters[0];
    assert!(r.anonymous && r.name.is_none() && r.phone.is_none() && r.id_number.is_none());
    // Even a number sent by mistake stays in the hub.
    let mut body: serde_json::Value = serde_json::from_slice(&sample("hotline-anonymous.json")).unwrap();
    body["callerNumber"] = "13904371234".into();
    body["callerName"] = "王女士".into();
    let rec = RawRecord::new("hotline", ContentType::Json, body.to_string());
    let d = ok(&m, &rec).applied.draft;
    assert!(!serde_json::to_string(&d).unwrap().contains("04371234"));
    assert!(!serde_json::to_string(&d).unwrap().contains("王女士"));
}

#[test]
fn hotline_revoked_is_withdrawn() {
    let m = mapper("hotline");
    let out = ok(&m, &hotline("hotline-revoked.json", "order.revoked"));
    let d = &out.applied.draft;
    assert_eq!((out.record_id.as_str(), out.version), ("LY12345-20240304-001102", 2));
    assert_eq!(d.status, Status::Withdrawn);
    assert_eq!(d.kind, Kind::Complaint);
    assert_eq!(d.category.as_str(), "0202");
    assert_eq!(d.region.name, "西安区");
    assert!(d.description.contains("来电人撤回诉求：物业已当天清理"), "{}", d.description);
    assert_eq!(phones(d), vec![Some("+864373221234")], "landline 0437-3221234");
    // No handleDays: 5 working days.
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-03-11T10:40:00+08:00"));
    // The routing key alone withdraws too.
    let created_then_revoked = hotline("hotline-created.json", "order.revoked");
    assert_eq!(ok(&m, &created_then_revoked).applied.draft.status, Status::Withdrawn);
}

#[test]
fn hotline_unknown_category_maps_to_other_and_is_counted() {
    let m = mapper("hotline");
    let mut body: serde_json::Value = serde_json::from_slice(&sample("hotline-created.json")).unwrap();
    body["category"] = "住房-车位".into();
    body["areaCode"] = "220499".into();
    body["callerNumber"] = "12345".into();
    let out = ok(&m, &RawRecord::new("hotline", ContentType::Json, body.to_string()));
    let d = &out.applied.draft;
    // Not in the table: the words of the path say what it is (车位 → 邻里纠纷).
    assert_eq!(d.category.as_str(), "0601");
    assert_eq!(d.region.code.as_str(), "220400000000", "an unknown division falls back to the city");
    assert_eq!(phones(d), vec![None], "an invalid number is left out");
    assert_eq!(d.reporters[0].name.as_deref(), Some("王女士"));
    let w = out.warnings.join("\n");
    assert!(w.contains("`$.category` = `住房-车位` is not in table `hotline-categories`"), "{w}");
    assert!(w.contains("mapped by the word `车位` of table `matter-words`"), "{w}");
    assert!(w.contains("region: `$.areaCode` = `220499` is not a division in table `regions`"), "{w}");
    assert!(w.contains("reporters[0].phone left out"), "{w}");
    assert!(!w.contains("12345"), "the invalid number is not quoted: {w}");
    let counts = m.unknown_codes();
    let cat = counts.iter().find(|c| c.field == "category").unwrap();
    assert_eq!((cat.table.as_str(), cat.count), ("hotline-categories", 1));
    assert_eq!(cat.examples, vec![("住房-车位".to_string(), 1)]);
    let region = counts.iter().find(|c| c.field == "region").unwrap();
    assert_eq!(region.count, 1);
    assert!(m.render_metrics("hotline").contains(
        "hub_mapping_unknown_codes_total{system=\"hotline\",field=\"category\",table=\"hotline-categories\"} 1"
    ));
}

#[test]
fn bad_hotline_samples_are_unmappable_with_reasons() {
    let m = mapper("hotline");
    let u = bad(&m, &hotline("bad-hotline-bad-time.json", "order.created"));
    assert_eq!(u.record_id.as_deref(), Some("LY12345-20240304-001200"));
    assert_eq!(u.version, Some(1));
    assert!(u.reason.contains("kind: `$.appealType` = `9` is not in table `hotline-appeal-types`"), "{}", u.reason);
    assert!(
        u.reason
            .contains("occurredAt: `$.callTime` = `2024/13/45 25:61` is not a date-time of format `%Y-%m-%d %H:%M:%S`"),
        "{}",
        u.reason
    );
    assert!(!u.reason.contains("13904371234"));

    let u = bad(&m, &hotline("bad-hotline-missing-order.json", "order.created"));
    assert_eq!(u.record_id, None);
    assert!(u.reason.contains("record_id: `$.orderNo` is missing"), "{}", u.reason);

    let u = bad(&m, &hotline("bad-hotline-truncated.json", "order.created"));
    assert!(u.reason.starts_with("the body is not valid JSON"), "{}", u.reason);

    let impossible = String::from_utf8(sample("hotline-created.json"))
        .unwrap()
        .replace("2022-07-12 16:05:41", "2022-02-30 16:05:41");
    let u = bad(&m, &RawRecord::new("hotline", ContentType::Json, impossible));
    assert!(u.reason.contains("occurredAt: `$.callTime` = `2022-02-30 16:05:41` is not a date-time"), "{}", u.reason);

    let wrong_type = RawRecord::new("hotline", ContentType::Xml, sample("hotline-created.json"));
    assert!(bad(&m, &wrong_type).reason.contains("expected JSON"));
}

// ---- petition ------------------------------------------------------------------

fn petition(file: &str) -> RawRecord {
    json("petition", file).with_encoding("utf-8").with_meta("routing_key", "record.registered")
}

#[test]
fn petition_registered_and_concluded() {
    let m = mapper("petition");
    let out = ok(&m, &petition("petition-registered.json"));
    assert_eq!((out.record_id.as_str(), out.version), ("220422-2024-0000871", 1));
    assert_eq!(out.applied.channel, Channel::Petition);
    let d = &out.applied.draft;
    assert_eq!(d.kind, Kind::Help);
    assert_eq!(d.category.as_str(), "0503", "0401 grain subsidies");
    assert!(d.title.as_str().starts_with("【惠农补贴】本人家中承包地"), "{}", d.title.as_str());
    assert_eq!(
        (d.region.code.as_str(), d.region.level, d.region.name.as_str()),
        ("220422100000", RegionLevel::Township, "白泉镇")
    );
    assert_eq!(time(&d.occurred_at), "2024-05-21T00:00:00+08:00");
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-06-05T23:59:59+08:00"), "slqx");
    assert!(!d.urgent);
    assert_eq!(d.status, Status::New);
    assert_eq!(d.reporters.len(), 1);
    let r = &d.reporters[0];
    assert_eq!(r.name.as_deref(), Some("赵某某"));
    assert_eq!(r.id_number.as_ref().map(|i| i.as_str()), Some("220422196503150042"));
    assert_eq!(r.phone.as_ref().map(|p| p.as_str()), Some("+8613578370011"));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);

    let out = ok(&m, &petition("petition-concluded.json"));
    assert_eq!((out.record_id.as_str(), out.version), ("220422-2024-0000871", 4));
    let d = &out.applied.draft;
    assert_eq!(d.status, Status::Resolved);
    assert!(d.description.contains("\n办结意见：经镇农业站核实"), "{}", d.description);
    // Neither blqx nor slqx: 15 days from registration.
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-06-05T23:59:59+08:00"));
}

#[test]
fn petition_group_has_every_petitioner_and_is_urgent() {
    let m = mapper("petition");
    let out = ok(&m, &petition("petition-group.json"));
    let d = &out.applied.draft;
    assert!(d.urgent, "rs = 6");
    assert_eq!(d.status, Status::InProgress);
    assert_eq!(d.category.as_str(), "0401");
    assert_eq!(d.region.name, "南康街道");
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-10-16T23:59:59+08:00"), "blqx");
    assert_eq!(d.reporters.len(), 6);
    let names: Vec<&str> = d.reporters.iter().filter_map(|r| r.name.as_deref()).collect();
    assert_eq!(names, ["孙某", "周某", "吴某", "郑某", "冯某", "陈某"]);
    assert_eq!(d.reporters[0].id_number.as_ref().map(|i| i.as_str()), Some("220402197001011236"));
    assert_eq!(
        phones(d),
        vec![Some("+8613904370022"), Some("+8613904370023"), Some("+8613904370024"), None, None, None]
    );
    assert!(d.reporters.iter().all(|r| r.channel == Channel::Petition && !r.anonymous));
}

#[test]
fn petition_in_gb18030_decodes_and_maps() {
    let m = mapper("petition");
    let rec = json("petition", "petition-gb18030.json").with_encoding("gb18030");
    let out = ok(&m, &rec);
    let d = &out.applied.draft;
    assert_eq!((out.record_id.as_str(), out.version), ("220403-2024-0000456", 1));
    assert_eq!(d.category.as_str(), "0201");
    assert!(d.description.starts_with("我家住西安区某小区6楼顶层"), "{}", d.description);
    assert_eq!(d.region.name, "西安区");
    assert_eq!(d.reporters[0].name.as_deref(), Some("李某某"));
    assert_eq!(phones(d), vec![Some("+864373225678")]);
    assert_eq!(d.reporters[0].id_number.as_ref().map(|i| i.as_str()), Some("220403198811220022"));
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-06-25T23:59:59+08:00"));
    // The same bytes declared as UTF-8 are bad input.
    let u = bad(&m, &json("petition", "petition-gb18030.json").with_encoding("utf-8"));
    assert!(u.reason.contains("not valid UTF-8"), "{}", u.reason);
}

#[test]
fn bad_petition_is_quarantined_for_its_division_and_class_not_its_id() {
    let m = mapper("petition");
    let u = bad(&m, &petition("bad-petition-bad-id.json"));
    assert_eq!(u.record_id.as_deref(), Some("220402-2024-0001999"));
    assert!(u.reason.contains("region: `$.wtsd` = `999999` is not a division in table `regions`"), "{}", u.reason);
    assert!(
        u.reason.contains("checks.content_class: `$.nrfl` = `7777` is not in table `petition-content-classes`"),
        "{}",
        u.reason
    );
    for personal in ["220402197001011231", "钱某"] {
        assert!(!u.reason.contains(personal), "{}", u.reason);
    }
    // With a real division and class, the matter goes on without the bad ID and phone.
    let text = String::from_utf8(sample("bad-petition-bad-id.json"))
        .unwrap()
        .replace("\"999999\"", "\"220402\"")
        .replace("\"7777\"", "\"0201\"");
    let out = ok(&m, &RawRecord::new("petition", ContentType::Json, text));
    let r = &out.applied.draft.reporters[0];
    assert_eq!(r.name.as_deref(), Some("钱某"));
    assert!(r.id_number.is_none() && r.phone.is_none());
    let w = out.warnings.join("\n");
    assert!(w.contains("reporters[0].idNumber left out: the check digit"), "{w}");
    assert!(w.contains("reporters[0].phone left out"), "{w}");
    assert!(!w.contains("197001011231"), "{w}");
    // A subcode of a known class that the table lacks: by the words of the
    // content (耕地地力保护补贴), counted.
    let text = String::from_utf8(sample("petition-registered.json")).unwrap().replace("\"0401\"", "\"0499\"");
    let out = ok(&m, &RawRecord::new("petition", ContentType::Json, text.clone()));
    assert_eq!(out.applied.draft.category.as_str(), "0503");
    assert_eq!(out.applied.draft.kind, Kind::Help);
    let w = out.warnings.join("\n");
    assert!(w.contains("category: mapped by the word `地力保护补贴` of table `matter-words` instead: `0503`"), "{w}");
    // And a content that says nothing the table knows: 9999.
    let zynr = serde_json::from_str::<serde_json::Value>(&text).unwrap()["zynr"].as_str().unwrap().to_string();
    let text = text.replace(&zynr, "请求有关部门依法处理。");
    let out = ok(&m, &RawRecord::new("petition", ContentType::Json, text));
    assert_eq!(out.applied.draft.category.as_str(), "9999");
    let unknown = m.unknown_codes();
    let by_code = unknown.iter().find(|c| c.field == "category" && c.table == "petition-categories").unwrap();
    assert!(by_code.examples.contains(&("0499".to_string(), 2)), "{by_code:?}");
    let fell = m.fallbacks();
    let count = |table: &str| fell.iter().find(|c| c.field == "category" && c.table == table).map(|c| c.count);
    // 9999 twice: the quarantined petition of class 7777 above went that way too.
    assert_eq!((count("matter-words"), count("(the value 9999)")), (Some(1), Some(2)));
}

// ---- court -----------------------------------------------------------------------

#[test]
fn court_page_one_cases_map() {
    let m = mapper("court");
    let docs = cases(&sample("court-feed-page1.xml"));
    assert_eq!(docs.len(), 2);
    let out = ok(&m, &court_case(docs[0].clone()));
    assert_eq!((out.record_id.as_str(), out.version), ("(2024)吉0402民诉前调122号", 1721));
    assert_eq!(out.applied.channel, Channel::CourtMediation);
    let d = &out.applied.draft;
    assert_eq!(d.kind, Kind::Dispute);
    assert_eq!(d.category.as_str(), "0605");
    assert_eq!(d.title.as_str(), "【相邻关系纠纷】楼上住户卫生间漏水致楼下天棚受损，请求维修并赔偿");
    assert_eq!(
        (d.region.code.as_str(), d.region.level, d.region.name.as_str()),
        ("220402002000", RegionLevel::Township, "南康街道")
    );
    assert_eq!(time(&d.occurred_at), "2024-07-15T09:40:00+08:00");
    assert_eq!(d.status, Status::New);
    assert_eq!(d.reporters.len(), 1, "applicants only");
    assert_eq!(d.reporters[0].name.as_deref(), Some("马某"));
    assert_eq!(phones(d), vec![Some("+8613604370101")]);
    let court = d.court.as_ref().unwrap();
    assert_eq!((court.case_no.as_str(), court.status.as_str()), ("(2024)吉0402民诉前调122号", "RECEIVED"));
    assert!(court.documents.is_empty() && d.attachments.is_empty());

    let out = ok(&m, &court_case(docs[1].clone()));
    let d = &out.applied.draft;
    assert_eq!((out.record_id.as_str(), out.version), ("(2024)吉0402民诉前调123号", 1722));
    assert_eq!(d.status, Status::InProgress);
    assert_eq!(d.category.as_str(), "0603");
    assert_eq!(d.region.name, "龙山区");
    assert!(d.description.contains("标的额：50000.00 CNY"), "{}", d.description);
    assert_eq!(d.reporters[0].id_number.as_ref().map(|i| i.as_str()), Some("220402198001011230"));
    assert_eq!(phones(d), vec![Some("+8613804370000")]);
}

#[test]
fn court_page_two_carries_documents() {
    let m = mapper("court");
    let docs = cases(&sample("court-feed-page2.xml"));
    let out = ok(&m, &court_case(docs[0].clone()));
    assert_eq!((out.record_id.as_str(), out.version), ("(2024)吉0402民诉前调123号", 1724));
    let d = &out.applied.draft;
    assert_eq!(d.status, Status::Resolved);
    let court = d.court.as_ref().unwrap();
    assert_eq!(court.status, "AGREED");
    assert_eq!(court.documents.len(), 1);
    let doc = &court.documents[0];
    assert_eq!(doc["type"], "MEDIATION_AGREEMENT");
    assert_eq!(doc["name"], "调解协议");
    assert_eq!(doc["no"], "(2024)吉0402民诉前调123号");
    assert_eq!(doc["issued"], "2024-07-15T15:20:00+08:00");
    assert_eq!(doc["url"], "https://court.example/docs/2024-0402-123-agreement.pdf");
    assert_eq!(d.attachments.len(), 1);
    let a = &d.attachments[0];
    assert_eq!(
        (a.kind.as_str(), a.url.as_str()),
        ("legal_document", "https://court.example/docs/2024-0402-123-agreement.pdf")
    );
    assert_eq!(a.sha256.as_deref(), Some("9f2c1d0b7a3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"));

    let out = ok(&m, &court_case(docs[1].clone()));
    assert_eq!(out.applied.draft.status, Status::Closed, "FAILED goes to filing");
    assert_eq!(out.version, 1725);
}

#[test]
fn court_gb18030_case_decodes_and_maps() {
    let m = mapper("court");
    let docs = cases(&sample("court-feed-gb18030.xml"));
    assert_eq!(docs.len(), 1);
    // Declared by the XML declaration only, and by the transport.
    for rec in [court_case(docs[0].clone()), court_case(docs[0].clone()).with_encoding("gb18030")] {
        let out = ok(&m, &rec);
        assert_eq!((out.record_id.as_str(), out.version), ("(2024)吉0422民诉前调41号", 88));
        let d = &out.applied.draft;
        assert_eq!(d.status, Status::Closed, "CONFIRMED");
        assert_eq!(d.category.as_str(), "0501");
        assert_eq!(d.region.name, "白泉镇");
        assert_eq!(d.reporters.len(), 1);
        assert_eq!(d.reporters[0].name.as_deref(), Some("韩某某"));
        assert_eq!(phones(d), vec![Some("+8615943700033")]);
        let doc = &d.court.as_ref().unwrap().documents[0];
        assert_eq!(doc["name"], "司法确认裁定书");
        assert_eq!(doc["no"], "（2024）吉0422诉前调确12号");
        assert!(d.title.as_str().starts_with("【土地承包经营权纠纷】承包地边界争议"));
    }
}

/// A court case of page one with another cause: `code` and name.
fn court_with_cause(m: &DeclarativeMapper, code: &str, name: &str) -> Mapped {
    let doc = String::from_utf8(cases(&sample("court-feed-page1.xml"))[0].clone()).unwrap();
    let changed =
        doc.replace("<Cause code=\"9062\">相邻关系纠纷</Cause>", &format!("<Cause code=\"{code}\">{name}</Cause>"));
    assert_ne!(doc, changed);
    ok(m, &court_case(changed.into_bytes()))
}

#[test]
fn court_causes_map_by_code_then_name_then_words_and_each_fallback_is_counted() {
    let m = mapper("court");
    let category = |out: &Mapped| out.applied.draft.category.as_str().to_string();
    // A known code: no warning about the cause.
    let out = court_with_cause(&m, "9222", "民间借贷纠纷");
    assert_eq!(category(&out), "0603");
    assert!(!out.warnings.join("\n").contains("category"), "{:?}", out.warnings);
    // An unknown code, a name of the SPC's list.
    let out = court_with_cause(&m, "8801", "物业服务合同纠纷");
    assert_eq!(category(&out), "0202");
    let w = out.warnings.join("\n");
    assert!(
        w.contains("category (one alternative) left out: `/Case/Cause/@code` = `8801` is not in table `court-causes`"),
        "{w}"
    );
    assert!(w.contains("category: mapped by table `civil-causes` instead: `0202`"), "{w}");
    // Half-width punctuation and spaces are the same name.
    assert_eq!(category(&court_with_cause(&m, "8802", "相邻用水, 排水纠纷")), "0605");
    assert_eq!(category(&court_with_cause(&m, "8803", "追索劳动报酬纠纷")), "0604");
    // A name not in the list: by its words, as a dispute (wages → 劳资纠纷).
    let out = court_with_cause(&m, "8804", "农民工讨要工资纠纷");
    assert_eq!(category(&out), "0604");
    let w = out.warnings.join("\n");
    assert!(
        w.contains(
            "category (one alternative) left out: `cause_key` = `农民工讨要工资纠纷` is not in table `civil-causes`"
        ),
        "{w}"
    );
    assert!(w.contains("category: mapped by the word `工资` of table `matter-words` instead: `0604`"), "{w}");
    // Neither: 9999, said and counted.
    let out = court_with_cause(&m, "8805", "其他纠纷");
    assert_eq!(category(&out), "9999");
    let w = out.warnings.join("\n");
    assert!(w.contains("`cause_name` = `其他纠纷` has none of the words of table `matter-words`"), "{w}");
    assert!(w.contains("category: none of the alternatives before gave a value; the next one gave: `9999`"), "{w}");

    let unknown = m.unknown_codes();
    let missed = |table: &str| unknown.iter().find(|c| c.field == "category" && c.table == table).unwrap().clone();
    assert_eq!(missed("court-causes").count, 5);
    assert_eq!(missed("civil-causes").count, 2);
    assert_eq!(missed("civil-causes").examples, vec![("其他纠纷".into(), 1), ("农民工讨要工资纠纷".into(), 1)]);
    assert_eq!(missed("matter-words").count, 1);
    let fell = m.fallbacks();
    let by = |table: &str| fell.iter().find(|c| c.field == "category" && c.table == table).unwrap().clone();
    assert_eq!(by("civil-causes").count, 3);
    assert_eq!(by("matter-words").count, 1);
    assert_eq!(by("matter-words").examples, vec![("工资".into(), 1)]);
    assert_eq!(by("(the value 9999)").count, 1);
    let metrics = m.render_metrics("court");
    for line in [
        "hub_mapping_fallbacks_total{system=\"court\",field=\"category\",table=\"civil-causes\"} 3",
        "hub_mapping_fallbacks_total{system=\"court\",field=\"category\",table=\"matter-words\"} 1",
        "hub_mapping_unknown_codes_total{system=\"court\",field=\"category\",table=\"court-causes\"} 5",
    ] {
        assert!(metrics.contains(line), "{metrics}");
    }
}

#[test]
fn court_case_numbers_with_full_width_brackets_are_the_same_case() {
    let m = mapper("court");
    let doc = String::from_utf8(cases(&sample("court-feed-page1.xml"))[0].clone()).unwrap();
    let full = doc.replace("(2024)", "（2024）");
    assert_ne!(doc, full);
    let out = ok(&m, &court_case(full.into_bytes()));
    assert_eq!(out.record_id, "(2024)吉0402民诉前调122号");
    // Without a venue, the court's division.
    let no_venue = doc.replace("<Venue area=\"220402002\">南康街道综治中心</Venue>", "");
    assert_eq!(ok(&m, &court_case(no_venue.into_bytes())).applied.draft.region.name, "龙山区");
}

#[test]
fn bad_court_inputs_are_refused_never_expanded() {
    let m = mapper("court");
    // Whole pages: the DOCTYPE is refused before anything is read.
    let u = bad(&m, &court_case(sample("bad-court-xxe.xml")));
    assert!(u.reason.contains("DOCTYPE"), "{}", u.reason);
    // A <Case> cut out of it, without its DOCTYPE: the entity is refused.
    let cut = cases(&sample("bad-court-xxe.xml"));
    assert_eq!(cut.len(), 1);
    let u = bad(&m, &court_case(cut[0].clone()));
    assert!(u.reason.contains("entity `&lol3;`"), "{}", u.reason);
    assert!(!u.reason.contains("lollol") && !u.reason.contains("root:"));

    let u = bad(&m, &court_case(sample("bad-court-truncated.xml")));
    assert!(u.reason.contains("not well-formed") || u.reason.contains("truncated"), "{}", u.reason);
    let page = sample("court-feed-page1.xml");
    let last_case_end = find(&page, b"</Case>\n</MediationFeed>", 0).unwrap();
    let u = bad(&m, &court_case(page[..last_case_end].to_vec()));
    assert!(u.reason.contains("ends inside"), "{}", u.reason);
    // A whole page is not a case.
    let u = bad(&m, &court_case(page));
    assert!(u.reason.contains("root element is <MediationFeed>, expected <Case>"), "{}", u.reason);
}

#[test]
fn bad_court_mixed_lets_the_good_neighbours_through() {
    let m = mapper("court");
    let docs = cases(&sample("bad-court-mixed.xml"));
    assert_eq!(docs.len(), 3);
    let first = ok(&m, &court_case(docs[0].clone()));
    assert_eq!((first.record_id.as_str(), first.version), ("(2024)吉0403民诉前调77号", 29));
    assert_eq!(first.applied.draft.region.name, "西安区", "no venue: the court's division");
    let last = ok(&m, &court_case(docs[2].clone()));
    assert_eq!((last.record_id.as_str(), last.version), ("(2024)吉0403民诉前调78号", 31));
    assert_eq!(last.applied.draft.category.as_str(), "0605");
    let u = bad(&m, &court_case(docs[1].clone()));
    assert_eq!((u.record_id, u.version), (None, Some(30)));
    assert!(u.reason.contains("record_id: `/Case/CaseNo` = `吉0403调77` does not match the pattern"), "{}", u.reason);
    assert!(
        u.reason.contains("status: `/Case/Status` = `SETTLED_MAYBE` is not in table `court-statuses`"),
        "{}",
        u.reason
    );
    assert!(u.reason.contains("occurredAt: `/Case/Received` = `yesterday` is not an RFC 3339 time"), "{}", u.reason);
}

// ---- terminal ----------------------------------------------------------------------

#[test]
fn terminal_report_becomes_a_grid_event() {
    let m = mapper("terminal");
    let out = ok(&m, &terminal("terminal-report.json", "report", "W0412"));
    assert_eq!((out.record_id.as_str(), out.version), ("W0412-20220712-0003", 1657613100000));
    assert_eq!(out.applied.channel, Channel::Terminal);
    let d = &out.applied.draft;
    assert_eq!(d.kind, Kind::GridEvent);
    assert_eq!(d.category.as_str(), "0101");
    assert!(d.title.as_str().starts_with("【市政设施】暴雨导致义宁街下水井塌陷"));
    assert_eq!(
        (d.region.code.as_str(), d.region.level, d.region.name.as_str()),
        ("220402002007", RegionLevel::Village, "南康街道")
    );
    assert_eq!(d.address.as_deref(), Some("龙山区南康街道义宁街康宁路口"));
    let geo = d.geo.unwrap();
    assert_eq!((geo.lat, geo.lng), (42.9027, 125.1451));
    assert_eq!(time(&d.occurred_at), "2022-07-12T16:05:00+08:00");
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2022-07-13T16:05:00+08:00"), "24 hours");
    assert_eq!(d.status, Status::New);
    assert_eq!(d.attachments.len(), 1);
    assert_eq!(d.attachments[0].kind, "photo");
    assert_eq!(d.attachments[0].url, "https://terminal.example/p/W0412/20220712/1.jpg");
    assert!(d.reporters.is_empty() && d.evaluation.is_none());
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn terminal_dispute_is_a_dispute() {
    let m = mapper("terminal");
    let out = ok(&m, &terminal("terminal-dispute.json", "report", "W1033"));
    let d = &out.applied.draft;
    assert_eq!(d.kind, Kind::Dispute);
    assert_eq!(d.category.as_str(), "0601");
    assert!(d.geo.is_none());
    assert_eq!(time(&d.occurred_at), "2024-07-15T09:20:00+08:00");
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-07-18T09:20:00+08:00"), "72 hours");
}

#[test]
fn terminal_progress_and_evaluation_are_later_versions_of_the_event() {
    let m = mapper("terminal");
    let report = ok(&m, &terminal("terminal-report.json", "report", "W0412"));
    let progress = ok(&m, &terminal("terminal-progress.json", "progress", "W0412"));
    let evaluation = ok(&m, &terminal("terminal-evaluation.json", "evaluation", "W0412"));
    assert_eq!(progress.record_id, report.record_id);
    assert_eq!(evaluation.record_id, report.record_id);
    // Each message is its own: the msgId, not the event and time, is what a resend repeats.
    let ids = [&report, &progress, &evaluation].map(|m| m.message_id.clone().expect("a terminal message has an id"));
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    assert!(report.version < progress.version && progress.version < evaluation.version);

    assert!(report.applied.patch.is_none(), "a report is the whole event");
    assert!(progress.applied.patch.is_some() && evaluation.applied.patch.is_some(), "follow-ups are partial");

    // Applied in order, the event's ticket keeps what the report said.
    let source = |v: i64| crate::ticket::Source {
        system: "terminal".into(),
        record_id: report.record_id.clone(),
        version: v,
        channel: crate::ticket::Channel::Terminal,
        received_at: report.applied.draft.reported_at,
    };
    let mut t = crate::ticket::Ticket::create("T1".into(), report.applied.draft.clone(), source(report.version));
    for u in [&progress, &evaluation] {
        let patch = u.applied.patch.as_ref().expect("a follow-up is partial");
        assert!(t.apply_update(u.applied.draft.clone(), source(u.version), crate::ticket::Change::Patch(patch)));
    }
    let r = &report.applied.draft;
    assert_eq!((&t.draft.category, &t.draft.region, &t.draft.address), (&r.category, &r.region, &r.address));
    assert_eq!((&t.draft.title, &t.draft.due_at, &t.draft.kind), (&r.title, &r.due_at, &r.kind));
    assert_eq!(t.draft.status, Status::Closed);
    assert_eq!(t.draft.evaluation.as_ref().unwrap().result, EvaluationResult::Satisfied);
    assert!(t.draft.description.starts_with(r.description.as_str()));
    assert!(t.draft.description.contains("市政人员已到场设置路锥"), "{}", t.draft.description);
    assert!(t.draft.attachments.len() > r.attachments.len());
    assert_eq!((t.revision, t.sources.len()), (3, 1));

    let d = &progress.applied.draft;
    assert_eq!(d.status, Status::InProgress);
    assert_eq!(d.kind, Kind::GridEvent);
    assert!(d.title.as_str().starts_with("【进展】市政人员已到场设置路锥"));
    assert_eq!(d.region.name, "龙山区", "the county of the topic");
    assert_eq!(time(&d.occurred_at), "2022-07-12T17:05:00+08:00");
    assert_eq!(d.attachments.len(), 1);
    assert!(d.due_at.is_none());

    let d = &evaluation.applied.draft;
    assert_eq!(d.status, Status::Closed);
    let e = d.evaluation.as_ref().unwrap();
    assert_eq!(e.result, EvaluationResult::Satisfied);
    assert_eq!(e.by.as_deref(), Some("W0412"));
    assert_eq!(time(&e.at), "2022-07-14T16:00:00+08:00");
    assert!(d.title.as_str().starts_with("【评价：满意】已修复"));

    // A frown, not closed; the kind read from the fields when the topic is not the contract's.
    let text = String::from_utf8(sample("terminal-evaluation.json"))
        .unwrap()
        .replace("\"smile\"", "\"frown\"")
        .replace("\"closed\": true", "\"closed\": false");
    let out = ok(&m, &RawRecord::new("terminal", ContentType::Json, text));
    assert_eq!(out.applied.draft.evaluation.as_ref().unwrap().result, EvaluationResult::Unsatisfied);
    assert_eq!(out.applied.draft.status, Status::InProgress);
    // Outside the closed set.
    let text = String::from_utf8(sample("terminal-evaluation.json")).unwrap().replace("\"smile\"", "\"meh\"");
    let u = bad(&m, &RawRecord::new("terminal", ContentType::Json, text));
    assert!(u.reason.contains("evaluation.result: `$.result` = `meh` is not one of frown, smile"), "{}", u.reason);
}

#[test]
fn terminal_coordinates_off_the_globe_are_left_out() {
    let m = mapper("terminal");
    let text = String::from_utf8(sample("terminal-report.json")).unwrap().replace("42.9027", "420.0");
    let out = ok(&m, &RawRecord::new("terminal", ContentType::Json, text).with_meta("worker_id", "W0412"));
    assert!(out.applied.draft.geo.is_none());
    assert!(out.warnings.iter().any(|w| w.contains("geo left out")), "{:?}", out.warnings);
}

#[test]
fn an_event_of_another_worker_is_unmappable() {
    let m = mapper("terminal");
    // W0412 closing W0413's event, on W0412's own topic.
    let u = bad(&m, &terminal("bad-terminal-event-of-another-worker.json", "evaluation", "W0412"));
    assert_eq!(
        u.reason,
        "eventId belongs to another worker: its prefix is not the worker of the message and its topic"
    );
    assert_eq!(u.record_id.as_deref(), Some("W0413-20220712-0003"));
    // Without a topic, the same rule against the message's workerId.
    let u = bad(&m, &json("terminal", "bad-terminal-event-of-another-worker.json").with_encoding("utf-8"));
    assert!(u.reason.contains("eventId belongs to another worker"), "{}", u.reason);
    // Every kind of message, and the worker's own events still pass.
    for (file, kind) in [
        ("terminal-report.json", "report"),
        ("terminal-progress.json", "progress"),
        ("terminal-evaluation.json", "evaluation"),
    ] {
        let mut body: serde_json::Value = serde_json::from_slice(&sample(file)).unwrap();
        ok(&m, &RawRecord::new("terminal", ContentType::Json, body.to_string()).with_meta("kind", kind));
        body["eventId"] = "W0999-20220712-0003".into();
        let u = bad(&m, &RawRecord::new("terminal", ContentType::Json, body.to_string()).with_meta("kind", kind));
        assert!(u.reason.contains("eventId belongs to another worker"), "{kind}: {}", u.reason);
    }
}

#[test]
fn terminal_topic_mismatch_is_unmappable() {
    let m = mapper("terminal");
    let u = bad(&m, &terminal("bad-terminal-topic-mismatch.json", "report", "W0412"));
    assert!(u.reason.starts_with("workerId does not match the worker in the MQTT topic"), "{}", u.reason);
    assert!(u.reason.contains("checks.msgId"), "{}", u.reason);
    // The same good report on another worker's topic.
    let u = bad(&m, &terminal("terminal-report.json", "report", "W9999"));
    assert_eq!(u.record_id.as_deref(), Some("W0412-20220712-0003"));
    assert!(u.reason.contains("workerId does not match"), "{}", u.reason);
    // A topic kind outside the contract.
    let u = bad(&m, &terminal("terminal-report.json", "notify", "W0412"));
    assert!(
        u.reason.contains("checks.message_kind: `msg` = `notify` is not one of report, progress, evaluation"),
        "{}",
        u.reason
    );
}

// ---- onboarding without code ------------------------------------------------------

#[test]
fn a_fifth_agency_needs_only_a_mapping_file() {
    let dir = mappings_dir().join("samples/onboarding");
    let m = DeclarativeMapper::load(&dir.join("legal-aid-12348.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.name(), m.channel()), ("legal-aid", Channel::Hotline));
    let body = std::fs::read(dir.join("legal-aid-12348.json")).unwrap();
    let out = ok(&m, &RawRecord::new("legal-aid", ContentType::Json, body.clone()));
    assert_eq!((out.record_id.as_str(), out.version), ("FL12348-2024091301", 2));
    let d = &out.applied.draft;
    assert_eq!(d.kind, Kind::Help);
    assert_eq!(d.category.as_str(), "0604");
    assert_eq!(d.title.as_str(), "12348 劳资纠纷：农民工六人被拖欠工资三个月，请求法律援助");
    assert_eq!(d.description, "农民工六人被拖欠工资三个月，请求法律援助\n\n工地位于东丰县东丰镇，包工头失联。");
    assert_eq!(d.region.name, "东丰镇");
    assert_eq!(d.address.as_deref(), Some("东丰镇 建设街"));
    assert_eq!(time(&d.occurred_at), "2024-09-13T09:30:00+08:00");
    assert_eq!(time(&d.reported_at), "2024-09-13T09:35:00+08:00");
    // Friday + 3 working days across the 2024 Mid-Autumn holiday: Saturday 14th
    // is a make-up working day, 15th–17th are off.
    assert_eq!(d.due_at.as_ref().map(time).as_deref(), Some("2024-09-19T09:35:00+08:00"));
    assert!(d.urgent);
    assert_eq!(d.status, Status::Dispatched);
    assert_eq!(d.reporters.len(), 2);
    assert_eq!(d.reporters[0].name.as_deref(), Some("孙某"));
    assert_eq!(d.reporters[0].id_number.as_ref().map(|i| i.as_str()), Some("220402197001011236"));
    assert_eq!(phones(d), vec![Some("+8613904370022"), Some("+864376221234")]);
    assert!(d.reporters[1].id_number.is_none());

    let text = String::from_utf8(body).unwrap().replace("\"consent\": true", "\"consent\": false");
    let u = bad(&m, &RawRecord::new("legal-aid", ContentType::Json, text));
    assert_eq!(u.reason, "the caller did not consent to the transfer of the matter");
}

// ---- mapping-file validation ------------------------------------------------------

fn load_err(text: &str) -> String {
    match DeclarativeMapper::from_str(text, "test.toml", &mappings_dir()) {
        Ok(_) => panic!("loaded, but should not"),
        Err(MappingErrors(errs)) => {
            assert!(!errs.is_empty());
            MappingErrors(errs).to_string()
        }
    }
}

const MINIMAL: &str = r#"[source]
name = "x"
channel = "hotline"
format = "json"

[identity]
record_id = { path = "$.id" }
version = { path = "$.v" }

[fields]
kind = "help"
category = "9999"
title = { path = "$.t" }
description = { path = "$.t" }
region = { path = "$.r", region = "regions" }
occurredAt = { path = "$.at", datetime = "rfc3339" }
reportedAt = { from = "occurredAt" }
status = "new"
"#;

#[test]
fn the_minimal_mapping_loads_and_maps() {
    let m = DeclarativeMapper::from_str(MINIMAL, "test.toml", &mappings_dir()).unwrap_or_else(|e| panic!("{e}"));
    let rec = RawRecord::new(
        "x",
        ContentType::Json,
        r#"{"id": "A", "v": 3, "t": "标题", "r": "220402", "at": "2024-07-15T09:40:00+08:00"}"#,
    );
    let out = ok(&m, &rec);
    assert_eq!((out.record_id.as_str(), out.version, out.applied.draft.kind), ("A", 3, Kind::Help));
}

/// A quarantine reason or warning about the address names the field and
/// never quotes it: a house number with its street may be someone's home.
#[test]
fn a_message_about_the_address_does_not_quote_it() {
    let text =
        MINIMAL.replace("status = \"new\"", "status = \"new\"\naddress = { path = \"$.a\", pattern = '^[^0-9]*$' }");
    let m = DeclarativeMapper::from_str(&text, "test.toml", &mappings_dir()).unwrap_or_else(|e| panic!("{e}"));
    let rec = RawRecord::new(
        "x",
        ContentType::Json,
        r#"{"id": "A", "v": 1, "t": "标题", "r": "220402", "at": "2024-07-15T09:40:00+08:00", "a": "康宁社区5号楼3单元502"}"#,
    );
    let reason = bad(&m, &rec).reason;
    assert!(reason.contains("`$.a`") && !reason.contains("502"), "{reason}");
}

#[test]
fn mapping_errors_name_file_line_column_and_field() {
    let e =
        load_err(&MINIMAL.replace("kind = \"help\"", "kind = { path = \"$.k\", lookpu = \"hotline-appeal-types\" }"));
    assert!(e.contains("test.toml:11:24: fields.kind: unknown key `lookpu` (did you mean `lookup`?)"), "{e}");

    let e = load_err(&MINIMAL.replace("kind = \"help\"", "kind = { path = \"$.k\", lookup = \"nope\" }"));
    assert!(e.contains("test.toml:11:33: fields.kind.lookup: no table `nope`"), "{e}");

    let e = load_err(&MINIMAL.replace("{ path = \"$.t\" }\ndescription", "{ path = \"$.t[\" }\ndescription"));
    assert!(
        e.contains("test.toml:13:18: fields.title.path: `$.t[` is not a JSON path: `[` is not closed by `]`"),
        "{e}"
    );

    let e = load_err(&MINIMAL.replace("status = \"new\"\n", ""));
    assert!(e.contains("test.toml:10:2: [fields]: `status` is missing"), "{e}");

    let e = load_err(&MINIMAL.replace("format = \"json\"\n", ""));
    assert!(e.contains("test.toml:1:1: [source]: `format` is missing"), "{e}");

    let e = load_err(&MINIMAL.replace("status = \"new\"", "status = \"open\""));
    assert!(e.contains("test.toml:18:10: status: `open` is not one of new, dispatched"), "{e}");

    let e = load_err(&MINIMAL.replace("datetime = \"rfc3339\"", "datetime = \"%Y-%m-%d %Q\""));
    assert!(e.contains("test.toml:16:42: fields.occurredAt.datetime: `%Y-%m-%d %Q` is not a valid time format"), "{e}");
    assert_eq!(e.lines().count(), 1, "no follow-up errors from fields built on it: {e}");

    let e = load_err(&MINIMAL.replace(", datetime = \"rfc3339\"", ""));
    assert!(e.contains("test.toml:16:14: occurredAt must be a time: add datetime"), "{e}");

    let e = load_err(&MINIMAL.replace("region = \"regions\"", "lookup = \"regions\""));
    assert!(e.contains("region must be a region: add region = \"regions\""), "{e}");

    let e = load_err(&MINIMAL.replace("title = { path = \"$.t\" }", "title = \"$.t\""));
    assert!(
        e.contains(
            "fields.title: \"$.t\" is a constant text here; to read it from the record write { path = \"$.t\" }"
        ),
        "{e}"
    );

    let e = load_err(&MINIMAL.replace("title = { path = \"$.t\" }", "title = { template = \"{descrption}\" }"));
    assert!(e.contains("fields.title.template: no value is named `descrption` (did you mean `description`?)"), "{e}");

    let e = load_err(
        &MINIMAL
            .replace("title = { path = \"$.t\" }", "title = { from = \"description\" }")
            .replace("description = { path = \"$.t\" }", "description = { from = \"title\" }"),
    );
    assert!(e.contains("depends on itself"), "{e}");

    let e = load_err(&MINIMAL.replace("{ path = \"$.id\" }", "{ path = \"$.id\", pattern = \"(\" }"));
    assert!(
        e.contains("test.toml:7:40: identity.record_id.pattern is not a valid regular expression: unclosed group"),
        "{e}"
    );

    let e = load_err(&MINIMAL.replace("{ path = \"$.id\" }", "{ path = \"@.id\" }"));
    assert!(e.contains("identity.record_id.path: `@` paths only work inside a block with for_each"), "{e}");

    let e = load_err(&format!("{MINIMAL}\n[[reporters]]\nnmae = {{ path = \"$.n\" }}\n"));
    assert!(e.contains("test.toml:21:1: reporters[0]: unknown key `nmae` (did you mean `name`?)"), "{e}");

    let e = load_err("[source\nname = 1");
    assert!(e.starts_with("test.toml:1:"), "{e}");

    let e = load_err(&MINIMAL.replace("[identity]", "[identiy]"));
    assert!(e.contains("unknown key `identiy` (did you mean `identity`?)"), "{e}");
    assert!(e.contains("[identity]: `record_id` is missing"), "{e}");
}

#[test]
fn table_errors_name_the_table_file_and_line() {
    let dir = std::env::temp_dir().join(format!("hub-mapping-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tables")).unwrap();
    std::fs::write(dir.join("tables/kinds.csv"), "# comment\ncode,kind\n1,help\n2,complain\n1,report\n3\n").unwrap();
    std::fs::write(dir.join("tables/regions.csv"), "code,name\n220400,辽源市\n2204,bad\n").unwrap();
    let text = MINIMAL.replace("kind = \"help\"", "kind = { path = \"$.k\", lookup = \"kinds\" }");
    let e = DeclarativeMapper::from_str(&text, "test.toml", &dir).unwrap_err().to_string();
    let kinds = dir.join("tables/kinds.csv").display().to_string();
    let regions = dir.join("tables/regions.csv").display().to_string();
    assert!(e.contains(&format!("{kinds}:5:1: table `kinds`: the key `1` appears twice")), "{e}");
    assert!(e.contains(&format!("{kinds}:6:1: table `kinds`: this row has 1 fields, the header has 2")), "{e}");
    assert!(e.contains(&format!("{regions}:3:1: table `regions`: region code `2204` is not 6, 9 or 12 digits")), "{e}");
    std::fs::write(dir.join("tables/kinds.csv"), "code,kind\n1,help\n2,complain\n").unwrap();
    std::fs::write(dir.join("tables/regions.csv"), "code,name\n220400,辽源市\n").unwrap();
    let e = DeclarativeMapper::from_str(&text, "test.toml", &dir).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{kinds}:3:1: table `kinds`, column `kind` (used for kind): `complain` is not one of")),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_category_in_every_table_is_a_platform_category() {
    let dir = mappings_dir().join("tables");
    let platform = std::fs::read_to_string(dir.join("platform-categories.csv")).unwrap();
    let codes: Vec<&str> =
        platform.lines().filter(|l| !l.starts_with('#')).skip(1).filter_map(|l| l.split(',').next()).collect();
    assert_eq!(codes.len(), 33);
    for table in ["hotline-categories", "petition-categories", "court-causes", "terminal-categories"] {
        let text = std::fs::read_to_string(dir.join(format!("{table}.csv"))).unwrap();
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "category").unwrap();
        for line in lines {
            let code = line.split(',').nth(col).unwrap();
            assert!(codes.contains(&code), "{table}: {line}");
        }
    }
}

// ---- robustness --------------------------------------------------------------------

#[test]
fn junk_never_panics() {
    let mappers = [mapper("hotline"), mapper("petition"), mapper("court"), mapper("terminal")];
    let files = std::fs::read_dir(mappings_dir().join("samples")).unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"orderNo\": {\"a\": [1, 2]}, \"version\": 1e400}".to_vec(),
        "{\"version\": -9223372036854775808, \"xfr\": \"x\", \"location\": []}".as_bytes().to_vec(),
        b"<Case seq=\"99999999999999999999\"><CaseNo>&#0;</CaseNo></Case>".to_vec(),
        "<Case><a><b><c>".repeat(50).into_bytes(),
        "[".repeat(10_000).into_bytes(),
        b"\xff\xfe<\x00C\x00".to_vec(),
    ];
    for f in files {
        let path = f.unwrap().path();
        if path.is_dir() || path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let step = (bytes.len() / 30).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            inputs.push(bytes[..cut].to_vec());
        }
        for _ in 0..60 {
            let mut b = bytes.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % b.len().max(1);
                if let Some(x) = b.get_mut(i) {
                    *x = [b'"', b'{', b'}', b'<', b'>', b'&', b'0', 0xE5, b'\\', b'-'][(next() % 10) as usize];
                }
            }
            inputs.push(b);
        }
    }
    let mut mapped = 0;
    for input in &inputs {
        for (i, m) in mappers.iter().enumerate() {
            let ct = if i == 2 { ContentType::Xml } else { ContentType::Json };
            for enc in [None, Some("gb18030")] {
                let mut rec = RawRecord::new("x", ct, input.clone())
                    .with_meta("worker_id", "W0412")
                    .with_meta("kind", "report")
                    .with_meta("routing_key", "order.revoked");
                if let Some(e) = enc {
                    rec = rec.with_encoding(e);
                }
                match m.map(&rec) {
                    Ok(_) => mapped += 1,
                    Err(u) => assert!(!u.reason.is_empty()),
                }
            }
        }
    }
    assert!(mapped > 0, "some garbled inputs still map");
}

/// `cargo test -p hub --release --lib map_cost -- --ignored --nocapture`
#[test]
#[ignore]
fn map_cost_per_record() {
    let cases = [
        (mapper("hotline"), hotline("hotline-created.json", "order.created")),
        (mapper("petition"), petition("petition-group.json")),
        (mapper("court"), court_case(cases(&sample("court-feed-page2.xml"))[0].clone())),
        (mapper("terminal"), terminal("terminal-report.json", "report", "W0412")),
    ];
    for (m, rec) in &cases {
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(m.map(rec).unwrap());
        }
        let per = start.elapsed() / n;
        println!("{}: {per:?} per record", m.name());
    }
}
