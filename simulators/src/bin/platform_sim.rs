//! `platform-sim`: the city governance platform's ticket intake, simulated,
//! with faults on demand. See `platform-sim --help`.

use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use simulators::platform::{
    CallbackConfig, Faults, PlatformSim, SimConfig, Stats, Window, parse::millis, parse_duration, parse_rate,
    parse_window,
};

/// Simulated city governance platform: accepts tickets on
/// `PUT /api/v1/tickets/{ticketId}` (bearer token, Idempotency-Key, revision
/// order) and can misbehave on demand, to test and benchmark the hub.
///
/// Tool endpoints (no auth): GET /sim/stats, GET /sim/tickets,
/// GET /sim/tickets/{id}, GET|PUT /sim/faults (JSON, replaces the faults),
/// GET /healthz.
///
/// Durations are a whole number and a unit: 250ms, 3s, 2m, 1h. Windows are
/// START+DURATION since the simulator started, e.g. 10s+30s. Rates are shares
/// from 0 to 1.
#[derive(Parser, Debug)]
#[command(name = "platform-sim", version, verbatim_doc_comment)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,

    /// Bearer token the platform accepts.
    #[arg(long, env = "PLATFORM_TOKEN", default_value = "demo-token", hide_env_values = true)]
    token: String,

    /// Share of requests answered 500.
    #[arg(long, value_parser = parse_rate, default_value = "0", value_name = "RATE")]
    error_rate: f64,

    /// Delay added to every request (served after processing, before answering).
    #[arg(long, value_parser = parse_duration, default_value = "0", value_name = "DURATION")]
    latency: Duration,

    /// Share of requests that are slow (take --slow more).
    #[arg(long, value_parser = parse_rate, default_value = "0", value_name = "RATE")]
    slow_rate: f64,

    /// Extra delay of a slow request.
    #[arg(long, value_parser = parse_duration, default_value = "3s", value_name = "DURATION")]
    slow: Duration,

    /// Share of requests answered 429 with Retry-After.
    #[arg(long, value_parser = parse_rate, default_value = "0", value_name = "RATE")]
    throttle_rate: f64,

    /// Retry-After of a 429 (whole seconds, at least 1).
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    retry_after: Duration,

    /// Send Retry-After as an HTTP date instead of seconds.
    #[arg(long)]
    retry_after_http_date: bool,

    /// Answer 503 (no Retry-After) inside this window; repeatable.
    #[arg(long, value_parser = parse_window, value_name = "START+DURATION")]
    outage: Vec<Window>,

    /// Answer 401 inside this window, as if the token were revoked; repeatable.
    #[arg(long, value_parser = parse_window, value_name = "START+DURATION")]
    unauthorized: Vec<Window>,

    /// Share of new idempotency keys answered 422 (remembered with the key).
    #[arg(long, value_parser = parse_rate, default_value = "0", value_name = "RATE")]
    reject_rate: f64,

    /// Answer 422 for any ticket whose title contains TEXT.
    #[arg(long, value_name = "TEXT")]
    reject_title_contains: Option<String>,

    /// Report what happens to each accepted ticket with signed status
    /// callbacks to the hub's listener at URL (e.g. http://127.0.0.1:9400).
    #[arg(long, value_name = "URL", requires = "callback_secret")]
    callbacks_to: Option<String>,

    /// The secret callbacks are signed with (the hub's HUB_PLATFORM_SECRET).
    #[arg(long, env = "PLATFORM_CALLBACK_SECRET", hide_env_values = true, value_name = "SECRET")]
    callback_secret: Option<String>,
}

impl Args {
    fn faults(&self) -> Faults {
        Faults {
            error_rate: self.error_rate,
            latency_ms: millis(self.latency),
            slow_rate: self.slow_rate,
            slow_ms: millis(self.slow),
            throttle_rate: self.throttle_rate,
            retry_after_secs: self.retry_after.as_secs().max(1),
            retry_after_http_date: self.retry_after_http_date,
            outages: self.outage.clone(),
            unauthorized: self.unauthorized.clone(),
            reject_rate: self.reject_rate,
            reject_title_contains: self.reject_title_contains.clone(),
            ..Faults::default()
        }
    }
}

fn summary(s: &Stats) -> String {
    format!(
        "requests={} applied={} created={} tickets={} duplicate_keys={} stale={} gaps={} rejected={} \
         unauthorized={} throttled={} errors={} outage={}",
        s.requests,
        s.applied,
        s.created,
        s.tickets,
        s.duplicate_keys,
        s.stale_revisions,
        s.revision_gaps,
        s.rejected,
        s.unauthorized,
        s.throttled,
        s.injected_errors,
        s.outage_answers,
    )
}

/// Resolves on Ctrl-C (and SIGTERM on Unix, for containers and scripts).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let args = Args::parse();
    let faults = args.faults();
    let sim = PlatformSim::new(SimConfig { token: args.token.clone(), faults: faults.clone() });
    let server = sim.bind(&args.listen).await?;
    tracing::info!(url = %server.base_url(), ?faults, "platform simulator listening");
    let callbacks = match (&args.callbacks_to, &args.callback_secret) {
        (Some(to), Some(secret)) => {
            tracing::info!(to = %to, "status callbacks on");
            Some(sim.send_callbacks(CallbackConfig::new(to.clone(), secret.clone()))?)
        }
        _ => None,
    };

    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await; // the first tick is immediate
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tick.tick() => tracing::info!("{}", summary(&sim.stats())),
        }
    }

    if let Some(callbacks) = callbacks {
        let (stats, _) = callbacks.finish(Duration::from_secs(5)).await;
        println!("{}", serde_json::to_string_pretty(&stats)?);
    }
    server.stop().await;
    println!("{}", serde_json::to_string_pretty(&sim.stats())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_map_onto_faults() {
        let args = Args::try_parse_from([
            "platform-sim",
            "--error-rate",
            "0.05",
            "--latency",
            "20ms",
            "--slow-rate",
            "0.01",
            "--slow",
            "3s",
            "--throttle-rate",
            "0.02",
            "--retry-after",
            "2s",
            "--retry-after-http-date",
            "--outage",
            "10s+30s",
            "--outage",
            "2m+1s",
            "--unauthorized",
            "5s+10s",
            "--reject-rate",
            "0.01",
            "--reject-title-contains",
            "测试",
        ])
        .unwrap();
        let f = args.faults();
        assert_eq!((f.error_rate, f.latency_ms, f.slow_rate, f.slow_ms), (0.05, 20, 0.01, 3000));
        assert_eq!((f.throttle_rate, f.retry_after_secs, f.retry_after_http_date), (0.02, 2, true));
        assert_eq!(
            f.outages,
            vec![Window { start_ms: 10_000, duration_ms: 30_000 }, Window { start_ms: 120_000, duration_ms: 1_000 }]
        );
        assert_eq!(f.unauthorized, vec![Window { start_ms: 5_000, duration_ms: 10_000 }]);
        assert_eq!((f.reject_rate, f.reject_title_contains.as_deref()), (0.01, Some("测试")));

        let defaults = Args::try_parse_from(["platform-sim"]).unwrap();
        assert_eq!(defaults.listen, "127.0.0.1:8080");
        assert_eq!(defaults.faults().retry_after_secs, 1);
        assert!(Args::try_parse_from(["platform-sim", "--error-rate", "2"]).is_err());
        let to = ["platform-sim", "--callbacks-to", "http://127.0.0.1:9400"];
        assert!(
            Args::try_parse_from(to).is_err() || std::env::var("PLATFORM_CALLBACK_SECRET").is_ok(),
            "a secret is needed"
        );
        let with = Args::try_parse_from([&to[..], &["--callback-secret", "s"]].concat()).unwrap();
        assert_eq!(with.callbacks_to.as_deref(), Some("http://127.0.0.1:9400"));
    }
}
