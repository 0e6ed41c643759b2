//! Helpers shared by the integration tests: a tiny JSON client for the emulator, small
//! loopback servers (hyper and raw TCP) to act as download sources and callback
//! receivers, and bounded polling.

#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use offline_emulator::{EmulatorConfig, EndpointId, RunningEmulator, TaskSnapshot};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The longest any poll loop in the tests waits.
pub(crate) const POLL_LIMIT: Duration = Duration::from_secs(10);
/// The pause between two polls.
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

/// `n` deterministic, non-repeating-looking bytes.
pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i * 7 + i / 251 + (i >> 11)) % 256).unwrap())
        .collect()
}

/// A config with every rate limit high, so that polling never trips it.
pub(crate) fn relaxed_config() -> EmulatorConfig {
    let mut config = EmulatorConfig::default();
    for e in EndpointId::ALL {
        config.rate_limits.insert(e, 1000.0);
    }
    config
}

/// One answer: HTTP status, headers, and the body as JSON.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) json: Value,
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

    /// Asserts the shape every answer has, and returns `self`.
    pub(crate) fn checked(self) -> Self {
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

/// A small JSON client for the emulator, over a real loopback connection.
pub(crate) struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    pub(crate) fn new(emulator: &RunningEmulator) -> Self {
        Self {
            base: emulator.base_url(),
            client: Client::builder(TokioExecutor::new()).build_http(),
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
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path_and_query));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::new(body.into())).unwrap();
        let response = tokio::time::timeout(POLL_LIMIT, self.client.request(request))
            .await
            .expect("emulator answers within 10 s")
            .expect("request reaches the emulator");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("body is JSON ({e}): {:?}", String::from_utf8_lossy(&bytes))
        });
        Answer {
            status,
            headers,
            json,
        }
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
            let a = self
                .get(&format!("{process_path}?taskID={task}"), token)
                .await;
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

/// The file server the download tests use. Paths:
///
/// - `/data.bin`: 300 000 [`pattern`] bytes, `application/octet-stream`
/// - `/missing`: 404; `/broken`: 503
/// - `/photo.png`: [`PNG`] as `image/png`; `/photo.jpg`: [`JPEG`] as
///   `application/octet-stream` (recognised by its signature)
/// - `/fake.png`: an HTML page as `text/html`
/// - `/big.png`: 5000 bytes starting with the PNG signature, `image/png`
/// - `/redirect`: 302 to `/data.bin`; `/loop`: 302 to itself
pub(crate) async fn file_server() -> SocketAddr {
    spawn_server(|req: Request<Incoming>| async move {
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
            "/redirect" => Response::builder()
                .status(302)
                .header("location", "/data.bin")
                .body(Full::new(Bytes::new()))
                .unwrap(),
            "/loop" => Response::builder()
                .status(302)
                .header("location", "/loop")
                .body(Full::new(Bytes::new()))
                .unwrap(),
            _ => reply(404, None, ""),
        }
    })
    .await
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

/// A loopback port nobody listens on.
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}
