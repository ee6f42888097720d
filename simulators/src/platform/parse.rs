//! Parsers for the command line: durations (`250ms`, `3s`, `2m`, `1h`), fault
//! windows (`10s+30s`) and rates (`0.05`). They return readable errors so that
//! clap can show them as they are.

use std::time::Duration;

use super::Window;

/// Parses `250ms`, `3s`, `2m`, `1h` (a whole number and a unit; `0` alone is
/// allowed too).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "invalid duration \"{text}\": expected a whole number and a unit, like 250ms, 3s, 2m or 1h"
        ));
    }
    let n: u64 = number.parse().map_err(|_| format!("invalid duration \"{text}\": number too large"))?;
    let ms_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(format!("invalid duration \"{text}\": missing unit (ms, s, m or h)"));
        }
        other => {
            return Err(format!("invalid duration \"{text}\": unknown unit \"{other}\" (use ms, s, m or h)"));
        }
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("invalid duration \"{text}\": too long"))
}

/// Parses a window `START+DURATION`, both durations since the simulator started,
/// e.g. `10s+30s` is from second 10 to second 40.
pub fn parse_window(text: &str) -> Result<Window, String> {
    let (start, duration) = text
        .split_once('+')
        .ok_or_else(|| format!("invalid window \"{text}\": expected START+DURATION, like 10s+30s"))?;
    let start = parse_duration(start).map_err(|e| format!("invalid window start: {e}"))?;
    let duration = parse_duration(duration).map_err(|e| format!("invalid window duration: {e}"))?;
    Ok(Window { start_ms: millis(start), duration_ms: millis(duration) })
}

/// Parses a share of requests, `0` to `1` (e.g. `0.05` for 5 %).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate \"{text}\": expected a number from 0 to 1, like 0.05"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("invalid rate \"{text}\": must be from 0 to 1 (0.05 means 5 %)"))
    }
}

/// Whole milliseconds of `d`, saturating (parsed durations always fit).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_errors_are_clear() {
        for (input, hint) in [
            ("", "whole number and a unit"),
            ("s", "whole number and a unit"),
            ("-1s", "whole number and a unit"),
            ("1.5s", "unknown unit \".5s\""),
            ("10", "missing unit"),
            ("3d", "unknown unit \"d\""),
            ("99999999999999999999s", "too large"),
            ("9999999999999999h", "too long"),
        ] {
            let err = parse_duration(input).unwrap_err();
            assert!(err.contains(hint), "{input}: {err}");
        }
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("10s+30s"), Ok(Window { start_ms: 10_000, duration_ms: 30_000 }));
        assert_eq!(parse_window("0+500ms"), Ok(Window { start_ms: 0, duration_ms: 500 }));
        assert!(parse_window("10s").unwrap_err().contains("START+DURATION"));
        assert!(parse_window("10s+x").unwrap_err().contains("window duration"));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0.05"), Ok(0.05));
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("five").unwrap_err().contains("0.05"));
    }
}
