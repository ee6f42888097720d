//! Where the platform sends a matter: the departments of Liaoyuan's
//! districts and counties, and the city's bureaus a matter is escalated to.

/// Departments of one county (by its 6-digit code) that matters are
/// dispatched to; street and town offices beside the district bureaus.
const BY_COUNTY: &[(&str, &[&str])] = &[
    (
        "220402",
        &[
            "龙山区住建局",
            "龙山区城管局",
            "龙山区人社局",
            "龙山区司法局",
            "南康街道城管科",
            "东吉街道综治办",
            "站前街道城管科",
        ],
    ),
    ("220403", &["西安区住建局", "西安区城管局", "西安区人社局", "仙城街道城管科", "太安街道综治办", "灯塔镇综治办"]),
    ("220421", &["东丰县住建局", "东丰县人社局", "东丰县司法局", "东丰镇综治办", "大阳镇综治办"]),
    ("220422", &["东辽县住建局", "东辽县自然资源局", "东辽县司法局", "白泉镇综治办", "渭津镇综治办"]),
];

/// Where a matter no county office names goes.
const CITY: &[&str] = &["辽源市住建局", "辽源市城市管理执法局", "辽源市人社局", "辽源市司法局"];

/// What an escalation (上报) goes to: the city's bureaus.
pub const ESCALATED: &[&str] =
    &["辽源市住建局", "辽源市城市管理执法局", "辽源市人社局", "辽源市信访局", "辽源市市域社会治理中心"];

/// The departments a matter of region `code` (township or county, 6 or
/// 9 digits) may be dispatched to.
pub fn of_region(code: Option<&str>) -> &'static [&'static str] {
    let county = code.and_then(|c| c.get(..6));
    BY_COUNTY.iter().find(|(c, _)| Some(*c) == county).map_or(CITY, |(_, list)| list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_township_takes_its_countys_departments() {
        assert!(of_region(Some("220402002")).contains(&"南康街道城管科"));
        assert!(of_region(Some("220422")).contains(&"东辽县住建局"));
        assert_eq!(of_region(Some("2204")), CITY);
        assert_eq!(of_region(None), CITY);
    }
}
