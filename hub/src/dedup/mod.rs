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
//! - [`facts`](Quantity) (`facts.rs`): counts, measures, villagers' groups,
//!   organisations and months read out of the text, compared as facts.
//! - [`Weights`] (`weights.rs`, `weights.csv`): one weight per kind of
//!   evidence ([`Feature`]); [`fit()`] (`fit.rs`) fits them to labelled sets.
//! - [`families_of_text`] (`vocabulary.rs`): what a 9999 record is about,
//!   from the shared matter words.
//! - [`evaluate()`] (`evaluate.rs`): precision, recall and review load of
//!   merging on a labelled set (`tests/data/dedup-*.jsonl`; docs/duplicates.md).
//!
//! How the store uses it:
//!
//! 1. Compute the fingerprint of a mapped record with
//!    [`Fingerprint::new`] (its channel and record id as [`SourceIds`]) and
//!    keep it next to the source record of its open ticket
//!    ([`Fingerprint::to_bytes`], or hex in a text column), with its
//!    indexed columns: `area` ([`Fingerprint::area`], 9 digits), `occurred`
//!    (Unix seconds), `families` (bits) and one row per identifier key
//!    ([`Fingerprint::key_hashes`]) in a key table indexed on the key.
//! 2. Select with [`CandidateRules::query`] (area list or range, time
//!    range, family bits; or any shared key within its own range); keep the
//!    tickets of which one source is [`CandidateRules::admits`]; then pass
//!    **all** sources of those tickets to [`decide`] (see [`candidates`]):
//!    a fact one source contradicts counts against its whole ticket.
//! 3. Decide and insert in one transaction (one decision after the other),
//!    so that two records of one matter arriving together cannot both open
//!    a ticket; drop a ticket's fingerprints when it is closed.
//!
//! Measured (release, 2-core machine under load): fingerprinting one
//! record ≈ 10 µs, scoring one pair ≈ 0.3 µs (see the ignored test
//! `dedup::evaluate::tests::timing`); 143 bytes per fingerprint on average.

mod decide;
mod evaluate;
mod facts;
mod fingerprint;
mod fit;
mod place;
mod score;
#[cfg(test)]
pub(crate) mod testing;
mod text;
mod vocabulary;
mod weights;

pub use decide::{
    Admission, CandidateQuery, CandidateRules, Decision, Thresholds, TicketRef, candidates, decide, regions_overlap,
};
pub use evaluate::{EvaluationReport, Mistake, WrongDecision, evaluate, evaluate_with};
pub use facts::{Organisation, Quantity, Unit};
pub use fingerprint::{Fingerprint, Key, KeyKind, SKETCH, SourceIds, family};
pub use fit::{Example, Fitted, examples, fit};
pub use place::{Place, street_key};
pub use score::{Evidence, Reason, Score, haversine_m, score, text_similarity};
pub use vocabulary::families_of_text;
pub use weights::{Feature, Weights, with_weights};
