//! AMQP 0-9-1 (RabbitMQ) sources and back-channels: the 12345 hotline and
//! the petition bureau publish their records to topic exchanges, and the hub
//! answers on their `*.feedback` exchanges.
//!
//! [`AmqpConnector`] consumes the hub's own durable queue with manual acks
//! and acks a delivery only after [`Intake::submit`](crate::Intake::submit)
//! returned an outcome, so a record is either stored or still at the broker.
//! [`ConfirmPublisher`] publishes with publisher confirms.

mod config;
mod connector;
mod delivery;
mod publisher;
mod retry;
mod topology;

#[cfg(test)]
mod tests;

pub use config::AmqpConfig;
pub use connector::AmqpConnector;
pub use publisher::{ConfirmPublisher, DEFAULT_PUBLISH_TIMEOUT, PublishError};
pub use topology::SetupError;

/// Declares what the connector declares before it consumes: the agency's
/// exchange if it is missing, the hub's durable queue with its bindings,
/// and its dead-letter exchange and queue. For records that must wait in
/// the queue before the hub first runs (an operator preparing a broker, a
/// benchmark filling the queue).
pub async fn declare_topology(connection: &lapin::Connection, config: &AmqpConfig) -> Result<(), SetupError> {
    topology::declare(connection, config).await
}
