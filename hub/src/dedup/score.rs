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

use super::facts::{Quantity, Unit, months_agree};
use super::fingerprint::{Fingerprint, KeyKind, family};
use super::place::{Place, street_key};
use super::weights::{Feature, w};

/// The text feature of a similarity (0..1): bins, so that the fit can
/// learn where two channels' wordings of one matter usually fall (they
/// share some characters and bigrams once boilerplate and the place are
/// out, typically 0.1–0.4) without text outweighing a different place or
/// person: a channel's stock phrasing of one kind of problem (every
/// property complaint reads alike) must not carry a merge.
fn text_feature(s: f64) -> Feature {
    match s {
        s if s < 0.02 => Feature::TextNone,
        s if s < 0.05 => Feature::TextTrace,
        s if s < 0.09 => Feature::TextLow,
        s if s < 0.13 => Feature::TextSome,
        s if s < 0.18 => Feature::TextMuch,
        s if s < 0.25 => Feature::TextHigh,
        _ => Feature::TextSame,
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
    /// A count or measure both texts give (`约40户` and `41户`).
    SameQuantity(Quantity, Quantity),
    DifferentQuantity(Quantity, Quantity),
    /// One organisation as far as the texts tell (its kind is shown, not
    /// its name: a business can be named after a person).
    SameOrganisation(&'static str),
    /// Two named organisations with nothing in their names in common.
    DifferentOrganisation(&'static str, &'static str),
    /// The months the texts say it happened in (`year * 12 + month - 1`).
    SameMonth(u32),
    DifferentMonth(u32, u32),
}

fn quantity(q: &Quantity) -> String {
    format!("{}{}{}", if q.approx { "约" } else { "" }, q.value, q.unit.label())
}

fn month(m: u32) -> String {
    format!("{}年{}月", m / 12, m % 12 + 1)
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
                KeyKind::WeakName => "same form of address (王女士, 王某: tells nobody apart, not weighed)",
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
            Evidence::SameQuantity(a, b) => write!(f, "数量相符: {} / {}", quantity(a), quantity(b)),
            Evidence::DifferentQuantity(a, b) => write!(f, "数量不符: {} / {}", quantity(a), quantity(b)),
            Evidence::SameOrganisation(k) => write!(f, "同一单位: {k}"),
            Evidence::DifferentOrganisation(a, b) => write!(f, "单位名称不同: {a} / {b}"),
            Evidence::SameMonth(m) => write!(f, "发生时间相符: {}", month(*m)),
            Evidence::DifferentMonth(a, b) => write!(f, "发生时间不符: {} / {}", month(*a), month(*b)),
        }
    }
}

/// A piece of evidence and how much it moved the score (log-odds).
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    pub evidence: Evidence,
    pub weight: f64,
    /// The kind of evidence and its value, whose product with the
    /// feature's weight is `weight`: what the fit learns from.
    pub feature: Feature,
    pub x: f64,
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
    pub(crate) fn add(&mut self, evidence: Evidence, feature: Feature, x: f64) {
        self.reasons.push(Reason { evidence, weight: w(feature) * x, feature, x });
        let logit = w(Feature::Bias) + self.reasons.iter().map(|r| r.weight).sum::<f64>();
        self.value = 1.0 / (1.0 + (-logit).exp());
    }

    /// The value of each feature (indexed by `Feature as usize`), the bias 1:
    /// one row of the fit's design matrix.
    pub fn features(&self) -> Vec<f64> {
        let mut x = vec![0.0; Feature::ALL.len()];
        x[Feature::Bias as usize] = 1.0;
        for r in &self.reasons {
            x[r.feature as usize] += r.x;
        }
        x
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
    /// Evidence of one feature with value `x` (1 for a fact).
    fn add(&mut self, evidence: Evidence, feature: Feature, x: f64) {
        let weight = w(feature) * x;
        self.sum += weight;
        self.reasons.push(Reason { evidence, weight, feature, x });
    }

    fn fact(&mut self, evidence: Evidence, feature: Feature) {
        self.add(evidence, feature, 1.0);
    }
}

/// How alike `incoming` is to `existing` (symmetric but for rounding).
pub fn score(incoming: &Fingerprint, existing: &Fingerprint) -> Score {
    let mut t = Tally { sum: w(Feature::Bias), reasons: Vec::with_capacity(12) };
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
        Some(s) => t.fact(Evidence::Text(s), text_feature(s)),
        None => t.add(Evidence::NoText, Feature::Bias, 0.0),
    }
    let mut content = text.map_or(1.0, |s| ((s - CONTENT_FLOOR) / (CONTENT_FULL - CONTENT_FLOOR)).clamp(0.0, 1.0));

    // Category.
    if a.families & b.families == 0 {
        t.fact(Evidence::DifferentFamily, Feature::DifferentFamily);
    } else if a.category == b.category && a.category != 9999 {
        t.fact(Evidence::SameCategory(a.category), Feature::SameCategory);
    } else if a.category != 9999 && b.category != 9999 {
        // Channels classify one matter differently, but only between a
        // domain and a dispute category (a leak is 房屋漏水 on the hotline,
        // 邻里纠纷 on the terminal): one channel, or two domain categories,
        // disagreeing is a different problem.
        let domain = |c: u16| !(600..700).contains(&c) && !(800..900).contains(&c);
        // Two channels picking neighbouring categories of one domain (物业管理
        // 0202 and 供热 0203 for one cold building; 土地承包 0501 and 征地补偿
        // 0503) is how classifiers differ, not a different problem.
        let neighbours = a.category / 100 == b.category / 100 && a.channel != b.channel;
        if a.channel.is_some() && a.channel == b.channel || domain(a.category) && domain(b.category) && !neighbours {
            // One channel's two categories are two problems; two channels'
            // classifiers disagree more often (a broken traffic light is
            // 市政设施 to one and 交通安全 to another): that counts less. The
            // fit put both near -1 (docs/duplicates.md).
            let same_channel = a.channel.is_some() && a.channel == b.channel;
            let f = if same_channel { Feature::DifferentCategory } else { Feature::DifferentCategoryAcrossChannels };
            t.fact(Evidence::DifferentCategory(a.category, b.category), f);
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
            (Some(x), Some(y)) if x != y => {
                t.fact(Evidence::DifferentTownship(x.clone(), y.clone()), Feature::DifferentTownship)
            }
            (Some(_), Some(_)) => t.add(Evidence::SameTownship, Feature::Bias, 0.0),
            _ => t.add(Evidence::CoarseRegion, Feature::Bias, 0.0),
        }
    } else if a.area() != b.area() {
        let name = |f: &Fingerprint| f.town.clone().unwrap_or_else(|| f.area().to_string());
        t.fact(Evidence::DifferentTownship(name(a), name(b)), Feature::DifferentTownship);
    } else if village(ra) && village(rb) {
        if ra == rb {
            t.add(Evidence::SameVillage, Feature::SameVillage, place_weight);
        } else {
            t.fact(Evidence::DifferentVillage, Feature::DifferentVillage);
        }
    } else {
        t.add(Evidence::SameTownship, Feature::Bias, 0.0);
    }

    place(&mut t, a, b, place_weight);

    // Coordinates: a phone's GPS is good to a few tens of metres.
    if let (Some(x), Some(y)) = (a.geo, b.geo) {
        let m = haversine_m(x, y);
        let f = match m {
            m if m <= 50.0 => Feature::Within50m,
            m if m <= 150.0 => Feature::Within150m,
            m if m <= 400.0 => Feature::Within400m,
            m if m <= 1000.0 => Feature::Within1km,
            _ => Feature::Beyond1km,
        };
        t.fact(Evidence::Distance(m), f);
    }

    // Time: calls and grid reports of one thing come within hours or days;
    // a petition is registered, a court case filed, days or weeks later
    // (and a petition's time is only its date), but rarely after a month.
    let hours = (a.occurred - b.occurred).unsigned_abs() as f64 / 3600.0;
    let slow = |f: &Fingerprint| matches!(f.channel, Some(Channel::Petition | Channel::CourtMediation));
    let f = match hours {
        h if h <= 2.0 => Feature::Within2h,
        h if h <= 12.0 => Feature::Within12h,
        h if h <= 72.0 => Feature::Within3d,
        h if h <= 720.0 && (slow(a) || slow(b)) => Feature::LaterChannel30d,
        h if h <= 240.0 => Feature::Within10d,
        h if h <= 720.0 => Feature::Within30d,
        _ => Feature::Beyond30d,
    };
    t.fact(Evidence::Hours(hours), f);

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
            Some((d, x, _)) if d <= 0.05 => t.fact(Evidence::SameAmount(x), Feature::SameAmount),
            Some((d, _, _)) if d <= 0.20 => {}
            _ => t.fact(Evidence::DifferentAmount(a.amounts[0], b.amounts[0]), Feature::DifferentAmount),
        }
    }

    facts(&mut t, a, b);

    identity(&mut t, a, b, &shared, content);

    Score { value: 1.0 / (1.0 + (-t.sum).exp()), reasons: t.reasons }
}

/// Counts, measures, organisations and months both texts name.
fn facts(t: &mut Tally, a: &Fingerprint, b: &Fingerprint) {
    let mut agree: Option<(Quantity, Quantity)> = None;
    let mut differ: Option<(Quantity, Quantity)> = None;
    for x in &a.quantities {
        for y in &b.quantities {
            match x.agrees(y) {
                Some(true) if agree.is_none() => agree = Some((*x, *y)),
                Some(false) if differ.is_none() => differ = Some((*x, *y)),
                _ => {}
            }
        }
    }
    let count = |q: &Quantity| matches!(q.unit, Unit::Households | Unit::People);
    if let Some((x, y)) = agree {
        let f = if count(&x) { Feature::SameCount } else { Feature::SameMeasure };
        t.fact(Evidence::SameQuantity(x, y), f);
    } else if let Some((x, y)) = differ {
        let f = if count(&x) { Feature::DifferentCount } else { Feature::DifferentMeasure };
        t.fact(Evidence::DifferentQuantity(x, y), f);
    }

    let mut org: Option<Option<bool>> = None;
    let mut labels = ("", "");
    for x in &a.organisations {
        for y in &b.organisations {
            match x.agrees(y) {
                Some(true) => {
                    org = Some(Some(true));
                    labels = (x.kind_label(), y.kind_label());
                }
                Some(false) if org.is_none() => {
                    org = Some(Some(false));
                    labels = (x.kind_label(), y.kind_label());
                }
                _ => {}
            }
        }
    }
    match org {
        Some(Some(true)) => t.fact(Evidence::SameOrganisation(labels.0), Feature::SameOrganisation),
        Some(Some(false)) => {
            t.fact(Evidence::DifferentOrganisation(labels.0, labels.1), Feature::DifferentOrganisation)
        }
        _ => {}
    }

    match months_agree(&a.months, &b.months) {
        Some(true) => {
            let m = a.months.iter().find(|m| b.months.iter().any(|n| m.abs_diff(*n) <= 1));
            t.fact(Evidence::SameMonth(m.copied().unwrap_or(a.months[0])), Feature::SameMonthSaid);
        }
        Some(false) => t.fact(Evidence::DifferentMonth(a.months[0], b.months[0]), Feature::DifferentMonthSaid),
        None => {}
    }
}

/// Shared identifiers, weighted by how much the texts agree (`content`,
/// 0..=1); and, for a personal matter, evidence that the people differ.
/// How many keys of each kind the two share (indexed by `KeyKind as usize`).
fn shared_keys(a: &Fingerprint, b: &Fingerprint) -> [u8; 7] {
    let mut shared = [0u8; 7];
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

fn identity(t: &mut Tally, a: &Fingerprint, b: &Fingerprint, shared: &[u8; 7], content: f64) {
    let has = |k: KeyKind| shared[k as usize] > 0;
    // The same source record: a case number or event id quoted by another channel.
    for k in [KeyKind::CaseNo, KeyKind::EventId] {
        if has(k) {
            t.fact(Evidence::Same(k), Feature::SameRecord);
            return;
        }
    }
    let person = has(KeyKind::Phone) || has(KeyKind::IdNumber);
    let kinds = |f: &Fingerprint, k: KeyKind| f.keys.iter().any(|x| x.kind == k);
    // Two court records with different case numbers are two cases.
    if kinds(a, KeyKind::CaseNo) && kinds(b, KeyKind::CaseNo) {
        t.fact(Evidence::DifferentCases, Feature::DifferentCases);
    }
    if has(KeyKind::Phone) {
        t.add(Evidence::Same(KeyKind::Phone), Feature::SamePhone, content);
    }
    if has(KeyKind::IdNumber) {
        let f = if has(KeyKind::Phone) { Feature::SameIdNumberAndPhone } else { Feature::SameIdNumber };
        t.add(Evidence::Same(KeyKind::IdNumber), f, content);
    }
    if has(KeyKind::Name) || has(KeyKind::WeakName) {
        // Both parties of a dispute named alike says more than one name;
        // one party alike and the other not says it is another dispute.
        let names = |f: &Fingerprint| f.keys.iter().filter(|k| k.kind.is_name()).count();
        let full = shared[KeyKind::Name as usize];
        let n = full + shared[KeyKind::WeakName as usize];
        if n == 1 && names(a) >= 2 && names(b) >= 2 {
            t.fact(Evidence::OtherPartyDiffers, Feature::OtherPartyDiffers);
        } else if person {
            t.add(Evidence::Same(KeyKind::Name), Feature::SameNameOfKnownPerson, content);
        } else if full >= 2 {
            t.add(Evidence::Same(KeyKind::Name), Feature::SameFullNames, content);
        } else if full == 1 {
            t.add(Evidence::Same(KeyKind::Name), Feature::SameFullName, content);
        } else {
            // 王女士, 张先生, 王某: what most records hold, and it tells
            // nobody apart. Shown, never weighed (a fixed rule of the fit, `fit::FIXED`).
            t.add(Evidence::Same(KeyKind::WeakName), Feature::SameWeakName, content);
        }
    }
    if person && content < 1.0 {
        // One reporter, two problems: that is two tickets.
        t.add(Evidence::SameReporterDifferentContent, Feature::SameReporterDifferentContent, 1.0 - content);
    }
    // A personal matter (one's wages, one's loan, one's land) of two
    // different people is two matters, and so is a dispute between other
    // parties. ID numbers say so for certain; two phones may be one
    // person's mobile and landline; two disputes whose texts name no family
    // name in common are two disputes.
    let known = |f: u16| f != family::ALL;
    let personal = |f: u16| known(f) && f & family::PERSONAL != 0;
    let dispute = |f: u16| known(f) && f & (family::DISPUTE | family::PERSONAL) != 0;
    // A matter of many (forty households, twelve workers) is reported by
    // many: different people say nothing against it being one.
    let group = |f: &Fingerprint| {
        f.quantities.iter().any(|q| matches!(q.unit, Unit::Households | Unit::People) && q.value >= 3)
    };
    let many = group(a) || group(b);
    if !many && (personal(a.families) || personal(b.families) || dispute(a.families) && dispute(b.families)) {
        if !has(KeyKind::IdNumber) && kinds(a, KeyKind::IdNumber) && kinds(b, KeyKind::IdNumber) {
            t.fact(Evidence::DifferentPeople, Feature::DifferentPeople);
        } else if !person && kinds(a, KeyKind::Phone) && kinds(b, KeyKind::Phone) {
            t.fact(Evidence::DifferentReporters, Feature::DifferentReporters);
        }
    }
    let parties_named = (personal(a.families) || personal(b.families)) || (dispute(a.families) && dispute(b.families));
    if parties_named
        && !person
        && !a.surnames.is_empty()
        && !b.surnames.is_empty()
        && !a.surnames.iter().any(|c| b.surnames.contains(c))
    {
        t.fact(Evidence::DifferentSurnames, Feature::DifferentSurnames);
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
                            t.add(Evidence::SameHouse(s.to_string()), Feature::SameHouse, agree);
                        } else {
                            // A neighbouring door is a caller's approximation; far along the street is elsewhere.
                            let f = if x.abs_diff(y) <= 4 { Feature::NearbyHouse } else { Feature::DifferentHouse };
                            t.fact(Evidence::DifferentHouse { street: s.to_string(), apart: x.abs_diff(y) }, f);
                        }
                    }
                    _ if crossings => {
                        let both = |x: &Place, y: &Place| {
                            x.streets.iter().all(|a| y.streets.iter().any(|b| street_key(a) == street_key(b)))
                        };
                        let name = |x: &Place| format!("{}/{}口", x.streets[0], x.streets[1]);
                        if both(p, q) {
                            t.add(Evidence::SameAddress(name(p)), Feature::SameCrossing, agree);
                        } else {
                            t.fact(Evidence::DifferentCrossing(name(p), name(q)), Feature::DifferentCrossing);
                        }
                    }
                    _ => t.add(Evidence::SameStreet(s.to_string()), Feature::SameStreet, agree),
                }
            }
            None => t.fact(
                Evidence::DifferentStreets(p.streets[0].clone(), q.streets[0].clone()),
                Feature::DifferentStreets,
            ),
        }
    }
    let mut same_community = true;
    if let (Some(x), Some(y)) = (&p.community, &q.community) {
        if x == y {
            t.add(Evidence::SameCommunity(x.clone()), Feature::SameCommunity, agree);
        } else {
            same_community = false;
            t.fact(Evidence::DifferentCommunity(x.clone(), y.clone()), Feature::DifferentCommunity);
        }
    }
    if let (Some(x), Some(y)) = (p.building, q.building)
        && same_community
    {
        if x == y {
            t.add(Evidence::SameBuilding(x), Feature::SameBuilding, agree);
        } else {
            t.fact(Evidence::DifferentBuilding(x, y), Feature::DifferentBuilding);
        }
    }
    // Villagers' groups, as sets: 三组至五组 and 四组 are one place.
    let first = |g: u32| g.trailing_zeros() as u8;
    if a.groups != 0 && b.groups != 0 && same_community {
        if a.groups & b.groups != 0 {
            t.add(Evidence::SameGroup(first(a.groups & b.groups)), Feature::SameGroup, agree);
        } else {
            t.fact(Evidence::DifferentGroup(first(a.groups), first(b.groups)), Feature::DifferentGroup);
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
