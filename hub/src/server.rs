//! The hub's own HTTP endpoint: `/healthz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::mapping::DeclarativeMapper;
use crate::metrics::Metrics;

/// What `/metrics` shows: the hub's counters and, per mapping file, how often
/// it met codes its tables do not know.
#[derive(Clone)]
pub struct Observed {
    pub metrics: Arc<Metrics>,
    pub mappers: Vec<(String, Arc<DeclarativeMapper>)>,
}

impl Observed {
    pub fn render(&self) -> String {
        let mut out = self.metrics.render();
        for (system, mapper) in &self.mappers {
            out.push_str(&mapper.render_metrics(system));
        }
        out
    }
}

pub async fn serve(addr: SocketAddr, observed: Observed, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(|State(o): State<Observed>| async move { o.render() }))
        .with_state(observed);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
