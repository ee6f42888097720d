//! Which open tickets an incoming record is compared with, and what is
//! decided: join the best one, flag it for a person, or open a new ticket.
//!
//! The candidate rules are one function ([`CandidateRules::admits`]) so that
//! the store applies exactly these rules after its SQL prefilter
//! ([`CandidateRules::query`] says what to select, on indexed columns).

use std::time::Duration;

use crate::ticket::{Channel, Kind};

use super::fingerprint::{Fingerprint, KeyKind};
use super::score::{Evidence, Reason, Score, score};

/// Where the score must be to join a ticket, or to be shown to a person.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// At or above: the record joins the ticket.
    pub merge: f64,
    /// At or above (and below `merge`): a possible duplicate, for a person.
    pub review: f64,
}

impl Default for Thresholds {
    /// Merging wrongly hides a citizen's matter inside another's ticket;
    /// missing a duplicate costs a second dispatch. So merging needs much
    /// more certainty than flagging. (Cross-validation on the tuning set
    /// found 0.8 as precise as 0.9 and finding more, for a fit with a
    /// synonym table that then merged wrongly on the held-out set at 0.8 and
    /// at 0.9 alike; neither shipped, 0.9 stays: docs/duplicates.md.)
    fn default() -> Self {
        Thresholds { merge: 0.9, review: 0.5 }
    }
}

/// What to do with an incoming record.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision<T> {
    /// Join this ticket (as a new source and revision of it).
    Merge {
        ticket: T,
        score: Score,
    },
    /// A new ticket, marked as a possible duplicate of this one for a person.
    Possible {
        ticket: T,
        score: Score,
    },
    New,
}

impl<T> Decision<T> {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Merge { .. } => "merge",
            Decision::Possible { .. } => "possible",
            Decision::New => "new",
        }
    }
}

/// The hub's reference to a ticket: its id.
pub type TicketRef = String;

/// Scores `incoming` against every candidate and decides.
///
/// `candidates` are the source fingerprints of the candidate tickets: a
/// ticket is a candidate when one of its sources passes
/// [`CandidateRules::admits`], and then all its sources should be given
/// (each as `(ticket, fingerprint)`). The ticket's best score counts, with
/// every fact another of its sources contradicts added to it (a call coded
/// only to the county matches, but the grid worker's report of the same
/// ticket is in another township: the ticket is elsewhere). Ties go to the
/// first ticket.
pub fn decide<'a, T: PartialEq>(
    incoming: &Fingerprint,
    candidates: impl IntoIterator<Item = (T, &'a Fingerprint)>,
    thresholds: &Thresholds,
) -> Decision<T> {
    let mut best: Option<(T, Score)> = None;
    for (ticket, s) in ticket_scores(incoming, candidates) {
        if best.as_ref().is_none_or(|(_, b)| s.value > b.value) {
            best = Some((ticket, s));
        }
    }
    // A ticket one of whose sources contradicts the record on a fact (another
    // township, other people) is for a person to look at, however well the
    // record agrees with its other sources: a fact that weighs clearly
    // against it (not a neighbouring door, -1, nor one the fit found to say
    // nothing, as different ID numbers on a group's matter).
    let contradicted =
        |s: &Score| s.reasons.iter().any(|r| matches!(r.evidence, Evidence::TicketConflict(_)) && r.weight < -1.0);
    match best {
        Some((ticket, score)) if score.value >= thresholds.merge && !contradicted(&score) => {
            Decision::Merge { ticket, score }
        }
        Some((ticket, score)) if score.value >= thresholds.review => Decision::Possible { ticket, score },
        _ => Decision::New,
    }
}

/// The score of `incoming` against each candidate ticket (see [`decide`]):
/// its best source's score, with every fact another source contradicts.
fn ticket_scores<'a, T: PartialEq>(
    incoming: &Fingerprint,
    candidates: impl IntoIterator<Item = (T, &'a Fingerprint)>,
) -> Vec<(T, Score)> {
    let mut tickets: Vec<(T, Score, Vec<Reason>)> = Vec::new();
    for (ticket, existing) in candidates {
        let s = score(incoming, existing);
        // A ticket's sources come one after the other: look at the last
        // ticket first.
        let at = tickets.iter().rposition(|(t, _, _)| *t == ticket);
        let mut conflicts = match at {
            Some(at) => std::mem::take(&mut tickets[at].2),
            None => Vec::new(),
        };
        for r in s.reasons.iter().filter(|r| r.evidence.is_conflict()) {
            if !conflicts.iter().any(|c| same_kind(&c.evidence, &r.evidence)) {
                conflicts.push(r.clone());
            }
        }
        match at {
            Some(at) => {
                let (_, best, kept) = &mut tickets[at];
                *kept = conflicts;
                if s.value > best.value {
                    *best = s;
                }
            }
            None => tickets.push((ticket, s, conflicts)),
        }
    }
    tickets
        .into_iter()
        .map(|(ticket, mut s, conflicts)| {
            for c in conflicts {
                if !s.reasons.iter().any(|r| same_kind(&r.evidence, &c.evidence)) {
                    s.add(Evidence::TicketConflict(Box::new(c.evidence)), c.feature, c.x);
                }
            }
            (ticket, s)
        })
        .collect()
}

fn same_kind(a: &Evidence, b: &Evidence) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Which open tickets are candidates: the same township (or a record that
/// names only the county or city around it), within a time window that
/// depends on the kind of record, in a category family that can be the same
/// matter; or any ticket that shares an identifier, within a longer window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CandidateRules {
    /// Calls and grid events: a matter is reported within days.
    pub default_window: Duration,
    /// Petitions come after the calls, often weeks later.
    pub petition_window: Duration,
    /// Disputes reach the court's mediation days or weeks after the grid
    /// worker saw them.
    pub dispute_window: Duration,
    /// A shared phone, ID number, case number or event id.
    pub identifier_window: Duration,
}

impl Default for CandidateRules {
    fn default() -> Self {
        let day = 24 * 3600;
        CandidateRules {
            default_window: Duration::from_secs(3 * day),
            petition_window: Duration::from_secs(30 * day),
            dispute_window: Duration::from_secs(30 * day),
            identifier_window: Duration::from_secs(60 * day),
        }
    }
}

/// Why a ticket is a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Same region, window and category family.
    Neighbourhood,
    /// Shares an identifier.
    Identifier,
}

/// What the store selects before [`CandidateRules::admits`]: open tickets
/// whose fingerprint's `area` is one of `areas` or within `area_range`,
/// `occurred` within `from..=to` and `families & families != 0`; plus open
/// tickets with any of `keys` whose `occurred` is within `keys_from..=keys_to`.
/// Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateQuery {
    /// 9-digit areas ([`Fingerprint::area`]): the township, and the county
    /// and city around it padded with zeros (records that named no finer).
    pub areas: Vec<u64>,
    /// When the incoming record names only a county or the city: every area
    /// in it, inclusive.
    pub area_range: Option<(u64, u64)>,
    pub from: i64,
    pub to: i64,
    pub families: u16,
    /// [`Fingerprint::key_hashes`] of the incoming record.
    pub keys: Vec<u64>,
    pub keys_from: i64,
    pub keys_to: i64,
}

impl CandidateRules {
    /// How far in time a record looks for its matter.
    pub fn window(&self, f: &Fingerprint) -> Duration {
        if f.channel == Some(Channel::Petition) {
            self.petition_window
        } else if f.kind == Kind::Dispute || f.channel == Some(Channel::CourtMediation) {
            self.dispute_window
        } else {
            self.default_window
        }
    }

    fn longest_window(&self) -> Duration {
        self.default_window.max(self.petition_window).max(self.dispute_window)
    }

    /// How far apart in time two records of one matter can be, by any
    /// rule: a fingerprint older than this before the newest record can
    /// no longer be a candidate, and leaves the match index.
    pub fn reach(&self) -> Duration {
        self.longest_window().max(self.identifier_window)
    }

    /// Whether `existing` is a candidate for `incoming`. The window of a
    /// pair is the longer of the two (a petition looks back 30 days, and a
    /// call after a petition finds it too).
    pub fn admits(&self, incoming: &Fingerprint, existing: &Fingerprint) -> Option<Admission> {
        let apart = (incoming.occurred - existing.occurred).unsigned_abs();
        let shares_key = incoming.keys.iter().filter(|k| k.kind != KeyKind::WeakName).any(|k| {
            existing.keys.iter().any(|e| e.hash == k.hash && e.kind == k.kind)
                && (k.kind.strong() || regions_overlap(incoming.area(), existing.area()))
        });
        let window = self.window(incoming).max(self.window(existing)).as_secs();
        if apart <= window
            && regions_overlap(incoming.area(), existing.area())
            && incoming.families & existing.families != 0
        {
            Some(Admission::Neighbourhood)
        } else if shares_key && apart <= self.identifier_window.as_secs() {
            Some(Admission::Identifier)
        } else {
            None
        }
    }

    /// The prefilter for the store's SQL: a superset of what
    /// [`CandidateRules::admits`] accepts (it uses the longest window of any
    /// kind, since the existing ticket's window may be the longer one).
    pub fn query(&self, incoming: &Fingerprint) -> CandidateQuery {
        let area = incoming.area();
        let county = area / 1000 * 1000;
        let city = area / 100_000 * 100_000;
        let (areas, area_range) = if area.is_multiple_of(100_000) {
            (vec![city], Some((city, city + 99_999)))
        } else if area.is_multiple_of(1000) {
            (vec![county, city], Some((county, county + 999)))
        } else {
            (vec![area, county, city], None)
        };
        let w = self.longest_window().as_secs() as i64;
        let k = self.identifier_window.as_secs() as i64;
        CandidateQuery {
            areas,
            area_range,
            from: incoming.occurred.saturating_sub(w),
            to: incoming.occurred.saturating_add(w),
            families: incoming.families,
            keys: incoming.key_hashes().collect(),
            keys_from: incoming.occurred.saturating_sub(k),
            keys_to: incoming.occurred.saturating_add(k),
        }
    }
}

/// One area within the other: the same township, or one of the two names
/// only the county (`220402000`) or the city (`220400000`) around the other.
pub fn regions_overlap(a: u64, b: u64) -> bool {
    let covers = |coarse: u64, fine: u64| {
        (coarse.is_multiple_of(1000) && coarse / 1000 == fine / 1000)
            || (coarse.is_multiple_of(100_000) && coarse / 100_000 == fine / 100_000)
    };
    a == b || covers(a, b) || covers(b, a)
}

impl CandidateQuery {
    /// Whether a stored fingerprint matches the query: what the SQL does, for
    /// tests and for stores without SQL.
    pub fn selects(&self, f: &Fingerprint) -> bool {
        self.selects_region(f.area(), f.occurred, f.families) || self.selects_key(f)
    }

    /// The area, window and category-family half of [`Self::selects`]:
    /// what a compact copy of a fingerprint's header answers without
    /// touching the fingerprint.
    pub fn selects_region(&self, area: u64, occurred: i64, families: u16) -> bool {
        let in_area = self.areas.contains(&area) || self.area_range.is_some_and(|(lo, hi)| (lo..=hi).contains(&area));
        in_area && (self.from..=self.to).contains(&occurred) && self.families & families != 0
    }

    /// The shared-identifier half of [`Self::selects`].
    pub fn selects_key(&self, f: &Fingerprint) -> bool {
        !self.keys.is_empty()
            && (self.keys_from..=self.keys_to).contains(&f.occurred)
            && f.key_hashes().any(|h| self.keys.contains(&h))
    }
}

/// What [`decide`] takes, from open tickets with all their sources'
/// fingerprints: every source of each ticket that has at least one source
/// the rules admit (the others of such a ticket still speak, see
/// [`decide`]).
pub fn candidates<'a, T: Clone>(
    incoming: &Fingerprint,
    open: impl IntoIterator<Item = (T, &'a [Fingerprint])>,
    rules: &CandidateRules,
) -> Vec<(T, &'a Fingerprint)> {
    let mut out = Vec::new();
    for (ticket, sources) in open {
        if sources.iter().any(|f| rules.admits(incoming, f).is_some()) {
            out.extend(sources.iter().map(|f| (ticket.clone(), f)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::testing::{draft, with_reporter};

    fn fp(kind: &str, cat: &str, text: &str, region: &str, at: &str) -> Fingerprint {
        Fingerprint::of(&draft(kind, cat, text, region, None, at))
    }

    #[test]
    fn thresholds_decide() {
        let a = fp("help", "0101", "义宁街12号下水井井盖塌陷，路面出现深坑", "220402002", "2024-07-15T09:40:00+08:00");
        let same =
            fp("help", "0101", "义宁街12号下水井井盖塌陷，路面出现深坑", "220402002", "2024-07-15T10:40:00+08:00");
        let other = fp("help", "0101", "向阳街路灯不亮已有一周", "220402002", "2024-07-15T10:40:00+08:00");
        let t = Thresholds::default();
        match decide(&same, [("T1".to_string(), &other), ("T2".to_string(), &a)], &t) {
            Decision::Merge { ticket, score } => assert_eq!((ticket.as_str(), score.value > 0.9), ("T2", true)),
            d => panic!("{d:?}"),
        }
        assert_eq!(decide(&other, [("T2".to_string(), &a)], &t), Decision::New);
        assert_eq!(decide::<TicketRef>(&other, [], &t), Decision::New);
        let strict = Thresholds { merge: 1.01, review: 0.5 };
        assert_eq!(decide(&same, [(1, &a)], &strict).label(), "possible");
    }

    #[test]
    fn a_fact_another_source_contradicts_counts_against_the_whole_ticket() {
        let at = |h: u32| format!("2024-11-15T{h:02}:00:00+08:00");
        let d = |kind, cat, text, region, address| Fingerprint::of(&draft(kind, cat, text, region, address, &at(9)));
        // A call coded only to the county, and the grid worker's report of the same ticket in 白泉镇.
        let call = d("help", "0503", "来电人称红旗村2组耕地地力保护补贴至今未发放到卡", "220422", Some("红旗村2组"));
        let grid = d("grid_event", "9999", "红旗村2组马某家补贴未发放，需农业站核查名单", "220422100205", None);
        // A petition from 渭津镇, which has a 红旗村 too.
        let petition = Fingerprint::of(&draft(
            "help",
            "0503",
            "我是红旗村2组村民，耕地地力保护补贴至今未发放到卡",
            "220422101",
            None,
            &at(10),
        ));
        let t = Thresholds::default();
        assert!(matches!(decide(&petition, [("T", &call)], &t), Decision::Merge { .. }));
        match decide(&petition, [("T", &call), ("T", &grid)], &t) {
            Decision::Possible { score, .. } => assert!(score.to_string().contains("another source of the ticket")),
            d => panic!("a person should look at it: {d:?}"),
        }
        let rules = CandidateRules::default();
        let open = [("T", vec![call.clone(), grid.clone()]), ("U", vec![grid.clone()])];
        let c = candidates(&petition, open.iter().map(|(t, v)| (*t, v.as_slice())), &rules);
        assert_eq!(c.iter().map(|(t, _)| *t).collect::<Vec<_>>(), ["T", "T"], "all of T's sources, none of U");
    }

    #[test]
    fn candidate_rules() {
        let r = CandidateRules::default();
        let hotline = fp("help", "0101", "井盖塌陷", "220402", "2024-07-15T09:40:00+08:00");
        let grid = fp("grid_event", "0101", "井盖塌陷", "220402002007", "2024-07-16T09:40:00+08:00");
        let late = fp("grid_event", "0101", "井盖塌陷", "220402002007", "2024-07-25T09:40:00+08:00");
        let elsewhere = fp("grid_event", "0101", "井盖塌陷", "220403001001", "2024-07-16T09:40:00+08:00");
        let wages = fp("help", "0401", "欠薪", "220402002", "2024-07-16T09:40:00+08:00");
        let court = fp("dispute", "9999", "请求调解", "220402002", "2024-07-25T09:40:00+08:00");
        assert_eq!(r.admits(&grid, &hotline), Some(Admission::Neighbourhood));
        assert_eq!(r.admits(&late, &hotline), None, "beyond 72 h");
        assert_eq!(r.admits(&elsewhere, &hotline), None, "another county");
        assert_eq!(r.admits(&wages, &hotline), None, "another family");
        assert_eq!(r.admits(&court, &hotline), Some(Admission::Neighbourhood), "a dispute looks back 30 days");
        assert!(regions_overlap(220402002, 220402000) && regions_overlap(220400000, 220403001));
        assert!(!regions_overlap(220402002, 220402001));
        // Identifiers reach across regions and families.
        let a = Fingerprint::of(&with_reporter(
            draft("help", "0401", "欠薪", "220402002", None, "2024-07-16T09:40:00+08:00"),
            "王女士",
            "13904371234",
        ));
        let b = Fingerprint::of(&with_reporter(
            draft("help", "0101", "井盖", "220403001", None, "2024-08-16T09:40:00+08:00"),
            "王女士",
            "13904371234",
        ));
        assert_eq!(r.admits(&a, &b), Some(Admission::Identifier));
    }

    #[test]
    fn the_query_selects_a_superset_of_what_the_rules_admit() {
        let r = CandidateRules::default();
        let regions = ["220402", "220402002", "220402002007", "220402001003", "220403001", "220400"];
        let times = ["2024-07-15T09:40:00+08:00", "2024-07-18T10:00:00+08:00", "2024-08-10T10:00:00+08:00"];
        let kinds = [("help", "0101"), ("dispute", "0601"), ("help", "0401"), ("grid_event", "9999")];
        let mut all = Vec::new();
        for reg in regions {
            for at in times {
                for (k, c) in kinds {
                    all.push(fp(k, c, "井盖塌陷", reg, at));
                }
            }
        }
        let (mut admitted, mut selected) = (0, 0);
        for a in &all {
            let q = r.query(a);
            for b in &all {
                if r.admits(a, b).is_some() {
                    admitted += 1;
                    assert!(q.selects(b), "{a:?} admits {b:?} but the query misses it: {q:?}");
                }
                selected += usize::from(q.selects(b));
            }
        }
        assert!(admitted > 100 && selected >= admitted);
    }
}
