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
use offline_emulator::Emulator;
use offline_proto::pan123::{decode_callback, CallbackStatus};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A received callback: method, content type, body.
type Received = (String, Option<String>, Vec<u8>);

/// A receiver that answers 500 to the first `fail_first` requests, then 200, and
/// reports each request it accepted on the channel.
async fn receiver(
    fail_first: usize,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Received>,
    Arc<AtomicUsize>,
) {
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
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n < fail_first {
                return reply(500, None, "try again");
            }
            tx.send((method, ct, body)).unwrap();
            reply(200, Some("text/plain"), "ok")
        }
    })
    .await;
    (addr, rx, hits)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(POLL_LIMIT, rx.recv())
        .await
        .expect("callback within 10 s")
        .expect("receiver alive")
}

#[tokio::test]
async fn success_callback_carries_url_status_and_file_id() {
    let (cb, mut rx, _) = receiver(0).await;
    let files = file_server().await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let url = format!("http://{files}/data.bin");
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": url, "callBackUrl": format!("http://{cb}/hook")}),
        )
        .await;

    let (method, ct, body) = next(&mut rx).await;
    assert_eq!(method, "POST");
    assert_eq!(ct.as_deref(), Some("application/json"));
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        value,
        json!({"url": url, "status": 0, "failReason": "", "fileID": 500_001})
    );
    let decoded = decode_callback(&body).unwrap();
    assert_eq!(decoded.status, CallbackStatus::Succeeded);

    let snap = eventually(|| {
        let s = snapshot(&emu, task);
        s.callback_delivered.then_some(s)
    })
    .await;
    assert_eq!(snap.callback_url, Some(format!("http://{cb}/hook")));
    assert_eq!(snap.file_id, Some(500_001));
    emu.shutdown().await;
}

#[tokio::test]
async fn failure_callback_carries_the_reason_and_no_file_id() {
    let (cb, mut rx, _) = receiver(0).await;
    let files = file_server().await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let url = format!("http://{files}/fake.png");
    api.create(
        OSS_CREATE,
        &token,
        &json!({"url": url, "type": 1, "callBackUrl": format!("http://{cb}/")}),
    )
    .await;
    let (_, _, body) = next(&mut rx).await;
    let value: Value = serde_json::from_slice(&body).unwrap();
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
    emu.shutdown().await;
}

#[tokio::test]
async fn callback_is_retried_after_a_refusal() {
    let (cb, mut rx, hits) = receiver(2).await;
    let files = file_server().await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": format!("http://{files}/missing"), "callBackUrl": format!("http://{cb}/")}),
        )
        .await;
    let (_, _, body) = next(&mut rx).await;
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["failReason"], "source answered HTTP 404");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "two refusals, then delivered"
    );
    eventually(|| snapshot(&emu, task).callback_delivered.then_some(())).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn undeliverable_callback_is_recorded() {
    let port = closed_port().await;
    let files = file_server().await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": format!("http://{files}/data.bin"), "callBackUrl": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
    assert_eq!(api.wait_final(PROCESS, &token, task).await["status"], 2);
    // 4 attempts with 0.2 + 0.4 + 0.8 s of backoff: all refused.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let snap = snapshot(&emu, task);
    assert_eq!(snap.status, offline_emulator::TaskStatus::Succeeded);
    assert!(!snap.callback_delivered);
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_callback_retries() {
    let (cb, _rx, hits) = receiver(usize::MAX).await;
    let files = file_server().await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": format!("http://{files}/missing"), "callBackUrl": format!("http://{cb}/")}),
        )
        .await;
    assert_eq!(api.wait_final(PROCESS, &token, task).await["status"], 1);
    eventually(|| (hits.load(Ordering::SeqCst) >= 1).then_some(())).await;
    let started = std::time::Instant::now();
    emu.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let after = hits.load(Ordering::SeqCst);
    assert!(after < 4, "{after}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        after,
        "no retries after the shutdown"
    );
}
