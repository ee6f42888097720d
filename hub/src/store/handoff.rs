//! Changes intake leases to the dispatcher in its own transaction.
//!
//! Without it a new change waits for two commits before it goes out:
//! intake's, then the dispatcher's lease. With it intake leases the outbox
//! rows it has just written, as many as the dispatcher has said it would
//! take and under the dispatcher's name, in the transaction that writes
//! them; once that commits they are handed over in memory. Only a ticket's
//! oldest change is leased, with a lease that runs out, as the dispatcher
//! leases; a new row is due at once and locked by nobody else, so the
//! dispatcher's other conditions hold by themselves. A crash between the
//! commit and the hand-over costs only the wait for the lease (none on
//! SQLite, where a starting hub frees every lease), never a change.
//!
//! SQLite only: its one writer makes every row from the transaction's
//! first (its insert returns the ids) the transaction's own. On PostgreSQL intake only
//! says that it wrote changes, and the dispatcher leases them (`SKIP
//! LOCKED`, beside other hubs).

use std::collections::HashMap;
use std::sync::Mutex;

use super::outbox::{LeasedChange, leased_change};
use super::{Backend, StoreError, Tx, now_ms};

/// Shared by intake (which hands) and the dispatcher (which takes).
#[derive(Debug)]
pub struct Handoff {
    owner: String,
    lease_ms: i64,
    state: Mutex<State>,
    /// Told when changes are handed over.
    ready: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    /// How many more the dispatcher would take now.
    wanted: usize,
    handed: Vec<LeasedChange>,
    /// Intake wrote changes it did not hand over: the dispatcher must look
    /// in the outbox.
    left: bool,
}

/// What the dispatcher finds handed over.
#[derive(Debug, Default)]
pub struct Handed {
    pub changes: Vec<LeasedChange>,
    /// Some new changes were not handed over and wait in the outbox.
    pub left: bool,
}

impl Handoff {
    pub fn new(owner: String, lease: std::time::Duration) -> Handoff {
        Handoff {
            owner,
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
            state: Mutex::default(),
            ready: tokio::sync::Notify::new(),
        }
    }

    /// The name the changes are leased under: the dispatcher's.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The dispatcher would take `n` more changes now (0 while it pauses).
    pub fn want(&self, n: usize) {
        self.lock().wanted = n;
    }

    /// Completes once changes are handed over (or were, since the last
    /// call): then [`Handoff::take`] them.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.ready.notified()
    }

    /// Changes were written for the dispatcher to lease from the outbox
    /// itself (a transaction that leased none).
    pub(crate) fn left_in_outbox(&self) {
        self.lock().left = true;
    }

    pub fn take(&self) -> Handed {
        let mut s = self.lock();
        Handed { changes: std::mem::take(&mut s.handed), left: std::mem::take(&mut s.left) }
    }

    pub(crate) fn wanted(&self) -> usize {
        self.lock().wanted
    }

    /// After the commit that leased them.
    fn hand(&self, changes: Vec<LeasedChange>, left: bool) {
        let handed = !changes.is_empty();
        {
            let mut s = self.lock();
            s.wanted = s.wanted.saturating_sub(changes.len());
            s.handed.extend(changes);
            s.left |= left;
        }
        if handed {
            self.ready.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// In [`leased_change`]'s order, with the body left out: the rows are the
/// transaction's own, whose bodies it holds ([`lease_new`]).
const LEASE_NEW: &str = "UPDATE outbox SET lease_owner = $1, lease_until = $2
      WHERE id IN (
        SELECT o.id FROM outbox o
         WHERE o.id >= $3 AND o.lease_owner IS NULL
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ticket_id = o.ticket_id AND p.id < o.id)
         ORDER BY o.id LIMIT $4)
      RETURNING id, ticket_id, revision, idempotency_key, '', attempts, lease_owner, lease_until, created_at";

/// How a write transaction's new changes reach the dispatcher, decided at
/// its start ([`mark`]) and carried out before its commit ([`Mark::lease`]).
pub(crate) enum Mark {
    /// Lease the outbox rows the transaction wrote.
    Own,
    /// Leave them in the outbox, and say so: the dispatcher leases them.
    Outbox,
}

/// At a write transaction's start. On SQLite only: one writer at a time
/// makes every outbox row from the transaction's first one on its own. On
/// PostgreSQL other hubs' rows may land among them; they are leased as
/// usual, with SKIP LOCKED.
pub(crate) fn mark(backend: Backend, handoff: &Handoff) -> Mark {
    if handoff.wanted() > 0 && backend == Backend::Sqlite { Mark::Own } else { Mark::Outbox }
}

impl Mark {
    /// Before the commit, given the ids of the outbox rows the transaction
    /// wrote; [`Leased::hand`] after it.
    pub(crate) async fn lease(
        self,
        tx: &mut Tx,
        handoff: &Handoff,
        written: &[i64],
        bodies: &mut HashMap<(String, i64), String>,
    ) -> Result<Leased, StoreError> {
        match self {
            Mark::Own => lease_new(tx, handoff, written, bodies).await,
            Mark::Outbox => Ok(Leased { changes: Vec::new(), left: true }),
        }
    }
}

/// The changes this transaction wrote (`written`, outbox ids), leased to
/// the dispatcher as far as it wants them: a ticket's oldest change only,
/// so that an older one waiting in the outbox goes first. Each carries its
/// revision's body as the transaction wrote it (`bodies`, taken from it),
/// not read back: every row from the first written on is this
/// transaction's own (one writer at a time), queued with its revision's
/// body ([`super::outbox::REVISION_BODY`]).
async fn lease_new(
    tx: &mut Tx,
    handoff: &Handoff,
    written: &[i64],
    bodies: &mut HashMap<(String, i64), String>,
) -> Result<Leased, StoreError> {
    let wanted = handoff.wanted().min(written.len());
    let Some(&first) = written.iter().min().filter(|_| wanted > 0) else {
        return Ok(Leased { changes: Vec::new(), left: !written.is_empty() });
    };
    let rows = super::query(LEASE_NEW)
        .bind(handoff.owner.clone())
        .bind(now_ms().saturating_add(handoff.lease_ms))
        .bind(first)
        .bind(wanted as i64)
        .fetch_all(tx)
        .await?;
    let mut changes: Vec<LeasedChange> = rows.iter().map(leased_change).collect();
    for change in &mut changes {
        match bodies.remove(&(change.ticket_id.clone(), change.revision)) {
            Some(body) => change.body = body,
            None => {
                // Not one of the bodies given (never so today): as a lease reads it.
                change.body = super::query_scalar::<String>(
                    "SELECT body FROM ticket_revisions WHERE ticket_id = $1 AND revision = $2",
                )
                .bind(&change.ticket_id)
                .bind(change.revision)
                .fetch_optional(tx)
                .await?
                .unwrap_or_default();
            }
        }
    }
    changes.sort_by_key(|c| c.id);
    let left = changes.len() < written.len();
    Ok(Leased { changes, left })
}

/// Leased in a transaction not yet committed.
#[must_use = "hand the changes over once the transaction has committed"]
pub(crate) struct Leased {
    changes: Vec<LeasedChange>,
    left: bool,
}

impl Leased {
    pub(crate) fn hand(self, handoff: &Handoff) {
        if !self.changes.is_empty() || self.left {
            handoff.hand(self.changes, self.left);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use connectors::{ContentType, RawRecord};

    use super::*;
    use crate::intake::{IntakeSettings, prepare};
    use crate::mapping::{CanonicalMapper, Mappings};
    use crate::store::Store;
    use crate::store::testing::{TestDb, revision_body};

    /// A change whose body the transaction does not hold is handed over with
    /// the body its revision holds, as the dispatcher's own lease reads it.
    #[tokio::test]
    async fn a_body_not_given_is_read_from_its_revision() {
        let db = TestDb::sqlite();
        let store = Store::open(&db.url).await.unwrap();
        let mut mappings = Mappings::new();
        mappings.insert("canon", Arc::new(CanonicalMapper));
        let items: Vec<_> = simulators::canonical::matters(7, 2, "B")
            .iter()
            .map(|m| {
                let rec = RawRecord::new("canon", ContentType::Json, m.payload(1));
                prepare(&rec, &mappings, &IntakeSettings::default())
            })
            .collect();
        assert!(store.store_batch(&items).await.iter().all(|o| o.is_ok()));
        let handoff = Handoff::new("d".into(), std::time::Duration::from_secs(60));
        handoff.want(2);
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM outbox ORDER BY id").fetch_all(store.pool()).await.unwrap();
        let mut w = store.begin_write().await.unwrap();
        let leased = lease_new(&mut w.tx, &handoff, &ids, &mut HashMap::new()).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(leased.changes.len(), 2);
        for c in &leased.changes {
            let stored = revision_body(&store, &c.ticket_id, c.revision).await;
            assert!(!stored.is_empty());
            assert_eq!(c.body, stored);
        }
        store.close().await;
        db.cleanup().await;
    }
}
