//! Chinese phone numbers, normalized to E.164 (`+8613904371234`, `+864373221234`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A phone number in E.164 form. Its `Debug` and `Display` are masked: a
/// citizen's number reaches the platform (through `Serialize`), never a log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid Chinese mobile or landline number ({masked})")]
pub struct InvalidPhone {
    masked: String,
}

impl Phone {
    /// Accepts what callers dial in: `13904371234`, `+86 139 0437 1234`,
    /// `0086-13904371234`, `0437-3221234`, `04373221234`, `+86 437 3221234`.
    pub fn parse(input: &str) -> Result<Phone, InvalidPhone> {
        let invalid = || InvalidPhone { masked: crate::pii::mask_digits(input) };
        let mut digits = String::with_capacity(input.len());
        let trimmed = input.trim();
        let (international, rest) = if let Some(r) = trimmed.strip_prefix('+') {
            (true, r)
        } else if let Some(r) = trimmed.strip_prefix("00") {
            (true, r)
        } else {
            (false, trimmed)
        };
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(invalid()),
            }
        }
        let national = if international { digits.strip_prefix("86").ok_or_else(invalid)?.to_string() } else { digits };
        // Mobile: 11 digits starting with 1[3-9].
        if national.len() == 11 && national.starts_with('1') && matches!(national.as_bytes()[1], b'3'..=b'9') {
            return Ok(Phone(format!("+86{national}")));
        }
        // Landline: trunk prefix 0 (dropped in E.164), area code of 2–3 digits
        // (10, 2x, or 3 digits starting 3–9), subscriber number of 7–8 digits.
        let landline = national.strip_prefix('0').unwrap_or(if international { &national } else { "" });
        if !landline.is_empty() && !landline.starts_with('0') && !landline.starts_with('1')
            || landline.starts_with("10")
        {
            let area_len = if landline.starts_with("10") || landline.starts_with('2') { 2 } else { 3 };
            let subscriber = landline.len().saturating_sub(area_len);
            if (7..=8).contains(&subscriber) && landline.len() > area_len {
                return Ok(Phone(format!("+86{landline}")));
            }
        }
        Err(invalid())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", crate::pii::mask_digits(&self.0))
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::pii::mask_digits(&self.0))
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Phone::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_what_callers_dial() {
        for (input, e164) in [
            ("13904371234", "+8613904371234"),
            ("+8613904371234", "+8613904371234"),
            ("+86 139 0437 1234", "+8613904371234"),
            ("0086-139-0437-1234", "+8613904371234"),
            ("0437-3221234", "+864373221234"),
            ("04373221234", "+864373221234"),
            ("010-12345678", "+861012345678"),
            ("+86 437 3221234", "+864373221234"),
        ] {
            assert_eq!(Phone::parse(input).unwrap().as_str(), e164, "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for input in
            ["12345", "", "12904371234", "+1 415 555 1234", "139043712345", "0437-32", "tel:139", "00000000000"]
        {
            assert!(Phone::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn never_shows_the_number() {
        let p = Phone::parse("13904371234").unwrap();
        assert!(!format!("{p:?} {p}").contains("04371234"));
        let e = Phone::parse("1390437123x").unwrap_err().to_string();
        assert!(!e.contains("0437123"), "{e}");
    }
}
