//! Helpers both providers' wire code uses: reading `Retry-After` and `Date`.

use std::time::{Duration, SystemTime};

use http::header;

use crate::HttpResponse;

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
