//! Resident identity numbers (居民身份证号码), GB 11643-1999.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A valid 18-character resident ID number. 15-digit numbers of the first
/// generation are upgraded to 18 (century `19` inserted, check digit added),
/// which is how every registry stores them today. Masked in `Debug`/`Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidIdNumber {
    #[error("an ID number has 18 characters (or 15 digits), this one has {0}")]
    Length(usize),
    #[error("an ID number is digits with an optional final X")]
    Characters,
    #[error("the birth date in the ID number is not a real date")]
    BirthDate,
    #[error("the check digit of the ID number does not match (GB 11643)")]
    CheckDigit,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

fn check_digit(first17: &str) -> char {
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    CHECK[(sum % 11) as usize]
}

impl IdNumber {
    pub fn parse(input: &str) -> Result<IdNumber, InvalidIdNumber> {
        let s = input.trim().to_ascii_uppercase();
        let chars = s.chars().count();
        // Everything below slices by byte: only ASCII may get that far.
        if !s.is_ascii() {
            return Err(InvalidIdNumber::Characters);
        }
        match chars {
            18 => {
                let (body, last) = s.split_at(17);
                if !body.bytes().all(|b| b.is_ascii_digit()) || !(last == "X" || last.as_bytes()[0].is_ascii_digit()) {
                    return Err(InvalidIdNumber::Characters);
                }
                valid_birth(&body[6..14])?;
                if check_digit(body).to_string() != last {
                    return Err(InvalidIdNumber::CheckDigit);
                }
                Ok(IdNumber(s))
            }
            15 => {
                if !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InvalidIdNumber::Characters);
                }
                let body = format!("{}19{}", &s[..6], &s[6..]);
                valid_birth(&body[6..14])?;
                let check = check_digit(&body);
                Ok(IdNumber(format!("{body}{check}")))
            }
            n => Err(InvalidIdNumber::Length(n)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_birth(yyyymmdd: &str) -> Result<(), InvalidIdNumber> {
    let date = NaiveDate::parse_from_str(yyyymmdd, "%Y%m%d").map_err(|_| InvalidIdNumber::BirthDate)?;
    let today = chrono::Utc::now().date_naive();
    if date.year_ce().1 < 1880 || date > today {
        return Err(InvalidIdNumber::BirthDate);
    }
    Ok(())
}

use chrono::Datelike;

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", crate::pii::mask_id(&self.0))
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::pii::mask_id(&self.0))
    }
}

impl Serialize for IdNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IdNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IdNumber::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_numbers_from_the_contracts() {
        for id in ["220402198001011230", "220422196503150042", "220403198811220022", "11010519491231002x"] {
            assert!(IdNumber::parse(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_a_wrong_check_digit() {
        // bad-petition-bad-id.json
        assert_eq!(IdNumber::parse("220402197001011231"), Err(InvalidIdNumber::CheckDigit));
    }

    #[test]
    fn rejects_impossible_birth_dates_and_junk() {
        assert_eq!(IdNumber::parse("220402198013451230"), Err(InvalidIdNumber::BirthDate));
        assert_eq!(IdNumber::parse("22040219800101123"), Err(InvalidIdNumber::Length(17)));
        assert_eq!(IdNumber::parse("22040219800101123Y"), Err(InvalidIdNumber::Characters));
        assert_eq!(IdNumber::parse("２２０４０２１９８００１０１１２３０"), Err(InvalidIdNumber::Characters));
    }

    #[test]
    fn upgrades_fifteen_digit_numbers() {
        let id = IdNumber::parse("220402800101123").unwrap();
        assert_eq!(id.as_str().len(), 18);
        assert!(id.as_str().starts_with("22040219800101123"));
        assert!(IdNumber::parse(id.as_str()).is_ok());
    }

    #[test]
    fn never_shows_the_number() {
        let id = IdNumber::parse("220402198001011230").unwrap();
        assert!(!format!("{id:?} {id}").contains("19800101"));
    }
}
