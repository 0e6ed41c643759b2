//! A small loopback server standing in for the rest of the internet in tests and
//! demos: it serves source files from memory (what an offline download fetches) and
//! receives 123pan callbacks.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use offline_emulator::source::{ServedFile, SourceServer};
//! let mut files = std::collections::BTreeMap::new();
//! files.insert("a.bin".to_owned(), ServedFile::new("application/octet-stream", vec![1u8, 2, 3]));
//! let src = SourceServer::start(files).await?;
//! let url = src.file_url("a.bin"); // http://127.0.0.1:PORT/files/a.bin
//! let callbacks = src.wait_callbacks(1, std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use offline_proto::pan123::{decode_callback, Callback, CALLBACK_MAX_BYTES};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

/// A file the server serves: its `Content-Type` and bytes.
#[derive(Debug, Clone)]
pub struct ServedFile {
    /// The `Content-Type` header value.
    pub content_type: String,
    /// The body.
    pub bytes: Bytes,
}

impl ServedFile {
    /// A file with this content type and these bytes.
    pub fn new(content_type: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self {
            content_type: content_type.into(),
            bytes: bytes.into(),
        }
    }
}

#[derive(Debug)]
struct State {
    files: BTreeMap<String, ServedFile>,
    callbacks: Mutex<Vec<Callback>>,
    arrived: Notify,
}

/// The running server; it stops when dropped.
#[derive(Debug)]
pub struct SourceServer {
    addr: SocketAddr,
    state: Arc<State>,
    _stop: watch::Sender<bool>,
}

impl SourceServer {
    /// Starts serving `files` (by name, under `/files/`; any other path answers 404)
    /// on `127.0.0.1` at a free port, and accepting callbacks at `/callback`.
    ///
    /// # Errors
    ///
    /// The I/O error if no loopback port can be bound.
    pub async fn start(files: BTreeMap<String, ServedFile>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            files,
            callbacks: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        });
        let (stop, mut stopped) = watch::channel(false);
        let accept_state = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((sock, _)) = accepted else { continue };
                        let state = Arc::clone(&accept_state);
                        let mut conn_stop = stopped.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                let state = Arc::clone(&state);
                                async move { Ok::<_, Infallible>(handle(&state, req).await) }
                            });
                            let conn = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(sock), service);
                            tokio::select! {
                                _ = conn => {}
                                _ = conn_stop.changed() => {}
                            }
                        });
                    }
                }
            }
        });
        Ok(Self {
            addr,
            state,
            _stop: stop,
        })
    }

    /// The URL of a served file.
    pub fn file_url(&self, name: &str) -> String {
        format!("http://{}/files/{name}", self.addr)
    }

    /// The URL callbacks are POSTed to.
    pub fn callback_url(&self) -> String {
        format!("http://{}/callback", self.addr)
    }

    /// The root URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The callbacks received so far, in order of arrival.
    pub fn callbacks(&self) -> Vec<Callback> {
        self.state
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until at least `n` callbacks arrived or `timeout` passed; returns those
    /// received (possibly fewer than `n`). Callbacks must be JSON (`Content-Type:
    /// application/json`, at most 64 KiB); others are answered 415, 413 or 400 and not
    /// recorded.
    pub async fn wait_callbacks(&self, n: usize, timeout: std::time::Duration) -> Vec<Callback> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.arrived.notified();
            let got = self.callbacks();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.callbacks();
            }
        }
    }
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body))
        .unwrap_or_default()
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, p) if p.starts_with("/files/") => {
            match state.files.get(&p["/files/".len()..]) {
                Some(f) => respond(StatusCode::OK, &f.content_type, f.bytes.clone()),
                None => respond(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    Bytes::from_static(b"not found\n"),
                ),
            }
        }
        (Method::POST, "/callback") => {
            let json = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/json"));
            if !json {
                return respond(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "text/plain",
                    Bytes::from_static(b"JSON only\n"),
                );
            }
            let body = match Limited::new(req.into_body(), CALLBACK_MAX_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return respond(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "text/plain",
                        Bytes::from_static(b"too large\n"),
                    )
                }
            };
            match decode_callback(&body) {
                Ok(cb) => {
                    state
                        .callbacks
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(cb);
                    state.arrived.notify_waiters();
                    respond(
                        StatusCode::OK,
                        "application/json",
                        Bytes::from_static(b"{\"ok\":true}"),
                    )
                }
                Err(e) => respond(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    Bytes::from(format!("{e}\n")),
                ),
            }
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    }
}
