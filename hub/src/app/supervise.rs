//! Keeping the hub's parts alive, or taking the process down when one of
//! them cannot be.
//!
//! - A **connector** that returns an error, returns early or panics is run
//!   again after a jittered, capped exponential pause. Its records are safe
//!   meanwhile: nothing it took was acknowledged before its commit, so the
//!   source still holds it. A taken port or a broker down for the night
//!   heals by itself; `/readyz` and `hub_connector_up` show it meanwhile.
//! - **Intake** and the **dispatcher** are not restarted in the process: a
//!   death there is a bug, and what it held (batches being answered, leases
//!   in flight) is put right by a fresh start, which releases leases and
//!   replays nothing twice. The hub stops the rest gracefully and `hub run`
//!   exits with code 70, for the service manager to start it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use connectors::{BoxedConnector, CancellationToken, Intake};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

use super::readiness::{ConnectorState, Health, TaskState};
use crate::delivery::RetryPolicy;

/// How a connector is made again after it stopped.
pub enum Launcher {
    /// From its settings, afresh for each run (`Hub::start`).
    Remake(Box<dyn FnMut() -> Result<BoxedConnector, String> + Send>),
    /// An instance handed over by the caller (tests, benchmarks): it runs
    /// once, and when it stops it stays down, reported as such.
    Once(Option<BoxedConnector>),
}

impl Launcher {
    fn next(&mut self) -> Option<Result<BoxedConnector, String>> {
        match self {
            Launcher::Remake(make) => Some(make()),
            Launcher::Once(c) => c.take().map(Ok),
        }
    }
}

/// The pause between a connector's runs: from one second, doubling with
/// ±30% jitter (hubs restarted together do not knock together), at most a
/// minute. A run that lasted longer than the cap starts the sequence again.
pub fn restart_policy() -> RetryPolicy {
    RetryPolicy { initial: Duration::from_secs(1), max: Duration::from_secs(60), ..RetryPolicy::default() }
}

/// Runs a connector until `stop`, running it again whenever it stops by
/// itself. Returns once `stop` is cancelled and the running connector has
/// finished its commits in flight.
pub async fn connector(
    name: String,
    mut launcher: Launcher,
    intake: Intake,
    stop: CancellationToken,
    health: Arc<Health>,
    policy: RetryPolicy,
) {
    let mut backoff = policy.backoff();
    // The connector says on it whether its connection is up (`/readyz`).
    let intake = intake.with_link(health.link(&name));
    loop {
        let error = match launcher.next() {
            None => {
                health.connector(
                    &name,
                    ConnectorState::Stopped { error: Some("stopped and cannot be made again".into()) },
                );
                return;
            }
            Some(Err(e)) => e,
            Some(Ok(c)) => {
                health.connector(&name, ConnectorState::Running);
                let started = Instant::now();
                // A task of its own, so that a panic ends this run, not the supervisor.
                let run = tokio::spawn(c.run(intake.clone(), stop.clone())).await;
                if stop.is_cancelled() {
                    if let Err(e) = &run {
                        tracing::error!(connector = %name, error = %why(e), "connector failed while stopping");
                    }
                    break;
                }
                if started.elapsed() > policy.max {
                    backoff.reset();
                }
                match run {
                    Ok(Ok(())) => "it stopped by itself".to_string(),
                    Ok(Err(e)) => e.message,
                    Err(e) => why(&e),
                }
            }
        };
        if matches!(launcher, Launcher::Once(None)) {
            tracing::error!(connector = %name, %error, "connector stopped; it was handed over as an instance and cannot be run again");
            health.connector(&name, ConnectorState::Stopped { error: Some(error) });
            return;
        }
        let pause = backoff.next_backoff().unwrap_or(policy.max);
        tracing::error!(connector = %name, %error, retry_in = ?pause, "connector stopped; running it again after a pause");
        health.connector(&name, ConnectorState::Restarting { error });
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => break,
        }
    }
    health.connector(&name, ConnectorState::Stopped { error: None });
}

/// Why a task ended without returning. The panic's message itself went to
/// stderr through the panic hook; it is not repeated, as it may quote data.
fn why(e: &JoinError) -> String {
    if e.is_panic() { "it panicked".to_string() } else { "it was cancelled".to_string() }
}

/// Intake or the dispatcher died while the hub was running.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the {component} died: {reason}; the hub stops so that it can be started afresh")]
pub struct Died {
    pub component: &'static str,
    pub reason: String,
}

/// Watches a task that must live as long as the hub: if it ends before
/// `stop` asked it to, it is reported dead to `health` and `died`.
pub fn watch_vital(
    component: &'static str,
    task: JoinHandle<()>,
    stop: CancellationToken,
    health: Arc<Health>,
    died: watch::Sender<Option<Died>>,
) -> JoinHandle<()> {
    health.task(component, TaskState::Running);
    tokio::spawn(async move {
        let ended = task.await;
        if stop.is_cancelled() && ended.is_ok() {
            return;
        }
        let reason = match &ended {
            Ok(()) => "it stopped unasked".to_string(),
            Err(e) => why(e),
        };
        tracing::error!(component, %reason, "a vital part of the hub died; stopping the hub");
        health.task(component, TaskState::Dead(reason.clone()));
        died.send_if_modified(|d| {
            let first = d.is_none();
            if first {
                *d = Some(Died { component, reason });
            }
            first
        });
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use connectors::{Connector, ConnectorError};
    use futures::future::BoxFuture;

    use super::*;

    /// Panics on its first run, fails on its second, then runs until stopped.
    struct Flaky(Arc<AtomicUsize>);

    impl Connector for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }

        fn run(self: Box<Self>, _: Intake, stop: CancellationToken) -> BoxFuture<'static, Result<(), ConnectorError>> {
            Box::pin(async move {
                match self.0.fetch_add(1, Ordering::SeqCst) {
                    0 => panic!("the first run panics"),
                    1 => Err(ConnectorError { connector: "flaky".into(), message: "the second run fails".into() }),
                    _ => {
                        stop.cancelled().await;
                        Ok(())
                    }
                }
            })
        }
    }

    #[tokio::test]
    async fn a_connector_that_panics_or_fails_is_run_again_until_it_stays_up() {
        let runs = Arc::new(AtomicUsize::new(0));
        let made = runs.clone();
        let launcher = Launcher::Remake(Box::new(move || Ok(Box::new(Flaky(made.clone())) as BoxedConnector)));
        let (intake, _rx, _pages) = connectors::intake_channels(4);
        let (stop, health) = (CancellationToken::new(), Arc::new(Health::default()));
        let policy = RetryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        let task = tokio::spawn(connector("flaky".into(), launcher, intake, stop.clone(), health.clone(), policy));
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 3 || health.connector_state("flaky") != Some(ConnectorState::Running) {
            assert!(Instant::now() < deadline, "never came up: {:?}", health.connector_state("flaky"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(health.render_metrics().contains("hub_connector_restarts_total{source=\"flaky\"} 2"));
        stop.cancel();
        task.await.unwrap();
        assert_eq!(health.connector_state("flaky"), Some(ConnectorState::Stopped { error: None }));
        assert_eq!(runs.load(Ordering::SeqCst), 3, "not run again after the stop");
    }

    #[tokio::test]
    async fn a_vital_task_that_panics_is_reported_dead() {
        let health = Arc::new(Health::default());
        let (tx, mut died) = watch::channel(None);
        let task = tokio::spawn(async { panic!("a bug") });
        watch_vital("dispatcher", task, CancellationToken::new(), health, tx).await.unwrap();
        let d = died.wait_for(Option::is_some).await.unwrap().clone().unwrap();
        assert_eq!((d.component, d.reason.as_str()), ("dispatcher", "it panicked"));
    }
}
