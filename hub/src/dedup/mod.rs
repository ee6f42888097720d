//! Cross-channel duplicate detection: one real-world matter, one ticket.
//!
//! The same collapsed manhole reaches the hub as a hotline call, a grid
//! worker's report and perhaps a petition, each worded its own way. This
//! module is the pure part of telling that they are one matter: no
//! database, no clock, no randomness.
//!
//! - [`Fingerprint`] (`fingerprint.rs`): what is compared, computed once per
//!   record from its [`TicketDraft`](crate::ticket::TicketDraft) and kept by
//!   the store next to the open ticket ([`Fingerprint::to_bytes`]).
//! - [`score`] (`score.rs`): how alike two fingerprints are, 0..=1, with
//!   [`Reason`]s a person can read (and no personal data in them).
//! - [`decide`], [`CandidateRules`], [`CandidateQuery`] (`decide.rs`): which
//!   open tickets are candidates, and merge / possible / new by [`Thresholds`].
//! - [`evaluate()`] (`evaluate.rs`): precision and recall of merging on a
//!   labelled set (`tests/data/dedup-evaluation.jsonl`).
//!
//! How the store uses it: compute the fingerprint of a mapped record; select
//! candidates with [`CandidateRules::query`] on indexed columns (area, time,
//! identifier keys), keep those [`CandidateRules::admits`], [`decide`]; and do
//! the check and the insert in one transaction, so that two records of one
//! matter arriving together cannot both open a ticket.

mod decide;
mod evaluate;
mod fingerprint;
mod place;
mod score;
#[cfg(test)]
mod testing;
mod text;

pub use decide::{
    Admission, CandidateQuery, CandidateRules, Decision, Thresholds, TicketRef, candidates, decide, regions_overlap,
};
pub use evaluate::{EvaluationReport, Mistake, WrongDecision, evaluate, evaluate_with};
pub use fingerprint::{Fingerprint, Key, KeyKind, SKETCH, SourceIds, family};
pub use place::{Place, street_key};
pub use score::{Evidence, Reason, Score, haversine_m, score, text_similarity};
