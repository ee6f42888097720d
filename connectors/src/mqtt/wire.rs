//! One MQTT connection, the same to the rest of the module whichever
//! protocol version it speaks: rumqttc's 3.1.1 and 5 clients have parallel
//! but distinct types.
//!
//! A [`Connection`] is used for one network connection only and then thrown
//! away. rumqttc would reconnect the same event loop, but it then carries
//! state over: PUBACKs queued for the old connection would reach the new one
//! (where, after a lost session, the broker may have given their packet ids
//! to other messages, so a stale PUBACK would acknowledge a message the hub
//! never saw), and a stashed packet-id collision survives a lost session
//! (rumqttc #1056). A fresh client per connection makes every handle to an
//! old connection fail instead: its request channel is gone.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5;

use super::config::{MAX_PACKET_V5, PROTOCOL_MAX_PACKET, Secret};

/// Which MQTT the connection speaks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Protocol {
    /// MQTT 3.1.1; the broker decides how long a persistent session lives.
    V4,
    /// MQTT 5: the session's expiry and the receive maximum (how many
    /// QoS 1 messages the broker may have unacknowledged to us) are ours.
    V5 { session_expiry: Duration, receive_maximum: u16 },
}

#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keep_alive: Duration,
    pub protocol: Protocol,
    /// Keep the session (subscriptions, unacknowledged messages) on the
    /// broker across connections.
    pub persistent: bool,
    /// PUBACKs only when [`Client::ack`] says so.
    pub manual_acks: bool,
    /// Bound of the client's request channel (acks, subscribes, publishes).
    pub request_capacity: usize,
    /// Outgoing QoS 1 publishes in flight (only the notifier publishes).
    pub outgoing_inflight: u16,
    /// TLS, trusting these PEM certificates; plain TCP when `None`.
    pub tls_roots: Option<Vec<u8>>,
    /// User name and password (empty when the URL gives only a user).
    pub credentials: Option<(String, Secret)>,
}

impl Options {
    /// Connection settings from a checked configuration.
    pub(crate) fn from_config(
        config: &super::MqttConfig,
        endpoint: super::config::Endpoint,
    ) -> Result<Options, super::ConfigError> {
        let tls_roots = config.trusted_certificates(&endpoint)?;
        let credentials = endpoint.username.map(|user| (user, endpoint.password.unwrap_or(Secret(String::new()))));
        Ok(Options {
            client_id: endpoint.client_id.unwrap_or_default(),
            host: endpoint.host,
            port: endpoint.port,
            keep_alive: config.keep_alive,
            protocol: Protocol::V4,
            persistent: true,
            manual_acks: true,
            request_capacity: 64,
            outgoing_inflight: 1,
            tls_roots,
            credentials,
        })
    }

    fn transport(&self) -> rumqttc::Transport {
        match &self.tls_roots {
            None => rumqttc::Transport::Tcp,
            Some(ca) => rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
                ca: ca.clone(),
                alpn: None,
                client_auth: None,
            }),
        }
    }
}

/// The handle that sends requests into one connection's event loop.
#[derive(Clone)]
pub(crate) enum Client {
    V4(rumqttc::AsyncClient),
    V5(v5::AsyncClient),
}

/// The request could not be queued: the connection it was for is gone (or,
/// for the `try_` calls, its request channel is full).
#[derive(Debug, thiserror::Error)]
#[error("the MQTT connection is gone or busy")]
pub(crate) struct Gone;

/// A PUBLISH received from the broker.
pub(crate) struct Delivery {
    pub topic: String,
    pub payload: Bytes,
    pub pkid: u16,
    pub dup: bool,
    pub qos: u8,
    packet: Received,
}

impl Delivery {
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn for_test(topic: &str, payload: &[u8], pkid: u16, dup: bool) -> Self {
        let mut p = rumqttc::Publish::new(topic, rumqttc::QoS::AtLeastOnce, payload.to_vec());
        p.pkid = pkid;
        p.dup = dup;
        Delivery { topic: topic.to_string(), payload: p.payload.clone(), pkid, dup, qos: 1, packet: Received::V4(p) }
    }
}

enum Received {
    V4(rumqttc::Publish),
    V5(v5::mqttbytes::v5::Publish),
}

/// What polling a connection yields, reduced to what this module acts on.
#[derive(Debug)]
pub(crate) enum Event {
    /// The broker accepted the connection.
    Connected {
        session_present: bool,
    },
    Message(Box<Delivery>),
    /// A SUBACK: per filter, the granted QoS or why it was refused.
    Subscribed {
        granted: Vec<Result<u8, String>>,
    },
    /// Our QoS 1 PUBLISH went out under this packet id.
    Published {
        pkid: u16,
    },
    /// The broker's PUBACK for our PUBLISH.
    PublishAcked {
        pkid: u16,
    },
    /// Our DISCONNECT went out.
    Disconnected,
    Other,
}

impl std::fmt::Debug for Delivery {
    /// Never the payload, nor the topic (it names the worker).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("pkid", &self.pkid)
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// A connection failed (network, refusal, protocol error), as text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct WireError(pub String);

impl WireError {
    /// The broker answered CONNECT with a refusal; says what to check.
    fn refused(code: &str) -> WireError {
        let what = if code.contains("UserNamePassword") || code.contains("NotAuthorized") {
            "the broker refused the hub's user name or password (the source's url or HUB_MQTT_USERNAME / HUB_MQTT_PASSWORD)"
        } else {
            "the broker refused the connection"
        };
        WireError(format!("{what}: {code}"))
    }
}

pub(crate) struct Connection {
    client: Client,
    events: Events,
}

enum Events {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<v5::EventLoop>),
}

impl Connection {
    /// Creates the client; nothing touches the network until [`poll`](Self::poll).
    pub(crate) fn new(o: &Options) -> Self {
        let mut network = rumqttc::NetworkOptions::new();
        // PUBACKs are tiny writes: Nagle would hold each one back for the
        // previous one's TCP ack.
        network.set_tcp_nodelay(true);
        match o.protocol {
            Protocol::V4 => {
                let mut opts = rumqttc::MqttOptions::new(o.client_id.clone(), o.host.clone(), o.port);
                opts.set_keep_alive(o.keep_alive)
                    .set_clean_session(!o.persistent)
                    .set_manual_acks(o.manual_acks)
                    .set_max_packet_size(PROTOCOL_MAX_PACKET, PROTOCOL_MAX_PACKET)
                    .set_inflight(o.outgoing_inflight.max(1))
                    .set_transport(o.transport());
                if let Some((user, password)) = &o.credentials {
                    opts.set_credentials(user.clone(), password.0.clone());
                }
                let (client, mut events) = rumqttc::AsyncClient::new(opts, o.request_capacity);
                events.set_network_options(network);
                Connection { client: Client::V4(client), events: Events::V4(Box::new(events)) }
            }
            Protocol::V5 { session_expiry, receive_maximum } => {
                let mut opts = v5::MqttOptions::new(o.client_id.clone(), o.host.clone(), o.port);
                opts.set_keep_alive(o.keep_alive)
                    .set_clean_start(!o.persistent)
                    .set_manual_acks(o.manual_acks)
                    .set_receive_maximum(Some(receive_maximum.max(1)))
                    .set_max_packet_size(Some(MAX_PACKET_V5 as u32))
                    .set_outgoing_inflight_upper_limit(o.outgoing_inflight.max(1))
                    .set_network_options(network)
                    .set_transport(o.transport());
                if let Some((user, password)) = &o.credentials {
                    opts.set_credentials(user.clone(), password.0.clone());
                }
                if o.persistent {
                    let secs = u32::try_from(session_expiry.as_secs()).unwrap_or(u32::MAX).max(1);
                    opts.set_session_expiry_interval(Some(secs));
                }
                let (client, events) = v5::AsyncClient::new(opts, o.request_capacity);
                Connection { client: Client::V5(client), events: Events::V5(Box::new(events)) }
            }
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Drives the connection: connects on the first call, then yields what
    /// happens. After an error the connection is finished: drop it.
    pub(crate) async fn poll(&mut self) -> Result<Event, WireError> {
        match &mut self.events {
            Events::V4(events) => {
                use rumqttc::{Event as E, Outgoing, Packet};
                match events.poll().await.map_err(|e| match e {
                    rumqttc::ConnectionError::ConnectionRefused(code) => WireError::refused(&format!("{code:?}")),
                    e => WireError(e.to_string()),
                })? {
                    E::Incoming(Packet::ConnAck(c)) => Ok(Event::Connected { session_present: c.session_present }),
                    E::Incoming(Packet::Publish(p)) => Ok(Event::Message(Box::new(Delivery {
                        topic: p.topic.clone(),
                        payload: p.payload.clone(),
                        pkid: p.pkid,
                        dup: p.dup,
                        qos: p.qos as u8,
                        packet: Received::V4(p),
                    }))),
                    E::Incoming(Packet::SubAck(s)) => Ok(Event::Subscribed {
                        granted: s
                            .return_codes
                            .iter()
                            .map(|c| match c {
                                rumqttc::SubscribeReasonCode::Success(q) => Ok(*q as u8),
                                rumqttc::SubscribeReasonCode::Failure => Err("failure".to_string()),
                            })
                            .collect(),
                    }),
                    E::Incoming(Packet::PubAck(a)) => Ok(Event::PublishAcked { pkid: a.pkid }),
                    E::Outgoing(Outgoing::Publish(pkid)) => Ok(Event::Published { pkid }),
                    E::Outgoing(Outgoing::Disconnect) => Ok(Event::Disconnected),
                    _ => Ok(Event::Other),
                }
            }
            Events::V5(events) => {
                use rumqttc::Outgoing;
                use v5::Event as E;
                use v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
                match events.poll().await.map_err(|e| match e {
                    v5::ConnectionError::ConnectionRefused(code) => WireError::refused(&format!("{code:?}")),
                    e => WireError(e.to_string()),
                })? {
                    E::Incoming(Packet::ConnAck(c)) => Ok(Event::Connected { session_present: c.session_present }),
                    E::Incoming(Packet::Publish(p)) => Ok(Event::Message(Box::new(Delivery {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.clone(),
                        pkid: p.pkid,
                        dup: p.dup,
                        qos: p.qos as u8,
                        packet: Received::V5(p),
                    }))),
                    E::Incoming(Packet::SubAck(s)) => Ok(Event::Subscribed {
                        granted: s
                            .return_codes
                            .iter()
                            .map(|c| match c {
                                SubscribeReasonCode::Success(q) => Ok(*q as u8),
                                refused => Err(format!("{refused:?}")),
                            })
                            .collect(),
                    }),
                    E::Incoming(Packet::PubAck(a)) => Ok(Event::PublishAcked { pkid: a.pkid }),
                    E::Outgoing(Outgoing::Publish(pkid)) => Ok(Event::Published { pkid }),
                    E::Outgoing(Outgoing::Disconnect) => Ok(Event::Disconnected),
                    _ => Ok(Event::Other),
                }
            }
        }
    }
}

impl Client {
    /// Queues the PUBACK for a delivery of this client's connection without
    /// waiting; fails if the request channel is full or the connection gone.
    pub(crate) fn try_ack(&self, delivery: &Delivery) -> Result<(), Gone> {
        match (self, &delivery.packet) {
            (Client::V4(c), Received::V4(p)) => c.try_ack(p).map_err(|_| Gone),
            (Client::V5(c), Received::V5(p)) => c.try_ack(p).map_err(|_| Gone),
            _ => Err(Gone),
        }
    }

    /// Subscribes to all filters at QoS 1, without waiting.
    pub(crate) fn try_subscribe(&self, filters: &[String]) -> Result<(), Gone> {
        match self {
            Client::V4(c) => c
                .try_subscribe_many(
                    filters.iter().map(|f| rumqttc::SubscribeFilter::new(f.clone(), rumqttc::QoS::AtLeastOnce)),
                )
                .map_err(|_| Gone),
            Client::V5(c) => c
                .try_subscribe_many(
                    filters.iter().map(|f| v5::mqttbytes::v5::Filter::new(f.clone(), v5::mqttbytes::QoS::AtLeastOnce)),
                )
                .map_err(|_| Gone),
        }
    }

    /// Publishes at QoS 1, retain false, without waiting.
    pub(crate) fn try_publish(&self, topic: &str, payload: Bytes) -> Result<(), Gone> {
        match self {
            Client::V4(c) => c.try_publish(topic, rumqttc::QoS::AtLeastOnce, false, payload).map_err(|_| Gone),
            Client::V5(c) => c.try_publish(topic, v5::mqttbytes::QoS::AtLeastOnce, false, payload).map_err(|_| Gone),
        }
    }

    /// Queues a DISCONNECT behind whatever is already queued (acks go first).
    pub(crate) fn try_disconnect(&self) -> Result<(), Gone> {
        match self {
            Client::V4(c) => c.try_disconnect().map_err(|_| Gone),
            Client::V5(c) => c.try_disconnect().map_err(|_| Gone),
        }
    }
}
