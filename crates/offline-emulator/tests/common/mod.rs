//! Helpers shared by the integration tests: starting emulators in paused time, a tiny
//! JSON client for each provider, small loopback servers (hyper and raw TCP) to act as
//! download sources and callback receivers, and bounded polling.
//!
//! Every test runs in tokio's paused time (`#[tokio::test(start_paused = true)]`) and
//! starts its emulators through [`start`] (or [`pan123`] / [`sixpan`]), which also
//! starts [`tick`]: the emulator reads time through its clock, which follows paused
//! time, so token lifetimes, rate limits, progress pacing and callback backoff take no
//! real time.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{
    Emulator, EmulatorConfig, EndpointId, RunningEmulator, SixpanTaskSnapshot, TaskSnapshot,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// The longest any poll loop in the tests waits (paused time).
pub(crate) const POLL_LIMIT: Duration = Duration::from_secs(10);
/// The pause between two polls (paused time).
pub(crate) const POLL_STEP: Duration = Duration::from_millis(50);

/// The cloud-drive create path.
pub(crate) const CREATE: &str = "/api/v1/offline/download";
/// The cloud-drive progress path.
pub(crate) const PROCESS: &str = "/api/v1/offline/download/process";
/// The image-bed create path.
pub(crate) const OSS_CREATE: &str = "/api/v1/oss/offline/download";
/// The image-bed progress path.
pub(crate) const OSS_PROCESS: &str = "/api/v1/oss/offline/download/process";
/// The token path.
pub(crate) const TOKEN: &str = "/api/v1/access_token";

/// A real PNG (from the repository's fixtures).
pub(crate) const PNG: &[u8] = include_bytes!("../../../../fixtures/images/trpl14-01.png");
/// A real JPEG (from the repository's fixtures).
pub(crate) const JPEG: &[u8] = include_bytes!("../../../../fixtures/images/f3.jpg");
/// A UUID for `UploadBatch`.
pub(crate) const BATCH: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
/// One storage block.
pub(crate) const BLOCK: usize = 4 * 1024 * 1024;
/// A mebibyte.
pub(crate) const MIB: usize = 1024 * 1024;

/// `n` deterministic, non-repeating-looking bytes.
pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i * 7 + i / 251 + (i >> 11)) % 256).unwrap())
        .collect()
}

/// Keeps paused time moving in 1 ms steps while sockets work
/// ([`transport_hyper::keep_paused_time_moving`]).
pub(crate) fn tick() {
    transport_hyper::keep_paused_time_moving();
}

/// Starts an emulator (and [`tick`]).
pub(crate) async fn start(config: EmulatorConfig) -> RunningEmulator {
    tick();
    Emulator::start(config).await.expect("emulator starts")
}

/// A config with every rate limit high, so that polling never trips it.
pub(crate) fn relaxed_config() -> EmulatorConfig {
    let mut config = EmulatorConfig::default();
    for e in EndpointId::ALL {
        config.rate_limits.insert(e, 1000.0);
    }
    config
}

/// A client that keeps no idle connection (so none outlives a server's timeout).
pub(crate) fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http()
}

/// One raw answer: HTTP status, headers, and the body.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Sends any request to `url`; `headers` are added as given.
pub(crate) async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Raw {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(body.into())).unwrap();
    let response = tokio::time::timeout(POLL_LIMIT, http_client().request(request))
        .await
        .expect("answer within 10 s")
        .expect("request reaches the server");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Raw {
        status,
        headers,
        body,
    }
}

/// One 123pan answer: a [`Reply`] whose body is a JSON envelope.
#[derive(Debug)]
pub(crate) struct Answer(Reply);

impl std::ops::Deref for Answer {
    type Target = Reply;
    fn deref(&self) -> &Reply {
        &self.0
    }
}

impl Answer {
    /// The envelope code.
    pub(crate) fn code(&self) -> i64 {
        self.json["code"]
            .as_i64()
            .expect("envelope has an integer code")
    }

    /// The envelope message.
    pub(crate) fn message(&self) -> &str {
        self.json["message"]
            .as_str()
            .expect("envelope has a message")
    }

    /// The envelope data.
    pub(crate) fn data(&self) -> &Value {
        &self.json["data"]
    }

    /// Asserts the envelope code and message, and returns `self`.
    pub(crate) fn fails(self, code: i64, message: &str) -> Self {
        assert_eq!((self.code(), self.message()), (code, message), "{self:?}");
        self
    }

    /// Asserts the envelope code and that the message contains `part`.
    pub(crate) fn fails_with(self, code: i64, part: &str) -> Self {
        assert_eq!(self.code(), code, "{self:?}");
        assert!(self.message().contains(part), "{self:?}");
        self
    }

    /// Asserts the shape every answer has, and returns `self`.
    fn checked(self) -> Self {
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "{self:?}"
        );
        let trace = self.json["x-traceID"].as_str().expect("x-traceID present");
        assert!(trace.starts_with("emu-"), "{trace}");
        assert!(
            self.json.get("data").is_some(),
            "data field present: {self:?}"
        );
        self
    }
}

/// A small JSON client for the 123pan half, over a real loopback connection.
pub(crate) struct Api {
    base: String,
}

impl Api {
    pub(crate) fn new(emulator: &RunningEmulator) -> Self {
        Self {
            base: emulator.base_url(),
        }
    }

    /// Sends any request; `headers` are added as given.
    pub(crate) async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let raw = send(
            method,
            &format!("{}{path_and_query}", self.base),
            headers,
            body,
        )
        .await;
        let json = serde_json::from_slice(&raw.body).unwrap_or_else(|e| {
            panic!(
                "body is JSON ({e}): {:?}",
                String::from_utf8_lossy(&raw.body)
            )
        });
        Answer(Reply {
            status: raw.status,
            headers: raw.headers,
            json,
        })
        .checked()
    }

    /// `POST path` with `Platform`, an optional bearer token and a JSON body.
    pub(crate) async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("platform", "open_platform"),
            ("content-type", "application/json"),
        ];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        self.raw(
            Method::POST,
            path,
            &headers,
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// `GET path_and_query` with `Platform` and the bearer token.
    pub(crate) async fn get(&self, path_and_query: &str, token: &str) -> Answer {
        let auth = format!("Bearer {token}");
        self.raw(
            Method::GET,
            path_and_query,
            &[("platform", "open_platform"), ("authorization", &auth)],
            Bytes::new(),
        )
        .await
    }

    /// The progress call of `task` on `process_path`.
    pub(crate) async fn process(&self, process_path: &str, token: &str, task: u64) -> Answer {
        self.get(&format!("{process_path}?taskID={task}"), token)
            .await
    }

    /// Asks for a token with these credentials.
    pub(crate) async fn token_with(&self, id: &str, secret: &str) -> Answer {
        self.post(
            TOKEN,
            None,
            &json!({"clientID": id, "clientSecret": secret}),
        )
        .await
    }

    /// A valid token for the emulator's client.
    pub(crate) async fn login(&self, emulator: &RunningEmulator) -> String {
        let a = self
            .token_with(emulator.client_id(), emulator.client_secret())
            .await;
        assert_eq!(a.code(), 0, "{a:?}");
        a.data()["accessToken"].as_str().unwrap().to_owned()
    }

    /// Creates a task on `path` and returns its ID.
    pub(crate) async fn create(&self, path: &str, token: &str, body: &Value) -> u64 {
        let a = self.post(path, Some(token), body).await;
        assert_eq!(a.code(), 0, "{a:?}");
        a.data()["taskID"].as_u64().expect("numeric taskID")
    }

    /// Polls `process_path` until the task's status is final (1 or 2); its `data`.
    /// Answers with code 429 are waited out. Panics after [`POLL_LIMIT`].
    pub(crate) async fn wait_final(&self, process_path: &str, token: &str, task: u64) -> Value {
        let start = Instant::now();
        loop {
            let a = self.process(process_path, token, task).await;
            if a.code() == 0 {
                let status = a.data()["status"].as_i64().unwrap();
                if status == 1 || status == 2 {
                    return a.data().clone();
                }
            } else {
                assert_eq!(a.code(), 429, "{a:?}");
            }
            assert!(
                start.elapsed() < POLL_LIMIT,
                "task {task} did not end in time"
            );
            tokio::time::sleep(POLL_STEP).await;
        }
    }
}

/// A started emulator with a 123pan client and a token.
pub(crate) struct Pan123 {
    pub(crate) emu: RunningEmulator,
    pub(crate) api: Api,
    pub(crate) token: String,
}

/// Starts an emulator with `config` and logs in to its 123pan half.
pub(crate) async fn pan123(config: EmulatorConfig) -> Pan123 {
    let emu = start(config).await;
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    Pan123 { emu, api, token }
}

impl Pan123 {
    /// Creates a task on `path` (with the token) and returns its ID.
    pub(crate) async fn create(&self, path: &str, body: &Value) -> u64 {
        self.api.create(path, &self.token, body).await
    }

    /// `POST path` with the token.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Answer {
        self.api.post(path, Some(&self.token), body).await
    }

    /// `POST path` with `Platform`, the token and `body` as it is (no content type).
    pub(crate) async fn post_raw(&self, path: &str, body: impl Into<Bytes>) -> Answer {
        let auth = format!("Bearer {}", self.token);
        let headers = [("platform", "open_platform"), ("authorization", &auth)];
        self.api.raw(Method::POST, path, &headers, body).await
    }

    /// `GET path_and_query` with the token.
    pub(crate) async fn get(&self, path_and_query: &str) -> Answer {
        self.api.get(path_and_query, &self.token).await
    }

    /// The progress call of `task` on `process_path`.
    pub(crate) async fn process(&self, process_path: &str, task: u64) -> Answer {
        self.api.process(process_path, &self.token, task).await
    }

    /// Polls until task `task` ends; its progress `data`.
    pub(crate) async fn wait_final(&self, process_path: &str, task: u64) -> Value {
        self.api.wait_final(process_path, &self.token, task).await
    }

    /// A cloud-drive task of `url` (with `extra` fields), run to its end: its ID and
    /// its final progress `data`.
    pub(crate) async fn cloud(&self, url: &str, extra: Value) -> (u64, Value) {
        self.run(CREATE, PROCESS, url, extra).await
    }

    /// An image-bed task (`type` 1) of `url` (with `extra` fields), run to its end.
    pub(crate) async fn image(&self, url: &str, extra: Value) -> (u64, Value) {
        let mut extra = extra;
        extra["type"] = json!(1);
        self.run(OSS_CREATE, OSS_PROCESS, url, extra).await
    }

    async fn run(&self, create: &str, process: &str, url: &str, extra: Value) -> (u64, Value) {
        let mut body = json!({ "url": url });
        if let Value::Object(fields) = extra {
            body.as_object_mut().unwrap().extend(fields);
        }
        let task = self.create(create, &body).await;
        (task, self.wait_final(process, task).await)
    }

    /// The emulator's snapshot of task `id`.
    pub(crate) fn snapshot(&self, id: u64) -> TaskSnapshot {
        snapshot(&self.emu, id)
    }
}

/// Polls `f` until it returns `Some`; panics after [`POLL_LIMIT`].
pub(crate) async fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < POLL_LIMIT, "condition not met in time");
        tokio::time::sleep(POLL_STEP).await;
    }
}

/// The emulator's snapshot of task `id`.
pub(crate) fn snapshot(emulator: &RunningEmulator, id: u64) -> TaskSnapshot {
    emulator
        .tasks()
        .into_iter()
        .find(|t| t.id.0 == id)
        .expect("task is listed")
}

/// Starts a loopback hyper HTTP/1.1 server answering every request with `handler`.
/// It lives as long as the test's runtime.
pub(crate) async fn spawn_server<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A response with `status`, an optional content type and `body`.
pub(crate) fn reply(
    status: u16,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(Full::new(body.into())).unwrap()
}

/// A 302 to `location`.
fn redirect(location: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(302)
        .header("location", location)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The file server the download tests use. Paths:
///
/// - `/data.bin`: 300 000 [`pattern`] bytes, `application/octet-stream`
/// - `/missing`: 404; `/broken`: 503
/// - `/photo.png`: [`PNG`] as `image/png`; `/photo.jpg`: [`JPEG`] as
///   `application/octet-stream` (recognised by its signature)
/// - `/fake.png`: an HTML page as `text/html`
/// - `/big.png`: 5000 bytes starting with the PNG signature, `image/png`
/// - `/redirect`: 302 to `/data.bin`; `/loop`: 302 to itself
pub(crate) async fn file_server() -> Files {
    let addr = spawn_server(|req: Request<Incoming>| async move {
        match req.uri().path() {
            "/data.bin" => reply(200, Some("application/octet-stream"), pattern(300_000)),
            "/missing" => reply(404, Some("text/plain"), "not found"),
            "/broken" => reply(503, Some("text/plain"), "unavailable"),
            "/photo.png" => reply(200, Some("image/png"), PNG),
            "/photo.jpg" => reply(200, Some("application/octet-stream"), JPEG),
            "/fake.png" => reply(
                200,
                Some("text/html; charset=utf-8"),
                "<!doctype html><html><body>not a picture, sorry</body></html>",
            ),
            "/big.png" => {
                let mut body = b"\x89PNG\r\n\x1a\n".to_vec();
                body.extend(pattern(5000 - body.len()));
                reply(200, Some("image/png"), body)
            }
            "/redirect" => redirect("/data.bin"),
            "/loop" => redirect("/loop"),
            _ => reply(404, None, ""),
        }
    })
    .await;
    Files(addr)
}

/// Where [`file_server`] listens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Files(pub(crate) SocketAddr);

impl Files {
    /// The URL of `path` (`/data.bin`).
    pub(crate) fn url(self, path: &str) -> String {
        format!("http://{}{path}", self.0)
    }
}

/// A raw TCP server that answers every connection with exactly `response` (status
/// line, headers and body as given) and then closes it: for bodies hyper would not
/// send, such as one shorter than its `Content-Length`.
pub(crate) async fn raw_server(response: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// [`raw_server`] answering `200 OK` with `headers` (one per line, without the
/// `Connection: close` it adds) and then `body`.
pub(crate) async fn raw_200(headers: &str, body: &[u8]) -> SocketAddr {
    let mut response =
        format!("HTTP/1.1 200 OK\r\n{headers}\r\nConnection: close\r\n\r\n").into_bytes();
    response.extend_from_slice(body);
    raw_server(response).await
}

/// A loopback port nobody listens on.
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// A [`SourceServer`] serving `files` as `(name, content type, bytes)`.
pub(crate) async fn served(files: &[(&str, &str, &[u8])]) -> SourceServer {
    let map: BTreeMap<String, ServedFile> = files
        .iter()
        .map(|(name, ct, bytes)| ((*name).to_owned(), ServedFile::new(*ct, bytes.to_vec())))
        .collect();
    SourceServer::start(map).await.unwrap()
}

// ---------------------------------------------------------------------------------
// 6pan
// ---------------------------------------------------------------------------------

/// One answer: status, headers, and the body as JSON (`Null` when it is not); the
/// methods read it as a 6pan answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) json: Value,
}

impl From<Raw> for Reply {
    fn from(raw: Raw) -> Self {
        Self {
            status: raw.status,
            headers: raw.headers,
            json: serde_json::from_slice(&raw.body).unwrap_or(Value::Null),
        }
    }
}

impl Reply {
    pub(crate) fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }

    pub(crate) fn result(&self) -> &Value {
        &self.json["result"]
    }

    pub(crate) fn new_token(&self) -> Option<String> {
        self.headers
            .get("qingzhen-token")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Asserts a successful envelope with `status` 0 (v2) or 200 (v1).
    pub(crate) fn ok(self, status: i64) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        assert_eq!(self.json["success"], true, "{self:?}");
        assert_eq!(self.json["code"], "OK", "{self:?}");
        assert_eq!(self.json["status"], status, "{self:?}");
        self
    }

    /// Asserts an error envelope with this HTTP status and code.
    pub(crate) fn err(self, http: u16, code: &str) -> Self {
        assert_eq!(self.status.as_u16(), http, "{self:?}");
        assert_eq!(self.json["success"], false, "{self:?}");
        assert_eq!(self.code(), code, "{self:?}");
        assert!(self.json["result"].is_null(), "{self:?}");
        self
    }

    /// Asserts a storage-service error `{"code": status, "message"}` whose message
    /// holds `needle`.
    pub(crate) fn storage_err(self, status: u16, needle: &str) -> Self {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.json["code"], status, "{self:?}");
        let message = self.json["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
        self
    }

    /// Asserts HTTP 400 `PARAMETER_ERROR`; its message.
    pub(crate) fn parameter_error(&self) -> &str {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{self:?}");
        assert_eq!(self.json["code"], "PARAMETER_ERROR", "{self:?}");
        assert_eq!(self.json["success"], false, "{self:?}");
        assert!(self.json["result"].is_null(), "{self:?}");
        self.json["message"].as_str().unwrap()
    }
}

/// A raw HTTP client with a 6pan session: it keeps the newest token.
pub(crate) struct SixPan {
    base: String,
    pub(crate) token: Option<String>,
}

impl SixPan {
    pub(crate) fn new(emulator: &RunningEmulator) -> Self {
        Self {
            base: emulator.base_url(),
            token: None,
        }
    }

    /// Sends any request to `url` (a path of the emulator, or a full URL).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        Reply::from(send(method, &url, headers, body).await)
    }

    /// POSTs JSON with `token` (or none) in `Qingzhen-Token`.
    pub(crate) async fn post_with(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(t) = token {
            headers.push(("Qingzhen-Token", t));
        }
        self.send(
            Method::POST,
            path,
            &headers,
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// POSTs JSON with the session's token and keeps the rotated one.
    pub(crate) async fn call(&mut self, path: &str, body: &Value) -> Reply {
        let reply = self
            .post_with(path, self.token.clone().as_deref(), body)
            .await;
        self.keep(reply)
    }

    fn keep(&mut self, reply: Reply) -> Reply {
        if let Some(t) = reply.new_token() {
            self.token = Some(t);
        }
        reply
    }

    pub(crate) async fn login_as(&mut self, account: &str, password: &str) -> Reply {
        let body = json!({"value": account, "password": md5_hex(password), "code": ""});
        let reply = self.post_with("/v2/user/login", None, &body).await;
        self.keep(reply)
    }

    pub(crate) async fn login(&mut self, emulator: &RunningEmulator) {
        self.login_as(emulator.sixpan_account(), emulator.sixpan_password())
            .await
            .ok(0);
        assert!(self.token.is_some());
    }

    /// `/v2/user/info` with `token`.
    pub(crate) async fn info_with(&self, token: Option<&str>) -> Reply {
        self.post_with("/v2/user/info", token, &json!({})).await
    }

    /// `/v1/store/token` → the upload token and URL (asserts it is not instant).
    pub(crate) async fn upload_token(
        &mut self,
        name: &str,
        hash: Option<&str>,
    ) -> (String, String) {
        let mut body = json!({"name": name, "path": ":torrent"});
        if let Some(h) = hash {
            body["hash"] = json!(h);
        }
        let reply = self.call("/v1/store/token", &body).await.ok(200);
        let token = reply.result()["token"]
            .as_str()
            .expect("upload token")
            .to_owned();
        let url = reply.result()["uploadUrl"].as_str().unwrap().to_owned();
        (token, url)
    }

    /// Uploads `data` in one multipart form; the reply.
    pub(crate) async fn form_upload(&mut self, name: &str, data: &[u8]) -> Reply {
        let (token, url) = self.upload_token(name, None).await;
        let (content_type, body) =
            multipart(&[("token", token.as_bytes()), ("x:origin", b"test")], data);
        self.send(
            Method::POST,
            &format!("{url}/file/upload"),
            &[("content-type", &content_type)],
            body,
        )
        .await
    }

    /// `parseTorrent` of one etag; its result.
    pub(crate) async fn parse_torrent(&mut self, hash: &str) -> Value {
        self.call("/v2/offline/parseTorrent", &json!({"hash": [hash]}))
            .await
            .ok(0)
            .result()[0]
            .clone()
    }

    /// `parseUrl` of `links` (joined by `\n`); the results.
    pub(crate) async fn parse_url(&mut self, links: &[&str]) -> Vec<Value> {
        self.call("/v2/offline/parseUrl", &json!({"url": links.join("\n")}))
            .await
            .ok(0)
            .result()
            .as_array()
            .unwrap()
            .clone()
    }

    pub(crate) async fn page(&mut self, page: u32, size: u32) -> Value {
        self.call("/v2/offline/page", &json!({"page": page, "pageSize": size}))
            .await
            .ok(0)
            .result()
            .clone()
    }

    /// Parses `links` and adds one task of each into `path`; the answer of `add`.
    pub(crate) async fn add_links(&mut self, path: &str, links: &[&str]) -> Reply {
        let tasks: Vec<Value> = self
            .parse_url(links)
            .await
            .iter()
            .map(|r| json!({"identity": r["identity"]}))
            .collect();
        self.call("/v2/offline/add", &json!({"path": path, "task": tasks}))
            .await
            .ok(0)
    }

    /// Adds one task; the new task's identity (the newest in the list).
    pub(crate) async fn add_one(&mut self, task: Value) -> String {
        let reply = self
            .call(
                "/v2/offline/add",
                &json!({"path": "/downloads", "task": [task]}),
            )
            .await
            .ok(0);
        assert_eq!(reply.result(), &json!({"success": true, "count": 1}));
        self.page(1, 1).await["list"][0]["identity"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Polls until the task's status is final (not 100); its page entry.
    pub(crate) async fn wait_final(&mut self, identity: &str) -> Value {
        let deadline = Instant::now() + POLL_LIMIT;
        loop {
            let page = self.page(1, 100).await;
            let task = page["list"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["identity"] == identity)
                .cloned()
                .expect("task listed");
            if task["status"] != 100 {
                return task;
            }
            assert!(
                Instant::now() < deadline,
                "task still running after 10 s: {task}"
            );
            tokio::time::sleep(POLL_STEP).await;
        }
    }

    /// Adds a task of `identity` (with `extra` fields) and waits for its end: its
    /// identity and its final page entry.
    pub(crate) async fn run(&mut self, identity: &Value, extra: Value) -> (String, Value) {
        let mut task = json!({ "identity": identity });
        if let Value::Object(fields) = extra {
            task.as_object_mut().unwrap().extend(fields);
        }
        let id = self.add_one(task).await;
        let entry = self.wait_final(&id).await;
        (id, entry)
    }

    /// `mkblk` + `bput`s of one block, `chunk` bytes at a time; the block's last ctx.
    pub(crate) async fn put_block(
        &self,
        url: &str,
        token: &str,
        index: usize,
        block: &[u8],
        chunk: usize,
    ) -> String {
        let headers = block_headers(token);
        let mut chunks = block.chunks(chunk);
        let first = chunks.next().unwrap();
        let path = format!("{url}/mkblk/{}/{index}", block.len());
        let reply = self
            .send(Method::POST, &path, &headers, first.to_vec())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let mut ctx = reply.json["ctx"].as_str().unwrap().to_owned();
        let mut offset = reply.json["offset"].as_u64().unwrap();
        assert_eq!(offset, first.len() as u64);
        for next in chunks {
            let path = format!("{url}/bput/{ctx}/{offset}");
            let reply = self
                .send(Method::POST, &path, &headers, next.to_vec())
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
            ctx = reply.json["ctx"].as_str().unwrap().to_owned();
            assert_eq!(reply.json["offset"], offset + next.len() as u64);
            offset += next.len() as u64;
        }
        ctx
    }
}

/// The headers of a block call (`mkblk`, `bput`) with upload token `token`.
pub(crate) fn block_headers(token: &str) -> [(&str, &str); 3] {
    [
        ("authorization", token),
        ("UploadBatch", BATCH),
        ("content-type", "application/octet-stream"),
    ]
}

/// Starts an emulator with `config` and logs in to its 6pan half.
pub(crate) async fn sixpan(config: EmulatorConfig) -> (RunningEmulator, SixPan) {
    let emu = start(config).await;
    let mut api = SixPan::new(&emu);
    api.login(&emu).await;
    (emu, api)
}

/// The emulator's snapshot of the 6pan task `identity`.
pub(crate) fn sixpan_task(emulator: &RunningEmulator, identity: &str) -> SixpanTaskSnapshot {
    emulator
        .sixpan_tasks()
        .into_iter()
        .find(|t| t.identity == identity)
        .expect("task is listed")
}

pub(crate) fn md5_hex(text: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A multipart form of `parts` in order (a part named `file` is sent as a file);
/// `(content type, body)`.
pub(crate) fn form(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----sixpan-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in parts {
        let head = if *name == "file" {
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
        } else {
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
        };
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A multipart form of `fields` then `file`.
pub(crate) fn multipart(fields: &[(&str, &[u8])], file: &[u8]) -> (String, Vec<u8>) {
    let mut parts = fields.to_vec();
    parts.push(("file", file));
    form(&parts)
}
