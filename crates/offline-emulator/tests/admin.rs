//! The emulator's own routes: `GET /_emulator/stats` (open) and the admin token that
//! `PUT /_emulator/faults` needs.

mod common;

use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use offline_emulator::{EmulatorConfig, EndpointId, Faults, RunningEmulator, Stats};
use serde_json::{json, Value};

/// A request to an admin route, with `token` as the bearer token when given.
async fn admin(
    emu: &RunningEmulator,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let url = format!("{}{path}", emu.base_url());
    let raw = send(method, &url, &headers, body.to_owned()).await;
    let json = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
    (raw.status, json)
}

/// `GET /_emulator/stats`, checked against [`RunningEmulator::stats`].
async fn stats(emu: &RunningEmulator) -> Value {
    let (status, json) = admin(emu, Method::GET, "/_emulator/stats", None, "").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let typed: Stats = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(typed, emu.stats(), "the route and the method agree");
    json
}

#[tokio::test(start_paused = true)]
async fn stats_count_what_both_halves_carried_out() {
    let files = file_server().await;
    let config = EmulatorConfig {
        sixpan_simulated_duration: Duration::ZERO,
        ..relaxed_config()
    };
    let s = pan123(config).await;
    assert_eq!(
        stats(&s.emu).await,
        json!({
            "123pan": {"token_requests": 1, "tasks_created": 0, "image_tasks_created": 0, "rate_limited": 0, "tokens_refused": 0},
            "6pan": {"logins": 0, "tasks_created": 0, "instant_uploads": 0, "uploaded_chunks": 0},
            "faults_injected": 0,
        })
    );

    // 123pan: two cloud tasks, one image task, a refused create, a rate-limited call.
    s.cloud(&files.url("/data.bin"), json!({})).await;
    s.cloud(&files.url("/missing"), json!({})).await;
    s.image(&files.url("/photo.png"), json!({})).await;
    assert_eq!(
        s.post(CREATE, &json!({"url": "ftp://x/"})).await.code(),
        400
    );
    s.emu.set_rate_limit(EndpointId::OfflineProcess, 1.0);
    s.process(PROCESS, 1).await;
    assert_eq!(s.process(PROCESS, 1).await.code(), 429);

    // 6pan: a login, three tasks in one call, an instant upload.
    let mut six = SixPan::new(&s.emu);
    six.login(&s.emu).await;
    let links = ["magnet:?xt=urn:btih:89d97c2261a21b040cf11caa661a3ba7233bb7e6"; 3];
    six.add_links("/", &links).await;
    six.form_upload("a.bin", b"abc").await;
    let etag = offline_proto::qetag::qetag(b"abc");
    six.call(
        "/v1/store/token",
        &json!({"name": "b.bin", "hash": etag.as_str()}),
    )
    .await
    .ok(200);

    // Injected faults (the admin routes themselves are never faulted).
    s.emu.set_faults(Faults {
        server_error: 1.0,
        ..Faults::default()
    });
    let url = format!("{}{TOKEN}", s.emu.base_url());
    let faulted = send(Method::POST, &url, &[("platform", "open_platform")], "{}").await;
    assert_eq!(faulted.status, StatusCode::SERVICE_UNAVAILABLE);
    let json = stats(&s.emu).await;
    s.emu.set_faults(Faults::default());
    assert_eq!(
        json,
        json!({
            "123pan": {"token_requests": 1, "tasks_created": 2, "image_tasks_created": 1, "rate_limited": 1, "tokens_refused": 0},
            "6pan": {"logins": 1, "tasks_created": 3, "instant_uploads": 1, "uploaded_chunks": 0},
            "faults_injected": 1,
        })
    );
    let typed = s.emu.stats();
    assert_eq!(
        (typed.pan123.tasks_created, typed.sixpan.tasks_created),
        (2, 3)
    );
    assert_eq!(typed.faults_injected, s.emu.faults_injected());
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn changing_faults_needs_the_admin_token() {
    let emu = start(EmulatorConfig::default()).await;
    let token = emu.admin_token().to_owned();
    assert!(token.len() >= 32, "{token}");
    let put = |token: Option<String>| {
        let emu = &emu;
        async move {
            admin(
                emu,
                Method::PUT,
                "/_emulator/faults",
                token.as_deref(),
                r#"{"seed": 3, "server_error": 0.5}"#,
            )
            .await
        }
    };

    for wrong in [None, Some("nope".to_owned()), Some(format!("{token}x"))] {
        let (status, json) = put(wrong.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?}: {json}");
        assert!(
            json["error"].as_str().unwrap().contains("admin token"),
            "{json}"
        );
    }
    // Refused changes changed nothing; reading stays open.
    let (status, json) = admin(&emu, Method::GET, "/_emulator/faults", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["server_error"], 0.0);

    let (status, json) = put(Some(token.clone())).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        (json["seed"].clone(), json["server_error"].clone()),
        (json!(3), json!(0.5))
    );
    let (_, json) = admin(&emu, Method::GET, "/_emulator/faults", None, "").await;
    assert_eq!(json["server_error"], 0.5);

    // A bad body, with the token: 400, nothing changed.
    let (status, _) = admin(&emu, Method::PUT, "/_emulator/faults", Some(&token), "[").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Any other write under /_emulator/ needs the token too; then it is routed.
    let (status, _) = admin(&emu, Method::POST, "/_emulator/stats", None, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = admin(&emu, Method::POST, "/_emulator/stats", Some(&token), "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = admin(&emu, Method::DELETE, "/_emulator/other", Some(&token), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // In process, no token is needed.
    emu.set_faults(Faults::default());
    let (_, json) = admin(&emu, Method::GET, "/_emulator/faults", None, "").await;
    assert_eq!(json["server_error"], 0.0);
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_configured_admin_token_is_used() {
    let emu = start(EmulatorConfig {
        admin_token: Some("chosen-admin-token".to_owned()),
        ..EmulatorConfig::default()
    })
    .await;
    assert_eq!(emu.admin_token(), "chosen-admin-token");
    let (status, _) = admin(
        &emu,
        Method::PUT,
        "/_emulator/faults",
        Some("chosen-admin-token"),
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Random per emulator otherwise.
    let a = start(EmulatorConfig::default()).await;
    let b = start(EmulatorConfig::default()).await;
    assert_ne!(a.admin_token(), b.admin_token());
    emu.shutdown().await;
}
