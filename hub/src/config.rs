//! The hub's configuration: a TOML file, overridden by `HUB_*` variables,
//! validated as a whole so that `hub check` reports every mistake at once,
//! each with its file, line and column.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use connectors::retry_after::RetryAfterBounds;
use serde::Deserialize;
use toml::Spanned;

use crate::delivery::{DispatcherSettings, PlatformSettings, RetryPolicy};
use crate::intake::IntakeSettings;

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    pub platform: PlatformSettings,
    pub dispatcher: DispatcherSettings,
    pub intake: IntakeSettings,
    /// Where the hub serves `/healthz`, `/readyz` and `/metrics`; none when unset.
    pub listen: Option<SocketAddr>,
    pub sources: Vec<SourceSettings>,
    /// Broker and feed addresses for the agency connectors
    /// (`HUB_AMQP_URL`, `HUB_MQTT_URL`, `HUB_COURT_FEED_URL`).
    pub amqp_url: Option<String>,
    pub mqtt_url: Option<String>,
    pub court_feed_url: Option<String>,
    /// Where the embedded MQTT broker listens, when an mqtt source asks for
    /// it (`embedded_broker`). Never by default: it keeps the terminals'
    /// messages in memory only and lets anyone who reaches it in.
    pub embedded_mqtt: Option<SocketAddr>,
    pub deadlines: DeadlineSettings,
    /// Who may use the admin API, the dashboard and Open311 (`[api] tokens`,
    /// `HUB_API_TOKENS`); none by default, and then they are closed.
    pub api_tokens: crate::api::auth::ApiTokens,
    /// Open311 answers without a token (`[open311] public = true`).
    pub open311_public: bool,
    /// What is valid but risky (a platform reached over plain http across
    /// the network): `hub check` prints these, `hub run` logs them at start.
    pub warnings: Vec<ConfigError>,
}

/// `[deadlines]`: when the reporting grid workers are reminded, how often
/// deadlines are looked at.
#[derive(Clone, Debug)]
pub struct DeadlineSettings {
    /// The share of a ticket's time after which its one reminder goes out (0.8).
    pub remind_at: f64,
    pub check_every: Duration,
    /// By when (Beijing time) an agreed court case must have its legal
    /// document, the same day (18:00).
    pub court_documents_by: chrono::NaiveTime,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        DeadlineSettings {
            remind_at: 0.8,
            check_every: Duration::from_secs(30),
            court_documents_by: chrono::NaiveTime::from_hms_opt(18, 0, 0).expect("a time of day"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SourceSettings {
    pub name: String,
    pub mapping: MappingRef,
    pub transport: Transport,
}

#[derive(Clone, Debug)]
pub enum MappingRef {
    /// The hub's own record format (see `mapping::canonical`).
    Canonical,
    /// A mapping file (see `mappings/README.md`), loaded and checked with
    /// the config; `builtin:NAME` is one shipped inside the binary.
    File { path: PathBuf, mapper: std::sync::Arc<crate::mapping::DeclarativeMapper> },
}

#[derive(Clone, Debug)]
pub enum Transport {
    Http(connectors::http::HttpConfig),
    Amqp(connectors::amqp::AmqpConfig),
    Mqtt(connectors::mqtt::MqttConfig),
    CourtFeed(connectors::court::CourtFeedConfig),
    FileDrop(connectors::court::FileDropConfig),
}

/// One mistake in the configuration, with where it is, and all of them.
pub use crate::diagnostic::{Diagnostic as ConfigError, Diagnostics as ConfigErrors};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    platform: PlatformSection,
    #[serde(default)]
    delivery: DeliverySection,
    #[serde(default)]
    intake: IntakeSection,
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    api: ApiSection,
    #[serde(default)]
    open311: Open311Section,
    #[serde(default)]
    deadlines: DeadlinesSection,
    #[serde(default)]
    dedup: DedupSection,
    #[serde(default)]
    calendar: CalendarSection,
    #[serde(default)]
    sources: Vec<SourceSection>,
}

/// `[calendar]`: the holiday table for working-day deadlines, when the
/// shipped one is out of date (a new year's arrangement).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CalendarSection {
    holidays: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlatformSection {
    url: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    /// The callbacks' signing secrets, current first.
    secrets: Option<Spanned<Vec<String>>>,
    timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
}

/// What a lease must hold beyond a request's timeout: the wait in the
/// dispatcher's queue before the request and the commit of its result.
const LEASE_ROOM: Duration = Duration::from_secs(10);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeliverySection {
    concurrency: Option<Spanned<i64>>,
    batch: Option<Spanned<i64>>,
    lease: Option<Spanned<String>>,
    retry_initial: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    pause_max: Option<Spanned<String>>,
    auth_probe: Option<Spanned<String>>,
    retry_after_min: Option<Spanned<String>>,
    retry_after_max: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IntakeSection {
    max_batch: Option<Spanned<i64>>,
    max_payload_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DedupSection {
    enabled: Option<Spanned<bool>>,
    merge: Option<Spanned<f64>>,
    review: Option<Spanned<f64>>,
    window: Option<Spanned<String>>,
    petition_window: Option<Spanned<String>>,
    dispute_window: Option<Spanned<String>>,
    identifier_window: Option<Spanned<String>>,
    retention: Option<Spanned<String>>,
}

/// `[api]`: who may use the admin API and the dashboard.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApiSection {
    /// `role[@region]:sha256:<hex>`, see [`crate::api::auth`].
    tokens: Option<Vec<Spanned<String>>>,
}

/// `[open311]`: whether the Open311 read API needs a viewer token.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Open311Section {
    public: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeadlinesSection {
    remind_at: Option<Spanned<f64>>,
    check_every: Option<Spanned<String>>,
    court_documents_by: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    name: Spanned<String>,
    mapping: Spanned<String>,
    transport: Spanned<String>,
    /// http: where to listen; bearer tokens (HUB_SOURCE_<NAME>_TOKENS
    /// overrides) or `open` on a loopback address; timeouts; connections.
    listen: Option<Spanned<String>>,
    tokens: Option<Spanned<Vec<String>>>,
    open: Option<Spanned<bool>>,
    header_timeout: Option<Spanned<String>>,
    request_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    /// amqp, mqtt: the broker (default: HUB_AMQP_URL / HUB_MQTT_URL).
    url: Option<Spanned<String>>,
    /// amqp: the agency's exchange, the hub's own queue, its bindings, the prefetch.
    exchange: Option<Spanned<String>>,
    queue: Option<Spanned<String>>,
    bindings: Option<Spanned<Vec<String>>>,
    prefetch: Option<Spanned<i64>>,
    /// mqtt: topic filters, the persistent session's client id, an MQTT 5 shared group.
    topics: Option<Spanned<Vec<String>>>,
    client_id: Option<Spanned<String>>,
    shared_group: Option<Spanned<String>>,
    /// mqtt: `"5"` (the default) or `"3.1.1"` for a broker without MQTT 5.
    protocol: Option<Spanned<ProtocolText>>,
    /// mqtt: messages on their way to the hub unacknowledged at most (MQTT 5
    /// receive maximum): what one group commit can hold from this source.
    inflight: Option<Spanned<i64>>,
    /// mqtt over TLS (`mqtts://`): the PEM file of the broker's CA (default: the system's).
    ca_file: Option<Spanned<String>>,
    /// mqtt: run the hub's in-memory broker at this address (`127.0.0.1:1883`,
    /// or a bare port for 127.0.0.1) instead of connecting to one. An opt-in:
    /// it loses what it holds when the hub stops and has no authentication.
    embedded_broker: Option<Spanned<String>>,
    /// The key `embedded_broker` replaced; kept only to say so.
    embedded_port: Option<Spanned<i64>>,
    /// court_feed: the court whose feed this is (`吉0402`), and how often to poll.
    court: Option<Spanned<String>>,
    poll_interval: Option<Spanned<String>>,
    /// court_feed: the longest `Retry-After` honoured (default 1 h).
    retry_after_max: Option<Spanned<String>>,
    /// file_drop: the directory the XML files appear in.
    dir: Option<Spanned<String>>,
}

/// `protocol` as written: `"3.1.1"` can only be a string, but `5` may well
/// be written as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum ProtocolText {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl ProtocolText {
    fn text(&self) -> String {
        match self {
            ProtocolText::Text(t) => t.clone(),
            ProtocolText::Integer(n) => n.to_string(),
            ProtocolText::Float(x) => format!("{x:?}"),
        }
    }
}

impl SourceSection {
    /// Keys that were given but do not apply to `transport`.
    fn stray_keys(&self, transport: &str) -> Vec<(&'static str, Range<usize>)> {
        // (key, where it was given, the transports it applies to)
        type Key<'a> = (&'static str, Option<Range<usize>>, &'a [&'a str]);
        let keys: [Key; 23] = [
            ("listen", self.listen.as_ref().map(Spanned::span), &["http"]),
            ("tokens", self.tokens.as_ref().map(Spanned::span), &["http"]),
            ("open", self.open.as_ref().map(Spanned::span), &["http"]),
            ("header_timeout", self.header_timeout.as_ref().map(Spanned::span), &["http"]),
            ("request_timeout", self.request_timeout.as_ref().map(Spanned::span), &["http"]),
            ("max_connections", self.max_connections.as_ref().map(Spanned::span), &["http"]),
            ("url", self.url.as_ref().map(Spanned::span), &["amqp", "mqtt", "court_feed"]),
            ("exchange", self.exchange.as_ref().map(Spanned::span), &["amqp"]),
            ("queue", self.queue.as_ref().map(Spanned::span), &["amqp"]),
            ("bindings", self.bindings.as_ref().map(Spanned::span), &["amqp"]),
            ("prefetch", self.prefetch.as_ref().map(Spanned::span), &["amqp"]),
            ("topics", self.topics.as_ref().map(Spanned::span), &["mqtt"]),
            ("client_id", self.client_id.as_ref().map(Spanned::span), &["mqtt"]),
            ("shared_group", self.shared_group.as_ref().map(Spanned::span), &["mqtt"]),
            ("protocol", self.protocol.as_ref().map(Spanned::span), &["mqtt"]),
            ("inflight", self.inflight.as_ref().map(Spanned::span), &["mqtt"]),
            ("embedded_broker", self.embedded_broker.as_ref().map(Spanned::span), &["mqtt"]),
            ("ca_file", self.ca_file.as_ref().map(Spanned::span), &["mqtt"]),
            ("embedded_port", self.embedded_port.as_ref().map(Spanned::span), &["mqtt"]),
            ("court", self.court.as_ref().map(Spanned::span), &["court_feed"]),
            ("poll_interval", self.poll_interval.as_ref().map(Spanned::span), &["court_feed"]),
            ("retry_after_max", self.retry_after_max.as_ref().map(Spanned::span), &["court_feed"]),
            ("dir", self.dir.as_ref().map(Spanned::span), &["file_drop"]),
        ];
        keys.into_iter()
            .filter_map(|(key, span, applies)| span.filter(|_| !applies.contains(&transport)).map(|s| (key, s)))
            .collect()
    }
}

/// Reads a value from the environment, as `HUB_*` overrides.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;

    /// Today in Beijing: how far the holiday table must reach.
    fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().with_timezone(&crate::ticket::beijing()).date_naive()
    }

    /// Whether the settings are for a process that speaks to the platform
    /// (and so must have its token). The admin commands only read and
    /// repair the store; asking them for a secret they never use would
    /// push operators to put it in more places.
    fn speaks_to_platform(&self) -> bool {
        true
    }
}

/// The environment of an admin command (`status`, `quarantine`, …): the
/// process's own, except that no platform token is required.
pub struct AdminEnv<'a>(pub &'a dyn Env);

impl Env for AdminEnv<'_> {
    fn var(&self, key: &str) -> Option<String> {
        self.0.var(key)
    }

    fn today(&self) -> chrono::NaiveDate {
        self.0.today()
    }

    fn speaks_to_platform(&self) -> bool {
        false
    }
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, key: &str) -> Option<String> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
    }
}

struct Checker<'a> {
    origin: String,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn at(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = line_col(self.text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.errors.push(ConfigError { origin: self.origin.clone(), line, column, message: message.into() });
    }

    fn duration(&mut self, key: &str, value: &Option<Spanned<String>>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(v) => match humantime::parse_duration(v.get_ref()) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    self.at(Some(v.span()), format!("{key} must be longer than zero"));
                    default
                }
                Err(e) => {
                    self.at(
                        Some(v.span()),
                        format!(
                            "{key} = \"{}\" is not a duration ({e}); write e.g. \"500ms\", \"10s\", \"2m\"",
                            v.get_ref()
                        ),
                    );
                    default
                }
            },
        }
    }

    fn count(&mut self, key: &str, value: &Option<Spanned<i64>>, default: usize, range: Range<i64>) -> usize {
        match value {
            None => default,
            Some(v) if range.contains(v.get_ref()) => *v.get_ref() as usize,
            Some(v) => {
                self.at(Some(v.span()), format!("{key} must be between {} and {}", range.start, range.end - 1));
                default
            }
        }
    }

    fn url(&mut self, key: &str, value: &str, span: Option<Range<usize>>) {
        if !(value.starts_with("http://") || value.starts_with("https://")) || value.len() <= "https://".len() {
            self.at(span, format!("{key} = \"{value}\" is not an http:// or https:// URL"));
        }
    }
}

fn with_holidays(
    mapper: crate::mapping::DeclarativeMapper,
    table: Option<&crate::mapping::declarative::HolidayTable>,
) -> crate::mapping::DeclarativeMapper {
    match table {
        Some(t) => mapper.with_holidays(t),
        None => mapper,
    }
}

/// The platform's token: from `HUB_PLATFORM_TOKEN`, else `platform.token`.
/// There is no default: a hub that sent a made-up token would look healthy
/// while the platform refused everything, and a well-known token is no
/// secret. Only the demo, which runs its own platform, writes one itself.
fn platform_token(c: &mut Checker, platform: &PlatformSection, env: &dyn Env) -> String {
    let (token, span) = match (env.var("HUB_PLATFORM_TOKEN"), &platform.token) {
        (Some(t), _) => (t, None),
        (None, Some(t)) => (t.get_ref().clone(), Some(t.span())),
        (None, None) => (String::new(), None),
    };
    if token.trim().is_empty() && env.speaks_to_platform() {
        c.at(
            span,
            "the platform's token is not set: set the environment variable HUB_PLATFORM_TOKEN (or platform.token) to the token the platform issued to this hub",
        );
    }
    token
}

/// The secrets callbacks are signed with: `HUB_PLATFORM_SECRET` (several
/// comma-separated during a change), else `platform.secrets`. A secret
/// shorter than 16 bytes is refused: it could be guessed. None is allowed
/// (callbacks wait at the platform, answered 503), with a warning when the
/// hub listens.
fn callback_secrets(c: &mut Checker, platform: &PlatformSection, env: &dyn Env) -> Vec<String> {
    let (secrets, span) = match (env.var("HUB_PLATFORM_SECRET"), &platform.secrets) {
        (Some(v), _) => (v.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>(), None),
        (None, Some(list)) => (list.get_ref().iter().map(|s| s.trim().to_string()).collect(), Some(list.span())),
        (None, None) => (Vec::new(), None),
    };
    let secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
    if secrets.iter().any(|s| s.len() < 16) {
        c.at(span, "a callback secret (HUB_PLATFORM_SECRET or platform.secrets) is shorter than 16 bytes: use the secret the platform issued");
    }
    secrets
}

/// The host of an `http://` URL that leaves this machine, if `url` is one:
/// over plain http the bearer token and the tickets' personal data can be
/// read on the way. Loopback (`localhost`, 127.0.0.0/8, `::1`) stays here.
fn cleartext_host(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    let host = parsed.host_str()?.to_ascii_lowercase();
    let loopback = match host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    };
    (!loopback).then_some(host)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Settings {
    /// Loads and validates a config file, then applies `HUB_*` overrides.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Settings, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                origin: path.display().to_string(),
                line: None,
                column: None,
                message: format!("cannot read the config file: {e}"),
            }])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse_in(&text, &path.display().to_string(), &base, env)
    }

    /// Store, platform and delivery defaults with no sources: the base the
    /// tests and benchmarks add their own sources to. `env` must give
    /// `HUB_PLATFORM_TOKEN`: there is no default token.
    pub fn defaults(env: &dyn Env) -> Result<Settings, ConfigErrors> {
        Self::parse("", "(defaults)", env)
    }

    /// The configuration `hub run` uses when no file is given: the four
    /// agencies with the shipped mappings (see [`builtin_text`]).
    pub fn builtin(env: &dyn Env) -> Result<Settings, ConfigErrors> {
        Self::parse(&builtin_text(env), BUILTIN_ORIGIN, env)
    }

    /// Parses config text; relative mapping paths are taken from the current directory.
    pub fn parse(text: &str, origin: &str, env: &dyn Env) -> Result<Settings, ConfigErrors> {
        Self::parse_in(text, origin, Path::new(""), env)
    }

    /// Parses config text; relative mapping paths are taken from `base`
    /// (the config file's directory).
    pub fn parse_in(text: &str, origin: &str, base: &Path, env: &dyn Env) -> Result<Settings, ConfigErrors> {
        let mut c = Checker { origin: origin.to_string(), text, errors: Vec::new() };
        let file: File = match toml::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                c.at(e.span(), e.message().trim().to_string());
                return Err(ConfigErrors(c.errors));
            }
        };
        let env_origin = |key: &str| format!("environment variable {key}");

        let database_url = env
            .var("HUB_DATABASE_URL")
            .or_else(|| file.store.url.as_ref().map(|u| u.get_ref().clone()))
            .unwrap_or_else(|| "sqlite://hub.db".to_string());

        let platform_url = match env.var("HUB_PLATFORM_URL") {
            Some(url) => {
                let mut ce = Checker { origin: env_origin("HUB_PLATFORM_URL"), text: "", errors: Vec::new() };
                ce.url("HUB_PLATFORM_URL", &url, None);
                c.errors.extend(ce.errors);
                url
            }
            None => match &file.platform.url {
                Some(u) => {
                    c.url("platform.url", u.get_ref(), Some(u.span()));
                    u.get_ref().clone()
                }
                None => "http://127.0.0.1:8080".to_string(),
            },
        };
        let token = platform_token(&mut c, &file.platform, env);
        let mut warnings = Vec::new();
        if let Some(host) = cleartext_host(&platform_url) {
            let origin =
                if env.var("HUB_PLATFORM_URL").is_some() { env_origin("HUB_PLATFORM_URL") } else { origin.to_string() };
            let (line, column) = match (&file.platform.url, env.var("HUB_PLATFORM_URL")) {
                (Some(u), None) => {
                    let (l, col) = line_col(text, u.span().start);
                    (Some(l), Some(col))
                }
                _ => (None, None),
            };
            warnings.push(ConfigError {
                origin,
                line,
                column,
                message: format!(
                    "the platform URL is http:// to {host}, not this machine: the token and every ticket's personal data cross the network in clear text; use https://"
                ),
            });
        }
        let secrets = callback_secrets(&mut c, &file.platform, env);
        let deadlines = {
            let d = DeadlineSettings::default();
            let remind_at = match &file.deadlines.remind_at {
                Some(v) if !(0.0..=1.0).contains(v.get_ref()) || v.get_ref().is_nan() => {
                    c.at(Some(v.span()), "deadlines.remind_at is a share of the time, between 0 and 1 (0.8: at 80%)");
                    d.remind_at
                }
                Some(v) => *v.get_ref(),
                None => d.remind_at,
            };
            let check_every = c.duration("deadlines.check_every", &file.deadlines.check_every, d.check_every);
            let court_documents_by = match &file.deadlines.court_documents_by {
                Some(v) => match chrono::NaiveTime::parse_from_str(v.get_ref(), "%H:%M") {
                    Ok(t) => t,
                    Err(_) => {
                        c.at(Some(v.span()), "deadlines.court_documents_by is a time of day, HH:MM (18:00)");
                        d.court_documents_by
                    }
                },
                None => d.court_documents_by,
            };
            DeadlineSettings { remind_at, check_every: check_every.max(Duration::from_millis(100)), court_documents_by }
        };
        let platform = PlatformSettings {
            url: platform_url,
            token,
            secrets,
            timeout: c.duration("platform.timeout", &file.platform.timeout, Duration::from_secs(30)),
            connect_timeout: c.duration(
                "platform.connect_timeout",
                &file.platform.connect_timeout,
                Duration::from_secs(5),
            ),
        };

        let defaults = DispatcherSettings::default();
        let d = &file.delivery;
        let dispatcher = DispatcherSettings {
            concurrency: c.count("delivery.concurrency", &d.concurrency, defaults.concurrency, 1..4097),
            // Unset, the batch grows with the concurrency it feeds.
            batch: c.count("delivery.batch", &d.batch, defaults.batch, 1..4097),
            lease: c.duration("delivery.lease", &d.lease, defaults.lease),
            request_timeout: platform.timeout,
            retry: RetryPolicy {
                initial: c.duration("delivery.retry_initial", &d.retry_initial, defaults.retry.initial),
                max: c.duration("delivery.retry_max", &d.retry_max, defaults.retry.max),
                ..defaults.retry.clone()
            },
            pause: RetryPolicy {
                max: c.duration("delivery.pause_max", &d.pause_max, defaults.pause.max),
                ..defaults.pause.clone()
            },
            auth_probe: c.duration("delivery.auth_probe", &d.auth_probe, defaults.auth_probe),
            retry_after: RetryAfterBounds {
                min: c.duration("delivery.retry_after_min", &d.retry_after_min, defaults.retry_after.min),
                max: c.duration("delivery.retry_after_max", &d.retry_after_max, defaults.retry_after.max),
            },
            ..defaults
        };
        let mut dispatcher = dispatcher;
        match &d.batch {
            // Unset: four rounds of requests at most, so that a change
            // does not wait long in memory under its lease.
            None => {
                dispatcher.batch = defaults.batch.min(4 * dispatcher.concurrency).max(dispatcher.concurrency);
            }
            Some(batch) if dispatcher.batch < dispatcher.concurrency => c.at(
                Some(batch.span()),
                format!(
                    "delivery.batch ({}) must be at least delivery.concurrency ({}): each lease has to fill the requests in flight",
                    dispatcher.batch, dispatcher.concurrency
                ),
            ),
            Some(_) => {}
        }
        if dispatcher.retry_after.min > dispatcher.retry_after.max {
            c.at(
                d.retry_after_min.as_ref().or(d.retry_after_max.as_ref()).map(Spanned::span),
                format!(
                    "delivery.retry_after_min ({:?}) must not be above delivery.retry_after_max ({:?})",
                    dispatcher.retry_after.min, dispatcher.retry_after.max
                ),
            );
        }
        if dispatcher.lease < platform.timeout + LEASE_ROOM {
            let span = d.lease.as_ref().map(|l| l.span());
            c.at(span, format!(
                "delivery.lease ({:?}) must be at least platform.timeout ({:?}) and {LEASE_ROOM:?} more, or a slow request could be sent twice at once (the room is for the wait before the request and the commit after it)",
                dispatcher.lease, platform.timeout
            ));
        }

        let intake_defaults = IntakeSettings::default();
        let dd = crate::intake::DedupSettings::default();
        let ds = &file.dedup;
        let mut threshold = |key: &str, v: &Option<Spanned<f64>>, default: f64| match v {
            None => default,
            Some(x) if (0.0..=1.0).contains(x.get_ref()) => *x.get_ref(),
            Some(x) => {
                c.at(Some(x.span()), format!("dedup.{key} must be between 0 and 1"));
                default
            }
        };
        let thresholds = crate::dedup::Thresholds {
            merge: threshold("merge", &ds.merge, dd.thresholds.merge),
            review: threshold("review", &ds.review, dd.thresholds.review),
        };
        if thresholds.review > thresholds.merge {
            c.at(
                ds.review.as_ref().map(Spanned::span),
                format!("dedup.review ({}) must not be above dedup.merge ({})", thresholds.review, thresholds.merge),
            );
        }
        let rules = crate::dedup::CandidateRules {
            default_window: c.duration("dedup.window", &ds.window, dd.rules.default_window),
            petition_window: c.duration("dedup.petition_window", &ds.petition_window, dd.rules.petition_window),
            dispute_window: c.duration("dedup.dispute_window", &ds.dispute_window, dd.rules.dispute_window),
            identifier_window: c.duration("dedup.identifier_window", &ds.identifier_window, dd.rules.identifier_window),
        };
        let retention = c.duration("dedup.retention", &ds.retention, dd.retention.max(rules.reach()));
        if retention < rules.reach() {
            c.at(
                ds.retention.as_ref().map(Spanned::span),
                format!(
                    "dedup.retention ({}) must not be shorter than the longest window ({}): fingerprints still matched against would be deleted",
                    days(retention),
                    days(rules.reach())
                ),
            );
        }
        let dedup = crate::intake::DedupSettings {
            enabled: ds.enabled.as_ref().map_or(dd.enabled, |e| *e.get_ref()),
            thresholds,
            rules,
            retention,
        };
        let intake = IntakeSettings {
            dedup,
            max_batch: c.count("intake.max_batch", &file.intake.max_batch, intake_defaults.max_batch, 1..10_001),
            max_payload_bytes: c.count(
                "intake.max_payload_bytes",
                &file.intake.max_payload_bytes,
                intake_defaults.max_payload_bytes,
                1..(256 * 1024 * 1024),
            ),
        };

        let listen_text = env
            .var("HUB_LISTEN")
            .map(|v| (v, None))
            .or_else(|| file.server.listen.as_ref().map(|l| (l.get_ref().clone(), Some(l.span()))));
        let listen = match listen_text {
            None => None,
            Some((text, span)) => match text.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    let origin = if span.is_none() { "HUB_LISTEN" } else { "server.listen" };
                    c.at(span, format!("{origin} = \"{text}\" is not an address like 127.0.0.1:9400"));
                    None
                }
            },
        };

        let mut api_tokens = crate::api::auth::ApiTokens::default();
        for t in file.api.tokens.iter().flatten() {
            if let Err(e) = api_tokens.add_hashed(t.get_ref()) {
                c.at(Some(t.span()), format!("api.tokens: {e}"));
            }
        }
        if let Some(list) = env.var("HUB_API_TOKENS")
            && let Err(e) = api_tokens.add_plain_list(&list)
        {
            c.at(None, format!("HUB_API_TOKENS: {e}"));
        }

        let holidays = file.calendar.holidays.as_ref().and_then(|h| {
            match crate::mapping::declarative::HolidayTable::load(&base.join(h.get_ref())) {
                Ok(table) => Some(table),
                Err(errors) => {
                    c.at(Some(h.span()), format!("calendar.holidays `{}` is not valid:", h.get_ref()));
                    c.errors.extend(errors.0);
                    None
                }
            }
        });

        let mut sources = Vec::new();
        let mut embedded_mqtt = None;
        let mut seen = std::collections::HashSet::new();
        for s in &file.sources {
            let name = s.name.get_ref().trim().to_string();
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
                c.at(Some(s.name.span()), "sources.name must be letters, digits, `_` or `-`");
            } else if !seen.insert(name.clone()) {
                c.at(Some(s.name.span()), format!("source `{name}` is defined twice"));
            }
            let mapping = match s.mapping.get_ref().as_str() {
                "canonical" => Some(MappingRef::Canonical),
                builtin if builtin.starts_with("builtin:") => {
                    let agency = &builtin["builtin:".len()..];
                    match crate::mapping::shipped::mapper(agency) {
                        Some(Ok(mapper)) => Some(MappingRef::File {
                            path: PathBuf::from(builtin),
                            mapper: std::sync::Arc::new(with_holidays(mapper, holidays.as_ref())),
                        }),
                        Some(Err(errors)) => {
                            c.at(Some(s.mapping.span()), format!("the shipped mapping `{builtin}` is not valid:"));
                            c.errors.extend(errors.0);
                            None
                        }
                        None => {
                            c.at(
                                Some(s.mapping.span()),
                                format!(
                                    "no shipped mapping `{agency}` (shipped: {})",
                                    crate::mapping::shipped::AGENCIES
                                        .iter()
                                        .map(|a| format!("builtin:{a}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                            None
                        }
                    }
                }
                file if file.ends_with(".toml") => {
                    let path = base.join(file);
                    match crate::mapping::DeclarativeMapper::load(&path) {
                        Ok(mapper) => Some(MappingRef::File {
                            path,
                            mapper: std::sync::Arc::new(with_holidays(mapper, holidays.as_ref())),
                        }),
                        Err(errors) => {
                            c.at(Some(s.mapping.span()), format!("mapping `{file}` is not valid:"));
                            c.errors.extend(errors.0);
                            None
                        }
                    }
                }
                other => {
                    c.at(
                        Some(s.mapping.span()),
                        format!(
                            "unknown mapping `{other}`: write `canonical`, `builtin:hotline` (petition, court, terminal) or the path of a mapping file (…/hotline.toml)"
                        ),
                    );
                    None
                }
            };
            let kind = s.transport.get_ref().as_str();
            for (key, span) in s.stray_keys(kind) {
                c.at(Some(span), format!("`{key}` does not apply to transport `{kind}`"));
            }
            let transport = match kind {
                "http" => {
                    // A body the mapping would quarantine for its size is refused at the door.
                    let limit = match &mapping {
                        Some(MappingRef::File { mapper, .. }) => mapper.max_bytes().min(intake.max_payload_bytes),
                        _ => intake.max_payload_bytes,
                    };
                    http_source(&mut c, s, &name, env, limit)
                }
                "amqp" => amqp_source(&mut c, s, &name, env),
                "mqtt" => mqtt_source(&mut c, s, &name, base, env, &mut embedded_mqtt),
                "court_feed" => court_feed_source(&mut c, s, &name, env),
                "file_drop" => match &s.dir {
                    Some(dir) => Some(Transport::FileDrop(connectors::court::FileDropConfig::new(
                        base.join(dir.get_ref()),
                        &name,
                    ))),
                    None => {
                        c.at(Some(s.transport.span()), "a file_drop source needs `dir`");
                        None
                    }
                },
                other => {
                    c.at(
                        Some(s.transport.span()),
                        format!("unknown transport `{other}` (known: http, amqp, mqtt, court_feed, file_drop)"),
                    );
                    None
                }
            };
            if let Some(MappingRef::File { mapper, .. }) = &mapping
                && let Some(why) = mapper.holiday_coverage(env.today())
            {
                let (line, column) = line_col(text, s.mapping.span().start);
                warnings.push(ConfigError {
                    origin: origin.to_string(),
                    line: Some(line),
                    column: Some(column),
                    message: format!("source `{name}`: {why}"),
                });
            }
            if let (Some(mapping), Some(transport)) = (mapping, transport) {
                sources.push(SourceSettings { name, mapping, transport });
            }
        }

        if c.errors.is_empty() {
            for source in &sources {
                if let Some(why) = crate::feedback::unreachable(source) {
                    warnings.push(ConfigError { origin: origin.to_string(), line: None, column: None, message: why });
                }
            }
            if platform.secrets.is_empty() && listen.is_some() && env.speaks_to_platform() {
                warnings.push(ConfigError {
                    origin: origin.to_string(),
                    line: None,
                    column: None,
                    message: "no callback secret (HUB_PLATFORM_SECRET or platform.secrets): the platform's status callbacks are answered 503 and wait at the platform until one is set".into(),
                });
            }
            if !platform.secrets.is_empty() && listen.is_none() {
                warnings.push(ConfigError {
                    origin: origin.to_string(),
                    line: None,
                    column: None,
                    message: "a callback secret is set but the hub listens nowhere (server.listen / HUB_LISTEN): the platform's callbacks cannot reach it".into(),
                });
            }
            if listen.is_some() && api_tokens.is_empty() {
                warnings.push(ConfigError {
                    origin: origin.to_string(),
                    line: None,
                    column: None,
                    message: "no API tokens ([api] tokens or HUB_API_TOKENS): the admin API and the dashboard answer 401 to everyone".into(),
                });
            }
            Ok(Settings {
                api_tokens,
                open311_public: file.open311.public.unwrap_or(false),
                deadlines,
                database_url,
                platform,
                dispatcher,
                intake,
                listen,
                sources,
                amqp_url: env.var("HUB_AMQP_URL"),
                mqtt_url: env.var("HUB_MQTT_URL"),
                court_feed_url: env.var("HUB_COURT_FEED_URL"),
                embedded_mqtt,
                warnings,
            })
        } else {
            Err(ConfigErrors(c.errors))
        }
    }
}

fn broker_url(c: &mut Checker, s: &SourceSection, env: &dyn Env, var: &str, schemes: &[&str]) -> Option<String> {
    let (url, span) = match (&s.url, env.var(var)) {
        (Some(u), _) => (u.get_ref().clone(), Some(u.span())),
        (None, Some(u)) => (u, None),
        (None, None) => {
            c.at(Some(s.transport.span()), format!("this source needs `url` or the environment variable {var}"));
            return None;
        }
    };
    if !schemes.iter().any(|scheme| url.starts_with(&format!("{scheme}://"))) {
        let shown = url.split('@').next_back().unwrap_or_default();
        c.at(span, format!("the broker URL (…{shown}) must start with {}", schemes.join("://, ") + "://"));
        return None;
    }
    Some(url)
}

/// The environment variable that gives an http source's tokens
/// (comma-separated): `HUB_SOURCE_<NAME>_TOKENS`, `-` read as `_`.
pub fn tokens_var(source: &str) -> String {
    format!("HUB_SOURCE_{}_TOKENS", source.to_ascii_uppercase().replace('-', "_"))
}

fn http_source(c: &mut Checker, s: &SourceSection, name: &str, env: &dyn Env, body_limit: usize) -> Option<Transport> {
    use connectors::http::{Access, HttpConfig, Tokens};
    let Some(listen) = &s.listen else {
        c.at(Some(s.transport.span()), "an http source needs `listen`");
        return None;
    };
    let Ok(addr) = listen.get_ref().parse::<SocketAddr>() else {
        c.at(Some(listen.span()), format!("listen = \"{}\" is not an address like 127.0.0.1:9401", listen.get_ref()));
        return None;
    };
    let var = tokens_var(name);
    let open = s.open.as_ref().filter(|o| *o.get_ref());
    let access = match (env.var(&var), &s.tokens) {
        (Some(list), _) => match Tokens::new(list.split(',').map(str::trim).filter(|t| !t.is_empty())) {
            Ok(t) => Access::Tokens(t),
            Err(e) => {
                c.at(None, format!("environment variable {var}: {e}"));
                return None;
            }
        },
        (None, Some(list)) => match Tokens::new(list.get_ref()) {
            Ok(t) => Access::Tokens(t),
            Err(e) => {
                c.at(Some(list.span()), format!("tokens: {e}"));
                return None;
            }
        },
        (None, None) if open.is_some() => Access::OpenOnLoopback,
        (None, None) => {
            c.at(
                Some(s.transport.span()),
                format!(
                    "an http source needs `tokens` (or the environment variable {var}): without them anyone who reaches {addr} could change tickets; `open = true` takes records without a token on a loopback address (demo, tests)"
                ),
            );
            return None;
        }
    };
    if let (Some(o), Access::Tokens(_)) = (open, &access) {
        c.at(Some(o.span()), "`open = true` and tokens contradict each other: remove one");
        return None;
    }
    let mut config = match HttpConfig::new(addr, access) {
        Ok(config) => config,
        Err(e) => {
            c.at(open.map(Spanned::span).or(Some(listen.span())), e);
            return None;
        }
    };
    config.max_body_bytes = body_limit;
    config.header_timeout = c.duration("header_timeout", &s.header_timeout, config.header_timeout);
    config.request_timeout = c.duration("request_timeout", &s.request_timeout, config.request_timeout);
    config.max_connections = c.count("max_connections", &s.max_connections, config.max_connections, 1..65_536);
    Some(Transport::Http(config))
}

fn amqp_source(c: &mut Checker, s: &SourceSection, name: &str, env: &dyn Env) -> Option<Transport> {
    let url = broker_url(c, s, env, "HUB_AMQP_URL", &["amqp", "amqps"]);
    let Some(exchange) = &s.exchange else {
        c.at(Some(s.transport.span()), "an amqp source needs `exchange` (the agency's exchange, e.g. hotline.orders)");
        return None;
    };
    let queue = s.queue.as_ref().map_or_else(|| format!("hub.{name}"), |q| q.get_ref().clone());
    let mut config = connectors::amqp::AmqpConfig::new(url?, name, exchange.get_ref().clone(), queue);
    if let Some(b) = &s.bindings {
        if b.get_ref().is_empty() {
            c.at(Some(b.span()), "bindings must name at least one routing key pattern");
        }
        config = config.with_binding_keys(b.get_ref().clone());
    }
    if let Some(p) = &s.prefetch {
        match u16::try_from(*p.get_ref()) {
            Ok(n) if n > 0 => config.prefetch = n,
            _ => c.at(Some(p.span()), "prefetch must be between 1 and 65535"),
        }
    }
    Some(Transport::Amqp(config))
}

/// The broker an mqtt source connects to when it names none: the centre's
/// own, on this machine. Never the embedded one, which would acknowledge the
/// terminals' reports and lose them with the hub's process.
pub const DEFAULT_MQTT_URL: &str = "mqtt://127.0.0.1:1883";

fn mqtt_source(
    c: &mut Checker,
    s: &SourceSection,
    name: &str,
    base: &Path,
    env: &dyn Env,
    embedded: &mut Option<SocketAddr>,
) -> Option<Transport> {
    if let Some(p) = &s.embedded_port {
        c.at(
            Some(p.span()),
            format!(
                "embedded_port is gone: without `url` the hub now connects to {DEFAULT_MQTT_URL} (or HUB_MQTT_URL); \
                 to accept an in-memory broker that loses reports on restart, write embedded_broker = \"127.0.0.1:{}\"",
                p.get_ref()
            ),
        );
        return None;
    }
    let url = if let Some(listen) = &s.embedded_broker {
        if s.url.is_some() || env.var("HUB_MQTT_URL").is_some() {
            c.at(
                Some(listen.span()),
                "embedded_broker and a broker URL (`url` or HUB_MQTT_URL) both name the broker: keep one",
            );
            return None;
        }
        let text = listen.get_ref().trim();
        let addr = match text.parse::<u16>() {
            Ok(port) if port > 0 => SocketAddr::from(([127, 0, 0, 1], port)),
            _ => match text.parse::<SocketAddr>() {
                Ok(addr) if addr.port() > 0 => addr,
                _ => {
                    c.at(
                        Some(listen.span()),
                        format!("embedded_broker = \"{text}\" is not an address like 127.0.0.1:1883 (or a port)"),
                    );
                    return None;
                }
            },
        };
        match embedded {
            Some(other) if *other != addr => {
                c.at(
                    Some(listen.span()),
                    format!("the embedded MQTT broker already listens on {other}: one broker per hub"),
                );
                return None;
            }
            _ => *embedded = Some(addr),
        }
        connectors::mqtt::EmbeddedBroker::url_for(addr)
    } else if s.url.is_none() && env.var("HUB_MQTT_URL").is_none() {
        DEFAULT_MQTT_URL.to_string()
    } else {
        broker_url(c, s, env, "HUB_MQTT_URL", &["mqtt", "mqtts", "tcp", "ssl"])?
    };
    let mut config = connectors::mqtt::MqttConfig::new(url, name);
    // Credentials from the environment, so that they need not be in a file.
    if let Some(user) = env.var("HUB_MQTT_USERNAME") {
        config.username = Some(user);
    }
    if let Some(password) = env.var("HUB_MQTT_PASSWORD") {
        config.password = Some(password);
    }
    if let Some(ca) = &s.ca_file {
        config.ca_file = Some(base.join(ca.get_ref()));
    }
    config = match &s.client_id {
        Some(id) => config.with_client_id(id.get_ref().clone()),
        None if config.client_id.is_empty() => config.with_client_id(format!("hub-{name}")),
        None => config,
    };
    if let Some(t) = &s.topics {
        config = config.with_topics(t.get_ref().clone());
    }
    if let Some(g) = &s.shared_group {
        config = config.with_shared_group(g.get_ref().clone());
    }
    if let Some(n) = &s.inflight {
        match u16::try_from(*n.get_ref()) {
            Ok(n) if n > 0 => config.inflight = n,
            _ => c.at(Some(n.span()), "inflight must be between 1 and 65535"),
        }
    }
    let protocol = match &s.protocol {
        None => None,
        Some(p) => match p.get_ref().text().parse::<connectors::mqtt::MqttProtocol>() {
            Ok(protocol) => Some((protocol, p.span())),
            Err(e) => {
                c.at(Some(p.span()), e.to_string());
                return None;
            }
        },
    };
    config.protocol = match (protocol, &s.embedded_broker) {
        (Some((protocol, _)), None) => protocol,
        (None, None) => connectors::mqtt::MqttProtocol::default(),
        // The embedded broker's listener at that address speaks MQTT 3.1.1.
        (None | Some((connectors::mqtt::MqttProtocol::V311, _)), Some(_)) => connectors::mqtt::MqttProtocol::V311,
        (Some((_, span)), Some(_)) => {
            c.at(Some(span), "the embedded broker's listener speaks MQTT 3.1.1 only: remove `protocol`");
            return None;
        }
    };
    if config.protocol == connectors::mqtt::MqttProtocol::V311
        && let Some(g) = &s.shared_group
    {
        let why = if s.embedded_broker.is_some() {
            "the embedded broker's listener speaks MQTT 3.1.1 only; run several hubs against the centre's broker"
        } else {
            "remove protocol = \"3.1.1\" if the broker speaks MQTT 5, or remove shared_group and run one hub on this session"
        };
        c.at(Some(g.span()), format!("shared_group needs MQTT 5 (shared subscriptions do not exist in 3.1.1): {why}"));
        return None;
    }
    // The connector checks the rest (URL form, credentials, CA file, topic
    // filters, group name); its errors never show a password.
    match connectors::mqtt::MqttConnector::new(config.clone()) {
        Ok(_) => Some(Transport::Mqtt(config)),
        Err(e) => {
            c.at(Some(s.transport.span()), format!("mqtt source `{name}`: {e}"));
            None
        }
    }
}

fn court_feed_source(c: &mut Checker, s: &SourceSection, name: &str, env: &dyn Env) -> Option<Transport> {
    let url = broker_url(c, s, env, "HUB_COURT_FEED_URL", &["http", "https"]);
    let Some(court) = &s.court else {
        c.at(Some(s.transport.span()), "a court_feed source needs `court` (the court code, e.g. 吉0402)");
        return None;
    };
    let mut config = connectors::court::CourtFeedConfig::new(url?, name, court.get_ref().clone());
    config.poll_interval = c.duration("poll_interval", &s.poll_interval, config.poll_interval);
    config.retry_after_max = c.duration("retry_after_max", &s.retry_after_max, config.retry_after_max);
    Some(Transport::CourtFeed(config))
}

const BUILTIN_ORIGIN: &str = "(built-in configuration)";

/// The built-in configuration's text, for the environment it is read in:
/// the four agencies at the contracts' names with the shipped mappings.
/// RabbitMQ is `HUB_AMQP_URL` (else the local broker as guest); terminals
/// use `HUB_MQTT_URL` (else the local broker on port 1883); the court
/// feed is `HUB_COURT_FEED_URL` (court `HUB_COURT`, else 吉0402), and
/// without one the court drops its XML files in `./court-drop/`.
pub fn builtin_text(env: &dyn Env) -> String {
    let mut text = String::from(
        "# The built-in configuration (`hub run` without --config or ./hub.toml).\n\
         # Copy it to hub.toml to change it; `hub mapping export DIR` writes the shipped mappings.\n",
    );
    let amqp_url = if env.var("HUB_AMQP_URL").is_some() {
        String::new()
    } else {
        "url = \"amqp://guest:guest@127.0.0.1:5672/%2f\"  # HUB_AMQP_URL overrides\n".to_string()
    };
    for (name, exchange) in [("hotline", "hotline.orders"), ("petition", "petition.records")] {
        text.push_str(&format!(
            "\n[[sources]]\nname = \"{name}\"\nmapping = \"builtin:{name}\"\ntransport = \"amqp\"\nexchange = \"{exchange}\"\n{amqp_url}"
        ));
    }
    text.push_str("\n[[sources]]\nname = \"terminal\"\nmapping = \"builtin:terminal\"\ntransport = \"mqtt\"\n");
    if env.var("HUB_MQTT_URL").is_none() {
        text.push_str(&format!("url = \"{DEFAULT_MQTT_URL}\"  # HUB_MQTT_URL overrides\n"));
    }
    text.push_str("protocol = \"5\"  # \"3.1.1\" for a broker without MQTT 5\n");
    text.push_str("\n[[sources]]\nname = \"court\"\nmapping = \"builtin:court\"\n");
    if env.var("HUB_COURT_FEED_URL").is_some() {
        let court = env.var("HUB_COURT").unwrap_or_else(|| "吉0402".to_string());
        text.push_str(&format!("transport = \"court_feed\"\ncourt = \"{court}\"\n"));
    } else {
        text.push_str("# no HUB_COURT_FEED_URL: the court drops XML files here\ntransport = \"file_drop\"\ndir = \"court-drop\"\n");
    }
    text
}

/// Where `hub` looks for a config file when none is given.
pub fn default_path() -> Option<PathBuf> {
    let p = PathBuf::from("hub.toml");
    p.exists().then_some(p)
}

/// A duration as the config writes it: `60d` rather than humantime's months.
fn days(d: Duration) -> String {
    if d.as_secs().is_multiple_of(86_400) {
        format!("{}d", d.as_secs() / 86_400)
    } else {
        humantime::format_duration(d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the platform's token, which every configuration needs.
    const NO_ENV: [(&str, &str); 1] = [("HUB_PLATFORM_TOKEN", "t")];

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../docs/hub.example.toml");
        let s = Settings::parse(text, "hub.example.toml", &NO_ENV).unwrap();
        assert_eq!(s.sources.len(), 1);
        assert_eq!(s.platform.timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_builtin_config_enables_the_four_agencies() {
        let s = Settings::builtin(&NO_ENV).unwrap();
        let names: Vec<&str> = s.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["hotline", "petition", "terminal", "court"]);
        let Transport::Amqp(hotline) = &s.sources[0].transport else { panic!("hotline is amqp") };
        assert_eq!(hotline.exchange, "hotline.orders");
        assert!(hotline.url.starts_with("amqp://guest:guest@127.0.0.1:5672"));
        // The centre's broker, never the in-memory one: see DEFAULT_MQTT_URL.
        assert_eq!(s.embedded_mqtt, None);
        let Transport::Mqtt(terminal) = &s.sources[2].transport else { panic!("terminal is mqtt") };
        assert_eq!(terminal.url, "mqtt://127.0.0.1:1883");
        assert_eq!(terminal.protocol, connectors::mqtt::MqttProtocol::V5);
        assert!(builtin_text(&NO_ENV).contains("protocol = \"5\""), "`hub check` shows the protocol");
        assert!(matches!(s.sources[3].transport, Transport::FileDrop(_)));

        let env = [
            ("HUB_PLATFORM_TOKEN", "t"),
            ("HUB_AMQP_URL", "amqp://hub:pw@rabbit:5672/%2f"),
            ("HUB_MQTT_URL", "mqtt://broker:1883"),
            ("HUB_COURT_FEED_URL", "http://court.example/api"),
            ("HUB_COURT", "吉0421"),
        ];
        let s = Settings::builtin(&env).unwrap();
        let Transport::Amqp(petition) = &s.sources[1].transport else { panic!("petition is amqp") };
        assert_eq!(
            (petition.url.as_str(), petition.exchange.as_str()),
            ("amqp://hub:pw@rabbit:5672/%2f", "petition.records")
        );
        assert_eq!(s.embedded_mqtt, None);
        let Transport::CourtFeed(court) = &s.sources[3].transport else { panic!("court polls a feed") };
        assert_eq!(court.court, "吉0421");
    }

    #[test]
    fn builtin_mappings_are_named_and_checked() {
        let text = "[[sources]]\nname = \"h\"\nmapping = \"builtin:hotline\"\ntransport = \"http\"\nlisten = \"127.0.0.1:1\"\nopen = true\n";
        let s = Settings::parse(text, "hub.toml", &NO_ENV).unwrap();
        assert!(matches!(&s.sources[0].mapping, MappingRef::File { mapper, .. } if mapper.name() == "hotline"));
        let shown = Settings::parse(&text.replace("hotline", "nobody"), "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("hub.toml:3:11: no shipped mapping `nobody` (shipped: builtin:hotline"), "{shown}");
    }

    #[test]
    fn an_mqtt_source_without_a_broker_connects_to_the_local_one_never_the_embedded_one() {
        let text = "[[sources]]\nname = \"t\"\nmapping = \"canonical\"\ntransport = \"mqtt\"\n";
        let s = Settings::parse(text, "hub.toml", &NO_ENV).unwrap();
        assert_eq!(s.embedded_mqtt, None);
        let Transport::Mqtt(m) = &s.sources[0].transport else { panic!("mqtt") };
        assert_eq!(m.url, "mqtt://127.0.0.1:1883");
        let s = Settings::parse(text, "hub.toml", &[("HUB_MQTT_URL", "mqtt://b:1884"), ("HUB_PLATFORM_TOKEN", "t")])
            .unwrap();
        let Transport::Mqtt(m) = &s.sources[0].transport else { panic!("mqtt") };
        assert_eq!(m.url, "mqtt://b:1884");
    }

    #[test]
    fn mqtt_tls_and_credentials_from_the_url_or_the_environment() {
        let text = "[[sources]]\nname = \"t\"\nmapping = \"canonical\"\ntransport = \"mqtt\"\nurl = \"mqtts://hub:pw@b\"\nca_file = \"/etc/ssl/certs/ca-certificates.crt\"\n";
        let s = Settings::parse(text, "hub.toml", &NO_ENV).unwrap();
        let Transport::Mqtt(m) = &s.sources[0].transport else { panic!("mqtt") };
        assert_eq!(m.ca_file.as_deref(), Some(Path::new("/etc/ssl/certs/ca-certificates.crt")));
        assert!(!format!("{s:?}").contains(":pw@"), "the password is not in the settings' Debug");
        let env = [("HUB_MQTT_USERNAME", "hub2"), ("HUB_MQTT_PASSWORD", "pw2"), ("HUB_PLATFORM_TOKEN", "t")];
        let s = Settings::parse(text, "hub.toml", &env).unwrap();
        let Transport::Mqtt(m) = &s.sources[0].transport else { panic!("mqtt") };
        assert_eq!((m.username.as_deref(), m.password.as_deref()), (Some("hub2"), Some("pw2")));
        let missing = text.replace("/etc/ssl/certs/ca-certificates.crt", "/no/such/ca.pem");
        let shown = Settings::parse(&missing, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("cannot read the CA file /no/such/ca.pem"), "{shown}");
        let bad = text.replace("mqtts://hub:pw@b", "mqtts://hub:pw@b:x");
        let shown = Settings::parse(&bad, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("hub:***@b:x") && !shown.contains(":pw@"), "{shown}");
    }

    #[test]
    fn mqtt_speaks_5_unless_told_3_1_1_and_a_shared_group_needs_5() {
        use connectors::mqtt::MqttProtocol;
        let text =
            "[[sources]]\nname = \"t\"\nmapping = \"canonical\"\ntransport = \"mqtt\"\nurl = \"mqtt://b:1883\"\n";
        let protocol = |text: &str| {
            let s = Settings::parse(text, "hub.toml", &NO_ENV).unwrap();
            let Transport::Mqtt(m) = &s.sources[0].transport else { panic!("mqtt") };
            (m.protocol, m.inflight)
        };
        assert_eq!(protocol(text), (MqttProtocol::V5, 256));
        assert_eq!(protocol(&format!("{text}inflight = 1000\n")).1, 1000);
        let shown = Settings::parse(&format!("{text}inflight = 0\n"), "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("hub.toml:6:12: inflight must be between 1 and 65535"), "{shown}");
        for written in ["\"5\"", "5", "\"v5\"", "5.0"] {
            assert_eq!(protocol(&format!("{text}protocol = {written}\n")).0, MqttProtocol::V5, "{written}");
        }
        for written in ["\"3.1.1\"", "\"v3.1.1\""] {
            assert_eq!(protocol(&format!("{text}protocol = {written}\n")).0, MqttProtocol::V311, "{written}");
        }
        let shown = Settings::parse(&format!("{text}protocol = \"4\"\n"), "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("hub.toml:6:12: unknown MQTT protocol `4`") && shown.contains("\"3.1.1\""), "{shown}");
        let grouped = format!("{text}protocol = \"3.1.1\"\nshared_group = \"hubs\"\n");
        let shown = Settings::parse(&grouped, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(
            shown.contains("hub.toml:7:16: shared_group needs MQTT 5") && shown.contains("remove protocol = \"3.1.1\""),
            "{shown}"
        );
        let stray = "[[sources]]\nname = \"h\"\nmapping = \"canonical\"\ntransport = \"amqp\"\nurl = \"amqp://h\"\nexchange = \"x\"\nprotocol = \"5\"\n";
        let shown = Settings::parse(stray, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("`protocol` does not apply to transport `amqp`"), "{shown}");

        // The embedded broker's listener speaks 3.1.1, and says so if told otherwise.
        let embedded =
            "[[sources]]\nname = \"t\"\nmapping = \"canonical\"\ntransport = \"mqtt\"\nembedded_broker = \"18832\"\n";
        assert_eq!(protocol(embedded).0, MqttProtocol::V311);
        assert_eq!(protocol(&format!("{embedded}protocol = \"3.1.1\"\n")).0, MqttProtocol::V311);
        let shown =
            Settings::parse(&format!("{embedded}protocol = \"5\"\n"), "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("hub.toml:6:12: the embedded broker's listener speaks MQTT 3.1.1 only"), "{shown}");
        let shown = Settings::parse(&format!("{embedded}shared_group = \"hubs\"\n"), "hub.toml", &NO_ENV)
            .unwrap_err()
            .to_string();
        assert!(shown.contains("hub.toml:6:16: shared_group needs MQTT 5"), "{shown}");
    }

    #[test]
    fn the_embedded_broker_is_an_explicit_option_on_loopback_unless_told() {
        let text =
            "[[sources]]\nname = \"t\"\nmapping = \"canonical\"\ntransport = \"mqtt\"\nembedded_broker = \"18830\"\n";
        let s = Settings::parse(text, "hub.toml", &NO_ENV).unwrap();
        assert_eq!(s.embedded_mqtt, Some(SocketAddr::from(([127, 0, 0, 1], 18830))));
        let Transport::Mqtt(m) = &s.sources[0].transport else { panic!("mqtt") };
        assert_eq!(m.url, "mqtt://127.0.0.1:18830");
        let wide = Settings::parse(&text.replace("\"18830\"", "\"0.0.0.0:18831\""), "hub.toml", &NO_ENV).unwrap();
        assert_eq!(wide.embedded_mqtt, Some(SocketAddr::from(([0, 0, 0, 0], 18831))));
        let shown =
            Settings::parse(text, "hub.toml", &[("HUB_MQTT_URL", "mqtt://b:1883"), ("HUB_PLATFORM_TOKEN", "t")])
                .unwrap_err()
                .to_string();
        assert!(shown.contains("hub.toml:5:19: embedded_broker and a broker URL"), "{shown}");
        let bad = Settings::parse(&text.replace("18830", "here"), "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(bad.contains("is not an address like 127.0.0.1:1883"), "{bad}");
        // The old key says what replaced it rather than quietly meaning something else.
        let old = "[[sources]]\nname = \"t\"\nmapping = \"canonical\"\ntransport = \"mqtt\"\nembedded_port = 1883\n";
        let shown = Settings::parse(old, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(shown.contains("hub.toml:5:17: embedded_port is gone") && shown.contains("embedded_broker"), "{shown}");
    }

    #[test]
    fn an_http_source_needs_tokens_unless_it_is_open_on_loopback() {
        use connectors::http::Access;
        let base = "[[sources]]\nname = \"canon-1\"\nmapping = \"canonical\"\ntransport = \"http\"\n";
        let shown = Settings::parse(&format!("{base}listen = \"0.0.0.0:9401\"\n"), "hub.toml", &NO_ENV)
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains(
                "hub.toml:4:13: an http source needs `tokens` (or the environment variable HUB_SOURCE_CANON_1_TOKENS)"
            ),
            "{shown}"
        );
        let open_wide = format!("{base}listen = \"0.0.0.0:9401\"\nopen = true\n");
        let shown = Settings::parse(&open_wide, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(
            shown.contains("hub.toml:6:8: an open source (no tokens) may listen only on a loopback address"),
            "{shown}"
        );
        let open = format!("{base}listen = \"127.0.0.1:9401\"\nopen = true\n");
        let s = Settings::parse(&open, "hub.toml", &NO_ENV).unwrap();
        let Transport::Http(h) = &s.sources[0].transport else { panic!("http") };
        assert_eq!(h.access(), &Access::OpenOnLoopback);
        assert_eq!(h.max_body_bytes, s.intake.max_payload_bytes);

        let tokens = format!(
            "[intake]\nmax_payload_bytes = 4096\n{base}listen = \"0.0.0.0:9401\"\ntokens = [\"first-token-0123456789\", \"second-token-0123456789\"]\nrequest_timeout = \"5s\"\nmax_connections = 8\n"
        );
        let s = Settings::parse(&tokens, "hub.toml", &NO_ENV).unwrap();
        let Transport::Http(h) = &s.sources[0].transport else { panic!("http") };
        let Access::Tokens(t) = h.access() else { panic!("tokens") };
        assert!(t.admit("second-token-0123456789") && !t.admit("third-token-0123456789"));
        assert_eq!((h.max_body_bytes, h.request_timeout, h.max_connections), (4096, Duration::from_secs(5), 8));
        // The environment replaces the file's tokens.
        let env = [
            ("HUB_SOURCE_CANON_1_TOKENS", "env-token-0123456789, other-token-0123456789"),
            ("HUB_PLATFORM_TOKEN", "t"),
        ];
        let s = Settings::parse(&tokens, "hub.toml", &env).unwrap();
        let Transport::Http(h) = &s.sources[0].transport else { panic!("http") };
        let Access::Tokens(t) = h.access() else { panic!("tokens") };
        assert!(t.admit("other-token-0123456789") && !t.admit("first-token-0123456789"));
        let shown = Settings::parse(&tokens.replace("first-token-0123456789", "short"), "hub.toml", &NO_ENV)
            .unwrap_err()
            .to_string();
        assert!(shown.contains("tokens: token 1 is shorter than 16 characters"), "{shown}");
        // A mapping's max_bytes is the limit when it is the smaller one.
        let hotline =
            format!("{base}listen = \"127.0.0.1:9401\"\nopen = true\n").replace("canonical", "builtin:terminal");
        let s = Settings::parse(&hotline, "hub.toml", &NO_ENV).unwrap();
        let Transport::Http(h) = &s.sources[0].transport else { panic!("http") };
        assert_eq!(h.max_body_bytes, 262_144);
    }

    #[test]
    fn the_retention_of_fingerprints_is_never_shorter_than_the_reach() {
        let s = Settings::parse("", "hub.toml", &NO_ENV).unwrap();
        assert_eq!(s.intake.dedup.retention, crate::intake::DedupSettings::DEFAULT_RETENTION);
        let s = Settings::parse("[dedup]\nretention = \"90d\"\n", "hub.toml", &NO_ENV).unwrap();
        assert_eq!(s.intake.dedup.retention, Duration::from_secs(90 * 24 * 3600));
        // A longer window takes the default retention with it.
        let s = Settings::parse("[dedup]\nidentifier_window = \"400d\"\n", "hub.toml", &NO_ENV).unwrap();
        assert_eq!(s.intake.dedup.retention, Duration::from_secs(400 * 24 * 3600));
        let shown = Settings::parse("[dedup]\nretention = \"10d\"\n", "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(
            shown.contains("hub.toml:2:13: dedup.retention (10d) must not be shorter than the longest window (60d)"),
            "{shown}"
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let text = "[platform]\nurl = \"ftp://x\"\ntimeout = \"ten seconds\"\n\n[[sources]]\nname = \"a b\"\nmapping = \"nope\"\ntransport = \"http\"\n";
        let errs = Settings::parse(text, "hub.toml", &NO_ENV).unwrap_err();
        let shown = errs.to_string();
        assert!(shown.contains("hub.toml:2:7: platform.url = \"ftp://x\" is not an http"), "{shown}");
        assert!(shown.contains("hub.toml:3:11: platform.timeout"), "{shown}");
        assert!(shown.contains("hub.toml:6:8: sources.name"), "{shown}");
        assert!(shown.contains("hub.toml:7:11: unknown mapping `nope`"), "{shown}");
        assert!(shown.contains("hub.toml:8:13: an http source needs `listen`"), "{shown}");
        let missing =
            "[[sources]]\nname = \"h\"\nmapping = \"no/such.toml\"\ntransport = \"http\"\nlisten = \"127.0.0.1:1\"\n";
        let shown = Settings::parse(missing, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(
            shown.contains("hub.toml:3:11: mapping `no/such.toml` is not valid") && shown.contains("cannot read"),
            "{shown}"
        );
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_lines() {
        let errs = Settings::parse("[platform]\nurll = \"http://x\"\n", "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(errs.starts_with("hub.toml:2:1:") && errs.contains("unknown field `urll`"), "{errs}");
        let errs = Settings::parse("[store\n", "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(errs.starts_with("hub.toml:1:"), "{errs}");
    }

    #[test]
    fn the_delivery_batch_feeds_the_requests_in_flight() {
        let env = [("HUB_PLATFORM_TOKEN", "t")];
        let s = Settings::parse("[delivery]\nconcurrency = 512\n", "hub.toml", &env).unwrap();
        assert_eq!((s.dispatcher.concurrency, s.dispatcher.batch), (512, 512), "unset, the batch grows with it");
        let s = Settings::parse("[delivery]\nconcurrency = 4\n", "hub.toml", &env).unwrap();
        assert_eq!(s.dispatcher.batch, 16, "unset, four rounds of requests at most");
        let s = Settings::parse("", "hub.toml", &env).unwrap();
        assert_eq!((s.dispatcher.concurrency, s.dispatcher.batch), (64, 256));
        assert_eq!(s.dispatcher.request_timeout, s.platform.timeout);
        let errs =
            Settings::parse("[delivery]\nconcurrency = 64\nbatch = 16\n", "hub.toml", &env).unwrap_err().to_string();
        assert!(errs.starts_with("hub.toml:3:") && errs.contains("delivery.batch (16) must be at least"), "{errs}");
    }

    #[test]
    fn broker_sources() {
        let text = r#"
[[sources]]
name = "hotline"
mapping = "canonical"
transport = "amqp"
exchange = "hotline.orders"
bindings = ["order.#"]
prefetch = 64

[[sources]]
name = "terminal"
mapping = "canonical"
transport = "mqtt"
url = "mqtt://127.0.0.1:1883"
shared_group = "hubs"
"#;
        let s = Settings::parse(
            text,
            "hub.toml",
            &[("HUB_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"), ("HUB_PLATFORM_TOKEN", "t")],
        )
        .unwrap();
        match &s.sources[0].transport {
            Transport::Amqp(a) => {
                assert_eq!(
                    (a.queue.as_str(), a.prefetch, a.binding_keys.clone()),
                    ("hub.hotline", 64, vec!["order.#".to_string()])
                )
            }
            other => panic!("{other:?}"),
        }
        match &s.sources[1].transport {
            Transport::Mqtt(m) => {
                assert_eq!((m.client_id.as_str(), m.shared_group.as_deref()), ("hub-terminal", Some("hubs")))
            }
            other => panic!("{other:?}"),
        }
        let errs = Settings::parse(text, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(
            errs.contains("hub.toml:5:13: this source needs `url` or the environment variable HUB_AMQP_URL"),
            "{errs}"
        );
        let stray = "[[sources]]\nname = \"t\"\nmapping = \"canonical\"\ntransport = \"mqtt\"\nurl = \"mqtt://h:1\"\nexchange = \"x\"\n";
        let errs = Settings::parse(stray, "hub.toml", &NO_ENV).unwrap_err().to_string();
        assert!(errs.contains("hub.toml:6:12: `exchange` does not apply to transport `mqtt`"), "{errs}");
        let court = "[[sources]]\nname = \"court\"\nmapping = \"canonical\"\ntransport = \"court_feed\"\ncourt = \"吉0402\"\npoll_interval = \"5s\"\nretry_after_max = \"10m\"\n\n[[sources]]\nname = \"court-files\"\nmapping = \"canonical\"\ntransport = \"file_drop\"\ndir = \"drop\"\n";
        let s = Settings::parse(
            court,
            "hub.toml",
            &[("HUB_COURT_FEED_URL", "http://127.0.0.1:9"), ("HUB_PLATFORM_TOKEN", "t")],
        )
        .unwrap();
        match (&s.sources[0].transport, &s.sources[1].transport) {
            (Transport::CourtFeed(f), Transport::FileDrop(d)) => {
                assert_eq!((f.court.as_str(), f.poll_interval), ("吉0402", Duration::from_secs(5)));
                assert_eq!((f.retry_after_min, f.retry_after_max), (Duration::from_secs(1), Duration::from_secs(600)));
                assert!(d.dir.ends_with("drop"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_shipped_mapping_files_load_through_the_config() {
        let text = "[[sources]]\nname = \"hotline\"\nmapping = \"hotline.toml\"\ntransport = \"amqp\"\nexchange = \"hotline.orders\"\n";
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings");
        let s = Settings::parse_in(
            text,
            "hub.toml",
            &base,
            &[("HUB_AMQP_URL", "amqp://127.0.0.1"), ("HUB_PLATFORM_TOKEN", "t")],
        )
        .unwrap();
        assert!(matches!(s.sources[0].mapping, MappingRef::File { .. }));
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = [
            ("HUB_PLATFORM_TOKEN", "t"),
            ("HUB_PLATFORM_URL", "http://10.0.0.1:9"),
            ("HUB_DATABASE_URL", "postgres://db/hub"),
            ("HUB_LISTEN", "127.0.0.1:1"),
        ];
        let s = Settings::parse("[platform]\nurl = \"http://a\"\n", "hub.toml", &env).unwrap();
        assert_eq!(s.platform.url, "http://10.0.0.1:9");
        assert_eq!(s.database_url, "postgres://db/hub");
        assert_eq!(s.listen, Some("127.0.0.1:1".parse().unwrap()));
        let bad = Settings::parse("", "hub.toml", &[("HUB_PLATFORM_URL", "nope"), ("HUB_PLATFORM_TOKEN", "t")])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("environment variable HUB_PLATFORM_URL"), "{bad}");
    }

    #[test]
    fn a_missing_platform_token_is_refused_not_made_up() {
        let none: [(&str, &str); 0] = [];
        let shown = Settings::parse("", "hub.toml", &none).unwrap_err().to_string();
        assert!(
            shown.contains("hub.toml: the platform's token is not set") && shown.contains("HUB_PLATFORM_TOKEN"),
            "{shown}"
        );
        let shown = Settings::builtin(&none).unwrap_err().to_string();
        assert!(shown.contains("the platform's token is not set"), "{shown}");
        let shown = Settings::parse("[platform]\ntoken = \" \"\n", "hub.toml", &none).unwrap_err().to_string();
        assert!(shown.contains("hub.toml:2:9: the platform's token is not set"), "{shown}");
        let s = Settings::parse("[platform]\ntoken = \"from-file\"\n", "hub.toml", &none).unwrap();
        assert_eq!(s.platform.token, "from-file");
        let s =
            Settings::parse("[platform]\ntoken = \"from-file\"\n", "hub.toml", &[("HUB_PLATFORM_TOKEN", "from-env")])
                .unwrap();
        assert_eq!(s.platform.token, "from-env");
    }

    #[test]
    fn admin_commands_need_no_platform_token_but_the_rest_is_still_checked() {
        let none: [(&str, &str); 0] = [];
        let s = Settings::builtin(&AdminEnv(&none)).unwrap();
        assert!(s.platform.token.is_empty());
        let bad = Settings::parse("[store]\nurl = 3\n", "hub.toml", &AdminEnv(&none)).unwrap_err().to_string();
        assert!(bad.contains("hub.toml:2"), "{bad}");
    }

    #[test]
    fn plain_http_to_another_host_is_warned_about() {
        for local in
            ["http://127.0.0.1:8080", "http://localhost:8080/api", "http://[::1]:9", "https://platform.example"]
        {
            let s =
                Settings::parse("", "hub.toml", &[("HUB_PLATFORM_TOKEN", "t"), ("HUB_PLATFORM_URL", local)]).unwrap();
            assert!(s.warnings.is_empty(), "{local}: {:?}", s.warnings);
        }
        let s = Settings::parse("[platform]\nurl = \"http://10.1.2.3:8080\"\n", "hub.toml", &NO_ENV).unwrap();
        let shown = crate::diagnostic::Diagnostics(s.warnings).to_string();
        assert!(
            shown.starts_with("hub.toml:2:7: the platform URL is http:// to 10.1.2.3") && shown.contains("https://"),
            "{shown}"
        );
        let s = Settings::parse(
            "",
            "hub.toml",
            &[("HUB_PLATFORM_TOKEN", "t"), ("HUB_PLATFORM_URL", "http://Platform.Example/x")],
        )
        .unwrap();
        let shown = crate::diagnostic::Diagnostics(s.warnings).to_string();
        assert!(
            shown.starts_with("environment variable HUB_PLATFORM_URL: the platform URL is http:// to platform.example"),
            "{shown}"
        );
    }

    /// A clock for the holiday table's reach, and the token.
    struct On(chrono::NaiveDate);

    impl Env for On {
        fn var(&self, key: &str) -> Option<String> {
            (key == "HUB_PLATFORM_TOKEN").then(|| "t".to_string())
        }
        fn today(&self) -> chrono::NaiveDate {
            self.0
        }
    }

    #[test]
    fn check_warns_when_the_holiday_table_ends_before_the_next_deadlines() {
        let day = |y, m, d| On(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let s = Settings::builtin(&day(2026, 12, 4)).unwrap();
        let shown = crate::diagnostic::Diagnostics(s.warnings).to_string();
        assert!(
            shown.contains("source `hotline`: the holiday table `holidays` covers 2024–2026, not 2027")
                && shown.contains("[calendar] holidays"),
            "{shown}"
        );
        let early = Settings::builtin(&day(2026, 3, 1)).unwrap().warnings;
        assert!(early.iter().all(|w| !w.message.contains("holiday")), "{early:?}");

        let dir = std::env::temp_dir().join(format!("hub-calendar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("h.csv"), "date,type\n2026-10-01,holiday\n2027-01-01,holiday\n").unwrap();
        let text = "[calendar]\nholidays = \"h.csv\"\n\n[[sources]]\nname = \"h\"\nmapping = \"builtin:hotline\"\ntransport = \"http\"\nlisten = \"127.0.0.1:1\"\nopen = true\n";
        let s = Settings::parse_in(text, "hub.toml", &dir, &day(2026, 12, 4)).unwrap();
        assert!(s.warnings.iter().all(|w| !w.message.contains("holiday")), "{:?}", s.warnings);
        std::fs::write(dir.join("h.csv"), "date,type\n2027-01-01,off\n").unwrap();
        let shown = Settings::parse_in(text, "hub.toml", &dir, &day(2026, 12, 4)).unwrap_err().to_string();
        assert!(
            shown.contains("hub.toml:2:12: calendar.holidays `h.csv` is not valid")
                && shown.contains("must be `holiday` or `workday`"),
            "{shown}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
