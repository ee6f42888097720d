//! Cross-channel duplicate detection (`cargo bench -p benches --bench dedup`):
//!
//! 1. candidate search + scoring per incoming record with 1,000,000 open
//!    tickets in the window (`BENCH_OPEN`), p50/p99, beside the exact-dedup
//!    lookup every record pays anyway (the baseline);
//! 2. end-to-end records/s, hand-over → platform-acknowledged, with
//!    near-duplicate detection on and off in the same run (`BENCH_RECORDS`),
//!    `BENCH_ROUNDS` rounds of the two (default 2; `BENCH_E2E=on|off` runs
//!    one side alone, `BENCH_OPEN=0` leaves part 1 out, for profiling).
//!
//! Records are the hotline simulator's work orders mapped by the shipped
//! hotline mapping: realistic text, places and the city's 48 townships.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{header, rate, row};
use connectors::{ContentType, RawRecord};
use e2e::{TestDb, settings};
use futures::StreamExt;
use hub::Hub;
use hub::dedup::{CandidateRules, Fingerprint, SourceIds, Thresholds};
use hub::mapping::{Mapper, Mappings};
use hub::store::MatchIndex;
use simulators::agencies::content::Matter;
use simulators::agencies::hotline;
use simulators::platform::{PlatformSim, SimConfig};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // As the hub does when it starts, for the baselines too.
    hub::prefer_small_pages();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // BENCH_OPEN=0 leaves the candidate search out (profiling the rest).
    match env_usize("BENCH_OPEN", 1_000_000) {
        0 => {}
        open => candidate_search(open),
    }
    let records = env_usize("BENCH_RECORDS", 20_000);
    stream_scoring(records);
    rt.block_on(end_to_end(records));
}

/// Work-order bodies of distinct matters, as the hotline sends them.
fn orders(seed: u64, n: usize) -> Vec<Vec<u8>> {
    (0..n as u64).map(|i| serde_json::to_vec(&hotline::order_body(&Matter::new(seed, i), 1, false)).unwrap()).collect()
}

fn candidate_search(open: usize) {
    let mapper = hub::mapping::shipped::mapper("hotline").unwrap().unwrap();
    let print = |body: &[u8]| -> Option<Fingerprint> {
        let r = RawRecord::new("hotline", ContentType::Json, body.to_vec()).with_meta("routing_key", "order.created");
        let m = mapper.map(&r).ok()?;
        Some(Fingerprint::new(&m.applied.draft, SourceIds { channel: Some(m.applied.channel), record_id: None }))
    };
    // Distinct matters, each opened several times over the window with its
    // time moved: a million open tickets in 72 hours, as the target says.
    let distinct = (open / 5).max(1);
    let started = Instant::now();
    let base: Vec<Fingerprint> = orders(101, distinct).iter().filter_map(|b| print(b)).collect();
    let mut index = MatchIndex::new(CandidateRules::default());
    let window = 72 * 3600;
    let mut n = 0usize;
    'fill: for copy in 0.. {
        for (i, p) in base.iter().enumerate() {
            if n == open {
                break 'fill;
            }
            let mut p = p.clone();
            p.occurred = 1_720_000_000 + ((i as i64 * 7919 + copy * 104_729) % window);
            index.add(&format!("T{n}"), "hotline", &format!("R{n}"), p);
            n += 1;
        }
    }
    let built = started.elapsed();

    // Incoming: other matters, at the middle of the window.
    let incoming: Vec<Fingerprint> = orders(202, 10_000)
        .iter()
        .filter_map(|b| print(b))
        .map(|mut p| {
            p.occurred = 1_720_000_000 + window / 2;
            p
        })
        .collect();
    let thresholds = Thresholds::default();
    let none = HashSet::new();
    let mut times = Vec::with_capacity(incoming.len());
    let mut decisions: HashMap<&'static str, usize> = HashMap::new();
    for p in &incoming {
        let t = Instant::now();
        let d = index.decide(p, &Default::default(), &thresholds, &none);
        times.push(t.elapsed());
        *decisions.entry(d.label()).or_default() += 1;
    }
    times.sort();
    let pct = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];

    // Baseline: the exact-dedup lookup by (system, record id).
    let exact: HashMap<String, usize> = (0..open).map(|i| (format!("R{i}"), i)).collect();
    let mut base_times = Vec::with_capacity(incoming.len());
    for i in 0..incoming.len() {
        let key = format!("R{}", i * 97 % open);
        let t = Instant::now();
        std::hint::black_box(exact.get(&key));
        base_times.push(t.elapsed());
    }
    base_times.sort();
    let bpct = |q: f64| base_times[((base_times.len() as f64 * q) as usize).min(base_times.len() - 1)];

    header(&format!("Candidate search + scoring, {open} open tickets in a 72 h window ({} incoming)", incoming.len()));
    row("p50 per record", format!("{:.1?}", pct(0.5)), format!("{:.2?}", bpct(0.5)), "baseline: exact-dedup lookup");
    row("p99 per record", format!("{:.1?}", pct(0.99)), format!("{:.2?}", bpct(0.99)), "target < 2 ms");
    row("max per record", format!("{:.1?}", pct(1.0)), format!("{:.2?}", bpct(1.0)), "");
    row("index built in", format!("{built:.1?}"), "-".into(), &format!("{} fingerprints", index.len()));
    row("decisions", format!("{decisions:?}"), "-".into(), "incoming records are other matters");
}

/// The end-to-end run's records scored one after the other on one thread,
/// as intake decides them (each joins the ticket it merges into or opens
/// one): what detection costs per record where the tickets are as alike as
/// the simulator's.
fn stream_scoring(n: usize) {
    let mapper = hub::mapping::shipped::mapper("hotline").unwrap().unwrap();
    let bodies = orders(303, n);
    let started = Instant::now();
    let drafts: Vec<_> = bodies
        .into_iter()
        .filter_map(|b| {
            let r = RawRecord::new("hotline", ContentType::Json, b).with_meta("routing_key", "order.created");
            mapper.map(&r).ok().map(|m| (m.applied.draft, m.applied.channel))
        })
        .collect();
    let mapping = started.elapsed();
    let started = Instant::now();
    let prints: Vec<Fingerprint> =
        drafts.iter().map(|(d, c)| Fingerprint::new(d, SourceIds { channel: Some(*c), record_id: None })).collect();
    let printing = started.elapsed();
    let mut index = MatchIndex::new(CandidateRules::default());
    let thresholds = Thresholds::default();
    let none = HashSet::new();
    let mut decisions: HashMap<&'static str, usize> = HashMap::new();
    let started = Instant::now();
    for (i, p) in prints.iter().enumerate() {
        let d = index.decide(p, &Default::default(), &thresholds, &none);
        *decisions.entry(d.label()).or_default() += 1;
        let ticket = match d {
            hub::dedup::Decision::Merge { ticket, .. } => ticket,
            _ => format!("T{i}"),
        };
        index.add(&ticket, "hotline", &format!("R{i}"), p.clone());
    }
    let scoring = started.elapsed();
    let per = |d: Duration| format!("{:.1?}", d / prints.len().max(1) as u32);
    header(&format!("The end-to-end stream scored on one thread, {} hotline work orders", prints.len()));
    let base = "baseline: mapping the record, which every record pays";
    row("candidate search + scoring per record", per(scoring), per(mapping), base);
    row("fingerprint per record", per(printing), per(mapping), base);
    row("decisions", format!("{decisions:?}"), "-".into(), "every matter is distinct; the texts are templated");
}

/// One side of the end-to-end run: a fresh hub and store, every record
/// handed over, until the platform has every change. Returns the time, the
/// records merged and the possible duplicates flagged.
async fn one_side(bodies: &[Vec<u8>], dedup: bool) -> (Duration, i64, usize) {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let mut s = settings(&db.url, &server.base_url());
    s.intake.dedup.enabled = dedup;
    let mut mappings = Mappings::new();
    mappings.insert("hotline", Arc::new(hub::mapping::shipped::mapper("hotline").unwrap().unwrap()));
    let hub = Hub::start_with(s, mappings, vec![]).await.unwrap();
    let intake = hub.intake();
    let started = Instant::now();
    futures::stream::iter(bodies.to_vec())
        .map(|b| {
            let intake = intake.clone();
            let r = RawRecord::new("hotline", ContentType::Json, b).with_meta("routing_key", "order.created");
            async move { intake.submit(r).await.expect("stored") }
        })
        .buffer_unordered(1024)
        .collect::<Vec<_>>()
        .await;
    // The outbox count, not the summary: the summary reads every
    // ticket, and reading it every few milliseconds would be a load of
    // its own on the store being measured.
    while hub.store.outbox_depth().await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let counts = hub.store.source_counts().await.unwrap();
    let possible = hub.store.duplicate_links(Some("possible"), 1_000_000).await.unwrap().len();
    drop(intake);
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
    (elapsed, counts.get("hotline").map_or(0, |c| c.merged), possible)
}

/// Detection off, then on, `BENCH_ROUNDS` times (default 2): on a shared
/// machine only the two sides of one round compare. `BENCH_E2E=on` or
/// `off` runs one side alone (to profile it).
async fn end_to_end(n: usize) {
    let bodies = orders(303, n);
    if let Ok(side @ ("on" | "off")) = std::env::var("BENCH_E2E").as_deref() {
        let (elapsed, merged, possible) = one_side(&bodies, side == "on").await;
        header(&format!("End to end, {n} hotline work orders, SQLite, detection {side} alone"));
        row(
            "records/s",
            format!("{:.0}/s", rate(n, elapsed)),
            "-".into(),
            &format!("{merged} merged, {possible} possible"),
        );
        return;
    }
    let rounds = env_usize("BENCH_ROUNDS", 2).max(1);
    header(&format!("End to end, {n} hotline work orders, SQLite, simulator answering at once"));
    let mut relative = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let (off, _, _) = one_side(&bodies, false).await;
        let (on, merged, possible) = one_side(&bodies, true).await;
        let share = 100.0 * off.as_secs_f64() / on.as_secs_f64();
        relative.push(share);
        row(
            &format!("round {round}: records/s hand-over → acknowledged"),
            format!("{:.0}/s", rate(n, on)),
            format!("{:.0}/s", rate(n, off)),
            &format!(
                "baseline: exact dedup only, same round; {share:.1}%; {merged} merged, {possible} possible duplicates"
            ),
        );
    }
    let (low, high) = relative.iter().fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
    row("relative, lowest–highest round", format!("{low:.1}–{high:.1}%"), "100%".into(), "target: at least 85%");
}
