//! The `offline` binary and 123pan credentials, as real processes against an
//! in-process emulator: the token cap ("tokens number has exceeded the limit"), OAuth
//! login, and the batch under the concurrent-task cap.

mod common;

use common::{emulator, json_values, line_events, octets, offline, output, tasks_per_url, Env};
use offline_emulator::{EmulatorConfig, Faults};

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

/// A batch of `n` lines of `env`'s file in `name`, its path as a string.
fn batch_file(env: &Env, name: &str, n: usize) -> String {
    let urls: Vec<String> = (0..n).map(|i| env.url(i)).collect();
    let input = env.path(name);
    std::fs::write(&input, urls.join("\n")).unwrap();
    input.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_under_the_task_cap_waits_and_submits_every_line_once() {
    let env = Env::start(
        EmulatorConfig {
            faults: Faults {
                seed: 11,
                task_limit: 0.5,
                ..Faults::default()
            },
            ..EmulatorConfig::default()
        },
        0.0,
        [("f.bin".to_owned(), octets(3, 100))],
    )
    .await;
    let n = 6;
    let input = batch_file(&env, "capped.txt", n);
    let out = env
        .run(&[
            "--rate-limit",
            "offline_download=100",
            "add",
            "--from",
            &input,
            "--json",
            "--cap-wait",
            "0.01",
        ])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events = json_values(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{events:#?}\n{stderr}");
    let resubmits = events.iter().filter(|e| e["event"] == "resubmit").count();
    assert!(resubmits > 0, "the cap was met and waited out: {events:#?}");
    assert_eq!(resubmits as u64, env.emu.faults_injected());
    let lines = line_events(events);
    assert_eq!(lines.len(), n);
    assert!(
        lines.iter().all(|l| l["state"] == "submitted"),
        "{lines:#?}"
    );
    let per_url = tasks_per_url(&env.emu);
    assert_eq!(per_url.len(), n);
    assert!(
        per_url.values().all(|c| *c == 1),
        "each line once: {per_url:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_still_capped_after_its_waits_stays_pending_for_the_next_run() {
    let env = Env::start(
        EmulatorConfig {
            faults: Faults {
                task_limit: 1.0,
                ..Faults::default()
            },
            ..EmulatorConfig::default()
        },
        0.0,
        [("f.bin".to_owned(), octets(3, 100))],
    )
    .await;
    let input = batch_file(&env, "full.txt", 1);
    let args = [
        "--rate-limit",
        "offline_download=100",
        "add",
        "--from",
        input.as_str(),
        "--json",
        "--cap-wait",
        "0.001",
    ];
    let out = env.run(&args).await;
    let events = json_values(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{events:#?}");
    let resubmits = events.iter().filter(|e| e["event"] == "resubmit").count();
    assert_eq!(resubmits as u32, offline_proto::retry::MAX_RESUBMITS);
    let lines = line_events(events);
    assert_eq!(lines[0]["state"], "pending", "{lines:#?}");
    assert!(env.emu.tasks().is_empty());
    // The cap frees: the next run submits the line.
    env.emu.set_faults(Faults::default());
    let out = env.run(&args).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        line_events(json_values(&out.stdout))[0]["state"],
        "submitted"
    );
    assert_eq!(env.emu.tasks().len(), 1);
}
