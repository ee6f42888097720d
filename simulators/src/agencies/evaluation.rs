//! The evaluation set for cross-channel duplicate detection ("one real-world
//! matter, one ticket"): deterministic matters, each reported one to four
//! times through the four agencies, as the agencies' own payloads.
//!
//! Why it is built this way:
//!
//! - **Real payloads.** Every report is made by the channel's body builder
//!   ([`hotline::order_body`], [`petition::record_body`],
//!   [`terminal::report`], [`court::case_xml`]) and then given this matter's
//!   wording, place, time and people, so it goes through the shipped mapping
//!   files exactly as the agency's record would.
//! - **Each channel writes its own way.** The hotline operator summarises in
//!   the third person ("市民来电反映…", "来电人称…"), the petitioner writes in
//!   the first person ("我家住…", "本人…"), the grid worker is terse
//!   ("巡查发现…，需…"), the court records a claim ("申请人…请求…"). Each has
//!   several phrasings, and places are written differently per report
//!   ("义宁街12号门前", "龙山区南康街道义宁街12号", "义宁街康宁路口",
//!   "康宁社区5号楼"), times differ by hours (petitions and court cases by
//!   days), phone numbers come in the forms the CTI sends, and a caller may
//!   use a landline where the petition lists a mobile.
//! - **Hard negatives** (their reports carry a `note`): the same street with
//!   a different problem (even the same category: a streetlight next to a
//!   collapsed manhole); the same problem in another community or village of
//!   the same township, in the same days; the same masked name (王某某) for
//!   different people; one person reporting two different problems.
//! - **Ground truth.** Every report carries its matter's label; the set is
//!   written in arrival order. Two matters of one kind at one spot within
//!   weeks are not generated unless on purpose (in reality they would be
//!   one matter): where two matters share a place, it is a hard negative.
//!
//! `tests/data/dedup-evaluation.jsonl` is [`evaluation_jsonl`] of
//! [`EVALUATION_SEED`] and [`EVALUATION_MATTERS`]; the test
//! `agencies_evaluation_set_is_checked_in` fails when they drift apart, and
//! rewrites the file when run with `DEDUP_EVALUATION_WRITE=1`.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

use super::content::{
    Matter, Person, Rng, Subject, TOWNSHIPS, Township, cn_number, dial_in_form, id_number, landline, mobile,
};
use super::{court, hotline, petition, terminal};

/// The seed of the checked-in evaluation set.
pub const EVALUATION_SEED: u64 = 20_240_715;
/// Base matters of the checked-in set (hard negatives come on top).
pub const EVALUATION_MATTERS: usize = 300;

/// One report as an agency sends it, with its ground truth.
#[derive(Clone, Debug)]
pub struct EvalReport {
    /// The real-world matter: reports with the same label are one ticket.
    pub matter: String,
    /// `hotline`, `petition`, `terminal` or `court` (the mapping file's name).
    pub system: &'static str,
    /// AMQP routing key (hotline, petition).
    pub routing_key: Option<String>,
    /// MQTT topic (terminal).
    pub topic: Option<String>,
    /// `json` or `xml`.
    pub content_type: &'static str,
    pub payload: String,
    /// What makes the report hard, for a person reading the wrong decisions.
    pub note: Option<String>,
    /// When it arrives (the order of the set).
    pub at: NaiveDateTime,
}

impl EvalReport {
    /// The JSONL line: `{"matter", "system", "routingKey"|"topic", "contentType", "encoding", "payload", "note"}`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "matter": self.matter,
            "system": self.system,
            "contentType": self.content_type,
            "encoding": "utf-8",
            "payload": self.payload,
        });
        if let Some(k) = &self.routing_key {
            v["routingKey"] = json!(k);
        }
        if let Some(t) = &self.topic {
            v["topic"] = json!(t);
        }
        if let Some(n) = &self.note {
            v["note"] = json!(n);
        }
        v
    }
}

/// The whole set as JSON lines, in arrival order.
pub fn evaluation_jsonl(seed: u64, matters: usize) -> String {
    let mut out = String::new();
    for r in evaluation_set(seed, matters) {
        out.push_str(&r.to_json().to_string());
        out.push('\n');
    }
    out
}

// ------------------------------------------------------------------ topics

/// What a matter is about. Wider than [`Subject`] (streetlights, potholes,
/// garbage, water cuts) so that one street or one category holds several
/// different problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topic {
    Manhole,
    Streetlight,
    Pothole,
    Garbage,
    Water,
    Heating,
    Property,
    Noise,
    Leak,
    Clutter,
    Wages,
    Subsidy,
    Land,
    Lending,
}

const TOPICS: &[(Topic, u64)] = &[
    (Topic::Manhole, 8),
    (Topic::Streetlight, 6),
    (Topic::Pothole, 6),
    (Topic::Garbage, 6),
    (Topic::Water, 5),
    (Topic::Heating, 9),
    (Topic::Property, 7),
    (Topic::Noise, 8),
    (Topic::Leak, 9),
    (Topic::Clutter, 6),
    (Topic::Wages, 8),
    (Topic::Subsidy, 7),
    (Topic::Land, 7),
    (Topic::Lending, 8),
];

/// Where a matter lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setting {
    /// A point on a street (a house number or a crossing).
    Street,
    /// A building of a community.
    Building,
    /// A plot or household of a village.
    Village,
    /// A work site or a private affair: no fixed place.
    Work,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ch {
    Hotline,
    Petition,
    Terminal,
    Court,
}

impl Topic {
    fn subject(self) -> Subject {
        match self {
            Topic::Manhole | Topic::Streetlight | Topic::Pothole => Subject::Manhole,
            Topic::Garbage | Topic::Property | Topic::Water => Subject::Property,
            Topic::Heating => Subject::Heating,
            Topic::Noise => Subject::Noise,
            Topic::Leak => Subject::Leak,
            Topic::Clutter => Subject::Clutter,
            Topic::Wages => Subject::Wages,
            Topic::Subsidy => Subject::Subsidy,
            Topic::Land => Subject::Land,
            Topic::Lending => Subject::Lending,
        }
    }

    fn setting(self) -> Setting {
        match self {
            Topic::Manhole | Topic::Streetlight | Topic::Pothole => Setting::Street,
            Topic::Garbage | Topic::Water | Topic::Heating | Topic::Property | Topic::Noise | Topic::Leak => {
                Setting::Building
            }
            Topic::Clutter => Setting::Building,
            Topic::Subsidy | Topic::Land => Setting::Village,
            Topic::Wages | Topic::Lending => Setting::Work,
        }
    }

    /// The affected person reports it (and may do so in every channel);
    /// otherwise anyone passing by does.
    fn personal(self) -> bool {
        matches!(self, Topic::Leak | Topic::Wages | Topic::Subsidy | Topic::Land | Topic::Lending | Topic::Noise)
    }

    fn hotline_category(self) -> &'static str {
        match self {
            Topic::Streetlight => "市政设施-路灯",
            Topic::Pothole => "市政设施-道路",
            Topic::Garbage => "市容环卫-垃圾清运",
            Topic::Water => "住房-供水",
            Topic::Lending => "政法-民间借贷",
            t => t.subject().hotline_category(),
        }
    }

    fn appeal_type(self) -> &'static str {
        match self {
            Topic::Streetlight | Topic::Pothole | Topic::Water => "2",
            Topic::Garbage => "3",
            t => t.subject().appeal_type(),
        }
    }

    fn terminal_category(self) -> &'static str {
        match self {
            Topic::Streetlight | Topic::Pothole => "城市管理/市政设施",
            Topic::Garbage => "城市管理/环境卫生",
            Topic::Water => "住房物业/供水供气",
            t => t.subject().terminal_category(),
        }
    }

    fn nrfl(self) -> &'static str {
        match self {
            Topic::Garbage | Topic::Water | Topic::Streetlight | Topic::Pothole => "9901",
            t => t.subject().nrfl(),
        }
    }

    /// The first channel, and the others a matter may come through.
    fn channels(self) -> (&'static [Ch], &'static [Ch]) {
        use Ch::*;
        match self {
            Topic::Manhole => (&[Hotline, Terminal], &[Hotline, Terminal, Hotline, Petition]),
            Topic::Streetlight | Topic::Pothole | Topic::Garbage | Topic::Water => {
                (&[Hotline, Terminal], &[Hotline, Terminal, Hotline])
            }
            Topic::Heating => (&[Hotline], &[Hotline, Terminal, Petition, Hotline]),
            Topic::Property => (&[Hotline], &[Terminal, Petition, Court, Hotline]),
            Topic::Noise => (&[Terminal, Hotline], &[Hotline, Terminal, Petition, Court]),
            Topic::Leak => (&[Terminal, Hotline], &[Hotline, Court, Petition, Terminal]),
            Topic::Clutter => (&[Hotline], &[Terminal, Court, Hotline]),
            Topic::Wages => (&[Petition], &[Hotline, Terminal, Court]),
            Topic::Subsidy => (&[Petition], &[Hotline, Terminal]),
            Topic::Land => (&[Petition, Terminal], &[Terminal, Court, Hotline, Petition]),
            Topic::Lending => (&[Court], &[Terminal, Hotline, Petition]),
        }
    }

    fn court_possible(self) -> bool {
        self.subject().court_cause().is_some() && !matches!(self, Topic::Garbage | Topic::Water)
    }
}

// ------------------------------------------------------------------ places

const URBAN: &[&str] = &["康宁社区", "幸福社区", "向阳社区", "新兴社区", "和平社区", "东兴社区"];
const RURAL: &[&str] = &["永安村", "民主村", "胜利村", "丰收村", "红旗村", "太平村"];
const STREETS: &[&str] = &[
    "义宁街",
    "康宁路",
    "人民大街",
    "站前路",
    "福镇大路",
    "向阳街",
    "西宁大路",
    "北寿街",
    "东吉路",
    "龙山路",
    "仙城街",
    "南康路",
];
const SHOPS: &[&str] = &["烧烤店", "饭店", "KTV", "麻将馆", "超市", "健身房"];
const COMPANIES: &[&str] =
    &["宏达建筑公司", "鑫源装饰公司", "顺通物流公司", "利民建筑工程队", "恒泰房地产公司", "兴业劳务公司"];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马", "钱", "高", "韩"];

/// A community or village of a township, with its streets and its centre.
#[derive(Clone, Debug)]
struct Area {
    township: Township,
    name: &'static str,
    /// 12-digit code.
    code: String,
    streets: [&'static str; 2],
    lat: f64,
    lng: f64,
}

fn township_centre(t: &Township) -> (f64, f64) {
    let i = TOWNSHIPS.iter().position(|x| x.code == t.code).unwrap_or(0) as f64;
    match t.county {
        "220402" => (42.89 + 0.012 * i, 125.13 + 0.01 * i),
        "220403" => (42.92 + 0.01 * (i - 4.0), 125.10 - 0.012 * (i - 4.0)),
        "220421" => (42.68 + 0.03 * (i - 7.0), 125.53),
        _ => (42.93 + 0.03 * (i - 9.0), 124.99),
    }
}

fn area(t: &Township, rural: bool, k: usize) -> Area {
    let (lat0, lng0) = township_centre(t);
    let names = if rural { RURAL } else { URBAN };
    let k = k % names.len();
    let base = if rural { 201 } else { 1 };
    let h = super::content::mix(t.code.parse::<u64>().unwrap_or(0) ^ ((k as u64) << 8) ^ rural as u64);
    let s1 = STREETS[(h % STREETS.len() as u64) as usize];
    let s2 = STREETS[((h >> 8) % STREETS.len() as u64) as usize];
    let s2 = if s2 == s1 { STREETS[((h >> 8) as usize + 1) % STREETS.len()] } else { s2 };
    let angle = k as f64 * 1.1 + if rural { 0.5 } else { 0.0 };
    let r = if rural { 0.03 } else { 0.012 };
    Area {
        township: *t,
        name: names[k],
        code: format!("{}{:03}", t.code, base + k),
        streets: [s1, s2],
        lat: lat0 + r * angle.sin(),
        lng: lng0 + r * 1.3 * angle.cos(),
    }
}

/// Where exactly: the area, a street with a house number, a crossing, a building.
#[derive(Clone, Debug)]
struct Spot {
    area: Area,
    street: &'static str,
    cross: &'static str,
    house: u32,
    building: u32,
    unit: u32,
    group: u32,
    lat: f64,
    lng: f64,
}

fn spot(rng: &mut Rng, area: Area) -> Spot {
    let street = area.streets[rng.below(2) as usize];
    let mut cross = *rng.pick(STREETS);
    if cross == street {
        cross = if street == area.streets[0] { area.streets[1] } else { area.streets[0] };
    }
    let (lat, lng) = (area.lat + (rng.unit() - 0.5) * 0.008, area.lng + (rng.unit() - 0.5) * 0.01);
    Spot {
        street,
        cross,
        house: rng.range(1, 180) as u32,
        building: rng.range(1, 28) as u32,
        unit: rng.range(1, 6) as u32,
        group: rng.range(1, 9) as u32,
        lat,
        lng,
        area,
    }
}

impl Spot {
    fn county_name(&self) -> &'static str {
        self.area.township.county_name
    }
    fn town(&self) -> &'static str {
        self.area.township.name
    }
    fn community(&self) -> &'static str {
        self.area.name
    }
}

// ----------------------------------------------------------------- matters

/// One matter of the set.
#[derive(Clone, Debug)]
struct EvalMatter {
    label: String,
    topic: Topic,
    spot: Spot,
    /// Whether the street topic is at a crossing rather than a house number.
    at_crossing: bool,
    reporter: Person,
    other: Person,
    t0: NaiveDateTime,
    amount: u32,
    people: u32,
    shop: &'static str,
    company: &'static str,
    temp: u32,
    ridges: u32,
    mu: u32,
    note: Option<String>,
    /// Channels it comes through, in the order they were chosen.
    channels: Vec<Ch>,
    /// A second matter of the same person uses the same numbers.
    caller_uses_landline: bool,
}

fn make_person(rng: &mut Rng, county: &str, surname: Option<&'static str>, long_name: Option<bool>) -> Person {
    let surname = surname.unwrap_or_else(|| *rng.pick(SURNAMES));
    let female = rng.chance(0.5);
    let long = long_name.unwrap_or_else(|| rng.chance(0.5));
    let name = if long { format!("{surname}某某") } else { format!("{surname}某") };
    let birth =
        NaiveDate::from_ymd_opt(1950 + rng.below(52) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
            .unwrap_or_default();
    let id_no = id_number(rng, county, birth);
    let mobile = mobile(rng);
    let landline = rng.chance(0.3).then(|| landline(rng));
    Person { surname, female, name, id_no, mobile, landline, address: String::new() }
}

fn pick_str(rng: &mut Rng, items: &[&'static str]) -> &'static str {
    items[rng.below(items.len() as u64) as usize]
}

fn pick_topic(rng: &mut Rng) -> Topic {
    let total: u64 = TOPICS.iter().map(|t| t.1).sum();
    let mut x = rng.below(total);
    for (t, w) in TOPICS {
        if x < *w {
            return *t;
        }
        x -= w;
    }
    Topic::Manhole
}

fn start_time(rng: &mut Rng) -> NaiveDateTime {
    let day = NaiveDate::from_ymd_opt(2024, 10, 1).unwrap_or_default() + Duration::days(rng.below(90) as i64);
    day.and_hms_opt(rng.range(7, 20) as u32, rng.below(60) as u32, rng.below(60) as u32).unwrap_or_default()
}

fn new_matter(rng: &mut Rng, label: String, topic: Topic, township: Township, k: Option<usize>) -> EvalMatter {
    let rural = topic.setting() == Setting::Village || (topic.setting() == Setting::Work && rng.chance(0.3));
    let k = k.unwrap_or_else(|| rng.below(6) as usize);
    let spot = spot(rng, area(&township, rural, k));
    let reporter = make_person(rng, township.county, None, None);
    let other = make_person(rng, township.county, None, None);
    let amount = match topic {
        Topic::Wages => 1000 * rng.range(3, 150) as u32,
        Topic::Lending => 1000 * rng.range(5, 200) as u32,
        Topic::Leak => 1000 * rng.range(2, 30) as u32,
        _ => 0,
    };
    let people = if topic == Topic::Wages && rng.chance(0.35) { rng.range(3, 12) as u32 } else { 1 };
    EvalMatter {
        label,
        topic,
        at_crossing: topic.setting() == Setting::Street && rng.chance(0.35),
        spot,
        reporter,
        other,
        t0: start_time(rng),
        amount,
        people,
        shop: pick_str(rng, SHOPS),
        company: pick_str(rng, COMPANIES),
        temp: rng.range(11, 15) as u32,
        ridges: rng.range(2, 6) as u32,
        mu: rng.range(5, 40) as u32,
        note: None,
        channels: Vec::new(),
        caller_uses_landline: rng.chance(0.3),
    }
}

fn choose_channels(rng: &mut Rng, topic: Topic, n: usize) -> Vec<Ch> {
    let (first, rest) = topic.channels();
    let mut out = vec![*rng.pick(first)];
    let mut tries = 0;
    while out.len() < n && tries < 40 {
        tries += 1;
        let c = *rng.pick(rest);
        let count = out.iter().filter(|x| **x == c).count();
        let allowed = match c {
            // One case and one petition per matter; one grid event per matter.
            Ch::Court => count == 0 && topic.court_possible(),
            Ch::Petition | Ch::Terminal => count == 0,
            // A personal matter is called in by its own person, once or twice.
            Ch::Hotline => count < if topic.personal() { 1 } else { 3 },
        };
        if allowed {
            out.push(c);
        }
    }
    out
}

fn report_count(rng: &mut Rng) -> usize {
    match rng.below(20) {
        0..=6 => 1,
        7..=13 => 2,
        14..=17 => 3,
        _ => 4,
    }
}

/// Every report of the set, in arrival order.
pub fn evaluation_set(seed: u64, base_matters: usize) -> Vec<EvalReport> {
    let mut rng = Rng::new(seed);
    let mut matters: Vec<EvalMatter> = Vec::new();
    for i in 0..base_matters {
        let topic = pick_topic(&mut rng);
        let rural_only = topic.setting() == Setting::Village;
        let towns: Vec<Township> =
            TOWNSHIPS.iter().filter(|t| !rural_only || t.name.ends_with('镇')).copied().collect();
        let township = *rng.pick(&towns);
        let mut m = new_matter(&mut rng, format!("M{i:04}"), topic, township, None);
        // Two independent matters of one kind at one spot within weeks would
        // be one matter in reality: the set's ground truth says otherwise only
        // where it means to (the hard negatives below).
        let mut tries = 0;
        while tries < 20 && matters.iter().any(|o| same_spot_same_kind(o, &m)) {
            m = new_matter(&mut rng, format!("M{i:04}"), topic, township, None);
            tries += 1;
        }
        let n = report_count(&mut rng);
        m.channels = choose_channels(&mut rng, topic, n);
        matters.push(m);
    }
    // Hard negatives, each next to an anchor among the base matters.
    let mut negatives = Vec::new();
    let mut next = base_matters;
    for (k, anchor) in matters.iter().enumerate() {
        let roll = super::content::mix(seed ^ (k as u64).wrapping_mul(0x9E37)) % 12;
        let label = format!("M{next:04}");
        let made = match roll {
            0 | 1 => same_street_other_problem(&mut rng, anchor, label),
            2 | 3 => same_problem_other_place(&mut rng, anchor, label),
            4 => same_name_other_person(&mut rng, anchor, label),
            5 => same_person_other_problem(&mut rng, anchor, label),
            _ => None,
        };
        // A hard negative is different from its anchor on purpose; it must
        // not by accident be the same kind of thing at the same spot as
        // another matter (that would be one matter in reality).
        let clashes = |m: &EvalMatter| matters.iter().chain(&negatives).any(|o| same_spot_same_kind(o, m));
        if let Some(m) = made.filter(|m| !clashes(m)) {
            negatives.push(m);
            next += 1;
        }
    }
    matters.extend(negatives);
    let mut reports = Vec::new();
    let mut serial = 0u64;
    for m in &matters {
        reports.extend(write_reports(&mut rng, m, &mut serial));
    }
    reports.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.matter.cmp(&b.matter)));
    reports
}

fn same_spot_same_kind(a: &EvalMatter, b: &EvalMatter) -> bool {
    let near_in_time = (a.t0 - b.t0).num_days().abs() <= 45;
    let same_spot = a.spot.area.code == b.spot.area.code
        && match a.topic.setting() {
            Setting::Street => a.spot.street == b.spot.street,
            Setting::Building => a.spot.building == b.spot.building,
            Setting::Village => a.spot.group == b.spot.group,
            Setting::Work => a.company == b.company,
        };
    a.topic == b.topic && near_in_time && same_spot
}

fn same_street_other_problem(rng: &mut Rng, anchor: &EvalMatter, label: String) -> Option<EvalMatter> {
    if anchor.topic.setting() != Setting::Street {
        return None;
    }
    let others: Vec<Topic> = [Topic::Manhole, Topic::Streetlight, Topic::Pothole, Topic::Garbage, Topic::Noise]
        .into_iter()
        .filter(|t| *t != anchor.topic)
        .collect();
    let topic = *rng.pick(&others);
    let mut m = new_matter(rng, label, topic, anchor.spot.area.township, None);
    m.spot.area = anchor.spot.area.clone();
    m.spot.street = anchor.spot.street;
    m.at_crossing = false;
    // Further along the same street, or at the very same door.
    let (spread, same_door) = if rng.chance(0.4) { (0.0006, true) } else { (0.006, false) };
    if same_door {
        m.spot.house = anchor.spot.house;
    }
    m.spot.lat = anchor.spot.lat + (rng.unit() - 0.5) * spread;
    m.spot.lng = anchor.spot.lng + (rng.unit() - 0.5) * spread;
    m.t0 = anchor.t0 + Duration::minutes(rng.range(0, 60 * 60) as i64 - 12 * 60);
    let extra = 1 + rng.below(2) as usize;
    m.channels = choose_channels(rng, topic, extra);
    m.note =
        Some(format!("hard negative: same street as {} ({}), different problem", anchor.label, anchor.spot.street));
    Some(m)
}

fn same_problem_other_place(rng: &mut Rng, anchor: &EvalMatter, label: String) -> Option<EvalMatter> {
    let rural = anchor.spot.area.code[9..].starts_with('2');
    let names = if rural { RURAL } else { URBAN };
    let here = names.iter().position(|n| *n == anchor.spot.area.name).unwrap_or(0);
    let k = (here + 1 + rng.below(names.len() as u64 - 1) as usize) % names.len();
    let mut m = new_matter(rng, label, anchor.topic, anchor.spot.area.township, Some(k));
    if m.spot.area.code[9..].starts_with('2') != rural {
        m.spot = spot(rng, area(&anchor.spot.area.township, rural, k));
    }
    m.at_crossing = anchor.at_crossing;
    m.t0 = anchor.t0 + Duration::minutes(rng.range(0, 72 * 60) as i64 - 24 * 60);
    let extra = 1 + rng.below(2) as usize;
    m.channels = choose_channels(rng, m.topic, extra);
    if rng.chance(0.5) {
        m.channels[0] = anchor.channels[0];
        m.channels.dedup();
    }
    m.note = Some(format!(
        "hard negative: same problem as {} in another {} ({} / {})",
        anchor.label,
        if rural { "village" } else { "community" },
        anchor.spot.area.name,
        m.spot.area.name
    ));
    Some(m)
}

fn same_name_other_person(rng: &mut Rng, anchor: &EvalMatter, label: String) -> Option<EvalMatter> {
    if !anchor.topic.personal() {
        return None;
    }
    let topic = if rng.chance(0.6) { anchor.topic } else { *rng.pick(&[Topic::Leak, Topic::Lending, Topic::Wages]) };
    let mut m = new_matter(rng, label, topic, anchor.spot.area.township, None);
    let long = anchor.reporter.name.chars().count() == 3;
    m.reporter = make_person(rng, anchor.spot.area.township.county, Some(anchor.reporter.surname), Some(long));
    m.reporter.female = anchor.reporter.female;
    if rng.chance(0.5) {
        m.spot.area = anchor.spot.area.clone();
    }
    m.t0 = anchor.t0 + Duration::minutes(rng.range(0, 96 * 60) as i64 - 24 * 60);
    let extra = 1 + rng.below(2) as usize;
    m.channels = choose_channels(rng, topic, extra);
    if rng.chance(0.5) {
        m.channels[0] = anchor.channels[0];
        m.channels.dedup();
    }
    m.note = Some(format!("hard negative: same name as the reporter of {}, another person", anchor.label));
    Some(m)
}

fn same_person_other_problem(rng: &mut Rng, anchor: &EvalMatter, label: String) -> Option<EvalMatter> {
    let choices: &[Topic] = match anchor.topic.setting() {
        Setting::Building => {
            &[Topic::Heating, Topic::Property, Topic::Clutter, Topic::Water, Topic::Noise, Topic::Leak]
        }
        Setting::Village => &[Topic::Subsidy, Topic::Land, Topic::Wages],
        Setting::Work => &[Topic::Wages, Topic::Lending, Topic::Leak],
        Setting::Street => &[Topic::Streetlight, Topic::Pothole, Topic::Garbage, Topic::Heating],
    };
    let options: Vec<Topic> = choices.iter().copied().filter(|t| *t != anchor.topic).collect();
    let topic = *rng.pick(&options);
    let mut m = new_matter(rng, label, topic, anchor.spot.area.township, None);
    m.reporter = anchor.reporter.clone();
    m.caller_uses_landline = anchor.caller_uses_landline;
    if topic.setting() == anchor.topic.setting() || rng.chance(0.5) {
        m.spot = anchor.spot.clone();
        m.at_crossing = false;
    }
    m.t0 = anchor.t0 + Duration::minutes(rng.range(2 * 60, 5 * 24 * 60) as i64);
    // The person speaks for themselves: the hotline or a petition.
    let ch = if anchor.channels.contains(&Ch::Petition) && rng.chance(0.5) { Ch::Petition } else { Ch::Hotline };
    m.channels = vec![ch];
    if rng.chance(0.3) && topic.court_possible() && topic.personal() {
        m.channels.push(Ch::Court);
    }
    m.note = Some(format!("hard negative: the reporter of {} with a different problem", anchor.label));
    Some(m)
}

// ---------------------------------------------------------------- wording

fn amount_cn(yuan: u32) -> String {
    let wan = yuan / 10_000;
    let qian = (yuan % 10_000) / 1000;
    match (wan, qian) {
        (0, q) => format!("{}千元", cn_number(q)),
        (w, 0) => format!("{}万元", cn_number(w)),
        (w, q) => format!("{}万{}千元", cn_number(w), cn_number(q)),
    }
}

/// An amount as people write it: 五万元, 5万元, 50000元, 5万余元.
fn amount_any(rng: &mut Rng, yuan: u32) -> String {
    match rng.below(3) {
        0 => amount_cn(yuan),
        1 if yuan.is_multiple_of(10_000) => format!("{}万元", yuan / 10_000),
        _ => format!("{yuan}元"),
    }
}

impl EvalMatter {
    /// The place as a hotline operator types it (address field, and in the text).
    fn hotline_place(&self, rng: &mut Rng) -> String {
        let s = &self.spot;
        match self.topic.setting() {
            Setting::Street if self.at_crossing => match rng.below(3) {
                0 => format!("{}{}与{}交汇处", s.county_name(), s.street, s.cross),
                1 => format!("{}{}路口", s.street, s.cross),
                _ => format!("{}{}{}与{}交叉口", s.county_name(), s.town(), s.street, s.cross),
            },
            Setting::Street => match rng.below(4) {
                0 => format!("{}{}号门前", s.street, s.house),
                1 => format!("{}{}{}{}号", s.county_name(), s.town(), s.street, s.house),
                2 => format!("{}{}{}号附近", s.county_name(), s.street, s.house),
                _ => format!("{}{}号", s.street, s.house),
            },
            Setting::Building => match rng.below(4) {
                0 => format!("{}{}{}{}号楼", s.county_name(), s.town(), s.community(), s.building),
                1 => format!("{}{}号楼", s.community(), s.building),
                2 => format!("{}{}号楼{}单元", s.community(), s.building, s.unit),
                _ => format!("{}{}{}号楼", s.town(), s.community(), s.building),
            },
            Setting::Village => match rng.below(3) {
                0 => format!("{}{}{}{}组", s.county_name(), s.town(), s.community(), s.group),
                1 => format!("{}{}组", s.community(), s.group),
                _ => format!("{}{}", s.town(), s.community()),
            },
            Setting::Work => match rng.below(2) {
                0 => format!("{}{}", s.town(), s.street),
                _ => format!("{}{}{}", s.county_name(), s.town(), s.community()),
            },
        }
    }

    /// The place as a grid worker types it in the terminal's address field.
    fn terminal_place(&self, rng: &mut Rng) -> String {
        let s = &self.spot;
        match self.topic.setting() {
            Setting::Street if self.at_crossing => match rng.below(2) {
                0 => format!("{}{}{}{}路口", s.county_name(), s.town(), s.street, s.cross),
                _ => format!("{}与{}交汇处", s.street, s.cross),
            },
            Setting::Street => match rng.below(3) {
                0 => format!("{}{}{}{}号楼下", s.county_name(), s.town(), s.street, s.house),
                1 => format!("{}{}号", s.street, s.house),
                _ => format!("{}{}{}号路段", s.town(), s.street, s.house),
            },
            Setting::Building => match rng.below(3) {
                0 => format!("{}{}{}{}号楼", s.county_name(), s.town(), s.community(), s.building),
                1 => format!("{}{}号楼", s.community(), s.building),
                _ => format!("{}{}{}号楼{}单元", s.town(), s.community(), s.building, s.unit),
            },
            Setting::Village => format!("{}{}{}组", s.town(), s.community(), s.group),
            Setting::Work => format!("{}{}", s.town(), s.community()),
        }
    }

    /// A short place inside a text.
    fn text_place(&self, rng: &mut Rng) -> String {
        let s = &self.spot;
        match self.topic.setting() {
            Setting::Street if self.at_crossing => format!("{}与{}交汇处", s.street, s.cross),
            Setting::Street => {
                if rng.chance(0.5) {
                    format!("{}{}号", s.street, s.house)
                } else {
                    format!("{}{}号门前", s.street, s.house)
                }
            }
            Setting::Building => match rng.below(3) {
                0 => format!("{}{}号楼", s.community(), s.building),
                1 => format!("{}{}{}号楼", s.town(), s.community(), s.building),
                _ => format!("{}{}号楼{}单元", s.community(), s.building, s.unit),
            },
            Setting::Village => {
                if rng.chance(0.5) {
                    format!("{}{}组", s.community(), s.group)
                } else {
                    format!("{}{}{}组", s.town(), s.community(), s.group)
                }
            }
            Setting::Work => s.community().to_string(),
        }
    }

    fn company(&self, rng: &mut Rng) -> String {
        if rng.chance(0.5) { self.company.to_string() } else { "某建筑公司".to_string() }
    }

    /// The hotline operator's summary, third person.
    fn hotline_text(&self, rng: &mut Rng, caller_is_reporter: bool) -> String {
        let p = self.text_place(rng);
        let s = &self.spot;
        let lead = *rng.pick(&["市民来电反映", "来电人反映", "来电人称", "市民来电称"]);
        let other = &self.other.name;
        match self.topic {
            Topic::Manhole => match rng.below(3) {
                0 => format!("{lead}{p}下水井井盖塌陷，路面出现深坑，已有车辆陷入，请尽快派人处理并设置警示。"),
                1 => format!("{lead}{p}的窨井盖塌了，晚上路过的行人差点掉进去，希望有关部门尽快修复。"),
                _ => format!("{lead}{p}有一处下水井塌陷，雨后积水看不清，存在安全隐患，要求尽快维修。"),
            },
            Topic::Streetlight => match rng.below(2) {
                0 => format!("{lead}{p}一带路灯不亮已有一周，晚上出行很不方便，请求尽快维修。"),
                _ => format!("{lead}{}{}号往{}方向的路灯连续多个晚上不亮，担心发生危险。", s.street, s.house, s.cross),
            },
            Topic::Pothole => match rng.below(2) {
                0 => format!("{lead}{p}路面坑洼严重，车辆经过颠簸，下雨积水，请求修补。"),
                _ => format!("{lead}{p}马路上有个大坑，已经有电动车摔倒，希望尽快填平。"),
            },
            Topic::Garbage => match rng.below(2) {
                0 => format!("{lead}{p}附近垃圾堆积多日无人清运，气味难闻，请求尽快清理。"),
                _ => format!("{lead}{}的垃圾箱满了好几天没人收，苍蝇很多，要求环卫处理。", s.community()),
            },
            Topic::Water => match rng.below(2) {
                0 => format!("{lead}{p}从昨天起停水，没有接到任何通知，生活不便，请求尽快恢复供水。"),
                _ => {
                    format!("{lead}{}{}号楼一直没水，偶尔来水水压也很低，要求供水公司处理。", s.community(), s.building)
                }
            },
            Topic::Heating => match rng.below(3) {
                0 => format!("{lead}{p}入冬以来室内温度不足十五度，家中有老人，联系供热公司未解决，请求协调。"),
                1 => format!("{lead}{p}暖气不热，屋里只有{}度，多次找供热公司没人来，要求尽快处理。", self.temp),
                _ => format!("{lead}所住{}{}号楼整栋楼暖气温度低，请求供热公司入户检查。", s.community(), s.building),
            },
            Topic::Property => match rng.below(2) {
                0 => format!("{lead}{p}物业服务差，楼道灯坏了一个多月无人维修，垃圾清运不及时，要求物业整改。"),
                _ => format!("{lead}{}物业公司收费不干活，楼道灯坏了没人修，要求有关部门监管。", s.community()),
            },
            Topic::Noise => match rng.below(2) {
                0 => format!("{lead}{p}楼下{}夜间经营噪声扰民，持续到夜里十一点以后，影响休息。", self.shop),
                _ => format!("{lead}家楼下的{}每天半夜还很吵，排风机声音大，多次沟通无效，要求处理。", self.shop),
            },
            Topic::Leak => match rng.below(2) {
                0 => format!("{lead}{p}楼上住户卫生间漏水，致其家中天棚受损，协商未果，请求协调处理。"),
                _ => format!("{lead}楼上邻居家漏水把自家棚顶泡坏了，找对方多次不给修，希望社区出面调解。"),
            },
            Topic::Clutter => match rng.below(2) {
                0 => format!("{lead}{p}楼道内长期堆放杂物，堵塞消防通道，物业不予清理。"),
                _ => format!(
                    "{lead}{}{}号楼{}单元楼道被邻居堆满杂物，担心着火，要求清理。",
                    s.community(),
                    s.building,
                    s.unit
                ),
            },
            Topic::Wages => {
                let c = self.company(rng);
                let a = amount_any(rng, self.amount);
                match rng.below(2) {
                    0 => format!("{lead}在{c}{}工地务工，被拖欠工资{a}，多次讨要无果，请求帮助追讨。", s.street),
                    _ => format!("{lead}{c}拖欠其工资{a}，老板一直推脱，要求劳动监察部门处理。"),
                }
            }
            Topic::Subsidy => match rng.below(2) {
                0 => format!("{lead}{p}二〇二三年度耕地地力保护补贴至今未发放到卡，请求核实补发。"),
                _ => format!("{lead}其家种了{}亩地，今年的地力补贴一直没到账，村里说不清楚，要求查一下。", self.mu),
            },
            Topic::Land => match rng.below(2) {
                0 => format!("{lead}{p}与邻户承包地边界不清发生争执，请求村委会协调确认地界。"),
                _ => format!(
                    "{lead}邻居{other}把自家承包地多种了{}垄，双方吵了起来，希望村里处理。",
                    cn_number(self.ridges)
                ),
            },
            Topic::Lending => {
                let a = amount_any(rng, self.amount);
                if caller_is_reporter && rng.chance(0.5) {
                    format!("来电人咨询借给他人{a}到期不还，如何申请诉前调解，需要准备哪些材料。")
                } else {
                    format!("{lead}去年借给{other}{a}，到期对方一直不还，请求帮助协调。")
                }
            }
        }
    }

    /// The petitioner's own words, first person.
    fn petition_text(&self, rng: &mut Rng) -> String {
        let p = self.text_place(rng);
        let s = &self.spot;
        let other = &self.other.name;
        match self.topic {
            Topic::Manhole | Topic::Streetlight | Topic::Pothole => match self.topic {
                Topic::Manhole => {
                    format!("我家门口{p}的下水井盖塌了好几天了，晚上看不见，已经有人崴脚，请政府管一管。")
                }
                Topic::Streetlight => {
                    format!("我家附近{p}的路灯坏了很久，晚上黑灯瞎火，老人孩子出门不安全，请求修好。")
                }
                _ => format!("我每天经过{p}，路上的大坑一直没人补，下雨全是水，请求尽快修路。"),
            },
            Topic::Garbage => {
                format!("我们{}的垃圾已经一个星期没人拉了，臭气熏天，请求督促环卫部门清运。", s.community())
            }
            Topic::Water => format!("我家住{p}，这几天一直停水，也没人通知什么时候来水，请求有关部门解决。"),
            Topic::Heating => match rng.below(2) {
                0 => format!(
                    "我家住{p}，今年冬天暖气一直不热，屋里只有{}度，老人冻得生病，多次找供热公司未解决。",
                    self.temp
                ),
                _ => format!(
                    "本人居住的{}{}号楼供热不达标，室温长期在{}度左右，请求有关部门督促供热企业整改。",
                    s.community(),
                    s.building,
                    self.temp
                ),
            },
            Topic::Property => {
                format!("我住在{p}，物业收了物业费却不干活，楼道灯不亮、垃圾没人清，找了多次没人管，请求依法处理。")
            }
            Topic::Noise => {
                format!("我家住{p}，楼下{}排风机和夜间噪声太大，我们一家人长期睡不好觉，请求督促整改。", self.shop)
            }
            Topic::Leak => match rng.below(2) {
                0 => format!("我家住{p}，楼上卫生间漏水把我家天棚泡坏了，找他们多次不给修，请求帮助解决。"),
                _ => format!("本人住{p}，楼上{other}家漏水半年多，我家屋顶发霉掉皮，对方拒不维修，请求处理。"),
            },
            Topic::Clutter => format!("我们{p}楼道里堆满了杂物，堵住了消防通道，物业不管，出了事谁负责。"),
            Topic::Wages => {
                let c = self.company(rng);
                let a = amount_any(rng, self.amount);
                if self.people >= 3 {
                    format!("{c}拖欠我们{}名农民工工资共计{a}，多次讨要无果，请求帮助追讨。", cn_number(self.people))
                } else {
                    format!("本人在{c}干活，工程完工后老板拖欠我工资{a}至今不给，请求帮助追讨。")
                }
            }
            Topic::Subsidy => match rng.below(2) {
                0 => "本人家中承包地二〇二三年度耕地地力保护补贴至今未发放到卡，村里说是名单报错了，请求核实并补发。"
                    .to_string(),
                _ => format!(
                    "我是{}{}组村民，家里{}亩承包地的地力补贴今年没有发下来，请求有关部门核实。",
                    s.community(),
                    s.group,
                    self.mu
                ),
            },
            Topic::Land => {
                format!("本人在{p}的承包地被邻户多种了{}垄，村里调解没有结果，请求确认地界。", cn_number(self.ridges))
            }
            Topic::Lending => {
                let a = amount_any(rng, self.amount);
                format!("本人借给{other}{a}，约定一年归还，到期后对方一直拖着不还，请求帮助追回。")
            }
        }
    }

    /// A grid worker's shorthand.
    fn terminal_text(&self, rng: &mut Rng) -> String {
        let s = &self.spot;
        let c = s.community();
        let who = &self.reporter.name;
        let other = &self.other.name;
        let p = self.text_place(rng);
        match self.topic {
            Topic::Manhole => match rng.below(3) {
                0 => format!("巡查发现{p}下水井塌陷，有车辆陷落，需市政部门尽快修复并设置路锥。"),
                1 => format!("{p}井盖塌陷，已设警示，需市政修复。"),
                _ => format!("{}下水井坍塌，路面塌坑，已拉警戒线，请市政处理。", s.street),
            },
            Topic::Streetlight => match rng.below(2) {
                0 => format!("巡查发现{}{}号附近路灯不亮，共{}盏，需市政维修。", s.street, s.house, rng.range(2, 6)),
                _ => format!("{p}路灯损坏不亮，已上报。"),
            },
            Topic::Pothole => match rng.below(2) {
                0 => format!("巡查发现{p}路面破损塌坑，约{}平方米，需市政修补。", rng.range(2, 9)),
                _ => format!("{}路面坑槽，影响通行，需修补。", s.street),
            },
            Topic::Garbage => match rng.below(2) {
                0 => format!("巡查发现{c}垃圾清运不及时，{}附近堆积，需环卫清运。", s.street),
                _ => format!("{p}生活垃圾堆积，已联系环卫。"),
            },
            Topic::Water => match rng.below(2) {
                0 => format!("{c}{}号楼居民反映停水，需供水公司核查。", s.building),
                _ => format!("走访了解到{p}停水{}天，居民意见大，已报供水公司。", rng.range(1, 3)),
            },
            Topic::Heating => match rng.below(2) {
                0 => format!("{c}{}号楼多户反映暖气不热，入户测温{}度，需供热公司处理。", s.building, self.temp),
                _ => format!("{p}供热温度低，已报热力公司。"),
            },
            Topic::Property => format!("{c}居民反映物业不作为，楼道灯坏、垃圾未清，已与物业沟通。"),
            Topic::Noise => match rng.below(2) {
                0 => format!("{c}{who}反映楼下{}夜间噪声扰民，已现场劝导，需执法部门处理。", self.shop),
                _ => format!("{p}{}噪声扰民，居民与店主发生口角，已劝解。", self.shop),
            },
            Topic::Leak => match rng.below(2) {
                0 => format!("{c}{}号楼{who}反映楼上{other}家卫生间漏水，天棚受损，双方争吵，需调解。", s.building),
                _ => format!("{c}{who}与楼上{other}因漏水发生纠纷，已入户查看，建议调解。"),
            },
            Topic::Clutter => match rng.below(2) {
                0 => format!("巡查发现{c}{}号楼楼道堆放杂物，堵塞消防通道，存在火灾隐患。", s.building),
                _ => format!("{p}楼道杂物堆放，已督促清理。"),
            },
            Topic::Wages => match rng.below(2) {
                0 => format!(
                    "辖区{}工地{}名工人反映被欠薪约{}元，情绪激动，需劳动监察介入。",
                    s.street,
                    self.people.max(1),
                    self.amount
                ),
                _ => format!("{who}等人反映{}拖欠工资，已联系劳动监察。", self.company),
            },
            Topic::Subsidy => match rng.below(2) {
                0 => format!("{c}{who}反映地力补贴未到卡，已报镇农业站核实。"),
                _ => format!("{c}{}组{who}家补贴未发放，需农业站核查名单。", s.group),
            },
            Topic::Land => format!("{c}{who}与{other}因承包地地界发生争执，现场劝解，需镇司法所调解。"),
            Topic::Lending => format!("{c}{who}与{other}因借款{}元发生纠纷，建议申请诉前调解。", self.amount),
        }
    }

    /// The applicant's claim as the court records it.
    fn court_claim(&self, rng: &mut Rng) -> String {
        let who = &self.reporter.name;
        let other = &self.other.name;
        let s = &self.spot;
        match self.topic {
            Topic::Leak => match rng.below(2) {
                0 => "楼上住户卫生间漏水致楼下天棚受损，请求维修并赔偿".to_string(),
                _ => format!(
                    "申请人{who}称被申请人{other}家卫生间长期漏水，致其房屋天棚受损，请求被申请人维修并赔偿损失{}",
                    amount_any(rng, self.amount)
                ),
            },
            Topic::Noise => format!("申请人{who}称被申请人经营的{}夜间噪声超标，请求停止侵害并赔偿损失", self.shop),
            Topic::Clutter => "邻居在公共楼道堆放杂物，影响通行和消防安全，请求排除妨碍".to_string(),
            Topic::Land => match rng.below(2) {
                0 => "承包地边界争议，请求确认地界".to_string(),
                _ => format!(
                    "申请人{who}称被申请人{other}侵占其承包地{}垄，请求确认地界并返还土地",
                    cn_number(self.ridges)
                ),
            },
            Topic::Wages => match rng.below(2) {
                0 => format!("请求支付拖欠的劳务报酬人民币{}", amount_any(rng, self.amount)),
                _ => format!(
                    "申请人{who}称在被申请人承包的{}工地干活，被拖欠劳务费{}，请求支付",
                    s.street,
                    amount_any(rng, self.amount)
                ),
            },
            Topic::Lending => match rng.below(2) {
                0 => format!("请求偿还借款人民币{}及利息", amount_any(rng, self.amount)),
                _ => format!(
                    "申请人{who}称借给被申请人{other}人民币{}，到期未还，请求偿还借款及利息",
                    amount_any(rng, self.amount)
                ),
            },
            Topic::Property => format!(
                "申请人{who}称其居住的{}{}号楼物业公司长期不履行维修义务，请求履行维修义务并退还部分物业费",
                s.community(),
                s.building
            ),
            _ => "请求调解".to_string(),
        }
    }
}

// ---------------------------------------------------------------- payloads

/// The content module's matter, made to carry this report's facts, so that
/// the channel's own body builder writes the body.
fn base_matter(m: &EvalMatter, serial: u64, occurred: NaiveDateTime) -> Matter {
    let mut b = Matter::new(EVALUATION_SEED, serial);
    b.index = serial;
    b.subject = m.topic.subject();
    b.township = m.spot.area.township;
    b.village = m.spot.area.code.clone();
    b.street = m.spot.street;
    let home = format!("{}{}{}{}号楼", m.spot.county_name(), m.spot.town(), m.spot.community(), m.spot.building);
    b.reporter = Person { address: home.clone(), ..m.reporter.clone() };
    b.other = Person { address: home, ..m.other.clone() };
    b.occurred = occurred;
    b.amount = m.amount;
    b.people = m.people;
    b.urgent = m.topic == Topic::Manhole;
    b
}

fn minutes(rng: &mut Rng, lo: i64, hi: i64) -> Duration {
    Duration::minutes(lo + rng.below((hi - lo).max(1) as u64) as i64)
}

fn write_reports(rng: &mut Rng, m: &EvalMatter, serial: &mut u64) -> Vec<EvalReport> {
    let mut out = Vec::new();
    let mut hotline_calls = 0;
    for (i, ch) in m.channels.iter().enumerate() {
        *serial += 1;
        // The first report opens the matter; the others follow within the
        // windows the channels really have (hours for calls and grid
        // reports, days to weeks for petitions and court cases).
        let at = match (i, ch) {
            (0, _) => m.t0,
            (_, Ch::Hotline) => m.t0 + minutes(rng, 20, 40 * 60),
            (_, Ch::Terminal) => m.t0 + minutes(rng, -3 * 60, 30 * 60),
            (_, Ch::Petition) => m.t0 + minutes(rng, 36 * 60, 20 * 24 * 60),
            (_, Ch::Court) => m.t0 + minutes(rng, 36 * 60, 20 * 24 * 60),
        };
        let r = match ch {
            Ch::Hotline => {
                hotline_calls += 1;
                hotline_report(rng, m, *serial, at, hotline_calls)
            }
            Ch::Petition => petition_report(rng, m, *serial, at),
            Ch::Terminal => terminal_report(rng, m, *serial, at),
            Ch::Court => court_report(rng, m, *serial, at),
        };
        out.push(r);
    }
    out
}

fn hotline_report(rng: &mut Rng, m: &EvalMatter, serial: u64, at: NaiveDateTime, call: usize) -> EvalReport {
    // A personal matter is called in by its person; a public one by whoever
    // passes by, a different resident for each call.
    let caller_is_reporter = m.topic.personal() || (call == 1 && rng.chance(0.5)) || m.note_is_same_person();
    let caller =
        if caller_is_reporter { m.reporter.clone() } else { make_person(rng, m.spot.area.township.county, None, None) };
    let base = base_matter(m, serial, at - Duration::minutes(10));
    let mut body = hotline::order_body(&base, 1, false);
    let number = match (&caller.landline, m.caller_uses_landline) {
        (Some(l), true) => l.clone(),
        _ => caller.mobile.clone(),
    };
    if let Some(o) = body.as_object_mut() {
        o.remove("anonymous");
        o.remove("callerNumber");
        o.remove("callerName");
        if !caller_is_reporter && rng.chance(0.1) {
            o.insert("anonymous".into(), json!(true));
        } else {
            o.insert("callerNumber".into(), json!(dial_in_form(rng, &number)));
            if rng.chance(0.7) {
                o.insert("callerName".into(), json!(caller.salutation()));
            }
        }
        o.insert("content".into(), json!(m.hotline_text(rng, caller_is_reporter)));
        o.insert("address".into(), json!(m.hotline_place(rng)));
        let area = match rng.below(3) {
            0 => m.spot.area.township.county.to_string(),
            1 => m.spot.area.township.code.to_string(),
            _ => m.spot.area.code.clone(),
        };
        o.insert("areaCode".into(), json!(area));
        o.insert("category".into(), json!(m.topic.hotline_category()));
        o.insert("appealType".into(), json!(m.topic.appeal_type()));
    }
    EvalReport {
        matter: m.label.clone(),
        system: "hotline",
        routing_key: Some("order.created".into()),
        topic: None,
        content_type: "json",
        payload: body.to_string(),
        note: m.note.clone(),
        at,
    }
}

fn petition_report(rng: &mut Rng, m: &EvalMatter, serial: u64, at: NaiveDateTime) -> EvalReport {
    // The bureau registers the day it receives it: djrq = occurred + 1 day.
    let base = base_matter(m, serial, at - Duration::days(1));
    let mut body = petition::record_body(&base, 1, false);
    let phone = match (&m.reporter.landline, rng.chance(0.3)) {
        (Some(l), true) => l.clone(),
        _ => m.reporter.mobile.clone(),
    };
    if let Some(o) = body.as_object_mut() {
        o.insert("zynr".into(), json!(m.petition_text(rng)));
        o.insert("nrfl".into(), json!(m.topic.nrfl()));
        let wtsd = if rng.chance(0.5) { m.spot.area.township.code.to_string() } else { m.spot.area.code.clone() };
        o.insert("wtsd".into(), json!(wtsd));
        if let Some(first) = o.get_mut("xfr").and_then(|x| x.get_mut(0)) {
            first["lxdh"] = json!(phone);
            first["zz"] = json!(format!(
                "{}{}{}{}号楼",
                m.spot.county_name(),
                m.spot.town(),
                m.spot.community(),
                m.spot.building
            ));
        }
    }
    EvalReport {
        matter: m.label.clone(),
        system: "petition",
        routing_key: Some("record.registered".into()),
        topic: None,
        content_type: "json",
        payload: body.to_string(),
        note: m.note.clone(),
        at: at.date().and_hms_opt(9, 0, 0).unwrap_or(at),
    }
}

fn terminal_report(rng: &mut Rng, m: &EvalMatter, serial: u64, at: NaiveDateTime) -> EvalReport {
    let base = base_matter(m, serial, at);
    let worker = terminal::Worker {
        id: format!("W{:04}", 1000 + (m.spot.area.code.parse::<u64>().unwrap_or(0) % 997)),
        county: m.spot.area.township.county.to_string(),
        grid: format!("{}-G{:02}", m.spot.area.code, 1 + rng.below(12)),
    };
    let event_id = terminal::event_id(&worker, &base, serial);
    let mut body = terminal::report(rng, &worker, &base, &event_id);
    let mut loc = json!({"address": m.terminal_place(rng)});
    if rng.chance(0.7) {
        // The worker stands at the spot: a few metres off, as a phone's GPS is.
        let lat = m.spot.lat + (rng.unit() - 0.5) * 0.0004;
        let lng = m.spot.lng + (rng.unit() - 0.5) * 0.0005;
        loc["lat"] = json!((lat * 1e5).round() / 1e5);
        loc["lng"] = json!((lng * 1e5).round() / 1e5);
    }
    body["location"] = loc;
    body["reason"] = json!(m.terminal_text(rng));
    body["category"] = json!(m.topic.terminal_category());
    EvalReport {
        matter: m.label.clone(),
        system: "terminal",
        routing_key: None,
        topic: Some(worker.topic("grid", "report")),
        content_type: "json",
        payload: body.to_string(),
        note: m.note.clone(),
        at,
    }
}

fn court_report(rng: &mut Rng, m: &EvalMatter, serial: u64, at: NaiveDateTime) -> EvalReport {
    // The court receives the case a day after the matter's base time.
    let base = base_matter(m, serial, at - Duration::days(1));
    let xml = court::case_xml(&base, m.spot.area.township.court, serial, "RECEIVED", 1 + serial);
    let claim = xml_escape(&m.court_claim(rng));
    let xml = match (xml.find("<Claim"), xml.find("</Claim>")) {
        (Some(open), Some(close)) if open < close => {
            let text_start = xml[open..].find('>').map_or(open, |i| open + i + 1);
            format!("{}{claim}{}", &xml[..text_start], &xml[close..])
        }
        _ => xml,
    };
    EvalReport {
        matter: m.label.clone(),
        system: "court",
        routing_key: None,
        topic: None,
        content_type: "xml",
        payload: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}", xml.trim()),
        note: m.note.clone(),
        at,
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl EvalMatter {
    fn note_is_same_person(&self) -> bool {
        self.note.as_deref().is_some_and(|n| n.contains("the reporter of"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn checked_in() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/dedup-evaluation.jsonl")
    }

    #[test]
    fn agencies_evaluation_set_is_deterministic_and_varied() {
        let a = evaluation_set(EVALUATION_SEED, EVALUATION_MATTERS);
        let b = evaluation_set(EVALUATION_SEED, EVALUATION_MATTERS);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.payload == y.payload && x.matter == y.matter));
        let mut per_matter: HashMap<&str, Vec<&EvalReport>> = HashMap::new();
        for r in &a {
            per_matter.entry(&r.matter).or_default().push(r);
        }
        assert!(per_matter.len() >= 300, "{} matters", per_matter.len());
        assert!(per_matter.values().all(|v| (1..=4).contains(&v.len())));
        assert!(per_matter.values().filter(|v| v.len() >= 2).count() >= 120);
        let systems: HashSet<&str> = a.iter().map(|r| r.system).collect();
        assert_eq!(systems.len(), 4);
        for kind in ["same street", "same problem", "same name", "the reporter of"] {
            let n = a.iter().filter(|r| r.note.as_deref().is_some_and(|x| x.contains(kind))).count();
            assert!(n >= 10, "{kind}: {n}");
        }
        // Arrival order.
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        // Every payload parses as what it claims to be, and each channel writes its own way.
        for r in &a {
            match r.content_type {
                "json" => {
                    let v: Value = serde_json::from_str(&r.payload).unwrap();
                    let text = v["content"].as_str().or(v["zynr"].as_str()).or(v["reason"].as_str()).unwrap();
                    assert!(!text.is_empty());
                }
                _ => assert!(r.payload.contains("<Case ") && r.payload.contains("</Claim>")),
            }
        }
        assert!(a.iter().any(|r| r.payload.contains("市民来电反映")));
        assert!(a.iter().any(|r| r.payload.contains("我家住")));
        assert!(a.iter().any(|r| r.payload.contains("巡查发现")));
        assert!(a.iter().any(|r| r.payload.contains("申请人")));
    }

    /// `DEDUP_EVALUATION_WRITE=1 cargo test -p simulators agencies_evaluation_set_is_checked_in`
    /// rewrites the file after a deliberate change of the generator.
    #[test]
    fn agencies_evaluation_set_is_checked_in() {
        let text = evaluation_jsonl(EVALUATION_SEED, EVALUATION_MATTERS);
        let path = checked_in();
        if std::env::var_os("DEDUP_EVALUATION_WRITE").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is not what the generator makes: run with DEDUP_EVALUATION_WRITE=1 to rewrite it",
            path.display()
        );
    }
}
