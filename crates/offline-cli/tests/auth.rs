//! The `offline` binary and 123pan credentials, as real processes against an
//! in-process emulator: the token cap ("tokens number has exceeded the limit"), OAuth
//! login, and the batch under the concurrent-task cap.

mod common;

use common::{emulator, offline, output};
use offline_emulator::EmulatorConfig;

#[tokio::test(flavor = "multi_thread")]
async fn the_token_cap_is_reported_with_the_advice_to_reuse_the_cached_token() {
    let emu = emulator(
        EmulatorConfig {
            max_tokens_per_client: Some(1),
            ..EmulatorConfig::default()
        },
        0.0,
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    // Processes that share the token cache share one token: the cap is never met.
    for _ in 0..3 {
        let out = output({
            let mut c = offline(&emu, cache.path());
            c.arg("login");
            c
        })
        .await;
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(emu.token_requests(), 1);
    // A process that keeps no cache needs a second token: refused, with the advice.
    let out = output({
        let mut c = offline(&emu, cache.path());
        c.args(["--no-token-cache", "status", "100001"]);
        c
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "provider error: {stderr}");
    assert!(
        stderr.contains("tokens number has exceeded the limit"),
        "{stderr}"
    );
    assert!(
        stderr.contains("reuses one cached access token per client ID across runs"),
        "{stderr}"
    );
    assert_eq!(
        emu.stats().pan123.tokens_refused,
        1,
        "one token request, no loop"
    );
    assert_eq!(emu.token_requests(), 1);
}
