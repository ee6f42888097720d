//! Simulator of the city governance platform's ticket intake
//! (`PUT /api/v1/tickets/{ticketId}`), with injected faults.
//!
//! It implements the platform's side of the contract the hub delivers
//! against: bearer auth, idempotency keys remembered for 7 days (a repeated key
//! gets the first answer), revision ordering per ticket (`409 {"current": n}`
//! for stale revisions), mild validation (`400`/`422` with
//! `{"error", "field"}`), and on demand `401`, `429` with `Retry-After`, `503`
//! outages, `500`s and latency. Tests drive it in-process through
//! [`PlatformSim`]; the `platform-sim` binary runs it standalone.
//!
//! Order of checks for a PUT, as on the real platform: auth → injected faults
//! (outage, throttle, error; none of these remember the key) → idempotency key
//! → body validation → revision order → apply. Answers from validation onwards
//! are remembered with the key. Delays (latency, slow) are served *after* the
//! request is processed and before the answer is sent, so a client that times
//! out has still had its change applied, which is the case idempotency keys
//! exist for.
//!
//! Told where the hub listens ([`PlatformSim::send_callbacks`]), it also
//! reports what happens to the tickets it accepts, as signed status
//! callbacks ([`callbacks`]).
//!
//! Extra endpoints for tools and tests: `GET /sim/stats`, `GET /sim/tickets`,
//! `GET /sim/tickets/{id}`, `GET`/`PUT /sim/faults` (no auth), `GET /healthz`.

pub mod callbacks;
mod faults;
mod http;
pub mod parse;
mod server;
mod state;
mod validate;

use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use callbacks::{AppliedEvent, CallbackConfig, CallbackSender, CallbackStats};
pub use faults::{Faults, TitleAnswer, Window};
pub use parse::{parse_duration, parse_rate, parse_window};
pub use server::ServerHandle;
pub use validate::{KINDS, MAX_TITLE_CHARS, STATUSES};

/// How a simulator starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The bearer token the platform accepts.
    pub token: String,
    /// Faults injected from the start (replaceable with [`PlatformSim::set_faults`]).
    pub faults: Faults,
}

impl SimConfig {
    /// A well-behaved platform accepting `token`.
    pub fn new(token: impl Into<String>) -> Self {
        SimConfig { token: token.into(), faults: Faults::default() }
    }
}

impl Default for SimConfig {
    /// Same token as the binary's default, no faults.
    fn default() -> Self {
        SimConfig::new("demo-token")
    }
}

/// Counters since the simulator was created (they survive stop/serve).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Every PUT that reached the handler.
    pub requests: u64,
    /// Changes applied (a new revision stored).
    pub applied: u64,
    /// Tickets first seen.
    pub created: u64,
    /// Repeated `Idempotency-Key` answered from memory.
    pub duplicate_keys: u64,
    /// `409`s from revision order (new key, revision <= current).
    pub stale_revisions: u64,
    /// Applied revision != previous + 1 (allowed, but counted; a new ticket
    /// counts as being at revision 0).
    pub revision_gaps: u64,
    /// `400`/`422` answers (first time per key; a missing key counts too).
    pub rejected: u64,
    pub unauthorized: u64,
    pub throttled: u64,
    pub injected_errors: u64,
    pub outage_answers: u64,
    /// Answers given by [`Faults::answer_by_title`].
    pub forced_answers: u64,
    /// Distinct tickets held.
    pub tickets: u64,
}

/// A ticket as the platform holds it.
#[derive(Clone, Debug, Serialize)]
pub struct TicketRecord {
    pub ticket_id: String,
    pub revision: i64,
    /// The body of the current revision, as sent.
    pub body: serde_json::Value,
    /// Every applied change, oldest first.
    pub history: Vec<AppliedChange>,
}

/// One applied change of a ticket.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AppliedChange {
    pub revision: i64,
    pub idempotency_key: String,
    /// Milliseconds since the simulator was created.
    pub at_ms: u64,
}

/// The simulated platform. Cheap to clone: all clones share one state, which
/// outlives any [`ServerHandle`], so stopping and serving again models an
/// outage of a platform that keeps its data.
#[derive(Clone)]
pub struct PlatformSim {
    shared: Arc<Shared>,
}

/// State shared by the HTTP handlers and the in-process API.
pub(crate) struct Shared {
    start: Instant,
    token: String,
    faults: RwLock<Arc<Faults>>,
    store: state::Store,
    /// Where newly accepted tickets go while callbacks are being sent.
    accepted: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<callbacks::plan::Accepted>>>,
}

impl Shared {
    /// Milliseconds since creation; fault windows and history use this clock.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The current faults; an `Arc` so a request holds no lock while it runs.
    pub(crate) fn faults(&self) -> Arc<Faults> {
        self.faults.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(faults);
    }

    pub(crate) fn set_accepted(&self, to: Option<tokio::sync::mpsc::UnboundedSender<callbacks::plan::Accepted>>) {
        *self.accepted.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// Whether a callback sender waits for new tickets.
    pub(crate) fn reports_tickets(&self) -> bool {
        self.accepted.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// A ticket was created: its handling is reported, if callbacks are on.
    pub(crate) fn ticket_accepted(&self, ticket_id: &str, body: &[u8]) {
        let guard = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(to) = guard.as_ref() {
            let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let _ = to.send(callbacks::plan::Accepted::from_body(ticket_id, &body));
        }
    }
}

impl std::fmt::Debug for PlatformSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformSim").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl PlatformSim {
    pub fn new(config: SimConfig) -> Self {
        PlatformSim {
            shared: Arc::new(Shared {
                start: Instant::now(),
                token: config.token,
                faults: RwLock::new(Arc::new(config.faults)),
                store: state::Store::default(),
                accepted: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Serves on an already-bound listener; returns at once with a handle.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> anyhow::Result<ServerHandle> {
        server::start(listener, http::router(self.shared.clone()))
    }

    /// Binds `addr` (e.g. `"127.0.0.1:0"`) and serves.
    pub async fn bind(&self, addr: &str) -> anyhow::Result<ServerHandle> {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        self.serve(listener).await
    }

    /// A snapshot of the counters; O(1).
    pub fn stats(&self) -> Stats {
        self.shared.store.counters.snapshot()
    }

    /// A snapshot of one ticket.
    pub fn ticket(&self, id: &str) -> Option<TicketRecord> {
        self.shared.store.ticket(id)
    }

    /// `(ticketId, current revision)` of every ticket, sorted by id.
    pub fn tickets(&self) -> Vec<(String, i64)> {
        self.shared.store.tickets()
    }

    /// Replaces the faults; requests already past the fault dice are unaffected.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        (*self.shared.faults()).clone()
    }

    /// From now on, reports what happens to each ticket it accepts with
    /// signed callbacks to the hub at `config.target`, until
    /// [`CallbackSender::finish`].
    pub fn send_callbacks(&self, config: CallbackConfig) -> anyhow::Result<CallbackSender> {
        CallbackSender::start(self.shared.clone(), config)
    }

    /// Milliseconds since this simulator was created, the clock of [`Window`]s.
    pub fn elapsed_ms(&self) -> u64 {
        self.shared.now_ms()
    }
}
