//! Delivery to the platform through outages, refusals and throttling.

use std::collections::HashMap;
use std::time::Duration;

use connectors::Outcome;
use connectors::retry_after::RetryAfterBounds;
use e2e::*;
use hub::Hub;
use simulators::canonical::{Matter, matters};
use simulators::platform::{Faults, PlatformSim, SimConfig, Window};

async fn send_all(hub: &Hub, ms: &[Matter], versions: impl Fn(&Matter) -> Vec<i64>) -> usize {
    let intake = hub.intake();
    let mut n = 0;
    let mut tasks = Vec::new();
    for m in ms {
        let (intake, m, vs) = (intake.clone(), m.clone(), versions(m));
        n += vs.len();
        tasks.push(tokio::spawn(async move {
            for v in vs {
                intake.submit(record(m.payload(v))).await.expect("stored");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n
}

/// Every ticket the hub holds is on the platform at the same revision.
async fn platform_caught_up(hub: &Hub, sim: &PlatformSim) -> bool {
    let ours = hub.store.ticket_revisions().await.unwrap();
    hub.store.outbox_depth().await.unwrap() == 0 && sim.tickets() == ours
}

fn assert_each_change_applied_once_in_order(sim: &PlatformSim, tickets: &[(String, i64)]) {
    for (id, revision) in tickets {
        let t = sim.ticket(id).expect("ticket on the platform");
        let applied: Vec<i64> = t.history.iter().map(|c| c.revision).collect();
        assert_eq!(applied, (1..=*revision).collect::<Vec<_>>(), "ticket {id}: revisions applied once each, in order");
    }
}

#[tokio::test]
async fn platform_down_for_30s_then_back_every_change_once_in_order() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let addr = server.addr();
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();

    let ms = matters(30, 400, "OUT");
    let first = send_all(&hub, &ms[..200], |m| (1..=m.versions).collect()).await;
    wait_for(Duration::from_secs(30), "the first half delivered", || platform_caught_up(&hub, &sim)).await;

    // The platform goes away for real: its port refuses connections.
    server.stop().await;
    let down = tokio::time::Instant::now();
    let second = send_all(&hub, &ms[200..], |m| (1..=m.versions).collect()).await;
    // Updates of tickets the platform already has, made while it is down.
    let third = send_all(&hub, &ms[..50], |m| vec![m.versions + 1]).await;
    assert!(hub.store.outbox_depth().await.unwrap() >= (second + third) as i64 - 1);
    tokio::time::sleep_until(down + Duration::from_secs(30)).await;
    assert!(hub.metrics.retried.load(std::sync::atomic::Ordering::Relaxed) > 0, "the hub noticed the outage");

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = sim.serve(listener).await.unwrap();
    wait_for(Duration::from_secs(60), "everything delivered after the outage", || platform_caught_up(&hub, &sim)).await;

    let tickets = hub.store.ticket_revisions().await.unwrap();
    let stats = sim.stats();
    assert_eq!(stats.applied as usize, first + second + third, "every change applied exactly once");
    assert_eq!(stats.revision_gaps, 0);
    assert_eq!(stats.stale_revisions, 0);
    assert_each_change_applied_once_in_order(&sim, &tickets);
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

async fn redeliveries_and_versions_out_of_order(db: TestDb) {
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let intake = hub.intake();
    let ms = matters(31, 2, "DUP");

    // The same record three times: one ticket, one delivery.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(intake.submit(record(ms[0].payload(1))).await.unwrap());
    }
    assert!(matches!(outcomes[0], Outcome::Created { .. }));
    assert_eq!(&outcomes[1..], &[Outcome::Duplicate, Outcome::Duplicate]);

    // Versions 1, 3, 2 in that order: the ticket ends at version 3.
    let Outcome::Created { ticket_id } = intake.submit(record(ms[1].payload(1))).await.unwrap() else { panic!() };
    assert!(matches!(intake.submit(record(ms[1].payload(3))).await.unwrap(), Outcome::Updated { .. }));
    assert_eq!(intake.submit(record(ms[1].payload(2))).await.unwrap(), Outcome::Stale);

    wait_for(Duration::from_secs(20), "delivered", || platform_caught_up(&hub, &sim)).await;
    let stats = sim.stats();
    assert_eq!((stats.tickets, stats.applied, stats.requests), (2, 3, 3), "{stats:?}");
    let on_platform = sim.ticket(&ticket_id).unwrap();
    assert_eq!(on_platform.revision, 2);
    assert_eq!(on_platform.body["sources"][0]["version"], 3);
    assert!(on_platform.body["description"].as_str().unwrap().contains("第3次补充"));
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn redeliveries_and_versions_out_of_order_sqlite() {
    redeliveries_and_versions_out_of_order(TestDb::sqlite()).await;
}

/// Changes are leased in groups larger than the requests in flight; when
/// the platform goes away, the ones leased but not sent are given back at
/// once, not held until their leases run out.
#[tokio::test]
async fn a_pause_gives_back_the_leases_of_changes_not_sent() {
    pause_gives_back_the_leases(false).await;
}

/// The same when the platform refuses the token (401).
#[tokio::test]
async fn a_refused_token_gives_back_the_leases_of_changes_not_sent() {
    pause_gives_back_the_leases(true).await;
}

async fn pause_gives_back_the_leases(refused: bool) {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    sim.set_faults(Faults { latency_ms: 100, ..Faults::default() });
    let mut s = settings(&db.url, &server.base_url());
    s.dispatcher.concurrency = 4;
    s.dispatcher.batch = 256;
    let hub = Hub::start_with(s, canonical_mappings(), vec![]).await.unwrap();
    let ms = matters(34, 300, "BATCH");
    let n = send_all(&hub, &ms, |_| vec![1]).await;
    let held = || async {
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE lease_owner IS NOT NULL")
            .fetch_one(hub.store.pool())
            .await
            .unwrap();
        held
    };
    wait_for(Duration::from_secs(20), "a batch leased", || async { held().await > 100 }).await;
    // The platform answers 503 (or 401) from now on: delivery pauses.
    let window = vec![Window { start_ms: sim.elapsed_ms(), duration_ms: 60_000 }];
    sim.set_faults(if refused {
        Faults { latency_ms: 100, unauthorized: window, ..Faults::default() }
    } else {
        Faults { latency_ms: 100, outages: window, ..Faults::default() }
    });
    wait_for(Duration::from_secs(20), "delivery paused", || async {
        let m = &hub.metrics;
        m.retried.load(std::sync::atomic::Ordering::Relaxed)
            + m.throttled.load(std::sync::atomic::Ordering::Relaxed)
            + m.auth_failures.load(std::sync::atomic::Ordering::Relaxed)
            > 0
    })
    .await;
    // At most the one probe holds a lease while the platform is away.
    wait_for(Duration::from_secs(5), "the queued leases given back", || async { held().await <= 1 }).await;
    sim.set_faults(Faults::default());
    wait_for(Duration::from_secs(60), "everything delivered after the outage", || platform_caught_up(&hub, &sim)).await;
    assert_eq!(sim.stats().applied as usize, n, "every change applied exactly once");
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

/// A new change goes out without a lease transaction of its own: intake
/// leases it to the dispatcher in the commit that stores it.
#[tokio::test]
async fn intake_hands_its_new_changes_to_the_dispatcher() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let mut s = settings(&db.url, &server.base_url());
    // No look at the outbox on its own while the test runs.
    s.dispatcher.idle_poll = Duration::from_secs(60);
    let hub = Hub::start_with(s, canonical_mappings(), vec![]).await.unwrap();
    // The first probe, then the dispatcher waits for intake.
    let ms = matters(35, 21, "HAND");
    send_all(&hub, &ms[..1], |_| vec![1]).await;
    wait_for(Duration::from_secs(10), "the first change delivered", || platform_caught_up(&hub, &sim)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (before, _, _) = hub.store.writer_use().of(hub::store::Writer::Delivery);
    for (i, m) in ms[1..].iter().enumerate() {
        send_all(&hub, std::slice::from_ref(m), |_| vec![1]).await;
        wait_for(Duration::from_secs(10), "the change delivered", || async {
            sim.stats().applied as usize == i + 2 && hub.store.outbox_depth().await.unwrap() == 0
        })
        .await;
    }
    let (after, _, _) = hub.store.writer_use().of(hub::store::Writer::Delivery);
    // One transaction per result; leasing each from the outbox would make
    // it two.
    assert!(after - before <= 25, "{} delivery transactions for 20 changes", after - before);
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn redeliveries_and_versions_out_of_order_postgres() {
    redeliveries_and_versions_out_of_order(TestDb::postgres().await).await;
}

#[tokio::test]
async fn refused_token_pauses_delivery_then_it_resumes_and_retry_after_is_honoured() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    // 401 for the first 2 s; afterwards every 429 asks for 1 s.
    sim.set_faults(Faults {
        unauthorized: vec![Window { start_ms: sim.elapsed_ms(), duration_ms: 2_000 }],
        ..Faults::default()
    });
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let ms = matters(32, 50, "AUTH");
    let n = send_all(&hub, &ms, |_| vec![1]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hub.metrics.delivery_paused.load(std::sync::atomic::Ordering::Relaxed), 1, "paused on 401");
    let asked = sim.stats().unauthorized;
    assert!(asked <= 3, "a refused token stops sending: {asked} requests, not one per change");
    wait_for(Duration::from_secs(20), "delivered after the token works again", || platform_caught_up(&hub, &sim)).await;
    assert_eq!(sim.stats().applied as usize, n);

    sim.set_faults(Faults { throttle_rate: 1.0, retry_after_secs: 1, ..Faults::default() });
    let more = matters(33, 5, "THR");
    send_all(&hub, &more, |_| vec![1]).await;
    // Requests already in flight when the first 429 arrives are answered
    // 429 too; after that, Retry-After: 1 means one probe a second.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let before = sim.stats().throttled;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let during = sim.stats().throttled - before;
    assert!((1..=4).contains(&during), "Retry-After: 1 s means about one request a second, got {during} in 3 s");
    sim.set_faults(Faults::default());
    wait_for(Duration::from_secs(20), "delivered after throttling", || platform_caught_up(&hub, &sim)).await;
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn two_hubs_on_one_postgres_deliver_each_change_once() {
    let db = TestDb::postgres().await;
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults { latency_ms: 2, ..Faults::default() },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let a = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let b = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let ms = matters(34, 300, "PG");
    // Every record reaches both hubs (two connectors on one queue would do
    // the same after a redelivery): one of them stores it, the other sees a duplicate.
    let (na, nb) = tokio::join!(
        send_all(&a, &ms, |m| (1..=m.versions).collect()),
        send_all(&b, &ms, |m| (1..=m.versions).collect())
    );
    assert_eq!(na, nb);
    wait_for(Duration::from_secs(60), "delivered", || platform_caught_up(&a, &sim)).await;
    let tickets = a.store.ticket_revisions().await.unwrap();
    assert_eq!(tickets.len(), 300);
    let stats = sim.stats();
    assert_eq!(stats.applied as usize, na, "{stats:?}");
    assert_eq!(stats.duplicate_keys + stats.stale_revisions, 0, "no change was sent twice: {stats:?}");
    assert_each_change_applied_once_in_order(&sim, &tickets);
    let counts: HashMap<(String, String), i64> =
        a.store.record_counts().await.unwrap().into_iter().map(|(s, o, n)| ((s, o), n)).collect();
    assert_eq!(counts.get(&("canon".into(), "created".into())), Some(&300));
    a.shutdown().await;
    b.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_flaky_platform_still_gets_every_change_once() {
    // Random 500s and 429s land on probes too: a failed probe must lead to
    // another probe, never to a dispatcher that waits for nothing.
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults { error_rate: 0.3, throttle_rate: 0.1, retry_after_secs: 1, ..Faults::default() },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let ms = matters(35, 300, "FLAKY");
    let n = send_all(&hub, &ms, |m| (1..=m.versions).collect()).await;
    wait_for(Duration::from_secs(90), "everything delivered through the faults", || platform_caught_up(&hub, &sim))
        .await;
    assert_eq!(sim.stats().applied as usize, n);
    assert_each_change_applied_once_in_order(&sim, &hub.store.ticket_revisions().await.unwrap());
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

/// A hub whose `Retry-After` is kept between 1 s and 2 s.
async fn hub_with_retry_after_bounds(db: &TestDb, sim: &PlatformSim) -> (Hub, simulators::platform::ServerHandle) {
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let mut s = settings(&db.url, &server.base_url());
    s.dispatcher.retry_after = RetryAfterBounds { min: Duration::from_secs(1), max: Duration::from_secs(2) };
    let hub = Hub::start_with(s, canonical_mappings(), vec![]).await.unwrap();
    (hub, server)
}

fn throttled_with(raw: &str) -> Faults {
    Faults { throttle_rate: 1.0, retry_after_raw: Some(raw.to_string()), ..Faults::default() }
}

#[tokio::test]
async fn retry_after_zero_or_in_the_past_does_not_make_a_busy_loop() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let (hub, server) = hub_with_retry_after_bounds(&db, &sim).await;
    for (i, raw) in ["0", "Thu, 01 Jan 2015 00:00:00 GMT"].into_iter().enumerate() {
        sim.set_faults(throttled_with(raw));
        send_all(&hub, &matters(36 + i as u64, 5, &format!("SPIN{i}")), |_| vec![1]).await;
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let before = sim.stats().throttled;
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        let during = sim.stats().throttled - before;
        assert!(during <= 5, "Retry-After: {raw} still means a second between probes, got {during} requests in 3 s");
        sim.set_faults(Faults::default());
        wait_for(Duration::from_secs(20), "delivered after throttling", || platform_caught_up(&hub, &sim)).await;
    }
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn retry_after_of_a_year_or_more_neither_stops_delivery_nor_panics() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let (hub, server) = hub_with_retry_after_bounds(&db, &sim).await;
    let huge = ["31536000".to_string(), u64::MAX.to_string(), "Fri, 31 Dec 9999 23:59:59 GMT".to_string()];
    for (i, raw) in huge.iter().enumerate() {
        sim.set_faults(throttled_with(raw));
        let before = sim.stats().throttled;
        send_all(&hub, &matters(38 + i as u64, 5, &format!("LONG{i}")), |_| vec![1]).await;
        wait_for(Duration::from_secs(10), "the platform throttled", || async { sim.stats().throttled > before }).await;
        // The platform is fine again at once; the hub asks again within
        // retry_after_max (2 s here), not a year later.
        sim.set_faults(Faults::default());
        wait_for(Duration::from_secs(15), "delivered within retry_after_max", || platform_caught_up(&hub, &sim)).await;
    }
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}
