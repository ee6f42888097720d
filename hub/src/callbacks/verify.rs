//! Is a callback the platform's? HMAC-SHA256 over `{X-Timestamp}.{body}`
//! with a shared secret, sent as `X-Signature: sha256={hex}` (several,
//! comma-separated, while the secret changes), and a timestamp within
//! five minutes of the hub's clock so that a recorded callback cannot be
//! played again later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a callback's timestamp may be from the hub's clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// Signatures looked at in one `X-Signature` header.
pub const MAX_SIGNATURES: usize = 4;

/// Why a callback was refused. Says nothing of the body, nor which secret
/// came close: a stranger learns only that it was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no X-Timestamp header, or not Unix seconds")]
    NoTimestamp,
    #[error("X-Timestamp is {0} s away from the hub's clock (at most 300 s)")]
    Skewed(i64),
    #[error("no X-Signature header, or not sha256=HEX")]
    NoSignature,
    #[error("no signature verifies with the configured secrets")]
    BadSignature,
}

/// The secrets a callback may be signed with (the current one, and the
/// previous one during a change). Never shown: `Debug` says how many.
#[derive(Clone, Default)]
pub struct Secrets(Vec<Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} configured)", self.0.len())
    }
}

impl Secrets {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<[u8]>>(secrets: I) -> Secrets {
        Secrets(secrets.into_iter().map(|s| s.as_ref().to_vec()).filter(|s| !s.is_empty()).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks a callback's headers against its raw body at `now` (Unix
    /// seconds). Constant-time per comparison (`verify_slice`).
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Refused> {
        let ts_text = timestamp.map(str::trim).ok_or(Refused::NoTimestamp)?;
        let ts: i64 = ts_text.parse().map_err(|_| Refused::NoTimestamp)?;
        let skew = now.saturating_sub(ts);
        if skew.saturating_abs() > MAX_SKEW_SECS {
            return Err(Refused::Skewed(skew));
        }
        // A few signatures at most (one per secret in use): a header of
        // thousands would make a stranger's request cost thousands of MACs.
        let candidates: Vec<Vec<u8>> = signature
            .ok_or(Refused::NoSignature)?
            .split(',')
            .take(MAX_SIGNATURES)
            .filter_map(|s| s.trim().strip_prefix("sha256="))
            .filter_map(hex)
            .collect();
        if candidates.is_empty() {
            return Err(Refused::NoSignature);
        }
        for secret in &self.0 {
            // The body is hashed once per secret; each candidate is checked
            // against a copy of that state, in constant time.
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
            mac.update(ts_text.as_bytes());
            mac.update(b".");
            mac.update(body);
            if candidates.iter().any(|c| mac.clone().verify_slice(c).is_ok()) {
                return Ok(());
            }
        }
        Err(Refused::BadSignature)
    }
}

/// `sha256={hex}` as the platform computes it, for the simulators and tests.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_765_000_000;
    const BODY: &[u8] = br#"{"ticketId":"t1","status":"dispatched","at":"2026-12-04T09:00:00+08:00"}"#;

    #[test]
    fn a_signature_over_timestamp_and_body_verifies() {
        let secrets = Secrets::new(["s3cret-for-callbacks"]);
        let ts = NOW.to_string();
        let sig = sign(b"s3cret-for-callbacks", &ts, BODY);
        assert_eq!(secrets.verify(Some(&ts), Some(&sig), BODY, NOW), Ok(()));
        assert_eq!(
            secrets.verify(Some(&ts), Some(&sig.to_uppercase().replace("SHA256=", "sha256=")), BODY, NOW),
            Ok(())
        );
    }

    /// The platform simulator's signing is tested against the same vector
    /// (computed outside Rust), so the two cannot drift apart unnoticed.
    #[test]
    fn a_known_vector_verifies() {
        let sig = "sha256=a80d8d73402807f88e4d237e52d35a74186443537f29330619737c44bea08a1e";
        assert_eq!(sign(b"s3cret-for-callbacks", "1765000000", BODY), sig);
        assert_eq!(Secrets::new(["s3cret-for-callbacks"]).verify(Some("1765000000"), Some(sig), BODY, NOW), Ok(()));
    }

    #[test]
    fn any_change_to_body_timestamp_or_secret_is_refused() {
        let secrets = Secrets::new(["s3cret-for-callbacks"]);
        let ts = NOW.to_string();
        let sig = sign(b"s3cret-for-callbacks", &ts, BODY);
        let mut other = BODY.to_vec();
        other[5] ^= 1;
        assert_eq!(secrets.verify(Some(&ts), Some(&sig), &other, NOW), Err(Refused::BadSignature));
        let later = (NOW + 1).to_string();
        assert_eq!(secrets.verify(Some(&later), Some(&sig), BODY, NOW), Err(Refused::BadSignature));
        let forged = sign(b"guessed", &ts, BODY);
        assert_eq!(secrets.verify(Some(&ts), Some(&forged), BODY, NOW), Err(Refused::BadSignature));
        assert_eq!(Secrets::default().verify(Some(&ts), Some(&sig), BODY, NOW), Err(Refused::BadSignature));
    }

    #[test]
    fn stale_or_future_timestamps_are_refused_before_any_hmac() {
        let secrets = Secrets::new(["k"]);
        for ts in [NOW - 301, NOW + 301, 0, i64::MIN, i64::MAX] {
            let t = ts.to_string();
            let sig = sign(b"k", &t, BODY);
            assert!(matches!(secrets.verify(Some(&t), Some(&sig), BODY, NOW), Err(Refused::Skewed(_))), "{ts}");
        }
        let edge = (NOW - 300).to_string();
        assert_eq!(secrets.verify(Some(&edge), Some(&sign(b"k", &edge, BODY)), BODY, NOW), Ok(()));
        assert_eq!(secrets.verify(None, Some("sha256=00"), BODY, NOW), Err(Refused::NoTimestamp));
        assert_eq!(secrets.verify(Some("soon"), Some("sha256=00"), BODY, NOW), Err(Refused::NoTimestamp));
    }

    #[test]
    fn during_a_change_of_secret_one_valid_signature_of_several_is_enough() {
        let ts = NOW.to_string();
        let old = sign(b"old-secret", &ts, BODY);
        let new = sign(b"new-secret", &ts, BODY);
        let both = format!("{old},{new}");
        assert_eq!(Secrets::new(["new-secret"]).verify(Some(&ts), Some(&both), BODY, NOW), Ok(()));
        assert_eq!(Secrets::new(["old-secret", "new-secret"]).verify(Some(&ts), Some(&new), BODY, NOW), Ok(()));
        assert_eq!(
            Secrets::new(["k"]).verify(Some(&ts), Some("md5=abc,sha256=zz"), BODY, NOW),
            Err(Refused::NoSignature)
        );
        assert_eq!(Secrets::new(["k"]).verify(Some(&ts), None, BODY, NOW), Err(Refused::NoSignature));
        // Thousands of candidates: only the first few are looked at.
        let flood = format!("{},{new}", vec![old.as_str(); 5000].join(","));
        assert_eq!(Secrets::new(["new-secret"]).verify(Some(&ts), Some(&flood), BODY, NOW), Err(Refused::BadSignature));
    }
}
