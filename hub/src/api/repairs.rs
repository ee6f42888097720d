//! Repairs without a shell on the server: quarantined records, dead
//! letters, callbacks held for a person and possible duplicates, each
//! listed a page at a time, shown, and replayed or decided.
//!
//! Viewers list and show, with personal data masked; replays and
//! decisions need `operator` (403 otherwise). Everything that belongs to a
//! ticket is scoped by the ticket's region: outside it, 404, as if absent.
//! A quarantined record belongs to no ticket (it could not be mapped, so
//! where it happened is unknown): a region-scoped token sees no quarantine
//! at all, and only the whole city's tokens list, show or replay it. The
//! same holds for a callback about a ticket this hub does not know.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Caller, Role};
use super::paging::{flag, id_cursor, next_of, path_id, per_page};
use super::tickets::{DuplicateItem, visible_ticket};
use super::{ApiError, ApiState};
use crate::pii::{Masker, mask_payload, scrub};
use crate::store::{CallbackOutcome, StoredOutcome};
use crate::ticket::beijing;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/quarantine", get(quarantine_list))
        .route("/api/v1/quarantine/{id}", get(quarantine_show))
        .route("/api/v1/quarantine/{id}/replay", post(quarantine_replay))
        .route("/api/v1/deadletters", get(dead_letter_list))
        .route("/api/v1/deadletters/{id}", get(dead_letter_show))
        .route("/api/v1/deadletters/{id}/replay", post(dead_letter_replay))
        .route("/api/v1/callbacks", get(callback_list))
        .route("/api/v1/callbacks/{id}", get(callback_show))
        .route("/api/v1/callbacks/{id}/replay", post(callback_replay))
        .route("/api/v1/callbacks/{id}/dismiss", post(callback_dismiss))
        .route("/api/v1/duplicates", get(duplicate_list))
        .route("/api/v1/duplicates/{id}/confirm", post(duplicate_confirm))
        .route("/api/v1/duplicates/{id}/reject", post(duplicate_reject))
}

fn time(ms: i64) -> String {
    use chrono::TimeZone;
    beijing().timestamp_millis_opt(ms).single().map(|t| t.to_rfc3339()).unwrap_or_else(|| ms.to_string())
}

fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, what)
}

/// A list of records kept for repair, oldest first from `after`.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct RepairList {
    /// Include those already replayed (or dismissed): `true`; open ones only by default.
    pub all: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Rows per page, 1 to 500 (50 when left out).
    pub per_page: Option<String>,
}

/// The outcome of a replay that went through.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replay {
    /// `created`, `updated`, `duplicate`, `stale` (a record); `applied`,
    /// `reopened`, `stale` (a callback); `queued` (a dead letter).
    pub outcome: String,
    pub ticket_id: Option<String>,
    pub revision: Option<i64>,
}

// ---- quarantine ----------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineItem {
    pub id: i64,
    pub system: String,
    /// `open`, `replayed`, `skipped`.
    pub state: String,
    /// Why it could not be mapped (personal data scrubbed for viewers).
    pub reason: String,
    pub received_at: String,
    pub quarantined_at: String,
    pub payload_bytes: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinePage {
    pub items: Vec<QuarantineItem>,
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineDetail {
    #[serde(flatten)]
    pub item: QuarantineItem,
    pub content_type: String,
    pub encoding: Option<String>,
    /// The transport's metadata (topic, routing key, message kind), as JSON text.
    pub metadata: String,
    /// The record as received, as text; personal fields masked for viewers.
    pub payload: String,
}

/// The quarantine is the whole city's: none of it for a scoped token.
fn city_only(caller: &Caller) -> bool {
    caller.scope.prefix().is_none()
}

/// Records that could not be mapped, oldest first. A region-scoped token
/// gets an empty list: a record that maps to no ticket has no region.
#[utoipa::path(get, path = "/api/v1/quarantine", params(RepairList), tag = "repairs",
    responses((status = 200, body = QuarantinePage), (status = 400), (status = 401)))]
pub async fn quarantine_list(
    caller: Caller,
    State(s): State<ApiState>,
    Query(p): Query<RepairList>,
) -> Result<axum::Json<QuarantinePage>, ApiError> {
    let limit = per_page(p.per_page.as_deref())?;
    let after = id_cursor(p.after.as_deref(), "after")?;
    let all = flag(p.all.as_deref(), "all")?.unwrap_or(false);
    if !city_only(&caller) {
        return Ok(axum::Json(QuarantinePage { items: Vec::new(), next: None }));
    }
    let rows = s.store.quarantined_page(all, after, limit).await?;
    let next = next_of(rows.len(), limit, rows.last().map(|q| q.id.to_string()));
    let mask = caller.masks_personal_data();
    let items = rows
        .into_iter()
        .map(|q| QuarantineItem {
            id: q.id,
            system: q.system,
            state: q.state,
            reason: if mask { scrub(&q.reason) } else { q.reason },
            received_at: time(q.received_at),
            quarantined_at: time(q.created_at),
            payload_bytes: q.payload_bytes,
        })
        .collect();
    Ok(axum::Json(QuarantinePage { items, next }))
}

/// One quarantined record: the reason and the record as received.
#[utoipa::path(get, path = "/api/v1/quarantine/{id}", tag = "repairs",
    params(("id" = i64, Path, description = "The quarantined record's id")),
    responses((status = 200, body = QuarantineDetail), (status = 400), (status = 401), (status = 404)))]
pub async fn quarantine_show(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<QuarantineDetail>, ApiError> {
    let id = path_id(&id, "quarantined record")?;
    if !city_only(&caller) {
        return Err(not_found(format!("no quarantined record {id}")));
    }
    let q = s.store.quarantined_record(id).await?;
    let mask = caller.masks_personal_data();
    let text = match crate::mapping::decode_text(&q.payload, q.encoding.as_deref()) {
        Ok(t) => t.into_owned(),
        Err(_) => String::from_utf8_lossy(&q.payload).into_owned(),
    };
    Ok(axum::Json(QuarantineDetail {
        item: QuarantineItem {
            id: q.id,
            system: q.system,
            state: q.state,
            reason: if mask { scrub(&q.reason) } else { q.reason },
            received_at: time(q.received_at),
            quarantined_at: time(q.created_at),
            payload_bytes: q.payload.len() as i64,
        },
        content_type: q.content_type,
        encoding: q.encoding,
        metadata: if mask { scrub(&q.metadata) } else { q.metadata },
        payload: if mask { mask_payload(&text) } else { text },
    }))
}

/// Runs a quarantined record through the current mappings again (operator).
/// 422 with the reason when it still does not map; 409 when it was replayed already.
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/replay", tag = "repairs",
    params(("id" = i64, Path, description = "The quarantined record's id")),
    responses((status = 200, body = Replay), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn quarantine_replay(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Replay>, ApiError> {
    caller.require(Role::Operator)?;
    let id = path_id(&id, "quarantined record")?;
    if !city_only(&caller) {
        return Err(not_found(format!("no quarantined record {id}")));
    }
    let q = s.store.quarantined_record(id).await?;
    let item = crate::intake::prepare(&q.record(), &s.mappings, &s.intake);
    let stored = s.store.resolve_quarantine(id, &item).await?;
    let outcome = stored.label().to_string();
    let (ticket_id, revision) = match stored {
        StoredOutcome::Quarantined { reason, .. } => {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("record {id} still does not map: {reason}"),
            ));
        }
        StoredOutcome::Created { ticket_id, revision } | StoredOutcome::Updated { ticket_id, revision } => {
            (Some(ticket_id), Some(revision))
        }
        StoredOutcome::Duplicate | StoredOutcome::Stale => (None, None),
    };
    tracing::info!(quarantine_id = id, outcome = %outcome, "a quarantined record was replayed through the admin API");
    Ok(axum::Json(Replay { outcome, ticket_id, revision }))
}

// ---- dead letters ----------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterItem {
    pub id: i64,
    pub ticket_id: String,
    pub revision: i64,
    /// The platform's HTTP status.
    pub status_code: i64,
    /// `open`, `replayed`.
    pub state: String,
    pub attempts: i64,
    pub refused_at: String,
    /// The platform's answer; personal data masked for viewers.
    pub answer: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterItem>,
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub item: DeadLetterItem,
    pub idempotency_key: String,
    /// The change the platform refused; personal data masked for viewers.
    #[schema(value_type = Object)]
    pub change: serde_json::Value,
    /// The ticket now, when it has moved on from the refused revision: a
    /// corrected body for a replay starts from it.
    #[schema(value_type = Option<Object>)]
    pub current: Option<serde_json::Value>,
}

/// A change as stored for the platform, masked for a viewer, with the
/// masker that knows its personal values (the answer may quote them).
fn masked_change(body: &str, mask: bool) -> (serde_json::Value, Masker) {
    let mut value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_string()));
    let masker = Masker::of_ticket(&value);
    if mask {
        masker.apply(&mut value);
    }
    (value, masker)
}

fn dead_letter_item(d: &crate::store::DeadLetter, mask: bool) -> (DeadLetterItem, serde_json::Value) {
    let (change, masker) = masked_change(&d.body, mask);
    let item = DeadLetterItem {
        id: d.id,
        ticket_id: d.ticket_id.clone(),
        revision: d.revision,
        status_code: d.status_code,
        state: d.state.clone(),
        attempts: d.attempts,
        refused_at: time(d.created_at),
        answer: if mask { masker.text(&d.response) } else { d.response.clone() },
    };
    (item, change)
}

/// Changes the platform refused for good, oldest first, in the caller's region.
#[utoipa::path(get, path = "/api/v1/deadletters", params(RepairList), tag = "repairs",
    responses((status = 200, body = DeadLetterPage), (status = 400), (status = 401)))]
pub async fn dead_letter_list(
    caller: Caller,
    State(s): State<ApiState>,
    Query(p): Query<RepairList>,
) -> Result<axum::Json<DeadLetterPage>, ApiError> {
    let limit = per_page(p.per_page.as_deref())?;
    let after = id_cursor(p.after.as_deref(), "after")?;
    let all = flag(p.all.as_deref(), "all")?.unwrap_or(false);
    let rows = s.store.dead_letters_page(all, after, limit, caller.scope.prefix()).await?;
    let next = next_of(rows.len(), limit, rows.last().map(|d| d.id.to_string()));
    let mask = caller.masks_personal_data();
    Ok(axum::Json(DeadLetterPage { items: rows.iter().map(|d| dead_letter_item(d, mask).0).collect(), next }))
}

async fn visible_dead_letter(s: &ApiState, caller: &Caller, id: i64) -> Result<crate::store::DeadLetter, ApiError> {
    let d = s.store.dead_letter(id).await?;
    visible_ticket(s, caller, &d.ticket_id).await.map_err(|_| not_found(format!("no dead letter {id}")))?;
    Ok(d)
}

/// One dead letter: the platform's answer and the change it refused.
#[utoipa::path(get, path = "/api/v1/deadletters/{id}", tag = "repairs",
    params(("id" = i64, Path, description = "The dead letter's id")),
    responses((status = 200, body = DeadLetterDetail), (status = 400), (status = 401), (status = 404)))]
pub async fn dead_letter_show(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<DeadLetterDetail>, ApiError> {
    let id = path_id(&id, "dead letter")?;
    let d = visible_dead_letter(&s, &caller, id).await?;
    let mask = caller.masks_personal_data();
    let (item, change) = dead_letter_item(&d, mask);
    let now = s.store.ticket(&d.ticket_id).await?.ticket;
    let current = (now.revision != d.revision)
        .then(|| serde_json::to_string(&now).ok())
        .flatten()
        .map(|text| masked_change(&text, mask).0);
    Ok(axum::Json(DeadLetterDetail { item, idempotency_key: d.idempotency_key, change, current }))
}

/// What a dead letter's replay may carry: a corrected ticket.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeadLetterFix {
    /// The ticket as it is now (`current`, or `change` when the ticket has
    /// not moved on), corrected; left out, the ticket is sent as it is.
    #[schema(value_type = Option<Object>)]
    pub body: Option<serde_json::Value>,
}

/// Sends a dead letter's ticket again as its newest revision (operator),
/// optionally corrected. 409 when it was replayed already or the
/// correction does not fit the ticket as it is now.
#[utoipa::path(post, path = "/api/v1/deadletters/{id}/replay", tag = "repairs",
    params(("id" = i64, Path, description = "The dead letter's id")),
    request_body(content = Option<DeadLetterFix>, description = "A corrected ticket, or nothing"),
    responses((status = 200, body = Replay), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn dead_letter_replay(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Replay>, ApiError> {
    caller.require(Role::Operator)?;
    let id = path_id(&id, "dead letter")?;
    let fix: DeadLetterFix = if body.iter().all(u8::is_ascii_whitespace) {
        DeadLetterFix::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be JSON like {{\"body\": TICKET}} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?
    };
    visible_dead_letter(&s, &caller, id).await?;
    // A region's operator may not move a matter out of the region.
    if let Some(body) = &fix.body {
        let region = body.pointer("/region/code").and_then(|c| c.as_str()).unwrap_or_default();
        if !caller.scope.sees(region) {
            return Err(ApiError(
                axum::http::StatusCode::FORBIDDEN,
                "the corrected ticket's region is outside this token's".into(),
            ));
        }
    }
    let corrected = fix.body.map(|b| b.to_string());
    let r = s.store.replay_dead_letter(id, corrected.as_deref()).await?;
    tracing::info!(dead_letter = id, ticket_id = %r.ticket_id, revision = r.revision, "a dead letter was replayed through the admin API");
    Ok(axum::Json(Replay { outcome: "queued".into(), ticket_id: Some(r.ticket_id), revision: Some(r.revision) }))
}

// ---- callbacks ------------------------------------------------------------

/// Callbacks, newest first from `before`.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct CallbackList {
    /// Only those held for a person: `true`.
    pub open: Option<String>,
    /// The `next` of the previous page.
    pub before: Option<String>,
    /// Rows per page, 1 to 500 (50 when left out).
    pub per_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackItem {
    pub id: i64,
    pub event_id: String,
    pub ticket_id: Option<String>,
    pub status: Option<String>,
    /// When the platform says it happened.
    pub at: Option<String>,
    pub received_at: String,
    /// `applied`, `reopened`, `stale`, `held`, `dismissed`.
    pub outcome: String,
    pub reason: Option<String>,
    /// `open` while it waits for a person, else `done`.
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackPage {
    pub items: Vec<CallbackItem>,
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackDetail {
    #[serde(flatten)]
    pub item: CallbackItem,
    /// The body as received; personal data masked for viewers.
    pub body: String,
}

fn callback_item(c: &crate::store::StoredCallback, mask: bool) -> CallbackItem {
    CallbackItem {
        id: c.id,
        event_id: c.event_id.clone(),
        ticket_id: c.ticket_id.clone(),
        status: c.status.clone(),
        at: c.at.map(time),
        received_at: time(c.received_at),
        outcome: c.outcome.clone(),
        reason: c.reason.as_deref().map(|r| if mask { scrub(r) } else { r.to_string() }),
        state: c.state.clone(),
    }
}

/// The platform's callbacks the hub kept, newest first; `open=true` for
/// those held for a person. A scoped token sees those about tickets in its
/// region only (a callback about an unknown ticket has none).
#[utoipa::path(get, path = "/api/v1/callbacks", params(CallbackList), tag = "repairs",
    responses((status = 200, body = CallbackPage), (status = 400), (status = 401)))]
pub async fn callback_list(
    caller: Caller,
    State(s): State<ApiState>,
    Query(p): Query<CallbackList>,
) -> Result<axum::Json<CallbackPage>, ApiError> {
    let limit = per_page(p.per_page.as_deref())?;
    let before = id_cursor(p.before.as_deref(), "before")?;
    let open = flag(p.open.as_deref(), "open")?.unwrap_or(false);
    let rows = s.store.callbacks_page(open, before, limit, caller.scope.prefix()).await?;
    let next = next_of(rows.len(), limit, rows.last().map(|c| c.id.to_string()));
    let mask = caller.masks_personal_data();
    Ok(axum::Json(CallbackPage { items: rows.iter().map(|c| callback_item(c, mask)).collect(), next }))
}

async fn visible_callback(s: &ApiState, caller: &Caller, id: i64) -> Result<crate::store::StoredCallback, ApiError> {
    let c = s.store.callback(id).await?;
    if caller.scope.prefix().is_some() {
        let ticket = c.ticket_id.clone().unwrap_or_default();
        visible_ticket(s, caller, &ticket).await.map_err(|_| not_found(format!("no callback {id}")))?;
    }
    Ok(c)
}

/// One callback: what it said and what the hub did with it.
#[utoipa::path(get, path = "/api/v1/callbacks/{id}", tag = "repairs",
    params(("id" = i64, Path, description = "The callback's id")),
    responses((status = 200, body = CallbackDetail), (status = 400), (status = 401), (status = 404)))]
pub async fn callback_show(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<CallbackDetail>, ApiError> {
    let id = path_id(&id, "callback")?;
    let c = visible_callback(&s, &caller, id).await?;
    let mask = caller.masks_personal_data();
    let text = String::from_utf8_lossy(&c.body).into_owned();
    Ok(axum::Json(CallbackDetail {
        item: callback_item(&c, mask),
        body: if mask { mask_payload(&text) } else { text },
    }))
}

/// Applies a held callback again, as received (operator). 422 with the
/// reason when it is still held; 409 when it is not held.
#[utoipa::path(post, path = "/api/v1/callbacks/{id}/replay", tag = "repairs",
    params(("id" = i64, Path, description = "The callback's id")),
    responses((status = 200, body = Replay), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn callback_replay(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Replay>, ApiError> {
    caller.require(Role::Operator)?;
    let id = path_id(&id, "callback")?;
    visible_callback(&s, &caller, id).await?;
    let outcome = s.store.replay_callback(id).await?;
    let label = outcome.label().to_string();
    let (ticket_id, revision) = match outcome {
        CallbackOutcome::Held { reason } => {
            return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("callback {id} is still held: {reason}")));
        }
        CallbackOutcome::Applied { ticket_id } | CallbackOutcome::Stale { ticket_id } => (Some(ticket_id), None),
        CallbackOutcome::Reopened { ticket_id, revision } => (Some(ticket_id), Some(revision)),
        CallbackOutcome::Duplicate { .. } => (None, None),
    };
    tracing::info!(callback = id, outcome = %label, "a held callback was replayed through the admin API");
    Ok(axum::Json(Replay { outcome: label, ticket_id, revision }))
}

/// Closes a held callback without applying it (operator).
#[utoipa::path(post, path = "/api/v1/callbacks/{id}/dismiss", tag = "repairs",
    params(("id" = i64, Path, description = "The callback's id")),
    responses((status = 200, body = CallbackItem), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn callback_dismiss(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<CallbackItem>, ApiError> {
    caller.require(Role::Operator)?;
    let id = path_id(&id, "callback")?;
    visible_callback(&s, &caller, id).await?;
    s.store.dismiss_callback(id).await?;
    tracing::info!(callback = id, "a held callback was dismissed through the admin API");
    Ok(axum::Json(callback_item(&s.store.callback(id).await?, caller.masks_personal_data())))
}

// ---- duplicates -----------------------------------------------------------

/// Duplicate decisions, newest first from `before`.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct DuplicateList {
    /// `possible` (the default: waiting for a person), `merged`,
    /// `confirmed`, `rejected`, `unmerged`, or `all`.
    pub state: Option<String>,
    /// The `next` of the previous page.
    pub before: Option<String>,
    /// Rows per page, 1 to 500 (50 when left out).
    pub per_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicatePage {
    pub items: Vec<DuplicateItem>,
    pub next: Option<String>,
}

const LINK_STATES: [&str; 5] = ["possible", "merged", "confirmed", "rejected", "unmerged"];

/// Possible duplicates (or other decisions) with the evidence for each,
/// whose later ticket is in the caller's region.
#[utoipa::path(get, path = "/api/v1/duplicates", params(DuplicateList), tag = "repairs",
    responses((status = 200, body = DuplicatePage), (status = 400), (status = 401)))]
pub async fn duplicate_list(
    caller: Caller,
    State(s): State<ApiState>,
    Query(p): Query<DuplicateList>,
) -> Result<axum::Json<DuplicatePage>, ApiError> {
    let limit = per_page(p.per_page.as_deref())?;
    let before = id_cursor(p.before.as_deref(), "before")?;
    let state = match p.state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Some("possible"),
        Some("all") => None,
        Some(s) if LINK_STATES.contains(&s) => Some(s),
        Some(_) => {
            return Err(ApiError::bad_request(format!("`state` must be one of {}, all", LINK_STATES.join(", "))));
        }
    };
    let rows = s.store.duplicate_links_page(state, before, limit, caller.scope.prefix()).await?;
    let next = next_of(rows.len(), limit, rows.last().map(|l| l.id.to_string()));
    let mask = caller.masks_personal_data().then(Masker::default);
    Ok(axum::Json(DuplicatePage {
        items: rows.into_iter().map(|l| DuplicateItem::of(l, mask.as_ref())).collect(),
        next,
    }))
}

/// A person's decision on a possible duplicate.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Decision {
    /// Why, for whoever looks later (at most 500 characters).
    pub note: Option<String>,
}

fn decision(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let d: Decision = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("the body must be JSON like {\"note\": \"why\"}, or nothing"))?;
    match d.note {
        Some(n) if n.chars().count() > 500 => Err(ApiError::bad_request("the note is longer than 500 characters")),
        note => Ok(note.filter(|n| !n.trim().is_empty())),
    }
}

/// Both tickets of a decision must be the caller's to decide on.
async fn decidable(s: &ApiState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let l = s.store.duplicate_link(id).await?;
    visible_ticket(s, caller, &l.ticket_id).await.map_err(|_| not_found(format!("duplicate link {id}")))?;
    if visible_ticket(s, caller, &l.other_id).await.is_err() {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("duplicate link {id} names a ticket outside this token's region: the city decides it"),
        ));
    }
    Ok(())
}

/// Confirms a possible duplicate (operator): the later ticket becomes a
/// duplicate of the earlier, which takes its sources. 409 unless possible.
#[utoipa::path(post, path = "/api/v1/duplicates/{id}/confirm", tag = "repairs",
    params(("id" = i64, Path, description = "The duplicate link's id")),
    request_body(content = Option<Decision>, description = "A note, or nothing"),
    responses((status = 200, body = DuplicateItem), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn duplicate_confirm(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<DuplicateItem>, ApiError> {
    caller.require(Role::Operator)?;
    let id = path_id(&id, "duplicate link")?;
    let note = decision(&body)?;
    decidable(&s, &caller, id).await?;
    let l = s.store.confirm_duplicate(id, note.as_deref()).await?;
    tracing::info!(duplicate_link = id, "a duplicate was confirmed through the admin API");
    Ok(axum::Json(DuplicateItem::of(l, None)))
}

/// Says a possible duplicate is a matter of its own (operator). 409 unless possible.
#[utoipa::path(post, path = "/api/v1/duplicates/{id}/reject", tag = "repairs",
    params(("id" = i64, Path, description = "The duplicate link's id")),
    request_body(content = Option<Decision>, description = "A note, or nothing"),
    responses((status = 200, body = DuplicateItem), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
pub async fn duplicate_reject(
    caller: Caller,
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<DuplicateItem>, ApiError> {
    caller.require(Role::Operator)?;
    let id = path_id(&id, "duplicate link")?;
    let note = decision(&body)?;
    decidable(&s, &caller, id).await?;
    let l = s.store.reject_duplicate(id, note.as_deref()).await?;
    tracing::info!(duplicate_link = id, "a possible duplicate was rejected through the admin API");
    Ok(axum::Json(DuplicateItem::of(l, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decisions_body_is_optional_and_checked() {
        assert_eq!(decision(b"").unwrap(), None);
        assert_eq!(decision(br#"{"note": "same pothole"}"#).unwrap().as_deref(), Some("same pothole"));
        assert!(decision(b"note=x").unwrap_err().1.contains("JSON"));
        let long = format!(r#"{{"note": "{}"}}"#, "x".repeat(501));
        assert!(decision(long.as_bytes()).is_err());
    }
}
