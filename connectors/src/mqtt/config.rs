//! What the MQTT connector is told: where the broker is, who it is there, what it subscribes to.

use std::path::PathBuf;
use std::time::Duration;

/// The terminals' three upward topics (see the terminal contract); `+` stands
/// for the county code and the worker id.
pub const DEFAULT_TOPICS: [&str; 3] = ["grid/+/+/report", "grid/+/+/progress", "grid/+/+/evaluation"];

/// The contract's payload limit. Larger payloads are still handed to the hub,
/// which quarantines them with a reason: over MQTT 3.1.1 all of them, over
/// MQTT 5 those up to [`MAX_PACKET_V5`] (the broker drops larger ones for
/// the hub).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The largest packet MQTT can encode (remaining length of 268,435,455 bytes
/// plus the fixed header). An MQTT 3.1.1 client accepts anything up to this
/// because 3.1.1 cannot tell the broker a limit: a packet it refused would
/// drop the connection, come back on the next one, and block the whole
/// persistent session. On 3.1.1 capping sizes is the broker's job
/// (Mosquitto's `message_size_limit`).
pub(crate) const PROTOCOL_MAX_PACKET: usize = 268_435_455 + 5;

/// The largest packet an MQTT 5 session takes: sixteen times the contract's
/// payload limit. It is sent in CONNECT (Maximum Packet Size), so the
/// broker itself drops a larger message for the hub instead of sending it,
/// and one oversized publish can neither take 256 MiB of the hub's memory
/// per message in flight nor block the session (MQTT-3.1.2-24). Payloads
/// between the contract's limit and this still reach the hub, which
/// quarantines them with the reason: a terminal's report that is merely too
/// big (a photo inlined, say) is kept for a person, not lost.
pub(crate) const MAX_PACKET_V5: usize = 16 * MAX_PAYLOAD_BYTES;

/// Which MQTT the connector speaks to the broker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MqttProtocol {
    /// MQTT 5: the connector tells the broker how many messages it takes in
    /// flight (Receive Maximum, from [`MqttConfig::inflight`]), how long to
    /// keep its session, and its largest packet.
    #[default]
    V5,
    /// MQTT 3.1.1, for brokers without MQTT 5. The broker then decides how
    /// many messages are in flight to the hub (Mosquitto:
    /// `max_inflight_messages`, 20 by default) and how long a session lives.
    V311,
}

impl MqttProtocol {
    /// As the configuration writes it: `5` or `3.1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            MqttProtocol::V5 => "5",
            MqttProtocol::V311 => "3.1.1",
        }
    }
}

impl std::fmt::Display for MqttProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MQTT {}", self.as_str())
    }
}

/// A protocol name the configuration does not know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown MQTT protocol `{0}`: write \"5\" (the default) or \"3.1.1\" (for a broker without MQTT 5)")]
pub struct UnknownProtocol(pub String);

impl std::str::FromStr for MqttProtocol {
    type Err = UnknownProtocol;

    /// `5` (also `5.0`, `v5`) or `3.1.1` (also `v3.1.1`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "5" | "5.0" | "v5" | "v5.0" => Ok(MqttProtocol::V5),
            "3.1.1" | "v3.1.1" => Ok(MqttProtocol::V311),
            _ => Err(UnknownProtocol(text.to_string())),
        }
    }
}

/// Configuration of one [`MqttConnector`](super::MqttConnector).
///
/// Its `Debug` shows the URL without its password and never the password.
#[derive(Clone)]
pub struct MqttConfig {
    /// `mqtt://host:port` (or `tcp://`), `mqtts://host:port` (or `ssl://`;
    /// TLS, port 8883 by default), with `user:password@` before the host if
    /// the broker wants them (percent-encoded), optionally `?client_id=…`.
    pub url: String,
    /// The broker's user name; overrides the URL's.
    pub username: Option<String>,
    /// The broker's password; overrides the URL's. Never logged.
    pub password: Option<String>,
    /// `mqtts://` only: the PEM file of the CA that signed the broker's
    /// certificate (a centre's own CA, or the broker's self-signed
    /// certificate). Without it the system's CA bundle is used.
    pub ca_file: Option<PathBuf>,
    /// The source system the records carry (`terminal`).
    pub system: String,
    /// The MQTT client id. It names the persistent session on the broker
    /// (subscriptions and unacknowledged messages), so it must be non-empty
    /// and the same across restarts, and two hubs must never share one: the
    /// broker would disconnect the older of the two.
    pub client_id: String,
    /// Topic filters, subscribed at QoS 1.
    pub topics: Vec<String>,
    /// MQTT 5 (the default) or 3.1.1, for a broker without MQTT 5.
    pub protocol: MqttProtocol,
    /// Subscribe as `$share/{group}/{filter}` so that several hubs, each with
    /// its own client id, split the terminals' messages. MQTT 5 only.
    pub shared_group: Option<String>,
    /// How many messages may be on their way to the hub, unacknowledged, at
    /// once. Under MQTT 5 the broker is told (Receive Maximum) and sends no
    /// more; under 3.1.1 the broker's own setting (Mosquitto
    /// `max_inflight_messages`, 20 by default) limits what it sends, and this
    /// only bounds what the connector reads ahead and submits at once.
    pub inflight: u16,
    /// MQTT keep-alive; at least 5 s (rumqttc's v5 client refuses less).
    pub keep_alive: Duration,
    /// First wait before reconnecting after the connection failed.
    pub reconnect_initial: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
    /// The contract's payload limit, used only to note oversized payloads in
    /// the log (size and packet id, never content); the hub quarantines them.
    pub max_payload_bytes: usize,
    /// MQTT 5 only: how long the broker keeps the session (and the messages
    /// queued for it) while the hub is away (default: for ever, the most
    /// MQTT 5 can say) (Mosquitto shortens it to
    /// `persistent_client_expiration` if that is set and shorter). Under
    /// 3.1.1 the broker decides (Mosquitto: forever unless
    /// `persistent_client_expiration` is set).
    pub session_expiry: Duration,
}

impl MqttConfig {
    /// A configuration with the defaults: the contract's topics, MQTT 5, 64
    /// in flight, a session kept for ever, 30 s keep-alive, reconnect after
    /// 0.5 s doubling up to 30 s.
    /// The client id comes from the URL's `?client_id=` if it has one;
    /// otherwise set [`client_id`](Self::client_id) before use.
    pub fn new(url: impl Into<String>, system: impl Into<String>) -> Self {
        let url = url.into();
        let client_id = parse_url(&url).ok().and_then(|e| e.client_id).unwrap_or_default();
        MqttConfig {
            url,
            username: None,
            password: None,
            ca_file: None,
            system: system.into(),
            client_id,
            topics: DEFAULT_TOPICS.iter().map(|t| t.to_string()).collect(),
            protocol: MqttProtocol::V5,
            shared_group: None,
            // As many as intake commits at once (and AMQP's prefetch).
            inflight: 256,
            keep_alive: Duration::from_secs(30),
            reconnect_initial: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            // As long as MQTT 5 allows (about 136 years): the broker keeps
            // the session and what is queued for it however long the hub is
            // away, as it does for a 3.1.1 session.
            session_expiry: Duration::from_secs(u64::from(u32::MAX)),
        }
    }

    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    pub fn with_topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_shared_group(mut self, group: impl Into<String>) -> Self {
        self.shared_group = Some(group.into());
        self
    }

    pub fn with_protocol(mut self, protocol: MqttProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The broker's user name and password, overriding the URL's.
    pub fn with_credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// The URL as it may be shown: without its password.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Checks everything a connection needs and resolves the broker address.
    pub(crate) fn validate(&self) -> Result<Endpoint, ConfigError> {
        let mut endpoint = parse_url(&self.url)?;
        if let Some(user) = &self.username {
            endpoint.username = Some(user.clone());
        }
        if let Some(password) = &self.password {
            endpoint.password = Some(Secret(password.clone()));
        }
        match &endpoint.username {
            Some(user) if user.is_empty() || user.chars().any(char::is_control) || user.len() > 65535 => {
                return Err(ConfigError::Invalid("the MQTT user name must be printable, 1 to 65535 bytes".into()));
            }
            None if endpoint.password.is_some() => {
                return Err(ConfigError::Invalid("an MQTT password needs a user name".into()));
            }
            _ => {}
        }
        if self.ca_file.is_some() && !endpoint.tls {
            return Err(ConfigError::Invalid("ca_file applies only to mqtts:// (TLS) brokers".into()));
        }
        match (endpoint.client_id.take(), self.client_id.trim()) {
            (Some(from_url), "") => endpoint.client_id = Some(from_url),
            (Some(from_url), field) if from_url != field => {
                return Err(ConfigError::ConflictingClientId { url: from_url, field: field.to_string() });
            }
            (_, "") => return Err(ConfigError::MissingClientId),
            (_, field) => endpoint.client_id = Some(field.to_string()),
        }
        if endpoint.client_id.as_deref().is_some_and(|id| id.chars().any(char::is_control) || id.len() > 65535) {
            return Err(ConfigError::Invalid("client_id must be printable and at most 65535 bytes".into()));
        }
        if self.system.trim().is_empty() {
            return Err(ConfigError::Invalid("system must not be empty".into()));
        }
        if self.topics.is_empty() {
            return Err(ConfigError::Invalid("at least one topic filter is needed".into()));
        }
        for filter in &self.topics {
            if !valid_filter(filter) {
                return Err(ConfigError::BadTopic(filter.clone()));
            }
            if filter.starts_with("$share/") {
                return Err(ConfigError::BadTopic(format!("{filter} (set shared_group instead of writing $share/)")));
            }
        }
        if let Some(group) = &self.shared_group {
            if group.is_empty() || group.contains(['/', '+', '#']) || group.chars().any(char::is_control) {
                return Err(ConfigError::BadGroup(group.clone()));
            }
            if self.protocol == MqttProtocol::V311 {
                return Err(ConfigError::GroupNeedsV5(group.clone()));
            }
        }
        if self.inflight == 0 {
            return Err(ConfigError::Invalid("inflight must be at least 1".into()));
        }
        if self.keep_alive < Duration::from_secs(5) || self.keep_alive > Duration::from_secs(u16::MAX as u64) {
            return Err(ConfigError::Invalid("keep_alive must be between 5 s and 65535 s".into()));
        }
        if self.reconnect_initial.is_zero() || self.reconnect_max < self.reconnect_initial {
            return Err(ConfigError::Invalid("need 0 < reconnect_initial <= reconnect_max".into()));
        }
        if self.max_payload_bytes == 0 {
            return Err(ConfigError::Invalid("max_payload_bytes must be positive".into()));
        }
        if self.protocol == MqttProtocol::V5 && self.session_expiry.is_zero() {
            return Err(ConfigError::Invalid(
                "session_expiry must be positive: a zero expiry is a clean session".into(),
            ));
        }
        Ok(endpoint)
    }

    /// The filters as subscribed: with the shared-subscription prefix if a group is set.
    pub(crate) fn subscriptions(&self) -> Vec<String> {
        match &self.shared_group {
            Some(group) => self.topics.iter().map(|f| format!("$share/{group}/{f}")).collect(),
            None => self.topics.clone(),
        }
    }
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &self.redacted_url())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("system", &self.system)
            .field("client_id", &self.client_id)
            .field("topics", &self.topics)
            .field("protocol", &self.protocol)
            .field("shared_group", &self.shared_group)
            .field("inflight", &self.inflight)
            .finish_non_exhaustive()
    }
}

/// A password: shown as `***` by `Debug`, so that no log or error prints it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where the system keeps its CA bundle (Debian/Ubuntu, RHEL/Fedora, Alpine/BSD).
const SYSTEM_CA_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

impl MqttConfig {
    /// For `mqtts://`: the PEM certificates the broker's certificate must
    /// chain to: `ca_file`, else `SSL_CERT_FILE`, else the system's bundle.
    /// Read once, at start, so that a missing file is a start error.
    pub(crate) fn trusted_certificates(&self, endpoint: &Endpoint) -> Result<Option<Vec<u8>>, ConfigError> {
        if !endpoint.tls {
            return Ok(None);
        }
        let path = match &self.ca_file {
            Some(path) => path.clone(),
            None => std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .or_else(|| SYSTEM_CA_BUNDLES.iter().map(PathBuf::from).find(|p| p.exists()))
                .ok_or_else(|| {
                    ConfigError::Tls("no system CA bundle found: set ca_file to the broker's CA certificate".into())
                })?,
        };
        let pem = std::fs::read(&path)
            .map_err(|e| ConfigError::Tls(format!("cannot read the CA file {}: {e}", path.display())))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(ConfigError::Tls(format!("{} holds no PEM certificate", path.display())));
        }
        Ok(Some(pem))
    }
}

/// Where the broker is, as read from the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    pub client_id: Option<String>,
    /// `mqtts://`: TLS.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[cfg(test)]
impl Endpoint {
    pub(crate) fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or_default()
    }
}

/// A configuration that cannot work; reported once, at start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("bad MQTT url `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("no MQTT client id: a persistent session needs a stable, non-empty one")]
    MissingClientId,
    #[error("the MQTT url says client_id `{url}` but the config says `{field}`")]
    ConflictingClientId { url: String, field: String },
    #[error("bad MQTT topic filter `{0}`")]
    BadTopic(String),
    #[error("bad shared subscription group `{0}`: no `/`, `+` or `#`")]
    BadGroup(String),
    #[error(
        "shared_group `{0}` needs MQTT 5 (shared subscriptions do not exist in 3.1.1): remove protocol = \"3.1.1\" if the broker speaks MQTT 5, or remove shared_group and run one hub on this session"
    )]
    GroupNeedsV5(String),
    #[error("bad MQTT setting: {0}")]
    Invalid(String),
    #[error("MQTT over TLS: {0}")]
    Tls(String),
}

/// `url` with its password (if any) replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL at all: it may still be a password pasted in the wrong place.
        return "(not a URL)".to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        None => url.to_string(),
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let password = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{password}@{host}{}", &rest[end..])
        }
    }
}

/// Parses `mqtt[s]://[user[:password]@]host[:port][/][?client_id=…]`; the
/// port defaults to 1883 (8883 for mqtts). Errors show the URL without its
/// password.
pub(crate) fn parse_url(url: &str) -> Result<Endpoint, ConfigError> {
    let bad = |reason: &str| ConfigError::BadUrl { url: redact_url(url), reason: reason.to_string() };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected mqtt://host:port"))?;
    let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => (false, 1883),
        "mqtts" | "ssl" => (true, 8883),
        _ => return Err(bad("expected mqtt:// (plain TCP) or mqtts:// (TLS)")),
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let (userinfo, authority) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    if authority.contains('/') {
        return Err(bad("no path allowed"));
    }
    let decode = |part: &str, what: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| bad(&format!("the {what} is not UTF-8 once percent-decoded")))
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err(bad("empty user name before @"));
            }
            let password = password.map(|p| decode(p, "password")).transpose()?.map(Secret);
            (Some(decode(user, "user name")?), password)
        }
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in IPv6 address"))?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(|| bad("expected :port after ]"))?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("port must be 1..=65535"))?,
    };
    let mut client_id = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("client_id", v)) if !v.is_empty() => client_id = Some(v.to_string()),
            _ => return Err(bad("the only query parameter understood is client_id=…")),
        }
    }
    Ok(Endpoint { host: host.to_string(), port, client_id, tls, username, password })
}

/// A topic filter as MQTT allows it: `+` and `#` only as whole levels, `#` last.
fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "+" => true,
        "#" => i == levels.len() - 1,
        l => !l.contains(['+', '#']),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = parse_url("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.client_id), ("127.0.0.1", 1883, None));
        let e = parse_url("mqtt://broker.local/?client_id=hub-1").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.client_id.as_deref()), ("broker.local", 1883, Some("hub-1")));
        let e = parse_url("tcp://[::1]:2883").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 2883));
        for bad in
            ["127.0.0.1:1883", "http://h", "mqtt://:1883", "mqtt://h:0", "mqtt://h:x", "mqtt://h/a", "mqtt://h?foo=1"]
        {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_and_credentials_in_the_url() {
        let e = parse_url("mqtts://broker.centre").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("broker.centre", 8883, true));
        assert!(parse_url("ssl://b:9883").unwrap().tls);
        assert!(!parse_url("mqtt://b").unwrap().tls);
        let e = parse_url("mqtts://hub%2D1:p%40ss%3Aw0rd@b:8884/?client_id=h").unwrap();
        assert_eq!(e.username.as_deref(), Some("hub-1"));
        assert_eq!(e.password, Some(Secret("p@ss:w0rd".into())));
        assert_eq!((e.host.as_str(), e.port, e.client_id.as_deref()), ("b", 8884, Some("h")));
        let e = parse_url("mqtt://onlyuser@b").unwrap();
        assert_eq!((e.username.as_deref(), e.password), (Some("onlyuser"), None));
        assert!(parse_url("mqtt://:pw@b").is_err());
    }

    #[test]
    fn passwords_never_show() {
        let url = "mqtts://hub:s3cret-pw@broker:8883?client_id=x";
        assert_eq!(redact_url(url), "mqtts://hub:***@broker:8883?client_id=x");
        assert_eq!(redact_url("mqtt://b:1883"), "mqtt://b:1883");
        assert_eq!(redact_url("s3cret-pw"), "(not a URL)");
        let config = MqttConfig::new(url, "terminal").with_credentials("hub", "0ther-pw");
        let shown = format!("{config:?} {:?}", config.validate());
        assert!(!shown.contains("s3cret-pw") && !shown.contains("0ther-pw"), "{shown}");
        let bad = MqttConfig::new("mqtt://hub:s3cret-pw@b:x?client_id=a", "t").validate().unwrap_err().to_string();
        assert!(bad.contains("hub:***@b:x") && !bad.contains("s3cret-pw"), "{bad}");
    }

    #[test]
    fn credentials_from_fields_override_the_url() {
        let c = MqttConfig::new("mqtt://u:p@h?client_id=a", "t");
        let e = c.validate().unwrap();
        assert_eq!((e.username.as_deref(), e.password), (Some("u"), Some(Secret("p".into()))));
        let e = c.clone().with_credentials("v", "q").validate().unwrap();
        assert_eq!((e.username.as_deref(), e.password), (Some("v"), Some(Secret("q".into()))));
        let mut c = MqttConfig::new("mqtt://h?client_id=a", "t");
        c.password = Some("p".into());
        assert!(c.validate().is_err(), "a password without a user name");
        let mut c = MqttConfig::new("mqtt://h?client_id=a", "t");
        c.ca_file = Some("/ca.pem".into());
        assert!(c.validate().is_err(), "ca_file over plain TCP");
    }

    #[test]
    fn client_id_from_url_or_field() {
        let c = MqttConfig::new("mqtt://h:1?client_id=a", "terminal");
        assert_eq!(c.client_id, "a");
        assert_eq!(c.validate().unwrap().client_id(), "a");
        let c = MqttConfig::new("mqtt://h:1", "terminal");
        assert_eq!(c.validate(), Err(ConfigError::MissingClientId));
        assert_eq!(c.clone().with_client_id("b").validate().unwrap().client_id(), "b");
        let c = MqttConfig::new("mqtt://h:1?client_id=a", "terminal").with_client_id("b");
        assert!(matches!(c.validate(), Err(ConfigError::ConflictingClientId { .. })));
    }

    #[test]
    fn filters_and_groups() {
        let c = MqttConfig::new("mqtt://h?client_id=a", "terminal");
        assert_eq!(c.subscriptions(), DEFAULT_TOPICS);
        let c = c.with_shared_group("hubs");
        assert_eq!(c.subscriptions()[0], "$share/hubs/grid/+/+/report");
        assert!(c.validate().is_ok());
        assert!(c.clone().with_shared_group("a/b").validate().is_err());
        for bad in ["", "grid/#/x", "grid/a+", "$share/g/grid/#"] {
            assert!(c.clone().with_topics([bad]).validate().is_err(), "{bad}");
        }
        assert!(c.clone().with_topics(["grid/#"]).validate().is_ok());
        let mut c = c;
        c.keep_alive = Duration::from_secs(1);
        assert!(c.validate().is_err());
    }

    #[test]
    fn protocol_is_mqtt5_unless_told_and_a_group_needs_it() {
        let c = MqttConfig::new("mqtt://h?client_id=a", "terminal");
        assert_eq!(c.protocol, MqttProtocol::V5);
        for (text, protocol) in [
            ("5", MqttProtocol::V5),
            ("v5", MqttProtocol::V5),
            ("3.1.1", MqttProtocol::V311),
            ("V3.1.1", MqttProtocol::V311),
        ] {
            assert_eq!(text.parse::<MqttProtocol>(), Ok(protocol), "{text}");
        }
        for bad in ["", "3", "4", "3.1", "mqtt"] {
            let e = bad.parse::<MqttProtocol>().unwrap_err().to_string();
            assert!(e.contains("\"5\"") && e.contains("\"3.1.1\""), "{e}");
        }
        assert_eq!(MqttProtocol::V311.to_string(), "MQTT 3.1.1");
        assert!(c.clone().with_protocol(MqttProtocol::V311).validate().is_ok());
        let grouped = c.clone().with_shared_group("hubs").with_protocol(MqttProtocol::V311);
        let e = grouped.validate().unwrap_err();
        assert_eq!(e, ConfigError::GroupNeedsV5("hubs".into()));
        assert!(e.to_string().contains("needs MQTT 5") && e.to_string().contains("protocol = \"3.1.1\""), "{e}");
        // A zero session expiry would be a clean session under MQTT 5 only.
        let mut c = c;
        c.session_expiry = Duration::ZERO;
        assert!(c.validate().is_err());
        assert!(c.with_protocol(MqttProtocol::V311).validate().is_ok());
    }
}
