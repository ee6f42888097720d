//! Names for the codes the figures are keyed by, from the shipped tables
//! (`mappings/tables/regions.csv`, `platform-categories.csv`): the screen
//! says 东丰县 and 城市管理/市政设施, not 220421 and 0101.

use std::collections::HashMap;
use std::sync::LazyLock;

fn rows(table: &str) -> impl Iterator<Item = Vec<&'static str>> {
    crate::mapping::shipped::table(table)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|l| l.split(',').collect())
}

static REGIONS: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| rows("regions").filter_map(|r| Some((*r.first()?, *r.get(1)?))).collect());

static CATEGORIES: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
    rows("platform-categories").filter_map(|r| Some((*r.first()?, format!("{}/{}", r.get(1)?, r.get(2)?)))).collect()
});

/// A county's (6 digits) or township's (9 digits) name; 12-digit codes are
/// read at their most precise known level.
pub fn region(code: &str) -> Option<&'static str> {
    let trimmed = code.trim_end_matches("000");
    REGIONS.get(code).or_else(|| REGIONS.get(trimmed)).or_else(|| REGIONS.get(code.get(..9)?)).copied()
}

/// `level1/level2` of a platform category code.
pub fn category(code: &str) -> Option<&'static str> {
    CATEGORIES.get(code).map(String::as_str)
}

/// Every platform category code, in the table's order.
pub fn category_codes() -> Vec<&'static str> {
    rows("platform-categories").filter_map(|r| r.first().copied()).collect()
}

/// The counties and townships in the shipped table: (code, name, parent).
pub fn divisions() -> Vec<(&'static str, &'static str, &'static str)> {
    rows("regions").filter_map(|r| Some((*r.first()?, *r.get(1)?, r.get(3).copied().unwrap_or_default()))).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_read_as_names() {
        assert_eq!(super::region("220421"), Some("东丰县"));
        assert_eq!(super::region("220402002"), Some("南康街道"));
        assert_eq!(super::region("220402002000"), Some("南康街道"));
        assert_eq!(super::category("0401"), Some("劳动保障/欠薪"));
        assert_eq!(super::category("7777"), None);
    }
}
