//! The platform's side of the contract (platform.md): one PUT per change,
//! and what each answer means for the hub.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};

use crate::store::LeasedChange;

#[derive(Clone, Debug)]
pub struct PlatformSettings {
    pub url: String,
    pub token: String,
    /// The secrets the platform signs its callbacks with (several while
    /// one is replaced). None: callbacks are answered 503, so the platform
    /// keeps them until the hub is configured.
    pub secrets: Vec<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// The platform's answer, as the hub must act on it.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// 200/201: applied.
    Accepted,
    /// 409: the platform has this revision or a newer one. Done.
    Stale,
    /// A permanent refusal: 400/422 (the body is wrong, as the contract
    /// says) and every other 4xx without a rule of its own (404, 405, 410,
    /// 413, 415…). Sending the same change again would get the same answer,
    /// and retrying it would hold back the ticket's later revisions for
    /// ever, so it goes to the dead letters with the answer, for a person.
    Rejected { status: u16, body: String },
    /// 401/403: our token is wrong. Stop sending, raise an alarm, probe later.
    Unauthorized { status: u16 },
    /// 408/429/503: come back after `retry_after` (when the platform said).
    /// 408 (the platform gave up waiting for the request) is transient too.
    Throttled { status: u16, retry_after: Option<Duration> },
    /// Other 5xx, timeouts, refused connections, unexpected answers: retry later.
    Failed { error: String },
}

#[derive(Clone)]
pub struct PlatformClient {
    http: reqwest::Client,
    base: String,
    auth: String,
}

/// The most of a refusal's body kept with the dead letter.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

impl PlatformClient {
    pub fn new(settings: &PlatformSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(PlatformClient {
            http,
            base: settings.url.trim_end_matches('/').to_string(),
            auth: format!("Bearer {}", settings.token),
        })
    }

    pub async fn put(&self, change: &LeasedChange) -> Answer {
        let url = format!("{}/api/v1/tickets/{}", self.base, change.ticket_id);
        let sent = self
            .http
            .put(url)
            .header(AUTHORIZATION, &self.auth)
            .header(CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &change.idempotency_key)
            .body(change.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Answer::Failed { error: describe(&e) },
        };
        let status = response.status();
        match Class::of(status) {
            Class::Accepted => Answer::Accepted,
            Class::Stale => Answer::Stale,
            Class::Rejected => {
                let body = match response.bytes().await {
                    Ok(b) => String::from_utf8_lossy(&b[..b.len().min(MAX_ANSWER_BYTES)]).into_owned(),
                    Err(e) => format!("(the answer's body could not be read: {})", describe(&e)),
                };
                Answer::Rejected { status: status.as_u16(), body }
            }
            Class::Unauthorized => Answer::Unauthorized { status: status.as_u16() },
            Class::Throttled => {
                Answer::Throttled { status: status.as_u16(), retry_after: retry_after(response.headers()) }
            }
            Class::Failed => Answer::Failed { error: format!("the platform answered {}", describe_status(status)) },
        }
    }
}

/// What a status code means for the hub: the rule for every answer, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Accepted,
    Stale,
    Rejected,
    Unauthorized,
    Throttled,
    Failed,
}

impl Class {
    fn of(status: StatusCode) -> Class {
        match status.as_u16() {
            200..=299 => Class::Accepted,
            409 => Class::Stale,
            401 | 403 => Class::Unauthorized,
            408 | 429 | 503 => Class::Throttled,
            // Any other 4xx is the platform's final word on this change.
            400..=499 => Class::Rejected,
            // Other 5xx, and 1xx/3xx that should never reach us (redirects
            // are followed): the platform's trouble, not the change's.
            _ => Class::Failed,
        }
    }
}

fn describe_status(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        "could not connect to the platform".into()
    } else {
        format!("request failed: {e}")
    }
}

/// `Retry-After` as the platform sent it (seconds or an HTTP date), unbounded:
/// the dispatcher keeps it within `delivery.retry_after_min`/`_max`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    connectors::retry_after::parse(headers.get(RETRY_AFTER)?.to_str().ok()?, std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_both_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        h.insert(RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn every_status_has_its_rule() {
        let class = |code: u16| Class::of(StatusCode::from_u16(code).unwrap());
        for code in [200, 201, 204] {
            assert_eq!(class(code), Class::Accepted, "{code}");
        }
        assert_eq!(class(409), Class::Stale);
        for code in [401, 403] {
            assert_eq!(class(code), Class::Unauthorized, "{code}");
        }
        for code in [408, 429, 503] {
            assert_eq!(class(code), Class::Throttled, "{code}");
        }
        for code in [400, 404, 405, 410, 411, 413, 414, 415, 422, 451, 499] {
            assert_eq!(class(code), Class::Rejected, "{code}");
        }
        for code in [100, 302, 500, 502, 504, 599] {
            assert_eq!(class(code), Class::Failed, "{code}");
        }
    }
}
