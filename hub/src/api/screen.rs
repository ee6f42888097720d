//! What the centre's screen's lists share: names for codes and times as
//! Beijing time, so that every list says 东丰县 and 劳动保障/欠薪.

use serde::Serialize;
use utoipa::ToSchema;

use crate::stats::names;
use crate::store::{Dimension, Placed};

/// Epoch ms as RFC 3339 in Beijing time.
pub fn beijing_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&crate::ticket::beijing())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A channel's name (12345热线, 信访…).
pub fn channel_name(channel: &str) -> Option<String> {
    if channel.is_empty() { None } else { super::stats::name_of(Dimension::Channel, channel) }
}

/// Where and what a listed matter is, with names; nothing personal.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    /// The hub's ticket id.
    pub ticket_id: String,
    /// 12-digit division code (empty when the hub has no facts on it yet).
    pub region: String,
    /// The most precise name known for it (a township's, else a county's).
    pub region_name: Option<String>,
    pub county: String,
    pub county_name: Option<String>,
    /// Platform category code (`0401`).
    pub category: String,
    pub category_name: Option<String>,
    pub channel: String,
    pub channel_name: Option<String>,
    /// The department handling it; empty before dispatch.
    pub department: String,
}

impl Place {
    pub fn of(p: &Placed) -> Place {
        Place {
            ticket_id: p.ticket_id.clone(),
            region_name: names::region(&p.region).map(str::to_string),
            region: p.region.clone(),
            county_name: names::region(&p.county).map(str::to_string),
            county: p.county.clone(),
            category_name: names::category(&p.category).map(str::to_string),
            category: p.category.clone(),
            channel_name: channel_name(&p.channel),
            channel: p.channel.clone(),
            department: p.department.clone(),
        }
    }
}

/// `?limit=` of a list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct Limit {
    /// At most this many rows (100 when left out, at most 500).
    pub limit: Option<i64>,
}

impl Limit {
    pub fn rows(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, super::MAX_PAGE)
    }
}
