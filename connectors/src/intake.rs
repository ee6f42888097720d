//! The hand-over from a connector to the hub, and the outcome that comes back.

use tokio::sync::{mpsc, oneshot};

use crate::{Link, RawRecord};

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
    #[error("this hand-over takes single records only (no pages or cursors)")]
    Unsupported,
}

/// A record on its way to the hub, with the channel its outcome comes back on.
pub struct Submission {
    pub record: RawRecord,
    pub reply: oneshot::Sender<Result<Outcome, IntakeError>>,
}

/// A source's position (a feed's cursor and the ETag of its last page), kept
/// in the hub's store so that a restarted hub resumes where the last commit was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub value: String,
    pub etag: Option<String>,
}

/// Hand-overs that are not single records: a page of records committed
/// together with the cursor that covers them, or a question for the stored cursor.
pub enum PageRequest {
    Page {
        records: Vec<RawRecord>,
        /// Committed in the same transaction as `records`, under this name.
        cursor: Option<(String, Cursor)>,
        reply: oneshot::Sender<Result<Vec<Outcome>, IntakeError>>,
    },
    LoadCursor {
        name: String,
        reply: oneshot::Sender<Result<Option<Cursor>, IntakeError>>,
    },
}

/// The connector's end of the hand-over. Cheap to clone; one per connector task.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Submission>,
    pages: Option<mpsc::Sender<PageRequest>>,
    link: Link,
}

/// Creates the hand-over channel. The hub keeps the receiver; `capacity`
/// bounds how many records may wait for a commit, which is the back-pressure
/// that slows a connector when the store is busy.
pub fn intake_channel(capacity: usize) -> (Intake, mpsc::Receiver<Submission>) {
    let (tx, rx) = mpsc::channel(capacity);
    (Intake { tx, pages: None, link: Link::default() }, rx)
}

/// Like [`intake_channel`], with a second channel for pages and cursors
/// (the feed connectors need it; the hub provides it).
pub fn intake_channels(capacity: usize) -> (Intake, mpsc::Receiver<Submission>, mpsc::Receiver<PageRequest>) {
    let (tx, rx) = mpsc::channel(capacity);
    let (pages, pages_rx) = mpsc::channel(16);
    (Intake { tx, pages: Some(pages), link: Link::default() }, rx, pages_rx)
}

impl Intake {
    /// The same hand-over, reporting the connection's state to `link` (the
    /// hub gives each connector its own).
    pub fn with_link(mut self, link: Link) -> Intake {
        self.link = link;
        self
    }

    /// Where the connector says whether its connection to the source is up.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Hands a record over and waits until the hub has committed it (or failed to).
    pub async fn submit(&self, record: RawRecord) -> Result<Outcome, IntakeError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Submission { record, reply }).await.map_err(|_| IntakeError::ShuttingDown)?;
        answer.await.map_err(|_| IntakeError::ShuttingDown)?
    }

    /// Hands over a page of records and the cursor after it; the hub commits
    /// them in one transaction, so the cursor never runs ahead of the records
    /// it covers and a page fetched again after a crash is all duplicates.
    pub async fn submit_page(
        &self,
        records: Vec<RawRecord>,
        cursor: Option<(String, Cursor)>,
    ) -> Result<Vec<Outcome>, IntakeError> {
        let pages = self.pages.as_ref().ok_or(IntakeError::Unsupported)?;
        let (reply, answer) = oneshot::channel();
        pages.send(PageRequest::Page { records, cursor, reply }).await.map_err(|_| IntakeError::ShuttingDown)?;
        answer.await.map_err(|_| IntakeError::ShuttingDown)?
    }

    /// The cursor last committed under `name`, if any.
    pub async fn load_cursor(&self, name: &str) -> Result<Option<Cursor>, IntakeError> {
        let pages = self.pages.as_ref().ok_or(IntakeError::Unsupported)?;
        let (reply, answer) = oneshot::channel();
        pages
            .send(PageRequest::LoadCursor { name: name.to_string(), reply })
            .await
            .map_err(|_| IntakeError::ShuttingDown)?;
        answer.await.map_err(|_| IntakeError::ShuttingDown)?
    }
}
