//! Masking of personal data for logs and error messages.
//!
//! Phone numbers, ID numbers and names go to the platform in tickets and
//! nowhere else. Anything that may end up in a log line or an error message
//! passes through one of these first.

/// `13904371234` → `139****1234`; keeps at most the first 3 and last 4 digits
/// and never more than a third of a short string.
pub fn mask_digits(s: &str) -> String {
    let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    let n = chars.len();
    if n <= 4 {
        return "*".repeat(n.max(1));
    }
    let (head, tail) = if n >= 11 { (3, 4) } else { (n / 4, n / 4) };
    let mut out = String::with_capacity(n);
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

/// `220402198001011230` → `220402********1230`: the region stays, the birth date goes.
pub fn mask_id(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n < 10 {
        return "*".repeat(n.max(1));
    }
    let mut out = String::with_capacity(n);
    out.extend(&chars[..6]);
    out.extend(std::iter::repeat_n('*', n - 10));
    out.extend(&chars[n - 4..]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_digits("13904371234"), "139****1234");
        assert_eq!(mask_digits("+8613904371234"), "+86*******1234");
        assert_eq!(mask_digits("12345"), "1***5");
        assert_eq!(mask_id("220402198001011230"), "220402********1230");
        assert_eq!(mask_name("王女士"), "王**");
        assert_eq!(mask_name("张"), "张*");
    }
}

/// Masks every run of 7 or more digits (phone and ID numbers) in free text,
/// such as a parser's error message that quotes the value it choked on.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().filter(char::is_ascii_digit).count() >= 7 {
            out.push_str(&mask_digits(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (!run.is_empty() && matches!(c, 'X' | 'x')) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod scrub_tests {
    #[test]
    fn scrubs_long_digit_runs() {
        let s = super::scrub("invalid type: integer `13904371234`, expected a string at line 3 column 20");
        assert!(!s.contains("04371234"), "{s}");
        assert!(s.contains("line 3 column 20"));
        assert!(!super::scrub("id 22040219800101123X").contains("19800101"));
    }
}
