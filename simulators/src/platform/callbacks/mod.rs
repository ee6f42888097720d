//! The platform's way back: status callbacks (`POST
//! /api/v1/platform/events`) for the tickets it accepts, signed with the
//! shared secret, as the real platform sends them to the hub.
//!
//! Each accepted ticket (a share of them, [`CallbackConfig::share`]) lives
//! through a round of events ([`plan`]): dispatched, maybe urged, maybe
//! escalated, resolved (with the mediation outcome for a court's dispute),
//! closed, maybe rated. A frown makes the hub reopen the matter and send a
//! new revision; once the platform has it, a second round follows. Faults
//! as a real platform makes them: some events sent twice with the same
//! `X-Event-Id`, some sent after a newer one, and one forged (a wrong
//! secret, which the hub must refuse with 401). Every event is sent again
//! until the hub answers 2xx, at most [`CallbackConfig::concurrency`]
//! requests at a time; a 422 is kept by the hub for a person and not sent
//! again.

mod departments;
pub mod plan;
mod send;
pub mod sign;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use self::plan::{Accepted, Planned};
use self::send::{Answer, Attempt};
use super::Shared;
use crate::agencies::content::{Rng, body_hash};

/// Where callbacks go and how the platform behaves.
#[derive(Clone, Debug)]
pub struct CallbackConfig {
    /// The hub's listener, e.g. `http://127.0.0.1:9400` (the path is added).
    pub target: String,
    /// The shared secret callbacks are signed with.
    pub secret: String,
    /// Share of accepted tickets whose handling is reported.
    pub share: f64,
    /// The mean time between two events of one ticket.
    pub step: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    pub urge_share: f64,
    pub escalate_share: f64,
    /// Share of closures the citizen rates.
    pub rate_share: f64,
    /// Share of ratings that are a frown (the matter is reopened).
    pub unsatisfied_share: f64,
    /// Share of court disputes mediated to an agreement (else FAILED).
    pub agreed_share: f64,
    /// Share of events sent twice with the same event id.
    pub duplicate_share: f64,
    /// Share of tickets whose urging is sent after the next event.
    pub out_of_order_share: f64,
    /// Send one forged callback (a wrong secret) before the first real one.
    pub forge_one: bool,
    /// How long a lifecycle waits for the reopened revision after a frown.
    pub reopen_wait: Duration,
    pub seed: u64,
}

impl CallbackConfig {
    /// Callbacks to `target` signed with `secret`, with the faults a real
    /// platform shows now and then.
    pub fn new(target: impl Into<String>, secret: impl Into<String>) -> Self {
        CallbackConfig {
            target: target.into(),
            secret: secret.into(),
            share: 1.0,
            step: Duration::from_millis(500),
            concurrency: 8,
            urge_share: 0.3,
            escalate_share: 0.1,
            rate_share: 0.6,
            unsatisfied_share: 0.2,
            agreed_share: 0.75,
            duplicate_share: 0.05,
            out_of_order_share: 0.1,
            forge_one: true,
            reopen_wait: Duration::from_secs(30),
            seed: 7,
        }
    }
}

/// What the platform sent and how the hub answered.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CallbackStats {
    /// Tickets whose handling was reported.
    pub tickets: u64,
    /// Distinct events (event ids), the forged one not counted.
    pub events: u64,
    /// HTTP requests, retries, repeats and the forged one included.
    pub requests: u64,
    /// Answered 200 `applied` or `reopened`: the ticket moved.
    pub applied: u64,
    /// Of those, a frown that reopened the matter.
    pub reopened: u64,
    /// Answered 200 `stale`: older than its ticket's last event.
    pub stale: u64,
    /// Answered 200 `duplicate`: the same event id again.
    pub duplicates: u64,
    /// Events sent a second time on purpose.
    pub repeats: u64,
    /// Events sent after a newer one on purpose.
    pub late: u64,
    /// 422: kept by the hub for a person.
    pub held: u64,
    /// 401 answers to genuine callbacks (each sent again).
    pub refused: u64,
    /// 401 for the forged callback (as it should be).
    pub forged_refused: u64,
    /// 2xx for the forged callback (a fault of the hub).
    pub forged_accepted: u64,
    /// Attempts answered otherwise (5xx, no connection), sent again.
    pub retried: u64,
    /// Events given up when the sender was stopped.
    pub abandoned: u64,
    /// Resolutions carrying a mediation outcome.
    pub mediations: u64,
    /// Reopened revisions the platform received after a frown.
    pub reopened_revisions: u64,
    /// Distinct events sent, by status.
    pub by_status: BTreeMap<String, u64>,
}

/// An event the hub applied: what each origin of its ticket is to hear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedEvent {
    pub ticket_id: String,
    /// The event's own status: the origins hear it.
    pub status: String,
    /// What the origins hear besides: `reopened` when the event's frown
    /// reopened the matter (the event's own status otherwise).
    pub told: String,
    /// The event's `at`, in Unix milliseconds.
    pub at_ms: i64,
    /// The mediation outcome a resolution carried.
    pub mediation: Option<String>,
}

struct Inner {
    cfg: CallbackConfig,
    url: String,
    client: reqwest::Client,
    shared: Arc<Shared>,
    permits: Semaphore,
    stats: Mutex<CallbackStats>,
    applied: Mutex<Vec<AppliedEvent>>,
    forge_pending: AtomicBool,
}

impl Inner {
    fn tally(&self, f: impl FnOnce(&mut CallbackStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// A running callback sender; [`CallbackSender::finish`] ends it.
pub struct CallbackSender {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CallbackSender {
    pub(crate) fn start(shared: Arc<Shared>, cfg: CallbackConfig) -> anyhow::Result<CallbackSender> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot make the callback client: {e}"))?;
        let url = format!("{}/api/v1/platform/events", cfg.target.trim_end_matches('/'));
        let (tx, rx) = mpsc::unbounded_channel();
        shared.set_accepted(Some(tx));
        let inner = Arc::new(Inner {
            permits: Semaphore::new(cfg.concurrency.max(1)),
            forge_pending: AtomicBool::new(cfg.forge_one),
            cfg,
            url,
            client,
            shared,
            stats: Mutex::default(),
            applied: Mutex::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(take(inner.clone(), rx, stopped));
        Ok(CallbackSender { inner, stop, task })
    }

    /// The counters so far.
    pub fn stats(&self) -> CallbackStats {
        self.inner.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every event the hub applied, in the order of its answers.
    pub fn applied(&self) -> Vec<AppliedEvent> {
        self.inner.applied.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes no more tickets, lets the lifecycles under way finish for up
    /// to `within`, then stops them (what is left counts as abandoned).
    pub async fn finish(self, within: Duration) -> (CallbackStats, Vec<AppliedEvent>) {
        self.inner.shared.set_accepted(None);
        let mut task = self.task;
        if tokio::time::timeout(within, &mut task).await.is_err() {
            let _ = self.stop.send(true);
            let _ = task.await;
        }
        let stats = self.inner.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let applied = self.inner.applied.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (stats, applied)
    }
}

/// Starts a lifecycle for a share of the accepted tickets; returns when
/// no more come and every lifecycle is over.
async fn take(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Accepted>, stopped: watch::Receiver<bool>) {
    let mut lifecycles = JoinSet::new();
    let mut rng = Rng::new(inner.cfg.seed);
    loop {
        tokio::select! {
            accepted = rx.recv() => match accepted {
                Some(ticket) => {
                    if rng.chance(inner.cfg.share) {
                        inner.tally(|s| s.tickets += 1);
                        lifecycles.spawn(lifecycle(inner.clone(), ticket, stopped.clone()));
                    }
                }
                None => break,
            },
            Some(_) = lifecycles.join_next(), if !lifecycles.is_empty() => {}
        }
    }
    while lifecycles.join_next().await.is_some() {}
}

/// Sleeps until `at`; false if the sender was stopped meanwhile.
async fn wait_until(at: Instant, stopped: &mut watch::Receiver<bool>) -> bool {
    if *stopped.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(at) => true,
        _ = stopped.wait_for(|s| *s) => false,
    }
}

async fn lifecycle(inner: Arc<Inner>, ticket: Accepted, mut stopped: watch::Receiver<bool>) {
    let mut rng = Rng::new(inner.cfg.seed ^ body_hash(ticket.ticket_id.as_bytes()));
    let mut first = true;
    loop {
        let started = Instant::now();
        let now = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
        let mut frowned = false;
        for p in plan::round(&inner.cfg, &mut rng, &ticket, now, first) {
            if !wait_until(started + p.send_after, &mut stopped).await {
                return;
            }
            if inner.forge_pending.swap(false, Ordering::Relaxed) {
                forge(&inner, &p, &mut stopped).await;
            }
            let revision_before = inner.shared.store.ticket(&ticket.ticket_id).map_or(0, |t| t.revision);
            match deliver(&inner, &p, &mut stopped).await {
                Answer::Taken(outcome) if outcome == "reopened" => {
                    frowned = true;
                    wait_for_reopening(&inner, &ticket.ticket_id, revision_before, &mut stopped).await;
                }
                Answer::Taken(_) | Answer::Refused => {}
                // The hub does not know the ticket, or we were stopped.
                Answer::Held | Answer::Abandoned => return,
            }
        }
        if !(first && frowned) {
            return;
        }
        first = false;
    }
}

/// Waits (at most `reopen_wait`) until the platform has the revision the
/// hub made of a frown, as a platform re-dispatches only a reopened ticket.
async fn wait_for_reopening(inner: &Inner, ticket_id: &str, before: i64, stopped: &mut watch::Receiver<bool>) {
    let deadline = Instant::now() + inner.cfg.reopen_wait;
    while Instant::now() < deadline {
        if inner.shared.store.ticket(ticket_id).is_some_and(|t| t.revision > before) {
            inner.tally(|s| s.reopened_revisions += 1);
            return;
        }
        if !wait_until(Instant::now() + Duration::from_millis(200), stopped).await {
            return;
        }
    }
}

/// Sends `p` until it is taken (and once more if it is a repeat); tallies.
async fn deliver(inner: &Inner, p: &Planned, stopped: &mut watch::Receiver<bool>) -> Answer {
    inner.tally(|s| {
        s.events += 1;
        *s.by_status.entry(p.status.to_string()).or_default() += 1;
        s.late += u64::from(p.late);
        s.mediations += u64::from(p.body.get("mediation").is_some());
    });
    let body = serde_json::to_vec(&p.body).unwrap_or_default();
    let secret = inner.cfg.secret.as_bytes();
    let first = until_answered(inner, secret, &p.event_id, &body, stopped).await;
    record(inner, p, &first);
    if p.repeat && matches!(first, Answer::Taken(_)) {
        inner.tally(|s| s.repeats += 1);
        let again = until_answered(inner, secret, &p.event_id, &body, stopped).await;
        record(inner, p, &again);
    }
    first
}

/// Counts an answer; an applied event goes on the list of what the
/// origins are to hear.
fn record(inner: &Inner, p: &Planned, answer: &Answer) {
    inner.tally(|s| match answer {
        Answer::Taken(o) if o == "applied" => s.applied += 1,
        Answer::Taken(o) if o == "reopened" => {
            s.applied += 1;
            s.reopened += 1;
        }
        Answer::Taken(o) if o == "stale" => s.stale += 1,
        Answer::Taken(o) if o == "duplicate" => s.duplicates += 1,
        Answer::Taken(_) => {}
        Answer::Held => s.held += 1,
        // Counted per attempt in `until_answered`.
        Answer::Refused => {}
        Answer::Abandoned => s.abandoned += 1,
    });
    if let Answer::Taken(o) = answer
        && (o == "applied" || o == "reopened")
    {
        let at_ms = p.body["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp_millis());
        let told = if o == "reopened" { "reopened".to_string() } else { p.status.to_string() };
        let mediation = p.body["mediation"]["result"].as_str().map(str::to_string);
        let event = AppliedEvent {
            ticket_id: p.body["ticketId"].as_str().unwrap_or_default().to_string(),
            status: p.status.to_string(),
            told,
            at_ms,
            mediation,
        };
        inner.applied.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

/// One forged callback: the event's body under a new id, signed with a
/// secret the hub does not know.
async fn forge(inner: &Inner, p: &Planned, stopped: &mut watch::Receiver<bool>) {
    let body = serde_json::to_vec(&p.body).unwrap_or_default();
    let id = format!("forged-{}", uuid::Uuid::new_v4());
    match until_answered(inner, b"not-the-platforms-secret", &id, &body, stopped).await {
        Answer::Refused => inner.tally(|s| s.forged_refused += 1),
        Answer::Taken(_) => {
            tracing::error!("the hub accepted a forged callback");
            inner.tally(|s| s.forged_accepted += 1);
        }
        Answer::Held => inner.tally(|s| s.forged_accepted += 1),
        Answer::Abandoned => {}
    }
}

/// Attempts until the hub takes the callback (2xx) or keeps it for a
/// person (422), as the platform does, or until a stop. A 401 ends a
/// forged callback's attempts; a genuine one refused is counted and sent
/// again, as the platform keeps it until the hub takes it.
async fn until_answered(
    inner: &Inner,
    secret: &[u8],
    event_id: &str,
    body: &[u8],
    stopped: &mut watch::Receiver<bool>,
) -> Answer {
    let forged = secret != inner.cfg.secret.as_bytes();
    let mut failures = 0u32;
    loop {
        let attempt = {
            let Ok(_permit) = inner.permits.acquire().await else { return Answer::Abandoned };
            inner.tally(|s| s.requests += 1);
            send::attempt(&inner.client, &inner.url, secret, event_id, body).await
        };
        let reason = match attempt {
            Attempt::Done(Answer::Refused) if !forged => {
                inner.tally(|s| s.refused += 1);
                "refused (401)".to_string()
            }
            Attempt::Done(answer) => return answer,
            Attempt::Again(reason) => {
                inner.tally(|s| s.retried += 1);
                reason
            }
        };
        tracing::debug!(event_id, %reason, "callback not taken; sending it again");
        let wait = send::backoff(failures, rand::random::<f64>());
        failures = failures.saturating_add(1);
        if !wait_until(Instant::now() + wait, stopped).await {
            return Answer::Abandoned;
        }
    }
}
