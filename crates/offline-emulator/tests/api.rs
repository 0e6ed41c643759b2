//! The request side: headers, tokens, routing, bodies, rate limits, trace IDs, and the
//! clock they read time from.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use http::{Method, StatusCode};
use offline_emulator::{Clock, EmulatorConfig, EndpointId};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds from the emulator's wall clock to the `expiredAt` of a token answer.
fn expires_in(emu: &offline_emulator::RunningEmulator, answer: &Answer) -> i64 {
    let expired_at = answer.data()["expiredAt"].as_str().unwrap();
    assert!(expired_at.ends_with("+08:00"), "{expired_at}");
    let at = OffsetDateTime::parse(expired_at, &Rfc3339).unwrap();
    (at - OffsetDateTime::from(emu.clock().wall())).whole_seconds()
}

#[tokio::test(start_paused = true)]
async fn token_is_issued_and_wrong_secret_refused() {
    let emu = start(EmulatorConfig::default()).await;
    let api = Api::new(&emu);

    let ok = api
        .token_with("offline-demo-client", "offline-demo-secret")
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!((ok.code(), ok.message()), (0, "ok"));
    let token = ok.data()["accessToken"].as_str().unwrap();
    assert!(token.len() >= 40, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    let in_secs = expires_in(&emu, &ok);
    assert!((3590..=3601).contains(&in_secs), "{in_secs}");
    assert_eq!(emu.token_requests(), 1);

    // The token endpoint allows 1/s per client by default: wait the bucket out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bad = api
        .token_with("offline-demo-client", "wrong")
        .await
        .fails(401, "clientID or clientSecret invalid");
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.data().is_null());
    let bad = api.token_with("someone-else", "offline-demo-secret").await;
    assert_eq!(bad.code(), 401);
    assert_eq!(emu.token_requests(), 1, "refusals are not counted");
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn expiry_follows_the_emulators_clock() {
    let config = EmulatorConfig {
        token_lifetime: Duration::from_secs(7200),
        ..relaxed_config()
    };
    let emu = start(config).await;
    let api = Api::new(&emu);
    // Two hours of paused time pass in no time; the wall clock moves with them.
    let before = emu.clock().wall();
    tokio::time::advance(Duration::from_secs(7200)).await;
    let moved = emu.clock().wall().duration_since(before).unwrap();
    assert!(moved >= Duration::from_secs(7200), "{moved:?}");
    let token = api.login(&emu).await;
    let a = api.token_with(emu.client_id(), emu.client_secret()).await;
    let in_secs = expires_in(&emu, &a);
    assert!((7190..=7201).contains(&in_secs), "{in_secs}");
    // Valid until its lifetime is over, in paused time too.
    tokio::time::advance(Duration::from_secs(7190)).await;
    api.get(&format!("{PROCESS}?taskID=1"), &token)
        .await
        .fails(404, "task not found");
    tokio::time::advance(Duration::from_secs(20)).await;
    api.get(&format!("{PROCESS}?taskID=1"), &token)
        .await
        .fails(401, "token is expired");
    emu.shutdown().await;
}

/// A clock whose wall time is a fixed moment plus the paused time since it was made.
#[derive(Debug)]
struct FixedWall {
    start: std::time::Instant,
    wall: SystemTime,
}

impl Clock for FixedWall {
    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
    fn wall(&self) -> SystemTime {
        self.wall + self.now().duration_since(self.start)
    }
}

#[tokio::test(start_paused = true)]
async fn an_injected_clock_decides_expired_at() {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000); // 2030-01-01Z
    let config = EmulatorConfig {
        clock: Arc::new(FixedWall {
            start: tokio::time::Instant::now().into_std(),
            wall,
        }),
        ..EmulatorConfig::default()
    };
    let emu = start(config).await;
    let a = Api::new(&emu)
        .token_with(emu.client_id(), emu.client_secret())
        .await;
    assert_eq!(a.data()["expiredAt"], "2030-01-01T09:00:00+08:00", "{a:?}");
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn missing_or_wrong_platform_header_is_refused() {
    let emu = start(EmulatorConfig::default()).await;
    let api = Api::new(&emu);
    let body = serde_json::to_vec(
        &json!({"clientID": "offline-demo-client", "clientSecret": "offline-demo-secret"}),
    )
    .unwrap();
    for (headers, needle) in [
        (&[("content-type", "application/json")], "Platform"),
        (&[("platform", "web")], "open_platform"),
    ] {
        let a = api.raw(Method::POST, TOKEN, headers, body.clone()).await;
        assert_eq!((a.status, a.code()), (StatusCode::OK, 400));
        assert!(a.message().contains(needle), "{}", a.message());
    }
    assert_eq!(emu.token_requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn unknown_path_is_404_and_wrong_method_405() {
    let emu = start(EmulatorConfig::default()).await;
    let api = Api::new(&emu);
    for (method, path, body, status, allow) in [
        (
            Method::GET,
            "/api/v1/nothing",
            "",
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::GET,
            CREATE,
            "",
            StatusCode::METHOD_NOT_ALLOWED,
            Some("POST"),
        ),
        (
            Method::POST,
            PROCESS,
            "{}",
            StatusCode::METHOD_NOT_ALLOWED,
            Some("GET"),
        ),
    ] {
        let a = api
            .raw(method, path, &[("platform", "open_platform")], body)
            .await;
        assert_eq!(a.status, status);
        assert_eq!(a.code(), i64::from(status.as_u16()));
        assert_eq!(a.headers.get("allow").map(|v| v.to_str().unwrap()), allow);
    }
}

#[tokio::test(start_paused = true)]
async fn missing_unknown_and_expired_tokens_get_401_and_a_fresh_token_works() {
    let emu = start(relaxed_config()).await;
    let api = Api::new(&emu);
    let files = file_server().await;
    let body = json!({"url": files.url("/data.bin")});

    let a = api.post(CREATE, None, &body).await;
    assert_eq!(a.code(), 401);
    assert!(a.message().contains("invalid token"), "{}", a.message());
    api.post(CREATE, Some("not-a-token"), &body)
        .await
        .fails(401, "invalid token");

    let token = api.login(&emu).await;
    let task = api.create(CREATE, &token, &body).await;
    assert_eq!(api.process(PROCESS, &token, task).await.code(), 0);

    emu.expire_tokens();
    api.process(PROCESS, &token, task)
        .await
        .fails(401, "token is expired");
    assert_eq!(api.post(CREATE, Some(&token), &body).await.code(), 401);

    let fresh = api.login(&emu).await;
    assert_ne!(fresh, token);
    let a = api.process(PROCESS, &fresh, task).await;
    assert_eq!(a.code(), 0, "{a:?}");
    assert_eq!(emu.token_requests(), 2);
    assert_eq!(emu.tasks().len(), 1, "refused creates made no task");
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_after_their_lifetime() {
    let s = pan123(EmulatorConfig {
        token_lifetime: Duration::from_secs(1),
        ..relaxed_config()
    })
    .await;
    let a = s.process(PROCESS, 1).await;
    assert_eq!(a.code(), 404, "valid token, unknown task: {a:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.process(PROCESS, 1).await.fails(401, "token is expired");
}

#[tokio::test(start_paused = true)]
async fn second_immediate_create_is_rate_limited() {
    let s = pan123(relaxed_config()).await;
    s.emu.set_rate_limit(EndpointId::OfflineDownload, 1.0);
    let files = file_server().await;
    let body = json!({"url": files.url("/data.bin")});

    let first = s.create(CREATE, &body).await;
    let second = s
        .post(CREATE, &body)
        .await
        .fails(429, "操作频繁，请稍后再试");
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(s.emu.rate_limited(), 1);
    assert_eq!(s.emu.tasks().len(), 1, "the limited call made no task");

    // Other endpoints have their own buckets.
    assert_eq!(s.process(PROCESS, first).await.code(), 0);

    // A second later the bucket has a token again.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let third = s.post(CREATE, &body).await;
    assert_eq!(third.code(), 0, "{third:?}");
    assert_eq!(s.emu.rate_limited(), 1);
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_is_rate_limited_per_client() {
    let emu = start(EmulatorConfig::default()).await;
    let api = Api::new(&emu);
    let (id, secret) = (emu.client_id(), emu.client_secret());
    assert_eq!(api.token_with(id, secret).await.code(), 0);
    assert_eq!(api.token_with(id, secret).await.code(), 429);
    // Another client ID has its own bucket (and wrong credentials).
    assert_eq!(api.token_with("other", "x").await.code(), 401);
    assert_eq!(emu.rate_limited(), 1);
    assert_eq!(emu.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn malformed_bodies_get_400_not_500() {
    let s = pan123(relaxed_config()).await;
    for (body, expect) in [
        (&b"{\"url\": "[..], "invalid request body"),
        (b"not json", "invalid request body"),
        (b"", "empty"),
        (b"{\"fileName\": \"a.bin\"}", "url"),
        (b"{\"url\": 42}", "invalid request body"),
        (b"[1,2,3]", "invalid request body"),
    ] {
        let a = s.post_raw(CREATE, body.to_vec()).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.code(), 400, "{a:?}");
        assert!(a.message().contains(expect), "{body:?}: {}", a.message());
    }
    let a = s
        .api
        .raw(
            Method::POST,
            TOKEN,
            &[("platform", "open_platform")],
            "{oops",
        )
        .await;
    assert_eq!(a.code(), 400);
    assert!(s.emu.tasks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalid_fields_get_400_and_make_no_task() {
    let s = pan123(relaxed_config()).await;
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
        let a = s.post(CREATE, &body).await;
        assert_eq!(a.code(), 400, "{body}: {a:?}");
        assert!(a.message().contains(expect), "{body}: {}", a.message());
    }
    assert!(s.emu.tasks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn bodies_over_the_limit_get_413() {
    let s = pan123(relaxed_config()).await;
    let mut big = b"{\"url\": \"http://127.0.0.1/".to_vec();
    big.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    big.extend(b"\"}");
    let a = s.post_raw(CREATE, big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.code(), 413);
    assert!(s.emu.tasks().is_empty());
    // The emulator still answers afterwards.
    assert_eq!(s.process(PROCESS, 5).await.code(), 404);
}

#[tokio::test(start_paused = true)]
async fn process_needs_a_known_numeric_task_id() {
    let s = pan123(relaxed_config()).await;
    let a = s.get(PROCESS).await;
    assert_eq!(a.code(), 400);
    assert!(a.message().contains("taskID"), "{}", a.message());
    assert_eq!(s.get(&format!("{PROCESS}?taskID=abc")).await.code(), 400);
    s.process(PROCESS, 999_999)
        .await
        .fails(404, "task not found");
    assert_eq!(s.process(OSS_PROCESS, 999_999).await.code(), 404);
}

#[tokio::test(start_paused = true)]
async fn trace_ids_are_unique() {
    let s = pan123(relaxed_config()).await;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let a = s.process(PROCESS, 1).await;
        let id = a.json["x-traceID"].as_str().unwrap().to_owned();
        assert!(seen.insert(id.clone()), "duplicate trace ID {id}");
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_listening_and_drop_removes_the_temp_dir() {
    let emu = start(EmulatorConfig::default()).await;
    let addr = emu.addr();
    let dir = emu.data_dir().to_path_buf();
    assert!(dir.is_dir());
    emu.shutdown().await;
    assert!(!dir.exists(), "temporary data directory removed");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let emu = start(EmulatorConfig::default()).await;
    let dir = emu.data_dir().to_path_buf();
    drop(emu);
    assert!(!dir.exists());
}

#[tokio::test(start_paused = true)]
async fn a_given_data_dir_is_created_and_kept() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("nested").join("store");
    let config = EmulatorConfig {
        data_dir: Some(dir.clone()),
        ..EmulatorConfig::default()
    };
    let emu = start(config).await;
    assert_eq!(emu.data_dir(), dir);
    emu.shutdown().await;
    assert!(dir.is_dir());
}
