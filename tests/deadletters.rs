//! Changes the platform refuses: parked, listed and replayed with the CLI.

use std::time::Duration;

use e2e::*;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_changes_land_in_dead_letters_and_replay_after_the_fix() {
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-dl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults { reject_title_contains: Some("拒收".into()), ..Faults::default() },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let port = free_port();
    let cfg = dir.join("hub.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nurl = \"{}\"\n[platform]\nurl = \"{}\"\ntoken = \"test-token\"\n[delivery]\nretry_initial = \"100ms\"\n\n[[sources]]\nname = \"canon\"\nmapping = \"canonical\"\ntransport = \"http\"\nlisten = \"127.0.0.1:{port}\"\nopen = true\n",
            db.url,
            server.base_url()
        ),
    )
    .unwrap();
    let mut hub = HubProcess::start(&cfg);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/records");

    let ms = matters(50, 3, "DL");
    let mut refused = ms[1].record(1);
    refused["ticket"]["title"] = "拒收测试：标题含平台拒收的字样".into();
    let ack = send_until_acknowledged(&client, &url, refused.to_string().into_bytes()).await;
    let refused_id = ack["ticketId"].as_str().unwrap().to_string();
    for m in [&ms[0], &ms[2]] {
        send_until_acknowledged(&client, &url, m.payload(1)).await;
    }

    let mut listing = String::new();
    for _ in 0..100 {
        let (ok, out) = hub.cli(&["deadletters", "list"]);
        assert!(ok, "{out}");
        if out.contains(&refused_id) {
            listing = out;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(listing.contains("422"), "the dead letter lists the platform's status: {listing}");
    wait_for(Duration::from_secs(20), "the others went through", || async { sim.tickets().len() == 2 }).await;
    let id = listing.lines().find(|l| l.contains(&refused_id)).unwrap().split_whitespace().next().unwrap().to_string();

    let (ok, shown) = hub.cli(&["deadletters", "show", &id]);
    assert!(ok && shown.contains("title") && shown.contains("拒收测试"), "{shown}");
    assert!(
        !shown.contains(&ms[1].record(1)["ticket"]["reporters"][0]["phone"].as_str().unwrap()[3..]),
        "phone masked: {shown}"
    );

    // Replaying before the fix is refused again, and parked again.
    // After the fix (the platform accepts such titles now) it goes through.
    sim.set_faults(Faults::default());
    let (ok, out) = hub.cli(&["deadletters", "replay", &id]);
    assert!(ok, "{out}");
    wait_for(Duration::from_secs(20), "the replayed change on the platform", || async {
        sim.ticket(&refused_id).is_some()
    })
    .await;
    let (ok, out) = hub.cli(&["deadletters", "list"]);
    assert!(ok && out.contains("no open dead letters"), "{out}");
    let (ok, out) = hub.cli(&["deadletters", "replay", &id]);
    assert!(!ok && out.contains("already replayed"), "{out}");

    // Bad input is quarantined with a reason, inspectable and replayable.
    let ack = send_until_acknowledged(
        &client,
        &url,
        br#"{"recordId": "BAD-1", "channel": "hotline", "ticket": {"kind": "help"}}"#.to_vec(),
    )
    .await;
    assert_eq!(ack["outcome"], "quarantined", "{ack}");
    let (ok, out) = hub.cli(&["quarantine", "list"]);
    assert!(ok && out.contains("missing field"), "{out}");
    let qid = out.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    let (ok, out) = hub.cli(&["quarantine", "show", &qid]);
    assert!(ok && out.contains("BAD-1") && out.contains("reason:"), "{out}");
    let (ok, out) = hub.cli(&["quarantine", "replay", &qid]);
    assert!(!ok && out.contains("still does not map"), "{out}");

    assert!(hub.terminate().success());
    assert_no_personal_numbers(&cfg.with_extension("log"));
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
