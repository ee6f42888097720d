//! The centre's statistics (`cargo bench -p benches --bench stats`): the
//! time to answer a year's figures with 50,000 and 1,000,000 tickets in an
//! SQLite store, beside a baseline in the same run: the same figures
//! computed by scanning one row per ticket (`ticket_facts`), which is what
//! the aggregates spare each request.
//!
//! The tickets are a year of a city drawn over the shipped division and
//! category tables (48 townships, 35 categories, 4 channels, a department
//! per county and category group), counted through the store's own
//! aggregate path (`Store::count_in_statistics`), not through intake.
//! `BENCH_STATS_SIZES` (default `50000,1000000`) and `BENCH_STATS_RUNS`
//! (default 100 per query) scale it.

use std::time::{Duration, Instant};

use benches::{header, row};
use connectors::{ContentType, RawRecord};
use e2e::TestDb;
use hub::stats::names;
use hub::store::{CellFilter, Dimension, IntakeItem, Store, StoredOutcome};
use hub::ticket::handling::Handling;
use hub::ticket::{Channel, Evaluation, EvaluationResult, Region, RegionCode, RegionLevel, Status, Ticket};

fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

/// splitmix64: deterministic and well spread.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

async fn template(store: &Store) -> Ticket {
    let m = &simulators::canonical::matters(1, 1, "BENCH")[0];
    let mut mappings = hub::mapping::Mappings::new();
    mappings.insert("canon", std::sync::Arc::new(hub::mapping::CanonicalMapper));
    let item: IntakeItem = hub::intake::prepare(
        &RawRecord::new("canon", ContentType::Json, m.payload(1)),
        &mappings,
        &hub::intake::IntakeSettings::default(),
    );
    let Ok(StoredOutcome::Created { ticket_id, .. }) = store.store_batch(&[item]).await.remove(0) else {
        panic!("the template ticket was not created")
    };
    store.ticket(&ticket_id).await.expect("template").ticket
}

/// Ticket `i` of a year of a city.
fn ticket(
    t: &Ticket,
    i: u64,
    townships: &[(&str, &str, &str)],
    categories: &[&str],
) -> (Ticket, Option<Handling>, i64) {
    let s = mix(i);
    let (code, name, county) = townships[(s % townships.len() as u64) as usize];
    // Categories are skewed: the first few are most of the matters.
    let c = ((s >> 8) % 1000) as f64 / 1000.0;
    let category = categories[((c * c * c) * categories.len() as f64) as usize % categories.len()];
    let channel = [Channel::Hotline, Channel::Terminal, Channel::Petition, Channel::CourtMediation]
        [[0, 0, 0, 0, 0, 1, 1, 1, 2, 3][((s >> 16) % 10) as usize]];
    let year = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00+08:00").expect("a time");
    let reported = year + chrono::Duration::minutes(((s >> 20) % (365 * 24 * 60)) as i64);
    let took = chrono::Duration::minutes(60 + ((s >> 40) % (6 * 24 * 60)) as i64);
    let mut ticket = t.clone();
    ticket.ticket_id = format!("B{i:09}");
    ticket.draft.region = Region {
        code: RegionCode::parse(&format!("{code}000")).expect("a shipped code"),
        level: RegionLevel::Township,
        name: name.to_string(),
    };
    ticket.draft.category = category.to_string().try_into().expect("a shipped category");
    ticket.sources[0].channel = channel;
    ticket.draft.reported_at = reported;
    ticket.draft.due_at = Some(reported + chrono::Duration::days(3));
    let done = (s >> 50) % 100 < 85;
    ticket.draft.status = if done { Status::Closed } else { Status::InProgress };
    ticket.draft.evaluation = ((s >> 56) % 10 < 6 && done).then(|| Evaluation {
        result: if (s >> 60) % 10 < 9 { EvaluationResult::Satisfied } else { EvaluationResult::Unsatisfied },
        by: Some("citizen".into()),
        at: reported + took,
    });
    let group = names::category(category).and_then(|n| n.split('/').next()).unwrap_or("其他");
    let handling = Handling {
        department: Some(format!("{}{group}部门", names::region(county).unwrap_or(county))),
        ..Handling::default()
    };
    (ticket, Some(handling), (reported + took).timestamp_millis())
}

fn quantiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The baseline: the same breakdown from one row per ticket.
async fn scan(store: &Store, by: &str) -> usize {
    let sql = format!(
        "SELECT {by}, COUNT(*), SUM(CASE WHEN finished_at IS NOT NULL THEN 1 ELSE 0 END),
                SUM(CASE WHEN finished_at IS NOT NULL AND due_at IS NOT NULL AND finished_at <= due_at THEN 1 ELSE 0 END),
                SUM(CASE WHEN evaluation = 'satisfied' THEN 1 ELSE 0 END), SUM(reopened), SUM(overdue),
                SUM(CASE WHEN finished_at IS NOT NULL THEN finished_at - received_at ELSE 0 END)
           FROM ticket_facts WHERE month >= '2026-01' AND month <= '2026-12' GROUP BY {by}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(store.pool()).await.expect("scan").len()
}

#[tokio::main]
async fn main() {
    let sizes: Vec<u64> =
        env("BENCH_STATS_SIZES", "50000,1000000").split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let runs: usize = env("BENCH_STATS_RUNS", "100").parse().unwrap_or(100);
    let townships: Vec<(&str, &str, &str)> = names::divisions().into_iter().filter(|(c, _, _)| c.len() == 9).collect();
    let categories = names::category_codes();
    for n in sizes {
        let db = TestDb::sqlite();
        let store = Store::open(&db.url).await.expect("open");
        let t = template(&store).await;
        let started = Instant::now();
        let mut i = 0;
        while i < n {
            let batch: Vec<_> = (i..(i + 5000).min(n)).map(|k| ticket(&t, k, &townships, &categories)).collect();
            store.count_in_statistics(&batch).await.expect("count");
            i += batch.len() as u64;
        }
        let filled = started.elapsed();
        let cells: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM stats_cells").fetch_one(store.pool()).await.expect("cells");
        let year = CellFilter { from_month: "2026-01".into(), to_month: "2026-12".into(), region: None };
        header(&format!("A year's figures with {n} tickets ({cells} cells, SQLite, {runs} runs each)"));
        let mut all = Vec::new();
        let mut all_base = Vec::new();
        for by in [Dimension::County, Dimension::Township, Dimension::Category, Dimension::Department, Dimension::Month]
        {
            let mut hub_times = Vec::with_capacity(runs);
            let mut base_times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t0 = Instant::now();
                let rows = store.cell_sums(&year, by).await.expect("figures");
                let total = store.cell_total(&year).await.expect("total");
                std::hint::black_box((rows, total));
                hub_times.push(t0.elapsed());
                let t0 = Instant::now();
                std::hint::black_box(scan(&store, by.column()).await);
                base_times.push(t0.elapsed());
            }
            all.extend(hub_times.iter().copied());
            all_base.extend(base_times.iter().copied());
            let ((p50, p99), (b50, b99)) = (quantiles(hub_times), quantiles(base_times));
            row(
                &format!("by {} + total, p50 / p99", by.column()),
                format!("{} / {}", ms(p50), ms(p99)),
                format!("{} / {}", ms(b50), ms(b99)),
                "baseline: a scan of one row per ticket",
            );
        }
        let ((_, p99), (_, b99)) = (quantiles(all), quantiles(all_base));
        row("every breakdown, p99", ms(p99), ms(b99), "target < 100 ms at 50,000");
        row(
            "filling the aggregates",
            format!("{:.0} tickets/s", n as f64 / filled.as_secs_f64()),
            String::new(),
            "through Store::count_in_statistics, 5,000 a transaction",
        );
        drop(store);
        db.cleanup().await;
    }
}
