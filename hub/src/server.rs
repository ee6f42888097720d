//! The hub's own HTTP endpoint: `/healthz` (the process answers),
//! `/readyz` (every part works: 200, or 503 naming what does not),
//! `/metrics`, the platform's callbacks (`callbacks/endpoint.rs`) and the
//! centre's admin API, dashboard and Open311 (`api/`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::app::readiness::{Broker, Health};
use crate::callbacks::endpoint::{self, Callbacks};
use crate::mapping::DeclarativeMapper;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the endpoint shows: the hub's counters, its parts' health and, per
/// mapping file, how often it met codes its tables do not know.
#[derive(Clone)]
pub struct Observed {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub store: Store,
    /// The brokers the sources consume from, probed by `/readyz`.
    pub brokers: Vec<Broker>,
    pub mappers: Vec<(String, Arc<DeclarativeMapper>)>,
}

impl Observed {
    pub fn render(&self) -> String {
        let mut out = self.metrics.render();
        out.push_str(&self.health.render_metrics());
        out.push_str(&self.store.writer_use().render());
        for (system, mapper) in &self.mappers {
            out.push_str(&mapper.render_metrics(system));
        }
        out
    }
}

async fn ready(State(o): State<Observed>) -> impl IntoResponse {
    let paused = o.metrics.delivery_paused.load(Ordering::Relaxed) == 1;
    let report = o.health.readiness(&o.store, &o.brokers, paused).await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(report))
}

async fn metrics(caller: crate::api::auth::Caller, State(o): State<Observed>) -> Result<String, crate::api::ApiError> {
    caller.require_city("the counters")?;
    Ok(o.render())
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    observed: Observed,
    callbacks: Callbacks,
    api: crate::api::ApiState,
    tokens: Arc<crate::api::auth::ApiTokens>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /healthz, /readyz, /metrics and the platform's callbacks");
    }
    let way_back = Router::new()
        .route("/api/v1/platform/events", post(endpoint::events))
        // The endpoint reads the body itself, bounded and with a deadline.
        .layer(DefaultBodyLimit::disable())
        .with_state(callbacks);
    // Counters name sources and agencies: a viewer's token, as for the rest
    // of the API; and they count the whole city, so not a region's token.
    let metrics = Router::new().route("/metrics", get(metrics)).layer(axum::Extension(tokens.clone()));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .merge(metrics)
        .with_state(observed)
        .merge(way_back)
        .merge(crate::api::router(api, tokens))
        .layer(axum::Extension(crate::api::live::Shutdown(shutdown.clone())));
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
