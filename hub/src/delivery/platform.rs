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
    /// 400/422: the body is wrong. Do not retry: dead letter, for a person.
    Rejected { status: u16, body: String },
    /// 401/403: our token is wrong. Stop sending, raise an alarm, probe later.
    Unauthorized { status: u16 },
    /// 429/503: come back after `retry_after` (when the platform said).
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
        match status.as_u16() {
            200..=299 => Answer::Accepted,
            409 => Answer::Stale,
            400 | 422 => {
                let body = match response.bytes().await {
                    Ok(b) => String::from_utf8_lossy(&b[..b.len().min(MAX_ANSWER_BYTES)]).into_owned(),
                    Err(e) => format!("(the answer's body could not be read: {})", describe(&e)),
                };
                Answer::Rejected { status: status.as_u16(), body }
            }
            401 | 403 => Answer::Unauthorized { status: status.as_u16() },
            429 | 503 => Answer::Throttled { status: status.as_u16(), retry_after: retry_after(response.headers()) },
            _ => Answer::Failed { error: format!("the platform answered {}", describe_status(status)) },
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

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
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
}
