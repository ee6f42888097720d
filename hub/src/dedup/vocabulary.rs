//! What a text is about, as category families: for a record whose category
//! is unknown (9999), so that it does not belong to every family when its
//! text says plainly that it is about wages, a loan or a leak.
//!
//! The words are the mappings' own (`mappings/tables/matter-words.csv`,
//! `word,category,dispute`), compiled in: the same vocabulary classifies a
//! record whose code is unknown when it is mapped, and its text here.

use std::sync::OnceLock;

use super::fingerprint::family;

const WORDS: &str = include_str!("../../../mappings/tables/matter-words.csv");

/// `(word, category)` of the table; lines that do not parse are skipped
/// (the mapping loader reports them).
fn words() -> &'static [(String, u16)] {
    static WORDS_TABLE: OnceLock<Vec<(String, u16)>> = OnceLock::new();
    WORDS_TABLE.get_or_init(|| {
        WORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .skip(1)
            .filter_map(|l| {
                let mut cells = l.split(',').map(str::trim);
                let word = cells.next().filter(|w| !w.is_empty())?;
                let category = cells.next()?.parse::<u16>().ok()?;
                Some((word.to_string(), category))
            })
            .collect()
    })
}

/// The families of every matter word the text contains (their union: a
/// text about a leak and the property company is both), 0 when it
/// contains none.
pub fn families_of_text(text: &str) -> u16 {
    words().iter().filter(|(w, _)| text.contains(w.as_str())).fold(0, |acc, (_, c)| acc | family::of(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_loads_and_every_category_is_a_platform_one() {
        assert!(words().len() > 100);
        for (w, c) in words() {
            assert!(family::of(*c) != family::ALL || *c == 9999, "{w}: {c:04} has no family");
        }
    }

    #[test]
    fn a_text_gives_the_families_of_its_words() {
        assert_eq!(families_of_text("老板拖欠三个月工资不给"), family::LABOUR);
        assert_eq!(families_of_text("借款两万元到期不还"), family::of(603));
        assert_eq!(families_of_text("楼上卫生间漏水"), family::HOUSING);
        assert_eq!(families_of_text("物业不管楼上漏水"), family::HOUSING);
        assert_eq!(families_of_text("请尽快处理"), 0);
        assert_eq!(families_of_text(""), 0);
    }
}
