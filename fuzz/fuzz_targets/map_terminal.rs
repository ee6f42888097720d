//! The terminal mapping file (mappings/terminal.toml) over arbitrary bytes
//! and JSON, on a well-formed topic of each kind (the topic's own checks
//! are `mqtt_terminal`'s).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let kind = ["report", "progress", "evaluation"][data.len() % 3];
    let topic = format!("grid/220402/W0412/{kind}");
    hub_fuzz::intake(&connectors::fuzzing::mqtt_record("terminal", &topic, data));
});
