//! The petition mapping file (mappings/petition.toml) over arbitrary bytes and JSON.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hub_fuzz::map_both_ways("petition", connectors::ContentType::Json, data);
});
