//! Facts one matter is told by in every register, read out of the text.
//!
//! The hotline's summary, the grid worker's note, the petitioner's first
//! person and the court's claim share few characters, but they share facts:
//! how many households (约40户 / 四十来户 / 四十一户), how long (二百米 /
//! 200米 / 二百来米), which villagers' groups (三组至五组 / 三到五组 /
//! 三组、四组、五组), which organisation (养殖场 / 某牧业有限公司), which
//! month (去年冬天 / 去年腊月 / 2025年12月). Each is compared as a fact and
//! shown as a reason a person can read.
//!
//! Everything here scans the normalized text (`text::normalize`: folded,
//! Chinese numerals before a unit already digits) and never panics.

use super::text::{chinese_number_at, digits_at, is_chinese_numeral, is_han, starts_with};

/// What a quantity counts or measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Unit {
    Households = 1,
    People = 2,
    Metres = 3,
    Mu = 4,
    SquareMetres = 5,
}

impl Unit {
    pub(crate) fn from_u8(b: u8) -> Option<Unit> {
        Some(match b {
            1 => Unit::Households,
            2 => Unit::People,
            3 => Unit::Metres,
            4 => Unit::Mu,
            5 => Unit::SquareMetres,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Unit::Households => "户",
            Unit::People => "人",
            Unit::Metres => "米",
            Unit::Mu => "亩",
            Unit::SquareMetres => "平方米",
        }
    }
}

/// A count or a measure, and whether it was given as an estimate
/// (`约`, `近`, `来`, `多`, `余`, `左右`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    pub unit: Unit,
    pub value: u32,
    pub approx: bool,
}

impl Quantity {
    /// How two quantities of one unit compare: `Some(true)` when they can be
    /// one (within 10%, or 25% if either is an estimate), `Some(false)` when
    /// they cannot (more than 40% apart), None in between or for other units.
    pub fn agrees(&self, other: &Quantity) -> Option<bool> {
        if self.unit != other.unit {
            return None;
        }
        let (x, y) = (f64::from(self.value), f64::from(other.value));
        let apart = (x - y).abs() / x.max(y).max(1.0);
        let tolerance = if self.approx || other.approx { 0.25 } else { 0.10 };
        if apart <= tolerance {
            Some(true)
        } else if apart > 0.4 {
            Some(false)
        } else {
            None
        }
    }
}

/// The most quantities kept per record.
const MAX_QUANTITIES: usize = 4;

/// Counts (户, 人/名/位) and measures (米, 亩, 平方米) in a text. Single
/// digits of people (`2人`) are left out: every quarrel has two sides.
pub(crate) fn quantities(chars: &[char]) -> Vec<Quantity> {
    let mut out: Vec<Quantity> = Vec::new();
    let mut i = 0;
    while i < chars.len() && out.len() < MAX_QUANTITIES {
        let number = if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit()) {
            digits_at(chars, i)
        } else if i == 0 || !is_chinese_numeral(chars[i - 1]) {
            chinese_number_at(chars, i)
        } else {
            None
        };
        let Some((value, mut j)) = number else {
            i += 1;
            continue;
        };
        // A decimal (`1.5亩`) is rounded down: the fact is its size.
        if chars.get(j) == Some(&'.') {
            j = digits_at(chars, j + 1).map_or(j, |(_, e)| e);
        }
        let before = |w: &str| {
            let n = w.chars().count();
            i >= n && starts_with(chars, i - n, w)
        };
        let mut approx = before("约")
            || before("近")
            || before("上")
            || before("将近")
            || before("大概")
            || before("不到")
            || before("不足");
        if matches!(chars.get(j), Some('来' | '多' | '余')) {
            approx = true;
            j += 1;
        }
        let (unit, len) = match chars.get(j) {
            Some('户') => (Some(Unit::Households), 1),
            Some('人' | '名' | '位') if !starts_with(chars, j, "人民") => (Some(Unit::People), 1),
            Some('亩') => (Some(Unit::Mu), 1),
            Some('米') => (Some(Unit::Metres), 1),
            Some('平') if starts_with(chars, j, "平方米") => (Some(Unit::SquareMetres), 3),
            Some('平') if starts_with(chars, j, "平米") => (Some(Unit::SquareMetres), 2),
            // `四十六平的平房`: square metres as people say them; not 四平
            // (a city), 一平 (per square metre) or 平路, 平房 after a number.
            Some('平')
                if value >= 10
                    && chars.get(j.wrapping_sub(1)) != Some(&'一')
                    && !matches!(
                        chars.get(j + 1),
                        Some('市' | '路' | '街' | '区' | '县' | '镇' | '村' | '方' | '房')
                    ) =>
            {
                (Some(Unit::SquareMetres), 1)
            }
            Some('㎡') => (Some(Unit::SquareMetres), 1),
            _ => (None, 0),
        };
        if let Some(unit) = unit {
            approx |= starts_with(chars, j + len, "左右");
            let small = unit == Unit::People && value < 10;
            if !small && (2..=u64::from(u32::MAX)).contains(&value) {
                let q = Quantity { unit, value: value as u32, approx };
                if !out.contains(&q) {
                    out.push(q);
                }
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// Villagers' groups named in a text, as bits (group 1 is bit 1):
/// `3组`, `三组至五组`, `3到5组`, `三组、四组、五组`, `3-5组`.
pub(crate) fn groups(chars: &[char]) -> u32 {
    let number_at = |at: usize| -> Option<(u64, usize)> {
        if chars.get(at).is_some_and(char::is_ascii_digit) {
            digits_at(chars, at)
        } else {
            chinese_number_at(chars, at)
        }
    };
    let bit = |n: u64| if (1..=31).contains(&n) { 1u32 << n } else { 0 };
    let mut out = 0u32;
    let mut i = 0;
    while i < chars.len() {
        let starts = i == 0 || !(chars[i - 1].is_ascii_digit() || is_chinese_numeral(chars[i - 1]));
        let Some((first, mut j)) = number_at(i).filter(|_| starts) else {
            i += 1;
            continue;
        };
        let grouped = chars.get(j) == Some(&'组');
        if grouped {
            j += 1;
        }
        // A range: 至/到/-/~ and a second number with 组 after it.
        if matches!(chars.get(j), Some('至' | '到' | '-' | '~' | '—'))
            && let Some((last, k)) = number_at(j + 1)
            && chars.get(k) == Some(&'组')
            && last > first
            && last - first <= 10
        {
            for n in first..=last {
                out |= bit(n);
            }
            i = k + 1;
            continue;
        }
        if grouped {
            // A list that ends in 组: `三 四 五组` (the 、 is a break by now).
            out |= bit(first);
        } else if chars.get(j) == Some(&' ') {
            let mut k = j + 1;
            let mut list = vec![first];
            while let Some((n, e)) = number_at(k) {
                list.push(n);
                match chars.get(e) {
                    Some(' ') => k = e + 1,
                    Some('组') => {
                        for n in list.drain(..) {
                            out |= bit(n);
                        }
                        break;
                    }
                    _ => break,
                }
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// Kinds of organisation, by the words that name them: a grid worker's
/// 养殖场 is the court's 某牧业有限公司.
const INDUSTRIES: &[(&str, &[&str])] = &[
    ("畜牧养殖", &["牧业", "养殖", "猪场", "牛场", "鸡场", "羊场", "养猪", "养牛", "屠宰"]),
    ("建筑施工", &["建筑", "建设", "建工", "工程", "施工", "项目部", "工地", "劳务", "装饰", "装修"]),
    ("物业", &["物业"]),
    ("房地产", &["置业", "房地产", "地产", "开发"]),
    ("餐饮住宿", &["餐饮", "饭店", "酒店", "烧烤", "宾馆", "饭馆", "餐馆", "火锅"]),
    ("商贸零售", &["超市", "商贸", "商店", "商行", "便利店", "门市"]),
    ("运输物流", &["运输", "物流", "快递", "客运"]),
    ("制造加工", &["制造", "加工", "砖厂", "木业", "化工", "机械", "食品", "服装", "厂"]),
    ("供热供水", &["热力", "供热", "供水", "水务", "燃气"]),
    ("培训教育", &["培训", "教育", "幼儿园", "学校"]),
    ("医疗", &["医院", "诊所", "医药", "药店"]),
    ("中介金融", &["中介", "小贷", "担保", "金融", "投资"]),
];

/// What ends an organisation's name.
const ORG_SUFFIXES: &[&str] = &[
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "公司",
    "合作社",
    "养殖场",
    "养殖户",
    "项目部",
    "工地",
    "砖厂",
    "超市",
    "酒店",
    "饭店",
    "宾馆",
    "医院",
    "诊所",
    "幼儿园",
    "学校",
    "厂",
];

/// An organisation named in a text: its kind, and its own name where it is
/// not masked (`宏达` of 宏达建筑公司; None for 某牧业有限公司 or 养殖场).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organisation {
    /// Index into the kinds of organisation (`INDUSTRIES`), or 255 for none known.
    pub industry: u8,
    pub name: Option<String>,
}

impl Organisation {
    pub fn kind_label(&self) -> &'static str {
        INDUSTRIES.get(usize::from(self.industry)).map_or("单位", |(label, _)| label)
    }

    /// Some(true): one organisation as far as the texts tell; Some(false):
    /// two (both named, nothing in common); None: cannot tell.
    pub fn agrees(&self, other: &Organisation) -> Option<bool> {
        match (&self.name, &other.name) {
            (Some(a), Some(b)) => {
                let a: Vec<char> = a.chars().collect();
                let b: Vec<char> = b.chars().collect();
                let shared = a.windows(2).any(|w| b.windows(2).any(|v| v == w));
                Some(shared)
            }
            _ if self.industry != 255 && self.industry == other.industry => Some(true),
            _ => None,
        }
    }
}

/// Characters that end a name going backwards from its suffix.
fn not_org_char(c: char) -> bool {
    !is_han(c)
        || matches!(
            c,
            '的' | '在' | '与' | '和' | '被' | '向' | '跟' | '给' | '是' | '把' | '了' | '称' | '对' | '告' | '人' | '到'
                | '从' | '由' | '为' | '及' | '等' | '县' | '区' | '市' | '镇' | '乡' | '村' | '省'
                // Verbs and places that come before an organisation, not in its name.
                | '联' | '系' | '找' | '诉' | '知' | '反' | '映' | '要' | '求' | '属' | '于' | '去' | '让'
                | '叫' | '请' | '经' | '过' | '附' | '近' | '旁' | '边' | '里' | '内' | '外' | '该' | '这'
                | '那' | '此' | '其' | '家' | '个' | '位' | '说' | '催' | '报' | '打' | '问'
        )
}

/// Organisations named in a text (at most 3).
pub(crate) fn organisations(chars: &[char]) -> Vec<Organisation> {
    let mut out: Vec<Organisation> = Vec::new();
    let mut i = 0;
    while i < chars.len() && out.len() < 3 {
        let Some(suffix) = ORG_SUFFIXES.iter().find(|s| starts_with(chars, i, s)) else {
            i += 1;
            continue;
        };
        let end = i + suffix.chars().count();
        let mut from = i;
        while from > 0 && i - from < 8 && !not_org_char(chars[from - 1]) {
            from -= 1;
        }
        let whole: String = chars[from..end].iter().collect();
        let industry =
            INDUSTRIES.iter().position(|(_, words)| words.iter().any(|w| whole.contains(w))).map_or(255, |p| p as u8);
        // The organisation's own name: what is left of the name once the
        // mask, the kind words and the suffix are out, if two characters or more.
        let mut own: String = chars[from..i].iter().filter(|c| **c != '某').collect();
        if let Some((_, words)) = INDUSTRIES.get(usize::from(industry)) {
            for w in words.iter() {
                own = own.replace(w, " ");
            }
        }
        let own = own.split(' ').max_by_key(|s| s.chars().count()).unwrap_or("").to_string();
        let masked = chars[from..i].contains(&'某');
        let name = (!masked && own.chars().count() >= 2).then_some(own);
        // A bare 厂 or 工地 with nothing before it says nothing.
        if industry != 255 || name.is_some() {
            let org = Organisation { industry, name };
            if !out.contains(&org) {
                out.push(org);
            }
        }
        i = end;
    }
    out
}

/// Months a text says the matter happened in, as `year * 12 + month - 1`,
/// read against the month the record was made (`now`, same form): `2025年12月`,
/// `去年12月`, `今年3月`, `12月5日` (this year, or last if that is ahead),
/// `上个月`, `去年冬天`/`去年腊月` (December to February), seasons.
pub(crate) fn months(chars: &[char], now: u32) -> Vec<u32> {
    let year = now / 12;
    let mut out: Vec<u32> = Vec::new();
    let push = |m: u32, out: &mut Vec<u32>| {
        if m <= now + 1 && now.saturating_sub(m) < 60 && !out.contains(&m) && out.len() < 6 {
            out.push(m);
        }
    };
    let mut i = 0;
    while i < chars.len() {
        // An explicit year: 2025年12月.
        if chars[i].is_ascii_digit()
            && (i == 0 || !chars[i - 1].is_ascii_digit())
            && let Some((y, j)) = digits_at(chars, i)
            && (2000..=2100).contains(&y)
            && chars.get(j) == Some(&'年')
        {
            if let Some((m, k)) = month_at(chars, j + 1) {
                push((y as u32) * 12 + m - 1, &mut out);
                i = k;
                continue;
            }
            i = j + 1;
            continue;
        }
        let relative = if starts_with(chars, i, "去年") {
            Some((year.saturating_sub(1), 2))
        } else if starts_with(chars, i, "今年") {
            Some((year, 2))
        } else if starts_with(chars, i, "前年") {
            Some((year.saturating_sub(2), 2))
        } else {
            None
        };
        if let Some((y, len)) = relative {
            let at = i + len;
            if let Some((m, k)) = month_at(chars, at) {
                push(y * 12 + m - 1, &mut out);
                i = k;
                continue;
            }
            if let Some((from, to)) = season_at(chars, at) {
                for m in from..=to {
                    push(y * 12 + m, &mut out);
                }
                i = at + 2;
                continue;
            }
            i = at;
            continue;
        }
        if starts_with(chars, i, "上个月") || starts_with(chars, i, "上月") {
            push(now.saturating_sub(1), &mut out);
            i += 2;
            continue;
        }
        // A month and day without a year: the latest such date not ahead.
        if (i == 0 || !(chars[i - 1].is_ascii_digit() || chars[i - 1] == '年'))
            && let Some((m, k)) = month_at(chars, i)
            && chars.get(k).is_some_and(|c| c.is_ascii_digit() || chinese_number_at(chars, k).is_some())
        {
            let this = year * 12 + m - 1;
            let latest = if this > now { this.checked_sub(12) } else { Some(this) };
            if let Some(m) = latest {
                push(m, &mut out);
            }
            i = k;
            continue;
        }
        i += 1;
    }
    out
}

/// `12月`, `十二月`, `腊月` (the twelfth lunar month, about January), `正月`
/// at `at`: the month (1..=12) and where it ends.
fn month_at(chars: &[char], at: usize) -> Option<(u32, usize)> {
    if starts_with(chars, at, "腊月") {
        return Some((12, at + 2));
    }
    if starts_with(chars, at, "正月") {
        return Some((1, at + 2));
    }
    let (m, j) = if chars.get(at).is_some_and(char::is_ascii_digit) {
        digits_at(chars, at)?
    } else {
        chinese_number_at(chars, at)?
    };
    (chars.get(j) == Some(&'月') && (1..=12).contains(&m)).then_some((m as u32, j + 1))
}

/// A season at `at` (`冬天`, `冬季`, `春天` …), as months counted from the
/// year's January (0-based; winter runs into the next year).
fn season_at(chars: &[char], at: usize) -> Option<(u32, u32)> {
    let season = match chars.get(at)? {
        '春' => (2, 4),
        '夏' => (5, 7),
        '秋' => (8, 10),
        '冬' => (10, 13),
        _ => return None,
    };
    matches!(chars.get(at + 1), Some('天' | '季')).then_some(season)
}

/// Whether two sets of months meet: Some(true) if two are within one
/// month, Some(false) if none is within three, None otherwise.
pub(crate) fn months_agree(a: &[u32], b: &[u32]) -> Option<bool> {
    let gap = a.iter().flat_map(|x| b.iter().map(move |y| x.abs_diff(*y))).min()?;
    match gap {
        0..=1 => Some(true),
        2 => None,
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::text::normalize;

    fn q(text: &str) -> Vec<(Unit, u32, bool)> {
        quantities(&normalize(text)).into_iter().map(|q| (q.unit, q.value, q.approx)).collect()
    }

    #[test]
    fn counts_and_lengths_in_their_spellings() {
        assert_eq!(q("涉及农户约40户"), vec![(Unit::Households, 40, true)]);
        assert_eq!(q("四十来户"), vec![(Unit::Households, 40, true)]);
        assert_eq!(q("申请人等四十一户村民"), vec![(Unit::Households, 41, false)]);
        assert_eq!(q("填平约二百米"), vec![(Unit::Metres, 200, true)]);
        assert_eq!(q("填了二百来米"), vec![(Unit::Metres, 200, true)]);
        assert_eq!(q("灌溉渠约200米"), vec![(Unit::Metres, 200, true)]);
        assert_eq!(q("承包地3.5亩"), vec![(Unit::Mu, 3, false)]);
        assert_eq!(q("120平方米的门市"), vec![(Unit::SquareMetres, 120, false)]);
        assert_eq!(q("四十六平的平房，一平三千一"), vec![(Unit::SquareMetres, 46, false)]);
        assert_eq!(q("家住四平市"), vec![]);
        assert_eq!(q("房价三千一平，五千八一平"), vec![], "prices per square metre are no areas");
        assert_eq!(q("离猪场不到一百米"), vec![(Unit::Metres, 100, true)]);
        assert_eq!(q("两人吵架"), vec![]);
        assert_eq!(q("工人12名"), vec![(Unit::People, 12, false)]);
        assert_eq!(q("人民路"), vec![]);
        let a = Quantity { unit: Unit::Households, value: 40, approx: true };
        let b = Quantity { unit: Unit::Households, value: 41, approx: false };
        assert_eq!(a.agrees(&b), Some(true));
        assert_eq!(a.agrees(&Quantity { unit: Unit::Households, value: 12, approx: false }), Some(false));
        assert_eq!(a.agrees(&Quantity { unit: Unit::Metres, value: 40, approx: false }), None);
    }

    #[test]
    fn villagers_groups_as_ranges_and_lists() {
        let g = |t: &str| groups(&normalize(t));
        let three_to_five = (1 << 3) | (1 << 4) | (1 << 5);
        assert_eq!(g("兴隆村三组至五组的灌溉渠"), three_to_five);
        assert_eq!(g("三到五组几十户"), three_to_five);
        assert_eq!(g("我们是兴隆村三组、四组、五组的村民"), three_to_five);
        assert_eq!(g("3-5组"), three_to_five);
        assert_eq!(g("永安村2组"), 1 << 2);
        assert_eq!(g("没有组"), 0);
    }

    #[test]
    fn organisations_masked_and_named() {
        let o = |t: &str| organisations(&normalize(t));
        let court = o("被申请人东辽县某牧业有限公司");
        assert_eq!(court.len(), 1);
        assert_eq!(court[0].kind_label(), "畜牧养殖");
        assert_eq!(court[0].name, None);
        let grid = o("灌渠被养殖场填了");
        assert_eq!(court[0].agrees(&grid[0]), Some(true));
        let a = o("宏达建筑公司拖欠工资");
        let b = o("鑫源建筑公司拖欠工资");
        assert_eq!(a[0].name.as_deref(), Some("宏达"));
        assert_eq!(a[0].agrees(&b[0]), Some(false));
        assert_eq!(a[0].agrees(&o("宏达公司的工地")[0]), Some(true));
    }

    #[test]
    fn months_read_against_the_reports_month() {
        let now = 2026 * 12; // January 2026
        let m = |t: &str| months(&normalize(t), now);
        assert_eq!(m("2025年12月填埋"), vec![2025 * 12 + 11]);
        assert_eq!(m("去年12月"), vec![2025 * 12 + 11]);
        assert!(m("去年腊月").contains(&(2025 * 12 + 11)));
        assert!(m("去年冬天").contains(&(2025 * 12 + 11)));
        assert_eq!(m("12月5日晚"), vec![2025 * 12 + 11]);
        assert_eq!(m("上个月"), vec![2025 * 12 + 11]);
        assert_eq!(months_agree(&m("去年冬天"), &m("2025年12月")), Some(true));
        assert_eq!(months_agree(&m("2025年6月"), &m("2025年12月")), Some(false));
        assert_eq!(months_agree(&[], &m("2025年12月")), None);
    }

    #[test]
    fn nothing_panics_on_odd_input() {
        for t in ["", "组", "至5组", "99999999999999999999户", "某公司", "年月", "去年", "十", "厂厂厂厂"]
        {
            let c = normalize(t);
            let _ = (quantities(&c), groups(&c), organisations(&c), months(&c, 0));
        }
    }
}
