//! What the hub knows about its own parts while it runs: each connector's
//! state and restarts, whether intake and the dispatcher are alive. `/readyz`
//! and `/metrics` read it; the supervisor writes it. A part that is down is
//! shown as down: a constant "ok" would let a dead hub look alive.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use connectors::{Link, LinkState};
use serde::Serialize;

use crate::store::Store;

/// A connector as the supervisor last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorState {
    /// Its `run` is going (it may be reconnecting inside).
    Running,
    /// It stopped with this error and runs again after a pause.
    Restarting { error: String },
    /// It stopped and is not run again: the hub is stopping, or the
    /// connector was handed over as an instance that cannot be made again.
    Stopped { error: Option<String> },
}

#[derive(Clone, Debug)]
struct ConnectorHealth {
    state: ConnectorState,
    restarts: u64,
    /// What the connector says of its connection to its source.
    link: Link,
}

impl ConnectorHealth {
    /// Running, and not saying its connection is down: a broker that takes
    /// TCP but refuses the login is not "up".
    fn up(&self) -> bool {
        self.state == ConnectorState::Running && !matches!(self.link.state(), LinkState::Down(_))
    }
}

/// Intake and the dispatcher: either alive, or dead with a reason (the
/// process is then on its way down, see `Hub::died`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Dead(String),
}

#[derive(Default)]
pub struct Health {
    connectors: Mutex<BTreeMap<String, ConnectorHealth>>,
    tasks: Mutex<BTreeMap<&'static str, TaskState>>,
}

impl Health {
    pub fn connector(&self, name: &str, state: ConnectorState) {
        let mut map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(name.to_string()).or_insert(ConnectorHealth {
            state: state.clone(),
            restarts: 0,
            link: Link::default(),
        });
        if matches!(state, ConnectorState::Restarting { .. }) {
            entry.restarts += 1;
        }
        entry.state = state;
    }

    /// The link the connector `name` reports its connection on (made on
    /// first use; the supervisor hands it to each run of the connector).
    pub fn link(&self, name: &str) -> Link {
        let mut map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string())
            .or_insert(ConnectorHealth {
                state: ConnectorState::Stopped { error: None },
                restarts: 0,
                link: Link::default(),
            })
            .link
            .clone()
    }

    pub fn connector_state(&self, name: &str) -> Option<ConnectorState> {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).map(|c| c.state.clone())
    }

    /// Each connector as last seen, by name: its state, restarts and what
    /// it says of its link (the admin API's sources).
    pub fn connectors(&self) -> BTreeMap<String, (ConnectorState, u64, LinkState)> {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(name, c)| (name.clone(), (c.state.clone(), c.restarts, c.link.state()))).collect()
    }

    pub fn task(&self, name: &'static str, state: TaskState) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).insert(name, state);
    }

    /// `hub_connector_up{source}` (1 running, 0 not) and
    /// `hub_connector_restarts_total{source}` as Prometheus text.
    pub fn render_metrics(&self) -> String {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from("# TYPE hub_connector_up gauge\n");
        for (name, c) in map.iter() {
            let up = u8::from(c.up());
            let _ = writeln!(out, "hub_connector_up{{source=\"{name}\"}} {up}");
        }
        out.push_str("# TYPE hub_connector_restarts_total counter\n");
        for (name, c) in map.iter() {
            let _ = writeln!(out, "hub_connector_restarts_total{{source=\"{name}\"}} {}", c.restarts);
        }
        out
    }

    /// Checks every part now: the store answers a query, each broker
    /// accepts a connection, each connector and task runs.
    pub async fn readiness(&self, store: &Store, brokers: &[Broker], delivery_paused: bool) -> Readiness {
        let mut not_ready = Vec::new();
        let store_state = match tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(store.pool())).await
        {
            Ok(Ok(_)) => "ok".to_string(),
            Ok(Err(e)) => format!("not answering: {e}"),
            Err(_) => format!("not answering within {PROBE_TIMEOUT:?}"),
        };
        if store_state != "ok" {
            not_ready.push(format!("store: {store_state}"));
        }
        let mut broker_states = BTreeMap::new();
        for b in brokers {
            let state = match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&b.addr)).await {
                Ok(Ok(_)) => "reachable".to_string(),
                Ok(Err(e)) => format!("unreachable: {e}"),
                Err(_) => format!("unreachable: no answer within {PROBE_TIMEOUT:?}"),
            };
            if state != "reachable" {
                not_ready.push(format!("broker {} of source {}: {state}", b.addr, b.source));
            }
            broker_states.insert(format!("{} ({})", b.addr, b.source), state);
        }
        let mut connectors = BTreeMap::new();
        for (name, c) in self.connectors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let state = match (&c.state, c.link.state()) {
                (ConnectorState::Running, LinkState::Down(reason)) => format!("running, not connected: {reason}"),
                (ConnectorState::Running, _) => "running".to_string(),
                (ConnectorState::Restarting { error }, _) => format!("restarting after: {error}"),
                (ConnectorState::Stopped { error: None }, _) => "stopped".to_string(),
                (ConnectorState::Stopped { error: Some(e) }, _) => format!("stopped: {e}"),
            };
            if !c.up() {
                not_ready.push(format!("connector {name}: {state}"));
            }
            connectors.insert(name.clone(), ConnectorReport { state, restarts: c.restarts });
        }
        let mut tasks = BTreeMap::new();
        for (name, t) in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let state = match t {
                TaskState::Running => "running".to_string(),
                TaskState::Dead(reason) => {
                    not_ready.push(format!("{name}: {reason}"));
                    format!("dead: {reason}")
                }
            };
            tasks.insert(*name, state);
        }
        Readiness {
            ready: not_ready.is_empty(),
            not_ready,
            store: store_state,
            brokers: broker_states,
            connectors,
            intake: tasks.remove("intake").unwrap_or_else(|| "unknown".into()),
            dispatcher: tasks.remove("dispatcher").unwrap_or_else(|| "unknown".into()),
            // Not a reason to be unready: records are still taken and kept;
            // the ALARM log line and `hub_delivery_paused` call a person.
            platform: if delivery_paused { "refusing the hub's token: delivery paused" } else { "ok" },
        }
    }
}

/// How long a readiness probe waits for the store or a broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A broker a source consumes from, as `host:port` (never with credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub source: String,
    pub addr: String,
}

impl Broker {
    /// The broker of an `amqp://`, `mqtt://` (…) URL; `None` when the URL
    /// has no host.
    pub fn from_url(source: &str, url: &str) -> Option<Broker> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        if host_port.is_empty() {
            return None;
        }
        let has_port = match host_port.rfind(']') {
            Some(bracket) => host_port[bracket..].contains(':'),
            None => host_port.contains(':'),
        };
        let addr = if has_port {
            host_port.to_string()
        } else {
            let port = match scheme {
                "amqp" => 5672,
                "amqps" => 5671,
                "mqtts" | "ssl" => 8883,
                _ => 1883,
            };
            format!("{host_port}:{port}")
        };
        Some(Broker { source: source.to_string(), addr })
    }
}

/// The body of `/readyz`.
#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// One line per part that is not ready, for a person.
    pub not_ready: Vec<String>,
    pub store: String,
    pub brokers: BTreeMap<String, String>,
    pub connectors: BTreeMap<String, ConnectorReport>,
    pub intake: String,
    pub dispatcher: String,
    pub platform: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ConnectorReport {
    pub state: String,
    pub restarts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_are_named_by_host_and_port_without_credentials() {
        let b = Broker::from_url("hotline", "amqp://guest:secret@rabbit.local/%2f").unwrap();
        assert_eq!(b.addr, "rabbit.local:5672");
        assert_eq!(Broker::from_url("t", "mqtt://127.0.0.1:18830").unwrap().addr, "127.0.0.1:18830");
        assert_eq!(Broker::from_url("t", "mqtt://[::1]").unwrap().addr, "[::1]:1883");
        assert_eq!(Broker::from_url("t", "nonsense"), None);
    }

    #[test]
    fn restarts_are_counted_and_shown_as_metrics() {
        let h = Health::default();
        h.connector("canon", ConnectorState::Running);
        h.connector("canon", ConnectorState::Restarting { error: "cannot listen".into() });
        h.connector("canon", ConnectorState::Restarting { error: "cannot listen".into() });
        let text = h.render_metrics();
        assert!(text.contains("hub_connector_up{source=\"canon\"} 0"), "{text}");
        assert!(text.contains("hub_connector_restarts_total{source=\"canon\"} 2"), "{text}");
        h.connector("canon", ConnectorState::Running);
        assert!(h.render_metrics().contains("hub_connector_up{source=\"canon\"} 1"));
    }

    #[tokio::test]
    async fn a_connector_whose_broker_refuses_it_is_not_ready() {
        let h = Health::default();
        let link = h.link("terminal");
        h.connector("terminal", ConnectorState::Running);
        link.down("127.0.0.1:1883 (connection refused: not authorized)");
        assert!(h.render_metrics().contains("hub_connector_up{source=\"terminal\"} 0"));
        let db = crate::store::testing::TestDb::sqlite();
        let store = Store::open(&db.url).await.unwrap();
        let r = h.readiness(&store, &[], false).await;
        assert!(!r.ready);
        assert!(r.not_ready[0].contains("not authorized"), "{:?}", r.not_ready);
        link.up();
        assert!(h.readiness(&store, &[], false).await.ready);
        store.close().await;
        db.cleanup().await;
    }
}
