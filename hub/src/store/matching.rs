//! The store's side of duplicate detection: the fingerprints of the records
//! behind open tickets, held in memory for candidate search and brought up
//! to date from `match_prints` inside the transaction that decides.
//!
//! Why it is atomic, on SQLite and across hubs on PostgreSQL: a transaction
//! that decides about new records first updates the one row of
//! `match_clock`. That row lock makes all such decisions, of every hub,
//! happen one after the other; the `seq` numbers handed out under it grow
//! in commit order, so a hub that holds the lock and reads `seq > last
//! seen` has every fingerprint committed before it. Two records of one
//! matter arriving at once on two connectors (or two hubs) are decided in
//! turn: the second one sees the first one's ticket.
//!
//! What is held is bounded by time, not by history: a fingerprint older
//! than the rules' reach ([`CandidateRules::reach`]) before the newest
//! record can no longer be a candidate. The first load reads only those
//! within it; the index drops the others as it grows
//! ([`MatchIndex::prune`]); and [`delete_expired`] removes rows past the
//! retention (`dedup.retention`) from the table in bounded batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::batch;
use super::{Backend, StoreError, Tx};
use crate::dedup::{CandidateQuery, CandidateRules, Decision, Fingerprint, Score, Thresholds, decide};

/// What intake decides with: the record's fingerprint and the thresholds
/// of its source.
#[derive(Clone, Debug)]
pub struct Matching {
    pub print: Fingerprint,
    pub thresholds: Thresholds,
}

/// One record's fingerprint, by the ticket it belongs to.
#[derive(Debug)]
struct Entry {
    ticket_id: Arc<str>,
    print: Fingerprint,
}

/// What candidate search filters on, for every entry side by side: a
/// township's postings run to thousands of entries a record, most of them
/// in another township, another window or another category family, and
/// reading 24 bytes here instead of the whole fingerprint is what keeps
/// that filter cheap.
#[derive(Clone, Copy, Debug)]
struct Header {
    area: u64,
    occurred: i64,
    families: u16,
    /// How far in time the entry looks for its matter, seconds
    /// ([`CandidateRules::window`]): a pair's window is the longer of two.
    window: u32,
    /// False once the record moved to another ticket (a newer row).
    live: bool,
}

/// How many of a text's smallest shingle hashes (unigrams and bigrams)
/// index it. Two texts with Jaccard similarity J share their smallest hash
/// with probability J, so eight anchors find alike texts without scanning a
/// township's tickets.
const ANCHORS: usize = 8;

/// An anchor or place shared by more tickets of a township than this is
/// too common to say anything (`街道`, a main road): it is not followed.
const MAX_POSTINGS: usize = 2048;

/// A posting list on more than 1/COMMON_SHARE of its area's entries is not
/// followed either ([`MatchIndex::common_in`]), unless it is this short.
const COMMON_SHARE: usize = 4;
const COMMON_FLOOR: usize = 2 * MAX_SCORED;

/// Tickets found through anchors and places that are scored, those sharing
/// the most first: what bounds the work per record however many tickets
/// are open. Tickets sharing an identifier are always scored.
const MAX_SCORED: usize = 64;

/// Entries held before the index first looks for ones to drop: below
/// this, a rebuild costs more than what it frees. After each prune the
/// index may grow to twice what it kept, so the work of pruning is
/// constant per record and what is held stays under twice the window's
/// records.
const PRUNE_FLOOR: usize = 1 << 16;

/// The open tickets' fingerprints. Candidates come from three indexes, none
/// of which is a scan: shared identifiers (phone, ID number, case number,
/// event id), shared text anchors within the township, and a shared street
/// or community within the township. [`CandidateRules`] then applies the
/// exact rules (area, window, category family) to what they found.
///
/// Anchors and places are kept by township, not by county, because the
/// rules only ever select the same township (or a record coded no finer
/// than its county): a county's postings are mostly other townships'
/// entries, each of which would be counted and then thrown away.
#[derive(Debug, Default)]
pub struct MatchIndex {
    seen: i64,
    /// What the batch being stored is expected to commit, published when
    /// it was scored: the next batch is scored against it while that
    /// batch's transaction writes ([`MatchIndex::ahead`]).
    in_flight: Option<InFlight>,
    /// The published batch last taken in by [`MatchIndex::absorb`] as it
    /// was published, while nothing else has been read since: a decision
    /// scored against it stands only then.
    absorbed: Option<u64>,
    entries: Vec<Entry>,
    /// `entries[i]`'s header at `headers[i]`.
    headers: Vec<Header>,
    by_record: HashMap<(String, String), u32>,
    /// A ticket's entries: every source of a candidate ticket is scored, so
    /// that what one source contradicts counts against the whole ticket.
    by_ticket: HashMap<Arc<str>, Vec<u32>, OwnKeys>,
    by_key: HashMap<u64, Vec<u32>>,
    /// (area, bigram hash) → entries whose text has it among its anchors.
    by_anchor: HashMap<(u64, u32), Vec<u32>>,
    /// (area, street or community) → entries.
    by_place: HashMap<(u64, u64), Vec<u32>>,
    /// County → the areas in it that have entries (the county's own code
    /// among them): what a record coded only to its county looks through.
    areas: HashMap<u64, Vec<u64>>,
    /// Area → entries ever added in it: how common a posting is there.
    in_area: HashMap<u64, u32>,
    /// The newest `occurred` added (Unix seconds): what "past the window"
    /// is measured from, capped at the clock ([`MatchIndex::cutoff`]).
    newest: i64,
    /// Entries held at which [`MatchIndex::prune`] runs next.
    prune_at: usize,
    pub rules: CandidateRules,
    /// `seen` and `absorbed`, for reading without the index's lock.
    mark: Arc<Mark>,
}

/// How far the index has read, readable without its lock: a transaction
/// whose decisions were scored in advance checks here that they still
/// hold, and so does not wait for the scoring of the next batch.
#[derive(Debug, Default)]
pub(crate) struct Mark {
    seen: std::sync::atomic::AtomicI64,
    /// 0: none.
    absorbed: std::sync::atomic::AtomicU64,
}

impl Mark {
    fn set(&self, seen: i64, absorbed: Option<u64>) {
        use std::sync::atomic::Ordering::SeqCst;
        // Absorbed first: a reader that sees the new `seen` never pairs it
        // with an older batch's token.
        self.absorbed.store(absorbed.unwrap_or(0), SeqCst);
        self.seen.store(seen, SeqCst);
    }

    /// Whether the index holds exactly what a decision read: everything up
    /// to `seen` and, if `token` is set, the batch published under it
    /// (committed as published) as the last thing taken in.
    pub(crate) fn holds(&self, seen: i64, token: Option<u64>) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        let absorbed = self.absorbed.load(SeqCst);
        self.seen.load(SeqCst) == seen && token.is_none_or(|t| absorbed == t)
    }
}

/// The index and its mark, as a store shares them between its clones.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    index: tokio::sync::Mutex<MatchIndex>,
    mark: Arc<Mark>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        let index = MatchIndex::default();
        let mark = index.mark.clone();
        Shared { index: tokio::sync::Mutex::new(index), mark }
    }

    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, MatchIndex> {
        self.index.lock().await
    }

    pub(crate) fn mark(&self) -> &Mark {
        &self.mark
    }
}

thread_local! {
    /// Per-thread counters for [`MatchIndex::select`], kept between calls:
    /// counting in an array indexed by entry beats a hash map by far, and
    /// clearing it costs nothing (see [`Counts`]).
    static SCRATCH: std::cell::RefCell<Counts> = std::cell::RefCell::default();
}

/// How many postings each entry is on, for one query at a time. An entry's
/// slot counts only if it was stamped by the current query: a new query
/// bumps the stamp instead of clearing the array. An entry the filter
/// refused is stamped with a count of 0, so it is looked at once however
/// many lists it is on.
#[derive(Default)]
struct Counts {
    stamp: u32,
    /// Per entry: (stamp of the query that last saw it, count).
    slots: Vec<(u32, u16)>,
    touched: Vec<u32>,
}

impl Counts {
    fn count(
        &mut self,
        entries: usize,
        postings: impl Iterator<Item = u32>,
        selected: impl Fn(u32) -> bool,
    ) -> Vec<(u32, u16)> {
        if self.slots.len() < entries {
            self.slots.resize(entries, (0, 0));
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // Wrapped: old stamps could be taken for this query's.
            self.slots.iter_mut().for_each(|s| *s = (0, 0));
            self.stamp = 1;
        }
        let stamp = self.stamp;
        self.touched.clear();
        for i in postings {
            let slot = &mut self.slots[i as usize];
            if slot.0 == stamp {
                if slot.1 > 0 {
                    slot.1 = slot.1.saturating_add(1);
                }
            } else if selected(i) {
                *slot = (stamp, 1);
                self.touched.push(i);
            } else {
                *slot = (stamp, 0);
            }
        }
        self.touched.iter().map(|&i| (i, self.slots[i as usize].1)).collect()
    }
}

/// Hashes keys the hub made itself (entry numbers, ticket ids), where
/// SipHash's resistance to chosen keys buys nothing and costs most of the
/// time of a lookup: Fibonacci hashing, eight bytes at a time, spreads
/// consecutive numbers and uuids alike.
#[derive(Clone, Copy, Default)]
struct OwnKeys;

impl std::hash::BuildHasher for OwnKeys {
    type Hasher = OwnKeyHash;
    fn build_hasher(&self) -> OwnKeyHash {
        OwnKeyHash(0)
    }
}

#[derive(Default)]
struct OwnKeyHash(u64);

impl OwnKeyHash {
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl std::hash::Hasher for OwnKeyHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.mix(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
}

fn county_of(area: u64) -> u64 {
    area / 1000
}

fn place_keys(p: &Fingerprint) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    let key = |s: &str, tag: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (tag, s).hash(&mut h);
        h.finish()
    };
    let mut out: Vec<u64> = p.place.streets.iter().map(|s| key(crate::dedup::street_key(s), 0)).collect();
    if let Some(c) = &p.place.community {
        out.push(key(c, 1));
    }
    out
}

impl MatchIndex {
    pub fn new(rules: CandidateRules) -> Self {
        MatchIndex { rules, ..MatchIndex::default() }
    }

    /// Fingerprints held (live ones).
    pub fn len(&self) -> usize {
        self.headers.iter().filter(|h| h.live).count()
    }

    /// Entries in memory, live or not: what the index's size follows.
    pub fn held(&self) -> usize {
        self.entries.len()
    }

    /// The oldest `occurred` (Unix seconds) that can still be a candidate:
    /// the rules' reach before the newest record, or before `now` when
    /// that record is dated later than the clock (a wrong date in the
    /// future must not push every other fingerprint out).
    pub fn cutoff(&self, now: i64) -> i64 {
        cutoff(self.newest.min(now), &self.rules)
    }

    /// Drops the entries that can no longer be candidates (older than
    /// [`MatchIndex::cutoff`]) and those a newer row of their record
    /// replaced, by rebuilding the indexes from what is kept; returns how
    /// many were dropped. The index's lock is held meanwhile (about a
    /// second per million entries kept).
    pub fn prune(&mut self, now: i64) -> usize {
        let cutoff = self.cutoff(now);
        let keep = self.headers.iter().filter(|h| h.live && h.occurred >= cutoff).count();
        let dropped = self.entries.len() - keep;
        if dropped > 0 {
            // Every live entry has its record's key in `by_record`.
            let mut records: Vec<Option<(String, String)>> = vec![None; self.entries.len()];
            for (key, i) in self.by_record.drain() {
                records[i as usize] = Some(key);
            }
            let entries = std::mem::take(&mut self.entries);
            let headers = std::mem::take(&mut self.headers);
            let rules = self.rules;
            let (seen, in_flight, absorbed, mark, newest) =
                (self.seen, self.in_flight.take(), self.absorbed, self.mark.clone(), self.newest);
            *self = MatchIndex { seen, in_flight, absorbed, mark, newest, ..MatchIndex::new(rules) };
            for ((e, h), record) in entries.into_iter().zip(headers).zip(records) {
                if let Some((system, record_id)) = record.filter(|_| h.live && h.occurred >= cutoff) {
                    self.add(&e.ticket_id, &system, &record_id, e.print);
                }
            }
        }
        self.prune_at = (2 * self.entries.len()).max(PRUNE_FLOOR);
        dropped
    }

    /// Prunes once the index has grown to its next mark.
    fn prune_when_grown(&mut self) {
        if self.entries.len() >= self.prune_at.max(PRUNE_FLOOR) {
            let dropped = self.prune(chrono::Utc::now().timestamp());
            tracing::debug!(dropped, kept = self.entries.len(), "match index pruned");
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a record's fingerprint; a newer one of the same record replaces it.
    pub fn add(&mut self, ticket_id: &str, system: &str, record_id: &str, print: Fingerprint) {
        let i = self.entries.len() as u32;
        if let Some(old) = self.by_record.insert((system.to_string(), record_id.to_string()), i) {
            self.headers[old as usize].live = false;
        }
        let area = print.area();
        self.newest = self.newest.max(print.occurred);
        *self.in_area.entry(area).or_default() += 1;
        let in_county = self.areas.entry(county_of(area)).or_default();
        if !in_county.contains(&area) {
            in_county.push(area);
        }
        for &g in print.sketch.iter().take(ANCHORS) {
            self.by_anchor.entry((area, u32::from(g))).or_default().push(i);
        }
        for p in place_keys(&print) {
            self.by_place.entry((area, p)).or_default().push(i);
        }
        for k in print.key_hashes() {
            self.by_key.entry(k).or_default().push(i);
        }
        let ticket: Arc<str> = Arc::from(ticket_id);
        self.by_ticket.entry(ticket.clone()).or_default().push(i);
        self.headers.push(Header {
            area: print.area(),
            occurred: print.occurred,
            families: print.families,
            window: u32::try_from(self.rules.window(&print).as_secs()).unwrap_or(u32::MAX),
            live: true,
        });
        self.entries.push(Entry { ticket_id: ticket, print });
    }

    /// The longest posting list of `area` worth following: one on more
    /// than a quarter of the area's entries is a shingle or street most of
    /// its matters share (a stock phrase, the main road), and counting it
    /// only adds the same to most candidates.
    fn common_in(&self, area: u64) -> usize {
        let n = self.in_area.get(&area).copied().unwrap_or(0) as usize;
        (n / COMMON_SHARE).clamp(COMMON_FLOOR, MAX_POSTINGS)
    }

    /// Where a record's candidates can be: a township and its county's own
    /// code (a record coded no finer); for a record coded only to a county
    /// (or to the city), every area of it that has entries.
    fn lookup_areas(&self, area: u64) -> Vec<u64> {
        if area.is_multiple_of(1000) {
            self.areas.get(&county_of(area)).cloned().unwrap_or_default()
        } else {
            vec![area, area / 1000 * 1000]
        }
    }

    /// The live entries the query selects that share an anchor, a place or
    /// an identifier with `incoming`, each once.
    fn select(&self, incoming: &Fingerprint, q: &CandidateQuery) -> Vec<u32> {
        let areas = self.lookup_areas(incoming.area());
        let places = place_keys(incoming);
        let anchors = incoming.sketch.iter().take(ANCHORS).map(|&g| u32::from(g));
        let lists = areas.iter().flat_map(|&a| {
            let common = self.common_in(a);
            let anchored = anchors.clone().filter_map(move |g| self.by_anchor.get(&(a, g)));
            anchored
                .chain(places.iter().filter_map(move |&p| self.by_place.get(&(a, p))))
                .filter(move |l| l.len() <= common)
        });
        // Only entries the rules admit as neighbours (area, category
        // family, the pair's window) are counted, from their headers:
        // entries sharing an identifier are found through the identifiers
        // below, and what is counted is what the ranking keeps.
        let own = self.rules.window(incoming).as_secs();
        let selected = |i: u32| {
            let h = &self.headers[i as usize];
            h.live
                && q.selects_region(h.area, h.occurred, h.families)
                && incoming.occurred.abs_diff(h.occurred) <= own.max(u64::from(h.window))
        };
        let mut ranked: Vec<(u32, u16)> = SCRATCH.with_borrow_mut(|counts| {
            counts.count(self.entries.len(), lists.flat_map(|list| list.iter().copied()), selected)
        });
        // Most shared first (a total order: ties by entry, newest first);
        // only the first MAX_SCORED are needed.
        let order = |a: &(u32, u16), b: &(u32, u16)| b.1.cmp(&a.1).then(b.0.cmp(&a.0));
        if ranked.len() > MAX_SCORED {
            ranked.select_nth_unstable_by(MAX_SCORED, order);
            ranked.truncate(MAX_SCORED);
        }
        ranked.sort_unstable_by(order);
        let mut out: Vec<u32> = ranked.into_iter().map(|(i, _)| i).collect();
        let mut seen: HashSet<u32, OwnKeys> = out.iter().copied().collect();
        // An identifier on more open tickets than this is a switchboard
        // number or a common name, not an identity.
        let identities = q.keys.iter().filter_map(|k| self.by_key.get(k)).filter(|l| l.len() <= MAX_SCORED * 4);
        for list in identities {
            for &i in list {
                let h = &self.headers[i as usize];
                if h.live && (q.keys_from..=q.keys_to).contains(&h.occurred) && seen.insert(i) {
                    out.push(i);
                }
            }
        }
        out
    }

    /// Decides about `incoming` against the index and the fingerprints of
    /// records decided earlier in the same batch (`pending`, not committed
    /// yet).
    pub fn decide(
        &self,
        incoming: &Fingerprint,
        pending: &BatchPrints,
        thresholds: &Thresholds,
        finished: &HashSet<String>,
    ) -> Decision<String> {
        let q = self.rules.query(incoming);
        let rules = &self.rules;
        // The tickets with at least one admitted source…
        let mut tickets: Vec<&str> = Vec::new();
        let mut taken: HashSet<&str, OwnKeys> = HashSet::default();
        let stored = self.select(incoming, &q).into_iter().map(|i| {
            let e = &self.entries[i as usize];
            (&*e.ticket_id, &e.print)
        });
        let batch = pending.select(&q);
        for (t, p) in stored.chain(batch) {
            if !taken.contains(t) && !finished.contains(t) && rules.admits(incoming, p).is_some() {
                taken.insert(t);
                tickets.push(t);
            }
        }
        // …with all their sources.
        let mut all: Vec<(&str, &Fingerprint)> = Vec::new();
        for &t in &tickets {
            for &i in self.by_ticket.get(t).into_iter().flatten() {
                if self.headers[i as usize].live {
                    all.push((t, &self.entries[i as usize].print));
                }
            }
            all.extend(pending.of_ticket(t).map(|p| (t, p)));
        }
        match decide(incoming, all, thresholds) {
            Decision::Merge { ticket, score } => Decision::Merge { ticket: ticket.to_string(), score },
            Decision::Possible { ticket, score } => Decision::Possible { ticket: ticket.to_string(), score },
            Decision::New => Decision::New,
        }
    }

    /// Takes the fingerprints this hub's own transaction wrote from
    /// `first_seq` on, after it committed. Only when they follow on from
    /// what the index holds: otherwise others committed in between and
    /// [`MatchIndex::sync`] reads everything in order.
    ///
    /// `published` is the token the batch was published under, when what
    /// it committed is what was published.
    pub(crate) fn absorb(&mut self, first_seq: i64, prints: Vec<PrintRow>, published: Option<u64>) {
        if prints.is_empty() || first_seq != self.seen + 1 {
            return;
        }
        self.seen = first_seq + prints.len() as i64 - 1;
        self.absorbed = published;
        self.mark.set(self.seen, self.absorbed);
        for p in prints {
            self.add(&p.ticket_id, &p.system, &p.record_id, p.print);
        }
        self.prune_when_grown();
    }

    /// Publishes, under `token`, the fingerprints a batch about to be
    /// stored commits if the decisions taken for it in advance stand, and
    /// the source records it links by them.
    pub(crate) fn publish(
        &mut self,
        token: u64,
        prints: Vec<(String, Fingerprint)>,
        linked: HashSet<(String, String)>,
    ) {
        self.in_flight = Some(InFlight { token, prints, linked });
    }

    /// Takes back what `token` published (its transaction ended).
    pub(crate) fn withdraw(&mut self, token: u64) {
        if self.in_flight.as_ref().is_some_and(|f| f.token == token) {
            self.in_flight = None;
        }
    }

    /// What the batch being stored is expected to commit, if anything:
    /// scored against like records earlier in the batch.
    pub(crate) fn ahead(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    /// The sequence number of the newest fingerprint read.
    pub fn seen(&self) -> i64 {
        self.seen
    }

    /// Reads the fingerprints committed since the last call. What it reads
    /// is always a prefix of the sequence, with or without the decision
    /// lock: numbers are handed out under that lock and the holder commits
    /// before the next one gets any, so commit order is number order. Only
    /// under the lock (after [`take_clock`]) is it also everything there is.
    ///
    /// The first call reads only the fingerprints within the rules' reach
    /// of the newest one ([`MatchIndex::load`]).
    pub async fn sync(&mut self, tx: &mut Tx) -> Result<usize, StoreError> {
        if self.seen == 0 {
            return self.load(tx, chrono::Utc::now().timestamp()).await;
        }
        let rows = super::query(
            "SELECT seq, ticket_id, system, record_id, fingerprint, print FROM match_prints WHERE seq > $1 ORDER BY seq",
        )
        .bind(self.seen)
        .fetch_all(tx)
        .await?;
        let n = rows.len();
        if n > 0 {
            self.absorbed = None;
        }
        for r in rows {
            let seq: i64 = r.get(0);
            self.mark.set(seq, None);
            match stored_print(&r, 4) {
                Some(print) => {
                    let (ticket_id, system, record_id): (String, String, String) = (r.get(1), r.get(2), r.get(3));
                    self.add(&ticket_id, &system, &record_id, print);
                }
                None => tracing::warn!(seq, "a stored fingerprint could not be read; it is left out of matching"),
            }
            self.seen = seq;
        }
        self.prune_when_grown();
        Ok(n)
    }

    /// Reads what is committed up to now, leaving out the fingerprints
    /// past the rules' reach: however long the table's history, what is
    /// held is one window's worth. Two statements (PostgreSQL may give each
    /// its own snapshot): every number up to the newest one seen first is
    /// committed, since numbers are handed out in commit order.
    pub(crate) async fn load(&mut self, tx: &mut Tx, now: i64) -> Result<usize, StoreError> {
        let row = super::query("SELECT MAX(seq) FROM match_prints").fetch_one(tx).await?;
        let Some(last) = row.try_get::<Option<i64>, _>(0)? else {
            return Ok(0);
        };
        let Some(newest) = newest_occurred(tx).await? else {
            return Ok(0);
        };
        if last <= self.seen {
            return Ok(0);
        }
        let from = cutoff(newest.max(self.newest).min(now), &self.rules);
        // The batches that hold anything from `from` on, then their rows by
        // the table's key, each row checked on its own: one range scan per
        // run of such batches (a join left PostgreSQL comparing every row
        // with every batch when the rows of a batch are dated far apart).
        let spans = super::query(
            "SELECT first_seq, last_seq FROM match_print_spans \
             WHERE max_occurred >= $1 AND last_seq > $2 AND first_seq <= $3 ORDER BY first_seq",
        )
        .bind(from)
        .bind(self.seen)
        .bind(last)
        .fetch_all(tx)
        .await?;
        let mut rows = Vec::new();
        for (lo, hi) in seq_runs(spans.iter().map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)))) {
            rows.extend(
                super::query(
                    "SELECT seq, ticket_id, system, record_id, fingerprint, print FROM match_prints \
                     WHERE seq >= $1 AND seq <= $2 AND seq > $3 AND seq <= $4 AND occurred >= $5",
                )
                .bind(lo)
                .bind(hi)
                .bind(self.seen)
                .bind(last)
                .bind(from)
                .fetch_all(tx)
                .await?,
            );
        }
        rows.sort_unstable_by_key(|r| r.get::<i64, _>(0));
        let n = rows.len();
        for r in rows {
            match stored_print(&r, 4) {
                Some(print) => {
                    let (ticket_id, system, record_id): (String, String, String) = (r.get(1), r.get(2), r.get(3));
                    self.add(&ticket_id, &system, &record_id, print);
                }
                None => {
                    let seq: i64 = r.get(0);
                    tracing::warn!(seq, "a stored fingerprint could not be read; it is left out of matching")
                }
            }
        }
        self.seen = last;
        self.absorbed = None;
        self.mark.set(last, None);
        self.prune_at = (2 * self.entries.len()).max(PRUNE_FLOOR);
        Ok(n)
    }
}

/// A stored fingerprint: its bytes in `print` (column `at + 1`), or in
/// rows written before that column, its hex in `fingerprint` (column `at`).
pub(crate) fn stored_print(r: &super::Row, at: usize) -> Option<Fingerprint> {
    match r.try_get::<Option<Vec<u8>>, _>(at + 1).ok().flatten() {
        Some(bytes) => Fingerprint::from_bytes(&bytes),
        None => Fingerprint::from_hex(&r.try_get::<String, _>(at).ok()?),
    }
}

/// Sequence numbers closer than this between two batches are read in one
/// range scan: a few rows more cost less than another statement.
const RUN_GAP: i64 = 4096;

/// The batches' ranges (in order) joined into runs to read with one scan.
fn seq_runs(spans: impl Iterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for (first, last) in spans {
        match runs.last_mut() {
            Some(run) if first.saturating_sub(run.1) <= RUN_GAP => run.1 = run.1.max(last),
            _ => runs.push((first, last)),
        }
    }
    runs
}

fn cutoff(reference: i64, rules: &CandidateRules) -> i64 {
    reference.saturating_sub(i64::try_from(rules.reach().as_secs()).unwrap_or(i64::MAX))
}

/// The newest `occurred` of the fingerprint rows, from the batches'
/// ranges: a batch's newest row is never expired while the batch stays.
async fn newest_occurred(tx: &mut Tx) -> Result<Option<i64>, StoreError> {
    let row = super::query("SELECT MAX(max_occurred) FROM match_print_spans").fetch_one(tx).await?;
    row.try_get::<Option<i64>, _>(0)
}

/// Sequence numbers looked through per statement by [`delete_expired`]:
/// each is its own short transaction, so the writer is never held for long.
pub(crate) const DELETE_BATCH: i64 = 5_000;

/// Deletes the fingerprint rows older than `retention` before the newest
/// one (or before `now`, if that one is dated later) among the first
/// [`DELETE_BATCH`] sequence numbers (and the rest of the last batch
/// there) from the oldest batch of fingerprints that holds any; returns
/// how many went, or `None` when no batch holds any more. Rows past the
/// rules' reach are never read again by matching; an un-merge after that
/// leaves the record out of matching.
///
/// Batches are found by the range of their `occurred`; the rows of a
/// batch may be dated far apart, so each row is checked on its own and
/// the batch's range moves up past what was deleted (or the batch goes
/// with its last row). `after` is where the previous call of one pass
/// ended (the returned sequence number; 0 to start): with intake going on,
/// `before` moves up between calls and the batches already looked at would
/// hold expired rows again, so a pass only ever moves forward.
pub(crate) async fn delete_expired(
    tx: &mut Tx,
    retention: std::time::Duration,
    now: i64,
    after: i64,
) -> Result<Option<(u64, i64)>, StoreError> {
    let Some(newest) = newest_occurred(tx).await? else {
        return Ok(None);
    };
    let before = newest.min(now).saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
    let row = super::query("SELECT MIN(first_seq) FROM match_print_spans WHERE min_occurred < $1 AND first_seq > $2")
        .bind(before)
        .bind(after)
        .fetch_one(tx)
        .await?;
    let Some(from) = row.try_get::<Option<i64>, _>(0)? else {
        return Ok(None);
    };
    let row = super::query("SELECT MAX(last_seq) FROM match_print_spans WHERE first_seq >= $1 AND first_seq < $2")
        .bind(from)
        .bind(from.saturating_add(DELETE_BATCH))
        .fetch_one(tx)
        .await?;
    let to = row.try_get::<Option<i64>, _>(0)?.unwrap_or(from);
    let done = super::query("DELETE FROM match_prints WHERE seq >= $1 AND seq <= $2 AND occurred < $3")
        .bind(from)
        .bind(to)
        .bind(before)
        .execute(tx)
        .await?;
    super::query("DELETE FROM match_print_spans WHERE first_seq >= $1 AND first_seq <= $2 AND max_occurred < $3")
        .bind(from)
        .bind(to)
        .bind(before)
        .execute(tx)
        .await?;
    super::query(
        "UPDATE match_print_spans SET min_occurred = $1 WHERE first_seq >= $2 AND first_seq <= $3 AND min_occurred < $4",
    )
    .bind(before)
    .bind(from)
    .bind(to)
    .bind(before)
    .execute(tx)
    .await?;
    Ok(Some((done.rows_affected(), to)))
}

/// Fingerprints not in the index yet that a decision must see: those of
/// the records decided earlier in the batch, and those the batch being
/// stored is expected to commit. Indexed like the index (by area, by
/// identifier, by ticket), since a batch holds hundreds.
#[derive(Clone, Debug, Default)]
pub struct BatchPrints {
    entries: Vec<(String, Fingerprint)>,
    by_area: HashMap<u64, Vec<u32>>,
    by_key: HashMap<u64, Vec<u32>>,
    by_ticket: HashMap<String, Vec<u32>>,
}

impl BatchPrints {
    /// Room for `n` fingerprints: a batch holds hundreds, each a few
    /// hundred bytes, and growing to them moves them all several times.
    pub fn with_capacity(n: usize) -> BatchPrints {
        BatchPrints { entries: Vec::with_capacity(n), ..BatchPrints::default() }
    }

    pub fn push(&mut self, ticket: String, print: Fingerprint) {
        let i = self.entries.len() as u32;
        self.by_area.entry(print.area()).or_default().push(i);
        for k in print.key_hashes() {
            self.by_key.entry(k).or_default().push(i);
        }
        self.by_ticket.entry(ticket.clone()).or_default().push(i);
        self.entries.push((ticket, print));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an entry from `from` on belongs to `ticket`.
    pub(crate) fn has_ticket_from(&self, ticket: &str, from: usize) -> bool {
        self.by_ticket.get(ticket).is_some_and(|l| l.iter().any(|&i| i as usize >= from))
    }

    fn of_ticket<'a>(&'a self, ticket: &str) -> impl Iterator<Item = &'a Fingerprint> + 'a {
        self.by_ticket.get(ticket).into_iter().flatten().map(|&i| &self.entries[i as usize].1)
    }

    /// The entries the query selects, each once, in the order pushed.
    fn select<'a>(&'a self, q: &CandidateQuery) -> impl Iterator<Item = (&'a str, &'a Fingerprint)> + 'a {
        let mut found: Vec<u32> = if q.area_range.is_some() {
            (0..self.entries.len() as u32).collect()
        } else {
            q.areas.iter().filter_map(|a| self.by_area.get(a)).flatten().copied().collect()
        };
        found.extend(q.keys.iter().filter_map(|k| self.by_key.get(k)).flatten().copied());
        found.sort_unstable();
        found.dedup();
        found.retain(|&i| q.selects(&self.entries[i as usize].1));
        found.into_iter().map(|i| {
            let (t, p) = &self.entries[i as usize];
            (t.as_str(), p)
        })
    }
}

/// Fingerprints a batch being stored is expected to commit, by ticket.
#[derive(Debug)]
pub(crate) struct InFlight {
    token: u64,
    pub prints: Vec<(String, Fingerprint)>,
    /// The (system, record id) of the records those prints are of: once the
    /// batch commits each has its link, so a later version of one in the
    /// next batch updates its ticket and is no new record to score.
    pub linked: HashSet<(String, String)>,
}

impl InFlight {
    pub(crate) fn token(&self) -> u64 {
        self.token
    }
}

/// A fresh token for [`MatchIndex::publish`].
pub(crate) fn token() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Takes the decision lock (the row of `match_clock`) and reserves `n`
/// sequence numbers; returns the first. Every fingerprint row is numbered
/// from here, so the number before the first is the newest one committed
/// (or reserved): none was committed after `seen` if it is not above.
pub(crate) async fn take_clock(tx: &mut Tx, n: usize) -> Result<i64, StoreError> {
    let row = super::query("UPDATE match_clock SET seq = seq + $1 WHERE id = 1 RETURNING seq")
        .bind(n as i64)
        .fetch_one(tx)
        .await?;
    let last: i64 = row.get(0);
    Ok(last - n as i64 + 1)
}

impl super::Store {
    /// Deletes the fingerprint rows older than `retention` (see
    /// [`delete_expired`]), one short write transaction per
    /// [`DELETE_BATCH`] sequence numbers so intake is never held up for long; returns
    /// how many went.
    pub async fn delete_expired_prints(&self, retention: std::time::Duration) -> Result<u64, StoreError> {
        let (mut total, mut after) = (0, 0);
        loop {
            let mut w = self.begin_write().await?;
            let n = delete_expired(&mut w.tx, retention, chrono::Utc::now().timestamp(), after).await?;
            w.commit().await?;
            match n {
                Some((n, to)) => {
                    total += n;
                    after = to;
                }
                None => return Ok(total),
            }
            tokio::task::yield_now().await;
        }
    }
}

/// A fingerprint row to write.
pub(crate) struct PrintRow {
    pub ticket_id: String,
    pub system: String,
    pub record_id: String,
    pub print: Fingerprint,
}

/// Writes fingerprints with one multi-row statement per chunk: their bytes
/// ([`Fingerprint::to_bytes`]) in `print`, half the row their hex was.
pub(crate) async fn insert_prints(
    tx: &mut Tx,
    backend: Backend,
    first_seq: i64,
    rows: &[PrintRow],
) -> Result<(), StoreError> {
    const COLUMNS: [&str; 7] = ["seq", "ticket_id", "system", "record_id", "occurred", "fingerprint", "print"];
    let mut seq = first_seq;
    for chunk in batch::pieces(backend, rows) {
        let mut q = batch::insert(backend, "match_prints", &COLUMNS, chunk.len(), "");
        for r in chunk {
            q = q
                .bind(seq)
                .bind(r.ticket_id.clone())
                .bind(r.system.clone())
                .bind(r.record_id.clone())
                .bind(r.print.occurred)
                .bind("")
                .bind(r.print.to_bytes());
            seq += 1;
        }
        q.execute(tx).await?;
    }
    // The batch's range, where loading and expiry find its rows: one row
    // appended, where an index on `occurred` took a B-tree insert per print.
    let occurred = || rows.iter().map(|r| r.print.occurred);
    if let (Some(min), Some(max)) = (occurred().min(), occurred().max()) {
        super::query(
            "INSERT INTO match_print_spans (first_seq, last_seq, min_occurred, max_occurred) VALUES ($1, $2, $3, $4)",
        )
        .bind(first_seq)
        .bind(seq - 1)
        .bind(min)
        .bind(max)
        .execute(tx)
        .await?;
    }
    Ok(())
}

/// A decision worth keeping: a merge or a possible duplicate.
pub(crate) struct LinkRow {
    pub ticket_id: String,
    pub other_id: String,
    pub system: String,
    pub record_id: String,
    pub score: Score,
    pub state: &'static str,
}

pub(crate) async fn insert_links(tx: &mut Tx, backend: Backend, rows: &[LinkRow], now: i64) -> Result<(), StoreError> {
    const COLUMNS: [&str; 8] =
        ["ticket_id", "other_id", "system", "record_id", "score", "reasons", "state", "created_at"];
    for chunk in batch::pieces(backend, rows) {
        let mut q = batch::insert(backend, "duplicate_links", &COLUMNS, chunk.len(), "");
        for r in chunk {
            let reasons: Vec<String> = r.score.reasons.iter().map(ToString::to_string).collect();
            q = q
                .bind(r.ticket_id.clone())
                .bind(r.other_id.clone())
                .bind(r.system.clone())
                .bind(r.record_id.clone())
                .bind(r.score.value)
                .bind(reasons.join("\n"))
                .bind(r.state)
                .bind(now);
        }
        q.execute(tx).await?;
    }
    Ok(())
}

/// Whether each ticket no longer takes new records (closed, withdrawn): a
/// new report of the same thing is then a new matter. A ticket not found
/// is not finished (it is being opened in this transaction).
pub(crate) async fn finished_states(
    tx: &mut Tx,
    backend: Backend,
    ticket_ids: &[String],
) -> Result<HashMap<String, bool>, StoreError> {
    let mut out: HashMap<String, bool> = ticket_ids.iter().map(|t| (t.clone(), false)).collect();
    for r in batch::fetch_in(tx, backend, "SELECT ticket_id, status FROM tickets", "ticket_id", ticket_ids).await? {
        let status: String = r.get(1);
        out.insert(r.get(0), matches!(status.as_str(), "closed" | "withdrawn"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Counts;
    use super::*;
    use crate::dedup::testing::draft;
    use crate::store::Store;
    use crate::store::testing::TestDb;
    use crate::store::{Tx, query};
    use sqlx::Row as _;

    const DAY: i64 = 24 * 3600;

    fn print(text: &str, at: &str) -> Fingerprint {
        Fingerprint::of(&draft("help", "0101", text, "220402001", Some("义宁街12号"), at))
    }

    /// Writes `n` fingerprint rows numbered from `first` with one
    /// statement: a recursive series, so that millions take seconds.
    async fn insert_series(store: &Store, first: i64, n: i64, system: &str, print: &Fingerprint) {
        let mut w = store.begin_write().await.unwrap();
        query(
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
             INSERT INTO match_prints (seq, ticket_id, system, record_id, occurred, fingerprint) \
             SELECT i, 'T' || (i % 997), $3, 'R' || i, $4, $5 FROM n",
        )
        .bind(first)
        .bind(first + n - 1)
        .bind(system.to_string())
        .bind(print.occurred)
        .bind(print.to_hex())
        .execute(&mut w.tx)
        .await
        .unwrap();
        // One range per 256 rows, as the intake writes them.
        query(
            "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 256 FROM n WHERE i + 256 <= $2) \
             INSERT INTO match_print_spans (first_seq, last_seq, min_occurred, max_occurred) \
             SELECT i, CASE WHEN i + 255 < $3 THEN i + 255 ELSE $4 END, $5, $6 FROM n",
        )
        .bind(first)
        .bind(first + n - 1)
        .bind(first + n - 1)
        .bind(first + n - 1)
        .bind(print.occurred)
        .bind(print.occurred)
        .execute(&mut w.tx)
        .await
        .unwrap();
        query("UPDATE match_clock SET seq = $1 WHERE id = 1").bind(first + n - 1).execute(&mut w.tx).await.unwrap();
        w.commit().await.unwrap();
    }

    /// `old` rows a year before `recent` ones, then a fresh hub's first
    /// sync: what it holds, how long it took, how much more memory the
    /// process holds after it (bytes; resident set, Linux).
    async fn first_load(url: &str, old: i64, recent: i64) -> (usize, i64, std::time::Duration, i64) {
        let store = Store::open(url).await.unwrap();
        insert_series(&store, 1, old, "old", &print("义宁街下水井塌陷", "2023-07-01T09:00:00+08:00")).await;
        insert_series(&store, old + 1, recent, "new", &print("义宁街下水井塌陷", "2024-07-15T09:40:00+08:00")).await;
        store.close().await;

        let store = Store::open(url).await.unwrap();
        let rss = || {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
            statm.split_whitespace().nth(1).and_then(|p| p.parse::<i64>().ok()).unwrap_or(0) * 4096
        };
        let before = rss();
        let started = std::time::Instant::now();
        let mut index = store.matching.lock().await;
        let mut tx = Tx::Pool(store.pool().begin().await.unwrap());
        index.sync(&mut tx).await.unwrap();
        tx.rollback().await.unwrap();
        let took = started.elapsed();
        let grown = rss() - before;
        let out = (index.held(), index.seen(), took, grown);
        drop(index);
        store.close().await;
        out
    }

    async fn old_rows_are_not_loaded(db: TestDb) {
        let (held, seen, took, _) = first_load(&db.url, 100_000, 500).await;
        assert_eq!(held, 500, "only the fingerprints within the reach of the newest are held");
        assert_eq!(seen, 100_500, "the index has read up to the newest row all the same");
        eprintln!("first load of 100,500 rows: {took:?}");
        db.cleanup().await;
    }

    #[tokio::test]
    async fn old_rows_are_not_loaded_sqlite() {
        old_rows_are_not_loaded(TestDb::sqlite()).await;
    }

    #[tokio::test]
    async fn old_rows_are_not_loaded_postgres() {
        old_rows_are_not_loaded(TestDb::postgres().await).await;
    }

    /// The figure: 5 million rows past the window. About 40 s on
    /// the 2-core machine, most of it writing the rows; run with
    /// `--ignored`. The test above is the same at 100,000.
    #[tokio::test]
    #[ignore]
    async fn five_million_old_rows_startup_memory_bounded() {
        let db = TestDb::sqlite();
        let (held, seen, took, grown) = first_load(&db.url, 5_000_000, 1000).await;
        eprintln!("first load of 5,001,000 rows: {took:?}, {held} held, resident set grew {} KiB", grown / 1024);
        assert_eq!((held, seen), (1000, 5_001_000));
        assert!(grown < 64 << 20, "the process grew by {grown} bytes");
        db.cleanup().await;
    }

    #[test]
    fn the_index_drops_what_left_the_window_and_what_was_replaced() {
        let mut index = MatchIndex::new(CandidateRules::default());
        let reach = CandidateRules::default().reach().as_secs() as i64;
        let recent = print("义宁街与康宁路交汇处下水井塌陷", "2024-07-15T09:40:00+08:00");
        let mut old = recent.clone();
        old.occurred -= reach + DAY;
        for i in 0..1000 {
            index.add("T-old", "s", &format!("old{i}"), old.clone());
        }
        index.add("T-new", "s", "moved", recent.clone());
        index.add("T-new", "s", "moved", recent.clone());
        index.add("T-new", "s", "kept", recent.clone());
        assert_eq!(index.held(), 1003);
        // The clock far ahead: the newest record is what counts.
        let now = recent.occurred + 10 * reach;
        assert_eq!(index.cutoff(now), recent.occurred - reach);
        assert_eq!(index.prune(now), 1001);
        assert_eq!((index.held(), index.len()), (2, 2));
        // What is kept is found as before.
        let decision = index.decide(&recent, &BatchPrints::default(), &Thresholds::default(), &HashSet::new());
        assert!(matches!(&decision, Decision::Merge { ticket, .. } if ticket == "T-new"), "{decision:?}");
        // Nothing more to drop.
        assert_eq!(index.prune(now), 0);
    }

    #[test]
    fn a_record_dated_in_the_future_does_not_push_the_others_out() {
        let mut index = MatchIndex::new(CandidateRules::default());
        let now = print("x", "2024-07-15T09:40:00+08:00").occurred;
        index.add("T1", "s", "a", print("义宁街下水井塌陷", "2024-07-15T09:40:00+08:00"));
        index.add("T2", "s", "b", print("义宁街下水井塌陷", "2031-01-01T00:00:00+08:00"));
        assert_eq!(index.prune(now), 0);
        assert_eq!(index.held(), 2);
    }

    #[test]
    fn the_index_prunes_itself_as_it_grows() {
        let mut index = MatchIndex::new(CandidateRules::default());
        let reach = CandidateRules::default().reach().as_secs() as i64;
        let mut p = print("义宁街下水井塌陷", "2015-07-15T09:40:00+08:00");
        let start = p.occurred;
        // 64 records a day for eight years (before the clock's now), taken
        // in as a hub takes in committed batches.
        for day in 0..(PRUNE_FLOOR as i64 * 3) {
            p.occurred = start + day * (DAY / 64);
            let seq = index.seen() + 1;
            let row = PrintRow {
                ticket_id: format!("T{day}"),
                system: "s".into(),
                record_id: format!("R{day}"),
                print: p.clone(),
            };
            index.absorb(seq, vec![row], None);
        }
        let in_reach = (reach * 64 / DAY) as usize;
        assert!(index.held() < 2 * PRUNE_FLOOR.max(in_reach), "{} held", index.held());
        assert!(index.held() > in_reach, "what is within the reach stays");
    }

    async fn expired_rows_leave_the_table(db: TestDb) {
        let store = Store::open(&db.url).await.unwrap();
        let recent = print("义宁街下水井塌陷", "2024-07-15T09:40:00+08:00");
        let mut old = recent.clone();
        old.occurred -= 200 * DAY;
        let n = 2 * DELETE_BATCH + 7;
        insert_series(&store, 1, n, "old", &old).await;
        insert_series(&store, n + 1, 3, "new", &recent).await;
        let retention = std::time::Duration::from_secs(180 * DAY as u64);
        assert_eq!(store.delete_expired_prints(retention).await.unwrap(), n as u64);
        let left: i64 = sqlx::query("SELECT COUNT(*) FROM match_prints").fetch_one(store.pool()).await.unwrap().get(0);
        assert_eq!(left, 3);
        assert_eq!(store.delete_expired_prints(retention).await.unwrap(), 0);
        store.close().await;
        db.cleanup().await;
    }

    #[test]
    fn near_batches_are_read_in_one_scan() {
        let spans = [(1, 256), (257, 300), (4000, 4100), (9000, 9001), (9002, 9002)];
        assert_eq!(seq_runs(spans.into_iter()), vec![(1, 4100), (9000, 9002)]);
        assert_eq!(seq_runs(std::iter::empty()), vec![]);
    }

    /// Batches whose rows are dated far apart, as the simulator sends
    /// them: a fresh hub loads exactly the rows within reach, expiry
    /// deletes exactly the expired ones, whatever their batch.
    async fn batches_dated_far_apart(db: TestDb) {
        let store = Store::open(&db.url).await.unwrap();
        let recent = print("义宁街下水井塌陷", "2024-07-15T09:40:00+08:00");
        let dated = |days: i64| {
            let mut p = recent.clone();
            p.occurred -= days * DAY;
            p
        };
        // Every third row 200 days old (expired), every third three months
        // old (kept, not loaded), every third recent.
        let ages = [200, 90, 0];
        let rows: Vec<PrintRow> = (0..900)
            .map(|i| PrintRow {
                ticket_id: format!("T{i}"),
                system: "hotline".into(),
                record_id: format!("R{i}"),
                print: dated(ages[i % 3]),
            })
            .collect();
        for batch in rows.chunks(300) {
            let mut w = store.begin_write().await.unwrap();
            let first = take_clock(&mut w.tx, batch.len()).await.unwrap();
            insert_prints(&mut w.tx, store.backend(), first, batch).await.unwrap();
            w.commit().await.unwrap();
        }
        let loaded = |store: Store| async move {
            let mut index = store.matching.lock().await;
            let mut tx = Tx::Pool(store.pool().begin().await.unwrap());
            index.sync(&mut tx).await.unwrap();
            tx.rollback().await.unwrap();
            let held = (index.held(), index.seen());
            drop(index);
            store.close().await;
            held
        };
        store.close().await;
        assert_eq!(loaded(Store::open(&db.url).await.unwrap()).await, (300, 900));

        let store = Store::open(&db.url).await.unwrap();
        let retention = std::time::Duration::from_secs(180 * DAY as u64);
        assert_eq!(store.delete_expired_prints(retention).await.unwrap(), 300);
        let count = |sql: &'static str| {
            let pool = store.pool().clone();
            async move { sqlx::query(sql).fetch_one(&pool).await.unwrap().get::<i64, _>(0) }
        };
        assert_eq!(count("SELECT COUNT(*) FROM match_prints").await, 600);
        assert_eq!(count("SELECT MIN(occurred) FROM match_prints").await, dated(90).occurred);
        assert_eq!(count("SELECT COUNT(*) FROM match_print_spans").await, 3, "every batch keeps rows");
        assert_eq!(store.delete_expired_prints(retention).await.unwrap(), 0);
        store.close().await;
        assert_eq!(loaded(Store::open(&db.url).await.unwrap()).await, (300, 900));
        db.cleanup().await;
    }

    #[tokio::test]
    async fn batches_dated_far_apart_sqlite() {
        batches_dated_far_apart(TestDb::sqlite()).await;
    }

    #[tokio::test]
    async fn batches_dated_far_apart_postgres() {
        batches_dated_far_apart(TestDb::postgres().await).await;
    }

    #[tokio::test]
    async fn expired_rows_leave_the_table_sqlite() {
        expired_rows_leave_the_table(TestDb::sqlite()).await;
    }

    #[tokio::test]
    async fn expired_rows_leave_the_table_postgres() {
        expired_rows_leave_the_table(TestDb::postgres().await).await;
    }

    #[test]
    fn counts_each_entry_per_list_and_asks_the_filter_once() {
        let mut counts = Counts::default();
        let asked = std::cell::RefCell::new(Vec::new());
        let lists = [vec![1u32, 2, 3], vec![2, 3, 4], vec![3, 4]];
        let mut got = counts.count(5, lists.iter().flatten().copied(), |i| {
            asked.borrow_mut().push(i);
            i != 4
        });
        got.sort_unstable();
        assert_eq!(got, vec![(1, 1), (2, 2), (3, 3)]);
        assert_eq!(*asked.borrow(), vec![1, 2, 3, 4], "4 was refused once, not once per list");
        // The next query starts from nothing, without clearing the array.
        let got = counts.count(5, [4u32, 4].into_iter(), |_| true);
        assert_eq!(got, vec![(4, 2)]);
    }

    #[test]
    fn a_wrapped_stamp_does_not_revive_old_counts() {
        let mut counts = Counts::default();
        counts.count(3, [0u32, 1].into_iter(), |_| true);
        // The first query stamped 0 and 1 with 1, the stamp the query
        // after the wrap gets again.
        counts.stamp = u32::MAX;
        let mut got = counts.count(3, [0u32, 2].into_iter(), |_| true);
        got.sort_unstable();
        assert_eq!(got, vec![(0, 1), (2, 1)]);
    }
}
