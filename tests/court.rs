//! Court mediation cases from a simulated feed, through the court mapping,
//! to the platform: the connector, the page hand-over and the mapping file
//! working together.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use connectors::court::{CourtFeedConfig, CourtFeedConnector};
use e2e::*;
use hub::Hub;
use hub::mapping::{DeclarativeMapper, Mappings};
use simulators::agencies::court::{CourtFeedServer, FeedEncoding};
use simulators::platform::{PlatformSim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_cases_become_tickets_and_the_cursor_is_kept() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let feed = CourtFeedServer::bind("127.0.0.1:0", "吉0402", FeedEncoding::Utf8, 7, 30).await.unwrap();

    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/court.toml");
    let mut mappings = Mappings::new();
    mappings.insert("court", Arc::new(DeclarativeMapper::load(&mapping).expect("court mapping")));
    let mut config = CourtFeedConfig::new(feed.base_url(), "court", "吉0402");
    config.limit = 7;
    config.poll_interval = Duration::from_millis(200);
    let connector = Box::new(CourtFeedConnector::new(config).unwrap());
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), mappings, vec![connector]).await.unwrap();

    wait_for(Duration::from_secs(30), "30 cases on the platform", || async { sim.tickets().len() == 30 }).await;
    // Cases change (mediation goes on): new versions of the same tickets.
    let changed = feed.advance(10);
    assert!(changed > 0, "the simulated court changed some cases");
    wait_for(Duration::from_secs(30), "the changes delivered", || async {
        sim.stats().applied as usize == 30 + changed
    })
    .await;
    let counts = hub.store.record_counts().await.unwrap();
    assert!(counts.iter().all(|(_, outcome, _)| outcome != "quarantined"), "{counts:?}");
    assert!(hub.store.cursor("court-feed:吉0402").await.unwrap().is_some(), "cursor stored");
    assert_eq!(sim.tickets().len(), 30, "a changed case is a new revision, not a new ticket");
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

/// Runs a `hub` command against the store in `config`; (success, output).
fn hub_cli(config: &Path, args: &[&str]) -> (bool, String) {
    let out =
        std::process::Command::new(hub_binary()).args(args).arg("--config").arg(config).output().expect("run hub cli");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// A court that serves one page broken on every poll, each time with other
/// bytes: the page is quarantined once for its cursor position, the feed
/// stays there polling with backoff, an operator looks at it and skips it
/// with the real CLI, the feed goes on; a page the court fixes goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_stays_bad_is_quarantined_once_then_skipped_or_fixed() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    // 35 cases, changes c-1001…c-1035, pages of 7: the second page is after c-1007.
    let feed = CourtFeedServer::bind("127.0.0.1:0", "吉0402", FeedEncoding::Utf8, 11, 35).await.unwrap();
    feed.set_broken_page(Some(1007));

    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/court.toml");
    let mut mappings = Mappings::new();
    mappings.insert("court", Arc::new(DeclarativeMapper::load(&mapping).expect("court mapping")));
    let mut config = CourtFeedConfig::new(feed.base_url(), "court", "吉0402");
    config.limit = 7;
    config.poll_interval = Duration::from_millis(200);
    config.backoff_min = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(300);
    let connector = Box::new(CourtFeedConnector::new(config).unwrap());
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), mappings, vec![connector]).await.unwrap();
    let dir = std::env::temp_dir().join(format!("hub-court-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("hub.toml");
    std::fs::write(
        &cfg,
        format!("[store]\nurl = \"{}\"\n[platform]\nurl = \"{}\"\ntoken = \"test-token\"\n", db.url, server.base_url()),
    )
    .unwrap();

    let quarantined = || async {
        let counts = hub.store.record_counts().await.unwrap();
        counts.iter().filter(|(_, outcome, _)| outcome == "quarantined").map(|(_, _, n)| *n).sum::<i64>()
    };
    wait_for(Duration::from_secs(30), "the bad page polled 6 times", || async { feed.broken_served() >= 6 }).await;
    assert_eq!(quarantined().await, 1, "one defect for the position, not one per poll");
    assert_eq!(hub.store.cursor("court-feed:吉0402").await.unwrap().unwrap().0, "c-1007", "the cursor stays");
    assert_eq!(sim.tickets().len(), 7, "the first page went through");

    // The operator looks at it, then moves past it; the running feed follows.
    let (ok, list) = hub_cli(&cfg, &["quarantine", "list"]);
    assert!(ok && list.contains("truncated"), "{list}");
    let id = list.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    let (ok, shown) = hub_cli(&cfg, &["quarantine", "show", &id]);
    assert!(ok && shown.contains(r#"next="c-1014""#) && shown.contains("c-1007"), "{shown}");
    e2e::assert_no_personal_numbers_in(&shown);
    let (ok, out) = hub_cli(&cfg, &["court", "skip", &id]);
    assert!(ok && out.contains("`c-1007` to `c-1014`"), "{out}");
    let (ok, out) = hub_cli(&cfg, &["court", "skip", &id]);
    assert!(!ok && out.contains("already skipped"), "{out}");
    // The skipped page's 7 cases are not taken; the other 21 are.
    wait_for(Duration::from_secs(30), "the feed past the skipped page", || async { sim.tickets().len() == 28 }).await;
    assert_eq!(hub.store.cursor("court-feed:吉0402").await.unwrap().unwrap().0, "c-1035");

    // A page bad for a while, then fixed by the court: it goes through.
    feed.set_broken_page(Some(1035));
    let served = feed.broken_served();
    feed.add_cases(7);
    wait_for(Duration::from_secs(30), "the new bad page polled 3 times", || async {
        feed.broken_served() >= served + 3
    })
    .await;
    assert_eq!(quarantined().await, 2, "one more position, one more defect");
    feed.set_broken_page(None);
    wait_for(Duration::from_secs(30), "the fixed page delivered", || async { sim.tickets().len() == 35 }).await;
    assert_eq!(quarantined().await, 2);
    assert_eq!(hub.store.cursor("court-feed:吉0402").await.unwrap().unwrap().0, "c-1042");

    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
