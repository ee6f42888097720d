//! What the store writes as text, made storable whatever came in.
//!
//! Reasons quote what a parser choked on, and that can be anything the
//! source sent: PostgreSQL refuses U+0000 in a `TEXT` value, and a long
//! quote makes a row nobody reads. Every free text the store writes from
//! input (quarantine reasons, warnings, transport metadata, the declared
//! encoding) goes through [`clean`] once, here, so no caller can forget it.

use std::borrow::Cow;

/// Reasons and warnings are kept to this many characters.
pub const MAX_REASON_CHARS: usize = 2000;

/// Transport metadata and the declared encoding: short in practice; what
/// is longer is cut.
pub const MAX_META_CHARS: usize = 4000;

/// `text` with every control character but newline and tab written out as
/// `\u{…}` (readable, and nothing a database or a terminal trips on), cut
/// at `max_chars` characters with an ellipsis.
pub fn clean(text: &str, max_chars: usize) -> Cow<'_, str> {
    let fine = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(fine) && text.len() <= max_chars {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    for (chars, c) in text.chars().enumerate() {
        if chars >= max_chars {
            out.push('…');
            break;
        }
        if fine(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_out_and_length_is_bounded() {
        assert!(matches!(clean("工单 LY12345\n第二行", 100), Cow::Borrowed(_)));
        assert_eq!(clean("LY\u{0}12\u{1b}[0m", 100), "LY\\u{0}12\\u{1b}[0m");
        let long = "井".repeat(50);
        let cut = clean(&long, 10);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
        assert!(!clean(&"\u{0}".repeat(10_000), 100).contains('\u{0}'));
    }
}
