//! Image-bed (图床) migrations.

mod common;

use common::*;
use offline_emulator::{EmulatorConfig, TaskKind, TaskStatus};
use serde_json::{json, Value};

#[tokio::test(start_paused = true)]
async fn png_migration_succeeds_with_integer_progress() {
    let s = pan123(relaxed_config()).await;
    let files = file_server().await;
    let (task, data) = s
        .image(&files.url("/photo.png"), json!({"businessDirID": "10023"}))
        .await;
    assert_eq!(data["status"], 2);
    assert!(
        data["process"].is_u64(),
        "image-bed progress is an integer: {data}"
    );
    assert_eq!(data["process"], 100);

    let snap = s.snapshot(task);
    assert_eq!(snap.kind, TaskKind::ImageBed);
    assert_eq!(snap.file_name, "photo.png");
    assert!(snap.file_id.is_some());
    assert_eq!(std::fs::read(snap.stored_path.unwrap()).unwrap(), PNG);

    // Not visible on the cloud-drive progress call.
    assert_eq!(s.process(PROCESS, task).await.code(), 404);
    s.emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn image_recognised_by_signature_despite_its_content_type() {
    let s = pan123(relaxed_config()).await;
    let files = file_server().await;
    let (task, data) = s.image(&files.url("/photo.jpg"), json!({})).await;
    assert_eq!(data["status"], 2);
    let snap = s.snapshot(task);
    assert_eq!(std::fs::read(snap.stored_path.unwrap()).unwrap(), JPEG);
    s.emu.shutdown().await;
}

/// Posts an image-bed create that must be refused (code 400); the answer.
async fn refused(s: &Pan123, body: Value) -> Answer {
    let a = s.post(OSS_CREATE, &body).await;
    assert_eq!(a.code(), 400, "{body}: {a:?}");
    a
}

#[tokio::test(start_paused = true)]
async fn non_image_url_is_refused_without_a_task() {
    let s = pan123(relaxed_config()).await;
    let a = refused(
        &s,
        json!({"url": "http://127.0.0.1:9/movie.mp4", "type": 1}),
    )
    .await;
    assert!(a.message().contains("movie.mp4"), "{}", a.message());
    assert!(
        a.message()
            .contains("png, gif, jpeg, tiff, webp, jpg, tif, svg, bmp"),
        "lists the allowed extensions: {}",
        a.message()
    );
    // fileName decides when given.
    let body = json!({"url": "http://127.0.0.1:9/a.png", "fileName": "a.txt", "type": 1});
    refused(&s, body).await;
    assert!(s.emu.tasks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn type_must_be_1() {
    let s = pan123(relaxed_config()).await;
    let a = refused(&s, json!({"url": "http://127.0.0.1:9/a.png", "type": 2})).await;
    assert_eq!(a.message(), "type must be 1");
    let a = refused(&s, json!({"url": "http://127.0.0.1:9/a.png"})).await;
    assert!(a.message().contains("type"), "{}", a.message());
    assert!(s.emu.tasks().is_empty());
}

/// Runs an image-bed task of `url` that must fail; the reason.
async fn image_failure(url: String, config: EmulatorConfig) -> String {
    let s = pan123(config).await;
    let (task, data) = s.image(&url, json!({})).await;
    assert_eq!(data["status"], 1);
    assert_eq!(data["process"], 0);
    let snap = s.snapshot(task);
    assert_eq!(snap.status, TaskStatus::Failed);
    assert_eq!(std::fs::read_dir(s.emu.data_dir()).unwrap().count(), 0);
    s.emu.shutdown().await;
    snap.fail_reason.unwrap()
}

/// [`relaxed_config`] with images up to `max` bytes.
fn images_up_to(max: u64) -> EmulatorConfig {
    EmulatorConfig {
        max_image_bytes: max,
        ..relaxed_config()
    }
}

#[tokio::test(start_paused = true)]
async fn oversize_image_fails_from_its_content_length() {
    let files = file_server().await;
    let reason = image_failure(files.url("/big.png"), images_up_to(1000)).await;
    assert_eq!(reason, "image larger than 1000 bytes");
}

#[tokio::test(start_paused = true)]
async fn oversize_image_fails_while_streaming() {
    let mut body = b"\x89PNG\r\n\x1a\n".to_vec();
    body.extend(pattern(3 * 1024 * 1024));
    let source = raw_200("Content-Type: image/png", &body).await;
    let reason = image_failure(
        format!("http://{source}/huge.png"),
        images_up_to(2 * 1024 * 1024),
    )
    .await;
    assert_eq!(reason, "image larger than 2 MB");
}

#[tokio::test(start_paused = true)]
async fn html_served_as_png_is_not_an_image() {
    let files = file_server().await;
    let reason = image_failure(files.url("/fake.png"), relaxed_config()).await;
    assert!(reason.starts_with("not an image"), "{reason}");
    assert!(reason.contains("text/html"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn missing_image_fails_with_404() {
    let files = file_server().await;
    let reason = image_failure(files.url("/missing.png"), relaxed_config()).await;
    assert_eq!(reason, "source answered HTTP 404");
}
