//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): what
//! a connector does with the bytes that arrive, without a network or a
//! broker, so that a fuzzer can run it millions of times.

use bytes::Bytes;

use crate::RawRecord;
use crate::court::parse::{Item, ParseError, parse_page};
use crate::court::pipeline::{PageCtx, case_record, defect_record};
use crate::mqtt::wire::Delivery;

/// Splits a court feed page (or dropped file) as the court connectors do:
/// into one record per case, or the whole page as one defect record.
///
/// # Panics
///
/// When the parser accepts a page without handing over its header, which
/// the connectors take for granted.
pub fn court_page(system: &str, page: &[u8], max_case_bytes: usize) -> Vec<RawRecord> {
    let (intake, _rx) = crate::intake_channel(1);
    let shutdown = crate::CancellationToken::new();
    let ctx = PageCtx {
        intake: &intake,
        shutdown: &shutdown,
        system,
        court: None,
        extra_meta: Vec::new(),
        chunk_size: 1,
        max_case_bytes,
    };
    let mut header = None;
    let mut cases = Vec::new();
    let result = parse_page(page, max_case_bytes, &mut |item| {
        match item {
            Item::Header(h) => header = Some(h),
            Item::Case(c) => cases.push(c),
        }
        true
    });
    match result {
        Ok(()) => {
            assert!(header.is_some(), "a page the parser accepted has a header");
            cases.into_iter().map(|c| case_record(&ctx, header.as_ref(), c)).collect()
        }
        Err(ParseError::Defect(reason)) => {
            assert!(!reason.trim().is_empty(), "a defect has a reason");
            vec![defect_record(system, None, page.to_vec(), true, page.len(), &reason, &[], Some("fuzz after c-0"))]
        }
        Err(ParseError::Aborted) => unreachable!("the consumer above never stops"),
    }
}

/// The record the MQTT connector hands over for a PUBLISH on `topic`.
pub fn mqtt_record(system: &str, topic: &str, payload: &[u8]) -> RawRecord {
    crate::mqtt::record::record(system, &Delivery::for_test(topic, payload, 1, false))
}

/// The topic the hub would notify a terminal on, if the parts address one.
pub fn notify_topic(county: &str, worker_id: &str) -> Option<String> {
    crate::mqtt::topic::notify_topic(county, worker_id)
}

/// The parts of a terminal topic, as `(county, worker id, kind)`.
pub fn terminal_topic(topic: &str) -> Option<(&str, &str, &str)> {
    crate::mqtt::topic::parse(topic).map(|t| (t.county, t.worker_id, t.kind))
}

/// The record a `POST /records` with this content type and body carries.
pub fn http_record(
    system: &str,
    content_type: Option<&[u8]>,
    record_id: Option<&[u8]>,
    version: Option<&[u8]>,
    body: &[u8],
) -> Result<RawRecord, crate::http::Refusal> {
    use axum::http::{HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    for (name, value) in [("content-type", content_type), ("x-record-id", record_id), ("x-record-version", version)] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, v);
        }
    }
    crate::http::request_record(system, &headers, Bytes::copy_from_slice(body))
}
