//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`; not part of
//! the API otherwise): the checks the server makes on a request before it touches any
//! state, as one pure function over plain bytes.

use http::header::{HeaderName, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Uri};
use offline_proto::sixpan::{
    AddRequest, DeleteRequest, EndpointId, LoginRequest, PageRequest, ParseTorrentRequest,
    ParseUrlRequest, StoreTokenRequest, UserInfoRequest,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::openapi;

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
        return sixpan(&method, path, &map, body);
    }
    crate::server::check_request(&method, path, query, &map, body)
        .map_err(|(code, message)| format!("code {code}: {message}"))
}

/// The 6pan half: the API calls' description checks and typed parse, and the storage
/// calls' path, header and body checks.
fn sixpan(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let described = &*openapi::SIXPAN;
    if let Some(below) = path.strip_prefix("/wcs") {
        let endpoint = EndpointId::from_route(method, below)
            .ok_or_else(|| format!("no storage call {method} {below}"))?;
        described.check_path(method, below)?;
        described.check_headers(method, endpoint.path(), headers)?;
        if endpoint == EndpointId::MakeFile {
            let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            let content_type = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain");
            described.check_body_as(method, endpoint.path(), content_type, &Value::from(text))?;
        }
        return Ok(());
    }
    let endpoint =
        EndpointId::from_route(method, path).ok_or_else(|| format!("no API {method} {path}"))?;
    described.check_headers(method, path, headers)?;
    match endpoint {
        EndpointId::Login => api::<LoginRequest>(endpoint, body),
        EndpointId::UserInfo => api::<UserInfoRequest>(endpoint, body),
        EndpointId::StoreToken => api::<StoreTokenRequest>(endpoint, body),
        EndpointId::ParseUrl => api::<ParseUrlRequest>(endpoint, body),
        EndpointId::ParseTorrent => api::<ParseTorrentRequest>(endpoint, body),
        EndpointId::AddTasks => api::<AddRequest>(endpoint, body),
        EndpointId::ListTasks => api::<PageRequest>(endpoint, body),
        EndpointId::DeleteTasks => api::<DeleteRequest>(endpoint, body),
        // Storage calls live under `/wcs`; not reached.
        _ => Err(format!("{path} is a storage call")),
    }
}

/// An API call's body: JSON, read as the request type, validated, and checked against
/// the description.
fn api<T>(endpoint: EndpointId, body: &[u8]) -> Result<(), String>
where
    T: DeserializeOwned + offline_proto::sixpan::api::Endpoint,
{
    let json: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let request: T = serde_path_to_error::deserialize(&json).map_err(|e| e.to_string())?;
    request.validate().map_err(|e| e.to_string())?;
    openapi::SIXPAN.check_body(&endpoint.method(), endpoint.path(), &json)
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
