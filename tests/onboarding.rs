//! Onboarding: a fifth, made-up agency (a 12348 legal-aid line) that sends
//! JSON over AMQP joins with its mapping file and a `[[sources]]` entry in
//! the config. No code knows it.

use std::time::Duration;

use e2e::*;
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use simulators::platform::{PlatformSim, SimConfig};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_agency_joins_with_a_mapping_file_and_a_config_entry() {
    let sfx = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let (exchange, queue) = (format!("legalaid.cases.{sfx}"), format!("hub.legalaid.{sfx}"));
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-onboarding-{sfx}"));
    std::fs::create_dir_all(&dir).unwrap();
    let onboarding = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/samples/onboarding");
    let sim = PlatformSim::new(SimConfig::new("test-token"));
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let cfg = dir.join("hub.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[store]
url = "{db}"
[platform]
url = "{platform}"
token = "test-token"

[[sources]]
name = "legal-aid"
mapping = "{mapping}"
transport = "amqp"
url = "{AMQP_URL}"
exchange = "{exchange}"
queue = "{queue}"
"#,
            db = db.url,
            platform = server.base_url(),
            mapping = onboarding.join("legal-aid-12348.toml").display(),
        ),
    )
    .unwrap();
    let check = std::process::Command::new(hub_binary()).args(["check", "--config"]).arg(&cfg).output().unwrap();
    assert!(check.status.success(), "hub check: {}", String::from_utf8_lossy(&check.stderr));

    let amqp = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .unwrap();
    let hub = HubProcess::start(&cfg);

    let good = std::fs::read(onboarding.join("legal-aid-12348.json")).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let no_consent = text.replace("\"consent\": true", "\"consent\": false").replace("2024091301", "2024091302");
    // Another matter entirely (else duplicate detection would rightly join it to the first).
    let second = text
        .replace("2024091301", "2024091303")
        .replace("\"WAGE\"", "\"SOMETHING-NEW\"")
        .replace("农民工六人被拖欠工资三个月，请求法律援助", "楼上邻居深夜装修噪音扰民，想咨询如何维权")
        .replace("工地位于东丰县东丰镇，包工头失联。", "多次协商无果。")
        .replace("220421100", "220402002")
        .replace("东丰镇", "向阳街道")
        .replace("建设街", "人民大路")
        .replace("139-0437-0022", "135-0437-5566")
        .replace("220402197001011236", "")
        .replace("\"孙\"", "\"赵\"");
    let publish = |body: Vec<u8>| {
        let (channel, exchange) = (channel.clone(), exchange.clone());
        async move {
            let props = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2);
            channel
                .basic_publish(
                    exchange.as_str().into(),
                    "case.referred".into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    // The hub declares its queue when it starts: publish until the first case is there.
    wait_for(Duration::from_secs(30), "the legal-aid case on the platform", || {
        let (publish, good, sim) = (&publish, good.clone(), &sim);
        async move {
            if sim.tickets().is_empty() {
                publish(good).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            !sim.tickets().is_empty()
        }
    })
    .await;
    publish(no_consent.into_bytes()).await;
    publish(second.into_bytes()).await;
    wait_for(Duration::from_secs(30), "the second case", || async { sim.tickets().len() == 2 }).await;

    let store = hub::store::Store::open(&db.url).await.unwrap();
    let counts = store.source_counts().await.unwrap();
    let c = &counts["legal-aid"];
    assert_eq!((c.created, c.quarantined), (2, 1), "{c:?}");
    let held = store.quarantined(true).await.unwrap();
    assert!(held[0].reason.contains("did not consent"), "{:?}", held[0].reason);
    store.close().await;

    let first = sim.tickets().into_iter().map(|(id, _)| sim.ticket(&id).unwrap()).collect::<Vec<_>>();
    let bodies: Vec<&serde_json::Value> = first.iter().map(|t| &t.body).collect();
    let wage = bodies.iter().find(|b| b["category"] == "0604").expect("the WAGE case as 0604");
    assert_eq!(
        (&wage["sources"][0]["system"], &wage["sources"][0]["channel"]),
        (&"legal-aid".into(), &"hotline".into()),
        "{wage}"
    );
    assert_eq!(wage["kind"], "help");
    assert!(wage["title"].as_str().unwrap().starts_with("12348 "), "{wage}");
    assert!(bodies.iter().any(|b| b["category"] == "9999"), "an unknown matter maps to the default");

    let mut hub = hub;
    assert!(hub.terminate().success());
    assert_no_personal_numbers(&cfg.with_extension("log"));
    let _ = channel.queue_delete(queue.as_str().into(), Default::default()).await;
    let _ = channel.queue_delete(format!("{queue}.dead").as_str().into(), Default::default()).await;
    let _ = channel.exchange_delete(exchange.as_str().into(), Default::default()).await;
    let _ = channel.exchange_delete(format!("{queue}.dlx").as_str().into(), Default::default()).await;
    let _ = amqp.close(0, "done".into()).await;
    server.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
