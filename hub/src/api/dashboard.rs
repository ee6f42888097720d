//! The centre's big screen at `/`: a page, its script, style and the
//! schematic map, embedded in the binary (`hub/assets/dashboard/`), so the
//! screen needs nothing from the network.
//!
//! The page is served without a token but shows nothing until it has a
//! viewer's: it asks for one (kept in the tab's `sessionStorage`) or reads
//! it from `#token=…` (a fragment never reaches a server's log), and sends
//! it as `Authorization: Bearer` with every data request.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::ApiState;

const INDEX: &str = include_str!("../../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../../assets/dashboard/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard/dashboard.css");
const MAP: &str = include_str!("../../assets/liaoyuan-map.json");

/// Only our own origin: no inline script, nothing from elsewhere, never framed.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/dashboard/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/dashboard/dashboard.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/dashboard/liaoyuan-map.json", get(|| async { asset("application/json", MAP) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_map_has_the_four_divisions() {
        let map: serde_json::Value = serde_json::from_str(super::MAP).unwrap();
        let codes: Vec<&str> = map["areas"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["220402", "220403", "220421", "220422"]);
        for a in map["areas"].as_array().unwrap() {
            assert!(crate::stats::names::region(a["code"].as_str().unwrap()).is_some());
            assert!(a["polygon"].as_array().unwrap().len() >= 4);
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for text in [super::INDEX, super::SCRIPT, super::STYLE] {
            // The SVG namespace is a name, not a request.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"), "an absolute URL in an asset");
        }
    }
}
