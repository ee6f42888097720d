//! Who may use the admin API, the dashboard and Open311: bearer tokens
//! with a role and, optionally, a region.
//!
//! A token is given either in the config, hashed
//! (`[api] tokens = ["viewer@220421:sha256:<hex>"]`, so the file gives no
//! token away), or in the environment in the clear
//! (`HUB_API_TOKENS=viewer:TOKEN,operator@220402:TOKEN`). A region is a
//! county's (6 digits) or township's (9 digits) division code: its holder
//! sees only the matters in it, as each tier's centre sees its own
//! jurisdiction; without one, the whole city.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shorter tokens can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

/// What a token may do; each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads lists, figures and the dashboard, with personal data masked.
    Viewer,
    /// Also replays quarantine and dead letters, decides duplicates, sees personal data.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The part of the city a token sees: a division code's significant
/// digits (`220421` a county, `220421100` a township), or all of it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scope(Option<String>);

impl Scope {
    pub fn city() -> Scope {
        Scope(None)
    }

    /// A county's or township's code, 6, 9 or 12 digits (padding zeros
    /// are dropped: `220421000000` is the county `220421`).
    pub fn parse(code: &str) -> Result<Scope, String> {
        let code = code.trim();
        if !matches!(code.len(), 6 | 9 | 12) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("region `{code}` is not a division code of 6, 9 or 12 digits"));
        }
        let mut significant = code.to_string();
        while significant.len() > 6 && significant.ends_with("000") {
            significant.truncate(significant.len() - 3);
        }
        if significant.len() == 6 && significant.ends_with("00") {
            return Err(format!("region `{code}` is a city or province: give no region for the whole city"));
        }
        Ok(Scope(Some(significant)))
    }

    /// The significant digits, none for the whole city.
    pub fn prefix(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// A county or township, as a token's region or a figure's must be:
    /// the figures, the alerts and the screen's lists are kept per county
    /// and township, so a village's scope would see its whole township.
    pub fn parse_area(code: &str) -> Result<Scope, String> {
        let scope = Scope::parse(code)?;
        if scope.prefix().is_some_and(|p| p.len() > 9) {
            return Err(format!("region `{}` is a village or community: give its township or county", code.trim()));
        }
        Ok(scope)
    }

    /// Whether a matter in `region` (its 12-digit code) is in this scope.
    pub fn sees(&self, region: &str) -> bool {
        self.0.as_deref().is_none_or(|p| region.starts_with(p))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(p) => f.write_str(p),
            None => f.write_str("city"),
        }
    }
}

/// The holder of a valid token, as routes see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub scope: Scope,
}

impl Caller {
    /// `Err(403)` unless this caller's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), Refused> {
        if self.role >= role { Ok(()) } else { Err(Refused::Forbidden(role)) }
    }

    /// `Err(403)` for a token with a region: `what` (the counters, the
    /// sources' health) covers the whole city.
    pub fn require_city(&self, what: &'static str) -> Result<(), Refused> {
        if self.scope.prefix().is_none() { Ok(()) } else { Err(Refused::CityWide(what)) }
    }

    /// Viewers see personal data masked.
    pub fn masks_personal_data(&self) -> bool {
        self.role == Role::Viewer
    }
}

/// One accepted token: its SHA-256, never the token itself.
#[derive(Clone, PartialEq, Eq)]
struct Entry {
    digest: [u8; 32],
    caller: Caller,
}

/// The accepted tokens. Empty means the API is closed to everyone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiTokens(Vec<Entry>);

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiTokens({} hidden)", self.0.len())
    }
}

/// `role` or `role@region`.
fn who(text: &str) -> Result<Caller, String> {
    let (role, region) = match text.split_once('@') {
        Some((r, region)) => (r, Some(region)),
        None => (text, None),
    };
    let role =
        // Not echoed: an entry written the wrong way round would print its token.
        Role::parse(role.trim()).ok_or_else(|| "the part before `:` is not a role (viewer, operator, admin)".to_string())?;
    let scope = region.map(Scope::parse_area).transpose()?.unwrap_or_default();
    Ok(Caller { role, scope })
}

impl ApiTokens {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// A hashed token from the config: `role[@region]:sha256:<64 hex>`.
    pub fn add_hashed(&mut self, spec: &str) -> Result<(), String> {
        let (who_text, rest) = spec.split_once(':').ok_or("expected `role[@region]:sha256:<hex>`")?;
        let hex = rest.strip_prefix("sha256:").ok_or(
            "expected `role[@region]:sha256:<hex>` (tokens in the config are stored hashed: `hub token hash`)",
        )?;
        let digest = parse_hex32(hex.trim()).ok_or("the SHA-256 must be 64 hexadecimal digits")?;
        self.0.push(Entry { digest, caller: who(who_text)? });
        Ok(())
    }

    /// Tokens in the clear, as in `HUB_API_TOKENS`: `role[@region]:TOKEN`, comma-separated.
    pub fn add_plain_list(&mut self, list: &str) -> Result<(), String> {
        for (i, item) in list.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
            let (who_text, token) =
                item.split_once(':').ok_or_else(|| format!("entry {} is not `role[@region]:TOKEN`", i + 1))?;
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(format!("entry {}: the token is shorter than {MIN_TOKEN_CHARS} characters", i + 1));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("entry {}: the token must be printable ASCII without spaces", i + 1));
            }
            let caller = who(who_text).map_err(|e| format!("entry {}: {e}", i + 1))?;
            self.0.push(Entry { digest: Sha256::digest(token.as_bytes()).into(), caller });
        }
        Ok(())
    }

    /// The caller a presented token stands for. Every digest is compared,
    /// whichever matches, so timing tells nothing.
    pub fn admit(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for e in &self.0 {
            if bool::from(e.digest.ct_eq(&digest)) && found.is_none() {
                found = Some(e.caller.clone());
            }
        }
        found
    }
}

/// The hashed form of a token for the config (`hub token hash`).
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Why a request was turned away.
#[derive(Debug)]
pub enum Refused {
    /// No token, or not one of ours (401).
    Unauthenticated,
    /// A token whose role may not do this (403).
    Forbidden(Role),
    /// A region's token, for what covers the whole city (403).
    CityWide(&'static str),
}

impl Refused {
    pub(crate) fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            Refused::Unauthenticated => (StatusCode::UNAUTHORIZED, "a valid bearer token is required".into()),
            Refused::Forbidden(role) => (StatusCode::FORBIDDEN, format!("this needs the {} role", role.as_str())),
            Refused::CityWide(what) => {
                (StatusCode::FORBIDDEN, format!("{what} covers the whole city: it needs a token without a region"))
            }
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        let body = axum::Json(serde_json::json!({ "error": message }));
        if status == StatusCode::UNAUTHORIZED {
            (status, [("www-authenticate", "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

/// Routes take a [`Caller`] as an argument: the request's bearer token,
/// checked against the [`ApiTokens`] in the request's extensions.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, Refused> {
        let tokens = parts.extensions.get::<std::sync::Arc<ApiTokens>>().ok_or(Refused::Unauthenticated)?;
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let presented = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty());
        presented.and_then(|t| tokens.admit(t)).ok_or(Refused::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_role_and_region() {
        let mut t = ApiTokens::default();
        t.add_plain_list("viewer@220421:viewer-token-0123456789, operator:operator-token-0123456789").unwrap();
        t.add_hashed(&format!("admin:sha256:{}", hash_token("admin-token-0123456789"))).unwrap();
        let v = t.admit("viewer-token-0123456789").unwrap();
        assert_eq!((v.role, v.scope.prefix()), (Role::Viewer, Some("220421")));
        assert!(v.scope.sees("220421100000") && !v.scope.sees("220402000000"));
        assert!(v.require(Role::Operator).is_err() && v.masks_personal_data());
        assert_eq!(t.admit("operator-token-0123456789").unwrap().scope, Scope::city());
        assert_eq!(t.admit("admin-token-0123456789").unwrap().role, Role::Admin);
        assert!(t.admit("admin-token-012345678").is_none());
        assert!(t.admit("").is_none());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let mut t = ApiTokens::default();
        assert!(t.add_plain_list("root:long-enough-token-0123").unwrap_err().contains("not a role"));
        assert!(t.add_plain_list("viewer:short").unwrap_err().contains("shorter than 16"));
        assert!(t.add_plain_list("viewer@2204:long-enough-token-0123").unwrap_err().contains("6, 9 or 12 digits"));
        assert!(t.add_plain_list("viewer@220400:long-enough-token-0123").unwrap_err().contains("whole city"));
        assert!(t.add_hashed("viewer:plain-token-0123456789").unwrap_err().contains("hashed"));
        assert_eq!(Scope::parse("220421100000").unwrap().prefix(), Some("220421100"));
        // A village's token would see its whole township's figures and lists.
        let e = t.add_plain_list("viewer@220421100201:long-enough-token-0123").unwrap_err();
        assert!(e.contains("township or county"), "{e}");
        assert_eq!(Scope::parse_area("220421100000").unwrap().prefix(), Some("220421100"));
    }
}
