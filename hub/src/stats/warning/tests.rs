use super::*;

mod evaluation;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn c2_only() -> Params {
    Params { cusum: None, ..Params::default() }
}

#[test]
fn no_alert_without_a_full_baseline() {
    let p = Params::default();
    assert!(detect("220421", "0401", day(2025, 1, 1), &[], &p).is_empty());
    assert!(latest("220421", "0401", day(2025, 1, 1), &[], &p).is_empty());
    // 9 days: the 10th would be the first with 7 baseline days + 2 guard days.
    assert!(detect("220421", "0401", day(2025, 1, 1), &[0, 0, 0, 0, 0, 0, 0, 0, 50], &p).is_empty());
}

#[test]
fn a_jump_alarms_on_its_day_with_the_baseline_it_was_tested_against() {
    let counts = [2, 1, 3, 2, 2, 1, 3, 2, 2, 12];
    let alerts = detect("220421", "0401", day(2025, 1, 11), &counts, &c2_only());
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!((a.day, a.count, a.method), (day(2025, 1, 20), 12, C2));
    assert_eq!((a.baseline_from, a.baseline_to), (day(2025, 1, 11), day(2025, 1, 17)));
    let mean = 14.0 / 7.0;
    assert!((a.baseline_mean - mean).abs() < 1e-9);
    // Sample σ 0.82 is below the Poisson floor sqrt(1.5 × 3) = 2.12.
    assert!((a.sd_used - 4.5f64.sqrt()).abs() < 1e-9 && a.baseline_sd < a.sd_used);
    assert!((a.statistic - (12.0 - mean) / a.sd_used).abs() < 1e-9 && a.statistic > 3.0);
    assert_eq!(
        a.evidence("东丰县", "劳动保障/欠薪"),
        "东丰县 劳动保障/欠薪 2025-01-20: 12 件 (基线 01-11至01-17 均值 2.0, 标准差 0.8, 取 2.1; C2=4.7 > 3)"
    );
    // The guard days are not in the baseline: a high day 2 before changes nothing.
    let mut guarded = counts;
    guarded[8] = 40;
    assert_eq!(detect("220421", "0401", day(2025, 1, 11), &guarded, &c2_only()), alerts);
    assert_eq!(latest("220421", "0401", day(2025, 1, 11), &counts, &c2_only()), alerts);
}

#[test]
fn a_near_empty_series_does_not_alarm_on_one_or_three_matters() {
    let mut counts = vec![0u32; 30];
    counts[20] = 1;
    counts[25] = 3;
    assert!(detect("220402002", "0101", day(2024, 7, 1), &counts, &Params::default()).is_empty());
    // Four in a day after an empty fortnight is unusual enough.
    let mut counts = vec![0u32; 30];
    counts[29] = 4;
    let alerts = detect("220402002", "0101", day(2024, 7, 1), &counts, &Params::default());
    assert_eq!(alerts.iter().map(|a| (a.day, a.method)).collect::<Vec<_>>(), [(day(2024, 7, 30), C2)]);
}

#[test]
fn the_minimum_count_holds_whatever_the_statistic() {
    let p = Params { min_count: 5, sd_inflation: 0.0, sd_offset: 0.0, ..c2_only() };
    let counts = [0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 5];
    let days: Vec<NaiveDate> = detect("a", "c", day(2024, 1, 1), &counts, &p).iter().map(|a| a.day).collect();
    assert_eq!(days, [day(2024, 1, 11)]);
}

#[test]
fn the_cusum_sees_a_slow_rise_that_c2_follows_up() {
    // 2 a day for 40 days, then +0.25 a day: never a jump of 3σ over the
    // last week, but the excess over the month before accumulates.
    let counts: Vec<u32> = (0..70).map(|i| if i < 40 { 2 } else { 2 + (i - 40) / 4 }).collect();
    let start = day(2024, 12, 1);
    assert!(detect("220421", "0401", start, &counts, &c2_only()).is_empty());
    let alerts = detect("220421", "0401", start, &counts, &Params::default());
    let first = alerts.first().map(|a| (a.method, a.day));
    assert!(matches!(first, Some((CUSUM, d)) if d > day(2025, 1, 10) && d < day(2025, 1, 30)), "{first:?}");
    let a = &alerts[0];
    assert!(a.statistic > 6.0 && a.threshold == 6.0 && a.evidence("东丰县", "劳动保障/欠薪").contains("CUSUM="));
    // `latest` agrees with `detect` on the last day.
    let last_day = start + Days::new((counts.len() - 1) as u64);
    let on_last: Vec<Alert> = alerts.iter().filter(|a| a.day == last_day).cloned().collect();
    assert_eq!(latest("220421", "0401", start, &counts, &Params::default()), on_last);
}

#[test]
fn daily_counts_bins_dates_and_ignores_those_outside() {
    let start = day(2025, 1, 1);
    let dates = [day(2024, 12, 31), day(2025, 1, 1), day(2025, 1, 1), day(2025, 1, 3), day(2025, 1, 9)];
    assert_eq!(daily_counts(start, 4, dates), [2, 0, 1, 0]);
}

#[test]
fn alerts_serialize_with_their_method() {
    let counts = [0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    let alerts = detect("220402002", "0101", day(2024, 7, 1), &counts, &Params::default());
    let v = serde_json::to_value(&alerts).unwrap_or_default();
    assert_eq!(v[0]["method"], C2);
    assert_eq!(v[0]["area"], "220402002");
    assert_eq!(v[0]["day"], "2024-07-10");
}
