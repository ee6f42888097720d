//! Simulators of the agencies that feed the hub, for the demo, tests and
//! benchmarks: the 12345 hotline and the petition bureau (AMQP), the grid
//! workers' terminals (MQTT) and the courts' mediation feeds (HTTP/XML and
//! file drop), and what each hears back from the hub ([`feedback`],
//! [`notify`]; the court tallies the outcomes it is sent).
//!
//! All content comes from [`content`], deterministic for a seed. Bodies
//! carry realistic personal data (names, ID numbers, phones): nothing here
//! logs a body or a field of one, only counts.

pub mod amqp;
pub mod content;
pub mod court;
pub mod evaluation;
pub mod feedback;
pub mod hotline;
pub mod notify;
pub mod petition;
pub mod terminal;

pub use amqp::{Agency, AmqpAgency, AmqpMessage, MessageKind, Tally};
pub use court::{CourtFeedServer, FeedEncoding, FileDropper};
pub use feedback::{FeedbackListener, HeardChange, HeardTally};
pub use notify::NotifyListener;
pub use terminal::{FleetTally, TerminalFleet};
