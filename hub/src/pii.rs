//! Masking of personal data for logs, error messages and the screen.
//!
//! Phone numbers, ID numbers, names and home addresses go to the platform in
//! tickets and nowhere else. Anything that may end up in a log line, an
//! error message or on an operator's screen passes through one of these
//! first. Masking goes by field where the field is known (a ticket's
//! reporters and address, an agency's caller fields), and the values found
//! there are masked wherever else they appear in the same text; a pattern
//! ([`scrub`]) is only the net under that, for text whose fields nobody
//! knows (a parser's error message).

use serde_json::Value;

/// The value of a decimal digit, ASCII or full-width (`０`–`９`): agencies'
/// systems send both.
fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

/// `13904371234` → `139****1234`; keeps at most the first 3 and last 4
/// digits and never more than a third of a short string. Only digits (and a
/// leading `+`) are ever kept: whatever else is in the value (a name typed
/// into the phone field, `王女士13904371234`) is masked with the rest.
pub fn mask_digits(s: &str) -> String {
    let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    let n = chars.len();
    if n <= 4 {
        return "*".repeat(n.max(1));
    }
    let (head, tail) = if n >= 11 { (3, 4) } else { (n / 4, n / 4) };
    let mut out = String::with_capacity(n);
    out.extend(chars[..head].iter().map(|&c| if digit(c).is_some() || c == '+' { c } else { '*' }));
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(chars[n - tail..].iter().map(|&c| if digit(c).is_some() { c } else { '*' }));
    out
}

/// `220402198001011230` → `220402********1230`: the region stays, the birth
/// date goes. Only digits and the check letter X are kept.
pub fn mask_id(s: &str) -> String {
    let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    let n = chars.len();
    if n < 10 {
        return "*".repeat(n.max(1));
    }
    let keep = |&c: &char| if digit(c).is_some() || matches!(c, 'X' | 'x') { c } else { '*' };
    let mut out = String::with_capacity(n);
    out.extend(chars[..6].iter().map(keep));
    out.extend(std::iter::repeat_n('*', n - 10));
    out.extend(chars[n - 4..].iter().map(keep));
    out
}

/// `王小明` → `王**`: the family name stays, which is as much as an
/// operator needs to tell two callers apart in a log.
pub fn mask_name(s: &str) -> String {
    let mut chars = s.trim().chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count();
            let mut out = String::from(first);
            out.extend(std::iter::repeat_n('*', rest.max(1)));
            out
        }
    }
}

/// `康宁社区5号楼3单元502` → `康宁社区**********`: the place up to its first
/// number stays (street, community: what an operator needs to find the
/// matter), the house, building and flat go. An address without a number
/// is a public place (`义宁街与康宁路交汇处`) and stays.
pub fn mask_address(s: &str) -> String {
    let numeral = |c: char| digit(c).is_some() || "一二三四五六七八九十百零〇".contains(c);
    match s.char_indices().find(|&(_, c)| numeral(c)) {
        None => s.to_string(),
        Some((at, _)) => {
            let mut out = s[..at].to_string();
            out.extend(std::iter::repeat_n('*', s[at..].chars().count()));
            out
        }
    }
}

/// What separates the groups of one number as people write it:
/// `139 0437 1234`, `139-0437-1234`, full-width space or hyphen.
fn separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '\u{3000}' | '－' | '.')
}

/// Masks every phone or ID number in free text, such as a parser's error
/// message that quotes the value it choked on: a run of 7 or more digits,
/// ASCII or full-width, also when written in groups of 3 or more digits
/// with a space or hyphen between them (`139 0437 1234`), and an ID
/// number's check letter X. Dates and times (`2024-07-15 09:40`) have
/// shorter groups and stay.
pub fn scrub(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let group_end = |from: usize| (from..chars.len()).find(|&k| digit(chars[k]).is_none()).unwrap_or(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i]).is_none() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = group_end(i);
        let mut last_group = end - i;
        // Join the next group across one separator when the run starts the
        // way a phone or ID number is written (`139`, `0431`, `220402`) and
        // the next group has 3+ digits. `LY12345-20240715` is no phone.
        let joins = matches!(last_group, 3 | 4 | 6);
        while joins
            && last_group >= 3
            && end + 1 < chars.len()
            && separator(chars[end])
            && digit(chars[end + 1]).is_some()
            && group_end(end + 1) - (end + 1) >= 3
        {
            let next = group_end(end + 1);
            last_group = next - (end + 1);
            end = next;
        }
        let mut digits: String =
            chars[i..end].iter().filter_map(|&c| digit(c)).filter_map(|d| char::from_digit(d, 10)).collect();
        if digits.len() >= 7 {
            if end < chars.len() && matches!(chars[end], 'X' | 'x') {
                digits.push('X');
                end += 1;
            }
            out.push_str(&mask_digits(&digits));
        } else {
            out.extend(&chars[i..end]);
        }
        i = end;
    }
    out
}

/// Hides credentials in a URL before it is printed or logged: the password
/// of `user:password@`, and query parameters that carry a secret
/// (`?password=`, `sslpassword`, `token`, `secret`, …).
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &base[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    if let Some(query) = query {
        let secret = |key: &str| {
            let k = key.to_ascii_lowercase();
            ["pass", "pwd", "secret", "token", "key", "auth", "credential"].iter().any(|s| k.contains(s))
        };
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if secret(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// The personal values of one ticket (or one agency record), each with its
/// masked form: masks the fields they are in, and the same values wherever
/// they are quoted (a description that repeats the caller's name, a
/// platform's answer that quotes the address).
#[derive(Debug, Default)]
pub struct Masker {
    /// (value, masked), longest value first so that `王小明` is masked
    /// before a `王` alone could be.
    known: Vec<(String, String)>,
}

impl Masker {
    /// The personal fields of a ticket as the platform receives it (or a
    /// draft): the reporters' names, phones and ID numbers, the address and
    /// who evaluated the result.
    pub fn of_ticket(ticket: &Value) -> Masker {
        let mut m = Masker::default();
        if let Some(reporters) = ticket.get("reporters").and_then(Value::as_array) {
            for r in reporters {
                m.learn(r.get("name"), mask_name);
                m.learn(r.get("phone"), mask_digits);
                m.learn(r.get("idNumber"), mask_id);
            }
        }
        m.learn(ticket.get("address"), mask_address);
        m.learn(ticket.get("evaluation").and_then(|e| e.get("by")), mask_name);
        m.sort();
        m
    }

    fn learn(&mut self, value: Option<&Value>, mask: fn(&str) -> String) {
        if let Some(v) = value.and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()) {
            self.add(v, mask(v));
        }
    }

    fn add(&mut self, value: &str, masked: String) {
        if value != masked && !self.known.iter().any(|(k, _)| k == value) {
            self.known.push((value.to_string(), masked));
        }
        // A phone is quoted as the caller dialled it, not in E.164.
        if let Some(national) = value.strip_prefix("+86").filter(|n| n.len() >= 7) {
            let masked = mask_digits(national);
            if !self.known.iter().any(|(k, _)| k == national) {
                self.known.push((national.to_string(), masked));
            }
        }
    }

    fn sort(&mut self) {
        self.known.sort_by_key(|(k, _)| std::cmp::Reverse(k.chars().count()));
    }

    /// Free text with every known value masked, then [`scrub`]bed, and
    /// any building, unit or flat number ([`mask_houses`]) masked: a home
    /// address is quoted in pieces as often as whole.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, masked) in &self.known {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), masked);
            }
        }
        mask_houses(&scrub(&out)).into_owned()
    }

    /// Every string in `value` through [`Masker::text`]: the known fields
    /// become their masked form, and so does any quote of them.
    pub fn apply(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.apply(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.apply(v)),
            _ => {}
        }
    }
}

/// A building, unit or flat number anywhere in the text (3号楼, 2单元,
/// 502室, 5栋), with what follows it (`3号楼2单元301`, `5栋-2-402`): the
/// house part of some address, whoever's it is.
static HOUSE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    let n = "[0-9０-９一二三四五六七八九十百千零〇两]+";
    regex::Regex::new(&format!(
        r"{n}\s*(?:号楼|号院|单元|栋|幢|室)(?:[\s\-－]*{n}\s*(?:号楼|号院|单元|栋|幢|室|户|号|层|楼)?)*"
    ))
    .expect("a valid pattern")
});

/// `text` with every building, unit and flat number masked (`***`).
pub fn mask_houses(text: &str) -> std::borrow::Cow<'_, str> {
    HOUSE.replace_all(text, "***")
}

/// A ticket (JSON, as the platform receives it) with its personal data
/// masked, by field and wherever those values are quoted.
pub fn mask_ticket(ticket: &mut Value) {
    Masker::of_ticket(ticket).apply(ticket);
}

/// How an agency's record names a personal field, whatever its format:
/// the contracts' keys (`callerName`, `callerNumber`, `xm`, `lxdh`, `sfzh`,
/// `Name`, `Phone`, `IdNo`, `address`) and the usual English ones.
fn personal_key(key: &str) -> Option<fn(&str) -> String> {
    let k = key.to_ascii_lowercase();
    let is = |words: &[&str]| words.iter().any(|w| k.contains(w));
    if is(&["idno", "idnumber", "idcard", "sfzh"]) {
        Some(mask_id)
    } else if is(&["phone", "mobile", "callernumber", "lxdh", "telephone"]) || k == "tel" {
        Some(mask_digits)
    } else if is(&["address", "addr"]) || k == "dz" {
        Some(mask_address)
    } else if k == "name" || k == "xm" || is(&["callername", "personname", "fullname", "partyname"]) {
        Some(mask_name)
    } else {
        None
    }
}

/// An agency's record as received (JSON or XML, maybe not even that), for
/// the screen: the personal fields found by their names are masked, and so
/// are their values wherever else they appear; a canonical record's ticket
/// by its fields. What cannot be parsed is still [`scrub`]bed.
pub fn mask_payload(text: &str) -> String {
    let mut m = Masker::default();
    if let Ok(mut json) = serde_json::from_str::<Value>(text) {
        if let Some(ticket) = json.get("ticket") {
            m = Masker::of_ticket(ticket);
        }
        collect_json(&json, &mut m);
        m.sort();
        m.apply(&mut json);
        return serde_json::to_string_pretty(&json).unwrap_or_else(|_| m.text(text));
    }
    // XML, or what is left of it: <Name>…</Name>, <Phone>…</Phone>.
    let element =
        regex::Regex::new(r"<([A-Za-z_][\w.-]*)(?:\s[^>]*)?>([^<]+)</([A-Za-z_][\w.-]*)>").expect("a valid pattern");
    for c in element.captures_iter(text) {
        if c[1] == c[3]
            && let Some(mask) = personal_key(&c[1])
        {
            let value = c[2].trim();
            if !value.is_empty() {
                m.add(value, mask(value));
            }
        }
    }
    m.sort();
    m.text(text)
}

fn collect_json(v: &Value, m: &mut Masker) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (personal_key(k), v) {
                    (Some(mask), Value::String(s)) if !s.trim().is_empty() => m.add(s.trim(), mask(s.trim())),
                    _ => collect_json(v, m),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_json(v, m)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_address_quoted_in_pieces_is_masked_for_a_viewer() {
        let mut ticket = serde_json::json!({
            "address": "龙山区南康街道康宁社区5号楼3单元502",
            "description": "康宁社区5号楼3单元502暖气不热，对门3号楼2单元301也一样，七栋-2-402楼上漏水，涉及40户",
        });
        mask_ticket(&mut ticket);
        let d = ticket["description"].as_str().unwrap();
        for house in ["5号楼", "3单元502", "2单元301", "七栋-2-402"] {
            assert!(!d.contains(house), "{house} in {d}");
        }
        assert!(d.contains("康宁社区") && d.contains("40户"), "the place and the count stay: {d}");
    }

    #[test]
    fn masks() {
        assert_eq!(mask_digits("13904371234"), "139****1234");
        assert_eq!(mask_digits("+8613904371234"), "+86*******1234");
        assert_eq!(mask_digits("12345"), "1***5");
        assert_eq!(mask_id("220402198001011230"), "220402********1230");
        assert_eq!(mask_name("王女士"), "王**");
        assert_eq!(mask_name("张"), "张*");
        assert_eq!(mask_address("康宁社区5号楼3单元502"), "康宁社区*********");
        assert_eq!(mask_address("义宁街与康宁路交汇处"), "义宁街与康宁路交汇处");
    }

    /// A name typed into the phone field came out as `王女士*******1234`
    /// in the invalid-phone warning.
    #[test]
    fn a_masked_number_keeps_only_digits() {
        let shown = mask_digits("王女士13904371234");
        assert!(!shown.contains('王') && shown.ends_with("1234"), "{shown}");
        let shown = mask_id("王小明220402198001011230");
        assert!(!shown.contains('王'), "{shown}");
        let invalid = crate::ticket::Phone::parse("王女士13904371234").unwrap_err().to_string();
        assert!(!invalid.contains('王'), "{invalid}");
    }

    #[test]
    fn scrubs_long_digit_runs() {
        let s = scrub("invalid type: integer `13904371234`, expected a string at line 3 column 20");
        assert!(!s.contains("04371234"), "{s}");
        assert!(s.contains("line 3 column 20"));
        assert!(!scrub("id 22040219800101123X").contains("19800101"));
    }

    #[test]
    fn scrubs_spaced_and_full_width_numbers_but_not_dates() {
        for (text, hidden) in [
            ("来电 139 0437 1234 反映", "0437"),
            ("来电 +86 139-0437-1234", "0437"),
            ("电话１３９０４３７１２３４", "０４３７"),
            ("电话１３９　０４３７　１２３４", "０４３７"),
            ("身份证 220402 19800101 123X", "19800101"),
        ] {
            let s = scrub(text);
            assert!(!s.contains(hidden), "{text} → {s}");
        }
        assert_eq!(scrub("`$.callTime` = `2024-07-15 09:40:00`"), "`$.callTime` = `2024-07-15 09:40:00`");
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(redact_url("postgres://hub:s3cret@db/hub"), "postgres://hub:***@db/hub");
        assert_eq!(redact_url("sqlite://hub.db"), "sqlite://hub.db");
        assert_eq!(
            redact_url("postgres://db/hub?user=hub&password=s3cret&sslmode=require"),
            "postgres://db/hub?user=hub&password=***&sslmode=require"
        );
        assert!(!redact_url("postgres://h:pw@db/x?sslpassword=k3y").contains("k3y"));
    }

    /// The CLI masked only runs of 7+ ASCII digits: names, addresses,
    /// spaced and full-width numbers showed without --reveal.
    #[test]
    fn a_ticket_is_masked_by_field_and_wherever_its_values_are_quoted() {
        let mut t = serde_json::json!({
            "title": "【供暖】王小明反映康宁社区5号楼3单元502暖气不热",
            "description": "来电人王小明（139 0437 1234，１３９０４３７１２３４）称康宁社区5号楼3单元502暖气不热。",
            "address": "康宁社区5号楼3单元502",
            "reporters": [{"channel": "hotline", "name": "王小明", "phone": "+8613904371234",
                           "idNumber": "220402198001011230", "anonymous": false}],
            "region": {"code": "220402", "name": "龙山区"},
        });
        mask_ticket(&mut t);
        let shown = t.to_string();
        for personal in ["王小明", "5号楼3单元502", "0437", "０４３７", "19800101"] {
            assert!(!shown.contains(personal), "{personal}: {shown}");
        }
        assert_eq!(t["reporters"][0]["name"], "王**");
        assert_eq!(t["region"]["name"], "龙山区");
        assert!(t["address"].as_str().unwrap().starts_with("康宁社区"), "{shown}");
    }

    #[test]
    fn an_agency_record_is_masked_by_its_field_names() {
        let json = r#"{"orderNo":"LY12345-20240715-000001","callerName":"李建国","callerNumber":"139 0437 1234",
            "address":"义宁街12号","content":"李建国称义宁街12号门前下水井塌陷"}"#;
        let shown = mask_payload(json);
        for personal in ["李建国", "义宁街12号", "0437"] {
            assert!(!shown.contains(personal), "{personal}: {shown}");
        }
        assert!(shown.contains("LY12345-") && shown.contains("下水井塌陷"), "{shown}");
        let xml = "<Party role=\"applicant\"><Name>赵桂芝</Name><Phone>13904371234</Phone><IdNo>220402198001011230</IdNo><Address>康宁社区5号楼</Address></Party><Claim>赵桂芝要求</Claim>";
        let shown = mask_payload(xml);
        for personal in ["赵桂芝", "0437", "19800101", "5号楼"] {
            assert!(!shown.contains(personal), "{personal}: {shown}");
        }
    }
}
