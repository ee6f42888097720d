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
