//! The hub's own HTTP endpoint: `/healthz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(|State(m): State<Arc<Metrics>>| async move { m.render() }))
        .with_state(metrics);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
