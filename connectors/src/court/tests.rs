use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::feed::{clamp, parse_retry_after};
use super::parse::{Item, ParseError, parse_page};
use super::*;
use crate::{
    CancellationToken, Connector, Cursor, IntakeError, Outcome, PageRequest, RawRecord, Submission, intake_channels,
};

// ---------- fake hub ----------

#[derive(Default)]
struct Hub {
    records: Vec<RawRecord>,
    created: usize,
    duplicates: usize,
    seen: HashSet<Vec<u8>>,
    cursors: HashMap<String, Cursor>,
    page_sizes: Vec<usize>,
    /// Fail this many page commits that carry a cursor (or, with `fail_any`, any page).
    fail_pages: usize,
    fail_any: bool,
}

type SharedHub = Arc<Mutex<Hub>>;

fn fake_hub() -> (crate::Intake, SharedHub) {
    let (intake, mut rx, mut pages) = intake_channels(16);
    let hub: SharedHub = Arc::default();
    let h = hub.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                s = rx.recv() => {
                    let Some(Submission { reply, .. }) = s else { break };
                    let _ = reply.send(Err(IntakeError::Unsupported));
                }
                p = pages.recv() => {
                    let Some(p) = p else { break };
                    match p {
                        PageRequest::LoadCursor { name, reply } => {
                            let _ = reply.send(Ok(h.lock().unwrap().cursors.get(&name).cloned()));
                        }
                        PageRequest::Page { records, cursor, reply } => {
                            let mut hub = h.lock().unwrap();
                            if hub.fail_pages > 0 && (cursor.is_some() || hub.fail_any) {
                                hub.fail_pages -= 1;
                                let _ = reply.send(Err(IntakeError::Store("disk on fire".into())));
                                continue;
                            }
                            hub.page_sizes.push(records.len());
                            let mut out = Vec::new();
                            for r in records {
                                if hub.seen.insert(r.payload.to_vec()) {
                                    hub.created += 1;
                                    out.push(Outcome::Created { ticket_id: format!("T{}", hub.created) });
                                    hub.records.push(r);
                                } else {
                                    hub.duplicates += 1;
                                    out.push(Outcome::Duplicate);
                                }
                            }
                            if let Some((name, c)) = cursor {
                                hub.cursors.insert(name, c);
                            }
                            let _ = reply.send(Ok(out));
                        }
                    }
                }
            }
        }
    });
    (intake, hub)
}

// ---------- fake court server ----------

#[derive(Default)]
struct Court {
    /// Pages by `after` ("" for the first call): (body, etag).
    pages: HashMap<String, (Vec<u8>, String)>,
    /// Responses served before anything else: (status, Retry-After).
    script: VecDeque<(u16, Option<String>)>,
    /// (after, If-None-Match, when, status).
    log: Vec<(Option<String>, Option<String>, Instant, u16)>,
    /// Serve a generated page of this many cases for the first call.
    big: Option<usize>,
}

type SharedCourt = Arc<(Mutex<Court>, AtomicUsize)>;
const TAIL_ETAG: &str = "\"tail\"";

async fn feed(State(court): State<SharedCourt>, Query(q): Query<HashMap<String, String>>, h: HeaderMap) -> Response {
    let after = q.get("after").cloned();
    let inm = h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut c = court.0.lock().unwrap();
    let now = Instant::now();
    if let Some((status, retry)) = c.script.pop_front() {
        c.log.push((after, inm, now, status));
        let mut resp = StatusCode::from_u16(status).unwrap().into_response();
        if let Some(r) = retry {
            resp.headers_mut().insert(header::RETRY_AFTER, r.parse().unwrap());
        }
        return resp;
    }
    if let (Some(n), None) = (c.big, &after) {
        c.log.push((after, inm, now, 200));
        return big_page(court.clone(), n);
    }
    let key = after.clone().unwrap_or_default();
    if let Some((body, etag)) = c.pages.get(&key).cloned() {
        c.log.push((after, inm, now, 200));
        return ([(header::ETAG, etag)], body).into_response();
    }
    if inm.as_deref() == Some(TAIL_ETAG) {
        c.log.push((after, inm, now, 304));
        return StatusCode::NOT_MODIFIED.into_response();
    }
    c.log.push((after, inm, now, 200));
    let body = format!(r#"<?xml version="1.0"?><MediationFeed court="吉0402" next="{key}" more="false"/>"#);
    ([(header::ETAG, TAIL_ETAG.to_string())], body).into_response()
}

fn big_case(i: usize) -> String {
    format!(
        "<Case seq=\"{i}\"><CaseNo>(2024)吉0402民诉前调{i}号</CaseNo><Status>RECEIVED</Status>\
         <Claim>{}</Claim></Case>\n",
        "请求偿还借款人民币五万元及利息".repeat(10)
    )
}

fn big_page(court: SharedCourt, n: usize) -> Response {
    let head = Bytes::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><MediationFeed court="吉0402" next="big-end" more="false">"#,
    );
    let stream = futures::stream::unfold(0usize, move |i| {
        let court = court.clone();
        let head = head.clone();
        async move {
            if i > n {
                return None;
            }
            let chunk = if i == 0 {
                head.clone()
            } else if i == n {
                Bytes::from("</MediationFeed>")
            } else {
                let mut s = String::new();
                for k in i..(i + 50).min(n) {
                    s.push_str(&big_case(k));
                }
                Bytes::from(s)
            };
            court.1.fetch_add(chunk.len(), Ordering::SeqCst);
            let next = if i == 0 {
                1
            } else if i == n {
                n + 1
            } else {
                (i + 50).min(n)
            };
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    ([(header::ETAG, "\"big\"")], Body::from_stream(stream)).into_response()
}

async fn court_server(court: SharedCourt) -> SocketAddr {
    let app = Router::new().route("/mediation/feed", get(feed)).with_state(court);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn sample(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings/samples").join(name);
    std::fs::read(p).unwrap()
}

fn court_with(pages: &[(&str, &str, &str)]) -> SharedCourt {
    let mut c = Court::default();
    for (after, file, etag) in pages {
        c.pages.insert(after.to_string(), (sample(file), etag.to_string()));
    }
    Arc::new((Mutex::new(c), AtomicUsize::new(0)))
}

fn config(addr: SocketAddr, court: &str) -> CourtFeedConfig {
    let mut c = CourtFeedConfig::new(format!("http://{addr}"), "court", court);
    c.poll_interval = Duration::from_millis(50);
    c.timeout = Duration::from_secs(5);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c.chunk_size = 10;
    c
}

fn start(cfg: CourtFeedConfig, intake: crate::Intake) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = CancellationToken::new();
    let t = token.clone();
    let conn = Box::new(CourtFeedConnector::new(cfg).unwrap());
    let h = tokio::spawn(async move { conn.run(intake, t).await.unwrap() });
    (token, h)
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn text(r: &RawRecord) -> &str {
    std::str::from_utf8(&r.payload).unwrap()
}

// ---------- parser ----------

fn parse_all(raw: &[u8]) -> (Vec<Item>, Result<(), ParseError>) {
    let mut items = Vec::new();
    let r = parse_page(raw, 1 << 20, &mut |i| {
        items.push(i);
        true
    });
    (items, r)
}

#[test]
fn case_reserialized_with_escapes_and_refs_kept() {
    let xml = r#"<?xml version="1.0"?><MediationFeed next="n" more="false">
      <Case seq="1" note="a &quot;b&quot; &lt; c &amp; d"><CaseNo>A &amp; B &lt;x&gt; &#x4e2d; &custom;</CaseNo><![CDATA[<raw>]]><E/></Case>
    </MediationFeed>"#;
    let (items, r) = parse_all(xml.as_bytes());
    assert_eq!(r, Ok(()));
    let Item::Case(c) = &items[1] else { panic!() };
    let s = std::str::from_utf8(&c.xml).unwrap();
    assert_eq!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?><Case seq="1" note="a &quot;b&quot; &lt; c &amp; d"><CaseNo>A &amp; B &lt;x&gt; &#x4e2d; &custom;</CaseNo><![CDATA[<raw>]]><E/></Case>"#
    );
    assert_eq!(c.seq.as_deref(), Some("1"));
}

#[test]
fn oversized_case_is_cut_and_marked() {
    let big = "长".repeat(2000);
    let xml =
        format!(r#"<MediationFeed next="n"><Case seq="7"><Claim>{big}</Claim></Case><Case seq="8"/></MediationFeed>"#);
    let mut items = Vec::new();
    let r = parse_page(xml.as_bytes(), 1000, &mut |i| {
        items.push(i);
        true
    });
    assert_eq!(r, Ok(()));
    let Item::Case(c) = &items[1] else { panic!() };
    assert!(matches!(c.oversized, Some(super::parse::Oversized::Case { size }) if size > 6000), "{:?}", c.oversized);
    assert!(c.xml.len() <= 1000);
    assert!(std::str::from_utf8(&c.xml).is_ok());
    let Item::Case(c) = &items[2] else { panic!() };
    assert!(c.oversized.is_none());
}

/// A page whose bytes are made as they are read: `head`, then `fill` bytes
/// of `b'x'`, then `tail`; nothing of it is held in memory.
struct Generated {
    parts: Vec<(Vec<u8>, usize)>,
}

impl Generated {
    fn new(head: &str, fill: usize, tail: &str) -> Self {
        Generated { parts: vec![(head.as_bytes().to_vec(), 0), (Vec::new(), fill), (tail.as_bytes().to_vec(), 0)] }
    }
}

impl std::io::Read for Generated {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        while let Some((bytes, fill)) = self.parts.first_mut() {
            if !bytes.is_empty() {
                let n = bytes.len().min(dst.len());
                dst[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                return Ok(n);
            }
            if *fill > 0 {
                let n = (*fill).min(dst.len());
                dst[..n].fill(b'x');
                *fill -= n;
                return Ok(n);
            }
            self.parts.remove(0);
        }
        Ok(0)
    }
}

/// Counts the bytes each thread holds allocated, and its peak, so that a
/// test can tell how much memory the code it runs on its thread needed
/// (other tests run beside it in the same process).
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn note(delta: isize) {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + delta;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    struct Counting;

    // SAFETY: every call goes to `System` unchanged; only counted beside.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                note(layout.size() as isize);
            }
            p
        }

        unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
            unsafe { System.dealloc(p, layout) };
            note(-(layout.size() as isize));
        }

        unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let q = unsafe { System.realloc(p, layout, new_size) };
            if !q.is_null() {
                note(new_size as isize - layout.size() as isize);
            }
            q
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// Runs `f` and returns what it returned and the most memory it held
    /// allocated at once on this thread, in bytes.
    pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let start = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(start));
        let out = f();
        (out, (PEAK.with(Cell::get) - start).max(0) as usize)
    }
}

/// A text node of 256 MiB inside a case: the case becomes a defect, the
/// page goes on with the next case, and the parser never holds the node.
#[test]
fn huge_text_node_cuts_its_case_not_the_page_nor_the_memory() {
    const HUGE: usize = 256 << 20;
    let head = r#"<?xml version="1.0"?><MediationFeed next="n" more="false"><Case seq="1"><CaseNo>A</CaseNo></Case><Case seq="2"><CaseNo>B</CaseNo><Claim>"#;
    let tail = r#"</Claim><Note>x</Note></Case ><Case seq="3"><CaseNo>C</CaseNo></Case></MediationFeed>"#;
    let mut items = Vec::new();
    let (r, peak) = counting::peak_of(|| {
        parse_page(Generated::new(head, HUGE, tail), 64 * 1024, &mut |i| {
            items.push(i);
            true
        })
    });
    assert_eq!(r, Ok(()));
    assert!(peak < 4 << 20, "the parser held {} KiB at once", peak >> 10);
    let cases: Vec<_> = items.iter().filter_map(|i| if let Item::Case(c) = i { Some(c) } else { None }).collect();
    let seqs: Vec<_> = cases.iter().map(|c| c.seq.as_deref().unwrap()).collect();
    assert_eq!(seqs, ["1", "2", "3"]);
    assert_eq!(cases[1].oversized, Some(super::parse::Oversized::Part));
    assert!(cases[1].xml.len() <= 64 * 1024 + 100, "{}", cases[1].xml.len());
    assert!(cases[0].oversized.is_none() && cases[2].oversized.is_none());
    assert!(std::str::from_utf8(&cases[2].xml).unwrap().contains("<CaseNo>C</CaseNo>"));
}

/// Outside a case the same is a bounded defect of the page.
#[test]
fn huge_text_outside_a_case_is_a_bounded_page_defect() {
    let head = r#"<MediationFeed next="n"><Case seq="1"/>"#;
    let r = parse_page(Generated::new(head, 8 << 20, "</MediationFeed>"), 64 * 1024, &mut |_| true);
    match r {
        Err(ParseError::Defect(reason)) => assert!(reason.contains("outside any case"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_pages_are_defects() {
    for (xml, want) in [
        (sample("bad-court-xxe.xml"), "DOCTYPE"),
        (sample("bad-court-truncated.xml"), "truncated"),
        (b"<MediationFeed next='a'><Case></Caze></MediationFeed>".to_vec(), "malformed"),
        (b"<MediationFeed next='a'/><MediationFeed next='b'/>".to_vec(), "after the root"),
        (b"<Other next='a'/>".to_vec(), "root element"),
        (b"<MediationFeed more='true'/>".to_vec(), "next"),
        (b"".to_vec(), "no root"),
        (b"<?xml version='1.0' encoding='x-nope'?><MediationFeed next='a'/>".to_vec(), "unsupported encoding"),
    ] {
        let (_, r) = parse_all(&xml);
        match r {
            Err(ParseError::Defect(reason)) => assert!(reason.contains(want), "{reason} should mention {want}"),
            other => panic!("expected a defect mentioning {want}, got {other:?}"),
        }
    }
}

#[test]
fn retry_after_forms() {
    let now = SystemTime::now();
    assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
    let d = parse_retry_after(&later, now).unwrap();
    assert!(d > Duration::from_secs(115) && d <= Duration::from_secs(120), "{d:?}");
    assert_eq!(parse_retry_after("soon", now), None);
    // Zero, the past and the absurd as asked; the bounds are applied after.
    assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
    let past = httpdate::fmt_http_date(now - Duration::from_secs(86_400));
    assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::MAX));
    assert_eq!(parse_retry_after("18446744073709551615", now), Some(Duration::from_secs(u64::MAX)));
    let (min, max) = (Duration::from_secs(1), Duration::from_secs(3600));
    assert_eq!(clamp(Duration::ZERO, min, max), min);
    assert_eq!(clamp(Duration::MAX, min, max), max);
    assert_eq!(clamp(Duration::from_secs(5), max, min), max, "a max below the min is the min");
}

/// A feed that throttles with `Retry-After: 0`, a date in the past, a
/// number too large for any clock and one of a year: the poll neither
/// spins, nor panics, nor waits a year.
#[tokio::test]
async fn retry_after_zero_past_or_huge_is_bounded() {
    let court = court_with(&[("", "court-feed-page2.xml", "\"p2\"")]);
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    for (status, value) in
        [(429, "0"), (503, past.as_str()), (429, "99999999999999999999999"), (503, "31536000"), (429, " 0 ")]
    {
        court.0.lock().unwrap().script.push_back((status, Some(value.to_string())));
    }
    let addr = court_server(court.clone()).await;
    let (intake, hub) = fake_hub();
    let mut cfg = config(addr, "吉0402");
    cfg.retry_after_min = Duration::from_millis(200);
    cfg.retry_after_max = Duration::from_millis(500);
    let (token, h) = start(cfg, intake);
    wait_for("the page after the throttling", || hub.lock().unwrap().cursors.contains_key("court-feed:吉0402")).await;
    token.cancel();
    h.await.unwrap();
    let log = &court.0.lock().unwrap().log;
    assert!(log[..5].iter().all(|l| l.3 == 429 || l.3 == 503), "{:?}", log);
    assert_eq!(log[5].3, 200);
    for (i, pair) in log[..6].windows(2).enumerate() {
        let waited = pair[1].2 - pair[0].2;
        assert!(waited >= Duration::from_millis(190), "answer {i}: polled again after {waited:?}");
        assert!(waited < Duration::from_millis(1500), "answer {i}: waited {waited:?}");
    }
}

// ---------- polling ----------

#[tokio::test]
async fn paging_cursor_and_restart() {
    let court = court_with(&[("", "court-feed-page1.xml", "\"p1\""), ("c-1723", "court-feed-page2.xml", "\"p2\"")]);
    let addr = court_server(court.clone()).await;
    let (intake, hub) = fake_hub();
    let (token, h) = start(config(addr, "吉0402"), intake.clone());
    wait_for("4 cases and the cursor", || {
        let hub = hub.lock().unwrap();
        hub.records.len() == 4 && hub.cursors.get("court-feed:吉0402").is_some_and(|c| c.value == "c-1725")
    })
    .await;
    token.cancel();
    h.await.unwrap();
    {
        let hub = hub.lock().unwrap();
        let seqs: Vec<_> = hub.records.iter().map(|r| r.meta("seq").unwrap().to_string()).collect();
        assert_eq!(seqs, ["1721", "1722", "1724", "1725"]);
        for r in &hub.records {
            assert_eq!(r.meta("court"), Some("吉0402"));
            assert_eq!(r.encoding.as_deref(), Some("utf-8"));
            assert_eq!(r.content_type, crate::ContentType::Xml);
            assert!(text(r).starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><Case seq="#));
            assert!(text(r).ends_with("</Case>"));
        }
        assert_eq!(hub.records[0].meta("feed_cursor"), None);
        assert_eq!(hub.records[2].meta("feed_cursor"), Some("c-1723"));
        let log = &court.0.lock().unwrap().log;
        assert_eq!(log[0].0, None);
        assert_eq!(log[1].0.as_deref(), Some("c-1723"));
        // page 1 said more="true": its ETag is not stored nor sent.
        assert_eq!(log[1].1, None);
    }
    // Restart: a new connector with the same hub resumes at the stored cursor.
    court.0.lock().unwrap().log.clear();
    let (token, h) = start(config(addr, "吉0402"), intake);
    wait_for("a request", || court.0.lock().unwrap().log.len() >= 2).await;
    token.cancel();
    h.await.unwrap();
    let log = &court.0.lock().unwrap().log;
    assert!(log.iter().all(|(after, ..)| after.as_deref() == Some("c-1725")), "{:?}", log);
    assert_eq!(hub.lock().unwrap().records.len(), 4);
}

#[tokio::test]
async fn etag_304_and_retry_after() {
    let court = court_with(&[("", "court-feed-page2.xml", "\"p2\"")]);
    court.0.lock().unwrap().script.push_back((429, Some("1".into())));
    let addr = court_server(court.clone()).await;
    let (intake, hub) = fake_hub();
    let (token, h) = start(config(addr, "吉0402"), intake);
    wait_for("two 304s", || court.0.lock().unwrap().log.iter().filter(|l| l.3 == 304).count() >= 2).await;
    token.cancel();
    h.await.unwrap();
    let log = &court.0.lock().unwrap().log;
    assert_eq!(log[0].3, 429);
    let waited = log[1].2 - log[0].2;
    assert!(waited >= Duration::from_millis(950), "Retry-After not honoured: {waited:?}");
    // page2 (etag p2), then the empty tail page sent with If-None-Match p2, then 304s with the tail etag.
    assert_eq!(log[2].1.as_deref(), Some("\"p2\""));
    assert!(log[3..].iter().all(|l| l.3 == 304 && l.1.as_deref() == Some(TAIL_ETAG)));
    let hub = hub.lock().unwrap();
    assert_eq!(hub.records.len(), 2);
    assert_eq!(hub.duplicates, 0);
    assert_eq!(hub.cursors["court-feed:吉0402"], Cursor { value: "c-1725".into(), etag: Some(TAIL_ETAG.into()) });
}

#[tokio::test]
async fn gb18030_page_becomes_utf8() {
    let court = court_with(&[("", "court-feed-gb18030.xml", "\"g\"")]);
    let addr = court_server(court).await;
    let (intake, hub) = fake_hub();
    let (token, h) = start(config(addr, "吉0422"), intake);
    wait_for("the cursor", || hub.lock().unwrap().cursors.contains_key("court-feed:吉0422")).await;
    token.cancel();
    h.await.unwrap();
    let hub = hub.lock().unwrap();
    assert!(!hub.records.is_empty());
    let t = text(&hub.records[0]);
    assert!(t.contains("(2024)吉0422民诉前调41号"), "{}", t.len());
    assert!(t.contains("土地承包经营权纠纷"));
    assert!(!t.contains("GB18030"));
    assert_eq!(hub.records[0].meta("seq"), Some("88"));
    assert_eq!(hub.cursors["court-feed:吉0422"].value, "d-88");
}

async fn bad_page(file: &str, want: &str) {
    let court = court_with(&[("", file, "\"b\"")]);
    let addr = court_server(court.clone()).await;
    let (intake, hub) = fake_hub();
    let (token, h) = start(config(addr, "吉0402"), intake);
    wait_for("the page fetched again", || court.0.lock().unwrap().log.len() >= 3).await;
    token.cancel();
    h.await.unwrap();
    let hub = hub.lock().unwrap();
    assert!(hub.cursors.is_empty(), "the cursor moved");
    // The same defect record each time: one stored, the rest duplicates.
    assert_eq!(hub.records.len(), 1);
    let r = &hub.records[0];
    assert!(r.meta("defect").unwrap().contains(want), "{:?}", r.meta("defect"));
    assert_eq!(r.payload.as_ref(), sample(file).as_slice());
    assert!(!text(r).contains("root:x:0:0"));
    assert!(!text(r).contains("lollollol"));
    assert!(court.0.lock().unwrap().log.iter().all(|l| l.0.is_none()));
}

#[tokio::test]
async fn xxe_page_is_one_defect_record() {
    bad_page("bad-court-xxe.xml", "DOCTYPE").await;
}

#[tokio::test]
async fn truncated_page_is_one_defect_record() {
    bad_page("bad-court-truncated.xml", "truncated").await;
}

#[tokio::test]
async fn mixed_page_gives_three_cases() {
    let court = court_with(&[("", "bad-court-mixed.xml", "\"m\"")]);
    let addr = court_server(court).await;
    let (intake, hub) = fake_hub();
    let (token, h) = start(config(addr, "吉0403"), intake);
    wait_for("the cursor", || hub.lock().unwrap().cursors.contains_key("court-feed:吉0403")).await;
    token.cancel();
    h.await.unwrap();
    let hub = hub.lock().unwrap();
    let seqs: Vec<_> = hub.records.iter().map(|r| r.meta("seq").unwrap()).collect();
    assert_eq!(seqs, ["29", "30", "31"]);
    assert!(hub.records.iter().all(|r| r.meta("defect").is_none()));
    assert_eq!(hub.cursors["court-feed:吉0403"].value, "e-31");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_page_is_streamed_in_chunks() {
    const CASES: usize = 40_000;
    let court = court_with(&[]);
    court.0.lock().unwrap().big = Some(CASES);
    let addr = court_server(court.clone()).await;
    let (intake, hub) = fake_hub();
    // Record how much the server had sent when the first chunk reached the hub.
    let sent_at_first = Arc::new(AtomicUsize::new(0));
    let (s, c, hb) = (sent_at_first.clone(), court.clone(), hub.clone());
    let watcher = tokio::spawn(async move {
        loop {
            if !hb.lock().unwrap().page_sizes.is_empty() {
                s.store(c.1.load(Ordering::SeqCst), Ordering::SeqCst);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let mut cfg = config(addr, "吉0402");
    cfg.chunk_size = 50;
    let (token, h) = start(cfg, intake);
    wait_for("the big page", || hub.lock().unwrap().cursors.contains_key("court-feed:吉0402")).await;
    token.cancel();
    h.await.unwrap();
    watcher.await.unwrap();
    let total = court.1.load(Ordering::SeqCst);
    assert!(total > 20_000_000, "{total}");
    let hub = hub.lock().unwrap();
    // The generator writes cases 1..CASES.
    assert_eq!(hub.records.len(), CASES - 1);
    assert!(hub.page_sizes.iter().all(|n| *n <= 50), "a chunk above the limit");
    let first = sent_at_first.load(Ordering::SeqCst);
    assert!(first < total / 4, "the first chunk came only after {first} of {total} bytes");
}

#[tokio::test]
async fn failed_commit_refetches_the_page() {
    let court = court_with(&[("", "court-feed-page2.xml", "\"p2\"")]);
    let addr = court_server(court.clone()).await;
    let (intake, hub) = fake_hub();
    hub.lock().unwrap().fail_pages = 1;
    let (token, h) = start(config(addr, "吉0402"), intake);
    wait_for("the cursor", || hub.lock().unwrap().cursors.contains_key("court-feed:吉0402")).await;
    token.cancel();
    h.await.unwrap();
    let log = &court.0.lock().unwrap().log;
    assert_eq!(log[0].0, None);
    assert_eq!(log[1].0, None, "the page was not fetched again from the same cursor");
    let hub = hub.lock().unwrap();
    assert_eq!(hub.created, 2);
    assert_eq!(hub.cursors["court-feed:吉0402"].value, "c-1725");
}

// ---------- file drop ----------

#[tokio::test]
async fn file_drop() {
    let dir = std::env::temp_dir().join(format!("court-drop-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.xml.part"), sample("court-feed-page1.xml")).unwrap();
    let (intake, hub) = fake_hub();
    hub.lock().unwrap().fail_pages = 1;
    hub.lock().unwrap().fail_any = true;
    let mut cfg = FileDropConfig::new(&dir, "court");
    cfg.interval = Duration::from_millis(30);
    let token = CancellationToken::new();
    let conn = Box::new(FileDropConnector::new(cfg));
    let t = token.clone();
    let h = tokio::spawn(async move { conn.run(intake, t).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(hub.lock().unwrap().records.is_empty());
    assert!(dir.join("a.xml.part").exists());
    std::fs::rename(dir.join("a.xml.part"), dir.join("a.xml")).unwrap();
    std::fs::write(dir.join("b.xml"), sample("bad-court-xxe.xml")).unwrap();
    wait_for("both files moved", || dir.join("done/a.xml").exists() && dir.join("rejected/b.xml").exists()).await;
    token.cancel();
    h.await.unwrap();
    assert!(!dir.join("a.xml").exists() && !dir.join("b.xml").exists());
    let reason = std::fs::read_to_string(dir.join("rejected/b.xml.reason")).unwrap();
    assert!(reason.contains("DOCTYPE"));
    let hub = hub.lock().unwrap();
    // The first commit failed (file left in place), the retry stored it.
    let cases: Vec<_> = hub.records.iter().filter(|r| r.meta("defect").is_none()).collect();
    assert_eq!(cases.len(), 2);
    assert!(cases.iter().all(|r| r.meta("file") == Some("a.xml") && r.meta("court") == Some("吉0402")));
    let defects: Vec<_> = hub.records.iter().filter(|r| r.meta("defect").is_some()).collect();
    assert_eq!(defects.len(), 1);
    assert_eq!(defects[0].meta("file"), Some("b.xml"));
    std::fs::remove_dir_all(&dir).unwrap();
}
