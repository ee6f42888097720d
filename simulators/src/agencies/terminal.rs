//! Grid workers' terminals (terminal.md): report/progress/evaluation payloads
//! and a fleet of MQTT clients with persistent sessions that drop the link now
//! and then and resend what was not acknowledged (same `msgId`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{FixedOffset, TimeZone};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use serde::Serialize;
use serde_json::{Value, json};

use super::content::{Matter, Rng, hex};

/// Epoch milliseconds of a Beijing-time instant.
pub fn epoch_ms(t: chrono::NaiveDateTime) -> i64 {
    let bj = FixedOffset::east_opt(8 * 3600).expect("offset");
    bj.from_local_datetime(&t).single().expect("unique").timestamp_millis()
}

fn uuid_from(rng: &mut Rng) -> String {
    uuid::Builder::from_random_bytes(
        [rng.next_u64().to_le_bytes(), rng.next_u64().to_le_bytes()].concat().try_into().expect("16 bytes"),
    )
    .into_uuid()
    .to_string()
}

/// A worker: id, county, grid.
#[derive(Clone, Debug)]
pub struct Worker {
    pub id: String,
    pub county: String,
    pub grid: String,
}

impl Worker {
    /// Worker `n` of a fleet seeded with `seed`: W1000, W1001, …
    pub fn new(seed: u64, n: u64) -> Worker {
        let home = Matter::new(seed ^ 0x6121D, n);
        Worker {
            id: format!("W{:04}", 1000 + n),
            county: home.township.county.to_string(),
            grid: format!("{}-G{:02}", home.village, 1 + home.seed % 12),
        }
    }
    pub fn topic(&self, root: &str, kind: &str) -> String {
        format!("{root}/{}/{}/{kind}", self.county, self.id)
    }
}

/// `{workerId}-{YYYYMMDD}-{NNNN}`.
pub fn event_id(w: &Worker, m: &Matter, n: u64) -> String {
    format!("{}-{}-{:04}", w.id, m.occurred.format("%Y%m%d"), n % 10_000)
}

fn photos(rng: &mut Rng, w: &Worker, m: &Matter, n: usize) -> Value {
    let day = m.occurred.format("%Y%m%d");
    (1..=n)
        .map(|i| json!({"url": format!("https://terminal.example/p/{}/{day}/{}.jpg", w.id, rng.below(100_000) * 10 + i as u64), "sha256": hex(rng, 64)}))
        .collect()
}

/// A `report` payload.
pub fn report(rng: &mut Rng, w: &Worker, m: &Matter, event_id: &str) -> Value {
    let mut loc = json!({"address": m.place});
    if rng.chance(0.7) {
        loc["lat"] = json!(((42.85 + rng.unit() * 0.1) * 1e4).round() / 1e4);
        loc["lng"] = json!(((125.05 + rng.unit() * 0.15) * 1e4).round() / 1e4);
    }
    let mut b = json!({
        "msgId": uuid_from(rng),
        "eventId": event_id,
        "workerId": w.id,
        "gridId": w.grid,
        "reason": m.grid_shorthand(),
        "category": m.subject.terminal_category(),
        "location": loc,
        "occurredAt": epoch_ms(m.occurred),
    });
    let n = rng.below(3) as usize;
    if n > 0 {
        b["photos"] = photos(rng, w, m, n);
    }
    if rng.chance(0.6) {
        b["deadlineHours"] = json!(if m.urgent { 24 } else { *rng.pick(&[48, 72, 168]) });
    }
    b
}

/// A `progress` payload.
pub fn progress(rng: &mut Rng, w: &Worker, m: &Matter, event_id: &str, at_ms: i64) -> Value {
    let note = *rng.pick(&[
        "已联系责任部门，工作人员已到场。",
        "已入户了解情况，双方同意调解。",
        "现场已设置警示，待修复。",
        "已复查，正在处理中。",
    ]);
    let mut b = json!({"msgId": uuid_from(rng), "eventId": event_id, "workerId": w.id, "note": note, "at": at_ms});
    if rng.chance(0.5) {
        b["photos"] = photos(rng, w, m, 1);
    }
    b
}

/// An `evaluation` payload.
pub fn evaluation(rng: &mut Rng, w: &Worker, event_id: &str, at_ms: i64) -> Value {
    let smile = rng.chance(0.8);
    let mut b = json!({"msgId": uuid_from(rng), "eventId": event_id, "workerId": w.id,
        "result": if smile { "smile" } else { "frown" }, "closed": smile, "at": at_ms});
    if rng.chance(0.5) {
        b["comment"] = json!(if smile {
            "已处理完毕，群众满意。"
        } else {
            "问题未彻底解决，需再次处理。"
        });
    }
    b
}

/// What a fleet sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FleetTally {
    pub reports: u64,
    pub progress: u64,
    pub evaluations: u64,
    pub bad: u64,
    /// Distinct bad bodies: a hub keeps the same bad bytes once.
    pub bad_distinct: u64,
    #[serde(skip)]
    bad_seen: std::collections::HashSet<u64>,
    /// Republished after a dropped link (same msgId).
    pub resends: u64,
    /// PUBACKs received (including for resends).
    pub acked: u64,
    pub disconnects: u64,
    /// Messages never acknowledged when the run ended.
    pub unacked_at_end: u64,
}

impl FleetTally {
    pub fn good(&self) -> u64 {
        self.reports + self.progress + self.evaluations
    }
}

/// Fleet settings.
#[derive(Clone, Debug)]
pub struct TerminalFleet {
    pub seed: u64,
    /// Topic root, `grid` by default.
    pub topic_root: String,
    /// Per message, chance that the link drops afterwards (abruptly).
    pub disconnect_share: f64,
    /// Client id prefix (ids are `{prefix}-{workerId}`; persistent sessions).
    pub client_prefix: String,
}

impl Default for TerminalFleet {
    fn default() -> Self {
        TerminalFleet { seed: 1, topic_root: "grid".into(), disconnect_share: 0.02, client_prefix: "terminal".into() }
    }
}

#[derive(Clone)]
struct Out {
    seq: u64,
    topic: String,
    payload: Vec<u8>,
}

/// `mqtt://host:port` or `host:port` → (host, port).
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16)> {
    let rest = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).unwrap_or(url);
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':').unwrap_or((rest, "1883"));
    Ok((host.to_string(), port.parse().context("mqtt port")?))
}

impl TerminalFleet {
    /// The notify topics of the fleet's first `workers` workers, where the
    /// hub tells each of what happened to the matters it reported.
    pub fn notify_topics(&self, workers: u32) -> Vec<String> {
        (0..u64::from(workers)).map(|n| Worker::new(self.seed, n).topic(&self.topic_root, "notify")).collect()
    }

    /// Run `workers` terminals publishing `rate` messages/s in total for
    /// `duration`; a share `bad_share` is bad input. Waits (up to 5 s) for the
    /// last acknowledgements.
    pub async fn run(
        &self,
        mqtt_url: &str,
        workers: u32,
        rate: f64,
        duration: Duration,
        bad_share: f64,
    ) -> Result<FleetTally> {
        let (host, port) = parse_mqtt_url(mqtt_url)?;
        let tally = Arc::new(Mutex::new(FleetTally::default()));
        let deadline = Instant::now() + duration;
        let interval = Duration::from_secs_f64(workers.max(1) as f64 / rate.max(0.001));
        let mut tasks = Vec::new();
        for n in 0..workers as u64 {
            let cfg = self.clone();
            let (host, tally) = (host.clone(), tally.clone());
            tasks.push(tokio::spawn(
                async move { cfg.worker(n, host, port, deadline, interval, bad_share, tally).await },
            ));
        }
        for t in tasks {
            t.await.context("worker task")??;
        }
        let t = tally.lock().expect("tally").clone();
        tracing::info!(good = t.good(), bad = t.bad, resends = t.resends, "terminal fleet done");
        Ok(t)
    }

    #[allow(clippy::too_many_arguments)]
    async fn worker(
        &self,
        n: u64,
        host: String,
        port: u16,
        deadline: Instant,
        interval: Duration,
        bad_share: f64,
        tally: Arc<Mutex<FleetTally>>,
    ) -> Result<()> {
        let w = Worker::new(self.seed, n);
        let mut rng = Rng::new(self.seed ^ (n << 20));
        let mut opts = MqttOptions::new(format!("{}-{}", self.client_prefix, w.id), host, port);
        opts.set_clean_session(false).set_keep_alive(Duration::from_secs(10));
        let grace = deadline + Duration::from_secs(5);
        let mut outbox: Vec<Out> = Vec::new();
        let mut open: VecDeque<(String, Matter, u8)> = VecDeque::new();
        let (mut seq, mut events) = (0u64, 0u64);
        // Stagger the first messages of the workers.
        let mut next_tick = Instant::now() + interval.mul_f64(rng.unit());
        loop {
            let (client, mut el) = AsyncClient::new(opts.clone(), 256);
            let mut queued: VecDeque<Out> = VecDeque::new();
            let mut unacked: HashMap<u16, Out> = HashMap::new();
            outbox.sort_by_key(|o| o.seq);
            for o in outbox.drain(..) {
                if client.try_publish(&o.topic, QoS::AtLeastOnce, false, o.payload.clone()).is_ok() {
                    tally.lock().expect("tally").resends += 1;
                }
                queued.push_back(o);
            }
            let mut dropped = false;
            loop {
                let now = Instant::now();
                if now >= deadline && queued.is_empty() && unacked.is_empty() {
                    let _ = client.try_disconnect();
                    let _ = tokio::time::timeout(Duration::from_millis(500), el.poll()).await;
                    return Ok(());
                }
                if now >= grace {
                    tally.lock().expect("tally").unacked_at_end += (queued.len() + unacked.len()) as u64;
                    return Ok(());
                }
                let tick_at = if now < deadline { next_tick } else { grace };
                tokio::select! {
                    ev = el.poll() => match ev {
                        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                            if let Some(o) = queued.pop_front() {
                                unacked.insert(pkid, o);
                            }
                        }
                        Ok(Event::Incoming(Packet::PubAck(a))) => {
                            if unacked.remove(&a.pkid).is_some() {
                                tally.lock().expect("tally").acked += 1;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            dropped = true;
                        }
                    },
                    _ = tokio::time::sleep_until(tick_at.into()) => {
                        if Instant::now() >= deadline {
                            continue;
                        }
                        next_tick += interval;
                        seq += 1;
                        let (topic, payload) = self.next_message(&w, &mut rng, &mut open, &mut events, bad_share, &tally);
                        let out = Out { seq, topic, payload };
                        if client.try_publish(&out.topic, QoS::AtLeastOnce, false, out.payload.clone()).is_ok() {
                            queued.push_back(out);
                        } else {
                            outbox.push(out);
                        }
                        if rng.chance(self.disconnect_share) {
                            dropped = true;
                        }
                    }
                }
                if dropped {
                    break;
                }
            }
            // Link lost (simulated by dropping the connection abruptly): what was
            // not acknowledged is sent again on the next session.
            tally.lock().expect("tally").disconnects += 1;
            outbox.extend(queued);
            outbox.extend(unacked.into_values());
            drop(el);
            tokio::time::sleep(Duration::from_millis(50 + rng.below(150))).await;
        }
    }

    fn next_message(
        &self,
        w: &Worker,
        rng: &mut Rng,
        open: &mut VecDeque<(String, Matter, u8)>,
        events: &mut u64,
        bad_share: f64,
        tally: &Mutex<FleetTally>,
    ) -> (String, Vec<u8>) {
        let root = &self.topic_root;
        if rng.chance(bad_share) {
            let body = if rng.chance(0.5) {
                // workerId does not match the topic, nothing valid (bad-terminal-topic-mismatch.json)
                json!({"msgId": "not-a-uuid", "eventId": "W9999-20240715-0001", "workerId": "W0001", "gridId": "G",
                    "reason": "", "location": {"lat": 420.0, "lng": -725.1}, "occurredAt": "tomorrow"})
                .to_string()
                .into_bytes()
            } else {
                b"{\"msgId\": \"5b0e7c2a-3f1d-4e8b-9a61-2c7d0f4e9b13\", \"eventId\": \"".to_vec()
            };
            let mut t = tally.lock().expect("tally");
            t.bad += 1;
            if t.bad_seen.insert(super::content::body_hash(&body)) {
                t.bad_distinct += 1;
            }
            return (w.topic(root, "report"), body);
        }
        let follow_up = open.len() >= 3 || (!open.is_empty() && rng.chance(0.4));
        if follow_up {
            let (eid, m, stage) = open.pop_front().expect("open");
            let at = epoch_ms(m.occurred) + 3_600_000 * (i64::from(stage) + 1);
            if stage == 0 && rng.chance(0.6) {
                tally.lock().expect("tally").progress += 1;
                let b = progress(rng, w, &m, &eid, at);
                open.push_back((eid, m, 1));
                return (w.topic(root, "progress"), b.to_string().into_bytes());
            }
            tally.lock().expect("tally").evaluations += 1;
            return (w.topic(root, "evaluation"), evaluation(rng, w, &eid, at).to_string().into_bytes());
        }
        *events += 1;
        // A matter in the worker's own county.
        let base = (w.id[1..].parse::<u64>().unwrap_or(0)) << 24;
        let mut m = Matter::new(self.seed, base + *events * 64);
        for k in 1..64 {
            if m.township.county == w.county {
                break;
            }
            m = Matter::new(self.seed, base + *events * 64 + k);
        }
        let eid = event_id(w, &m, *events);
        tally.lock().expect("tally").reports += 1;
        let b = report(rng, w, &m, &eid);
        open.push_back((eid, m, 0));
        (w.topic(root, "report"), b.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn check_good(topic: &str, b: &Value) {
        let parts: Vec<&str> = topic.split('/').collect();
        assert_eq!(b["workerId"].as_str().unwrap(), parts[2]);
        assert!(uuid::Uuid::parse_str(b["msgId"].as_str().unwrap()).is_ok());
        let eid = b["eventId"].as_str().unwrap();
        assert!(eid.starts_with(&format!("{}-2024", parts[2])) && eid.len() == 5 + 1 + 8 + 1 + 4, "{eid}");
        match parts[3] {
            "report" => {
                let g = b["gridId"].as_str().unwrap();
                assert!(g.len() == 16 && &g[12..14] == "-G" && g.starts_with(parts[1]), "{g}");
                assert!(!b["reason"].as_str().unwrap().is_empty());
                assert!(b["location"]["address"].is_string());
                if let Some(lat) = b["location"]["lat"].as_f64() {
                    assert!((42.8..43.0).contains(&lat));
                    assert!((125.0..125.3).contains(&b["location"]["lng"].as_f64().unwrap()));
                }
                assert!(b["occurredAt"].as_i64().unwrap() > 1_700_000_000_000);
            }
            "progress" => assert!(b["note"].is_string() && b["at"].is_i64()),
            "evaluation" => {
                assert!(["smile", "frown"].contains(&b["result"].as_str().unwrap()) && b["closed"].is_boolean())
            }
            k => panic!("{k}"),
        }
    }

    #[tokio::test]
    async fn agencies_terminal_fleet_against_mosquitto() {
        let root = format!("test-{}", uuid::Uuid::new_v4().simple());
        let mut opts = MqttOptions::new(format!("{root}-sub"), "127.0.0.1", 1883);
        opts.set_keep_alive(Duration::from_secs(10));
        let (sub, mut el) = AsyncClient::new(opts, 64);
        sub.subscribe(format!("{root}/#"), QoS::AtLeastOnce).await.unwrap();
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = el.poll().await.unwrap() {
                break;
            }
        }
        let received = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
        let r2 = received.clone();
        let listener = tokio::spawn(async move {
            while let Ok(ev) = el.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = ev {
                    r2.lock().unwrap().push((p.topic.clone(), p.payload.to_vec()));
                }
            }
        });
        let fleet =
            TerminalFleet { seed: 11, topic_root: root.clone(), disconnect_share: 0.1, client_prefix: root.clone() };
        let t = fleet.run("mqtt://127.0.0.1:1883", 4, 80.0, Duration::from_millis(1500), 0.1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        listener.abort();
        assert_eq!(t.unacked_at_end, 0, "{t:?}");
        assert!(t.reports > 10 && t.progress > 0 && t.evaluations > 0 && t.bad > 0 && t.disconnects > 0, "{t:?}");
        let got = received.lock().unwrap().clone();
        let mut ids = HashSet::new();
        let mut bad = 0;
        for (topic, payload) in &got {
            match serde_json::from_slice::<Value>(payload) {
                Ok(b) if b["msgId"] != "not-a-uuid" => {
                    check_good(topic, &b);
                    ids.insert(b["msgId"].as_str().unwrap().to_string());
                }
                _ => bad += 1,
            }
        }
        assert_eq!(ids.len() as u64, t.good(), "every good message arrived at least once: {t:?}");
        assert!(bad as u64 >= t.bad);
        assert!(got.len() as u64 >= t.good() + t.bad);
    }
}
