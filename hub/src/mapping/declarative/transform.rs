//! The transforms behind the keys of an expression: time parsing, deadlines,
//! replacement, truncation. Load-time checks for their arguments live here too.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

use super::spec::Val;
use super::table::{Holidays, is_weekday};
use crate::ticket::Timestamp;

/// `+08:00`, `+0800`, `-05:00`, `Z`/`UTC`.
pub(crate) fn parse_tz(s: &str) -> Result<FixedOffset, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || format!("tz = \"{s}\" is not an offset like \"+08:00\"");
    let (sign, rest) = match t.chars().next() {
        Some('+') => (1, &t[1..]),
        Some('-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let h: i32 = digits[..2].parse().map_err(|_| bad())?;
    let m: i32 = digits[2..].parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// Checks a chrono format string; says whether it reads an offset itself.
pub(crate) fn check_format(format: &str, date_only: bool) -> Result<bool, String> {
    if format.trim().is_empty() {
        return Err("the format is empty".into());
    }
    let mut offset = false;
    let mut has_date = false;
    for item in StrftimeItems::new(format) {
        match item {
            Item::Error => {
                return Err(format!(
                    "`{format}` is not a valid time format (use chrono's %Y %m %d %H %M %S %z…, e.g. \"%Y-%m-%d %H:%M:%S\")"
                ));
            }
            Item::Fixed(chrono::format::Fixed::TimezoneOffset)
            | Item::Fixed(chrono::format::Fixed::TimezoneOffsetColon)
            | Item::Fixed(chrono::format::Fixed::TimezoneOffsetZ)
            | Item::Fixed(chrono::format::Fixed::TimezoneOffsetColonZ) => offset = true,
            Item::Numeric(chrono::format::Numeric::Year, _)
            | Item::Numeric(chrono::format::Numeric::Day, _)
            | Item::Numeric(chrono::format::Numeric::Timestamp, _) => has_date = true,
            _ => {}
        }
    }
    if !has_date {
        return Err(format!("`{format}` has no date in it (%Y, %d…)"));
    }
    if date_only && offset {
        return Err(format!("`{format}` is a date format and cannot have an offset"));
    }
    Ok(offset)
}

pub(crate) fn parse_datetime(
    text: &str,
    format: Option<&str>,
    tz: FixedOffset,
    offset: bool,
) -> Result<Timestamp, String> {
    let t = text.trim();
    let parsed = match format {
        None => DateTime::parse_from_rfc3339(t)
            .map_err(|_| "is not an RFC 3339 time like 2024-07-15T09:40:00+08:00".to_string())?,
        Some(f) if offset => {
            DateTime::parse_from_str(t, f).map_err(|_| format!("is not a date-time of format `{f}`"))?
        }
        Some(f) => {
            let naive =
                NaiveDateTime::parse_from_str(t, f).map_err(|_| format!("is not a date-time of format `{f}`"))?;
            tz.from_local_datetime(&naive).single().ok_or_else(|| "is not a time that exists".to_string())?
        }
    };
    Ok(parsed.with_timezone(&tz))
}

pub(crate) fn parse_date(text: &str, format: &str, tz: FixedOffset, time: NaiveTime) -> Result<Timestamp, String> {
    let date =
        NaiveDate::parse_from_str(text.trim(), format).map_err(|_| format!("is not a date of format `{format}`"))?;
    tz.from_local_datetime(&date.and_time(time)).single().ok_or_else(|| "is not a time that exists".to_string())
}

pub(crate) fn from_epoch(v: &Val, millis: bool, tz: FixedOffset) -> Result<Timestamp, String> {
    let unit = if millis { "milliseconds" } else { "seconds" };
    let n = match v {
        Val::Int(i) => *i,
        Val::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => *n as i64,
        Val::Str(s) => s.trim().parse::<i64>().map_err(|_| format!("is not a number of epoch {unit}"))?,
        _ => return Err(format!("is not a number of epoch {unit}")),
    };
    let dt = if millis { DateTime::from_timestamp_millis(n) } else { DateTime::from_timestamp(n, 0) };
    dt.map(|d| d.with_timezone(&tz)).ok_or_else(|| format!("is not a time (epoch {unit} out of range)"))
}

/// An integer argument of a deadline (`handleDays`, `deadlineHours`).
pub(crate) fn count(v: &Val, max: i64) -> Result<i64, String> {
    let n = match v {
        Val::Int(i) => Some(*i),
        Val::Num(n) if n.fract() == 0.0 => Some(*n as i64),
        Val::Str(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=max).contains(&n) => Ok(n),
        Some(_) => Err(format!("must be between 0 and {max}")),
        None => Err("is not a whole number".into()),
    }
}

/// A deadline counted in working days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WorkingDeadline {
    pub at: Timestamp,
    /// A year the count went through that the holiday table does not cover:
    /// its days were taken as Monday–Friday, which is a guess.
    pub uncovered: Option<i32>,
}

/// The same time of day on the `n`th working day after `t`'s day. Working
/// days are Monday to Friday, corrected by the holiday table when given
/// (public holidays off, make-up working days on).
pub(crate) fn add_working_days(t: Timestamp, n: i64, holidays: Option<&Holidays>) -> Option<WorkingDeadline> {
    let mut day = t.date_naive();
    let mut left = n;
    let mut uncovered = None;
    while left > 0 {
        day = day.succ_opt()?;
        let working = match holidays {
            Some(h) => {
                if uncovered.is_none() && !h.covers(day.year()) {
                    uncovered = Some(day.year());
                }
                h.is_working_day(day)
            }
            None => is_weekday(day),
        };
        if working {
            left -= 1;
        }
    }
    let at = t.timezone().from_local_datetime(&day.and_time(t.time())).single()?;
    Some(WorkingDeadline { at, uncovered })
}

pub(crate) fn add_duration(t: Timestamp, d: Duration) -> Option<Timestamp> {
    t.checked_add_signed(d)
}

/// Replaces, in one pass from the left, the longest `from` that matches at
/// each position (so replacements never feed each other).
pub(crate) fn replace_all(text: &str, pairs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for (from, to) in pairs {
            if !from.is_empty() && rest.starts_with(from.as_str()) {
                out.push_str(to);
                rest = &rest[from.len()..];
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// At most `n` characters; a cut text ends with `…`.
/// The longest of `words` (longest first; of equal length, in the table's
/// order) that occurs in `text`; of equal length, the one listed first. With
/// its row.
pub(crate) fn find_word<'w>(text: &str, words: &'w [(String, usize)]) -> Option<(&'w str, usize)> {
    words.iter().find(|(word, _)| text.contains(word.as_str())).map(|(word, row)| (word.as_str(), *row))
}

pub(crate) fn truncate_chars(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_string();
    }
    let mut out: String = text.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::beijing;

    #[test]
    fn times() {
        let t = parse_datetime("2022-07-12 16:05:41", Some("%Y-%m-%d %H:%M:%S"), beijing(), false).unwrap();
        assert_eq!(t.to_rfc3339(), "2022-07-12T16:05:41+08:00");
        assert!(parse_datetime("2024/13/45 25:61", Some("%Y-%m-%d %H:%M:%S"), beijing(), false).is_err());
        assert!(parse_datetime("2024-02-30 10:00:00", Some("%Y-%m-%d %H:%M:%S"), beijing(), false).is_err());
        let u = parse_datetime("2024-07-15T01:40:00Z", None, beijing(), false).unwrap();
        assert_eq!(u.to_rfc3339(), "2024-07-15T09:40:00+08:00");
        let d = parse_date("20240521", "%Y%m%d", beijing(), NaiveTime::MIN).unwrap();
        assert_eq!(d.to_rfc3339(), "2024-05-21T00:00:00+08:00");
        let e = from_epoch(&Val::Int(1657613100000), true, beijing()).unwrap();
        assert_eq!(e.to_rfc3339(), "2022-07-12T16:05:00+08:00");
        assert!(from_epoch(&Val::Str("tomorrow".into()), true, beijing()).is_err());
        assert!(from_epoch(&Val::Int(i64::MAX), true, beijing()).is_err());
        assert_eq!(parse_tz("+0800").unwrap(), beijing());
        assert!(parse_tz("Asia/Shanghai").is_err());
        assert!(check_format("%Y-%m-%d %Q", false).is_err());
        assert!(check_format("%H:%M", false).is_err());
        assert!(check_format("%Y-%m-%dT%H:%M:%S%:z", false).unwrap());
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let t = parse_datetime("2024-03-08 10:00:00", Some("%Y-%m-%d %H:%M:%S"), beijing(), false).unwrap(); // Friday
        assert_eq!(add_working_days(t, 1, None).unwrap().at.to_rfc3339(), "2024-03-11T10:00:00+08:00");
        assert_eq!(add_working_days(t, 0, None).unwrap().at, t);
        assert_eq!(add_working_days(t, 5, None).unwrap().at.to_rfc3339(), "2024-03-15T10:00:00+08:00");
    }

    #[test]
    fn replacing_and_cutting() {
        let pairs = vec![("（".to_string(), "(".to_string()), ("）".to_string(), ")".to_string())];
        assert_eq!(replace_all("（2024）吉0402", &pairs), "(2024)吉0402");
        assert_eq!(truncate_chars("井井井井", 3), "井井…");
        assert_eq!(truncate_chars("井井", 3), "井井");
    }

    #[test]
    fn the_longest_word_then_the_first_listed_wins() {
        let mut words: Vec<(String, usize)> =
            ["劳动", "劳动报酬", "工资", "借款", "物业"].iter().enumerate().map(|(i, w)| (w.to_string(), i)).collect();
        words.sort_by_key(|(w, _)| std::cmp::Reverse(w.chars().count()));
        assert_eq!(find_word("追索劳动报酬纠纷", &words), Some(("劳动报酬", 1)));
        // Of equal length, the one listed first, wherever it is in the text.
        assert_eq!(find_word("物业拖欠工资", &words), Some(("工资", 2)));
        assert_eq!(find_word("拖欠工资，物业", &words), Some(("工资", 2)));
        assert_eq!(find_word("井盖破损", &words), None);
        assert_eq!(find_word("", &words), None);
    }
}
