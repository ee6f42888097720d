//! The court feed's page parser over arbitrary bytes (UTF-8, GB18030 or
//! neither, as the page declares), then every record it hands over through
//! the court mapping.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // A small case limit, so that cutting an oversized case is reached.
    for record in connectors::fuzzing::court_page("court", data, 4096) {
        hub_fuzz::intake(&record);
    }
});
