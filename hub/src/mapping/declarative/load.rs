//! Loading a mapping file: TOML → compiled [`Compiled`], with every mistake
//! reported as `file:line:col: where: what` (and tables as `table.csv:line:1`).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use chrono::NaiveTime;
use regex::Regex;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::MappingError;
use super::cond::{parse_cond, parse_template};
use super::eval::convert_sink;
use super::path::{Path, Syntax};
use super::spec::{
    Block, Check, Compiled, Cond, Convert, Counter, CourtSpec, Expr, FixedSlots, Format, Lookup, LookupKind, OnError,
    RecordAttr, Shift, Sink, Slot, Source, VType, Val,
};
use super::table::{Holidays, Regions, Table};
use super::transform;
use crate::ticket::{Channel, beijing};

type V<'i> = Spanned<DeValue<'i>>;

const SECTIONS: &[&str] = &[
    "source",
    "identity",
    "checks",
    "let",
    "fields",
    "reporters",
    "attachments",
    "court",
    "evaluation",
    "dedup",
    "feedback",
];
const SOURCE_KEYS: &[&str] = &["name", "channel", "format", "root", "max_bytes", "encoding", "tables", "description"];
const EXPR_KEYS: &[&str] = &[
    "path",
    "meta",
    "record",
    "from",
    "value",
    "template",
    "concat",
    "test",
    "when",
    "sep",
    "trim",
    "replace",
    "pattern",
    "capture",
    "one_of",
    "lookup",
    "classify",
    "column",
    "map",
    "datetime",
    "date",
    "time_of_day",
    "epoch",
    "tz",
    "region",
    "add_working_days",
    "add_days",
    "add_hours",
    "holidays",
    "min",
    "max",
    "max_chars",
    "default",
    "required",
    "on_error",
    "sensitive",
    "message",
];
const SOURCE_KINDS: &[&str] = &["path", "meta", "record", "from", "value", "template", "concat", "test"];

/// The ticket fields of `[fields]`: name, what it becomes, whether required.
const FIELDS: &[(&str, Sink, bool)] = &[
    ("kind", Sink::Kind, true),
    ("category", Sink::Category, true),
    ("title", Sink::Text, true),
    ("description", Sink::Text, true),
    ("region", Sink::Region, true),
    ("address", Sink::Text, false),
    ("occurredAt", Sink::Time, true),
    ("reportedAt", Sink::Time, true),
    ("dueAt", Sink::Time, false),
    ("urgent", Sink::Bool, false),
    ("status", Sink::Status, true),
];
const REPORTER_FIELDS: &[(&str, Sink)] = &[
    ("name", Sink::Text),
    ("phone", Sink::Phone),
    ("idNumber", Sink::IdNumber),
    ("anonymous", Sink::Bool),
    ("channel", Sink::Channel),
];
const ATTACHMENT_FIELDS: &[(&str, Sink)] = &[("kind", Sink::Text), ("url", Sink::Text), ("sha256", Sink::Text)];
const EVALUATION_FIELDS: &[(&str, Sink)] = &[("result", Sink::EvalResult), ("by", Sink::Text), ("at", Sink::Time)];
const GEO_FIELDS: &[(&str, Sink)] = &[("lat", Sink::Float), ("lng", Sink::Float)];

/// Where an expression is and what it may use.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    /// The place in the file, for load errors: `fields.kind`.
    loc: &'a str,
    /// The name in runtime messages and counters: `kind`, `reporters.phone`.
    field: &'a str,
    sink: Sink,
    in_for_each: bool,
    is_check: bool,
}

struct Loader<'t> {
    origin: String,
    text: &'t str,
    errors: Vec<MappingError>,
    syntax: Syntax,
    table_dirs: Vec<PathBuf>,
    shipped_tables: bool,
    tables: Vec<Table>,
    table_index: HashMap<String, Option<usize>>,
    regions: Vec<Regions>,
    region_index: HashMap<usize, Option<usize>>,
    holidays: Vec<Holidays>,
    holiday_index: HashMap<usize, Option<usize>>,
    counters: Vec<Counter>,
    fallbacks: Vec<Counter>,
    names: HashMap<String, usize>,
    uses: Vec<usize>,
    checked_columns: HashSet<(usize, usize, &'static str)>,
}

/// Where a mapping's code tables come from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TableSource<'a> {
    /// `.csv` files in the folders `[source] tables` names, relative to this one.
    Dir(&'a FsPath),
    /// The tables shipped inside the binary (`mapping::shipped`).
    Shipped,
}

pub(crate) fn compile(text: &str, origin: &str, tables: TableSource<'_>) -> Result<Compiled, Vec<MappingError>> {
    let mut l = Loader {
        shipped_tables: matches!(tables, TableSource::Shipped),
        origin: origin.to_string(),
        text,
        errors: Vec::new(),
        syntax: Syntax::Json,
        table_dirs: Vec::new(),
        tables: Vec::new(),
        table_index: HashMap::new(),
        regions: Vec::new(),
        region_index: HashMap::new(),
        holidays: Vec::new(),
        holiday_index: HashMap::new(),
        counters: Vec::new(),
        fallbacks: Vec::new(),
        names: HashMap::new(),
        uses: Vec::new(),
        checked_columns: HashSet::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            l.at(e.span().unwrap_or(0..0), e.message().trim().to_string());
            return Err(l.errors);
        }
    };
    let base_dir = match tables {
        TableSource::Dir(dir) => dir,
        TableSource::Shipped => FsPath::new(""),
    };
    let compiled = l.document(root.get_ref(), base_dir);
    match compiled {
        Some(c) if l.errors.is_empty() => Ok(c),
        _ => {
            l.errors.sort_by_key(|a| (a.origin != origin, a.line, a.column));
            Err(l.errors)
        }
    }
}

fn suggest(key: &str, known: &[&str]) -> String {
    let best = known.iter().map(|k| (distance(key, k), *k)).min();
    match best {
        Some((d, k)) if d <= 2 || (d <= 3 && key.len() > 6) => format!(" (did you mean `{k}`?)"),
        _ => format!(" (known: {})", known.join(", ")),
    }
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Loader<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let offset = span.start.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.errors.push(MappingError {
            origin: self.origin.clone(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        });
    }

    fn check_keys(&mut self, table: &DeTable<'_>, known: &[&str], loc: &str) {
        for (k, _) in table.iter() {
            if !known.contains(&k.get_ref().as_ref()) {
                let msg = format!("{loc}: unknown key `{}`{}", k.get_ref(), suggest(k.get_ref(), known));
                self.at(k.span(), msg);
            }
        }
    }

    fn table_of<'a, 'i>(&mut self, v: &'a V<'i>, loc: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.at(v.span(), format!("{loc} must be a table, not {}", other.type_str()));
                None
            }
        }
    }

    fn string<'a>(&mut self, v: &'a V<'_>, loc: &str) -> Option<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.at(v.span(), format!("{loc} must be text, not {}", other.type_str()));
                None
            }
        }
    }

    fn integer(&mut self, v: &V<'_>, loc: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => {
                let parsed = i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok();
                if parsed.is_none() {
                    self.at(v.span(), format!("{loc} is too large"));
                }
                parsed
            }
            other => {
                self.at(v.span(), format!("{loc} must be a whole number, not {}", other.type_str()));
                None
            }
        }
    }

    fn number(&mut self, v: &V<'_>, loc: &str) -> Option<f64> {
        match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok().filter(|n| n.is_finite()),
            DeValue::Integer(_) => self.integer(v, loc).map(|i| i as f64),
            other => {
                self.at(v.span(), format!("{loc} must be a number, not {}", other.type_str()));
                None
            }
        }
    }

    fn boolean(&mut self, v: &V<'_>, loc: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.at(v.span(), format!("{loc} must be true or false, not {}", other.type_str()));
                None
            }
        }
    }

    /// A TOML literal as a value.
    fn literal(&mut self, v: &V<'_>, loc: &str) -> Option<Val> {
        Some(match v.get_ref() {
            DeValue::String(s) => Val::Str(s.to_string()),
            DeValue::Integer(_) => Val::Int(self.integer(v, loc)?),
            DeValue::Float(_) => Val::Num(self.number(v, loc)?),
            DeValue::Boolean(b) => Val::Bool(*b),
            other => {
                self.at(v.span(), format!("{loc} must be text, a number or true/false, not {}", other.type_str()));
                return None;
            }
        })
    }

    // ---- tables -------------------------------------------------------

    fn table(&mut self, name: &str, span: Range<usize>, loc: &str) -> Option<usize> {
        if let Some(found) = self.table_index.get(name) {
            return *found;
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.at(
                span,
                format!("{loc}: `{name}` is not a table name (letters, digits, `-`, `_`: the file name without .csv)"),
            );
            return None;
        }
        let file = format!("{name}.csv");
        if self.shipped_tables {
            let result = match crate::mapping::shipped::table(name) {
                None => {
                    self.at(span, format!("{loc}: no table `{name}` among the tables shipped with the hub"));
                    None
                }
                Some(text) => match Table::read(name, format!("(built-in) tables/{file}"), text.as_bytes()) {
                    Ok(t) => {
                        self.tables.push(t);
                        Some(self.tables.len() - 1)
                    }
                    Err(errs) => {
                        self.errors.extend(errs);
                        None
                    }
                },
            };
            self.table_index.insert(name.to_string(), result);
            return result;
        }
        let found = self.table_dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file());
        let result = match found {
            None => {
                let looked: Vec<String> = self.table_dirs.iter().map(|d| d.join(&file).display().to_string()).collect();
                self.at(span, format!("{loc}: no table `{name}` (looked for {})", looked.join(", ")));
                None
            }
            Some(path) => match Table::load(name, &path) {
                Ok(t) => {
                    self.tables.push(t);
                    Some(self.tables.len() - 1)
                }
                Err(errs) => {
                    self.errors.extend(errs);
                    None
                }
            },
        };
        self.table_index.insert(name.to_string(), result);
        result
    }

    fn regions_of(&mut self, table: usize) -> Option<usize> {
        built_once(
            &mut self.region_index,
            &mut self.regions,
            &mut self.errors,
            &self.tables[table],
            table,
            Regions::build,
        )
    }

    fn holidays_of(&mut self, table: usize) -> Option<usize> {
        built_once(
            &mut self.holiday_index,
            &mut self.holidays,
            &mut self.errors,
            &self.tables[table],
            table,
            Holidays::build,
        )
    }

    fn counter(&mut self, field: &str, table: &str) -> usize {
        self.counters.push(Counter {
            field: field.to_string(),
            table: table.to_string(),
            count: AtomicU64::new(0),
            examples: Mutex::new(Default::default()),
        });
        self.counters.len() - 1
    }

    // ---- the document ---------------------------------------------------

    fn document(&mut self, root: &DeTable<'_>, base_dir: &FsPath) -> Option<Compiled> {
        self.check_keys(root, SECTIONS, "the mapping file");
        let get = |k: &str| root.get(k);

        // [source]
        let (name, channel, format, root_el, max_bytes, encoding) = self.source(get("source"), base_dir)?;
        let dedup = self.dedup(get("dedup"));

        // Names: identity, fields, let. `message_id` is optional: a source
        // whose messages carry ids of their own names it.
        let identity = get("identity").and_then(|v| self.table_of(v, "[identity]"));
        let mut slot_names: Vec<(String, Range<usize>)> = vec![("record_id".into(), 0..0), ("version".into(), 0..0)];
        if identity.is_some_and(|t| t.get("message_id").is_some()) {
            slot_names.push(("message_id".into(), 0..0));
        }
        let identities = slot_names.len();
        let fields = get("fields").and_then(|f| self.table_of(f, "[fields]"));
        let lets = get("let").and_then(|f| self.table_of(f, "[let]"));
        if let Some(fields) = fields {
            let known: Vec<&str> = FIELDS.iter().map(|f| f.0).chain(["geo"]).collect();
            self.check_keys(fields, &known, "[fields]");
            for (k, v) in fields.iter() {
                if k.get_ref() != "geo" && FIELDS.iter().any(|f| f.0 == k.get_ref()) {
                    slot_names.push((k.get_ref().to_string(), v.span()));
                }
            }
            for (field, _, required) in FIELDS {
                if *required && fields.get(*field).is_none() {
                    let span = root.get_key_value("fields").map_or(0..0, |(k, _)| k.span());
                    self.at(span, format!("[fields]: `{field}` is missing (every ticket needs it)"));
                }
            }
        } else if get("fields").is_none() {
            self.at(0..0, "the mapping file has no [fields] section (kind, category, title, description, region, occurredAt, reportedAt, status)");
        }
        let reserved: Vec<&str> = FIELDS
            .iter()
            .map(|f| f.0)
            .chain(["record_id", "version", "message_id", "geo", "true", "false", "meta"])
            .collect();
        if let Some(lets) = lets {
            for (k, v) in lets.iter() {
                let n = k.get_ref().as_ref();
                if !is_identifier(n) {
                    self.at(
                        k.span(),
                        format!("[let]: `{n}` is not a name (letters, digits and `_`, not starting with a digit)"),
                    );
                } else if reserved.contains(&n) {
                    self.at(k.span(), format!("[let]: `{n}` is the name of a ticket field; choose another name"));
                } else {
                    slot_names.push((n.to_string(), v.span()));
                }
            }
        }
        self.names = slot_names.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();

        // Parse every slot.
        let mut slots: Vec<Option<Slot>> = Vec::new();
        let mut deps: Vec<Vec<usize>> = Vec::new();
        if let Some(t) = identity {
            self.check_keys(t, &["record_id", "version", "message_id"], "[identity]");
        }
        for (i, (slot_name, _)) in slot_names.iter().enumerate() {
            self.uses.clear();
            let (value, loc, sink, required, ordinal) = if i < identities {
                let value = identity.and_then(|t| t.get(slot_name.as_str()));
                if value.is_none() {
                    let span = root.get_key_value("identity").map_or(0..0, |(k, _)| k.span());
                    self.at(span, format!("[identity]: `{slot_name}` is missing"));
                }
                (value, format!("identity.{slot_name}"), if i == 1 { Sink::Int } else { Sink::Text }, true, 1)
            } else if let Some(pos) = FIELDS.iter().position(|f| f.0 == slot_name) {
                let (_, sink, required) = FIELDS[pos];
                (
                    fields.and_then(|t| t.get(slot_name.as_str())),
                    format!("fields.{slot_name}"),
                    sink,
                    required,
                    10 + pos,
                )
            } else {
                (lets.and_then(|t| t.get(slot_name.as_str())), format!("let.{slot_name}"), Sink::Any, false, 5)
            };
            let ctx = Ctx { loc: &loc, field: slot_name, sink, in_for_each: false, is_check: false };
            let expr = value.and_then(|v| self.expr(v, ctx));
            deps.push(std::mem::take(&mut self.uses));
            slots.push(expr.map(|expr| Slot { name: slot_name.clone(), expr, sink, required, ordinal }));
        }

        // Order: every slot after what it uses.
        let order = self.order(&slot_names, &deps);
        // A slot whose expression did not load is `Unknown`: what is built on it is not checked again.
        let mut types: Vec<VType> =
            slots.iter().map(|s| if s.is_some() { VType::Any } else { VType::Unknown }).collect();
        for &i in &order {
            if let Some(slot) = &mut slots[i] {
                let loc = if i < identities { format!("identity.{}", slot.name) } else { slot.name.clone() };
                let t = self.infer(&mut slot.expr, &types, &loc);
                self.check_sink(&slot.expr, slot.sink, &loc);
                types[i] = sink_type(slot.sink).unwrap_or(t);
            }
        }

        // Checks.
        let mut checks = Vec::new();
        if let Some(t) = get("checks").and_then(|v| self.table_of(v, "[checks]")) {
            for (k, v) in t.iter() {
                let loc = format!("checks.{}", k.get_ref());
                let ctx = Ctx { loc: &loc, field: &loc, sink: Sink::Any, in_for_each: false, is_check: true };
                if let Some(mut expr) = self.expr(v, ctx) {
                    self.infer(&mut expr, &types, &loc);
                    checks.push(Check { name: k.get_ref().to_string(), expr, ordinal: 0 });
                }
            }
        }

        // Checks run, and report, in file order.
        checks.sort_by_key(|c| c.expr.span.start);

        // Blocks.
        let geo = fields.and_then(|f| f.get("geo")).and_then(|v| {
            let b = self.block(v, "fields.geo", "geo", GEO_FIELDS, &["lat", "lng"], false, 40);
            b.map(|mut b| {
                for (_, e, _) in &mut b.fields {
                    e.on_error = OnError::Warn;
                }
                b
            })
        });
        let mut reporters = Vec::new();
        if let Some(v) = get("reporters") {
            for (i, t) in self.blocks_array(v, "[[reporters]]").into_iter().enumerate() {
                let loc = format!("reporters[{i}]");
                if let Some(b) = self.block(t, &loc, "reporters", REPORTER_FIELDS, &[], true, 60) {
                    reporters.push(b);
                }
            }
        }
        let mut attachments = Vec::new();
        if let Some(v) = get("attachments") {
            for (i, t) in self.blocks_array(v, "[[attachments]]").into_iter().enumerate() {
                let loc = format!("attachments[{i}]");
                if let Some(b) = self.block(t, &loc, "attachments", ATTACHMENT_FIELDS, &["kind", "url"], true, 70) {
                    attachments.push(b);
                }
            }
        }
        let court = get("court").and_then(|v| self.court(v));
        let evaluation = get("evaluation")
            .and_then(|v| self.block(v, "[evaluation]", "evaluation", EVALUATION_FIELDS, &["result", "at"], false, 90));
        let mut blocks: Vec<&mut Block> = Vec::new();
        let mut geo = geo;
        let mut evaluation = evaluation;
        let mut court = court;
        blocks.extend(geo.as_mut());
        blocks.extend(reporters.iter_mut());
        blocks.extend(attachments.iter_mut());
        blocks.extend(evaluation.as_mut());
        if let Some(c) = court.as_mut() {
            blocks.push(&mut c.block);
            blocks.extend(c.documents.iter_mut());
        }
        for b in blocks {
            for (field, e, sink) in &mut b.fields {
                let loc = field.clone();
                self.infer(e, &types, &loc);
                self.check_sink(e, *sink, &loc);
            }
        }

        if !self.errors.is_empty() {
            return None;
        }
        let slots: Vec<Slot> = slots.into_iter().collect::<Option<Vec<_>>>()?;
        let idx = |n: &str| self.names.get(n).copied();
        let fixed = FixedSlots {
            record_id: 0,
            version: 1,
            message_id: (identities > 2).then_some(2),
            kind: idx("kind")?,
            category: idx("category")?,
            title: idx("title")?,
            description: idx("description")?,
            region: idx("region")?,
            address: idx("address"),
            occurred_at: idx("occurredAt")?,
            reported_at: idx("reportedAt")?,
            due_at: idx("dueAt"),
            urgent: idx("urgent"),
            status: idx("status")?,
        };
        Some(Compiled {
            origin: self.origin.clone(),
            name,
            channel,
            format,
            root: root_el,
            max_bytes,
            encoding,
            tables: std::mem::take(&mut self.tables),
            regions: std::mem::take(&mut self.regions),
            holidays: std::mem::take(&mut self.holidays),
            slots,
            order,
            checks,
            geo,
            reporters,
            attachments,
            court,
            evaluation,
            counters: std::mem::take(&mut self.counters),
            fallbacks: std::mem::take(&mut self.fallbacks),
            past_holidays: Default::default(),
            fixed,
            dedup,
        })
    }

    /// `[dedup]`: this source's own thresholds, or `enabled = false`.
    fn dedup(&mut self, v: Option<&V<'_>>) -> crate::mapping::DedupOverride {
        let mut out = crate::mapping::DedupOverride::default();
        let Some(t) = v.and_then(|v| self.table_of(v, "[dedup]")) else { return out };
        self.check_keys(t, &["enabled", "merge", "review"], "[dedup]");
        out.enabled = t.get("enabled").and_then(|v| self.boolean(v, "dedup.enabled"));
        for (key, slot) in [("merge", &mut out.merge), ("review", &mut out.review)] {
            if let Some(v) = t.get(key) {
                match self.number(v, &format!("dedup.{key}")) {
                    Some(n) if (0.0..=1.0).contains(&n) => *slot = Some(n),
                    Some(_) => self.at(v.span(), format!("dedup.{key} must be between 0 and 1")),
                    None => {}
                }
            }
        }
        if let (Some(m), Some(r)) = (out.merge, out.review)
            && r > m
        {
            let span = t.get("review").map_or(0..0, |v| v.span());
            self.at(span, format!("dedup.review ({r}) must not be above dedup.merge ({m})"));
        }
        out
    }

    #[allow(clippy::type_complexity)]
    fn source(
        &mut self,
        v: Option<&V<'_>>,
        base_dir: &FsPath,
    ) -> Option<(String, Channel, Format, Option<String>, usize, Option<String>)> {
        let Some(v) = v else {
            self.at(0..0, "the mapping file has no [source] section (name, channel, format)");
            return None;
        };
        let t = self.table_of(v, "[source]")?;
        self.check_keys(t, SOURCE_KEYS, "[source]");
        let header = v.span();
        let mut ok = true;
        let name = match t.get("name") {
            Some(n) => match self.string(n, "source.name") {
                Some(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                    Some(s.to_string())
                }
                Some(_) => {
                    self.at(
                        n.span(),
                        "source.name must be letters, digits, `_` or `-` (the source's name in the hub config)",
                    );
                    None
                }
                None => None,
            },
            None => {
                self.at(header.clone(), "[source]: `name` is missing");
                None
            }
        };
        let channel = match t.get("channel") {
            Some(c) => self.string(c, "source.channel").and_then(|s| match s.parse::<Channel>() {
                Ok(ch) => Some(ch),
                Err(e) => {
                    self.at(c.span(), format!("source.channel: {e}"));
                    None
                }
            }),
            None => {
                self.at(
                    header.clone(),
                    "[source]: `channel` is missing (hotline, petition, court_mediation or terminal)",
                );
                None
            }
        };
        let format = match t.get("format") {
            Some(f) => match self.string(f, "source.format") {
                Some("json") => Some(Format::Json),
                Some("xml") => Some(Format::Xml),
                Some(other) => {
                    let msg = format!("source.format: `{other}` is not `json` or `xml`");
                    self.at(f.span(), msg);
                    None
                }
                None => None,
            },
            None => {
                self.at(header.clone(), "[source]: `format` is missing (json or xml)");
                None
            }
        };
        if let Some(f) = format {
            self.syntax = if f == Format::Xml { Syntax::Xml } else { Syntax::Json };
        } else {
            ok = false;
        }
        let root = match t.get("root") {
            Some(r) => {
                let s = self.string(r, "source.root").map(str::to_string);
                if format == Some(Format::Json) {
                    self.at(r.span(), "source.root is only for XML sources");
                }
                s
            }
            None => None,
        };
        let max_bytes = match t.get("max_bytes") {
            Some(m) => match self.integer(m, "source.max_bytes") {
                Some(n) if (1..=256 * 1024 * 1024).contains(&n) => n as usize,
                Some(_) => {
                    self.at(m.span(), "source.max_bytes must be between 1 and 268435456");
                    1024 * 1024
                }
                None => 1024 * 1024,
            },
            None => 1024 * 1024,
        };
        let encoding = match t.get("encoding") {
            Some(e) => self.string(e, "source.encoding").and_then(|s| {
                if encoding_rs::Encoding::for_label(s.trim().as_bytes()).is_some() {
                    Some(s.trim().to_string())
                } else {
                    self.at(e.span(), format!("source.encoding: `{s}` is not an encoding (utf-8, gb18030…)"));
                    None
                }
            }),
            None => None,
        };
        if let Some(d) = t.get("description") {
            self.string(d, "source.description");
        }
        let dirs: Vec<String> = match t.get("tables") {
            None => vec!["tables/".into()],
            Some(v) => match v.get_ref() {
                DeValue::String(s) => vec![s.to_string()],
                DeValue::Array(a) => {
                    a.iter().filter_map(|d| self.string(d, "source.tables").map(str::to_string)).collect()
                }
                other => {
                    self.at(
                        v.span(),
                        format!("source.tables must be a folder or a list of folders, not {}", other.type_str()),
                    );
                    Vec::new()
                }
            },
        };
        self.table_dirs = dirs.iter().map(|d| base_dir.join(d)).collect();
        if let (Some(name), Some(channel), Some(format), true) = (name, channel, format, ok) {
            Some((name, channel, format, root, max_bytes, encoding))
        } else {
            None
        }
    }

    fn blocks_array<'a, 'i>(&mut self, v: &'a V<'i>, loc: &str) -> Vec<&'a V<'i>> {
        match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            DeValue::Table(_) => {
                self.at(v.span(), format!("{loc}: write the section with double brackets, {loc}, one per block"));
                Vec::new()
            }
            other => {
                self.at(v.span(), format!("{loc} must be a list of tables, not {}", other.type_str()));
                Vec::new()
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        v: &V<'_>,
        loc: &str,
        field: &str,
        known: &[(&str, Sink)],
        required: &[&str],
        for_each_allowed: bool,
        ordinal: usize,
    ) -> Option<Block> {
        let t = self.table_of(v, loc)?;
        let mut keys: Vec<&str> = known.iter().map(|k| k.0).collect();
        keys.push("when");
        if for_each_allowed {
            keys.push("for_each");
        }
        self.check_keys(t, &keys, loc);
        self.block_of(t, v.span(), loc, field, known, required, for_each_allowed, ordinal)
    }

    #[allow(clippy::too_many_arguments)]
    fn block_of(
        &mut self,
        t: &DeTable<'_>,
        span: Range<usize>,
        loc: &str,
        field: &str,
        known: &[(&str, Sink)],
        required: &[&str],
        for_each_allowed: bool,
        ordinal: usize,
    ) -> Option<Block> {
        self.uses.clear();
        let when = t.get("when").and_then(|w| self.cond(w, &format!("{loc}.when"), false));
        let for_each = if for_each_allowed {
            t.get("for_each").and_then(|p| {
                let s = self.string(p, &format!("{loc}.for_each"))?;
                match Path::parse(s, self.syntax) {
                    Ok(path) if path.relative => {
                        self.at(p.span(), format!("{loc}.for_each must be an absolute path"));
                        None
                    }
                    Ok(path) => Some(path),
                    Err(e) => {
                        self.at(p.span(), format!("{loc}.for_each: {e}"));
                        None
                    }
                }
            })
        } else {
            None
        };
        for r in required {
            if t.get(*r).is_none() {
                self.at(span.clone(), format!("{loc}: `{r}` is missing"));
            }
        }
        let mut fields = Vec::new();
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            if key == "when" || key == "for_each" {
                continue;
            }
            let sink = match known.iter().find(|f| f.0 == key) {
                Some(f) => f.1,
                None if known.is_empty() => Sink::Json,
                None => continue,
            };
            let floc = format!("{loc}.{key}");
            let fname = format!("{field}.{key}");
            let ctx = Ctx { loc: &floc, field: &fname, sink, in_for_each: for_each.is_some(), is_check: false };
            if let Some(mut e) = self.expr(v, ctx) {
                if field == "reporters" && key == "name" {
                    e.sensitive = true;
                }
                fields.push((key.to_string(), e, sink));
            }
        }
        Some(Block { when, for_each, fields, ordinal })
    }

    fn court(&mut self, v: &V<'_>) -> Option<CourtSpec> {
        let t = self.table_of(v, "[court]")?;
        self.check_keys(t, &["when", "caseNo", "status", "documents"], "[court]");
        let known = [("caseNo", Sink::Text), ("status", Sink::Text)];
        let block = self.block_of(t, v.span(), "court", "court", &known, &["caseNo", "status"], false, 80)?;
        let mut documents = Vec::new();
        if let Some(d) = t.get("documents") {
            for (i, dv) in self.blocks_array(d, "[[court.documents]]").into_iter().enumerate() {
                let loc = format!("court.documents[{i}]");
                let Some(dt) = self.table_of(dv, &loc) else { continue };
                if let Some(b) = self.block_of(dt, dv.span(), &loc, "court.documents", &[], &[], true, 85) {
                    documents.push(b);
                }
            }
        }
        Some(CourtSpec { block, documents })
    }

    fn cond(&mut self, v: &V<'_>, loc: &str, in_for_each: bool) -> Option<Cond> {
        let s = self.string(v, loc)?;
        let names = &self.names;
        let resolve = |n: &str| {
            names.get(n).copied().ok_or_else(|| {
                let mut known: Vec<&str> = names.keys().map(String::as_str).collect();
                known.sort_unstable();
                format!("no value is named `{n}`{}", suggest(n, &known))
            })
        };
        let mut uses = std::mem::take(&mut self.uses);
        let r = parse_cond(s, self.syntax, &resolve, &mut uses);
        self.uses = uses;
        match r {
            Ok(c) => {
                if !in_for_each && cond_is_relative(&c) {
                    self.at(v.span(), format!("{loc}: `@` paths only work inside a block with for_each"));
                }
                Some(c)
            }
            Err(e) => {
                self.at(v.span(), format!("{loc}: {e}"));
                None
            }
        }
    }

    // ---- expressions ------------------------------------------------------

    fn expr(&mut self, v: &V<'_>, ctx: Ctx<'_>) -> Option<Expr> {
        let span = v.span();
        match v.get_ref() {
            DeValue::String(s) => {
                let looks_like_path = s.starts_with("$.")
                    || s.starts_with("$[")
                    || s.starts_with("@.")
                    || s.starts_with("@/")
                    || (self.syntax == Syntax::Xml && s.starts_with('/') && s.len() > 1 && !s.contains(' '));
                if looks_like_path {
                    self.at(span, format!("{}: \"{s}\" is a constant text here; to read it from the record write {{ path = \"{s}\" }}", ctx.loc));
                    return None;
                }
                Some(self.constant(Val::Str(s.to_string()), span, ctx))
            }
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                let val = self.literal(v, ctx.loc)?;
                Some(self.constant(val, span, ctx))
            }
            DeValue::Datetime(_) => {
                self.at(span, format!("{}: write times as text in quotes", ctx.loc));
                None
            }
            DeValue::Array(items) => {
                if items.is_empty() {
                    self.at(span, format!("{}: an empty list of alternatives", ctx.loc));
                    return None;
                }
                let mut alts = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let loc = format!("{}[{i}]", ctx.loc);
                    if let Some(e) = self.expr(item, Ctx { loc: &loc, ..ctx }) {
                        alts.push(e);
                    }
                }
                if alts.len() != items.len() {
                    return None;
                }
                for (i, alt) in alts.iter_mut().enumerate().skip(1) {
                    let table = match (&alt.lookup, &alt.source) {
                        (
                            Some(Lookup {
                                what: LookupKind::Table { table, .. } | LookupKind::Words { table, .. },
                                ..
                            }),
                            _,
                        ) => self.tables[*table].name.clone(),
                        (Some(Lookup { what: LookupKind::Map(_), .. }), _) => "(map in the mapping file)".to_string(),
                        (None, Source::Value(v)) => format!("(the value {})", v.text()),
                        (None, _) => format!("(alternative {})", i + 1),
                    };
                    self.fallbacks.push(Counter {
                        field: ctx.field.to_string(),
                        table,
                        count: AtomicU64::new(0),
                        examples: Mutex::new(Default::default()),
                    });
                    alt.fallback = Some(self.fallbacks.len() - 1);
                }
                let mut e = self.constant(Val::Bool(false), span, ctx);
                e.source = Source::First(alts);
                Some(e)
            }
            DeValue::Table(t) => self.expr_table(t, span, ctx),
        }
    }

    fn constant(&self, v: Val, span: Range<usize>, ctx: Ctx<'_>) -> Expr {
        let personal = matches!(ctx.sink, Sink::Phone | Sink::IdNumber);
        Expr {
            span: span.clone(),
            when: None,
            source: Source::Value(v),
            trim: true,
            replace: Vec::new(),
            pattern: None,
            one_of: None,
            lookup: None,
            convert: None,
            shift: None,
            min: None,
            max: None,
            max_chars: None,
            default: None,
            default_span: span,
            required: false,
            on_error: if personal { OnError::Warn } else { OnError::Reject },
            // A home address is personal too: a message about it names the
            // field, never quotes the value.
            sensitive: personal || ctx.field == "address",
            message: None,
            out: VType::Any,
            fallback: None,
        }
    }

    fn expr_table(&mut self, t: &DeTable<'_>, span: Range<usize>, ctx: Ctx<'_>) -> Option<Expr> {
        let loc = ctx.loc;
        let mut keys: Vec<&str> = EXPR_KEYS.to_vec();
        if !ctx.is_check {
            keys.retain(|k| *k != "message");
        }
        self.check_keys(t, &keys, loc);
        let errors_before = self.errors.len();
        let mut e = self.constant(Val::Bool(false), span.clone(), ctx);
        let key_loc = |k: &str| format!("{loc}.{k}");

        // The source: exactly one.
        let sources: Vec<&str> = SOURCE_KINDS.iter().copied().filter(|k| t.contains_key(*k)).collect();
        match sources.len() {
            0 => {
                self.at(
                    span.clone(),
                    format!("{loc}: says nowhere where the value comes from: give one of {}", SOURCE_KINDS.join(", ")),
                );
                return None;
            }
            1 => {}
            _ => {
                let (k, _) = t.get_key_value(sources[1]).expect("present");
                self.at(
                    k.span(),
                    format!("{loc}: give only one of {} (found {})", SOURCE_KINDS.join(", "), sources.join(", ")),
                );
                return None;
            }
        }
        let src_key = sources[0];
        let sv = t.get(src_key).expect("present");
        let sloc = key_loc(src_key);
        e.source = match src_key {
            "path" => {
                let s = self.string(sv, &sloc)?;
                match Path::parse(s, self.syntax) {
                    Ok(p) => {
                        if p.relative && !ctx.in_for_each {
                            self.at(sv.span(), format!("{sloc}: `@` paths only work inside a block with for_each"));
                        }
                        Source::Path(p)
                    }
                    Err(err) => {
                        self.at(sv.span(), format!("{sloc}: {err}"));
                        return None;
                    }
                }
            }
            "meta" => {
                let s = self.string(sv, &sloc)?;
                if s.trim().is_empty() {
                    self.at(sv.span(), format!("{sloc} is empty"));
                }
                Source::Meta(s.trim().to_string())
            }
            "record" => match self.string(sv, &sloc)? {
                "received_at" => Source::Record(RecordAttr::ReceivedAt),
                "record_id" => Source::Record(RecordAttr::RecordId),
                "version" => Source::Record(RecordAttr::Version),
                "system" => Source::Record(RecordAttr::System),
                other => {
                    let msg = format!("{sloc}: `{other}` is not one of received_at, record_id, version, system");
                    self.at(sv.span(), msg);
                    return None;
                }
            },
            "from" => {
                let s = self.string(sv, &sloc)?;
                match self.names.get(s) {
                    Some(&slot) => {
                        self.uses.push(slot);
                        Source::From(slot)
                    }
                    None => {
                        let mut known: Vec<&str> = self.names.keys().map(String::as_str).collect();
                        known.sort_unstable();
                        let msg = format!("{sloc}: no value is named `{s}`{}", suggest(s, &known));
                        self.at(sv.span(), msg);
                        return None;
                    }
                }
            }
            "value" => Source::Value(self.literal(sv, &sloc)?),
            "template" => {
                let s = self.string(sv, &sloc)?;
                let names = &self.names;
                let resolve = |n: &str| {
                    names.get(n).copied().ok_or_else(|| {
                        let mut known: Vec<&str> = names.keys().map(String::as_str).collect();
                        known.sort_unstable();
                        format!("no value is named `{n}`{}", suggest(n, &known))
                    })
                };
                let mut uses = std::mem::take(&mut self.uses);
                let r = parse_template(s, self.syntax, &resolve, &mut uses);
                self.uses = uses;
                match r {
                    Ok(tpl) => {
                        let relative = tpl.parts.iter().any(|p| {
                            matches!(p, super::spec::TemplatePart::Ref(super::spec::Operand::Path(p)) if p.relative)
                        });
                        if relative && !ctx.in_for_each {
                            self.at(sv.span(), format!("{sloc}: `@` paths only work inside a block with for_each"));
                        }
                        Source::Template(tpl)
                    }
                    Err(err) => {
                        self.at(sv.span(), format!("{sloc}: {err}"));
                        return None;
                    }
                }
            }
            "concat" => {
                let DeValue::Array(items) = sv.get_ref() else {
                    self.at(sv.span(), format!("{sloc} must be a list of expressions"));
                    return None;
                };
                let mut parts = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let ploc = format!("{sloc}[{i}]");
                    parts.push(self.expr(item, Ctx { loc: &ploc, sink: Sink::Any, ..ctx })?);
                }
                let sep = match t.get("sep") {
                    Some(s) => self.string(s, &key_loc("sep"))?.to_string(),
                    None => String::new(),
                };
                Source::Concat { parts, sep }
            }
            "test" => Source::Test(self.cond(sv, &sloc, ctx.in_for_each)?),
            _ => return None,
        };
        if t.contains_key("sep") && src_key != "concat" {
            let (k, _) = t.get_key_value("sep").expect("present");
            self.at(k.span(), format!("{loc}: `sep` only goes with `concat`"));
        }

        if let Some(w) = t.get("when") {
            e.when = self.cond(w, &key_loc("when"), ctx.in_for_each);
        }
        if let Some(v) = t.get("trim") {
            e.trim = self.boolean(v, &key_loc("trim")).unwrap_or(true);
        }
        if let Some(v) = t.get("replace")
            && let Some(rt) = self.table_of(v, &key_loc("replace"))
        {
            for (k, to) in rt.iter() {
                if k.get_ref().is_empty() {
                    self.at(k.span(), format!("{loc}.replace: an empty text cannot be replaced"));
                }
                if let Some(to) = self.string(to, &key_loc("replace")) {
                    e.replace.push((k.get_ref().to_string(), to.to_string()));
                }
            }
            e.replace.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        }
        if let Some(v) = t.get("pattern") {
            if let Some(p) = self.string(v, &key_loc("pattern")) {
                match Regex::new(p) {
                    Ok(re) => {
                        let group = match t.get("capture") {
                            Some(c) => match self.integer(c, &key_loc("capture")) {
                                Some(g) if g >= 0 && (g as usize) < re.captures_len() => g as usize,
                                Some(g) => {
                                    let msg = format!(
                                        "{loc}.capture: the pattern has no group {g} (it has {})",
                                        re.captures_len() - 1
                                    );
                                    self.at(c.span(), msg);
                                    0
                                }
                                None => 0,
                            },
                            None => 0,
                        };
                        e.pattern = Some((re, group));
                    }
                    Err(err) => {
                        let text = err.to_string();
                        let first = text.lines().last().unwrap_or("").trim().trim_start_matches("error: ").to_string();
                        self.at(v.span(), format!("{loc}.pattern is not a valid regular expression: {first}"));
                    }
                }
            }
        } else if let Some((k, _)) = t.get_key_value("capture") {
            self.at(k.span(), format!("{loc}: `capture` only goes with `pattern`"));
        }
        if let Some(v) = t.get("one_of") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    let mut set = Vec::new();
                    for item in items.iter() {
                        if let Some(val) = self.literal(item, &key_loc("one_of")) {
                            set.push(val.text().into_owned());
                        }
                    }
                    e.one_of = Some(set);
                }
                other => self.at(v.span(), format!("{loc}.one_of must be a list, not {}", other.type_str())),
            }
        }
        let by_words = t.get("classify");
        let lookup = match (t.get("lookup"), by_words) {
            (Some(_), Some(c)) => {
                self.at(c.span(), format!("{loc}: give `lookup` or `classify`, not both"));
                None
            }
            (l, c) => l.or(c),
        };
        let step = if by_words.is_some() { "classify" } else { "lookup" };
        match (lookup, t.get("map")) {
            (Some(_), Some(m)) => self.at(m.span(), format!("{loc}: give `{step}` or `map`, not both")),
            (Some(lv), None) => {
                if let Some(name) = self.string(lv, &key_loc(step)) {
                    let name = name.to_string();
                    if let Some(table) = self.table(&name, lv.span(), &key_loc(step)) {
                        let column = match t.get("column") {
                            Some(cv) => self.string(cv, &key_loc("column")).and_then(|c| {
                                let found = self.tables[table].column(c);
                                if found.is_none() {
                                    let cols = self.tables[table].columns.join(", ");
                                    self.at(
                                        cv.span(),
                                        format!("{loc}.column: table `{name}` has no column `{c}` (it has {cols})"),
                                    );
                                }
                                found
                            }),
                            None if self.tables[table].columns.len() >= 2 => Some(1),
                            None => {
                                self.at(lv.span(), format!("{loc}.{step}: table `{name}` has only a key column; it needs a second column with the values"));
                                None
                            }
                        };
                        if let Some(column) = column {
                            if column == 0 {
                                let (k, _) = t.get_key_value("column").expect("present");
                                self.at(k.span(), format!("{loc}.column: the key column gives back what was looked up; name a value column"));
                            }
                            let counter = self.counter(ctx.field, &name);
                            let what = if by_words.is_some() {
                                LookupKind::Words { table, column, words: words_of(&self.tables[table]) }
                            } else {
                                LookupKind::Table { table, column }
                            };
                            e.lookup = Some(Lookup { what, counter });
                        }
                    }
                }
            }
            (None, Some(mv)) => {
                if let Some(mt) = self.table_of(mv, &key_loc("map")) {
                    let mut map = HashMap::new();
                    for (k, val) in mt.iter() {
                        if let Some(val) = self.literal(val, &key_loc("map")) {
                            map.insert(k.get_ref().to_string(), val);
                        }
                    }
                    if map.is_empty() {
                        self.at(mv.span(), format!("{loc}.map is empty"));
                    }
                    let counter = self.counter(ctx.field, "(map in the mapping file)");
                    e.lookup = Some(Lookup { what: LookupKind::Map(map), counter });
                }
            }
            (None, None) => {
                if let Some((k, _)) = t.get_key_value("column") {
                    self.at(k.span(), format!("{loc}: `column` only goes with `lookup` or `classify`"));
                }
            }
        }

        // Conversions: at most one.
        let convs: Vec<&str> =
            ["datetime", "date", "epoch", "region"].into_iter().filter(|k| t.contains_key(*k)).collect();
        if convs.len() > 1 {
            let (k, _) = t.get_key_value(convs[1]).expect("present");
            self.at(k.span(), format!("{loc}: give only one of datetime, date, epoch, region"));
        }
        let tz = match t.get("tz") {
            Some(v) => {
                if !(t.contains_key("datetime") || t.contains_key("date") || t.contains_key("epoch")) {
                    self.at(v.span(), format!("{loc}: `tz` only goes with datetime, date or epoch"));
                }
                self.string(v, &key_loc("tz")).and_then(|s| match transform::parse_tz(s) {
                    Ok(tz) => Some(tz),
                    Err(err) => {
                        self.at(v.span(), format!("{loc}.{err}"));
                        None
                    }
                })
            }
            None => None,
        }
        .unwrap_or_else(beijing);
        if let Some(v) = t.get("datetime")
            && let Some(f) = self.string(v, &key_loc("datetime"))
        {
            if f.eq_ignore_ascii_case("rfc3339") {
                e.convert = Some(Convert::DateTime { format: None, tz, offset: true });
            } else {
                match transform::check_format(f, false) {
                    Ok(offset) => e.convert = Some(Convert::DateTime { format: Some(f.to_string()), tz, offset }),
                    Err(err) => self.at(v.span(), format!("{loc}.datetime: {err}")),
                }
            }
        }
        if let Some(v) = t.get("date") {
            if let Some(f) = self.string(v, &key_loc("date")) {
                let time = match t.get("time_of_day") {
                    Some(tv) => self.string(tv, &key_loc("time_of_day")).and_then(|s| {
                        let parsed = NaiveTime::parse_from_str(s, "%H:%M:%S").ok();
                        if parsed.is_none() {
                            self.at(tv.span(), format!("{loc}.time_of_day: `{s}` is not a time like \"23:59:59\""));
                        }
                        parsed
                    }),
                    None => None,
                }
                .unwrap_or(NaiveTime::MIN);
                match transform::check_format(f, true) {
                    Ok(_) => e.convert = Some(Convert::Date { format: f.to_string(), tz, time }),
                    Err(err) => self.at(v.span(), format!("{loc}.date: {err}")),
                }
            }
        } else if let Some((k, _)) = t.get_key_value("time_of_day") {
            self.at(k.span(), format!("{loc}: `time_of_day` only goes with `date`"));
        }
        if let Some(v) = t.get("epoch") {
            match self.string(v, &key_loc("epoch")) {
                Some("ms") => e.convert = Some(Convert::Epoch { millis: true, tz }),
                Some("s") => e.convert = Some(Convert::Epoch { millis: false, tz }),
                Some(other) => {
                    let msg = format!("{loc}.epoch: `{other}` is not `ms` (milliseconds) or `s` (seconds)");
                    self.at(v.span(), msg);
                }
                None => {}
            }
        }
        if let Some(v) = t.get("region")
            && let Some(name) = self.string(v, &key_loc("region"))
        {
            let name = name.to_string();
            if let Some(table) = self.table(&name, v.span(), &key_loc("region"))
                && let Some(regions) = self.regions_of(table)
            {
                let counter = self.counter(ctx.field, &name);
                e.convert = Some(Convert::Region { regions, counter });
            }
        }

        // Deadlines: at most one.
        let shifts: Vec<&str> =
            ["add_working_days", "add_days", "add_hours"].into_iter().filter(|k| t.contains_key(*k)).collect();
        if shifts.len() > 1 {
            let (k, _) = t.get_key_value(shifts[1]).expect("present");
            self.at(k.span(), format!("{loc}: give only one of add_working_days, add_days, add_hours"));
        }
        if let Some(&kind) = shifts.first() {
            let v = t.get(kind).expect("present");
            let aloc = key_loc(kind);
            let arg = self.expr(v, Ctx { loc: &aloc, sink: Sink::Int, ..ctx });
            if let Some(arg) = arg {
                let by = Box::new(arg);
                e.shift = Some(match kind {
                    "add_working_days" => {
                        let holidays = t.get("holidays").and_then(|h| {
                            let name = self.string(h, &key_loc("holidays"))?.to_string();
                            let table = self.table(&name, h.span(), &key_loc("holidays"))?;
                            self.holidays_of(table)
                        });
                        Shift::WorkingDays { by, holidays }
                    }
                    "add_days" => Shift::Days(by),
                    _ => Shift::Hours(by),
                });
            }
        }
        if !t.contains_key("add_working_days")
            && let Some((k, _)) = t.get_key_value("holidays")
        {
            self.at(k.span(), format!("{loc}: `holidays` only goes with `add_working_days`"));
        }

        if let Some(v) = t.get("min") {
            e.min = self.number(v, &key_loc("min"));
        }
        if let Some(v) = t.get("max") {
            e.max = self.number(v, &key_loc("max"));
        }
        if let Some(v) = t.get("max_chars") {
            match self.integer(v, &key_loc("max_chars")) {
                Some(n) if n >= 1 => e.max_chars = Some(n as usize),
                Some(_) => self.at(v.span(), format!("{loc}.max_chars must be 1 or more")),
                None => {}
            }
        }
        if let Some(v) = t.get("default") {
            e.default = self.literal(v, &key_loc("default"));
            e.default_span = v.span();
        }
        if let Some(v) = t.get("required") {
            e.required = self.boolean(v, &key_loc("required")).unwrap_or(false);
        }
        if let Some(v) = t.get("on_error") {
            match self.string(v, &key_loc("on_error")) {
                Some("reject") => e.on_error = OnError::Reject,
                Some("warn") => e.on_error = OnError::Warn,
                Some(other) => {
                    let msg = format!(
                        "{loc}.on_error: `{other}` is not `reject` (quarantine the record) or `warn` (leave the value out with a warning)"
                    );
                    self.at(v.span(), msg);
                }
                None => {}
            }
        }
        if let Some(v) = t.get("sensitive") {
            e.sensitive = self.boolean(v, &key_loc("sensitive")).unwrap_or(true) || e.sensitive;
        }
        if let Some(v) = t.get("message") {
            e.message = self.string(v, &key_loc("message")).map(str::to_string);
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(e)
    }

    // ---- types --------------------------------------------------------------

    /// Works out what an expression yields, checks that its steps fit, and
    /// turns its default into the right kind of value.
    fn infer(&mut self, e: &mut Expr, slots: &[VType], loc: &str) -> VType {
        let mut t = match &mut e.source {
            Source::Path(_) => VType::Any,
            Source::Meta(_) => VType::Text,
            Source::Record(RecordAttr::ReceivedAt) => VType::Time,
            Source::Record(RecordAttr::Version) => VType::Int,
            Source::Record(_) => VType::Text,
            Source::From(s) => slots[*s],
            Source::Value(v) => v.vtype(),
            Source::Template(_) => VType::Text,
            Source::Concat { parts, .. } => {
                for p in parts.iter_mut() {
                    self.infer(p, slots, loc);
                }
                VType::Text
            }
            Source::Test(_) => VType::Bool,
            Source::First(alts) => {
                let types: Vec<VType> = alts.iter_mut().map(|a| self.infer(a, slots, loc)).collect();
                if types.contains(&VType::Unknown) {
                    VType::Unknown
                } else if types.windows(2).all(|w| w[0] == w[1]) {
                    types[0]
                } else {
                    VType::Any
                }
            }
        };
        if !e.replace.is_empty() {
            t = VType::Text;
        }
        if matches!(e.pattern, Some((_, g)) if g > 0) {
            t = VType::Text;
        }
        if let Some(l) = &e.lookup {
            t = match &l.what {
                LookupKind::Table { .. } | LookupKind::Words { .. } => VType::Text,
                LookupKind::Map(map) => {
                    let types: HashSet<VType> = map.values().map(Val::vtype).collect();
                    if types.len() == 1 { types.into_iter().next().unwrap_or(VType::Any) } else { VType::Any }
                }
            };
        }
        if let Some(c) = &e.convert {
            if matches!(t, VType::Time | VType::Region | VType::Bool) {
                self.at(
                    e.span.clone(),
                    format!("{loc}: the value is already {}; it cannot be parsed again", t.describe()),
                );
            }
            t = if matches!(c, Convert::Region { .. }) { VType::Region } else { VType::Time };
        }
        if let Some(shift) = &mut e.shift {
            if t != VType::Time && t != VType::Unknown {
                self.at(
                    e.span.clone(),
                    format!(
                        "{loc}: a deadline is counted from a time, and this value is {}: parse it with datetime, date or epoch, or take it `from` a time field such as occurredAt",
                        t.describe()
                    ),
                );
            }
            let by = match shift {
                Shift::WorkingDays { by, .. } | Shift::Days(by) | Shift::Hours(by) => by,
            };
            self.infer(by, slots, loc);
        }
        if (e.min.is_some() || e.max.is_some()) && matches!(t, VType::Time | VType::Region | VType::Bool) {
            self.at(e.span.clone(), format!("{loc}: min and max compare numbers, and this value is {}", t.describe()));
        }
        if e.max_chars.is_some() {
            t = VType::Text;
        }
        if let Some(d) = e.default.take() {
            e.default = self.default_for(e, d, t, loc);
        }
        e.out = t;
        t
    }

    fn default_for(&mut self, e: &Expr, d: Val, t: VType, loc: &str) -> Option<Val> {
        let span = e.default_span.clone();
        match t {
            VType::Time => match &d {
                Val::Str(s) => match chrono::DateTime::parse_from_rfc3339(s) {
                    Ok(time) => Some(Val::Time(time)),
                    Err(_) => {
                        self.at(
                            span,
                            format!("{loc}.default: `{s}` is not an RFC 3339 time like 2024-07-15T09:40:00+08:00"),
                        );
                        None
                    }
                },
                _ => {
                    self.at(span, format!("{loc}.default must be a time in quotes"));
                    None
                }
            },
            VType::Region => {
                let Some(Convert::Region { regions, .. }) = &e.convert else { return Some(d) };
                let code = d.text().into_owned();
                match self.regions[*regions].resolve(&code) {
                    Some(r) => Some(Val::Region(Box::new(r))),
                    None => {
                        let table = self.regions[*regions].table.clone();
                        self.at(span, format!("{loc}.default: `{code}` is not a division in table `{table}`"));
                        None
                    }
                }
            }
            _ => Some(d),
        }
    }

    /// Checks that an expression can become what its field needs, and that
    /// every value it can give (constants, map and table values) is valid.
    fn check_sink(&mut self, e: &Expr, sink: Sink, loc: &str) {
        if e.out == VType::Unknown {
            return;
        }
        if let Source::First(alts) = &e.source
            && e.lookup.is_none()
            && e.convert.is_none()
            && e.shift.is_none()
        {
            for (i, a) in alts.iter().enumerate() {
                self.check_sink(a, sink, &format!("{loc}[{i}]"));
            }
            if let Some(d) = &e.default {
                self.check_value(sink, d, e.default_span.clone(), loc);
            }
            return;
        }
        match sink {
            Sink::Time if e.out != VType::Time => {
                self.at(
                    e.span.clone(),
                    format!(
                        "{loc} must be a time: add datetime = \"%Y-%m-%d %H:%M:%S\" (or \"rfc3339\"), date = \"%Y%m%d\" or epoch = \"ms\", or take it `from` a time field"
                    ),
                );
                return;
            }
            Sink::Region if e.out != VType::Region => {
                self.at(
                    e.span.clone(),
                    format!("{loc} must be a region: add region = \"regions\" (the regions table)"),
                );
                return;
            }
            _ => {}
        }
        if !matches!(
            sink,
            Sink::Kind | Sink::Status | Sink::Category | Sink::EvalResult | Sink::Channel | Sink::Bool | Sink::Int
        ) {
            return;
        }
        let transforms_after_lookup = e.convert.is_some() || e.shift.is_some() || e.max_chars.is_some();
        match &e.lookup {
            Some(Lookup { what: LookupKind::Map(map), .. }) if !transforms_after_lookup => {
                let mut values: Vec<&Val> = map.values().collect();
                values.sort_by_key(|v| v.text().into_owned());
                for v in values {
                    self.check_value(sink, v, e.span.clone(), loc);
                }
            }
            Some(Lookup {
                what: LookupKind::Table { table, column } | LookupKind::Words { table, column, .. },
                ..
            }) if !transforms_after_lookup => {
                let tag = sink_tag(sink);
                if self.checked_columns.insert((*table, *column, tag)) {
                    let t = &self.tables[*table];
                    let mut errs = Vec::new();
                    for (line, value) in t.column_values(*column) {
                        if value.is_empty() {
                            continue;
                        }
                        if let Err(msg) = convert_sink(sink, Val::Str(value.to_string())) {
                            errs.push(t.error_at(
                                line,
                                format!("table `{}`, column `{}` (used for {loc}): {msg}", t.name, t.columns[*column]),
                            ));
                        }
                    }
                    self.errors.extend(errs);
                }
            }
            None if e.convert.is_none() && e.shift.is_none() && e.pattern.is_none() && e.replace.is_empty() => {
                if let Source::Value(v) = &e.source {
                    self.check_value(sink, v, e.span.clone(), loc);
                }
            }
            _ => {}
        }
        if let Some(d) = &e.default {
            self.check_value(sink, d, e.default_span.clone(), loc);
        }
    }

    fn check_value(&mut self, sink: Sink, v: &Val, span: Range<usize>, loc: &str) {
        if matches!(sink, Sink::Time | Sink::Region | Sink::Phone | Sink::IdNumber) {
            return;
        }
        if let Err(msg) = convert_sink(sink, v.clone()) {
            self.at(span, format!("{loc}: {msg}"));
        }
    }

    /// Slots in dependency order; a cycle is an error.
    fn order(&mut self, names: &[(String, Range<usize>)], deps: &[Vec<usize>]) -> Vec<usize> {
        let n = names.len();
        let mut state = vec![0u8; n]; // 0 new, 1 in progress, 2 done
        let mut order = Vec::with_capacity(n);
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            // Iterative depth-first search.
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = deps.get(node).and_then(|d| d.get(*next)) {
                    *next += 1;
                    match state[dep] {
                        0 => {
                            state[dep] = 1;
                            stack.push((dep, 0));
                        }
                        1 => {
                            let cycle: Vec<&str> = stack
                                .iter()
                                .skip_while(|(s, _)| *s != dep)
                                .map(|(s, _)| names[*s].0.as_str())
                                .chain([names[dep].0.as_str()])
                                .collect();
                            let span = names[node].1.clone();
                            self.at(span, format!("`{}` depends on itself: {}", names[dep].0, cycle.join(" → ")));
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        order
    }
}

/// The keys of a word table (`classify`), longest first; of equal length,
/// in the table's order.
fn words_of(table: &Table) -> Vec<(String, usize)> {
    let mut words: Vec<(String, usize)> = table
        .rows()
        .enumerate()
        .filter_map(|(i, (_, row))| row.first().filter(|k| !k.is_empty()).map(|k| (k.clone(), i)))
        .collect();
    words.sort_by_key(|(w, _)| std::cmp::Reverse(w.chars().count()));
    words
}

fn sink_tag(sink: Sink) -> &'static str {
    match sink {
        Sink::Kind => "kind",
        Sink::Status => "status",
        Sink::Category => "category",
        Sink::EvalResult => "evaluation",
        Sink::Channel => "channel",
        Sink::Bool => "bool",
        Sink::Int => "int",
        _ => "other",
    }
}

fn sink_type(sink: Sink) -> Option<VType> {
    Some(match sink {
        Sink::Time => VType::Time,
        Sink::Region => VType::Region,
        Sink::Bool => VType::Bool,
        Sink::Int => VType::Int,
        Sink::Float => VType::Num,
        Sink::Any | Sink::Json => return None,
        _ => VType::Text,
    })
}

fn cond_is_relative(c: &Cond) -> bool {
    use super::spec::Operand;
    let rel = |o: &Operand| matches!(o, Operand::Path(p) if p.relative);
    match c {
        Cond::Truthy(o) => rel(o),
        Cond::Not(c) => cond_is_relative(c),
        Cond::And(a, b) | Cond::Or(a, b) => cond_is_relative(a) || cond_is_relative(b),
        Cond::Cmp(a, _, b) => rel(a) || rel(b),
    }
}

/// Builds a structure from a code table once (regions, holidays), keeping
/// it in `built` and remembering the outcome under the table's index, so a
/// table used by several fields is checked, and its errors reported, once.
fn built_once<T>(
    index: &mut HashMap<usize, Option<usize>>,
    built: &mut Vec<T>,
    errors: &mut Vec<MappingError>,
    source: &Table,
    table: usize,
    build: fn(&Table) -> Result<T, Vec<MappingError>>,
) -> Option<usize> {
    if let Some(found) = index.get(&table) {
        return *found;
    }
    let result = match build(source) {
        Ok(value) => {
            built.push(value);
            Some(built.len() - 1)
        }
        Err(errs) => {
            errors.extend(errs);
            None
        }
    };
    index.insert(table, result);
    result
}
