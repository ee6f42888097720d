//! The hand-over from a connector to the hub, and the outcome that comes back.

use tokio::sync::{mpsc, oneshot};

use crate::RawRecord;

/// What the hub did with a record. Every variant means the record is durably
/// handled, so the connector may acknowledge it at its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new ticket was created from it.
    Created { ticket_id: String },
    /// It changed an existing ticket (a new revision).
    Updated { ticket_id: String },
    /// The same (system, record id, version) was stored before: nothing changed.
    Duplicate,
    /// An older version than the one already applied: kept, otherwise ignored.
    Stale,
    /// Bad input: kept in quarantine with a reason a person can read.
    Quarantined { reason: String },
}

/// The hub could not store the record. Nothing was committed: do not
/// acknowledge, let the source deliver it again.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the hub is shutting down")]
    ShuttingDown,
    #[error("the hub could not store the record: {0}")]
    Store(String),
}

/// A record on its way to the hub, with the channel its outcome comes back on.
pub struct Submission {
    pub record: RawRecord,
    pub reply: oneshot::Sender<Result<Outcome, IntakeError>>,
}

/// The connector's end of the hand-over. Cheap to clone; one per connector task.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Submission>,
}

/// Creates the hand-over channel. The hub keeps the receiver; `capacity`
/// bounds how many records may wait for a commit, which is the back-pressure
/// that slows a connector when the store is busy.
pub fn intake_channel(capacity: usize) -> (Intake, mpsc::Receiver<Submission>) {
    let (tx, rx) = mpsc::channel(capacity);
    (Intake { tx }, rx)
}

impl Intake {
    /// Hands a record over and waits until the hub has committed it (or failed to).
    pub async fn submit(&self, record: RawRecord) -> Result<Outcome, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Submission { record, reply }).await.map_err(|_| IntakeError::ShuttingDown)?;
        answer.await.map_err(|_| IntakeError::ShuttingDown)?
    }
}
