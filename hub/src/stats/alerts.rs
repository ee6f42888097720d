//! The early warning at work: the daily counts the store keeps
//! (`stats_daily`) become one series per (township, category) and per
//! (county, category); the detector (`warning.rs`) looks at each, and the
//! alerts of the last days are raised once (`store/alerts.rs`).

use std::collections::HashMap;

use chrono::NaiveDate;

use super::names;
use super::warning::{Params, detect};
use crate::store::{Store, StoreError, StoredAlert};

/// Days of history read: the CUSUM's baseline (28 days after a 7-day
/// guard) and the days looked at.
const HISTORY_DAYS: i64 = 28 + 7 + RECENT_DAYS;
/// Alerts of these last days are raised; older days were looked at before.
const RECENT_DAYS: i64 = 7;

/// Looks at every series ending `today` and raises the alerts of the
/// last [`RECENT_DAYS`] days that were not raised before; returns those.
pub async fn check(store: &Store, today: NaiveDate, params: &Params) -> Result<Vec<StoredAlert>, StoreError> {
    let from = today - chrono::Duration::days(HISTORY_DAYS - 1);
    let days = HISTORY_DAYS as usize;
    let rows =
        store.daily_received(&from.format("%Y-%m-%d").to_string(), &today.format("%Y-%m-%d").to_string(), None).await?;
    let mut series: HashMap<(String, String), Vec<u32>> = HashMap::new();
    for r in rows {
        let Ok(day) = NaiveDate::parse_from_str(&r.day, "%Y-%m-%d") else { continue };
        let Ok(i) = usize::try_from((day - from).num_days()) else { continue };
        if i >= days {
            continue;
        }
        let n = u32::try_from(r.received.max(0)).unwrap_or(u32::MAX);
        let mut areas = vec![r.county.clone()];
        if !r.township.is_empty() {
            areas.push(r.township.clone());
        }
        for area in areas {
            let counts = series.entry((area, r.category.clone())).or_insert_with(|| vec![0; days]);
            counts[i] = counts[i].saturating_add(n);
        }
    }
    let recent = today - chrono::Duration::days(RECENT_DAYS - 1);
    let mut raised = Vec::new();
    let mut keys: Vec<_> = series.keys().cloned().collect();
    keys.sort();
    for (area, category) in keys {
        let counts = &series[&(area.clone(), category.clone())];
        for a in detect(&area, &category, from, counts, params).into_iter().filter(|a| a.day >= recent) {
            let evidence =
                a.evidence(names::region(&area).unwrap_or(&area), names::category(&category).unwrap_or(&category));
            raised.push(StoredAlert {
                id: 0,
                area: a.area.clone(),
                category: a.category.clone(),
                day: a.day.format("%Y-%m-%d").to_string(),
                method: a.method.to_string(),
                count: i64::from(a.count),
                baseline_mean: a.baseline_mean,
                baseline_sd: a.baseline_sd,
                statistic: a.statistic,
                threshold: a.threshold,
                evidence,
                raised_at: 0,
            });
        }
    }
    store.raise_alerts(&raised).await
}
