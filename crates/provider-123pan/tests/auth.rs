//! provider-123pan's credentials against the emulator over real loopback HTTP, in
//! tokio's paused time: the token cap ("tokens number has exceeded the limit"), the
//! create refusals the service answers (the concurrent-task cap, a duplicate task, the
//! quota) and OAuth.

use std::time::Duration;

use offline_emulator::{Emulator, EmulatorConfig, Faults, RunningEmulator};
use offline_proto::pan123::EndpointId;
use offline_proto::ApiError;
use provider_123pan::{Error, Pan123, TaskId};

/// Starts an emulator in paused time with `config`, without rate limits.
async fn start(config: EmulatorConfig) -> RunningEmulator {
    transport_hyper::keep_paused_time_moving();
    let emu = Emulator::start(EmulatorConfig {
        rate_limits: Default::default(),
        ..config
    })
    .await
    .unwrap();
    for e in EndpointId::ALL {
        emu.set_rate_limit(e, 0.0);
    }
    emu
}

/// A client with the emulator's client ID and secret, without rate limits.
fn client(emu: &RunningEmulator) -> Pan123 {
    let mut b = Pan123::builder()
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret());
    for e in EndpointId::ALL {
        b = b.rate_limit(e, 0.0);
    }
    b.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn at_the_token_cap_a_call_fails_typed_after_exactly_one_token_request() {
    let emu = start(EmulatorConfig {
        max_tokens_per_client: Some(2),
        token_lifetime: Duration::from_secs(120),
        ..EmulatorConfig::default()
    })
    .await;
    // Two other processes hold the two live tokens the client ID may have.
    for _ in 0..2 {
        client(&emu).ensure_token().await.unwrap();
    }
    let pan = client(&emu);
    let err = pan.process(TaskId(1)).await.unwrap_err();
    match &err {
        Error::Api(ApiError::TooManyTokens { error, .. }) => {
            assert_eq!(error.message, "tokens number has exceeded the limit");
        }
        other => panic!("expected TooManyTokens, got {other:?}"),
    }
    assert_eq!(pan.token_requests(), 1, "one token request, no loop");
    assert_eq!(emu.stats().pan123.tokens_refused, 1);
    // Calls right after it send no token request at all.
    let again = pan.process(TaskId(1)).await.unwrap_err();
    assert!(
        matches!(again, Error::Api(ApiError::TooManyTokens { .. })),
        "{again:?}"
    );
    assert_eq!(pan.token_requests(), 1);
    assert_eq!(emu.stats().pan123.tokens_refused, 1);
    // Once the held tokens expire a slot is free: the client gets one.
    tokio::time::sleep(Duration::from_secs(121)).await;
    pan.ensure_token().await.unwrap();
    assert_eq!(pan.token_requests(), 2);
}

/// Whether an error is the one a case expects.
type Expected = fn(&ApiError) -> bool;

#[tokio::test(start_paused = true)]
async fn create_refusals_are_typed_and_sent_once() {
    let emu = start(EmulatorConfig::default()).await;
    let pan = client(&emu);
    let url = format!("{}/missing.bin", emu.base_url());
    let cases: [(Faults, Expected); 3] = [
        (
            Faults {
                task_limit: 1.0,
                ..Faults::default()
            },
            |e| matches!(e, ApiError::TaskLimit(p) if p.message.contains("同时下载的任务超出最大限制")),
        ),
        (
            Faults {
                duplicate_task: 1.0,
                ..Faults::default()
            },
            |e| matches!(e, ApiError::DuplicateTask(_)),
        ),
        (
            Faults {
                quota_exceeded: 1.0,
                ..Faults::default()
            },
            |e| matches!(e, ApiError::QuotaExceeded(p) if p.code == offline_proto::Code::Int(5113)),
        ),
    ];
    for (i, (faults, expected)) in cases.into_iter().enumerate() {
        emu.set_faults(faults);
        let err = pan.offline_download(url.as_str()).await.unwrap_err();
        match &err {
            Error::Api(e) if expected(e) => {}
            other => panic!("case {i}: {other:?}"),
        }
        assert_eq!(emu.faults_injected(), i as u64 + 1, "case {i}: sent once");
    }
    assert!(emu.tasks().is_empty(), "nothing was created");
    // Without the faults the same create is carried out.
    emu.set_faults(Faults::default());
    pan.offline_download(url.as_str()).await.unwrap();
    assert_eq!(emu.tasks().len(), 1);
}

/// Opens the emulator's authorize page as a browser would (one GET, the redirect not
/// followed) and returns the code and state it sends to `redirect_uri`.
async fn authorize(emu: &RunningEmulator, redirect_uri: &str, state: &str) -> (String, String) {
    use offline_proto::HttpClient;
    let url = offline_proto::pan123::authorize_url(
        &format!("{}/auth", emu.base_url()),
        emu.client_id(),
        redirect_uri,
        offline_proto::pan123::DEFAULT_SCOPE,
        state,
    );
    let request = http::Request::get(url).body(bytes::Bytes::new()).unwrap();
    let answer = transport_hyper::HyperClient::new()
        .unwrap()
        .send(request)
        .await
        .unwrap();
    assert_eq!(answer.status(), http::StatusCode::FOUND);
    let location = answer.headers()[http::header::LOCATION].to_str().unwrap();
    assert!(location.starts_with(redirect_uri), "{location}");
    let query = location.split_once('?').unwrap().1;
    let pairs: std::collections::HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    (pairs["code"].clone(), pairs["state"].clone())
}

/// Exchanges `code` for tokens over loopback HTTP.
async fn exchange(
    emu: &RunningEmulator,
    code: &str,
    redirect_uri: &str,
) -> Result<offline_proto::pan123::OAuthToken, ApiError> {
    use offline_proto::HttpClient;
    let base = offline_proto::BaseUrl::parse(&emu.base_url()).unwrap();
    let secret = offline_proto::Secret::new(emu.client_secret());
    let request = offline_proto::pan123::oauth_code_request(
        &base,
        emu.client_id(),
        Some(&secret),
        code,
        redirect_uri,
    )
    .unwrap();
    let answer = transport_hyper::HyperClient::new()
        .unwrap()
        .send(request)
        .await
        .unwrap();
    offline_proto::pan123::decode_oauth_token(&answer)
}

#[tokio::test(start_paused = true)]
async fn the_oauth_flow_end_to_end_with_single_use_rotating_refresh_tokens() {
    let emu = start(EmulatorConfig::default()).await;
    let redirect = "http://127.0.0.1:9/callback";
    let (code, state) = authorize(&emu, redirect, "st-1").await;
    assert_eq!(state, "st-1");
    let tokens = exchange(&emu, &code, redirect).await.unwrap();
    assert_eq!(tokens.expires_in, 7200);
    assert_eq!(tokens.token_type, "Bearer");
    // A code is single use.
    let again = exchange(&emu, &code, redirect).await.unwrap_err();
    assert!(matches!(again, ApiError::TokenInvalid(_)), "{again:?}");

    // The provider refreshes with the refresh token (no client secret) and hands each
    // new refresh token to the hook before using the new access token.
    let saved = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hook = {
        let saved = std::sync::Arc::clone(&saved);
        std::sync::Arc::new(move |t: &offline_proto::Secret, _| {
            saved.lock().unwrap().push(t.expose().to_owned());
        }) as offline_proto::pan123::RefreshHook
    };
    let mut b = Pan123::builder()
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .oauth_refresh_token(tokens.refresh_token.clone(), Some(hook));
    for e in EndpointId::ALL {
        b = b.rate_limit(e, 0.0);
    }
    let pan = b.build().unwrap();
    let url = format!("{}/x.bin", emu.base_url());
    pan.offline_download(url.as_str()).await.unwrap();
    let (first, rotations) = pan.refresh_token().unwrap();
    assert_eq!(rotations, 1);
    assert_ne!(first.expose(), tokens.refresh_token.expose());
    assert_eq!(*saved.lock().unwrap(), vec![first.expose().to_owned()]);
    // The refresh token it replaced is refused with code 401.
    let replaced = Pan123::builder()
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .oauth_refresh_token(tokens.refresh_token.clone(), None)
        .build()
        .unwrap();
    let err = replaced.ensure_token().await.unwrap_err();
    assert!(
        matches!(&err, Error::Api(ApiError::TokenInvalid(p)) if p.code == offline_proto::Code::Int(401)),
        "{err:?}"
    );
    // A 401 on a call (the access token ended) refreshes once more and rotates again.
    emu.expire_tokens();
    pan.process(TaskId(100_001)).await.unwrap();
    let (second, rotations) = pan.refresh_token().unwrap();
    assert_eq!(rotations, 2);
    assert_ne!(second.expose(), first.expose());
    assert_eq!(saved.lock().unwrap().last().unwrap(), second.expose());
}
