//! Court pre-litigation mediation feed (contract: court.md):
//! HTTP polling with a cursor committed together with the cases, and a
//! file-drop mode for older installations.
//!
//! A page is parsed as a stream: each `<Case>` becomes one record (a
//! standalone UTF-8 document) as soon as it closes, and cases go to the hub
//! in chunks of at most `chunk_size`; only the last chunk carries the cursor.
//! A page with a DOCTYPE (entity declarations), malformed XML or a truncated
//! body is bad input as a whole: its raw bytes go to the hub as one record
//! with a `defect` reason, and the cursor stays. Entities are never expanded.

mod feed;
mod filedrop;
pub(crate) mod parse;
pub(crate) mod pipeline;

#[cfg(test)]
mod tests;

pub use feed::{CourtFeedConfig, CourtFeedConnector};
pub use filedrop::{FileDropConfig, FileDropConnector};
