//! Image-bed (图床) migrations.

mod common;

use common::*;
use offline_emulator::{Emulator, EmulatorConfig, TaskKind, TaskStatus};
use serde_json::json;

#[tokio::test]
async fn png_migration_succeeds_with_integer_progress() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let files = file_server().await;
    let token = api.login(&emu).await;
    let task = api
        .create(
            OSS_CREATE,
            &token,
            &json!({"url": format!("http://{files}/photo.png"), "type": 1, "businessDirID": "10023"}),
        )
        .await;
    let data = api.wait_final(OSS_PROCESS, &token, task).await;
    assert_eq!(data["status"], 2);
    assert!(
        data["process"].is_u64(),
        "image-bed progress is an integer: {data}"
    );
    assert_eq!(data["process"], 100);

    let snap = snapshot(&emu, task);
    assert_eq!(snap.kind, TaskKind::ImageBed);
    assert_eq!(snap.file_name, "photo.png");
    assert!(snap.file_id.is_some());
    assert_eq!(std::fs::read(snap.stored_path.unwrap()).unwrap(), PNG);

    // Not visible on the cloud-drive progress call.
    let a = api.get(&format!("{PROCESS}?taskID={task}"), &token).await;
    assert_eq!(a.code(), 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn image_recognised_by_signature_despite_its_content_type() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let files = file_server().await;
    let token = api.login(&emu).await;
    let task = api
        .create(
            OSS_CREATE,
            &token,
            &json!({"url": format!("http://{files}/photo.jpg"), "type": 1}),
        )
        .await;
    assert_eq!(api.wait_final(OSS_PROCESS, &token, task).await["status"], 2);
    let snap = snapshot(&emu, task);
    assert_eq!(std::fs::read(snap.stored_path.unwrap()).unwrap(), JPEG);
    emu.shutdown().await;
}

#[tokio::test]
async fn non_image_url_is_refused_without_a_task() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let a = api
        .post(
            OSS_CREATE,
            Some(&token),
            &json!({"url": "http://127.0.0.1:9/movie.mp4", "type": 1}),
        )
        .await;
    assert_eq!(a.code(), 400);
    assert!(a.message().contains("movie.mp4"), "{}", a.message());
    assert!(
        a.message()
            .contains("png, gif, jpeg, tiff, webp, jpg, tif, svg, bmp"),
        "lists the allowed extensions: {}",
        a.message()
    );
    // fileName decides when given.
    let a = api
        .post(
            OSS_CREATE,
            Some(&token),
            &json!({"url": "http://127.0.0.1:9/a.png", "fileName": "a.txt", "type": 1}),
        )
        .await;
    assert_eq!(a.code(), 400);
    assert!(emu.tasks().is_empty());
}

#[tokio::test]
async fn type_must_be_1() {
    let emu = Emulator::start(relaxed_config()).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let a = api
        .post(
            OSS_CREATE,
            Some(&token),
            &json!({"url": "http://127.0.0.1:9/a.png", "type": 2}),
        )
        .await;
    assert_eq!(a.code(), 400);
    assert_eq!(a.message(), "type must be 1");
    let a = api
        .post(
            OSS_CREATE,
            Some(&token),
            &json!({"url": "http://127.0.0.1:9/a.png"}),
        )
        .await;
    assert_eq!(a.code(), 400);
    assert!(a.message().contains("type"), "{}", a.message());
    assert!(emu.tasks().is_empty());
}

async fn image_failure(url: String, config: EmulatorConfig) -> String {
    let emu = Emulator::start(config).await.unwrap();
    let api = Api::new(&emu);
    let token = api.login(&emu).await;
    let task = api
        .create(OSS_CREATE, &token, &json!({"url": url, "type": 1}))
        .await;
    let data = api.wait_final(OSS_PROCESS, &token, task).await;
    assert_eq!(data["status"], 1);
    assert_eq!(data["process"], 0);
    let snap = snapshot(&emu, task);
    assert_eq!(snap.status, TaskStatus::Failed);
    assert_eq!(std::fs::read_dir(emu.data_dir()).unwrap().count(), 0);
    emu.shutdown().await;
    snap.fail_reason.unwrap()
}

#[tokio::test]
async fn oversize_image_fails_from_its_content_length() {
    let files = file_server().await;
    let config = EmulatorConfig {
        max_image_bytes: 1000,
        ..relaxed_config()
    };
    let reason = image_failure(format!("http://{files}/big.png"), config).await;
    assert_eq!(reason, "image larger than 1000 bytes");
}

#[tokio::test]
async fn oversize_image_fails_while_streaming() {
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n\x89PNG\r\n\x1a\n"
            .to_vec();
    response.extend(pattern(3 * 1024 * 1024));
    let source = raw_server(response).await;
    let config = EmulatorConfig {
        max_image_bytes: 2 * 1024 * 1024,
        ..relaxed_config()
    };
    let reason = image_failure(format!("http://{source}/huge.png"), config).await;
    assert_eq!(reason, "image larger than 2 MB");
}

#[tokio::test]
async fn html_served_as_png_is_not_an_image() {
    let files = file_server().await;
    let reason = image_failure(format!("http://{files}/fake.png"), relaxed_config()).await;
    assert!(reason.starts_with("not an image"), "{reason}");
    assert!(reason.contains("text/html"), "{reason}");
}

#[tokio::test]
async fn missing_image_fails_with_404() {
    let files = file_server().await;
    let reason = image_failure(format!("http://{files}/missing.png"), relaxed_config()).await;
    assert_eq!(reason, "source answered HTTP 404");
}
