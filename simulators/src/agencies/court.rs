//! Court pre-litigation mediation feeds (court.md): XML pages (UTF-8 or
//! GB18030), a feed server with paging, ETag/304 and 429/503, an outcomes
//! endpoint, and a file dropper (`*.xml.part` → `*.xml`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::content::{Matter, Rng, hex, mix, plus_minutes};

pub const STATUSES: &[&str] = &["RECEIVED", "MEDIATING", "AGREED", "FAILED", "CONFIRMED", "WITHDRAWN"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn ts(t: chrono::NaiveDateTime) -> String {
    format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// `(2024)吉0402民诉前调123号`, with full-width brackets for some.
pub fn case_no(court: &str, year: i32, n: u64, kind: &str, full_width: bool) -> String {
    if full_width { format!("（{year}）{court}{kind}{n}号") } else { format!("({year}){court}{kind}{n}号") }
}

/// One `<Case>` element for `m` at `status`, change number `seq`.
pub fn case_xml(m: &Matter, court: &str, case_n: u64, status: &str, seq: u64) -> String {
    let mut rng = Rng::new(m.seed ^ 0xC0);
    let year = m.occurred.format("%Y").to_string().parse().unwrap_or(2024);
    let no = case_no(court, year, case_n, "民诉前调", m.seed.is_multiple_of(5));
    let (code, cause) = m.subject.court_cause().unwrap_or(("9222", "民间借贷纠纷"));
    let received = plus_minutes(m.occurred, 24 * 60);
    let stage = STATUSES.iter().position(|s| *s == status).unwrap_or(0) as i64;
    let changed = plus_minutes(received, 30 + 90 * stage);
    let a = &m.reporter;
    let b = &m.other;
    let mut x = format!(
        "  <Case seq=\"{seq}\" changed=\"{}\">\n    <CaseNo>{}</CaseNo>\n    <Cause code=\"{code}\">{cause}</Cause>\n    <Status>{status}</Status>\n    <Received>{}</Received>\n    <Venue area=\"{}\">{}综治中心</Venue>\n    <Parties>\n      <Party role=\"applicant\" kind=\"person\"><Name>{}</Name><IdNo>{}</IdNo><Phone>{}</Phone><Address>{}</Address></Party>\n      <Party role=\"respondent\" kind=\"person\"><Name>{}</Name><Phone>{}</Phone></Party>\n    </Parties>\n",
        ts(changed),
        esc(&no),
        ts(received),
        m.township.code,
        esc(m.township.name),
        esc(&a.name),
        a.id_no,
        a.mobile,
        esc(&a.address),
        esc(&b.name),
        b.mobile
    );
    if m.amount > 0 {
        x += &format!("    <Claim amount=\"{}.00\" currency=\"CNY\">{}</Claim>\n", m.amount, esc(&m.court_claim()));
    } else {
        x += &format!("    <Claim>{}</Claim>\n", esc(&m.court_claim()));
    }
    if status != "RECEIVED" {
        let (id, name) = *rng.pick(&[("M017", "陈素娟"), ("M021", "刘建国"), ("M033", "赵丽")]);
        x += &format!("    <Mediator id=\"{id}\">{name}</Mediator>\n");
    }
    let doc = |ty: &str, no: &str, rng: &mut Rng| {
        format!(
            "      <Document type=\"{ty}\" no=\"{}\" issued=\"{}\" sha256=\"{}\" href=\"https://court.example/docs/{}.pdf\"/>\n",
            esc(no),
            ts(plus_minutes(changed, -5)),
            hex(rng, 64),
            hex(rng, 12)
        )
    };
    match status {
        "AGREED" => x += &format!("    <Documents>\n{}    </Documents>\n", doc("MEDIATION_AGREEMENT", &no, &mut rng)),
        "CONFIRMED" => {
            let conf = case_no(court, year, case_n / 3 + 1, "诉前调确", m.seed.is_multiple_of(5));
            x += &format!(
                "    <Documents>\n{}{}    </Documents>\n",
                doc("MEDIATION_AGREEMENT", &no, &mut rng),
                doc("CONFIRMATION_RULING", &conf, &mut rng)
            );
        }
        _ => {}
    }
    x + "  </Case>\n"
}

/// How a court's feed is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedEncoding {
    Utf8,
    Gb18030,
}

/// A whole `<MediationFeed>` document in its encoding.
pub fn feed_page(court: &str, encoding: FeedEncoding, next: &str, more: bool, cases: &[String]) -> Vec<u8> {
    let decl = match encoding {
        FeedEncoding::Utf8 => "UTF-8",
        FeedEncoding::Gb18030 => "GB18030",
    };
    let generated = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("tz"));
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"{decl}\"?>\n<MediationFeed court=\"{court}\" generated=\"{}\" next=\"{next}\" more=\"{more}\">\n{}</MediationFeed>\n",
        generated.format("%Y-%m-%dT%H:%M:%S%:z"),
        cases.concat()
    );
    match encoding {
        FeedEncoding::Utf8 => text.into_bytes(),
        FeedEncoding::Gb18030 => encoding_rs::GB18030.encode(&text).0.into_owned(),
    }
}

/// Court feed state: the change log of cases.
struct Feed {
    court: String,
    encoding: FeedEncoding,
    seed: u64,
    /// (seq, Case xml)
    changes: Vec<(u64, String)>,
    /// per case: (matter index, case number, status index)
    cases: Vec<(u64, u64, usize)>,
    outcomes: HashSet<String>,
    /// `Idempotency-Key`s of the outcomes posted: a resend carries its first one.
    outcome_keys: HashSet<String>,
}

impl Feed {
    fn push_change(&mut self, case: usize) {
        let (idx, n, st) = self.cases[case];
        let seq = self.changes.last().map_or(1000, |c| c.0) + 1;
        let m = Matter::new(self.seed, idx);
        self.changes.push((seq, case_xml(&m, &self.court, n, STATUSES[st], seq)));
    }
}

/// Fault shares of the feed endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeedFaults {
    pub throttle_share: f64,
    pub unavailable_share: f64,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CourtStats {
    pub pages: u64,
    pub not_modified: u64,
    pub throttled: u64,
    pub outcomes_accepted: u64,
    pub outcomes_conflict: u64,
    /// Outcomes posted, resends included.
    pub outcomes_heard: u64,
    /// Distinct `Idempotency-Key`s among them (one per change the hub told).
    pub outcome_keys: u64,
}

impl CourtStats {
    /// Outcomes posted again under a key heard before.
    pub fn outcome_resends(&self) -> u64 {
        self.outcomes_heard.saturating_sub(self.outcome_keys)
    }
}

struct Shared {
    feed: Mutex<Feed>,
    faults: Mutex<FeedFaults>,
    /// The page after this change number (0: the first page) is served cut
    /// short, regenerated on every request; with how many times it was.
    broken_after: Mutex<Option<u64>>,
    broken_served: AtomicU64,
    stats: Mutex<CourtStats>,
    counter: AtomicU64,
}

/// A running court feed server.
#[derive(Clone)]
pub struct CourtFeedServer {
    shared: Arc<Shared>,
    pub addr: SocketAddr,
}

#[derive(Deserialize)]
struct FeedQuery {
    after: Option<String>,
    limit: Option<usize>,
}

impl CourtFeedServer {
    /// Serve court `court` (e.g. `吉0402`) on `addr` (port 0 for any) with
    /// `initial` cases.
    pub async fn bind(addr: &str, court: &str, encoding: FeedEncoding, seed: u64, initial: usize) -> Result<Self> {
        let feed = Feed {
            court: court.to_string(),
            encoding,
            seed,
            changes: Vec::new(),
            cases: Vec::new(),
            outcomes: HashSet::new(),
            outcome_keys: HashSet::new(),
        };
        let shared = Arc::new(Shared {
            feed: Mutex::new(feed),
            faults: Mutex::new(FeedFaults::default()),
            broken_after: Mutex::new(None),
            broken_served: AtomicU64::new(0),
            stats: Mutex::new(CourtStats::default()),
            counter: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/mediation/feed", get(feed_handler))
            .route("/mediation/outcomes", post(outcome_handler))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let s = CourtFeedServer { shared, addr };
        s.add_cases(initial);
        Ok(s)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// New cases (RECEIVED), each one change.
    pub fn add_cases(&self, n: usize) {
        let mut f = self.shared.feed.lock().expect("feed");
        for _ in 0..n {
            let k = f.cases.len() as u64;
            f.cases.push((k, 100 + k, 0));
            let i = f.cases.len() - 1;
            f.push_change(i);
        }
    }

    /// Move up to `n` open cases one step (RECEIVED → MEDIATING → AGREED /
    /// FAILED / WITHDRAWN, AGREED → CONFIRMED); each step is a new change.
    pub fn advance(&self, n: usize) -> usize {
        let mut f = self.shared.feed.lock().expect("feed");
        let mut moved = 0;
        for i in 0..f.cases.len() {
            if moved == n {
                break;
            }
            let (idx, _, st) = f.cases[i];
            let next = match st {
                0 => 1,
                1 => [2, 2, 2, 3, 5][(mix(idx) % 5) as usize],
                2 => 4,
                _ => continue,
            };
            f.cases[i].2 = next;
            f.push_change(i);
            moved += 1;
        }
        moved
    }

    pub fn set_faults(&self, faults: FeedFaults) {
        *self.shared.faults.lock().expect("faults") = faults;
    }

    /// From now on the page asked for after cursor `c-{seq}` (`Some(0)`: the
    /// first page) cannot be parsed: it is cut in the middle of a case, and
    /// differs on every request (a fresh `generated` time and the request's
    /// number), as a court that regenerates a broken page does. `None`
    /// serves it whole again.
    pub fn set_broken_page(&self, after_seq: Option<u64>) {
        *self.shared.broken_after.lock().expect("broken") = after_seq;
    }

    /// How many times the broken page was served.
    pub fn broken_served(&self) -> u64 {
        self.shared.broken_served.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> CourtStats {
        self.shared.stats.lock().expect("stats").clone()
    }

    /// Number of changes in the log.
    pub fn changes(&self) -> usize {
        self.shared.feed.lock().expect("feed").changes.len()
    }
}

async fn feed_handler(State(s): State<Arc<Shared>>, Query(q): Query<FeedQuery>, headers: HeaderMap) -> Response {
    let faults = *s.faults.lock().expect("faults");
    let roll = mix(s.counter.fetch_add(1, Ordering::Relaxed) ^ 0xFEED) as f64 / u64::MAX as f64;
    if roll < faults.throttle_share + faults.unavailable_share {
        s.stats.lock().expect("stats").throttled += 1;
        let code =
            if roll < faults.throttle_share { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::SERVICE_UNAVAILABLE };
        return (code, [(header::RETRY_AFTER, "1")]).into_response();
    }
    let after: u64 = match q.after.as_deref() {
        None | Some("") => 0,
        Some(c) => match c.strip_prefix("c-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return (StatusCode::BAD_REQUEST, "bad cursor").into_response(),
        },
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let f = s.feed.lock().expect("feed");
    let pending: Vec<&(u64, String)> = f.changes.iter().filter(|c| c.0 > after).collect();
    let page = &pending[..pending.len().min(limit)];
    let last = page.last().map_or(after, |c| c.0);
    let more = pending.len() > page.len();
    let etag = format!("\"{}-{after}-{last}-{limit}\"", f.changes.last().map_or(0, |c| c.0));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        s.stats.lock().expect("stats").not_modified += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let cases: Vec<String> = page.iter().map(|c| c.1.clone()).collect();
    let mut body = feed_page(&f.court, f.encoding, &format!("c-{last}"), more, &cases);
    if *s.broken_after.lock().expect("broken") == Some(after) {
        let n = s.broken_served.fetch_add(1, Ordering::Relaxed);
        // Cut inside the last case, and mark the request in a comment so
        // that no two answers are the same bytes.
        let cut = body.len() - cases.last().map_or(0, |c| c.len() / 2) - "</MediationFeed>\n".len();
        body.truncate(cut);
        body.extend_from_slice(format!("<!-- request {n} -->").as_bytes());
    }
    let ct = match f.encoding {
        FeedEncoding::Utf8 => "application/xml; charset=utf-8",
        FeedEncoding::Gb18030 => "application/xml; charset=gb18030",
    };
    drop(f);
    s.stats.lock().expect("stats").pages += 1;
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).expect("etag"));
    r
}

async fn outcome_handler(State(s): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let mut reader = quick_xml::Reader::from_str(&body);
    let mut case_no = None;
    let mut result = None;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) | Ok(quick_xml::events::Event::Empty(e))
                if e.name().as_ref() == "Outcome" =>
            {
                for a in e.attributes().flatten() {
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    match a.key.as_ref() {
                        "caseNo" => case_no = Some(v),
                        "result" => result = Some(v),
                        _ => {}
                    }
                }
                break;
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    let (Some(no), Some(res)) = (case_no, result) else {
        return (StatusCode::BAD_REQUEST, "need <Outcome caseNo result>").into_response();
    };
    if res != "AGREED" && res != "FAILED" {
        return (StatusCode::BAD_REQUEST, "result").into_response();
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (fresh, new_key) = {
        let mut feed = s.feed.lock().expect("feed");
        (feed.outcomes.insert(no), !key.is_empty() && feed.outcome_keys.insert(key))
    };
    let mut st = s.stats.lock().expect("stats");
    st.outcomes_heard += 1;
    st.outcome_keys += u64::from(new_key);
    if fresh {
        st.outcomes_accepted += 1;
        StatusCode::CREATED.into_response()
    } else {
        st.outcomes_conflict += 1;
        StatusCode::CONFLICT.into_response()
    }
}

/// Writes feed documents into a directory the way old installations do.
pub struct FileDropper {
    pub dir: PathBuf,
    n: u64,
}

impl FileDropper {
    pub fn new(dir: impl AsRef<Path>) -> Self {
        FileDropper { dir: dir.as_ref().to_path_buf(), n: 0 }
    }

    /// Write `bytes` as `{stem}.xml.part`, then rename to `{stem}.xml`.
    pub fn drop_file(&mut self, stem: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let part = self.dir.join(format!("{stem}.xml.part"));
        let done = self.dir.join(format!("{stem}.xml"));
        std::fs::write(&part, bytes)?;
        std::fs::rename(&part, &done)?;
        self.n += 1;
        Ok(done)
    }

    /// A page of `cases` new cases from `seed`.
    pub fn drop_page(
        &mut self,
        court: &str,
        encoding: FeedEncoding,
        seed: u64,
        cases: u64,
    ) -> std::io::Result<PathBuf> {
        let start = self.n * cases;
        let xml: Vec<String> = (start..start + cases)
            .map(|i| case_xml(&Matter::new(seed, i), court, 500 + i, STATUSES[(i % 3) as usize], 1 + i))
            .collect();
        let page = feed_page(court, encoding, &format!("f-{}", start + cases), false, &xml);
        self.drop_file(&format!("feed-{:06}", self.n), &page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> (String, String, Vec<String>) {
        let text = if bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB18030\"") {
            let (t, bad) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            assert!(!bad);
            t.into_owned()
        } else {
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        let mut r = quick_xml::Reader::from_str(&text);
        let (mut next, mut more, mut statuses) = (String::new(), String::new(), Vec::new());
        let mut in_status = false;
        loop {
            match r.read_event().unwrap() {
                quick_xml::events::Event::Start(e) if e.name().as_ref() == "MediationFeed" => {
                    for a in e.attributes().flatten() {
                        let v = a.normalized_value(quick_xml::XmlVersion::Explicit1_0).unwrap().to_string();
                        match a.key.as_ref() {
                            "next" => next = v,
                            "more" => more = v,
                            _ => {}
                        }
                    }
                }
                quick_xml::events::Event::Start(e) => in_status = e.name().as_ref() == "Status",
                quick_xml::events::Event::Text(t) if in_status => {
                    statuses.push(t.to_string());
                    in_status = false;
                }
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        (next, more, statuses)
    }

    #[tokio::test]
    async fn agencies_court_feed_over_http() {
        let s = CourtFeedServer::bind("127.0.0.1:0", "吉0402", FeedEncoding::Utf8, 3, 25).await.unwrap();
        let c = reqwest::Client::new();
        let base = s.base_url();
        let mut cursor = String::new();
        let mut seen = 0;
        let mut etag;
        loop {
            let url = if cursor.is_empty() {
                format!("{base}/mediation/feed?limit=10")
            } else {
                format!("{base}/mediation/feed?after={cursor}&limit=10")
            };
            let r = c.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
            let (next, more, st) = parse(&r.bytes().await.unwrap());
            seen += st.len();
            assert!(st.iter().all(|x| STATUSES.contains(&x.as_str())));
            cursor = next;
            if more != "true" {
                break;
            }
        }
        assert_eq!(seen, 25);
        assert!(!etag.is_empty());
        let url = format!("{base}/mediation/feed?after={cursor}&limit=10");
        let r = c.get(&url).send().await.unwrap();
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
        let (_, more, st) = parse(&r.bytes().await.unwrap());
        assert_eq!((more.as_str(), st.len()), ("false", 0));
        let r = c.get(&url).header(header::IF_NONE_MATCH, &etag).send().await.unwrap();
        assert_eq!(r.status(), 304);
        assert_eq!(s.advance(5), 5);
        let r = c.get(&url).header(header::IF_NONE_MATCH, &etag).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let (_, _, st) = parse(&r.bytes().await.unwrap());
        assert_eq!(st, vec!["MEDIATING"; 5]);
        s.set_faults(FeedFaults { throttle_share: 1.0, unavailable_share: 0.0 });
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let o = "<Outcome caseNo=\"(2024)吉0402民诉前调100号\" result=\"AGREED\" at=\"2024-07-15T15:20:00+08:00\"><Note>调解成功</Note></Outcome>";
        let post = || c.post(format!("{base}/mediation/outcomes")).header("idempotency-key", "fb-1").body(o).send();
        let (r1, r2) = (post().await.unwrap(), post().await.unwrap());
        assert_eq!((r1.status().as_u16(), r2.status().as_u16()), (201, 409));
        let st = s.stats();
        assert_eq!((st.outcomes_accepted, st.outcomes_heard, st.outcome_keys, st.outcome_resends()), (1, 2, 1, 1));
    }

    #[test]
    fn agencies_court_gb18030_page_and_file_drop() {
        let dir = std::env::temp_dir().join(format!("agency-drop-{}", uuid::Uuid::new_v4().simple()));
        let mut d = FileDropper::new(&dir);
        let p = d.drop_page("吉0422", FeedEncoding::Gb18030, 9, 6).unwrap();
        assert!(p.extension().unwrap() == "xml" && !dir.join("feed-000000.xml.part").exists());
        let bytes = std::fs::read(&p).unwrap();
        assert!(std::str::from_utf8(&bytes).is_err());
        let (_, more, st) = parse(&bytes);
        assert_eq!((more.as_str(), st.len()), ("false", 6));
        // AGREED cases carry their document
        let m = Matter::new(1, 2);
        let x = case_xml(&m, "吉0402", 7, "AGREED", 5);
        assert!(x.contains("MEDIATION_AGREEMENT") && x.contains("民诉前调7号"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
