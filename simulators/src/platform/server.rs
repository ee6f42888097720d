//! Serving connections ourselves (instead of `axum::serve`) so that a stop is a
//! real stop: the listener is closed and every open connection, idle or busy,
//! is dropped. `axum::serve` can only shut down gracefully, which would let
//! keep-alive connections and slow requests outlive the "outage".

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// A running server. Dropping it leaves the server running until the runtime
/// ends; call [`ServerHandle::stop`] to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops for real: stops accepting, aborts open connections (in-flight
    /// requests get no answer), releases the port, and waits for all of it.
    /// The simulator's state is kept, so serving again on the same port is a
    /// platform coming back after an outage.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

pub(crate) fn start(listener: TcpListener, router: Router) -> anyhow::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let stop = Arc::new(Notify::new());
    let task = tokio::spawn(accept_loop(listener, router, stop.clone()));
    Ok(ServerHandle { addr, stop, task })
}

async fn accept_loop(listener: TcpListener, router: Router, stop: Arc<Notify>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            // `notify_one` stores a permit, so a stop is never missed.
            _ = stop.notified() => break,
            // Reap finished connections so the set does not grow forever.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(router.clone());
                    conns.spawn(async move {
                        // Connection errors (resets, bad requests) are the client's business.
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
}
