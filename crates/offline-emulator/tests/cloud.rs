//! Cloud-drive offline downloads against real loopback sources.

mod common;

use common::*;
use offline_emulator::{Emulator, EmulatorConfig, TaskKind, TaskStatus};
use serde_json::json;

#[tokio::test]
async fn download_succeeds_and_stores_identical_bytes() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let files = file_server().await;
    let token = api.login(&emu).await;
    let url = format!("http://{files}/data.bin");

    let task = api.create(CREATE, &token, &json!({"url": url})).await;
    assert_eq!(task, 100_001);
    let data = api.wait_final(PROCESS, &token, task).await;
    assert_eq!(data["status"], 2, "{data}");
    assert_eq!(data["process"].as_f64(), Some(100.0));
    assert!(
        data["process"].is_f64(),
        "cloud progress is a float: {data}"
    );

    let snap = snapshot(&emu, task);
    assert_eq!(snap.kind, TaskKind::CloudDrive);
    assert_eq!(snap.status, TaskStatus::Succeeded);
    assert_eq!(snap.url, url);
    assert_eq!(snap.file_name, "data.bin");
    assert_eq!(snap.bytes_received, 300_000);
    assert_eq!(snap.content_length, Some(300_000));
    assert_eq!(snap.file_id, Some(500_001));
    assert_eq!(snap.fail_reason, None);
    let stored = snap.stored_path.expect("stored path");
    assert_eq!(stored, emu.data_dir().join("100001-data.bin"));
    assert_eq!(std::fs::read(&stored).unwrap(), pattern(300_000));

    // A second task gets the next IDs and its own name.
    let task2 = api
        .create(
            CREATE,
            &token,
            &json!({"url": url, "fileName": "测试 离线下载.mp4", "dirID": 10023}),
        )
        .await;
    assert_eq!(task2, 100_002);
    let data = api.wait_final(PROCESS, &token, task2).await;
    assert_eq!(data["status"], 2);
    let snap = snapshot(&emu, task2);
    assert_eq!(snap.file_id, Some(500_002));
    assert_eq!(snap.file_name, "测试 离线下载.mp4");
    let stored = emu.data_dir().join("100002-测试 离线下载.mp4");
    assert_eq!(snap.stored_path.as_deref(), Some(stored.as_path()));
    assert_eq!(std::fs::read(stored).unwrap(), pattern(300_000));

    let ids: Vec<u64> = emu.tasks().iter().map(|t| t.id.0).collect();
    assert_eq!(ids, vec![100_001, 100_002]);
    let leftovers: Vec<_> = std::fs::read_dir(emu.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn throttled_download_shows_growing_progress() {
    let config = EmulatorConfig {
        fetch_rate: Some(300_000),
        ..relaxed_config()
    };
    let emu = Emulator::start(config).await.unwrap();
    let api = Api::new(&emu);
    let files = file_server().await;
    let token = api.login(&emu).await;
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": format!("http://{files}/data.bin")}),
        )
        .await;

    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        let a = api.get(&format!("{PROCESS}?taskID={task}"), &token).await;
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
        elapsed >= std::time::Duration::from_millis(800),
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
    emu.shutdown().await;
}

async fn failed_with(url: String, config: EmulatorConfig) -> (serde_json::Value, String) {
    let emu = Emulator::start(config).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api.create(CREATE, &token, &json!({"url": url})).await;
    let data = api.wait_final(PROCESS, &token, task).await;
    let snap = snapshot(&emu, task);
    assert_eq!(snap.status, TaskStatus::Failed);
    assert_eq!(snap.process, 0.0);
    assert_eq!(snap.file_id, None);
    assert_eq!(snap.stored_path, None);
    let files: Vec<_> = std::fs::read_dir(emu.data_dir()).unwrap().collect();
    assert!(
        files.is_empty(),
        "nothing stored after a failure: {files:?}"
    );
    emu.shutdown().await;
    (data, snap.fail_reason.expect("a reason"))
}

#[tokio::test]
async fn source_404_fails_with_reason_and_zero_process() {
    let files = file_server().await;
    let (data, reason) = failed_with(format!("http://{files}/missing"), relaxed_config()).await;
    assert_eq!(data["status"], 1);
    assert_eq!(data["process"].as_f64(), Some(0.0));
    assert_eq!(reason, "source answered HTTP 404");
}

#[tokio::test]
async fn source_5xx_fails() {
    let files = file_server().await;
    let (data, reason) = failed_with(format!("http://{files}/broken"), relaxed_config()).await;
    assert_eq!(data["status"], 1);
    assert_eq!(reason, "source answered HTTP 503");
}

#[tokio::test]
async fn refused_connection_fails() {
    let port = closed_port().await;
    let (data, reason) =
        failed_with(format!("http://127.0.0.1:{port}/x.bin"), relaxed_config()).await;
    assert_eq!(data["status"], 1);
    assert!(reason.starts_with("connection refused: "), "{reason}");
}

#[tokio::test]
async fn truncated_body_fails() {
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
            .to_vec();
    response.extend(pattern(500));
    let source = raw_server(response).await;
    let (_, reason) = failed_with(format!("http://{source}/cut.bin"), relaxed_config()).await;
    assert!(reason.starts_with("truncated"), "{reason}");
    assert!(reason.contains("500 of 1000"), "{reason}");
}

#[tokio::test]
async fn body_without_length_succeeds_when_complete() {
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            .to_vec();
    response.extend(pattern(70_000));
    let source = raw_server(response).await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api
        .create(CREATE, &token, &json!({"url": format!("http://{source}/")}))
        .await;
    let data = api.wait_final(PROCESS, &token, task).await;
    assert_eq!(data["status"], 2);
    let snap = snapshot(&emu, task);
    assert_eq!(snap.content_length, None);
    assert_eq!(snap.file_name, "download");
    assert_eq!(
        std::fs::read(snap.stored_path.unwrap()).unwrap(),
        pattern(70_000)
    );
}

#[tokio::test]
async fn source_over_max_source_bytes_fails() {
    let files = file_server().await;
    let config = EmulatorConfig {
        max_source_bytes: 100_000,
        ..relaxed_config()
    };
    let (_, reason) = failed_with(format!("http://{files}/data.bin"), config).await;
    assert_eq!(reason, "source larger than 100000 bytes");
}

#[tokio::test]
async fn redirects_are_followed_up_to_five_hops() {
    let files = file_server().await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": format!("http://{files}/redirect")}),
        )
        .await;
    assert_eq!(api.wait_final(PROCESS, &token, task).await["status"], 2);
    let snap = snapshot(&emu, task);
    assert_eq!(snap.file_name, "redirect", "named after the URL asked for");
    assert_eq!(
        std::fs::read(snap.stored_path.unwrap()).unwrap(),
        pattern(300_000)
    );
    emu.shutdown().await;

    let (_, reason) = failed_with(format!("http://{files}/loop"), relaxed_config()).await;
    assert_eq!(reason, "too many redirects (more than 5)");
}

#[tokio::test]
async fn a_cloud_task_is_not_found_on_the_image_bed_endpoint() {
    let files = file_server().await;
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": format!("http://{files}/data.bin")}),
        )
        .await;
    let a = api
        .get(&format!("{OSS_PROCESS}?taskID={task}"), &token)
        .await;
    assert_eq!(a.code(), 404);
    assert_eq!(a.message(), "task not found");
    let a = api.get(&format!("{PROCESS}?taskID={task}"), &token).await;
    assert_eq!(a.code(), 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_a_running_download() {
    let config = EmulatorConfig {
        fetch_rate: Some(10_000),
        ..relaxed_config()
    };
    let emu = Emulator::start(config).await.unwrap();
    let api = Api::new(&emu);
    let files = file_server().await;
    let token = api.login(&emu).await;
    let task = api
        .create(
            CREATE,
            &token,
            &json!({"url": format!("http://{files}/data.bin")}),
        )
        .await;
    eventually(|| (snapshot(&emu, task).bytes_received > 0).then_some(())).await;
    let started = std::time::Instant::now();
    emu.shutdown().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "shutdown waited for a 30 s download"
    );
}
