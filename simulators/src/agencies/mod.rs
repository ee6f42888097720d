//! Simulators of the agencies that feed the hub, for the demo, tests and
//! benchmarks: the 12345 hotline and the petition bureau (AMQP), the grid
//! workers' terminals (MQTT) and the courts' mediation feeds (HTTP/XML and
//! file drop).
//!
//! All content comes from [`content`], deterministic for a seed. Bodies
//! carry realistic personal data (names, ID numbers, phones): nothing here
//! logs a body or a field of one, only counts.

pub mod amqp;
pub mod content;
pub mod court;
pub mod evaluation;
pub mod hotline;
pub mod petition;
pub mod terminal;

pub use amqp::{Agency, AmqpAgency, AmqpMessage, MessageKind, Tally};
pub use court::{CourtFeedServer, FeedEncoding, FileDropper};
pub use terminal::{FleetTally, TerminalFleet};
