//! Running a compiled mapping over one parsed record.
//!
//! Every slot is computed once, in dependency order; every error is
//! collected (not only the first), so a quarantined record's reason lists
//! all that is wrong with it. A field that failed makes the fields built
//! from it fail silently, so one mistake is reported once.

use std::sync::atomic::Ordering;

use chrono::Duration;
use connectors::RawRecord;

use super::doc::{Doc, short};
use super::path::Node;
use super::spec::{
    Block, CmpOp, Compiled, Cond, Convert, Expr, LookupKind, OnError, Operand, RecordAttr, Shift, Sink, Source,
    TemplatePart, Val,
};
use super::transform;
use crate::ticket::{
    Attachment, Category, Channel, CourtCase, Evaluation, EvaluationResult, Geo, IdNumber, Kind, Phone, Reporter,
    Status, Timestamp, beijing,
};

/// At most this many distinct unknown codes are remembered per lookup.
const MAX_EXAMPLES: usize = 50;

/// Counts one example of a counter, keeping at most [`MAX_EXAMPLES`] distinct ones.
fn note_example(examples: &std::sync::Mutex<std::collections::BTreeMap<String, u64>>, example: String) {
    let mut examples = examples.lock().unwrap_or_else(|p| p.into_inner());
    let len = examples.len();
    match examples.get_mut(&example) {
        Some(n) => *n += 1,
        None if len < MAX_EXAMPLES => {
            examples.insert(example, 1);
        }
        None => {}
    }
}
/// At most this many errors are listed in a reason.
const MAX_ERRORS: usize = 8;

#[derive(Debug, Clone)]
pub(crate) enum SlotState {
    Absent,
    Val(Val),
    Failed,
}

/// Why an expression gave no value: a message, or a field it uses failed
/// (already reported).
#[derive(Debug)]
pub(crate) enum Fail {
    Msg(String),
    Silent,
}

type R = Result<Option<Val>, Fail>;

pub(crate) struct Run<'a> {
    m: &'a Compiled,
    doc: &'a Doc,
    record: &'a RawRecord,
    slots: Vec<SlotState>,
    errors: Vec<(usize, String)>,
    pub warnings: Vec<String>,
    /// What the last lookup or `classify` that knew its code found: the
    /// key, or the word (for the warning of a fallback).
    last_hit: Option<Hit>,
}

/// What a lookup or `classify` found.
#[derive(Debug, Clone)]
struct Hit {
    table: usize,
    /// The word a `classify` found; None for a lookup.
    word: Option<String>,
}

/// What came out of a run.
pub(crate) struct Outcome {
    pub record_id: Option<String>,
    pub version: Option<i64>,
    /// `[identity] message_id`, when the mapping names one.
    pub message_id: Option<String>,
    pub result: Result<(crate::ticket::TicketDraft, Vec<String>), String>,
    /// `[let] patch`, when the record is a partial update.
    pub patch: Option<String>,
}

impl<'a> Run<'a> {
    pub fn new(m: &'a Compiled, doc: &'a Doc, record: &'a RawRecord) -> Self {
        Run {
            m,
            doc,
            record,
            slots: vec![SlotState::Absent; m.slots.len()],
            errors: Vec::new(),
            warnings: Vec::new(),
            last_hit: None,
        }
    }

    pub fn run(mut self) -> Outcome {
        for &i in &self.m.order {
            self.slots[i] = self.eval_slot(i);
        }
        for check in &self.m.checks {
            self.eval_check(check);
        }
        let record_id = match &self.slots[self.m.fixed.record_id] {
            SlotState::Val(v) => Some(v.text().into_owned()),
            _ => None,
        };
        let version = match &self.slots[self.m.fixed.version] {
            SlotState::Val(Val::Int(v)) => Some(*v),
            _ => None,
        };
        let message_id = self.m.fixed.message_id.and_then(|i| match &self.slots[i] {
            SlotState::Val(v) => Some(v.text().into_owned()),
            _ => None,
        });
        if let Some(v) = version
            && v < 1
        {
            self.errors.push((1, format!("version must be 1 or more, got {v}")));
        }
        let patch = self.m.slots.iter().position(|s| s.name == "patch").and_then(|i| match &self.slots[i] {
            SlotState::Val(v) => Some(v.text().into_owned()).filter(|t| !t.trim().is_empty()),
            _ => None,
        });
        let draft = self.assemble();
        let result = match draft {
            Some(d) if self.errors.is_empty() => Ok((d, std::mem::take(&mut self.warnings))),
            _ => Err(self.reason()),
        };
        Outcome { record_id, version, message_id, result, patch }
    }

    fn reason(&mut self) -> String {
        self.errors.sort_by_key(|(ordinal, _)| *ordinal);
        let total = self.errors.len();
        if total == 0 {
            return "the record could not be mapped".into();
        }
        let mut out: Vec<&str> = self.errors.iter().take(MAX_ERRORS).map(|(_, e)| e.as_str()).collect();
        let more;
        if total > MAX_ERRORS {
            more = format!("and {} more", total - MAX_ERRORS);
            out.push(&more);
        }
        out.join("; ")
    }

    fn eval_slot(&mut self, i: usize) -> SlotState {
        let m = self.m;
        let slot = &m.slots[i];
        let label = slot.name.as_str();
        match self.eval(&slot.expr, None, label) {
            Ok(Some(v)) => match convert_sink(slot.sink, v) {
                Ok(v) => SlotState::Val(v),
                Err(msg) => self.failed(&slot.expr, slot.ordinal, label, msg),
            },
            Ok(None) if slot.required => {
                self.errors.push((slot.ordinal, format!("{label}: {}", missing(&slot.expr, m))));
                SlotState::Failed
            }
            Ok(None) => SlotState::Absent,
            Err(Fail::Silent) => SlotState::Failed,
            Err(Fail::Msg(msg)) => self.failed(&slot.expr, slot.ordinal, label, msg),
        }
    }

    fn failed(&mut self, e: &Expr, ordinal: usize, label: &str, msg: String) -> SlotState {
        match e.on_error {
            OnError::Warn => {
                self.warnings.push(format!("{label} left out: {msg}"));
                SlotState::Absent
            }
            OnError::Reject => {
                self.errors.push((ordinal, format!("{label}: {msg}")));
                SlotState::Failed
            }
        }
    }

    fn eval_check(&mut self, check: &super::spec::Check) {
        let label = format!("checks.{}", check.name);
        let failure = match self.eval(&check.expr, None, &label) {
            Ok(Some(Val::Bool(false))) => Some(format!("{label}: the test does not hold")),
            Ok(_) | Err(Fail::Silent) => None,
            Err(Fail::Msg(msg)) => Some(format!("{label}: {msg}")),
        };
        if let Some(f) = failure {
            let text = check.expr.message.clone().unwrap_or(f);
            match check.expr.on_error {
                OnError::Warn => self.warnings.push(text),
                OnError::Reject => self.errors.push((check.ordinal, text)),
            }
        }
    }

    /// Evaluates one expression at the current item.
    pub fn eval(&mut self, e: &Expr, cur: Option<Node<'a>>, label: &str) -> R {
        if let Some(w) = &e.when
            && !self.cond(w, cur)?
        {
            return Ok(None);
        }
        let v = match &e.source {
            Source::Path(p) => match p.first(self.doc, cur) {
                None => None,
                Some(node) => {
                    node_value(node).map_err(|kind| Fail::Msg(format!("`{}` is {kind}, not a single value", p.text)))?
                }
            },
            Source::Meta(k) => self.record.meta(k).map(|v| Val::Str(v.to_string())),
            Source::Record(a) => match a {
                RecordAttr::ReceivedAt => Some(Val::Time(self.record.received_at.with_timezone(&beijing()))),
                RecordAttr::RecordId => self.record.record_id.clone().map(Val::Str),
                RecordAttr::Version => self.record.version.map(Val::Int),
                RecordAttr::System => Some(Val::Str(self.record.system.clone())),
            },
            Source::From(slot) => match &self.slots[*slot] {
                SlotState::Val(v) => Some(v.clone()),
                SlotState::Absent => None,
                SlotState::Failed => return Err(Fail::Silent),
            },
            Source::Value(v) => Some(v.clone()),
            Source::Template(t) => {
                let mut out = String::new();
                for part in &t.parts {
                    match part {
                        TemplatePart::Lit(s) => out.push_str(s),
                        TemplatePart::Ref(op) => {
                            if let Some(v) = self.operand_value(op, cur)? {
                                out.push_str(&v.text());
                            }
                        }
                    }
                }
                Some(Val::Str(out))
            }
            Source::Concat { parts, sep } => {
                let mut out: Option<String> = None;
                for part in parts {
                    if let Some(v) = self.eval(part, cur, label)? {
                        let text = v.text();
                        if text.trim().is_empty() {
                            continue;
                        }
                        match &mut out {
                            Some(o) => {
                                o.push_str(sep);
                                o.push_str(&text);
                            }
                            None => out = Some(text.into_owned()),
                        }
                    }
                }
                out.map(Val::Str)
            }
            Source::Test(c) => Some(Val::Bool(self.cond(c, cur)?)),
            Source::First(alts) => {
                let mut found = None;
                // Whether an earlier alternative failed (an unknown code):
                // a later lookup that gives the value is then a fallback.
                let mut missed = false;
                for alt in alts {
                    self.last_hit = None;
                    match self.eval(alt, cur, label) {
                        Ok(Some(v)) => {
                            if missed {
                                self.fell_back(alt, &v, label);
                            }
                            found = Some(v);
                            break;
                        }
                        Ok(None) => {}
                        Err(Fail::Msg(msg)) if alt.on_error == OnError::Warn => {
                            self.warnings.push(format!("{label} (one alternative) left out: {msg}"));
                            missed = true;
                        }
                        Err(f) => return Err(f),
                    }
                }
                found
            }
        };
        let Some(mut v) = v else { return self.absent(e) };

        if let Val::Str(s) = &v {
            let t = if e.trim { s.trim() } else { s.as_str() };
            if t.is_empty() {
                return self.absent(e);
            }
            if t.len() != s.len() {
                v = Val::Str(t.to_string());
            }
        }
        if !e.replace.is_empty() {
            v = Val::Str(transform::replace_all(&v.text(), &e.replace));
        }
        if let Some((re, group)) = &e.pattern {
            let text = v.text();
            let Some(caps) = re.captures(&text) else {
                return Err(Fail::Msg(format!(
                    "{} does not match the pattern `{}`",
                    subject(e, &text, self.m),
                    re.as_str()
                )));
            };
            if *group > 0 {
                match caps.get(*group) {
                    Some(g) if !g.as_str().is_empty() => v = Val::Str(g.as_str().to_string()),
                    _ => return self.absent(e),
                }
            }
        }
        if let Some(set) = &e.one_of {
            let text = v.text();
            if !set.iter().any(|s| s == &*text) {
                return Err(Fail::Msg(format!("{} is not one of {}", subject(e, &text, self.m), set.join(", "))));
            }
        }
        if let Some(lookup) = &e.lookup {
            let key = v.text().into_owned();
            let found = match &lookup.what {
                LookupKind::Table { table, column } => {
                    let t = &self.m.tables[*table];
                    t.find(&key)
                        .map(|row| t.cell(row, *column).to_string())
                        .map(|s| (!s.is_empty()).then(|| (Val::Str(s), String::new())))
                }
                LookupKind::Map(map) => map.get(&key).map(|v| Some((v.clone(), String::new()))),
                LookupKind::Words { table, column, words } => {
                    let t = &self.m.tables[*table];
                    transform::find_word(&key, words).map(|(word, row)| {
                        let s = t.cell(row, *column).to_string();
                        (!s.is_empty()).then(|| (Val::Str(s), word.to_string()))
                    })
                }
            };
            let found = match (found, &lookup.what) {
                (Some(Some((hit, word))), LookupKind::Words { table, .. }) => {
                    self.last_hit = Some(Hit { table: *table, word: Some(word) });
                    Some(Some(hit))
                }
                (Some(Some((hit, _))), LookupKind::Table { table, .. }) => {
                    self.last_hit = Some(Hit { table: *table, word: None });
                    Some(Some(hit))
                }
                (found, _) => found.map(|f| f.map(|(hit, _)| hit)),
            };
            match found {
                Some(Some(hit)) => v = hit,
                Some(None) => return self.absent(e),
                None => {
                    let what = match &lookup.what {
                        LookupKind::Table { table, .. } => format!("is not in table `{}`", self.m.tables[*table].name),
                        LookupKind::Words { table, .. } => {
                            format!("has none of the words of table `{}`", self.m.tables[*table].name)
                        }
                        LookupKind::Map(map) => {
                            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                            keys.sort_unstable();
                            format!("is not one of {}", keys.join(", "))
                        }
                    };
                    return self.unknown(e, lookup.counter, &key, what, label);
                }
            }
        }
        if let Some(conv) = &e.convert {
            let text = v.text().into_owned();
            v = match conv {
                Convert::DateTime { format, tz, offset } => {
                    let t = transform::parse_datetime(&text, format.as_deref(), *tz, *offset)
                        .map_err(|why| Fail::Msg(format!("{} {why}", subject(e, &text, self.m))))?;
                    Val::Time(t)
                }
                Convert::Date { format, tz, time } => {
                    let t = transform::parse_date(&text, format, *tz, *time)
                        .map_err(|why| Fail::Msg(format!("{} {why}", subject(e, &text, self.m))))?;
                    Val::Time(t)
                }
                Convert::Epoch { millis, tz } => {
                    let t = transform::from_epoch(&v, *millis, *tz)
                        .map_err(|why| Fail::Msg(format!("{} {why}", subject(e, &text, self.m))))?;
                    Val::Time(t)
                }
                Convert::Region { regions, counter } => {
                    let r = &self.m.regions[*regions];
                    match r.resolve(&text) {
                        Some(region) => Val::Region(Box::new(region)),
                        None => {
                            let what = format!("is not a division in table `{}`", r.table);
                            return self.unknown(e, *counter, &text, what, label);
                        }
                    }
                }
            };
        }
        if let Some(shift) = &e.shift {
            let Val::Time(t) = v else {
                return Err(Fail::Msg(format!(
                    "{} is not a time, so no deadline can be counted from it",
                    describe(e, self.m)
                )));
            };
            let (by, max) = match shift {
                Shift::WorkingDays { by, .. } => (by, 3650),
                Shift::Days(by) => (by, 3650),
                Shift::Hours(by) => (by, 87_600),
            };
            let Some(n) = self.eval(by, cur, label)? else { return Ok(None) };
            let n = transform::count(&n, max)
                .map_err(|why| Fail::Msg(format!("{} {why}", subject(by, &n.text(), self.m))))?;
            let shifted = match shift {
                Shift::WorkingDays { holidays, .. } => {
                    let table = holidays.map(|h| &self.m.holidays[h]);
                    transform::add_working_days(t, n, table).map(|d| {
                        if let (Some(year), Some(table)) = (d.uncovered, table) {
                            self.m.past_holidays.fetch_add(1, Ordering::Relaxed);
                            self.warnings.push(format!(
                                "{label}: the deadline runs into {year}, which the holiday table `{}` does not cover ({}); counted Monday–Friday",
                                table.name,
                                table.years_text()
                            ));
                        }
                        d.at
                    })
                }
                Shift::Days(_) => transform::add_duration(t, Duration::days(n)),
                Shift::Hours(_) => transform::add_duration(t, Duration::hours(n)),
            };
            v = Val::Time(shifted.ok_or_else(|| Fail::Msg("the deadline is out of range".into()))?);
        }
        if e.min.is_some() || e.max.is_some() {
            let text = v.text();
            let Some(n) = v.number() else {
                return Err(Fail::Msg(format!("{} is not a number", subject(e, &text, self.m))));
            };
            if let Some(min) = e.min
                && n < min
            {
                return Err(Fail::Msg(format!("{} is less than {min}", subject(e, &text, self.m))));
            }
            if let Some(max) = e.max
                && n > max
            {
                return Err(Fail::Msg(format!("{} is more than {max}", subject(e, &text, self.m))));
            }
        }
        if let Some(n) = e.max_chars {
            v = Val::Str(transform::truncate_chars(&v.text(), n));
        }
        Ok(Some(v))
    }

    fn absent(&self, e: &Expr) -> R {
        if let Some(d) = &e.default {
            return Ok(Some(d.clone()));
        }
        if e.required {
            return Err(Fail::Msg(missing(e, self.m)));
        }
        Ok(None)
    }

    /// A code the table or map does not know: the default (counted, with a
    /// warning) or, for a closed set without default, an error.
    fn unknown(&mut self, e: &Expr, counter: usize, key: &str, what: String, label: &str) -> R {
        self.last_hit = None;
        let c = &self.m.counters[counter];
        c.count.fetch_add(1, Ordering::Relaxed);
        // A sensitive value (a description, a name) is not an example.
        if !e.sensitive {
            note_example(&c.examples, crate::pii::scrub(&short(key)));
        }
        match &e.default {
            Some(d) => {
                self.warnings.push(format!(
                    "{label}: {} {what}; the default `{}` was used",
                    subject(e, key, self.m),
                    d.text()
                ));
                Ok(Some(d.clone()))
            }
            None => Err(Fail::Msg(format!("{} {what}", subject(e, key, self.m)))),
        }
    }

    /// A later alternative gave the value after an earlier one failed (did
    /// not know the code): counted per field and table (or value), with a
    /// warning that says how.
    fn fell_back(&mut self, alt: &Expr, v: &Val, label: &str) {
        let Some(counter) = alt.fallback else { return };
        let c = &self.m.fallbacks[counter];
        c.count.fetch_add(1, Ordering::Relaxed);
        let hit = self.last_hit.take();
        // A value from a table is the table's; one taken from a sensitive
        // input (a description, a name) is never quoted.
        let quotable = hit.is_some() || !alt.sensitive;
        let how = match &hit {
            Some(Hit { table, word: Some(word) }) => {
                format!("mapped by the word `{word}` of table `{}` instead", self.m.tables[*table].name)
            }
            Some(Hit { table, word: None }) => format!("mapped by table `{}` instead", self.m.tables[*table].name),
            None => "none of the alternatives before gave a value; the next one gave".to_string(),
        };
        let example = match hit {
            Some(Hit { word: Some(word), .. }) => Some(word),
            _ if !alt.sensitive => Some(v.text().into_owned()),
            _ => None,
        };
        if let Some(example) = example {
            note_example(&c.examples, example);
        }
        if !quotable {
            self.warnings.push(format!("{label}: {how} (a value not quoted: it may hold personal data)"));
        } else {
            self.warnings.push(format!("{label}: {how}: `{}`", v.text()));
        }
    }

    fn operand_value(&self, op: &Operand, cur: Option<Node<'a>>) -> Result<Option<Val>, Fail> {
        Ok(match op {
            Operand::Path(p) => match p.first(self.doc, cur) {
                None => None,
                Some(node) => node_value(node).ok().flatten(),
            },
            Operand::Meta(k) => self.record.meta(k).map(|v| Val::Str(v.to_string())),
            Operand::Name(slot) => match &self.slots[*slot] {
                SlotState::Val(v) => Some(v.clone()),
                SlotState::Absent => None,
                SlotState::Failed => return Err(Fail::Silent),
            },
            Operand::Lit(v) => Some(v.clone()),
        })
    }

    fn truthy(&self, op: &Operand, cur: Option<Node<'a>>) -> Result<bool, Fail> {
        if let Operand::Path(p) = op {
            return Ok(match p.first(self.doc, cur) {
                None => false,
                Some(Node::Json(serde_json::Value::Object(o))) => !o.is_empty(),
                Some(Node::Json(serde_json::Value::Array(a))) => !a.is_empty(),
                Some(Node::Xml(el)) if !el.children.is_empty() || !el.attrs.is_empty() => true,
                Some(node) => node_value(node).ok().flatten().is_some_and(|v| val_truthy(&v)),
            });
        }
        Ok(self.operand_value(op, cur)?.is_some_and(|v| val_truthy(&v)))
    }

    pub fn cond(&self, c: &Cond, cur: Option<Node<'a>>) -> Result<bool, Fail> {
        Ok(match c {
            Cond::Truthy(op) => self.truthy(op, cur)?,
            Cond::Not(c) => !self.cond(c, cur)?,
            Cond::And(a, b) => self.cond(a, cur)? && self.cond(b, cur)?,
            Cond::Or(a, b) => self.cond(a, cur)? || self.cond(b, cur)?,
            Cond::Cmp(a, op, b) => {
                let a = self.operand_value(a, cur)?;
                let b = self.operand_value(b, cur)?;
                compare(a.as_ref(), *op, b.as_ref())
            }
        })
    }

    fn items(&self, b: &Block) -> Result<Vec<Option<Node<'a>>>, Fail> {
        if let Some(w) = &b.when
            && !self.cond(w, None)?
        {
            return Ok(Vec::new());
        }
        Ok(match &b.for_each {
            None => vec![None],
            Some(p) => {
                let mut out = Vec::new();
                p.select(self.doc, None, &mut out);
                out.into_iter().map(Some).collect()
            }
        })
    }

    /// One field of a block item; errors go to the record's errors or warnings.
    fn block_field(&mut self, b: &Block, name: &str, cur: Option<Node<'a>>, label: &str) -> Result<Option<Val>, ()> {
        let Some((e, sink)) = b.field(name) else { return Ok(None) };
        let label = format!("{label}.{name}");
        let r = match self.eval(e, cur, &label) {
            Ok(Some(v)) => convert_sink(sink, v).map(Some).map_err(Fail::Msg),
            other => other,
        };
        match r {
            Ok(v) => Ok(v),
            Err(Fail::Silent) => Err(()),
            Err(Fail::Msg(msg)) => {
                self.failed(e, b.ordinal, &label, msg);
                if e.on_error == OnError::Warn { Ok(None) } else { Err(()) }
            }
        }
    }

    fn block_items(&mut self, b: &Block) -> Vec<Option<Node<'a>>> {
        match self.items(b) {
            Ok(items) => items,
            Err(Fail::Msg(m)) => {
                self.errors.push((b.ordinal, m));
                Vec::new()
            }
            Err(Fail::Silent) => Vec::new(),
        }
    }

    fn assemble(&mut self) -> Option<crate::ticket::TicketDraft> {
        let m = self.m;
        let f = m.fixed;

        let mut reporters = Vec::new();
        for b in &m.reporters {
            for cur in self.block_items(b) {
                let label = format!("reporters[{}]", reporters.len());
                let name = self.block_field(b, "name", cur, &label);
                let phone = self.block_field(b, "phone", cur, &label);
                let id = self.block_field(b, "idNumber", cur, &label);
                let anonymous = self.block_field(b, "anonymous", cur, &label);
                let channel = self.block_field(b, "channel", cur, &label);
                let (Ok(name), Ok(phone), Ok(id), Ok(anonymous), Ok(channel)) = (name, phone, id, anonymous, channel)
                else {
                    continue;
                };
                let anonymous = matches!(anonymous, Some(Val::Bool(true)));
                let reporter = Reporter {
                    channel: channel.and_then(|c| c.text().parse::<Channel>().ok()).unwrap_or(m.channel),
                    name: if anonymous { None } else { name.map(|v| v.text().into_owned()) },
                    phone: if anonymous { None } else { phone.and_then(|v| Phone::parse(&v.text()).ok()) },
                    id_number: if anonymous { None } else { id.and_then(|v| IdNumber::parse(&v.text()).ok()) },
                    anonymous,
                };
                if reporter.anonymous
                    || reporter.name.is_some()
                    || reporter.phone.is_some()
                    || reporter.id_number.is_some()
                {
                    reporters.push(reporter);
                }
            }
        }

        let mut attachments = Vec::new();
        for b in &m.attachments {
            for cur in self.block_items(b) {
                let label = format!("attachments[{}]", attachments.len());
                let kind = self.block_field(b, "kind", cur, &label);
                let url = self.block_field(b, "url", cur, &label);
                let sha = self.block_field(b, "sha256", cur, &label);
                let (Ok(kind), Ok(url), Ok(sha)) = (kind, url, sha) else { continue };
                match (kind, url) {
                    (Some(kind), Some(url)) => attachments.push(Attachment {
                        kind: kind.text().into_owned(),
                        url: url.text().into_owned(),
                        sha256: sha.map(|s| s.text().into_owned()),
                    }),
                    _ => self.warnings.push(format!("{label} left out: it has no kind or no url")),
                }
            }
        }

        let court = match &m.court {
            None => None,
            Some(spec) => match self.block_items(&spec.block).into_iter().next() {
                None => None,
                Some(cur) => self.court(spec, cur),
            },
        };

        let evaluation = match &m.evaluation {
            None => None,
            Some(b) => {
                let mut evaluation = None;
                if let Some(cur) = self.block_items(b).into_iter().next() {
                    let result = self.block_field(b, "result", cur, "evaluation");
                    let by = self.block_field(b, "by", cur, "evaluation");
                    let at = self.block_field(b, "at", cur, "evaluation");
                    if let (Ok(result), Ok(by), Ok(at)) = (result, by, at) {
                        match (result.and_then(|r| r.text().parse::<EvaluationResult>().ok()), at) {
                            (Some(result), Some(Val::Time(at))) => {
                                evaluation = Some(Evaluation { result, by: by.map(|b| b.text().into_owned()), at });
                            }
                            _ => self.errors.push((b.ordinal, "evaluation: result or at is missing".into())),
                        }
                    }
                }
                evaluation
            }
        };

        let geo = match &m.geo {
            None => None,
            Some(b) => {
                let mut geo = None;
                if let Some(cur) = self.block_items(b).into_iter().next() {
                    let lat = self.block_field(b, "lat", cur, "geo");
                    let lng = self.block_field(b, "lng", cur, "geo");
                    match (lat, lng) {
                        (Ok(Some(lat)), Ok(Some(lng))) => match (lat.number(), lng.number()) {
                            (Some(la), Some(ln)) => match Geo::new(la, ln) {
                                Ok(g) => geo = Some(g),
                                Err(_) => self
                                    .warnings
                                    .push("geo left out: the coordinates are outside the globe".to_string()),
                            },
                            _ => self.warnings.push("geo left out: the coordinates are not numbers".to_string()),
                        },
                        (Ok(None), Ok(None)) => {}
                        (Ok(_), Ok(_)) => {
                            self.warnings.push("geo left out: only one of lat and lng is given".to_string())
                        }
                        _ => {}
                    }
                }
                geo
            }
        };

        if !self.errors.is_empty() {
            return None;
        }
        let text = |s: usize| match &self.slots[s] {
            SlotState::Val(v) => Some(v.text().into_owned()),
            _ => None,
        };
        let time = |s: usize| match &self.slots[s] {
            SlotState::Val(Val::Time(t)) => Some(*t),
            _ => None,
        };
        let region = match &self.slots[f.region] {
            SlotState::Val(Val::Region(r)) => Some((**r).clone()),
            _ => None,
        };
        let urgent = f.urgent.is_some_and(|u| matches!(self.slots[u], SlotState::Val(Val::Bool(true))));
        let kind = text(f.kind).and_then(|k| k.parse::<Kind>().ok());
        let status = text(f.status).and_then(|k| k.parse::<Status>().ok());
        let category = text(f.category).and_then(|c| Category::try_from(c).ok());
        let (
            Some(kind),
            Some(category),
            Some(title),
            Some(description),
            Some(region),
            Some(occurred_at),
            Some(reported_at),
            Some(status),
        ) = (
            kind,
            category,
            text(f.title),
            text(f.description),
            region,
            time(f.occurred_at),
            time(f.reported_at),
            status,
        )
        else {
            self.errors.push((usize::MAX, "a required ticket field has no value".into()));
            return None;
        };
        let due_at: Option<Timestamp> = f.due_at.and_then(time);
        Some(crate::ticket::TicketDraft {
            kind,
            category,
            title: crate::ticket::Title::new(&title),
            description,
            region,
            address: f.address.and_then(text),
            geo,
            occurred_at,
            reported_at,
            due_at,
            urgent,
            reporters,
            attachments,
            court,
            status,
            evaluation,
        })
    }
}

impl<'a> Run<'a> {
    fn court(&mut self, spec: &super::spec::CourtSpec, cur: Option<Node<'a>>) -> Option<CourtCase> {
        let case_no = self.block_field(&spec.block, "caseNo", cur, "court");
        let status = self.block_field(&spec.block, "status", cur, "court");
        let (Ok(case_no), Ok(status)) = (case_no, status) else { return None };
        let (Some(case_no), Some(status)) = (case_no, status) else {
            self.errors.push((spec.block.ordinal, "court: caseNo or status is missing".into()));
            return None;
        };
        let mut documents = Vec::new();
        for d in &spec.documents {
            for dcur in self.block_items(d) {
                let label = format!("court.documents[{}]", documents.len());
                let mut obj = serde_json::Map::new();
                let mut ok = true;
                for (key, _, _) in &d.fields {
                    match self.block_field(d, key, dcur, &label) {
                        Ok(Some(v)) => {
                            obj.insert(key.clone(), json_of(v));
                        }
                        Ok(None) => {}
                        Err(()) => ok = false,
                    }
                }
                if ok && !obj.is_empty() {
                    documents.push(serde_json::Value::Object(obj));
                }
            }
        }
        Some(CourtCase { case_no: case_no.text().into_owned(), status: status.text().into_owned(), documents })
    }
}

fn json_of(v: Val) -> serde_json::Value {
    match v {
        Val::Str(s) => serde_json::Value::String(s),
        Val::Int(i) => serde_json::Value::from(i),
        Val::Num(n) => serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number),
        Val::Bool(b) => serde_json::Value::Bool(b),
        Val::Time(t) => serde_json::Value::String(t.to_rfc3339()),
        Val::Region(r) => serde_json::Value::String(r.code.as_str().to_string()),
    }
}

/// A scalar at a node; an object or list is an error (`Err` names what it is).
fn node_value(node: Node<'_>) -> Result<Option<Val>, &'static str> {
    use serde_json::Value;
    Ok(match node {
        Node::Json(Value::Null) => None,
        Node::Json(Value::String(s)) => Some(Val::Str(s.clone())),
        Node::Json(Value::Bool(b)) => Some(Val::Bool(*b)),
        Node::Json(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(Val::Int(i)),
            None => n.as_f64().map(Val::Num),
        },
        Node::Json(Value::Object(_)) => return Err("an object"),
        Node::Json(Value::Array(_)) => return Err("a list"),
        Node::Xml(el) => Some(Val::Str(el.text.clone())),
        Node::Attr(a) => Some(Val::Str(a.to_string())),
    })
}

fn val_truthy(v: &Val) -> bool {
    match v {
        Val::Bool(b) => *b,
        Val::Int(i) => *i != 0,
        Val::Num(n) => *n != 0.0,
        Val::Str(s) => {
            let s = s.trim();
            !(s.is_empty() || s == "0" || s.eq_ignore_ascii_case("false"))
        }
        Val::Time(_) | Val::Region(_) => true,
    }
}

fn compare(a: Option<&Val>, op: CmpOp, b: Option<&Val>) -> bool {
    use std::cmp::Ordering as O;
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge),
        _ => return op == CmpOp::Ne,
    };
    let ord: Option<O> = match (a, b) {
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => match (a.number(), b.number()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => Some(a.text().cmp(&b.text())),
        },
    };
    match (op, ord) {
        (CmpOp::Eq, o) => o == Some(O::Equal),
        (CmpOp::Ne, o) => o != Some(O::Equal),
        (CmpOp::Lt, Some(o)) => o == O::Less,
        (CmpOp::Le, Some(o)) => o != O::Greater,
        (CmpOp::Gt, Some(o)) => o == O::Greater,
        (CmpOp::Ge, Some(o)) => o != O::Less,
        (_, None) => false,
    }
}

/// Normalizes a value for what it becomes in the ticket.
pub(crate) fn convert_sink(sink: Sink, v: Val) -> Result<Val, String> {
    let text = || v.text().into_owned();
    Ok(match sink {
        Sink::Any | Sink::Text | Sink::Json => v,
        Sink::Int => match &v {
            Val::Int(_) => v,
            Val::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Val::Int(*n as i64),
            Val::Str(s) => {
                Val::Int(s.trim().parse::<i64>().map_err(|_| format!("`{}` is not a whole number", short(s)))?)
            }
            _ => return Err(format!("`{}` is not a whole number", short(&text()))),
        },
        Sink::Float => Val::Num(v.number().ok_or_else(|| format!("`{}` is not a number", short(&text())))?),
        Sink::Bool => match &v {
            Val::Bool(_) => v,
            Val::Int(0) => Val::Bool(false),
            Val::Int(1) => Val::Bool(true),
            Val::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "y" => Val::Bool(true),
                "false" | "0" | "no" | "n" => Val::Bool(false),
                _ => return Err(format!("`{}` is not true or false", short(s))),
            },
            _ => return Err(format!("`{}` is not true or false", short(&text()))),
        },
        Sink::Time => match v {
            Val::Time(_) => v,
            _ => return Err("is not a time".into()),
        },
        Sink::Region => match v {
            Val::Region(_) => v,
            _ => return Err("is not a region".into()),
        },
        Sink::Kind => {
            text().parse::<Kind>()?;
            v
        }
        Sink::Status => {
            text().parse::<Status>()?;
            v
        }
        Sink::EvalResult => {
            text().parse::<EvaluationResult>()?;
            v
        }
        Sink::Channel => {
            text().parse::<Channel>()?;
            v
        }
        Sink::Category => Val::Str(Category::try_from(text())?.as_str().to_string()),
        Sink::Phone => Val::Str(Phone::parse(&text()).map_err(|e| e.to_string())?.as_str().to_string()),
        Sink::IdNumber => Val::Str(IdNumber::parse(&text()).map_err(|e| e.to_string())?.as_str().to_string()),
    })
}

/// How an expression's source reads in a message: "`$.callTime`".
pub(crate) fn describe(e: &Expr, m: &Compiled) -> String {
    match &e.source {
        Source::Path(p) => format!("`{}`", p.text),
        Source::Meta(k) => format!("the transport's `{k}`"),
        Source::Record(a) => format!("the record's {a:?}"),
        Source::From(slot) => format!("`{}`", m.slots[*slot].name),
        Source::Value(_) => "the value".into(),
        Source::Template(_) => "the template".into(),
        Source::Concat { .. } => "the concatenation".into(),
        Source::Test(_) => "the test".into(),
        Source::First(alts) => match alts.iter().find(|a| !matches!(a.source, Source::Value(_))) {
            Some(a) => describe(a, m),
            None => "the value".into(),
        },
    }
}

/// The source and, unless it is personal, the value: "`$.callTime` = `2024/13/45`".
fn subject(e: &Expr, value: &str, m: &Compiled) -> String {
    if e.sensitive { describe(e, m) } else { format!("{} = `{}`", describe(e, m), short(value)) }
}

fn missing(e: &Expr, m: &Compiled) -> String {
    match &e.source {
        Source::First(_) => "no value (none of the alternatives applies)".into(),
        Source::Template(_) | Source::Concat { .. } => "no value".into(),
        _ => format!("{} is missing", describe(e, m)),
    }
}
