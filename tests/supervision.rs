//! A part of the hub that dies is run again or takes the process down, and
//! `/readyz` says which parts work: the real `hub` binary, a real taken
//! port, a real panic.

use std::time::Duration;

use e2e::*;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};

fn config(dir: &std::path::Path, db_url: &str, platform: &str, source: u16, endpoint: u16) -> std::path::PathBuf {
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

[server]
listen = "127.0.0.1:{endpoint}"

[[sources]]
name = "canon"
mapping = "canonical"
transport = "http"
listen = "127.0.0.1:{source}"
open = true
"#
        ),
    )
    .unwrap();
    path
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hub-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn readyz(client: &reqwest::Client, endpoint: u16) -> Option<(u16, serde_json::Value)> {
    let r = client.get(format!("http://127.0.0.1:{endpoint}/readyz")).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_source_on_a_taken_port_is_reported_not_ready_and_runs_once_the_port_is_free() {
    let db = TestDb::sqlite();
    let dir = temp_dir("taken-port");
    let sim = PlatformSim::new(SimConfig { token: "test-token".into(), faults: Faults::default() });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    // Someone else holds the source's port.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let endpoint = free_port();
    let cfg = config(&dir, &db.url, &server.base_url(), port, endpoint);
    let mut hub = HubProcess::start(&cfg);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    // The hub stays up, and says what is wrong.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        if let Some((503, body)) = readyz(&client, endpoint).await
            && body["connectors"]["canon"]["restarts"].as_u64() >= Some(1)
        {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "/readyz never answered 503 for the source");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report["ready"], false, "{report}");
    let reasons = report["not_ready"].to_string();
    assert!(
        reasons.contains("connector canon") && reasons.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{report}"
    );
    assert_eq!(report["store"], "ok", "{report}");
    assert_eq!(report["dispatcher"], "running", "{report}");
    let metrics = client
        .get(format!("http://127.0.0.1:{endpoint}/metrics"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hub_connector_up{source=\"canon\"} 0"), "{metrics}");
    assert!(hub.exited().is_none(), "the hub keeps running the rest");
    assert!(hub.log().contains("cannot listen on"), "the log names the port");

    // The port comes free: the source runs by itself, without a restart.
    drop(squatter);
    wait_for(Duration::from_secs(40), "/readyz answering 200", || {
        let client = client.clone();
        async move { matches!(readyz(&client, endpoint).await, Some((200, _))) }
    })
    .await;
    let m = &matters(7, 1, "PORT")[0];
    let answer = send_until_acknowledged(&client, &format!("http://127.0.0.1:{port}/records"), m.payload(1)).await;
    assert_eq!(answer["outcome"], "created", "{answer}");
    wait_for(Duration::from_secs(30), "the ticket on the platform", || async { sim.tickets().len() == 1 }).await;

    let status = hub.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_that_panics_stops_the_hub_with_code_70_and_the_next_start_delivers_everything_once() {
    let db = TestDb::sqlite();
    let dir = temp_dir("dispatcher-panic");
    // Latency: the panic lands with requests in flight.
    let sim = PlatformSim::new(SimConfig {
        token: "test-token".into(),
        faults: Faults { latency_ms: 20, ..Faults::default() },
    });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let (port, endpoint) = (free_port(), free_port());
    let cfg = config(&dir, &db.url, &server.base_url(), port, endpoint);
    let mut hub = HubProcess::start_with_env(&cfg, &[("HUB_FAULT_DISPATCHER_PANIC_AFTER", "2s")]);

    let ms = matters(11, 600, "PANIC");
    let expected: i64 = ms.iter().map(|m| m.versions).sum();
    let url = format!("http://127.0.0.1:{port}/records");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let source = {
        let (ms, url, client) = (ms.clone(), url.clone(), client.clone());
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for chunk in ms.chunks(ms.len() / 8) {
                let (chunk, url, client) = (chunk.to_vec(), url.clone(), client.clone());
                tasks.push(tokio::spawn(async move {
                    for m in chunk {
                        for v in 1..=m.versions {
                            send_until_acknowledged(&client, &url, m.payload(v)).await;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };

    let status =
        hub.wait_exit(Duration::from_secs(40)).await.expect("the hub exits by itself when its dispatcher dies");
    assert_eq!(status.code(), Some(70), "{status:?}");
    let log = hub.log();
    assert!(log.contains("the dispatcher died"), "the reason is in the log:\n{log}");
    assert!(!source.is_finished(), "the panic came while records were still arriving");

    // The service manager starts it again.
    hub.env.clear();
    hub.restart();
    source.await.unwrap();
    let caught_up = || async {
        let t = sim.tickets();
        t.len() == ms.len() && t.iter().map(|(_, r)| *r).sum::<i64>() == expected
    };
    wait_for(Duration::from_secs(90), "the platform holds every ticket at its last revision", caught_up).await;
    let status = hub.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    let stats = sim.stats();
    assert_eq!(stats.applied as i64, expected, "no change applied twice, none missing: {stats:?}");
    assert_eq!(stats.revision_gaps, 0);
    assert_no_personal_numbers(&cfg.with_extension("log"));
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_takes_the_connection_but_refuses_the_login_is_reported_not_ready() {
    let db = TestDb::sqlite();
    let dir = temp_dir("refused-login");
    let sim = PlatformSim::new(SimConfig { token: "test-token".into(), faults: Faults::default() });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let endpoint = free_port();
    let cfg = config(&dir, &db.url, &server.base_url(), free_port(), endpoint);
    // RabbitMQ answers on its port, and refuses this password.
    let exchange = format!("refused-{}", uuid::Uuid::new_v4().simple());
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[[sources]]\nname = \"hotline\"\nmapping = \"canonical\"\ntransport = \"amqp\"\nexchange = \"{exchange}\"\n\
         url = \"amqp://guest:not-the-password@127.0.0.1:5672/%2f\"\n"
    ));
    std::fs::write(&cfg, text).unwrap();
    let mut hub = HubProcess::start(&cfg);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        if let Some((503, body)) = readyz(&client, endpoint).await
            && body["connectors"]["hotline"]["state"].as_str().is_some_and(|s| s.starts_with("running, not connected"))
        {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "/readyz never said the hotline is not connected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report["brokers"]["127.0.0.1:5672 (hotline)"], "reachable", "TCP alone says nothing: {report}");
    assert!(report["not_ready"].to_string().contains("connector hotline"), "{report}");
    assert!(!report.to_string().contains("not-the-password"), "no credentials shown: {report}");
    assert_eq!(report["connectors"]["canon"]["state"], "running", "{report}");
    let metrics = client
        .get(format!("http://127.0.0.1:{endpoint}/metrics"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hub_connector_up{source=\"hotline\"} 0"), "{metrics}");
    assert!(hub.exited().is_none(), "the hub keeps running the rest");

    let status = hub.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
