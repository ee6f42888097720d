//! The platform's memory: tickets, idempotency keys and counters.
//!
//! Tickets and keys sit behind one short-lived mutex. The critical section is
//! a couple of map operations (parsing and validation happen before taking
//! it), which keeps the simulator well above the hub's benchmark rate on two
//! cores while making "check key, check revision, apply, remember" atomic, so
//! that concurrent retries of the same key always get the first answer.
//! Counters are atomics so that `stats()` is O(1) and lock-free.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use serde_json::{Value, json};

use super::validate::{Checked, Rejection};
use super::{AppliedChange, Stats, TicketRecord};

/// How long the platform remembers an idempotency key.
pub(crate) const KEY_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// An HTTP answer the platform gives (and may replay for a repeated key).
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// `Retry-After` header value, for `429`.
    pub retry_after: Option<String>,
}

impl Answer {
    pub(crate) fn json(status: u16, body: &Value) -> Self {
        let body = serde_json::to_vec(body).unwrap_or_default();
        Answer { status, body: Bytes::from(body), retry_after: None }
    }

    /// The `{"error", "field"}` body of a `400`/`422`.
    pub(crate) fn rejected(r: &Rejection) -> Self {
        Answer::json(r.status, &json!({"error": r.error, "field": r.field}))
    }
}

/// Counters behind [`Stats`]; one atomic each.
#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub applied: AtomicU64,
    pub created: AtomicU64,
    pub duplicate_keys: AtomicU64,
    pub stale_revisions: AtomicU64,
    pub revision_gaps: AtomicU64,
    pub rejected: AtomicU64,
    pub unauthorized: AtomicU64,
    pub throttled: AtomicU64,
    pub injected_errors: AtomicU64,
    pub outage_answers: AtomicU64,
    pub forced_answers: AtomicU64,
    pub tickets: AtomicU64,
}

/// Bumps a counter; relaxed is enough, counters order nothing.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            requests: get(&self.requests),
            applied: get(&self.applied),
            created: get(&self.created),
            duplicate_keys: get(&self.duplicate_keys),
            stale_revisions: get(&self.stale_revisions),
            revision_gaps: get(&self.revision_gaps),
            rejected: get(&self.rejected),
            unauthorized: get(&self.unauthorized),
            throttled: get(&self.throttled),
            injected_errors: get(&self.injected_errors),
            outage_answers: get(&self.outage_answers),
            forced_answers: get(&self.forced_answers),
            tickets: get(&self.tickets),
        }
    }
}

struct Ticket {
    revision: i64,
    /// The body as sent (valid UTF-8 JSON); parsed only when someone looks.
    body: Bytes,
    history: Vec<AppliedChange>,
}

struct Remembered {
    answer: Answer,
    at_ms: u64,
}

#[derive(Default)]
struct Book {
    tickets: HashMap<String, Ticket>,
    keys: HashMap<String, Remembered>,
}

/// One PUT, already authenticated, past the fault dice and parsed.
pub(crate) struct Put<'a> {
    pub ticket_id: &'a str,
    pub key: &'a str,
    pub checked: Result<Checked, Rejection>,
    pub body: Bytes,
    /// Extra reasons to reject, decided outside the lock (title/random rules).
    pub reject: Option<Rejection>,
    pub now_ms: u64,
}

#[derive(Default)]
pub(crate) struct Store {
    book: Mutex<Book>,
    pub counters: Counters,
}

impl Store {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic elsewhere must not take the simulator down with it.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Idempotency key → validation → revision order → apply, atomically.
    pub(crate) fn put(&self, put: Put<'_>) -> Answer {
        let Put { ticket_id, key, checked, body, reject, now_ms } = put;
        let c = &self.counters;
        let mut book = self.book();
        if let Some(seen) = book.keys.get(key)
            && now_ms.saturating_sub(seen.at_ms) < KEY_TTL_MS
        {
            bump(&c.duplicate_keys);
            return seen.answer.clone();
        }
        let answer = match (checked, reject) {
            (Err(r), _) | (Ok(_), Some(r)) => {
                bump(&c.rejected);
                Answer::rejected(&r)
            }
            (Ok(checked), None) => {
                let change =
                    AppliedChange { revision: checked.revision, idempotency_key: key.to_owned(), at_ms: now_ms };
                apply(&mut book.tickets, c, ticket_id, change, body)
            }
        };
        book.keys.insert(key.to_owned(), Remembered { answer: answer.clone(), at_ms: now_ms });
        answer
    }

    pub(crate) fn ticket(&self, id: &str) -> Option<TicketRecord> {
        let book = self.book();
        let t = book.tickets.get(id)?;
        Some(TicketRecord {
            ticket_id: id.to_owned(),
            revision: t.revision,
            body: serde_json::from_slice(&t.body).unwrap_or(Value::Null),
            history: t.history.clone(),
        })
    }

    pub(crate) fn tickets(&self) -> Vec<(String, i64)> {
        let mut list: Vec<(String, i64)> = {
            let book = self.book();
            book.tickets.iter().map(|(id, t)| (id.clone(), t.revision)).collect()
        };
        list.sort_unstable();
        list
    }
}

/// Revision order and storing; the caller remembers the answer with the key.
fn apply(
    tickets: &mut HashMap<String, Ticket>,
    c: &Counters,
    ticket_id: &str,
    change: AppliedChange,
    body: Bytes,
) -> Answer {
    let revision = change.revision;
    // A new ticket counts as being at revision 0, so a first revision other
    // than 1 also shows up as a gap.
    let (previous, created) = match tickets.get_mut(ticket_id) {
        Some(t) if revision <= t.revision => {
            bump(&c.stale_revisions);
            return Answer::json(409, &json!({"current": t.revision}));
        }
        Some(t) => {
            let previous = t.revision;
            t.revision = revision;
            t.body = body;
            t.history.push(change);
            (previous, false)
        }
        None => {
            tickets.insert(ticket_id.to_owned(), Ticket { revision, body, history: vec![change] });
            bump(&c.created);
            bump(&c.tickets);
            (0, true)
        }
    };
    bump(&c.applied);
    if previous.checked_add(1) != Some(revision) {
        bump(&c.revision_gaps);
    }
    let (status, result) = if created { (201, "created") } else { (200, "updated") };
    Answer::json(status, &json!({"ticketId": ticket_id, "revision": revision, "result": result}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put<'a>(store: &Store, id: &'a str, key: &'a str, revision: i64, now_ms: u64) -> Answer {
        store.put(Put {
            ticket_id: id,
            key,
            checked: Ok(Checked { revision, title: String::new() }),
            body: Bytes::from_static(b"{\"x\":1}"),
            reject: None,
            now_ms,
        })
    }

    #[test]
    fn order_keys_and_gaps() {
        let s = Store::default();
        assert_eq!(put(&s, "a", "k1", 1, 0).status, 201);
        assert_eq!(put(&s, "a", "k2", 3, 0).status, 200);
        let stale = put(&s, "a", "k3", 2, 0);
        assert_eq!(stale.status, 409);
        assert_eq!(&stale.body[..], br#"{"current":3}"#);
        // Replays keep the first answer even though the state moved on.
        assert_eq!(put(&s, "a", "k1", 1, 0).status, 201);
        assert_eq!(put(&s, "a", "k3", 9, 0).status, 409);
        let st = s.counters.snapshot();
        assert_eq!(
            (st.applied, st.created, st.duplicate_keys, st.stale_revisions, st.revision_gaps, st.tickets),
            (2, 1, 2, 1, 1, 1)
        );
        let rec = s.ticket("a").unwrap();
        assert_eq!(rec.revision, 3);
        assert_eq!(rec.history.len(), 2);
        assert_eq!(rec.body["x"], 1);
        assert_eq!(s.tickets(), vec![("a".to_owned(), 3)]);
    }

    #[test]
    fn keys_expire_after_seven_days() {
        let s = Store::default();
        assert_eq!(put(&s, "a", "k", 1, 0).status, 201);
        assert_eq!(put(&s, "a", "k", 1, KEY_TTL_MS - 1).status, 201);
        assert_eq!(put(&s, "a", "k", 1, KEY_TTL_MS).status, 409);
    }

    #[test]
    fn i64_max_revision_does_not_overflow() {
        let s = Store::default();
        assert_eq!(put(&s, "a", "k1", i64::MAX, 0).status, 201);
        assert_eq!(put(&s, "a", "k2", i64::MAX, 0).status, 409);
    }
}
