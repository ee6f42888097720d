//! The connectors' benchmarks (`cargo bench -p benches --bench connectors`):
//! records from a real broker through an in-process hub to the platform,
//! each figure beside two baselines consuming the same broker, measured in
//! the same run:
//!
//! - the *durable baseline*, the least work any bridge that loses nothing
//!   must do per record: commit the raw message to a local SQLite file
//!   (WAL, `synchronous=FULL`, as the hub's store; one row per message in a
//!   table with a UNIQUE message id, `INSERT … ON CONFLICT DO NOTHING`, one
//!   transaction per batch of what is at hand), map it with the shipped
//!   mapping and PUT one canonical ticket per message to the platform
//!   simulator (32 in flight, one keep-alive client; each message its own
//!   ticket at revision 1, its id derived from the message's unique id; a
//!   non-2xx answer is counted as not accepted), and acknowledge at the
//!   broker only once the batch is safe. It links no versions, detects no duplicates, keeps no
//!   outbox and retries nothing, so it is a floor, not a rival design;
//!   **hub / durable baseline** is the headline ratio;
//! - the *bare consumer*, which acknowledges without storing or sending
//!   anything: what the broker and the client library alone allow.
//!
//! Each throughput phase also reports the CPU this process spent per record
//! (getrusage deltas around the phase, every thread: the platform
//! simulator, and for MQTT the publishing client, run in this process too,
//! for every consumer alike) and the process's peak RSS during the phase
//! (`VmHWM`, reset through `/proc/self/clear_refs` at the phase's start; it
//! counts whatever earlier phases left allocated, so it is an upper bound
//! for the later phases). The process asks for small pages from its start
//! ([`hub::prefer_small_pages`], as the hub does), for every consumer alike.
//!
//! 1. AMQP (RabbitMQ) → platform: `BENCH_N` (default 20000) hotline work
//!    orders, as the hotline's CTI publishes them, published with publisher
//!    confirms before any consumer starts, into three queues bound to the
//!    same exchange (so they hold the same messages): the hub's, the bare
//!    consumer's and the durable baseline's. Records/s from the consumer's
//!    start (for the hub: store opened, connector connected) until the
//!    platform simulator has applied every change (hub) or every message is
//!    PUT and acknowledged (durable baseline) or acknowledged (bare). All
//!    three use the connector's prefetch (256). The bare lapin consumer
//!    acknowledges every 64 (`multiple`); the durable baseline takes the
//!    deliveries at hand (at least one, at most the prefetch, without
//!    waiting for more), commits them, PUTs their tickets, then
//!    acknowledges the batch (`multiple`, on its last delivery tag).
//! 2. MQTT (Mosquitto) → platform: `BENCH_N` grid-terminal reports published
//!    QoS 1 once the consumer is subscribed (the hub's persistent session
//!    made first); records/s from the first publish until the platform
//!    simulator has applied every change (hub), every report is PUT and
//!    acknowledged (durable baseline) or received (bare). Both baselines
//!    are rumqttc clients with a persistent session at QoS 1: the bare one
//!    PUBACKs automatically, the durable one acknowledges by hand
//!    (`set_manual_acks`), each report once the batch holding it (the
//!    publishes at hand) is committed, then PUTs the batch's tickets.
//! 3. Latency at a steady `BENCH_LATENCY_RATE` (default 1000) records/s for
//!    `BENCH_LATENCY_SECS` (default 20), both brokers: publish → the platform
//!    receiving the change. The platform is a bare HTTP server in this file
//!    that notes when each PUT arrives and answers 200. Baseline: publish →
//!    a bare consumer receiving the message (the durable baseline is not
//!    timed here). A hotline order whose later version overtook it in the
//!    hub is stored as `stale` and never sent: it is counted as superseded,
//!    not timed.
//!
//! Mosquitto keeps at most `max_queued_messages` (1000 by default) QoS 1
//! messages for a subscriber beyond those in flight and drops the rest, so
//! the MQTT publishers keep at most `BENCH_MQTT_WINDOW` (default 500)
//! messages published but not yet taken by the consumer (the hub's commits,
//! the durable baseline's PUBACKs, or the bare consumer's receipts): far
//! as much as the hub has in flight (it speaks MQTT 5 and takes 256 at a
//! time). The durable baseline's rumqttc client (MQTT 3.1.1), which
//! acknowledges by hand, was sent up to ~490 unacknowledged at once by
//! Mosquitto 2.0.11: its batches are bounded by the window. One client
//! publishes (`BENCH_MQTT_PUBLISHERS`): with two or more publishing at full
//! speed, the Mosquitto 2.0.11 of the development machine dropped messages
//! for the subscriber with only 100–200 outstanding; one client publishes
//! faster than any consumer takes them.
//!
//! The reports go to `bench/{run}/{phase}/grid/{county}/{workerId}/report`,
//! so that no other subscriber of `grid/…` (a hub's persistent session left
//! by a test, say) gets and keeps them. The connector then puts only the
//! topic in a record's metadata, not county, worker and kind as it does for
//! `grid/…`; the terminal mapping takes the kind from the payload and the
//! region from `gridId`, so the tickets are the same.
//!
//! `BENCH_PHASES` (default `amqp,mqtt,latency`) runs only the phases
//! named: a profile of one broker's path, say.
//!
//! `BENCH_DEDUP=off` runs the hub without duplicate detection (what
//! detection costs, beside the same baselines).
//!
//! Brokers: `BENCH_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! and `BENCH_MQTT_URL` (default `mqtt://127.0.0.1:1883`). Every exchange,
//! queue, topic and client id carries this run's own suffix; the queues,
//! exchanges and persistent sessions are removed at the end.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use benches::{Meter, Usage, header, header3, rate, row, row3};
use connectors::amqp::{AmqpConfig, AmqpConnector};
use connectors::mqtt::{MqttConfig, MqttConnector};
use connectors::{BoxedConnector, ContentType, RawRecord};
use e2e::TestDb;
use futures::{FutureExt, StreamExt};
use hub::Hub;
use hub::config::Settings;
use hub::mapping::{DeclarativeMapper, Mapper, Mappings};
use hub::metrics::Metrics;
use hub::ticket::{Source, Ticket, beijing};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, BasicProperties, Channel, Connection, ConnectionProperties, PublisherConfirm};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use sha2::{Digest, Sha256};
use simulators::agencies::amqp::{Agency, AmqpMessage, Plan};
use simulators::agencies::content::{Matter, Rng};
use simulators::agencies::terminal::{self, Worker, parse_mqtt_url};
use simulators::platform::{PlatformSim, SimConfig};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _};
use tokio::task::JoinHandle;

const TOKEN: &str = "bench-token";
/// Published but not yet taken by the MQTT consumer, at most (see the module doc).
const MQTT_WINDOW: usize = 500;
/// The bare AMQP consumer acknowledges every this many deliveries at once.
const ACK_EVERY: usize = 64;
/// A phase that makes no progress for this long has lost what it waits for.
const STALL: Duration = Duration::from_secs(15);
/// Said when records are lost: the likeliest cause.
const LOST_HINT: &str = "did Mosquitto drop messages? (grep 'being dropped' /var/log/mosquitto/mosquitto.log)";

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// A progress line on stderr, with the time since the bench started.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("[{:6.1}s] {}", STARTED.get_or_init(Instant::now).elapsed().as_secs_f64(), format!($($arg)*))
    };
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_string(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

/// What every phase needs to know.
struct Bench {
    amqp_url: String,
    mqtt_url: String,
    mqtt_host: String,
    mqtt_port: u16,
    /// Unique to this run (process id and time), in every name the brokers see.
    run: String,
    n: usize,
    latency_rate: usize,
    latency_secs: usize,
    mqtt_window: u64,
    mqtt_publishers: usize,
    /// `BENCH_PHASES`: which of `amqp`, `mqtt`, `latency` to run.
    phases: Vec<String>,
}

impl Bench {
    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }

    fn latency_records(&self) -> usize {
        self.latency_rate * self.latency_secs
    }
}

fn main() {
    // As the hub does when it starts: every consumer of the run alike.
    hub::prefer_small_pages();
    let mqtt_url = env_string("BENCH_MQTT_URL", "mqtt://127.0.0.1:1883");
    let (mqtt_host, mqtt_port) = parse_mqtt_url(&mqtt_url).expect("BENCH_MQTT_URL");
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let b = Bench {
        amqp_url: env_string("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        mqtt_url,
        mqtt_host,
        mqtt_port,
        run: format!("{:x}{:x}", std::process::id(), millis % 0x1_0000_0000),
        n: env_usize("BENCH_N", 20_000).max(1),
        latency_rate: env_usize("BENCH_LATENCY_RATE", 1000).max(1),
        latency_secs: env_usize("BENCH_LATENCY_SECS", 20).max(1),
        mqtt_window: env_usize("BENCH_MQTT_WINDOW", MQTT_WINDOW).max(1) as u64,
        mqtt_publishers: env_usize("BENCH_MQTT_PUBLISHERS", 1).max(1),
        phases: env_string("BENCH_PHASES", "amqp,mqtt,latency").split(',').map(|p| p.trim().to_string()).collect(),
    };
    if let Some(unknown) = b.phases.iter().find(|p| !["amqp", "mqtt", "latency"].contains(&p.as_str())) {
        eprintln!("BENCH_PHASES: unknown phase {unknown:?}; the phases are amqp, mqtt and latency");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let load_before = loadavg();
    rt.block_on(async {
        say!("connectors bench: run {}, N = {}", b.run, b.n);
        let amqp = if b.runs("amqp") { Some(amqp_throughput(&b).await) } else { None };
        let mqtt = if b.runs("mqtt") { Some(mqtt_throughput(&b).await) } else { None };
        let latency = if b.runs("latency") {
            let amqp = (amqp_latency_hub(&b).await, amqp_latency_bare(&b).await);
            let mqtt = (mqtt_latency_hub(&b).await, mqtt_latency_bare(&b).await);
            Some((amqp, mqtt))
        } else {
            None
        };
        say!("done");

        let n = b.n;
        if let Some(amqp) = amqp {
            header3(
                &format!("AMQP (RabbitMQ) → platform: {n} hotline orders waiting in the queue, prefetch {}", amqp.prefetch),
                ["durable baseline", "bare consumer"],
            );
            throughput_rows(
                &amqp,
                "durable: lapin, batch = deliveries at hand, SQLite commit, a PUT each (32 in flight), one ack (multiple)",
                "bare: lapin, same prefetch, stores nothing, acks every 64 (multiple)",
            );
            println!("\nPublishing the orders (with confirms, before any consumer started) took {:.2?}.", amqp.publish);
        }
        if let Some(mqtt) = mqtt {
            header3(
                &format!(
                    "MQTT (Mosquitto) → platform: {n} terminal reports, QoS 1, {} publishing client(s), window {}",
                    b.mqtt_publishers, b.mqtt_window
                ),
                ["durable baseline", "bare consumer"],
            );
            throughput_rows(
                &mqtt,
                "durable: rumqttc, manual PUBACK after the SQLite commit, then a PUT each (32 in flight)",
                "bare: rumqttc, automatic PUBACK, stores nothing",
            );
            println!("\nTimed from the first publish (each consumer connected and subscribed before).");
        }
        if let Some(((amqp_hub, amqp_bare), (mqtt_hub, mqtt_bare))) = latency {
            header(&format!(
                "Latency at {} records/s for {} s: publish → platform received (baseline: → bare consumer received)",
                b.latency_rate, b.latency_secs
            ));
            latency_rows("AMQP", &amqp_hub, &amqp_bare);
            latency_rows("MQTT", &mqtt_hub, &mqtt_bare);
        }
    });
    println!(
        "\nLoad average (1 min) before: {load_before}, after: {}. Hub and baselines run one after the other:\n\
         other work on the machine moves them apart.",
        loadavg()
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or("?".into())
}

// ---------------------------------------------------------------------------
// Results and the table

/// One throughput phase: how long it took, how many records arrived, what
/// it cost this process (CPU of every thread, peak RSS).
struct Phase {
    wall: Duration,
    /// Records that arrived, of `n`; the rates count these.
    arrived: usize,
    usage: Usage,
}

impl Phase {
    fn rate(&self) -> f64 {
        rate(self.arrived, self.wall)
    }
}

struct Throughput {
    n: usize,
    prefetch: u16,
    hub: Phase,
    durable: Phase,
    bare: Phase,
    /// The hub's records committed and changes they made for the platform.
    records: u64,
    changes: u64,
    publish: Duration,
    /// The hub's intake commits (group commits) for these records.
    batches: u64,
    sink: SinkCounts,
    /// The hub's store writer: (transactions, seconds held) by intake, by
    /// delivery and by the statistics' counting.
    writer: [(u64, f64); 3],
}

/// (transactions, seconds held) of the hub's store writer by intake, by
/// delivery and by the statistics' counting so far.
fn writer_use(hub: &Hub) -> [(u64, f64); 3] {
    use hub::store::Writer;
    [Writer::Intake, Writer::Delivery, Writer::Figures].map(|w| {
        let (n, _, held) = hub.store.writer_use().of(w);
        (n, held)
    })
}

fn throughput_rows(t: &Throughput, durable: &str, bare: &str) {
    let (hub, dur, bare_rate) = (t.hub.rate(), t.durable.rate(), t.bare.rate());
    let per_s = |r: f64| format!("{r:.0}/s");
    let pct = |r: f64| format!("{:.0}%", 100.0 * r);
    let phases = [&t.hub, &t.durable, &t.bare];
    row3("records/s broker → platform-acknowledged", [per_s(hub), per_s(dur), per_s(bare_rate)], "");
    row3("hub / durable baseline", [pct(hub / dur), "100%".into(), "-".into()], &format!("headline; {durable}"));
    row3("hub / bare consumer", [pct(hub / bare_rate), "-".into(), "100%".into()], &format!("target ≥ 50%; {bare}"));
    row3("wall time", phases.map(|p| format!("{:.2?}", p.wall)), "");
    row3(
        "CPU per record (this process, every thread)",
        phases.map(|p| format!("{:.3} ms", p.usage.cpu_ms_per(p.arrived))),
        "getrusage deltas; the platform simulator (and the MQTT publisher) run in this process too",
    );
    row3(
        "peak RSS during the phase (this process)",
        phases.map(|p| p.usage.peak_rss_mib.map_or("?".into(), |m| format!("{m:.0} MiB"))),
        "VmHWM reset at the phase's start; what earlier phases left allocated counts too",
    );
    row3(
        "records per commit (average)",
        [
            format!("{:.1}", t.records as f64 / t.batches.max(1) as f64),
            format!("{:.1}", t.durable.arrived as f64 / t.sink.commits.max(1) as f64),
            "-".into(),
        ],
        &format!(
            "{} hub intake commits; {} durable baseline commits, the largest of {}",
            t.batches, t.sink.commits, t.sink.largest
        ),
    );
    row3(
        "records stored / changes the platform applied",
        [format!("{} / {}", t.records, t.changes), format!("{} / {}", t.sink.stored, t.sink.applied), "-".into()],
        "hub: a record overtaken by a later version (stale) makes no change; durable baseline: a ticket per message",
    );
    row3(
        "PUTs not accepted (unmappable, non-2xx)",
        ["-".into(), t.sink.refused.to_string(), "-".into()],
        &format!("{} accepted", t.sink.accepted),
    );
    let [(intake_tx, intake_s), (delivery_tx, delivery_s), (figures_tx, figures_s)] = t.writer;
    let wall = t.hub.wall.as_secs_f64().max(1e-9);
    let share = |s: f64| format!("{:.0}%", 100.0 * s / wall);
    row3(
        "hub's store writer held: intake + delivery + figures",
        [format!("{} + {} + {}", share(intake_s), share(delivery_s), share(figures_s)), "-".into(), "-".into()],
        &format!(
            "of the wall time; {intake_tx} intake, {delivery_tx} delivery and {figures_tx} counting transactions (SQLite: one writer at a time)"
        ),
    );
    let lost = phases.map(|p| t.n.saturating_sub(p.arrived));
    if lost != [0, 0, 0] {
        row3("LOST: never arrived", lost.map(|l| l.to_string()), "rates count what arrived; see stderr");
    }
}

struct Latencies {
    sent: usize,
    /// Never arrived, though no later version of the record did either.
    missing: usize,
    /// Never arrived because a later version of the record overtook it.
    superseded: usize,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
}

/// `{recordId}:{version}` → (record id, version).
fn split_key(key: &str) -> (&str, i64) {
    key.rsplit_once(':').map(|(id, v)| (id, v.parse().unwrap_or(0))).unwrap_or((key, 0))
}

/// Latency of each sent `{recordId}:{version}` to its first arrival.
fn latencies(sent: &[(String, Instant)], arrived: &[(String, Instant)]) -> Latencies {
    let mut first: HashMap<&str, Instant> = HashMap::with_capacity(arrived.len());
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for (key, at) in arrived {
        first.entry(key.as_str()).or_insert(*at);
        let (id, version) = split_key(key);
        let v = newest.entry(id).or_insert(version);
        *v = (*v).max(version);
    }
    let (mut lat, mut superseded) = (Vec::with_capacity(sent.len()), 0);
    for (key, t) in sent {
        match first.get(key.as_str()) {
            Some(at) => lat.push(at.saturating_duration_since(*t)),
            None => {
                let (id, version) = split_key(key);
                if newest.get(id).is_some_and(|v| *v > version) {
                    superseded += 1;
                }
            }
        }
    }
    lat.sort_unstable();
    let q = |p: f64| {
        if lat.is_empty() {
            return Duration::ZERO;
        }
        lat[((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1]
    };
    Latencies {
        sent: sent.len(),
        missing: sent.len() - lat.len() - superseded,
        superseded,
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        max: lat.last().copied().unwrap_or_default(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn latency_rows(broker: &str, hub: &Latencies, bare: &Latencies) {
    row(&format!("{broker} p50"), ms(hub.p50), ms(bare.p50), "");
    row(&format!("{broker} p95"), ms(hub.p95), ms(bare.p95), "");
    row(&format!("{broker} p99"), ms(hub.p99), ms(bare.p99), "target p99 < 20 ms");
    row(&format!("{broker} max"), ms(hub.max), ms(bare.max), "");
    let timed = |l: &Latencies| {
        let mut t = format!("{}", l.sent - l.missing - l.superseded);
        if l.missing > 0 {
            t += &format!(", {} LOST", l.missing);
        }
        t
    };
    let note = if hub.superseded > 0 {
        format!("of {}; {} superseded: a later version overtook them, stored as stale", hub.sent, hub.superseded)
    } else {
        format!("of {}", hub.sent)
    };
    row(&format!("{broker} records timed"), timed(hub), timed(bare), &note);
}

// ---------------------------------------------------------------------------
// The hub

fn settings(db_url: &str, platform_url: &str) -> Settings {
    let mut s = Settings::defaults(&[("HUB_PLATFORM_URL", platform_url), ("HUB_PLATFORM_TOKEN", TOKEN)])
        .expect("default settings");
    s.database_url = db_url.to_string();
    // `BENCH_DEDUP=off` measures the hub without duplicate detection.
    if env_string("BENCH_DEDUP", "on") == "off" {
        s.intake.dedup.enabled = false;
    }
    s
}

fn mapping(file: &str) -> Arc<DeclarativeMapper> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings").join(file);
    Arc::new(DeclarativeMapper::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

async fn start_hub(db: &TestDb, platform_url: &str, system: &str, mapping_file: &str, c: BoxedConnector) -> Hub {
    let mut mappings = Mappings::new();
    mappings.insert(system, mapping(mapping_file));
    Hub::start_with(settings(&db.url, platform_url), mappings, vec![c]).await.expect("the hub starts")
}

/// (records committed, changes they made for the platform) of `system`.
fn committed(metrics: &Metrics, system: &str) -> (u64, u64) {
    let (mut records, mut changes) = (0, 0);
    for ((s, outcome), n) in metrics.records() {
        if s == system {
            records += n;
            // Anything but these makes a revision for the platform.
            if !matches!(outcome, "duplicate" | "stale" | "quarantined") {
                changes += n;
            }
        }
    }
    (records, changes)
}

/// How a wait ended: everything there, or no progress for [`STALL`]; and when
/// the last progress was seen.
struct Settled {
    complete: bool,
    at: Instant,
}

impl Settled {
    fn expect(self, what: &str) -> Settled {
        assert!(self.complete, "{what}: no progress for {STALL:?}");
        self
    }
}

/// Waits until nothing is `left()`, giving up after [`STALL`] without progress.
async fn settle(what: &str, left: impl Fn() -> u64) -> Settled {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let l = left();
        if l != last.0 {
            last = (l, Instant::now());
        }
        if l == 0 {
            return Settled { complete: true, at: last.1 };
        }
        if last.1.elapsed() >= STALL {
            say!("{what}: {l} still missing after no progress for {STALL:?}; {LOST_HINT}");
            return Settled { complete: false, at: last.1 };
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until the hub has committed `records` records of `system` and the
/// platform (`applied`) has every change they made.
async fn until_applied(hub: &Hub, system: &str, records: u64, applied: impl Fn() -> u64, what: &str) -> Settled {
    settle(what, || {
        let (got, changes) = committed(&hub.metrics, system);
        records.saturating_sub(got) + changes.saturating_sub(applied())
    })
    .await
}

async fn wait_count(count: &AtomicU64, target: u64, what: &str) -> Settled {
    settle(what, || target.saturating_sub(count.load(Ordering::Relaxed))).await
}

/// What arrived (a PUT's body, an MQTT payload) and when.
type Arrivals = Arc<Mutex<Vec<(Instant, Bytes)>>>;

/// A platform that notes when each PUT arrives and answers 200 at once.
struct RecordingPlatform {
    url: String,
    arrivals: Arrivals,
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RecordingPlatform {
    async fn start() -> RecordingPlatform {
        async fn put(State(arrivals): State<Arrivals>, body: Bytes) -> StatusCode {
            let at = Instant::now();
            arrivals.lock().unwrap().push((at, body));
            StatusCode::OK
        }
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let app =
            axum::Router::new().route("/api/v1/tickets/{id}", axum::routing::put(put)).with_state(arrivals.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        RecordingPlatform { url, arrivals, stop, task }
    }

    fn count(&self) -> u64 {
        self.arrivals.lock().unwrap().len() as u64
    }

    /// Stops; returns each change's `{recordId}:{version}` keys with its arrival.
    async fn finish(self) -> Vec<(String, Instant)> {
        let _ = self.stop.send(());
        let _ = self.task.await;
        let arrivals = std::mem::take(&mut *self.arrivals.lock().unwrap());
        let mut keys = Vec::with_capacity(arrivals.len());
        for (at, body) in arrivals {
            let ticket: serde_json::Value = serde_json::from_slice(&body).expect("a JSON ticket");
            for source in ticket["sources"].as_array().into_iter().flatten() {
                keys.push((format!("{}:{}", source["recordId"].as_str().unwrap_or_default(), source["version"]), at));
            }
        }
        keys
    }
}

// ---------------------------------------------------------------------------
// AMQP

/// The hotline's messages in the order its CTI publishes them: later
/// versions a few messages after the first, no resends, no bad input.
fn hotline_messages(seed: u64, n: usize) -> Vec<AmqpMessage> {
    let mut plan = Plan::new(Agency::Hotline, seed, 0.0, 0.0);
    (0..n).map(|_| plan.next_message()).collect()
}

fn amqp_config(b: &Bench, system: &str, exchange: &str, queue: &str) -> AmqpConfig {
    let mut c = AmqpConfig::new(&b.amqp_url, system, exchange, queue).with_binding_keys(["order.#"]);
    c.connection_name = format!("bench-{system}-{}", b.run);
    c
}

async fn amqp_channel(b: &Bench) -> (Connection, Channel) {
    let conn = Connection::connect(&b.amqp_url, ConnectionProperties::default()).await.expect("connect to RabbitMQ");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// A consumer of `queue` with manual acks and the given prefetch, on a
/// connection of its own.
async fn amqp_consumer(b: &Bench, queue: &str, prefetch: u16) -> (Connection, Channel, lapin::Consumer) {
    let (conn, ch) = amqp_channel(b).await;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await.expect("qos");
    let consumer = ch
        .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    (conn, ch, consumer)
}

/// The agency's exchange and the queue exactly as the AMQP connector declares
/// them, so that messages can wait in the queue before the hub starts.
async fn declare_like_the_connector(conn: &Connection, c: &AmqpConfig) {
    connectors::amqp::declare_topology(conn, c).await.expect("declare the connector's topology");
}

/// Deletes what [`declare_like_the_connector`] declared; the agency's exchange too.
async fn delete_like_the_connector(ch: &Channel, c: &AmqpConfig) {
    let _ = ch.queue_delete(c.queue.as_str().into(), QueueDeleteOptions::default()).await;
    if let Some(dlx) = &c.dead_letter_exchange {
        let _ = ch.queue_delete(c.dead_letter_queue().as_str().into(), QueueDeleteOptions::default()).await;
        let _ = ch.exchange_delete(dlx.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = ch.exchange_delete(c.exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
}

/// The properties the hotline's CTI sets (see `simulators::agencies::amqp`).
fn properties(m: &AmqpMessage) -> BasicProperties {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding(m.content_encoding.into())
        .with_delivery_mode(2)
        .with_message_id(m.message_id.as_str().into())
        .with_timestamp(now)
}

async fn publish(ch: &Channel, exchange: &str, m: &AmqpMessage) -> PublisherConfirm {
    ch.basic_publish(
        exchange.into(),
        m.routing_key.as_str().into(),
        BasicPublishOptions::default(),
        &m.body,
        properties(m),
    )
    .await
    .expect("publish")
}

async fn confirmed(p: PublisherConfirm) {
    assert!(!p.await.expect("publisher confirm").is_nack(), "RabbitMQ refused a publish");
}

/// Publishes with confirms, at most 1024 unconfirmed at a time.
async fn publish_confirmed(ch: &Channel, exchange: &str, msgs: &[AmqpMessage]) {
    let mut pending = VecDeque::new();
    for m in msgs {
        pending.push_back(publish(ch, exchange, m).await);
        if pending.len() >= 1024 {
            confirmed(pending.pop_front().unwrap()).await;
        }
    }
    for p in pending {
        confirmed(p).await;
    }
}

/// Publishes one message every 1/`rate` s (catching up when late); returns
/// each message id with the instant it was published. Confirms are awaited
/// aside, without holding the pace up.
async fn publish_steady(ch: &Channel, exchange: &str, msgs: &[AmqpMessage], rate: usize) -> Vec<(String, Instant)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PublisherConfirm>();
    let confirms = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            confirmed(p).await;
        }
    });
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut sent = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let due = start + interval.mul_f64(i as f64);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let at = Instant::now();
        let p = publish(ch, exchange, m).await;
        sent.push((m.message_id.clone(), at));
        tx.send(p).expect("confirm task");
    }
    drop(tx);
    confirms.await.expect("confirms");
    sent
}

/// The bare consumer: drains `n` messages from `queue` with the given
/// prefetch, acknowledging every [`ACK_EVERY`] at once (and the last).
async fn bare_amqp_drain(b: &Bench, queue: &str, n: usize, prefetch: u16) -> Duration {
    let started = Instant::now();
    let (conn, _ch, mut consumer) = amqp_consumer(b, queue, prefetch).await;
    for i in 1..=n {
        let d = tokio::time::timeout(STALL, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("bare AMQP consumer: nothing for {STALL:?} after {} of {n}", i - 1))
            .expect("consumer open")
            .expect("delivery");
        if i % ACK_EVERY == 0 || i == n {
            d.acker.ack(BasicAckOptions { multiple: true }).await.expect("ack");
        }
    }
    let elapsed = started.elapsed();
    let _ = conn.close(200, "OK".into()).await;
    elapsed
}

async fn amqp_throughput(b: &Bench) -> Throughput {
    let n = b.n;
    let exchange = format!("bench.hotline.{}.tp", b.run);
    let hub_cfg = amqp_config(b, "hotline", &exchange, &format!("bench.hub.hotline.{}.tp", b.run));
    let bare_cfg = amqp_config(b, "bare", &exchange, &format!("bench.bare.hotline.{}.tp", b.run));
    let durable_cfg = amqp_config(b, "durable", &exchange, &format!("bench.durable.hotline.{}.tp", b.run));
    let (conn, ch) = amqp_channel(b).await;
    declare_like_the_connector(&conn, &hub_cfg).await;
    declare_like_the_connector(&conn, &bare_cfg).await;
    declare_like_the_connector(&conn, &durable_cfg).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm mode");
    say!("AMQP throughput: publishing {n} hotline orders…");
    let msgs = hotline_messages(1, n);
    let t = Instant::now();
    publish_confirmed(&ch, &exchange, &msgs).await;
    let publish = t.elapsed();
    drop(msgs);
    let prefetch = hub_cfg.prefetch;

    say!("AMQP throughput: bare consumer…");
    let meter = Meter::start();
    let wall = bare_amqp_drain(b, &bare_cfg.queue, n, prefetch).await;
    let bare = Phase { wall, arrived: n, usage: meter.stop() };

    say!("AMQP throughput: durable baseline…");
    let (durable, sink) = durable_amqp_drain(b, &durable_cfg.queue, n, prefetch).await;

    say!("AMQP throughput: hub…");
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new(TOKEN));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let meter = Meter::start();
    let started = Instant::now();
    let hub =
        start_hub(&db, &server.base_url(), "hotline", "hotline.toml", Box::new(AmqpConnector::new(hub_cfg.clone())))
            .await;
    let settled = until_applied(&hub, "hotline", n as u64, || sim.stats().applied, "AMQP throughput").await;
    let usage = meter.stop();
    let elapsed = settled.at.duration_since(started);
    let (records, changes) = committed(&hub.metrics, "hotline");
    let batches = hub.metrics.intake_batches.load(Ordering::Relaxed);
    let writer = writer_use(&hub);
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;

    delete_like_the_connector(&ch, &durable_cfg).await;
    delete_like_the_connector(&ch, &bare_cfg).await;
    delete_like_the_connector(&ch, &hub_cfg).await;
    let _ = conn.close(200, "OK".into()).await;
    Throughput {
        n,
        prefetch,
        hub: Phase { wall: elapsed, arrived: (records as usize).min(n), usage },
        durable,
        bare,
        records,
        changes,
        publish,
        batches,
        sink,
        writer,
    }
}

async fn amqp_latency_hub(b: &Bench) -> Latencies {
    let total = b.latency_records();
    let exchange = format!("bench.hotline.{}.lat", b.run);
    let cfg = amqp_config(b, "hotline", &exchange, &format!("bench.hub.hotline.{}.lat", b.run));
    let (conn, ch) = amqp_channel(b).await;
    declare_like_the_connector(&conn, &cfg).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm mode");
    let msgs = hotline_messages(2, total + 1);

    let platform = RecordingPlatform::start().await;
    let db = TestDb::sqlite();
    let hub = start_hub(&db, &platform.url, "hotline", "hotline.toml", Box::new(AmqpConnector::new(cfg.clone()))).await;
    // One record through first: the connector consumes, the pipeline is warm.
    confirmed(publish(&ch, &exchange, &msgs[0]).await).await;
    until_applied(&hub, "hotline", 1, || platform.count(), "AMQP latency: first record").await.expect("AMQP latency");

    say!("AMQP latency: hub, {total} records at {}/s…", b.latency_rate);
    let sent = publish_steady(&ch, &exchange, &msgs[1..], b.latency_rate).await;
    until_applied(&hub, "hotline", total as u64 + 1, || platform.count(), "AMQP latency").await;
    hub.shutdown().await;
    let arrived = platform.finish().await;
    db.cleanup().await;
    delete_like_the_connector(&ch, &cfg).await;
    let _ = conn.close(200, "OK".into()).await;
    latencies(&sent, &arrived)
}

async fn amqp_latency_bare(b: &Bench) -> Latencies {
    let total = b.latency_records();
    let exchange = format!("bench.hotline.{}.latb", b.run);
    let cfg = amqp_config(b, "bare", &exchange, &format!("bench.bare.hotline.{}.lat", b.run));
    let (conn, ch) = amqp_channel(b).await;
    declare_like_the_connector(&conn, &cfg).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm mode");
    let msgs = hotline_messages(2, total + 1);

    // The bare consumer: notes the arrival and the message id, acks each message.
    let (consumer_conn, _consumer_ch, mut consumer) = amqp_consumer(b, &cfg.queue, cfg.prefetch).await;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let task = tokio::spawn(async move {
        let mut arrived = Vec::with_capacity(total + 1);
        while let Some(Ok(d)) = consumer.next().await {
            let at = Instant::now();
            let id = d.properties.message_id().as_ref().map(|m| m.as_str().to_string()).unwrap_or_default();
            d.acker.ack(BasicAckOptions::default()).await.expect("ack");
            arrived.push((id, at));
            if counter.fetch_add(1, Ordering::Relaxed) + 1 == total as u64 + 1 {
                break;
            }
        }
        arrived
    });
    confirmed(publish(&ch, &exchange, &msgs[0]).await).await;
    wait_count(&received, 1, "bare AMQP latency: first record").await.expect("bare AMQP latency");

    say!("AMQP latency: bare consumer, {total} records at {}/s…", b.latency_rate);
    let sent = publish_steady(&ch, &exchange, &msgs[1..], b.latency_rate).await;
    wait_count(&received, total as u64 + 1, "bare AMQP latency").await.expect("bare AMQP latency");
    let arrived = task.await.expect("consumer task");
    let _ = consumer_conn.close(200, "OK".into()).await;
    delete_like_the_connector(&ch, &cfg).await;
    let _ = conn.close(200, "OK".into()).await;
    latencies(&sent, &arrived)
}

// ---------------------------------------------------------------------------
// MQTT

/// One terminal report as a worker's terminal publishes it.
struct Report {
    topic: String,
    payload: Bytes,
    /// `{eventId}:{occurredAt}`: the record id and version the mapping reads.
    key: String,
}

/// `count` workers as the fleet simulator makes them (W1000, W1001, …).
fn fleet(count: usize) -> Vec<Worker> {
    (0..count).map(|i| Worker::new(7, i as u64)).collect()
}

/// Workers enough that no worker has more than 5000 events (event ids
/// number them with four digits).
fn fleet_size(n: usize) -> usize {
    n.div_ceil(5000).max(16)
}

/// This run's own topic root for a phase: `bench/{run}/{phase}/grid`, so that
/// no other subscriber of `grid/…` gets (and keeps) the bench's reports.
fn topic_root(b: &Bench, phase: &str) -> String {
    format!("bench/{}/{phase}/grid", b.run)
}

/// The filter the consumer subscribes to and `n` reports for a phase.
fn phase_reports(b: &Bench, phase: &str, seed: u64, n: usize) -> (Vec<String>, Vec<Report>) {
    let root = topic_root(b, phase);
    (vec![format!("{root}/+/+/report")], reports(&root, &fleet(fleet_size(n)), seed, n))
}

/// `n` reports under `root`, one new event each, round robin over the workers.
fn reports(root: &str, workers: &[Worker], seed: u64, n: usize) -> Vec<Report> {
    (0..n)
        .map(|i| {
            let w = &workers[i % workers.len()];
            let m = Matter::new(seed, i as u64);
            let event = terminal::event_id(w, &m, (i / workers.len()) as u64);
            let mut rng = Rng::new(seed ^ ((i as u64) << 16));
            let body = terminal::report(&mut rng, w, &m, &event);
            Report {
                topic: w.topic(root, "report"),
                key: format!("{event}:{}", body["occurredAt"]),
                payload: Bytes::from(serde_json::to_vec(&body).expect("json")),
            }
        })
        .collect()
}

/// `{eventId}:{occurredAt}` of a report's payload.
fn report_key(payload: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(payload).expect("a JSON report");
    format!("{}:{}", v["eventId"].as_str().unwrap_or_default(), v["occurredAt"])
}

fn mqtt_options(b: &Bench, client_id: &str, clean: bool) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, b.mqtt_host.clone(), b.mqtt_port);
    o.set_keep_alive(Duration::from_secs(30)).set_clean_session(clean).set_max_packet_size(1 << 20, 1 << 20);
    o
}

/// Polls until CONNACK (and SUBACK when `subscribing`).
async fn mqtt_handshake(el: &mut rumqttc::EventLoop, subscribing: bool) {
    let mut connected = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, el.poll()).await.expect("MQTT handshake timed out") {
            Ok(Event::Incoming(Packet::ConnAck(_))) if !subscribing => return,
            Ok(Event::Incoming(Packet::ConnAck(_))) => connected = true,
            Ok(Event::Incoming(Packet::SubAck(ack))) if connected => {
                assert!(
                    ack.return_codes.iter().all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure)),
                    "Mosquitto refused a subscription"
                );
                return;
            }
            Ok(_) => {}
            Err(e) => panic!("cannot connect to Mosquitto: {e}"),
        }
    }
}

async fn mqtt_disconnect(client: &AsyncClient, el: &mut rumqttc::EventLoop) {
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !matches!(el.poll().await, Err(_) | Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) {}
    })
    .await;
}

/// With `filters`: creates the persistent session of `client_id` with its
/// subscriptions (QoS 1), so that nothing published from now on is lost
/// before its owner connects. Without: removes the session (a clean connect).
async fn mqtt_session(b: &Bench, client_id: &str, filters: Option<&[String]>) {
    let (client, mut el) = AsyncClient::new(mqtt_options(b, client_id, filters.is_none()), 64);
    if let Some(filters) = filters {
        let subs = filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        client.subscribe_many(subs).await.expect("subscribe");
    }
    mqtt_handshake(&mut el, filters.is_some()).await;
    mqtt_disconnect(&client, &mut el).await;
}

/// A publishing client; its event loop runs aside and counts PUBACKs.
struct MqttPublisher {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl MqttPublisher {
    async fn connect(b: &Bench, client_id: &str) -> MqttPublisher {
        let (client, mut el) = AsyncClient::new(mqtt_options(b, client_id, true), 1024);
        mqtt_handshake(&mut el, false).await;
        let acked = Arc::new(AtomicU64::new(0));
        let counter = acked.clone();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => panic!("MQTT publisher lost its connection: {e}"),
                }
            }
        });
        MqttPublisher { client, acked, task }
    }

    async fn publish(&self, r: &Report) {
        self.client.publish_bytes(r.topic.as_str(), QoS::AtLeastOnce, false, r.payload.clone()).await.expect("publish");
    }

    /// Waits for the broker's PUBACK of all `published`, then disconnects.
    async fn finish(self, published: u64) {
        wait_count(&self.acked, published, "MQTT publisher: PUBACKs").await.expect("MQTT publisher");
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Publishes `reports` from `BENCH_MQTT_PUBLISHERS` clients, report `i` only
/// once `consumed` is past `i - BENCH_MQTT_WINDOW`. Returns the instant of
/// the first publish.
async fn publish_windowed(b: &Bench, tag: &str, reports: Arc<Vec<Report>>, consumed: Arc<AtomicU64>) -> Instant {
    let (window, step) = (b.mqtt_window, b.mqtt_publishers);
    let mut publishers = Vec::new();
    for k in 0..b.mqtt_publishers {
        publishers.push(MqttPublisher::connect(b, &format!("bench-pub-{}-{tag}-{k}", b.run)).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = publishers
        .into_iter()
        .enumerate()
        .map(|(k, publisher)| {
            let (reports, consumed) = (reports.clone(), consumed.clone());
            tokio::spawn(async move {
                let mut published = 0;
                'publishing: for i in (k..reports.len()).step_by(step) {
                    let mut last = (consumed.load(Ordering::Relaxed), Instant::now());
                    while i as u64 >= last.0 + window {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let now = consumed.load(Ordering::Relaxed);
                        if now != last.0 {
                            last = (now, Instant::now());
                        } else if last.1.elapsed() >= STALL {
                            // The consumer lost some: what is left would never fit the window.
                            say!("MQTT publisher {k}: the consumer took nothing for {STALL:?}; stopping");
                            break 'publishing;
                        }
                    }
                    publisher.publish(&reports[i]).await;
                    published += 1;
                }
                publisher.finish(published).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher task");
    }
    started
}

/// Publishes one report every 1/`rate` s (catching up when late); returns
/// each report's key with the instant it was handed to the client.
async fn publish_steady_mqtt(publisher: &MqttPublisher, reports: &[Report], rate: usize) -> Vec<(String, Instant)> {
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut sent = Vec::with_capacity(reports.len());
    for (i, r) in reports.iter().enumerate() {
        let due = start + interval.mul_f64(i as f64);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        sent.push((r.key.clone(), Instant::now()));
        publisher.publish(r).await;
    }
    sent
}

/// The bare consumer: a persistent session, QoS 1, PUBACK by rumqttc as
/// soon as a message is read; notes each arrival (and payload if `keep`).
struct BareMqtt {
    received: Arc<AtomicU64>,
    last: Arc<Mutex<Option<Instant>>>,
    arrivals: Arrivals,
    client: AsyncClient,
    task: JoinHandle<()>,
    client_id: String,
}

impl BareMqtt {
    async fn start(b: &Bench, client_id: String, filters: &[String], keep: bool) -> BareMqtt {
        let (client, mut el) = AsyncClient::new(mqtt_options(b, &client_id, false), 1024);
        let subs = filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        client.subscribe_many(subs).await.expect("subscribe");
        mqtt_handshake(&mut el, true).await;
        let received = Arc::new(AtomicU64::new(0));
        let last = Arc::new(Mutex::new(None));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (r, l, a) = (received.clone(), last.clone(), arrivals.clone());
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let at = Instant::now();
                        if keep {
                            a.lock().unwrap().push((at, p.payload));
                        }
                        *l.lock().unwrap() = Some(at);
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => panic!("bare MQTT consumer lost its connection: {e}"),
                }
            }
        });
        BareMqtt { received, last, arrivals, client, task, client_id }
    }

    /// Disconnects and removes the session; returns the arrivals kept.
    async fn finish(self, b: &Bench) -> Vec<(Instant, Bytes)> {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
        mqtt_session(b, &self.client_id, None).await;
        std::mem::take(&mut *self.arrivals.lock().unwrap())
    }
}

fn mqtt_connector(b: &Bench, client_id: &str, filters: &[String]) -> BoxedConnector {
    let config =
        MqttConfig::new(&b.mqtt_url, "terminal").with_client_id(client_id).with_topics(filters.iter().cloned());
    Box::new(MqttConnector::new(config).expect("MQTT connector config"))
}

async fn mqtt_throughput(b: &Bench) -> Throughput {
    let n = b.n;

    say!("MQTT throughput: bare consumer…");
    let (filters, bare_reports) = phase_reports(b, "tpb", 3, n);
    let consumer = BareMqtt::start(b, format!("bench-bare-{}-tp", b.run), &filters, false).await;
    let meter = Meter::start();
    let started = publish_windowed(b, "bare", Arc::new(bare_reports), consumer.received.clone()).await;
    wait_count(&consumer.received, n as u64, "bare MQTT throughput").await;
    let usage = meter.stop();
    let wall = consumer.last.lock().unwrap().expect("received").duration_since(started);
    let arrived = consumer.received.load(Ordering::Relaxed).min(n as u64) as usize;
    consumer.finish(b).await;
    let bare = Phase { wall, arrived, usage };

    say!("MQTT throughput: durable baseline…");
    let (filters, durable_reports) = phase_reports(b, "tpd", 3, n);
    let sim = PlatformSim::new(SimConfig::new(TOKEN));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let consumer = DurableMqtt::start(b, format!("bench-durable-{}-tp", b.run), &filters, &server.base_url()).await;
    let meter = Meter::start();
    // The publishers' window follows the PUBACKs, which come after the commits.
    let started = publish_windowed(b, "durable", Arc::new(durable_reports), consumer.acked.clone()).await;
    wait_count(&consumer.acked, n as u64, "durable MQTT throughput: PUBACKs").await;
    wait_count(&consumer.done, n as u64, "durable MQTT throughput: PUTs").await;
    let usage = meter.stop();
    let wall = consumer.last.lock().unwrap().expect("received").duration_since(started);
    let arrived = consumer.done.load(Ordering::Relaxed).min(consumer.acked.load(Ordering::Relaxed)).min(n as u64);
    let mut sink = consumer.finish(b).await;
    sink.applied = sim.stats().applied;
    server.stop().await;
    let durable = Phase { wall, arrived: arrived as usize, usage };

    say!("MQTT throughput: hub…");
    let (filters, hub_reports) = phase_reports(b, "tph", 3, n + 1);
    let client_id = format!("bench-hub-terminal-{}", b.run);
    mqtt_session(b, &client_id, Some(&filters)).await;
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new(TOKEN));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let hub =
        start_hub(&db, &server.base_url(), "terminal", "terminal.toml", mqtt_connector(b, &client_id, &filters)).await;
    // The first report alone: the hub is connected and subscribed.
    let probe = MqttPublisher::connect(b, &format!("bench-pub-{}-probe", b.run)).await;
    probe.publish(&hub_reports[0]).await;
    probe.finish(1).await;
    until_applied(&hub, "terminal", 1, || sim.stats().applied, "MQTT throughput: first record")
        .await
        .expect("MQTT throughput");

    let probe_batches = hub.metrics.intake_batches.load(Ordering::Relaxed);
    let probe_writer = writer_use(&hub);
    // The publishers' window follows the hub's commits (after which it PUBACKs).
    let consumed = Arc::new(AtomicU64::new(0));
    let watch = {
        let (metrics, consumed) = (hub.metrics.clone(), consumed.clone());
        tokio::spawn(async move {
            loop {
                consumed.store(committed(&metrics, "terminal").0.saturating_sub(1), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let measured = Arc::new(hub_reports.into_iter().skip(1).collect::<Vec<_>>());
    let meter = Meter::start();
    let started = publish_windowed(b, "hub", measured, consumed).await;
    let settled = until_applied(&hub, "terminal", n as u64 + 1, || sim.stats().applied, "MQTT throughput").await;
    let usage = meter.stop();
    let elapsed = settled.at.duration_since(started);
    watch.abort();
    let (records, changes) = committed(&hub.metrics, "terminal");
    // Less the first record's own commit.
    let batches = hub.metrics.intake_batches.load(Ordering::Relaxed) - probe_batches;
    let mut writer = writer_use(&hub);
    for (w, p) in writer.iter_mut().zip(probe_writer) {
        *w = (w.0 - p.0, w.1 - p.1);
    }
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
    mqtt_session(b, &client_id, None).await;
    Throughput {
        n,
        prefetch: 0,
        hub: Phase { wall: elapsed, arrived: (records.saturating_sub(1) as usize).min(n), usage },
        durable,
        bare,
        records: records.saturating_sub(1),
        changes: changes.saturating_sub(1),
        publish: Duration::ZERO,
        batches,
        sink,
        writer,
    }
}

async fn mqtt_latency_hub(b: &Bench) -> Latencies {
    let total = b.latency_records();
    let (filters, reports) = phase_reports(b, "lath", 4, total + 1);
    let client_id = format!("bench-hub-terminal-{}-lat", b.run);
    mqtt_session(b, &client_id, Some(&filters)).await;
    let platform = RecordingPlatform::start().await;
    let db = TestDb::sqlite();
    let hub = start_hub(&db, &platform.url, "terminal", "terminal.toml", mqtt_connector(b, &client_id, &filters)).await;
    let publisher = MqttPublisher::connect(b, &format!("bench-pub-{}-lh", b.run)).await;
    publisher.publish(&reports[0]).await;
    until_applied(&hub, "terminal", 1, || platform.count(), "MQTT latency: first record").await.expect("MQTT latency");

    say!("MQTT latency: hub, {total} records at {}/s…", b.latency_rate);
    let sent = publish_steady_mqtt(&publisher, &reports[1..], b.latency_rate).await;
    until_applied(&hub, "terminal", total as u64 + 1, || platform.count(), "MQTT latency").await;
    publisher.finish(total as u64 + 1).await;
    hub.shutdown().await;
    let arrived = platform.finish().await;
    db.cleanup().await;
    mqtt_session(b, &client_id, None).await;
    latencies(&sent, &arrived)
}

async fn mqtt_latency_bare(b: &Bench) -> Latencies {
    let total = b.latency_records();
    let (filters, reports) = phase_reports(b, "latb", 4, total + 1);
    let consumer = BareMqtt::start(b, format!("bench-bare-{}-lat", b.run), &filters, true).await;
    let publisher = MqttPublisher::connect(b, &format!("bench-pub-{}-lb", b.run)).await;
    publisher.publish(&reports[0]).await;
    wait_count(&consumer.received, 1, "bare MQTT latency: first record").await.expect("bare MQTT latency");

    say!("MQTT latency: bare consumer, {total} records at {}/s…", b.latency_rate);
    let sent = publish_steady_mqtt(&publisher, &reports[1..], b.latency_rate).await;
    wait_count(&consumer.received, total as u64 + 1, "bare MQTT latency").await;
    publisher.finish(total as u64 + 1).await;
    let arrived: Vec<(String, Instant)> =
        consumer.finish(b).await.into_iter().map(|(at, payload)| (report_key(&payload), at)).collect();
    latencies(&sent, &arrived)
}

// ---------------------------------------------------------------------------
// The durable baseline

/// PUTs of one batch in flight at once.
const DURABLE_PUTS: usize = 32;

/// One message as the durable baseline keeps it.
struct Kept {
    /// Unique per message: the AMQP message id when set, else the SHA-256 of the body.
    key: String,
    /// The routing key or the topic.
    origin: String,
    record: RawRecord,
}

/// What the durable baseline did, counted.
#[derive(Clone, Copy, Debug, Default)]
struct SinkCounts {
    /// Transactions committed (one per batch).
    commits: u64,
    /// Messages in the largest batch.
    largest: usize,
    /// Rows in the database at the end (one per message, by its unique key).
    stored: u64,
    /// PUTs the platform answered 2xx.
    accepted: u64,
    /// Messages not accepted: unmappable, a non-2xx answer or no answer.
    refused: u64,
    /// Changes the platform simulator applied.
    applied: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The ticket id of a message: the same for the same message, so that a
/// redelivery PUTs the same ticket (and idempotency key) again.
fn durable_ticket_id(system: &str, key: &str) -> String {
    let mut id = sha256_hex(format!("{system}\n{key}").as_bytes());
    id.truncate(32);
    id
}

/// The least work a bridge that loses nothing does per record: the raw
/// message committed to a local SQLite file (WAL, `synchronous=FULL`, one
/// row per message keyed by its unique id, one transaction per batch), then
/// one ticket per message PUT to the platform. No linking of versions, no
/// duplicate detection, no outbox, no retries.
struct DurableSink {
    db: TestDb,
    conn: SqliteConnection,
    mapper: DeclarativeMapper,
    system: &'static str,
    http: reqwest::Client,
    base: String,
    auth: String,
    counts: SinkCounts,
}

impl DurableSink {
    /// A fresh database file and a platform client; `system` names the shipped mapping.
    async fn open(system: &'static str, platform_url: &str) -> DurableSink {
        let db = TestDb::sqlite();
        let path = db.url.strip_prefix("sqlite://").expect("a SQLite URL").to_string();
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .connect()
            .await
            .expect("open the durable baseline's SQLite file");
        sqlx::raw_sql(
            "CREATE TABLE raw_messages (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, \
             received_at INTEGER NOT NULL, origin TEXT NOT NULL, encoding TEXT, body BLOB NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .expect("create the table");
        let mapper = hub::mapping::shipped::mapper(system).expect("a shipped mapping").expect("it loads");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(DURABLE_PUTS)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        DurableSink {
            db,
            conn,
            mapper,
            system,
            http,
            base: platform_url.trim_end_matches('/').to_string(),
            auth: format!("Bearer {TOKEN}"),
            counts: SinkCounts::default(),
        }
    }

    /// Commits the batch's raw messages in one transaction.
    async fn store(&mut self, batch: &[Kept]) {
        let mut tx = self.conn.begin().await.expect("begin");
        for m in batch {
            sqlx::query(
                "INSERT INTO raw_messages (message_id, received_at, origin, encoding, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&m.key)
            .bind(m.record.received_at.timestamp_millis())
            .bind(&m.origin)
            .bind(m.record.encoding.as_deref())
            .bind(&m.record.payload[..])
            .execute(&mut *tx)
            .await
            .expect("insert a raw message");
        }
        tx.commit().await.expect("commit");
        self.counts.commits += 1;
        self.counts.largest = self.counts.largest.max(batch.len());
    }

    /// The canonical ticket of one message, by the shipped mapping: (ticket id, body).
    fn ticket(&self, m: &Kept) -> Option<(String, String)> {
        let mapped = Mapper::map(&self.mapper, &m.record).ok()?;
        let id = durable_ticket_id(self.system, &m.key);
        let source = Source {
            channel: mapped.applied.channel,
            system: self.system.to_string(),
            record_id: mapped.record_id,
            version: mapped.version,
            received_at: m.record.received_at.with_timezone(&beijing()),
        };
        let ticket = Ticket::create(id.clone(), mapped.applied.draft, source);
        Some((id, serde_json::to_string(&ticket).expect("a ticket serialises")))
    }

    /// Maps every message of the batch and PUTs its ticket, [`DURABLE_PUTS`]
    /// at a time; returns once every PUT has its answer.
    async fn deliver(&mut self, batch: &[Kept]) {
        let tickets: Vec<_> = batch.iter().map(|m| self.ticket(m)).collect();
        let (http, base, auth) = (&self.http, &self.base, &self.auth);
        let answers: Vec<bool> = futures::stream::iter(tickets)
            .map(|ticket| async move {
                let Some((id, body)) = ticket else { return false };
                let sent = http
                    .put(format!("{base}/api/v1/tickets/{id}"))
                    .header(AUTHORIZATION, auth)
                    .header(CONTENT_TYPE, "application/json")
                    .header("Idempotency-Key", format!("{id}:1"))
                    .body(body)
                    .send()
                    .await;
                match sent {
                    // The answer read to its end, so that the connection is kept.
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            })
            .buffer_unordered(DURABLE_PUTS)
            .collect()
            .await;
        let accepted = answers.iter().filter(|ok| **ok).count() as u64;
        self.counts.accepted += accepted;
        self.counts.refused += answers.len() as u64 - accepted;
    }

    /// Counts the rows, closes and removes the database.
    async fn close(mut self) -> SinkCounts {
        let rows: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM raw_messages").fetch_one(&mut self.conn).await.expect("count");
        self.counts.stored = rows as u64;
        let _ = self.conn.close().await;
        self.db.cleanup().await;
        self.counts
    }
}

/// A delivery as the durable baseline keeps it (the record made as the AMQP
/// connector makes it), and its acker.
fn amqp_kept(system: &str, d: Delivery) -> (Kept, Acker) {
    let Delivery { routing_key, properties, data, acker, .. } = d;
    let message_id = properties.message_id().as_ref().map(|m| m.as_str().to_string()).filter(|m| !m.is_empty());
    let content_type = properties
        .content_type()
        .as_ref()
        .and_then(|t| ContentType::from_mime(t.as_str()))
        .unwrap_or(ContentType::Json);
    let key = message_id.clone().unwrap_or_else(|| sha256_hex(&data));
    let mut record = RawRecord::new(system, content_type, data).with_meta("routing_key", routing_key.as_str());
    if let Some(encoding) = properties.content_encoding().as_ref().map(|e| e.as_str().trim()).filter(|e| !e.is_empty())
    {
        record = record.with_encoding(encoding);
    }
    if let Some(id) = message_id {
        record = record.with_meta("message_id", id);
    }
    (Kept { key, origin: routing_key.as_str().to_string(), record }, acker)
}

/// The AMQP durable baseline: drains `n` messages from `queue` with the
/// given prefetch; each batch is what is at hand (at least one, at most
/// `prefetch`, without waiting for more), committed, PUT, then acknowledged
/// at once (`multiple` on its last delivery tag). Timed from the consumer's
/// start (database file opened, connected) until the last batch is acked.
async fn durable_amqp_drain(b: &Bench, queue: &str, n: usize, prefetch: u16) -> (Phase, SinkCounts) {
    let sim = PlatformSim::new(SimConfig::new(TOKEN));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let meter = Meter::start();
    let started = Instant::now();
    let mut sink = DurableSink::open("hotline", &server.base_url()).await;
    let (conn, _ch, mut consumer) = amqp_consumer(b, queue, prefetch).await;
    let mut done = 0;
    while done < n {
        let first = tokio::time::timeout(STALL, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("durable AMQP baseline: nothing for {STALL:?} after {done} of {n}"))
            .expect("consumer open")
            .expect("delivery");
        let mut deliveries = vec![first];
        while deliveries.len() < prefetch as usize {
            match consumer.next().now_or_never() {
                Some(Some(Ok(d))) => deliveries.push(d),
                _ => break,
            }
        }
        let (batch, ackers): (Vec<Kept>, Vec<Acker>) = deliveries.into_iter().map(|d| amqp_kept("hotline", d)).unzip();
        sink.store(&batch).await;
        sink.deliver(&batch).await;
        ackers.last().expect("a batch").ack(BasicAckOptions { multiple: true }).await.expect("ack");
        done += batch.len();
    }
    let wall = started.elapsed();
    let usage = meter.stop();
    let _ = conn.close(200, "OK".into()).await;
    let mut counts = sink.close().await;
    counts.applied = sim.stats().applied;
    server.stop().await;
    (Phase { wall, arrived: done, usage }, counts)
}

/// Notes now as the last instant, unless a later one is there.
fn later(last: &Mutex<Option<Instant>>) {
    let now = Instant::now();
    let mut l = last.lock().unwrap();
    *l = Some(l.map_or(now, |t| t.max(now)));
}

/// The MQTT durable baseline: a persistent session, QoS 1, manual acks.
/// Each batch is the publishes at hand; each is acknowledged (PUBACK) once
/// the batch is committed, then the batch's tickets are PUT.
struct DurableMqtt {
    /// PUBACKs sent.
    acked: Arc<AtomicU64>,
    /// Messages whose PUT has its answer.
    done: Arc<AtomicU64>,
    /// When the last PUBACK went out or the last batch's PUTs were answered.
    last: Arc<Mutex<Option<Instant>>>,
    client: AsyncClient,
    events: JoinHandle<()>,
    consumer: JoinHandle<DurableSink>,
    client_id: String,
}

impl DurableMqtt {
    async fn start(b: &Bench, client_id: String, filters: &[String], platform_url: &str) -> DurableMqtt {
        let mut options = mqtt_options(b, &client_id, false);
        options.set_manual_acks(true);
        let (client, mut el) = AsyncClient::new(options, 1024);
        let subs = filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        client.subscribe_many(subs).await.expect("subscribe");
        mqtt_handshake(&mut el, true).await;
        let mut sink = DurableSink::open("terminal", platform_url).await;
        let (acked, done, last) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(None)));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<rumqttc::Publish>();
        let events = {
            let (acked, last) = (acked.clone(), last.clone());
            tokio::spawn(async move {
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let _ = tx.send(p);
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::PubAck(_))) => {
                            later(&last);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(e) => panic!("durable MQTT baseline lost its connection: {e}"),
                    }
                }
            })
        };
        let consumer = {
            let (client, done, last) = (client.clone(), done.clone(), last.clone());
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut publishes = vec![first];
                    while let Ok(p) = rx.try_recv() {
                        publishes.push(p);
                    }
                    let batch: Vec<Kept> = publishes
                        .iter()
                        .map(|p| Kept {
                            key: sha256_hex(&p.payload),
                            origin: p.topic.clone(),
                            record: RawRecord::new("terminal", ContentType::Json, p.payload.clone())
                                .with_encoding("utf-8")
                                .with_meta("topic", p.topic.clone()),
                        })
                        .collect();
                    sink.store(&batch).await;
                    for p in &publishes {
                        client.ack(p).await.expect("ack");
                    }
                    sink.deliver(&batch).await;
                    later(&last);
                    done.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                sink
            })
        };
        DurableMqtt { acked, done, last, client, events, consumer, client_id }
    }

    /// Disconnects, removes the session and the database; returns the counts.
    async fn finish(self, b: &Bench) -> SinkCounts {
        let _ = self.client.disconnect().await;
        let mut events = self.events;
        if tokio::time::timeout(Duration::from_secs(2), &mut events).await.is_err() {
            events.abort();
        }
        let sink = self.consumer.await.expect("durable MQTT consumer");
        mqtt_session(b, &self.client_id, None).await;
        sink.close().await
    }
}
