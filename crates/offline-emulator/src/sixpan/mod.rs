//! The 6pan half of the emulator (the v1/v2 generation that `docs/wire-notes.md` describes):
//! log in, rotating tokens, the drive's files and upload tokens (`/v1/store/token` as
//! the seeds show it and `/v2/upload/token` as the v2 clients call it, both with
//! instant upload), the storage service under `/wcs` (Wangsu WCS style form and block
//! uploads), parsing links and torrents into signed identity blobs, and offline tasks
//! that really download (http(s) sources, and torrents through loopback web seeds).
//!
//! It answers on the same port as the 123pan half: [`is_sixpan_path`] tells the paths
//! apart (`/v1/...`, `/v2/...`, `/wcs/...`; 123pan lives under `/api/...`).
//!
//! # Answers
//!
//! The API calls answer the envelope `{"status", "result", "code", "success",
//! "message"?, "token"?}` (`offline_proto::sixpan::Envelope`): `success: true, code:
//! "OK"` on success, with `status` 0 on v2 calls and 200 on v1 calls. On errors
//! `status` is 0 on v2 calls and the HTTP status on v1 calls, and `message` says what
//! was wrong. Every authenticated answer (errors included, once the token was
//! accepted) carries a new token in the `qingzhen-token` header; v1 answers also carry
//! it as `Authorization: Bearer <token>` and in the body's `token`.
//!
//! | code | HTTP | when |
//! |---|---|---|
//! | `PARAMETER_ERROR` (emulator's choice) | 400 | a body that is not the expected JSON, a missing or invalid field, anything else the description refuses, an `iginreFiles` that skips every file |
//! | `USER_NOT_FOUND` (emulator's choice) | 400 | login with an account the emulator does not know |
//! | `PASSWORD_ERROR` (emulator's choice) | 400 | login with the wrong password (compared as lowercase MD5 hex) |
//! | `LOGIN_USER_TOO_MUCH` | 400 | more than `sixpan_max_devices` logins within one token lifetime (the answer carries a token good only for `/v2/user/online` and `/v2/user/logoutOther`, which frees places) |
//! | `BEARER_AUTHORIZATION_HEADER_INVALID` | 401 | no `Qingzhen-Token`, an unknown, expired or ended token, or a superseded one after the grace period |
//! | `FILE_NOT_FOUND` | 400 | `parseTorrent` (or `add`) of an etag that no stored file has |
//! | `UNSUPPORTED_FILE` | 400 | `parseTorrent` of a stored file that is not a usable torrent |
//! | `MAGNET_URL_INVALID` | 400 | a magnet link without `xt=urn:btih:` + 40 hex or 32 base32 digits |
//! | `ED2K_URL_INVALID` | 400 | an ed2k link not of the form `ed2k://\|file\|name\|size\|32 hex\|/` |
//! | `UNSUPPORED_PROTOCOL` (sic) | 400 | a link that is not http, https, magnet or ed2k |
//! | `IDENTITY_INVALID` (emulator's choice) | 400 | `add` with an identity whose MAC does not verify (tampered, truncated, or minted elsewhere) |
//! | `API_NOT_FOUND` (emulator's choice) | 404 | an unknown `/v1/...` or `/v2/...` path |
//! | `METHOD_NOT_ALLOWED` (emulator's choice) | 405 | a method other than POST (with `Allow: POST`) |
//! | `REQUEST_TOO_LARGE` (emulator's choice) | 413 | a body over 1 MiB |
//! | `INTERNAL_ERROR` | 500 | the emulator could not read or write its data directory |
//!
//! The storage service answers plain JSON: `{"hash", "key"}` or `{"ctx", "offset"}`,
//! and on errors `{"code": <HTTP status>, "message"}` with that HTTP status (400 bad
//! request or anything the description refuses, 401 missing/unknown/expired upload
//! token or a `Bearer ` prefix, 404, 405, 413 over 4 MiB per chunk, 500).
//!
//! # The description
//!
//! [`OPENAPI_PATH`] serves `fixtures/openapi/6pan.json` with its servers rewritten to
//! this emulator ([`description`]). Every call is checked against it (`conform` for
//! API bodies; `check_form`, `check_path`, `check_headers` and `check_body_as` of
//! `common::openapi` for the storage calls) after the emulator's own checks, so that
//! the more specific code (`IDENTITY_INVALID`, a 401) wins, and before anything
//! changes. The static token ([`EmulatorConfig::static_token`]) is a valid
//! `Qingzhen-Token` and a valid upload token.
//!
//! Identity type codes: 5020 http(s), 5030 BitTorrent (torrent or magnet), and 5040
//! for ed2k links (the emulator's choice; no source names one).

mod auth;
mod offline;
mod storage;
mod tasks;
mod webseed;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use offline_proto::sixpan::{EndpointId, Envelope, ErrorCode};
use offline_proto::Secret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, warn};

use crate::common::body::{self, read_body, BodyError};
use crate::common::config::EmulatorConfig;
use crate::common::faults::Action;
use crate::common::openapi::Description;
use crate::common::{json_response, lock, random_hex, Env};

pub use tasks::{SixpanTaskKind, SixpanTaskSnapshot};

/// The largest body of an API call, in bytes (1 MiB).
const API_BODY_LIMIT: usize = 1024 * 1024;

/// The 6pan description as generated (`servers` name the real hosts; the emulator
/// serves it with them rewritten, see [`Description::with_servers`]).
const DESCRIPTION_JSON: &str = include_str!("../../../../fixtures/openapi/6pan.json");

/// The 6pan description, parsed: every call is checked against it.
static DESCRIPTION: LazyLock<Description> = LazyLock::new(|| Description::new(DESCRIPTION_JSON));

/// The response header that carries the rotated token.
pub(crate) const TOKEN_HEADER: &str = "qingzhen-token";

/// Error code of a malformed request (emulator's choice).
const PARAMETER_ERROR: &str = "PARAMETER_ERROR";
/// Error code of a login with an unknown account (emulator's choice).
const USER_NOT_FOUND: &str = "USER_NOT_FOUND";
/// Error code of a login with a wrong password (emulator's choice).
const PASSWORD_ERROR: &str = "PASSWORD_ERROR";
/// Error code of an identity blob whose MAC does not verify (emulator's choice).
const IDENTITY_INVALID: &str = "IDENTITY_INVALID";
/// Error code of an unknown path (emulator's choice).
const API_NOT_FOUND: &str = "API_NOT_FOUND";
/// Error code of a wrong method (emulator's choice).
const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
/// Error code of a body over [`API_BODY_LIMIT`] (emulator's choice).
const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";

/// Where the 6pan description is served.
pub(crate) const OPENAPI_PATH: &str = "/6pan/openapi.json";

/// `GET /6pan/openapi.json`: the 6pan description (`fixtures/openapi/6pan.json`) with
/// its `servers` pointing at this emulator, as the request's `Host` names it: the API
/// host at `http://<host>` and the storage service at `http://<host>/wcs` (relative
/// `/` and `/wcs` without a usable `Host`).
pub(crate) fn description(headers: &HeaderMap) -> Response<Full<Bytes>> {
    let base = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.trim().parse::<http::uri::Authority>().ok())
        .filter(|a| !a.as_str().contains('@'))
        .map(|a| format!("http://{a}"));
    let (api, storage) = match &base {
        Some(base) => (base.clone(), format!("{base}{}", storage::PREFIX)),
        None => ("/".to_owned(), storage::PREFIX.to_owned()),
    };
    let served = DESCRIPTION.with_servers(&api, &storage);
    let body = serde_json::to_vec_pretty(&served).unwrap_or_else(|e| {
        // Not expected: a JSON value always serializes.
        warn!(error = %e, "cannot encode the 6pan description");
        DESCRIPTION_JSON.as_bytes().to_vec()
    });
    json_response(StatusCode::OK, body)
}

/// The answer to a request that meets an injected fault that answers without carrying
/// the request out: `None` for the faults that are not answers of the provider
/// (passing, dropping, truncating, the HTTP 503 page).
pub(crate) fn fault_answer(action: Action) -> Option<Response<Full<Bytes>>> {
    let body: &'static str = match action {
        Action::RateLimited => {
            r#"{"status":429,"result":null,"code":"TOO_MANY_REQUESTS","success":false,"message":"too many requests"}"#
        }
        Action::TokenExpired => {
            r#"{"status":401,"result":null,"code":"BEARER_AUTHORIZATION_HEADER_INVALID","success":false,"message":"jwt expired"}"#
        }
        _ => return None,
    };
    let status = match action {
        Action::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNAUTHORIZED,
    };
    Some(json_response(status, Bytes::from_static(body.as_bytes())))
}

/// Whether `path` belongs to the 6pan half: `/v1/...`, `/v2/...` and the storage
/// service under `/wcs`.
pub(crate) fn is_sixpan_path(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/v2/") || is_storage_path(path)
}

fn is_storage_path(path: &str) -> bool {
    path == storage::PREFIX || path.starts_with(&format!("{}/", storage::PREFIX))
}

/// Answers one 6pan request (API call or storage call). Never panics; every failure is
/// an error answer.
pub(crate) async fn handle(
    state: &Arc<SixpanState>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = if is_storage_path(&path) {
        storage::handle(state, req).await
    } else {
        api(state, req).await
    };
    debug!(%method, %path, status = response.status().as_u16(), "6pan answered");
    response
}

/// The user the emulator knows (one account).
#[derive(Debug, Clone)]
pub(crate) struct User {
    /// The numeric ID (`userId` of stored files).
    pub(crate) id: i64,
    /// The user's identity, 32 hex digits (`userIdentity` of tasks).
    pub(crate) identity: String,
    /// When the account was made (the emulator's start), ms since the epoch.
    pub(crate) created: i64,
}

/// The keys this emulator signs with, random per emulator.
struct Keys {
    /// The MAC key of identity blobs.
    identity: [u8; 32],
    /// The signing key of login tokens (HS256 JWTs).
    jwt: [u8; 32],
    /// The signing key of upload tokens.
    upload: [u8; 32],
    /// The upload tokens' access key, 40 hex digits.
    access_key: String,
}

/// The 6pan half's counters, as `GET /_emulator/stats` lists them under `6pan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SixpanStats {
    /// Logins that succeeded.
    pub logins: u64,
    /// Tasks created by `/v2/offline/add` (one per task of the call).
    pub tasks_created: u64,
    /// `/v1/store/token` calls answered with the created file at once (秒传).
    pub instant_uploads: u64,
    /// Chunks (`mkblk` and `bput`) the storage service accepted.
    pub uploaded_chunks: u64,
}

/// Everything the 6pan half remembers.
pub(crate) struct SixpanState {
    /// What both halves share (clock, HTTP client, stop signal, limits, workers).
    env: Arc<Env>,
    account: String,
    password: String,
    /// Lowercase hex MD5 of the password, as a login sends it.
    password_md5: String,
    user: User,
    max_devices: usize,
    rotation_grace: Duration,
    token_lifetime: Duration,
    upload_token_lifetime: Duration,
    simulated_duration: Duration,
    /// `<data_dir>/6pan`.
    root: PathBuf,
    keys: Keys,
    auth: Mutex<auth::Sessions>,
    store: Mutex<storage::Store>,
    tasks: Mutex<tasks::Tasks>,
    logins: AtomicU64,
    tasks_created: AtomicU64,
    instant_uploads: AtomicU64,
    uploaded_chunks: AtomicU64,
}

impl SixpanState {
    /// The state for `config`, keeping its files under `<data_dir>/6pan` (created when
    /// first needed).
    pub(crate) fn new(config: &EmulatorConfig, env: Arc<Env>) -> Self {
        Self {
            account: config.sixpan_account.clone(),
            password: config.sixpan_password.clone(),
            password_md5: md5_hex(config.sixpan_password.as_bytes()),
            user: User {
                id: 1,
                identity: random_hex(16),
                created: env.now_ms(),
            },
            max_devices: config.sixpan_max_devices,
            rotation_grace: config.sixpan_rotation_grace,
            token_lifetime: config.token_lifetime,
            upload_token_lifetime: config.sixpan_upload_token_lifetime,
            simulated_duration: config.sixpan_simulated_duration,
            root: env.data_dir.join("6pan"),
            keys: Keys {
                identity: rand::random(),
                jwt: rand::random(),
                upload: rand::random(),
                access_key: format!("{}{}", env.token_prefix, random_hex(20)),
            },
            auth: Mutex::new(auth::Sessions::default()),
            store: Mutex::new(storage::Store::default()),
            tasks: Mutex::new(tasks::Tasks::default()),
            logins: AtomicU64::new(0),
            tasks_created: AtomicU64::new(0),
            instant_uploads: AtomicU64::new(0),
            uploaded_chunks: AtomicU64::new(0),
            env,
        }
    }

    /// The account a login accepts.
    pub(crate) fn account(&self) -> &str {
        &self.account
    }

    /// The password a login accepts (sent as its lowercase MD5 hex).
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> SixpanStats {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        SixpanStats {
            logins: get(&self.logins),
            tasks_created: get(&self.tasks_created),
            instant_uploads: get(&self.instant_uploads),
            uploaded_chunks: get(&self.uploaded_chunks),
        }
    }

    /// Ends every token issued so far, at once, as a login elsewhere would.
    pub(crate) fn expire_tokens(&self) {
        lock(&self.auth).revoke_all();
    }

    /// Where the blob of `etag` is stored, if one is.
    pub(crate) fn stored_blob(&self, etag: &str) -> Option<PathBuf> {
        self.blob(etag).map(|b| b.path)
    }

    /// A folder under `<data_dir>/6pan`.
    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Which generation a call belongs to: it decides the envelope's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn of_path(path: &str) -> Self {
        if path.starts_with("/v1/") {
            Self::V1
        } else {
            Self::V2
        }
    }
}

/// The API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Login,
    UserInfo,
    UserOnline,
    LogoutOther,
    StoreToken,
    UploadToken,
    ParseUrl,
    ParseTorrent,
    Add,
    Page,
    Delete,
}

impl Call {
    fn of_path(path: &str) -> Option<Self> {
        Some(match path {
            "/v2/user/login" => Self::Login,
            "/v2/user/info" => Self::UserInfo,
            "/v2/user/online" => Self::UserOnline,
            "/v2/user/logoutOther" => Self::LogoutOther,
            "/v1/store/token" => Self::StoreToken,
            "/v2/upload/token" => Self::UploadToken,
            "/v2/offline/parseUrl" => Self::ParseUrl,
            "/v2/offline/parseTorrent" => Self::ParseTorrent,
            "/v2/offline/add" => Self::Add,
            "/v2/offline/page" => Self::Page,
            "/v2/offline/delete" => Self::Delete,
            _ => return None,
        })
    }
}

/// An error answer of an API call.
#[derive(Debug)]
pub(crate) struct ApiError {
    http: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(http: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            http,
            code: ErrorCode::from(code),
            message: message.into(),
        }
    }

    /// HTTP 400 with `code`.
    fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// HTTP 400 `PARAMETER_ERROR`.
    fn parameter(message: impl Into<String>) -> Self {
        Self::bad(PARAMETER_ERROR, message)
    }

    /// HTTP 500 `INTERNAL_ERROR`.
    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
    }
}

type Answer = Result<Value, ApiError>;

async fn api(state: &Arc<SixpanState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let version = Version::of_path(&path);
    let Some(call) = Call::of_path(&path) else {
        return envelope(
            version,
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                API_NOT_FOUND,
                format!("no such API: {path}"),
            )),
            None,
        );
    };
    if req.method() != Method::POST {
        let mut response = envelope(
            version,
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                METHOD_NOT_ALLOWED,
                format!("method {} not allowed; use POST", req.method()),
            )),
            None,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if let Err(message) = DESCRIPTION.check_headers(req.method(), &path, req.headers()) {
        return envelope(version, Err(ApiError::parameter(message)), None);
    }
    if call == Call::Login {
        let answer = match read_body(req, API_BODY_LIMIT).await {
            Ok(body) => state.login(&body),
            Err(e) => Err((e.into(), None)),
        };
        return match answer {
            Ok((user, token)) => envelope(version, Ok(user), Some(token)),
            Err((e, token)) => envelope(version, Err(e), token),
        };
    }
    let limited_ok = matches!(call, Call::UserOnline | Call::LogoutOther);
    let token = match state.authenticate(req.headers(), limited_ok) {
        Ok(token) => token,
        Err(refusal) => {
            return envelope(
                version,
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::BearerAuthorizationHeaderInvalid.as_str(),
                    refusal.message(),
                )),
                None,
            )
        }
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let answer = match read_body(req, API_BODY_LIMIT).await {
        Err(e) => Err(e.into()),
        Ok(body) => match call {
            // Answered above, before authentication.
            Call::Login => Err(ApiError::internal("login answered out of turn")),
            Call::UserInfo => state.user_info_call(&body),
            Call::UserOnline => state.online(&body, &token),
            Call::LogoutOther => state.logout_other(&body),
            Call::StoreToken => state.store_token(&body, host.as_deref()).await,
            Call::UploadToken => state.upload_token(&body, host.as_deref()).await,
            Call::ParseUrl => state.parse_url(&body),
            Call::ParseTorrent => state.parse_torrent(&body).await,
            Call::Add => state.add(&body).await,
            Call::Page => state.page(&body),
            Call::Delete => state.delete(&body),
        },
    };
    envelope(version, answer, Some(token))
}

/// The envelope answer; `token` is the new token to hand out.
fn envelope(version: Version, answer: Answer, token: Option<String>) -> Response<Full<Bytes>> {
    let body_token = match version {
        Version::V1 => token.clone().map(Secret::new),
        Version::V2 => None,
    };
    let (http, envelope) = match answer {
        Ok(result) => (
            StatusCode::OK,
            Envelope {
                status: match version {
                    Version::V1 => 200,
                    Version::V2 => 0,
                },
                result: Some(result),
                code: ErrorCode::Ok,
                success: true,
                message: None,
                token: body_token,
            },
        ),
        Err(e) => (
            e.http,
            Envelope {
                status: match version {
                    Version::V1 => i64::from(e.http.as_u16()),
                    Version::V2 => 0,
                },
                result: None,
                code: e.code,
                success: false,
                message: Some(e.message),
                token: body_token,
            },
        ),
    };
    let body = serde_json::to_vec(&envelope).unwrap_or_else(|e| {
        // Not expected: every result here serializes.
        warn!(error = %e, "cannot encode a 6pan answer");
        br#"{"status":0,"result":null,"code":"INTERNAL_ERROR","success":false}"#.to_vec()
    });
    let mut response = json_response(http, body);
    let headers = response.headers_mut();
    if let Some(token) = token {
        if let Ok(value) = HeaderValue::from_str(&token) {
            headers.insert(TOKEN_HEADER, value);
        }
        if version == Version::V1 {
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                headers.insert(AUTHORIZATION, value);
            }
        }
    }
    response
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                REQUEST_TOO_LARGE,
                e.message(),
            ),
            BodyError::Read(message) => Self::parameter(message),
        }
    }
}

/// Reads a JSON body as `T`, keeping the JSON for the description check
/// ([`conform`]); the message says where the shape is wrong.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<(T, Value), ApiError> {
    body::parse_json(body).map_err(ApiError::parameter)
}

/// Checks a JSON body against the call's request schema in the 6pan description: the
/// last check of every API call, after the typed parse and the emulator's own checks
/// and before anything is changed, catching what the description states and no Rust
/// code does. A refusal is HTTP 400 `PARAMETER_ERROR`.
fn conform(endpoint: EndpointId, body: &Value) -> Result<(), ApiError> {
    DESCRIPTION
        .check_body(&endpoint.method(), endpoint.path(), body)
        .map_err(ApiError::parameter)
}

fn to_value<T: serde::Serialize>(value: &T) -> Answer {
    serde_json::to_value(value)
        .map_err(|e| ApiError::internal(format!("cannot encode the answer: {e}")))
}

/// Lowercase hex MD5 of `data`.
pub(crate) fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    crate::common::hex(&md5::Md5::digest(data))
}

/// Whether `text` is `len` lowercase hex digits.
pub(crate) fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A folder path as the drive keeps it: `:torrent` for the torrent folder, else `/`
/// followed by the non-empty components joined with `/` (`/` for the root).
pub(crate) fn normalize_folder(path: &str) -> String {
    let path = path.trim();
    if path == ":torrent" {
        return path.to_owned();
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

/// A header's value, trimmed, if present and text.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The checks of a 6pan request before any state is touched, as one pure function for
/// the fuzz target (`offline_emulator::fuzzing::validate_request`): the API calls'
/// description checks and typed parse, and the storage calls' path, header and body
/// checks.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_request(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    use http::header::CONTENT_TYPE;
    use offline_proto::sixpan::{
        AddRequest, DeleteRequest, LoginRequest, LogoutOtherRequest, PageRequest,
        ParseTorrentRequest, ParseUrlRequest, StoreTokenRequest, UploadTokenRequest,
        UserInfoRequest, UserOnlineRequest,
    };

    /// An API call's body: JSON, read as the request type, validated, and checked
    /// against the description.
    fn api<T>(endpoint: EndpointId, body: &[u8]) -> Result<(), String>
    where
        T: DeserializeOwned + offline_proto::sixpan::api::Endpoint,
    {
        let json: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let request: T = serde_path_to_error::deserialize(&json).map_err(|e| e.to_string())?;
        request.validate().map_err(|e| e.to_string())?;
        DESCRIPTION.check_body(&endpoint.method(), endpoint.path(), &json)
    }

    let described = &*DESCRIPTION;
    if let Some(below) = path.strip_prefix(storage::PREFIX) {
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
        EndpointId::UserOnline => api::<UserOnlineRequest>(endpoint, body),
        EndpointId::LogoutOther => api::<LogoutOtherRequest>(endpoint, body),
        EndpointId::StoreToken => api::<StoreTokenRequest>(endpoint, body),
        EndpointId::UploadToken => api::<UploadTokenRequest>(endpoint, body),
        EndpointId::ParseUrl => api::<ParseUrlRequest>(endpoint, body),
        EndpointId::ParseTorrent => api::<ParseTorrentRequest>(endpoint, body),
        EndpointId::AddTasks => api::<AddRequest>(endpoint, body),
        EndpointId::ListTasks => api::<PageRequest>(endpoint, body),
        EndpointId::DeleteTasks => api::<DeleteRequest>(endpoint, body),
        // Storage calls live under `/wcs`; not reached.
        _ => Err(format!("{path} is a storage call")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_told_apart() {
        crate::common::check_table(
            is_sixpan_path,
            [
                ("/v2/user/login", true),
                ("/v1/store/token", true),
                ("/wcs/mkblk/4/0", true),
                ("/wcs", true),
                ("/wcsx", false),
                ("/api/v1/offline/download", false),
                ("/openapi.json", false),
            ],
        );
    }

    #[test]
    fn folders() {
        crate::common::check_table(
            normalize_folder,
            [
                ("", "/"),
                ("/", "/"),
                ("ab//c/", "/ab/c"),
                (":torrent", ":torrent"),
            ],
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(md5_hex(b"password"), "5f4dcc3b5aa765d61d8327deb882cf99");
        assert!(is_lower_hex(&random_hex(16), 32));
        assert!(!is_lower_hex("ABCDEF0123456789abcdef0123456789", 32));
    }
}
