//! Turning payload bytes into text in the encoding the transport declared.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Decodes strictly: bytes that are not valid in the declared encoding are
/// bad input, never silently replaced. No declaration means UTF-8.
pub fn decode_text<'a>(bytes: &'a [u8], declared: Option<&str>) -> Result<Cow<'a, str>, String> {
    let label = declared.map(str::trim).filter(|l| !l.is_empty()).unwrap_or("utf-8");
    let encoding = Encoding::for_label(label.as_bytes())
        .ok_or_else(|| format!("unsupported content encoding `{label}` (expected utf-8 or gb18030)"))?;
    let bytes =
        if encoding == encoding_rs::UTF_8 { bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes) } else { bytes };
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| format!("the body is not valid {} (declared content encoding `{label}`)", encoding.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_declared_encodings() {
        let (gb, _, _) = encoding_rs::GB18030.encode("下水井塌陷");
        assert_eq!(decode_text(&gb, Some("gb18030")).unwrap(), "下水井塌陷");
        assert_eq!(decode_text("井".as_bytes(), None).unwrap(), "井");
        assert_eq!(decode_text(b"\xEF\xBB\xBF{}", Some("UTF-8")).unwrap(), "{}");
    }

    #[test]
    fn rejects_bytes_that_do_not_decode() {
        let (gb, _, _) = encoding_rs::GB18030.encode("下水井塌陷");
        let err = decode_text(&gb, Some("utf-8")).unwrap_err();
        assert!(err.contains("not valid UTF-8"), "{err}");
        assert!(decode_text(b"x", Some("klingon")).unwrap_err().contains("unsupported"));
    }
}
