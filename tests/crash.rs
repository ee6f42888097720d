//! The hub process killed with SIGKILL under load, again and again.

use std::time::Duration;

use e2e::*;
use rand::Rng;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};

fn config(dir: &std::path::Path, db_url: &str, platform: &str, listen: u16) -> std::path::PathBuf {
    let path = dir.join("hub.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
url = "{db_url}"

[platform]
url = "{platform}"
token = "test-token"
timeout = "5s"

[delivery]
lease = "30s"
retry_initial = "100ms"
retry_max = "1s"
pause_max = "1s"

[[sources]]
name = "canon"
mapping = "canonical"
transport = "http"
listen = "127.0.0.1:{listen}"
open = true
"#
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_under_load_loses_and_doubles_nothing() {
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // A platform with a little latency, so that kills land with requests in flight.
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults { latency_ms: 3, ..Faults::default() },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let port = free_port();
    let cfg = config(&dir, &db.url, &server.base_url(), port);
    let mut hub = HubProcess::start(&cfg);

    // The source: every version of every matter, in order per matter,
    // resent until acknowledged.
    let ms = matters(40, 1_500, "KILL");
    let expected: i64 = ms.iter().map(|m| m.versions).sum();
    let url = format!("http://127.0.0.1:{port}/records");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let source = {
        let (ms, url, client) = (ms.clone(), url.clone(), client.clone());
        tokio::spawn(async move {
            let chunks: Vec<Vec<_>> = ms.chunks(ms.len() / 16).map(|c| c.to_vec()).collect();
            let mut tasks = Vec::new();
            for chunk in chunks {
                let (url, client) = (url.clone(), client.clone());
                tasks.push(tokio::spawn(async move {
                    for m in chunk {
                        for v in 1..=m.versions {
                            send_until_acknowledged(&client, &url, m.payload(v)).await;
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };

    let mut kills = 0;
    while kills < 6 || !source.is_finished() {
        let wait = rand::rng().random_range(400..1_600);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if kills >= 6 {
            continue;
        }
        hub.kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        hub.restart();
    }
    source.await.unwrap();

    let caught_up = || async {
        let t = sim.tickets();
        t.len() == ms.len() && t.iter().map(|(_, r)| *r).sum::<i64>() == expected
    };
    wait_for(Duration::from_secs(90), "the platform holds every ticket at its last revision", caught_up).await;
    // The last restart may be milliseconds old: SIGTERM before the hub has
    // installed its handler is the default death, not a graceful stop.
    wait_for(Duration::from_secs(30), "the hub listening again", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    let status = hub.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");

    let stats = sim.stats();
    assert_eq!(stats.applied as i64, expected, "no change applied twice, none missing: {stats:?}");
    assert_eq!(stats.revision_gaps, 0);
    let store = hub::store::Store::open(&db.url).await.unwrap();
    let s = store.summary().await.unwrap();
    assert_eq!((s.tickets, s.revisions, s.delivered_revisions, s.pending), (ms.len() as i64, expected, expected, 0));
    // The figures count every ticket once, through kills between a
    // change and its counting: as many as a recount from scratch finds.
    let all = hub::store::CellFilter { from_month: "2000-01".into(), to_month: "2099-12".into(), region: None };
    let counted = store.cell_total(&all).await.unwrap();
    assert_eq!(counted.received, ms.len() as i64, "every ticket counted once");
    for table in ["ticket_facts", "stats_cells", "stats_rollups", "stats_daily"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(store.pool()).await.unwrap();
    }
    store.rebuild_statistics(|_| {}).await.unwrap();
    // (Finishes are dated alike only to within the counting's lag.)
    let recounted = store.cell_total(&all).await.unwrap();
    let what = |c: &hub::stats::facts::Counts| (c.received, c.finished, c.rated, c.satisfied, c.reopened, c.overdue);
    assert_eq!(what(&recounted), what(&counted), "as a recount finds");
    for m in ms.iter().step_by(97) {
        let id = store.ticket_for_source("canon", &m.record_id).await.unwrap().expect("linked");
        assert_eq!(sim.ticket(&id).unwrap().revision, m.versions, "{} at its last version", m.record_id);
    }
    eprintln!(
        "{kills} SIGKILLs; {expected} changes applied once each; {} repeated keys and {} stale revisions absorbed by the platform",
        stats.duplicate_keys, stats.stale_revisions
    );
    store.close().await;
    assert_no_personal_numbers(&cfg.with_extension("log"));
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
