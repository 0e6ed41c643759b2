//! The 6pan wire types generated from `fixtures/openapi/6pan.yaml` read every response
//! example of that description (`fixtures/6pan/*/response_*.gen.http`, written by
//! `cargo xtask fixtures`): the seeds' answers decode into the types the description
//! names, so the generated types and the description's examples cannot drift apart.

use std::path::{Path, PathBuf};

use offline_proto::sixpan::{
    AddResult, ChunkStored, Envelope, ErrorCode, FileStored, OnlineSessions, ParseResult,
    StoreTokenResult, TaskPage, TaskStatus, TaskType, UploadTokenResult, UserInfo,
    WrappedFileStored,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/6pan")
}

/// The status and JSON body of a generated response fixture.
fn load(path: &Path) -> (u16, Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let text: String = text
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let (head, body) = text
        .split_once("\n\n")
        .expect("a blank line after the head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, serde_json::from_str(body).expect("a JSON body"))
}

fn decode<T: DeserializeOwned>(value: &Value, what: &Path) -> T {
    serde_path_to_error::deserialize(value)
        .unwrap_or_else(|e| panic!("{}: at {}: {e}", what.display(), e.path()))
}

/// Decodes an API-host answer: the envelope, and its result as `T` on success.
fn enveloped<T: DeserializeOwned>(value: &Value, path: &Path) -> Envelope<T> {
    let envelope: Envelope<Value> = decode(value, path);
    let result = match (&envelope.code, envelope.result) {
        (ErrorCode::Ok, Some(result)) => Some(decode::<T>(&result, path)),
        (ErrorCode::Ok, None) => panic!("{}: success without a result", path.display()),
        (_, _) => None,
    };
    Envelope {
        status: envelope.status,
        result,
        code: envelope.code,
        success: envelope.success,
        message: envelope.message,
        token: envelope.token,
    }
}

#[test]
fn every_described_response_decodes_into_the_generated_types() {
    let mut seen = 0;
    for dir in std::fs::read_dir(fixtures()).unwrap().flatten() {
        let endpoint = dir.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let path = file.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("response_") && name.ends_with(".gen.http")) {
                continue;
            }
            let (status, body) = load(&path);
            assert_eq!(status, 200, "{name}");
            match endpoint.as_str() {
                "login" | "user_info" => drop(enveloped::<UserInfo>(&body, &path)),
                "store_token" => drop(enveloped::<StoreTokenResult>(&body, &path)),
                "upload_token" => drop(enveloped::<UploadTokenResult>(&body, &path)),
                "user_online" => drop(enveloped::<OnlineSessions>(&body, &path)),
                "logout_other" => drop(enveloped::<bool>(&body, &path)),
                "parse_url" | "parse_torrent" => drop(enveloped::<Vec<ParseResult>>(&body, &path)),
                "add_tasks" => drop(enveloped::<AddResult>(&body, &path)),
                "list_tasks" => drop(enveloped::<TaskPage>(&body, &path)),
                "delete_tasks" => drop(enveloped::<u64>(&body, &path)),
                "upload" => drop(decode::<FileStored>(&body, &path)),
                // Plain, or inside a `response` JSON string (the WCS SDK's reading).
                "make_file" => match body.get("response") {
                    Some(_) => {
                        let wrapped: WrappedFileStored = decode(&body, &path);
                        let inner: Value = serde_json::from_str(&wrapped.response).unwrap();
                        drop(decode::<FileStored>(&inner, &path));
                    }
                    None => drop(decode::<FileStored>(&body, &path)),
                },
                "make_block" | "put_chunk" => drop(decode::<ChunkStored>(&body, &path)),
                other => panic!("no type for fixture directory {other:?}"),
            }
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} fixtures");
}

#[test]
fn seed_answers_decode_to_the_documented_values() {
    let dir = fixtures();
    let (_, body) = load(&dir.join("store_token/response_instant.gen.http"));
    let envelope = enveloped::<StoreTokenResult>(&body, Path::new("instant"));
    assert_eq!(envelope.status, 200);
    match envelope.result {
        Some(StoreTokenResult::Instant(file)) => {
            assert_eq!(file.store_id.as_str(), "lgYD1AjrK5Daxq-Dt0qemSPKdNbh");
            assert_eq!(file.size, 5_458_017);
            assert_eq!(file.name, "幸运星.torrent");
        }
        other => panic!("expected the created file, got {other:?}"),
    }
    let (_, body) = load(&dir.join("store_token/response_upload_info.gen.http"));
    match enveloped::<StoreTokenResult>(&body, Path::new("upload")).result {
        Some(StoreTokenResult::Upload(info)) => {
            assert_eq!(info.upload_url, "http://xxx.xxx.com/file/upload");
            assert_eq!(info.version, Some(1));
        }
        other => panic!("expected upload information, got {other:?}"),
    }
    let (_, body) = load(&dir.join("parse_torrent/response_seed_torrent.gen.http"));
    let results = enveloped::<Vec<ParseResult>>(&body, Path::new("parse"))
        .result
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].name, "FSET774C");
    assert!(results[0].files.is_empty());
    let (_, body) = load(&dir.join("list_tasks/response_one_task.gen.http"));
    let page = enveloped::<TaskPage>(&body, Path::new("page"))
        .result
        .unwrap();
    assert_eq!(page.list[0].task_type, Some(TaskType::BitTorrent));
    assert_eq!(page.list[0].status, TaskStatus::Downloading);
    let (_, body) = load(&dir.join("parse_url/response_needs_password.gen.http"));
    let envelope = enveloped::<Vec<ParseResult>>(&body, Path::new("password"));
    assert_eq!(envelope.code, ErrorCode::UrlNeedsPassword);
    assert_eq!(envelope.code.as_str(), "URL_NED_PASSWORD");
    assert!(!envelope.success);
}
