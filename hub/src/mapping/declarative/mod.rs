//! Declarative mappings: one TOML file per agency (`mappings/*.toml`) plus
//! CSV code tables, loaded and checked once, then run on every record.
//! Onboarding a new agency is a new mapping file, not new code.
//!
//! The language is documented with examples in `mappings/README.md`. In
//! short: `[source]` says what the records are, `[identity]` where their id
//! and version are, `[fields]` how each ticket field is made (a path into the
//! JSON or XML body, transforms, code lookups, templates, conditions),
//! `[[reporters]]`, `[[attachments]]`, `[court]` and `[evaluation]` build the
//! ticket's lists and objects, `[checks]` reject records that break the
//! contract, `[let]` names intermediate values.
//!
//! Mistakes in a mapping file are reported when it is loaded, each as
//! `file:line:col: where: what`; a record that does not fit becomes
//! [`Unmappable`] with a reason naming the fields (never personal values);
//! unknown codes that fall back to a default are counted per lookup
//! ([`DeclarativeMapper::unknown_codes`]).

mod cond;
mod doc;
mod eval;
mod load;
mod path;
mod spec;
mod table;
mod transform;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::Ordering;

use connectors::{ContentType, RawRecord};

use super::{Mapped, Mapper, Unmappable, decode_text};
use crate::store::Applied;
use crate::ticket::Channel;
use doc::Doc;
use spec::{Compiled, Format};

/// One mistake in a mapping file or one of its tables, and all of them.
pub use crate::diagnostic::{Diagnostic as MappingError, Diagnostics as MappingErrors};

/// How often one lookup met a code its table (or `map`) does not know, and
/// which codes those were (at most 50 distinct, scrubbed). With a `default`
/// the record went on with the default; without one it was quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCodes {
    /// The ticket field (or `[let]` name) the lookup belongs to: `category`.
    pub field: String,
    /// The table (`hotline-categories`) or `(map in the mapping file)`.
    pub table: String,
    pub count: u64,
    /// `(code, how often)`, by code.
    pub examples: Vec<(String, u64)>,
}

/// A holiday table given by the operator (`[calendar] holidays` in the
/// config), used instead of the one each mapping names: a new year's
/// arrangement goes in without a new release or exported mappings.
#[derive(Debug, Clone)]
pub struct HolidayTable(table::Holidays);

impl HolidayTable {
    /// Reads a CSV with the columns `date` and `type` (see `mappings/README.md`).
    pub fn load(path: &Path) -> Result<HolidayTable, MappingErrors> {
        let table = table::Table::load("holidays", path).map_err(MappingErrors)?;
        table::Holidays::build(&table).map(HolidayTable).map_err(MappingErrors)
    }

    /// The years the table has, e.g. `2024–2026`.
    pub fn years(&self) -> String {
        self.0.years_text()
    }
}

/// How far ahead of today `hub check` wants the holiday table to reach:
/// the longest working-day deadlines (60 working days) end about this far on.
const HOLIDAYS_AHEAD_DAYS: u64 = 90;

/// A mapper made from a mapping file.
#[derive(Debug)]
pub struct DeclarativeMapper {
    compiled: Compiled,
    /// `[feedback]`: how status changes go back to this agency.
    feedback: Option<std::sync::Arc<crate::mapping::feedback::FeedbackSpec>>,
}

impl DeclarativeMapper {
    /// Loads a mapping file; its tables are looked for relative to the file
    /// (`[source] tables`, by default `tables/`).
    pub fn load(path: &Path) -> Result<DeclarativeMapper, MappingErrors> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            MappingErrors(vec![MappingError {
                origin: origin.clone(),
                line: None,
                column: None,
                message: format!("cannot read the mapping file: {e}"),
            }])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_str(&text, &origin, base)
    }

    /// Loads a mapping from text; `origin` names it in errors, tables are
    /// looked for relative to `base_dir`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &str, base_dir: &Path) -> Result<DeclarativeMapper, MappingErrors> {
        Self::with_feedback(load::compile(text, origin, load::TableSource::Dir(base_dir)), text, origin)
    }

    /// The compiled mapping and its `[feedback]` section, every mistake of
    /// both reported together.
    fn with_feedback(
        compiled: Result<Compiled, Vec<MappingError>>,
        text: &str,
        origin: &str,
    ) -> Result<DeclarativeMapper, MappingErrors> {
        let feedback = crate::mapping::feedback::FeedbackSpec::from_mapping(text, origin);
        match (compiled, feedback) {
            (Ok(compiled), Ok(feedback)) => {
                Ok(DeclarativeMapper { compiled, feedback: feedback.map(std::sync::Arc::new) })
            }
            (Err(mut a), Err(b)) => {
                a.extend(b);
                Err(MappingErrors(a))
            }
            (Err(a), _) | (_, Err(a)) => Err(MappingErrors(a)),
        }
    }

    /// How status changes of its tickets go back to this agency, if its
    /// mapping says.
    pub fn feedback(&self) -> Option<&std::sync::Arc<crate::mapping::feedback::FeedbackSpec>> {
        self.feedback.as_ref()
    }

    /// Loads a mapping shipped inside the binary, with the shipped tables.
    pub(crate) fn from_shipped(text: &str, origin: &str) -> Result<DeclarativeMapper, MappingErrors> {
        Self::with_feedback(load::compile(text, origin, load::TableSource::Shipped), text, origin)
    }

    /// `[source] name`: the source's name in the hub config.
    pub fn name(&self) -> &str {
        &self.compiled.name
    }

    pub fn channel(&self) -> Channel {
        self.compiled.channel
    }

    /// `[source] max_bytes`: larger bodies are refused (HTTP) or quarantined.
    pub fn max_bytes(&self) -> usize {
        self.compiled.max_bytes
    }

    /// The file the mapping was loaded from.
    pub fn origin(&self) -> &str {
        &self.compiled.origin
    }

    /// Unknown codes per lookup, for every lookup of the mapping (also those
    /// that never missed, with a count of 0).
    pub fn unknown_codes(&self) -> Vec<UnknownCodes> {
        counts(&self.compiled.counters)
    }

    /// Values a later alternative gave after an earlier one did not know the
    /// code (a cause of action mapped by its name, a category by the words
    /// of its text), per field and table, with what was used (the words, or
    /// the values): for every alternative that can, also with a count of 0.
    pub fn fallbacks(&self) -> Vec<UnknownCodes> {
        counts(&self.compiled.fallbacks)
    }

    /// Uses `table` for every working-day deadline instead of the holiday
    /// table the mapping file names.
    pub fn with_holidays(mut self, table: &HolidayTable) -> Self {
        for h in &mut self.compiled.holidays {
            *h = table.0.clone();
        }
        self
    }

    /// Deadlines counted into a year the holiday table does not cover, since start.
    pub fn deadlines_past_holidays(&self) -> u64 {
        self.compiled.past_holidays.load(Ordering::Relaxed)
    }

    /// Why working-day deadlines counted from `today` on may come out wrong:
    /// the holiday table lacks this year or the one the next deadlines run
    /// into. None when the mapping counts no working days.
    pub fn holiday_coverage(&self, today: chrono::NaiveDate) -> Option<String> {
        let ahead = today.checked_add_days(chrono::Days::new(HOLIDAYS_AHEAD_DAYS)).unwrap_or(today);
        let h = self.compiled.holidays.first()?;
        let missing: std::collections::BTreeSet<i32> =
            [today, ahead].iter().map(chrono::Datelike::year).filter(|y| !h.covers(*y)).collect();
        let first = missing.first()?;
        Some(format!(
            "the holiday table `{}` covers {}, not {first}: working-day deadlines in {first} will be counted Monday–Friday (no public holidays, no make-up days) until the State Council's arrangement for {first} is added (`[calendar] holidays = \"FILE\"`)",
            h.name,
            h.years_text()
        ))
    }

    /// The counters as Prometheus text (`hub_mapping_unknown_codes_total`,
    /// `hub_mapping_fallbacks_total`, `hub_deadlines_past_holidays_total`).
    pub fn render_metrics(&self, system: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if !self.compiled.holidays.is_empty() {
            let _ = writeln!(
                out,
                "hub_deadlines_past_holidays_total{{system=\"{}\"}} {}",
                escape_label(system),
                self.deadlines_past_holidays()
            );
        }
        for c in self.fallbacks() {
            let _ = writeln!(
                out,
                "hub_mapping_fallbacks_total{{system=\"{}\",field=\"{}\",table=\"{}\"}} {}",
                escape_label(system),
                escape_label(&c.field),
                escape_label(&c.table),
                c.count
            );
        }
        for c in self.unknown_codes() {
            let _ = writeln!(
                out,
                "hub_mapping_unknown_codes_total{{system=\"{}\",field=\"{}\",table=\"{}\"}} {}",
                escape_label(system),
                escape_label(&c.field),
                escape_label(&c.table),
                c.count
            );
        }
        out
    }

    fn parse(&self, record: &RawRecord) -> Result<Doc, String> {
        let c = &self.compiled;
        let (expected, name) = match c.format {
            Format::Json => (ContentType::Json, "JSON"),
            Format::Xml => (ContentType::Xml, "XML"),
        };
        if record.content_type != expected {
            return Err(format!("expected {name}, the transport declared {}", record.content_type.as_str()));
        }
        if record.payload.len() > c.max_bytes {
            return Err(format!("the body has {} bytes, more than max_bytes = {}", record.payload.len(), c.max_bytes));
        }
        match c.format {
            Format::Json => {
                let declared = record.encoding.as_deref().or(c.encoding.as_deref());
                let text = decode_text(&record.payload, declared)?;
                serde_json::from_str(&text).map(Doc::Json).map_err(|e| format!("the body is not valid JSON: {e}"))
            }
            Format::Xml => {
                let from_xml = doc::xml_declared_encoding(&record.payload);
                let declared = record.encoding.as_deref().or(from_xml.as_deref()).or(c.encoding.as_deref());
                let text = decode_text(&record.payload, declared)?;
                let root = doc::parse_xml(&text)?;
                if let Some(expected) = &c.root
                    && &root.name != expected
                {
                    return Err(format!(
                        "the root element is <{}>, expected <{expected}> (one record per document)",
                        doc::short(&root.name)
                    ));
                }
                Ok(Doc::Xml(root))
            }
        }
    }
}

fn counts(counters: &[spec::Counter]) -> Vec<UnknownCodes> {
    counters
        .iter()
        .map(|c| UnknownCodes {
            field: c.field.clone(),
            table: c.table.clone(),
            count: c.count.load(Ordering::Relaxed),
            examples: c
                .examples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        })
        .collect()
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Mapper for DeclarativeMapper {
    fn dedup(&self) -> crate::mapping::DedupOverride {
        self.compiled.dedup
    }

    fn map(&self, record: &RawRecord) -> Result<Mapped, Unmappable> {
        let doc = self.parse(record).map_err(Unmappable::new)?;
        let outcome = eval::Run::new(&self.compiled, &doc, record).run();
        match (outcome.result, outcome.record_id, outcome.version) {
            (Ok((draft, warnings)), Some(record_id), Some(version)) => {
                let patch = match outcome.patch.as_deref().map(crate::ticket::Patch::parse).transpose() {
                    Ok(p) => p,
                    Err(reason) => {
                        return Err(Unmappable { reason, record_id: Some(record_id), version: Some(version) });
                    }
                };
                Ok(Mapped {
                    record_id,
                    version,
                    message_id: outcome.message_id,
                    applied: Applied { channel: self.compiled.channel, draft, patch },
                    warnings,
                })
            }
            (Ok(_), record_id, version) => {
                Err(Unmappable { reason: "the record has no id or version".into(), record_id, version })
            }
            (Err(reason), record_id, version) => Err(Unmappable { reason, record_id, version }),
        }
    }
}
