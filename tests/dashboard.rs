//! The centre's screen through the real `hub` binary: the live feed's
//! resume and regions over HTTP, and the page itself in a headless
//! Chromium (chromedriver's WebDriver API, `.ci/services` installs both):
//! it loads without console errors, shows the API's figures, and a matter
//! sent in while it is open appears in its live list within 2 s. A
//! screenshot goes to `target/dashboard.png` for a person to look at.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::*;
use serde_json::{Value, json};
use simulators::canonical::{Matter, matters};
use simulators::platform::{Faults, PlatformSim, SimConfig};

const DONGFENG_TOKEN: &str = "e2e-dongfeng-screen-token-0123";

fn config(dir: &std::path::Path, db_url: &str, platform: &str, source: u16, endpoint: u16) -> std::path::PathBuf {
    CanonHub { db_url, platform, source, endpoint }.write(dir, "hub.toml", "", "")
}

/// A matter reported a minute ago, so that it counts today and this month.
fn reported_now(m: &Matter) -> Vec<u8> {
    let mut record = m.record(1);
    let at = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    record["ticket"]["reportedAt"] = json!(at);
    record["ticket"]["occurredAt"] = json!(at);
    serde_json::to_vec(&record).unwrap()
}

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Value {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    id: Option<i64>,
    data: String,
}

/// A `/api/v1/live` stream, read with a plain HTTP client.
struct LiveStream {
    response: reqwest::Response,
    buffer: String,
}

impl LiveStream {
    async fn open(base: &str, token: &str, last_event_id: Option<i64>) -> LiveStream {
        let client = reqwest::Client::new();
        let mut req = client.get(format!("{base}/api/v1/live")).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        LiveStream { response, buffer: String::new() }
    }

    /// The next event, or none within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut e = Sse { event: "message".into(), id: None, data: String::new() };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        e.event = v.trim().into();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("id:") {
                        e.id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        e.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if any {
                    return Some(e);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The `revision` events that come within `wait` of each other.
    async fn revisions(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(e) = self.next(wait).await {
            if e.event == "revision" {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                assert_eq!(Some(v["id"].as_i64().unwrap()), e.id, "the event's id is the revision's number");
                out.push(v);
            }
        }
        out
    }
}

struct Hub {
    hub: HubProcess,
    server: simulators::platform::ServerHandle,
    dir: std::path::PathBuf,
    base: String,
    source: String,
    client: reqwest::Client,
}

async fn start_hub(db: &TestDb, name: &str) -> Hub {
    let dir = std::env::temp_dir().join(format!("hub-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig { token: "test-token".into(), faults: Faults::default() });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let (source, endpoint) = (free_port(), free_port());
    let cfg = config(&dir, &db.url, &server.base_url(), source, endpoint);
    let tokens = format!("{API_TOKENS},viewer@220421:{DONGFENG_TOKEN}");
    let hub = HubProcess::start_with_env(&cfg, &[("HUB_API_TOKENS", tokens.as_str())]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let base = format!("http://127.0.0.1:{endpoint}");
    wait_for(Duration::from_secs(20), "the hub's API", || {
        let (client, url) = (&client, format!("{base}/api/v1/alerts"));
        async move { client.get(&url).bearer_auth(VIEWER_TOKEN).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    Hub { hub, server, dir, base, source: format!("http://127.0.0.1:{source}/records"), client }
}

impl Hub {
    async fn send(&self, m: &Matter) -> String {
        let out = send_until_acknowledged(&self.client, &self.source, reported_now(m)).await;
        out["ticketId"].as_str().unwrap_or_default().to_string()
    }

    async fn stop(mut self) {
        let status = self.hub.terminate();
        assert!(status.success(), "the hub stops with streams open: {status:?}");
        self.server.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_resumes_exactly_and_keeps_to_the_region() {
    let db = TestDb::sqlite();
    let hub = start_hub(&db, "live").await;
    let ms = matters(91, 12, "LIVE");

    let mut city = LiveStream::open(&hub.base, VIEWER_TOKEN, None).await;
    let hello = city.next(Duration::from_secs(5)).await.expect("hello");
    assert_eq!(hello.event, "hello");
    let start = hello.id.expect("hello carries where the stream starts");

    // Seen live: the first matter.
    let first = hub.send(&ms[0]).await;
    let seen = city.revisions(Duration::from_secs(2)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["ticketId"], first.as_str());
    assert_eq!(seen[0]["cause"], "created");
    assert!(seen[0]["countyName"].is_string() && seen[0]["channelName"] == "12345热线", "{}", seen[0]);
    let text = seen[0].to_string();
    assert!(!text.contains("女士") && !text.contains("139"), "no personal data on the screen: {text}");
    let last_seen = seen[0]["id"].as_i64().unwrap();
    drop(city);

    // Missed while away: the rest.
    let mut missed = Vec::new();
    for m in &ms[1..] {
        missed.push(hub.send(m).await);
    }
    let mut back = LiveStream::open(&hub.base, VIEWER_TOKEN, Some(last_seen)).await;
    let caught = back.revisions(Duration::from_millis(1500)).await;
    let caught_tickets: Vec<&str> = caught.iter().map(|e| e["ticketId"].as_str().unwrap()).collect();
    assert_eq!(
        caught_tickets,
        missed.iter().map(String::as_str).collect::<Vec<_>>(),
        "exactly the missed events, in order"
    );
    assert!(caught.windows(2).all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()));

    // 东丰县's token: from the same point, only its own county's.
    let mut dongfeng = LiveStream::open(&hub.base, DONGFENG_TOKEN, Some(start)).await;
    let own = dongfeng.revisions(Duration::from_millis(1500)).await;
    let expected: BTreeSet<i64> =
        seen.iter().chain(&caught).filter(|e| e["county"] == "220421").map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(!expected.is_empty(), "the sample has matters in 东丰县");
    assert!(expected.len() < 12, "and elsewhere");
    assert_eq!(own.iter().map(|e| e["id"].as_i64().unwrap()).collect::<BTreeSet<_>>(), expected);

    // Live, too: a matter elsewhere does not reach 东丰县's stream.
    let elsewhere = matters(92, 40, "ELSE").into_iter().find(|m| {
        let code = m.record(1)["ticket"]["region"]["code"].as_str().unwrap().to_string();
        !code.starts_with("220421")
    });
    hub.send(&elsewhere.unwrap()).await;
    assert!(dongfeng.revisions(Duration::from_millis(1500)).await.is_empty());
    assert_eq!(back.revisions(Duration::from_millis(1500)).await.len(), 1);

    // Far behind: told to reload, not flooded.
    let mut late = LiveStream::open(&hub.base, VIEWER_TOKEN, Some(0)).await;
    let _hello = late.next(Duration::from_secs(2)).await;
    let e = late.next(Duration::from_secs(2)).await.expect("an event");
    assert_eq!(e.event, "revision", "13 behind is within the backlog");

    // Without a token: 401.
    let r = reqwest::Client::new().get(format!("{}/api/v1/live", hub.base)).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Streams open: the hub still stops promptly.
    hub.stop().await;
}

/// chromedriver and a session of headless Chromium, closed on drop.
struct Browser {
    driver: std::process::Child,
    url: String,
    session: String,
    client: reqwest::Client,
    profile: std::path::PathBuf,
}

impl Browser {
    async fn start() -> Browser {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver is missing: run .ci/services (Debian's chromium and chromium-driver)");
        let port = free_port();
        let driver = std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        wait_for(Duration::from_secs(20), "chromedriver", || {
            let (client, url) = (&client, format!("{url}/status"));
            async move { client.get(&url).send().await.is_ok() }
        })
        .await;
        let profile = std::env::temp_dir().join(format!("hub-chromium-{}", uuid::Uuid::new_v4().simple()));
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1920,1080",
                     "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display()), "--lang=zh-CN"],
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let r: Value = client.post(format!("{url}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {r}")).to_string();
        Browser { driver, url, session, client, profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let mut req = self.client.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn js(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// The browser's console since the last call.
    async fn console(&self) -> Vec<Value> {
        let v = self.call(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        v.as_array().cloned().unwrap_or_default()
    }

    async fn screenshot(&self, path: &std::path::Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        std::fs::write(path, base64_decode(b64.as_str().unwrap())).unwrap();
    }

    /// Makes the page's viewport 1920×1080, the screen's, whatever the window's frame takes.
    async fn full_hd(&self) {
        let frame =
            self.js("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]").await;
        let (w, h) = (frame[0].as_i64().unwrap_or(0), frame[1].as_i64().unwrap_or(0));
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": 1920 + w, "height": 1080 + h}))).await;
    }

    async fn wait_js(&self, timeout: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script).await;
            if !v.is_null() && v != json!(false) {
                return v;
            }
            if Instant::now() >= deadline {
                let state = self.js("return [document.getElementById('error').textContent, document.body.dataset.loads, location.href]").await;
                panic!("timed out waiting for {what}; page {state}, console {:#?}", self.console().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session's Chromium goes with its chromedriver.
        let _ = std::process::Command::new("curl")
            .args(["-s", "-X", "DELETE", &format!("{}/session/{}", self.url, self.session)])
            .output();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Everything the page shows, read from its elements' ids and data attributes.
const READ_SCREEN: &str = r#"
const v = (id) => document.getElementById(id).dataset.value;
const rows = (id, key) => Object.fromEntries([...document.querySelectorAll('#' + id + ' li')]
    .map((li) => [li.getAttribute(key), [Number(li.dataset.today), Number(li.dataset.month)]]));
return {
  loads: Number(document.body.dataset.loads || 0),
  today: v('today-total'), month: v('month-total'), closed: v('month-closed'),
  closure: v('rate-closure'), onTime: v('rate-ontime'), satisfaction: v('rate-satisfaction'),
  channels: rows('by-channel', 'data-channel'), counties: rows('by-county', 'data-county'),
  map: Object.fromEntries([...document.querySelectorAll('#map circle')].map((c) => [c.dataset.county, Number(c.dataset.month)])),
  departments: [...document.querySelectorAll('#departments li')].map((li) => li.dataset.department),
  overdue: v('overdue-count'), dueSoon: v('due-soon-count'), courts: v('courts-count'),
  alerts: v('alerts-count'), alertsEmpty: !document.getElementById('alerts-empty').hidden,
  alertsText: document.getElementById('alerts-empty').textContent,
  live: [...document.querySelectorAll('#live li')].map((li) => li.dataset.ticket),
  hash: window.location.hash, loginShown: !document.getElementById('login').hidden,
  title: document.getElementById('title').textContent,
};
"#;

fn rate(v: &Value) -> String {
    v.as_f64().map_or(String::new(), |r| r.to_string())
}

/// What the screen should show, from the API with the same token.
async fn expected(client: &reqwest::Client, base: &str) -> Value {
    let today = get_json(client, &format!("{base}/api/v1/stats/today"), VIEWER_TOKEN).await;
    let deps = get_json(client, &format!("{base}/api/v1/stats/departments"), VIEWER_TOKEN).await;
    let due = get_json(client, &format!("{base}/api/v1/deadlines"), VIEWER_TOKEN).await;
    let courts = get_json(client, &format!("{base}/api/v1/courts/pending"), VIEWER_TOKEN).await;
    let alerts = get_json(client, &format!("{base}/api/v1/alerts"), VIEWER_TOKEN).await;
    let sum = |rows: &Value| rows.as_array().unwrap().iter().map(|r| r["received"].as_i64().unwrap()).sum::<i64>();
    let keyed = |rows: &Value| -> std::collections::BTreeMap<String, i64> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].as_str().unwrap().to_string(), r["received"].as_i64().unwrap()))
            .collect()
    };
    let total = &today["month_total"];
    json!({
        "today": sum(&today["today_by_channel"]).to_string(),
        "month": total["received"].as_i64().unwrap().to_string(),
        "closed": total["closed"].as_i64().unwrap().to_string(),
        "closure": rate(&total["closureRate"]),
        "onTime": rate(&total["onTimeRate"]),
        "satisfaction": rate(&total["satisfactionRate"]),
        "todayByChannel": keyed(&today["today_by_channel"]),
        "monthByChannel": keyed(&today["month_by_channel"]),
        "todayByCounty": keyed(&today["today_by_county"]),
        "monthByCounty": keyed(&today["month_by_county"]),
        "departments": deps["ranking"].as_array().unwrap().iter().take(8).map(|r| r["department"].clone()).collect::<Vec<_>>(),
        "overdue": due["overdue"].as_array().unwrap().len().to_string(),
        "dueSoon": due["dueSoon"].as_array().unwrap().len().to_string(),
        "courts": courts["pending"].as_array().unwrap().len().to_string(),
        "alerts": alerts["alerts"].as_array().unwrap().len().to_string(),
    })
}

/// The differences between what the page shows and what the API says.
fn differences(screen: &Value, api: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["today", "month", "closed", "closure", "onTime", "satisfaction", "overdue", "dueSoon", "courts", "alerts"]
    {
        if screen[k] != api[k] {
            out.push(format!("{k}: screen {} api {}", screen[k], api[k]));
        }
    }
    if screen["departments"] != api["departments"] {
        out.push(format!("departments: screen {} api {}", screen["departments"], api["departments"]));
    }
    for (bars, today, month) in
        [("channels", "todayByChannel", "monthByChannel"), ("counties", "todayByCounty", "monthByCounty")]
    {
        let shown = screen[bars].as_object().unwrap();
        for (key, pair) in shown {
            let (t, m) = (pair[0].as_i64().unwrap(), pair[1].as_i64().unwrap());
            let (at, am) = (api[today][key].as_i64().unwrap_or(0), api[month][key].as_i64().unwrap_or(0));
            if (t, m) != (at, am) {
                out.push(format!("{bars}/{key}: screen {t}/{m} api {at}/{am}"));
            }
        }
        for key in api[month].as_object().unwrap().keys() {
            if !shown.contains_key(key) {
                out.push(format!("{bars}/{key} is not on the screen"));
            }
        }
    }
    for (county, n) in api["monthByCounty"].as_object().unwrap() {
        if screen["map"][county] != *n {
            out.push(format!("map/{county}: screen {} api {n}", screen["map"][county]));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_shows_the_apis_figures_and_matters_as_they_arrive() {
    let db = TestDb::sqlite();
    let hub = start_hub(&db, "screen").await;
    let ms = matters(93, 16, "SCR");
    for m in &ms[..15] {
        hub.send(m).await;
    }
    let today_url = format!("{}/api/v1/stats/today", hub.base);
    wait_for(Duration::from_secs(20), "fifteen matters in this month's figures", || {
        let (client, url) = (&hub.client, &today_url);
        async move { get_json(client, url, VIEWER_TOKEN).await["month_total"]["received"] == 15 }
    })
    .await;

    let browser = Browser::start().await;
    let page = format!("{}/#token={VIEWER_TOKEN}", hub.base);
    browser.go(&page).await;
    browser.full_hd().await;
    browser
        .wait_js(Duration::from_secs(15), "the figures", "return Number(document.body.dataset.loads || 0) >= 1")
        .await;
    browser
        .wait_js(
            Duration::from_secs(5),
            "the live stream",
            "return document.getElementById('live-state').dataset.state === 'open'",
        )
        .await;

    // The figures on screen are the API's.
    let api = expected(&hub.client, &hub.base).await;
    let screen = browser.js(READ_SCREEN).await;
    let diff = differences(&screen, &api);
    assert!(diff.is_empty(), "the screen differs from the API: {diff:#?}\nscreen {screen}\napi {api}");
    assert_eq!(screen["month"], "15");
    assert_eq!(screen["today"], "15");
    assert_eq!(screen["hash"], "", "the token is taken out of the address");
    assert_eq!(screen["loginShown"], false);
    assert_eq!(screen["title"], "辽源市社会治理综合指挥平台 · 数据集成枢纽");
    assert_eq!((screen["alertsEmpty"].as_bool(), screen["alertsText"].as_str()), (Some(true), Some("暂无预警")));

    // A matter sent in while the page is open: in its live list within 2 s.
    let sent = Instant::now();
    let ticket = hub.send(&ms[15]).await;
    let check =
        format!("return [...document.querySelectorAll('#live li')].some((li) => li.dataset.ticket === '{ticket}')");
    browser.wait_js(Duration::from_secs(2), "the new matter in the live list", &check).await;
    let latency = sent.elapsed();
    println!("a matter reached the screen's live list {} ms after it was sent", latency.as_millis());
    assert!(latency < Duration::from_secs(2), "{latency:?}");

    // The figures follow it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let screen = browser.js(READ_SCREEN).await;
        let api = expected(&hub.client, &hub.base).await;
        if screen["month"] == "16" && differences(&screen, &api).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the figures did not follow: {:#?}", differences(&screen, &api));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing went wrong in the page.
    let errors: Vec<Value> = browser.console().await.into_iter().filter(|l| l["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    let target = hub_binary().parent().and_then(std::path::Path::parent).unwrap().to_path_buf();
    let shot = target.join("dashboard.png");
    browser.screenshot(&shot).await;
    let viewport = browser.js("return [window.innerWidth, window.innerHeight]").await;
    println!("viewport {viewport}");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot at {}", shot.display());
    println!("screenshot: {}", shot.display());

    // A token that is not one: the form, with a message, and no figures.
    browser.js("sessionStorage.clear(); return true").await;
    browser.go(&format!("{}/#token=not-a-token-0123456789", hub.base)).await;
    browser.wait_js(Duration::from_secs(5), "the login form", "return !document.getElementById('login').hidden && document.getElementById('login-message').textContent.length > 0").await;
    assert_eq!(browser.js("return document.getElementById('screen').hidden").await, true);

    drop(browser);
    hub.stop().await;
}
