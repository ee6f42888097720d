//! The spine's benchmarks (`cargo bench -p benches --bench spine`):
//!
//! 1. records/s from hand-over to platform-acknowledged on the default
//!    SQLite store, the platform simulator answering at once, beside a
//!    baseline in the same run: a loop that PUTs the same tickets straight to
//!    the simulator with the same concurrency;
//! 2. resident memory of the `hub` process with 1,000,000 undelivered
//!    changes in its outbox, beside the same process with an empty outbox.
//!
//! `BENCH_RECORDS` (default 50000) and `BENCH_BACKLOG` (default 1000000)
//! scale them.

use std::time::{Duration, Instant};

use benches::{header, rate, row, rss_mib};
use e2e::{TestDb, canonical_mappings, free_port, record, settings};
use futures::StreamExt;
use hub::Hub;
use simulators::canonical::matters;
use simulators::platform::{PlatformSim, SimConfig};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        throughput(env_usize("BENCH_RECORDS", 50_000)).await;
        backlog_memory(env_usize("BENCH_BACKLOG", 1_000_000)).await;
    });
}

async fn throughput(n: usize) {
    let ms = matters(7, n, "BENCH");
    let payloads: Vec<Vec<u8>> = ms.iter().map(|m| m.payload(1)).collect();

    // Baseline: the same tickets PUT straight to a simulator, 64 at a time.
    let base_sim = PlatformSim::new(SimConfig::new("test-token"));
    let base_server = base_sim.bind("127.0.0.1:0").await.unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).tcp_nodelay(true).build().unwrap();
    let bodies: Vec<(String, String)> = ms
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut t = m.record(1)["ticket"].clone();
            let id = format!("base{i:08}");
            t["ticketId"] = id.clone().into();
            t["revision"] = 1.into();
            t["sources"] = serde_json::json!([]);
            t["duplicateOf"] = serde_json::Value::Null;
            (id, t.to_string())
        })
        .collect();
    let base_url = base_server.base_url();
    let started = Instant::now();
    futures::stream::iter(bodies)
        .map(|(id, body)| {
            let client = client.clone();
            let url = format!("{base_url}/api/v1/tickets/{id}");
            async move {
                let r = client
                    .put(url)
                    .bearer_auth("test-token")
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("{id}:1"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let baseline = started.elapsed();
    assert_eq!(base_sim.stats().applied as usize, n);
    base_server.stop().await;

    // The hub: hand-over → group commit → outbox → dispatcher → platform.
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let intake = hub.intake();
    let started = Instant::now();
    let mut stored_at = None;
    futures::stream::iter(payloads)
        .map(|p| {
            let intake = intake.clone();
            async move { intake.submit(record(p)).await.expect("stored") }
        })
        .buffer_unordered(1024)
        .collect::<Vec<_>>()
        .await;
    stored_at.get_or_insert(started.elapsed());
    while (sim.stats().applied as usize) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    drop(intake);
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;

    header(&format!("Throughput, {n} records, SQLite (WAL, synchronous=FULL), simulator answering at once"));
    row(
        "records/s hand-over → platform-acknowledged",
        format!("{:.0}/s", rate(n, total)),
        format!("{:.0}/s", rate(n, baseline)),
        "baseline: bare PUT loop, 64 in flight",
    );
    row(
        "records/s hand-over → committed (intake only)",
        format!("{:.0}/s", rate(n, stored_at.unwrap())),
        "-".into(),
        "",
    );
    row("wall time", format!("{:.2?}", total), format!("{:.2?}", baseline), "target ≥ 5,000 tickets/s");
}

async fn backlog_memory(backlog: usize) {
    let hub_bin = e2e::hub_binary();
    let db = TestDb::sqlite();
    let dir = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://")).parent().unwrap().to_path_buf();
    // The store, created by the hub's own migrations, then filled directly:
    // a backlog this size would take minutes through the front door.
    let store = hub::store::Store::open(&db.url).await.unwrap();
    // A full ticket body; SQL splices each row's own ticketId in front.
    let mut ticket = matters(9, 1, "MEM")[0].record(1)["ticket"].clone();
    ticket["revision"] = 1.into();
    ticket["sources"] = serde_json::json!([]);
    ticket["duplicateOf"] = serde_json::Value::Null;
    let body = ticket.to_string();
    let rest = body.strip_prefix('{').expect("an object").to_string();
    let filled = Instant::now();
    let mut done = 0usize;
    while done < backlog {
        let chunk = (backlog - done).min(100_000);
        sqlx::query(
            r#"WITH RECURSIVE c(x) AS (SELECT $1 UNION ALL SELECT x + 1 FROM c WHERE x < $2)
             INSERT INTO outbox (ticket_id, revision, idempotency_key, body, next_attempt_at, created_at)
             SELECT 'mem' || x, 1, 'mem' || x || ':1', '{"ticketId":"mem' || x || '",' || $3, 0, 0 FROM c"#,
        )
        .bind(done as i64)
        .bind((done + chunk - 1) as i64)
        .bind(&rest)
        .execute(store.pool())
        .await
        .unwrap();
        done += chunk;
    }
    let depth = store.outbox_depth().await.unwrap();
    store.close().await;
    let fill_time = filled.elapsed();

    // The platform is down (nothing listens): the hub holds the backlog and probes.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let measure = |db_url: String, platform: String| {
        let dir = dir.clone();
        let hub_bin = hub_bin.clone();
        async move {
            let cfg = dir.join(format!("bench-{}.toml", free_port()));
            std::fs::write(
                &cfg,
                format!("[store]\nurl = \"{db_url}\"\n[platform]\nurl = \"{platform}\"\ntoken = \"test-token\"\n"),
            )
            .unwrap();
            let mut child = std::process::Command::new(&hub_bin)
                .args(["run", "--config"])
                .arg(&cfg)
                .env("RUST_LOG", "error")
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut peak: f64 = 0.0;
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                peak = peak.max(rss_mib(child.id()).unwrap_or(0.0));
            }
            let _ = child.kill();
            let _ = child.wait();
            peak
        }
    };
    let with_backlog = measure(db.url.clone(), dead.clone()).await;
    let empty = TestDb::sqlite();
    let without = measure(empty.url.clone(), dead).await;
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let draining = measure(db.url.clone(), server.base_url()).await;
    let drained = sim.stats().applied;
    server.stop().await;

    header(&format!("Memory of the hub process with {depth} undelivered changes (platform down, 10 s)"));
    row(
        "peak resident memory",
        format!("{with_backlog:.1} MiB"),
        format!("{without:.1} MiB"),
        "baseline: same binary, empty outbox; target ≤ 200 MB",
    );
    row(
        "peak resident memory while draining it (10 s)",
        format!("{draining:.1} MiB"),
        format!("{without:.1} MiB"),
        &format!("platform up: {drained} changes delivered in those 10 s"),
    );
    row("backlog fill time (direct SQL)", format!("{:.1?}", fill_time), "-".into(), "");
    db.cleanup().await;
    empty.cleanup().await;
}
