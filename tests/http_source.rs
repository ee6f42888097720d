//! The HTTP source's door, against the real `hub` binary: bearer tokens
//! (two at once while rotating), the body limit, slow clients and the cap on
//! connections.

use std::time::{Duration, Instant};

use e2e::*;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OLD: &str = "old-token-0123456789abcdef";
const NEW: &str = "new-token-fedcba9876543210";

struct Door {
    hub: HubProcess,
    db: TestDb,
    server: simulators::platform::ServerHandle,
    dir: std::path::PathBuf,
    port: u16,
}

impl Door {
    async fn open(name: &str, extra: &str) -> Door {
        let db = TestDb::sqlite();
        let dir = std::env::temp_dir().join(format!("hub-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let sim = PlatformSim::new(SimConfig { token: "test-token".into(), faults: Faults::default() });
        let server = sim.bind("127.0.0.1:0").await.unwrap();
        let port = free_port();
        let cfg = dir.join("hub.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"
[store]
url = "{}"

[platform]
url = "{}"
token = "test-token"

[intake]
max_payload_bytes = 4096

[[sources]]
name = "canon"
mapping = "canonical"
transport = "http"
listen = "127.0.0.1:{port}"
tokens = ["{OLD}", "{NEW}"]
{extra}
"#,
                db.url,
                server.base_url()
            ),
        )
        .unwrap();
        let hub = HubProcess::start(&cfg);
        wait_for(Duration::from_secs(30), "the source listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        Door { hub, db, server, dir, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/records", self.port)
    }

    async fn raw_records(&self) -> Vec<(String, i64)> {
        let store = hub::store::Store::open(&self.db.url).await.unwrap();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT outcome, CAST(LENGTH(payload) AS BIGINT) FROM raw_records ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        store.close().await;
        rows
    }

    async fn close(mut self) {
        let status = self.hub.terminate();
        assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
        assert_no_personal_numbers(&self.hub.config.with_extension("log"));
        let log = self.hub.log();
        assert!(!log.contains(OLD) && !log.contains(NEW), "no token in the log");
        self.server.stop().await;
        self.db.cleanup().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn post(client: &reqwest::Client, url: &str, auth: Option<&str>, body: Vec<u8>) -> (u16, serde_json::Value) {
    let mut request = client.post(url).header("content-type", "application/json").body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_token_of_the_source_is_let_in_and_old_and_new_work_while_rotating() {
    let door = Door::open("http-tokens", "").await;
    let client = reqwest::Client::new();
    let ms = matters(21, 2, "TOKEN");
    let url = door.url();

    let (status, body) = post(&client, &url, None, ms[0].payload(1)).await;
    assert_eq!(status, 401, "no token: {body}");
    for wrong in ["Bearer not-a-token-of-this-source", "Bearer old-token-0123456789abcde", &format!("Basic {OLD}")] {
        let (status, body) = post(&client, &url, Some(wrong), ms[0].payload(1)).await;
        assert_eq!(status, 401, "{wrong}: {body}");
    }
    // A stranger's "version + 1" changes nothing.
    let (status, _) = post(&client, &url, Some("Bearer wrong-token-0123456789"), ms[0].payload(2)).await;
    assert_eq!(status, 401);
    assert!(door.raw_records().await.is_empty(), "nothing refused is stored");

    let (status, body) = post(&client, &url, Some(&format!("Bearer {OLD}")), ms[0].payload(1)).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("created")), "{body}");
    let (status, body) = post(&client, &url, Some(&format!("bearer {NEW}")), ms[1].payload(1)).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("created")), "{body}");
    assert_eq!(door.raw_records().await.len(), 2);
    door.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_413_and_nothing_of_it_is_stored() {
    let door = Door::open("http-limit", "").await;
    let client = reqwest::Client::new();
    let auth = format!("Bearer {OLD}");
    // Valid JSON, 4097 bytes and more: with a Content-Length…
    let mut big = b"{\"recordId\":\"BIG-1\",\"version\":1,\"pad\":\"".to_vec();
    big.resize(8192, b'x');
    big.extend_from_slice(b"\"}");
    let (status, body) = post(&client, &door.url(), Some(&auth), big.clone()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("larger than 4096 bytes"), "{body}");
    // …and streamed without one (chunked).
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", door.port)).await.unwrap();
    let mut request = format!(
        "POST /records HTTP/1.1\r\nhost: x\r\n{}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        format_args!("authorization: {auth}")
    )
    .into_bytes();
    for chunk in big.chunks(1000) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The hub may answer and close before it has read everything.
    let _ = stream.write_all(&request).await;
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.expect("an answer").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A body at the limit is taken.
    let m = &matters(22, 1, "LIMIT")[0];
    let small = m.payload(1);
    assert!(small.len() <= 4096);
    let (status, body) = post(&client, &door.url(), Some(&auth), small.clone()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("created")), "{body}");
    assert_eq!(door.raw_records().await, vec![("created".to_string(), small.len() as i64)], "only the small one");
    door.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_cannot_hold_the_connections() {
    let door =
        Door::open("http-slow", "header_timeout = \"1s\"\nrequest_timeout = \"1s\"\nmax_connections = 2\n").await;
    let addr = ("127.0.0.1", door.port);

    // Headers, then a body that never comes: 408.
    let mut slow_body = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /records HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {OLD}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let n =
        tokio::time::timeout(Duration::from_secs(5), slow_body.read(&mut answer)).await.expect("an answer").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Two clients that never finish their headers take both connections…
    let mut squatters = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /records HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        squatters.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // …so a real source waits, until the header timeout closes them.
    let started = Instant::now();
    let client = reqwest::Client::new();
    let m = &matters(23, 1, "SLOW")[0];
    let (status, body) = post(&client, &door.url(), Some(&format!("Bearer {NEW}")), m.payload(1)).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("created")), "{body}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "the cap held the third connection back: {waited:?}");
    for mut s in squatters {
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.expect("closed by the hub");
        assert!(matches!(closed, Ok(0) | Err(_)) || buf.starts_with(b"HTTP/1.1 408"), "{closed:?}");
    }
    assert_eq!(door.raw_records().await.len(), 1);
    door.close().await;
}
