//! The rows Open311's `requests` answer (`api/open311.rs`): chosen from
//! `ticket_facts` by its indexes (time, region), at most
//! [`MAX_REQUESTS`] of them, and only then the bodies of those tickets.
//! A query never reads every ticket.

use std::collections::HashMap;

use sqlx::Row;

use super::batch::MAX_ROWS;
use super::{Store, StoreError};

/// GeoReport v2: "at most 1000 requests" per answer.
pub const MAX_REQUESTS: i64 = 1000;

/// Which matters a `requests` call asks for, within the caller's region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicFilter {
    /// Only these tickets (GeoReport's `service_request_id`, which
    /// overrides every other argument but the region).
    pub ids: Vec<String>,
    /// Platform category codes; empty for all.
    pub categories: Vec<String>,
    /// Received at or after (epoch ms).
    pub from_ms: i64,
    /// Received before (epoch ms, exclusive).
    pub until_ms: i64,
    /// The hub's own statuses (`new`, `resolved`, …); empty for all.
    pub statuses: Vec<String>,
    /// A county's (6 digits) or township's (9 digits) code: only its matters.
    pub region: Option<String>,
    /// Rows at most; held to [`MAX_REQUESTS`] whatever is asked.
    pub limit: i64,
}

/// One value bound to the facts query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

/// One matter for Open311: what the facts say and the ticket's body (with
/// personal data in it: the API takes out what it may show).
#[derive(Clone, Debug)]
pub struct PublicRow {
    pub ticket_id: String,
    pub received_at: i64,
    pub region: String,
    pub category: String,
    pub department: String,
    pub status: String,
    pub due_at: Option<i64>,
    /// When the hub last wrote the ticket (epoch ms).
    pub updated_at: i64,
    /// The ticket as the platform receives it (JSON).
    pub body: String,
    /// The platform's side of it (JSON, `Handling`), if any event came.
    pub handling: Option<String>,
}

/// The bounds of a division code's range of 12-digit codes: `220421` →
/// [`220421000000`, `220422000000`), so the `(region, received_at)`
/// index answers it. Codes are all digits of one length, so they compare
/// alike in every collation.
fn region_range(prefix: &str) -> Option<(String, String)> {
    if prefix.is_empty() || prefix.len() > 12 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let next = prefix.parse::<u64>().ok()? + 1;
    let next = format!("{next:0width$}", width = prefix.len());
    if next.len() != prefix.len() {
        return None;
    }
    Some((format!("{prefix:0<12}"), format!("{next:0<12}")))
}

impl PublicFilter {
    /// The facts query and what it binds, newest first, never more than
    /// [`MAX_REQUESTS`] rows.
    pub fn sql(&self) -> Result<(String, Vec<Arg>), StoreError> {
        let mut args: Vec<Arg> = Vec::new();
        let next = |a: Arg, args: &mut Vec<Arg>| {
            args.push(a);
            format!("${}", args.len())
        };
        let mut clauses: Vec<String> = Vec::new();
        if self.ids.is_empty() {
            let from = next(Arg::Int(self.from_ms), &mut args);
            let until = next(Arg::Int(self.until_ms), &mut args);
            clauses.push(format!("received_at >= {from} AND received_at < {until}"));
            if !self.categories.is_empty() {
                let list: Vec<String> = self.categories.iter().map(|c| next(Arg::Text(c.clone()), &mut args)).collect();
                clauses.push(format!("category IN ({})", list.join(", ")));
            }
            if !self.statuses.is_empty() {
                let list: Vec<String> = self.statuses.iter().map(|s| next(Arg::Text(s.clone()), &mut args)).collect();
                clauses.push(format!("status IN ({})", list.join(", ")));
            }
        } else {
            if self.ids.len() > MAX_REQUESTS as usize {
                return Err(StoreError::Invalid(format!("at most {MAX_REQUESTS} ids at once")));
            }
            let list: Vec<String> = self.ids.iter().map(|id| next(Arg::Text(id.clone()), &mut args)).collect();
            clauses.push(format!("ticket_id IN ({})", list.join(", ")));
        }
        if let Some(prefix) = &self.region {
            let (lo, hi) = region_range(prefix)
                .ok_or_else(|| StoreError::Invalid(format!("`{prefix}` is not a division code")))?;
            let lo = next(Arg::Text(lo), &mut args);
            let hi = next(Arg::Text(hi), &mut args);
            clauses.push(format!("region >= {lo} AND region < {hi}"));
        }
        let limit = self.limit.clamp(0, MAX_REQUESTS);
        let sql = format!(
            "SELECT ticket_id, received_at, region, category, department, status, due_at FROM ticket_facts
              WHERE {} ORDER BY received_at DESC, ticket_id DESC LIMIT {limit}",
            clauses.join(" AND ")
        );
        Ok((sql, args))
    }
}

impl Store {
    /// The matters `filter` selects, newest first, with their bodies.
    pub async fn public_requests(&self, filter: &PublicFilter) -> Result<Vec<PublicRow>, StoreError> {
        self.figures_current().await;
        let (sql, args) = filter.sql()?;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            q = match a {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        let facts = q.fetch_all(&self.pool).await?;
        let ids: Vec<String> = facts.iter().map(|r| r.get(0)).collect();
        let mut bodies: HashMap<String, (String, Option<String>, i64)> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_ROWS) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT ticket_id, body, handling, updated_at FROM tickets WHERE ticket_id IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.clone());
            }
            for r in q.fetch_all(&self.pool).await? {
                bodies.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
            }
        }
        Ok(facts
            .iter()
            .filter_map(|r| {
                let ticket_id: String = r.get(0);
                let (body, handling, updated_at) = bodies.remove(&ticket_id)?;
                Some(PublicRow {
                    ticket_id,
                    received_at: r.get(1),
                    region: r.get(2),
                    category: r.get(3),
                    department: r.get(4),
                    status: r.get(5),
                    due_at: r.get(6),
                    updated_at,
                    body,
                    handling,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_never_asks_for_more_than_a_thousand_rows() {
        for asked in [0, 1, 999, 1000, 1001, 1_000_000, i64::MAX, -5] {
            let f = PublicFilter { limit: asked, until_ms: 1, ..PublicFilter::default() };
            let (sql, _) = f.sql().unwrap();
            let limit: i64 = sql.rsplit("LIMIT ").next().unwrap().trim().parse().unwrap();
            assert!((0..=MAX_REQUESTS).contains(&limit), "{asked} → {sql}");
            assert_eq!(limit, asked.clamp(0, 1000));
        }
        let too_many = PublicFilter { ids: vec!["t".into(); 1001], limit: 1000, ..PublicFilter::default() };
        assert!(too_many.sql().is_err());
    }

    #[test]
    fn filters_become_bound_arguments() {
        let f = PublicFilter {
            categories: vec!["0101".into(), "0203".into()],
            statuses: vec!["new".into()],
            from_ms: 10,
            until_ms: 20,
            region: Some("220421".into()),
            limit: 1000,
            ..PublicFilter::default()
        };
        let (sql, args) = f.sql().unwrap();
        assert!(sql.contains("received_at >= $1 AND received_at < $2"), "{sql}");
        assert!(sql.contains("category IN ($3, $4)") && sql.contains("status IN ($5)"), "{sql}");
        assert!(sql.contains("region >= $6 AND region < $7"), "{sql}");
        assert_eq!(args[5], Arg::Text("220421000000".into()));
        assert_eq!(args[6], Arg::Text("220422000000".into()));
        // The ids override everything but the region.
        let f = PublicFilter { ids: vec!["a".into(), "b".into()], ..f };
        let (sql, args) = f.sql().unwrap();
        assert!(
            !sql.contains("received_at >=") && !sql.contains("category IN") && sql.contains("ticket_id IN ($1, $2)")
        );
        assert_eq!(args.len(), 4);
        assert_eq!(region_range("220421100"), Some(("220421100000".into(), "220421101000".into())));
        assert_eq!(region_range("999999"), None);
        assert_eq!(region_range("22x421"), None);
    }
}
