//! Helpers shared by the integration tests: reading raw HTTP/1.1 responses, and the
//! proptest configuration.
//!
//! Each test binary uses some of them, so the rest would be dead code there.
#![allow(dead_code)]

pub(crate) mod proptest_config;

use bytes::Bytes;
use offline_proto::HttpResponse;

/// Parses `HTTP/1.1 <code> <reason>`, `name: value` lines and a blank line (CRLF or
/// LF line ends); everything after the blank line is the body, byte for byte.
pub(crate) fn parse_raw_response(raw: &[u8]) -> HttpResponse {
    let raw = skip_comments(raw);
    let end_of_head = |sep: &[u8]| {
        raw.windows(sep.len())
            .position(|w| w == sep)
            .map(|i| (i, i + sep.len()))
    };
    let (head_end, body_start) = [end_of_head(b"\r\n\r\n"), end_of_head(b"\n\n")]
        .into_iter()
        .flatten()
        .min()
        .expect("a raw response has a blank line after its headers");
    let head = std::str::from_utf8(&raw[..head_end]).expect("the head is UTF-8");
    let mut lines = head.lines();
    let status_line = lines.next().expect("a status line");
    let mut words = status_line.split_whitespace();
    assert!(
        words.next().is_some_and(|v| v.starts_with("HTTP/")),
        "bad status line {status_line:?}"
    );
    let status: u16 = words
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut builder = http::Response::builder().status(status);
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header line {line:?}"));
        builder = builder.header(name.trim(), value.trim());
    }
    builder
        .body(Bytes::copy_from_slice(&raw[body_start..]))
        .unwrap()
}

/// `raw` without its leading `#` comment lines.
pub(crate) fn skip_comments(mut raw: &[u8]) -> &[u8] {
    while raw.starts_with(b"#") {
        let end = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| i + 1);
        raw = &raw[end..];
    }
    raw
}
