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
//!
//! A feed page that stays bad (the court regenerates it on every request) is
//! quarantined once per cursor position: its defect record names the
//! position (`defect_at`), which the hub keeps as its key, so later polls
//! of it are duplicates whatever bytes they bring. The feed keeps polling
//! that position with backoff, so a page the court fixes goes through; an
//! operator can move the cursor past it (`hub court skip`), which the
//! polling loop picks up from the store.

mod feed;
mod filedrop;
pub(crate) mod parse;
pub(crate) mod pipeline;

#[cfg(test)]
mod tests;

pub use feed::{CourtFeedConfig, CourtFeedConnector};
pub use filedrop::{FileDropConfig, FileDropConnector};
pub use parse::page_next;
pub use pipeline::{META_DEFECT, META_DEFECT_AT, META_FEED, META_FEED_CURSOR};
