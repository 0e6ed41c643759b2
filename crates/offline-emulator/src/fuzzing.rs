//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`; not part of
//! the API otherwise): the checks the server makes on a request before it touches any
//! state, as one pure function over plain bytes.

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, Uri};

/// Checks a request the way the emulator does before it looks at tokens, rate limits
/// or tasks: routing, the `Platform` header and the description's header, path, query
/// and body checks, the typed parse of the body and `offline-proto`'s validation.
///
/// `method` and `target` (`/path?query`) are as on the request line; header names or
/// values HTTP does not allow are dropped, as hyper would refuse them before the
/// emulator sees them. Never panics (that is what the fuzz target checks).
///
/// # Errors
///
/// Why the request is refused, in words.
pub fn validate_request(
    method: &str,
    target: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<(), String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let uri: Uri = target
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let path = uri.path();
    let query = uri.query();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    if crate::sixpan::is_sixpan_path(path) {
        return crate::sixpan::check_request(&method, path, &map, body);
    }
    crate::pan123::check_request(&method, path, query, &map, body)
        .map_err(|(code, message)| format!("code {code}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        let headers: &[(&str, &[u8])] = &[
            ("platform", b"open_platform"),
            ("content-type", b"application/json"),
        ];
        validate_request(
            "POST",
            "/api/v1/offline/download",
            headers,
            br#"{"url":"https://example.com/a.bin"}"#,
        )
        .unwrap();
        assert!(validate_request(
            "POST",
            "/api/v1/offline/download",
            headers,
            br#"{"url":"ftp://example.com/a.bin"}"#,
        )
        .is_err());
        validate_request(
            "GET",
            "/api/v1/offline/download/process?taskID=1",
            headers,
            b"",
        )
        .unwrap();
        validate_request(
            "POST",
            "/v2/offline/page",
            &[("content-type", b"application/json")],
            br#"{"page":1,"pageSize":10}"#,
        )
        .unwrap();
        assert!(validate_request("POST", "/v2/offline/page", &[], b"[").is_err());
        assert!(validate_request("BAD METHOD", "/", &[], b"").is_err());
    }
}
