//! `/api/v1/live`: the matters arriving, as server-sent events, for the
//! centre's screen.
//!
//! One poller per hub process reads the revisions stored since its last
//! look every [`POLL`] (`Store::revisions_after`, by the revisions'
//! increasing number) and broadcasts them to every open stream; each
//! stream passes on what is in its caller's region. Reading the store, not
//! the intake, is what makes it work with several hubs on one PostgreSQL:
//! each hub's screen sees what any hub stored. The poller runs only while
//! someone watches.
//!
//! Each event's `id:` is the revision's number, so a screen that
//! reconnects sends `Last-Event-ID` and gets what it missed from the store
//! (up to [`BACKLOG`]); further behind than that, or too slow to keep up
//! with the broadcast, it gets `event: resync` and reloads its figures.
//!
//! The stream is mounted outside the API's request timeout and ends when
//! the hub shuts down ([`Shutdown`]), so it holds no graceful stop up.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::auth::Caller;
use super::screen::{beijing_time, channel_name};
use super::{ApiError, ApiState};
use crate::stats::names;
use crate::store::{LiveRevision, Store};

/// How often the poller looks for new revisions.
pub const POLL: Duration = Duration::from_millis(300);
/// How far behind a reconnecting screen may be and still be caught up
/// event by event; further, and it reloads.
pub const BACKLOG: i64 = 500;
/// How long a missing number is waited for before it is taken as a
/// rolled-back insert. PostgreSQL hands sequence numbers out at insert,
/// not at commit: a lower number may become visible after a higher one.
pub const GAP_WAIT: Duration = Duration::from_secs(5);
/// Revisions read per look.
const BATCH: i64 = 1000;
/// Events a slow stream may fall behind before it is told to resync.
const CAPACITY: usize = 1024;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/live", get(live)).layer(Extension(Arc::new(Feed::new())))
}

/// The hub's shutdown, which ends every open stream; the server puts it
/// in the requests' extensions.
#[derive(Clone, Default)]
pub struct Shutdown(pub CancellationToken);

/// A stored revision as the screen shows it: codes and names, no personal data.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveEvent {
    /// The revision's number, also the event's `id:`.
    pub id: i64,
    pub ticket_id: String,
    pub revision: i64,
    /// `created`, `updated`, `merged`, or the platform's status that made it.
    pub cause: String,
    pub category: String,
    pub category_name: Option<String>,
    /// 12-digit division code.
    pub region: String,
    pub region_name: Option<String>,
    pub county: String,
    pub county_name: Option<String>,
    pub channel: String,
    pub channel_name: Option<String>,
    /// The ticket's status now.
    pub status: String,
    /// When the hub stored the revision, RFC 3339, Beijing time.
    pub at: String,
}

impl LiveEvent {
    pub fn of(r: &LiveRevision) -> LiveEvent {
        LiveEvent {
            id: r.id,
            ticket_id: r.ticket_id.clone(),
            revision: r.revision,
            cause: r.cause.clone(),
            category_name: names::category(&r.category).map(str::to_string),
            category: r.category.clone(),
            region_name: names::region(&r.region).map(str::to_string),
            region: r.region.clone(),
            county_name: names::region(&r.county).map(str::to_string),
            county: r.county.clone(),
            channel_name: channel_name(&r.channel),
            channel: r.channel.clone(),
            status: r.status.clone(),
            at: beijing_time(r.created_at),
        }
    }
}

/// The hub's one broadcast of stored revisions.
pub struct Feed {
    tx: broadcast::Sender<Arc<Encoded>>,
    /// Whether the poller runs; it stops when no stream listens.
    running: Mutex<bool>,
    /// Streams open at once at most ([`MAX_STREAMS`]): each holds a task and a buffer.
    streams: Arc<tokio::sync::Semaphore>,
}

impl Default for Feed {
    fn default() -> Feed {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            tx: broadcast::channel(CAPACITY).0,
            running: Mutex::new(false),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
        }
    }

    /// A receiver of every revision stored from now on; starts the poller
    /// if it is not running.
    pub fn subscribe(self: &Arc<Self>, store: &Store) -> broadcast::Receiver<Arc<Encoded>> {
        // Subscribed before the poller's check under the lock, so the
        // poller never stops with a listener it did not count.
        let rx = self.tx.subscribe();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if !*running {
            *running = true;
            tokio::spawn(self.clone().poll(store.clone()));
        }
        rx
    }

    /// Stops the poller (returns true) when no stream listens.
    fn stop_if_idle(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if self.tx.receiver_count() == 0 {
            *running = false;
            return true;
        }
        false
    }

    async fn poll(self: Arc<Self>, store: Store) {
        let mut failing = false;
        let start = loop {
            match store.last_revision_id().await {
                Ok(id) => break id,
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %crate::pii::scrub(&e.to_string()), "the live feed cannot read the store; trying again");
                    }
                    if self.stop_if_idle() {
                        return;
                    }
                    tokio::time::sleep(POLL * 4).await;
                }
            }
        };
        let mut cursor = Cursor::new(start);
        loop {
            tokio::time::sleep(POLL).await;
            if self.stop_if_idle() {
                return;
            }
            match store.revisions_after(cursor.done(), BATCH).await {
                Ok(rows) => {
                    failing = false;
                    for r in cursor.take(rows, Instant::now()) {
                        // No receiver is no error: the next look stops.
                        let _ = self.tx.send(Arc::new(Encoded::of(&LiveEvent::of(&r))));
                    }
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %crate::pii::scrub(&e.to_string()), "the live feed cannot read the store; trying again");
                    }
                    tokio::time::sleep(POLL * 4).await;
                }
            }
        }
    }
}

/// Which revision numbers the poller has passed on: every number up to
/// `done`, and those in `seen` above it. A number missing below the
/// highest seen is waited for [`GAP_WAIT`] (a transaction that has not
/// committed yet), then given up (one that rolled back).
#[derive(Debug)]
pub struct Cursor {
    done: i64,
    seen: BTreeSet<i64>,
    gaps: HashMap<i64, Instant>,
}

impl Cursor {
    pub fn new(done: i64) -> Cursor {
        Cursor { done, seen: BTreeSet::new(), gaps: HashMap::new() }
    }

    /// Read from here on.
    pub fn done(&self) -> i64 {
        self.done
    }

    /// The rows not passed on before, and moves the cursor past them.
    pub fn take(&mut self, rows: Vec<LiveRevision>, now: Instant) -> Vec<LiveRevision> {
        let fresh: Vec<LiveRevision> =
            rows.into_iter().filter(|r| r.id > self.done && self.seen.insert(r.id)).collect();
        if let Some(&highest) = self.seen.last() {
            // Bounded: a run of rolled-back numbers longer than a batch is
            // waited for as one.
            for id in (self.done + 1..highest).take(BATCH as usize) {
                if !self.seen.contains(&id) {
                    self.gaps.entry(id).or_insert(now);
                }
            }
        }
        loop {
            let next = self.done + 1;
            if self.seen.remove(&next) {
                self.done = next;
            } else if self.gaps.get(&next).is_some_and(|since| now.duration_since(*since) >= GAP_WAIT) {
                self.gaps.remove(&next);
                self.done = next;
            } else {
                break;
            }
        }
        fresh
    }
}

/// The matters arriving in the caller's region, as server-sent events:
/// `hello` (the stream is open), `revision` (one stored revision,
/// [`LiveEvent`]), `resync` (reload the figures). Send `Last-Event-ID` to
/// resume.
#[utoipa::path(get, path = "/api/v1/live", tag = "screen",
    params(("Last-Event-ID" = Option<i64>, Header, description = "the last event's id seen, to get what came after it")),
    responses((status = 200, description = "text/event-stream of LiveEvent", content_type = "text/event-stream", body = LiveEvent),
        (status = 401)))]
pub async fn live(
    caller: Caller,
    State(s): State<ApiState>,
    Extension(feed): Extension<Arc<Feed>>,
    shutdown: Option<Extension<Shutdown>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // A screen per centre, a few spare: beyond that, a client that opens
    // streams in a loop is refused, not served.
    let Ok(permit) = feed.streams.clone().try_acquire_owned() else {
        return Err(ApiError(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_STREAMS} live streams are open already; try again later"),
        ));
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.trim().parse::<i64>().ok())
        .filter(|id| *id >= 0);
    // Subscribed first: what is broadcast from here on comes through `rx`,
    // what was broadcast before is in the store, read next.
    let rx = feed.subscribe(&s.store);
    let last = s.store.last_revision_id().await?;
    let backlog = match resume {
        Some(after) => Some(s.store.revisions_after(after, BACKLOG + 1).await?),
        None => None,
    };
    let stop = shutdown.map(|Extension(s)| s.0).unwrap_or_default();
    let (out, mut events) = mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        relay(caller, rx, resume, backlog, last, out, stop).await;
        drop(permit);
    });
    let stream = futures::stream::poll_fn(move |cx| events.poll_recv(cx).map(|e| e.map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Live streams open at once, per hub.
pub const MAX_STREAMS: usize = 128;

/// An event as broadcast: encoded once for every screen watching, with
/// what each stream needs to decide whether it is its caller's.
#[derive(Debug)]
pub struct Encoded {
    pub id: i64,
    pub region: String,
    pub json: String,
}

impl Encoded {
    pub fn of(ev: &LiveEvent) -> Encoded {
        Encoded { id: ev.id, region: ev.region.clone(), json: serde_json::to_string(ev).unwrap_or_default() }
    }

    fn event(&self) -> Event {
        Event::default().id(self.id.to_string()).event("revision").data(self.json.clone())
    }
}

fn event_of(ev: &LiveEvent) -> Event {
    Event::default().id(ev.id.to_string()).event("revision").json_data(ev).unwrap_or_else(|_| Event::default())
}

/// Tells the screen to reload its figures; from `last` on when given.
fn resync(last: Option<i64>) -> Event {
    let e = Event::default().event("resync").data("reload the figures");
    match last {
        Some(id) => e.id(id.to_string()),
        None => e,
    }
}

/// One stream: the backlog, then the broadcast, in the caller's region,
/// until the client goes away or the hub stops.
async fn relay(
    caller: Caller,
    mut rx: broadcast::Receiver<Arc<Encoded>>,
    resume: Option<i64>,
    backlog: Option<Vec<LiveRevision>>,
    last: i64,
    out: mpsc::Sender<Event>,
    stop: CancellationToken,
) {
    let floor = resume.unwrap_or(0);
    let mut sent = HashSet::new();
    let hello = Event::default().event("hello").data(format!("{{\"last\":{last}}}"));
    let hello = if resume.is_none() { hello.id(last.to_string()) } else { hello };
    if out.send(hello).await.is_err() {
        return;
    }
    let caught_up: Vec<Event> = match backlog {
        Some(rows) if rows.len() as i64 > BACKLOG => vec![resync(Some(last))],
        Some(rows) => rows
            .iter()
            .filter(|r| sent.insert(r.id) && caller.scope.sees(&r.region))
            .map(|r| event_of(&LiveEvent::of(r)))
            .collect(),
        None => Vec::new(),
    };
    for event in caught_up {
        if out.send(event).await.is_err() {
            return;
        }
    }
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            _ = out.closed() => return,
            r = rx.recv() => match r {
                Ok(ev) => {
                    if ev.id <= floor || sent.remove(&ev.id) || !caller.scope.sees(&ev.region) {
                        continue;
                    }
                    ev.event()
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "a live stream fell behind; telling its screen to reload");
                    resync(None)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if out.send(event).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(id: i64) -> LiveRevision {
        LiveRevision {
            id,
            ticket_id: format!("T{id}"),
            revision: 1,
            cause: "created".into(),
            created_at: 0,
            region: "220421100000".into(),
            county: "220421".into(),
            township: "220421100".into(),
            category: "0401".into(),
            channel: "hotline".into(),
            status: "received".into(),
        }
    }

    fn ids(rows: &[LiveRevision]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_number_that_commits_late_is_passed_on_and_a_rolled_back_one_given_up() {
        let t0 = Instant::now();
        let mut c = Cursor::new(10);
        // 12 is visible before 11 (11's transaction has not committed).
        assert_eq!(ids(&c.take(vec![rev(12), rev(13)], t0)), [12, 13]);
        assert_eq!(c.done(), 10, "11 is waited for");
        // Read again from 10: 12 and 13 are not passed on twice; 11 came.
        assert_eq!(ids(&c.take(vec![rev(11), rev(12), rev(13)], t0 + Duration::from_secs(1))), [11]);
        assert_eq!(c.done(), 13);
        // 14 never comes (rolled back): given up after GAP_WAIT.
        assert_eq!(ids(&c.take(vec![rev(15)], t0)), [15]);
        assert_eq!(c.done(), 13);
        assert!(c.take(vec![rev(15)], t0 + GAP_WAIT / 2).is_empty());
        assert_eq!(c.done(), 13);
        assert!(c.take(vec![rev(15)], t0 + GAP_WAIT).is_empty());
        assert_eq!(c.done(), 15);
    }

    #[test]
    fn events_carry_names_and_no_body() {
        let e = serde_json::to_value(LiveEvent::of(&rev(7))).unwrap();
        assert_eq!(e["countyName"], "东丰县");
        assert_eq!(e["categoryName"], "劳动保障/欠薪");
        assert_eq!(e["channelName"], "12345热线");
        assert_eq!(e["id"], 7);
        assert!(e.get("body").is_none());
    }
}
