//! Reading request bodies (bounded in size and in time) and JSON bodies into the
//! generated wire types, for both providers; each turns the errors into its own answer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::GRACE;

/// Bytes of an oversized body read and thrown away so the client sees the answer.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How long a client may take to send a body chunk.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a whole request body (a body trickled a byte
/// at a time, each within the 30 s a chunk may take, is cut off here): 120 s, room for the
/// largest body the emulator accepts (a 4 MiB chunk) at 35 KB/s.
pub const BODY_DEADLINE: Duration = Duration::from_secs(120);

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the limit (in bytes).
    TooLarge(usize),
    /// The client stopped sending, or the connection failed.
    Read(String),
}

impl BodyError {
    /// The message of the error answer.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::TooLarge(limit) => format!("request body larger than {limit} bytes"),
            Self::Read(message) => message.clone(),
        }
    }
}

/// The `Content-Length` header's value, if present and a number.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Reads a request body of at most `limit` bytes. An oversized body is read on (up to
/// [`DRAIN_LIMIT`]) and thrown away, so that the client gets to read the answer.
pub(crate) async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    let declared = content_length(req.headers());
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body).await;
        return Err(BodyError::TooLarge(limit));
    }
    let mut buf = BytesMut::new();
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
    loop {
        let due = deadline.min(tokio::time::Instant::now() + BODY_TIMEOUT);
        match tokio::time::timeout_at(due, body.frame()).await {
            Err(_) => {
                return Err(BodyError::Read(format!(
                    "timed out reading the request body (each chunk is due within {} s, the whole body within {} s)",
                    BODY_TIMEOUT.as_secs(),
                    BODY_DEADLINE.as_secs()
                )))
            }
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => {
                return Err(BodyError::Read(format!(
                    "cannot read the request body: {e}"
                )))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        drain(body).await;
                        return Err(BodyError::TooLarge(limit));
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

async fn drain(mut body: Incoming) {
    let mut seen = 0usize;
    let work = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(GRACE, work).await;
}

/// `what at `path`: error`, or `what: error` at the root.
pub(crate) fn shape_error(what: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path.is_empty() || path == "." {
        format!("{what}: {}", e.inner())
    } else {
        format!("{what} at `{path}`: {}", e.inner())
    }
}

/// Reads a JSON body as `T` (a generated wire type), keeping the JSON for the
/// description check. The message says where the shape is wrong.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<(T, Value), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("request body is empty; JSON expected".to_owned());
    }
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))?;
    let typed = serde_path_to_error::deserialize(&json)
        .map_err(|e| shape_error("invalid request body", &e))?;
    Ok((typed, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies() {
        let (n, json): (u32, _) = parse_json(b" 7 ").unwrap();
        assert_eq!((n, json), (7, Value::from(7)));
        assert_eq!(
            parse_json::<u32>(b"  ").unwrap_err(),
            "request body is empty; JSON expected"
        );
        assert!(parse_json::<u32>(b"{")
            .unwrap_err()
            .starts_with("invalid request body: "));
        #[derive(Debug, serde::Deserialize)]
        struct S {
            #[allow(dead_code)]
            a: u32,
        }
        let e = parse_json::<S>(br#"{"a": "x"}"#).unwrap_err();
        assert!(e.starts_with("invalid request body at `a`: "), "{e}");
        assert_eq!(
            BodyError::TooLarge(5).message(),
            "request body larger than 5 bytes"
        );
    }
}
