//! Sends one agency's queued feedback, in order, over its transport.
//!
//! A message is done only when the agency's side has taken it (publisher
//! confirm, PUBACK, 2xx/409). A failure that may pass (broker down, 5xx,
//! 429) waits with jittered backoff (or the `Retry-After` asked for, within
//! bounds) and holds the messages behind it, so they keep their order; a
//! refusal for good (a 4xx, nothing bound to the exchange) is kept as dead
//! with the answer, raised as an ALARM, and the rest go on.

use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use connectors::CancellationToken;
use connectors::outbound::{Outbound, SendError, Sender};

use crate::delivery::RetryPolicy;
use crate::metrics::Metrics;
use crate::store::{FeedbackMessage, Store, now_ms};

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
            pause(&stop, POLL).await;
            continue;
        }
        for m in &batch {
            let outbound = Outbound {
                address: m.address.clone(),
                body: m.body.clone(),
                message_id: m.message_id.clone(),
                content_type: m.content_type.clone(),
            };
            let sent = tokio::select! {
                sent = destination.sender.send(&outbound) => sent,
                _ = stop.cancelled() => break,
            };
            if let Err(e) = settle(&store, m, &owner, sent, &mut backoff, &mut failing, &metrics).await {
                tracing::warn!(destination = name, error = %e, "cannot record a feedback result; it is sent again");
                pause(&stop, Duration::from_secs(1)).await;
                break;
            }
            if failing {
                break;
            }
        }
    }
}

/// Records what came of one send; `failing` says whether to stop the batch.
async fn settle(
    store: &Store,
    m: &FeedbackMessage,
    owner: &str,
    sent: Result<(), SendError>,
    backoff: &mut backoff::ExponentialBackoff,
    failing: &mut bool,
    metrics: &Metrics,
) -> Result<(), crate::store::StoreError> {
    match sent {
        Ok(()) => {
            store.feedback_delivered(m, owner).await?;
            metrics.feedback(&m.destination, "delivered");
            if *failing {
                tracing::info!(destination = %m.destination, "feedback flows again");
            }
            *failing = false;
            backoff.reset();
        }
        Err(SendError::Refused { reason }) => {
            store.feedback_dead(m, owner, &reason).await?;
            metrics.feedback(&m.destination, "dead");
            tracing::error!(destination = %m.destination, ticket_id = %m.ticket_id, status = %m.status, %reason,
                "ALARM: an agency refused a status message for good; kept as dead (hub feedback list --dead)");
        }
        Err(SendError::Retry { reason, after }) => {
            let wait = after.unwrap_or_else(|| backoff.next_backoff().unwrap_or(Duration::from_secs(60)));
            let next = now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2));
            store.feedback_retry(m, owner, &reason, next).await?;
            metrics.feedback(&m.destination, "retried");
            if !*failing {
                tracing::warn!(destination = %m.destination, %reason, retry_in = ?wait,
                    "an agency does not take its status messages now; they wait, in order (other agencies and the platform go on)");
            }
            *failing = true;
        }
    }
    Ok(())
}

async fn pause(stop: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.cancelled() => {}
    }
}
