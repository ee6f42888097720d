//! Where a matter is, read out of a free-text address (and, failing that,
//! out of the description): street names, a house number, the community or
//! village, the building, the unit and the villagers' group.
//!
//! Addresses are written loosely: `义宁街12号`, `龙山区南康街道义宁街12号楼下`,
//! `义宁街康宁路口`, `康宁社区3号楼2单元`. So the administrative prefix the
//! region code already says is dropped first, street suffixes are unified
//! (`人民大街` = `人民街` = `人民路`: the name is what identifies it), and a
//! number right after a street is a house number even when written `12号楼`.

use super::text::{digits_at, is_han, not_name_start, not_place_name_char, starts_with};

/// The parts of a place that two reports of one matter can agree or
/// disagree on. Names are kept as text (they are not personal data, and a
/// reason shows them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// Streets as written (`义宁街`, `人民大街`); two at a crossing. Compared
    /// by [`street_key`]: `人民大街` and `人民街` are one street.
    pub streets: Vec<String>,
    /// House number on the first street.
    pub house: Option<u16>,
    /// Community or village with its class: `康宁社区`, `永安村`.
    pub community: Option<String>,
    pub building: Option<u16>,
    pub unit: Option<u8>,
    /// Villagers' group (`3组`).
    pub group: Option<u8>,
    /// A crossing (`交汇处`, `路口`, `交叉口`).
    pub crossing: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Street,
    Community,
    Number,
}

impl Place {
    pub fn is_empty(&self) -> bool {
        self.streets.is_empty()
            && self.house.is_none()
            && self.community.is_none()
            && self.building.is_none()
            && self.group.is_none()
    }

    /// Reads a normalized address (administrative prefix already blanked).
    /// `loose` is for descriptions: a street there needs a number or a
    /// crossing after it, so that prose (`沿街`, `上街`) is not a street.
    pub fn parse(chars: &[char], loose: bool) -> Place {
        Place::parse_spans(chars, loose).0
    }

    /// [`Place::parse`], with the spans `[from, to)` of what was read as
    /// place, so that they can be taken out of the text: where a matter is
    /// is compared here, not as shingles.
    pub fn parse_spans(chars: &[char], loose: bool) -> (Place, Vec<(usize, usize)>) {
        let mut spans = Vec::new();
        let mut p = Place::default();
        let mut last = Last::Nothing;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == ' ' {
                last = Last::Nothing;
                i += 1;
                continue;
            }
            // 交汇处, 交叉口, and a bare 路口 after a street (`义宁街路口`);
            // `康宁路口` is a street followed by 口, read below.
            let bare_crossing = starts_with(chars, i, "路口") && !(i >= 2 && name_ok(chars[i - 2], chars[i - 1]));
            if starts_with(chars, i, "交汇") || starts_with(chars, i, "交叉") || bare_crossing {
                if !p.streets.is_empty() {
                    p.crossing = true;
                }
                last = Last::Nothing;
                i += 2;
                continue;
            }
            // Street: NN街 / NN路 / NN大街 / NN大路 / NN大道 (not 街道, which is a township).
            let suffix_len = if (c == '街' && chars.get(i + 1) != Some(&'道')) || c == '路' {
                1
            } else if c == '大' && matches!(chars.get(i + 1), Some('街' | '路' | '道')) {
                2
            } else {
                0
            };
            if suffix_len > 0 && i >= 2 && name_ok(chars[i - 2], chars[i - 1]) {
                let next = chars.get(i + suffix_len).copied();
                let accept = !loose
                    || next.is_some_and(|n| n.is_ascii_digit() || matches!(n, '与' | '和' | '口' | '交'))
                    || (next.is_some() && i + suffix_len + 2 <= chars.len() && street_follows(chars, i + suffix_len));
                if accept {
                    let name: String = chars[i - 2..i + suffix_len].iter().collect();
                    if !p.streets.iter().any(|s| street_key(s) == street_key(&name)) && p.streets.len() < 2 {
                        p.streets.push(name);
                    }
                    if chars.get(i + suffix_len) == Some(&'口') {
                        p.crossing = true;
                    }
                    spans.push((i - 2, i + suffix_len));
                    last = Last::Street;
                    i += suffix_len;
                    continue;
                }
            }
            // Community or village: NN社区 / NN小区 / NN村.
            let community = if starts_with(chars, i, "社区") || starts_with(chars, i, "小区") {
                Some(("社区", 2))
            } else if c == '村'
                // 农村, and words that are not a village's name: 同村 (系同村村民),
                // 本村, 邻村, 全村, 进村, 回村 …
                && !chars.get(i.wrapping_sub(1)).is_some_and(|p| "农同本该邻外全进回各两出下乡到我他此村".contains(*p))
            {
                Some(("村", 1))
            } else {
                None
            };
            if let Some((class, len)) = community
                && i >= 2
                && name_ok(chars[i - 2], chars[i - 1])
                && !not_a_community_name(chars[i - 2], chars[i - 1])
            {
                if p.community.is_none() {
                    p.community = Some(format!("{}{}{class}", chars[i - 2], chars[i - 1]));
                }
                spans.push((i - 2, i + len));
                last = Last::Community;
                i += len;
                continue;
            }
            if let Some((n, e)) = digits_at(chars, i) {
                let n16 = u16::try_from(n).ok().filter(|n| *n > 0);
                let after = |w: &str| starts_with(chars, e, w);
                let start = i;
                if after("号楼") || after("号院") || after("号") {
                    let len = if after("号楼") || after("号院") { 2 } else { 1 };
                    if last == Last::Street || (last != Last::Community && !after("号楼")) {
                        p.house = p.house.or(n16);
                    } else {
                        p.building = p.building.or(n16);
                    }
                    i = e + len;
                } else if after("栋") || after("幢") {
                    p.building = p.building.or(n16);
                    i = e + 1;
                } else if after("单元") {
                    p.unit = p.unit.or(u8::try_from(n).ok());
                    i = e + 2;
                } else if after("组") {
                    p.group = p.group.or(u8::try_from(n).ok());
                    i = e + 1;
                } else {
                    i = e;
                    last = Last::Nothing;
                    continue;
                }
                spans.push((start, i));
                last = Last::Number;
                continue;
            }
            if is_han(c) {
                // Any other character ends what came before (门前, 附近, 楼下).
                if !matches!(c, '与' | '和') {
                    last = Last::Nothing;
                }
            }
            i += 1;
        }
        (p, spans)
    }

    /// Fills what this place does not say from another reading of it.
    pub fn fill_from(&mut self, other: Place) {
        if self.streets.is_empty() {
            self.streets = other.streets;
            self.house = self.house.or(other.house);
            self.crossing |= other.crossing;
        }
        self.community = self.community.take().or(other.community);
        self.building = self.building.or(other.building);
        self.unit = self.unit.or(other.unit);
        self.group = self.group.or(other.group);
    }

    /// `义宁街12号`, `义宁街/康宁路口`, `义宁街`: for a reason line.
    pub fn street_address(&self) -> Option<String> {
        let first = self.streets.first()?;
        Some(match self.house {
            Some(h) => format!("{first}{h}号"),
            None if self.crossing && self.streets.len() == 2 => format!("{first}/{}口", self.streets[1]),
            None => first.clone(),
        })
    }

    /// Whether the two name a street in common (by [`street_key`]).
    pub fn shared_street(&self, other: &Place) -> Option<&str> {
        self.streets.iter().find(|s| other.streets.iter().any(|o| street_key(o) == street_key(s))).map(String::as_str)
    }
}

/// A street's name without its suffix, which callers and workers vary:
/// `人民大街`, `人民街` and `人民路` are `人民`.
pub fn street_key(street: &str) -> &str {
    for suffix in ["大街", "大路", "大道", "街", "路"] {
        if let Some(name) = street.strip_suffix(suffix)
            && !name.is_empty()
        {
            return name;
        }
    }
    street
}

/// A two-character place name: Han, not a function word, not a suffix.
fn name_ok(a: char, b: char) -> bool {
    is_han(a) && is_han(b) && !not_name_start(a) && !not_place_name_char(a) && !not_place_name_char(b)
}

/// Two characters before 村 or 社区 that are prose, not a name: 填埋村集体
/// 灌溉渠 (filled in the village's canal), 建议社区协调, 把钱给村里, 弃管小区.
fn not_a_community_name(a: char, b: char) -> bool {
    const WORDS: &[&str] = &[
        "填埋", "建议", "弃管", "要求", "通知", "反映", "联系", "告诉", "属于", "位于", "来到", "回到", "进入", "离开",
        "归还", "占用", "整个", "附近", "周边", "所在", "原来", "隔壁", "当地", "交给", "还给", "报告", "协调", "希望",
        "请求", "由于", "通过", "经过", "找过", "去过", "整治", "管理", "老旧", "各个", "多个", "两个", "这个", "那个",
    ];
    let word: String = [a, b].iter().collect();
    WORDS.contains(&word.as_str()) || "给把被向对由从让请到于在跟和与".contains(b)
}

/// `义宁街康宁路`: another street right after (a crossing written without 与).
fn street_follows(chars: &[char], at: usize) -> bool {
    matches!(chars.get(at + 2), Some('街' | '路')) && name_ok(chars[at], chars[at + 1])
}

#[cfg(test)]
mod tests {
    use super::super::text::{normalize, strip_admin};
    use super::*;

    fn place(s: &str, loose: bool) -> Place {
        let mut c = normalize(s);
        strip_admin(&mut c);
        Place::parse(&c, loose)
    }

    #[test]
    fn street_addresses_in_their_many_forms() {
        let a = place("义宁街12号", false);
        let b = place("龙山区南康街道义宁街12号楼下", false);
        assert_eq!((a.streets.clone(), a.house), (vec!["义宁街".to_string()], Some(12)));
        assert_eq!((b.streets.clone(), b.house, b.building), (a.streets.clone(), Some(12), None));
        assert_eq!(a.street_address().unwrap(), "义宁街12号");
        let x = place("龙山区义宁街与康宁路交汇处", false);
        let y = place("龙山区南康街道义宁街康宁路口", false);
        assert_eq!(x.streets, vec!["义宁街", "康宁路"]);
        assert_eq!(y.streets, vec!["义宁街", "康宁路"]);
        assert!(x.crossing && y.crossing);
        assert_eq!(y.street_address().unwrap(), "义宁街/康宁路口");
        let z = place("人民大街30号附近", false);
        assert_eq!(z.streets, vec!["人民大街"]);
        assert_eq!(z.shared_street(&place("人民路5号", false)), Some("人民大街"));
        assert_eq!(street_key("人民大街"), "人民");
        assert_eq!(street_key("街"), "街");
        assert_eq!(place("西安区福镇大路31号附近", false).streets, vec!["福镇大路"]);
        assert_eq!(place("东吉街道和平社区16号楼", false).community.as_deref(), Some("和平社区"));
    }

    #[test]
    fn communities_buildings_groups() {
        let p = place("龙山区南康街道康宁社区3号楼2单元", false);
        assert_eq!((p.community.as_deref(), p.building, p.unit), (Some("康宁社区"), Some(3), Some(2)));
        let v = place("东辽县白泉镇永安村三组", false);
        assert_eq!((v.community.as_deref(), v.group), (Some("永安村"), Some(3)));
        assert_eq!(place("申请人与被申请人系同村村民", true).community, None);
        assert_eq!(place("被申请人填埋村集体灌溉渠约200米", true).community, None);
        assert_eq!(place("他把钱给村里了", true).community, None);
        let t = place("我是永安村3组村民，村里说不清楚，在农村", true);
        assert_eq!((t.community.as_deref(), t.group), (Some("永安村"), Some(3)));
        assert!(place("商铺沿街摆放，上街", true).streets.is_empty());
        assert!(place("", false).is_empty());
    }
}
