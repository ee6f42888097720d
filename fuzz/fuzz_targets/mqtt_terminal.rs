//! A terminal's PUBLISH: the topic (first line) and the payload (the rest)
//! through the MQTT connector's topic checks and record, then the terminal
//! mapping; and the notify topic the hub would build from the parts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    // MQTT topics are UTF-8 on the wire; rumqttc refuses anything else.
    let Ok(topic) = std::str::from_utf8(topic) else { return };
    if let Some((county, worker, _)) = connectors::fuzzing::terminal_topic(topic)
        && let Some(notify) = connectors::fuzzing::notify_topic(county, worker)
    {
        let parts = connectors::fuzzing::terminal_topic(&notify).expect("a notify topic is a terminal topic");
        assert_eq!((parts.0, parts.1, parts.2), (county, worker, "notify"), "the notify topic addresses the sender");
    }
    hub_fuzz::intake(&connectors::fuzzing::mqtt_record("terminal", topic, payload));
});
