//! An MQTT broker inside the hub (rumqttd), for the demo, tests, and a
//! configuration that asks for it by name (`embedded_broker`); never the
//! default, for the reasons below.
//!
//! It keeps nothing on disk. Persistent sessions and the messages queued for
//! them live in memory and vanish with the process, and rumqttd's in-memory
//! log drops its oldest segments when full, so a consumer that lags far
//! behind loses messages. Fine for the demo; a deployment that must not lose
//! terminal messages runs a durable broker (Mosquitto with `persistence
//! true`) and configures its URL instead. It also has no authentication:
//! whoever reaches its port can publish forged reports or read them all,
//! so it should listen on loopback.
//!
//! rumqttd has no shutdown: once started, the broker runs until the process
//! ends, whatever happens to the [`EmbeddedBroker`] value.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// How long [`EmbeddedBroker::start`] waits for the port to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Payloads the embedded broker accepts: well above the contract's 256 KiB,
/// so that oversized messages still reach the hub and get quarantined with a
/// reason rather than vanish at the broker.
const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    v5_addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the broker thread: {0}")]
    Thread(io::Error),
    #[error("the embedded broker did not come up on {addr}: {reason}")]
    NotStarted { addr: SocketAddr, reason: String },
}

impl EmbeddedBroker {
    /// Starts a broker with an MQTT 3.1.1 listener on `addr` and an MQTT 5
    /// listener (for shared subscriptions) on a free port of the same
    /// address, each on its own thread, and returns once both accept
    /// connections. Blocks the calling thread meanwhile (milliseconds
    /// usually, at most 5 s).
    pub fn start(addr: SocketAddr) -> Result<EmbeddedBroker, BrokerError> {
        // rumqttd only logs a failed bind from its server thread, so find out first.
        drop(TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?);
        let v5_addr = free_port(addr.ip())?;
        let config = config(addr, v5_addr);
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let mut broker = Broker::new(config);
                // Returns only if every listener failed.
                let result = broker.start().map_err(|e| e.to_string());
                let _ = done_tx.send(result);
            })
            .map_err(BrokerError::Thread)?;
        let deadline = Instant::now() + START_TIMEOUT;
        for listen in [addr, v5_addr] {
            wait_until_listening(listen, &done_rx, deadline)?;
        }
        tracing::info!(%addr, %v5_addr, "embedded mqtt broker listening (in memory: sessions vanish with the process)");
        Ok(EmbeddedBroker { addr, v5_addr })
    }

    /// Starts on `127.0.0.1:{preferred}` (1883, say) unless that port is
    /// taken, as on machines that run Mosquitto, and then on a free port.
    pub fn start_on_free_port(preferred: u16) -> Result<EmbeddedBroker, BrokerError> {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        match EmbeddedBroker::start(SocketAddr::new(loopback, preferred)) {
            Err(BrokerError::Bind { .. }) => {}
            started => return started,
        }
        // A free port can be taken again between finding and binding it: retry.
        let mut last = None;
        for _ in 0..3 {
            match EmbeddedBroker::start(free_port(loopback)?) {
                Err(e @ (BrokerError::Bind { .. } | BrokerError::NotStarted { .. })) => last = Some(e),
                started => return started,
            }
        }
        Err(last.expect("three attempts made"))
    }

    /// The MQTT 3.1.1 listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://host:port` of the MQTT 3.1.1 listener, for [`MqttConfig`](super::MqttConfig).
    pub fn url(&self) -> String {
        Self::url_for(self.addr)
    }

    /// The URL a client uses to reach a broker listening on `addr` (a
    /// wildcard address is reached over loopback).
    pub fn url_for(addr: SocketAddr) -> String {
        format!("mqtt://{}", connectable(addr))
    }

    /// The MQTT 5 listener (needed for shared subscriptions).
    pub fn v5_addr(&self) -> SocketAddr {
        self.v5_addr
    }

    /// `mqtt://host:port` of the MQTT 5 listener.
    pub fn v5_url(&self) -> String {
        format!("mqtt://{}", connectable(self.v5_addr))
    }
}

fn config(v4: SocketAddr, v5: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = |name: &str, listen| ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: connections.clone(),
    };
    Config {
        id: 0,
        router: RouterConfig {
            // ~1,900 terminals plus hubs, with room for reconnect storms.
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            max_segment_size: 4 * MAX_PAYLOAD,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server("mqtt-v4", v4))])),
        v5: Some(HashMap::from([("1".to_string(), server("mqtt-v5", v5))])),
        ..Config::default()
    }
}

/// A port that was free a moment ago on `ip`.
fn free_port(ip: IpAddr) -> Result<SocketAddr, BrokerError> {
    let probe = SocketAddr::new(ip, 0);
    let listener = TcpListener::bind(probe).map_err(|source| BrokerError::Bind { addr: probe, source })?;
    listener.local_addr().map_err(|source| BrokerError::Bind { addr: probe, source })
}

/// Where to connect to reach a listener (a wildcard address means loopback).
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

fn wait_until_listening(
    addr: SocketAddr,
    done: &mpsc::Receiver<Result<(), String>>,
    deadline: Instant,
) -> Result<(), BrokerError> {
    let target = connectable(addr);
    loop {
        match done.try_recv() {
            Ok(result) => {
                let reason = result.err().unwrap_or_else(|| "its listeners stopped (port taken?)".into());
                return Err(BrokerError::NotStarted { addr, reason });
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                return Err(BrokerError::NotStarted { addr, reason: "the broker thread died".into() });
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(BrokerError::NotStarted { addr, reason: "not accepting connections after 5 s".into() });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_port_is_refused_and_free_port_is_found() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        assert!(matches!(EmbeddedBroker::start(addr), Err(BrokerError::Bind { .. })));
        let broker = EmbeddedBroker::start_on_free_port(addr.port()).unwrap();
        assert_ne!(broker.addr().port(), addr.port());
        assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.addr().port()));
        assert!(TcpStream::connect(broker.addr()).is_ok());
        assert!(TcpStream::connect(broker.v5_addr()).is_ok());
    }

    #[test]
    fn wildcard_addresses_connect_via_loopback() {
        let a: SocketAddr = "0.0.0.0:1883".parse().unwrap();
        assert_eq!(connectable(a), "127.0.0.1:1883".parse().unwrap());
    }
}
