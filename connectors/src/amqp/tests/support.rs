//! What the broker tests share: unique names, a fake hub, publishing and
//! inspecting queues with plain lapin, and closing a connection the way an
//! operator would (`rabbitmqctl close_connection`).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::{mpsc, oneshot};

use crate::amqp::AmqpConfig;
use crate::{IntakeError, Outcome, RawRecord, Submission};

pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Shows the connector's log in a test's output (`RUST_LOG` filters it).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "connectors=info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// `prefix-xxxxxxxx`: tests run in parallel against one broker.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A config with unique names and short waits, consuming `test.{name}.#`.
pub fn test_config(name: &str) -> AmqpConfig {
    let id = unique(name);
    let mut config = AmqpConfig::new(URL, "hotline", format!("{id}.orders"), format!("hub.{id}"));
    config.binding_keys = vec!["order.#".into()];
    config.connection_name = format!("hub-{id}");
    config.reconnect_initial = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(500);
    config.requeue_delay = Duration::from_millis(50);
    config
}

/// (record id, version).
pub type Key = (String, Option<i64>);

/// What the fake hub saw.
#[derive(Default)]
pub struct HubState {
    /// (record id, version) → payload, the first time it was stored.
    pub stored: Mutex<HashMap<Key, Vec<u8>>>,
    /// Every record as received, in order.
    pub records: Mutex<Vec<RawRecord>>,
    /// Answered `Duplicate`, i.e. redeliveries of stored records.
    pub duplicates: AtomicUsize,
    /// Answered `Err(Store)`.
    pub failures: AtomicUsize,
    /// Ids whose first attempt fails with `IntakeError::Store`.
    pub fail_first: Mutex<HashSet<String>>,
    /// While set, submissions are kept unanswered in `held`.
    pub hold: AtomicBool,
    pub held: Mutex<Vec<Submission>>,
    /// How long each commit takes (answers still come concurrently).
    pub commit_delay: Mutex<Duration>,
}

impl HubState {
    pub fn stored_count(&self) -> usize {
        self.stored.lock().unwrap().len()
    }

    pub fn seen(&self) -> usize {
        self.records.lock().unwrap().len()
    }
}

/// Starts a fake hub that answers like the real one: `Created` the first
/// time an (id, version) is seen, `Duplicate` after.
pub fn fake_hub(mut rx: mpsc::Receiver<Submission>) -> Arc<HubState> {
    let state = Arc::new(HubState::default());
    let hub = state.clone();
    tokio::spawn(async move {
        while let Some(submission) = rx.recv().await {
            hub.records.lock().unwrap().push(submission.record.clone());
            if hub.hold.load(Ordering::SeqCst) {
                hub.held.lock().unwrap().push(submission);
                continue;
            }
            let delay = *hub.commit_delay.lock().unwrap();
            if delay.is_zero() {
                answer(&hub, submission);
            } else {
                let hub = hub.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    answer(&hub, submission);
                });
            }
        }
    });
    state
}

fn answer(hub: &HubState, Submission { record, reply }: Submission) {
    let id = record.record_id.clone().unwrap_or_default();
    if hub.fail_first.lock().unwrap().remove(&id) {
        hub.failures.fetch_add(1, Ordering::SeqCst);
        let _ = reply.send(Err(IntakeError::Store("disk full (test)".into())));
        return;
    }
    let outcome = match hub.stored.lock().unwrap().entry((id.clone(), record.version)) {
        Entry::Occupied(_) => {
            hub.duplicates.fetch_add(1, Ordering::SeqCst);
            Outcome::Duplicate
        }
        Entry::Vacant(slot) => {
            slot.insert(record.payload.to_vec());
            Outcome::Created { ticket_id: format!("T-{id}") }
        }
    };
    let _ = reply.send(Ok(outcome));
}

/// Stops holding and answers what was held; returns how many.
pub fn release_held(hub: &HubState) -> usize {
    hub.hold.store(false, Ordering::SeqCst);
    let held: Vec<Submission> = hub.held.lock().unwrap().drain(..).collect();
    let n = held.len();
    for submission in held {
        answer(hub, submission);
    }
    n
}

/// Drops the held submissions: their submitters see `ShuttingDown`.
pub fn drop_held(hub: &HubState) -> Vec<oneshot::Sender<Result<Outcome, IntakeError>>> {
    hub.held.lock().unwrap().drain(..).map(|s| s.reply).collect()
}

pub async fn connect(name: &str) -> Connection {
    Connection::connect(URL, ConnectionProperties::default().with_connection_name(unique(name).into()))
        .await
        .expect("RabbitMQ at 127.0.0.1:5672 (start it with `rabbitmq-server -detached`)")
}

pub async fn confirming_channel(connection: &Connection) -> Channel {
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
}

/// A message as the agencies publish it.
pub struct Message {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub encoding: Option<String>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn order(id: &str, version: i64) -> Self {
        Message {
            routing_key: if version == 1 { "order.created" } else { "order.updated" }.into(),
            message_id: Some(format!("{id}:{version}")),
            content_type: Some("application/json".into()),
            encoding: Some("utf-8".into()),
            body: format!(r#"{{"orderNo":"{id}","version":{version}}}"#).into_bytes(),
        }
    }
}

/// Publishes persistent messages and waits for the broker's confirms.
pub async fn publish(channel: &Channel, exchange: &str, messages: &[Message]) {
    for m in messages {
        let mut properties = BasicProperties::default().with_delivery_mode(2).with_timestamp(1_714_500_000);
        if let Some(id) = &m.message_id {
            properties = properties.with_message_id(id.as_str().into());
        }
        if let Some(t) = &m.content_type {
            properties = properties.with_content_type(t.as_str().into());
        }
        if let Some(e) = &m.encoding {
            properties = properties.with_content_encoding(e.as_str().into());
        }
        let options = BasicPublishOptions { mandatory: true, ..Default::default() };
        let confirm = channel
            .basic_publish(exchange.into(), m.routing_key.as_str().into(), options, &m.body, properties)
            .await
            .unwrap();
        // A dropped confirm is still awaited by `wait_for_confirms` below.
        drop(confirm);
    }
    let returned = channel.wait_for_confirms().await.unwrap();
    assert!(returned.is_empty(), "{} messages were unroutable", returned.len());
}

/// Ready messages and consumers of a queue, by a passive declare (on a
/// channel of its own: a passive declare of a missing queue closes it).
pub async fn queue_counts(connection: &Connection, queue: &str) -> Option<(u32, u32)> {
    let channel = connection.create_channel().await.ok()?;
    let options = QueueDeclareOptions { passive: true, ..Default::default() };
    let q = channel.queue_declare(queue.into(), options, FieldTable::default()).await.ok()?;
    let _ = channel.close(200, "OK".into()).await;
    Some((q.message_count(), q.consumer_count()))
}

/// Waits until `queue` exists and has a consumer: the connector is up.
pub async fn wait_consuming(connection: &Connection, queue: &str) {
    wait_for("the connector to consume", Duration::from_secs(10), || async {
        queue_counts(connection, queue).await.is_some_and(|(_, consumers)| consumers > 0)
    })
    .await;
}

pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deletes what a test declared when dropped, so also when the test
/// fails (on a thread of its own: `Drop` cannot await).
pub struct Cleanup {
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Cleanup {
    pub fn new(queues: &[&str], exchanges: &[&str]) -> Self {
        let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        Cleanup { queues: owned(queues), exchanges: owned(exchanges) }
    }

    /// The queues and exchanges the connector declares for `config`.
    pub fn of(config: &AmqpConfig) -> Self {
        let mut exchanges = vec![config.exchange.clone()];
        exchanges.extend(config.dead_letter_exchange.clone());
        Cleanup { queues: vec![config.queue.clone(), config.dead_letter_queue()], exchanges }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (queues, exchanges) = (std::mem::take(&mut self.queues), std::mem::take(&mut self.exchanges));
        let deleting = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let Ok(connection) = Connection::connect(URL, ConnectionProperties::default()).await else { return };
                let Ok(channel) = connection.create_channel().await else { return };
                for queue in queues {
                    let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
                }
                for exchange in exchanges {
                    let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
                }
                let _ = connection.close(200, "OK".into()).await;
            });
        });
        let _ = deleting.join();
    }
}

/// Closes, as an operator would, every broker connection whose client
/// properties carry `connection_name`. Returns how many it closed.
pub async fn rabbitmqctl_close(connection_name: &str) -> usize {
    let name = connection_name.to_string();
    tokio::task::spawn_blocking(move || {
        let listing = std::process::Command::new(rabbitmqctl())
            .args(["list_connections", "-q", "--no-table-headers", "pid", "client_properties"])
            .output()
            .expect("rabbitmqctl");
        assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
        let pids: Vec<String> = listing
            .lines()
            .filter(|line| line.contains(&format!("\"{name}\"")))
            .filter_map(|line| line.split_whitespace().next().map(str::to_string))
            .collect();
        for pid in &pids {
            let closed = std::process::Command::new(rabbitmqctl())
                .args(["close_connection", pid, "closed by the test"])
                .output()
                .expect("rabbitmqctl");
            assert!(closed.status.success(), "{}", String::from_utf8_lossy(&closed.stderr));
        }
        pids.len()
    })
    .await
    .unwrap()
}

fn rabbitmqctl() -> &'static str {
    if std::path::Path::new("/usr/sbin/rabbitmqctl").exists() { "/usr/sbin/rabbitmqctl" } else { "rabbitmqctl" }
}

/// A TCP proxy in front of the broker that a test can take down: while
/// down, connections are refused at once and the open ones are cut, as if
/// the broker had died.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Mutex<crate::CancellationToken>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(up: bool) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(up));
        let cut = Arc::new(Mutex::new(crate::CancellationToken::new()));
        let (is_up, cuts) = (up.clone(), cut.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !is_up.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let cut = cuts.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut broker) = tokio::net::TcpStream::connect("127.0.0.1:5672").await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => {}
                        _ = cut.cancelled() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut, task }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            let mut cut = self.cut.lock().unwrap();
            cut.cancel();
            *cut = crate::CancellationToken::new();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set_up(false);
        self.task.abort();
    }
}
