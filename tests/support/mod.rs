//! What the end-to-end tests share: fresh databases, free ports, the real
//! `hub` binary as a child process, and a source that resends until the
//! hub acknowledges.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::{ContentType, RawRecord};
use hub::config::Settings;
use hub::mapping::{CanonicalMapper, Mappings};

pub use hub::store::testing::TestDb;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Settings for an in-process hub on `db_url` delivering to `platform_url`,
/// with short pauses so that tests do not wait on backoff.
pub fn settings(db_url: &str, platform_url: &str) -> Settings {
    let env = [("HUB_PLATFORM_URL", platform_url), ("HUB_PLATFORM_TOKEN", "test-token")];
    let mut s = Settings::defaults(&env).expect("defaults");
    s.database_url = db_url.to_string();
    s.platform.timeout = Duration::from_secs(5);
    s.dispatcher.pause.max = Duration::from_secs(1);
    s.dispatcher.retry.initial = Duration::from_millis(100);
    s.dispatcher.retry.max = Duration::from_secs(1);
    s.dispatcher.auth_probe = Duration::from_millis(500);
    s.dispatcher.idle_poll = Duration::from_millis(100);
    s
}

pub fn canonical_mappings() -> Mappings {
    let mut m = Mappings::new();
    m.insert("canon", Arc::new(CanonicalMapper));
    m
}

pub fn record(payload: Vec<u8>) -> RawRecord {
    RawRecord::new("canon", ContentType::Json, payload)
}

/// Waits until `check` holds, polling; panics with `what` after `timeout`.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `hub` binary of this build (`cargo build -p hub` makes it; `.ci/test` does).
pub fn hub_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-… → target/<profile>/hub
    let bin =
        exe.parent().and_then(Path::parent).expect("target dir").join(format!("hub{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p hub` (or `--release` for benchmarks) first",
        bin.display()
    );
    bin
}

/// A hub's config file `dir/name` for the tests of the centre's side: a
/// store, the platform, a listener on `endpoint`, an open canonical HTTP
/// source on `source`, and `extra` sections (`[platform]` lines such as
/// `secrets`, `[delivery]`, `[open311]`…) appended as written.
pub struct CanonHub<'a> {
    pub db_url: &'a str,
    pub platform: &'a str,
    pub source: u16,
    pub endpoint: u16,
}

impl CanonHub<'_> {
    pub fn write(&self, dir: &Path, name: &str, platform_extra: &str, extra: &str) -> PathBuf {
        let path = dir.join(name);
        let CanonHub { db_url, platform, source, endpoint } = self;
        std::fs::write(
            &path,
            format!(
                "[store]\nurl = \"{db_url}\"\n[platform]\nurl = \"{platform}\"\ntoken = \"test-token\"\n{platform_extra}\n\
                 [server]\nlisten = \"127.0.0.1:{endpoint}\"\n{extra}\n\n\
                 [[sources]]\nname = \"canon\"\nmapping = \"canonical\"\ntransport = \"http\"\nlisten = \"127.0.0.1:{source}\"\nopen = true\n"
            ),
        )
        .expect("write the config");
        path
    }
}

/// The admin API's tokens every test hub accepts (`HUB_API_TOKENS`).
pub const VIEWER_TOKEN: &str = "e2e-viewer-token-0123456789";
pub const OPERATOR_TOKEN: &str = "e2e-operator-token-0123456789";
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";
pub const API_TOKENS: &str =
    "viewer:e2e-viewer-token-0123456789,operator:e2e-operator-token-0123456789,admin:e2e-admin-token-0123456789";

/// The real hub as a child process, configured by a file.
pub struct HubProcess {
    pub config: PathBuf,
    /// Extra environment for the process (e.g. a fault to inject).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    /// Where the running process's lines begin in the log.
    log_from: usize,
}

impl HubProcess {
    pub fn start(config: &Path) -> HubProcess {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> HubProcess {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut p = HubProcess { config: config.to_path_buf(), env, child: None, log_from: 0 };
        p.restart();
        p
    }

    /// The exit status, if the process has ended by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("try_wait")?;
        self.child = None;
        Some(status)
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Whether the process is still running (as far as can be told).
    fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.log_from = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.with_extension("log"))
            .expect("log file");
        let child = Command::new(hub_binary())
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info,sqlx=warn")
            .env("HUB_API_TOKENS", API_TOKENS)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn hub");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no flush, exactly what a crash is.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a graceful exit.
    ///
    /// A hub asked to stop must have got as far as listening for it: a
    /// SIGTERM in its first milliseconds (before `starting the hub`, which
    /// it logs once its handlers are in place) ends it as the default
    /// action does. So this waits for that line first (30 s at most).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && self.running()
            && !self.log().get(self.log_from..).is_some_and(|l| l.contains("starting the hub"))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait().expect("wait")
    }

    /// Sends a signal (`STOP`, `CONT`, …) to the running hub: `STOP` holds
    /// everything it does, intake included, as a process that hangs.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("running");
        let sent = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().expect("kill");
        assert!(sent.success(), "kill -{name}");
    }

    /// Runs a `hub` subcommand against the same config; returns (success, stdout).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let out =
            Command::new(hub_binary()).args(args).arg("--config").arg(&self.config).output().expect("run hub cli");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A source that sends a record over HTTP and resends it until the hub
/// acknowledges (answers 200), as an agency's system does.
pub async fn send_until_acknowledged(client: &reqwest::Client, url: &str, payload: Vec<u8>) -> serde_json::Value {
    loop {
        let sent = client.post(url).header("content-type", "application/json").body(payload.clone()).send().await;
        if let Ok(r) = sent
            && r.status().is_success()
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Panics if a log holds a phone or ID number that was not masked: a word
/// of 11 or more digits (an ID number may end in X). Hex ids are words with
/// letters in them and do not count.
pub fn assert_no_personal_numbers(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert_no_personal_numbers_in(&text);
}

/// [`assert_no_personal_numbers`] for text already read (a command's output).
pub fn assert_no_personal_numbers_in(text: &str) {
    for line in text.lines() {
        for word in line.split(|c: char| !c.is_ascii_alphanumeric()) {
            let digits = word.trim_end_matches(['X', 'x']);
            let personal =
                digits.len() >= 11 && digits.bytes().all(|b| b.is_ascii_digit()) && word.len() - digits.len() <= 1;
            assert!(!personal, "personal number in the output: {line}");
        }
    }
}

/// A TCP relay to a real service that a test can take down and bring back:
/// while down it refuses nothing but cuts every connection at once, as a
/// broker that goes away does.
pub struct TcpRelay {
    pub port: u16,
    down: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpRelay {
    pub async fn start(upstream: &str) -> TcpRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let port = listener.local_addr().expect("relay address").port();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let upstream = upstream.to_string();
        let (d, l) = (down.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is cut
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        });
        TcpRelay { port, down, links, accept }
    }

    /// Cuts every connection and every new one until [`TcpRelay::up`].
    pub fn down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn up(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.down();
        self.accept.abort();
    }
}
