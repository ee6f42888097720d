//! Connectors: one plugin per agency transport (AMQP, MQTT, XML feed, file drop).
//!
//! A connector knows its wire protocol and nothing of tickets. It turns what
//! arrives into a [`RawRecord`], hands it to the hub through an [`Intake`],
//! and waits for the [`Outcome`]: only an outcome proves the record is durably
//! stored, and only then may the connector acknowledge it at its source (MQTT
//! PUBACK, AMQP ack, feed cursor, file move). An [`IntakeError`] means nothing
//! was stored: the connector must leave the record unacknowledged (or requeue
//! it) so the source delivers it again.

pub mod amqp;
pub mod court;
pub mod http;
pub mod mqtt;
pub mod outbound;
pub mod retry_after;

mod connector;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod intake;
mod link;
mod record;

pub use connector::{BoxedConnector, Connector, ConnectorError};
pub use intake::{Cursor, Intake, IntakeError, Outcome, PageRequest, Submission, intake_channel, intake_channels};
pub use link::{Link, LinkState};
pub use record::{ContentType, RawRecord};
pub use tokio_util::sync::CancellationToken;
