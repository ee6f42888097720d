//! Cross-channel duplicates through real hub processes: two hubs on one
//! PostgreSQL, each taking one channel, receive the two reports of a matter
//! at the same instant. One ticket per matter, its merge delivered as a
//! revision, the decision visible through the CLI.

use std::time::Duration;

use e2e::*;
use simulators::platform::{PlatformSim, SimConfig};

/// The contract's collapsed manhole as the hotline and a grid worker tell
/// it, moved `round * 100` days (beyond every window: rounds are different
/// matters) and with the round's own ids and caller.
fn manhole(round: u32) -> (Vec<u8>, Vec<u8>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/samples");
    let days = i64::from(round) * 100;
    let day = chrono::NaiveDate::from_ymd_opt(2022, 7, 12).unwrap() + chrono::Duration::days(days);
    let ymd = day.format("%Y%m%d").to_string();
    let hotline = std::fs::read_to_string(root.join("hotline-created.json"))
        .unwrap()
        .replace("2022-07-12", &day.format("%Y-%m-%d").to_string())
        .replace("LY12345-20220712-000318", &format!("LY12345-{ymd}-{:06}", round + 1))
        .replace("13904371234", &format!("139043{:05}", 70_000 + round));
    let mut terminal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("terminal-report.json")).unwrap()).unwrap();
    terminal["occurredAt"] = (1_657_613_100_000i64 + days * 86_400_000).into();
    terminal["eventId"] = format!("W0412-{ymd}-{:04}", round + 1).into();
    terminal["msgId"] = uuid::Uuid::new_v4().to_string().into();
    (hotline.into_bytes(), terminal.to_string().into_bytes())
}

fn config(dir: &std::path::Path, name: &str, db: &str, platform: &str, source: &str, port: u16) -> std::path::PathBuf {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
url = "{db}"
[platform]
url = "{platform}"
token = "test-token"
[delivery]
retry_initial = "100ms"
pause_max = "1s"
# The test's own thresholds: these two reports are alike for any sensible
# tuning; what is under test is that the decision is atomic across hubs.
[dedup]
merge = 0.6
review = 0.3

[[sources]]
name = "{source}"
mapping = "builtin:{source}"
transport = "http"
listen = "127.0.0.1:{port}"
open = true
"#
        ),
    )
    .unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_postgres_make_one_ticket_of_one_matter_told_twice_at_once() {
    let db = TestDb::postgres().await;
    let dir = std::env::temp_dir().join(format!("hub-dups-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let (pa, pb) = (free_port(), free_port());
    let a = HubProcess::start(&config(&dir, "a", &db.url, &server.base_url(), "hotline", pa));
    let mut b = HubProcess::start(&config(&dir, "b", &db.url, &server.base_url(), "terminal", pb));

    const ROUNDS: u32 = 15;
    let client = reqwest::Client::new();
    let (url_a, url_b) = (format!("http://127.0.0.1:{pa}/records"), format!("http://127.0.0.1:{pb}/records"));
    for round in 0..ROUNDS {
        let (h, t) = manhole(round);
        let (x, y) =
            tokio::join!(send_until_acknowledged(&client, &url_a, h), send_until_acknowledged(&client, &url_b, t));
        let created = [&x, &y].iter().filter(|v| v["outcome"] == "created").count();
        assert_eq!(created, 1, "round {round}: one ticket, the other record joins it: {x} {y}");
        assert_eq!(x["ticketId"], y["ticketId"], "round {round}");
    }

    // Each merge reaches the platform as the ticket's second revision.
    wait_for(Duration::from_secs(60), "every merge on the platform", || async {
        let tickets = sim.tickets();
        tickets.len() == ROUNDS as usize && tickets.iter().all(|(_, revision)| *revision == 2)
    })
    .await;
    for (id, _) in sim.tickets() {
        let t = sim.ticket(&id).unwrap();
        let systems: Vec<&str> =
            t.body["sources"].as_array().unwrap().iter().map(|s| s["system"].as_str().unwrap()).collect();
        assert_eq!(systems.len(), 2, "{systems:?}");
        assert!(t.body["description"].as_str().unwrap().contains("其他渠道反映"), "both voices kept");
    }

    let (ok, out) = b.cli(&["duplicates", "list", "--state", "merged"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("merged")).count(), ROUNDS as usize, "{out}");
    let first = out.lines().next().unwrap().split_whitespace().next().unwrap().trim_start_matches('#').to_string();
    let (ok, shown) = b.cli(&["duplicates", "show", &first]);
    assert!(
        ok && shown.contains("reasons:") && shown.lines().filter(|l| l.starts_with("    ")).count() >= 2,
        "{shown}"
    );
    assert_no_personal_numbers_in(&shown);

    drop(a);
    assert!(b.terminate().success());
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
