//! `/api/v1/sources`: how each agency's feed stands — its connection, the
//! last record it sent, what its records became, its last error, and how
//! far behind it is where that can be known (the court feed's cursor).
//!
//! Addresses are shown as scheme, host, port and path only: a URL's user,
//! password and query (which may carry a token) never leave the hub.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::TimeZone;
use connectors::LinkState;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::{ApiError, ApiState};
use crate::app::readiness::ConnectorState;
use crate::config::{Settings, Transport};
use crate::store::SourceCounts;
use crate::ticket::beijing;

/// The store's totals per source are counted over every record kept: at
/// most this often, whatever the screen's refresh.
pub const TOTALS_EVERY: Duration = Duration::from_secs(30);

/// A configured source as the API may show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configured {
    pub name: String,
    /// `http`, `amqp`, `mqtt`, `court_feed`, `file_drop`.
    pub transport: &'static str,
    /// Where it listens or what it reads from, without credentials.
    pub address: String,
    /// The cursor a polled feed keeps, whose age is its lag.
    pub cursor: Option<String>,
}

/// What the sources route shares: the configured sources, and the store's
/// totals as last counted.
#[derive(Default)]
pub struct SourcesView {
    pub configured: Vec<Configured>,
    totals: Mutex<Option<(Instant, BTreeMap<String, SourceCounts>)>>,
}

impl SourcesView {
    pub fn of(settings: &Settings) -> SourcesView {
        SourcesView { configured: configured(settings), totals: Mutex::default() }
    }

    async fn totals(&self, store: &crate::store::Store) -> Result<BTreeMap<String, SourceCounts>, ApiError> {
        if let Some((at, t)) = self.totals.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < TOTALS_EVERY
        {
            return Ok(t.clone());
        }
        let fresh = store.source_counts().await?;
        *self.totals.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }
}

/// `scheme://host[:port]/path` of a URL: no user, password or query.
pub fn address(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() { format!("{host}{path}") } else { format!("{scheme}://{host}{path}") }
}

fn configured(settings: &Settings) -> Vec<Configured> {
    settings
        .sources
        .iter()
        .map(|s| {
            let (transport, address, cursor) = match &s.transport {
                Transport::Http(c) => ("http", format!("listening on {}", c.listen()), None),
                Transport::Amqp(c) => ("amqp", self::address(&c.url), None),
                Transport::Mqtt(c) => ("mqtt", self::address(&c.url), None),
                Transport::CourtFeed(c) => ("court_feed", self::address(&c.base_url), Some(c.cursor_name())),
                Transport::FileDrop(c) => ("file_drop", c.dir.display().to_string(), None),
            };
            Configured { name: s.name.clone(), transport, address, cursor }
        })
        .collect()
}

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/sources", get(sources))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastRecordReport {
    /// The record's id at its source (whole-city tokens only).
    pub record_id: Option<String>,
    pub received_at: String,
    pub stored_at: String,
    /// What it became: `created`, `updated`, `merged`, `stale`, `quarantined`.
    pub outcome: String,
    pub seconds_ago: i64,
}

#[derive(Debug, Serialize, ToSchema, Default)]
pub struct SinceStart {
    /// Records stored (and so acknowledged) since this hub process started.
    pub received: u64,
    pub quarantined: u64,
    /// By outcome.
    pub outcomes: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema, Default)]
pub struct Totals {
    /// Distinct records kept, each acknowledged to its source once stored.
    pub received: i64,
    pub created: i64,
    pub updated: i64,
    pub merged: i64,
    pub stale: i64,
    pub quarantined: i64,
    /// Revisions its records caused that the platform has acknowledged.
    pub delivered: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceReport {
    pub name: String,
    /// `http`, `amqp`, `mqtt`, `court_feed`, `file_drop`; none for a
    /// connector wired in code rather than configured.
    pub transport: Option<String>,
    pub address: Option<String>,
    /// `running`, `restarting`, `stopped`, or `not started`.
    pub state: String,
    /// Whether it is connected to its source: none when the connector does
    /// not say (an HTTP listener has no connection of its own).
    pub connected: Option<bool>,
    pub restarts: u64,
    /// The connector's last error, when it is down or restarting.
    pub last_error: Option<String>,
    pub last_record: Option<LastRecordReport>,
    pub since_start: SinceStart,
    /// Over everything the store keeps (counted at most every 30 s).
    pub totals: Totals,
    /// How far behind the feed is, in seconds, where that can be known: the
    /// age of a polled feed's cursor.
    pub lag_seconds: Option<i64>,
    pub lag_basis: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourcesReport {
    pub sources: Vec<SourceReport>,
}

fn time(ms: i64) -> String {
    beijing().timestamp_millis_opt(ms).single().map(|t| t.to_rfc3339()).unwrap_or_else(|| ms.to_string())
}

/// Each source's connection, last record, counts, last error and lag.
#[utoipa::path(get, path = "/api/v1/sources", tag = "sources",
    responses((status = 200, body = SourcesReport), (status = 401)))]
pub async fn sources(caller: Caller, State(s): State<ApiState>) -> Result<axum::Json<SourcesReport>, ApiError> {
    caller.require_city("the sources' health")?;
    let connectors = s.health.connectors();
    let totals = s.sources.totals(&s.store).await?;
    let mut since: BTreeMap<String, SinceStart> = BTreeMap::new();
    for ((system, outcome), n) in s.metrics.records() {
        let e = since.entry(system).or_default();
        e.received += n;
        if outcome == "quarantined" {
            e.quarantined += n;
        }
        *e.outcomes.entry(outcome.to_string()).or_default() += n;
    }
    // Configured first, in the config's order; then any other connector
    // or mapping the hub runs (wired in code: the demo, tests).
    let mut names: Vec<(String, Option<&Configured>)> =
        s.sources.configured.iter().map(|c| (c.name.clone(), Some(c))).collect();
    for name in connectors.keys().cloned().chain(s.mappings.systems().map(str::to_string)) {
        if !names.iter().any(|(n, _)| *n == name) {
            names.push((name, None));
        }
    }
    let now = crate::store::now_ms();
    let city = caller.scope.prefix().is_none();
    let mut out = Vec::with_capacity(names.len());
    for (name, conf) in names {
        let (state, connected, restarts, last_error) = match connectors.get(&name) {
            None => ("not started".to_string(), None, 0, None),
            Some((state, restarts, link)) => {
                let (label, error) = match state {
                    ConnectorState::Running => ("running", None),
                    ConnectorState::Restarting { error } => ("restarting", Some(error.clone())),
                    ConnectorState::Stopped { error } => ("stopped", error.clone()),
                };
                let (connected, link_error) = match link {
                    LinkState::Unknown => (None, None),
                    LinkState::Up => (Some(true), None),
                    LinkState::Down(why) => (Some(false), Some(why.clone())),
                };
                let error = error.or(link_error).map(|e| crate::pii::scrub(&crate::pii::redact_url(&e)));
                (label.to_string(), connected, *restarts, error)
            }
        };
        let last_record = s.store.last_record(&name).await?.map(|r| LastRecordReport {
            record_id: city.then_some(r.record_id),
            received_at: time(r.received_at),
            stored_at: time(r.stored_at),
            outcome: r.outcome,
            seconds_ago: (now - r.stored_at).max(0) / 1000,
        });
        let (lag_seconds, lag_basis) = match conf.and_then(|c| c.cursor.as_deref()) {
            Some(cursor) => match s.store.cursor_moved_at(cursor).await? {
                Some(at) => {
                    (Some((now - at).max(0) / 1000), Some(format!("time since the cursor {cursor} last moved")))
                }
                None => (None, Some(format!("the cursor {cursor} has not moved yet"))),
            },
            None => (None, None),
        };
        let t = totals.get(&name).cloned().unwrap_or_default();
        out.push(SourceReport {
            transport: conf.map(|c| c.transport.to_string()),
            address: conf.map(|c| c.address.clone()),
            state,
            connected,
            restarts,
            last_error,
            last_record,
            since_start: since.remove(&name).unwrap_or_default(),
            totals: Totals {
                received: t.received,
                created: t.created,
                updated: t.updated,
                merged: t.merged,
                stale: t.stale,
                quarantined: t.quarantined,
                delivered: t.delivered,
            },
            lag_seconds,
            lag_basis,
            name,
        });
    }
    Ok(axum::Json(SourcesReport { sources: out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_no_credentials_or_query() {
        assert_eq!(address("amqp://hub:s3cret@rabbit.local:5672/%2f"), "amqp://rabbit.local:5672/%2f");
        assert_eq!(address("https://court.example/api?token=abc"), "https://court.example/api");
        assert_eq!(address("mqtts://user:pw@broker"), "mqtts://broker");
        assert_eq!(address("mqtt://127.0.0.1:1883"), "mqtt://127.0.0.1:1883");
    }

    #[test]
    fn the_default_sources_are_described_without_secrets() {
        let env = [
            ("HUB_PLATFORM_URL", "http://127.0.0.1:1"),
            ("HUB_PLATFORM_TOKEN", "t"),
            ("HUB_AMQP_URL", "amqp://hub:pa55word@rabbit:5672/%2f"),
            ("HUB_COURT_FEED_URL", "https://court.example/feed?key=k3y"),
        ];
        let settings = Settings::builtin(&env).unwrap();
        let view = SourcesView::of(&settings);
        assert!(!view.configured.is_empty());
        for c in &view.configured {
            assert!(!c.address.contains("pa55word") && !c.address.contains("k3y"), "{c:?}");
        }
        let court = view.configured.iter().find(|c| c.transport == "court_feed").unwrap();
        assert!(court.cursor.as_deref().unwrap().starts_with("court-feed:"), "{court:?}");
    }
}
