//! The HTTP side: the accept loop, one hyper HTTP/1.1 connection per client, routing,
//! and the 123pan endpoints.
//!
//! Every answer is a 123pan envelope `{"code", "message", "data", "x-traceID"}` with
//! `content-type: application/json`. HTTP status is 200 except for an unknown path
//! (404), a wrong method (405) and a body over the limit (413); the envelope code then
//! repeats the HTTP status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;

use crate::faults::Action;
use hyper_util::rt::{TokioIo, TokioTimer};
use offline_proto::pan123::{
    url_file_name, validate_http_url, AccessTokenRequest, Endpoint, EndpointId, Envelope,
    GrantType, OAuthTokenQuery, OfflineDownloadRequest, OssOfflineDownloadRequest, Process,
    TaskCreated, TaskId, TaskStatus, OSS_BUSINESS_TYPE, PLATFORM, PLATFORM_HEADER,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::fetch::{self, cancelled, Job};
use crate::openapi;
use crate::state::{Shared, TaskKind};

/// The largest request body read, in bytes (1 MiB).
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;
/// Bytes of an oversized body read and thrown away so the client sees the answer.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How long a client may take to send headers or a body chunk.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connections and workers get to finish after a stop.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

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
/// Envelope code of a request over the rate limit.
const CODE_RATE_LIMITED: i64 = 429;
/// The message of a request over the rate limit, as the service words it.
const RATE_LIMITED_MESSAGE: &str = "操作频繁，请稍后再试";

/// Accepts connections until the emulator stops, then lets open connections finish
/// (at most [`GRACE`]).
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = cancelled(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    while connections.try_join_next().is_some() {}
                    connections.spawn(serve_connection(stream, peer, shared.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        connections.shutdown().await;
    }
    debug!("accept loop ended");
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { with_faults(&shared, req, peer).await }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = cancelled(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            if let Ok(Err(e)) = tokio::time::timeout(GRACE, conn.as_mut()).await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    }
}

/// The connection is closed on purpose (an injected fault).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped (injected fault)")
    }
}

impl std::error::Error for Dropped {}

/// Answers `req` under the faults in force (the descriptions are never faulted).
async fn with_faults(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let path = req.uri().path();
    if path.ends_with("openapi.json") {
        return Ok(handle(shared, req, peer).await);
    }
    if path == FAULTS_PATH {
        return Ok(faults_route(shared, req).await);
    }
    let sixpan = crate::sixpan::is_sixpan_path(path);
    let (action, latency) = shared.faults.next();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let plain = |status: StatusCode, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        r
    };
    let json = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    match action {
        Action::Pass => Ok(handle(shared, req, peer).await),
        Action::ServerError => Ok(plain(StatusCode::SERVICE_UNAVAILABLE, "<html><body>503 Service Unavailable</body></html>")),
        Action::DropBefore => Err(Dropped),
        Action::RateLimited if sixpan => Ok(json(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"status":429,"result":null,"code":"TOO_MANY_REQUESTS","success":false,"message":"too many requests"}"#.to_owned(),
        )),
        Action::RateLimited => Ok(respond(Err(Fail::rate_limited()), shared.trace_id())),
        Action::TokenExpired if sixpan => Ok(json(
            StatusCode::UNAUTHORIZED,
            r#"{"status":401,"result":null,"code":"BEARER_AUTHORIZATION_HEADER_INVALID","success":false,"message":"jwt expired"}"#.to_owned(),
        )),
        Action::TokenExpired => Ok(respond(Err(Fail::code(CODE_TOKEN_INVALID_FAULT, "token is expired")), shared.trace_id())),
        Action::DropAfter => {
            let _ = handle(shared, req, peer).await;
            Err(Dropped)
        }
        Action::Truncate => {
            let response = handle(shared, req, peer).await;
            let (parts, body) = response.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            // Half of the JSON, with an honest length: the client reads a body that
            // ends in the middle of a value.
            Ok(Response::from_parts(parts, Full::new(bytes.slice(..bytes.len() / 2))))
        }
    }
}

/// Where the standalone emulator's faults are read (`GET`) and switched (`PUT`, a
/// [`crate::Faults`] as JSON).
pub(crate) const FAULTS_PATH: &str = "/_emulator/faults";

async fn faults_route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Vec<u8>| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    if req.method() == Method::PUT {
        let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(
            req.into_body(),
            64 * 1024,
        ))
        .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    b"{\"error\":\"body too large\"}".to_vec(),
                )
            }
        };
        match serde_json::from_slice::<crate::Faults>(&body) {
            Ok(f) => shared.faults.set(f),
            Err(e) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": e.to_string()})
                        .to_string()
                        .into_bytes(),
                )
            }
        }
    }
    reply(
        StatusCode::OK,
        serde_json::to_vec(&shared.faults.get()).unwrap_or_default(),
    )
}

/// The code of an expired token (123pan).
const CODE_TOKEN_INVALID_FAULT: i64 = 401;

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

type Answer = Result<Value, Fail>;

/// Where the 123pan description is served.
pub(crate) const OPENAPI_PATH: &str = "/openapi.json";

async fn handle(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if req.uri().path() == OPENAPI_PATH && matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut response = Response::new(Full::new(Bytes::from_static(
            openapi::PAN123_JSON.as_bytes(),
        )));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return response;
    }
    if req.uri().path() == crate::sixpan::OPENAPI_PATH
        && matches!(*req.method(), Method::GET | Method::HEAD)
    {
        return crate::sixpan::description(req.headers());
    }
    if crate::sixpan::is_sixpan_path(req.uri().path()) {
        return crate::sixpan::handle(&shared.sixpan, req).await;
    }
    let trace_id = shared.trace_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let answer = route(shared, req, peer).await;
    let code = answer.as_ref().map_or_else(|f| f.code, |_| 0);
    debug!(%method, %path, code, trace_id, "answered");
    respond(answer, trace_id)
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
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(method) = allow {
        if let Ok(v) = HeaderValue::from_str(method.as_str()) {
            response.headers_mut().insert(ALLOW, v);
        }
    }
    response
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>, peer: SocketAddr) -> Answer {
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
    openapi::PAN123
        .check_headers(req.method(), path, req.headers())
        .map_err(Fail::bad_request)?;
    match endpoint {
        EndpointId::AccessToken => access_token(shared, req, peer).await,
        EndpointId::OAuthToken => oauth_token(shared, req.uri().query()),
        EndpointId::OfflineDownload => {
            authorize(shared, req.headers(), endpoint)?;
            create_cloud(shared, req).await
        }
        EndpointId::OssOfflineDownload => {
            authorize(shared, req.headers(), endpoint)?;
            create_image(shared, req).await
        }
        EndpointId::OfflineProcess => {
            authorize(shared, req.headers(), endpoint)?;
            process(shared, endpoint, req.uri().query(), TaskKind::CloudDrive)
        }
        EndpointId::OssOfflineProcess => {
            authorize(shared, req.headers(), endpoint)?;
            process(shared, endpoint, req.uri().query(), TaskKind::ImageBed)
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
fn authorize(shared: &Shared, headers: &HeaderMap, endpoint: EndpointId) -> Result<(), Fail> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = shared
        .check_token(header)
        .map_err(|refusal| Fail::code(CODE_UNAUTHORIZED, refusal.message()))?;
    if shared.acquire(&client, endpoint) {
        Ok(())
    } else {
        Err(Fail::rate_limited())
    }
}

fn to_data<T: Serialize>(data: &T) -> Answer {
    serde_json::to_value(data).map_err(|e| Fail::code(1, format!("internal error: {e}")))
}

async fn access_token(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Answer {
    let body = read_request_body(req).await?;
    let parsed = parse_json::<AccessTokenRequest>(&body);
    let key = match &parsed {
        Ok((r, _)) => r.client_id.clone(),
        Err(_) => format!("peer:{}", peer.ip()),
    };
    if !shared.acquire(&key, EndpointId::AccessToken) {
        return Err(Fail::rate_limited());
    }
    let (request, json) = parsed?;
    conform(EndpointId::AccessToken, &json)?;
    if request.client_id != shared.client_id
        || request.client_secret.expose() != shared.client_secret
    {
        info!(client_id = %request.client_id, "token refused: wrong credentials");
        return Err(Fail::code(
            CODE_UNAUTHORIZED,
            "clientID or clientSecret invalid",
        ));
    }
    let data = shared.issue_token(&request.client_id);
    debug!(client_id = %request.client_id, "token issued");
    to_data(&data)
}

async fn create_cloud(shared: &Arc<Shared>, req: Request<Incoming>) -> Answer {
    let body = read_request_body(req).await?;
    let (request, json) = parse_json::<OfflineDownloadRequest>(&body)?;
    request
        .validate()
        .map_err(|e| Fail::bad_request(e.to_string()))?;
    conform(EndpointId::OfflineDownload, &json)?;
    let file_name = file_name_of(&request.url, request.file_name.as_deref())?;
    let id = start_task(
        shared,
        TaskKind::CloudDrive,
        request.url,
        file_name,
        request.callback_url,
    );
    to_data(&TaskCreated { task_id: id })
}

async fn create_image(shared: &Arc<Shared>, req: Request<Incoming>) -> Answer {
    let body = read_request_body(req).await?;
    let (request, json) = parse_json::<OssOfflineDownloadRequest>(&body)?;
    if request.business_type != OSS_BUSINESS_TYPE {
        return Err(Fail::bad_request(format!(
            "type must be {OSS_BUSINESS_TYPE}"
        )));
    }
    request
        .validate()
        .map_err(|e| Fail::bad_request(e.to_string()))?;
    conform(EndpointId::OssOfflineDownload, &json)?;
    let file_name = file_name_of(&request.url, request.file_name.as_deref())?;
    let id = start_task(
        shared,
        TaskKind::ImageBed,
        request.url,
        file_name,
        request.callback_url,
    );
    to_data(&TaskCreated { task_id: id })
}

/// `fileName` when given, else the URL's last path segment, else `download`.
fn file_name_of(url: &str, given: Option<&str>) -> Result<String, Fail> {
    if let Some(name) = given.filter(|n| !n.trim().is_empty()) {
        return Ok(name.to_owned());
    }
    let parsed = validate_http_url("url", url).map_err(|e| Fail::bad_request(e.to_string()))?;
    let name = url_file_name(&parsed);
    Ok(if name.trim().is_empty() {
        "download".to_owned()
    } else {
        name
    })
}

fn start_task(
    shared: &Arc<Shared>,
    kind: TaskKind,
    url: String,
    file_name: String,
    callback_url: Option<String>,
) -> TaskId {
    let id = shared.create_task(kind, &url, &file_name, callback_url.clone());
    info!(task = %id, ?kind, "task created");
    let job = Job {
        id,
        kind,
        url,
        file_name,
        callback_url,
    };
    shared.spawn_worker(fetch::run(shared.clone(), job));
    id
}

/// `data` of the image-bed progress call: the percentage is an integer.
#[derive(Serialize)]
struct OssProcess {
    process: u8,
    status: TaskStatus,
}

fn process(shared: &Shared, endpoint: EndpointId, query: Option<&str>, kind: TaskKind) -> Answer {
    let id = task_id_of(query)?;
    openapi::PAN123
        .check_query(&endpoint.method(), endpoint.path(), &query_pairs(query))
        .map_err(Fail::bad_request)?;
    let task = shared
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

/// The OAuth token call. The emulator has no authorization page, so it knows no
/// authorization code and has issued no refresh token: after checking the query and
/// the client's credentials it refuses the code or refresh token with code 401.
fn oauth_token(shared: &Shared, query: Option<&str>) -> Answer {
    let endpoint = EndpointId::OAuthToken;
    let request = oauth_query(query)?;
    if !shared.acquire(&request.client_id, endpoint) {
        return Err(Fail::rate_limited());
    }
    if request.client_id != shared.client_id
        || request.client_secret.expose() != shared.client_secret
    {
        return Err(Fail::code(
            CODE_UNAUTHORIZED,
            "client_id or client_secret invalid",
        ));
    }
    match request.grant_type {
        GrantType::AuthorizationCode if request.code.as_deref().is_some_and(|c| !c.is_empty()) => {
            Err(Fail::code(CODE_UNAUTHORIZED, "authorization code invalid"))
        }
        GrantType::AuthorizationCode => Err(Fail::bad_request(
            "code is required with grant_type authorization_code",
        )),
        GrantType::RefreshToken
            if request
                .refresh_token
                .as_ref()
                .is_some_and(|t| !t.expose().is_empty()) =>
        {
            Err(Fail::code(CODE_UNAUTHORIZED, "refresh token invalid"))
        }
        GrantType::RefreshToken => Err(Fail::bad_request(
            "refresh_token is required with grant_type refresh_token",
        )),
        GrantType::Unknown(other) => Err(Fail::bad_request(format!(
            "unsupported grant_type {other:?}"
        ))),
    }
}

/// The OAuth token call's query, checked against the description and read.
fn oauth_query(query: Option<&str>) -> Result<OAuthTokenQuery, Fail> {
    let endpoint = EndpointId::OAuthToken;
    let pairs = query_pairs(query);
    openapi::PAN123
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
    openapi::PAN123
        .check_body(&endpoint.method(), endpoint.path(), body)
        .map_err(Fail::bad_request)
}

/// `what at `path`: error`, or `what: error` at the root.
fn shape_error(what: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path.is_empty() || path == "." {
        format!("{what}: {}", e.inner())
    } else {
        format!("{what} at `{path}`: {}", e.inner())
    }
}

/// Reads a JSON body as `T` (the generated wire type), keeping the JSON for the
/// description check. The message says where the shape is wrong.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<(T, Value), Fail> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Fail::bad_request("request body is empty; JSON expected"));
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| Fail::bad_request(format!("invalid request body: {e}")))?;
    let typed = serde_path_to_error::deserialize(&json)
        .map_err(|e| Fail::bad_request(shape_error("invalid request body", &e)))?;
    Ok((typed, json))
}

async fn read_request_body(req: Request<Incoming>) -> Result<Bytes, Fail> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    read_body(req.into_body(), declared).await
}

/// Reads a body of at most [`BODY_LIMIT`] bytes. An oversized body is read on (up to
/// [`DRAIN_LIMIT`]) and thrown away, so the client gets to read the 413 answer.
async fn read_body(mut body: Incoming, declared: Option<u64>) -> Result<Bytes, Fail> {
    let limit = BODY_LIMIT as u64;
    if declared.is_some_and(|n| n > limit) {
        drain(body).await;
        return Err(Fail::too_large());
    }
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(REQUEST_TIMEOUT, body.frame()).await {
            Err(_) => return Err(Fail::bad_request("timed out reading the request body")),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => {
                return Err(Fail::bad_request(format!(
                    "cannot read the request body: {e}"
                )))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > BODY_LIMIT {
                        drain(body).await;
                        return Err(Fail::too_large());
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
    openapi::PAN123
        .check_headers(method, path, headers)
        .map_err(|m| (CODE_BAD_REQUEST, m))?;
    if body.len() > BODY_LIMIT {
        return Err(fail(Fail::too_large()));
    }
    let checked =
        match endpoint {
            EndpointId::AccessToken => parse_json::<AccessTokenRequest>(body)
                .and_then(|(_, json)| conform(EndpointId::AccessToken, &json)),
            EndpointId::OAuthToken => oauth_query(query).map(drop),
            EndpointId::OfflineDownload => {
                parse_json::<OfflineDownloadRequest>(body).and_then(|(request, json)| {
                    request
                        .validate()
                        .map_err(|e| Fail::bad_request(e.to_string()))?;
                    conform(endpoint, &json)?;
                    file_name_of(&request.url, request.file_name.as_deref()).map(drop)
                })
            }
            EndpointId::OssOfflineDownload => parse_json::<OssOfflineDownloadRequest>(body)
                .and_then(|(request, json)| {
                    request
                        .validate()
                        .map_err(|e| Fail::bad_request(e.to_string()))?;
                    conform(endpoint, &json)?;
                    file_name_of(&request.url, request.file_name.as_deref()).map(drop)
                }),
            EndpointId::OfflineProcess | EndpointId::OssOfflineProcess => task_id_of(query)
                .and_then(|_| {
                    openapi::PAN123
                        .check_query(&endpoint.method(), endpoint.path(), &query_pairs(query))
                        .map_err(Fail::bad_request)
                }),
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
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }
}
