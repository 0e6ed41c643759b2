//! Errors shared by every provider: encoding, local validation, decoding and the
//! provider's own error answers.

use bytes::Bytes;
use http::StatusCode;

/// An error and its causes on one line, `error: cause: cause's cause`, each text once:
/// a cause whose text the line already holds (an error that repeats its source in its
/// own `Display`) is skipped. The errors of this workspace describe only their own
/// level in `Display` (reqwest's convention), so this is how to print one whole.
///
/// ```
/// let io = std::io::Error::other("connection reset");
/// assert_eq!(offline_proto::error_chain(&io), "connection reset");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// A request could not be built. Nothing was sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Local validation refused the input.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The URI could not be built.
    #[error("cannot build request URI: {0}")]
    Uri(String),
    /// The body could not be serialized (cannot happen for this crate's types).
    #[error("cannot serialize request body: {0}")]
    Body(String),
    /// A header value contains characters HTTP does not allow (a token with a newline).
    #[error("invalid header value for {0}")]
    Header(&'static str),
}

/// Input refused before any request exists, so the server is never asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The source URL does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The source URL's scheme is not one the endpoint accepts.
    #[error("unsupported URL scheme {scheme:?} in {url:?}: {allowed}")]
    UnsupportedScheme {
        /// The URL given.
        url: String,
        /// Its scheme.
        scheme: String,
        /// What the endpoint accepts, in words.
        allowed: &'static str,
    },
    /// An image-bed source whose URL path (or file name) does not end in an allowed
    /// image extension.
    #[error("{name:?} is not an image the image bed accepts (allowed extensions: {allowed})")]
    NotAnImage {
        /// The URL path or file name that was checked.
        name: String,
        /// The allowed extensions, comma separated.
        allowed: &'static str,
    },
    /// A file name that is empty, too long or contains a character the drive forbids.
    #[error("invalid file name {name:?}: {reason}")]
    InvalidFileName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Directory ID 0 is the root, which offline download does not accept.
    #[error("offline download cannot target the root directory (ID 0); omit the directory to use the default folder")]
    RootDirectory,
    /// A field has a value the endpoint does not accept.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The wire name of the field.
        field: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// A required field is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// What failed while reading a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The body is not JSON at all.
    NotJson,
    /// The body ended in the middle of a JSON value.
    Truncated,
    /// JSON of the wrong shape (a missing field, a string where a number belongs).
    Shape,
    /// A successful envelope without the data the endpoint must return.
    MissingData,
    /// The `Content-Type` says the body is not JSON (e.g. an HTML error page) and the
    /// body does not parse as JSON.
    ContentType,
}

/// A response that could not be understood. Keeps everything needed to report it: the
/// HTTP status, the JSON path where decoding stopped, and the raw body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
#[non_exhaustive]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The HTTP status of the response.
    pub status: StatusCode,
    /// The `Content-Type` of the response, if any.
    pub content_type: Option<String>,
    /// The JSON path where decoding failed (`data.taskID`), when known.
    pub path: Option<String>,
    /// The parser's own message.
    pub detail: String,
    /// The raw body, byte for byte.
    pub body: Bytes,
}

impl DecodeError {
    fn describe(&self) -> String {
        let what = match self.kind {
            DecodeErrorKind::NotJson => "response is not JSON",
            DecodeErrorKind::Truncated => "response body is truncated",
            DecodeErrorKind::Shape => "response has an unexpected shape",
            DecodeErrorKind::MissingData => "response has no data",
            DecodeErrorKind::ContentType => "response has a non-JSON content type",
        };
        let mut s = format!("{what} (HTTP {})", self.status.as_u16());
        if let Some(p) = &self.path {
            s.push_str(&format!(" at `{p}`"));
        }
        if !self.detail.is_empty() {
            s.push_str(&format!(": {}", self.detail));
        }
        if let Some(ct) = &self.content_type {
            s.push_str(&format!(" [content-type {ct}]"));
        }
        s.push_str(&format!("; body: {}", preview(&self.body)));
        s
    }

    /// Builds the error for a `serde_json` failure on `body`, classifying it.
    pub(crate) fn from_json(
        err: &serde_json::Error,
        path: Option<String>,
        response: &crate::HttpResponse,
    ) -> Self {
        let content_type = content_type(response.headers());
        let body = response.body();
        let kind = if err.is_eof() {
            DecodeErrorKind::Truncated
        } else if err.is_syntax() {
            if content_type
                .as_deref()
                .is_some_and(|ct| !ct.contains("json"))
            {
                DecodeErrorKind::ContentType
            } else {
                DecodeErrorKind::NotJson
            }
        } else {
            DecodeErrorKind::Shape
        };
        Self {
            kind,
            status: response.status(),
            content_type,
            path: path.filter(|p| !p.is_empty() && p != "."),
            detail: err.to_string(),
            body: body.clone(),
        }
    }

    /// A successful envelope that carries no data.
    pub(crate) fn missing_data(response: &crate::HttpResponse, field: &str) -> Self {
        Self {
            kind: DecodeErrorKind::MissingData,
            status: response.status(),
            content_type: content_type(response.headers()),
            path: Some(field.to_owned()),
            detail: format!("`{field}` is null or absent on a successful answer"),
            body: response.body().clone(),
        }
    }
}

fn content_type(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// At most 200 characters of a body, for messages, with the string values of
/// credential fields (`accessToken`, `token`, `clientSecret`, `password`, ...) shown as
/// `***` (see [`redact_secrets`]): an answer that carries a token and fails to decode
/// must not put the token in an error message or a log line.
pub(crate) fn preview(body: &[u8]) -> String {
    const MAX: usize = 200;
    let lossy = String::from_utf8_lossy(body);
    let text = redact_secrets(&lossy);
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("(empty)");
    }
    out
}

/// JSON keys whose string values are credentials, lowercase, without `_` and `-`.
const SECRET_KEYS: &[&str] = &[
    "accesstoken",
    "refreshtoken",
    "token",
    "idtoken",
    "uploadtoken",
    "qingzhentoken",
    "clientsecret",
    "secret",
    "password",
    "authorization",
];

/// `text` with the string value of every credential key ([`SECRET_KEYS`], compared
/// without case, `_` or `-`) replaced by `***`: `{"accessToken": "***", ...}`. Works on
/// JSON that is truncated or not quite JSON too (it scans for `"key": "`), so a body
/// cut off in the middle of a token is masked from the token's first character.
pub(crate) fn redact_secrets(text: &str) -> std::borrow::Cow<'_, str> {
    /// Index of the `"` that closes the string whose content starts at `from`, or the
    /// length when it is not closed.
    fn string_end(bytes: &[u8], mut at: usize) -> usize {
        while at < bytes.len() {
            match bytes[at] {
                b'\\' => at += 2,
                b'"' => return at,
                _ => at += 1,
            }
        }
        bytes.len()
    }
    fn is_secret(key: &str) -> bool {
        let key: String = key
            .chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        SECRET_KEYS.contains(&key.as_str())
    }
    let bytes = text.as_bytes();
    let skip_space = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'"' {
            at += 1;
            continue;
        }
        let key_end = string_end(bytes, at + 1);
        if key_end >= bytes.len() {
            break;
        }
        let colon = skip_space(key_end + 1);
        if bytes.get(colon) == Some(&b':') {
            let value = skip_space(colon + 1);
            if bytes.get(value) == Some(&b'"') && is_secret(&text[at + 1..key_end]) {
                let value_end = string_end(bytes, value + 1);
                out.push_str(&text[copied..=value]);
                out.push_str("***");
                copied = value_end;
                at = value_end + 1;
                continue;
            }
        }
        at = key_end + 1;
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// A provider's error code: 123pan uses integers, 6pan uses strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Code {
    /// A numeric code (123pan `code`).
    Int(i64),
    /// A string code (6pan `code`, e.g. `FILE_NOT_FOUND`).
    Text(String),
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Int(c) => write!(f, "{c}"),
            Self::Text(c) => f.write_str(c),
        }
    }
}

/// An error answer from the provider: its code, message and trace ID, as sent.
/// Built by the decoders, or by [`ProviderError::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderError {
    /// The provider's code.
    pub code: Code,
    /// The provider's message (often Chinese), as sent.
    pub message: String,
    /// The trace ID (123pan `x-traceID`), which users quote to support.
    pub trace_id: Option<String>,
    /// The HTTP status the error came with (123pan answers most errors with 200).
    pub status: StatusCode,
}

impl ProviderError {
    /// An error answer with `code` and `message`, as if sent with HTTP `status`.
    pub fn new(
        code: Code,
        message: impl Into<String>,
        trace_id: Option<String>,
        status: StatusCode,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            trace_id,
            status,
        }
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}: {}", self.code, self.message)?;
        if let Some(t) = &self.trace_id {
            write!(f, " (trace ID {t})")?;
        }
        Ok(())
    }
}

/// Everything a response can mean other than success.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The access token is invalid or expired (123pan code 401). Refresh the token and
    /// try once more.
    #[error("access token rejected: {0}")]
    TokenInvalid(ProviderError),
    /// The application holds too many live access tokens (123pan code 401 with the
    /// message `tokens number has exceeded the limit`, on the token call and possibly
    /// on others; the vendor's docs allow at most 3 live tokens per client ID). Not a
    /// bad token: fetching another makes it worse, so the call machine never answers
    /// it with a token request. Reuse a token across processes (p123client persists
    /// it to a file, OpenList `drivers/123_open` to its driver storage), or wait until
    /// one of the live tokens expires.
    #[error("{}", too_many_tokens_message(error, *oldest_expires_at))]
    TooManyTokens {
        /// The provider's answer.
        error: ProviderError,
        /// When the oldest token this client is known to hold expires (wall-clock),
        /// if known: the earliest time a slot may come free.
        oldest_expires_at: Option<std::time::SystemTime>,
    },
    /// Too many requests (123pan code 429 or HTTP 429). Safe to send again later: the
    /// request was not carried out.
    #[error("rate limited: {error}")]
    RateLimited {
        /// The provider's answer.
        error: ProviderError,
        /// How long the server asked to wait (`Retry-After`), if it said.
        retry_after: Option<std::time::Duration>,
    },
    /// The account runs as many offline tasks at once as it may (123pan
    /// `同时下载的任务超出最大限制，不能下载`, code 2 in a public Node client of the open
    /// platform, which waits 60 s and submits again). The create certainly did not
    /// happen: safe to wait and submit again.
    #[error("too many offline tasks at once: {0}")]
    TaskLimit(ProviderError),
    /// The same task already exists (a duplicate-task answer to a create): nothing new
    /// was created.
    #[error("duplicate task: {0}")]
    DuplicateTask(ProviderError),
    /// A traffic or storage quota is used up (123pan code 5113).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(ProviderError),
    /// The file or task does not exist (123pan code 5066).
    #[error("not found: {0}")]
    NotFound(ProviderError),
    /// Any other provider error code.
    #[error("provider error {0}")]
    Provider(ProviderError),
    /// A non-success HTTP status without a provider envelope (a gateway's 502 page).
    #[error("HTTP {status} without a provider answer; body: {}", preview(body))]
    Http {
        /// The HTTP status.
        status: StatusCode,
        /// The raw body.
        body: Bytes,
    },
    /// The response could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl ApiError {
    /// The provider's answer, when the error is one.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::TokenInvalid(e)
            | Self::TooManyTokens { error: e, .. }
            | Self::TaskLimit(e)
            | Self::DuplicateTask(e)
            | Self::QuotaExceeded(e)
            | Self::NotFound(e)
            | Self::Provider(e)
            | Self::RateLimited { error: e, .. } => Some(e),
            Self::Http { .. } | Self::Decode(_) => None,
        }
    }

    /// The HTTP status of the response that carried the error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Http { status, .. } => *status,
            Self::Decode(d) => d.status,
            other => other.provider_error().map_or(StatusCode::OK, |e| e.status),
        }
    }
}

/// The text of [`ApiError::TooManyTokens`]: the answer, what to do, and when the
/// oldest known token expires (RFC 3339, UTC) when known.
fn too_many_tokens_message(error: &ProviderError, oldest: Option<std::time::SystemTime>) -> String {
    let mut text = format!(
        "too many access tokens for this client ID ({error}): do not fetch another; reuse a \
         held token across runs (at most 3 live tokens per client ID)"
    );
    if let Some(at) = oldest.and_then(|t| {
        time::OffsetDateTime::from(t)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    }) {
        text.push_str(&format!("; the oldest known token expires at {at}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_is_bounded() {
        let long = "x".repeat(1000);
        let p = preview(long.as_bytes());
        assert_eq!(p.chars().count(), 201);
        assert_eq!(preview(b""), "(empty)");
    }

    #[test]
    fn previews_mask_credentials() {
        let body = br#"{"code":0,"data":{"accessToken": "tok-123","expiredAt":"bad"},"token":"t2","password" :"p","clientSecret":"s\"x","name":"token"}"#;
        let p = preview(body);
        for secret in ["tok-123", "t2", "\"p\"", "s\\\"x"] {
            assert!(!p.contains(secret), "{secret} in {p}");
        }
        assert!(p.contains(r#""accessToken": "***""#), "{p}");
        assert!(p.contains(r#""name":"token""#), "{p}");
        assert!(p.contains(r#""expiredAt":"bad""#), "{p}");
        // Cut off in the middle of the token, or with the key in another case.
        assert_eq!(
            preview(br#"{"data":{"access_token":"abcdef"#),
            r#"{"data":{"access_token":"***"#
        );
        assert_eq!(
            preview(br#"{"Refresh-Token":"r"}"#),
            r#"{"Refresh-Token":"***"}"#
        );
        // Nothing to mask: unchanged, even odd input.
        for text in [
            "plain text",
            "\"",
            "\"token\"",
            "\"token\":",
            "{\"token\":null}",
            "\"a\\",
        ] {
            assert_eq!(redact_secrets(text), text);
        }
        let err = ApiError::Http {
            status: StatusCode::BAD_GATEWAY,
            body: Bytes::from_static(br#"{"token":"secret-token"}"#),
        };
        assert!(!err.to_string().contains("secret-token"));
    }

    #[test]
    fn provider_error_display_has_code_message_trace() {
        let e = ProviderError {
            code: Code::Int(5066),
            message: "文件不存在".into(),
            trace_id: Some("abc".into()),
            status: StatusCode::OK,
        };
        assert_eq!(e.to_string(), "code 5066: 文件不存在 (trace ID abc)");
    }
}

#[cfg(test)]
mod chain_tests {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Level(&'static str, #[source] Option<Box<Level>>);

    #[test]
    fn each_cause_once() {
        let leaf = Level("reset by peer", None);
        let repeats = Level("send failed: reset by peer", Some(Box::new(leaf)));
        let top = Level("no answer", Some(Box::new(repeats)));
        assert_eq!(
            super::error_chain(&top),
            "no answer: send failed: reset by peer"
        );
    }
}
