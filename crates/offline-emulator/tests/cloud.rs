//! Cloud-drive offline downloads against real loopback sources.

mod common;

use std::time::Duration;

use common::*;
use offline_emulator::{EmulatorConfig, TaskKind, TaskSnapshot, TaskStatus};
use serde_json::{json, Value};
use tokio::time::Instant;

/// The bytes stored for a task that succeeded.
fn stored(snap: &TaskSnapshot) -> Vec<u8> {
    std::fs::read(snap.stored_path.as_ref().expect("stored path")).unwrap()
}

#[tokio::test(start_paused = true)]
async fn download_succeeds_and_stores_identical_bytes() {
    let s = pan123(relaxed_config()).await;
    let files = file_server().await;
    let url = files.url("/data.bin");

    let (task, data) = s.cloud(&url, json!({})).await;
    assert_eq!(task, 100_001);
    assert_eq!(data["status"], 2, "{data}");
    assert_eq!(data["process"].as_f64(), Some(100.0));
    assert!(
        data["process"].is_f64(),
        "cloud progress is a float: {data}"
    );

    let snap = s.snapshot(task);
    assert_eq!(snap.kind, TaskKind::CloudDrive);
    assert_eq!(snap.status, TaskStatus::Succeeded);
    assert_eq!(snap.url, url);
    assert_eq!(snap.file_name, "data.bin");
    assert_eq!(snap.bytes_received, 300_000);
    assert_eq!(snap.content_length, Some(300_000));
    // 500001 is the folder 来自:离线下载, made by the first create.
    assert_eq!(snap.file_id, Some(500_002));
    assert_eq!(snap.drive_path.as_deref(), Some("/来自:离线下载/data.bin"));
    assert_eq!(snap.fail_reason, None);
    assert_eq!(
        snap.stored_path.as_deref(),
        Some(s.emu.data_dir().join("100001-data.bin").as_path())
    );
    assert_eq!(stored(&snap), pattern(300_000));

    // A second task, into a folder of its own, gets the next IDs and its own name.
    let dir = s
        .post(
            "/upload/v1/file/mkdir",
            &json!({"name": "Movies", "parentID": 0}),
        )
        .await;
    let dir = dir.data()["dirID"].as_u64().unwrap();
    assert_eq!(dir, 500_003);
    let (task2, data) = s
        .cloud(&url, json!({"fileName": "测试 离线下载.mp4", "dirID": dir}))
        .await;
    assert_eq!(task2, 100_002);
    assert_eq!(data["status"], 2);
    let snap = s.snapshot(task2);
    assert_eq!(snap.file_id, Some(500_004));
    assert_eq!(snap.folder_id, dir);
    assert_eq!(snap.file_name, "测试 离线下载.mp4");
    let path = s.emu.data_dir().join("100002-测试 离线下载.mp4");
    assert_eq!(snap.stored_path.as_deref(), Some(path.as_path()));
    assert_eq!(stored(&snap), pattern(300_000));

    let ids: Vec<u64> = s.emu.tasks().iter().map(|t| t.id.0).collect();
    assert_eq!(ids, vec![100_001, 100_002]);
    let leftovers: Vec<_> = std::fs::read_dir(s.emu.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    s.emu.shutdown().await;
}

/// An emulator throttled to `rate` bytes/s with a token, and a cloud task of
/// `/data.bin` started on it.
async fn throttled(rate: u64) -> (Pan123, u64) {
    let s = pan123(EmulatorConfig {
        fetch_rate: Some(rate),
        ..relaxed_config()
    })
    .await;
    let files = file_server().await;
    let task = s
        .create(CREATE, &json!({"url": files.url("/data.bin")}))
        .await;
    (s, task)
}

#[tokio::test(start_paused = true)]
async fn throttled_download_shows_growing_progress() {
    let (s, task) = throttled(300_000).await;
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let a = s.process(PROCESS, task).await;
        assert_eq!(a.code(), 0);
        let status = a.data()["status"].as_i64().unwrap();
        let process = a.data()["process"].as_f64().unwrap();
        if status == 2 {
            break;
        }
        assert_eq!(status, 0);
        seen.push(process);
        assert!(started.elapsed() < POLL_LIMIT);
        tokio::time::sleep(POLL_STEP).await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(800),
        "300 kB at 300 kB/s took only {elapsed:?}"
    );
    let partial: Vec<f64> = seen
        .iter()
        .copied()
        .filter(|p| *p > 0.0 && *p < 100.0)
        .collect();
    assert!(partial.len() >= 3, "intermediate progress seen: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "never goes back: {seen:?}"
    );
    s.emu.shutdown().await;
}

/// Runs a cloud task of `url` that must fail; its final `data` and the reason.
async fn failed_with(url: String, config: EmulatorConfig) -> (Value, String) {
    let s = pan123(config).await;
    let (task, data) = s.cloud(&url, json!({})).await;
    let snap = s.snapshot(task);
    assert_eq!(snap.status, TaskStatus::Failed);
    assert_eq!(snap.process, 0.0);
    assert_eq!(snap.file_id, None);
    assert_eq!(snap.stored_path, None);
    let files: Vec<_> = std::fs::read_dir(s.emu.data_dir()).unwrap().collect();
    assert!(
        files.is_empty(),
        "nothing stored after a failure: {files:?}"
    );
    s.emu.shutdown().await;
    (data, snap.fail_reason.expect("a reason"))
}

#[tokio::test(start_paused = true)]
async fn source_404_fails_with_reason_and_zero_process() {
    let files = file_server().await;
    let (data, reason) = failed_with(files.url("/missing"), relaxed_config()).await;
    assert_eq!(data["status"], 1);
    assert_eq!(data["process"].as_f64(), Some(0.0));
    assert_eq!(reason, "source answered HTTP 404");
}

#[tokio::test(start_paused = true)]
async fn source_5xx_fails() {
    let files = file_server().await;
    let (data, reason) = failed_with(files.url("/broken"), relaxed_config()).await;
    assert_eq!(data["status"], 1);
    assert_eq!(reason, "source answered HTTP 503");
}

#[tokio::test(start_paused = true)]
async fn refused_connection_fails() {
    let port = closed_port().await;
    let (data, reason) =
        failed_with(format!("http://127.0.0.1:{port}/x.bin"), relaxed_config()).await;
    assert_eq!(data["status"], 1);
    assert!(reason.starts_with("connection refused: "), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn truncated_body_fails() {
    let source = raw_200(
        "Content-Type: application/octet-stream\r\nContent-Length: 1000",
        &pattern(500),
    )
    .await;
    let (_, reason) = failed_with(format!("http://{source}/cut.bin"), relaxed_config()).await;
    assert!(reason.starts_with("truncated"), "{reason}");
    assert!(reason.contains("500 of 1000"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn body_without_length_succeeds_when_complete() {
    let source = raw_200("Content-Type: application/octet-stream", &pattern(70_000)).await;
    let s = pan123(relaxed_config()).await;
    let (task, data) = s.cloud(&format!("http://{source}/"), json!({})).await;
    assert_eq!(data["status"], 2);
    let snap = s.snapshot(task);
    assert_eq!(snap.content_length, None);
    assert_eq!(snap.file_name, "download");
    assert_eq!(stored(&snap), pattern(70_000));
}

#[tokio::test(start_paused = true)]
async fn source_over_max_source_bytes_fails() {
    let files = file_server().await;
    let config = EmulatorConfig {
        max_source_bytes: 100_000,
        ..relaxed_config()
    };
    let (_, reason) = failed_with(files.url("/data.bin"), config).await;
    assert_eq!(reason, "source larger than 100000 bytes");
}

#[tokio::test(start_paused = true)]
async fn redirects_are_followed_up_to_five_hops() {
    let files = file_server().await;
    let s = pan123(relaxed_config()).await;
    let (task, data) = s.cloud(&files.url("/redirect"), json!({})).await;
    assert_eq!(data["status"], 2);
    let snap = s.snapshot(task);
    assert_eq!(snap.file_name, "redirect", "named after the URL asked for");
    assert_eq!(stored(&snap), pattern(300_000));
    s.emu.shutdown().await;

    let (_, reason) = failed_with(files.url("/loop"), relaxed_config()).await;
    assert_eq!(reason, "too many redirects (more than 5)");
}

#[tokio::test(start_paused = true)]
async fn a_cloud_task_is_not_found_on_the_image_bed_endpoint() {
    let files = file_server().await;
    let s = pan123(relaxed_config()).await;
    let task = s
        .create(CREATE, &json!({"url": files.url("/data.bin")}))
        .await;
    s.process(OSS_PROCESS, task)
        .await
        .fails(404, "task not found");
    assert_eq!(s.process(PROCESS, task).await.code(), 0);
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_a_running_download() {
    let (s, task) = throttled(10_000).await;
    eventually(|| (s.snapshot(task).bytes_received > 0).then_some(())).await;
    let started = Instant::now();
    s.emu.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown waited for a 30 s download"
    );
}
