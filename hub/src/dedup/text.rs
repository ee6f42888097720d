//! Text handling for Chinese without a segmentation dictionary: folding
//! (full-width → half-width), Chinese numerals to digits, boilerplate and
//! administrative names out, identifiers (case numbers, event ids, names,
//! amounts) lifted out, and what remains cut into character bigrams.
//!
//! Everything here is a hand-written scanner over `char`s: no regular
//! expression, no allocation per character, nothing that can panic on input.

use super::fingerprint::KeyKind;

/// splitmix64 finaliser: spreads a 64-bit value over all bits, so the low
/// and high halves of a hash are both usable (bottom-k keeps the smallest).
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a over bytes, then [`mix64`]: a stable 64-bit key for identifiers.
/// Stable across versions and machines, because the store keeps it.
pub(crate) fn fnv64(tag: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in std::iter::once(tag).chain(bytes.iter().copied()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(h)
}

/// Full-width ASCII → ASCII, ideographic space → space, ASCII lower case:
/// the part of NFKC that agency texts actually need.
pub(crate) fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c).to_ascii_lowercase(),
        '\u{3000}' | '\u{00A0}' => ' ',
        '【' | '〔' => '[',
        '】' | '〕' => ']',
        _ => c.to_ascii_lowercase(),
    }
}

pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// Characters that carry content: Han, ASCII letters and digits.
pub(crate) fn is_content(c: char) -> bool {
    is_han(c) || c.is_ascii_alphanumeric()
}

/// The value of a Chinese numeral's digit character.
fn cn_digit(c: char) -> Option<u64> {
    Some(match c {
        '零' | '〇' => 0,
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn cn_unit(c: char) -> Option<u64> {
    Some(match c {
        '十' => 10,
        '百' => 100,
        '千' => 1000,
        '万' => 10_000,
        _ => return None,
    })
}

/// The value of a run of Chinese numerals (`三万五千` → 35000, `十二` → 12),
/// or None when it is not a well-formed number.
fn cn_value(run: &[char]) -> Option<u64> {
    let (mut total, mut section, mut digit) = (0u64, 0u64, None::<u64>);
    // As in `chinese_number_at`: `四万八` is 48,000, `一百二` 120.
    let mut unit_before = None;
    for (k, &c) in run.iter().enumerate() {
        if let Some(d) = cn_digit(c) {
            digit = Some(d);
            unit_before = k.checked_sub(1).and_then(|p| cn_unit(run[p])).filter(|u| *u >= 100 && *u <= 10_000);
        } else if let Some(u) = cn_unit(c) {
            if u == 10_000 {
                section = section.checked_add(digit.take().unwrap_or(0))?;
                total = total.checked_add(section.max(1).checked_mul(u)?)?;
                section = 0;
            } else {
                section = section.checked_add(digit.take().unwrap_or(1) * u)?;
            }
        } else {
            return None;
        }
    }
    let last = match (digit, unit_before) {
        (Some(d), Some(u)) => d * (u / 10),
        (d, _) => d.unwrap_or(0),
    };
    total.checked_add(section)?.checked_add(last)
}

/// Units after which a Chinese numeral is a quantity worth reading as digits
/// (`三组` = `3组`, `十三度` = `13度`, `五万元` = `50000元`).
fn quantity_unit(c: char) -> bool {
    matches!(
        c,
        '号' | '组'
            | '栋'
            | '幢'
            | '单'
            | '层'
            | '楼'
            | '度'
            | '盏'
            | '垄'
            | '亩'
            | '名'
            | '元'
            | '户'
            | '人'
            | '天'
            | '米'
            | '月'
            | '日'
            | '位'
    )
}

/// Folds, turns Chinese-numeral quantities into ASCII digits, and maps every
/// character that is not content to a single space (a segment break).
pub(crate) fn normalize(text: &str) -> Vec<char> {
    let folded: Vec<char> = text.chars().map(fold).collect();
    let mut out = Vec::with_capacity(folded.len());
    let mut i = 0;
    while i < folded.len() {
        let c = folded[i];
        if cn_digit(c).is_some() || (cn_unit(c).is_some() && c != '万' && c != '千' && c != '百') {
            let start = i;
            let mut j = i;
            while j < folded.len() && (cn_digit(folded[j]).is_some() || cn_unit(folded[j]).is_some()) {
                j += 1;
            }
            // `四十来户`, `二百多米`: an estimate is still a quantity.
            let unit_follows = folded.get(j).is_some_and(|&u| quantity_unit(u))
                || matches!(folded.get(j), Some('来' | '多' | '余'))
                    && folded.get(j + 1).is_some_and(|&u| quantity_unit(u));
            // 二〇二三 (a year) and lone units are left as they are.
            let year_like = folded[start..j].contains(&'〇');
            if unit_follows
                && !year_like
                && let Some(v) = cn_value(&folded[start..j])
            {
                out.extend(v.to_string().chars());
                i = j;
                continue;
            }
            out.extend(&folded[start..j]);
            i = j;
            continue;
        }
        if is_content(c) || c == '(' || c == ')' || c == '-' || c == '.' {
            out.push(c);
        } else if out.last() != Some(&' ') {
            out.push(' ');
        }
        i += 1;
    }
    out
}

/// Removes `[i, j)` spans by blanking them to a segment break.
pub(crate) fn blank(chars: &mut [char], from: usize, to: usize) {
    let to = to.min(chars.len());
    for c in &mut chars[from.min(to)..to] {
        *c = ' ';
    }
}

pub(crate) fn starts_with(chars: &[char], at: usize, word: &str) -> bool {
    (at..).zip(word.chars()).all(|(k, w)| chars.get(k) == Some(&w))
}

/// Channel boilerplate and stock phrases: they say who wrote the text or
/// that something should be done, not what the matter is, and they would
/// make two different matters of one channel look alike. Longest first.
const BOILERPLATE: &[&str] = &[
    "网格员巡查发现",
    "建议申请诉前调解",
    "市民来电反映",
    "请有关部门",
    "请相关部门",
    "希望有关部门",
    "要求有关部门",
    "请求有关部门",
    "市民来电称",
    "来电人反映",
    "来电人咨询",
    "来电人补充",
    "网格员上报",
    "走访了解到",
    "被申请人",
    "来电人称",
    "来电反映",
    "市民反映",
    "群众反映",
    "居民反映",
    "巡查发现",
    "有关部门",
    "相关部门",
    "协调处理",
    "尽快处理",
    "请求帮助",
    "多次讨要",
    // The grid worker's stock phrases: what was done, not what is wrong.
    "已现场劝导",
    "已入户查看",
    "发生纠纷",
    "现场劝解",
    "建议调解",
    "已联系",
    "已劝解",
    "需调解",
    // Who should act, not what is wrong: every municipal problem "needs
    // the municipal department", every heating complaint names the
    // heating company.
    "劳动监察部门",
    "需市政部门",
    "市政部门",
    "执法部门",
    "环卫部门",
    "供热公司",
    "供热企业",
    "热力公司",
    "供水公司",
    "物业公司",
    "劳动监察",
    "镇司法所",
    "镇农业站",
    "社区出面",
    "村委会",
    "司法所",
    "农业站",
    "需市政",
    "请市政",
    "市政",
    // Where, not what: the place is compared on its own.
    "交汇处",
    "交叉口",
    "路口",
    "门前",
    "附近",
    "楼下",
    "路段",
    "一带",
    "请尽快",
    "来电人",
    "申请人",
    "网格员",
    "已上报",
    "人民币",
    "办结意见",
    "标的额",
    "案号",
    "请求",
    "要求",
    "希望",
    "尽快",
    "处理",
    "解决",
    "反映",
    "帮助",
    "本人",
    "我们",
    "我家",
    "cny",
];

/// [`BOILERPLATE`] by first character, longest first: every record's text
/// is looked at position by position, and trying every phrase at each one
/// was most of the cost of a fingerprint.
static BOILERPLATE_BY_FIRST: std::sync::LazyLock<std::collections::HashMap<char, Vec<Vec<char>>>> =
    std::sync::LazyLock::new(|| {
        let mut by_first: std::collections::HashMap<char, Vec<Vec<char>>> = std::collections::HashMap::new();
        for p in BOILERPLATE {
            let chars: Vec<char> = p.chars().collect();
            if let Some(&first) = chars.first() {
                by_first.entry(first).or_default().push(chars);
            }
        }
        for list in by_first.values_mut() {
            list.sort_by_key(|p| std::cmp::Reverse(p.len()));
        }
        by_first
    });

/// The length of the longest boilerplate phrase at `at`, 0 if none.
fn boilerplate_at(chars: &[char], at: usize) -> usize {
    let Some(list) = BOILERPLATE_BY_FIRST.get(&chars[at]) else { return 0 };
    list.iter().find(|p| chars[at..].starts_with(p)).map_or(0, Vec::len)
}

/// Blanks every boilerplate phrase (longest match at each position).
pub(crate) fn strip_boilerplate(chars: &mut [char]) {
    let mut i = 0;
    while i < chars.len() {
        if !is_han(chars[i]) && !chars[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let hit = boilerplate_at(chars, i);
        if hit > 0 {
            blank(chars, i, i + hit);
            i += hit;
        } else {
            i += 1;
        }
    }
}

/// Blanks every occurrence of `word` (a region's name the code already says).
pub(crate) fn strip_word(chars: &mut [char], word: &str) {
    let n = word.chars().count();
    if n < 2 {
        return;
    }
    let mut i = 0;
    while i + n <= chars.len() {
        if starts_with(chars, i, word) {
            blank(chars, i, i + n);
            i += n;
        } else {
            i += 1;
        }
    }
}

/// Characters that do not begin a place name: function words and the like,
/// so that `住义宁街` or `在村` are not read as names.
pub(crate) fn not_name_start(c: char) -> bool {
    matches!(
        c,
        '在' | '住'
            | '是'
            | '的'
            | '到'
            | '与'
            | '及'
            | '了'
            | '我'
            | '家'
            | '沿'
            | '过'
            | '条'
            | '经'
            | '从'
            | '往'
            | '上'
            | '下'
            | '满'
            | '个'
            | '这'
            | '那'
            | '一'
            | '段'
            | '附'
            | '近'
            | '说'
            | '本'
            | '全'
            | '该'
            | '各'
            | '邻'
            | '去'
            | '回'
            | '里'
            | '们'
            | '其'
            | '所'
            | '即'
            | '称'
            | '对'
            | '把'
            | '被'
            | '给'
            | '有'
            | '已'
            | '需'
            | '报'
            | '请'
    )
}

fn not_name_char(c: char) -> bool {
    !is_han(c) || matches!(c, '街' | '路' | '道' | '号' | '区' | '县' | '镇' | '乡' | '村' | '楼' | '组')
}

/// Characters that end or break a street or community name (`福镇大路` and
/// `和平社区` are names; `宁街路` is not).
pub(crate) fn not_place_name_char(c: char) -> bool {
    !is_han(c) || matches!(c, '街' | '路' | '道' | '号' | '区' | '县' | '楼' | '组' | '的')
}

/// Blanks administrative prefixes the region code already says: a county
/// (`龙山区`, `东辽县`, optionally after a city `辽源市`) followed by a
/// township (`南康街道`, `白泉镇`), or a township ending in 街道 anywhere.
/// 社区/小区 are not counties; 镇/乡 alone are only stripped after a county or
/// at the start of a segment, since `镇农业站` is prose.
pub(crate) fn strip_admin(chars: &mut [char]) -> Vec<String> {
    let mut towns = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let seg_start = i == 0 || chars[i - 1] == ' ';
        let mut end = i;
        // 辽源市 before a county.
        if let Some(e) = admin_unit(chars, end, &['市'], 2..=3)
            && admin_unit(chars, e, &['区', '县'], 2..=3).is_some()
        {
            end = e;
        }
        let county = admin_unit(chars, end, &['区', '县'], 2..=3);
        if let Some(e) = county {
            end = e;
        }
        let town = township(chars, end, county.is_some() || seg_start);
        if let Some(e) = town {
            towns.push(chars[end..e].iter().collect());
            end = e;
        }
        if end > i && (county.is_some() || town.is_some()) {
            blank(chars, i, end);
            i = end;
        } else {
            i += 1;
        }
    }
    towns
}

/// `name{suffix}` at `at` with a name of `len` Han characters (shortest first).
fn admin_unit(chars: &[char], at: usize, suffix: &[char], len: std::ops::RangeInclusive<usize>) -> Option<usize> {
    let first = *chars.get(at)?;
    if !is_han(first) || not_name_start(first) {
        return None;
    }
    for n in len {
        let s = *chars.get(at + n)?;
        if !chars[at..at + n].iter().all(|&c| is_han(c) && !not_name_char(c)) {
            return None;
        }
        if suffix.contains(&s) {
            let before = chars[at + n - 1];
            // 社区, 小区, 园区, 城区, 辖区… are not counties.
            if matches!(before, '社' | '小' | '园' | '城' | '辖' | '景' | '校' | '片' | '郊' | '市' | '矿') {
                return None;
            }
            return Some(at + n + 1);
        }
    }
    None
}

fn township(chars: &[char], at: usize, allow_town: bool) -> Option<usize> {
    let first = *chars.get(at)?;
    if !is_han(first) || not_name_start(first) {
        return None;
    }
    for n in 2..=7 {
        if at + n >= chars.len() {
            return None;
        }
        if !is_han(chars[at + n - 1]) || matches!(chars[at + n - 1], '街' | '路' | '号') {
            return None;
        }
        if starts_with(chars, at + n, "街道") {
            return Some(at + n + 2);
        }
        if allow_town && n <= 4 && matches!(chars[at + n], '镇' | '乡') {
            return Some(at + n + 1);
        }
    }
    None
}

/// A run of ASCII digits at `at`: its value and where it ends.
pub(crate) fn digits_at(chars: &[char], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut j = at;
    while let Some(c) = chars.get(j).and_then(|c| c.to_digit(10)) {
        v = v.saturating_mul(10).saturating_add(u64::from(c));
        j += 1;
    }
    (j > at).then_some((v, j))
}

/// Court case numbers (`(2024)吉0402民诉前调122号`, brackets already folded)
/// in the text: returned as written, and blanked.
pub(crate) fn take_case_numbers(chars: &mut [char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '('
            && let Some((_, y)) = digits_at(chars, i + 1)
            && y == i + 5
            && chars.get(y) == Some(&')')
        {
            // (yyyy) court-code [digits] kind-characters digits 号
            let mut j = y + 1;
            let mut han = 0;
            let mut digit_runs = 0;
            while j < chars.len() && j - y < 24 {
                if is_han(chars[j]) {
                    han += 1;
                    if chars[j] == '号' && digit_runs >= 2 {
                        break;
                    }
                    j += 1;
                } else if let Some((_, e)) = digits_at(chars, j) {
                    digit_runs += 1;
                    j = e;
                } else {
                    break;
                }
            }
            if chars.get(j) == Some(&'号') && han >= 2 && digit_runs >= 2 {
                out.push(chars[i..=j].iter().collect());
                blank(chars, i, j + 1);
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Terminal event ids (`w0412-20220712-0003`, folded to lower case) and
/// other long digit runs (phone and ID numbers written into the text): the
/// ids are returned, everything is blanked, so that numbers never become
/// shingles.
pub(crate) fn take_event_ids_and_long_numbers(chars: &mut [char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphanumeric() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '-') {
                j += 1;
            }
            let token: String = chars[i..j].iter().collect();
            let parts: Vec<&str> = token.split('-').collect();
            let event = parts.len() == 3
                && parts[0].chars().any(|c| c.is_ascii_alphabetic())
                && parts[1].len() == 8
                && parts[1].bytes().all(|b| b.is_ascii_digit())
                && parts[2].len() == 4
                && parts[2].bytes().all(|b| b.is_ascii_digit());
            if event {
                out.push(token);
                blank(chars, i, j);
            } else if token.bytes().filter(u8::is_ascii_digit).count() >= 7 {
                blank(chars, i, j);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// A number written in Chinese at `at` (`八万一千六百` = 81,600, `二百` =
/// 200, `十五` = 15, `两万` = 20,000), and where it ends. Agencies write
/// amounts, counts and lengths this way as often as in digits.
pub(crate) fn chinese_number_at(chars: &[char], at: usize) -> Option<(u64, usize)> {
    // A numeral starts with a digit, or with 十 (十五): `万元` and `数万元`
    // name no sum.
    if !chars.get(at).is_some_and(|&c| cn_digit(c).is_some() || c == '十') {
        return None;
    }
    let (mut total, mut section, mut digit) = (0u64, 0u64, None::<u64>);
    // The unit just before the last digit: `四万八` is 48,000 and `三千五`
    // 3,500 in speech (the digit counts the next unit down), `一万零八` 10,008.
    let mut unit_before: Option<u64> = None;
    let mut j = at;
    while let Some(&c) = chars.get(j) {
        if let Some(d) = cn_digit(c) {
            digit = Some(d);
            unit_before = match j.checked_sub(1).and_then(|k| chars.get(k)) {
                Some('百') if j > at => Some(100),
                Some('千') if j > at => Some(1000),
                Some('万') if j > at => Some(10_000),
                _ => None,
            };
        } else {
            let unit = match c {
                '十' => 10,
                '百' => 100,
                '千' => 1000,
                '万' => 10_000,
                '亿' => 100_000_000,
                _ => break,
            };
            if unit >= 10_000 {
                section = (section + digit.take().unwrap_or(0)).max(if section == 0 { 1 } else { 0 });
                total = total.saturating_add(section).saturating_mul(unit);
                section = 0;
            } else {
                // 十五: a bare 十 is ten.
                section = section.saturating_add(digit.take().unwrap_or(1).saturating_mul(unit));
            }
        }
        j += 1;
    }
    if j == at {
        return None;
    }
    // `一万一直没还`, `三千一平`: a 一 that begins the next word is no digit.
    if digit == Some(1) && unit_before.is_some() && chars.get(j).is_some_and(|c| ONE_BEGINS_A_WORD.contains(*c)) {
        digit = None;
        unit_before = None;
        j -= 1;
    }
    let last = match (digit, unit_before) {
        (Some(d), Some(u)) => d.saturating_mul(u / 10),
        (d, _) => d.unwrap_or(0),
    };
    let value = total.saturating_add(section).saturating_add(last);
    (value > 0).then_some((value, j))
}

pub(crate) fn is_chinese_numeral(c: char) -> bool {
    cn_digit(c).is_some() || matches!(c, '十' | '百' | '千' | '万' | '亿')
}

/// Amounts of money in yuan (`50000元`, `5万元`, `5万余元`, `五万元`,
/// `八万一千六百元`, `50000.00` after 标的额): a claim's amount tells two
/// loans apart.
pub(crate) fn amounts(chars: &[char]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_chinese_numeral(chars[i])
            && (i == 0 || !is_chinese_numeral(chars[i - 1]))
            && let Some((value, mut j)) = chinese_number_at(chars, i)
        {
            if matches!(chars.get(j), Some('余' | '多' | '来')) {
                j += 1;
            }
            let yuan = chars.get(j) == Some(&'元')
                || said_kuai(chars, j)
                || value >= 1000 && money_said_before(chars, i) && !unit_follows(chars, j);
            if yuan && (100..=u64::from(u32::MAX)).contains(&value) && !out.contains(&(value as u32)) && out.len() < 3 {
                out.push(value as u32);
            }
            i = j.max(i + 1);
            continue;
        }
        if !chars[i].is_ascii_digit() || (i > 0 && (chars[i - 1].is_ascii_digit() || chars[i - 1] == '.')) {
            i += 1;
            continue;
        }
        let Some((v, mut j)) = digits_at(chars, i) else {
            i += 1;
            continue;
        };
        if chars.get(j) == Some(&'.') {
            j = digits_at(chars, j + 1).map_or(j + 1, |(_, e)| e);
        }
        let mut value = v;
        let unit = match chars.get(j) {
            Some('万') => 10_000,
            Some('千') => 1000,
            _ => 1,
        };
        if unit > 1 {
            value = v.saturating_mul(unit);
            j += 1;
            // `1万8` is 18,000 as `一万八` is: one digit after the unit
            // counts the next unit down (not the 一 of `一直`).
            let d = chars.get(j).and_then(|&c| c.to_digit(10).map(u64::from).or_else(|| cn_digit(c)));
            let then = chars.get(j + 1).copied();
            if let Some(d) = d.filter(|&d| d > 0)
                && !then.is_some_and(|c| c.is_ascii_digit() || c == '.' || is_chinese_numeral(c))
                && !(d == 1 && then.is_some_and(|c| ONE_BEGINS_A_WORD.contains(c)))
            {
                value = value.saturating_add(d * unit / 10);
                j += 1;
            }
        }
        let magnitude = value != v;
        if chars.get(j) == Some(&'余') || chars.get(j) == Some(&'多') {
            j += 1;
        }
        let yuan = chars.get(j) == Some(&'元')
            || starts_with(chars, j, " cny")
            || starts_with(chars, j, "cny")
            || magnitude && (said_kuai(chars, j) || money_said_before(chars, i) && !unit_follows(chars, j));
        if yuan && value >= 100 && value <= u64::from(u32::MAX) && !out.contains(&(value as u32)) && out.len() < 3 {
            out.push(value as u32);
        }
        i = j.max(i + 1);
    }
    out
}

/// Words after which a sum needs no 元: `借了四万八`, `欠工钱两万`,
/// `拿了十二万` are money as people say it.
const MONEY_WORDS: &[&str] = &[
    "借", "欠", "拿了", "还了", "还我", "没还", "归还", "还款", "赔", "工资", "工钱", "货款", "租金", "补偿", "要回",
    "垫付", "押金", "彩礼", "本金",
];

/// Characters after which a 一 that follows a unit begins a word (`一直`,
/// `一起`, `一次`, `一平` …) rather than counting the next unit down.
const ONE_BEGINS_A_WORD: &str = "直起次共样定般些下点天年个平块";

/// `三万块`, `三万块钱` are money; `一百块砖` is bricks.
fn said_kuai(chars: &[char], at: usize) -> bool {
    starts_with(chars, at, "块钱") || chars.get(at) == Some(&'块') && !chars.get(at + 1).is_some_and(|&c| is_han(c))
}

/// Whether a money word ends at most three characters before `at`.
fn money_said_before(chars: &[char], at: usize) -> bool {
    (at.saturating_sub(5)..at).any(|k| {
        MONEY_WORDS.iter().any(|w| {
            let n = w.chars().count();
            starts_with(chars, k, w) && k + n <= at && at - (k + n) <= 3
        })
    })
}

/// Whether a unit of something other than money follows a number
/// (`四万八千斤`, `两万平`, `三千亩`): then it is no sum.
fn unit_follows(chars: &[char], at: usize) -> bool {
    chars.get(at).is_some_and(|&c| {
        quantity_unit(c) && c != '元' || "平斤吨头只个年方公株棵袋辆条家套台张本份次件间箱".contains(c)
    })
}

/// The most common Chinese family names: a name in a text is one of these
/// followed by 某/某某/女士/先生 (records carry names masked that way).
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";

fn is_surname(c: char) -> bool {
    is_han(c) && SURNAMES.contains(c)
}

/// Masked names in a text (`马某`, `王某某`, `王女士`, `张先生`).
pub(crate) fn names(chars: &[char]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in 0..chars.len() {
        // What follows first: it rules out nearly every position, and more
        // cheaply than the list of family names does.
        let len = if starts_with(chars, i + 1, "某某") {
            3
        } else if chars.get(i + 1) == Some(&'某') {
            2
        } else if starts_with(chars, i + 1, "女士") || starts_with(chars, i + 1, "先生") {
            3
        } else {
            0
        };
        if len > 0 && is_surname(chars[i]) {
            let name: String = chars[i..i + len].iter().collect();
            if !out.contains(&name) && out.len() < 4 {
                out.push(name);
            }
        }
    }
    out
}

/// Whether a person's name as written can tell people apart: a full name
/// (`张建国`) can; a surname with an honorific or a mask (`王女士`, `张先生`,
/// `李师傅`, `王某`, `刘某某`), a familiar form (`老王`, `小李`) or a lone
/// character cannot — the hotline's `callerName` is usually one of these.
pub(crate) fn name_kind(name: &str) -> KeyKind {
    const HONORIFICS: &[&str] = &[
        "女士", "先生", "师傅", "老人", "大爷", "大妈", "大娘", "阿姨", "老师", "小姐", "同志", "老汉", "大姐", "大哥",
        "奶奶", "爷爷", "叔", "婶", "哥", "姐", "总", "经理", "老板", "医生", "主任", "书记", "村长",
    ];
    let name = name.trim();
    let n = name.chars().count();
    let familiar = n == 2 && (name.starts_with('老') || name.starts_with('小'));
    if n < 2 || familiar || name.contains('某') || name.contains('*') || name.contains('＊') || name.contains('×') {
        return KeyKind::WeakName;
    }
    if HONORIFICS.iter().any(|h| name.ends_with(h)) {
        return KeyKind::WeakName;
    }
    KeyKind::Name
}

/// Characters too common to say anything alone (they still count inside bigrams).
fn stop_char(c: char) -> bool {
    matches!(
        c,
        '的' | '了'
            | '是'
            | '在'
            | '有'
            | '和'
            | '与'
            | '及'
            | '等'
            | '也'
            | '都'
            | '就'
            | '还'
            | '又'
            | '很'
            | '个'
            | '一'
            | '不'
            | '我'
            | '他'
            | '她'
            | '们'
            | '其'
            | '这'
            | '那'
            | '到'
            | '对'
            | '把'
            | '被'
            | '给'
            | '让'
            | '从'
            | '为'
            | '以'
            | '之'
            | '而'
            | '或'
            | '但'
            | '并'
            | '已'
            | '将'
            | '要'
            | '会'
            | '能'
            | '可'
            | '说'
            | '称'
            | '请'
            | '求'
            | '人'
            | '无'
            | '未'
            | '多'
            | '次'
    )
}

/// Distinct 16-bit hashes of the character unigrams and bigrams of the
/// content left in `chars` (nothing crosses a segment break), sorted.
pub(crate) fn shingles(chars: &[char]) -> Vec<u16> {
    let mut out = Vec::with_capacity(2 * chars.len());
    let unit = |c: char| c != ' ' && !c.is_ascii_punctuation();
    for (k, &c) in chars.iter().enumerate() {
        if unit(c) && is_han(c) && !stop_char(c) {
            out.push((mix64(u64::from(c as u32) ^ 0x0A11_CE00) >> 48) as u16);
        }
        if let Some(&d) = chars.get(k + 1)
            && unit(c)
            && unit(d)
        {
            let x = (u64::from(c as u32) << 32) | u64::from(d as u32);
            out.push((mix64(x ^ 0x5EED_D0D0) >> 48) as u16);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_numerals_read_as_numbers_and_amounts() {
        let n = |s: &str| chinese_number_at(&s.chars().collect::<Vec<_>>(), 0).map(|(v, _)| v);
        assert_eq!(n("八万一千六百"), Some(81_600));
        assert_eq!(n("二百"), Some(200));
        assert_eq!(n("十五"), Some(15));
        assert_eq!(n("四十"), Some(40));
        assert_eq!(n("两万"), Some(20_000));
        assert_eq!(n("一万零五百"), Some(10_500));
        assert_eq!(n("三千"), Some(3_000));
        assert_eq!(n("万"), None, "a unit alone is no number");
        assert_eq!(n("十万"), Some(100_000));
        assert_eq!(n("来电"), None);
        let a = |s: &str| amounts(&s.chars().collect::<Vec<_>>());
        assert_eq!(a("老板拖欠我工资八万一千六百元至今不给"), [81_600]);
        assert_eq!(a("欠薪五万元，另欠3000元"), [50_000, 3_000]);
        assert_eq!(a("借款两万多元未还"), [20_000]);
        assert_eq!(a("涉及农户四十来户"), Vec::<u32>::new(), "households are no money");
        assert_eq!(a("损失数万元"), Vec::<u32>::new(), "several ten thousands is no sum");
        assert_eq!(n("四万八"), Some(48_000), "a digit after a unit counts the next unit down");
        assert_eq!(n("三千五"), Some(3_500));
        assert_eq!(n("一百二"), Some(120));
        assert_eq!(n("一万零八"), Some(10_008));
        assert_eq!(n("八万一千六百"), Some(81_600));
        assert_eq!(a("同村隋某盖房子跟我借了四万八，写了欠条"), [48_000], "money as people say it");
        assert_eq!(a("先后在我这儿拿了十二万，说半年还"), [120_000]);
        assert_eq!(a("欠我工钱2万多"), [20_000]);
        assert_eq!(a("赔了三万块"), [30_000]);
        assert_eq!(a("借了三千亩地"), Vec::<u32>::new(), "land is no money");
        assert_eq!(a("还有四万八千人"), Vec::<u32>::new());
        assert_eq!(a("村里有一万二"), Vec::<u32>::new(), "no money word, no sum");
        assert_eq!(a("借了一万一直没还"), [10_000], "一直 is no digit");
        assert_eq!(a("借了1万8，写了欠条"), [18_000], "digits abbreviate as numerals do");
        assert_eq!(a("欠了3千5"), [3_500]);
        assert_eq!(a("拉来一百块砖"), Vec::<u32>::new(), "bricks are no money");
        assert_eq!(a("还有一千多辆车没处停"), Vec::<u32>::new(), "还 as still is no repayment");
        assert_eq!(a("还了三万块钱"), [30_000]);
        assert_eq!(n("三千一平"), Some(3_000), "per square metre");
        assert_eq!(n("一万一直"), Some(10_000));
    }

    fn s(v: &[char]) -> String {
        v.iter().collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn folding_and_numerals() {
        assert_eq!(s(&normalize("（２０２４）吉０４０２")), "(2024)吉0402");
        assert_eq!(s(&normalize("三组、十三度，五万元；三万五千元")), "3组 13度 50000元 35000元");
        assert_eq!(s(&normalize("二〇二三年度，一直")), "二〇二三年度 一直");
        assert_eq!(cn_value(&['十', '二']), Some(12));
        assert_eq!(cn_value(&['一', '百', '零', '五']), Some(105));
        assert_eq!(cn_value(&['四', '万', '八']), Some(48_000));
        assert_eq!(s(&normalize("四十六平，二百五十户，一百二十米")), "四十六平 250户 120米");
    }

    #[test]
    fn boilerplate_and_admin_names_go() {
        let mut c = normalize("市民来电反映龙山区南康街道义宁街12号门前下水井塌陷，请尽快处理。");
        strip_boilerplate(&mut c);
        strip_admin(&mut c);
        assert_eq!(s(&c), "义宁街12号 下水井塌陷");
        let mut c = normalize("寿山镇永安村3组，已报镇农业站核实");
        strip_admin(&mut c);
        assert_eq!(s(&c), "永安村3组 已报镇农业站核实");
        let mut c = normalize("康宁社区12号楼，幸福小区");
        strip_admin(&mut c);
        assert_eq!(s(&c), "康宁社区12号楼 幸福小区");
    }

    #[test]
    fn identifiers_are_lifted_out() {
        let mut c = normalize("楼上漏水\n案号：（2024）吉0402民诉前调122号，电话13904371234，事件W0412-20220712-0003");
        assert_eq!(take_case_numbers(&mut c), vec!["(2024)吉0402民诉前调122号"]);
        assert_eq!(take_event_ids_and_long_numbers(&mut c), vec!["w0412-20220712-0003"]);
        assert!(!s(&c).contains("1390437"));
        assert_eq!(amounts(&normalize("借款五万元，标的额：50000.00 CNY，另欠3万余元")), vec![50000, 30000]);
        assert_eq!(names(&normalize("康宁社区马某反映楼上钱某某家漏水，王女士来电")), vec!["马某", "钱某某", "王女士"]);
        assert!(names(&normalize("在某建筑公司务工")).is_empty());
    }

    #[test]
    fn shingles_are_bigrams_within_segments() {
        assert_eq!(shingles(&normalize("漏水")).len(), 3);
        assert_eq!(shingles(&normalize("漏水，漏水")).len(), 3);
        assert_eq!(shingles(&normalize("漏 水")).len(), 2);
        assert_eq!(shingles(&normalize("的了")).len(), 1);
        assert!(shingles(&[]).is_empty());
    }
}
