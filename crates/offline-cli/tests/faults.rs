//! Batches under injected faults: 1000 submissions with 10 % of requests faulted end
//! with every line submitted exactly once or reported with a reason, counted from the
//! emulator's own task list.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use offline_emulator::{EmulatorConfig, EndpointId, Faults, RunningEmulator};
use provider_123pan::{Error, Pan123, Pan123Builder};
use serde_json::Value;

mod common;
use common::{emulator, json_lines, line_events, octets, offline, serve};

/// One `add --from` run; its exit code and its `line` events (the `summary` event that
/// ends the run is left out). `cache` is the private token cache.
fn run(emu: &RunningEmulator, input: &Path, cache: &Path) -> (i32, Vec<Value>) {
    let out = offline(emu, cache)
        .args([
            "--json",
            "--rate-limit",
            "offline_download=400",
            "--rate-limit",
            "access_token=400",
            "add",
            "--from",
        ])
        .arg(input)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        line_events(json_lines(&out.stdout)),
    )
}

/// An emulator that lets every endpoint take 1000 requests a second.
async fn fast_emulator() -> RunningEmulator {
    emulator(EmulatorConfig::default(), 1000.0).await
}

/// A 123pan client of `emu`.
fn pan123(emu: &RunningEmulator) -> Pan123Builder<transport_hyper::HyperClient> {
    Pan123::builder()
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret())
}

/// Under `faults`, a create's outcome is unknown; the emulator has `tasks` tasks then.
async fn outcome_unknown(emu: &RunningEmulator, pan: &Pan123, faults: Faults, tasks: usize) {
    emu.set_faults(faults);
    let err = pan
        .offline_download("http://127.0.0.1:9/x.bin")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(emu.tasks().len(), tasks);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_submissions_under_ten_percent_faults() {
    let emu = fast_emulator().await;
    emu.set_faults(Faults::mixed(2026, 0.10));
    let src = serve([("f.bin".to_owned(), octets(1, 100))]).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let n = 1000;
    let urls: Vec<String> = (0..n)
        .map(|i| format!("{}?n={i}", src.file_url("f.bin")))
        .collect();
    std::fs::write(&input, urls.join("\n")).unwrap();

    // Transient failures (503s, 429s after retries) stay pending and go on the next run.
    let mut lines = Vec::new();
    for _ in 0..4 {
        let emu_ref = &emu;
        let input = input.clone();
        let cache = dir.path().join("cache");
        let (_, l) = tokio::task::block_in_place(move || run(emu_ref, &input, &cache));
        lines = l;
        if lines.iter().all(|l| l["state"] != "pending") {
            break;
        }
    }
    assert!(
        emu.faults_injected() > 50,
        "faults were injected: {}",
        emu.faults_injected()
    );
    assert_eq!(lines.len(), n);

    let mut tasks_per_url: HashMap<String, Vec<u64>> = HashMap::new();
    for t in emu.tasks() {
        tasks_per_url.entry(t.url).or_default().push(t.id.0);
    }
    let (mut submitted, mut reported) = (0, 0);
    for line in &lines {
        let source = line["source"].as_str().unwrap();
        let tasks = tasks_per_url.get(source).cloned().unwrap_or_default();
        assert!(tasks.len() <= 1, "{source} submitted {} times", tasks.len());
        match line["state"].as_str().unwrap() {
            "submitted" => {
                submitted += 1;
                // Task IDs are strings in every event.
                let task: u64 = line["task"].as_str().unwrap().parse().unwrap();
                assert_eq!(tasks, vec![task], "the recorded task is the one created");
            }
            "unknown" | "failed" => {
                reported += 1;
                assert!(
                    line["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "a reason: {line}"
                );
            }
            other => panic!("line left {other}: {line}"),
        }
    }
    assert_eq!(submitted + reported, n);
    // A dropped or truncated answer to a create leaves its outcome unknown; everything
    // else is retried until it succeeds.
    assert!(reported < n / 10, "{reported} lines not submitted");
    assert!(submitted > n * 9 / 10);
}

// In-process, in paused time: the client's backoff between retries takes no real time.
#[tokio::test(start_paused = true)]
async fn each_fault_is_seen_by_the_client_as_it_should_be() {
    transport_hyper::keep_paused_time_moving();
    let emu = fast_emulator().await;
    let pan = pan123(&emu).build().unwrap();
    pan.ensure_token().await.unwrap();
    // Every create dropped after the work: outcome unknown, and the task exists once.
    let drop_after = Faults {
        drop_after: 1.0,
        ..Faults::default()
    };
    outcome_unknown(&emu, &pan, drop_after, 1).await;
    // Truncated answers to a create: outcome unknown too.
    let truncate = Faults {
        truncate: 1.0,
        ..Faults::default()
    };
    outcome_unknown(&emu, &pan, truncate, 2).await;
    // A 503 page without the provider's envelope: the client cannot tell whether a
    // gateway forwarded the create, so it is outcome unknown, never resent (here the
    // emulator answered before the work: nothing was created).
    let server_error = Faults {
        server_error: 1.0,
        ..Faults::default()
    };
    outcome_unknown(&emu, &pan, server_error, 2).await;
    // Reads are retried through every kind of fault (within the retry budget).
    emu.set_faults(Faults::mixed(3, 0.2));
    for _ in 0..20 {
        pan.process(provider_123pan::TaskId(100001)).await.unwrap();
    }
    emu.set_faults(Faults::default());
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let f = Faults::mixed(99, 0.2);
    let a: Vec<_> = (0..1000)
        .map(|n| offline_emulator::fault_for_request(&f, n))
        .collect();
    let b: Vec<_> = (0..1000)
        .map(|n| offline_emulator::fault_for_request(&f, n))
        .collect();
    assert_eq!(a, b);
}

// In paused time: the 300 ms delay and the wait for a callback that never comes pass
// at once.
#[tokio::test(start_paused = true)]
async fn callbacks_can_be_lost_delayed_or_sent_twice() {
    use provider_123pan::OfflineDownloadRequest;
    transport_hyper::keep_paused_time_moving();
    let emu = fast_emulator().await;
    let src = serve([("f.bin".to_owned(), octets(1, 10))]).await;
    let pan = pan123(&emu)
        .rate_limit(EndpointId::OfflineDownload, 1000.0)
        .build()
        .unwrap();
    emu.set_faults(Faults {
        callback_twice: 1.0,
        callback_delay: std::time::Duration::from_millis(300),
        ..Faults::default()
    });
    let mut req = OfflineDownloadRequest::new(src.file_url("f.bin"));
    req.callback_url = Some(src.callback_url());
    let started = tokio::time::Instant::now();
    pan.offline_download(req.clone()).await.unwrap();
    let got = src
        .wait_callbacks(2, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 2, "sent twice");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "delayed"
    );
    emu.set_faults(Faults {
        callback_lost: 1.0,
        ..Faults::default()
    });
    pan.offline_download(req).await.unwrap();
    let got = src
        .wait_callbacks(3, std::time::Duration::from_secs(2))
        .await;
    assert_eq!(got.len(), 2, "the third callback was lost");
}
