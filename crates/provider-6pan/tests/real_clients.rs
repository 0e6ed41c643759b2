//! provider-6pan speaking 6pan as its real v2 clients do, against the emulator over
//! real loopback HTTP in tokio's paused time: `/v2/upload/token` for upload tokens
//! (issue 12 #9), chosen by configuration; logging the other sessions out when the
//! user asks, after `LOGIN_USER_TOO_MUCH` (issue 12 #10b).

use std::sync::{Arc, Mutex};

use offline_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use offline_proto::qetag::qetag;
use offline_proto::ApiError;
use offline_proto::{HttpClient, HttpRequest};
use provider_6pan::{EndpointId, Error, SixPan, UploadTokenApi};
use transport_hyper::HyperClient;

async fn emulator(config: EmulatorConfig) -> RunningEmulator {
    transport_hyper::keep_paused_time_moving();
    Emulator::start(config).await.unwrap()
}

/// The paths of every request a client sent, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A client of `emu` (no rate limits) choosing its upload-token call by `api`, and
/// the paths it sends.
fn client(emu: &RunningEmulator, api: Option<UploadTokenApi>) -> (SixPan<impl HttpClient>, Seen) {
    let seen: Seen = Arc::default();
    let http = HyperClient::new().unwrap();
    let record = Arc::clone(&seen);
    let transport = move |request: HttpRequest| {
        record.lock().unwrap().push(request.uri().path().to_owned());
        let http = http.clone();
        async move { http.send(request).await }
    };
    let mut b = SixPan::builder()
        .http_client(transport)
        .base_url(emu.base_url())
        .login(emu.sixpan_account(), emu.sixpan_password());
    if let Some(api) = api {
        b = b.upload_token_api(api);
    }
    for e in EndpointId::ALL {
        b = b.rate_limit(e, 1000.0);
    }
    (b.build().unwrap(), seen)
}

fn count(seen: &Seen, path: &str) -> usize {
    seen.lock().unwrap().iter().filter(|p| *p == path).count()
}

/// A file of `len` bytes in a fresh directory.
fn file(len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 13) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    (dir, path, data)
}

// Issue 12 #9: with `UploadTokenApi::V2` every token comes from `/v2/upload/token`
// (never `/v1/store/token`); a block upload stores the file's exact bytes, and the
// same file again is an instant upload from `hashCached: true`.
#[tokio::test(start_paused = true)]
async fn v2_upload_tokens_upload_in_blocks_and_hash_cached_is_instant() {
    let emu = emulator(EmulatorConfig::default()).await;
    let (pan, seen) = client(&emu, Some(UploadTokenApi::V2));
    let (_dir, path, data) = file(4 * 1024 * 1024 + 4321);
    let report = pan.upload_file(&path, "/up").await.unwrap();
    assert_eq!(report.etag, qetag(&data));
    assert!(!report.instant);
    let stored = emu.stored_blob(report.etag.as_str()).unwrap();
    assert_eq!(std::fs::read(stored).unwrap(), data);
    assert_eq!(count(&seen, "/v2/upload/token"), 1);
    assert_eq!(count(&seen, "/v1/store/token"), 0);

    let again = pan.upload_file(&path, "/elsewhere").await.unwrap();
    assert!(again.instant, "the drive knows the etag");
    assert!(again.file.is_none(), "hashCached describes no file");
    assert_eq!(emu.instant_uploads(), 1);
    assert_eq!(count(&seen, "/v2/upload/token"), 2);
    assert_eq!(count(&seen, "/v1/store/token"), 0);
    // The instant upload sent no byte: nothing went to the storage service after the
    // second token call.
    let paths = seen.lock().unwrap().clone();
    let last_token = paths.iter().rposition(|p| p == "/v2/upload/token").unwrap();
    assert!(
        !paths[last_token..].iter().any(|p| p.starts_with("/wcs/")),
        "{paths:?}"
    );
}

// Without the option the seed's `/v1/store/token` is used, as before.
#[tokio::test(start_paused = true)]
async fn the_default_upload_token_call_is_the_seeds() {
    let emu = emulator(EmulatorConfig::default()).await;
    let (pan, seen) = client(&emu, None);
    let (_dir, path, _) = file(1000);
    let report = pan.upload_file(&path, "/up").await.unwrap();
    assert!(!report.instant);
    assert_eq!(count(&seen, "/v1/store/token"), 1);
    assert_eq!(count(&seen, "/v2/upload/token"), 0);
    let again = pan.upload_file(&path, "/up").await.unwrap();
    assert!(
        again.instant && again.file.is_some(),
        "storeToken answers the file"
    );
}

// Issue 12 #10b: with one session allowed, a second client's login is refused
// (LOGIN_USER_TOO_MUCH) and nothing else happens: the first client keeps working.
// Only `login_logging_out_others` lists the sessions with the refusal's token, logs
// the other one out, and logs in again.
#[tokio::test(start_paused = true)]
async fn too_many_sessions_are_logged_out_only_when_asked() {
    let emu = emulator(EmulatorConfig {
        sixpan_max_devices: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let (first, _) = client(&emu, None);
    first.login().await.unwrap();
    let (second, seen) = client(&emu, None);
    let refused = second.login().await.unwrap_err();
    assert!(
        matches!(&refused, Error::Api(ApiError::Provider(p)) if p.code.to_string() == "LOGIN_USER_TOO_MUCH"),
        "{refused:?}"
    );
    assert_eq!(count(&seen, "/v2/user/logoutOther"), 0, "never silently");
    first
        .user_info()
        .await
        .expect("the first session still works");

    second.login_logging_out_others().await.unwrap();
    assert_eq!(count(&seen, "/v2/user/online"), 1);
    assert_eq!(count(&seen, "/v2/user/logoutOther"), 1);
    second.user_info().await.unwrap();
    assert_eq!(emu.sixpan_logins(), 2);
    // The first session was logged out: its own login is now the one refused.
    let again = first.user_info().await.unwrap_err();
    assert!(
        matches!(&again, Error::Api(ApiError::Provider(p)) if p.code.to_string() == "LOGIN_USER_TOO_MUCH"),
        "{again:?}"
    );
}
