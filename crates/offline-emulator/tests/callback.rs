//! Callbacks POSTed to a loopback receiver when tasks end.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use offline_proto::pan123::{decode_callback, CallbackStatus};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A received callback: method, content type, body.
type Received = (String, Option<String>, Vec<u8>);

/// A callback receiver: its address, the callbacks it accepted, how many requests
/// it saw.
struct Receiver {
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Received>,
    hits: Arc<AtomicUsize>,
}

impl Receiver {
    /// A receiver that answers 500 to the first `fail_first` requests, then 200.
    async fn start(fail_first: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let addr = spawn_server(move |req: Request<Incoming>| {
            let tx = tx.clone();
            let counter = counter.clone();
            async move {
                let method = req.method().to_string();
                let ct = req
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                if counter.fetch_add(1, Ordering::SeqCst) < fail_first {
                    return reply(500, None, "try again");
                }
                tx.send((method, ct, body)).unwrap();
                reply(200, Some("text/plain"), "ok")
            }
        })
        .await;
        Self { addr, rx, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The next callback accepted.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(POLL_LIMIT, self.rx.recv())
            .await
            .expect("callback within 10 s")
            .expect("receiver alive")
    }

    /// The body of the next callback accepted, as JSON.
    async fn next_json(&mut self) -> Value {
        serde_json::from_slice(&self.next().await.2).unwrap()
    }
}

/// An emulator with a token and the file server.
async fn setup() -> (Pan123, Files) {
    let files = file_server().await;
    (pan123(relaxed_config()).await, files)
}

/// Creates a cloud task of `source` with a callback to `callback`; its ID.
async fn create_with_callback(s: &Pan123, source: String, callback: String) -> u64 {
    s.create(CREATE, &json!({"url": source, "callBackUrl": callback}))
        .await
}

#[tokio::test(start_paused = true)]
async fn success_callback_carries_url_status_and_file_id() {
    let mut cb = Receiver::start(0).await;
    let (s, files) = setup().await;
    let url = files.url("/data.bin");
    let task = create_with_callback(&s, url.clone(), cb.url("/hook")).await;

    let (method, ct, body) = cb.next().await;
    assert_eq!(method, "POST");
    assert_eq!(ct.as_deref(), Some("application/json"));
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        value,
        // 500001 is the folder 来自:离线下载, made by the first create.
        json!({"url": url, "status": 0, "failReason": "", "fileID": 500_002})
    );
    let decoded = decode_callback(&body).unwrap();
    assert_eq!(decoded.status, CallbackStatus::Succeeded);

    let snap = eventually(|| {
        let s = s.snapshot(task);
        s.callback_delivered.then_some(s)
    })
    .await;
    assert_eq!(snap.callback_url, Some(cb.url("/hook")));
    assert_eq!(snap.file_id, Some(500_002));
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn failure_callback_carries_the_reason_and_no_file_id() {
    let mut cb = Receiver::start(0).await;
    let (s, files) = setup().await;
    let url = files.url("/fake.png");
    s.create(
        OSS_CREATE,
        &json!({"url": url, "type": 1, "callBackUrl": cb.url("/")}),
    )
    .await;
    let value = cb.next_json().await;
    assert_eq!(value["url"], url);
    assert_eq!(value["status"], 1);
    assert!(
        value["failReason"]
            .as_str()
            .unwrap()
            .starts_with("not an image"),
        "{value}"
    );
    assert!(value.get("fileID").is_none(), "{value}");
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn callback_is_retried_after_a_refusal() {
    let mut cb = Receiver::start(2).await;
    let (s, files) = setup().await;
    let task = create_with_callback(&s, files.url("/missing"), cb.url("/")).await;
    let value = cb.next_json().await;
    assert_eq!(value["failReason"], "source answered HTTP 404");
    assert_eq!(cb.hits(), 3, "two refusals, then delivered");
    eventually(|| s.snapshot(task).callback_delivered.then_some(())).await;
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn undeliverable_callback_is_recorded() {
    let port = closed_port().await;
    let (s, files) = setup().await;
    let target = format!("http://127.0.0.1:{port}/");
    let task = create_with_callback(&s, files.url("/data.bin"), target).await;
    assert_eq!(s.wait_final(PROCESS, task).await["status"], 2);
    // 4 attempts with 0.2 + 0.4 + 0.8 s of backoff: all refused.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let snap = s.snapshot(task);
    assert_eq!(snap.status, offline_emulator::TaskStatus::Succeeded);
    assert!(!snap.callback_delivered);
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_does_not_wait_for_callback_retries() {
    let cb = Receiver::start(usize::MAX).await;
    let (s, files) = setup().await;
    let task = create_with_callback(&s, files.url("/missing"), cb.url("/")).await;
    assert_eq!(s.wait_final(PROCESS, task).await["status"], 1);
    eventually(|| (cb.hits() >= 1).then_some(())).await;
    let started = tokio::time::Instant::now();
    s.emu.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let after = cb.hits();
    assert!(after < 4, "{after}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(cb.hits(), after, "no retries after the shutdown");
}
