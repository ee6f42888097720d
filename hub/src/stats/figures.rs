//! The figures a person reads, from the sums a cell keeps: rates, average
//! and p90 handling time, and a department ranking fair to small ones.

use serde::Serialize;

use super::facts::{BUCKET_HOURS, Counts};

/// What the centre reads of a set of matters. Rates are `None` where their
/// denominator is zero (no matter finished, none with a deadline, none rated).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub received: i64,
    /// Resolved or closed (办结).
    pub closed: i64,
    /// closed / received (办结率).
    pub closure_rate: Option<f64>,
    /// Finished by their `dueAt`, of those finished that had one.
    pub on_time_rate: Option<f64>,
    /// Satisfied (笑脸) of those rated; apart from closure: a matter can
    /// be closed and unsatisfied.
    pub satisfaction_rate: Option<f64>,
    pub rated: i64,
    pub reopened: i64,
    /// Crossed their deadline unresolved.
    pub overdue: i64,
    pub avg_handling_hours: Option<f64>,
    /// From the handling-time buckets, interpolated within the bucket.
    pub p90_handling_hours: Option<f64>,
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl Figures {
    pub fn of(c: &Counts) -> Figures {
        Figures {
            received: c.received,
            closed: c.finished,
            closure_rate: ratio(c.finished, c.received),
            on_time_rate: ratio(c.on_time, c.timed),
            satisfaction_rate: ratio(c.satisfied, c.rated),
            rated: c.rated,
            reopened: c.reopened,
            overdue: c.overdue,
            avg_handling_hours: ratio(c.handling_ms, c.finished).map(|ms| ms / 3_600_000.0),
            p90_handling_hours: quantile_hours(&c.buckets, 0.9),
        }
    }
}

/// The `q` quantile of handling time in hours, linear within its bucket
/// (the open last bucket answers its lower bound).
pub fn quantile_hours(buckets: &[i64], q: f64) -> Option<f64> {
    let total: i64 = buckets.iter().sum();
    if total <= 0 {
        return None;
    }
    let target = q * total as f64;
    let mut below = 0.0;
    for (i, &n) in buckets.iter().enumerate() {
        let n = n as f64;
        if n > 0.0 && below + n >= target {
            let lo = if i == 0 { 0.0 } else { BUCKET_HOURS[i - 1] as f64 };
            let Some(&hi) = BUCKET_HOURS.get(i) else { return Some(lo) };
            return Some(lo + (hi as f64 - lo) * ((target - below) / n).clamp(0.0, 1.0));
        }
        below += n;
    }
    BUCKET_HOURS.last().map(|&h| h as f64)
}

/// The Wilson score interval's lower bound (95%) for `k` successes in `n`:
/// the on-time rate a department can be trusted to have at least. Three of
/// three on time ranks below 95 of 100: a small department is neither
/// crowned nor shamed by a handful of matters.
pub fn wilson_lower(k: i64, n: i64) -> Option<f64> {
    if n <= 0 {
        return None;
    }
    let (k, n, z) = (k as f64, n as f64, 1.96_f64);
    let p = k / n;
    let centre = p + z * z / (2.0 * n);
    let spread = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt();
    Some(((centre - spread) / (1.0 + z * z / n)).max(0.0))
}

/// One department in the ranking.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ranked {
    pub rank: usize,
    pub department: String,
    /// The Wilson lower bound of its on-time rate: what it is ranked by.
    pub score: f64,
    pub figures: Figures,
}

/// Departments by the Wilson lower bound of their on-time rate, best
/// first; those with nothing finished against a deadline are left out, and
/// so are matters no department has yet.
pub fn rank_departments(rows: &[(String, Counts)]) -> Vec<Ranked> {
    let mut ranked: Vec<(String, f64, &Counts)> = rows
        .iter()
        .filter(|(d, _)| !d.is_empty())
        .filter_map(|(d, c)| Some((d.clone(), wilson_lower(c.on_time, c.timed)?, c)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .enumerate()
        .map(|(i, (department, score, c))| Ranked { rank: i + 1, department, score, figures: Figures::of(c) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_perfect_department_ranks_below_a_large_good_one() {
        let small = Counts { received: 3, finished: 3, timed: 3, on_time: 3, ..Counts::default() };
        let large = Counts { received: 100, finished: 100, timed: 100, on_time: 95, ..Counts::default() };
        let ranked = rank_departments(&[("小".into(), small), ("大".into(), large), ("".into(), large)]);
        assert_eq!(ranked.iter().map(|r| r.department.as_str()).collect::<Vec<_>>(), ["大", "小"]);
        assert!((wilson_lower(95, 100).unwrap() - 0.888).abs() < 0.01);
        assert!((wilson_lower(3, 3).unwrap() - 0.438).abs() < 0.01);
    }

    #[test]
    fn the_p90_interpolates_within_its_bucket() {
        let mut b = [0i64; super::super::facts::BUCKETS];
        b[3] = 10; // 8–24 h
        assert!((quantile_hours(&b, 0.9).unwrap() - 22.4).abs() < 1e-9);
        assert_eq!(quantile_hours(&[0; 12], 0.9), None);
        let f = Figures::of(&Counts { received: 4, finished: 2, rated: 2, satisfied: 1, ..Counts::default() });
        assert_eq!((f.closure_rate, f.satisfaction_rate, f.on_time_rate), (Some(0.5), Some(0.5), None));
    }
}
