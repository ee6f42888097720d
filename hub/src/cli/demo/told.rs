//! The way back, reconciled: did every origin of a ticket hear each status
//! change the platform reported, once as a change?
//!
//! What an origin was *expected* to hear is taken from the hub's store:
//! the feedback lines of the tickets' histories (`hotline told of
//! dispatched (fb-…)`), written in the transaction that removes a message
//! from the feedback outbox, with that outbox empty at the end (nothing
//! waiting, nothing dead) and no origin that could not be told. Why not
//! work it out from the callbacks the platform got 200 for and each
//! ticket's sources instead: the sources of a ticket change while its
//! callbacks flow (a petition merged into the hotline's ticket a minute
//! later hears only what happens after it joined), and only the
//! transaction that applied a callback knows who the origins were at that
//! moment; recomputed from the tickets at the end, a late joiner would be
//! expected to hear changes from before it joined.
//!
//! So that this is not the hub marking its own work, the record is held
//! against what the other side saw, from both ends:
//! - each agency's listener, by message id (AMQP), by event, status and
//!   time (MQTT), by `Idempotency-Key` (the court): the changes heard are
//!   exactly the ones the store says were told, each once as a change,
//!   copies counted as resends;
//! - the platform simulator's own list of the events the hub answered
//!   `applied`/`reopened`: every change an agency heard is one of them
//!   (same ticket, status and time), or one the hub made itself (a
//!   deadline reminder, a worker's frown) as its history says, so nothing
//!   was told that did not happen; every mediation outcome applied reached the court; every
//!   event the platform sent twice was applied once, every event sent
//!   after a newer one left its ticket as it was, and the forged one was
//!   refused.

use std::collections::{BTreeMap, HashMap, HashSet};

use hub::store::Store;
use simulators::agencies::court::CourtStats;
use simulators::platform::{AppliedEvent, CallbackStats, PlatformSim};

use super::loopback::HeardBack;

/// The origins with a back-channel, in the order they are shown.
const ORIGINS: [&str; 4] = ["hotline", "petition", "terminal", "court"];

/// What the hub's store says it told each origin.
#[derive(Debug, Default)]
pub struct Told {
    /// origin → message id → status.
    by_origin: BTreeMap<String, BTreeMap<String, String>>,
    /// Lines `… cannot be told of …`: an origin the hub had no address for.
    untellable: u64,
    pending: i64,
    dead: usize,
    /// Changes the hub itself made, not the platform: (ticket, status) of
    /// each deadline reminder (`due_soon`) and of each matter a worker's
    /// frown reopened (`reopened`), from the tickets' histories.
    own: HashSet<(String, String)>,
}

impl Told {
    fn of(&self, origin: &str) -> Option<&BTreeMap<String, String>> {
        self.by_origin.get(origin)
    }

    fn count(&self, origin: &str) -> usize {
        self.of(origin).map_or(0, BTreeMap::len)
    }

    fn by_status(&self, origin: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for status in self.of(origin).into_iter().flat_map(BTreeMap::values) {
            *out.entry(status.clone()).or_default() += 1;
        }
        out
    }
}

/// `hotline told of dispatched (fb-…)` → (origin, status, message id).
fn told_line(detail: &str) -> Option<(&str, &str, &str)> {
    let (origin, rest) = detail.split_once(" told of ")?;
    let (status, id) = rest.split_once(" (")?;
    Some((origin, status, id.strip_suffix(')')?))
}

/// Reads the feedback lines of every ticket's history and the outbox.
pub async fn read(store: &Store) -> anyhow::Result<Told> {
    let mut told = Told::default();
    for (ticket_id, _) in store.ticket_revisions().await? {
        for line in store.ticket_events(&ticket_id).await? {
            match line.kind.as_str() {
                "deadline" if line.detail.starts_with("due soon") => {
                    told.own.insert((ticket_id.clone(), "due_soon".to_string()));
                }
                "evaluation" if line.detail.contains("reopened") => {
                    told.own.insert((ticket_id.clone(), "reopened".to_string()));
                }
                _ => {}
            }
            if line.kind != "feedback" {
                continue;
            }
            if let Some((origin, status, id)) = told_line(&line.detail) {
                told.by_origin.entry(origin.to_string()).or_default().insert(id.to_string(), status.to_string());
            } else if line.detail.contains(" cannot be told of ") {
                told.untellable += 1;
            }
        }
    }
    told.pending = store.feedback_depths().await?.iter().map(|(_, n)| n).sum();
    told.dead = store.feedback_entries(true, 100_000).await?.len();
    Ok(told)
}

/// Everything the reconciliation of the way back looks at.
pub struct Back<'a> {
    pub told: &'a Told,
    pub heard: &'a HeardBack,
    pub court: &'a CourtStats,
    pub callbacks: &'a CallbackStats,
    pub applied: &'a [AppliedEvent],
    pub sim: &'a PlatformSim,
    /// Whether the platform sent a forged callback.
    pub forged: bool,
}

fn list(counts: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

impl Back<'_> {
    /// (heard, distinct) per origin: what its listener or the court counted.
    fn heard(&self, origin: &str) -> Option<(u64, u64)> {
        if origin == "court" {
            return Some((self.court.outcomes_heard, self.court.outcome_keys));
        }
        self.heard.of(origin).map(|(t, _)| (t.heard, t.distinct))
    }

    pub fn print(&self) {
        let c = self.callbacks;
        println!(
            "\ncallbacks: the platform sent {} events for {} tickets ({}) in {} requests: {} applied ({} reopened a matter after a frown, {} reopened revisions back on the platform), {} stale (sent after a newer one), {} duplicates (sent twice), {} held, {} retried; {} forged, {} refused",
            c.events,
            c.tickets,
            list(&c.by_status),
            c.requests,
            c.applied,
            c.reopened,
            c.reopened_revisions,
            c.stale,
            c.duplicates,
            c.held,
            c.retried,
            u64::from(self.forged),
            c.forged_refused,
        );
        println!(
            "\n{:<10} {:>6} {:>7} {:>9} {:>8}  told, by status",
            "way back", "told", "heard", "distinct", "resends"
        );
        for origin in ORIGINS {
            let Some((heard, distinct)) = self.heard(origin) else { continue };
            println!(
                "{origin:<10} {:>6} {heard:>7} {distinct:>9} {:>8}  {}",
                self.told.count(origin),
                heard.saturating_sub(distinct),
                list(&self.told.by_status(origin))
            );
        }
        println!(
            "(told: the hub's record of messages the agency took; heard: messages its listener got; resends: copies of a message heard before, same id)"
        );
    }

    /// The lines of the reconciliation for the way back.
    pub fn checks(&self) -> Vec<(String, bool)> {
        let c = self.callbacks;
        let mut checks = vec![(
            format!(
                "callbacks: every event the platform sent was taken ({} events, {} held, {} refused, {} given up)",
                c.events, c.held, c.refused, c.abandoned
            ),
            c.held == 0 && c.refused == 0 && c.abandoned == 0,
        )];
        if self.forged {
            checks.push((
                format!(
                    "callbacks: the forged one was refused with 401 ({} refused, {} taken)",
                    c.forged_refused, c.forged_accepted
                ),
                c.forged_refused == 1 && c.forged_accepted == 0,
            ));
        }
        if c.repeats + c.duplicates > 0 {
            checks.push((
                format!(
                    "callbacks: each event sent twice was applied once ({} sent twice, {} answered as seen before)",
                    c.repeats, c.duplicates
                ),
                c.repeats == c.duplicates,
            ));
        }
        if c.late + c.stale > 0 {
            checks.push((
                format!(
                    "callbacks: each event sent after a newer one moved nothing back ({} sent late, {} kept as stale)",
                    c.late, c.stale
                ),
                c.late == c.stale,
            ));
        }
        checks.push((
            format!(
                "feedback: the outbox is empty ({} waiting, {} dead, {} origins that could not be told)",
                self.told.pending, self.told.dead, self.told.untellable
            ),
            self.told.pending == 0 && self.told.dead == 0 && self.told.untellable == 0,
        ));
        let caused = Caused::new(self.sim, self.applied, &self.told.own);
        for origin in ["hotline", "petition", "terminal"] {
            let Some((tally, changes)) = self.heard.of(origin) else { continue };
            let told = self.told.of(origin).cloned().unwrap_or_default();
            let exact = if origin == "terminal" {
                // No message id over MQTT: the same changes, status by status.
                tally.by_status == self.told.by_status(origin) && tally.distinct as usize == told.len()
            } else {
                let heard: HashSet<&str> = changes.iter().map(|c| c.key.as_str()).collect();
                heard.len() == told.len() && told.keys().all(|id| heard.contains(id.as_str()))
            };
            checks.push((
                format!(
                    "{origin}: every change the hub told arrived once as a change ({} told, {} distinct heard, {} resends)",
                    told.len(),
                    tally.distinct,
                    tally.resends()
                ),
                exact && tally.unreadable == 0,
            ));
            let unexplained =
                changes.iter().filter(|h| !caused.explains(origin, &h.record_id, &h.status, h.at_ms)).count();
            checks.push((
                format!("{origin}: every change heard is an event the platform had applied ({unexplained} not)"),
                unexplained == 0,
            ));
        }
        let mediations = self.applied.iter().filter(|e| e.mediation.is_some()).count() as u64;
        let told = self.told.count("court") as u64;
        checks.push((
            format!(
                "court: every mediation outcome applied reached the court once ({mediations} applied, {told} told, {} distinct heard, {} resends)",
                self.court.outcome_keys,
                self.court.outcome_resends()
            ),
            mediations == told && told == self.court.outcome_keys,
        ));
        checks
    }
}

/// The platform's side: which ticket holds each agency record, and which
/// (ticket, status, time) the hub applied.
struct Caused {
    tickets_of: HashMap<(String, String), Vec<String>>,
    applied: HashSet<(String, String, i64)>,
    /// The hub's own changes (reminders, a worker's frown), by (ticket, status).
    own: HashSet<(String, String)>,
}

impl Caused {
    fn new(sim: &PlatformSim, applied: &[AppliedEvent], own: &HashSet<(String, String)>) -> Caused {
        let mut tickets_of: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (ticket_id, _) in sim.tickets() {
            let Some(t) = sim.ticket(&ticket_id) else { continue };
            for s in t.body["sources"].as_array().into_iter().flatten() {
                if let (Some(system), Some(record)) = (s["system"].as_str(), s["recordId"].as_str()) {
                    tickets_of.entry((system.to_string(), record.to_string())).or_default().push(ticket_id.clone());
                }
            }
        }
        let applied = applied
            .iter()
            .flat_map(|e| {
                [(e.ticket_id.clone(), e.status.clone(), e.at_ms), (e.ticket_id.clone(), e.told.clone(), e.at_ms)]
            })
            .collect();
        Caused { tickets_of, applied, own: own.clone() }
    }

    fn explains(&self, origin: &str, record_id: &str, status: &str, at_ms: i64) -> bool {
        self.tickets_of.get(&(origin.to_string(), record_id.to_string())).into_iter().flatten().any(|t| {
            self.applied.contains(&(t.clone(), status.to_string(), at_ms))
                || self.own.contains(&(t.clone(), status.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_told_line_names_origin_status_and_message_id() {
        assert_eq!(
            told_line("hotline told of dispatched (fb-0123abcd)"),
            Some(("hotline", "dispatched", "fb-0123abcd"))
        );
        assert_eq!(told_line("terminal cannot be told of urged: the address needs meta.county"), None);
        assert_eq!(told_line("court refused resolved for good: answered 400"), None);
    }

    #[test]
    fn only_an_applied_event_on_the_records_ticket_explains_a_change() {
        let caused = Caused {
            tickets_of: HashMap::from([(("hotline".into(), "LY1".into()), vec!["t1".into()])]),
            applied: HashSet::from([("t1".into(), "dispatched".into(), 1000)]),
            own: HashSet::from([("t1".into(), "due_soon".into())]),
        };
        assert!(caused.explains("hotline", "LY1", "due_soon", 5), "the hub's own reminder");
        assert!(caused.explains("hotline", "LY1", "dispatched", 1000));
        assert!(!caused.explains("hotline", "LY1", "dispatched", 1001), "another time");
        assert!(!caused.explains("hotline", "LY1", "resolved", 1000), "another status");
        assert!(!caused.explains("petition", "LY1", "dispatched", 1000), "another agency's record");
    }
}
