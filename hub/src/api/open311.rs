//! `/open311/v2/…`: the read half of Open311 GeoReport v2
//! (<https://wiki.open311.org/GeoReport_v2>), so that apps and newsrooms
//! that already speak it can follow the city's matters.
//!
//! - `services.json|xml`: the platform's categories as services;
//! - `requests.json|xml`: matters by `service_request_id`, `service_code`,
//!   `start_date`/`end_date` and `status`, newest first, at most 1,000;
//! - `requests/{id}.json|xml`: one matter.
//!
//! What the spec leaves to the server, and how this one reads it:
//! without dates, the last 90 days; the spec says a range "may not span
//! more than 90 days", so a longer one is refused (400), not clamped; with
//! only `start_date` the 90 days after it, with only `end_date` the 90
//! days before it. A date without a time is a whole day, Beijing time.
//! `open` is the hub's `new`, `dispatched` and `in_progress`; `closed` is
//! `resolved`, `closed` and `withdrawn` (a withdrawn matter is over too);
//! `status_notes` says which.
//!
//! No personal data goes out, whoever asks: no reporter's name, phone or ID
//! number, no house number. The address is the district, township and
//! street; coordinates are rounded to 3 decimals (about 100 m); the
//! description has every personal value of the ticket taken out and any
//! remaining number long enough to be a phone or ID number masked in full;
//! media (photos of people's homes, internal links) and the post code are
//! left empty.
//!
//! A viewer token is needed (any role), unless `[open311] public = true`;
//! a token scoped to a county or township sees only its matters, public or
//! not.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Refused, Scope};
use super::{ApiError, ApiState};
use crate::stats::names;
use crate::store::{MAX_REQUESTS, PublicFilter, PublicRow};
use crate::ticket::beijing;
use crate::ticket::handling::Handling;

/// GeoReport v2: a date range "may not span more than 90 days", and the
/// default is the last 90 days.
pub const MAX_SPAN_DAYS: i64 = 90;
const DAY_MS: i64 = 86_400_000;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/open311/v2/services.json", get(services_json))
        .route("/open311/v2/services.xml", get(services_xml))
        .route("/open311/v2/requests.json", get(requests_json))
        .route("/open311/v2/requests.xml", get(requests_xml))
        .route("/open311/v2/requests/{file}", get(one_request))
}

/// The two formats GeoReport v2 names (XML required, JSON optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    fn of(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "text/xml; charset=utf-8",
        }
    }
}

/// An error as GeoReport v2 answers it: `[{"code": 404, "description": "…"}]`
/// or `<errors><error><code>…`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Open311Error {
    pub code: u16,
    pub description: String,
}

/// A refused request, answered in the format it asked for.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl Failure {
    fn bad(msg: impl Into<String>) -> Failure {
        Failure(StatusCode::BAD_REQUEST, msg.into())
    }

    fn respond(self, format: Format) -> Response {
        let e = Open311Error { code: self.0.as_u16(), description: self.1 };
        let body = match format {
            Format::Json => serde_json::to_string(&[&e]).unwrap_or_else(|_| "[]".into()),
            Format::Xml => xml_document(
                "errors",
                "error",
                std::iter::once(vec![("code", Some(e.code.to_string())), ("description", Some(e.description))]),
            ),
        };
        let mut r = (self.0, [(header::CONTENT_TYPE, format.content_type())], body).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Failure {
        let ApiError(status, msg) = ApiError::from(e);
        Failure(status, msg)
    }
}

/// The part of the city the request may see: the token's region, the whole
/// city for a public endpoint asked without a token; 401 otherwise (also
/// for a wrong token on a public endpoint: a mistake worth telling).
fn scope_of(state: &ApiState, caller: Result<Caller, Refused>, headers: &HeaderMap) -> Result<Scope, Failure> {
    match caller {
        Ok(c) => Ok(c.scope),
        Err(_) if state.open311_public && !headers.contains_key(header::AUTHORIZATION) => Ok(Scope::city()),
        Err(_) => Err(Failure(StatusCode::UNAUTHORIZED, "a valid bearer token is required".into())),
    }
}

fn ok(format: Format, json: String, xml: impl FnOnce() -> String) -> Response {
    let body = match format {
        Format::Json => json,
        Format::Xml => xml(),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

// ---------------------------------------------------------------- services

/// One service, with the fields GeoReport v2 lists for `GET services`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Service {
    /// The platform's category code (`0101`).
    pub service_code: String,
    /// Its second level (市政设施).
    pub service_name: String,
    pub description: String,
    /// No service definitions: always false.
    pub metadata: bool,
    /// `realtime`: each matter is a request of its own at once.
    #[serde(rename = "type")]
    pub kind: String,
    /// The table's examples, comma-separated.
    pub keywords: String,
    /// The first level (城市管理).
    pub group: String,
}

impl Service {
    fn fields(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("service_code", Some(self.service_code.clone())),
            ("service_name", Some(self.service_name.clone())),
            ("description", Some(self.description.clone())),
            ("metadata", Some(self.metadata.to_string())),
            ("type", Some(self.kind.clone())),
            ("keywords", Some(self.keywords.clone())),
            ("group", Some(self.group.clone())),
        ]
    }
}

/// The shipped category table (`mappings/tables/platform-categories.csv`:
/// code, level1, level2, examples) as services.
static SERVICES: LazyLock<Vec<Service>> = LazyLock::new(|| {
    crate::mapping::shipped::table("platform-categories")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split(',').map(str::trim);
            let (code, level1, level2) = (cols.next()?, cols.next()?, cols.next()?);
            let examples: Vec<&str> = cols.next().unwrap_or_default().split_whitespace().collect();
            let description = if examples.is_empty() {
                format!("{level1}/{level2}")
            } else {
                format!("{level1}/{level2}：{}等", examples.join("、"))
            };
            Some(Service {
                service_code: code.to_string(),
                service_name: level2.to_string(),
                description,
                metadata: false,
                kind: "realtime".into(),
                keywords: examples.join(","),
                group: level1.to_string(),
            })
        })
        .collect()
});

fn service_name(code: &str) -> Option<String> {
    SERVICES.iter().find(|s| s.service_code == code).map(|s| s.service_name.clone())
}

async fn services(format: Format, state: ApiState, caller: Result<Caller, Refused>, headers: HeaderMap) -> Response {
    if let Err(f) = scope_of(&state, caller, &headers) {
        return f.respond(format);
    }
    let services = &*SERVICES;
    ok(format, serde_json::to_string(services).unwrap_or_else(|_| "[]".into()), || {
        xml_document("services", "service", services.iter().map(Service::fields))
    })
}

/// The platform's categories as GeoReport v2 services (JSON).
#[utoipa::path(get, path = "/open311/v2/services.json", tag = "open311",
    responses((status = 200, body = [Service]), (status = 401, body = [Open311Error])))]
pub async fn services_json(State(s): State<ApiState>, headers: HeaderMap, caller: Result<Caller, Refused>) -> Response {
    services(Format::Json, s, caller, headers).await
}

/// The same as `services.json`, as `<services><service>…` (XML, UTF-8).
#[utoipa::path(get, path = "/open311/v2/services.xml", tag = "open311",
    responses((status = 200, content_type = "text/xml", body = String), (status = 401, content_type = "text/xml", body = String)))]
pub async fn services_xml(State(s): State<ApiState>, headers: HeaderMap, caller: Result<Caller, Refused>) -> Response {
    services(Format::Xml, s, caller, headers).await
}

// ---------------------------------------------------------------- requests

/// The arguments of `GET requests` (GeoReport v2). Each may be given more
/// than once or comma-separated.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it as pairs
pub struct RequestsParams {
    /// Ticket ids, comma-separated; overrides every other argument.
    service_request_id: Option<String>,
    /// Category codes, comma-separated (`0101,0203`).
    service_code: Option<String>,
    /// Earliest `requested_datetime`, W3C (`2024-07-01T00:00:00+08:00`, `2024-07-01`).
    start_date: Option<String>,
    /// Latest `requested_datetime`; at most 90 days after `start_date`.
    end_date: Option<String>,
    /// `open`, `closed` or both.
    status: Option<String>,
    /// Accepted and ignored: this endpoint serves one jurisdiction.
    jurisdiction_id: Option<String>,
}

/// One matter, with exactly the fields GeoReport v2 lists for `GET
/// requests`, in its order. Empty fields are `null` (JSON) or empty
/// elements (XML).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ServiceRequest {
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: String,
    /// The hub's finer status, in words (已派单, 已撤回…).
    pub status_notes: Option<String>,
    pub service_name: Option<String>,
    pub service_code: String,
    /// The matter's description without personal data.
    pub description: Option<String>,
    /// The department the platform dispatched it to.
    pub agency_responsible: Option<String>,
    pub service_notice: Option<String>,
    pub requested_datetime: String,
    pub updated_datetime: Option<String>,
    /// The deadline (`dueAt`).
    pub expected_datetime: Option<String>,
    /// District, township and street; never a house number.
    pub address: Option<String>,
    pub address_id: Option<String>,
    pub zipcode: Option<String>,
    /// Rounded to 3 decimals (about 100 m).
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub media_url: Option<String>,
}

impl ServiceRequest {
    fn fields(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("service_request_id", Some(self.service_request_id.clone())),
            ("status", Some(self.status.clone())),
            ("status_notes", self.status_notes.clone()),
            ("service_name", self.service_name.clone()),
            ("service_code", Some(self.service_code.clone())),
            ("description", self.description.clone()),
            ("agency_responsible", self.agency_responsible.clone()),
            ("service_notice", self.service_notice.clone()),
            ("requested_datetime", Some(self.requested_datetime.clone())),
            ("updated_datetime", self.updated_datetime.clone()),
            ("expected_datetime", self.expected_datetime.clone()),
            ("address", self.address.clone()),
            ("address_id", self.address_id.clone()),
            ("zipcode", self.zipcode.clone()),
            ("lat", self.lat.map(|v| v.to_string())),
            ("long", self.long.map(|v| v.to_string())),
            ("media_url", self.media_url.clone()),
        ]
    }

    /// The public view of one stored matter; none if its body cannot be read.
    fn of(row: &PublicRow) -> Option<ServiceRequest> {
        let ticket: Value = match serde_json::from_str(&row.body) {
            Ok(v) => v,
            Err(_) => {
                tracing::warn!(ticket_id = %row.ticket_id, "a stored ticket cannot be read; left out of Open311");
                return None;
            }
        };
        let handling: Option<Handling> = row.handling.as_deref().and_then(|h| serde_json::from_str(h).ok());
        let private = Private::of(&ticket);
        let text = |key: &str| ticket.get(key).and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty());
        let description = text("description").or_else(|| text("title")).map(|t| private.text(t));
        let last_event = handling.and_then(|h| h.last_event_at).map(|t| t.timestamp_millis());
        let updated = row.updated_at.max(last_event.unwrap_or(0)).max(row.received_at);
        let geo = ticket.get("geo");
        let coordinate = |key: &str| {
            geo.and_then(|g| g.get(key))
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite())
                .map(|v| (v * 1000.0).round() / 1000.0)
        };
        Some(ServiceRequest {
            service_request_id: row.ticket_id.clone(),
            status: open_or_closed(&row.status).to_string(),
            status_notes: status_note(&row.status).map(str::to_string),
            service_name: service_name(&row.category),
            service_code: row.category.clone(),
            description: description.filter(|d| !d.is_empty()),
            agency_responsible: Some(crate::pii::scrub(row.department.trim())).filter(|d| !d.is_empty()),
            service_notice: None,
            requested_datetime: w3c(row.received_at),
            updated_datetime: Some(w3c(updated)),
            expected_datetime: row.due_at.map(w3c),
            address: public_address(&ticket, &private),
            address_id: None,
            zipcode: None,
            lat: coordinate("lat"),
            long: coordinate("lng"),
            media_url: None,
        })
    }
}

/// The hub's statuses GeoReport's `open` and `closed` stand for.
const OPEN: [&str; 3] = ["new", "dispatched", "in_progress"];
const CLOSED: [&str; 3] = ["resolved", "closed", "withdrawn"];

fn open_or_closed(status: &str) -> &'static str {
    if CLOSED.contains(&status) { "closed" } else { "open" }
}

fn status_note(status: &str) -> Option<&'static str> {
    Some(match status {
        "new" => "已受理",
        "dispatched" => "已派单",
        "in_progress" => "办理中",
        "resolved" => "已办结",
        "closed" => "已结案",
        "withdrawn" => "已撤回",
        _ => return None,
    })
}

/// A time as GeoReport v2 writes it (W3C, with its offset), Beijing time:
/// `2024-07-15T10:41:00+08:00`.
pub fn w3c(ms: i64) -> String {
    beijing()
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// A W3C date or date-time (the note GeoReport v2 refers to: `YYYY`,
/// `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.s]]TZD`): the instant it
/// begins and the one after the period it names (epoch ms), so that an end
/// date of `2024-07-31` takes in all of that day. Without an offset the
/// time is Beijing's. A `+` sent unencoded in a query string arrives as a
/// space; it is read as the `+` it was.
pub fn parse_w3c(text: &str) -> Result<(i64, i64), String> {
    let bad = || format!("`{text}` is not a W3C date-time such as 2024-07-01T00:00:00+08:00 or 2024-07-01");
    let mut s = text.trim().to_string();
    if !s.is_ascii() {
        return Err(bad());
    }
    if let Some(i) = s.rfind(' ')
        && s[..i].contains('T')
    {
        s.replace_range(i..=i, "+");
    }
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let midnight = |d: NaiveDate| beijing().from_local_datetime(&d.and_time(NaiveTime::MIN)).single();
    let span = |from: Option<DateTime<FixedOffset>>, to: Option<DateTime<FixedOffset>>| match (from, to) {
        (Some(f), Some(t)) => Ok((f.timestamp_millis(), t.timestamp_millis())),
        _ => Err(bad()),
    };
    if s.len() == 4 && digits(&s) {
        let year: i32 = s.parse().map_err(|_| bad())?;
        let first = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(bad)?;
        return span(midnight(first), first.checked_add_months(Months::new(12)).and_then(midnight));
    }
    if s.len() == 7 && digits(&s[..4]) && &s[4..5] == "-" && digits(&s[5..]) {
        let first = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").map_err(|_| bad())?;
        return span(midnight(first), first.checked_add_months(Months::new(1)).and_then(midnight));
    }
    if s.len() == 10 {
        let day = NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| bad())?;
        return span(midnight(day), day.succ_opt().and_then(midnight));
    }
    let (date, rest) = s.split_once(['T', 't']).ok_or_else(bad)?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?;
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, FixedOffset::east_opt(0).ok_or_else(bad)?)
    } else if rest.len() > 6 && matches!(rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
        let (t, tz) = rest.split_at(rest.len() - 6);
        let sign = if tz.starts_with('-') { -1 } else { 1 };
        let (h, m) = tz[1..].split_once(':').ok_or_else(bad)?;
        if !digits(h) || !digits(m) || h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 14 || m > 59 {
            return Err(bad());
        }
        (t, FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)?)
    } else {
        (rest, beijing())
    };
    let (time, precision_ms) = match time.len() {
        5 => (NaiveTime::parse_from_str(time, "%H:%M"), 60_000),
        8 => (NaiveTime::parse_from_str(time, "%H:%M:%S"), 1_000),
        _ => (NaiveTime::parse_from_str(time, "%H:%M:%S%.f"), 1),
    };
    let time = time.map_err(|_| bad())?;
    let at = offset.from_local_datetime(&NaiveDateTime::new(date, time)).single().ok_or_else(bad)?;
    let ms = at.timestamp_millis();
    Ok((ms, ms + precision_ms))
}

/// Turns the query's pairs into what the store selects. A key given more
/// than once counts as one comma-separated list.
pub fn filter_of(params: &[(String, String)], now_ms: i64) -> Result<PublicFilter, String> {
    // Distinct items, at most MAX_REQUESTS of them: a query string of
    // 100,000 distinct ids must not cost a quadratic search per item.
    let list = |key: &str| -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (_, v) in params.iter().filter(|(k, _)| k == key) {
            for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                if seen.insert(item) {
                    if out.len() == MAX_REQUESTS as usize {
                        return Err(format!("at most {MAX_REQUESTS} {key} at once"));
                    }
                    out.push(item.to_string());
                }
            }
        }
        Ok(out)
    };
    let one = |key: &str| -> Result<Option<String>, String> {
        let values: Vec<&String> = params.iter().filter(|(k, _)| k == key).map(|(_, v)| v).collect();
        match values.as_slice() {
            [] => Ok(None),
            [v] if v.trim().is_empty() => Ok(None),
            [v] => Ok(Some(v.trim().to_string())),
            _ => Err(format!("`{key}` is given more than once")),
        }
    };
    let mut filter = PublicFilter { limit: MAX_REQUESTS, ..PublicFilter::default() };
    filter.ids = list("service_request_id")?;
    if let Some(bad) = filter.ids.iter().find(|id| !valid_id(id)) {
        return Err(format!("`{}` is not a service_request_id", crate::pii::scrub(bad)));
    }
    if !filter.ids.is_empty() {
        // GeoReport v2: service_request_id "overrides all other arguments".
        return Ok(filter);
    }
    filter.categories = list("service_code")?;
    if let Some(bad) = filter.categories.iter().find(|c| !(c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()))) {
        return Err(format!("`{}` is not a service_code (see services.json)", crate::pii::scrub(bad)));
    }
    let statuses = list("status")?;
    let (mut open, mut closed) = (false, false);
    for s in &statuses {
        match s.to_ascii_lowercase().as_str() {
            "open" => open = true,
            "closed" => closed = true,
            _ => return Err(format!("status must be open or closed, not `{}`", crate::pii::scrub(s))),
        }
    }
    if open != closed {
        let set: &[&str] = if open { &OPEN } else { &CLOSED };
        filter.statuses = set.iter().map(|s| s.to_string()).collect();
    }
    let start = one("start_date")?.map(|t| parse_w3c(&t).map(|(from, _)| from)).transpose()?;
    let end = one("end_date")?.map(|t| parse_w3c(&t).map(|(_, after)| after)).transpose()?;
    let span = MAX_SPAN_DAYS * DAY_MS;
    (filter.from_ms, filter.until_ms) = match (start, end) {
        (None, None) => (now_ms - span, i64::MAX),
        (Some(s), None) => (s, s.saturating_add(span)),
        (None, Some(e)) => (e.saturating_sub(span), e),
        (Some(s), Some(e)) if e <= s => return Err("end_date is before start_date".into()),
        (Some(s), Some(e)) if e - s > span => {
            return Err(format!("start_date and end_date may not span more than {MAX_SPAN_DAYS} days"));
        }
        (Some(s), Some(e)) => (s, e),
    };
    Ok(filter)
}

/// Ticket ids are UUIDs; anything else of letters, digits, `-` and `_`
/// is let through to find nothing.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn requests(
    format: Format,
    state: ApiState,
    caller: Result<Caller, Refused>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let answer = async {
        let scope = scope_of(&state, caller, &headers)?;
        let Query(params) = query.map_err(|_| Failure::bad("the query string cannot be read"))?;
        let mut filter = filter_of(&params, crate::store::now_ms()).map_err(Failure::bad)?;
        filter.region = scope.prefix().map(str::to_string);
        let rows = state.store.public_requests(&filter).await?;
        Ok::<_, Failure>(rows.iter().filter_map(ServiceRequest::of).collect::<Vec<_>>())
    };
    match answer.await {
        Ok(list) => render_requests(format, &list),
        Err(f) => f.respond(format),
    }
}

fn render_requests(format: Format, list: &[ServiceRequest]) -> Response {
    ok(format, serde_json::to_string(list).unwrap_or_else(|_| "[]".into()), || {
        xml_document("service_requests", "request", list.iter().map(ServiceRequest::fields))
    })
}

/// Matters as GeoReport v2 service requests (JSON), newest first, at most 1,000.
#[utoipa::path(get, path = "/open311/v2/requests.json", tag = "open311", params(RequestsParams),
    responses((status = 200, body = [ServiceRequest]), (status = 400, body = [Open311Error]), (status = 401, body = [Open311Error])))]
pub async fn requests_json(
    State(s): State<ApiState>,
    headers: HeaderMap,
    caller: Result<Caller, Refused>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    requests(Format::Json, s, caller, headers, query).await
}

/// The same as `requests.json`, as `<service_requests><request>…` (XML, UTF-8).
#[utoipa::path(get, path = "/open311/v2/requests.xml", tag = "open311", params(RequestsParams),
    responses((status = 200, content_type = "text/xml", body = String), (status = 400, content_type = "text/xml", body = String), (status = 401, content_type = "text/xml", body = String)))]
pub async fn requests_xml(
    State(s): State<ApiState>,
    headers: HeaderMap,
    caller: Result<Caller, Refused>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    requests(Format::Xml, s, caller, headers, query).await
}

/// One matter, `requests/{id}.json` or `.xml`: a list of one, as GeoReport v2 answers it.
#[utoipa::path(get, path = "/open311/v2/requests/{file}", tag = "open311",
    params(("file" = String, Path, description = "the service_request_id with `.json` or `.xml`")),
    responses((status = 200, body = [ServiceRequest]), (status = 401, body = [Open311Error]), (status = 404, body = [Open311Error])))]
pub async fn one_request(
    State(s): State<ApiState>,
    headers: HeaderMap,
    caller: Result<Caller, Refused>,
    Path(file): Path<String>,
) -> Response {
    let (id, format) = match file.rsplit_once('.').and_then(|(id, ext)| Some((id, Format::of(ext)?))) {
        Some(found) => found,
        None => {
            return Failure(StatusCode::NOT_FOUND, "ask for requests/{id}.json or .xml".into()).respond(Format::Json);
        }
    };
    let answer = async {
        let scope = scope_of(&s, caller, &headers)?;
        let missing = || Failure(StatusCode::NOT_FOUND, format!("no service request {}", crate::pii::scrub(id)));
        if !valid_id(id) {
            return Err(missing());
        }
        let filter = PublicFilter {
            ids: vec![id.to_string()],
            region: scope.prefix().map(str::to_string),
            limit: 1,
            ..PublicFilter::default()
        };
        let list: Vec<ServiceRequest> =
            s.store.public_requests(&filter).await?.iter().filter_map(ServiceRequest::of).collect();
        if list.is_empty() { Err(missing()) } else { Ok(list) }
    };
    match answer.await {
        Ok(list) => render_requests(format, &list),
        Err(f) => f.respond(format),
    }
}

// ---------------------------------------------------------- personal data

/// Chinese numerals that start a house or building number (五号楼, 三单元).
const NUMERALS: &str = "一二三四五六七八九十百千零〇两";

/// What in a ticket identifies a person, and what each becomes in public
/// text: names, phones and ID numbers go entirely; the address becomes its
/// street.
struct Private {
    /// (value, replacement), longest value first.
    known: Vec<(String, String)>,
}

/// What is left of a masked number (`139****1234`): masked in full.
static PARTIAL_NUMBER: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"[+0-9０-９]*\*{2,}[0-9０-９Xx]*").expect("a valid pattern"));
/// A surname with an honorific (王女士, 李先生): who called, whoever it was.
static HONORIFIC: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\p{Han}(女士|先生)").expect("a valid pattern"));

impl Private {
    fn of(ticket: &Value) -> Private {
        let mut known: Vec<(String, String)> = Vec::new();
        let mut add = |v: Option<&Value>, replacement: &str| {
            if let Some(v) = v.and_then(Value::as_str).map(str::trim).filter(|v| v.chars().count() >= 2) {
                known.push((v.to_string(), replacement.to_string()));
                if let Some(national) = v.strip_prefix("+86").filter(|n| n.len() >= 7) {
                    known.push((national.to_string(), replacement.to_string()));
                }
            }
        };
        for r in ticket.get("reporters").and_then(Value::as_array).into_iter().flatten() {
            add(r.get("name"), "***");
            add(r.get("phone"), "***");
            add(r.get("idNumber"), "***");
        }
        add(ticket.get("evaluation").and_then(|e| e.get("by")), "***");
        if let Some(address) = ticket.get("address").and_then(Value::as_str).map(str::trim).filter(|a| !a.is_empty()) {
            known.push((address.to_string(), street_of(address)));
            // The house part on its own (`5号楼3单元502`): a description
            // quotes the address as the caller said it, rarely as typed.
            if let Some(at) = address.find(house_numeral) {
                let house = address[at..].trim();
                if house.chars().count() >= 2 {
                    known.push((house.to_string(), String::new()));
                }
            }
        }
        known.sort_by_key(|(k, _)| std::cmp::Reverse(k.chars().count()));
        Private { known }
    }

    /// Free text with every known personal value taken out, then any
    /// number long enough to be a phone or ID number, and any 王女士.
    fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, replacement) in &self.known {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), replacement);
            }
        }
        let out = crate::pii::scrub(&out);
        let out = PARTIAL_NUMBER.replace_all(&out, "***");
        let out = crate::pii::mask_houses(&out);
        HONORIFIC.replace_all(&out, "*$1").into_owned()
    }

    /// Whether public text would lose something of `s`: it quotes a person.
    fn touches(&self, s: &str) -> bool {
        self.known.iter().any(|(v, r)| r == "***" && s.contains(v.as_str())) || self.text(s) != s
    }
}

/// The street of an address: up to its first number (`义宁街12号` →
/// `义宁街`, `康宁社区5号楼3单元502` → `康宁社区`). Long free text is no
/// street: empty.
fn house_numeral(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c) || NUMERALS.contains(c)
}

fn street_of(address: &str) -> String {
    let cut = address.find(house_numeral).map_or(address, |at| &address[..at]);
    let street = cut.trim_end_matches(|c: char| c.is_whitespace() || "第,，、(（-－#".contains(c)).trim();
    if street.chars().count() > 30 { String::new() } else { street.to_string() }
}

/// The district, township and street of a matter; never a house number,
/// nothing that names a person (then the place without the street).
fn public_address(ticket: &Value, private: &Private) -> Option<String> {
    let region = ticket.get("region");
    let name = region.and_then(|r| r.get("name")).and_then(Value::as_str).unwrap_or_default().trim();
    let code = region.and_then(|r| r.get("code")).and_then(Value::as_str).unwrap_or_default();
    let county = code.get(..6).and_then(names::region).filter(|c| *c != name && !name.starts_with(c));
    let place = format!("{}{name}", county.unwrap_or_default());
    let street = ticket.get("address").and_then(Value::as_str).map(street_of).unwrap_or_default();
    let street = if private.touches(&street) { String::new() } else { street };
    let address = if street.is_empty() {
        place
    } else if !name.is_empty() && street.contains(name) {
        let county = county.filter(|c| !street.contains(c));
        format!("{}{street}", county.unwrap_or_default())
    } else {
        format!("{place}{street}")
    };
    Some(address).filter(|a| !a.is_empty())
}

// -------------------------------------------------------------------- XML

/// `<?xml …?><root><item><field>…</field>…</item>…</root>`; an empty field
/// is an empty element, as the spec's examples show.
fn xml_document<I>(root: &str, item: &str, items: I) -> String
where
    I: IntoIterator<Item = Vec<(&'static str, Option<String>)>>,
{
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>");
    for fields in items {
        out.push_str(&format!("\n  <{item}>"));
        for (name, value) in fields {
            out.push_str(&format!("<{name}>{}</{name}>", crate::markup::escape(value.as_deref().unwrap_or_default())));
        }
        out.push_str(&format!("</{item}>"));
    }
    out.push_str(&format!("\n</{root}>\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GeoReport v2 (wiki.open311.org/GeoReport_v2), `GET services`: the
    /// fields of a service, in the spec's order.
    const SPEC_SERVICE_FIELDS: [&str; 7] =
        ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"];
    /// GeoReport v2, `GET requests` / `GET request`: the fields of a
    /// service request, in the spec's order.
    const SPEC_REQUEST_FIELDS: [&str; 17] = [
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
    ];

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn w3c_dates_and_times_are_read_with_their_precision() {
        let t = ms("2024-07-15T10:41:00+08:00");
        assert_eq!(parse_w3c("2024-07-15T10:41:00+08:00"), Ok((t, t + 1000)));
        assert_eq!(parse_w3c("2024-07-15T02:41:00Z"), Ok((t, t + 1000)));
        assert_eq!(parse_w3c("2024-07-15T10:41+08:00"), Ok((t, t + 60_000)));
        assert_eq!(parse_w3c("2024-07-15T10:41:00.5+08:00"), Ok((t + 500, t + 501)));
        assert_eq!(parse_w3c("2024-07-14T21:41:00-05:00"), Ok((t, t + 1000)));
        // `+` unencoded in a query string arrives as a space.
        assert_eq!(parse_w3c("2024-07-15T10:41:00 08:00"), Ok((t, t + 1000)));
        // No offset: Beijing time, as every agency time without one.
        assert_eq!(parse_w3c("2024-07-15T10:41:00"), Ok((t, t + 1000)));
        let day = ms("2024-07-15T00:00:00+08:00");
        assert_eq!(parse_w3c("2024-07-15"), Ok((day, day + DAY_MS)));
        assert_eq!(parse_w3c("2024-07"), Ok((ms("2024-07-01T00:00:00+08:00"), ms("2024-08-01T00:00:00+08:00"))));
        assert_eq!(parse_w3c("2024"), Ok((ms("2024-01-01T00:00:00+08:00"), ms("2025-01-01T00:00:00+08:00"))));
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-07-32",
            "2024-07-15T25:00:00Z",
            "2024-07-15T10:41:00+99:00",
            "２０２４",
        ] {
            assert!(parse_w3c(bad).unwrap_err().contains("W3C"), "{bad}");
        }
        assert_eq!(w3c(t), "2024-07-15T10:41:00+08:00");
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_spec_defaults_and_limits_hold() {
        let now = ms("2026-11-03T12:00:00+08:00");
        let f = filter_of(&[], now).unwrap();
        assert_eq!((f.from_ms, f.until_ms, f.limit), (now - 90 * DAY_MS, i64::MAX, 1000));
        let f = filter_of(&q(&[("start_date", "2024-07-01"), ("end_date", "2024-07-31")]), now).unwrap();
        assert_eq!((f.from_ms, f.until_ms), (ms("2024-07-01T00:00:00+08:00"), ms("2024-08-01T00:00:00+08:00")));
        // Exactly 90 days is allowed; one more is refused, not clamped.
        assert!(filter_of(&q(&[("start_date", "2024-07-01"), ("end_date", "2024-09-28")]), now).is_ok());
        let e = filter_of(&q(&[("start_date", "2024-07-01"), ("end_date", "2024-09-29")]), now).unwrap_err();
        assert!(e.contains("90 days"), "{e}");
        let e = filter_of(&q(&[("start_date", "2024-07-10"), ("end_date", "2024-07-01")]), now).unwrap_err();
        assert!(e.contains("before"), "{e}");
        let f = filter_of(&q(&[("start_date", "2024-07-01")]), now).unwrap();
        assert_eq!(f.until_ms - f.from_ms, 90 * DAY_MS);
        let f = filter_of(&q(&[("end_date", "2024-07-31")]), now).unwrap();
        assert_eq!(f.until_ms - f.from_ms, 90 * DAY_MS);
    }

    #[test]
    fn status_codes_and_ids_are_read_as_the_spec_says() {
        let now = 0;
        let f = filter_of(&q(&[("status", "open")]), now).unwrap();
        assert_eq!(f.statuses, ["new", "dispatched", "in_progress"]);
        let f = filter_of(&q(&[("status", "closed")]), now).unwrap();
        assert_eq!(f.statuses, ["resolved", "closed", "withdrawn"]);
        assert!(filter_of(&q(&[("status", "open,closed")]), now).unwrap().statuses.is_empty());
        assert!(filter_of(&q(&[("status", "open"), ("status", "closed")]), now).unwrap().statuses.is_empty());
        assert!(filter_of(&q(&[("status", "pending")]), now).is_err());
        let f = filter_of(&q(&[("service_code", "0101, 0203"), ("service_code", "0101")]), now).unwrap();
        assert_eq!(f.categories, ["0101", "0203"]);
        assert!(filter_of(&q(&[("service_code", "01")]), now).is_err());
        // service_request_id overrides every other argument.
        let f = filter_of(&q(&[("service_request_id", "a-1,b_2"), ("status", "nonsense"), ("end_date", "x")]), now)
            .unwrap();
        assert_eq!((f.ids.len(), f.statuses.len(), f.categories.len()), (2, 0, 0));
        assert!(filter_of(&q(&[("service_request_id", "a'; DROP")]), now).is_err());
        // Many distinct ids are refused at the 1,001st, without a quadratic dedup.
        let many: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
        let e = filter_of(&q(&[("service_request_id", many.join(",").as_str())]), now).unwrap_err();
        assert!(e.contains("at most 1000"), "{e}");
        let repeated = vec!["t1"; 5000].join(",");
        assert_eq!(filter_of(&q(&[("service_request_id", repeated.as_str())]), now).unwrap().ids, ["t1"]);
        assert!(filter_of(&q(&[("start_date", "2024-07-01"), ("start_date", "2024-07-02")]), now).is_err());
        assert_eq!((open_or_closed("withdrawn"), open_or_closed("dispatched")), ("closed", "open"));
    }

    #[test]
    fn xml_text_is_escaped_and_well_formed() {
        assert_eq!(
            crate::markup::escape(r#"<a href="x">A&B's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;A&amp;B&apos;s&lt;/a&gt;"
        );
        assert_eq!(crate::markup::escape("井盖\u{0}破\u{1b}损\tok\n"), "井盖破损\tok\n");
        assert_eq!(crate::markup::escape("]]>"), "]]&gt;");
        let doc = xml_document("errors", "error", [vec![("code", Some("404".into())), ("description", None)]]);
        assert!(doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<errors>"), "{doc}");
        assert!(doc.contains("<error><code>404</code><description></description></error>"), "{doc}");
        let doc = xml_document("services", "service", [vec![("description", Some("a < b & \"c\" \u{7}".into()))]]);
        let mut reader = quick_xml::Reader::from_str(&doc);
        let mut texts = Vec::new();
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Eof => break,
                quick_xml::events::Event::Text(t) => texts.push(t[..].to_string()),
                quick_xml::events::Event::GeneralRef(r) => texts.push(format!("&{};", &r[..])),
                _ => {}
            }
        }
        assert!(texts.concat().contains("a &lt; b &amp; &quot;c&quot; "), "{texts:?}");
    }

    #[test]
    fn services_have_the_spec_fields_for_every_category() {
        assert_eq!(SERVICES.len(), 33);
        for s in SERVICES.iter() {
            let names: Vec<&str> = s.fields().iter().map(|(n, _)| *n).collect();
            assert_eq!(names, SPEC_SERVICE_FIELDS);
            let json = serde_json::to_value(s).unwrap();
            let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
            let mut spec = SPEC_SERVICE_FIELDS.to_vec();
            spec.sort();
            let mut keys = keys;
            keys.sort();
            assert_eq!(keys, spec);
            assert_eq!((s.metadata, s.kind.as_str()), (false, "realtime"));
        }
        let manholes = SERVICES.iter().find(|s| s.service_code == "0101").unwrap();
        assert_eq!((manholes.service_name.as_str(), manholes.group.as_str()), ("市政设施", "城市管理"));
        assert!(manholes.keywords.contains("井盖破损,下水井塌陷"), "{}", manholes.keywords);
    }

    fn row(body: Value) -> PublicRow {
        PublicRow {
            ticket_id: "0193-a".into(),
            received_at: ms("2024-07-15T10:41:00+08:00"),
            region: "220402002000".into(),
            category: "0203".into(),
            department: "龙山区住建局".into(),
            status: "withdrawn".into(),
            due_at: Some(ms("2024-07-20T18:00:00+08:00")),
            updated_at: ms("2024-07-16T09:00:00+08:00"),
            body: body.to_string(),
            handling: None,
        }
    }

    #[test]
    fn a_request_has_the_spec_fields_and_no_personal_data() {
        let ticket = serde_json::json!({
            "title": "王小明反映暖气不热",
            "description": "来电人王小明（139 0437 1234，１３９０４３７１２３４）称南康街道康宁社区5号楼3单元502暖气不热，邻居李先生也一样，另可拨13812345678。",
            "address": "南康街道康宁社区5号楼3单元502",
            "region": {"code": "220402002000", "level": "township", "name": "南康街道"},
            "geo": {"lat": 42.888123, "lng": 125.143987},
            "reporters": [{"channel": "hotline", "name": "王小明", "phone": "+8613904371234",
                           "idNumber": "220402198001011230", "anonymous": false}],
        });
        let r = ServiceRequest::of(&row(ticket)).unwrap();
        let names: Vec<&str> = r.fields().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, SPEC_REQUEST_FIELDS);
        let json = serde_json::to_value(&r).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        let mut spec = SPEC_REQUEST_FIELDS.to_vec();
        spec.sort();
        assert_eq!(keys, spec);
        let shown = json.to_string();
        for personal in ["王小明", "0437", "０４３７", "19800101", "5号楼", "502", "12345678", "李先生"] {
            assert!(!shown.contains(personal), "{personal}: {shown}");
        }
        assert_eq!(r.status, "closed");
        assert_eq!(r.status_notes.as_deref(), Some("已撤回"));
        assert_eq!(r.service_name.as_deref(), Some("供热"));
        assert_eq!(r.agency_responsible.as_deref(), Some("龙山区住建局"));
        assert_eq!(r.address.as_deref(), Some("龙山区南康街道康宁社区"));
        assert_eq!((r.lat, r.long), (Some(42.888), Some(125.144)));
        assert_eq!(r.requested_datetime, "2024-07-15T10:41:00+08:00");
        assert_eq!(r.expected_datetime.as_deref(), Some("2024-07-20T18:00:00+08:00"));
        assert_eq!(r.updated_datetime.as_deref(), Some("2024-07-16T09:00:00+08:00"));
        assert!(r.description.as_deref().unwrap().contains("暖气不热"), "{shown}");
        assert_eq!((r.zipcode.as_ref(), r.media_url.as_ref(), r.address_id.as_ref()), (None, None, None));
    }

    /// The description quoted the house without the address's first part,
    /// and another house in full: neither number went out.
    #[test]
    fn a_house_quoted_apart_from_its_address_does_not_go_out() {
        let ticket = serde_json::json!({
            "description": "康宁社区5号楼3单元502暖气不热，对门3号楼2单元301也一样，楼下５栋也是",
            "address": "吉林省辽源市龙山区南康街道康宁社区5号楼3单元502",
            "region": {"code": "220402002000", "name": "南康街道"},
            "reporters": [{"channel": "hotline", "name": "王小明"}],
        });
        let r = ServiceRequest::of(&row(ticket)).unwrap();
        let shown = r.description.unwrap();
        for house in ["5号楼", "502", "3号楼", "2单元", "301", "５栋"] {
            assert!(!shown.contains(house), "{house}: {shown}");
        }
        assert!(shown.contains("暖气不热"), "{shown}");
    }

    #[test]
    fn an_address_is_cut_to_its_street_or_left_at_the_place() {
        assert_eq!(street_of("义宁街12号"), "义宁街");
        assert_eq!(street_of("义宁街与康宁路交汇处"), "义宁街与康宁路交汇处");
        assert_eq!(street_of("康宁社区五号楼"), "康宁社区");
        assert_eq!(street_of("１２号"), "");
        let t = |address: &str| {
            let ticket = serde_json::json!({"address": address, "reporters": [{"name": "赵桂芝"}],
                "region": {"code": "220421100000", "name": "东丰镇"}});
            public_address(&ticket, &Private::of(&ticket))
        };
        assert_eq!(t("向阳街8号").as_deref(), Some("东丰县东丰镇向阳街"));
        assert_eq!(t("东丰镇向阳街8号").as_deref(), Some("东丰县东丰镇向阳街"));
        assert_eq!(t("赵桂芝家门口").as_deref(), Some("东丰县东丰镇"), "a street that names a person is left out");
    }
}

#[cfg(test)]
mod doc_tests {
    #[test]
    fn the_openapi_document_lists_open311_beside_the_other_routes() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(super::super::ApiDoc::openapi()).unwrap();
        for path in
            ["/api/v1/stats", "/open311/v2/services.json", "/open311/v2/requests.xml", "/open311/v2/requests/{file}"]
        {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
        }
        for schema in ["FiguresReport", "ServiceRequest", "Open311Error"] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
    }
}
