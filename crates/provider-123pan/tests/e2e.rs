//! provider-123pan against the emulator over real loopback HTTP, in tokio's paused
//! time: the emulator reads time through tokio's clock, so token expiry, progress
//! pacing, rate-limit refills, callback delays and the client's poll waits take no real
//! time ([`start`] keeps paused time creeping while sockets work).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use offline_proto::pan123::EndpointId;
use offline_proto::tracker::PollPolicy;
use offline_proto::{
    ApiError, HttpClient, HttpRequest, HttpResponse, TransportError, TransportErrorKind,
};
use provider_123pan::{
    CallbackStatus, Error, OfflineDownloadRequest, OssOfflineDownloadRequest, Pan123,
    Pan123Builder, TaskId, TaskRef, TaskStatus,
};
use transport_hyper::HyperClient;

const PNG: &[u8] = include_bytes!("../../../fixtures/images/trpl14-01.png");

fn sample(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 7 % 253) as u8)
        .collect::<Vec<_>>()
        .into()
}

async fn sources() -> (SourceServer, Bytes) {
    let bytes = sample(300 * 1024 + 17);
    let mut files = BTreeMap::new();
    files.insert(
        "data.bin".to_owned(),
        ServedFile::new("application/octet-stream", bytes.clone()),
    );
    files.insert(
        "pic.png".to_owned(),
        ServedFile::new("image/png", Bytes::from_static(PNG)),
    );
    (SourceServer::start(files).await.unwrap(), bytes)
}

fn fast_poll() -> PollPolicy {
    PollPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        factor: 1.5,
    }
}

/// A builder with the emulator's address and credentials.
fn builder(emu: &RunningEmulator) -> Pan123Builder<HyperClient> {
    Pan123::builder()
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret())
}

/// Rate limits high enough that tests not about them are never slowed by them.
fn relaxed<C>(mut builder: Pan123Builder<C>) -> Pan123Builder<C> {
    for e in EndpointId::ALL {
        builder = builder.rate_limit(e, 1000.0);
    }
    builder
}

fn client(emu: &RunningEmulator) -> Pan123 {
    builder(emu).poll_policy(fast_poll()).build().unwrap()
}

/// Starts an emulator in paused time (see the module docs).
async fn start(config: EmulatorConfig) -> RunningEmulator {
    transport_hyper::keep_paused_time_moving();
    Emulator::start(config).await.unwrap()
}

/// An emulator with generous limits, so that tests not about rate limits are not
/// slowed by them.
async fn fast_emulator() -> RunningEmulator {
    let emu = start(EmulatorConfig::default()).await;
    for e in EndpointId::ALL {
        emu.set_rate_limit(e, 1000.0);
    }
    emu
}

fn fast_client(emu: &RunningEmulator) -> Pan123 {
    relaxed(builder(emu).poll_policy(fast_poll()))
        .build()
        .unwrap()
}

/// Asks for `file` of `src` to be downloaded into the drive.
async fn create(pan: &Pan123, src: &SourceServer, file: &str) -> TaskId {
    pan.offline_download(src.file_url(file)).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn download_completes_with_the_right_bytes_stored() {
    let emu = fast_emulator().await;
    let (src, bytes) = sources().await;
    let pan = fast_client(&emu);
    let task = create(&pan, &src, "data.bin").await;
    let updates: Vec<_> = pan.wait(TaskRef::cloud(task)).collect().await;
    let last = updates.last().unwrap().as_ref().unwrap();
    assert_eq!(last.status, TaskStatus::Succeeded);
    assert!((last.percent - 100.0).abs() < f64::EPSILON);
    assert!(updates.iter().all(Result::is_ok));
    let snap = emu.tasks().into_iter().find(|t| t.id == task).unwrap();
    let stored = std::fs::read(snap.stored_path.unwrap()).unwrap();
    assert_eq!(stored, bytes.as_ref());
    assert!(snap.file_id.is_some());
}

#[tokio::test(start_paused = true)]
async fn progress_is_reported_while_running() {
    let config = EmulatorConfig {
        fetch_rate: Some(400 * 1024), // ~0.75 s for the file
        ..Default::default()
    };
    let emu = start(config).await;
    let (src, _) = sources().await;
    let pan = client(&emu);
    let task = create(&pan, &src, "data.bin").await;
    let updates: Vec<_> = pan
        .wait(TaskRef::cloud(task))
        .map(Result::unwrap)
        .collect()
        .await;
    let running: Vec<f64> = updates
        .iter()
        .filter(|u| u.status == TaskStatus::Running)
        .map(|u| u.percent)
        .collect();
    assert!(
        !running.is_empty(),
        "never saw the task running: {updates:?}"
    );
    assert!(
        running.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {running:?}"
    );
    assert!(running.iter().all(|p| (0.0..100.0).contains(p)));
    assert_eq!(updates.last().unwrap().status, TaskStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn failing_source_fails_with_a_reason() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let pan = fast_client(&emu);
    let task = create(&pan, &src, "nope.bin").await;
    let last = pan.wait_final(TaskRef::cloud(task)).await.unwrap();
    assert_eq!(last.status, TaskStatus::Failed);
    assert_eq!(last.percent, 0.0);
    let snap = emu.tasks().into_iter().find(|t| t.id == task).unwrap();
    assert!(snap.fail_reason.unwrap().contains("404"));
}

#[tokio::test(start_paused = true)]
async fn token_expiry_in_the_middle_of_a_run_refreshes_once() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let pan = fast_client(&emu);
    let task = create(&pan, &src, "data.bin").await;
    assert_eq!(emu.token_requests(), 1);
    emu.expire_tokens();
    let last = pan.wait_final(TaskRef::cloud(task)).await.unwrap();
    assert_eq!(last.status, TaskStatus::Succeeded);
    assert_eq!(emu.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn many_concurrent_calls_on_an_expired_token_make_one_token_request() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let pan = fast_client(&emu);
    let task = create(&pan, &src, "data.bin").await;
    emu.expire_tokens();
    let calls = (0..32).map(|_| {
        let pan = pan.clone();
        tokio::spawn(async move { pan.process(task).await })
    });
    for r in futures_util::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        emu.token_requests(),
        2,
        "one at start, exactly one after expiry"
    );
}

/// An emulator that allows `server` requests a second to `endpoint`, a client that
/// believes it may send `client` a second, and the sources.
async fn limited(
    endpoint: EndpointId,
    server: f64,
    client: f64,
) -> (RunningEmulator, Pan123, SourceServer) {
    let emu = start(EmulatorConfig::default()).await;
    emu.set_rate_limit(endpoint, server);
    let pan = builder(&emu).rate_limit(endpoint, client).build().unwrap();
    (emu, pan, sources().await.0)
}

#[tokio::test(start_paused = true)]
async fn rate_limited_creates_are_sent_again_and_succeed() {
    // The client believes it may send 100/s, so the emulator must push back.
    let (emu, pan, src) = limited(EndpointId::OfflineDownload, 2.0, 100.0).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(create(&pan, &src, "data.bin").await);
    }
    assert!(emu.rate_limited() >= 1, "the emulator never said 429");
    let created = emu.tasks();
    assert_eq!(created.len(), 4, "each create carried out exactly once");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_client_paces_itself_to_avoid_429() {
    let (emu, pan, src) = limited(EndpointId::OfflineProcess, 20.0, 20.0).await;
    let task = create(&pan, &src, "data.bin").await;
    for _ in 0..30 {
        pan.process(task).await.unwrap();
    }
    assert_eq!(emu.rate_limited(), 0);
}

#[tokio::test(start_paused = true)]
async fn image_bed_accepts_images_and_refuses_others_locally() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let pan = fast_client(&emu);
    let task = pan
        .oss_offline_download(src.file_url("pic.png"))
        .await
        .unwrap();
    let last = pan.wait_final(TaskRef::image(task)).await.unwrap();
    assert_eq!(last.status, TaskStatus::Succeeded);
    let snap = emu.tasks().into_iter().find(|t| t.id == task).unwrap();
    assert_eq!(std::fs::read(snap.stored_path.unwrap()).unwrap(), PNG);

    let err = pan
        .oss_offline_download(src.file_url("data.bin"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    // A non-image URL is fine when the file name is an image.
    let mut req = OssOfflineDownloadRequest::new(src.file_url("data.bin"));
    req.file_name = Some("renamed.png".to_owned());
    pan.oss_offline_download(req).await.unwrap();
    assert_eq!(
        emu.tasks().len(),
        2,
        "the refused request never reached the server"
    );
}

#[tokio::test(start_paused = true)]
async fn cloud_drive_refuses_bad_input_before_sending() {
    let emu = fast_emulator().await;
    let pan = fast_client(&emu);
    for bad in ["ftp://x.y/a", "magnet:?xt=urn:btih:abc", "not a url"] {
        let err = pan.offline_download(bad).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad}: {err:?}");
    }
    let mut req = OfflineDownloadRequest::new("http://127.0.0.1:1/x");
    req.dir_id = Some(offline_proto::pan123::FileId::ROOT);
    assert!(matches!(
        pan.offline_download(req).await,
        Err(Error::Invalid(_))
    ));
    assert_eq!(
        emu.token_requests(),
        0,
        "nothing was sent, not even a token request"
    );
}

#[tokio::test(start_paused = true)]
async fn callback_is_received_and_matches_progress() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let pan = fast_client(&emu);
    let mut ok = OfflineDownloadRequest::new(src.file_url("data.bin"));
    ok.callback_url = Some(src.callback_url());
    let mut bad = OfflineDownloadRequest::new(src.file_url("gone.bin"));
    bad.callback_url = Some(src.callback_url());
    let t1 = pan.offline_download(ok).await.unwrap();
    let t2 = pan.offline_download(bad).await.unwrap();
    let callbacks = src.wait_callbacks(2, Duration::from_secs(10)).await;
    assert_eq!(callbacks.len(), 2);
    let good = callbacks
        .iter()
        .find(|c| c.url.ends_with("data.bin"))
        .unwrap();
    assert_eq!(good.status, CallbackStatus::Succeeded);
    assert!(good.file_id.is_some_and(|id| id > 0));
    let failed = callbacks
        .iter()
        .find(|c| c.url.ends_with("gone.bin"))
        .unwrap();
    assert_eq!(failed.status, CallbackStatus::Failed);
    assert!(!failed.fail_reason.is_empty());
    assert_eq!(pan.process(t1).await.unwrap().status, TaskStatus::Succeeded);
    assert_eq!(pan.process(t2).await.unwrap().status, TaskStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn unknown_task_is_a_provider_error_with_trace_id() {
    let emu = fast_emulator().await;
    let pan = fast_client(&emu);
    let err = pan
        .process(provider_123pan::TaskId(424242))
        .await
        .unwrap_err();
    let provider = err.provider_error().expect("a provider error");
    assert!(provider.trace_id.as_deref().is_some_and(|t| !t.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn wrong_secret_is_reported_not_retried_forever() {
    let emu = fast_emulator().await;
    let pan = Pan123::builder()
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret("wrong")
        .build()
        .unwrap();
    let err = pan.process(provider_123pan::TaskId(1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api(ApiError::TokenInvalid(_)) | Error::Api(ApiError::Provider(_))
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fixed_token_that_expires_is_unavailable() {
    let emu = fast_emulator().await;
    let pan = fast_client(&emu);
    let _ = pan.ensure_token().await.unwrap();
    // Steal nothing: build a second client with an unknown fixed token.
    let fixed = Pan123::builder()
        .base_url(emu.base_url())
        .access_token("not-a-real-token", None)
        .build()
        .unwrap();
    let err = fixed.process(provider_123pan::TaskId(1)).await.unwrap_err();
    assert!(
        matches!(err, Error::Api(ApiError::TokenInvalid(_))),
        "{err:?}"
    );
    let err = fixed.process(provider_123pan::TaskId(1)).await.unwrap_err();
    assert!(matches!(err, Error::NotAuthenticated), "{err:?}");
}

/// Forwards to hyper, but loses the answer of the first create call after it reached
/// the server, as a connection reset after sending would.
struct LoseFirstCreateAnswer {
    inner: HyperClient,
    lost: AtomicBool,
}

impl HttpClient for LoseFirstCreateAnswer {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let is_create = request.uri().path() == EndpointId::OfflineDownload.path();
        let response = self.inner.send(request).await?;
        if is_create && !self.lost.swap(true, Ordering::SeqCst) {
            return Err(TransportError::new(
                TransportErrorKind::Closed,
                "connection reset after sending",
            ));
        }
        Ok(response)
    }
}

#[tokio::test(start_paused = true)]
async fn a_create_whose_answer_is_lost_is_not_sent_again() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let transport = Arc::new(LoseFirstCreateAnswer {
        inner: HyperClient::new().unwrap(),
        lost: AtomicBool::new(false),
    });
    let pan = relaxed(builder(&emu).http_client(offline_proto::shared(Arc::clone(&transport))))
        .build()
        .unwrap();
    let err = pan
        .offline_download(src.file_url("data.bin"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert!(
        err.to_string().contains("check"),
        "the message says what to do: {err}"
    );
    assert_eq!(emu.tasks().len(), 1, "created once, never re-sent");
}

// The call deadline bounds retries and cuts an unanswered request; a create whose
// rate-limit wait ran past the deadline is still sent whole, never reported as
// outcome unknown without having left.
#[tokio::test(start_paused = true)]
async fn a_create_paced_past_its_deadline_is_sent_not_reported_unknown() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let pan = builder(&emu)
        .rate_limit(EndpointId::OfflineDownload, 0.5)
        .call_deadline(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    create(&pan, &src, "data.bin").await;
    // The second waits about 2 s for the limit: past its 1 s deadline.
    let second = pan.offline_download(src.file_url("data.bin")).await;
    assert!(second.is_ok(), "{second:?}");
    assert_eq!(emu.tasks().len(), 2);
}

// The command deadline: a create whose rate-limit wait runs past it is not sent at all
// (unlike a late request under the call deadline alone), ending with a transport error
// that says so, never outcome unknown.
#[tokio::test(start_paused = true)]
async fn a_create_paced_past_the_command_deadline_is_not_sent() {
    let emu = fast_emulator().await;
    let (src, _) = sources().await;
    let pan = builder(&emu)
        .rate_limit(EndpointId::OfflineDownload, 0.5)
        .build()
        .unwrap();
    create(&pan, &src, "data.bin").await;
    let deadline = tokio::time::Instant::now().into_std() + Duration::from_secs(1);
    pan.set_command_deadline(Some(deadline));
    assert_eq!(pan.command_deadline(), Some(deadline));
    // The second would wait about 2 s for the limit: past the deadline, 1 s away.
    match pan.offline_download(src.file_url("data.bin")).await {
        Err(Error::Transport(e)) => {
            assert!(offline_proto::call::past_command_deadline(&e), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(emu.tasks().len(), 1);
}

/// A transport whose requests are never answered.
struct Silent;

impl HttpClient for Silent {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
        std::future::pending().await
    }
}

// A request in flight at the command deadline is cut then, before its 120 s call
// deadline: a create as outcome unknown; a later call ends at once, unsent.
#[tokio::test(start_paused = true)]
async fn a_request_in_flight_is_cut_at_the_command_deadline() {
    let started = tokio::time::Instant::now();
    let pan = Pan123::builder()
        .http_client(Silent)
        .base_url("http://127.0.0.1:1")
        .access_token("t", None)
        .command_deadline(Some(started.into_std() + Duration::from_secs(10)))
        .build()
        .unwrap();
    let err = pan
        .offline_download("https://example.com/a.bin")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    match pan.progress(TaskRef::cloud(TaskId(1))).await {
        Err(Error::Transport(e)) => {
            assert!(offline_proto::call::past_command_deadline(&e), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}
