//! `/api/v1/tickets…`: finding tickets and reading one whole, within the
//! caller's region. A search pages through `ticket_facts` (indexed by time,
//! and by region and time) and reads only the page's bodies.
//!
//! A ticket outside the caller's region is answered 404, as one that does
//! not exist: a county's token learns nothing of another county's matters.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use chrono::{NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::paging::{next_of, per_page};
use super::stats::region_of;
use super::{ApiError, ApiState};
use crate::pii::Masker;
use crate::stats::names;
use crate::store::{FoundTicket, TicketQuery};
use crate::ticket::{Channel, Status, beijing};

/// Deeper pages by number are refused: an offset is read and thrown away
/// row by row; `after` goes straight to its place in the index.
pub const MAX_OFFSET: i64 = 10_000;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/tickets", get(search)).route("/api/v1/tickets/{id}", get(show))
}

/// A ticket search. Numbers are read as text, so that a bad one is
/// answered with a sentence rather than the extractor's own words.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct TicketSearch {
    /// Page number from 1 (with `per_page`); or use `after`.
    pub page: Option<String>,
    /// Rows per page, 1 to 500 (50 when left out).
    pub per_page: Option<String>,
    /// The `next` of the previous page: the rows after it.
    pub after: Option<String>,
    /// `new`, `dispatched`, `in_progress`, `resolved`, `closed`, `withdrawn`.
    pub status: Option<String>,
    /// `hotline`, `petition`, `court_mediation`, `terminal`.
    pub channel: Option<String>,
    /// A category code (`城市管理/市政设施`).
    pub category: Option<String>,
    /// A county's or township's code within the caller's own region.
    pub region: Option<String>,
    /// First day received, `YYYY-MM-DD` (Beijing time).
    pub from: Option<String>,
    /// Last day received, `YYYY-MM-DD`, inclusive.
    pub to: Option<String>,
    /// A ticket id, or a source record id (`RX-2024-000001`).
    pub q: Option<String>,
}

/// One ticket in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketItem {
    pub ticket_id: String,
    /// When the matter was received (RFC 3339, Beijing time).
    pub received_at: String,
    pub channel: String,
    /// Its 12-digit division code.
    pub region: String,
    pub region_name: Option<String>,
    pub category: String,
    pub category_name: Option<String>,
    /// The department handling it; empty until dispatched.
    pub department: String,
    pub status: String,
    pub due_at: Option<String>,
    pub finished_at: Option<String>,
    pub overdue: bool,
    pub reopened: i64,
    pub evaluation: Option<String>,
    /// The title, personal data masked for viewers.
    pub title: String,
    pub revision: i64,
    /// The revision the platform has acknowledged.
    pub delivered_revision: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    pub items: Vec<TicketItem>,
    /// Pass as `after` for the next page; none after the last.
    pub next: Option<String>,
    /// The next page's number, when paging by number.
    pub next_page: Option<i64>,
}

fn time(ms: i64) -> String {
    beijing().timestamp_millis_opt(ms).single().map(|t| t.to_rfc3339()).unwrap_or_else(|| ms.to_string())
}

/// Midnight starting `text` (`YYYY-MM-DD`), Beijing time, in epoch ms.
fn day_start(text: &str, what: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request(format!("`{what}` must be a day like 2026-11-30")))
}

fn midnight_ms(day: NaiveDate) -> i64 {
    let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    beijing().from_local_datetime(&naive).single().map_or(0, |t| t.timestamp_millis())
}

/// A short free-text parameter, or a sentence why not.
fn word(text: &str, what: &str) -> Result<String, ApiError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 128 || t.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("`{what}` must be 1 to 128 printable characters")));
    }
    Ok(t.to_string())
}

impl TicketSearch {
    /// The store's query for this search by `caller`, and the page number
    /// when paging by number.
    fn query(&self, caller: &Caller) -> Result<(TicketQuery, Option<i64>), ApiError> {
        let blank = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let limit = per_page(self.per_page.as_deref())?;
        let mut q = TicketQuery { region: region_of(caller, self.region.as_deref())?, limit, ..TicketQuery::default() };
        if let Some(s) = blank(&self.status) {
            s.parse::<Status>().map_err(|e| ApiError::bad_request(format!("`status`: {e}")))?;
            q.status = Some(s);
        }
        if let Some(c) = blank(&self.channel) {
            c.parse::<Channel>().map_err(|e| ApiError::bad_request(format!("`channel`: {e}")))?;
            q.channel = Some(c);
        }
        if let Some(c) = blank(&self.category) {
            q.category = Some(word(&c, "category")?);
        }
        let from = blank(&self.from).map(|f| day_start(&f, "from")).transpose()?;
        let to = blank(&self.to).map(|t| day_start(&t, "to")).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && t < f
        {
            return Err(ApiError::bad_request("`to` is before `from`"));
        }
        q.from_ms = from.map(midnight_ms);
        q.to_ms = to.and_then(|t| t.succ_opt()).map(midnight_ms);
        let page = match (blank(&self.page), blank(&self.after)) {
            (Some(_), Some(_)) => return Err(ApiError::bad_request("give `page` or `after`, not both")),
            (Some(p), None) => {
                let n = p
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ApiError::bad_request("`page` must be a number from 1"))?;
                q.offset = (n - 1).saturating_mul(limit);
                if q.offset > MAX_OFFSET {
                    return Err(ApiError::bad_request(format!(
                        "pages by number go {MAX_OFFSET} rows deep; follow `next` with `after` beyond"
                    )));
                }
                Some(n)
            }
            (None, Some(a)) => {
                let cursor = a.split_once('.').and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())));
                q.after = Some(cursor.filter(|(_, id)| !id.is_empty()).ok_or_else(|| {
                    ApiError::bad_request("`after` must be the `next` of the previous page, as given")
                })?);
                None
            }
            (None, None) => Some(1),
        };
        if let Some(text) = blank(&self.q) {
            q.ids = Some(vec![word(&text, "q")?]);
        }
        Ok((q, page))
    }
}

fn item(f: FoundTicket, mask: bool) -> TicketItem {
    let body: serde_json::Value = serde_json::from_str(&f.body).unwrap_or_default();
    let title = body.get("title").and_then(|t| t.as_str()).unwrap_or_default();
    let title = if mask { Masker::of_ticket(&body).text(title) } else { title.to_string() };
    TicketItem {
        region_name: names::region(&f.region).map(str::to_string),
        category_name: names::category(&f.category).map(str::to_string),
        received_at: time(f.received_at),
        due_at: f.due_at.map(time),
        finished_at: f.finished_at.map(time),
        ticket_id: f.ticket_id,
        channel: f.channel,
        region: f.region,
        category: f.category,
        department: f.department,
        status: f.status,
        overdue: f.overdue,
        reopened: f.reopened,
        evaluation: f.evaluation,
        title,
        revision: f.revision,
        delivered_revision: f.delivered_revision,
    }
}

/// Tickets in the caller's region, newest received first, filtered and a
/// page at a time. Tickets merged into another are found as the survivor.
#[utoipa::path(get, path = "/api/v1/tickets", params(TicketSearch), tag = "tickets",
    responses((status = 200, body = TicketPage), (status = 400), (status = 401), (status = 403)))]
pub async fn search(
    caller: Caller,
    State(s): State<ApiState>,
    Query(p): Query<TicketSearch>,
) -> Result<axum::Json<TicketPage>, ApiError> {
    let (mut q, page) = p.query(&caller)?;
    if let Some(ids) = q.ids.take() {
        let systems: Vec<String> = s.mappings.systems().map(str::to_string).collect();
        q.ids = Some(s.store.tickets_named(&ids[0], &systems).await?);
    }
    let found = s.store.search_tickets(&q).await?;
    let last = found.last().map(|f| format!("{}.{}", f.received_at, f.ticket_id));
    let next = next_of(found.len(), q.limit, last);
    let next_page = page.filter(|_| next.is_some()).map(|p| p + 1);
    let mask = caller.masks_personal_data();
    Ok(axum::Json(TicketPage { items: found.into_iter().map(|f| item(f, mask)).collect(), next, next_page }))
}

/// A revision of the ticket: why it was made and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionItem {
    pub revision: i64,
    pub cause: String,
    pub at: String,
}

/// A source record the ticket carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceItem {
    pub channel: String,
    pub system: String,
    pub record_id: String,
    pub version: i64,
    pub received_at: String,
}

/// A line of the ticket's history (callbacks, merges, deliveries back).
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    pub at: String,
    pub recorded_at: String,
    pub kind: String,
    pub detail: String,
}

/// A status message on its way back to an origin (or refused by it).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackItem {
    pub id: i64,
    pub destination: String,
    pub status: String,
    /// `pending`, or `dead` when the agency refused it for good.
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
}

/// A duplicate decision that names the ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateItem {
    pub id: i64,
    /// The ticket the record opened (possible) or joined (merged).
    pub ticket_id: String,
    /// The earlier ticket it was found alike.
    pub other_id: String,
    pub system: String,
    pub record_id: String,
    pub score: f64,
    /// One line per piece of evidence.
    pub reasons: Vec<String>,
    /// `merged`, `possible`, `confirmed`, `rejected`, `unmerged`.
    pub state: String,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub note: Option<String>,
}

impl DuplicateItem {
    pub fn of(l: crate::store::DuplicateLink, masker: Option<&Masker>) -> DuplicateItem {
        let text = |t: String| masker.map_or_else(|| t.clone(), |m| m.text(&t));
        DuplicateItem {
            id: l.id,
            ticket_id: l.ticket_id,
            other_id: l.other_id,
            system: l.system,
            record_id: l.record_id,
            score: l.score,
            reasons: l.reasons.into_iter().map(text).collect(),
            state: l.state,
            created_at: time(l.created_at),
            decided_at: l.decided_at.map(time),
            note: l.note.map(text),
        }
    }
}

/// A ticket with everything the hub knows of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetail {
    /// The ticket as the platform receives it; personal data masked for viewers.
    #[schema(value_type = Object)]
    pub ticket: serde_json::Value,
    pub region: String,
    pub delivered_revision: i64,
    pub sources: Vec<SourceItem>,
    pub revisions: Vec<RevisionItem>,
    /// The platform's side: status, department, deadline, evaluation, reopenings.
    #[schema(value_type = Option<Object>)]
    pub platform: Option<serde_json::Value>,
    pub history: Vec<HistoryItem>,
    pub feedback: Vec<FeedbackItem>,
    pub duplicates: Vec<DuplicateItem>,
}

/// Checks a ticket id from a path: 400 for what cannot be one.
pub fn ticket_id(text: &str) -> Result<String, ApiError> {
    word(text, "ticket id")
}

/// 404 unless the ticket exists and lies in the caller's region.
pub async fn visible_ticket(s: &ApiState, caller: &Caller, id: &str) -> Result<String, ApiError> {
    match s.store.ticket_region(id).await? {
        Some(region) if caller.scope.sees(&region) => Ok(region),
        _ => Err(ApiError(axum::http::StatusCode::NOT_FOUND, format!("no ticket {id}"))),
    }
}

/// One ticket: the ticket, its sources and revisions, the platform's side,
/// its history, messages to its origins and duplicate decisions with their
/// reasons. 404 for a ticket outside the caller's region.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id")),
    responses((status = 200, body = TicketDetail), (status = 400), (status = 401), (status = 404)))]
pub async fn show(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<TicketDetail>, ApiError> {
    let id = ticket_id(&id)?;
    let region = visible_ticket(&s, &caller, &id).await?;
    let stored = s.store.ticket(&id).await?;
    let mut ticket = serde_json::to_value(&stored.ticket)
        .map_err(|e| ApiError(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("ticket {id}: {e}")))?;
    let mut platform = s.store.handling(&id).await?.and_then(|h| serde_json::to_value(h).ok()).filter(|v| !v.is_null());
    let masker = caller.masks_personal_data().then(|| {
        // The platform's evaluation may name who rated it: mask it as the ticket's.
        let m = Masker::of_ticket(&ticket);
        if let Some(p) = platform.as_mut() {
            Masker::of_ticket(p).apply(p);
        }
        m.apply(&mut ticket);
        m
    });
    let text = |t: String| masker.as_ref().map_or_else(|| t.clone(), |m| m.text(&t));
    let sources = stored
        .ticket
        .sources
        .iter()
        .map(|src| SourceItem {
            channel: src.channel.as_str().to_string(),
            system: src.system.clone(),
            record_id: src.record_id.clone(),
            version: src.version,
            received_at: src.received_at.to_rfc3339(),
        })
        .collect();
    let revisions = stored
        .revisions
        .into_iter()
        .map(|(revision, cause, at)| RevisionItem { revision, cause: text(cause), at: time(at) })
        .collect();
    let history = s
        .store
        .ticket_events(&id)
        .await?
        .into_iter()
        .map(|e| HistoryItem { at: time(e.at), recorded_at: time(e.recorded_at), kind: e.kind, detail: text(e.detail) })
        .collect();
    let feedback = s
        .store
        .feedback_of(&id)
        .await?
        .into_iter()
        .map(|f| FeedbackItem {
            id: f.id,
            destination: f.destination,
            status: f.status,
            state: f.state,
            attempts: f.attempts,
            last_error: f.last_error.map(text),
            created_at: time(f.created_at),
        })
        .collect();
    let duplicates =
        s.store.duplicate_links_of(&id).await?.into_iter().map(|l| DuplicateItem::of(l, masker.as_ref())).collect();
    Ok(axum::Json(TicketDetail {
        ticket,
        region,
        delivered_revision: stored.delivered_revision,
        sources,
        revisions,
        platform,
        history,
        feedback,
        duplicates,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::{Role, Scope};

    fn viewer(region: Option<&str>) -> Caller {
        Caller { role: Role::Viewer, scope: region.map_or_else(Scope::city, |r| Scope::parse(r).unwrap()) }
    }

    #[test]
    fn a_search_is_read_into_the_stores_query_or_refused_with_a_sentence() {
        let p = TicketSearch {
            status: Some("in_progress".into()),
            from: Some("2024-07-01".into()),
            to: Some("2024-07-01".into()),
            per_page: Some("20".into()),
            page: Some("3".into()),
            ..TicketSearch::default()
        };
        let (q, page) = p.query(&viewer(Some("220421"))).unwrap();
        assert_eq!((q.limit, q.offset, page), (20, 40, Some(3)));
        assert_eq!(q.region.as_deref(), Some("220421"));
        assert_eq!(q.to_ms.unwrap() - q.from_ms.unwrap(), 86_400_000);
        let bad = |p: TicketSearch| p.query(&viewer(None)).unwrap_err();
        assert!(bad(TicketSearch { status: Some("lost".into()), ..Default::default() }).1.contains("status"));
        assert!(bad(TicketSearch { from: Some("2024-7-1x".into()), ..Default::default() }).1.contains("2026-11-30"));
        assert!(bad(TicketSearch { after: Some("nonsense".into()), ..Default::default() }).1.contains("next"));
        assert!(
            bad(TicketSearch { page: Some("2".into()), after: Some("1.a".into()), ..Default::default() })
                .1
                .contains("not both")
        );
        assert!(bad(TicketSearch { page: Some("900".into()), ..Default::default() }).1.contains("after"));
        let outside = TicketSearch { region: Some("220402".into()), ..Default::default() };
        assert_eq!(outside.query(&viewer(Some("220421"))).unwrap_err().0, 403);
        let (q, _) = TicketSearch { after: Some("1720000000000.abc".into()), ..Default::default() }
            .query(&viewer(None))
            .unwrap();
        assert_eq!(q.after, Some((1_720_000_000_000, "abc".to_string())));
    }
}
