//! Canonical records, as a system that already speaks the hub's own record
//! format would send them: realistic matters of Liaoyuan's districts, their
//! later versions, and redeliveries. Deterministic for a given seed, so a
//! test or a benchmark knows exactly what it sent.

use serde_json::{Value, json};

/// One real-world matter and what the source says about it, version by version.
#[derive(Clone, Debug)]
pub struct Matter {
    pub record_id: String,
    /// How many versions the source will publish (1 = never updated).
    pub versions: i64,
    seed: u64,
}

struct Template {
    kind: &'static str,
    category: &'static str,
    title: &'static str,
    text: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        kind: "help",
        category: "0101",
        title: "下水井塌陷",
        text: "路口下水井塌陷，车辆陷落，请尽快派人处理并设置警示。",
    },
    Template {
        kind: "complaint",
        category: "0202",
        title: "物业不清理楼道杂物",
        text: "小区物业长期不清理楼道杂物，多次反映未果。",
    },
    Template {
        kind: "complaint",
        category: "0203",
        title: "暖气不热",
        text: "入冬以来家中暖气温度不足十五度，老人孩子受冻。",
    },
    Template {
        kind: "report",
        category: "0301",
        title: "砖厂夜间冒黑烟",
        text: "附近砖厂夜间冒黑烟，气味刺鼻，已持续一周。",
    },
    Template {
        kind: "help",
        category: "0401",
        title: "农民工被拖欠工资",
        text: "某建筑公司拖欠农民工工资三个月，多次讨要无果。",
    },
    Template {
        kind: "dispute",
        category: "0605",
        title: "楼上卫生间漏水致损",
        text: "楼上住户卫生间漏水致楼下天棚受损，双方争吵，需要调解。",
    },
    Template {
        kind: "consultation",
        category: "0801",
        title: "咨询医保异地备案",
        text: "咨询医保异地就医备案需要哪些材料、在哪里办理。",
    },
    Template {
        kind: "suggestion",
        category: "0802",
        title: "建议增设公交站点",
        text: "建议在新建小区门口增设公交站点，方便居民出行。",
    },
    Template {
        kind: "grid_event",
        category: "0701",
        title: "楼道堆放杂物堵塞消防通道",
        text: "网格巡查发现楼道堆放杂物，堵塞消防通道，存在火灾隐患。",
    },
    Template {
        kind: "help",
        category: "0503",
        title: "耕地地力保护补贴未发放",
        text: "本人承包地耕地地力保护补贴至今未发放到卡，请求核实补发。",
    },
];

const REGIONS: &[(&str, &str, &str)] = &[
    ("220402002000", "township", "南康街道"),
    ("220402001000", "township", "东吉街道"),
    ("220403001000", "township", "太安街道"),
    ("220421100000", "township", "东丰镇"),
    ("220422100000", "township", "白泉镇"),
    ("220402000000", "county", "龙山区"),
];

const STREETS: &[&str] = &["义宁街", "康宁路", "人民大街", "站前路", "福镇大路", "向阳街"];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];

fn mix(mut x: u64) -> u64 {
    // splitmix64: cheap, deterministic, well spread.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `count` matters; about one in three gets updated (2–3 versions).
pub fn matters(seed: u64, count: usize, prefix: &str) -> Vec<Matter> {
    (0..count)
        .map(|i| {
            let s = mix(seed ^ (i as u64).wrapping_mul(0x1000_0000_01B3));
            let versions = match s % 6 {
                0 => 3,
                1 => 2,
                _ => 1,
            };
            Matter { record_id: format!("{prefix}-{i:07}"), versions, seed: s }
        })
        .collect()
}

impl Matter {
    /// The record the source sends for `version` (1-based).
    pub fn record(&self, version: i64) -> Value {
        let s = self.seed;
        let t = &TEMPLATES[(s % TEMPLATES.len() as u64) as usize];
        let (code, level, name) = REGIONS[((s >> 8) % REGIONS.len() as u64) as usize];
        let street = STREETS[((s >> 16) % STREETS.len() as u64) as usize];
        let surname = SURNAMES[((s >> 24) % SURNAMES.len() as u64) as usize];
        let phone = format!("139{:08}", (s >> 32) % 100_000_000);
        let day = 1 + (s >> 40) % 28;
        let description = if version == 1 {
            format!("{name}{street}：{}", t.text)
        } else {
            format!("{name}{street}：{}（第{version}次补充：情况仍未解决，请加快处理。）", t.text)
        };
        json!({
            "recordId": self.record_id,
            "version": version,
            "channel": "hotline",
            "ticket": {
                "kind": t.kind,
                "category": t.category,
                "title": format!("{name}{street}{}", t.title),
                "description": description,
                "region": {"code": code, "level": level, "name": name},
                "address": format!("{name}{street}{}号", 1 + (s >> 48) % 200),
                "occurredAt": format!("2024-07-{day:02}T09:{:02}:00+08:00", (s >> 52) % 60),
                "reportedAt": format!("2024-07-{day:02}T10:{:02}:00+08:00", (s >> 52) % 60),
                "urgent": s.is_multiple_of(7),
                "status": if version >= 3 { "in_progress" } else { "new" },
                "reporters": [{"channel": "hotline", "name": format!("{surname}女士"), "phone": phone, "anonymous": false}]
            }
        })
    }

    pub fn payload(&self, version: i64) -> Vec<u8> {
        serde_json::to_vec(&self.record(version)).expect("a JSON value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let a = matters(7, 100, "T");
        let b = matters(7, 100, "T");
        assert_eq!(a[5].payload(1), b[5].payload(1));
        assert!(a.iter().any(|m| m.versions == 3) && a.iter().any(|m| m.versions == 1));
        let r = a[0].record(2);
        assert_eq!(r["version"], 2);
        assert!(r["ticket"]["title"].as_str().unwrap().chars().count() <= 80);
    }
}
