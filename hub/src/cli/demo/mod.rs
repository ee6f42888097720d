//! `hub demo`: the whole system on one machine. The hub runs on an embedded
//! SQLite file and an embedded MQTT broker with the shipped mappings; the
//! agency simulators send realistic records (and some bad ones) through
//! their real transports; the platform simulator answers with faults and
//! reports what happens to the tickets with signed callbacks, which the
//! hub carries back to every agency that brought the matter in. It ends
//! with a per-source summary and a reconciliation that accounts for every
//! record sent and every status change told back, and exits non-zero if
//! that fails.

mod agencies;
mod loopback;
mod report;
mod told;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use hub::config::Settings;
use simulators::platform::{Faults, PlatformSim, SimConfig, Window};

use agencies::{Load, RunNames};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How long the agencies send (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Records per second each agency sends.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Share of bad input (malformed, missing fields, impossible dates…) each agency sends.
    #[arg(long, default_value_t = 0.03)]
    bad_share: f64,
    /// The SQLite file to keep (default: a fresh file in a temporary directory, removed afterwards).
    #[arg(long, value_name = "FILE")]
    db: Option<std::path::PathBuf>,
    /// No injected faults: no platform errors, throttling or outage, no dropped terminal links.
    #[arg(long)]
    no_faults: bool,
    /// RabbitMQ for the hotline and petition agencies.
    #[arg(long, env = "HUB_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", hide_env_values = true)]
    amqp_url: String,
}

const TOKEN: &str = "demo-token";
/// The demo platform signs its callbacks with this.
const SECRET: &str = "demo-callback-secret";

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.rate > 0.0 && args.rate <= 5000.0, "--rate must be between 0 and 5000 records a second");
    anyhow::ensure!((0.0..=1.0).contains(&args.bad_share), "--bad-share must be between 0 and 1");
    let dir = std::env::temp_dir().join(format!("hub-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = args.db.clone().unwrap_or_else(|| dir.join("hub.db"));
    let names = RunNames::new();
    let faults = !args.no_faults;

    // The platform.
    let total_ms = args.duration.as_millis() as u64;
    let platform_faults = if faults {
        Faults {
            error_rate: 0.03,
            throttle_rate: 0.01,
            retry_after_secs: 1,
            latency_ms: 2,
            outages: vec![Window { start_ms: total_ms * 2 / 5, duration_ms: (total_ms / 8).max(2000) }],
            ..Faults::default()
        }
    } else {
        Faults::default()
    };
    let sim = PlatformSim::new(SimConfig { token: TOKEN.into(), faults: platform_faults.clone() });
    let server = sim.bind("127.0.0.1:0").await.context("cannot start the platform simulator")?;
    // The hub's listener, where the platform's callbacks go.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot find a free port for the hub's listener")?;

    // The transports: the embedded broker, RabbitMQ if it answers, the court's feed.
    let broker = tokio::task::spawn_blocking(|| connectors::mqtt::EmbeddedBroker::start_on_free_port(1883))
        .await
        .context("the embedded broker's start panicked")?
        .context("cannot start the embedded MQTT broker")?;
    let rabbit = agencies::rabbitmq_answers(&args.amqp_url).await;
    let court = agencies::court_feed(faults).await?;

    let mappings = loopback::write_mappings(&dir, &names)?;
    let amqp_url = rabbit.then_some(args.amqp_url.as_str());
    // A viewer's token for this run only, so that a person can watch it on the screen.
    let screen_token = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let mut settings = demo_settings(&names, amqp_url, &broker.url(), &court, &server, &db, listen, &mappings)?;
    settings.api_tokens.add_plain_list(&format!("viewer:{screen_token}")).map_err(|e| anyhow::anyhow!(e))?;
    // The agencies listen on their back-channels before the hub can tell them anything.
    let ears = loopback::listen(amqp_url, &broker.url(), &names, faults).await?;
    let hub = hub::Hub::start(settings).await.context("the hub could not start")?;

    println!("hub demo: {} at {}/s per agency", humantime::format_duration(args.duration), args.rate);
    println!("  store      {}", db.display());
    println!("  platform   simulator at {}", server.base_url());
    // The embedded broker's listener at this URL speaks 3.1.1 (see demo_settings).
    println!("  terminals  embedded MQTT broker at {} (MQTT 3.1.1)", broker.url());
    println!("  court      feed simulator at {} ({})", court.base_url(), agencies::COURT);
    println!(
        "  callbacks  the platform reports to the hub at http://{listen}; every agency listens for its status messages"
    );
    println!("  screen     http://{listen}/#token={screen_token}  (the centre's live dashboard, while the demo runs)");
    if rabbit {
        println!("  hotline, petition  RabbitMQ ({}), exchanges {}.*", redact(&args.amqp_url), names.prefix);
    } else {
        println!(
            "  hotline, petition  LEFT OUT: RabbitMQ does not answer at {} (start it, or set HUB_AMQP_URL)",
            redact(&args.amqp_url)
        );
    }
    if faults {
        println!(
            "  faults     platform: 3% errors, 1% throttled, one {} s outage; court feed: 5% 429, 2% 503; terminals drop links",
            platform_faults.outages[0].duration_ms / 1000
        );
    }
    if rabbit {
        for source in ["hotline", "petition"] {
            agencies::wait_for_queue(&args.amqp_url, &names.queue(source)).await?;
        }
    }
    // The terminal connector's persistent session must exist before the
    // fleet publishes, or the broker has nobody to keep messages for.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let callback_config = loopback::callback_config(listen, SECRET, faults);
    let forged = callback_config.forge_one;
    let callbacks = sim.send_callbacks(callback_config)?;
    let load = Load { rate: args.rate, duration: args.duration, bad_share: args.bad_share, faults };
    let started = Instant::now();
    let court_outcomes = court.clone();
    let running = agencies::start(amqp_url, &broker.url(), &names, court, &load);
    let mut next_progress = Instant::now() + Duration::from_secs(2);
    while !running.finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(3);
            report::progress(&hub, &sim, &callbacks.stats(), started).await;
        }
    }
    let sent = running.join().await?;
    println!("agencies done after {:.0?}; waiting for the hub to store and deliver everything…", started.elapsed());
    sim.set_faults(Faults::default());
    // The tickets under way go on to their closure (a second round after a frown).
    let (callback_stats, applied) = callbacks.finish(Duration::from_secs(60)).await;

    // Wait until the hub has every record and the platform every change.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = hub.store.source_counts().await?;
        let expected = report::expected(&sent);
        let received = expected.iter().all(|(source, n)| counts.get(*source).map_or(0, |c| c.received) >= *n as i64);
        let queues_empty = if rabbit {
            let mut empty = true;
            for source in ["hotline", "petition"] {
                empty &= agencies::queue_depth(&args.amqp_url, &names.queue(source)).await == Some(0);
            }
            empty
        } else {
            true
        };
        let told_all = hub.store.feedback_depths().await?.iter().all(|(_, n)| *n == 0);
        if (received && queues_empty && told_all && hub.store.outbox_depth().await? == 0) || Instant::now() >= deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(3);
            report::progress(&hub, &sim, &callback_stats, started).await;
        }
    }
    // What the brokers took is on its way to the listeners: a grace period.
    ears.settle(Duration::from_secs(10)).await;
    let metrics = hub.metrics.clone();
    hub.shutdown().await;
    let heard = ears.stop().await;
    if rabbit {
        agencies::clean_up(&args.amqp_url, &names).await;
    }
    // Read the outcome from the file itself, after a clean shutdown.
    let store = hub::store::Store::open(&format!("sqlite://{}", db.display())).await?;
    let mut ok = report::summary(&store, &sim, &metrics, &sent).await?;
    let told = told::read(&store).await?;
    let court_stats = court_outcomes.stats();
    let back = told::Back {
        told: &told,
        heard: &heard,
        court: &court_stats,
        callbacks: &callback_stats,
        applied: &applied,
        sim: &sim,
        forged,
    };
    ok &= report::way_back(&back);
    store.close().await;
    server.stop().await;
    if args.db.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = metrics.delivered.load(Ordering::Relaxed);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The demo's configuration, written as a user would write it: the shipped
/// mappings (the AMQP agencies' as copies whose feedback exchanges carry
/// the run's prefix), the contract's names under a per-run prefix, and
/// the listener the platform's callbacks come to.
#[allow(clippy::too_many_arguments)]
fn demo_settings(
    names: &RunNames,
    amqp_url: Option<&str>,
    mqtt_url: &str,
    court: &simulators::agencies::court::CourtFeedServer,
    platform: &simulators::platform::ServerHandle,
    db: &std::path::Path,
    listen: std::net::SocketAddr,
    mappings: &std::path::Path,
) -> anyhow::Result<Settings> {
    use simulators::agencies::amqp::Agency;
    let mut text = format!(
        "[store]\nurl = \"sqlite://{}\"\n\n[platform]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\nsecrets = [\"{SECRET}\"]\n\n[delivery]\npause_max = \"2s\"\nretry_max = \"5s\"\n\n[server]\nlisten = \"{listen}\"\n",
        db.display(),
        platform.base_url()
    );
    if let Some(url) = amqp_url {
        for (source, agency) in [("hotline", Agency::Hotline), ("petition", Agency::Petition)] {
            // The run's copy of the mapping: its feedback exchange carries the run's prefix.
            let mapping = mappings.join(format!("{source}.toml"));
            text.push_str(&format!(
                "\n[[sources]]\nname = \"{source}\"\nmapping = \"{}\"\ntransport = \"amqp\"\nurl = \"{url}\"\nexchange = \"{}\"\nqueue = \"{}\"\n",
                mapping.display(),
                names.exchange(agency),
                names.queue(source),
            ));
        }
    }
    // `mqtt_url` is the embedded broker's MQTT 3.1.1 listener.
    text.push_str(&format!(
        "\n[[sources]]\nname = \"terminal\"\nmapping = \"builtin:terminal\"\ntransport = \"mqtt\"\nurl = \"{mqtt_url}\"\nprotocol = \"3.1.1\"\nclient_id = \"{}-hub\"\n",
        names.prefix
    ));
    text.push_str(&format!(
        "\n[[sources]]\nname = \"court\"\nmapping = \"builtin:court\"\ntransport = \"court_feed\"\nurl = \"{}\"\ncourt = \"{}\"\npoll_interval = \"500ms\"\n",
        court.base_url(),
        agencies::COURT
    ));
    let no_env: [(&str, &str); 0] = [];
    Settings::parse(&text, "(demo configuration)", &no_env)
        .map_err(|e| anyhow::anyhow!("the demo's configuration:\n{e}"))
}

/// An AMQP URL without its password, for printing.
fn redact(url: &str) -> String {
    super::redact_url(url)
}
