//! Changes the platform refuses: parked, listed and replayed with the CLI.

use std::time::Duration;

use connectors::Outcome;
use e2e::*;
use hub::Hub;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig, TitleAnswer};

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
    // Masked by field: the reporter's name too, in the change and in the ticket.
    let name = ms[1].record(1)["ticket"]["reporters"][0]["name"].as_str().unwrap().to_string();
    assert!(!shown.contains(&name), "name masked: {shown}");
    let (ok, ticket) = hub.cli(&["ticket", "show", &refused_id]);
    assert!(ok && ticket.contains("拒收测试") && !ticket.contains(&name), "{ticket}");
    let (ok, ticket) = hub.cli(&["ticket", "show", &refused_id, "--reveal"]);
    assert!(ok && ticket.contains(&name), "--reveal shows it: {ticket}");

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
    // In bulk: every open record of a source, with a summary.
    let (ok, out) = hub.cli(&["quarantine", "replay", "--all", "--system", "canon"]);
    assert!(!ok && out.contains("0 record(s) replayed, 1 still do not map"), "{out}");
    let (ok, out) = hub.cli(&["quarantine", "replay", "--all", "--system", "no-such-source"]);
    assert!(ok && out.contains("0 record(s) replayed, 0 still"), "{out}");
    let (ok, out) = hub.cli(&["deadletters", "replay", "--all"]);
    assert!(ok && out.contains("0 dead letter(s) queued again"), "{out}");
    let (ok, out) = hub.cli(&["quarantine", "replay"]);
    assert!(!ok && out.contains("<ID>"), "{out}");

    assert!(hub.terminate().success());
    assert_no_personal_numbers(&cfg.with_extension("log"));
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every 4xx without a rule of its own (404, 405, 410, 413, 415…) is the
/// platform's last word on a change: it is parked with the answer, asked
/// once, and the ticket's later revisions go on without it.
#[tokio::test]
async fn other_permanent_refusals_are_dead_lettered_and_later_revisions_follow() {
    let db = TestDb::sqlite();
    let statuses = [404u16, 405, 410, 413, 415];
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults {
            answer_by_title: statuses
                .iter()
                .map(|s| TitleAnswer { title_contains: format!("回答{s}"), status: *s })
                .collect(),
            ..Faults::default()
        },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let intake = hub.intake();
    let ms = matters(51, statuses.len(), "PERM");
    let mut ids = Vec::new();
    for (m, s) in ms.iter().zip(statuses) {
        let mut r = m.record(1);
        r["ticket"]["title"] = format!("回答{s}的工单").into();
        let Outcome::Created { ticket_id } = intake.submit(record(r.to_string().into_bytes())).await.unwrap() else {
            panic!("not created")
        };
        ids.push(ticket_id);
    }
    wait_for(Duration::from_secs(20), "every permanent refusal parked", || async {
        hub.store.dead_letters(false).await.unwrap().len() == statuses.len()
    })
    .await;
    let mut parked: Vec<(i64, String)> =
        hub.store.dead_letters(false).await.unwrap().into_iter().map(|d| (d.status_code, d.response)).collect();
    parked.sort();
    for ((code, answer), s) in parked.iter().zip(statuses) {
        assert_eq!(*code, i64::from(s));
        assert!(answer.contains(&format!("answered {s}")), "the platform's answer is kept: {answer}");
    }

    // The next version of each record has an ordinary title: it is not held
    // back behind the refused revision.
    for m in &ms {
        assert!(matches!(intake.submit(record(m.payload(2))).await.unwrap(), Outcome::Updated { .. }));
    }
    wait_for(Duration::from_secs(20), "the later revisions delivered", || async {
        hub.store.outbox_depth().await.unwrap() == 0
            && ids.iter().all(|id| sim.ticket(id).is_some_and(|t| t.revision == 2))
    })
    .await;
    assert_eq!(sim.stats().forced_answers, statuses.len() as u64, "each refusal asked once, never retried");
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}

/// A correction replayed after the ticket moved on is its newest revision:
/// it reaches the platform (not answered `409` as stale and lost) and stays
/// in the ticket.
#[tokio::test]
async fn a_replayed_correction_reaches_the_platform_after_later_revisions() {
    let db = TestDb::sqlite();
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults { reject_title_contains: Some("拒收".into()), ..Faults::default() },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let hub = Hub::start_with(settings(&db.url, &server.base_url()), canonical_mappings(), vec![]).await.unwrap();
    let intake = hub.intake();
    let m = &matters(52, 1, "CORR")[0];
    let mut refused = m.record(1);
    refused["ticket"]["title"] = "拒收测试：标题含平台拒收的字样".into();
    let Outcome::Created { ticket_id } = intake.submit(record(refused.to_string().into_bytes())).await.unwrap() else {
        panic!("not created")
    };
    wait_for(Duration::from_secs(20), "the refusal parked", || async {
        hub.store.dead_letters(false).await.unwrap().len() == 1
    })
    .await;
    // The next version goes through before anyone looks at the dead letter.
    assert!(matches!(intake.submit(record(m.payload(2))).await.unwrap(), Outcome::Updated { .. }));
    wait_for(Duration::from_secs(20), "revision 2 on the platform", || async {
        sim.ticket(&ticket_id).is_some_and(|t| t.revision == 2)
    })
    .await;

    let dl = hub.store.dead_letters(false).await.unwrap().remove(0);
    let mut corrected = serde_json::to_value(hub.store.ticket(&ticket_id).await.unwrap().ticket).unwrap();
    corrected["description"] = "更正：井盖位置在义宁街东侧".into();
    let replayed = hub.store.replay_dead_letter(dl.id, Some(&corrected.to_string())).await.unwrap();
    assert_eq!(replayed.revision, 3);
    wait_for(Duration::from_secs(20), "the correction on the platform", || async {
        sim.ticket(&ticket_id).is_some_and(|t| t.revision == 3)
    })
    .await;
    let on_platform = sim.ticket(&ticket_id).unwrap();
    assert_eq!(on_platform.body["description"], "更正：井盖位置在义宁街东侧");
    assert_eq!(sim.stats().stale_revisions, 0, "nothing was answered 409 and counted as done");
    // The platform has it before the hub has recorded its answer.
    wait_for(Duration::from_secs(20), "the platform's answer recorded", || async {
        hub.store.ticket(&ticket_id).await.unwrap().delivered_revision == 3
    })
    .await;
    let ours = hub.store.ticket(&ticket_id).await.unwrap();
    assert_eq!((ours.ticket.revision, ours.delivered_revision), (3, 3));
    assert_eq!(ours.ticket.draft.description, "更正：井盖位置在义宁街东侧");
    hub.shutdown().await;
    server.stop().await;
    db.cleanup().await;
}
