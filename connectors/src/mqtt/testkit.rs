//! Test helpers: a fake hub, terminal-like publishers, Mosquitto brokers.
//! The brokers are real; only the hub is faked.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;

use crate::{CancellationToken, ConnectorError, Intake, IntakeError, Outcome, Submission, intake_channel};

use super::{MqttConfig, MqttConnector};

pub const MOSQUITTO: &str = "127.0.0.1:1883";

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}{}x{}x{}", std::process::id(), nanos % 1_000_000_000_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The machine's Mosquitto on 1883, started if it is not running.
pub fn system_mosquitto() -> String {
    let addr: SocketAddr = MOSQUITTO.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
        let _ = std::fs::create_dir_all("/run/mosquitto");
        let _ = Command::new("mosquitto").args(["-d", "-c", "/etc/mosquitto/mosquitto.conf"]).status();
        wait_port(addr, Duration::from_secs(5)).expect("Mosquitto on 127.0.0.1:1883 is needed for these tests");
    }
    format!("mqtt://{MOSQUITTO}")
}

fn wait_port(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("nothing listens on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A Mosquitto of the test's own, with persistence in a temporary directory,
/// run as a child process so the test can stop and restart it.
pub struct PrivateMosquitto {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateMosquitto {
    pub fn start(extra: &str) -> PrivateMosquitto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(unique("mqtt-test-"));
        std::fs::create_dir_all(&dir).unwrap();
        // Anonymous clients are let in unless `extra` says otherwise.
        let anonymous = if extra.contains("allow_anonymous") { "" } else { "allow_anonymous true\n" };
        let conf = format!(
            "listener {port} 127.0.0.1\n{anonymous}persistence true\npersistence_location {dir}/\n\
             persistence_file m.db\nautosave_interval 1\nmax_queued_messages 0\nlog_dest file {dir}/m.log\n\
             user root\n{extra}\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("m.conf"), conf).unwrap();
        let mut broker = PrivateMosquitto { port, dir, child: None };
        broker.spawn();
        broker
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("m.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (/usr/sbin/mosquitto)");
        self.child = Some(child);
        wait_port(SocketAddr::from(([127, 0, 0, 1], self.port)), Duration::from_secs(5)).unwrap();
    }

    /// SIGTERM, so that Mosquitto saves its database, then waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Deletes the saved database (while stopped): the broker forgets every session.
    pub fn forget_sessions(&self) {
        let _ = std::fs::remove_file(self.dir.join("m.db"));
    }

    pub fn start_again(&mut self) {
        self.spawn();
    }
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the fake hub does with one submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Store,
    Fail,
    /// Keep it unanswered.
    Hold,
}

/// What a fake hub saw, shareable between hubs (one store behind two connectors).
#[derive(Default)]
pub struct Store {
    /// msgId → the record's metadata, for the first (Created) submission.
    pub created: HashMap<String, Vec<(String, String)>>,
    pub duplicates: usize,
    pub failures: usize,
    pub attempts: HashMap<String, usize>,
    pub held: Vec<Submission>,
}

/// What one fake hub received: messages, and probes (msgId `probe…`), which
/// are always stored at once and kept out of the [`Store`].
#[derive(Default)]
pub struct Seen {
    pub messages: AtomicUsize,
    pub probes: AtomicUsize,
}

pub type Shared = Arc<Mutex<Store>>;

pub fn msg_id(payload: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(payload).expect("test payloads are JSON");
    value["msgId"].as_str().expect("test payloads have a msgId").to_string()
}

/// A hub that answers by `policy(msgId, attempt)` after `latency`.
pub fn fake_hub(
    store: Shared,
    latency: Duration,
    policy: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
) -> (Intake, Arc<Seen>) {
    let (intake, mut rx) = intake_channel(1024);
    let seen = Arc::new(Seen::default());
    let counter = seen.clone();
    let policy = Arc::new(policy);
    tokio::spawn(async move {
        while let Some(submission) = rx.recv().await {
            if msg_id(&submission.record.payload).starts_with("probe") {
                counter.probes.fetch_add(1, Ordering::Relaxed);
                let _ = submission.reply.send(Ok(Outcome::Duplicate));
                continue;
            }
            counter.messages.fetch_add(1, Ordering::Relaxed);
            let store = store.clone();
            let policy = policy.clone();
            let answer = async move {
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                let id = msg_id(&submission.record.payload);
                let mut s = store.lock().unwrap();
                let attempt = {
                    let n = s.attempts.entry(id.clone()).or_default();
                    *n += 1;
                    *n
                };
                let result = match policy(&id, attempt) {
                    Reply::Hold => {
                        s.held.push(submission);
                        return;
                    }
                    Reply::Fail => {
                        s.failures += 1;
                        Err(IntakeError::Store("disk full (test)".into()))
                    }
                    Reply::Store if s.created.contains_key(&id) => {
                        s.duplicates += 1;
                        Ok(Outcome::Duplicate)
                    }
                    Reply::Store => {
                        s.created.insert(id.clone(), submission.record.metadata.clone());
                        Ok(Outcome::Created { ticket_id: format!("T-{id}") })
                    }
                };
                drop(s);
                let _ = submission.reply.send(result);
            };
            if latency.is_zero() {
                answer.await;
            } else {
                tokio::spawn(answer);
            }
        }
    });
    (intake, seen)
}

/// Sends probes on `topic` until every hub got one: the connectors behind
/// them have subscribed (before that, the broker drops what is published).
pub async fn until_subscribed(terminal: &Terminal, topic: &str, hubs: &[&Arc<Seen>]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while !hubs.iter().all(|h| h.probes.load(Ordering::Relaxed) > 0) {
        assert!(Instant::now() < deadline, "connectors not subscribed after 10 s");
        terminal.send(topic, &format!("probe{n}")).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn store_all(_: &str, _: usize) -> Reply {
    Reply::Store
}

/// Test settings: quick reconnects.
pub fn config(url: &str, client_id: &str, topics: &[String]) -> MqttConfig {
    let mut config = MqttConfig::new(url, "terminal").with_client_id(client_id).with_topics(topics.iter().cloned());
    config.reconnect_initial = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(500);
    config.keep_alive = Duration::from_secs(5);
    config
}

pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), ConnectorError>>,
}

pub fn run_connector(config: MqttConfig, intake: Intake) -> Running {
    let shutdown = CancellationToken::new();
    let connector: crate::BoxedConnector = Box::new(MqttConnector::new(config).expect("valid test config"));
    let task = tokio::spawn(connector.run(intake, shutdown.clone()));
    Running { shutdown, task }
}

impl Running {
    pub async fn stop(self) -> Result<(), ConnectorError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("connector stops within 10 s").unwrap()
    }
}

/// A terminal: publishes at QoS 1 on a persistent session and, through
/// rumqttc, resends what the broker did not acknowledge.
pub struct Terminal {
    pub client: AsyncClient,
    pub acked: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Terminal {
    pub fn connect(port: u16, client_id: &str) -> Terminal {
        Terminal::connect_as(port, client_id, None)
    }

    /// A terminal that logs in with a user name and password.
    pub fn connect_as(port: u16, client_id: &str, login: Option<(&str, &str)>) -> Terminal {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        options.set_clean_session(false).set_keep_alive(Duration::from_secs(5)).set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(options, 64);
        let acked = Arc::new(AtomicUsize::new(0));
        let counter = acked.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Terminal { client, acked, task }
    }

    pub async fn send(&self, topic: &str, msg_id: &str) {
        let payload = format!(r#"{{"msgId":"{msg_id}","eventId":"W1-20250101-0001","workerId":"W1","reason":"test"}}"#);
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("event loop alive");
    }

    /// Waits until `n` publishes were acknowledged by the broker.
    pub async fn wait_acked(&self, n: usize, timeout: Duration) {
        let acked = self.acked.clone();
        wait_until(timeout, "terminal's publishes acknowledged", move || acked.load(Ordering::Relaxed) >= n).await;
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn created_ids(store: &Shared) -> HashSet<String> {
    store.lock().unwrap().created.keys().cloned().collect()
}

pub fn count_created(store: &Shared) -> usize {
    store.lock().unwrap().created.len()
}
