//! Surge mode: daily counts of matters per (area, category), quiet or with a
//! surge, to measure the hub's early warning of frequent events
//! (`hub::stats::warning`) against known truth.
//!
//! Quiet periods are Poisson counts around a low base rate with a weekly
//! pattern (fewer matters at weekends: the hotline and the grid workers are
//! busier on working days). Two surges the centre actually sees:
//!
//! - [`Surge::Storm`] (暴雨): a sudden jump, 4–8× the base rate for 2–4 days,
//!   in 城市管理/市政设施 (0101, 积水, 雨水井) and 住房物业/房屋质量与漏水
//!   (0201, 屋顶漏水) of one or a few townships;
//! - [`Surge::WageArrears`] (欠薪潮 before the Spring Festival): 劳动保障/欠薪
//!   (0401) and 矛盾纠纷/劳资纠纷 (0604) of a county rising linearly over
//!   about three weeks to 3–5× the base rate, then staying there until the
//!   holiday.
//!
//! Everything derives from a seed through splitmix64 ([`Rng`]), so a test
//! knows where each surge starts. [`records`] turns a day's count into
//! canonical records (as in [`crate::canonical`]) with texts fitting the
//! surge, for end-to-end runs through the hub.

use crate::agencies::content::Rng;
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

/// Relative rate by weekday, Monday first; the mean over a week is 1, so
/// `base_rate` is the average daily rate.
pub const WEEKLY: [f64; 7] = [1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.7];

/// A surge on top of the quiet rate. Multipliers apply to the base rate of
/// the day (weekly pattern included).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Surge {
    /// Rate × `factor` for `days` days, from the first day on.
    Storm { factor: f64, days: usize },
    /// Rate rising linearly from 1× to `peak`× over `ramp_days`, then
    /// `peak`× for `plateau_days` (until the Spring Festival), then back.
    WageArrears { peak: f64, ramp_days: usize, plateau_days: usize },
}

/// Categories a storm raises: 市政设施, 房屋质量与漏水.
pub const STORM_CATEGORIES: [&str; 2] = ["0101", "0201"];
/// Categories a wage-arrears wave raises: 欠薪, 劳资纠纷.
pub const WAGE_CATEGORIES: [&str; 2] = ["0401", "0604"];

/// Days of quiet history before a surge may start in [`with_surge`]: enough
/// for any baseline the detector uses (7 days + 2 guard days, or the
/// CUSUM's longer one) to be complete.
pub const MIN_LEAD_DAYS: usize = 42;

impl Surge {
    /// A storm drawn from `seed`: factor 4–8, 2–4 days.
    pub fn storm(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0x5707);
        Surge::Storm { factor: 4.0 + 4.0 * r.unit(), days: r.range(2, 4) as usize }
    }

    /// A wage-arrears wave drawn from `seed`: peak 3–5×, ramp 18–24 days,
    /// plateau 3–7 days.
    pub fn wage_arrears(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0x3A6E);
        Surge::WageArrears {
            peak: 3.0 + 2.0 * r.unit(),
            ramp_days: r.range(18, 24) as usize,
            plateau_days: r.range(3, 7) as usize,
        }
    }

    /// Days the surge lasts.
    pub fn len(&self) -> usize {
        match *self {
            Surge::Storm { days, .. } => days,
            Surge::WageArrears { ramp_days, plateau_days, .. } => ramp_days + plateau_days,
        }
    }

    /// Never true for the surges above; here for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rate multiplier `d` days after the surge's start (1 outside it).
    pub fn multiplier(&self, d: usize) -> f64 {
        match *self {
            Surge::Storm { factor, days } if d < days => factor,
            Surge::WageArrears { peak, ramp_days, .. } if d < ramp_days => {
                1.0 + (peak - 1.0) * (d + 1) as f64 / ramp_days as f64
            }
            Surge::WageArrears { peak, .. } if d < self.len() => peak,
            _ => 1.0,
        }
    }

    /// Categories the surge raises.
    pub fn categories(&self) -> &'static [&'static str] {
        match self {
            Surge::Storm { .. } => &STORM_CATEGORIES,
            Surge::WageArrears { .. } => &WAGE_CATEGORIES,
        }
    }
}

/// A Poisson draw. Knuth's product method per chunk of at most 30 (e^-30
/// is still far from underflow), the chunks summed: Poisson(a) + Poisson(b)
/// is Poisson(a + b).
pub fn poisson(rng: &mut Rng, lambda: f64) -> u32 {
    let mut left = if lambda.is_finite() { lambda.max(0.0) } else { 0.0 };
    let mut n = 0u32;
    while left > 0.0 {
        let chunk = left.min(30.0);
        left -= chunk;
        let limit = (-chunk).exp();
        let mut p = rng.unit();
        while p > limit {
            n += 1;
            p *= rng.unit();
        }
    }
    n
}

/// Quiet daily counts: Poisson around `base_rate` × [`WEEKLY`]; day 0 is a
/// Monday.
pub fn quiet(seed: u64, days: usize, base_rate: f64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..days).map(|i| poisson(&mut rng, base_rate * WEEKLY[i % 7])).collect()
}

/// Daily counts with `surge` starting at the returned index, drawn from
/// `seed` between [`MIN_LEAD_DAYS`] and the last start that fits the whole
/// surge (or as late as the series allows when it is short). Day 0 is a
/// Monday.
pub fn with_surge(seed: u64, days: usize, base_rate: f64, surge: Surge) -> (Vec<u32>, usize) {
    let lo = MIN_LEAD_DAYS.min(days);
    let hi = days.saturating_sub(surge.len()).max(lo);
    let start = Rng::new(seed ^ 0x57A7).range(lo as u64, hi as u64) as usize;
    (with_surge_at(seed, days, base_rate, surge, start), start)
}

/// Daily counts with `surge` starting at day `start`.
pub fn with_surge_at(seed: u64, days: usize, base_rate: f64, surge: Surge, start: usize) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..days)
        .map(|i| {
            let m = if i >= start { surge.multiplier(i - start) } else { 1.0 };
            poisson(&mut rng, base_rate * WEEKLY[i % 7] * m)
        })
        .collect()
}

// ----------------------------------------------------------------- records

/// A division of Liaoyuan (辽源市 220400), code as in `regions.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub code: &'static str,
    pub name: &'static str,
    pub level: &'static str,
}

impl Area {
    /// The code padded to 12 digits, as tickets carry it.
    pub fn code12(&self) -> String {
        format!("{:0<12}", self.code)
    }
}

pub const COUNTIES: &[Area] = &[
    Area { code: "220402", name: "龙山区", level: "county" },
    Area { code: "220403", name: "西安区", level: "county" },
    Area { code: "220421", name: "东丰县", level: "county" },
    Area { code: "220422", name: "东辽县", level: "county" },
];

pub const TOWNSHIPS: &[Area] = &[
    Area { code: "220402002", name: "南康街道", level: "township" },
    Area { code: "220402001", name: "东吉街道", level: "township" },
    Area { code: "220403001", name: "太安街道", level: "township" },
    Area { code: "220403100", name: "灯塔镇", level: "township" },
    Area { code: "220421100", name: "东丰镇", level: "township" },
    Area { code: "220421101", name: "大阳镇", level: "township" },
    Area { code: "220422100", name: "白泉镇", level: "township" },
    Area { code: "220422101", name: "渭津镇", level: "township" },
];

struct Text {
    kind: &'static str,
    title: &'static str,
    text: &'static str,
}

const fn t(kind: &'static str, title: &'static str, text: &'static str) -> Text {
    Text { kind, title, text }
}

const STORM_0101: &[Text] = &[
    t("help", "暴雨后路面积水", "昨夜暴雨，路面积水没过脚踝，行人车辆无法通行，请尽快排水。"),
    t("help", "雨水井堵塞排水不畅", "暴雨后雨水井被杂物堵塞，积水排不出去，已漫进商铺。"),
    t("report", "井盖被冲走", "暴雨冲走井盖，积水中看不见井口，十分危险，请设置警示。"),
    t("help", "下穿桥积水", "下穿桥积水很深，有车辆熄火被困，请派人疏导排水。"),
];
const STORM_0201: &[Text] = &[
    t("complaint", "暴雨后屋顶漏水", "顶楼住户家中屋顶漏水，暴雨后天棚往下滴水，墙皮脱落。"),
    t("complaint", "外墙渗水", "连日暴雨，外墙渗水，卧室墙面发霉，请物业和维修资金尽快处理。"),
    t("help", "地下室进水", "暴雨后单元地下室进水，储藏物品被泡，请求抽水。"),
];
const WAGE_0401: &[Text] = &[
    t("help", "农民工被拖欠工资", "在建筑工地干活半年，包工头拖欠工资，快过年了还没结清。"),
    t("help", "年底讨薪无果", "公司拖欠三个月工资，年底多次讨要无果，请求劳动监察介入。"),
    t("help", "工程款不到位拖欠工资", "项目方称工程款不到位，拖欠二十多名工人工资。"),
];
const WAGE_0604: &[Text] = &[
    t("dispute", "工人集体讨薪", "二十余名工人到项目部集体讨薪，与负责人发生争执，请求调解。"),
    t("dispute", "工资结算争议", "与老板对工资结算数额有争议，对方只认一半，请求调解。"),
];
const QUIET: &[Text] = &[t("help", "反映问题", "反映所在地相关问题，请有关部门核实处理。")];
const QUIET_0101: &[Text] = &[t("help", "路灯不亮", "路段路灯不亮已有一周，夜间出行不便。")];
const QUIET_0201: &[Text] = &[t("complaint", "卫生间漏水", "楼上卫生间漏水渗到我家天棚，请求维修。")];
const QUIET_0401: &[Text] = &[t("help", "被拖欠工资", "饭店拖欠一个月工资，老板不接电话。")];
const QUIET_0604: &[Text] = &[t("dispute", "工资争议", "离职后单位扣发工资，双方有争议，请求调解。")];

fn texts(category: &str, surge: Option<Surge>) -> &'static [Text] {
    let storm = matches!(surge, Some(Surge::Storm { .. }));
    let wage = matches!(surge, Some(Surge::WageArrears { .. }));
    match category {
        "0101" if storm => STORM_0101,
        "0201" if storm => STORM_0201,
        "0401" if wage => WAGE_0401,
        "0604" if wage => WAGE_0604,
        "0101" => QUIET_0101,
        "0201" => QUIET_0201,
        "0401" => QUIET_0401,
        "0604" => QUIET_0604,
        _ => QUIET,
    }
}

const PLACES: &[&str] = &["人民大街", "站前路", "福镇大路", "向阳街", "龙山路", "东宁路", "新兴小区", "工地"];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];

/// One day's matters of `category` in `area` as canonical hotline records
/// (format of [`crate::canonical`]), `count` of them, ids `{prefix}-{yyyymmdd}-{n}`.
/// `surge` picks texts that fit it (积水, 屋顶漏水, 拖欠工资, 集体讨薪) for the
/// categories it raises; otherwise the texts are ordinary ones.
pub fn records(
    seed: u64,
    prefix: &str,
    area: &Area,
    category: &str,
    day: NaiveDate,
    count: u32,
    surge: Option<Surge>,
) -> Vec<Value> {
    let texts = texts(category, surge);
    let mut rng = Rng::new(seed ^ u64::from(day.num_days_from_ce().unsigned_abs()).wrapping_mul(0x1000_0000_01B3));
    (0..count)
        .map(|n| {
            let t = rng.pick(texts);
            let place = rng.pick(PLACES);
            let surname = rng.pick(SURNAMES);
            let hour = 7 + rng.below(14);
            let minute = rng.below(60);
            let phone = format!("139{:08}", rng.below(100_000_000));
            let date = day.format("%Y-%m-%d");
            let urgent = matches!(surge, Some(Surge::Storm { .. })) && rng.chance(0.3);
            json!({
                "recordId": format!("{prefix}-{}-{n:04}", day.format("%Y%m%d")),
                "version": 1,
                "channel": "hotline",
                "ticket": {
                    "kind": t.kind,
                    "category": category,
                    "title": format!("{}{place}{}", area.name, t.title),
                    "description": format!("{}{place}：{}", area.name, t.text),
                    "region": {"code": area.code12(), "level": area.level, "name": area.name},
                    "address": format!("{}{place}{}号", area.name, 1 + rng.below(200)),
                    "occurredAt": format!("{date}T{:02}:{minute:02}:00+08:00", hour.saturating_sub(1)),
                    "reportedAt": format!("{date}T{hour:02}:{minute:02}:00+08:00"),
                    "urgent": urgent,
                    "status": "new",
                    "reporters": [{"channel": "hotline", "name": format!("{surname}先生"), "phone": phone, "anonymous": false}]
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(xs: &[u32]) -> f64 {
        xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64
    }

    #[test]
    fn quiet_is_deterministic_with_the_base_rate_and_a_weekly_pattern() {
        assert_eq!(quiet(3, 100, 2.0), quiet(3, 100, 2.0));
        assert_ne!(quiet(3, 100, 2.0), quiet(4, 100, 2.0));
        let xs = quiet(11, 7 * 2000, 2.0);
        assert!((mean(&xs) - 2.0).abs() < 0.05, "mean {}", mean(&xs));
        let weekday: Vec<u32> = xs.iter().enumerate().filter(|(i, _)| i % 7 < 5).map(|(_, &x)| x).collect();
        let weekend: Vec<u32> = xs.iter().enumerate().filter(|(i, _)| i % 7 >= 5).map(|(_, &x)| x).collect();
        assert!(mean(&weekday) > 2.0 && mean(&weekend) < 1.7);
        // Poisson: variance close to the mean on weekdays.
        let m = mean(&weekday);
        let var = weekday.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / weekday.len() as f64;
        assert!((var / m - 1.0).abs() < 0.1, "var {var} mean {m}");
    }

    #[test]
    fn large_rates_are_drawn_without_underflow() {
        let mut rng = Rng::new(1);
        let xs: Vec<u32> = (0..2000).map(|_| poisson(&mut rng, 80.0)).collect();
        assert!((mean(&xs) - 80.0).abs() < 1.0);
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
    }

    #[test]
    fn surges_start_after_a_lead_and_raise_the_rate() {
        for seed in 0..50 {
            let s = Surge::storm(seed);
            let (xs, start) = with_surge(seed, 365, 1.0, s);
            assert!(start >= MIN_LEAD_DAYS && start + s.len() <= 365);
            assert_eq!(xs.len(), 365);
            let Surge::Storm { factor, days } = s else { panic!("storm") };
            assert!((4.0..=8.0).contains(&factor) && (2..=4).contains(&days));
            let w = Surge::wage_arrears(seed);
            assert!(w.multiplier(0) < 1.3 && w.multiplier(w.len() - 1) >= 3.0 && w.multiplier(w.len()) == 1.0);
        }
        // Over many waves the surge days carry several times the quiet count.
        let (mut during, mut before) = (0u32, 0u32);
        for seed in 0..200 {
            let s = Surge::Storm { factor: 6.0, days: 3 };
            let (xs, start) = with_surge(seed, 100, 1.0, s);
            during += xs[start..start + 3].iter().sum::<u32>();
            before += xs[start - 3..start].iter().sum::<u32>();
        }
        let ratio = f64::from(during) / f64::from(before);
        assert!((4.5..8.0).contains(&ratio), "ratio {ratio}");
        // A short series still yields a start inside it.
        let (xs, start) = with_surge(1, 10, 1.0, Surge::storm(1));
        assert!(xs.len() == 10 && start <= 10);
    }

    #[test]
    fn records_fit_the_surge_and_the_canonical_format() {
        let day = NaiveDate::from_ymd_opt(2024, 7, 30).unwrap_or_default();
        let area = TOWNSHIPS[4];
        let rs = records(9, "SURGE", &area, "0101", day, 5, Some(Surge::storm(9)));
        assert_eq!(rs.len(), 5);
        assert_eq!(rs, records(9, "SURGE", &area, "0101", day, 5, Some(Surge::storm(9))));
        let r = &rs[0];
        assert_eq!(r["ticket"]["region"]["code"], "220421100000");
        assert_eq!(r["ticket"]["category"], "0101");
        assert!(r["recordId"].as_str().is_some_and(|id| id.starts_with("SURGE-20240730-")));
        let text = r["ticket"]["description"].as_str().unwrap_or_default();
        assert!(text.contains("暴雨") || text.contains("积水"), "{text}");
        let w = records(9, "W", &COUNTIES[2], "0401", day, 2, Some(Surge::wage_arrears(9)));
        assert!(w[0]["ticket"]["description"].as_str().is_some_and(|d| d.contains("工资")));
        assert_eq!(w[0]["ticket"]["region"]["code"], "220421000000");
    }
}
