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
