//! The hotline mapping file (mappings/hotline.toml) over arbitrary bytes and JSON.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hub_fuzz::map_both_ways("hotline", connectors::ContentType::Json, data);
});
