//! A running hub: store, intake, dispatcher, connectors and endpoint,
//! started together and stopped in the order that loses nothing; while it
//! runs, connectors are restarted when they stop and a dead intake or
//! dispatcher is reported by [`Hub::died`] (see [`supervise`]).

pub mod readiness;
pub mod supervise;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use connectors::{BoxedConnector, CancellationToken, Intake, intake_channels};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use self::readiness::{Broker, Health};
use self::supervise::{Died, Launcher};

use crate::config::Settings;
use crate::delivery::{self, PlatformClient};
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::store::{Backend, Store, StoreError};
use crate::{intake, server, sources};

/// How often the WAL is copied back into the database beside the writer
/// ([`crate::store::Store::checkpoint`]): often enough that SQLite's own
/// checkpoint, inside a commit, does not come round.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// How often the tickets intake changed are counted in the figures: the
/// statistics lag the tickets by about this much (a read of them brings
/// them up to date first), and intake's transactions carry none of their
/// writes.
const COUNT_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot build the platform client: {0}")]
    Client(#[from] reqwest::Error),
    /// The hub's own endpoint (`/readyz`, `/metrics`): without it nobody
    /// could see whether the hub works, so a taken port stops the start.
    #[error("cannot serve /healthz, /readyz and /metrics on {addr}: {error}")]
    Listen { addr: std::net::SocketAddr, error: std::io::Error },
    #[error("{0}")]
    Connector(String),
    /// The broker's error, as text: its own cause is already in it.
    #[error(
        "cannot start the embedded MQTT broker: {0}. Another broker (Mosquitto?) may hold the port: remove `embedded_broker` to use it, or give another address"
    )]
    Broker(String),
}

/// A hub running inside this process.
pub struct Hub {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// What `/readyz` reports: connectors' states, intake and dispatcher.
    pub health: Arc<Health>,
    intake: Option<Intake>,
    connectors_stop: CancellationToken,
    intake_stop: CancellationToken,
    delivery_stop: CancellationToken,
    /// One supervisor per connector (see [`supervise::connector`]).
    connectors: Vec<(String, JoinHandle<()>)>,
    /// The watchers of intake and the dispatcher (see [`supervise::watch_vital`]).
    intake_task: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    died: watch::Receiver<Option<Died>>,
    background: Vec<JoinHandle<()>>,
    /// Kept for as long as the hub runs (rumqttd cannot be stopped).
    _broker: Option<connectors::mqtt::EmbeddedBroker>,
}

impl Hub {
    /// Starts the configured sources and everything behind them.
    /// Each connector is made afresh from its settings whenever it has to
    /// run again.
    pub async fn start(settings: Settings) -> Result<Hub, StartError> {
        let mappings = sources::mappings(&settings);
        let mut launchers = Vec::new();
        for source in &settings.sources {
            // Made once now, so that a mistake shows at the start.
            let first = sources::connector(source).map_err(StartError::Connector)?;
            let name = first.name().to_string();
            let (source, mut first) = (source.clone(), Some(first));
            let remake = move || match first.take() {
                Some(c) => Ok(c),
                None => sources::connector(&source),
            };
            launchers.push((name, Launcher::Remake(Box::new(remake))));
        }
        Self::start_launched(settings, mappings, launchers).await
    }

    /// Starts with the given mappings and connectors instead of the
    /// configured ones (the demo, tests and benchmarks wire their own).
    /// A connector given as an instance cannot be run again: when it stops,
    /// it stays down and `/readyz` says so.
    pub async fn start_with(
        settings: Settings,
        mappings: Mappings,
        connectors: Vec<BoxedConnector>,
    ) -> Result<Hub, StartError> {
        let launchers = connectors.into_iter().map(|c| (c.name().to_string(), Launcher::Once(Some(c)))).collect();
        Self::start_launched(settings, mappings, launchers).await
    }

    async fn start_launched(
        settings: Settings,
        mappings: Mappings,
        connectors: Vec<(String, Launcher)>,
    ) -> Result<Hub, StartError> {
        crate::prefer_small_pages();
        // The hub's own endpoint first: a taken port is a mistake to see now.
        let endpoint = match settings.listen {
            Some(addr) => {
                Some(tokio::net::TcpListener::bind(addr).await.map_err(|error| StartError::Listen { addr, error })?)
            }
            None => None,
        };
        // The broker first: the terminal connector connects to it.
        let broker = match settings.embedded_mqtt {
            Some(addr) => Some(
                tokio::task::spawn_blocking(move || connectors::mqtt::EmbeddedBroker::start(addr))
                    .await
                    .map_err(|e| StartError::Connector(format!("the embedded broker's start panicked: {e}")))?
                    .map_err(|e| StartError::Broker(e.to_string()))?,
            ),
            None => None,
        };
        if let Some(b) = &broker {
            tracing::warn!(
                addr = %b.addr(),
                "embedded_broker: the terminals' reports are acknowledged by an in-memory broker; a crash or restart of the hub loses those it had not stored yet, and anyone who reaches this address can publish or read reports (no authentication). Point the source at the centre's broker instead"
            );
        }
        let store = Store::open(&settings.database_url).await?;
        store.set_match_rules(settings.intake.dedup.rules).await;
        store.set_feedback_plan(crate::feedback::Plan::of(&settings));
        if store.backend() == Backend::Sqlite {
            // The embedded file has one hub: leases left by a crash are ours.
            let freed = store.release_all_leases().await?;
            if freed > 0 {
                tracing::info!(changes = freed, "released deliveries that were in flight when the hub last stopped");
            }
        }
        let client = PlatformClient::new(&settings.platform)?;
        let metrics = Arc::new(Metrics::default());
        let wake = Arc::new(Notify::new());
        let (intake, rx, pages) = intake_channels(settings.intake.max_batch * 4);

        let intake_stop = CancellationToken::new();
        let mappings = Arc::new(mappings);
        let worker = intake::Worker {
            store: store.clone(),
            mappings: mappings.clone(),
            metrics: metrics.clone(),
            settings: settings.intake.clone(),
            wake: wake.clone(),
            stop: intake_stop.clone(),
        };
        let health = Arc::new(Health::default());
        let (died_tx, died) = watch::channel(None);
        let intake_task = supervise::watch_vital(
            "intake",
            tokio::spawn(intake::run(worker, rx, pages)),
            intake_stop.clone(),
            health.clone(),
            died_tx.clone(),
        );
        let delivery_stop = CancellationToken::new();
        // Intake leases its new changes straight to the dispatcher.
        let handoff =
            Arc::new(crate::store::Handoff::new(uuid::Uuid::new_v4().simple().to_string(), settings.dispatcher.lease));
        store.set_handoff(handoff.clone());
        let delivering = delivery::run(
            store.clone(),
            client,
            metrics.clone(),
            settings.dispatcher.clone(),
            delivery::Wake { notify: wake, handoff },
            delivery_stop.clone(),
        );
        let dispatcher = supervise::watch_vital(
            "dispatcher",
            tokio::spawn(faults::dispatcher(delivering)),
            delivery_stop.clone(),
            health.clone(),
            died_tx,
        );

        let connectors_stop = CancellationToken::new();
        let mut running = Vec::new();
        for (name, launcher) in connectors {
            let task = tokio::spawn(supervise::connector(
                name.clone(),
                launcher,
                intake.clone(),
                connectors_stop.clone(),
                health.clone(),
                supervise::restart_policy(),
            ));
            running.push((name, task));
        }

        let mut background = Vec::new();
        if let Some(listener) = endpoint {
            let observed = server::Observed {
                metrics: metrics.clone(),
                health: health.clone(),
                store: store.clone(),
                brokers: brokers(&settings),
                mappers: settings
                    .sources
                    .iter()
                    .filter_map(|s| match &s.mapping {
                        crate::config::MappingRef::File { mapper, .. } => Some((s.name.clone(), mapper.clone())),
                        crate::config::MappingRef::Canonical => None,
                    })
                    .collect(),
            };
            let callbacks = crate::callbacks::endpoint::Callbacks {
                store: store.clone(),
                secrets: Arc::new(crate::callbacks::verify::Secrets::new(&settings.platform.secrets)),
                metrics: metrics.clone(),
            };
            let api = crate::api::ApiState {
                store: store.clone(),
                metrics: metrics.clone(),
                health: health.clone(),
                open311_public: settings.open311_public,
                mappings: mappings.clone(),
                intake: settings.intake.clone(),
                sources: Arc::new(crate::api::sources::SourcesView::of(&settings)),
            };
            let tokens = Arc::new(settings.api_tokens.clone());
            let stop = delivery_stop.clone();
            background.push(tokio::spawn(async move {
                if let Err(e) = server::serve(listener, observed, callbacks, api, tokens, stop).await {
                    tracing::error!(error = %e, "the endpoint for /healthz, /readyz and /metrics failed");
                }
            }));
        }
        // The figures follow intake's changes (`Store::count_listed`).
        let s = store.clone();
        background.push(every_round(delivery_stop.clone(), move || {
            let s = s.clone();
            async move {
                match s.count_listed().await {
                    Ok(n) if n >= crate::store::FOLD_MAX => Duration::ZERO,
                    Ok(_) => COUNT_EVERY,
                    Err(err) => {
                        tracing::warn!(error = %err, "counting changed tickets in the figures failed; trying again");
                        COUNT_EVERY * 4
                    }
                }
            }
        }));
        if store.backend() == Backend::Sqlite {
            let s = store.clone();
            background.push(every_round(delivery_stop.clone(), move || {
                let s = s.clone();
                async move {
                    if let Err(err) = s.checkpoint().await {
                        tracing::debug!(error = %err, "checkpoint failed; SQLite's own takes over");
                    }
                    CHECKPOINT_EVERY
                }
            }));
        }
        let (s, m) = (store.clone(), metrics.clone());
        background.push(every_round(delivery_stop.clone(), move || {
            let (s, m) = (s.clone(), m.clone());
            async move {
                if let Ok(depth) = s.outbox_depth().await {
                    m.outbox_depth.store(depth, Ordering::Relaxed);
                }
                if let Ok(queues) = s.queue_depths().await {
                    let now = chrono::Utc::now().timestamp_millis();
                    m.set_queues(queues.into_iter().map(|(destination, depth, oldest)| {
                        (destination, depth, oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0))
                    }));
                }
                Duration::from_secs(2)
            }
        }));

        // The way back: one sender per agency with a back-channel, each on
        // its own, so that one agency down delays only its own messages.
        let hub_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        for source in &settings.sources {
            let Some(sender) = sources::feedback_sender(source, &hub_id) else { continue };
            let sender = sender.map_err(StartError::Connector)?;
            let destination = crate::feedback::dispatcher::Destination { name: source.name.clone(), sender };
            background.push(tokio::spawn(crate::feedback::dispatcher::run(
                store.clone(),
                destination,
                format!("hub-{hub_id}"),
                settings.dispatcher.retry.clone(),
                metrics.clone(),
                delivery_stop.clone(),
            )));
        }

        {
            // Deadlines: one reminder to the reporting workers, one overdue
            // mark, whichever hub gets there first.
            let (s, m, d, stop) = (store.clone(), metrics.clone(), settings.deadlines.clone(), delivery_stop.clone());
            background.push(tokio::spawn(async move {
                const WARNING_EVERY: Duration = Duration::from_secs(300);
                let mut last_warning = None;
                loop {
                    match s.check_deadlines(d.remind_at, crate::store::now_ms()).await {
                        Ok(pass) if pass != Default::default() => {
                            tracing::info!(reminded = pass.reminded, overdue = pass.overdue, "deadlines checked");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot check deadlines; trying again"),
                    }
                    if let Ok(n) = s.overdue_count().await {
                        m.overdue.store(n, Ordering::Relaxed);
                    }
                    match s.check_court_documents(d.court_documents_by, crate::store::now_ms()).await {
                        Ok(raised) => {
                            for p in raised {
                                tracing::error!(case_no = %p.case_no, ticket_id = %p.ticket_id,
                                    "ALARM: a court case agreed today has no legal document by the cut-off (hub courts pending)");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot check the courts' documents; trying again"),
                    }
                    if let Ok(pending) = s.pending_documents().await {
                        let missing = pending.iter().filter(|p| p.alarmed_at.is_some()).count();
                        m.court_documents_missing.store(missing as i64, Ordering::Relaxed);
                    }
                    // The early warning, every few minutes (its series are daily).
                    if last_warning.is_none_or(|t: std::time::Instant| t.elapsed() >= WARNING_EVERY) {
                        last_warning = Some(std::time::Instant::now());
                        let today = chrono::Utc::now().with_timezone(&crate::ticket::beijing()).date_naive();
                        match crate::stats::alerts::check(&s, today, &crate::stats::warning::Params::default()).await {
                            Ok(raised) => {
                                for a in raised {
                                    m.alerts_raised.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!(area = %a.area, category = %a.category, day = %a.day, method = %a.method,
                                        evidence = %a.evidence, "early warning: a category is rising above its baseline");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot run the early warning; trying again"),
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(d.check_every) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }));
        }

        // Fingerprints past the retention leave the table: at start, then
        // hourly, in short batches beside intake.
        let (s, retention) = (store.clone(), settings.intake.dedup.retention);
        background.push(every_round(delivery_stop.clone(), move || {
            let s = s.clone();
            async move {
                match s.delete_expired_prints(retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "fingerprints past the retention deleted"),
                    Err(e) => tracing::warn!(error = %e, "cannot delete fingerprints past the retention; trying again in an hour"),
                }
                Duration::from_secs(3600)
            }
        }));

        Ok(Hub {
            store,
            metrics,
            health,
            intake: Some(intake),
            connectors_stop,
            intake_stop,
            delivery_stop,
            connectors: running,
            intake_task,
            dispatcher,
            died,
            background,
            _broker: broker,
        })
    }

    /// A hand-over for records submitted from inside this process.
    pub fn intake(&self) -> Intake {
        self.intake.clone().expect("the hub is running")
    }

    /// Resolves when intake or the dispatcher died while the hub runs (a
    /// bug: see [`supervise`]). The caller then shuts the hub down and the
    /// process exits non-zero; until then, never.
    pub async fn died(&self) -> Died {
        let mut died = self.died.clone();
        match died.wait_for(Option::is_some).await {
            Ok(d) => d.clone().expect("waited for it"),
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops in the order that loses nothing: connectors stop taking records
    /// and wait for their commits, intake commits what is queued, then the
    /// dispatcher finishes its requests in flight and records their results.
    pub async fn shutdown(mut self) {
        self.connectors_stop.cancel();
        for (name, task) in self.connectors.drain(..) {
            if task.await.is_err() {
                tracing::error!(connector = %name, "the connector's supervisor panicked");
            }
        }
        // Asked first, then the last handle dropped: intake ending because
        // its channel closed is then a stop asked for, not a death (the
        // other order raced, and a clean shutdown could log one).
        self.intake_stop.cancel();
        self.intake.take();
        let _ = (&mut self.intake_task).await;
        self.delivery_stop.cancel();
        let _ = (&mut self.dispatcher).await;
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        self.store.close().await;
    }
}

/// The brokers the configured sources consume from, for `/readyz`.
/// A background task: `round` again and again, each followed by the wait
/// it returns, until `stop` (which ends a wait, never a round).
fn every_round<F, R>(stop: CancellationToken, mut round: F) -> JoinHandle<()>
where
    F: FnMut() -> R + Send + 'static,
    R: std::future::Future<Output = Duration> + Send,
{
    tokio::spawn(async move {
        loop {
            let wait = round().await;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
        }
    })
}

fn brokers(settings: &Settings) -> Vec<Broker> {
    use crate::config::Transport;
    let mut brokers: Vec<Broker> = settings
        .sources
        .iter()
        .filter_map(|s| match &s.transport {
            Transport::Amqp(c) => Broker::from_url(&s.name, &c.url),
            Transport::Mqtt(c) => Broker::from_url(&s.name, &c.url),
            _ => None,
        })
        .collect();
    brokers.dedup_by(|a, b| a.addr == b.addr);
    brokers
}

/// Faults the end-to-end tests inject into a real `hub` process. Debug
/// builds only: a release build has no such switch.
mod faults {
    use std::future::Future;

    /// `HUB_FAULT_DISPATCHER_PANIC_AFTER=2s` makes the dispatcher's task
    /// panic that long after the start.
    pub async fn dispatcher(run: impl Future<Output = ()>) {
        #[cfg(debug_assertions)]
        if let Some(after) =
            std::env::var("HUB_FAULT_DISPATCHER_PANIC_AFTER").ok().and_then(|v| humantime::parse_duration(&v).ok())
        {
            tokio::select! {
                _ = run => return,
                _ = tokio::time::sleep(after) => panic!("HUB_FAULT_DISPATCHER_PANIC_AFTER: the dispatcher panics as asked"),
            }
        }
        run.await
    }
}
