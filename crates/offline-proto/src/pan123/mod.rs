//! The 123pan open platform: offline download into the cloud drive, image-bed
//! migration, their progress, the callback, and the access token.
//!
//! Every call is a request type implementing [`Endpoint`]: build it (validation happens
//! in [`Endpoint::to_http`], before any request exists), send the
//! [`crate::HttpRequest`] however you like, and hand the response to
//! [`Endpoint::decode`].
//!
//! ```
//! use offline_proto::pan123::{Endpoint, OfflineDownloadRequest};
//! use offline_proto::{BaseUrl, Secret};
//!
//! let base = BaseUrl::parse("https://open-api.123pan.com").unwrap();
//! let token = Secret::new("eyJ...");
//! let req = OfflineDownloadRequest::new("https://example.com/video.mp4")
//!     .to_http(&base, Some(&token))
//!     .unwrap();
//! assert_eq!(req.uri().path(), "/api/v1/offline/download");
//! assert_eq!(req.headers()["platform"], "open_platform");
//! ```
//!
//! Facts: `API-NOTES.md` (123pan section), seeds `002`–`004`.

mod validate;
mod wire;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use validate::{
    file_name as validate_file_name, has_image_extension, http_url as validate_http_url,
    image_source as validate_image_source, url_file_name, FILE_NAME_MAX_CHARS, IMAGE_EXTENSIONS,
    IMAGE_MAX_BYTES,
};
pub use wire::*;

use crate::{ApiError, BaseUrl, Code, DecodeError, EncodeError, HttpRequest, HttpResponse};
use crate::{ProviderError, Secret, ValidationError};

/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://open-api.123pan.com";

/// The `Platform` header every request carries.
pub const PLATFORM_HEADER: &str = "platform";
/// The value of the `Platform` header.
pub const PLATFORM: &str = "open_platform";

/// Envelope code: success.
pub const CODE_OK: i64 = 0;
/// Envelope code: access token invalid or expired, or too many tokens.
pub const CODE_TOKEN_INVALID: i64 = 401;
/// Envelope code: too many requests.
pub const CODE_RATE_LIMITED: i64 = 429;
/// Envelope code: file does not exist.
pub const CODE_NOT_FOUND: i64 = 5066;
/// Envelope code: traffic quota exceeded.
pub const CODE_QUOTA_EXCEEDED: i64 = 5113;

/// The calls, for per-endpoint rate limits and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndpointId {
    /// `POST /api/v1/access_token`.
    AccessToken,
    /// `POST /api/v1/offline/download`.
    OfflineDownload,
    /// `GET /api/v1/offline/download/process`.
    OfflineProcess,
    /// `POST /api/v1/oss/offline/download`.
    OssOfflineDownload,
    /// `GET /api/v1/oss/offline/download/process`.
    OssOfflineProcess,
}

impl EndpointId {
    /// Every endpoint, in table order.
    pub const ALL: [Self; 5] = [
        Self::AccessToken,
        Self::OfflineDownload,
        Self::OfflineProcess,
        Self::OssOfflineDownload,
        Self::OssOfflineProcess,
    ];

    /// The path, e.g. `/api/v1/offline/download`.
    pub fn path(self) -> &'static str {
        match self {
            Self::AccessToken => "/api/v1/access_token",
            Self::OfflineDownload => "/api/v1/offline/download",
            Self::OfflineProcess => "/api/v1/offline/download/process",
            Self::OssOfflineDownload => "/api/v1/oss/offline/download",
            Self::OssOfflineProcess => "/api/v1/oss/offline/download/process",
        }
    }

    /// The method.
    pub fn method(self) -> Method {
        match self {
            Self::OfflineProcess | Self::OssOfflineProcess => Method::GET,
            _ => Method::POST,
        }
    }

    /// The endpoint of a method and path, if it is one of these.
    pub fn from_route(method: &Method, path: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.path() == path && e.method() == method)
    }

    /// Whether a successful call creates something (a task), so that sending it twice
    /// could create two.
    pub fn creates(self) -> bool {
        matches!(self, Self::OfflineDownload | Self::OssOfflineDownload)
    }

    /// The default rate limit, requests per second. The offline endpoints appear in no
    /// published table; public clients use 1/s for creating and 5/s for progress; the
    /// token endpoint was 1/s in the older table (10/s in the newer), and 1/s is kept.
    pub fn default_rate_per_second(self) -> f64 {
        match self {
            Self::AccessToken | Self::OfflineDownload | Self::OssOfflineDownload => 1.0,
            Self::OfflineProcess | Self::OssOfflineProcess => 5.0,
        }
    }
}

/// A 123pan call: a request type that encodes itself and decodes its answer.
pub trait Endpoint: Serialize {
    /// What a successful answer's `data` decodes to.
    type Output: DeserializeOwned;
    /// Which call this is.
    const ID: EndpointId;

    /// Checks the request locally. Called by [`to_http`](Self::to_http).
    ///
    /// # Errors
    ///
    /// A [`ValidationError`] saying what is wrong.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }

    /// Builds the HTTP request: `Platform: open_platform`, `Authorization: Bearer
    /// <token>` when `token` is given, the body as JSON for POST, the fields as the
    /// query for GET.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Invalid`] when [`validate`](Self::validate) refuses the request,
    /// [`EncodeError::Header`] when the token holds characters a header cannot carry.
    fn to_http(&self, base: &BaseUrl, token: Option<&Secret>) -> Result<HttpRequest, EncodeError> {
        self.validate()?;
        encode(Self::ID, self, base, token)
    }

    /// Decodes the answer.
    ///
    /// # Errors
    ///
    /// An [`ApiError`]: the provider's error code (typed for 401, 429, 5066, 5113), a
    /// non-success HTTP status without an envelope, or a [`DecodeError`] with the JSON
    /// path that failed and the raw body.
    fn decode(response: &HttpResponse) -> Result<Self::Output, ApiError> {
        decode_envelope(response)
    }
}

fn encode<T: Serialize + ?Sized>(
    id: EndpointId,
    body: &T,
    base: &BaseUrl,
    token: Option<&Secret>,
) -> Result<HttpRequest, EncodeError> {
    let method = id.method();
    let value = serde_json::to_value(body).map_err(|e| EncodeError::Body(e.to_string()))?;
    let (uri, bytes) = if method == Method::GET {
        let pairs: Vec<(String, String)> = match &value {
            serde_json::Value::Object(map) => map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let s = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect(),
            _ => Vec::new(),
        };
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        (base.endpoint(id.path(), &refs)?, Bytes::new())
    } else {
        let bytes = serde_json::to_vec(&value).map_err(|e| EncodeError::Body(e.to_string()))?;
        (base.endpoint(id.path(), &[])?, Bytes::from(bytes))
    };
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(PLATFORM_HEADER, PLATFORM);
    if method != Method::GET {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| EncodeError::Header("authorization"))?;
        let mut value = value;
        value.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder
        .body(bytes)
        .map_err(|e| EncodeError::Uri(e.to_string()))
}

#[derive(serde::Deserialize)]
struct RawEnvelope<'a> {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(borrow, default)]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(rename = "x-traceID", default)]
    trace_id: Option<String>,
}

/// Decodes a 123pan envelope and its `data` as `T`.
///
/// # Errors
///
/// As [`Endpoint::decode`].
pub fn decode_envelope<T: DeserializeOwned>(response: &HttpResponse) -> Result<T, ApiError> {
    let status = response.status();
    let body = response.body();
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize::<_, RawEnvelope<'_>>(&mut de)
        .map_err(|e| (e.path().to_string(), e.into_inner()))
        .and_then(|raw| de.end().map(|()| raw).map_err(|e| (String::new(), e)));
    let raw = match parsed {
        Ok(raw) => raw,
        Err((path, e)) => {
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Err(ApiError::RateLimited {
                    error: ProviderError {
                        code: Code::Int(CODE_RATE_LIMITED),
                        message: crate::error::preview(body),
                        trace_id: None,
                        status,
                    },
                    retry_after: retry_after(response),
                });
            }
            if !status.is_success() {
                return Err(ApiError::Http {
                    status,
                    body: body.clone(),
                });
            }
            return Err(DecodeError::from_json(&e, Some(path), response).into());
        }
    };
    if raw.code != CODE_OK {
        let error = ProviderError {
            code: Code::Int(raw.code),
            message: raw.message,
            trace_id: raw.trace_id,
            status,
        };
        return Err(match raw.code {
            CODE_TOKEN_INVALID => ApiError::TokenInvalid(error),
            CODE_RATE_LIMITED => ApiError::RateLimited {
                error,
                retry_after: retry_after(response),
            },
            CODE_NOT_FOUND => ApiError::NotFound(error),
            CODE_QUOTA_EXCEEDED => ApiError::QuotaExceeded(error),
            _ => ApiError::Provider(error),
        });
    }
    if raw.data.is_none() {
        return Err(DecodeError::missing_data(response, "data").into());
    }
    // Decode `data` from the whole body, so that the line and column in an error
    // message point into the body the error keeps.
    #[derive(serde::Deserialize)]
    struct DataOf<T> {
        data: T,
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize::<_, DataOf<T>>(&mut de)
        .map(|d| d.data)
        .map_err(|e| DecodeError::from_json(e.inner(), Some(e.path().to_string()), response).into())
}

/// The `Retry-After` header in whole seconds, if present.
pub(crate) fn retry_after(response: &HttpResponse) -> Option<std::time::Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(std::time::Duration::from_secs)
}

impl Endpoint for AccessTokenRequest {
    type Output = AccessTokenData;
    const ID: EndpointId = EndpointId::AccessToken;

    fn validate(&self) -> Result<(), ValidationError> {
        if self.client_id.is_empty() {
            return Err(ValidationError::Empty("clientID"));
        }
        if self.client_secret.is_empty() {
            return Err(ValidationError::Empty("clientSecret"));
        }
        Ok(())
    }
}

impl OfflineDownloadRequest {
    /// A request for `url` with every option left out.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            file_name: None,
            dir_id: None,
            callback_url: None,
        }
    }
}

impl From<&str> for OfflineDownloadRequest {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for OfflineDownloadRequest {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl From<&str> for OssOfflineDownloadRequest {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for OssOfflineDownloadRequest {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl Endpoint for OfflineDownloadRequest {
    type Output = TaskCreated;
    const ID: EndpointId = EndpointId::OfflineDownload;

    /// `url` http(s); `fileName` a valid name; `dirID` not the root (0); `callBackUrl`
    /// http(s).
    fn validate(&self) -> Result<(), ValidationError> {
        validate::http_url("url", &self.url)?;
        if let Some(name) = &self.file_name {
            validate::file_name(name)?;
        }
        if self.dir_id == Some(0) {
            return Err(ValidationError::RootDirectory);
        }
        if let Some(cb) = &self.callback_url {
            validate::http_url("callBackUrl", cb)?;
        }
        Ok(())
    }
}

impl OssOfflineDownloadRequest {
    /// A request for the image at `url`, `type` 1, every option left out.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            file_name: None,
            business_dir_id: None,
            callback_url: None,
            business_type: OSS_BUSINESS_TYPE,
        }
    }
}

impl Endpoint for OssOfflineDownloadRequest {
    type Output = TaskCreated;
    const ID: EndpointId = EndpointId::OssOfflineDownload;

    /// `url` http(s); the file name, or else the URL's last segment, ends in an image
    /// extension; `type` is 1; `callBackUrl` http(s).
    fn validate(&self) -> Result<(), ValidationError> {
        let url = validate::http_url("url", &self.url)?;
        if let Some(name) = &self.file_name {
            validate::file_name(name)?;
        }
        validate::image_source(&url, self.file_name.as_deref())?;
        if self.business_type != OSS_BUSINESS_TYPE {
            return Err(ValidationError::InvalidValue {
                field: "type",
                reason: format!("must be {OSS_BUSINESS_TYPE}, got {}", self.business_type),
            });
        }
        if self
            .business_dir_id
            .as_deref()
            .is_some_and(|d| d.trim().is_empty() || d == "0")
        {
            return Err(ValidationError::RootDirectory);
        }
        if let Some(cb) = &self.callback_url {
            validate::http_url("callBackUrl", cb)?;
        }
        Ok(())
    }
}

/// `GET /api/v1/offline/download/process?taskID=N`: a cloud-drive task's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct OfflineProcessRequest(pub ProcessQuery);

/// `GET /api/v1/oss/offline/download/process?taskID=N`: an image-bed task's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct OssProcessRequest(pub ProcessQuery);

impl OfflineProcessRequest {
    /// The progress request for `task_id`.
    pub fn new(task_id: TaskId) -> Self {
        Self(ProcessQuery { task_id })
    }
}

impl OssProcessRequest {
    /// The progress request for `task_id`.
    pub fn new(task_id: TaskId) -> Self {
        Self(ProcessQuery { task_id })
    }
}

impl Endpoint for OfflineProcessRequest {
    type Output = Process;
    const ID: EndpointId = EndpointId::OfflineProcess;
}

impl Endpoint for OssProcessRequest {
    type Output = Process;
    const ID: EndpointId = EndpointId::OssOfflineProcess;
}

/// The largest callback body [`decode_callback`] reads, in bytes.
pub const CALLBACK_MAX_BYTES: usize = 64 * 1024;

/// Decodes a callback POST body.
///
/// # Errors
///
/// A [`DecodeError`] when the body is larger than [`CALLBACK_MAX_BYTES`], not JSON, or of
/// the wrong shape (with the JSON path that failed).
pub fn decode_callback(body: &[u8]) -> Result<Callback, DecodeError> {
    let response = http::Response::builder()
        .status(StatusCode::OK)
        .body(Bytes::copy_from_slice(
            &body[..body.len().min(CALLBACK_MAX_BYTES + 1)],
        ))
        .unwrap_or_default();
    if body.len() > CALLBACK_MAX_BYTES {
        return Err(DecodeError {
            kind: crate::DecodeErrorKind::Shape,
            status: StatusCode::PAYLOAD_TOO_LARGE,
            content_type: None,
            path: None,
            detail: format!("callback body over {CALLBACK_MAX_BYTES} bytes"),
            body: response.into_body(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let cb = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| DecodeError::from_json(e.inner(), Some(e.path().to_string()), &response))?;
    de.end()
        .map_err(|e| DecodeError::from_json(&e, None, &response))?;
    Ok(cb)
}
