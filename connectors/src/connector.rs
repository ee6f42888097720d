//! The plugin interface every transport implements.

use futures::future::BoxFuture;

use crate::{CancellationToken, Intake};

/// A connector failed in a way it could not recover from by itself
/// (bad configuration, for instance). Transient transport errors are retried
/// inside the connector and never surface here.
#[derive(Debug, thiserror::Error)]
#[error("{connector}: {message}")]
pub struct ConnectorError {
    pub connector: String,
    pub message: String,
}

/// An agency transport. `run` consumes records until `shutdown` is
/// cancelled, handing each to `intake` and acknowledging it at the source
/// only after the hub's outcome. On shutdown it stops taking new records,
/// waits for the outcomes of those in flight, and returns.
pub trait Connector: Send + 'static {
    /// The name from the hub's config, used in logs and metrics.
    fn name(&self) -> &str;

    fn run(
        self: Box<Self>,
        intake: Intake,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), ConnectorError>>;
}

pub type BoxedConnector = Box<dyn Connector>;
