//! Helpers both providers' wire code uses: reading `Retry-After` and `Date`, and the
//! local checks of source URLs and file names.

use std::time::{Duration, SystemTime};

use http::header;

use crate::{HttpResponse, ValidationError};

/// The `Retry-After` of an answer in whole seconds (`Retry-After: 2`), if it has one
/// that is a number. The HTTP-date form is not used by either provider and reads as
/// none. Values are kept as given (up to 2⁶⁴ − 1 s); the call machine caps what it
/// waits for ([`crate::call::MAX_RETRY_AFTER`]).
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The server's clock reading from an answer's `Date` header (IMF-fixdate, RFC 9110
/// §5.6.7: `Tue, 01 Dec 2026 22:33:19 GMT`), if it has a readable one.
pub fn server_date(response: &HttpResponse) -> Option<SystemTime> {
    let value = response.headers().get(header::DATE)?.to_str().ok()?;
    parse_http_date(value)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let dt = time::PrimitiveDateTime::parse(value.trim(), &format).ok()?;
    Some(dt.assume_utc().into())
}

/// Characters the drives refuse in a file name.
const FORBIDDEN_NAME_CHARS: &[char] = &['\\', '/', ':', '*', '?', '"', '<', '>', '|'];

/// The longest file name accepted, in characters.
pub const FILE_NAME_MAX_CHARS: usize = 255;

/// Checks that `url` is an absolute http or https URL with a host, and returns it parsed.
///
/// # Errors
///
/// [`ValidationError::Empty`], [`ValidationError::InvalidUrl`] or
/// [`ValidationError::UnsupportedScheme`].
pub fn http_url(field: &'static str, url: &str) -> Result<url::Url, ValidationError> {
    if url.trim().is_empty() {
        return Err(ValidationError::Empty(field));
    }
    let parsed = url::Url::parse(url).map_err(|e| ValidationError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ValidationError::UnsupportedScheme {
            url: url.to_owned(),
            scheme: parsed.scheme().to_owned(),
            allowed: "only http and https URLs can be downloaded offline",
        });
    }
    if parsed.host().is_none() {
        return Err(ValidationError::InvalidUrl {
            url: url.to_owned(),
            reason: "no host".to_owned(),
        });
    }
    Ok(parsed)
}

/// Checks a file name: not empty, at most [`FILE_NAME_MAX_CHARS`] characters, none of
/// `\ / : * ? " < > |`, not only dots or spaces.
///
/// # Errors
///
/// [`ValidationError::InvalidFileName`].
pub fn file_name(name: &str) -> Result<(), ValidationError> {
    let bad = |reason| {
        Err(ValidationError::InvalidFileName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.trim().is_empty() {
        return bad("empty");
    }
    if name.chars().count() > FILE_NAME_MAX_CHARS {
        return bad("longer than 255 characters");
    }
    if name.contains(FORBIDDEN_NAME_CHARS) || name.chars().any(char::is_control) {
        return bad("contains one of \\ / : * ? \" < > | or a control character");
    }
    if name.chars().all(|c| c == '.' || c == ' ') {
        return bad("only dots and spaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
