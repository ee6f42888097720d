//! A mapping file once loaded: every path, pattern, template, table and
//! condition compiled, every name resolved to a slot. `eval` runs it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use regex::Regex;

use super::path::Path;
use super::table::{Holidays, Regions, Table};
use crate::ticket::{Channel, Region, Timestamp};

/// A value while a record is mapped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    Time(Timestamp),
    Region(Box<Region>),
}

impl Val {
    /// The value as text: what templates, patterns and lookups see.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Val::Str(s) => Cow::Borrowed(s),
            Val::Int(i) => Cow::Owned(i.to_string()),
            Val::Num(n) => Cow::Owned(n.to_string()),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Time(t) => Cow::Owned(t.to_rfc3339()),
            Val::Region(r) => Cow::Borrowed(r.code.as_str()),
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            _ => None,
        }
    }

    pub fn vtype(&self) -> VType {
        match self {
            Val::Str(_) => VType::Text,
            Val::Int(_) => VType::Int,
            Val::Num(_) => VType::Num,
            Val::Bool(_) => VType::Bool,
            Val::Time(_) => VType::Time,
            Val::Region(_) => VType::Region,
        }
    }
}

/// What an expression yields, as far as the loader can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum VType {
    /// Built on something that did not load (already reported).
    Unknown,
    Any,
    Text,
    Int,
    Num,
    Bool,
    Time,
    Region,
}

impl VType {
    pub fn describe(self) -> &'static str {
        match self {
            VType::Unknown | VType::Any => "a value",
            VType::Text => "text",
            VType::Int => "an integer",
            VType::Num => "a number",
            VType::Bool => "a boolean",
            VType::Time => "a time",
            VType::Region => "a region",
        }
    }
}

/// What a value becomes in the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// A `[let]` value or a check: anything goes.
    Any,
    Text,
    Int,
    Float,
    Bool,
    Time,
    Region,
    Kind,
    Status,
    Category,
    Phone,
    IdNumber,
    EvalResult,
    Channel,
    /// A value of a court document (any JSON scalar).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    Reject,
    Warn,
}

#[derive(Debug)]
pub(crate) struct Expr {
    /// Where the expression is written in the mapping file.
    pub span: Range<usize>,
    pub when: Option<Cond>,
    pub source: Source,
    pub trim: bool,
    /// `(from, to)`, longest `from` first.
    pub replace: Vec<(String, String)>,
    pub pattern: Option<(Regex, usize)>,
    pub one_of: Option<Vec<String>>,
    pub lookup: Option<Lookup>,
    pub convert: Option<Convert>,
    pub shift: Option<Shift>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_chars: Option<usize>,
    pub default: Option<Val>,
    pub default_span: Range<usize>,
    pub required: bool,
    pub on_error: OnError,
    /// Never quote the value in a message (names, phones, ID numbers).
    pub sensitive: bool,
    /// For checks: the message when the check fails.
    pub message: Option<String>,
    pub out: VType,
    /// An alternative after the first of a list, with a lookup or
    /// `classify`: its counter in [`Compiled::fallbacks`], counted when it
    /// gives the value after an earlier alternative did not know the code.
    pub fallback: Option<usize>,
}

#[derive(Debug)]
pub(crate) enum Source {
    Path(Path),
    Meta(String),
    Record(RecordAttr),
    From(usize),
    Value(Val),
    Template(Template),
    Concat {
        parts: Vec<Expr>,
        sep: String,
    },
    Test(Cond),
    /// An array of expressions: the first that applies and gives a value.
    First(Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordAttr {
    ReceivedAt,
    RecordId,
    Version,
    System,
}

#[derive(Debug)]
pub(crate) struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug)]
pub(crate) enum TemplatePart {
    Lit(String),
    Ref(Operand),
}

#[derive(Debug)]
pub(crate) struct Lookup {
    pub what: LookupKind,
    /// Index into the mapper's unknown-code counters.
    pub counter: usize,
}

#[derive(Debug)]
pub(crate) enum LookupKind {
    Table {
        table: usize,
        column: usize,
    },
    Map(HashMap<String, Val>),
    /// `classify`: the longest of the table's keys found in the text
    /// (`(key, row)`, longest first; of equal length, in the table's order).
    Words {
        table: usize,
        column: usize,
        words: Vec<(String, usize)>,
    },
}

#[derive(Debug)]
pub(crate) enum Convert {
    /// A chrono format; `None` for RFC 3339. `offset` says the format has its own `%z`.
    DateTime {
        format: Option<String>,
        tz: chrono::FixedOffset,
        offset: bool,
    },
    Date {
        format: String,
        tz: chrono::FixedOffset,
        time: chrono::NaiveTime,
    },
    Epoch {
        millis: bool,
        tz: chrono::FixedOffset,
    },
    Region {
        regions: usize,
        counter: usize,
    },
}

#[derive(Debug)]
pub(crate) enum Shift {
    WorkingDays { by: Box<Expr>, holidays: Option<usize> },
    Days(Box<Expr>),
    Hours(Box<Expr>),
}

#[derive(Debug)]
pub(crate) enum Cond {
    Truthy(Operand),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Cmp(Operand, CmpOp, Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug)]
pub(crate) enum Operand {
    Path(Path),
    Meta(String),
    Name(usize),
    Lit(Val),
}

/// A named value: the record's identity, a `[let]` value or a ticket field.
#[derive(Debug)]
pub(crate) struct Slot {
    pub name: String,
    pub expr: Expr,
    pub sink: Sink,
    /// Whether the ticket cannot be made without it.
    pub required: bool,
    /// Errors are reported in this order.
    pub ordinal: usize,
}

#[derive(Debug)]
pub(crate) struct Check {
    pub name: String,
    pub expr: Expr,
    pub ordinal: usize,
}

/// `[[reporters]]`, `[[attachments]]`, `[[court.documents]]`: a block of
/// fields, once or per item of `for_each`.
#[derive(Debug)]
pub(crate) struct Block {
    pub when: Option<Cond>,
    pub for_each: Option<Path>,
    pub fields: Vec<(String, Expr, Sink)>,
    pub ordinal: usize,
}

impl Block {
    pub fn field(&self, name: &str) -> Option<(&Expr, Sink)> {
        self.fields.iter().find(|(n, _, _)| n == name).map(|(_, e, s)| (e, *s))
    }
}

#[derive(Debug)]
pub(crate) struct CourtSpec {
    pub block: Block,
    pub documents: Vec<Block>,
}

/// How unknown codes are counted: per lookup (field and table).
#[derive(Debug)]
pub(crate) struct Counter {
    pub field: String,
    pub table: String,
    pub count: AtomicU64,
    pub examples: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Xml,
}

#[derive(Debug)]
pub(crate) struct Compiled {
    pub origin: String,
    pub name: String,
    pub channel: Channel,
    pub format: Format,
    pub root: Option<String>,
    pub max_bytes: usize,
    pub encoding: Option<String>,
    pub tables: Vec<Table>,
    pub regions: Vec<Regions>,
    pub holidays: Vec<Holidays>,
    pub slots: Vec<Slot>,
    /// Slots in an order where every slot comes after what it uses.
    pub order: Vec<usize>,
    pub checks: Vec<Check>,
    pub geo: Option<Block>,
    pub reporters: Vec<Block>,
    pub attachments: Vec<Block>,
    pub court: Option<CourtSpec>,
    pub evaluation: Option<Block>,
    pub counters: Vec<Counter>,
    /// Values taken from a later alternative (a lookup or `classify`) after
    /// an earlier one did not know the code: per field and table.
    pub fallbacks: Vec<Counter>,
    /// Deadlines counted into a year the holiday table does not cover
    /// (`hub_deadlines_past_holidays_total`).
    pub past_holidays: std::sync::atomic::AtomicU64,
    /// Slot numbers of the fixed names.
    pub fixed: FixedSlots,
    /// `[dedup]`.
    pub dedup: crate::mapping::DedupOverride,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FixedSlots {
    pub record_id: usize,
    pub version: usize,
    /// `[identity] message_id`, when the source names one.
    pub message_id: Option<usize>,
    pub kind: usize,
    pub category: usize,
    pub title: usize,
    pub description: usize,
    pub region: usize,
    pub address: Option<usize>,
    pub occurred_at: usize,
    pub reported_at: usize,
    pub due_at: Option<usize>,
    pub urgent: Option<usize>,
    pub status: usize,
}
