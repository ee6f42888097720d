//! Sends one agency's queued feedback, in order, over its transport.
//!
//! A message is done only when the agency's side has taken it (publisher
//! confirm, PUBACK, 2xx/409). A failure that may pass (broker down, 5xx,
//! 429) waits with jittered backoff (or the `Retry-After` asked for, within
//! bounds) and holds the messages behind it; a refusal for good (a 4xx) is
//! kept as dead with the answer, raised as an ALARM, and the rest go on.
//! A batch is sent together over a transport that keeps the order (AMQP,
//! MQTT), one after the other over HTTP, and its results recorded in one
//! commit; over AMQP and MQTT, a message that fails while later ones of its
//! batch get through is the one case where an agency hears two changes out
//! of order.

use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use connectors::CancellationToken;
use connectors::outbound::{Outbound, SendError, Sender};

use crate::delivery::RetryPolicy;
use crate::metrics::Metrics;
use crate::store::{FeedbackMessage, FeedbackResult, Store, now_ms};

/// How often an idle destination looks for new messages.
const POLL: Duration = Duration::from_millis(200);
/// Messages leased at once; sent one after the other.
const BATCH: i64 = 32;
/// A lease outlives the slowest send (publish timeouts are 30 s).
const LEASE_MS: i64 = 120_000;

pub struct Destination {
    /// The source (agency) name the messages are queued under.
    pub name: String,
    pub sender: Arc<dyn Sender>,
}

/// Sends `destination`'s messages until `stop`.
pub async fn run(
    store: Store,
    destination: Destination,
    owner: String,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let name = destination.name.as_str();
    let queued = store.feedback_queued();
    let mut backoff = policy.backoff();
    let mut failing = false;
    while !stop.is_cancelled() {
        let batch = match store.lease_feedback(name, &owner, BATCH, LEASE_MS).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(destination = name, error = %e, "cannot read the feedback outbox; trying again");
                pause(&stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            // Woken at once when this process queues a change; other hubs'
            // changes (and retries coming due) are found by polling.
            tokio::select! {
                _ = queued.notified() => {}
                _ = pause(&stop, POLL) => {}
            }
            continue;
        }
        // Sent together, in order: publishes on one AMQP channel and
        // publishes of one MQTT connection reach the broker in the order
        // they are made, and each waits only for its own confirm.
        let outbound: Vec<Outbound> = batch
            .iter()
            .map(|m| Outbound {
                address: m.address.clone(),
                body: m.body.clone(),
                message_id: m.message_id.clone(),
                content_type: m.content_type.clone(),
            })
            .collect();
        let sender = &destination.sender;
        let sending = async {
            if sender.keeps_order() {
                futures::future::join_all(outbound.iter().map(|o| sender.send(o))).await
            } else {
                // One after the other, up to the first that must wait.
                let mut sent = Vec::with_capacity(outbound.len());
                for o in &outbound {
                    let r = sender.send(o).await;
                    let wait = matches!(r, Err(SendError::Retry { .. }));
                    sent.push(r);
                    if wait {
                        break;
                    }
                }
                sent
            }
        };
        let sent = tokio::select! {
            sent = sending => sent,
            // The leases lapse; the messages are sent again by the next start.
            _ = stop.cancelled() => break,
        };
        // Messages not sent (behind one that must wait) are released by the settling.
        let batch: Vec<FeedbackMessage> = batch.into_iter().take(sent.len()).collect();
        // One wait per batch: the messages of one outage wait together,
        // not each a step further along the backoff.
        let mut wait = None;
        let results: Vec<(FeedbackMessage, FeedbackResult)> = batch
            .into_iter()
            .zip(sent)
            .map(|(m, sent)| {
                let result = judge(&m, sent, &mut backoff, &mut wait, &mut failing, &metrics);
                (m, result)
            })
            .collect();
        if let Err(e) = store.settle_feedback(&owner, &results).await {
            tracing::warn!(destination = name, error = %e, "cannot record feedback results; they are sent again");
            pause(&stop, Duration::from_secs(1)).await;
        }
    }
}

/// What one send's answer means for its message.
fn judge(
    m: &FeedbackMessage,
    sent: Result<(), SendError>,
    backoff: &mut backoff::ExponentialBackoff,
    batch_wait: &mut Option<Duration>,
    failing: &mut bool,
    metrics: &Metrics,
) -> FeedbackResult {
    match sent {
        Ok(()) => {
            metrics.feedback(&m.destination, "delivered");
            if *failing {
                tracing::info!(destination = %m.destination, "feedback flows again");
                *failing = false;
                backoff.reset();
            }
            FeedbackResult::Delivered
        }
        Err(SendError::Refused { reason }) => {
            metrics.feedback(&m.destination, "dead");
            tracing::error!(destination = %m.destination, ticket_id = %m.ticket_id, status = %m.status, %reason,
                "ALARM: an agency refused a status message for good; kept as dead (hub feedback list --dead)");
            FeedbackResult::Dead { error: reason }
        }
        Err(SendError::Retry { reason, after }) => {
            let wait = after.unwrap_or_else(|| {
                *batch_wait.get_or_insert_with(|| backoff.next_backoff().unwrap_or(Duration::from_secs(60)))
            });
            metrics.feedback(&m.destination, "retried");
            if !*failing {
                tracing::warn!(destination = %m.destination, %reason, retry_in = ?wait,
                    "an agency does not take its status messages now; they wait, in order (other agencies and the platform go on)");
            }
            *failing = true;
            let next_at = now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2));
            FeedbackResult::Retry { error: reason, next_at }
        }
    }
}

async fn pause(stop: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.cancelled() => {}
    }
}
