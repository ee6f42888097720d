//! Open311 GeoReport v2 through the real `hub` binary, checked field by
//! field against the spec (<https://wiki.open311.org/GeoReport_v2>):
//! services, requests with each filter, one request, JSON and XML, tokens
//! and regions, and no reporter's name, phone or house number anywhere.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::*;
use hub::callbacks::verify::sign;
use serde_json::Value;
use simulators::canonical::matters;
use simulators::platform::{Faults, PlatformSim, SimConfig};

const SECRET: &str = "open311-callback-secret-0001";
const DONGFENG_TOKEN: &str = "e2e-open311-dongfeng-token-0123";

/// GeoReport v2, `GET services`: a service's fields, in the spec's order.
const SERVICE_FIELDS: [&str; 7] =
    ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"];
/// GeoReport v2, `GET requests` and `GET request`: a service request's
/// fields, in the spec's order.
const REQUEST_FIELDS: [&str; 17] = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
];

const JULY: &str = "start_date=2024-07-01T00:00:00%2B08:00&end_date=2024-07-31";

fn config(
    dir: &std::path::Path,
    db_url: &str,
    platform: &str,
    source: u16,
    endpoint: u16,
    public: bool,
) -> std::path::PathBuf {
    let name = if public { "public.toml" } else { "hub.toml" };
    let platform_extra = format!("secrets = [\"{SECRET}\"]");
    CanonHub { db_url, platform, source, endpoint }.write(
        dir,
        name,
        &platform_extra,
        &format!("[open311]\npublic = {public}"),
    )
}

/// Every answer the test saw, to look for personal data at the end.
#[derive(Default)]
struct Seen(Vec<String>);

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn get(client: &reqwest::Client, seen: &mut Seen, url: &str, token: Option<&str>) -> Answer {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = r.text().await.unwrap();
    seen.0.push(body.clone());
    Answer { status, content_type, body }
}

/// The items under an XML document's root, each as its elements' (name,
/// text), read as a client would; panics if the document is not well-formed.
fn xml_items(doc: &str, root: &str, item: &str) -> Vec<Vec<(String, String)>> {
    use quick_xml::events::Event;
    assert!(doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"), "{doc}");
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut path: Vec<String> = Vec::new();
    let mut items: Vec<Vec<(String, String)>> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("ill-formed XML ({e}): {doc}")) {
            Event::Start(e) => {
                let name = e.name().into_inner().to_string();
                match path.len() {
                    0 => assert_eq!(name, root, "{doc}"),
                    1 => {
                        assert_eq!(name, item, "{doc}");
                        items.push(Vec::new());
                    }
                    _ => text.clear(),
                }
                path.push(name);
            }
            Event::Text(t) => text.push_str(&t[..]),
            Event::GeneralRef(r) => {
                let name = r[..].to_string();
                let c = match name.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                };
                text.push_str(c);
            }
            Event::End(_) => {
                let name = path.pop().unwrap();
                if path.len() == 2 {
                    items.last_mut().unwrap().push((name, std::mem::take(&mut text)));
                }
            }
            Event::Empty(e) => {
                let name = e.name().into_inner().to_string();
                if path.len() == 2 {
                    items.last_mut().unwrap().push((name, String::new()));
                } else if path.is_empty() {
                    assert_eq!(name, root);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    items
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(fields: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|r| r["service_request_id"].as_str().unwrap().to_string()).collect()
}

async fn post_callback(client: &reqwest::Client, endpoint: u16, event_id: &str, body: &Value) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let body = body.to_string();
    let status = client
        .post(format!("http://127.0.0.1:{endpoint}/api/v1/platform/events"))
        .header("content-type", "application/json")
        .header("x-event-id", event_id)
        .header("x-timestamp", &ts)
        .header("x-signature", sign(SECRET.as_bytes(), &ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200, "{event_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open311_serves_the_spec_fields_within_the_token_region_and_no_personal_data() {
    let db = TestDb::sqlite();
    let dir = std::env::temp_dir().join(format!("hub-open311-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let sim = PlatformSim::new(SimConfig { token: "test-token".into(), faults: Faults::default() });
    let server = sim.bind("127.0.0.1:0").await.unwrap();
    let (source, endpoint) = (free_port(), free_port());
    let tokens = format!("{API_TOKENS},viewer@220421:{DONGFENG_TOKEN}");
    let cfg = config(&dir, &db.url, &server.base_url(), source, endpoint, false);
    let mut hub = HubProcess::start_with_env(&cfg, &[("HUB_API_TOKENS", tokens.as_str())]);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let base = format!("http://127.0.0.1:{endpoint}/open311/v2");
    let mut seen = Seen::default();

    // Canonical matters of 2024-07, each with a reporter's name and phone.
    let ms = matters(311, 24, "O311");
    let mut tickets = BTreeSet::new();
    let mut personal: Vec<String> = Vec::new();
    let mut dongfeng = BTreeSet::new();
    let mut longshan = None;
    for m in &ms {
        let answer =
            send_until_acknowledged(&client, &format!("http://127.0.0.1:{source}/records"), m.payload(1)).await;
        let id = answer["ticketId"].as_str().unwrap().to_string();
        let t = &m.record(1)["ticket"];
        for r in t["reporters"].as_array().unwrap() {
            let phone = r["phone"].as_str().unwrap();
            personal.extend([r["name"].as_str().unwrap().to_string(), phone.to_string(), phone[3..].to_string()]);
        }
        personal.push(t["address"].as_str().unwrap().to_string());
        let region = t["region"]["code"].as_str().unwrap();
        if region.starts_with("220421") {
            dongfeng.insert(id.clone());
        } else if region.starts_with("220402") {
            longshan = Some(id.clone());
        }
        tickets.insert(id);
    }
    assert!(personal.iter().any(|p| p.ends_with("女士")), "{personal:?}");
    assert!(!dongfeng.is_empty(), "the seed places some matters in 东丰县");
    let july = format!("{base}/requests.json?{JULY}");
    let count = tickets.len();
    wait_for(Duration::from_secs(20), "every matter in Open311", || {
        let (client, july) = (&client, &july);
        async move {
            let r = get(client, &mut Seen::default(), july, Some(VIEWER_TOKEN)).await;
            r.status == 200 && r.json().as_array().is_some_and(|a| a.len() == count)
        }
    })
    .await;

    // Two matters dispatched by the platform, one of them resolved; the
    // platform's note quotes the caller, which must not come out.
    let mut ids_sorted: Vec<String> = tickets.iter().cloned().collect();
    ids_sorted.sort();
    let (done, busy) = (ids_sorted[0].clone(), ids_sorted[1].clone());
    for (n, id) in [&done, &busy].into_iter().enumerate() {
        post_callback(
            &client,
            endpoint,
            &format!("ev-dispatch-{n}"),
            &serde_json::json!({"ticketId": id, "status": "dispatched", "department": "龙山区住建局",
                "dueAt": "2024-07-30T18:00:00+08:00", "note": "已联系王女士 13904371234", "at": "2024-07-29T09:00:00+08:00"}),
        )
        .await;
    }
    post_callback(
        &client,
        endpoint,
        "ev-resolved",
        &serde_json::json!({"ticketId": done, "status": "resolved", "at": "2024-07-30T09:00:00+08:00"}),
    )
    .await;

    // No token: 401 in the spec's error format, in the format asked for.
    let one = format!("requests/{done}.json");
    for path in ["services.json", "requests.json", one.as_str()] {
        let r = get(&client, &mut seen, &format!("{base}/{path}"), None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.json()[0]["code"], 401, "{}", r.body);
        assert!(r.json()[0]["description"].is_string(), "{}", r.body);
        let r = get(&client, &mut seen, &format!("{base}/{}", path.replace(".json", ".xml")), None).await;
        assert_eq!(r.status, 401);
        let errors = xml_items(&r.body, "errors", "error");
        assert_eq!(errors[0][0], ("code".to_string(), "401".to_string()), "{}", r.body);
        assert_eq!(errors[0][1].0, "description");
    }
    let wrong = get(&client, &mut seen, &format!("{base}/services.json"), Some("not-a-token-0123456789")).await;
    assert_eq!(wrong.status, 401);

    // services: every category, the spec's fields exactly.
    let r = get(&client, &mut seen, &format!("{base}/services.json"), Some(VIEWER_TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("application/json"), "{}", r.content_type);
    let services = r.json();
    let services = services.as_array().unwrap();
    assert_eq!(services.len(), 33);
    for s in services {
        assert_eq!(keys(s), sorted(&SERVICE_FIELDS), "{s}");
        assert_eq!((s["metadata"].as_bool(), s["type"].as_str()), (Some(false), Some("realtime")), "{s}");
    }
    let heating = services.iter().find(|s| s["service_code"] == "0203").unwrap();
    assert_eq!((heating["service_name"].as_str(), heating["group"].as_str()), (Some("供热"), Some("住房物业")));
    let r = get(&client, &mut seen, &format!("{base}/services.xml"), Some(VIEWER_TOKEN)).await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/xml") && r.content_type.contains("utf-8"), "{}", r.content_type);
    let xml = xml_items(&r.body, "services", "service");
    assert_eq!(xml.len(), 33);
    for (s, json) in xml.iter().zip(services) {
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, SERVICE_FIELDS);
        assert_eq!(s[0].1, json["service_code"].as_str().unwrap());
        assert_eq!(s[1].1, json["service_name"].as_str().unwrap());
        assert_eq!(s[3].1, "false");
    }

    // requests: every matter of July, the spec's fields exactly, newest first.
    let r = get(&client, &mut seen, &july, Some(VIEWER_TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let all = r.json();
    let list = all.as_array().unwrap();
    assert_eq!(ids(&all).into_iter().collect::<BTreeSet<_>>(), tickets);
    for req in list {
        assert_eq!(keys(req), sorted(&REQUEST_FIELDS), "{req}");
        let requested = req["requested_datetime"].as_str().unwrap();
        assert!(requested.starts_with("2024-07-") && requested.ends_with("+08:00"), "{req}");
        assert!(req["updated_datetime"].as_str().unwrap().ends_with("+08:00"), "{req}");
        assert!(req["service_name"].is_string() && req["description"].is_string(), "{req}");
        let address = req["address"].as_str().unwrap();
        assert!(address.ends_with('街') || address.ends_with('路') || address.ends_with('道'), "{req}");
        assert!(!address.chars().any(|c| c.is_ascii_digit()), "no house number: {req}");
        for empty in ["service_notice", "address_id", "zipcode", "media_url"] {
            assert!(req[empty].is_null(), "{empty}: {req}");
        }
    }
    let requested: Vec<&str> = list.iter().map(|r| r["requested_datetime"].as_str().unwrap()).collect();
    assert!(requested.windows(2).all(|w| w[0] >= w[1]), "newest first: {requested:?}");
    let by_id = |id: &str| list.iter().find(|r| r["service_request_id"] == id).unwrap().clone();
    let resolved = by_id(&done);
    assert_eq!((resolved["status"].as_str(), resolved["status_notes"].as_str()), (Some("closed"), Some("已办结")));
    assert_eq!(resolved["agency_responsible"], "龙山区住建局");
    assert_eq!(resolved["expected_datetime"], "2024-07-30T18:00:00+08:00");
    let dispatched = by_id(&busy);
    assert_eq!((dispatched["status"].as_str(), dispatched["status_notes"].as_str()), (Some("open"), Some("已派单")));
    assert_eq!(dispatched["agency_responsible"], "龙山区住建局");
    assert!(
        list.iter()
            .filter(|r| r["service_request_id"] != done.as_str() && r["service_request_id"] != busy.as_str())
            .all(|r| r["agency_responsible"].is_null() && r["status"] == "open")
    );

    // The same in XML: the spec's element names, in its order, the same values.
    let r = get(&client, &mut seen, &format!("{base}/requests.xml?{JULY}"), Some(VIEWER_TOKEN)).await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/xml"), "{}", r.content_type);
    let xml = xml_items(&r.body, "service_requests", "request");
    assert_eq!(xml.len(), list.len());
    for (x, j) in xml.iter().zip(list) {
        let names: Vec<&str> = x.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, REQUEST_FIELDS);
        for (name, text) in x {
            let want = match &j[name.as_str()] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(text, &want, "{name}");
        }
    }

    // Each filter.
    let code = list[0]["service_code"].as_str().unwrap().to_string();
    let r =
        get(&client, &mut seen, &format!("{base}/requests.json?{JULY}&service_code={code}"), Some(VIEWER_TOKEN)).await;
    let same = r.json();
    assert_eq!(same.as_array().unwrap().len(), list.iter().filter(|r| r["service_code"] == code.as_str()).count());
    assert!(same.as_array().unwrap().iter().all(|r| r["service_code"] == code.as_str()));
    let r = get(&client, &mut seen, &format!("{base}/requests.json?{JULY}&status=closed"), Some(VIEWER_TOKEN)).await;
    assert_eq!(ids(&r.json()), std::slice::from_ref(&done));
    let r = get(&client, &mut seen, &format!("{base}/requests.json?{JULY}&status=open"), Some(VIEWER_TOKEN)).await;
    assert_eq!(r.json().as_array().unwrap().len(), tickets.len() - 1);
    let r = get(&client, &mut seen, &format!("{base}/requests.xml?{JULY}&status=closed"), Some(VIEWER_TOKEN)).await;
    assert_eq!(xml_items(&r.body, "service_requests", "request").len(), 1);
    let r = get(
        &client,
        &mut seen,
        &format!("{base}/requests.json?start_date=2024-07-20&end_date=2024-07-31"),
        Some(VIEWER_TOKEN),
    )
    .await;
    let late = r.json();
    assert!(
        late.as_array().unwrap().iter().all(|r| r["requested_datetime"].as_str().unwrap() >= "2024-07-20"),
        "{late}"
    );
    assert_eq!(late.as_array().unwrap().len(), requested.iter().filter(|t| **t >= "2024-07-20").count());
    // service_request_id overrides the other arguments, the default dates too.
    let r = get(
        &client,
        &mut seen,
        &format!("{base}/requests.json?service_request_id={done},{busy}&status=open"),
        Some(VIEWER_TOKEN),
    )
    .await;
    assert_eq!(ids(&r.json()).into_iter().collect::<BTreeSet<_>>(), BTreeSet::from([done.clone(), busy.clone()]));
    // Without dates: the last 90 days, which hold none of July 2024's matters.
    let r = get(&client, &mut seen, &format!("{base}/requests.json"), Some(VIEWER_TOKEN)).await;
    assert_eq!((r.status, r.json()), (200, serde_json::json!([])));
    let r = get(&client, &mut seen, &format!("{base}/requests.xml"), Some(VIEWER_TOKEN)).await;
    assert!(xml_items(&r.body, "service_requests", "request").is_empty(), "{}", r.body);
    // A span over 90 days is refused, in the spec's error format.
    let r = get(
        &client,
        &mut seen,
        &format!("{base}/requests.json?start_date=2024-05-01&end_date=2024-07-31"),
        Some(VIEWER_TOKEN),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()[0]["code"], 400);
    assert!(r.json()[0]["description"].as_str().unwrap().contains("90 days"), "{}", r.body);
    let r = get(&client, &mut seen, &format!("{base}/requests.xml?start_date=yesterday"), Some(VIEWER_TOKEN)).await;
    assert_eq!(r.status, 400);
    assert_eq!(xml_items(&r.body, "errors", "error")[0][0].1, "400");
    let r = get(&client, &mut seen, &format!("{base}/requests.json?{JULY}&status=pending"), Some(VIEWER_TOKEN)).await;
    assert_eq!(r.status, 400);

    // One request, by its id: a list of one, the same as in the list.
    let r = get(&client, &mut seen, &format!("{base}/requests/{done}.json"), Some(VIEWER_TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!([resolved]));
    let r = get(&client, &mut seen, &format!("{base}/requests/{done}.xml"), Some(VIEWER_TOKEN)).await;
    let one = xml_items(&r.body, "service_requests", "request");
    assert_eq!((one.len(), one[0][0].1.as_str()), (1, done.as_str()));
    let r = get(&client, &mut seen, &format!("{base}/requests/no-such-request.json"), Some(VIEWER_TOKEN)).await;
    assert_eq!((r.status, r.json()[0]["code"].as_i64()), (404, Some(404)));
    let r = get(&client, &mut seen, &format!("{base}/requests/no-such-request.xml"), Some(VIEWER_TOKEN)).await;
    assert_eq!((r.status, xml_items(&r.body, "errors", "error")[0][0].1.as_str()), (404, "404"));
    assert_eq!(get(&client, &mut seen, &format!("{base}/requests/{done}.csv"), Some(VIEWER_TOKEN)).await.status, 404);

    // A county's token sees its county's matters only.
    let r = get(&client, &mut seen, &july, Some(DONGFENG_TOKEN)).await;
    assert_eq!(r.status, 200);
    let own = r.json();
    assert_eq!(ids(&own).into_iter().collect::<BTreeSet<_>>(), dongfeng);
    assert!(own.as_array().unwrap().iter().all(|r| r["address"].as_str().unwrap().starts_with("东丰县")), "{own}");
    let elsewhere = longshan.expect("the seed places some matters in 龙山区");
    let r = get(&client, &mut seen, &format!("{base}/requests/{elsewhere}.json"), Some(DONGFENG_TOKEN)).await;
    assert_eq!(r.status, 404, "another county's matter is not there for this token");
    let r =
        get(&client, &mut seen, &format!("{base}/requests.json?service_request_id={elsewhere}"), Some(DONGFENG_TOKEN))
            .await;
    assert_eq!(r.json(), serde_json::json!([]));

    // The OpenAPI document lists the routes.
    let doc: Value = client
        .get(format!("http://127.0.0.1:{endpoint}/api/openapi.json"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/open311/v2/requests.json"]["get"].is_object(), "{doc}");

    let status = hub.terminate();
    assert!(status.success(), "{status:?}");

    // [open311] public = true: no token needed; a token still narrows the region.
    let cfg = config(&dir, &db.url, &server.base_url(), source, endpoint, true);
    let mut hub = HubProcess::start_with_env(&cfg, &[("HUB_API_TOKENS", tokens.as_str())]);
    let services_url = format!("{base}/services.json");
    wait_for(Duration::from_secs(20), "the public hub answering", || {
        let (client, url) = (&client, &services_url);
        async move { client.get(url.as_str()).send().await.is_ok_and(|r| r.status().as_u16() == 200) }
    })
    .await;
    let r = get(&client, &mut seen, &july, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.json()).into_iter().collect::<BTreeSet<_>>(), tickets);
    let r = get(&client, &mut seen, &format!("{base}/requests.xml?{JULY}"), None).await;
    assert_eq!(xml_items(&r.body, "service_requests", "request").len(), tickets.len());
    let r = get(&client, &mut seen, &format!("{base}/requests/{done}.json"), None).await;
    assert_eq!(r.status, 200);
    let r = get(&client, &mut seen, &july, Some(DONGFENG_TOKEN)).await;
    assert_eq!(ids(&r.json()).into_iter().collect::<BTreeSet<_>>(), dongfeng);
    assert_eq!(get(&client, &mut seen, &july, Some("not-a-token-0123456789")).await.status, 401);
    // The admin API itself still wants a token.
    let stats = client.get(format!("http://127.0.0.1:{endpoint}/api/v1/stats")).send().await.unwrap();
    assert_eq!(stats.status().as_u16(), 401);

    // Nothing personal in any answer: no name, phone or house number.
    assert!(seen.0.len() >= 35, "{} answers", seen.0.len());
    for body in &seen.0 {
        for p in personal.iter().chain(["王女士".to_string(), "13904371234".to_string()].iter()) {
            assert!(!body.contains(p.as_str()), "{p} in an answer: {body}");
        }
        assert_no_personal_numbers_in(body);
    }

    let status = hub.terminate();
    assert!(status.success(), "{status:?}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
