//! How lists are asked for a page at a time, and the checks every list's
//! query parameters share: a bad one is answered 400 with a sentence that
//! says what is expected.

use super::{ApiError, MAX_PAGE};

/// Rows per page when the request does not say.
pub const DEFAULT_PAGE: i64 = 50;

/// `per_page`, checked: 1 to [`MAX_PAGE`].
pub fn per_page(asked: Option<&str>) -> Result<i64, ApiError> {
    match asked.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(DEFAULT_PAGE),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("`per_page` must be a number between 1 and {MAX_PAGE}"))),
    }
}

/// An id cursor (`after` or `before`), checked: a positive number.
pub fn id_cursor(asked: Option<&str>, what: &str) -> Result<i64, ApiError> {
    match asked.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::bad_request(format!("`{what}` must be an id from the previous page's `next`"))),
    }
}

/// `true`/`false` in the usual spellings.
pub fn flag(asked: Option<&str>, what: &str) -> Result<Option<bool>, ApiError> {
    match asked.map(str::trim) {
        None | Some("") => Ok(None),
        Some("true" | "1" | "yes") => Ok(Some(true)),
        Some("false" | "0" | "no") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request(format!("`{what}` must be true or false"))),
    }
}

/// A path's numeric id, checked (a word there is a 400, not a 404).
pub fn path_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request(format!("a {what}'s id is a positive number, not `{text}`")))
}

/// `next` for a page of `len` rows out of `limit` asked, ending at `last`.
pub fn next_of(len: usize, limit: i64, last: Option<String>) -> Option<String> {
    if len as i64 >= limit { last } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_paging_parameters_are_refused_with_a_sentence() {
        assert_eq!(per_page(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(per_page(Some(&MAX_PAGE.to_string())).unwrap(), MAX_PAGE);
        assert!(per_page(Some(&(MAX_PAGE + 1).to_string())).unwrap_err().1.contains("between 1 and"));
        assert!(per_page(Some("0")).is_err() && per_page(Some("ten")).is_err());
        assert_eq!(id_cursor(Some("17"), "after").unwrap(), 17);
        assert!(id_cursor(Some("x"), "after").unwrap_err().1.contains("`after`"));
        assert_eq!(flag(Some("true"), "open").unwrap(), Some(true));
        assert!(flag(Some("maybe"), "open").is_err());
        assert!(path_id("abc", "callback").is_err());
        assert_eq!(next_of(2, 2, Some("9".into())), Some("9".into()));
        assert_eq!(next_of(1, 2, Some("9".into())), None);
    }
}
