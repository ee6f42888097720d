//! The evaluation set (`tests/data/dedup-evaluation.jsonl`) and the contract
//! samples, mapped by the shipped mapping files, through the decision.

use std::path::{Path, PathBuf};
use std::time::Instant;

use connectors::{ContentType, RawRecord};
use serde_json::Value;

use super::*;
use crate::dedup::{Decision, SourceIds, decide};
use crate::mapping::{DeclarativeMapper, Mapper};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mapper(name: &str) -> DeclarativeMapper {
    let path = root().join("mappings").join(format!("{name}.toml"));
    DeclarativeMapper::load(&path).unwrap_or_else(|e| panic!("{name}.toml does not load:\n{e}"))
}

struct Mappers {
    hotline: DeclarativeMapper,
    petition: DeclarativeMapper,
    terminal: DeclarativeMapper,
    court: DeclarativeMapper,
}

impl Mappers {
    fn load() -> Self {
        Mappers {
            hotline: mapper("hotline"),
            petition: mapper("petition"),
            terminal: mapper("terminal"),
            court: mapper("court"),
        }
    }

    fn get(&self, system: &str) -> &DeclarativeMapper {
        match system {
            "hotline" => &self.hotline,
            "petition" => &self.petition,
            "terminal" => &self.terminal,
            "court" => &self.court,
            other => panic!("no mapping for system {other}"),
        }
    }
}

/// A record the way the connectors make it: routing key, or the MQTT topic's parts.
fn record(system: &str, xml: bool, payload: Vec<u8>, routing_key: Option<&str>, topic: Option<&str>) -> RawRecord {
    let mut r = RawRecord::new(system, if xml { ContentType::Xml } else { ContentType::Json }, payload);
    if !xml {
        r = r.with_encoding("utf-8");
    }
    if let Some(k) = routing_key {
        r = r.with_meta("routing_key", k);
    }
    if let Some(t) = topic {
        r = r.with_meta("topic", t);
        if let [_, county, worker, kind] = t.split('/').collect::<Vec<_>>()[..] {
            r = r.with_meta("county", county).with_meta("worker_id", worker).with_meta("kind", kind);
        }
    }
    r
}

/// Every line of the evaluation set, mapped: (matter, draft, note).
fn evaluation_set() -> Vec<(String, TicketDraft, Option<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/dedup-evaluation.jsonl");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    map_lines(&text)
}

fn map_lines(text: &str) -> Vec<(String, TicketDraft, Option<String>)> {
    let mappers = Mappers::load();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let s = |k: &str| v[k].as_str();
        let system = s("system").expect("system");
        let rec = record(
            system,
            s("contentType") == Some("xml"),
            s("payload").expect("payload").as_bytes().to_vec(),
            s("routingKey"),
            s("topic"),
        );
        let mapped =
            mappers.get(system).map(&rec).unwrap_or_else(|u| panic!("line {}: unmappable: {}", n + 1, u.reason));
        out.push((s("matter").expect("matter").to_string(), mapped.applied.draft, s("note").map(str::to_string)));
    }
    out
}

#[test]
fn the_evaluation_set_meets_the_targets() {
    let set = evaluation_set();
    let reports: Vec<(String, TicketDraft)> = set.iter().map(|(m, d, _)| (m.clone(), d.clone())).collect();
    let report = evaluate(&reports, Thresholds::default());
    println!("{report}");
    for w in &report.wrong {
        if let Some(note) = &set[w.index].2 {
            println!("  #{}: {note}", w.index);
        }
    }
    assert!(report.matters >= 300 && report.true_pairs >= 300, "{report}");
    // The generated set is the scorer's third figure now (its texts share
    // the simulators' phrasing): these are floors against regressions, set
    // a little under what the shipped weights give (0.993 / 0.829).
    assert!(report.precision >= 0.98, "precision {:.3}\n{report}", report.precision);
    assert!(report.recall >= 0.80, "recall {:.3}\n{report}", report.recall);
}

/// The hand-written tuning set: floors against regressions, a little under
/// today's 1.000 / 0.777, 6.6 per 100. The held-out
/// set is never a gate here: it is measured and reported only
/// (`hub duplicates evaluate --set tests/data/dedup-handwritten-heldout.jsonl`).
#[test]
fn the_handwritten_tuning_set_keeps_its_figures() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/dedup-handwritten-tuning.jsonl");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reports: Vec<(String, TicketDraft)> = map_lines(&text).into_iter().map(|(m, d, _)| (m, d)).collect();
    let report = evaluate(&reports, Thresholds::default());
    println!("{report}");
    assert!(report.precision >= 0.98, "precision {:.3}\n{report}", report.precision);
    assert!(report.recall >= 0.75, "recall {:.3}\n{report}", report.recall);
    assert!(report.review_load() <= 8.0, "review load {:.1}\n{report}", report.review_load());
}

/// The same generator with seeds the weights were never looked at with:
/// `cargo test -p hub --release held_out -- --ignored --nocapture`.
#[test]
#[ignore]
fn held_out_seeds() {
    let seeds: Vec<u64> = match std::env::var("DEDUP_SEEDS") {
        Ok(s) => s.split(',').filter_map(|x| x.parse().ok()).collect(),
        Err(_) => vec![1, 2, 3, 4, 5],
    };
    let merge = std::env::var("DEDUP_MERGE").ok().and_then(|m| m.parse().ok()).unwrap_or(Thresholds::default().merge);
    for seed in seeds {
        let text = simulators::agencies::evaluation::evaluation_jsonl(seed, 300);
        let set = map_lines(&text);
        let reports: Vec<(String, TicketDraft)> = set.iter().map(|(m, d, _)| (m.clone(), d.clone())).collect();
        let r = evaluate(&reports, Thresholds { merge, ..Thresholds::default() });
        println!(
            "seed {seed}: {} reports, {} true pairs: precision {:.3} recall {:.3} ({} possible)",
            r.reports, r.true_pairs, r.precision, r.recall, r.possibles
        );
        if std::env::var_os("DEDUP_SWEEP_WRONG").is_some() {
            for w in &r.wrong {
                println!("    {w}  [{}]", set[w.index].2.as_deref().unwrap_or("-"));
            }
        }
    }
}

/// Thresholds side by side: `cargo test -p hub --release sweep -- --ignored --nocapture`.
#[test]
#[ignore]
fn sweep_thresholds() {
    let set = evaluation_set();
    let reports: Vec<(String, TicketDraft)> = set.iter().map(|(m, d, _)| (m.clone(), d.clone())).collect();
    for merge in [0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97] {
        let r = evaluate(&reports, Thresholds { merge, review: 0.5 });
        println!("merge {merge:.2}: precision {:.3} recall {:.3} possibles {}", r.precision, r.recall, r.possibles);
        if std::env::var_os("DEDUP_SWEEP_WRONG").is_some() {
            for w in r.wrong.iter().filter(|w| matches!(w.mistake, Mistake::WrongMerge { .. })) {
                println!("    {w}");
            }
        }
    }
}

fn sample(file: &str) -> Vec<u8> {
    std::fs::read(root().join("mappings/samples").join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The `<Case>` of `case_no` in a feed page, as the court connector cuts it.
fn court_case(page: &str, case_no: &str) -> Vec<u8> {
    let text = String::from_utf8(sample(page)).expect("utf-8 page");
    let at = text.find(&format!("<CaseNo>{case_no}</CaseNo>")).expect("case in page");
    let start = text[..at].rfind("<Case ").expect("case start");
    let end = at + text[at..].find("</Case>").expect("case end") + "</Case>".len();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}", &text[start..end]).into_bytes()
}

fn fingerprint(system: &str, rec: RawRecord) -> Fingerprint {
    let m = Mappers::load().get(system).map(&rec).unwrap_or_else(|u| panic!("unmappable: {}", u.reason));
    Fingerprint::new(&m.applied.draft, SourceIds { channel: Some(m.applied.channel), record_id: Some(&m.record_id) })
}

#[test]
fn contract_samples_of_one_matter_merge() {
    let t = Thresholds::default();
    let rules = CandidateRules::default();
    let hotline =
        fingerprint("hotline", record("hotline", false, sample("hotline-created.json"), Some("order.created"), None));
    let grid = fingerprint(
        "terminal",
        record("terminal", false, sample("terminal-report.json"), None, Some("grid/220402/W0412/report")),
    );
    assert!(rules.admits(&grid, &hotline).is_some());
    match decide(&grid, [("T1".to_string(), &hotline)], &t) {
        Decision::Merge { score, .. } => println!("manhole: {score}"),
        d => panic!("the manhole on 义宁街 should merge: {d:?}"),
    }

    let dispute = fingerprint(
        "terminal",
        record("terminal", false, sample("terminal-dispute.json"), None, Some("grid/220402/W1033/report")),
    );
    let case = fingerprint(
        "court",
        record("court", true, court_case("court-feed-page1.xml", "(2024)吉0402民诉前调122号"), None, None),
    );
    assert!(rules.admits(&case, &dispute).is_some());
    match decide(&case, [("T2".to_string(), &dispute)], &t) {
        Decision::Merge { score, .. } | Decision::Possible { score, .. } => println!("leak: {score}"),
        Decision::New => panic!("the leaking bathroom should merge or be flagged"),
    }
    // The other case of the page (a loan) is not that dispute.
    let loan = fingerprint(
        "court",
        record("court", true, court_case("court-feed-page1.xml", "(2024)吉0402民诉前调123号"), None, None),
    );
    assert_eq!(decide(&loan, [("T2".to_string(), &dispute)], &t), Decision::New);
}

#[test]
fn one_reporter_with_two_problems_does_not_merge() {
    // The manhole caller of the samples calls again a day later, about noise on the same street.
    let mut body: Value = serde_json::from_slice(&sample("hotline-created.json")).unwrap();
    body["orderNo"] = "LY12345-20220713-000402".into();
    body["callTime"] = "2022-07-13 21:40:00".into();
    body["appealType"] = "3".into();
    body["category"] = "环境保护-噪声污染".into();
    body["content"] = "来电人称义宁街12号楼下烧烤店每天营业到凌晨，噪声扰民，要求处理。".into();
    body["address"] = "龙山区义宁街12号".into();
    body["urgent"] = false.into();
    let first =
        fingerprint("hotline", record("hotline", false, sample("hotline-created.json"), Some("order.created"), None));
    let second = fingerprint(
        "hotline",
        record("hotline", false, serde_json::to_vec(&body).unwrap(), Some("order.created"), None),
    );
    let s = score(&second, &first);
    assert!(s.to_string().contains("same phone"), "{s}");
    assert_eq!(decide(&second, [("T1".to_string(), &first)], &Thresholds::default()), Decision::New, "{s}");
    // Same category, same caller, another problem: still two matters.
    body["category"] = "市政设施-路灯".into();
    body["appealType"] = "2".into();
    body["content"] = "来电人称义宁街康宁路口路灯不亮已有一周，晚上出行不便。".into();
    let third = fingerprint(
        "hotline",
        record("hotline", false, serde_json::to_vec(&body).unwrap(), Some("order.created"), None),
    );
    let s = score(&third, &first);
    assert!(
        !matches!(decide(&third, [("T1".to_string(), &first)], &Thresholds::default()), Decision::Merge { .. }),
        "{s}"
    );
}

/// Rough timings in a release build:
/// `cargo test -p hub --release dedup::evaluate::tests::timing -- --ignored --nocapture`.
/// The harness will have the real benchmarks.
#[test]
#[ignore]
fn timing() {
    let set = evaluation_set();
    let drafts: Vec<&TicketDraft> = set.iter().map(|(_, d, _)| d).collect();
    let rounds = 20;
    let start = Instant::now();
    let mut prints = Vec::new();
    for _ in 0..rounds {
        prints = drafts.iter().map(|d| Fingerprint::of(d)).collect::<Vec<_>>();
    }
    let per_print = start.elapsed() / (rounds * drafts.len()) as u32;
    let start = Instant::now();
    let mut n = 0u64;
    let mut sum = 0.0;
    for a in prints.iter().take(300) {
        for b in &prints {
            sum += score(a, b).value;
            n += 1;
        }
    }
    let per_pair = start.elapsed() / n as u32;
    let sizes: Vec<usize> = prints.iter().map(|p| p.to_bytes().len()).collect();
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    let max = sizes.iter().max().copied().unwrap_or(0);
    println!(
        "fingerprint {per_print:?} per record, score {per_pair:?} per pair ({sum:.0}), {mean} bytes mean, {max} max"
    );
}

/// Every admitted pair of the evaluation set with its label and score, as
/// TSV, for looking at distributions while setting weights:
/// `DEDUP_PAIRS=/tmp/pairs.tsv cargo test -p hub --release dump_pairs -- --ignored`.
#[test]
#[ignore]
fn dump_pairs() {
    let Some(out) = std::env::var_os("DEDUP_PAIRS") else { return };
    let set = match std::env::var("DEDUP_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => map_lines(&simulators::agencies::evaluation::evaluation_jsonl(seed, 300)),
        None => evaluation_set(),
    };
    let prints: Vec<Fingerprint> = set.iter().map(|(_, d, _)| Fingerprint::of(d)).collect();
    let texts: Vec<String> = set.iter().map(|(_, d, _)| Fingerprint::content_text(d)).collect();
    let rules = CandidateRules::default();
    let mut text = String::new();
    for j in 0..prints.len() {
        for i in 0..j {
            if rules.admits(&prints[j], &prints[i]).is_none() {
                continue;
            }
            let s = score(&prints[j], &prints[i]);
            let ch = |k: usize| prints[k].channel.map_or("?", |c| c.as_str());
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t{}\t{}\t{}\t{}\n",
                u8::from(set[i].0 == set[j].0),
                set[i].0,
                set[j].0,
                ch(i),
                ch(j),
                set[j].2.as_deref().or(set[i].2.as_deref()).unwrap_or("-"),
                s.value,
                s.reasons.iter().map(|r| format!("{}", r)).collect::<Vec<_>>().join("|"),
                i,
                texts[i],
                texts[j],
            ));
        }
    }
    std::fs::write(out, text).unwrap();
}

#[test]
#[ignore]
fn debug_pair() {
    let Ok(which) = std::env::var("DEDUP_DEBUG") else { return };
    let set = match std::env::var("DEDUP_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => map_lines(&simulators::agencies::evaluation::evaluation_jsonl(seed, 300)),
        None => evaluation_set(),
    };
    let mut idx: Vec<usize> = which.split(',').map(|x| x.parse().unwrap()).collect();
    if let Ok(m) = std::env::var("DEDUP_MATTER") {
        idx.extend((0..idx[0]).filter(|j| set[*j].0 == m));
    }
    let a = Fingerprint::of(&set[idx[0]].1);
    for &j in &idx[1..] {
        let b = Fingerprint::of(&set[j].1);
        println!("#{} vs #{j}: {}", idx[0], score(&a, &b));
        println!(
            "   {} ({}) || {} ({})",
            Fingerprint::content_text(&set[idx[0]].1),
            set[idx[0]].0,
            Fingerprint::content_text(&set[j].1),
            set[j].0
        );
    }
}

/// Issue #15's finding, measured: distinct hotline orders whose callers
/// gave only a surname and an honorific (40 such names), each its own
/// matter, so every merge is wrong. Printed beside the same orders with no
/// name at all, to show what the names alone add: a gate, the names may
/// add under 1% of merges (they add none by design: a surname with an
/// honorific is shown, never weighed). Run with more orders:
/// `HONORIFIC_ORDERS=10000 cargo test -p hub --lib honorific_names -- --nocapture`
/// (3000 by default). On 10,000: 2.50% merged with the names, 2.58%
/// without (a weak name is not even a key to find candidates by); what
/// merges is the simulators' templated content, where two distinct orders
/// in one building read alike.
#[test]
fn honorific_names_alone_merge_distinct_orders() {
    const NAMES: [&str; 40] = [
        "王女士",
        "李先生",
        "张女士",
        "刘先生",
        "陈女士",
        "杨先生",
        "赵女士",
        "黄先生",
        "周女士",
        "吴先生",
        "徐女士",
        "孙先生",
        "胡女士",
        "朱先生",
        "高女士",
        "林先生",
        "何女士",
        "郭先生",
        "马女士",
        "罗先生",
        "王师傅",
        "李大爷",
        "张阿姨",
        "刘老师",
        "陈大姐",
        "杨师傅",
        "赵大爷",
        "黄阿姨",
        "周老师",
        "吴大姐",
        "王先生",
        "李女士",
        "张先生",
        "刘女士",
        "陈先生",
        "杨女士",
        "赵先生",
        "黄女士",
        "周先生",
        "吴女士",
    ];
    let n: usize = std::env::var("HONORIFIC_ORDERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let hotline = mapper("hotline");
    let mut named = Vec::with_capacity(n);
    let mut nameless = Vec::with_capacity(n);
    for (i, m) in simulators::agencies::content::matters(1515, n).iter().enumerate() {
        let mut body = simulators::agencies::hotline::order_body(m, 1, false);
        for (out, name) in [(&mut named, Some(NAMES[i % NAMES.len()])), (&mut nameless, None)] {
            match name {
                Some(name) => body["callerName"] = Value::from(name),
                None => {
                    body.as_object_mut().expect("an object").remove("callerName");
                }
            }
            let rec = record("hotline", false, serde_json::to_vec(&body).expect("json"), Some("order.created"), None);
            let Ok(mapped) = hotline.map(&rec) else { continue };
            out.push((format!("M{i}"), mapped.applied.draft));
        }
    }
    let named = evaluate(&named, Thresholds::default());
    let nameless = evaluate(&nameless, Thresholds::default());
    for (what, r) in [("40 honorific names", &named), ("no names", &nameless)] {
        println!(
            "{what}: {} of {} distinct orders merged ({:.2}%), {} possible ({:.1} per 100)",
            r.merges,
            r.reports,
            r.merges as f64 * 100.0 / r.reports.max(1) as f64,
            r.possibles,
            r.review_load()
        );
    }
    let added = named.merges.saturating_sub(nameless.merges) as f64 / named.reports.max(1) as f64;
    assert!(added < 0.01, "the names alone added {:.2}% merges", added * 100.0);
}
