//! The canonical ticket: the one shape every agency's record becomes, and
//! the body the platform receives (contract: platform.md).
//!
//! Closed sets are enums, times carry their offset, phone numbers are E.164
//! and ID numbers are checked, so a ticket that exists is a ticket the
//! platform can take.

pub mod handling;
mod id_number;
mod phone;

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

pub use id_number::{IdNumber, InvalidIdNumber};
pub use phone::{InvalidPhone, Phone};

/// A time as the platform wants it: RFC 3339 with an offset.
pub type Timestamp = DateTime<FixedOffset>;

/// Beijing time, the offset of every agency time written without one.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+08:00 is a valid offset")
}

macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{}` is not one of {}",
                        other,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

closed_set!(
    /// What sort of matter it is.
    Kind { Consultation = "consultation", Help = "help", Complaint = "complaint", Report = "report",
           Suggestion = "suggestion", Dispute = "dispute", GridEvent = "grid_event" }
);
closed_set!(
    /// How far handling has come, as far as the hub knows.
    Status { New = "new", Dispatched = "dispatched", InProgress = "in_progress", Resolved = "resolved",
             Closed = "closed", Withdrawn = "withdrawn" }
);
closed_set!(
    /// The door a record came in through.
    Channel { Hotline = "hotline", Petition = "petition", CourtMediation = "court_mediation", Terminal = "terminal" }
);
closed_set!(
    /// The tier of an administrative division.
    RegionLevel { City = "city", County = "county", Township = "township", Village = "village" }
);
closed_set!(
    EvaluationResult { Satisfied = "satisfied", Unsatisfied = "unsatisfied" }
);

/// A platform category code: two levels, four ASCII digits (`0101`, `9999`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    pub const OTHER: &'static str = "9999";

    pub fn other() -> Self {
        Category(Self::OTHER.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Category(s))
        } else {
            Err(format!("category `{s}` is not a four-digit platform code"))
        }
    }
}

impl From<Category> for String {
    fn from(c: Category) -> String {
        c.0
    }
}

impl fmt::Debug for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Category({})", self.0)
    }
}

/// A 12-digit statistical division code; shorter codes (6 or 9 digits) are
/// padded with zeros, as the platform asks.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);

impl RegionCode {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if !matches!(s.len(), 6 | 9 | 12) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("region code `{s}` is not 6, 9 or 12 digits"));
        }
        Ok(RegionCode(format!("{s:0<12}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The most precise level the code names (trailing zero groups are padding).
    pub fn level(&self) -> RegionLevel {
        let c = &self.0;
        if &c[9..] != "000" {
            RegionLevel::Village
        } else if &c[6..9] != "000" {
            RegionLevel::Township
        } else if &c[4..6] != "00" {
            RegionLevel::County
        } else {
            RegionLevel::City
        }
    }
}

impl TryFrom<String> for RegionCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RegionCode::parse(&s)
    }
}

impl From<RegionCode> for String {
    fn from(c: RegionCode) -> String {
        c.0
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({})", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub code: RegionCode,
    pub level: RegionLevel,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    pub lat: f64,
    pub lng: f64,
}

impl Geo {
    pub fn new(lat: f64, lng: f64) -> Result<Self, String> {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) || !lat.is_finite() || !lng.is_finite() {
            return Err(format!("coordinates {lat},{lng} are outside the globe"));
        }
        Ok(Geo { lat, lng })
    }
}

/// Someone who reported the matter. Only what is valid is kept: an invalid
/// phone or ID number is left out (with a warning), the matter is not.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reporter {
    pub channel: Channel,
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub id_number: Option<IdNumber>,
    pub anonymous: bool,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("channel", &self.channel)
            .field("name", &self.name.as_deref().map(crate::pii::mask_name))
            .field("phone", &self.phone)
            .field("id_number", &self.id_number)
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

/// One channel record merged into the ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub channel: Channel,
    pub system: String,
    pub record_id: String,
    pub version: i64,
    pub received_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: String,
    pub url: String,
    pub sha256: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourtCase {
    pub case_no: String,
    pub status: String,
    #[serde(default)]
    pub documents: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub result: EvaluationResult,
    pub by: Option<String>,
    pub at: Timestamp,
}

/// What one source record says about a matter: everything of a ticket but
/// the hub's own bookkeeping (id, revision, the list of sources).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketDraft {
    pub kind: Kind,
    pub category: Category,
    pub title: Title,
    pub description: String,
    pub region: Region,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub geo: Option<Geo>,
    pub occurred_at: Timestamp,
    pub reported_at: Timestamp,
    #[serde(default)]
    pub due_at: Option<Timestamp>,
    #[serde(default)]
    pub urgent: bool,
    #[serde(default)]
    pub reporters: Vec<Reporter>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub court: Option<CourtCase>,
    pub status: Status,
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
}

impl TicketDraft {
    /// Reporters a ticket carries at most. A record may name more (a group
    /// petition with thousands of petitioners): the first ones are kept,
    /// with a warning, and the record as received keeps them all. Without a
    /// cap every merge compares each newcomer with everyone already there
    /// (45,000 petitioners in one 1 MiB record made a quadratic merge under
    /// the store's write lock), and the platform gets a body of megabytes.
    pub const MAX_REPORTERS: usize = 200;
    /// Attachments a ticket carries at most, for the same reasons.
    pub const MAX_ATTACHMENTS: usize = 100;

    /// Holds the draft to [`Self::MAX_REPORTERS`] and
    /// [`Self::MAX_ATTACHMENTS`]; says what it left out, for the record's
    /// warnings (counts only, no personal data).
    pub fn bound(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        let (reporters, attachments) = (self.reporters.len(), self.attachments.len());
        if reporters > Self::MAX_REPORTERS {
            self.reporters.truncate(Self::MAX_REPORTERS);
            warnings.push(format!(
                "reporters: {reporters} given, the first {} kept (the record as received keeps them all)",
                Self::MAX_REPORTERS
            ));
        }
        if attachments > Self::MAX_ATTACHMENTS {
            self.attachments.truncate(Self::MAX_ATTACHMENTS);
            warnings.push(format!(
                "attachments: {attachments} given, the first {} kept (the record as received keeps them all)",
                Self::MAX_ATTACHMENTS
            ));
        }
        warnings
    }
}

/// Adds `r` to `reporters` unless the person is there already or the list
/// is full ([`TicketDraft::MAX_REPORTERS`]).
fn add_reporter(reporters: &mut Vec<Reporter>, r: Reporter) {
    if reporters.len() < TicketDraft::MAX_REPORTERS && !reporters.iter().any(|have| same_person(have, &r)) {
        reporters.push(r);
    }
}

/// Adds `a` to `attachments` unless its URL is there already or the list
/// is full ([`TicketDraft::MAX_ATTACHMENTS`]).
fn add_attachment(attachments: &mut Vec<Attachment>, a: &Attachment) {
    if attachments.len() < TicketDraft::MAX_ATTACHMENTS && !attachments.iter().any(|have| have.url == a.url) {
        attachments.push(a.clone());
    }
}

/// The ticket as the platform receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub ticket_id: String,
    pub revision: i64,
    #[serde(flatten)]
    pub draft: TicketDraft,
    pub sources: Vec<Source>,
    pub duplicate_of: Option<String>,
}

impl Ticket {
    /// A new ticket from its first source record.
    pub fn create(ticket_id: String, mut draft: TicketDraft, source: Source) -> Self {
        draft.bound();
        Ticket { ticket_id, revision: 1, draft, sources: vec![source], duplicate_of: None }
    }

    /// A message of one of the ticket's own source records: what it says
    /// is applied as `change` says (see [`Change`]). Returns whether the
    /// ticket changed; when it did, the revision grew.
    ///
    /// Only the ticket's first source speaks for the whole ticket. A message
    /// of a record that joined later (a merged duplicate) adds its
    /// attachments, court case and evaluation, and leaves the rest; its
    /// first whole record after partial updates joins as a merge does.
    pub fn apply_update(&mut self, draft: TicketDraft, source: Source, change: Change<'_>) -> bool {
        let before = self.draft.clone();
        let first = self.sources.first().is_none_or(|s| s.system == source.system && s.record_id == source.record_id);
        match change {
            // The record joined with a partial update (its progress note
            // merged into another channel's ticket); its report now joins
            // the same way, its words below the ticket's own.
            Change::Fill(_) if !first => {
                self.merge_in(draft, source);
                return true;
            }
            _ if !first => {
                let older = matches!(change, Change::OlderPatch(_));
                let fields = if older {
                    vec![PatchField::Attachments]
                } else {
                    vec![PatchField::Attachments, PatchField::Evaluation]
                };
                Patch { fields }.apply(&mut self.draft, draft.clone());
                if draft.court.is_some() && !older {
                    self.draft.court = draft.court;
                }
            }
            Change::Whole => self.replace_own(draft, source.channel),
            Change::Fill(kept) => {
                self.replace_own(draft, source.channel);
                kept.apply(&mut self.draft, before.clone());
            }
            Change::Patch(patch) => patch.apply(&mut self.draft, draft),
            Change::OlderPatch(patch) => patch.additive().apply(&mut self.draft, draft),
        }
        if matches!(change, Change::OlderPatch(_)) && self.draft == before {
            return false;
        }
        match self.sources.iter_mut().find(|s| s.system == source.system && s.record_id == source.record_id) {
            Some(existing) => {
                let version = existing.version.max(source.version);
                *existing = Source { version, ..source };
            }
            None => self.sources.push(source),
        }
        self.revision += 1;
        true
    }

    /// The ticket's own source said it all again: its draft replaces the
    /// ticket's; the other channels' words and people stay.
    fn replace_own(&mut self, draft: TicketDraft, channel: Channel) {
        let merged = merged_section(&self.draft.description).map(str::to_string);
        let others: Vec<Reporter> = self.draft.reporters.iter().filter(|r| r.channel != channel).cloned().collect();
        self.draft = draft;
        self.draft.bound();
        if let Some(m) = merged {
            self.draft.description.push_str(&m);
        }
        for r in others {
            add_reporter(&mut self.draft.reporters, r);
        }
    }
}

/// How a message of a ticket's own source record changes the ticket. Whole
/// records and partial updates ([`Patch`]) of one source record are each in
/// their own order (`store/intake.rs` decides which applies), so that a
/// report overtaken by its progress note still fills the ticket, and an old
/// progress note does not take back the status a newer one set.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// A newer whole record: its content replaces what the source said.
    Whole,
    /// A whole record while partial updates newer than it have been applied
    /// (the report after its progress note): its content replaces what the
    /// source said, then what those updates set (`kept`, the union of their
    /// fields) is set again from the ticket as it was.
    Fill(&'a Patch),
    /// A partial update at least as new as any applied before.
    Patch(&'a Patch),
    /// A partial update older than one applied before: only what it adds
    /// (photos, a note, urgency) is taken, nothing it would replace.
    OlderPatch(&'a Patch),
}

/// Where the words of merged records begin in a description.
pub const MERGED_MARK: &str = "\n\n—— 其他渠道反映 ——";

fn merged_section(description: &str) -> Option<&str> {
    description.find(MERGED_MARK).map(|at| &description[at..])
}

/// A description without the merged records' section.
fn own_words(description: &str) -> &str {
    description.find(MERGED_MARK).map_or(description, |at| &description[..at])
}

fn same_person(a: &Reporter, b: &Reporter) -> bool {
    (a.phone.is_some() && a.phone == b.phone)
        || (a.id_number.is_some() && a.id_number == b.id_number)
        || (a.phone.is_none() && b.phone.is_none() && a.name.is_some() && a.name == b.name && a.channel == b.channel)
}

impl Ticket {
    /// A record of another channel about the same matter joins the ticket:
    /// its source is added and its words kept below the ticket's own (both
    /// voices, each with its channel and record), its reporters, photos and
    /// court case added, the earlier time and deadline kept. What the ticket
    /// already says is not overwritten.
    pub fn merge_in(&mut self, draft: TicketDraft, source: Source) {
        let d = &mut self.draft;
        let words = draft.description.trim();
        if !words.is_empty() && !d.description.contains(words) {
            if merged_section(&d.description).is_none() {
                d.description.push_str(MERGED_MARK);
            }
            d.description.push_str(&format!("\n【{} {}】{words}", source.channel.as_str(), source.record_id));
        }
        for r in draft.reporters {
            add_reporter(&mut d.reporters, r);
        }
        for a in &draft.attachments {
            add_attachment(&mut d.attachments, a);
        }
        if d.court.is_none() {
            d.court = draft.court;
        }
        if d.address.is_none() {
            d.address = draft.address;
        }
        if d.geo.is_none() {
            d.geo = draft.geo;
        }
        d.urgent |= draft.urgent;
        d.occurred_at = d.occurred_at.min(draft.occurred_at);
        d.due_at = match (d.due_at, draft.due_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if !self.sources.iter().any(|s| s.system == source.system && s.record_id == source.record_id) {
            self.sources.push(source);
        }
        self.revision += 1;
    }

    /// Takes back what [`merge_in`](Self::merge_in) added for one record:
    /// its source and its words (un-merge, or the move on a confirmation
    /// undone). The revision grows.
    pub fn remove_source(&mut self, system: &str, record_id: &str) {
        self.sources.retain(|s| !(s.system == system && s.record_id == record_id));
        if let Some(at) = self.draft.description.find(MERGED_MARK) {
            let (own, merged) = self.draft.description.split_at(at);
            let tag = format!(" {record_id}】");
            let kept: Vec<&str> =
                merged[MERGED_MARK.len()..].split('\n').filter(|l| !l.is_empty() && !l.contains(&tag)).collect();
            self.draft.description =
                if kept.is_empty() { own.to_string() } else { format!("{own}{MERGED_MARK}\n{}", kept.join("\n")) };
        }
        self.revision += 1;
    }
}

/// The fields a partial update brings (a terminal's progress note, a
/// worker's evaluation); the rest of the ticket stays as it was. Named in a
/// mapping's `[let] patch` as words: `status evaluation attachments
/// description due_at urgent title`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patch {
    fields: Vec<PatchField>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatchField {
    Status,
    Evaluation,
    /// Appended, each URL once.
    Attachments,
    /// Appended as a new paragraph, unless the ticket already says it.
    Description,
    DueAt,
    Urgent,
    Title,
}

impl PatchField {
    fn word(self) -> &'static str {
        match self {
            PatchField::Status => "status",
            PatchField::Evaluation => "evaluation",
            PatchField::Attachments => "attachments",
            PatchField::Description => "description",
            PatchField::DueAt => "due_at",
            PatchField::Urgent => "urgent",
            PatchField::Title => "title",
        }
    }
}

impl Patch {
    pub const FIELDS: &'static [&'static str] =
        &["status", "evaluation", "attachments", "description", "due_at", "urgent", "title"];

    /// Parses `status evaluation …` (spaces or commas between).
    pub fn parse(text: &str) -> Result<Patch, String> {
        let mut fields = Vec::new();
        for word in text.split([' ', ',']).filter(|w| !w.is_empty()) {
            let f = match word {
                "status" => PatchField::Status,
                "evaluation" => PatchField::Evaluation,
                "attachments" => PatchField::Attachments,
                "description" => PatchField::Description,
                "due_at" => PatchField::DueAt,
                "urgent" => PatchField::Urgent,
                "title" => PatchField::Title,
                other => {
                    return Err(format!("patch names `{other}`, which is not one of {}", Patch::FIELDS.join(", ")));
                }
            };
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
        if fields.is_empty() {
            return Err(format!("patch names no field (known: {})", Patch::FIELDS.join(", ")));
        }
        Ok(Patch { fields })
    }

    /// Whether it sets the evaluation (a worker's 笑脸/苦脸).
    pub fn sets_evaluation(&self) -> bool {
        self.fields.contains(&PatchField::Evaluation)
    }

    /// Every field of either.
    pub fn union(&self, other: &Patch) -> Patch {
        let mut fields = self.fields.clone();
        for f in &other.fields {
            if !fields.contains(f) {
                fields.push(*f);
            }
        }
        Patch { fields }
    }

    /// The fields it adds to rather than replaces.
    fn additive(&self) -> Patch {
        let fields = self
            .fields
            .iter()
            .copied()
            .filter(|f| matches!(f, PatchField::Attachments | PatchField::Description | PatchField::Urgent))
            .collect();
        Patch { fields }
    }

    /// The fields as words, the way [`Patch::parse`] reads them.
    pub fn words(&self) -> String {
        self.fields.iter().map(|f| f.word()).collect::<Vec<_>>().join(" ")
    }

    fn apply(&self, into: &mut TicketDraft, from: TicketDraft) {
        for field in &self.fields {
            match field {
                PatchField::Status => into.status = from.status,
                PatchField::Evaluation => {
                    if from.evaluation.is_some() {
                        into.evaluation = from.evaluation.clone();
                    }
                }
                PatchField::Attachments => {
                    for a in &from.attachments {
                        add_attachment(&mut into.attachments, a);
                    }
                }
                PatchField::Description => {
                    // The ticket's own words, before what merged records said.
                    let add = own_words(&from.description).trim();
                    let (own, merged) = into.description.split_at(own_words(&into.description).len());
                    if !add.is_empty() && !own.contains(add) {
                        into.description = format!("{}\n{add}{merged}", own.trim_end());
                    }
                }
                PatchField::DueAt => {
                    if from.due_at.is_some() {
                        into.due_at = from.due_at;
                    }
                }
                PatchField::Urgent => into.urgent |= from.urgent,
                PatchField::Title => into.title = from.title.clone(),
            }
        }
    }
}

/// A title of at most 80 characters; longer text is cut at a character
/// boundary with an ellipsis, never rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 80;

    pub fn new(text: &str) -> Self {
        let text = text.trim();
        if text.chars().count() <= Self::MAX_CHARS {
            return Title(text.to_string());
        }
        let mut cut: String = text.chars().take(Self::MAX_CHARS - 1).collect();
        cut.push('…');
        Title(cut)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Title {
    fn from(s: String) -> Self {
        Title::new(&s)
    }
}

impl From<Title> for String {
    fn from(t: Title) -> String {
        t.0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn a_patch_names_known_fields_only() {
        assert!(super::Patch::parse("status, evaluation attachments").is_ok());
        let e = super::Patch::parse("status reporters").unwrap_err();
        assert!(e.contains("`reporters`") && e.contains("status, evaluation"), "{e}");
        assert!(super::Patch::parse("  ").is_err());
    }

    use super::*;

    /// A draft for tests elsewhere in the crate.
    pub(crate) fn sample_draft() -> TicketDraft {
        draft("井盖缺失", Status::New)
    }

    fn draft(description: &str, status: Status) -> TicketDraft {
        let at = chrono::DateTime::parse_from_rfc3339("2024-07-15T09:20:00+08:00").unwrap();
        TicketDraft {
            kind: Kind::GridEvent,
            category: Category::other(),
            title: Title::new(description),
            description: description.into(),
            region: Region {
                code: RegionCode::parse("220402").unwrap(),
                level: RegionLevel::County,
                name: "龙山区".into(),
            },
            address: None,
            geo: None,
            occurred_at: at,
            reported_at: at,
            due_at: None,
            urgent: false,
            reporters: Vec::new(),
            attachments: Vec::new(),
            court: None,
            status,
            evaluation: None,
        }
    }

    #[test]
    fn a_late_whole_record_fills_in_under_what_the_patches_set() {
        let source = |version| Source {
            channel: Channel::Terminal,
            system: "terminal".into(),
            record_id: "W0412-20240715-0007".into(),
            version,
            received_at: draft("", Status::New).reported_at,
        };
        let progress = Patch::parse("status attachments description").unwrap();
        let mut t = Ticket::create("T".into(), draft("围挡已设", Status::InProgress), source(2));
        // Another channel's words joined it meanwhile.
        t.draft.description.push_str(&format!("{MERGED_MARK}\n【hotline LY1】井盖缺失"));
        let mut report = draft("井盖缺失", Status::New);
        report.category = Category::try_from("0101".to_string()).unwrap();
        assert!(t.apply_update(report, source(1), Change::Fill(&progress)));
        assert_eq!(t.draft.category.as_str(), "0101");
        assert_eq!(t.draft.title.as_str(), "井盖缺失");
        assert_eq!(t.draft.status, Status::InProgress);
        assert_eq!(t.draft.description, format!("井盖缺失\n围挡已设{MERGED_MARK}\n【hotline LY1】井盖缺失"));
        assert_eq!((t.revision, t.sources[0].version), (2, 2), "the source keeps its newest version");

        // An older note than the one applied adds its words under the ticket's own, not its status.
        assert!(t.apply_update(draft("已到场", Status::New), source(1), Change::OlderPatch(&progress)));
        assert_eq!(t.draft.status, Status::InProgress);
        assert!(t.draft.description.starts_with("井盖缺失\n围挡已设\n已到场\n\n——"), "{}", t.draft.description);
        // Once more: nothing new, no revision.
        assert!(!t.apply_update(draft("已到场", Status::New), source(1), Change::OlderPatch(&progress)));
        assert_eq!(t.revision, 3);
    }

    #[test]
    fn a_late_report_of_a_record_merged_by_its_progress_note_joins_as_a_merge_does() {
        let at = draft("", Status::New).reported_at;
        let hotline = Source {
            channel: Channel::Hotline,
            system: "hotline".into(),
            record_id: "LY1".into(),
            version: 1,
            received_at: at,
        };
        let terminal = |version| Source {
            channel: Channel::Terminal,
            system: "terminal".into(),
            record_id: "W0412-20240715-0007".into(),
            version,
            received_at: at,
        };
        let mut hotline_draft = draft("井盖缺失", Status::Dispatched);
        hotline_draft.category = Category::try_from("0101".to_string()).unwrap();
        let mut t = Ticket::create("T".into(), hotline_draft, hotline);
        t.merge_in(draft("围挡已设", Status::InProgress), terminal(2));
        let progress = Patch::parse("status attachments description").unwrap();
        assert!(t.apply_update(draft("义宁街井盖缺失，行人易跌落", Status::New), terminal(1), Change::Fill(&progress)));
        assert_eq!((t.draft.category.as_str(), t.draft.status), ("0101", Status::Dispatched), "the hotline's ticket");
        assert!(t.draft.description.contains("】义宁街井盖缺失，行人易跌落"), "{}", t.draft.description);
        assert_eq!((t.revision, t.sources.len()), (3, 2));
    }

    #[test]
    fn region_codes_are_padded_and_levelled() {
        let c = RegionCode::parse("220402").unwrap();
        assert_eq!(c.as_str(), "220402000000");
        assert_eq!(c.level(), RegionLevel::County);
        assert_eq!(RegionCode::parse("220402002").unwrap().level(), RegionLevel::Township);
        assert_eq!(RegionCode::parse("220402002007").unwrap().level(), RegionLevel::Village);
        assert_eq!(RegionCode::parse("220400").unwrap().level(), RegionLevel::City);
        assert!(RegionCode::parse("99999").is_err());
        assert!(RegionCode::parse("2204020020ab").is_err());
    }

    #[test]
    fn titles_are_cut_at_80_characters() {
        let long = "井".repeat(100);
        let t = Title::new(&long);
        assert_eq!(t.as_str().chars().count(), 80);
        assert!(t.as_str().ends_with('…'));
    }

    #[test]
    fn closed_sets_name_their_members_in_errors() {
        let err = "open".parse::<Status>().unwrap_err();
        assert!(err.contains("in_progress"), "{err}");
        assert_eq!(serde_json::to_string(&Kind::GridEvent).unwrap(), "\"grid_event\"");
    }

    fn draft_with(reporters: usize, attachments: usize) -> TicketDraft {
        let at: Timestamp = "2024-07-15T09:40:00+08:00".parse().unwrap();
        TicketDraft {
            kind: Kind::Complaint,
            category: Category::other(),
            title: Title::new("欠薪"),
            description: "集体反映欠薪".into(),
            region: Region {
                code: RegionCode::parse("220402").unwrap(),
                level: RegionLevel::County,
                name: "龙山区".into(),
            },
            address: None,
            geo: None,
            occurred_at: at,
            reported_at: at,
            due_at: None,
            urgent: false,
            reporters: (0..reporters)
                .map(|i| Reporter {
                    channel: Channel::Petition,
                    name: Some(format!("信访人{i}")),
                    phone: None,
                    id_number: None,
                    anonymous: false,
                })
                .collect(),
            attachments: (0..attachments)
                .map(|i| Attachment { kind: "photo".into(), url: format!("https://x.example/{i}.jpg"), sha256: None })
                .collect(),
            court: None,
            status: Status::New,
            evaluation: None,
        }
    }

    #[test]
    fn a_record_with_45000_petitioners_keeps_the_first_ones_and_merges_in_bounded_time() {
        let mut big = draft_with(45_000, 5_000);
        let warnings = big.bound();
        assert_eq!(
            (big.reporters.len(), big.attachments.len()),
            (TicketDraft::MAX_REPORTERS, TicketDraft::MAX_ATTACHMENTS)
        );
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("45000 given"), "{warnings:?}");
        assert!(!warnings.iter().any(|w| w.contains("信访人")), "no names in warnings");
        // Merging into a full ticket, and an unbounded draft (built by hand),
        // stays within the caps.
        let source = |id: &str| Source {
            channel: Channel::Petition,
            system: "petition".into(),
            record_id: id.into(),
            version: 1,
            received_at: big.occurred_at,
        };
        let mut ticket = Ticket::create("t".into(), big.clone(), source("a"));
        let started = std::time::Instant::now();
        let mut other = draft_with(45_000, 5_000);
        for r in &mut other.reporters {
            r.name = r.name.as_ref().map(|n| format!("{n}乙"));
        }
        ticket.merge_in(other.clone(), source("b"));
        ticket.apply_update(other, source("a"), Change::Whole);
        assert!(ticket.draft.reporters.len() <= TicketDraft::MAX_REPORTERS);
        assert!(ticket.draft.attachments.len() <= TicketDraft::MAX_ATTACHMENTS);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn categories_are_four_digits() {
        assert!(Category::try_from("0101".to_string()).is_ok());
        assert!(Category::try_from("101".to_string()).is_err());
    }
}
