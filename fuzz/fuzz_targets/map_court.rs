//! The court mapping file (mappings/court.toml) over arbitrary bytes: one
//! case as the court connectors hand it over (a standalone XML document).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hub_fuzz::map_both_ways("court", connectors::ContentType::Xml, data);
});
