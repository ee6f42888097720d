//! Hub → terminal notifications on `grid/{county}/{workerId}/notify`
//! (QoS 1, retain false), each confirmed by the broker's PUBACK.
//!
//! One task owns the connection and publishes; callers wait for their
//! PUBACK. The connection uses a clean session and a fresh client each time
//! (see the `wire` module): after a reconnect the driver itself publishes
//! again whatever was not acknowledged, so nothing depends on rumqttc
//! replaying its own queue. A notification can therefore reach a terminal
//! twice; that is QoS 1.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::config::{ConfigError, MqttConfig, MqttProtocol};
use super::reconnect::Reconnect;
use super::topic::notify_topic;
use super::wire::{Connection, Event, Options, Protocol};

/// Publishes not yet acknowledged at once.
const WINDOW: usize = 32;
/// Notifications waiting for the connection; beyond this `notify` waits.
const QUEUE: usize = 1024;

/// A handle to the notification publisher. Cheap to clone; the connection
/// closes when the last clone is dropped.
#[derive(Clone)]
pub struct Notifier {
    jobs: mpsc::Sender<Job>,
    deadline: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotifyError {
    #[error("county code and worker id must be non-empty and free of `/`, `+`, `#`")]
    BadAddress,
    /// Not acknowledged in time. It may still arrive (it may have been sent).
    #[error("no PUBACK within {0:?}")]
    Deadline(Duration),
    #[error("the notifier has stopped")]
    Closed,
}

struct Job {
    topic: String,
    body: Bytes,
    done: oneshot::Sender<()>,
}

impl Notifier {
    /// Starts the publisher, connecting as `client_id` (not the connector's:
    /// the broker allows one connection per id) to `config.url` with its
    /// keep-alive and reconnect waits; always MQTT 3.1.1, clean session.
    /// Needs a Tokio runtime. Notifications give up after 30 s by default.
    pub fn start(config: &MqttConfig, client_id: impl Into<String>) -> Result<Notifier, ConfigError> {
        // 3.1.1 whatever the connector speaks: every broker has it, and a
        // publisher needs neither a receive maximum nor a session.
        let config = MqttConfig {
            client_id: client_id.into(),
            protocol: MqttProtocol::V311,
            shared_group: None,
            ..config.clone()
        };
        let endpoint = config.validate()?;
        let options = Options {
            protocol: Protocol::V4,
            persistent: false,
            manual_acks: false,
            request_capacity: WINDOW * 2,
            // rumqttc's packet-id space; larger than the window so that ids
            // are not reused while the broker acknowledges in order.
            outgoing_inflight: (WINDOW * 2) as u16,
            ..Options::from_config(&config, endpoint)?
        };
        let (jobs, rx) = mpsc::channel(QUEUE);
        let reconnect = Reconnect::new(
            format!("{}-notify", config.system),
            format!("{}:{}", options.host, options.port),
            config.reconnect_initial,
            config.reconnect_max,
        );
        tokio::spawn(Driver { options, reconnect, jobs: rx, queue: VecDeque::new() }.run());
        Ok(Notifier { jobs, deadline: Duration::from_secs(30) })
    }

    /// How long [`notify`](Self::notify) keeps trying.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Publishes `body` to `grid/{county}/{worker_id}/notify` and returns once
    /// the broker acknowledged it, publishing again after connection losses,
    /// until the deadline.
    pub async fn notify(&self, county: &str, worker_id: &str, body: &[u8]) -> Result<(), NotifyError> {
        let topic = notify_topic(county, worker_id).ok_or(NotifyError::BadAddress)?;
        self.publish(topic, body).await
    }

    /// Publishes `body` to `topic` (no wildcards, no empty level) and
    /// returns once the broker acknowledged it, as [`notify`](Self::notify).
    pub async fn publish(&self, topic: String, body: &[u8]) -> Result<(), NotifyError> {
        if topic.is_empty() || topic.contains(['+', '#', '\0']) || topic.split('/').any(str::is_empty) {
            return Err(NotifyError::BadAddress);
        }
        let (done, acked) = oneshot::channel();
        let job = Job { topic, body: Bytes::copy_from_slice(body), done };
        let attempt = async {
            self.jobs.send(job).await.map_err(|_| NotifyError::Closed)?;
            acked.await.map_err(|_| NotifyError::Closed)
        };
        tokio::time::timeout(self.deadline, attempt).await.map_err(|_| NotifyError::Deadline(self.deadline))?
    }
}

struct Driver {
    options: Options,
    reconnect: Reconnect,
    jobs: mpsc::Receiver<Job>,
    /// Accepted, not yet handed to a connection (or handed to a lost one).
    queue: VecDeque<Job>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            let Err(reason) = self.connection().await else {
                return;
            };
            let wait = self.reconnect.failed(&reason);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // Every handle dropped: nobody waits for anything any more.
                _ = handles_gone(&self.jobs) => return,
            }
        }
    }

    /// One connection; `Ok` once every handle is gone, `Err` when it was lost.
    async fn connection(&mut self) -> Result<(), String> {
        let mut conn = Connection::new(&self.options);
        let client = conn.client().clone();
        let mut connected = false;
        // Handed to the client, in order; the packet id once it went out.
        let mut outstanding: VecDeque<(Option<u16>, Job)> = VecDeque::new();
        let mut closing = false;
        let result = loop {
            while connected && !closing && outstanding.len() < WINDOW {
                let Some(job) = self.queue.pop_front() else { break };
                if job.done.is_closed() {
                    continue; // the caller gave up
                }
                if client.try_publish(&job.topic, job.body.clone()).is_err() {
                    self.queue.push_front(job);
                    break;
                }
                outstanding.push_back((None, job));
            }
            tokio::select! {
                job = self.jobs.recv(), if !closing && self.queue.len() < QUEUE => match job {
                    Some(job) => self.queue.push_back(job),
                    None => {
                        closing = true;
                        if !connected || client.try_disconnect().is_err() {
                            break Ok(());
                        }
                    }
                },
                _ = tokio::time::sleep(Duration::from_secs(5)), if closing => break Ok(()),
                event = conn.poll() => match event {
                    Err(e) if closing => {
                        tracing::debug!(error = %e, "notifier connection closed");
                        break Ok(());
                    }
                    Err(e) => break Err(e.to_string()),
                    Ok(Event::Connected { .. }) => {
                        connected = true;
                        self.reconnect.connected();
                    }
                    Ok(Event::Published { pkid }) => {
                        if let Some(slot) = outstanding.iter_mut().find(|(id, _)| id.is_none()) {
                            slot.0 = Some(pkid);
                        }
                    }
                    Ok(Event::PublishAcked { pkid }) => {
                        if let Some(at) = outstanding.iter().position(|(id, _)| *id == Some(pkid))
                            && let Some((_, job)) = outstanding.remove(at)
                        {
                            let _ = job.done.send(());
                        }
                    }
                    // After our DISCONNECT, read until the broker closes: closing first,
                    // with data unread, resets the connection (see the connector).
                    Ok(_) => {}
                },
            }
        };
        // Not acknowledged on this connection: first in line for the next.
        for (_, job) in outstanding.into_iter().rev() {
            self.queue.push_front(job);
        }
        result
    }
}

/// Waits until every [`Notifier`] handle is gone, without taking jobs.
async fn handles_gone(jobs: &mpsc::Receiver<Job>) {
    while !jobs.is_closed() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
