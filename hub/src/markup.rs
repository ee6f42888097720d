//! Text written into XML or HTML: the court's `<Outcome>`, Open311's XML,
//! the monthly report's page. One escaper for all of them.

/// `text` for an element or an attribute value: `& < > " '` escaped, and
/// the characters XML 1.0 does not allow or discourages (controls but tab,
/// newline and carriage return; U+FFFE, U+FFFF) left out, so that no
/// ticket's text makes a document ill-formed.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_forbidden_characters() {
        assert_eq!(super::escape(r#"<a href="x">A&B's</a>"#), "&lt;a href=&quot;x&quot;&gt;A&amp;B&apos;s&lt;/a&gt;");
        assert_eq!(super::escape("a\u{0}b\u{7f}c\u{FFFF}\td\n"), "abc\td\n");
    }
}
