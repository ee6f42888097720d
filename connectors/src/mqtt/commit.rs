//! The commit side: hands deliveries to the hub and PUBACKs them once stored.
//!
//! It runs in its own task, apart from the one that polls the connection:
//! a PUBACK travels through rumqttc's bounded request channel, which only
//! polling drains, so awaiting it in the polling task can deadlock (#1025).
//!
//! Submits run concurrently (up to `inflight`), but their outcomes are taken
//! in arrival order (a `FuturesOrdered`), so PUBACKs leave in the order the
//! PUBLISHes came (MQTT-4.6.0-2) and a later message is never acknowledged
//! ahead of an earlier one that is still on its way to the store.
//!
//! When the hub cannot store a message, that message and every later one
//! of its connection stay unacknowledged, and the poller is asked to drop
//! the connection: on the next one the broker resends all of them from the
//! persistent session, and those the hub did store come back as duplicates.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use tokio::sync::mpsc;

use crate::{CancellationToken, Intake, IntakeError, Outcome};

use super::record::record;
use super::wire::{Client, Delivery};

/// A delivery on its way to the hub, with the client of the connection it
/// came on: its PUBACK is only valid there.
pub(crate) struct Received {
    pub connection: u64,
    pub client: Client,
    pub delivery: Box<Delivery>,
}

/// Asks the poller to drop this connection so the broker redelivers.
#[derive(Debug)]
pub(crate) struct DropConnection {
    pub connection: u64,
    pub reason: String,
}

pub(crate) struct Committer {
    pub name: String,
    pub system: String,
    pub intake: Intake,
    pub inflight: usize,
    pub max_payload_bytes: usize,
    pub drop_tx: mpsc::Sender<DropConnection>,
    /// The number of the connection the poller is on (0 between
    /// connections): a PUBACK for any other one is moot, the broker resends.
    pub current: Arc<AtomicU64>,
}

/// How soon to try again to queue a PUBACK when rumqttc's request channel
/// is full (the poller drains it as it polls).
const ACK_RETRY: Duration = Duration::from_millis(1);

impl Committer {
    /// Runs until `received` closes or `shutdown` is cancelled; then takes no
    /// more deliveries but waits for the submits in flight and acknowledges
    /// them. Deliveries never taken stay unacknowledged, which is safe: they
    /// come after every acknowledged one, and the broker resends them.
    pub(crate) async fn run(self, mut received: mpsc::Receiver<Received>, shutdown: CancellationToken) {
        let mut submits = FuturesOrdered::new();
        // Stored, waiting for their PUBACK to be queued, in arrival order.
        // Queued without waiting (never `ack().await`): the poller may be
        // waiting for room in the bounded work channel, which only this task
        // makes, so waiting here for room in rumqttc's request channel, which
        // only the poller makes, could wait forever.
        let mut acks: VecDeque<Received> = VecDeque::new();
        // The connection on which a submit failed: no more PUBACKs on it.
        let mut failed_connection = None;
        let mut closed = false;
        let (mut acked, mut refused) = (0u64, 0u64);
        loop {
            while let Some(item) = acks.front() {
                if item.connection != self.current.load(Ordering::Acquire) {
                    // Its connection is gone: the broker resends, the hub answers Duplicate.
                    acks.pop_front();
                } else if item.client.try_ack(&item.delivery).is_ok() {
                    acked += 1;
                    acks.pop_front();
                } else {
                    break;
                }
            }
            let taking = !closed && !shutdown.is_cancelled();
            if !taking && submits.is_empty() && acks.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some((item, result)) = submits.next(), if !submits.is_empty() => {
                    let item: Received = item;
                    match result {
                        Ok(outcome) if failed_connection != Some(item.connection) => {
                            log_outcome(&item.delivery, &outcome);
                            acks.push_back(item);
                        }
                        Ok(_) => {}
                        Err(error) => {
                            refused += 1;
                            if failed_connection != Some(item.connection) {
                                failed_connection = Some(item.connection);
                                tracing::debug!(connector = %self.name, pkid = item.delivery.pkid, %error, "hub did not store an mqtt message; it stays unacknowledged");
                                let reason = match error {
                                    IntakeError::ShuttingDown => "the hub is shutting down".to_string(),
                                    IntakeError::Store(_) | IntakeError::Unsupported => {
                                        format!("the hub could not store a message ({error})")
                                    }
                                };
                                // The poller may be gone already (shutdown), or
                                // have a drop to read already: fine either way.
                                let _ = self.drop_tx.try_send(DropConnection { connection: item.connection, reason });
                            }
                        }
                    }
                }
                next = received.recv(), if taking && submits.len() < self.inflight => match next {
                    Some(item) => {
                        let intake = self.intake.clone();
                        if item.delivery.payload.len() > self.max_payload_bytes {
                            tracing::warn!(connector = %self.name, pkid = item.delivery.pkid, bytes = item.delivery.payload.len(), "mqtt payload above the contract's limit; the hub will quarantine it");
                        }
                        let record = record(&self.system, &item.delivery);
                        submits.push_back(async move {
                            let result = intake.submit(record).await;
                            (item, result)
                        });
                    }
                    None => closed = true,
                },
                _ = shutdown.cancelled(), if taking => {}
                _ = tokio::time::sleep(ACK_RETRY), if !acks.is_empty() => {}
            }
        }
        tracing::debug!(connector = %self.name, acked, refused, "mqtt committer stopped");
    }
}

fn log_outcome(delivery: &Delivery, outcome: &Outcome) {
    let outcome = match outcome {
        Outcome::Created { .. } => "created",
        Outcome::Updated { .. } => "updated",
        Outcome::Duplicate => "duplicate",
        Outcome::Stale => "stale",
        Outcome::Quarantined { .. } => "quarantined",
    };
    tracing::trace!(pkid = delivery.pkid, dup = delivery.dup, outcome, "mqtt message stored");
}
