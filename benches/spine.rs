//! The spine's benchmarks (`cargo bench -p benches --bench spine`):
//!
//! 1. records/s from hand-over to platform-acknowledged on the default
//!    SQLite store, the platform simulator answering at once, beside a
//!    baseline in the same run: a loop that PUTs the same tickets straight to
//!    the simulator with the same concurrency;
//! 2. resident memory of the `hub` process with 1,000,000 undelivered
//!    changes in its outbox, beside the same process with an empty outbox;
//! 3. a long outage drained: `BENCH_DRAIN` (default 3,600,000: an hour at
//!    1,000 changes/s) undelivered changes, each of its own ticket, stored
//!    as the hub stores them (ticket, revision with the body, outbox row),
//!    delivered by the `hub` process to a platform that counts and answers
//!    200 at once; time to an empty outbox and the process's peak resident
//!    memory sampled every 250 ms throughout, beside a bare PUT loop (64 in
//!    flight) sending the same bodies to the same platform.
//!
//! `BENCH_RECORDS` (default 50000), `BENCH_BACKLOG` (default 1000000) and
//! `BENCH_DRAIN` scale them; `BENCH_PHASES` (default `throughput,memory,drain`)
//! picks which run.

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
    // As the hub does when it starts, for the baselines too.
    hub::prefer_small_pages();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| "throughput,memory,drain".into());
    let on = |name: &str| phases.split(',').any(|p| p.trim() == name);
    rt.block_on(async {
        if on("throughput") {
            throughput(env_usize("BENCH_RECORDS", 50_000)).await;
        }
        if on("memory") {
            backlog_memory(env_usize("BENCH_BACKLOG", 1_000_000)).await;
        }
        if on("drain") {
            backlog_drain(env_usize("BENCH_DRAIN", 3_600_000)).await;
        }
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
    put_loop(&client, &base_url, bodies).await;
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

/// A fresh SQLite store with `n` undelivered changes, created by the hub's
/// own migrations and then filled directly (a backlog this size would take
/// minutes through the front door).
struct Backlog {
    db: TestDb,
    /// Where the hub's config and log go: beside the database.
    dir: std::path::PathBuf,
    depth: i64,
    fill_time: Duration,
}

impl Backlog {
    async fn stored(n: usize, seed: u64, prefix: &str) -> Backlog {
        let db = TestDb::sqlite();
        let dir = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://")).parent().unwrap().to_path_buf();
        let store = hub::store::Store::open(&db.url).await.unwrap();
        let filled = Instant::now();
        fill_backlog(&store, n, seed, prefix).await;
        let depth = store.outbox_depth().await.unwrap();
        store.close().await;
        Backlog { db, dir, depth, fill_time: filled.elapsed() }
    }
}

async fn backlog_memory(backlog: usize) {
    let hub_bin = e2e::hub_binary();
    let Backlog { db, dir, depth, fill_time } = Backlog::stored(backlog, 9, "mem").await;

    // The platform is down (nothing listens): the hub holds the backlog and probes.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let measure = |db_url: String, platform: String| {
        let dir = dir.clone();
        let hub_bin = hub_bin.clone();
        async move {
            let mut child = run_hub(&hub_bin, &dir, &db_url, &platform);
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

/// The baseline: each (ticket id, body) PUT straight to the platform at
/// `base_url`, 64 in flight on one keep-alive client, as the hub would.
async fn put_loop(client: &reqwest::Client, base_url: &str, bodies: impl IntoIterator<Item = (String, String)>) {
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
}

/// A platform that counts the changes it is sent and answers 200 at once.
struct CountingPlatform {
    url: String,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl CountingPlatform {
    async fn start() -> CountingPlatform {
        use std::sync::atomic::{AtomicU64, Ordering};
        let count = std::sync::Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        let app = axum::Router::new().route(
            "/api/v1/tickets/{id}",
            axum::routing::put(move |_body: axum::body::Bytes| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::Relaxed);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        CountingPlatform { url, count, stop }
    }

    fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `hub run` as a process of its own on the store at `db_url`, delivering
/// to `platform` (its config written into `dir`).
fn run_hub(hub_bin: &std::path::Path, dir: &std::path::Path, db_url: &str, platform: &str) -> std::process::Child {
    let cfg = dir.join(format!("bench-{}.toml", free_port()));
    std::fs::write(
        &cfg,
        format!("[store]\nurl = \"{db_url}\"\n[platform]\nurl = \"{platform}\"\ntoken = \"test-token\"\n"),
    )
    .unwrap();
    std::process::Command::new(hub_bin)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A full ticket body without its opening brace: SQL splices each row's
/// own `"ticketId"` in front.
fn ticket_rest(seed: u64) -> String {
    let mut ticket = matters(seed, 1, "BACKLOG")[0].record(1)["ticket"].clone();
    ticket["revision"] = 1.into();
    ticket["sources"] = serde_json::json!([]);
    ticket["duplicateOf"] = serde_json::Value::Null;
    ticket.to_string().strip_prefix('{').expect("an object").to_string()
}

/// `n` undelivered changes, each of its own ticket `{prefix}{i}`, stored as
/// intake leaves them: the ticket, its revision holding the body, and an
/// outbox row that reads the body from the revision (''). Filled directly:
/// a backlog this size would take minutes through the front door.
async fn fill_backlog(store: &hub::store::Store, n: usize, seed: u64, prefix: &str) {
    let rest = ticket_rest(seed);
    let started = Instant::now();
    let mut done = 0usize;
    while done < n {
        let chunk = (n - done).min(200_000);
        let mut tx = store.pool().begin().await.unwrap();
        for sql in [
            r#"WITH RECURSIVE c(x) AS (SELECT $1 UNION ALL SELECT x + 1 FROM c WHERE x < $2)
               INSERT INTO tickets (ticket_id, revision, status, body, created_at, updated_at)
               SELECT $4 || x, 1, 'new', '{"ticketId":"' || $4 || x || '",' || $3, 0, 0 FROM c"#,
            r#"WITH RECURSIVE c(x) AS (SELECT $1 UNION ALL SELECT x + 1 FROM c WHERE x < $2)
               INSERT INTO ticket_revisions (ticket_id, revision, raw_record_id, cause, body, created_at)
               SELECT $4 || x, 1, NULL, 'created', '{"ticketId":"' || $4 || x || '",' || $3, 0 FROM c"#,
            r#"WITH RECURSIVE c(x) AS (SELECT $1 UNION ALL SELECT x + 1 FROM c WHERE x < $2)
               INSERT INTO outbox (ticket_id, revision, idempotency_key, body, next_attempt_at, created_at)
               SELECT $4 || x, 1, $4 || x || ':1', '', 0, 0 FROM c"#,
        ] {
            sqlx::query(sql)
                .bind(done as i64)
                .bind((done + chunk - 1) as i64)
                .bind(&rest)
                .bind(prefix)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        done += chunk;
        eprintln!("backlog: {done} of {n} changes stored ({:.0?})", started.elapsed());
    }
}

async fn backlog_drain(backlog: usize) {
    let hub_bin = e2e::hub_binary();
    let Backlog { db, dir, depth, fill_time } = Backlog::stored(backlog, 11, "d").await;
    let rest = ticket_rest(11);

    // Baseline: the same bodies PUT straight to the same kind of platform.
    let base_n = backlog.min(300_000);
    let base = CountingPlatform::start().await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).tcp_nodelay(true).build().unwrap();
    let started = Instant::now();
    put_loop(&client, &base.url, (0..base_n).map(|i| (format!("b{i}"), format!("{{\"ticketId\":\"b{i}\",{rest}"))))
        .await;
    let base_rate = rate(base_n, started.elapsed());
    let _ = base.stop.send(());

    let platform = CountingPlatform::start().await;
    let started = Instant::now();
    let mut child = run_hub(&hub_bin, &dir, &db.url, &platform.url);
    let mut peak: f64 = 0.0;
    let mut last = (0u64, Instant::now());
    let mut said = Instant::now();
    while (platform.count() as usize) < backlog {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak = peak.max(rss_mib(child.id()).unwrap_or(0.0));
        let n = platform.count();
        if n != last.0 {
            last = (n, Instant::now());
        }
        if last.1.elapsed() > Duration::from_secs(30) {
            eprintln!("drain: no progress for 30 s at {n} of {backlog}; giving up");
            break;
        }
        if said.elapsed() >= Duration::from_secs(10) {
            said = Instant::now();
            eprintln!(
                "drain: {n} of {backlog} delivered after {:.0?} ({:.0}/s), peak RSS {peak:.1} MiB",
                started.elapsed(),
                rate(n as usize, started.elapsed())
            );
        }
    }
    let delivered_at = started.elapsed();
    // Then until every result is recorded: the outbox is empty.
    let watch = hub::store::Store::open(&db.url).await.unwrap();
    let settled = Instant::now();
    while watch.outbox_depth().await.unwrap_or(1) > 0 && settled.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peak = peak.max(rss_mib(child.id()).unwrap_or(0.0));
    }
    let left = watch.outbox_depth().await.unwrap_or(-1);
    watch.close().await;
    let took = started.elapsed();
    let delivered = platform.count() as usize;
    let _ = child.kill();
    let _ = child.wait();
    let _ = platform.stop.send(());

    header(&format!("A backlog of {depth} changes drained (hub process, SQLite, platform answering at once)"));
    row(
        "changes/s, hub started → outbox empty",
        format!("{:.0}/s", rate(delivered, took)),
        format!("{base_rate:.0}/s"),
        &format!("baseline: bare PUT loop, 64 in flight, {base_n} changes"),
    );
    row(
        "time to drain",
        format!("{took:.1?}"),
        format!("{:.1?}", Duration::from_secs_f64(backlog as f64 / base_rate)),
        &format!(
            "{delivered} of {backlog} delivered after {delivered_at:.1?}, {left} left in the outbox at the end; target < 5 min"
        ),
    );
    row(
        "peak resident memory throughout",
        format!("{peak:.1} MiB"),
        "-".into(),
        "sampled every 250 ms; target < 100 MB",
    );
    row("backlog fill time (direct SQL)", format!("{fill_time:.1?}"), "-".into(), "");
    db.cleanup().await;
}
