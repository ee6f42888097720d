//! The fingerprint of one source record: everything duplicate detection
//! compares, computed once when the record arrives and kept by the store
//! next to the open ticket (a few hundred bytes, see [`Fingerprint::to_bytes`]).
//!
//! Text becomes a bottom-k MinHash sketch of character unigrams and
//! bigrams (the usual indexing units for Chinese without a segmenter:
//! bigrams carry words, unigrams catch synonyms that share a character,
//! 窨井/下水井, 停水/没水): one hash function, the [`SKETCH`] smallest distinct
//! 16-bit hashes kept. For the short texts agencies write the sketch is the
//! whole set and the similarity is exact; for longer ones it is the
//! standard bottom-k estimate. No dictionary, no randomness at runtime:
//! the same record gives the same bytes on every machine and version of
//! this format.
//!
//! Identifiers (phones, ID numbers, names, case numbers, event ids) are kept
//! as 64-bit keyed hashes, not as text: the fingerprint can be stored,
//! logged in hex and indexed without carrying personal data in the clear
//! (a hash of a phone number is not a secret either, so the fingerprint is
//! still stored only where the ticket itself is).

use crate::ticket::{Channel, Kind, RegionLevel, TicketDraft};

use super::facts::{self, Organisation, Quantity, Unit};
use super::place::Place;
use super::text;

/// Hashes kept in the text sketch (16 bits each: for sets of a hundred
/// shingles, chance collisions move a similarity by well under 0.01).
pub const SKETCH: usize = 96;

/// The format version written first by [`Fingerprint::to_bytes`].
const FORMAT: u8 = 2;

/// Category families as a bit set. A dispute category belongs to the
/// family of what the dispute is about as well (a grid worker files a
/// leaking bathroom under 邻里纠纷 0601, the hotline under 房屋漏水 0201, the
/// court under 相邻关系 0605), and 9999 belongs to every family: the
/// classifiers of the four channels disagree, and an unknown category must
/// not hide a duplicate.
pub mod family {
    pub const MUNICIPAL: u16 = 1 << 0;
    pub const HOUSING: u16 = 1 << 1;
    pub const ENVIRONMENT: u16 = 1 << 2;
    pub const LABOUR: u16 = 1 << 3;
    pub const RURAL: u16 = 1 << 4;
    pub const DISPUTE: u16 = 1 << 5;
    pub const SAFETY: u16 = 1 << 6;
    pub const SERVICE: u16 = 1 << 7;
    /// A dispute between particular people (a loan, a family matter).
    pub const PRIVATE: u16 = 1 << 8;
    pub const ALL: u16 = 0x1FF;

    /// The families of a platform category code (`tables/platform-categories.csv`).
    pub fn of(category: u16) -> u16 {
        match category {
            101..=105 => MUNICIPAL,
            201..=204 => HOUSING,
            301..=304 => ENVIRONMENT | HOUSING,
            401..=403 => LABOUR,
            501..=504 => RURAL,
            // 邻里纠纷: leaks, noise, parking, loans between neighbours.
            601 => DISPUTE | HOUSING | ENVIRONMENT,
            602 => DISPUTE | PRIVATE,
            603 => DISPUTE | PRIVATE,
            604 => DISPUTE | LABOUR,
            // 相邻关系: leaks, passage, light between neighbours.
            605 => DISPUTE | HOUSING | ENVIRONMENT,
            606 => DISPUTE | HOUSING | LABOUR,
            // 消防通道 is a building's matter too.
            701 => SAFETY | HOUSING,
            702 => SAFETY | MUNICIPAL,
            703 => SAFETY,
            // A consultation can be about anything.
            801 => ALL,
            802..=803 => SERVICE,
            _ => ALL,
        }
    }

    /// Families where the matter is the reporter's own (their wages, their
    /// subsidy, their land, their loan): two different identified people are
    /// two matters. Not neighbours' disputes: every resident of the building
    /// may call about the clutter in its stairwell.
    pub const PERSONAL: u16 = LABOUR | RURAL | PRIVATE;
}

/// What kind of identifier a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum KeyKind {
    Phone = 1,
    IdNumber = 2,
    Name = 3,
    CaseNo = 4,
    EventId = 5,
    /// A surname with an honorific or a mask (`王女士`, `张先生`, `王某`):
    /// what most records hold, and it identifies nobody.
    WeakName = 6,
}

impl KeyKind {
    fn from_u8(b: u8) -> Option<KeyKind> {
        Some(match b {
            1 => KeyKind::Phone,
            2 => KeyKind::IdNumber,
            3 => KeyKind::Name,
            4 => KeyKind::CaseNo,
            5 => KeyKind::EventId,
            6 => KeyKind::WeakName,
            _ => return None,
        })
    }

    /// Strong identifiers say who (or which record) it is; a name alone
    /// (`王某`) does not.
    pub fn strong(self) -> bool {
        !self.is_name()
    }

    pub fn is_name(self) -> bool {
        matches!(self, KeyKind::Name | KeyKind::WeakName)
    }
}

/// A hashed identifier. `hash` already includes the kind, so the hash alone
/// is what the store indexes ([`Fingerprint::keys`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub kind: KeyKind,
    pub hash: u64,
}

impl Key {
    fn new(kind: KeyKind, value: &str) -> Key {
        Key { kind, hash: text::fnv64(kind as u8, value.as_bytes()) }
    }
}

/// Identifiers of the source record that are not in the draft.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceIds<'a> {
    /// The channel the record came through (the draft only says it through
    /// its reporters).
    pub channel: Option<Channel>,
    /// The record's id in its system: a terminal's event id, a case number.
    pub record_id: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fingerprint {
    pub kind: Kind,
    pub channel: Option<Channel>,
    /// The platform category as a number (`0101` → 101).
    pub category: u16,
    /// [`family`] bits.
    pub families: u16,
    /// The 12-digit region code as a number.
    pub region: u64,
    pub level: RegionLevel,
    /// `occurred_at`, Unix seconds.
    pub occurred: i64,
    /// Latitude, longitude (WGS-84); f32 is better than a metre here.
    pub geo: Option<(f32, f32)>,
    pub place: Place,
    /// Sorted, distinct.
    pub keys: Vec<Key>,
    /// Amounts of money named in the text, yuan.
    pub amounts: Vec<u32>,
    /// Family names of the people named (reporters and names in the text):
    /// `王女士` and `王某某` may be one person, `王某` and `杨某` are not. A
    /// family name alone identifies nobody, so it is kept as a character.
    pub surnames: Vec<char>,
    /// The township's name (`南康街道`), from the region or, for a record
    /// coded only to its county, from its address or text.
    pub town: Option<String>,
    /// Distinct shingles of the text (the sketch holds at most [`SKETCH`]).
    pub shingles: u16,
    /// Bottom-k sketch: the smallest shingle hashes, ascending.
    pub sketch: Vec<u16>,
    /// Counts and measures named in the text (户, 人, 米, 亩, 平方米).
    pub quantities: Vec<Quantity>,
    /// Villagers' groups named (bit n: group n), from the address and the text.
    pub groups: u32,
    /// Organisations named: their kind, and their own name unless masked.
    pub organisations: Vec<Organisation>,
    /// Months the text says it happened in (`year * 12 + month - 1`).
    pub months: Vec<u32>,
}

impl Fingerprint {
    /// The fingerprint of a draft, the channel guessed from the draft (a
    /// court case, else the reporters' channel, else a terminal: grid
    /// workers' events carry no reporter).
    pub fn of(draft: &TicketDraft) -> Fingerprint {
        Fingerprint::new(draft, SourceIds::default())
    }

    pub fn new(draft: &TicketDraft, ids: SourceIds<'_>) -> Fingerprint {
        Fingerprint::build(draft, ids).0
    }

    /// The text that was shingled, after boilerplate, identifiers and the
    /// place were taken out: for looking at why two texts agree.
    pub fn content_text(draft: &TicketDraft) -> String {
        let chars = Fingerprint::build(draft, SourceIds::default()).1;
        chars.iter().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn build(draft: &TicketDraft, ids: SourceIds<'_>) -> (Fingerprint, Vec<char>) {
        let channel = ids.channel.or_else(|| {
            if draft.court.is_some() {
                Some(Channel::CourtMediation)
            } else if let Some(r) = draft.reporters.first() {
                Some(r.channel)
            } else {
                Some(Channel::Terminal)
            }
        });
        let category = draft.category.as_str().parse::<u16>().unwrap_or(9999);
        let region = draft.region.code.as_str().parse::<u64>().unwrap_or(0);

        // Text: the description (the title repeats it behind a category label).
        let source = if draft.description.trim().is_empty() { draft.title.as_str() } else { &draft.description };
        let mut chars = text::normalize(source);
        let mut keys: Vec<Key> = Vec::new();
        for case in text::take_case_numbers(&mut chars) {
            keys.push(Key::new(KeyKind::CaseNo, &case));
        }
        for event in text::take_event_ids_and_long_numbers(&mut chars) {
            keys.push(Key::new(KeyKind::EventId, &event));
        }
        let amounts = text::amounts(&chars);
        let quantities = facts::quantities(&chars);
        let organisations = facts::organisations(&chars);
        let months = facts::months(&chars, local_month(draft.occurred_at.timestamp()));
        let mut groups = facts::groups(&chars);
        let mut surnames: Vec<char> = Vec::new();
        for name in text::names(&chars) {
            surnames.extend(name.chars().next());
            keys.push(Key::new(text::name_kind(&name), &name));
        }

        // Identifiers of the record and its reporters.
        if let Some(court) = &draft.court {
            keys.push(Key::new(KeyKind::CaseNo, &case_key(&court.case_no)));
        }
        if let Some(id) = ids.record_id {
            match channel {
                Some(Channel::Terminal) => keys.push(Key::new(KeyKind::EventId, &id.trim().to_ascii_lowercase())),
                Some(Channel::CourtMediation) => keys.push(Key::new(KeyKind::CaseNo, &case_key(id))),
                _ => {}
            }
        }
        for r in draft.reporters.iter().filter(|r| !r.anonymous) {
            if let Some(p) = &r.phone {
                keys.push(Key::new(KeyKind::Phone, p.as_str()));
            }
            if let Some(id) = &r.id_number {
                keys.push(Key::new(KeyKind::IdNumber, &id.as_str().to_ascii_uppercase()));
            }
            if let Some(n) = r.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                keys.push(Key::new(text::name_kind(n), n));
                surnames.extend(n.chars().next().filter(|c| text::is_han(*c)));
            }
        }
        keys.sort();
        keys.dedup();
        keys.truncate(16);
        surnames.sort_unstable();
        surnames.dedup();
        surnames.truncate(6);

        // Place: the address field, then what the description says.
        // The township the region code says, else the one an address or the
        // text names (a record coded only to its county often says it).
        let named = |n: &str| ["街道", "镇", "乡"].iter().any(|s| n.ends_with(s));
        let mut town = match draft.region.level {
            RegionLevel::Township | RegionLevel::Village if named(&draft.region.name) => {
                Some(draft.region.name.clone())
            }
            _ => None,
        };
        let mut addr = draft.address.as_deref().map(text::normalize).unwrap_or_default();
        text::strip_word(&mut addr, &draft.region.name);
        let mut towns = text::strip_admin(&mut addr);
        // Boilerplate first, so that `来电人反映太安街道` is not a township's name.
        text::strip_boilerplate(&mut chars);
        text::strip_word(&mut chars, &draft.region.name);
        towns.extend(text::strip_admin(&mut chars));
        if town.is_none() {
            town = towns.into_iter().next();
        }
        groups |= facts::groups(&addr);
        let mut place = Place::parse(&addr, false);
        let (said, spans) = Place::parse_spans(&chars, true);
        place.fill_from(said);
        for (from, to) in spans {
            text::blank(&mut chars, from, to);
        }

        let all = text::shingles(&chars);
        let shingles = u16::try_from(all.len()).unwrap_or(u16::MAX);
        let sketch = all.into_iter().take(SKETCH).collect();

        let groups = groups | place.group.map_or(0, |g| if g < 32 { 1u32 << g } else { 0 });
        let fingerprint = Fingerprint {
            kind: draft.kind,
            channel,
            category,
            // 9999: the families its text names, if it names any.
            families: Some(category)
                .filter(|c| *c == 9999)
                .map(|_| super::vocabulary::families_of_text(source))
                .filter(|f| *f != 0)
                .unwrap_or_else(|| family::of(category)),
            region,
            level: draft.region.level,
            occurred: draft.occurred_at.timestamp(),
            geo: draft.geo.map(|g| (g.lat as f32, g.lng as f32)),
            place,
            keys,
            amounts,
            surnames,
            town,
            shingles,
            sketch,
            quantities,
            groups,
            organisations,
            months,
        };
        (fingerprint, chars)
    }

    /// The township (9 digits), or the county or city padded to 9 digits
    /// when the record names nothing finer: the region column the store
    /// indexes for candidate search.
    pub fn area(&self) -> u64 {
        self.region / 1000
    }

    pub fn county(&self) -> u64 {
        self.region / 1_000_000
    }

    /// The identifier keys the store indexes (one row per key and ticket).
    /// A weak name (`王女士`) is not among them: it finds nobody.
    pub fn key_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.iter().filter(|k| k.kind != KeyKind::WeakName).map(|k| k.hash)
    }

    pub fn has_strong_identity(&self) -> bool {
        self.keys.iter().any(|k| matches!(k.kind, KeyKind::Phone | KeyKind::IdNumber))
    }

    /// Compact, versioned binary form (little endian): what the store keeps
    /// next to an open ticket: on the evaluation set 143 bytes on average,
    /// 298 at most (the sketch is at most 2 × [`SKETCH`] bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + 2 * self.sketch.len() + 9 * self.keys.len());
        b.push(FORMAT);
        b.push(kind_code(self.kind));
        b.push(self.channel.map_or(0, channel_code));
        b.extend_from_slice(&self.category.to_le_bytes());
        b.extend_from_slice(&self.families.to_le_bytes());
        b.extend_from_slice(&self.region.to_le_bytes()[..5]);
        b.push(level_code(self.level));
        b.extend_from_slice(&self.occurred.to_le_bytes());
        let p = &self.place;
        let flags = u8::from(self.geo.is_some())
            | u8::from(p.house.is_some()) << 1
            | u8::from(p.building.is_some()) << 2
            | u8::from(p.unit.is_some()) << 3
            | u8::from(p.group.is_some()) << 4
            | u8::from(p.crossing) << 5
            | u8::from(p.community.is_some()) << 6;
        b.push(flags);
        if let Some((lat, lng)) = self.geo {
            b.extend_from_slice(&lat.to_le_bytes());
            b.extend_from_slice(&lng.to_le_bytes());
        }
        if let Some(h) = p.house {
            b.extend_from_slice(&h.to_le_bytes());
        }
        if let Some(x) = p.building {
            b.extend_from_slice(&x.to_le_bytes());
        }
        if let Some(u) = p.unit {
            b.push(u);
        }
        if let Some(g) = p.group {
            b.push(g);
        }
        if let Some(c) = &p.community {
            put_str(&mut b, c);
        }
        b.push(p.streets.len().min(2) as u8);
        for s in p.streets.iter().take(2) {
            put_str(&mut b, s);
        }
        b.push(self.keys.len().min(255) as u8);
        for k in self.keys.iter().take(255) {
            b.push(k.kind as u8);
            b.extend_from_slice(&k.hash.to_le_bytes());
        }
        b.push(self.amounts.len().min(255) as u8);
        for a in self.amounts.iter().take(255) {
            b.extend_from_slice(&a.to_le_bytes());
        }
        b.push(self.surnames.len().min(255) as u8);
        for c in self.surnames.iter().take(255) {
            b.extend_from_slice(&(*c as u32).to_le_bytes());
        }
        match &self.town {
            Some(t) => put_str(&mut b, t),
            None => b.push(0),
        }
        b.extend_from_slice(&self.shingles.to_le_bytes());
        b.push(self.sketch.len().min(255) as u8);
        for h in self.sketch.iter().take(255) {
            b.extend_from_slice(&h.to_le_bytes());
        }
        b.push(self.quantities.len().min(255) as u8);
        for q in self.quantities.iter().take(255) {
            b.push(q.unit as u8 | u8::from(q.approx) << 7);
            b.extend_from_slice(&q.value.to_le_bytes());
        }
        b.extend_from_slice(&self.groups.to_le_bytes());
        b.push(self.organisations.len().min(255) as u8);
        for o in self.organisations.iter().take(255) {
            b.push(o.industry);
            put_str(&mut b, o.name.as_deref().unwrap_or(""));
        }
        b.push(self.months.len().min(255) as u8);
        for m in self.months.iter().take(255) {
            b.extend_from_slice(&m.to_le_bytes());
        }
        b
    }

    /// Reads [`Fingerprint::to_bytes`]; None for anything else (a truncated
    /// blob, another format version): the store then computes it again
    /// from the ticket.
    pub fn from_bytes(bytes: &[u8]) -> Option<Fingerprint> {
        let mut r = Reader { b: bytes, at: 0 };
        // Format 1 (before counts, groups, organisations and months) is
        // still read, with none of those: the rows stored before an upgrade
        // keep matching until they expire.
        let format = r.u8()?;
        if format != FORMAT && format != 1 {
            return None;
        }
        let kind = kind_from(r.u8()?)?;
        let channel = match r.u8()? {
            0 => None,
            c => Some(channel_from(c)?),
        };
        let category = r.u16()?;
        let families = r.u16()?;
        let mut region = [0u8; 8];
        region[..5].copy_from_slice(r.take(5)?);
        let region = u64::from_le_bytes(region);
        let level = level_from(r.u8()?)?;
        let occurred = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let flags = r.u8()?;
        let geo = if flags & 1 != 0 { Some((r.f32()?, r.f32()?)) } else { None };
        let house = if flags & 2 != 0 { Some(r.u16()?) } else { None };
        let building = if flags & 4 != 0 { Some(r.u16()?) } else { None };
        let unit = if flags & 8 != 0 { Some(r.u8()?) } else { None };
        let group = if flags & 16 != 0 { Some(r.u8()?) } else { None };
        let community = if flags & 64 != 0 { Some(r.str()?) } else { None };
        let mut streets = Vec::new();
        for _ in 0..r.u8()?.min(2) {
            streets.push(r.str()?);
        }
        let place = Place { streets, house, community, building, unit, group, crossing: flags & 32 != 0 };
        let mut keys = Vec::new();
        for _ in 0..r.u8()? {
            let kind = KeyKind::from_u8(r.u8()?)?;
            keys.push(Key { kind, hash: u64::from_le_bytes(r.take(8)?.try_into().ok()?) });
        }
        let mut amounts = Vec::new();
        for _ in 0..r.u8()? {
            amounts.push(u32::from_le_bytes(r.take(4)?.try_into().ok()?));
        }
        let mut surnames = Vec::new();
        for _ in 0..r.u8()? {
            surnames.push(char::from_u32(u32::from_le_bytes(r.take(4)?.try_into().ok()?))?);
        }
        let town = Some(r.str()?).filter(|t| !t.is_empty());
        let shingles = r.u16()?;
        let mut sketch = Vec::new();
        for _ in 0..r.u8()? {
            sketch.push(r.u16()?);
        }
        let (quantities, groups, organisations, months) = if format == 1 {
            (Vec::new(), place.group.map_or(0, |g| if g < 32 { 1u32 << g } else { 0 }), Vec::new(), Vec::new())
        } else {
            r.facts()?
        };
        if r.at != bytes.len() || !sketch.is_sorted() || sketch.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        Some(Fingerprint {
            kind,
            channel,
            category,
            families,
            region,
            level,
            occurred,
            geo,
            place,
            keys,
            amounts,
            surnames,
            town,
            shingles,
            sketch,
            quantities,
            groups,
            organisations,
            months,
        })
    }

    /// Lower-case hex of [`Fingerprint::to_bytes`], for a text column.
    pub fn to_hex(&self) -> String {
        // Written inside the transaction that stores the record: no
        // formatting machinery, no allocation per byte.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let bytes = self.to_bytes();
        let mut hex = String::with_capacity(2 * bytes.len());
        for b in bytes {
            hex.push(char::from(DIGITS[usize::from(b >> 4)]));
            hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        hex
    }

    pub fn from_hex(hex: &str) -> Option<Fingerprint> {
        if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
        Fingerprint::from_bytes(&bytes?)
    }
}

/// A case number as one key whatever the brackets and spaces: the mapping
/// makes brackets half-width, a caller quoting it in a text may not.
fn case_key(case: &str) -> String {
    case.chars().map(text::fold).filter(|c| !c.is_whitespace()).collect()
}

/// The month (`year * 12 + month - 1`) of a Unix time in China (UTC+8),
/// what a text's `去年12月` is read against.
fn local_month(unix: i64) -> u32 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp(unix.saturating_add(8 * 3600), 0)
        .map_or(0, |t| u32::try_from(t.year()).unwrap_or(0) * 12 + t.month0())
}

/// Quantities, villagers' groups, organisations and months, as stored.
type Facts = (Vec<Quantity>, u32, Vec<Organisation>, Vec<u32>);

fn put_str(b: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut n = bytes.len().min(255);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    b.push(n as u8);
    b.extend_from_slice(&bytes[..n]);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    /// The facts format 2 added: quantities, groups, organisations, months.
    fn facts(&mut self) -> Option<Facts> {
        let mut quantities = Vec::new();
        for _ in 0..self.u8()? {
            let u = self.u8()?;
            let unit = Unit::from_u8(u & 0x7F)?;
            quantities.push(Quantity { unit, value: self.u32()?, approx: u & 0x80 != 0 });
        }
        let groups = self.u32()?;
        let mut organisations = Vec::new();
        for _ in 0..self.u8()? {
            let industry = self.u8()?;
            let name = Some(self.str()?).filter(|n| !n.is_empty());
            organisations.push(Organisation { industry, name });
        }
        let mut months = Vec::new();
        for _ in 0..self.u8()? {
            months.push(self.u32()?);
        }
        Some((quantities, groups, organisations, months))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn f32(&mut self) -> Option<f32> {
        let v = f32::from_le_bytes(self.take(4)?.try_into().ok()?);
        v.is_finite().then_some(v)
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn kind_code(k: Kind) -> u8 {
    Kind::ALL.iter().position(|x| *x == k).map_or(0, |i| i as u8 + 1)
}
fn kind_from(b: u8) -> Option<Kind> {
    Kind::ALL.get(usize::from(b).checked_sub(1)?).copied()
}
fn channel_code(c: Channel) -> u8 {
    Channel::ALL.iter().position(|x| *x == c).map_or(0, |i| i as u8 + 1)
}
fn channel_from(b: u8) -> Option<Channel> {
    Channel::ALL.get(usize::from(b).checked_sub(1)?).copied()
}
fn level_code(l: RegionLevel) -> u8 {
    RegionLevel::ALL.iter().position(|x| *x == l).map_or(0, |i| i as u8)
}
fn level_from(b: u8) -> Option<RegionLevel> {
    RegionLevel::ALL.get(usize::from(b)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::testing::draft;

    #[test]
    fn a_hotline_record_becomes_a_small_fingerprint() {
        let d = draft(
            "help",
            "0101",
            "市民来电反映龙山区南康街道义宁街12号门前下水井井盖塌陷，路面出现深坑，请尽快处理。",
            "220402002000",
            Some("龙山区义宁街12号"),
            "2024-07-15T09:40:00+08:00",
        );
        let f = Fingerprint::of(&d);
        assert_eq!(f.place.streets, vec!["义宁街"]);
        assert_eq!(f.place.house, Some(12));
        assert_eq!(f.area(), 220402002);
        assert_eq!(f.families, family::MUNICIPAL);
        assert!(f.shingles > 5 && f.sketch.len() == f.shingles as usize);
        let bytes = f.to_bytes();
        assert!(bytes.len() < 400, "{} bytes", bytes.len());
        assert_eq!(Fingerprint::from_bytes(&bytes).as_ref(), Some(&f));
        assert_eq!(Fingerprint::from_hex(&f.to_hex()).as_ref(), Some(&f));
    }

    #[test]
    fn blobs_stored_before_the_facts_are_still_read() {
        let d = draft("help", "0101", "义宁街12号井盖塌陷", "220402", Some("义宁街12号"), "2024-07-15T09:40:00+08:00");
        let fp = Fingerprint::of(&d);
        assert!(fp.quantities.is_empty() && fp.organisations.is_empty() && fp.months.is_empty() && fp.groups == 0);
        // Format 1 was format 2 without its last part: no quantities (1 byte),
        // groups (4), organisations (1), months (1).
        let mut old = fp.to_bytes();
        old[0] = 1;
        old.truncate(old.len() - 7);
        assert_eq!(Fingerprint::from_bytes(&old), Some(fp));
    }

    #[test]
    fn broken_blobs_are_refused_not_panicked_on() {
        let d = draft("help", "0101", "井盖塌陷", "220402", None, "2024-07-15T09:40:00+08:00");
        let bytes = Fingerprint::of(&d).to_bytes();
        for n in 0..bytes.len() {
            assert!(Fingerprint::from_bytes(&bytes[..n]).is_none(), "{n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Fingerprint::from_bytes(&longer).is_none());
        let mut other = bytes;
        other[0] = 99;
        assert!(Fingerprint::from_bytes(&other).is_none());
        assert!(Fingerprint::from_hex("zz").is_none());
        assert!(Fingerprint::from_hex("é").is_none());
    }

    #[test]
    fn odd_input_never_panics_and_round_trips() {
        let long = "井".repeat(5000);
        let odd = [
            "",
            "，。、",
            "号号号楼楼",
            "99999999999999999999号楼 0号 70000单元",
            "（（（（",
            "😀🚧 井盖",
            "村",
            "社区",
            "路口交汇处",
            "与与与街",
            "一二三四五六七八九十百千万万万万万万万万万万万万万万元",
            "九千九百九十九万九千九百九十九万九千九百九十九万九千九百九十九万元",
            "万万万元",
            "(2024)",
            "(2024)吉0402民诉前调号",
            "w-12345678-1234 a-1-2",
            long.as_str(),
            "\u{0}\u{FFFF}\u{10FFFF}",
            "ｂａｄ　ｔｅｘｔ１２３",
            "龙山区南康街道辽源市西安区东丰县东辽县白泉镇乡镇街道",
        ];
        for text in odd {
            for address in [None, Some(text)] {
                let mut d = draft("help", "0101", text, "220402", address, "2024-07-15T09:40:00+08:00");
                d.region.name = text.to_string();
                let f = Fingerprint::of(&d);
                let bytes = f.to_bytes();
                assert_eq!(Fingerprint::from_bytes(&bytes).as_ref(), Some(&f), "{text}");
                let s = crate::dedup::score(&f, &f);
                assert!((0.0..=1.0).contains(&s.value));
            }
        }
    }

    #[test]
    fn identifiers_from_reporters_text_and_source() {
        let mut d = draft(
            "dispute",
            "0605",
            "楼上住户卫生间漏水致楼下天棚受损\n案号：(2024)吉0402民诉前调122号",
            "220402002",
            None,
            "2024-07-15T09:40:00+08:00",
        );
        d.court = Some(crate::ticket::CourtCase {
            case_no: "(2024)吉0402民诉前调122号".into(),
            status: "RECEIVED".into(),
            documents: vec![],
        });
        let f = Fingerprint::of(&d);
        // The case number from the text and from the case are one key.
        assert_eq!(f.keys.iter().filter(|k| k.kind == KeyKind::CaseNo).count(), 1);
        assert_eq!(f.channel, Some(Channel::CourtMediation));
        let t = draft("grid_event", "0101", "义宁街井盖塌陷", "220402002007", None, "2024-07-15T09:40:00+08:00");
        let g = Fingerprint::new(&t, SourceIds { channel: None, record_id: Some("W0412-20220712-0003") });
        assert_eq!(g.channel, Some(Channel::Terminal));
        assert!(g.keys.iter().any(|k| k.kind == KeyKind::EventId));
    }
}
