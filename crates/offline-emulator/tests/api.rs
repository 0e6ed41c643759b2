//! The request side: headers, tokens, routing, bodies, rate limits, trace IDs.

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};
use offline_emulator::{Emulator, EmulatorConfig, EndpointId};
use serde_json::json;
use time::OffsetDateTime;

#[tokio::test]
async fn token_is_issued_and_wrong_secret_refused() {
    let emu = Emulator::start_default().await.unwrap();
    let api = Api::new(&emu);

    let ok = api
        .token_with("offline-demo-client", "offline-demo-secret")
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.code(), 0);
    assert_eq!(ok.message(), "ok");
    let token = ok.data()["accessToken"].as_str().unwrap();
    assert!(token.len() >= 40, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    let expired_at = ok.data()["expiredAt"].as_str().unwrap();
    assert!(expired_at.ends_with("+08:00"), "{expired_at}");
    let at =
        OffsetDateTime::parse(expired_at, &time::format_description::well_known::Rfc3339).unwrap();
    let in_secs = (at - OffsetDateTime::now_utc()).whole_seconds();
    assert!((3590..=3601).contains(&in_secs), "{in_secs}");
    assert_eq!(emu.token_requests(), 1);

    // The token endpoint allows 1/s per client by default: wait the bucket out.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let bad = api.token_with("offline-demo-client", "wrong").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert_eq!(bad.code(), 401);
    assert_eq!(bad.message(), "clientID or clientSecret invalid");
    assert!(bad.data().is_null());
    let bad = api.token_with("someone-else", "offline-demo-secret").await;
    assert_eq!(bad.code(), 401);
    assert_eq!(emu.token_requests(), 1, "refusals are not counted");
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_or_wrong_platform_header_is_refused() {
    let emu = Emulator::start_default().await.unwrap();
    let api = Api::new(&emu);
    let body = serde_json::to_vec(
        &json!({"clientID": "offline-demo-client", "clientSecret": "offline-demo-secret"}),
    )
    .unwrap();
    let a = api
        .raw(
            Method::POST,
            TOKEN,
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.code(), 400);
    assert!(a.message().contains("Platform"), "{}", a.message());
    let a = api
        .raw(Method::POST, TOKEN, &[("platform", "web")], body)
        .await;
    assert_eq!(a.code(), 400);
    assert!(a.message().contains("open_platform"), "{}", a.message());
    assert_eq!(emu.token_requests(), 0);
}

#[tokio::test]
async fn unknown_path_is_404_and_wrong_method_405() {
    let emu = Emulator::start_default().await.unwrap();
    let api = Api::new(&emu);
    let a = api
        .raw(
            Method::GET,
            "/api/v1/nothing",
            &[("platform", "open_platform")],
            Bytes::new(),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.code(), 404);
    let a = api
        .raw(
            Method::GET,
            CREATE,
            &[("platform", "open_platform")],
            Bytes::new(),
        )
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.code(), 405);
    assert_eq!(a.headers["allow"], "POST");
    let a = api
        .raw(
            Method::POST,
            PROCESS,
            &[("platform", "open_platform")],
            "{}",
        )
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.headers["allow"], "GET");
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_get_401_and_a_fresh_token_works() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let files = file_server().await;
    let body = json!({"url": format!("http://{files}/data.bin")});

    let a = api.post(CREATE, None, &body).await;
    assert_eq!(a.code(), 401);
    assert!(a.message().contains("invalid token"), "{}", a.message());
    let a = api.post(CREATE, Some("not-a-token"), &body).await;
    assert_eq!(a.code(), 401);
    assert_eq!(a.message(), "invalid token");

    let token = api.login(&emu).await;
    let task = api.create(CREATE, &token, &body).await;
    let a = api.get(&format!("{PROCESS}?taskID={task}"), &token).await;
    assert_eq!(a.code(), 0);

    emu.expire_tokens();
    let a = api.get(&format!("{PROCESS}?taskID={task}"), &token).await;
    assert_eq!(a.code(), 401);
    assert_eq!(a.message(), "token is expired");
    let a = api.post(CREATE, Some(&token), &body).await;
    assert_eq!(a.code(), 401);

    let fresh = api.login(&emu).await;
    assert_ne!(fresh, token);
    let a = api.get(&format!("{PROCESS}?taskID={task}"), &fresh).await;
    assert_eq!(a.code(), 0, "{a:?}");
    assert_eq!(emu.token_requests(), 2);
    assert_eq!(emu.tasks().len(), 1, "refused creates made no task");
    emu.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let config = EmulatorConfig {
        token_lifetime: std::time::Duration::from_secs(1),
        ..relaxed_config()
    };
    let emu = Emulator::start(config).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let a = api.get(&format!("{PROCESS}?taskID=1"), &token).await;
    assert_eq!(a.code(), 404, "valid token, unknown task: {a:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let a = api.get(&format!("{PROCESS}?taskID=1"), &token).await;
    assert_eq!(a.code(), 401);
    assert_eq!(a.message(), "token is expired");
}

#[tokio::test]
async fn second_immediate_create_is_rate_limited() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    emu.set_rate_limit(EndpointId::OfflineDownload, 1.0);
    let api = Api::new(&emu);
    let files = file_server().await;
    let token = api.login(&emu).await;
    let body = json!({"url": format!("http://{files}/data.bin")});

    let first = api.post(CREATE, Some(&token), &body).await;
    assert_eq!(first.code(), 0, "{first:?}");
    let second = api.post(CREATE, Some(&token), &body).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.code(), 429);
    assert_eq!(second.message(), "操作频繁，请稍后再试");
    assert_eq!(emu.rate_limited(), 1);
    assert_eq!(emu.tasks().len(), 1, "the limited call made no task");

    // Other endpoints have their own buckets.
    let a = api
        .get(
            &format!("{PROCESS}?taskID={}", first.data()["taskID"]),
            &token,
        )
        .await;
    assert_eq!(a.code(), 0);

    // A second later the bucket has a token again.
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    let third = api.post(CREATE, Some(&token), &body).await;
    assert_eq!(third.code(), 0, "{third:?}");
    assert_eq!(emu.rate_limited(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_is_rate_limited_per_client() {
    let emu = Emulator::start_default().await.unwrap();
    let api = Api::new(&emu);
    let a = api.token_with(emu.client_id(), emu.client_secret()).await;
    assert_eq!(a.code(), 0);
    let b = api.token_with(emu.client_id(), emu.client_secret()).await;
    assert_eq!(b.code(), 429);
    // Another client ID has its own bucket (and wrong credentials).
    let c = api.token_with("other", "x").await;
    assert_eq!(c.code(), 401);
    assert_eq!(emu.rate_limited(), 1);
    assert_eq!(emu.token_requests(), 1);
}

#[tokio::test]
async fn malformed_bodies_get_400_not_500() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let auth = format!("Bearer {token}");
    let headers = [
        ("platform", "open_platform"),
        ("authorization", auth.as_str()),
    ];

    for (body, expect) in [
        (&b"{\"url\": "[..], "invalid request body"),
        (b"not json", "invalid request body"),
        (b"", "empty"),
        (b"{\"fileName\": \"a.bin\"}", "url"),
        (b"{\"url\": 42}", "invalid request body"),
        (b"[1,2,3]", "invalid request body"),
    ] {
        let a = api.raw(Method::POST, CREATE, &headers, body.to_vec()).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.code(), 400, "{a:?}");
        assert!(a.message().contains(expect), "{body:?}: {}", a.message());
    }
    let a = api.raw(Method::POST, TOKEN, &headers[..1], "{oops").await;
    assert_eq!(a.code(), 400);
    assert!(emu.tasks().is_empty());
}

#[tokio::test]
async fn invalid_fields_get_400_and_make_no_task() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    for (body, expect) in [
        (json!({"url": "ftp://example.com/a.bin"}), "scheme"),
        (json!({"url": "magnet:?xt=urn:btih:abc"}), "scheme"),
        (json!({"url": "not a url"}), "invalid URL"),
        (json!({"url": ""}), "url must not be empty"),
        (
            json!({"url": "http://127.0.0.1/a", "dirID": 0}),
            "root directory",
        ),
        (
            json!({"url": "http://127.0.0.1/a", "fileName": "a/b"}),
            "invalid file name",
        ),
        (
            json!({"url": "http://127.0.0.1/a", "callBackUrl": "ftp://x/"}),
            "scheme",
        ),
    ] {
        let a = api.post(CREATE, Some(&token), &body).await;
        assert_eq!(a.code(), 400, "{body}: {a:?}");
        assert!(a.message().contains(expect), "{body}: {}", a.message());
    }
    assert!(emu.tasks().is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let auth = format!("Bearer {token}");
    let headers = [
        ("platform", "open_platform"),
        ("authorization", auth.as_str()),
    ];
    let mut big = b"{\"url\": \"http://127.0.0.1/".to_vec();
    big.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    big.extend(b"\"}");
    let a = api.raw(Method::POST, CREATE, &headers, big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.code(), 413);
    assert!(emu.tasks().is_empty());
    // The emulator still answers afterwards.
    let a = api.get(&format!("{PROCESS}?taskID=5"), &token).await;
    assert_eq!(a.code(), 404);
}

#[tokio::test]
async fn process_needs_a_known_numeric_task_id() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let a = api.get(PROCESS, &token).await;
    assert_eq!(a.code(), 400);
    assert!(a.message().contains("taskID"), "{}", a.message());
    let a = api.get(&format!("{PROCESS}?taskID=abc"), &token).await;
    assert_eq!(a.code(), 400);
    let a = api.get(&format!("{PROCESS}?taskID=999999"), &token).await;
    assert_eq!(a.code(), 404);
    assert_eq!(a.message(), "task not found");
    let a = api
        .get(&format!("{OSS_PROCESS}?taskID=999999"), &token)
        .await;
    assert_eq!(a.code(), 404);
}

#[tokio::test]
async fn trace_ids_are_unique() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let a = api.get(&format!("{PROCESS}?taskID=1"), &token).await;
        let id = a.json["x-traceID"].as_str().unwrap().to_owned();
        assert!(seen.insert(id.clone()), "duplicate trace ID {id}");
    }
}

#[tokio::test]
async fn shutdown_stops_listening_and_drop_removes_the_temp_dir() {
    let emu = Emulator::start_default().await.unwrap();
    let addr = emu.addr();
    let dir = emu.data_dir().to_path_buf();
    assert!(dir.is_dir());
    emu.shutdown().await;
    assert!(!dir.exists(), "temporary data directory removed");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let emu = Emulator::start_default().await.unwrap();
    let dir = emu.data_dir().to_path_buf();
    drop(emu);
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_given_data_dir_is_created_and_kept() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("nested").join("store");
    let config = EmulatorConfig {
        data_dir: Some(dir.clone()),
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(config).await.unwrap();
    assert_eq!(emu.data_dir(), dir);
    emu.shutdown().await;
    assert!(dir.is_dir());
}
