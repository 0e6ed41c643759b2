//! Encoders and decoders of the storage service calls (Wangsu WCS style), at the
//! `uploadUrl` that `/v1/store/token` hands out.
//!
//! Facts: `docs/wire-notes.md` (6pan section, "Upload to the storage service"), seed `001`
//! and `fixtures/openapi/6pan.yaml` (operations `upload`, `makeBlock`, `putChunk`,
//! `makeFile`). Four calls, all `POST`, answered with plain JSON (not the API host's
//! envelope):
//!
//! | call | request | answer |
//! |---|---|---|
//! | [`upload_request`] | `{url}/file/upload`, `multipart/form-data`: `token`, `key`?, `mimeType`?, `file` last | [`FileStored`] `{hash, key}` |
//! | [`make_block_request`] | `{url}/mkblk/{blockSize}/{blockIndex}`, the block's first chunk | [`ChunkStored`] `{ctx, offset}` |
//! | [`put_chunk_request`] | `{url}/bput/{ctx}/{offset}`, the next chunk of the block | [`ChunkStored`] |
//! | [`make_file_request`] | `{url}/mkfile/{fileSize}`, the last `ctx` of every block joined by `,` | [`FileStored`] |
//!
//! The three block calls carry `Authorization: <upload token>` (the token itself, no
//! `Bearer`; the header value is marked sensitive) and `UploadBatch: <one UUID per
//! file>` ([`new_batch_id`]); the form upload carries the token as a form field.
//!
//! **The upload URL.** Seed 001 shows `uploadUrl` both as a bare origin
//! (`http://upload-vod-v1.6pan.cn`) and with the form path already on it
//! (`http://xxx.xxx.com/file/upload`). Every encoder here goes through
//! [`storage_base`], which strips one trailing `/file/upload` (and trailing slashes),
//! so both forms work; any other path (a proxy prefix such as `/wcs`) is kept and the
//! call paths are appended to it. A query or fragment on the URL is dropped.
//!
//! Answers go through [`decode_file_stored`] and [`decode_chunk_stored`]: a 2xx JSON
//! body of the expected shape is the answer; an error body `{"code": int, "message":
//! string}` (on any status) becomes an [`ApiError`] that keeps the code and message;
//! anything else keeps the raw body in [`ApiError::Http`] or a [`DecodeError`].

use bytes::{BufMut as _, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use sha1::{Digest as _, Sha1};

use super::{ChunkStored, EndpointId, FileStored, WrappedFileStored};
use crate::common::{parse_envelope, rate_limited, refuse_empty, sensitive_header, status_error};
use crate::error::DecodeError;
use crate::qetag::BLOCK_SIZE;
use crate::{
    ApiError, BaseUrl, BaseUrlError, Code, EncodeError, HttpRequest, HttpResponse, ProviderError,
    Secret, ValidationError,
};

/// The name of the batch header, exactly as the storage service documents it:
/// `UploadBatch`, one UUID per file ([`new_batch_id`]) on every block call.
///
/// An [`http::HeaderName`] is always lowercase, so the requests built here carry it
/// as [`UPLOAD_BATCH`] (`uploadbatch`), and the case that reaches the wire is decided
/// by the transport. HTTP/2 sends every name in lowercase by definition. Over HTTP/1.1,
/// one client of this service broke because its HTTP stack changed the case of this
/// header, so a transport that controls the case must write this name, in this case,
/// for the `uploadbatch` entry ([`wire_header_name`] does the mapping).
///
/// The limitation, stated plainly: hyper's HTTP/1 writer cannot do that. It writes
/// names as stored (`uploadbatch`), or title-cased when `title_case_headers` is set,
/// which gives `Uploadbatch`, not `UploadBatch`; its `preserve_header_case` option
/// reads the original case from a request extension that is private to hyper. A
/// transport built on hyper therefore sends `uploadbatch`; to send `UploadBatch`
/// exactly, a transport has to write the HTTP/1 head itself (as the crate's blocking
/// example does) and use [`wire_header_name`].
pub const UPLOAD_BATCH_HEADER: &str = "UploadBatch";

/// The batch header as an [`http::HeaderName`] (necessarily lowercase: `uploadbatch`);
/// see [`UPLOAD_BATCH_HEADER`] for the case on the wire.
pub const UPLOAD_BATCH: HeaderName = HeaderName::from_static("uploadbatch");

/// The `Content-Type` of the `mkblk` and `bput` bodies.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The `Content-Type` of the `mkfile` body (the ctxs joined by `,`).
pub const MAKE_FILE_CONTENT_TYPE: &str = "text/plain;charset=UTF-8";

/// The path of the form upload, which seed 001 also shows at the end of `uploadUrl`.
pub const FORM_UPLOAD_PATH: &str = "/file/upload";

/// The longest multipart boundary RFC 2046 allows.
const MAX_BOUNDARY_LEN: usize = 70;

/// The name a transport that preserves header case should write for `name`:
/// [`UPLOAD_BATCH_HEADER`] for the batch header, the name as stored otherwise.
///
/// ```
/// use offline_proto::sixpan::storage::{wire_header_name, UPLOAD_BATCH};
///
/// assert_eq!(wire_header_name(&UPLOAD_BATCH), "UploadBatch");
/// assert_eq!(wire_header_name(&http::header::AUTHORIZATION), "authorization");
/// ```
pub fn wire_header_name(name: &HeaderName) -> &str {
    if name == UPLOAD_BATCH {
        UPLOAD_BATCH_HEADER
    } else {
        name.as_str()
    }
}

/// The root of the storage service for an `uploadUrl` from `/v1/store/token`: one
/// trailing `/file/upload` and trailing slashes are removed, any other path is kept.
///
/// ```
/// use offline_proto::sixpan::storage::storage_base;
///
/// for url in ["http://up.example", "http://up.example/", "http://up.example/file/upload"] {
///     assert_eq!(storage_base(url).unwrap().as_str(), "http://up.example");
/// }
/// assert_eq!(storage_base("http://127.0.0.1:8080/wcs/file/upload/").unwrap().as_str(),
///            "http://127.0.0.1:8080/wcs");
/// ```
///
/// # Errors
///
/// [`EncodeError::Invalid`] with [`ValidationError::InvalidUrl`] when `upload_url` is
/// not a URL, or [`ValidationError::UnsupportedScheme`] when it is not http(s).
pub fn storage_base(upload_url: &str) -> Result<BaseUrl, EncodeError> {
    let base = parse_base(upload_url)?;
    match base.as_str().strip_suffix(FORM_UPLOAD_PATH) {
        Some(origin) => parse_base(origin),
        None => Ok(base),
    }
}

fn parse_base(url: &str) -> Result<BaseUrl, EncodeError> {
    BaseUrl::parse(url).map_err(|error| {
        EncodeError::Invalid(match error {
            BaseUrlError::Scheme { input } => ValidationError::UnsupportedScheme {
                scheme: input.split(':').next().unwrap_or_default().to_owned(),
                url: input,
                allowed: "http or https",
            },
            BaseUrlError::Invalid { input, reason } => {
                ValidationError::InvalidUrl { url: input, reason }
            }
            other => ValidationError::InvalidUrl {
                url: url.to_owned(),
                reason: other.to_string(),
            },
        })
    })
}

/// `POST {url}/file/upload`: the whole (small) file in one `multipart/form-data`
/// request, with a boundary derived from the data (see
/// [`upload_request_with_boundary`] for the layout).
///
/// The boundary is `----offline-proto-` followed by 32 hex digits of a SHA-1 over the
/// data; in the (astronomically unlikely) case that it occurs in a part, the next
/// candidate is taken, so the same input always gives the same bytes.
///
/// # Errors
///
/// As [`upload_request_with_boundary`].
pub fn upload_request(
    upload_url: &str,
    token: &Secret,
    key: Option<&str>,
    file_name: &str,
    mime_type: Option<&str>,
    data: Bytes,
) -> Result<HttpRequest, EncodeError> {
    let escaped = escape_file_name(file_name);
    let seed: [u8; 20] = Sha1::new()
        .chain_update((data.len() as u64).to_le_bytes())
        .chain_update(&data)
        .finalize()
        .into();
    let boundary = pick_boundary(seed, &form_parts(&data, token, key, mime_type, &escaped));
    upload_request_with_boundary(
        upload_url, token, key, file_name, mime_type, data, &boundary,
    )
}

/// [`upload_request`] with a boundary chosen by the caller.
///
/// The body, exactly (RFC 7578; every line ends in CRLF, `[...]` only when given):
///
/// ```text
/// --{boundary}
/// Content-Disposition: form-data; name="token"
///
/// {token}
/// [--{boundary}
/// Content-Disposition: form-data; name="key"
///
/// {key}]
/// [--{boundary}
/// Content-Disposition: form-data; name="mimeType"
///
/// {mime type}]
/// --{boundary}
/// Content-Disposition: form-data; name="file"; filename="{file name}"
/// Content-Type: {mime type, or application/octet-stream}
///
/// {data}
/// --{boundary}--
/// ```
///
/// The request's `Content-Type` is `multipart/form-data; boundary={boundary}` (the
/// boundary quoted when it holds a character a header token cannot). The file name is
/// escaped as browsers do (the WHATWG HTML form encoding): `"` as `%22`, CR as `%0D`,
/// LF as `%0A`; other characters, non-ASCII included, are sent as UTF-8. The name only
/// labels the part: the name the file gets in the drive is the one given to
/// `/v1/store/token`. No `Authorization` header: the token is in the form.
///
/// # Errors
///
/// [`EncodeError::Invalid`] when the token or the file name is empty, the boundary is
/// not 1 to 70 RFC 2046 boundary characters (or ends in a space), or the boundary
/// occurs in a part; [`EncodeError::Invalid`] for an unusable `upload_url` (see
/// [`storage_base`]).
pub fn upload_request_with_boundary(
    upload_url: &str,
    token: &Secret,
    key: Option<&str>,
    file_name: &str,
    mime_type: Option<&str>,
    data: Bytes,
    boundary: &str,
) -> Result<HttpRequest, EncodeError> {
    refuse_empty("upload token", token.is_empty())?;
    if file_name.is_empty() {
        return Err(ValidationError::InvalidFileName {
            name: String::new(),
            reason: "the form's file part needs a file name (an empty one reads as \"no file\")",
        }
        .into());
    }
    check_boundary(boundary)?;
    let escaped = escape_file_name(file_name);
    let parts = form_parts(&data, token, key, mime_type, &escaped);
    if parts.iter().any(|part| contains(part, boundary.as_bytes())) {
        return Err(invalid(
            "boundary",
            "the boundary occurs in the data or in a field".to_owned(),
        ));
    }

    let mut body = BytesMut::with_capacity(data.len() + 512);
    let field = |body: &mut BytesMut, name: &str, value: &[u8]| {
        put_delimiter(body, boundary);
        body.put_slice(b"Content-Disposition: form-data; name=\"");
        body.put_slice(name.as_bytes());
        body.put_slice(b"\"\r\n\r\n");
        body.put_slice(value);
        body.put_slice(b"\r\n");
    };
    field(&mut body, "token", token.expose().as_bytes());
    if let Some(key) = key {
        field(&mut body, "key", key.as_bytes());
    }
    if let Some(mime) = mime_type {
        field(&mut body, "mimeType", mime.as_bytes());
    }
    put_delimiter(&mut body, boundary);
    body.put_slice(b"Content-Disposition: form-data; name=\"file\"; filename=\"");
    body.put_slice(escaped.as_bytes());
    body.put_slice(b"\"\r\nContent-Type: ");
    body.put_slice(mime_type.unwrap_or(OCTET_STREAM).as_bytes());
    body.put_slice(b"\r\n\r\n");
    body.put_slice(&data);
    body.put_slice(b"\r\n--");
    body.put_slice(boundary.as_bytes());
    body.put_slice(b"--\r\n");

    let content_type = if boundary.bytes().all(is_token_char) {
        format!("multipart/form-data; boundary={boundary}")
    } else {
        format!("multipart/form-data; boundary=\"{boundary}\"")
    };
    let content_type =
        HeaderValue::from_str(&content_type).map_err(|_| EncodeError::Header("Content-Type"))?;
    let uri = storage_base(upload_url)?.endpoint(EndpointId::Upload.path(), &[])?;
    http::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.freeze())
        .map_err(|e| EncodeError::Uri(e.to_string()))
}

/// `POST {url}/mkblk/{blockSize}/{blockIndex}`: starts block `block_index` (from 0)
/// of `block_size` bytes (4 MiB except for the last block) with its first chunk.
///
/// Headers: `Authorization: <token>` (sensitive, no `Bearer`), `UploadBatch: <batch>`,
/// `Content-Type: application/octet-stream`. The answer ([`decode_chunk_stored`]) is
/// the block's first `ctx` and `offset` = the chunk's length.
///
/// # Errors
///
/// [`EncodeError::Invalid`] when `block_size` is not in `1..=4 MiB`, the chunk is
/// empty or longer than the block, the token or batch is empty, or the URL is
/// unusable; [`EncodeError::Header`] when the token or batch cannot be a header value.
pub fn make_block_request(
    upload_url: &str,
    token: &Secret,
    batch: &str,
    block_size: u64,
    block_index: u64,
    first_chunk: Bytes,
) -> Result<HttpRequest, EncodeError> {
    if block_size == 0 || block_size > BLOCK_SIZE as u64 {
        return Err(invalid(
            "blockSize",
            format!("{block_size} is not in 1..={BLOCK_SIZE}"),
        ));
    }
    if first_chunk.is_empty() || first_chunk.len() as u64 > block_size {
        return Err(invalid(
            "firstChunk",
            format!(
                "{} bytes, but a block's first chunk holds 1 to blockSize ({block_size}) bytes",
                first_chunk.len()
            ),
        ));
    }
    block_call(
        upload_url,
        token,
        batch,
        &format!("/mkblk/{block_size}/{block_index}"),
        OCTET_STREAM,
        first_chunk,
    )
}

/// `POST {url}/bput/{ctx}/{offset}`: adds `chunk` to the block whose latest context
/// is `ctx`, at `offset` bytes into the block (the `offset` of that previous answer).
///
/// `ctx` is percent-encoded as one path segment: every byte that is not a URI path
/// character (RFC 3986 `pchar`) is encoded, so a `/` in a base64 ctx becomes `%2F`
/// while `+` and `=` stay as they are. Headers as [`make_block_request`].
///
/// # Errors
///
/// [`EncodeError::Invalid`] when `ctx` or `chunk` is empty, `offset + chunk` runs past
/// 4 MiB, the token or batch is empty, or the URL is unusable; [`EncodeError::Header`]
/// when the token or batch cannot be a header value.
pub fn put_chunk_request(
    upload_url: &str,
    token: &Secret,
    batch: &str,
    ctx: &str,
    offset: u64,
    chunk: Bytes,
) -> Result<HttpRequest, EncodeError> {
    refuse_empty("ctx", ctx.is_empty())?;
    refuse_empty("chunk", chunk.is_empty())?;
    if offset.saturating_add(chunk.len() as u64) > BLOCK_SIZE as u64 {
        return Err(invalid(
            "offset",
            format!(
                "{offset} + {} bytes runs past the end of a {BLOCK_SIZE}-byte block",
                chunk.len()
            ),
        ));
    }
    block_call(
        upload_url,
        token,
        batch,
        &format!("/bput/{}/{offset}", encode_path_segment(ctx)),
        OCTET_STREAM,
        chunk,
    )
}

/// `POST {url}/mkfile/{fileSize}`: finishes a block upload. The body is the last
/// `ctx` of every block, in block order, joined by `,`, with `Content-Type:
/// text/plain;charset=UTF-8`; other headers as [`make_block_request`]. The answer
/// ([`decode_file_stored`]) holds the file's hash, which must equal the local etag.
///
/// # Errors
///
/// [`EncodeError::Invalid`] when the number of ctxs is not the number of 4 MiB blocks
/// of `file_size`, a ctx is empty or contains `,`, the token or batch is empty, or the
/// URL is unusable; [`EncodeError::Header`] when the token or batch cannot be a header
/// value.
pub fn make_file_request(
    upload_url: &str,
    token: &Secret,
    batch: &str,
    file_size: u64,
    ctxs: &[String],
) -> Result<HttpRequest, EncodeError> {
    let blocks = file_size.div_ceil(BLOCK_SIZE as u64);
    if ctxs.len() as u64 != blocks {
        return Err(invalid(
            "ctxs",
            format!(
                "{} ctx(s) for a {file_size}-byte file, which has {blocks} block(s)",
                ctxs.len()
            ),
        ));
    }
    if let Some(bad) = ctxs.iter().find(|c| c.is_empty() || c.contains(',')) {
        return Err(invalid(
            "ctxs",
            format!("ctx {bad:?} is empty or contains `,`"),
        ));
    }
    block_call(
        upload_url,
        token,
        batch,
        &format!("/mkfile/{file_size}"),
        MAKE_FILE_CONTENT_TYPE,
        Bytes::from(ctxs.join(",")),
    )
}

/// A UUID-shaped batch ID (`8-4-4-4-12` lowercase hex, version 4 and RFC 4122
/// variant bits set) derived from `seed`: the same seed gives the same ID. The core has
/// no random number generator: the caller supplies the randomness (one fresh random
/// `u64` per file).
///
/// ```
/// use offline_proto::sixpan::storage::new_batch_id;
///
/// let id = new_batch_id(7);
/// assert_eq!(id.len(), 36);
/// assert_eq!(id, new_batch_id(7));
/// assert_ne!(id, new_batch_id(8));
/// assert_eq!(&id[14..15], "4");
/// ```
pub fn new_batch_id(seed: u64) -> String {
    let mut state = seed;
    let high = splitmix64(&mut state);
    let low = splitmix64(&mut state);
    let high = (high & !0xF000) | 0x4000;
    let low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
}

/// Decodes the answer to [`upload_request`] or [`make_file_request`]: `{hash, key}`,
/// or the same object as a JSON string in `response` ([`WrappedFileStored`],
/// `{"response": "{\"hash\":...,\"key\":...}"}`: how the WCS SDK reads a `mkfile`
/// answer, which real 6pan clients met).
///
/// # Errors
///
/// [`ApiError::TokenInvalid`] for HTTP 401 or code 401, [`ApiError::RateLimited`] for
/// HTTP 429 or code 429 (with `Retry-After` when sent), [`ApiError::Provider`] for any
/// other `{"code", "message"}` error body (whatever the status), [`ApiError::Http`]
/// with the raw body for a non-2xx status without one, and [`ApiError::Decode`] (which
/// keeps the status, the JSON path and the raw body) for a 2xx body of the wrong shape.
pub fn decode_file_stored(response: &HttpResponse) -> Result<FileStored, ApiError> {
    let error = match decode_answer::<FileStored>(response) {
        Ok(stored) => return Ok(stored),
        Err(error) => error,
    };
    if response.status().is_success() {
        let inner = serde_json::from_slice::<WrappedFileStored>(response.body())
            .ok()
            .and_then(|wrapped| serde_json::from_str::<FileStored>(&wrapped.response).ok());
        if let Some(stored) = inner {
            return Ok(stored);
        }
    }
    Err(error)
}

/// Decodes the answer to [`make_block_request`] or [`put_chunk_request`]: `{ctx,
/// offset}`.
///
/// # Errors
///
/// As [`decode_file_stored`].
pub fn decode_chunk_stored(response: &HttpResponse) -> Result<ChunkStored, ApiError> {
    decode_answer(response)
}

/// The storage service's error body: `{"code": int, "message": string}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    code: ErrorCode,
    #[serde(default)]
    message: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ErrorCode {
    Int(i64),
    Text(String),
}

fn decode_answer<T: DeserializeOwned>(response: &HttpResponse) -> Result<T, ApiError> {
    let status = response.status();
    let body = response.body();
    // A success's body is the answer, when it has the expected shape.
    let failure = if status.is_success() {
        match parse_envelope::<T>(body) {
            Ok(value) => return Ok(value),
            // An empty path: trailing characters after the value.
            Err((path, e)) => Some(DecodeError::from_json(
                &e,
                Some(path).filter(|p| !p.is_empty()),
                response,
            )),
        }
    } else {
        None
    };
    // Not an answer of the expected shape (or not a success): an error body?
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body) {
        let (code, number) = match error.code {
            ErrorCode::Int(n) => (Code::Int(n), Some(n)),
            ErrorCode::Text(t) => {
                let number = t.parse::<i64>().ok();
                (Code::Text(t), number)
            }
        };
        let error = ProviderError {
            code,
            message: error.message.unwrap_or_default(),
            trace_id: None,
            status,
        };
        return Err(classify(error, number, response));
    }
    Err(failure.map_or_else(|| status_error(response, Code::Int(429)), ApiError::from))
}

fn classify(error: ProviderError, code: Option<i64>, response: &HttpResponse) -> ApiError {
    let status = error.status;
    if status == StatusCode::UNAUTHORIZED || code == Some(401) {
        ApiError::TokenInvalid(error)
    } else if status == StatusCode::TOO_MANY_REQUESTS || code == Some(429) {
        rate_limited(error, response)
    } else {
        ApiError::Provider(error)
    }
}

/// One of the three block calls: the shared headers and the URI.
fn block_call(
    upload_url: &str,
    token: &Secret,
    batch: &str,
    path: &str,
    content_type: &'static str,
    body: Bytes,
) -> Result<HttpRequest, EncodeError> {
    refuse_empty("upload token", token.is_empty())?;
    refuse_empty("UploadBatch", batch.is_empty())?;
    let authorization = sensitive_header(token.expose(), "Authorization")?;
    let batch = HeaderValue::from_str(batch).map_err(|_| EncodeError::Header("UploadBatch"))?;
    let uri = storage_base(upload_url)?.endpoint(path, &[])?;
    http::Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::AUTHORIZATION, authorization)
        .header(UPLOAD_BATCH, batch)
        .header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
        .body(body)
        .map_err(|e| EncodeError::Uri(e.to_string()))
}

fn invalid(field: &'static str, reason: String) -> EncodeError {
    ValidationError::InvalidValue { field, reason }.into()
}

/// What the form's boundary must not occur in: the data and every field (the file
/// name escaped).
fn form_parts<'a>(
    data: &'a [u8],
    token: &'a Secret,
    key: Option<&'a str>,
    mime_type: Option<&'a str>,
    escaped_file_name: &'a str,
) -> [&'a [u8]; 5] {
    [
        data,
        token.expose().as_bytes(),
        key.unwrap_or_default().as_bytes(),
        mime_type.unwrap_or_default().as_bytes(),
        escaped_file_name.as_bytes(),
    ]
}

fn put_delimiter(body: &mut BytesMut, boundary: &str) {
    body.put_slice(b"--");
    body.put_slice(boundary.as_bytes());
    body.put_slice(b"\r\n");
}

/// The first boundary derived from `seed` (attempt 0, 1, ...) that occurs in none of
/// `parts`.
fn pick_boundary(seed: [u8; 20], parts: &[&[u8]]) -> String {
    let mut attempt: u32 = 0;
    loop {
        let digest = Sha1::new()
            .chain_update(attempt.to_le_bytes())
            .chain_update(seed)
            .finalize();
        let candidate = format!("----offline-proto-{}", hex(&digest[..16]));
        if !parts
            .iter()
            .any(|part| contains(part, candidate.as_bytes()))
        {
            return candidate;
        }
        attempt += 1;
    }
}

/// RFC 2046: 1 to 70 `bchars`, not ending in a space.
fn check_boundary(boundary: &str) -> Result<(), EncodeError> {
    let ok = !boundary.is_empty()
        && boundary.len() <= MAX_BOUNDARY_LEN
        && !boundary.ends_with(' ')
        && boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "boundary",
            format!("{boundary:?} is not 1 to {MAX_BOUNDARY_LEN} RFC 2046 boundary characters"),
        ))
    }
}

/// An RFC 9110 `tchar`: may appear unquoted in a header parameter.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The WHATWG HTML escaping of a file name in `multipart/form-data`.
fn escape_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes every byte that is not an RFC 3986 `pchar` (unreserved,
/// sub-delims, `:`, `@`), so the result is exactly one path segment.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack.len() >= needle.len()
        && haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One step of SplitMix64 (Steele, Lea and Flood): a fast, well-mixed bijection.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpResponse {
        http::Response::builder()
            .status(status)
            .body(Bytes::from(body.to_owned()))
            .unwrap()
    }

    // Issue 12 #10a: a mkfile answer with the hash only inside a `response` JSON string,
    // as the WCS SDK reads it, decodes as the plain one; a wrapped string that holds no
    // `{hash}`, or an error status, is still an error.
    #[test]
    fn a_mkfile_answer_wrapped_in_a_response_string_decodes() {
        let plain = r#"{"hash":"lgYD1AjrK5Daxq-Dt0qemSPKdNbh","key":"k"}"#;
        let wrapped = serde_json::json!({ "response": plain }).to_string();
        let expected = decode_file_stored(&answer(200, plain)).unwrap();
        assert_eq!(
            decode_file_stored(&answer(200, &wrapped)).unwrap(),
            expected
        );
        assert_eq!(expected.key.as_deref(), Some("k"));
        let hollow = serde_json::json!({ "response": "{\"key\":\"k\"}" }).to_string();
        assert!(matches!(
            decode_file_stored(&answer(200, &hollow)),
            Err(ApiError::Decode(_))
        ));
        assert!(decode_file_stored(&answer(502, &wrapped)).is_err());
    }

    #[test]
    fn path_segments_encode_slash_but_keep_base64_signs() {
        for (segment, encoded) in [
            ("ab/c+d==", "ab%2Fc+d=="),
            ("a b?#%é", "a%20b%3F%23%25%C3%A9"),
            ("x-y_z.~", "x-y_z.~"),
        ] {
            assert_eq!(encode_path_segment(segment), encoded);
        }
    }

    #[test]
    fn file_names_escape_quotes_and_newlines_only() {
        assert_eq!(escape_file_name("a\"b\r\nc.txt"), "a%22b%0D%0Ac.txt");
        assert_eq!(escape_file_name("幸运星 (1).torrent"), "幸运星 (1).torrent");
    }

    #[test]
    fn boundaries_are_checked() {
        // Quoting in the header: `form_upload_quotes_a_boundary_a_header_token_cannot_hold`
        // in `tests/sixpan_upload.rs`.
        let too_long = "x".repeat(71);
        for (boundary, ok) in [
            ("abc", true),
            ("a:b=c", true),
            ("", false),
            ("ends with space ", false),
            (too_long.as_str(), false),
            ("no\"quote", false),
        ] {
            assert_eq!(check_boundary(boundary).is_ok(), ok, "{boundary:?}");
        }
    }

    #[test]
    fn batch_ids_are_uuid_shaped() {
        for seed in [0, 1, u64::MAX, 0xDEAD_BEEF] {
            let id = new_batch_id(seed);
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!(groups[2].starts_with('4'), "{id}");
            assert!("89ab".contains(&groups[3][..1]), "{id}");
        }
        assert_ne!(new_batch_id(0), new_batch_id(1));
    }

    #[test]
    fn a_boundary_found_in_a_part_is_replaced() {
        let seed = [7u8; 20];
        let first = pick_boundary(seed, &[]);
        assert_eq!(first.len(), 50);
        assert_eq!(pick_boundary(seed, &[b"anything"]), first);
        let data = format!("xx{first}yy");
        let second = pick_boundary(seed, &[b"", data.as_bytes()]);
        assert_ne!(second, first);
        assert!(!data.contains(&second));
        assert!(check_boundary(&second).is_ok());
    }

    #[test]
    fn contains_finds_needles() {
        assert!(contains(b"abcdef", b"cde"));
        assert!(!contains(b"ab", b"abc"));
        assert!(!contains(b"abc", b""));
    }
}
