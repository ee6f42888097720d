//! The dispatcher: leases changes from the outbox, PUTs them to the
//! platform with bounded concurrency, and commits the results in groups.
//!
//! Leases and results go in groups of up to `batch` changes, larger than
//! the requests in flight: on SQLite every commit takes the one writer
//! that intake needs too, so the fewer the better. Changes leased but not
//! yet sent wait in a queue; a pause gives them back.
//!
//! Ordering comes from the store: only the oldest pending change of a
//! ticket can be leased, and it leaves the outbox only when its result is
//! committed, so the next revision of that ticket waits for it.
//!
//! One gate covers the whole platform: after a failure, delivery pauses with
//! backoff (or as long as `Retry-After` says) and resumes with a single
//! probe; after 401/403 it pauses until a probe gets through. A platform
//! that is down is asked once per pause, not once per change.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backoff::backoff::Backoff;
use connectors::retry_after::RetryAfterBounds;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Answer, PlatformClient, RetryPolicy};
use crate::metrics::{self, Metrics};
use crate::store::{DeliveryResult, Handoff, LeaseRequest, LeasedChange, Store, now_ms};

/// Failures in a row after which the whole platform counts as down.
const FAILURES_BEFORE_PAUSE: u32 = 3;

#[derive(Clone, Debug)]
pub struct DispatcherSettings {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Changes leased at once and results committed together, at most
    /// (at least `concurrency`).
    pub batch: usize,
    /// How long a lease lasts; must outlive a request and the commit after it.
    pub lease: Duration,
    /// The longest a request may take (the platform client's timeout): a
    /// queued change whose lease has less than this (and a second) left is
    /// given back instead of sent.
    pub request_timeout: Duration,
    /// Per change: the delay before retrying a change that failed.
    pub retry: RetryPolicy,
    /// For the whole platform: how long to pause after a failure.
    pub pause: RetryPolicy,
    /// How often to probe after the platform refused our token.
    pub auth_probe: Duration,
    /// The shortest and longest wait a `Retry-After` can impose: `0` or a
    /// past date must not make a busy loop, a year must not stop delivery.
    pub retry_after: RetryAfterBounds,
    /// Results wait at most this long to be committed together.
    pub flush_interval: Duration,
    /// How often to look at the outbox when nothing announced new changes.
    pub idle_poll: Duration,
    /// On shutdown, how long to wait for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        DispatcherSettings {
            concurrency: 64,
            batch: 256,
            lease: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            pause: RetryPolicy {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(30),
                ..RetryPolicy::default()
            },
            auth_probe: Duration::from_secs(30),
            retry_after: RetryAfterBounds::default(),
            flush_interval: Duration::from_millis(5),
            idle_poll: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How intake tells the dispatcher about new changes: `notify` after each
/// commit, with the changes it leased to the dispatcher (`handoff`, under
/// its owner name) already there.
pub struct Wake {
    pub notify: Arc<Notify>,
    pub handoff: Arc<Handoff>,
}

/// Whether the dispatcher may send, and how much.
enum Gate {
    Open,
    /// Paused until then; afterwards one probe goes out alone.
    Paused {
        until: Instant,
        auth: bool,
    },
    /// A probe is out: nothing else until it comes back.
    Probing,
}

struct Dispatcher {
    store: Store,
    client: PlatformClient,
    metrics: Arc<Metrics>,
    settings: DispatcherSettings,
    gate: Gate,
    pause_backoff: backoff::ExponentialBackoff,
    /// Failures since the last success. One 5xx is that change's problem
    /// (it is retried on its own); several in a row are the platform's.
    consecutive_failures: u32,
    alarm_raised: bool,
    results: Vec<(LeasedChange, DeliveryResult)>,
    first_result_at: Option<Instant>,
    /// Leased, not yet sent, oldest first.
    queue: VecDeque<LeasedChange>,
    /// What intake leased for us; its owner name is the one we lease under.
    handoff: Arc<Handoff>,
}

/// Runs until `shutdown` is cancelled, then waits for requests in flight
/// (up to the grace period) and commits their results.
pub async fn run(
    store: Store,
    client: PlatformClient,
    metrics: Arc<Metrics>,
    settings: DispatcherSettings,
    Wake { notify: wake, handoff }: Wake,
    shutdown: CancellationToken,
) {
    let mut d = Dispatcher {
        pause_backoff: settings.pause.backoff(),
        store,
        client,
        metrics,
        // Start with one probe: a hub that starts with a wrong token or
        // against a platform that is down learns it from one request.
        gate: Gate::Paused { until: Instant::now(), auth: false },
        consecutive_failures: 0,
        alarm_raised: false,
        results: Vec::new(),
        first_result_at: None,
        queue: VecDeque::new(),
        handoff,
        settings,
    };
    let mut inflight: JoinSet<(LeasedChange, Answer)> = JoinSet::new();
    let handoff = d.handoff.clone();
    // Should this task end any other way than by returning (a panic),
    // intake stops leasing for it.
    let _no_more = WantNone(handoff.clone());

    let mut idle_until: Option<Instant> = None;
    let mut store_backoff = RetryPolicy::default().backoff();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // Results first: a committed result is what lets a ticket's next revision out.
        while let Some(Ok((change, answer))) = inflight.try_join_next() {
            d.on_answer(change, answer);
        }
        if d.take_handed() {
            idle_until = None;
        }
        d.send(&mut inflight);
        let flush = d.should_flush(inflight.len());
        let room = d.room(inflight.len());
        if flush && d.results_free_tickets() {
            // A recorded result lets its ticket's next change out: lease
            // in the same transaction.
            idle_until = None;
        }
        let idle = idle_until.is_some_and(|t| Instant::now() < t);
        // What intake may lease for us in its next commit: not what the
        // lease below is about to take.
        let leasing = if room > 0 && !idle { room } else { 0 };
        d.handoff.want(d.want(d.queue.len() + inflight.len() + leasing));
        if flush && (room == 0 || idle) {
            // Due, and no lease follows to take them along.
            d.flush().await;
            continue;
        }
        if leasing > 0 {
            // Results to record go in the same transaction as the lease.
            match d.flush_and_lease(room).await {
                Ok(leased) => {
                    store_backoff.reset();
                    idle_until = (leased.len() < room).then(|| Instant::now() + d.settings.idle_poll);
                    d.queue.extend(leased);
                }
                Err(err) => {
                    let wait = store_backoff.next_backoff().unwrap_or(Duration::from_secs(5));
                    tracing::error!(error = %err, retry_in = ?wait, "could not read the outbox");
                    idle_until = Some(Instant::now() + wait);
                }
            }
            continue;
        }
        let flush_at = d.first_result_at.map(|t| t + d.settings.flush_interval);
        let gate_at = match d.gate {
            Gate::Paused { until, .. } if until > Instant::now() => Some(until),
            _ => None,
        };
        tokio::select! {
            Some(joined) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok((change, answer)) = joined {
                    d.on_answer(change, answer);
                }
            }
            // Intake committed: what it handed over is sent at once; the
            // outbox is read only for what it left there.
            _ = wake.notified(), if idle => {
                if d.take_handed() {
                    idle_until = None;
                }
            }
            // Handed over between two wakes (or while not idle): to the queue.
            _ = handoff.notified() => {}
            _ = sleep_until(idle_until), if idle => { idle_until = None; }
            _ = sleep_until(flush_at), if flush_at.is_some() => {}
            _ = sleep_until(gate_at), if gate_at.is_some() => {}
            _ = shutdown.cancelled() => {}
        }
    }
    // Shutdown: take no new work, let requests in flight finish, commit.
    d.handoff.want(0);
    d.take_handed();
    d.release_queue();
    let grace = tokio::time::sleep(d.settings.shutdown_grace);
    tokio::pin!(grace);
    while !inflight.is_empty() {
        tokio::select! {
            Some(joined) = inflight.join_next() => {
                if let Ok((change, answer)) = joined {
                    d.on_answer(change, answer);
                }
            }
            _ = &mut grace => {
                tracing::warn!(in_flight = inflight.len(), "stopping with requests in flight; they will be sent again (same idempotency keys)");
                inflight.abort_all();
                break;
            }
        }
    }
    d.flush().await;
}

/// Tells intake, however the dispatcher ends, that it wants no more.
struct WantNone(Arc<Handoff>);

impl Drop for WantNone {
    fn drop(&mut self) {
        self.0.want(0);
    }
}

/// `wait` from now, without the overflow of `Instant + Duration` (which
/// panics): a wait too long for the clock is cut to a day.
fn instant_after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait).or_else(|| now.checked_add(Duration::from_secs(86_400))).unwrap_or(now)
}

/// `wait` from now in the store's epoch milliseconds, saturating.
fn ms_after(wait: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Dispatcher {
    fn batch(&self) -> usize {
        self.settings.batch.max(self.settings.concurrency).max(1)
    }

    /// How many changes to lease now.
    fn room(&self, inflight: usize) -> usize {
        match self.gate {
            Gate::Open => {
                // Lease again once the queue could run dry before the next
                // lease commits, up to a batch outstanding: each lease is a
                // useful group, not one row.
                let outstanding = self.queue.len() + inflight;
                if self.queue.len() <= self.settings.concurrency / 2 {
                    self.batch().saturating_sub(outstanding)
                } else {
                    0
                }
            }
            Gate::Paused { until, .. } if Instant::now() >= until => {
                usize::from(inflight == 0 && self.queue.is_empty())
            }
            Gate::Paused { .. } | Gate::Probing => 0,
        }
    }

    /// Sends what the gate allows from the queue: up to `concurrency` in
    /// flight when open; after a pause, one probe alone.
    fn send(&mut self, inflight: &mut JoinSet<(LeasedChange, Answer)>) {
        let allowed = match self.gate {
            Gate::Open => self.settings.concurrency.saturating_sub(inflight.len()),
            Gate::Paused { until, .. } if Instant::now() >= until && inflight.is_empty() => 1,
            Gate::Paused { .. } | Gate::Probing => 0,
        };
        let mut sent = 0;
        while sent < allowed {
            let Some(change) = self.queue.pop_front() else { break };
            // Sent this late, the request could outlast the lease, and the
            // change be leased and sent again beside it: give it back.
            if change.lease_until.saturating_sub(now_ms()) < self.lease_left_to_send() {
                self.give_back(change);
                continue;
            }
            sent += 1;
            if matches!(self.gate, Gate::Paused { .. }) {
                self.gate = Gate::Probing;
            }
            let client = self.client.clone();
            inflight.spawn(async move {
                let answer = client.put(&change).await;
                (change, answer)
            });
        }
    }

    /// Queues what intake leased for us. Returns whether it left changes
    /// in the outbox for us to lease.
    fn take_handed(&mut self) -> bool {
        let handed = self.handoff.take();
        if !handed.changes.is_empty() {
            self.queue.extend(handed.changes);
            if !matches!(self.gate, Gate::Open) {
                // Leased for us just before a pause.
                self.release_queue();
            }
        }
        handed.left
    }

    /// The lease a queued change must have left to be sent (ms): a
    /// request's timeout and a second. The config makes a lease ten seconds
    /// longer than that timeout at least; should settings made in code not,
    /// nine tenths of a lease still lets fresh changes out rather than give
    /// each back for ever.
    fn lease_left_to_send(&self) -> i64 {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        ms(self.settings.request_timeout).saturating_add(1_000).min(ms(self.settings.lease) / 10 * 9)
    }

    /// Gives back the leases of changes not sent, with the next results.
    fn release_queue(&mut self) {
        while let Some(change) = self.queue.pop_front() {
            self.give_back(change);
        }
    }

    /// Gives a change not sent back to the outbox, with the next results.
    fn give_back(&mut self, change: LeasedChange) {
        self.record(change, DeliveryResult::Release);
    }

    /// A result to commit with the next group; the group is due
    /// `flush_interval` after its first.
    fn record(&mut self, change: LeasedChange, result: DeliveryResult) {
        if self.first_result_at.is_none() {
            self.first_result_at = Some(Instant::now());
        }
        self.results.push((change, result));
    }

    /// Whether the results waiting let a change out: a ticket's next one
    /// (done or dead-lettered), or one given back while sending goes on.
    fn results_free_tickets(&self) -> bool {
        let open = matches!(self.gate, Gate::Open);
        self.results.iter().any(|(_, r)| match r {
            DeliveryResult::Done | DeliveryResult::Rejected { .. } => true,
            DeliveryResult::Release => open,
            DeliveryResult::Retry { .. } => false,
        })
    }

    /// How many more changes may be leased for us now.
    fn want(&self, outstanding: usize) -> usize {
        if matches!(self.gate, Gate::Open) { self.batch().saturating_sub(outstanding) } else { 0 }
    }

    fn should_flush(&self, inflight: usize) -> bool {
        match self.first_result_at {
            None => false,
            Some(first) => {
                (inflight == 0 && self.queue.is_empty())
                    || self.results.len() >= self.batch() / 2
                    || first.elapsed() >= self.settings.flush_interval
            }
        }
    }

    fn on_answer(&mut self, change: LeasedChange, answer: Answer) {
        let result = match answer {
            Answer::Accepted | Answer::Stale => {
                if answer == Answer::Stale {
                    metrics::inc(&self.metrics.stale_answers);
                } else {
                    metrics::inc(&self.metrics.delivered);
                    let waited = chrono::Utc::now().timestamp_millis() - change.created_at;
                    self.metrics.delivery_latency.observe(waited as f64 / 1000.0);
                }
                self.on_success();
                DeliveryResult::Done
            }
            Answer::Rejected { status, body } => {
                metrics::inc(&self.metrics.dead_lettered);
                // Later revisions of the ticket are not held back: each carries
                // the whole ticket, and a replay goes out as a new revision.
                tracing::warn!(ticket_id = %change.ticket_id, revision = change.revision, status,
                    "the platform refused a change for good; it is parked in the dead letters (see `hub deadletters list`; 404 or 405 for every change: check platform.url)");
                self.on_success();
                DeliveryResult::Rejected { status, response: body }
            }
            Answer::Unauthorized { status } => {
                metrics::inc(&self.metrics.auth_failures);
                if !self.alarm_raised {
                    tracing::error!(status, probe_every = ?self.settings.auth_probe,
                        "ALARM: the platform refuses the hub's token; delivery is paused until a probe gets through (check platform.token / HUB_PLATFORM_TOKEN)");
                    self.alarm_raised = true;
                }
                self.metrics.delivery_paused.store(1, Ordering::Relaxed);
                self.release_queue();
                self.gate = Gate::Paused { until: instant_after(self.settings.auth_probe), auth: true };
                DeliveryResult::Release
            }
            Answer::Throttled { status, retry_after } => {
                metrics::inc(&self.metrics.throttled);
                let wait = match retry_after {
                    Some(asked) => {
                        let wait = self.settings.retry_after.clamp(asked);
                        if asked > wait {
                            tracing::warn!(status, asked = ?asked, wait = ?wait,
                                "the platform's Retry-After is longer than delivery.retry_after_max; the hub asks again sooner");
                        }
                        wait
                    }
                    None => self.pause_backoff.next_backoff().unwrap_or(self.settings.pause.max),
                };
                tracing::info!(status, wait = ?wait, "the platform asks the hub to slow down");
                self.pause(wait);
                DeliveryResult::Retry { next_attempt_at: ms_after(wait), error: format!("platform answered {status}") }
            }
            Answer::Failed { error } => {
                metrics::inc(&self.metrics.retried);
                self.consecutive_failures += 1;
                let retry = self.settings.retry.delay_after(change.attempts.try_into().unwrap_or(u32::MAX));
                // A failed probe always means "not yet": back to waiting,
                // or nothing would ever be sent again.
                if self.consecutive_failures >= FAILURES_BEFORE_PAUSE || matches!(self.gate, Gate::Probing) {
                    let wait = self.pause_backoff.next_backoff().unwrap_or(self.settings.pause.max);
                    if matches!(self.gate, Gate::Open) {
                        tracing::warn!(%error, pause = ?wait, "the platform keeps failing; pausing delivery, then probing");
                    }
                    self.pause(wait);
                } else {
                    tracing::debug!(ticket_id = %change.ticket_id, %error, retry_in = ?retry, "delivery failed; will retry");
                }
                DeliveryResult::Retry { next_attempt_at: ms_after(retry), error }
            }
        };
        self.record(change, result);
    }

    fn on_success(&mut self) {
        self.consecutive_failures = 0;
        if !matches!(self.gate, Gate::Open) {
            if self.alarm_raised {
                tracing::info!("the platform accepts the hub's token again; delivery resumes");
            } else {
                tracing::info!("the platform answers again; delivery resumes");
            }
        }
        self.gate = Gate::Open;
        self.alarm_raised = false;
        self.metrics.delivery_paused.store(0, Ordering::Relaxed);
        self.pause_backoff.reset();
    }

    fn pause(&mut self, wait: Duration) {
        // What waits to be sent goes back to the outbox: it may be leased
        // again (by this hub after the pause, or by another) without
        // waiting for its lease to run out.
        self.release_queue();
        let until = instant_after(wait);
        self.gate = match self.gate {
            // An auth pause outlasts anything else.
            Gate::Paused { until: current, auth: true } => Gate::Paused { until: current.max(until), auth: true },
            Gate::Paused { until: current, auth: false } => Gate::Paused { until: current.max(until), auth: false },
            Gate::Open | Gate::Probing => Gate::Paused { until, auth: false },
        };
    }

    /// Records the results waiting (if any) and leases up to `room` changes,
    /// in one transaction. Should it fail, the results are still recorded
    /// (as [`flush`](Self::flush) does) before the lease error is returned.
    async fn flush_and_lease(&mut self, room: usize) -> Result<Vec<LeasedChange>, crate::store::StoreError> {
        let lease = LeaseRequest {
            owner: self.handoff.owner().to_string(),
            limit: room as i64,
            lease_ms: self.settings.lease.as_millis() as i64,
        };
        let results = std::mem::take(&mut self.results);
        let (results, leased) = self.store.complete_and_lease_owned(results, Some(lease)).await;
        self.results = results;
        match leased {
            Ok(leased) => {
                self.results.clear();
                self.first_result_at = None;
                Ok(leased)
            }
            Err(err) => {
                self.flush().await;
                Err(err)
            }
        }
    }

    async fn flush(&mut self) {
        if self.results.is_empty() {
            return;
        }
        let mut backoff = RetryPolicy::default().backoff();
        // Results are facts about the platform: keep trying to record them.
        // Until they are, their leases keep the changes from going out twice.
        loop {
            let results = std::mem::take(&mut self.results);
            let (results, done) = self.store.complete_and_lease_owned(results, None).await;
            self.results = results;
            let Err(err) = done else { break };
            let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
            tracing::error!(error = %err, retry_in = ?wait, "could not record delivery results");
            tokio::time::sleep(wait).await;
        }
        self.results.clear();
        self.first_result_at = None;
    }
}
