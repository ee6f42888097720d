//! MQTT: the grid workers' handheld terminals (see the terminal contract).
//!
//! - [`MqttConnector`] subscribes to `grid/+/+/{report,progress,evaluation}`
//!   at QoS 1 on a persistent session, hands every message to the hub, and
//!   sends the PUBACK only after the hub's commit, in arrival order. A
//!   terminal resends until it gets its PUBACK from the broker, and the
//!   broker resends to the hub until it gets ours, so a crash anywhere
//!   loses nothing; the price is duplicates, which the hub finds by the
//!   message's own `msgId` (never by MQTT's DUP flag, which redeliveries
//!   after a reconnect need not carry).
//! - [`EmbeddedBroker`] is an in-memory broker (rumqttd) for setups without
//!   one; it is not durable.
//! - [`Notifier`] publishes hub → terminal notifications.
//!
//! Plain TCP (`mqtt://`) or TLS (`mqtts://`, rustls, trusting the system's
//! CAs or a given CA file), with a user name and password when the broker
//! wants them; the password never reaches a log line or an error message.
//!
//! The connector speaks MQTT 5 by default: it tells the broker how many
//! messages it takes in flight (Receive Maximum = `inflight`) and how long
//! to keep its session. `protocol = "3.1.1"` is for brokers without MQTT 5;
//! the broker's own limit then applies (Mosquitto `max_inflight_messages`,
//! 20 by default), and shared subscriptions are not available. Either way
//! the session is persistent and each PUBACK follows the hub's commit.
//!
//! Built on rumqttc 0.25 and rumqttd 0.20. Their pitfalls, and where they
//! are handled:
//!
//! - `wire`: a fresh rumqttc client per network connection, so that no
//!   PUBACK queued for one connection reaches the next (where, after a lost
//!   session, its packet id may name another message), and no stashed
//!   packet-id collision outlives a lost session (#1056). The client's max
//!   packet size is the protocol's: a refused packet would come back on
//!   every reconnect and stall the session.
//! - `commit`: PUBACKs from a task other than the polling one (#1025), in
//!   arrival order (MQTT-4.6.0-2), only after the hub's outcome, queued
//!   without waiting; a failed submit drops the connection so the broker
//!   resends. The work channel between the two tasks is bounded (one
//!   window): when the hub falls behind, the poller stops reading and the
//!   broker, not the hub's memory, keeps the rest.
//! - `reconnect`: rumqttc reconnects at once after an error (#703), so the
//!   connector waits with backoff and jitter itself, logging once per outage.
//! - `connector`: subscribes again when the broker answers
//!   `session_present=false`; on shutdown, sends its DISCONNECT and reads
//!   until the broker closes, since closing first (with data unread) resets
//!   the connection and loses the last PUBACKs.

mod broker;
mod commit;
mod config;
mod connector;
mod notifier;
mod reconnect;
pub(crate) mod record;
pub(crate) mod topic;
pub(crate) mod wire;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use broker::{BrokerError, EmbeddedBroker};
pub use config::{
    ConfigError, DEFAULT_TOPICS, MAX_PAYLOAD_BYTES, MqttConfig, MqttProtocol, UnknownProtocol, redact_url,
};
pub use connector::MqttConnector;
pub use notifier::{Notifier, NotifyError};
