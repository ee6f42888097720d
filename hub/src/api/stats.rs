//! `/api/v1/stats…`: the centre's figures, summed from the cells the store
//! keeps as events happen (`store/stats.rs`), within the caller's region.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use chrono::{Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Scope};
use super::{ApiError, ApiState};
use crate::stats::figures::{Figures, Ranked, rank_departments};
use crate::stats::names;
use crate::store::{CellFilter, Dimension};
use crate::ticket::beijing;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/stats", get(figures))
        .route("/api/v1/stats/departments", get(departments))
        .route("/api/v1/stats/today", get(today))
}

/// A period of cohort months and, optionally, a narrower region.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct Period {
    /// First month, `YYYY-MM` (this month when left out).
    pub from: Option<String>,
    /// Last month, `YYYY-MM`, inclusive (`from` when left out).
    pub to: Option<String>,
    /// A county's or township's code within the caller's own region.
    pub region: Option<String>,
    /// `channel`, `county`, `township`, `category`, `department` or `month` (county).
    pub by: Option<String>,
}

fn month(text: &str, what: &str) -> Result<String, ApiError> {
    if crate::stats::report::is_month(text) {
        Ok(text.to_string())
    } else {
        Err(ApiError::bad_request(format!("`{what}` must be a month like 2026-11")))
    }
}

/// This month, Beijing time.
pub fn this_month() -> String {
    let now = Utc::now().with_timezone(&beijing());
    format!("{:04}-{:02}", now.year(), now.month())
}

/// The region a request may see: the caller's own, or a narrower one
/// inside it that the request asks for.
pub fn region_of(caller: &Caller, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(asked) = asked.filter(|a| !a.trim().is_empty()) else {
        return Ok(caller.scope.prefix().map(str::to_string));
    };
    let narrower = Scope::parse(asked).map_err(ApiError::bad_request)?;
    let prefix = narrower.prefix().unwrap_or_default().to_string();
    if !caller.scope.sees(&format!("{prefix:0<12}")) {
        return Err(ApiError(axum::http::StatusCode::FORBIDDEN, format!("region {prefix} is outside this token's")));
    }
    Ok(Some(prefix))
}

impl Period {
    pub fn filter(&self, caller: &Caller) -> Result<CellFilter, ApiError> {
        let from = match &self.from {
            Some(f) => month(f, "from")?,
            None => this_month(),
        };
        let to = match &self.to {
            Some(t) => month(t, "to")?,
            None => from.clone(),
        };
        if to < from {
            return Err(ApiError::bad_request("`to` is before `from`"));
        }
        let region = region_of(caller, self.region.as_deref())?;
        if region.as_deref().is_some_and(|p| p.len() > 9) {
            // Cells are kept per township: a village's would be its township's.
            return Err(ApiError::bad_request("figures are kept per county and township: give one of those"));
        }
        Ok(CellFilter { from_month: from, to_month: to, region })
    }
}

/// One group's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct Row {
    /// The group's code (a division code, a category code, a channel, a department, a month).
    pub key: String,
    /// Its name where it has one (东丰县, 城市管理/市政设施).
    pub name: Option<String>,
    pub figures: Figures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FiguresReport {
    pub from: String,
    pub to: String,
    /// The region the figures cover; none for the whole city.
    pub region: Option<String>,
    pub by: String,
    pub total: Figures,
    pub rows: Vec<Row>,
}

/// The name of a group's key.
pub fn name_of(by: Dimension, key: &str) -> Option<String> {
    match by {
        Dimension::County | Dimension::Township => names::region(key).map(str::to_string),
        Dimension::Category => names::category(key).map(str::to_string),
        Dimension::Channel => Some(
            match key {
                "hotline" => "12345热线",
                "petition" => "信访",
                "court_mediation" => "法院诉前调解",
                "terminal" => "网格员终端",
                other => other,
            }
            .to_string(),
        ),
        Dimension::Department if key.is_empty() => Some("未派单".to_string()),
        Dimension::Department | Dimension::Month => None,
    }
}

/// Received, closed, closure / on-time / satisfaction rates, reopened,
/// overdue and handling time over a period, broken down one way.
#[utoipa::path(get, path = "/api/v1/stats", params(Period), tag = "statistics",
    responses((status = 200, body = FiguresReport), (status = 400), (status = 401), (status = 403)))]
pub async fn figures(
    caller: Caller,
    State(s): State<ApiState>,
    Query(p): Query<Period>,
) -> Result<axum::Json<FiguresReport>, ApiError> {
    let filter = p.filter(&caller)?;
    let by_text = p.by.as_deref().unwrap_or("county");
    let by = Dimension::parse(by_text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`by` must be one of {}",
            Dimension::ALL.iter().map(|d| d.column()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let total = s.store.cell_total(&filter).await?;
    let rows = s.store.cell_sums(&filter, by).await?;
    Ok(axum::Json(FiguresReport {
        from: filter.from_month,
        to: filter.to_month,
        region: filter.region,
        by: by.column().to_string(),
        total: Figures::of(&total),
        rows: rows
            .iter()
            .map(|(key, c)| Row { key: key.clone(), name: name_of(by, key), figures: Figures::of(c) })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentsReport {
    pub from: String,
    pub to: String,
    pub region: Option<String>,
    /// How the ranking is made.
    pub method: String,
    pub ranking: Vec<Ranked>,
}

/// Departments ranked by the Wilson lower bound (95%) of their on-time
/// rate: fair to small departments, whose few matters prove little.
#[utoipa::path(get, path = "/api/v1/stats/departments", params(Period), tag = "statistics",
    responses((status = 200, body = DepartmentsReport), (status = 400), (status = 401)))]
pub async fn departments(
    caller: Caller,
    State(s): State<ApiState>,
    Query(p): Query<Period>,
) -> Result<axum::Json<DepartmentsReport>, ApiError> {
    let filter = p.filter(&caller)?;
    let rows = s.store.cell_sums(&filter, Dimension::Department).await?;
    Ok(axum::Json(DepartmentsReport {
        from: filter.from_month,
        to: filter.to_month,
        region: filter.region,
        method: "Wilson score lower bound (95%) of the on-time rate; departments with nothing finished against a deadline are not ranked".into(),
        ranking: rank_departments(&rows),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    pub key: String,
    pub name: Option<String>,
    pub received: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TodayReport {
    /// `YYYY-MM-DD`, Beijing time.
    pub day: String,
    pub month: String,
    pub region: Option<String>,
    pub today_by_channel: Vec<Count>,
    pub today_by_county: Vec<Count>,
    pub month_by_channel: Vec<Count>,
    pub month_by_county: Vec<Count>,
    /// This month's figures for the whole region.
    pub month_total: Figures,
}

fn counts(by: Dimension, rows: impl IntoIterator<Item = (String, i64)>) -> Vec<Count> {
    let mut map = std::collections::BTreeMap::<String, i64>::new();
    for (k, n) in rows {
        *map.entry(k).or_default() += n;
    }
    map.into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(key, received)| Count { name: name_of(by, &key), key, received })
        .collect()
}

/// Today's and this month's counts by channel and county, and this
/// month's figures: the screen's headline.
#[utoipa::path(get, path = "/api/v1/stats/today", tag = "statistics",
    responses((status = 200, body = TodayReport), (status = 401)))]
pub async fn today(caller: Caller, State(s): State<ApiState>) -> Result<axum::Json<TodayReport>, ApiError> {
    let region = caller.scope.prefix().map(str::to_string);
    let day = Utc::now().with_timezone(&beijing()).format("%Y-%m-%d").to_string();
    let month = this_month();
    let daily = s.store.daily_received(&day, &day, region.as_deref()).await?;
    let filter = CellFilter { from_month: month.clone(), to_month: month.clone(), region: region.clone() };
    let by_channel = s.store.cell_sums(&filter, Dimension::Channel).await?;
    let by_county = s.store.cell_sums(&filter, Dimension::County).await?;
    let total = s.store.cell_total(&filter).await?;
    Ok(axum::Json(TodayReport {
        today_by_channel: counts(Dimension::Channel, daily.iter().map(|d| (d.channel.clone(), d.received))),
        today_by_county: counts(Dimension::County, daily.iter().map(|d| (d.county.clone(), d.received))),
        month_by_channel: counts(Dimension::Channel, by_channel.iter().map(|(k, c)| (k.clone(), c.received))),
        month_by_county: counts(Dimension::County, by_county.iter().map(|(k, c)| (k.clone(), c.received))),
        month_total: Figures::of(&total),
        day,
        month,
        region,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Role;

    #[test]
    fn figures_are_asked_for_a_county_or_township_only() {
        let city = Caller { role: Role::Viewer, scope: Scope::city() };
        let asked =
            |region: &str| Period { from: Some("2026-11".into()), region: Some(region.into()), ..Period::default() };
        assert_eq!(asked("220421100").filter(&city).unwrap().region.as_deref(), Some("220421100"));
        // A village's code would have summed its whole township's cells.
        assert_eq!(asked("220421100201").filter(&city).unwrap_err().0, 400);
    }
}
