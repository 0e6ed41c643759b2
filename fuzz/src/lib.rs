//! Helpers shared by the fuzz targets: reading a fuzz input as an HTTP message.
//!
//! An input is read the way the fixtures' `.http` files are written, so they are the
//! seeds: optional `#` comment lines, a start line (`HTTP/1.1 200 OK` for a response,
//! `POST https://host/path?query` for a request), header lines `name: value`, a blank
//! line, then the body. Anything that does not look like that is all body (a response
//! with status 200, or a request `POST /`). Nothing here can fail: every input is some
//! message, so the decoders see every byte string.

use bytes::Bytes;
use offline_proto::HttpResponse;

/// One line (without its `\n` or `\r\n`) and the rest.
fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let line = &data[..i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (line, &data[i + 1..])
        }
        None => (data, &[]),
    }
}

/// The head's start line, header lines and the body, or `None` when `data` has no
/// start line of the given `kind`.
fn split_message<'a>(
    data: &'a [u8],
    is_start: impl Fn(&[u8]) -> bool,
) -> Option<(&'a [u8], Vec<(&'a [u8], &'a [u8])>, &'a [u8])> {
    let mut rest = data;
    while rest.starts_with(b"#") {
        rest = split_line(rest).1;
    }
    let (start, mut rest) = split_line(rest);
    if !is_start(start) {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        if rest.is_empty() {
            return Some((start, headers, rest));
        }
        let (line, after) = split_line(rest);
        rest = after;
        if line.is_empty() {
            return Some((start, headers, rest));
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let name = &line[..colon];
        let value = line.get(colon + 1..).unwrap_or_default();
        headers.push((name.trim_ascii(), value.trim_ascii()));
    }
}

/// Reads `data` as an HTTP response (see the crate docs). Header names and values that
/// HTTP does not allow are dropped; a status outside 100..=999 becomes 200.
pub fn response(data: &[u8]) -> HttpResponse {
    let Some((start, headers, body)) = split_message(data, |l| l.starts_with(b"HTTP/")) else {
        return http::Response::new(Bytes::copy_from_slice(data));
    };
    let status = std::str::from_utf8(start)
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .unwrap_or(http::StatusCode::OK);
    let mut response = http::Response::new(Bytes::copy_from_slice(body));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// An HTTP request as text: method, target (`/path?query`), headers, body.
pub struct Request<'a> {
    /// The method as written.
    pub method: String,
    /// The path and query (the scheme and host of an absolute URL are dropped).
    pub target: String,
    /// The headers as written.
    pub headers: Vec<(String, &'a [u8])>,
    /// The body.
    pub body: &'a [u8],
}

/// Reads `data` as an HTTP request (see the crate docs).
pub fn request(data: &[u8]) -> Request<'_> {
    let is_start = |l: &[u8]| {
        let text = String::from_utf8_lossy(l);
        let mut words = text.split(' ');
        matches!((words.next(), words.next()), (Some(m), Some(_)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()))
    };
    let Some((start, headers, body)) = split_message(data, is_start) else {
        return Request {
            method: "POST".to_owned(),
            target: "/".to_owned(),
            headers: Vec::new(),
            body: data,
        };
    };
    let start = String::from_utf8_lossy(start);
    let (method, rest) = start.split_once(' ').unwrap_or((&start, "/"));
    // `POST https://open-api.123pan.com/api/v1/...` (the fixtures) or `POST /api/...`;
    // a trailing ` HTTP/1.1` is dropped.
    let url = rest.split(' ').next().unwrap_or_default();
    let target = match url.split_once("://") {
        Some((_, after)) => match after.find('/') {
            Some(i) => after[i..].to_owned(),
            None => "/".to_owned(),
        },
        None => url.to_owned(),
    };
    Request {
        method: method.to_owned(),
        target,
        headers: headers
            .into_iter()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v))
            .collect(),
        body,
    }
}
