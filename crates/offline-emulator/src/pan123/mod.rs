//! The 123pan half of the emulator: the open platform's token call, the four offline
//! calls (cloud drive and image bed), the OAuth token call and the file calls around
//! them ([`files`]: list, mkdir, detail, infos, download URL, trash), the state behind
//! them ([`state`]) and the tasks' work ([`tasks`]).
//!
//! Every answer is a 123pan envelope `{"code", "message", "data", "x-traceID"}` with
//! `content-type: application/json`. HTTP status is 200 except for an unknown path
//! (404), a wrong method (405) and a body over the limit (413); the envelope code then
//! repeats the HTTP status.

mod files;
pub(crate) mod state;
mod tasks;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::header::ALLOW;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use offline_proto::pan123::{
    url_stored_name, validate_http_url, AccessTokenRequest, DownloadInfoData, DownloadInfoRequest,
    Endpoint, EndpointId, Envelope, FileDetailRequest, FileId, FileInfosData, FileInfosRequest,
    FileListRequest, FileTrashRequest, GrantType, MkdirData, MkdirRequest, OAuthToken,
    OAuthTokenQuery, OfflineDownloadRequest, OssOfflineDownloadRequest, Process, TaskCreated,
    TaskId, TaskStatus, CODE_DUPLICATE_NAME, CODE_NOT_FOUND, OSS_BUSINESS_TYPE, PLATFORM,
    PLATFORM_HEADER,
};
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::common::body::{self, read_body, shape_error, BodyError};
use crate::common::faults::{Action, CreateFault};
use crate::common::json_response;
use crate::common::openapi::Description;
use files::MkdirRefusal;
pub(crate) use files::DOWNLOAD_PREFIX;
use state::{GrantRefusal, State, TaskKind};
use tasks::Job;

/// The largest request body read, in bytes (1 MiB).
const BODY_LIMIT: usize = 1024 * 1024;

/// Envelope code of a malformed request (bad header, body, query or field).
const CODE_BAD_REQUEST: i64 = 400;
/// Envelope code of an unknown or expired token and of wrong client credentials.
const CODE_UNAUTHORIZED: i64 = 401;
/// Envelope code of an unknown task, or a task of the other product.
const CODE_TASK_NOT_FOUND: i64 = 404;
/// Envelope code of a wrong method.
const CODE_METHOD_NOT_ALLOWED: i64 = 405;
/// Envelope code of a body over [`BODY_LIMIT`].
const CODE_TOO_LARGE: i64 = 413;
/// Envelope code of the create refusals the service answers with code 2 (the
/// concurrent-task cap, a duplicate task).
const CODE_CREATE_REFUSED: i64 = offline_proto::pan123::CODE_CREATE_REFUSED;
/// The service's words for the concurrent-task cap.
const TASK_LIMIT_MESSAGE: &str = "同时下载的任务超出最大限制，不能下载";
/// The emulator's words for a duplicate task.
const DUPLICATE_TASK_MESSAGE: &str = "离线任务已存在，请勿重复提交";
/// Envelope code and message of a used-up traffic quota.
const CODE_QUOTA_EXCEEDED: i64 = offline_proto::pan123::CODE_QUOTA_EXCEEDED;
/// Envelope code of a request over the rate limit.
const CODE_RATE_LIMITED: i64 = 429;
/// The message of a request over the rate limit, as the service words it.
const RATE_LIMITED_MESSAGE: &str = "操作频繁，请稍后再试";

/// The 123pan description, as served at [`OPENAPI_PATH`].
const DESCRIPTION_JSON: &str = include_str!("../../../../fixtures/openapi/123pan.json");

/// The 123pan description, parsed: every request is checked against it.
static DESCRIPTION: LazyLock<Description> = LazyLock::new(|| Description::new(DESCRIPTION_JSON));

/// The authorization page of third-party apps (the service's is
/// `https://www.123pan.com/auth`): `GET /auth?client_id&redirect_uri&state[&scope]`,
/// approved at once (the emulator is a test double), answered with a redirect to
/// `redirect_uri?code=CODE&state=STATE`.
pub(crate) const AUTHORIZE_PATH: &str = "/auth";

/// Where the 123pan description is served.
pub(crate) const OPENAPI_PATH: &str = "/openapi.json";

/// `GET /openapi.json`: the 123pan description as generated.
pub(crate) fn description() -> Response<Full<Bytes>> {
    json_response(
        StatusCode::OK,
        Bytes::from_static(DESCRIPTION_JSON.as_bytes()),
    )
}

/// The answer to a request that meets an injected fault that answers without carrying
/// the request out: `None` for the faults that are not answers of the provider
/// (passing, dropping, truncating, the HTTP 503 page).
pub(crate) fn fault_answer(state: &State, action: Action) -> Option<Response<Full<Bytes>>> {
    let fail = match action {
        Action::RateLimited => Fail::rate_limited(),
        Action::TokenExpired => Fail::code(CODE_UNAUTHORIZED, "token is expired"),
        _ => return None,
    };
    Some(respond(Err(fail), state.trace_id()))
}

/// An error answer.
#[derive(Debug)]
struct Fail {
    http: StatusCode,
    code: i64,
    message: String,
    allow: Option<Method>,
}

impl Fail {
    /// An error with HTTP status 200, as the service answers most errors.
    fn code(code: i64, message: impl Into<String>) -> Self {
        Self {
            http: StatusCode::OK,
            code,
            message: message.into(),
            allow: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::code(CODE_BAD_REQUEST, message)
    }

    fn too_large() -> Self {
        Self {
            http: StatusCode::PAYLOAD_TOO_LARGE,
            code: CODE_TOO_LARGE,
            message: format!("request body larger than {BODY_LIMIT} bytes"),
            allow: None,
        }
    }

    fn rate_limited() -> Self {
        Self::code(CODE_RATE_LIMITED, RATE_LIMITED_MESSAGE)
    }
}

impl From<BodyError> for Fail {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(_) => Self::too_large(),
            BodyError::Read(message) => Self::bad_request(message),
        }
    }
}

type Answer = Result<Value, Fail>;

/// Answers one 123pan API call (anything that is not a description, a 6pan path or an
/// admin route). Never panics; every failure is an error envelope.
pub(crate) async fn handle(
    state: &Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let trace_id = state.trace_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if method == Method::GET && path == AUTHORIZE_PATH {
        return authorize_page(state, req.uri().query(), trace_id);
    }
    let unenveloped = EndpointId::from_route(&method, &path) == Some(EndpointId::OAuthToken);
    let answer = route(state, req, peer).await;
    let code = answer.as_ref().map_or_else(|f| f.code, |_| 0);
    debug!(%method, %path, code, trace_id, "answered");
    match answer {
        // The OAuth token call's success is not enveloped.
        Ok(tokens) if unenveloped => json_response(
            StatusCode::OK,
            serde_json::to_vec(&tokens).unwrap_or_default(),
        ),
        answer => respond(answer, trace_id),
    }
}

/// `GET /auth`: approves the app for the emulator's one user and sends the browser
/// back to `redirect_uri` with a new code (single use, 5 minutes) and the `state`
/// given. A wrong `client_id` or a `redirect_uri` that is not http(s) is answered
/// with HTTP 400 and an error envelope (the page cannot redirect then).
fn authorize_page(state: &State, query: Option<&str>, trace_id: String) -> Response<Full<Bytes>> {
    let pairs = query_pairs(query);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let refuse = |message: &str| {
        let mut r = respond(Err(Fail::bad_request(message)), trace_id.clone());
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    };
    if get("client_id") != Some(state.client_id.as_str()) {
        return refuse("unknown client_id");
    }
    let Some(redirect) = get("redirect_uri") else {
        return refuse("redirect_uri is required");
    };
    let Ok(mut target) = validate_http_url("redirect_uri", redirect) else {
        return refuse("redirect_uri must be an http(s) URL");
    };
    let code = state.issue_code(&state.client_id, redirect);
    {
        let mut q = target.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = get("state") {
            q.append_pair("state", s);
        }
    }
    info!("authorization code issued");
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(target.as_str()) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

fn respond(answer: Answer, trace_id: String) -> Response<Full<Bytes>> {
    let (status, allow, envelope) = match answer {
        Ok(data) => (StatusCode::OK, None, Envelope::ok(data, trace_id)),
        Err(fail) => (
            fail.http,
            fail.allow,
            Envelope::error(fail.code, fail.message, trace_id),
        ),
    };
    let body = serde_json::to_vec(&envelope).unwrap_or_else(|e| {
        // Not expected: every data type here serializes.
        warn!(error = %e, "cannot encode an answer");
        br#"{"code":1,"message":"internal error","data":null}"#.to_vec()
    });
    let mut response = json_response(status, body);
    if let Some(method) = allow {
        if let Ok(v) = HeaderValue::from_str(method.as_str()) {
            response.headers_mut().insert(ALLOW, v);
        }
    }
    response
}

async fn route(state: &Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Answer {
    let path = req.uri().path();
    let Some(endpoint) = EndpointId::from_route(req.method(), path) else {
        if let Some(e) = EndpointId::ALL.into_iter().find(|e| e.path() == path) {
            return Err(Fail {
                http: StatusCode::METHOD_NOT_ALLOWED,
                code: CODE_METHOD_NOT_ALLOWED,
                message: format!("method {} not allowed; use {}", req.method(), e.method()),
                allow: Some(e.method()),
            });
        }
        return Err(Fail {
            http: StatusCode::NOT_FOUND,
            code: 404,
            message: format!("no such API: {path}"),
            allow: None,
        });
    };
    check_platform(req.headers())?;
    DESCRIPTION
        .check_headers(req.method(), path, req.headers())
        .map_err(Fail::bad_request)?;
    match endpoint {
        EndpointId::AccessToken => access_token(state, req, peer).await,
        EndpointId::OAuthToken => oauth_token(state, req.uri().query()),
        EndpointId::OfflineDownload => {
            authorize(state, req.headers(), endpoint)?;
            create(state, req, TaskKind::CloudDrive).await
        }
        EndpointId::OssOfflineDownload => {
            authorize(state, req.headers(), endpoint)?;
            create(state, req, TaskKind::ImageBed).await
        }
        EndpointId::OfflineProcess => {
            authorize(state, req.headers(), endpoint)?;
            process(state, endpoint, req.uri().query(), TaskKind::CloudDrive)
        }
        EndpointId::OssOfflineProcess => {
            authorize(state, req.headers(), endpoint)?;
            process(state, endpoint, req.uri().query(), TaskKind::ImageBed)
        }
        EndpointId::FileList => {
            authorize(state, req.headers(), endpoint)?;
            file_list(state, req.uri().query())
        }
        EndpointId::Mkdir => {
            authorize(state, req.headers(), endpoint)?;
            mkdir(state, req).await
        }
        EndpointId::FileDetail => {
            authorize(state, req.headers(), endpoint)?;
            file_detail(state, req.uri().query())
        }
        EndpointId::FileInfos => {
            authorize(state, req.headers(), endpoint)?;
            file_infos(state, req).await
        }
        EndpointId::DownloadInfo => {
            authorize(state, req.headers(), endpoint)?;
            download_info(state, req.uri().query(), req.headers())
        }
        EndpointId::FileTrash => {
            authorize(state, req.headers(), endpoint)?;
            file_trash(state, req).await
        }
    }
}

fn check_platform(headers: &HeaderMap) -> Result<(), Fail> {
    match headers.get(PLATFORM_HEADER).map(HeaderValue::to_str) {
        Some(Ok(v)) if v.trim() == PLATFORM => Ok(()),
        None => Err(Fail::bad_request(format!(
            "missing header Platform: {PLATFORM}"
        ))),
        Some(_) => Err(Fail::bad_request(format!(
            "header Platform must be {PLATFORM}"
        ))),
    }
}

/// Checks the bearer token, then the client's rate limit for `endpoint`.
fn authorize(state: &State, headers: &HeaderMap, endpoint: EndpointId) -> Result<(), Fail> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = state
        .check_token(header)
        .map_err(|refusal| Fail::code(CODE_UNAUTHORIZED, refusal.message()))?;
    if state.acquire(&client, endpoint) {
        Ok(())
    } else {
        Err(Fail::rate_limited())
    }
}

fn to_data<T: Serialize>(data: &T) -> Answer {
    serde_json::to_value(data).map_err(|e| Fail::code(1, format!("internal error: {e}")))
}

async fn access_token(state: &State, req: Request<Incoming>, peer: SocketAddr) -> Answer {
    let body = read_body(req, BODY_LIMIT).await?;
    let parsed = parse_json::<AccessTokenRequest>(&body);
    let key = match &parsed {
        Ok((r, _)) => r.client_id.clone(),
        Err(_) => format!("peer:{}", peer.ip()),
    };
    if !state.acquire(&key, EndpointId::AccessToken) {
        return Err(Fail::rate_limited());
    }
    let (request, json) = parsed?;
    conform(EndpointId::AccessToken, &json)?;
    if request.client_id != state.client_id || request.client_secret.expose() != state.client_secret
    {
        info!(client_id = %request.client_id, "token refused: wrong credentials");
        return Err(Fail::code(
            CODE_UNAUTHORIZED,
            "clientID or clientSecret invalid",
        ));
    }
    let data = state.issue_token(&request.client_id).map_err(|refusal| {
        info!(client_id = %request.client_id, "token refused: the client holds its cap of live tokens");
        Fail::code(CODE_UNAUTHORIZED, refusal.message())
    })?;
    debug!(client_id = %request.client_id, "token issued");
    to_data(&data)
}

/// The fields a create call needs, from either product's request.
struct Create {
    url: String,
    file_name: Option<String>,
    callback_url: Option<String>,
    /// The cloud drive's `dirID`.
    dir: Option<FileId>,
    /// The image bed's `businessDirID`, read as a number (0 when absent or not one).
    business_dir: u64,
}

impl From<OfflineDownloadRequest> for Create {
    fn from(r: OfflineDownloadRequest) -> Self {
        Self {
            url: r.url,
            file_name: r.file_name,
            callback_url: r.callback_url,
            dir: r.dir_id,
            business_dir: 0,
        }
    }
}

impl From<OssOfflineDownloadRequest> for Create {
    fn from(r: OssOfflineDownloadRequest) -> Self {
        Self {
            url: r.url,
            file_name: r.file_name,
            callback_url: r.callback_url,
            dir: None,
            business_dir: r
                .business_dir_id
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(0),
        }
    }
}

/// Reads and checks the create call of `kind` (the checks as one pure function:
/// `check_request` makes the same), returning what the task needs.
fn checked_create(kind: TaskKind, body: &[u8]) -> Result<(Create, String), Fail> {
    let (create, json) = match kind {
        TaskKind::CloudDrive => {
            let (request, json) = parse_json::<OfflineDownloadRequest>(body)?;
            request
                .validate()
                .map_err(|e| Fail::bad_request(e.to_string()))?;
            (Create::from(request), json)
        }
        TaskKind::ImageBed => {
            let (request, json) = parse_json::<OssOfflineDownloadRequest>(body)?;
            if request.business_type != OSS_BUSINESS_TYPE {
                return Err(Fail::bad_request(format!(
                    "type must be {OSS_BUSINESS_TYPE}"
                )));
            }
            request
                .validate()
                .map_err(|e| Fail::bad_request(e.to_string()))?;
            (Create::from(request), json)
        }
    };
    conform(create_endpoint(kind), &json)?;
    let file_name = file_name_of(&create.url, create.file_name.as_deref())?;
    Ok((create, file_name))
}

/// The create call of a product.
fn create_endpoint(kind: TaskKind) -> EndpointId {
    match kind {
        TaskKind::CloudDrive => EndpointId::OfflineDownload,
        TaskKind::ImageBed => EndpointId::OssOfflineDownload,
    }
}

/// A create call (`POST /api/v1/offline/download` or `POST /api/v1/oss/offline/download`).
async fn create(state: &Arc<State>, req: Request<Incoming>, kind: TaskKind) -> Answer {
    let body = read_body(req, BODY_LIMIT).await?;
    let (create, file_name) = checked_create(kind, &body)?;
    if let Some(fault) = state.env.faults.next_create() {
        info!(?fault, ?kind, "create refused (injected fault)");
        return Err(match fault {
            CreateFault::TaskLimit => Fail::code(CODE_CREATE_REFUSED, TASK_LIMIT_MESSAGE),
            CreateFault::DuplicateTask => Fail::code(CODE_CREATE_REFUSED, DUPLICATE_TASK_MESSAGE),
            CreateFault::QuotaExceeded => Fail::code(CODE_QUOTA_EXCEEDED, "traffic quota exceeded"),
        });
    }
    let folder = match kind {
        TaskKind::CloudDrive => state
            .download_folder(create.dir)
            .map_err(|m| Fail::code(CODE_NOT_FOUND, m))?,
        TaskKind::ImageBed => create.business_dir,
    };
    let id = state.create_task(
        kind,
        &create.url,
        &file_name,
        folder,
        create.callback_url.clone(),
    );
    info!(task = %id, ?kind, "task created");
    let job = Job {
        id,
        kind,
        url: create.url,
        file_name,
        callback_url: create.callback_url,
    };
    state.env.spawn_worker(tasks::run(Arc::clone(state), job));
    to_data(&TaskCreated { task_id: id })
}

/// `fileName` when given, else the URL's last path segment, else `download`
/// ([`url_stored_name`], the rule a client looks for the stored file by).
fn file_name_of(url: &str, given: Option<&str>) -> Result<String, Fail> {
    if let Some(name) = given.filter(|n| !n.trim().is_empty()) {
        return Ok(name.to_owned());
    }
    validate_http_url("url", url).map_err(|e| Fail::bad_request(e.to_string()))?;
    Ok(url_stored_name(url))
}

/// `data` of the image-bed progress call: the percentage is an integer.
#[derive(Serialize)]
struct OssProcess {
    process: u8,
    status: TaskStatus,
}

fn process(state: &State, endpoint: EndpointId, query: Option<&str>, kind: TaskKind) -> Answer {
    let id = task_id_of(query)?;
    DESCRIPTION
        .check_query(&endpoint.method(), endpoint.path(), &query_pairs(query))
        .map_err(Fail::bad_request)?;
    let task = state
        .task(id)
        .filter(|t| t.kind == kind)
        .ok_or_else(|| Fail::code(CODE_TASK_NOT_FOUND, "task not found"))?;
    match kind {
        TaskKind::CloudDrive => to_data(&Process {
            process: task.process,
            status: task.status,
        }),
        TaskKind::ImageBed => to_data(&OssProcess {
            // Saturating float-to-int conversion of a value already in 0..=100.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            process: task.process.clamp(0.0, 100.0).floor() as u8,
            status: task.status,
        }),
    }
}

fn task_id_of(query: Option<&str>) -> Result<TaskId, Fail> {
    let value = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| k.eq_ignore_ascii_case("taskID"))
        .map(|(_, v)| v)
        .ok_or_else(|| Fail::bad_request("taskID is required"))?;
    value
        .parse::<TaskId>()
        .map_err(|_| Fail::bad_request(format!("taskID must be a number, got {value:?}")))
}

/// The OAuth token call: a code from the authorize page ([`AUTHORIZE_PATH`], with the
/// client secret and the same `redirect_uri`) or a refresh token (single use; the
/// client secret optional, as OpenList sends it) for a new access token, good for
/// 7200 s, and a new refresh token. Refusals are code 401 envelopes.
fn oauth_token(state: &State, query: Option<&str>) -> Answer {
    let endpoint = EndpointId::OAuthToken;
    let request = oauth_query(query)?;
    if !state.acquire(&request.client_id, endpoint) {
        return Err(Fail::rate_limited());
    }
    let secret_ok = match &request.client_secret {
        Some(s) => s.expose() == state.client_secret,
        None => request.grant_type == GrantType::RefreshToken,
    };
    if request.client_id != state.client_id || !secret_ok {
        return Err(Fail::code(
            CODE_UNAUTHORIZED,
            "client_id or client_secret invalid",
        ));
    }
    let granted = match request.grant_type {
        GrantType::AuthorizationCode => match request.code.as_deref().filter(|c| !c.is_empty()) {
            Some(code) => {
                state.exchange_code(&request.client_id, code, request.redirect_uri.as_deref())
            }
            None => {
                return Err(Fail::bad_request(
                    "code is required with grant_type authorization_code",
                ))
            }
        },
        GrantType::RefreshToken => match request
            .refresh_token
            .as_ref()
            .filter(|t| !t.expose().is_empty())
        {
            Some(token) => state.refresh(&request.client_id, token.expose()),
            None => {
                return Err(Fail::bad_request(
                    "refresh_token is required with grant_type refresh_token",
                ))
            }
        },
        GrantType::Unknown(other) => {
            return Err(Fail::bad_request(format!(
                "unsupported grant_type {other:?}"
            )))
        }
    };
    let (access_token, refresh_token, lifetime) = granted.map_err(|refusal| {
        let message = match refusal {
            GrantRefusal::Code => "authorization code invalid",
            GrantRefusal::RefreshToken => "refresh token invalid",
            GrantRefusal::Tokens(t) => t.message(),
        };
        info!(message, "OAuth grant refused");
        Fail::code(CODE_UNAUTHORIZED, message)
    })?;
    to_data(&OAuthToken {
        access_token,
        expires_in: lifetime.as_secs(),
        refresh_token,
        scope: offline_proto::pan123::DEFAULT_SCOPE.to_owned(),
        token_type: "Bearer".to_owned(),
    })
}

/// The OAuth token call's query, checked against the description and read.
fn oauth_query(query: Option<&str>) -> Result<OAuthTokenQuery, Fail> {
    let endpoint = EndpointId::OAuthToken;
    let pairs = query_pairs(query);
    DESCRIPTION
        .check_query(&endpoint.method(), endpoint.path(), &pairs)
        .map_err(Fail::bad_request)?;
    let object: serde_json::Map<String, Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    serde_path_to_error::deserialize(&Value::Object(object))
        .map_err(|e| Fail::bad_request(shape_error("invalid query", &e)))
}

/// The decoded `name=value` pairs of a query.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Checks a request body against the endpoint's schema in the description: the last
/// check, after the typed parse and the crate's validation, catching what the
/// description states and no Rust code does.
fn conform(endpoint: EndpointId, body: &Value) -> Result<(), Fail> {
    DESCRIPTION
        .check_body(&endpoint.method(), endpoint.path(), body)
        .map_err(Fail::bad_request)
}

/// Reads a JSON body as `T` (the generated wire type), keeping the JSON for the
/// description check. The message says where the shape is wrong.
///
/// A top-level member sent as `null` is taken as absent, as production takes it:
/// published Python clients send unset options so (`callBackUrl: null`, `dirID: null`,
/// `fileName: null`).
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(T, Value), Fail> {
    parse_json_for(None, body)
}

/// [`parse_json`] for `endpoint`'s body, whose top-level keys are also matched to the
/// described names regardless of case ([`canonical_keys`]).
fn parse_json_for<T: serde::de::DeserializeOwned>(
    endpoint: Option<EndpointId>,
    body: &[u8],
) -> Result<(T, Value), Fail> {
    let (mut json, _) = body::parse_json::<Value>(body).map_err(Fail::bad_request)?;
    if let Value::Object(map) = &mut json {
        map.retain(|_, v| !v.is_null());
        if let Some(endpoint) = endpoint {
            canonical_object(endpoint, map);
        }
    }
    let typed = serde_path_to_error::deserialize(&json)
        .map_err(|e| Fail::bad_request(shape_error("invalid request body", &e)))?;
    Ok((typed, json))
}

/// Renames the keys that match a described field name of `endpoint` in another case
/// to that name (`parentid` → `parentID`): p123client lowercases the keys of the mkdir
/// body and the list query (`dict_key_to_lower_merge`) and works against production,
/// so production reads them regardless of case. A key whose described spelling is
/// also present is left as it is.
fn canonical_keys(endpoint: EndpointId, keys: &mut [String]) {
    let names = DESCRIPTION.field_names(&endpoint.method(), endpoint.path());
    let present: Vec<String> = keys.to_vec();
    for key in keys.iter_mut() {
        if names.contains(key) {
            continue;
        }
        if let Some(name) = names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(key) && !present.contains(n))
        {
            key.clone_from(name);
        }
    }
}

/// [`canonical_keys`] on a JSON object's keys.
fn canonical_object(endpoint: EndpointId, map: &mut serde_json::Map<String, Value>) {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    canonical_keys(endpoint, &mut keys);
    let values: Vec<Value> = std::mem::take(map).into_iter().map(|(_, v)| v).collect();
    map.extend(keys.into_iter().zip(values));
}

/// A GET call's query, checked against the description and read as `T`. An empty
/// value (`searchMode=`, as OpenList sends it) is taken as absent; names are matched
/// regardless of case ([`canonical_keys`]).
fn query_of<T: serde::de::DeserializeOwned>(
    endpoint: EndpointId,
    query: Option<&str>,
) -> Result<T, Fail> {
    let (mut keys, values): (Vec<String>, Vec<String>) = query_pairs(query)
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .unzip();
    canonical_keys(endpoint, &mut keys);
    let pairs: Vec<(String, String)> = keys.into_iter().zip(values).collect();
    DESCRIPTION
        .check_query(&endpoint.method(), endpoint.path(), &pairs)
        .map_err(Fail::bad_request)?;
    let object: serde_json::Map<String, Value> = pairs
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str::<Value>(&v)
                .ok()
                .filter(|j| j.is_number() || j.is_boolean())
                .unwrap_or(Value::String(v));
            (k, value)
        })
        .collect();
    serde_path_to_error::deserialize(&Value::Object(object))
        .map_err(|e| Fail::bad_request(shape_error("invalid query", &e)))
}

/// The envelope of an unknown file (the vendor's 下载 page: 5066).
fn file_not_found(id: FileId) -> Fail {
    Fail::code(
        CODE_NOT_FOUND,
        format!("文件不存在，检查传入fileId是否正确 ({id})"),
    )
}

/// `GET /api/v2/file/list`: a page of a folder, or of a search over the drive.
fn file_list(state: &State, query: Option<&str>) -> Answer {
    let request: FileListRequest = query_of(EndpointId::FileList, query)?;
    request
        .validate()
        .map_err(|e| Fail::bad_request(e.to_string()))?;
    let folder = request.parent_file_id;
    let search = request
        .search_data
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| (s, request.search_mode == Some(1)));
    let page = state.with_drive(|tree| {
        if search.is_none() && !tree.is_folder(folder.0) {
            return None;
        }
        Some(tree.page(
            folder.0,
            request.last_file_id.unwrap_or(0),
            request.limit as usize,
            search,
        ))
    });
    to_data(&page.ok_or_else(|| file_not_found(folder))?)
}

/// `POST /upload/v1/file/mkdir`.
async fn mkdir(state: &State, req: Request<Incoming>) -> Answer {
    let body = read_body(req, BODY_LIMIT).await?;
    let (request, json) = parse_json_for::<MkdirRequest>(Some(EndpointId::Mkdir), &body)?;
    request
        .validate()
        .map_err(|e| Fail::bad_request(e.to_string()))?;
    conform(EndpointId::Mkdir, &json)?;
    match state.mkdir(request.parent_id.0, &request.name) {
        Ok(id) => to_data(&MkdirData { dir_id: FileId(id) }),
        Err(MkdirRefusal::Duplicate) => Err(Fail::code(
            CODE_DUPLICATE_NAME,
            "该目录下已经有同名文件夹,无法进行创建",
        )),
        Err(MkdirRefusal::NoParent) => Err(Fail::code(
            CODE_NOT_FOUND,
            format!(
                "parentID {} is not a folder of this drive",
                request.parent_id
            ),
        )),
    }
}

/// `GET /api/v1/file/detail`.
fn file_detail(state: &State, query: Option<&str>) -> Answer {
    let request: FileDetailRequest = query_of(EndpointId::FileDetail, query)?;
    let id = request.file_id;
    let detail = state.with_drive(|tree| tree.detail(id.0));
    to_data(&detail.ok_or_else(|| file_not_found(id))?)
}

/// `POST /api/v1/file/infos`: the entries it knows, in the order asked.
async fn file_infos(state: &State, req: Request<Incoming>) -> Answer {
    let body = read_body(req, BODY_LIMIT).await?;
    let (request, json) = parse_json_for::<FileInfosRequest>(Some(EndpointId::FileInfos), &body)?;
    request
        .validate()
        .map_err(|e| Fail::bad_request(e.to_string()))?;
    conform(EndpointId::FileInfos, &json)?;
    let file_list = state.with_drive(|tree| {
        request
            .file_ids
            .iter()
            .filter_map(|id| tree.entry(id.0))
            .collect()
    });
    to_data(&FileInfosData { file_list })
}

/// `POST /api/v1/file/trash`: every ID to the trash, `data: null`. One unknown ID
/// refuses the whole call with 5066 and trashes nothing (the service documents no
/// answer for it; 5066 is what the other file calls answer for a missing file); an
/// entry already in the trash is no error.
async fn file_trash(state: &State, req: Request<Incoming>) -> Answer {
    let body = read_body(req, BODY_LIMIT).await?;
    let (request, json) = parse_json_for::<FileTrashRequest>(Some(EndpointId::FileTrash), &body)?;
    request
        .validate()
        .map_err(|e| Fail::bad_request(e.to_string()))?;
    conform(EndpointId::FileTrash, &json)?;
    let ids: Vec<u64> = request.file_ids.iter().map(|id| id.0).collect();
    state
        .trash_all(&ids)
        .map_err(|unknown| file_not_found(FileId(unknown)))?;
    Ok(Value::Null)
}

/// `GET /api/v1/file/download_info`: a loopback URL on this server's own host (the
/// request's `Host`) that serves the file for [`files::DOWNLOAD_URL_LIFETIME`].
fn download_info(state: &State, query: Option<&str>, headers: &HeaderMap) -> Answer {
    let request: DownloadInfoRequest = query_of(EndpointId::DownloadInfo, query)?;
    let id = request.file_id;
    let (token, name) = state.issue_link(id.0).ok_or_else(|| file_not_found(id))?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1");
    let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    to_data(&DownloadInfoData {
        download_url: format!("http://{host}{DOWNLOAD_PREFIX}{token}/{name}"),
    })
}

/// `GET /_download/<token>/<name>`: the bytes of the file a download URL names,
/// honouring a `Range` header (HTTP 206); HTTP 404 for an unknown or expired URL.
pub(crate) async fn serve_download(
    state: &State,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let token = req
        .uri()
        .path()
        .strip_prefix(DOWNLOAD_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    match state.linked_file(token) {
        Some((path, len)) => files::serve_file(&path, len, req.headers()).await,
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"unknown or expired download URL",
            )));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

/// The checks [`route`] makes on a 123pan request before it touches any state (no
/// token, rate limit or task lookups), in the same order, as one pure function: for the
/// fuzz target (`offline_emulator::fuzzing::validate_request`). The error is the
/// answer's envelope code and message.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), (i64, String)> {
    let fail = |f: Fail| (f.code, f.message);
    let Some(endpoint) = EndpointId::from_route(method, path) else {
        return Err((
            CODE_METHOD_NOT_ALLOWED,
            format!("no route for {method} {path}"),
        ));
    };
    check_platform(headers).map_err(fail)?;
    DESCRIPTION
        .check_headers(method, path, headers)
        .map_err(|m| (CODE_BAD_REQUEST, m))?;
    if body.len() > BODY_LIMIT {
        return Err(fail(Fail::too_large()));
    }
    let checked = match endpoint {
        EndpointId::AccessToken => parse_json::<AccessTokenRequest>(body)
            .and_then(|(_, json)| conform(EndpointId::AccessToken, &json)),
        EndpointId::OAuthToken => oauth_query(query).map(drop),
        EndpointId::OfflineDownload => checked_create(TaskKind::CloudDrive, body).map(drop),
        EndpointId::OssOfflineDownload => checked_create(TaskKind::ImageBed, body).map(drop),
        EndpointId::OfflineProcess | EndpointId::OssOfflineProcess => {
            task_id_of(query).and_then(|_| {
                DESCRIPTION
                    .check_query(&endpoint.method(), endpoint.path(), &query_pairs(query))
                    .map_err(Fail::bad_request)
            })
        }
        EndpointId::FileList => query_of::<FileListRequest>(endpoint, query).map(drop),
        EndpointId::FileDetail => query_of::<FileDetailRequest>(endpoint, query).map(drop),
        EndpointId::DownloadInfo => query_of::<DownloadInfoRequest>(endpoint, query).map(drop),
        EndpointId::Mkdir => {
            parse_json::<MkdirRequest>(body).and_then(|(_, json)| conform(endpoint, &json))
        }
        EndpointId::FileInfos => {
            parse_json::<FileInfosRequest>(body).and_then(|(_, json)| conform(endpoint, &json))
        }
        EndpointId::FileTrash => {
            parse_json::<FileTrashRequest>(body).and_then(|(_, json)| conform(endpoint, &json))
        }
    };
    checked.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_from_queries() {
        assert_eq!(task_id_of(Some("taskID=100001")).unwrap(), TaskId(100_001));
        assert_eq!(task_id_of(Some("a=1&taskid=7")).unwrap(), TaskId(7));
        assert_eq!(task_id_of(None).unwrap_err().code, CODE_BAD_REQUEST);
        assert_eq!(
            task_id_of(Some("taskID")).unwrap_err().code,
            CODE_BAD_REQUEST
        );
        let e = task_id_of(Some("taskID=abc")).unwrap_err();
        assert!(e.message.contains("must be a number"), "{}", e.message);
    }

    #[test]
    fn file_names() {
        assert_eq!(
            file_name_of("http://h/a/b%20c.bin", None).unwrap(),
            "b c.bin"
        );
        assert_eq!(file_name_of("http://h/", None).unwrap(), "download");
        assert_eq!(file_name_of("http://h/x", Some("y.png")).unwrap(), "y.png");
        assert_eq!(file_name_of("http://h/x", Some(" ")).unwrap(), "x");
    }

    #[test]
    fn envelopes_carry_trace_ids() {
        let r = respond(Err(Fail::rate_limited()), "emu-1-00000000".to_owned());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/json");
    }
}
