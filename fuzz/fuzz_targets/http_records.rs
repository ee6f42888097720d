//! `POST /records`: the Content-Type (first line), X-Record-Id (second),
//! X-Record-Version (third) and the body (the rest) through the HTTP
//! connector's checks, then the canonical mapping.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let content_type = parts.next().filter(|p| !p.is_empty());
    let record_id = parts.next().filter(|p| !p.is_empty());
    let version = parts.next().filter(|p| !p.is_empty());
    let body = parts.next().unwrap_or_default();
    if let Ok(record) = connectors::fuzzing::http_record("canon", content_type, record_id, version, body) {
        hub_fuzz::intake(&record);
    }
});
