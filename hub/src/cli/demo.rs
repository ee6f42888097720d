//! `hub demo`: the whole flow on one machine, with faults, ending in a
//! reconciliation that accounts for every record sent.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use connectors::{ContentType, Outcome, RawRecord};
use hub::config::{ProcessEnv, Settings};
use hub::mapping::{CanonicalMapper, Mappings};
use simulators::platform::{Faults, PlatformSim, SimConfig, Window};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How long the sources send (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Records per second the simulated source sends.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// The SQLite file to use (default: a fresh file in a temporary directory).
    #[arg(long, value_name = "FILE")]
    db: Option<std::path::PathBuf>,
    /// Run the platform simulator without injected faults.
    #[arg(long)]
    no_faults: bool,
}

const SOURCE: &str = "canon";

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("hub-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = args.db.clone().unwrap_or_else(|| dir.join("hub.db"));

    let total = args.duration.as_millis() as u64;
    let faults = if args.no_faults {
        Faults::default()
    } else {
        Faults {
            error_rate: 0.03,
            throttle_rate: 0.01,
            retry_after_secs: 1,
            latency_ms: 2,
            outages: vec![Window { start_ms: total * 2 / 5, duration_ms: (total / 8).max(2000) }],
            ..Faults::default()
        }
    };
    let sim = PlatformSim::new(SimConfig { token: "demo-token".into(), faults: faults.clone() });
    let server = sim.bind("127.0.0.1:0").await.context("cannot start the platform simulator")?;

    let mut settings = Settings::defaults(&ProcessEnv).map_err(|e| anyhow::anyhow!("{e}"))?;
    settings.database_url = format!("sqlite://{}", db.display());
    settings.platform.url = server.base_url();
    settings.platform.token = "demo-token".into();
    settings.dispatcher.pause.max = Duration::from_secs(2);
    settings.dispatcher.retry.max = Duration::from_secs(5);
    let mut mappings = Mappings::new();
    mappings.insert(SOURCE, std::sync::Arc::new(CanonicalMapper));
    let hub = hub::Hub::start_with(settings, mappings, Vec::new()).await?;

    println!(
        "hub demo: {} of records at {}/s; store {}; platform simulator at {}",
        humantime::format_duration(args.duration),
        args.rate,
        db.display(),
        server.base_url()
    );
    if !args.no_faults {
        println!(
            "injected faults: 3% errors, 1% throttling (429), one outage of {} s",
            faults.outages[0].duration_ms / 1000
        );
    }

    // The simulated source: new matters, their later versions, redeliveries
    // and a share of bad records, at a steady rate.
    let matters =
        simulators::canonical::matters(2024, (args.rate as u64 * args.duration.as_secs().max(1)) as usize, "DEMO");
    let intake = hub.intake();
    let started = Instant::now();
    let mut outcomes: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut sent = 0u64;
    let mut next_progress = Instant::now() + Duration::from_secs(2);
    let mut plan = Vec::new();
    for (i, m) in matters.iter().enumerate() {
        for v in 1..=m.versions {
            plan.push((i, v));
        }
        if i % 20 == 0 {
            plan.push((i, 1)); // a redelivery
        }
        if i % 50 == 25 {
            plan.push((usize::MAX, 0)); // bad input
        }
    }
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    let mut inflight = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for (i, v) in plan {
        if started.elapsed() >= args.duration {
            break;
        }
        ticker.tick().await;
        let record = if i == usize::MAX {
            RawRecord::new(
                SOURCE,
                ContentType::Json,
                &b"{\"recordId\": \"BROKEN\", \"ticket\": {\"title\": \"\xe6\x9c\xaa"[..],
            )
        } else {
            RawRecord::new(SOURCE, ContentType::Json, matters[i].payload(v))
        };
        sent += 1;
        let intake = intake.clone();
        inflight.push(async move { intake.submit(record).await });
        while let Some(Some(result)) = futures::FutureExt::now_or_never(inflight.next()) {
            *outcomes.entry(label(result)).or_default() += 1;
        }
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(2);
            progress(&hub, &sim, sent, started).await;
        }
    }
    while let Some(result) = inflight.next().await {
        *outcomes.entry(label(result)).or_default() += 1;
    }
    drop(intake);
    println!(
        "sources done after {:.0?}: {sent} records sent; waiting for the platform to have everything…",
        started.elapsed()
    );
    sim.set_faults(Faults::default());
    let deadline = Instant::now() + Duration::from_secs(120);
    while hub.store.outbox_depth().await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(2);
            progress(&hub, &sim, sent, started).await;
        }
    }
    let metrics = hub.metrics.clone();
    hub.shutdown().await;
    // Read the reconciliation from the file itself, after a clean shutdown.
    let store = hub::store::Store::open(&format!("sqlite://{}", db.display())).await?;
    let summary = store.summary().await?;
    let stats = sim.stats();
    server.stop().await;

    println!("\nsummary for source `{SOURCE}`");
    for (k, v) in &outcomes {
        println!("  {k:<12} {v}");
    }
    println!(
        "  delivered    {} changes ({} answered 409, {} retries, {} throttled)",
        metrics.delivered.load(Ordering::Relaxed),
        metrics.stale_answers.load(Ordering::Relaxed),
        metrics.retried.load(Ordering::Relaxed),
        metrics.throttled.load(Ordering::Relaxed)
    );
    println!(
        "platform: {} tickets, {} changes applied, {} repeated keys absorbed",
        stats.tickets, stats.applied, stats.duplicate_keys
    );

    let accounted: u64 = outcomes.values().sum();
    let platform_tickets = sim.tickets();
    let hub_tickets = store.ticket_revisions().await?;
    let mismatched = hub_tickets.iter().filter(|t| !platform_tickets.contains(t)).count();
    let checks = [
        ("every record sent has an outcome", accounted == sent),
        ("nothing waits in the outbox", summary.pending == 0),
        (
            "the platform holds every ticket at its last revision",
            mismatched == 0 && platform_tickets.len() == hub_tickets.len(),
        ),
        ("no change was applied twice", stats.applied as i64 == summary.revisions - summary.dead_letters),
    ];
    println!("\nreconciliation");
    let mut ok = true;
    for (what, holds) in checks {
        println!("  [{}] {what}", if holds { "ok" } else { "FAILED" });
        ok &= holds;
    }
    println!(
        "  ({sent} sent = {accounted} with outcomes; {} tickets, {} revisions, {} quarantined, {} dead letters)",
        summary.tickets, summary.revisions, summary.quarantined, summary.dead_letters
    );
    if args.db.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn label(result: Result<Outcome, connectors::IntakeError>) -> &'static str {
    match result {
        Ok(Outcome::Created { .. }) => "created",
        Ok(Outcome::Updated { .. }) => "updated",
        Ok(Outcome::Duplicate) => "duplicate",
        Ok(Outcome::Stale) => "stale",
        Ok(Outcome::Quarantined { .. }) => "quarantined",
        Err(_) => "not stored",
    }
}

async fn progress(hub: &hub::Hub, sim: &PlatformSim, sent: u64, started: Instant) {
    let depth = hub.store.outbox_depth().await.unwrap_or(-1);
    let stats = sim.stats();
    println!(
        "[{:>4.0}s] sent {sent:>6}  delivered {:>6}  waiting {:>5}  retries {:>4}  platform: {} tickets{}",
        started.elapsed().as_secs_f64(),
        hub.metrics.delivered.load(Ordering::Relaxed),
        depth,
        hub.metrics.retried.load(Ordering::Relaxed),
        stats.tickets,
        if hub.metrics.delivery_paused.load(Ordering::Relaxed) == 1 { "  (paused)" } else { "" },
    );
}
