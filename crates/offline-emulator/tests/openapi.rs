//! The description the emulator serves, the checks it makes against it, and the options
//! for tools that drive it from the description (a static token, loopback only, no
//! rate limits).

mod common;

use bytes::Bytes;
use common::*;
use http::Method;
use offline_emulator::{EmulatorConfig, EndpointId, RunningEmulator, TaskStatus};
use serde_json::{json, Value};

const STATIC_TOKEN: &str = "static-test-token";

/// An emulator as the tools run it: a static token, loopback only, no rate limits.
async fn tool_emulator() -> (RunningEmulator, Api) {
    let mut config = EmulatorConfig {
        static_token: Some(STATIC_TOKEN.to_owned()),
        loopback_only: true,
        ..EmulatorConfig::default()
    };
    config.rate_limits.clear();
    let emu = start(config).await;
    let api = Api::new(&emu);
    (emu, api)
}

#[tokio::test(start_paused = true)]
async fn the_description_is_served_and_lists_every_endpoint() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let emu = start(EmulatorConfig::default()).await;
    let mut stream = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    stream
        .write_all(b"GET /openapi.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let description: Value = serde_json::from_str(body).unwrap();
    assert_eq!(description["openapi"], "3.1.0");
    for e in EndpointId::ALL {
        let operation = &description["paths"][e.path()][e.method().as_str().to_ascii_lowercase()];
        assert_eq!(operation["operationId"], e.operation_id(), "{e:?}");
    }
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_static_token_is_always_valid() {
    let (emu, api) = tool_emulator().await;
    let a = api.get(&format!("{PROCESS}?taskID=1"), STATIC_TOKEN).await;
    assert_eq!(a.code(), 404, "{a:?}");
    let a = api
        .get(&format!("{PROCESS}?taskID=1"), "another-token")
        .await;
    assert_eq!(a.code(), 401, "{a:?}");
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn loopback_only_fails_other_sources_at_once() {
    let (emu, api) = tool_emulator().await;
    let body = json!({"url": "http://example.invalid/file.bin", "callBackUrl": "http://example.invalid/cb"});
    let task = api.create(CREATE, STATIC_TOKEN, &body).await;
    let data = api.wait_final(PROCESS, STATIC_TOKEN, task).await;
    assert_eq!(data["status"], 1);
    let snap = snapshot(&emu, task);
    assert_eq!(snap.status, TaskStatus::Failed);
    let reason = snap.fail_reason.unwrap_or_default();
    assert!(reason.contains("loopback only"), "{reason}");
    assert!(!snap.callback_delivered);
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn oauth_input_is_checked_and_every_code_refused() {
    let (emu, api) = tool_emulator().await;
    let oauth = EndpointId::OAuthToken.path();
    let call = |query: String| {
        let api = &api;
        async move {
            api.raw(
                Method::POST,
                &format!("{oauth}?{query}"),
                &[("platform", "open_platform")],
                Bytes::new(),
            )
            .await
        }
    };
    let id = emu.client_id().to_owned();
    let secret = emu.client_secret().to_owned();

    // (query, code, message: exactly, or containing, or anything when empty).
    let cases = [
        (
            format!("client_id={id}&client_secret={secret}"),
            400,
            "grant_type",
            false,
        ),
        // Refused by the description alone (`minLength: 1`): no Rust code states it.
        (
            format!("client_id=&client_secret={secret}&grant_type=refresh_token"),
            400,
            "invalid query at `client_id`: shorter than 1 characters",
            true,
        ),
        (
            format!("client_id={id}&client_secret={secret}&grant_type=password"),
            400,
            "grant_type",
            false,
        ),
        (
            format!("client_id={id}&client_secret=wrong&grant_type=authorization_code&code=x"),
            401,
            "",
            false,
        ),
        (
            format!("client_id={id}&client_secret={secret}&grant_type=authorization_code&code=x"),
            401,
            "authorization code invalid",
            true,
        ),
        (
            format!("client_id={id}&client_secret={secret}&grant_type=refresh_token"),
            400,
            "",
            false,
        ),
    ];
    for (query, code, message, exact) in cases {
        let a = call(query.clone()).await;
        assert_eq!(a.code(), code, "{query}: {a:?}");
        if exact {
            assert_eq!(a.message(), message, "{query}");
        } else {
            assert!(a.message().contains(message), "{query}: {}", a.message());
        }
        assert!(a.data().is_null(), "{query}: {a:?}");
    }
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shape_errors_name_the_field() {
    let (emu, api) = tool_emulator().await;
    let a = api
        .post(
            CREATE,
            Some(STATIC_TOKEN),
            &json!({"url": "http://127.0.0.1/a", "dirID": "seven"}),
        )
        .await;
    assert_eq!(a.code(), 400);
    assert!(
        a.message().starts_with("invalid request body at `dirID`"),
        "{}",
        a.message()
    );
    let a = api
        .post(
            CREATE,
            Some(STATIC_TOKEN),
            &json!({"url": "http://127.0.0.1/a", "dirID": 1e30}),
        )
        .await;
    assert_eq!(a.code(), 400, "{a:?}");
    assert!(a.json["data"].is_null());
    emu.shutdown().await;
}
