//! Sending one callback as the platform does: signed, with its event id,
//! again and again until the hub answers 2xx. A 422 is the hub keeping it
//! for a person (the platform stops); a 401 for a forged callback is what
//! should happen.

use std::time::Duration;

use serde::Deserialize;

use super::sign::sign;

/// What came of one event, after every attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 2xx, with the hub's `outcome` (`applied`, `reopened`, `stale`, `duplicate`).
    Taken(String),
    /// 422: kept for a person.
    Held,
    /// 401: refused as not the platform's.
    Refused,
    /// Given up when the sender was told to stop.
    Abandoned,
}

/// One attempt's answer, before the retry decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Done(Answer),
    /// Try again (5xx, 408, 429, a refused connection, a timeout).
    Again(String),
}

#[derive(Deserialize)]
struct OutcomeBody {
    outcome: Option<String>,
}

/// Classifies an answer: `status` and its body.
pub fn classify(status: u16, body: &[u8]) -> Attempt {
    match status {
        200..=299 => {
            let outcome = serde_json::from_slice::<OutcomeBody>(body).ok().and_then(|b| b.outcome);
            Attempt::Done(Answer::Taken(outcome.unwrap_or_else(|| "unknown".into())))
        }
        422 => Attempt::Done(Answer::Held),
        401 => Attempt::Done(Answer::Refused),
        other => Attempt::Again(format!("answered {other}")),
    }
}

/// Sends once: a fresh `X-Timestamp` and signature each attempt, the same
/// event id.
pub async fn attempt(client: &reqwest::Client, url: &str, secret: &[u8], event_id: &str, body: &[u8]) -> Attempt {
    let ts = chrono::Utc::now().timestamp().to_string();
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-event-id", event_id)
        .header("x-timestamp", &ts)
        .header("x-signature", sign(secret, &ts, body))
        .body(body.to_vec())
        .send()
        .await;
    match sent {
        Err(e) => Attempt::Again(e.without_url().to_string()),
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.bytes().await.unwrap_or_default();
            classify(status, &body)
        }
    }
}

/// The wait before attempt `n + 1`: 200 ms doubling to 5 s, with jitter.
pub fn backoff(n: u32, jitter: f64) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1u32 << n.min(5)).min(Duration::from_secs(5));
    base.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_the_platform_treats_them() {
        assert_eq!(classify(200, br#"{"outcome":"stale"}"#), Attempt::Done(Answer::Taken("stale".into())));
        assert_eq!(classify(204, b""), Attempt::Done(Answer::Taken("unknown".into())));
        assert_eq!(classify(422, b"{}"), Attempt::Done(Answer::Held));
        assert_eq!(classify(401, b"{}"), Attempt::Done(Answer::Refused));
        for again in [500, 503, 408, 429, 400] {
            assert!(matches!(classify(again, b""), Attempt::Again(_)), "{again}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff(0, 0.5), Duration::from_millis(200));
        assert_eq!(backoff(1, 0.5), Duration::from_millis(400));
        assert_eq!(backoff(30, 0.5), Duration::from_secs(5));
        assert!(backoff(30, 1.0) <= Duration::from_millis(7500));
    }
}
