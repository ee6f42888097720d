//! Code tables: CSV files beside the mapping files (`mappings/tables/*.csv`).
//!
//! The first column is the key. A key ending in `*` matches every code that
//! starts with what comes before it (`01*` is the whole class `01xx`, a lone
//! `*` is everything else); an exact key wins over a prefix, and a longer
//! prefix over a shorter one. Lines starting with `#` are comments.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate, Weekday};

use super::MappingError;
use crate::ticket::{Region, RegionCode};

/// One loaded table.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: String,
    pub origin: String,
    pub columns: Vec<String>,
    rows: Vec<Vec<String>>,
    /// The line of each row in its file, for load-time errors.
    lines: Vec<usize>,
    exact: HashMap<String, usize>,
    /// `(prefix, row)`, longest prefix first.
    prefixes: Vec<(String, usize)>,
}

impl Table {
    pub fn load(name: &str, path: &Path) -> Result<Table, Vec<MappingError>> {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| {
            vec![MappingError {
                origin: origin.clone(),
                line: None,
                column: None,
                message: format!("cannot read table `{name}`: {e}"),
            }]
        })?;
        Self::read(name, origin, file)
    }

    /// Reads a table from CSV text; `origin` names it in errors.
    pub fn read(name: &str, origin: String, csv: impl std::io::Read) -> Result<Table, Vec<MappingError>> {
        let err = |line: Option<usize>, message: String| MappingError {
            origin: origin.clone(),
            line,
            column: line.map(|_| 1),
            message,
        };
        let mut reader =
            csv::ReaderBuilder::new().has_headers(true).comment(Some(b'#')).trim(csv::Trim::All).from_reader(csv);
        let columns: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(str::to_string).collect(),
            Err(e) => return Err(vec![err(csv_line(&e), format!("table `{name}`: {e}"))]),
        };
        let mut errors = Vec::new();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            return Err(vec![err(
                Some(1),
                format!("table `{name}` has no header line (the first line names the columns)"),
            )]);
        }
        for (i, c) in columns.iter().enumerate() {
            if c.is_empty() {
                errors.push(err(Some(1), format!("column {} of table `{name}` has no name", i + 1)));
            } else if columns[..i].contains(c) {
                errors.push(err(Some(1), format!("table `{name}` names the column `{c}` twice")));
            }
        }
        let mut table = Table {
            name: name.to_string(),
            origin: origin.clone(),
            columns,
            rows: Vec::new(),
            lines: Vec::new(),
            exact: HashMap::new(),
            prefixes: Vec::new(),
        };
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    errors.push(err(csv_line(&e), format!("table `{name}`: {}", csv_message(&e))));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line() as usize);
            let row: Vec<String> = record.iter().map(str::to_string).collect();
            let key = row.first().cloned().unwrap_or_default();
            if key.is_empty() {
                errors.push(err(Some(line), format!("table `{name}`: the key (first column) is empty")));
                continue;
            }
            let index = table.rows.len();
            let duplicate = match key.strip_suffix('*') {
                Some(prefix) => {
                    let dup = table.prefixes.iter().any(|(p, _)| p == prefix);
                    table.prefixes.push((prefix.to_string(), index));
                    dup
                }
                None => table.exact.insert(key.clone(), index).is_some(),
            };
            if duplicate {
                errors.push(err(Some(line), format!("table `{name}`: the key `{key}` appears twice")));
            }
            table.rows.push(row);
            table.lines.push(line);
        }
        table.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        if errors.is_empty() { Ok(table) } else { Err(errors) }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The row of a key: exact match first, then the longest prefix key.
    pub fn find(&self, key: &str) -> Option<usize> {
        if let Some(&row) = self.exact.get(key) {
            return Some(row);
        }
        self.prefixes.iter().find(|(p, _)| key.starts_with(p.as_str())).map(|&(_, row)| row)
    }

    pub fn cell(&self, row: usize, column: usize) -> &str {
        self.rows.get(row).and_then(|r| r.get(column)).map_or("", String::as_str)
    }

    /// Every row's value in a column, with the row's line, for load-time checks.
    pub fn column_values(&self, column: usize) -> impl Iterator<Item = (usize, &str)> {
        self.rows.iter().zip(&self.lines).map(move |(r, &line)| (line, r.get(column).map_or("", String::as_str)))
    }

    pub fn rows(&self) -> impl Iterator<Item = (usize, &[String])> {
        self.rows.iter().zip(&self.lines).map(|(r, &line)| (line, r.as_slice()))
    }

    pub fn error_at(&self, line: usize, message: String) -> MappingError {
        MappingError { origin: self.origin.clone(), line: Some(line), column: Some(1), message }
    }
}

fn csv_line(e: &csv::Error) -> Option<usize> {
    match e.kind() {
        csv::ErrorKind::Utf8 { pos: Some(p), .. } | csv::ErrorKind::UnequalLengths { pos: Some(p), .. } => {
            Some(p.line() as usize)
        }
        csv::ErrorKind::Deserialize { pos: Some(p), .. } => Some(p.line() as usize),
        _ => None,
    }
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("this row has {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "this row is not valid UTF-8 (save the table as UTF-8)".to_string(),
        _ => e.to_string(),
    }
}

/// A regions table (`code,name,…`) indexed by 12-digit code.
#[derive(Debug)]
pub(crate) struct Regions {
    pub table: String,
    by_code: HashMap<String, String>,
}

impl Regions {
    pub fn build(table: &Table) -> Result<Regions, Vec<MappingError>> {
        let mut errors = Vec::new();
        let (Some(code), Some(name)) = (table.column("code"), table.column("name")) else {
            return Err(vec![MappingError {
                origin: table.origin.clone(),
                line: Some(1),
                column: Some(1),
                message: format!("table `{}` is used for regions and needs the columns `code` and `name`", table.name),
            }]);
        };
        let mut by_code = HashMap::new();
        for (line, row) in table.rows() {
            let c = row.get(code).map_or("", String::as_str);
            match RegionCode::parse(c) {
                Ok(rc) => {
                    by_code.insert(rc.as_str().to_string(), row.get(name).cloned().unwrap_or_default());
                }
                Err(e) => errors.push(table.error_at(line, format!("table `{}`: {e}", table.name))),
            }
        }
        if errors.is_empty() { Ok(Regions { table: table.name.clone(), by_code }) } else { Err(errors) }
    }

    /// The region of a 6-, 9- or 12-digit code. A code must be in the table,
    /// except a village or community code (12 digits), which only needs its
    /// township: village rows are optional, and then the name is the
    /// township's.
    pub fn resolve(&self, text: &str) -> Option<Region> {
        let code = RegionCode::parse(text).ok()?;
        let level = code.level();
        let name = match self.by_code.get(code.as_str()) {
            Some(name) => name.clone(),
            None if level == crate::ticket::RegionLevel::Village => {
                let township = format!("{}000", &code.as_str()[..9]);
                self.by_code.get(&township)?.clone()
            }
            None => return None,
        };
        Some(Region { code, level, name })
    }
}

/// Public holidays and make-up working days (调休), from a table with the
/// columns `date` (YYYY-MM-DD) and `type` (`holiday` or `workday`).
///
/// The table covers the years it has a row for: the State Council publishes
/// each year's arrangement in November, and a year not in the table is not
/// known to be Monday–Friday, only assumed to be ([`Holidays::covers`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Holidays {
    /// The table's name, for messages.
    pub name: String,
    days: HashMap<NaiveDate, bool>,
    years: std::collections::BTreeSet<i32>,
}

impl Holidays {
    pub fn build(table: &Table) -> Result<Holidays, Vec<MappingError>> {
        let (Some(date), Some(kind)) = (table.column("date"), table.column("type")) else {
            return Err(vec![MappingError {
                origin: table.origin.clone(),
                line: Some(1),
                column: Some(1),
                message: format!("table `{}` is used for holidays and needs the columns `date` and `type`", table.name),
            }]);
        };
        let mut errors = Vec::new();
        let mut days = HashMap::new();
        for (line, row) in table.rows() {
            let d = row.get(date).map_or("", String::as_str);
            let Ok(day) = NaiveDate::parse_from_str(d, "%Y-%m-%d") else {
                errors
                    .push(table.error_at(line, format!("table `{}`: `{d}` is not a date like 2024-10-01", table.name)));
                continue;
            };
            match row.get(kind).map_or("", String::as_str) {
                "holiday" => days.insert(day, false),
                "workday" => days.insert(day, true),
                other => {
                    errors.push(table.error_at(
                        line,
                        format!("table `{}`: type `{other}` must be `holiday` or `workday`", table.name),
                    ));
                    None
                }
            };
        }
        let years = days.keys().map(chrono::Datelike::year).collect();
        if errors.is_empty() { Ok(Holidays { name: table.name.clone(), days, years }) } else { Err(errors) }
    }

    /// Whether the table has the State Council's arrangement for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The years the table has, e.g. `2024–2026` (or `no year at all`).
    pub fn years_text(&self) -> String {
        match (self.years.first(), self.years.last()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) if (b - a) as usize + 1 == self.years.len() => format!("{a}–{b}"),
            (Some(_), Some(_)) => self.years.iter().map(i32::to_string).collect::<Vec<_>>().join(", "),
            _ => "no year at all".to_string(),
        }
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.days.get(&day) {
            Some(&working) => working,
            None => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }
}

/// Monday to Friday, when no holiday table is given.
pub(crate) fn is_weekday(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}
