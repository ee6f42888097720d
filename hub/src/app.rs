//! A running hub: store, intake, dispatcher, connectors and endpoint,
//! started together and stopped in the order that loses nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use connectors::{BoxedConnector, CancellationToken, Intake, intake_channels};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::delivery::{self, PlatformClient};
use crate::mapping::Mappings;
use crate::metrics::Metrics;
use crate::store::{Backend, Store, StoreError};
use crate::{intake, server, sources};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot build the platform client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("{0}")]
    Connector(String),
    /// The broker's error, as text: its own cause is already in it.
    #[error(
        "cannot start the embedded MQTT broker: {0}. Another broker (Mosquitto?) may hold the port: set HUB_MQTT_URL to use it, or `embedded_port` to move"
    )]
    Broker(String),
}

/// A hub running inside this process.
pub struct Hub {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    intake: Option<Intake>,
    connectors_stop: CancellationToken,
    intake_stop: CancellationToken,
    delivery_stop: CancellationToken,
    connectors: Vec<(String, JoinHandle<()>)>,
    intake_task: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    /// Kept for as long as the hub runs (rumqttd cannot be stopped).
    _broker: Option<connectors::mqtt::EmbeddedBroker>,
}

impl Hub {
    /// Starts the configured sources and everything behind them.
    pub async fn start(settings: Settings) -> Result<Hub, StartError> {
        let mappings = sources::mappings(&settings);
        let connectors =
            settings.sources.iter().map(sources::connector).collect::<Result<_, _>>().map_err(StartError::Connector)?;
        Self::start_with(settings, mappings, connectors).await
    }

    /// Starts with the given mappings and connectors instead of the
    /// configured ones (the demo, tests and benchmarks wire their own).
    pub async fn start_with(
        settings: Settings,
        mappings: Mappings,
        connectors: Vec<BoxedConnector>,
    ) -> Result<Hub, StartError> {
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
                "terminals use the embedded MQTT broker: it keeps sessions in memory only; set HUB_MQTT_URL to a durable broker in production"
            );
        }
        let store = Store::open(&settings.database_url).await?;
        store.set_match_rules(settings.intake.dedup.rules).await;
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
        let worker = intake::Worker {
            store: store.clone(),
            mappings: Arc::new(mappings),
            metrics: metrics.clone(),
            settings: settings.intake.clone(),
            wake: wake.clone(),
            stop: intake_stop.clone(),
        };
        let intake_task = tokio::spawn(intake::run(worker, rx, pages));
        let delivery_stop = CancellationToken::new();
        let dispatcher = tokio::spawn(delivery::run(
            store.clone(),
            client,
            metrics.clone(),
            settings.dispatcher.clone(),
            wake,
            delivery_stop.clone(),
        ));

        let connectors_stop = CancellationToken::new();
        let mut running = Vec::new();
        for connector in connectors {
            let name = connector.name().to_string();
            let (i, stop) = (intake.clone(), connectors_stop.clone());
            let task_name = name.clone();
            running.push((
                name,
                tokio::spawn(async move {
                    if let Err(e) = connector.run(i, stop).await {
                        tracing::error!(connector = %task_name, error = %e, "connector stopped");
                    }
                }),
            ));
        }

        let mut background = Vec::new();
        if let Some(addr) = settings.listen {
            let observed = server::Observed {
                metrics: metrics.clone(),
                mappers: settings
                    .sources
                    .iter()
                    .filter_map(|s| match &s.mapping {
                        crate::config::MappingRef::File { mapper, .. } => Some((s.name.clone(), mapper.clone())),
                        crate::config::MappingRef::Canonical => None,
                    })
                    .collect(),
            };
            let stop = delivery_stop.clone();
            background.push(tokio::spawn(async move {
                if let Err(e) = server::serve(addr, observed, stop).await {
                    tracing::error!(%addr, error = %e, "cannot serve /metrics");
                }
            }));
        }
        {
            let (s, m, stop) = (store.clone(), metrics.clone(), delivery_stop.clone());
            background.push(tokio::spawn(async move {
                loop {
                    if let Ok(depth) = s.outbox_depth().await {
                        m.outbox_depth.store(depth, Ordering::Relaxed);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }));
        }

        {
            // Fingerprints past the retention leave the table: at start,
            // then hourly, in short batches beside intake.
            let (s, retention, stop) = (store.clone(), settings.intake.dedup.retention, delivery_stop.clone());
            background.push(tokio::spawn(async move {
                loop {
                    match s.delete_expired_prints(retention).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(deleted = n, "fingerprints past the retention deleted"),
                        Err(e) => tracing::warn!(error = %e, "cannot delete fingerprints past the retention; trying again in an hour"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }));
        }

        Ok(Hub {
            store,
            metrics,
            intake: Some(intake),
            connectors_stop,
            intake_stop,
            delivery_stop,
            connectors: running,
            intake_task,
            dispatcher,
            background,
            _broker: broker,
        })
    }

    /// A hand-over for records submitted from inside this process.
    pub fn intake(&self) -> Intake {
        self.intake.clone().expect("the hub is running")
    }

    /// Stops in the order that loses nothing: connectors stop taking records
    /// and wait for their commits, intake commits what is queued, then the
    /// dispatcher finishes its requests in flight and records their results.
    pub async fn shutdown(mut self) {
        self.connectors_stop.cancel();
        for (name, task) in self.connectors.drain(..) {
            if task.await.is_err() {
                tracing::error!(connector = %name, "connector task panicked");
            }
        }
        self.intake.take();
        self.intake_stop.cancel();
        let _ = (&mut self.intake_task).await;
        self.delivery_stop.cancel();
        let _ = (&mut self.dispatcher).await;
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        self.store.close().await;
    }
}
