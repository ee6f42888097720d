//! A thread of its own for the store's hot write transactions.

use super::Backend;

/// Where the hot write transactions run (intake's batches, the
/// dispatcher's leases and results). On SQLite a transaction holds the
/// store's one writer from its first statement to its commit, and each of
/// its statements is a round trip to SQLite's own thread: run on the
/// shared workers, the transaction resumes after each statement only when
/// a worker is free of whatever else it runs (scoring the next batch,
/// mapping, requests to the platform), with the writer held all along. On
/// a thread of its own it resumes at once.
///
/// On PostgreSQL the shared workers are used: a connection opened on a
/// runtime of its own would stay bound to that runtime.
pub(crate) struct WriterLane {
    own: Option<(tokio::runtime::Handle, Option<tokio::sync::oneshot::Sender<()>>)>,
}

impl WriterLane {
    pub(crate) fn start(backend: Backend) -> WriterLane {
        if backend != Backend::Sqlite {
            return WriterLane { own: None };
        }
        // The runtime is made, run and dropped on its own thread: a runtime
        // may not be dropped inside another's task.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new().name("hub-store-writer".into()).spawn(move || {
            ON_LANE.set(true);
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => {
                    let _ = handle_tx.send(Ok(runtime.handle().clone()));
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                }
                Err(err) => {
                    let _ = handle_tx.send(Err(err));
                }
            }
        });
        let started = match thread {
            Ok(_) => handle_rx.recv().map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())),
            Err(err) => Err(err.to_string()),
        };
        match started {
            Ok(handle) => WriterLane { own: Some((handle, Some(stop))) },
            Err(error) => {
                tracing::warn!(%error, "no thread of its own for the store's commits; they share the workers");
                WriterLane { own: None }
            }
        }
    }

    pub(crate) fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.own {
            Some((handle, _)) => handle.spawn(f),
            None => tokio::spawn(f),
        }
    }
}

thread_local! {
    static ON_LANE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is a writer lane's, where a write transaction may
/// wait for the disk in place ([`super::tx`]).
pub(crate) fn on_lane() -> bool {
    ON_LANE.get()
}

impl Drop for WriterLane {
    fn drop(&mut self) {
        if let Some((_, stop)) = &mut self.own
            && let Some(stop) = stop.take()
        {
            let _ = stop.send(());
        }
    }
}
