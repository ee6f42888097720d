//! How alike two records are, with the reasons a person can check.
//!
//! Each piece of evidence adds or subtracts log-odds (its `weight`); the sum
//! goes through the logistic function to a value in 0..=1. Weights are round
//! numbers on purpose: each says how much a piece of evidence should move an
//! operator. They were set by reading the evidence of labelled pairs (how
//! often it occurs for one matter and for two) on the evaluation set
//! (`tests/data/dedup-evaluation.jsonl`) and on sets of the same generator
//! with other seeds, and checked on seeds not looked at before; no weight
//! was fitted by a program.
//!
//! The rules that matter most:
//! - **Identity is not enough.** The same phone, ID number or name counts
//!   only as far as the content agrees too (text, and category where both
//!   channels classify by domain); one person's two problems share every
//!   identifier and must stay two tickets. And where one person reports
//!   twice, agreeing on their home says little: place agreement counts less.
//!   A court case number or terminal event id is different: that is the
//!   same source record, whatever it says.
//! - **Text is bounded.** Without a dictionary, two texts about one kind of
//!   problem (every property complaint) read alike; text cannot outweigh a
//!   different place, different parties or a different amount.
//! - **Facts veto.** A different township, village, community, building,
//!   house number, amount, ID number or set of parties speaks strongly
//!   against, and [`decide`](super::decide()) applies such a fact from any
//!   source of a ticket to the whole ticket.

use std::fmt;

use crate::ticket::Channel;

use super::fingerprint::{Fingerprint, KeyKind, family};
use super::place::{Place, street_key};

/// Log-odds before any evidence: two records of one township, window and
/// category family are more often two matters than one.
const BIAS: f64 = -2.0;

/// Text similarity (0..1) at which the text neither speaks for nor against.
/// Two channels' wordings of one matter share a good part of their
/// characters and some bigrams once boilerplate and the place are out
/// (typically 0.1–0.4); texts about different things share next to nothing.
const TEXT_NEUTRAL: f64 = 0.07;
/// Log-odds per unit of similarity above and below the neutral point, and
/// the bounds of what text can do: nothing in common speaks strongly
/// against; much in common speaks for, but a channel's stock phrasing of one
/// kind of problem (every property complaint reads alike) must not outweigh
/// a different place or person.
const TEXT_WEIGHT_UP: f64 = 25.0;
const TEXT_WEIGHT_DOWN: f64 = 40.0;
const TEXT_MIN: f64 = -3.0;
const TEXT_MAX: f64 = 3.0;

fn text_weight(s: f64) -> f64 {
    if s >= TEXT_NEUTRAL {
        (TEXT_WEIGHT_UP * (s - TEXT_NEUTRAL)).min(TEXT_MAX)
    } else {
        (TEXT_WEIGHT_DOWN * (s - TEXT_NEUTRAL)).max(TEXT_MIN)
    }
}
/// Shared identifiers count in full from this text similarity up, not at
/// all below `CONTENT_FLOOR`: the same person with a different problem
/// writes a different text.
const CONTENT_FLOOR: f64 = 0.06;
const CONTENT_FULL: f64 = 0.14;

/// One piece of evidence.
#[derive(Clone, Debug, PartialEq)]
pub enum Evidence {
    /// Similarity of the texts' shingle sets (mean of Jaccard and containment).
    Text(f64),
    NoText,
    SameCategory(u16),
    /// Two categories that do not differ only in how channels classify.
    DifferentCategory(u16, u16),
    DifferentFamily,
    SameVillage,
    DifferentVillage,
    SameTownship,
    DifferentTownship(String, String),
    /// One of the two names only a county or the city.
    CoarseRegion,
    /// The same crossing (`义宁街/康宁路口`): a public place, shown.
    SameAddress(String),
    /// The same house number on this street. The number is left out of
    /// the reason: with the street it is an address, maybe someone's home.
    SameHouse(String),
    /// Different house numbers on this street, this many numbers apart.
    DifferentHouse {
        street: String,
        apart: u16,
    },
    SameStreet(String),
    DifferentStreets(String, String),
    /// Two crossings that share one street.
    DifferentCrossing(String, String),
    SameCommunity(String),
    DifferentCommunity(String, String),
    SameBuilding(u16),
    DifferentBuilding(u16, u16),
    SameGroup(u8),
    DifferentGroup(u8, u8),
    /// Metres between the two coordinates.
    Distance(f64),
    /// Hours between the two times.
    Hours(f64),
    Same(KeyKind),
    /// Shared identifiers, but the texts say different things.
    SameReporterDifferentContent,
    /// Both give their reporters' phones, none in common, about a personal matter.
    DifferentReporters,
    /// Both give their reporters' ID numbers, none in common, about a personal matter.
    DifferentPeople,
    /// The people named in the two texts have no family name in common.
    DifferentSurnames,
    /// Both name two parties; one is the same, the other is not.
    OtherPartyDiffers,
    /// Two court records with different case numbers.
    DifferentCases,
    /// Another source of the candidate ticket disagrees on a fact.
    TicketConflict(Box<Evidence>),
    SameAmount(u32),
    DifferentAmount(u32, u32),
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Text(s) => write!(f, "正文相似 {s:.2}"),
            Evidence::NoText => f.write_str("no text to compare"),
            Evidence::SameCategory(c) => write!(f, "same category {c:04}"),
            Evidence::DifferentCategory(a, b) => write!(f, "different categories {a:04} / {b:04}"),
            Evidence::DifferentFamily => f.write_str("different category family"),
            Evidence::SameVillage => f.write_str("same village/community code"),
            Evidence::DifferentVillage => f.write_str("different village/community code"),
            Evidence::SameTownship => f.write_str("same township"),
            Evidence::DifferentTownship(a, b) => write!(f, "different township: {a} / {b}"),
            Evidence::CoarseRegion => f.write_str("region only known to the county"),
            Evidence::SameAddress(a) => write!(f, "地址相同: {a}"),
            Evidence::SameHouse(s) => write!(f, "门牌相同: {s}(号码不显示)"),
            Evidence::DifferentHouse { street, apart } => write!(f, "门牌不同: {street}, 相差 {apart} 号"),
            Evidence::SameStreet(s) => write!(f, "同一街路: {s}"),
            Evidence::DifferentStreets(a, b) => write!(f, "街路不同: {a} / {b}"),
            Evidence::DifferentCrossing(a, b) => write!(f, "路口不同: {a} / {b}"),
            Evidence::SameCommunity(c) => write!(f, "同一社区/村: {c}"),
            Evidence::DifferentCommunity(a, b) => write!(f, "社区/村不同: {a} / {b}"),
            Evidence::SameBuilding(n) => write!(f, "同一楼号: {n}号楼"),
            Evidence::DifferentBuilding(a, b) => write!(f, "楼号不同: {a}号楼 / {b}号楼"),
            Evidence::SameGroup(g) => write!(f, "同一村民组: {g}组"),
            Evidence::DifferentGroup(a, b) => write!(f, "村民组不同: {a}组 / {b}组"),
            Evidence::Distance(m) if *m < 10_000.0 => write!(f, "{m:.0} m apart"),
            Evidence::Distance(m) => write!(f, "{:.1} km apart", m / 1000.0),
            Evidence::Hours(h) if *h < 48.0 => write!(f, "{h:.1} h apart"),
            Evidence::Hours(h) => write!(f, "{:.1} days apart", h / 24.0),
            Evidence::Same(k) => f.write_str(match k {
                KeyKind::Phone => "same phone",
                KeyKind::IdNumber => "same ID number",
                KeyKind::Name => "same name",
                KeyKind::CaseNo => "same court case number",
                KeyKind::EventId => "same terminal event",
            }),
            Evidence::SameReporterDifferentContent => f.write_str("same reporter, but a different problem"),
            Evidence::DifferentReporters => f.write_str("different phones on a personal matter"),
            Evidence::DifferentPeople => f.write_str("different ID numbers on a personal matter"),
            Evidence::DifferentSurnames => f.write_str("the people named have different family names"),
            Evidence::OtherPartyDiffers => f.write_str("one party named alike, the other not"),
            Evidence::DifferentCases => f.write_str("different court case numbers"),
            Evidence::TicketConflict(e) => write!(f, "another source of the ticket: {e}"),
            Evidence::SameAmount(a) => write!(f, "金额相同: {a}元"),
            Evidence::DifferentAmount(a, b) => write!(f, "金额不同: {a}元 / {b}元"),
        }
    }
}

/// A piece of evidence and how much it moved the score (log-odds).
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    pub evidence: Evidence,
    pub weight: f64,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:+.1})", self.evidence, self.weight)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// 0..=1: how sure the two records are one matter.
    pub value: f64,
    /// Every piece of evidence, in the order it was weighed. Never a phone,
    /// ID number or name: identifiers are named by their kind only.
    pub reasons: Vec<Reason>,
}

impl Score {
    /// Adds a piece of evidence found outside the pair (another source of
    /// the same ticket) and recomputes the value.
    pub(crate) fn add(&mut self, evidence: Evidence, weight: f64) {
        self.reasons.push(Reason { evidence, weight });
        let logit = BIAS + self.reasons.iter().map(|r| r.weight).sum::<f64>();
        self.value = 1.0 / (1.0 + (-logit).exp());
    }
}

impl Evidence {
    /// A fact the two records disagree on: where (township, village,
    /// community, building, group, street, house), who (ID numbers, family
    /// names, the other party) or how much. A ticket is one matter, so such
    /// a disagreement with any of its sources is one with the ticket.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Evidence::DifferentTownship(..)
                | Evidence::DifferentVillage
                | Evidence::DifferentCommunity(..)
                | Evidence::DifferentBuilding(..)
                | Evidence::DifferentGroup(..)
                | Evidence::DifferentStreets(..)
                | Evidence::DifferentCrossing(..)
                | Evidence::DifferentHouse { .. }
                | Evidence::DifferentAmount(..)
                | Evidence::DifferentPeople
                | Evidence::DifferentSurnames
                | Evidence::OtherPartyDiffers
                | Evidence::DifferentCases
        )
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.value)?;
        for (i, r) in self.reasons.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

struct Tally {
    sum: f64,
    reasons: Vec<Reason>,
}

impl Tally {
    fn add(&mut self, evidence: Evidence, weight: f64) {
        self.sum += weight;
        self.reasons.push(Reason { evidence, weight });
    }
}

/// How alike `incoming` is to `existing` (symmetric but for rounding).
pub fn score(incoming: &Fingerprint, existing: &Fingerprint) -> Score {
    let mut t = Tally { sum: BIAS, reasons: Vec::with_capacity(10) };
    let (a, b) = (incoming, existing);
    let shared = shared_keys(a, b);
    // One person's reports share their home whatever they are about: where
    // the same person (or name) reports twice, agreeing on the place says
    // little about agreeing on the matter.
    let place_weight =
        if shared[KeyKind::Phone as usize] + shared[KeyKind::IdNumber as usize] + shared[KeyKind::Name as usize] > 0 {
            0.3
        } else {
            1.0
        };

    // Text.
    let text = text_similarity(a, b);
    match text {
        Some(s) => t.add(Evidence::Text(s), text_weight(s)),
        None => t.add(Evidence::NoText, 0.0),
    }
    let mut content = text.map_or(1.0, |s| ((s - CONTENT_FLOOR) / (CONTENT_FULL - CONTENT_FLOOR)).clamp(0.0, 1.0));

    // Category.
    if a.families & b.families == 0 {
        t.add(Evidence::DifferentFamily, -3.0);
    } else if a.category == b.category && a.category != 9999 {
        t.add(Evidence::SameCategory(a.category), 1.0);
    } else if a.category != 9999 && b.category != 9999 {
        // Channels classify one matter differently, but only between a
        // domain and a dispute category (a leak is 房屋漏水 on the hotline,
        // 邻里纠纷 on the terminal): one channel, or two domain categories,
        // disagreeing is a different problem.
        let domain = |c: u16| !(600..700).contains(&c) && !(800..900).contains(&c);
        if a.channel.is_some() && a.channel == b.channel || domain(a.category) && domain(b.category) {
            t.add(Evidence::DifferentCategory(a.category, b.category), -2.5);
            // The content is what the matter is about: a shared reporter of
            // two differently classified problems does not make them one.
            content = 0.0;
        }
    }

    // Region: village and community codes are reliable where both have one;
    // a record coded only to its county may still name its township.
    let (ra, rb) = (a.region, b.region);
    let village = |r: u64| !r.is_multiple_of(1000);
    if a.area().is_multiple_of(1000) || b.area().is_multiple_of(1000) {
        match (&a.town, &b.town) {
            (Some(x), Some(y)) if x != y => t.add(Evidence::DifferentTownship(x.clone(), y.clone()), -5.0),
            (Some(_), Some(_)) => t.add(Evidence::SameTownship, 0.0),
            _ => t.add(Evidence::CoarseRegion, 0.0),
        }
    } else if a.area() != b.area() {
        let name = |f: &Fingerprint| f.town.clone().unwrap_or_else(|| f.area().to_string());
        t.add(Evidence::DifferentTownship(name(a), name(b)), -5.0);
    } else if village(ra) && village(rb) {
        if ra == rb {
            t.add(Evidence::SameVillage, 1.0 * place_weight);
        } else {
            t.add(Evidence::DifferentVillage, -2.5);
        }
    } else {
        t.add(Evidence::SameTownship, 0.0);
    }

    place(&mut t, a, b, place_weight);

    // Coordinates: a phone's GPS is good to a few tens of metres.
    if let (Some(x), Some(y)) = (a.geo, b.geo) {
        let m = haversine_m(x, y);
        let w = match m {
            m if m <= 50.0 => 1.5,
            m if m <= 150.0 => 0.5,
            m if m <= 400.0 => -1.0,
            m if m <= 1000.0 => -2.0,
            _ => -3.0,
        };
        t.add(Evidence::Distance(m), w);
    }

    // Time: calls and grid reports of one thing come within hours or days;
    // a petition is registered, a court case filed, days or weeks later
    // (and a petition's time is only its date), but rarely after a month.
    let hours = (a.occurred - b.occurred).unsigned_abs() as f64 / 3600.0;
    let slow = |f: &Fingerprint| matches!(f.channel, Some(Channel::Petition | Channel::CourtMediation));
    let w = match hours {
        h if h <= 2.0 => 1.0,
        h if h <= 12.0 => 0.5,
        h if h <= 72.0 => 0.0,
        h if h <= 720.0 && (slow(a) || slow(b)) => 0.0,
        h if h <= 240.0 => -0.5,
        h if h <= 720.0 => -1.0,
        _ => -2.5,
    };
    t.add(Evidence::Hours(hours), w);

    // Amounts: a claim's sum tells two loans or two unpaid wages apart.
    // One channel rounds what another states (约8万 for 81,600): within 5%
    // they agree, beyond 20% they differ, in between they say nothing.
    if !a.amounts.is_empty() && !b.amounts.is_empty() {
        let apart = |x: u32, y: u32| f64::from(x.abs_diff(y)) / f64::from(x.max(y)).max(1.0);
        let closest = a
            .amounts
            .iter()
            .flat_map(|&x| b.amounts.iter().map(move |&y| (apart(x, y), x, y)))
            .min_by(|p, q| p.0.total_cmp(&q.0));
        match closest {
            Some((d, x, _)) if d <= 0.05 => t.add(Evidence::SameAmount(x), 2.0),
            Some((d, _, _)) if d <= 0.20 => {}
            _ => t.add(Evidence::DifferentAmount(a.amounts[0], b.amounts[0]), -3.0),
        }
    }

    identity(&mut t, a, b, &shared, content);

    Score { value: 1.0 / (1.0 + (-t.sum).exp()), reasons: t.reasons }
}

/// Shared identifiers, weighted by how much the texts agree (`content`,
/// 0..=1); and, for a personal matter, evidence that the people differ.
/// How many keys of each kind the two share (indexed by `KeyKind as usize`).
fn shared_keys(a: &Fingerprint, b: &Fingerprint) -> [u8; 6] {
    let mut shared = [0u8; 6];
    let (mut i, mut j) = (0, 0);
    while i < a.keys.len() && j < b.keys.len() {
        let (x, y) = (a.keys[i], b.keys[j]);
        if x.hash == y.hash && x.kind == y.kind {
            shared[x.kind as usize] = shared[x.kind as usize].saturating_add(1);
            i += 1;
            j += 1;
        } else if (x.kind, x.hash) < (y.kind, y.hash) {
            i += 1;
        } else {
            j += 1;
        }
    }
    shared
}

fn identity(t: &mut Tally, a: &Fingerprint, b: &Fingerprint, shared: &[u8; 6], content: f64) {
    let has = |k: KeyKind| shared[k as usize] > 0;
    // The same source record: a case number or event id quoted by another channel.
    for k in [KeyKind::CaseNo, KeyKind::EventId] {
        if has(k) {
            t.add(Evidence::Same(k), 6.0);
            return;
        }
    }
    let person = has(KeyKind::Phone) || has(KeyKind::IdNumber);
    let kinds = |f: &Fingerprint, k: KeyKind| f.keys.iter().any(|x| x.kind == k);
    // Two court records with different case numbers are two cases.
    if kinds(a, KeyKind::CaseNo) && kinds(b, KeyKind::CaseNo) {
        t.add(Evidence::DifferentCases, -3.0);
    }
    if has(KeyKind::Phone) {
        t.add(Evidence::Same(KeyKind::Phone), 2.5 * content);
    }
    if has(KeyKind::IdNumber) {
        t.add(Evidence::Same(KeyKind::IdNumber), if has(KeyKind::Phone) { 0.5 } else { 2.5 } * content);
    }
    if has(KeyKind::Name) {
        // Both parties of a dispute named alike says more than one name;
        // one party alike and the other not says it is another dispute.
        let names = |f: &Fingerprint| f.keys.iter().filter(|k| k.kind == KeyKind::Name).count();
        let n = shared[KeyKind::Name as usize];
        if n == 1 && names(a) >= 2 && names(b) >= 2 {
            t.add(Evidence::OtherPartyDiffers, -2.0);
        } else {
            let w = if person {
                0.2
            } else if n >= 2 {
                2.0
            } else {
                1.2
            };
            t.add(Evidence::Same(KeyKind::Name), w * content);
        }
    }
    if person && content < 1.0 {
        // One reporter, two problems: that is two tickets.
        t.add(Evidence::SameReporterDifferentContent, content - 1.0);
    }
    // A personal matter (one's wages, one's loan, one's land) of two
    // different people is two matters, and so is a dispute between other
    // parties. ID numbers say so for certain; two phones may be one
    // person's mobile and landline; two disputes whose texts name no family
    // name in common are two disputes.
    let known = |f: u16| f != family::ALL;
    let personal = |f: u16| known(f) && f & family::PERSONAL != 0;
    let dispute = |f: u16| known(f) && f & (family::DISPUTE | family::PERSONAL) != 0;
    if personal(a.families) || personal(b.families) || dispute(a.families) && dispute(b.families) {
        if !has(KeyKind::IdNumber) && kinds(a, KeyKind::IdNumber) && kinds(b, KeyKind::IdNumber) {
            t.add(Evidence::DifferentPeople, -4.0);
        } else if !person && kinds(a, KeyKind::Phone) && kinds(b, KeyKind::Phone) {
            t.add(Evidence::DifferentReporters, -1.5);
        }
    }
    let parties_named = (personal(a.families) || personal(b.families)) || (dispute(a.families) && dispute(b.families));
    if parties_named
        && !person
        && !a.surnames.is_empty()
        && !b.surnames.is_empty()
        && !a.surnames.iter().any(|c| b.surnames.contains(c))
    {
        t.add(Evidence::DifferentSurnames, -2.5);
    }
}

/// Place evidence; agreements count `agree` of their weight (see [`score`]),
/// disagreements always count in full.
fn place(t: &mut Tally, a: &Fingerprint, b: &Fingerprint, agree: f64) {
    let (p, q) = (&a.place, &b.place);
    if !p.streets.is_empty() && !q.streets.is_empty() {
        let crossings = p.crossing && q.crossing && p.streets.len() == 2 && q.streets.len() == 2;
        match p.shared_street(q) {
            Some(s) => {
                let first = |x: &Place| x.streets.first().is_some_and(|f| street_key(f) == street_key(s));
                match (p.house, q.house) {
                    (Some(x), Some(y)) if first(p) && first(q) => {
                        if x == y {
                            t.add(Evidence::SameHouse(s.to_string()), 3.0 * agree);
                        } else {
                            // A neighbouring door is a caller's approximation; far along the street is elsewhere.
                            let w = if x.abs_diff(y) <= 4 { -1.0 } else { -3.0 };
                            t.add(Evidence::DifferentHouse { street: s.to_string(), apart: x.abs_diff(y) }, w);
                        }
                    }
                    _ if crossings => {
                        let both = |x: &Place, y: &Place| {
                            x.streets.iter().all(|a| y.streets.iter().any(|b| street_key(a) == street_key(b)))
                        };
                        let name = |x: &Place| format!("{}/{}口", x.streets[0], x.streets[1]);
                        if both(p, q) {
                            t.add(Evidence::SameAddress(name(p)), 2.5 * agree);
                        } else {
                            t.add(Evidence::DifferentCrossing(name(p), name(q)), -1.5);
                        }
                    }
                    _ => t.add(Evidence::SameStreet(s.to_string()), 0.6 * agree),
                }
            }
            None => t.add(Evidence::DifferentStreets(p.streets[0].clone(), q.streets[0].clone()), -2.0),
        }
    }
    let mut same_community = true;
    if let (Some(x), Some(y)) = (&p.community, &q.community) {
        if x == y {
            t.add(Evidence::SameCommunity(x.clone()), 1.5 * agree);
        } else {
            same_community = false;
            t.add(Evidence::DifferentCommunity(x.clone(), y.clone()), -4.0);
        }
    }
    if let (Some(x), Some(y)) = (p.building, q.building)
        && same_community
    {
        if x == y {
            t.add(Evidence::SameBuilding(x), 1.5 * agree);
        } else {
            t.add(Evidence::DifferentBuilding(x, y), -3.0);
        }
    }
    if let (Some(x), Some(y)) = (p.group, q.group)
        && same_community
    {
        if x == y {
            t.add(Evidence::SameGroup(x), 1.0 * agree);
        } else {
            t.add(Evidence::DifferentGroup(x, y), -2.0);
        }
    }
}

/// Mean of Jaccard and containment of the two shingle sets, from their
/// bottom-k sketches; None when either text is empty.
pub fn text_similarity(a: &Fingerprint, b: &Fingerprint) -> Option<f64> {
    let (na, nb) = (f64::from(a.shingles), f64::from(b.shingles));
    if a.sketch.is_empty() || b.sketch.is_empty() || na == 0.0 || nb == 0.0 {
        return None;
    }
    let exact = a.sketch.len() == a.shingles as usize && b.sketch.len() == b.shingles as usize;
    let (x, y) = (&a.sketch, &b.sketch);
    let (mut i, mut j) = (0, 0);
    let (mut both, mut seen) = (0usize, 0usize);
    // Bottom-k of the union: walk both sorted sketches in step; when a
    // sketch is not the whole set, stop at the k-th smallest of the union.
    let k = if exact { usize::MAX } else { x.len().min(y.len()) };
    while seen < k && (i < x.len() || j < y.len()) {
        match (x.get(i), y.get(j)) {
            (Some(u), Some(v)) if u == v => {
                both += 1;
                i += 1;
                j += 1;
            }
            (Some(u), Some(v)) if u < v => i += 1,
            (Some(_), Some(_)) => j += 1,
            (Some(_), None) => i += 1,
            (None, _) => j += 1,
        }
        seen += 1;
    }
    let jaccard = if seen == 0 { 0.0 } else { both as f64 / seen as f64 };
    let inter = if exact { both as f64 } else { jaccard * (na + nb) / (1.0 + jaccard) };
    let containment = (inter / na.min(nb)).min(1.0);
    Some((jaccard + containment) / 2.0)
}

/// Great-circle distance in metres.
pub fn haversine_m(a: (f32, f32), b: (f32, f32)) -> f64 {
    let (lat1, lng1) = (f64::from(a.0).to_radians(), f64::from(a.1).to_radians());
    let (lat2, lng2) = (f64::from(b.0).to_radians(), f64::from(b.1).to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lng2 - lng1) / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::testing::{draft, with_reporter};

    #[test]
    fn one_manhole_two_channels_scores_high_with_reasons() {
        let h = draft(
            "help",
            "0101",
            "市民来电反映义宁街12号门前下水井井盖塌陷，路面出现深坑，已有车辆陷入。",
            "220402",
            Some("义宁街12号"),
            "2024-07-15T09:40:00+08:00",
        );
        let mut t = draft(
            "grid_event",
            "0101",
            "巡查发现义宁街12号下水井塌陷，有车辆陷落，需市政部门尽快修复并设置路锥。",
            "220402002007",
            Some("龙山区南康街道义宁街12号楼下"),
            "2024-07-15T13:10:00+08:00",
        );
        t.geo = Some(crate::ticket::Geo { lat: 42.9, lng: 125.14 });
        let s = score(&Fingerprint::of(&t), &Fingerprint::of(&h));
        assert!(s.value > 0.9, "{s}");
        let text = s.to_string();
        assert!(text.contains("门牌相同: 义宁街") && text.contains("正文相似"), "{text}");
        // The house number with its street is an address: not in the reasons.
        assert!(!text.contains("12号"), "{text}");
    }

    #[test]
    fn a_rounded_sum_agrees_with_the_stated_one_and_a_far_one_does_not() {
        let d = |text: &str, at: &str| {
            Fingerprint::of(&draft("complaint", "0401", text, "220422101", Some("渭津镇丰收村"), at))
        };
        let petition = d("本人在某建筑公司干活，老板拖欠我工资八万一千六百元至今不给。", "2024-10-05T09:00:00+08:00");
        let terminal = d("丰收村工地工人反映被欠薪约8万元，情绪激动。", "2024-10-01T15:00:00+08:00");
        let other = d("丰收村工地工人反映被欠薪约3万元，情绪激动。", "2024-10-01T16:00:00+08:00");
        let same = score(&petition, &terminal).to_string();
        assert!(same.contains("金额相同") && !same.contains("金额不同"), "{same}");
        let differs = score(&petition, &other).to_string();
        assert!(differs.contains("金额不同"), "{differs}");
    }

    #[test]
    fn one_reporter_two_problems_is_not_one_matter() {
        let a = with_reporter(
            draft(
                "complaint",
                "0203",
                "来电人称康宁社区5号楼暖气不热，屋里只有13度。",
                "220402002001",
                Some("康宁社区5号楼"),
                "2024-11-15T09:40:00+08:00",
            ),
            "王女士",
            "13904371234",
        );
        let b = with_reporter(
            draft(
                "complaint",
                "0202",
                "来电人称康宁社区5号楼楼道内长期堆放杂物，堵塞消防通道，物业不予清理。",
                "220402002001",
                Some("康宁社区5号楼"),
                "2024-11-16T10:00:00+08:00",
            ),
            "王女士",
            "+86 139 0437 1234",
        );
        let s = score(&Fingerprint::of(&b), &Fingerprint::of(&a));
        assert!(s.value < 0.5, "{s}");
        let text = s.to_string();
        assert!(text.contains("same phone") && text.contains("different problem"), "{text}");
        // …and no personal data in the reasons.
        assert!(!text.contains("1234") && !text.contains("王女士"), "{text}");
    }

    #[test]
    fn text_similarity_is_exact_for_short_texts_and_estimated_for_long_ones() {
        let d = |s: &str| Fingerprint::of(&draft("help", "0101", s, "220402", None, "2024-07-15T09:40:00+08:00"));
        let a = d("下水井塌陷");
        assert_eq!(text_similarity(&a, &a), Some(1.0));
        assert_eq!(text_similarity(&a, &d("路灯不亮")), Some(0.0));
        assert_eq!(text_similarity(&a, &d("，。")), None);
        let long: String = (0..300).map(|i| char::from_u32(0x4E00 + (i * 7919) % 20000).unwrap()).collect();
        let x = d(&long);
        assert_eq!(x.sketch.len(), crate::dedup::fingerprint::SKETCH);
        let s = text_similarity(&x, &x).unwrap();
        assert!((s - 1.0).abs() < 1e-9, "{s}");
        let half: String = long.chars().take(150).collect();
        let s = text_similarity(&x, &d(&half)).unwrap();
        assert!((0.5..=0.95).contains(&s), "{s}");
    }

    #[test]
    fn distances() {
        let d = haversine_m((42.9027, 125.1451), (42.9037, 125.1451));
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert_eq!(haversine_m((42.9, 125.1), (42.9, 125.1)), 0.0);
    }
}
