//! The 6pan description the emulator serves (`/6pan/openapi.json`), the checks it makes
//! against it, and the static token as a 6pan token and as an upload token: what CI's
//! schemathesis run relies on.

mod common;

use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};
use offline_emulator::{EmulatorConfig, RunningEmulator};
use offline_proto::sixpan::{EndpointId, Host};
use serde_json::{json, Value};

const STATIC_TOKEN: &str = "static-6pan-token";

/// Sends a request to the emulator.
async fn send(
    emulator: &RunningEmulator,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    SixPan::new(emulator)
        .send(method, path, headers, body)
        .await
}

/// POSTs JSON to an API-host call with the static token.
async fn call(emulator: &RunningEmulator, path: &str, body: &Value) -> Reply {
    SixPan::new(emulator)
        .post_with(path, Some(STATIC_TOKEN), body)
        .await
}

/// A block call (`path` under `/wcs`) with the static token as the upload token.
async fn block_call(
    emulator: &RunningEmulator,
    path: &str,
    batch: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Reply {
    let headers = [
        ("Authorization", STATIC_TOKEN),
        ("UploadBatch", batch),
        ("content-type", content_type),
    ];
    send(
        emulator,
        Method::POST,
        &format!("/wcs{path}"),
        &headers,
        body,
    )
    .await
}

async fn start_static() -> RunningEmulator {
    start(EmulatorConfig {
        static_token: Some(STATIC_TOKEN.to_owned()),
        loopback_only: true,
        ..EmulatorConfig::default()
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn the_description_is_served_with_the_emulator_as_its_servers() {
    let emulator = start_static().await;
    let reply = send(
        &emulator,
        Method::GET,
        "/6pan/openapi.json",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json");
    let description = reply.json;
    assert_eq!(description["openapi"], "3.1.0");
    let base = emulator.base_url();
    assert_eq!(
        description["servers"],
        json!([{
            "url": base,
            "description": "The API host (v1/v2 calls).",
            "x-rust-name": "Api",
        }])
    );
    for e in EndpointId::ALL {
        let operation = &description["paths"][e.path()][e.method().as_str().to_ascii_lowercase()];
        assert_eq!(operation["operationId"], e.operation_id(), "{e:?}");
        match e.host() {
            // The storage service is mounted under /wcs; its server has no variables.
            Host::Upload => {
                assert_eq!(
                    operation["servers"][0]["url"],
                    format!("{base}/wcs"),
                    "{e:?}"
                );
                assert!(operation["servers"][0].get("variables").is_none(), "{e:?}");
            }
            Host::Api => assert!(operation.get("servers").is_none(), "{e:?}"),
        }
    }
    // The 123pan description stays where it was.
    let pan123 = send(&emulator, Method::GET, "/openapi.json", &[], Bytes::new()).await;
    assert!(pan123.json["paths"]["/api/v1/access_token"].is_object());
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bodies_the_description_refuses_are_parameter_errors() {
    let emulator = start_static().await;
    // A wrong type, caught by the typed parse.
    let reply = call(
        &emulator,
        "/v2/offline/page",
        &json!({"page": "1", "pageSize": 20}),
    )
    .await;
    let message = reply.parameter_error();
    assert!(message.contains("`page`"), "{message}");
    // Authenticated answers hand the static token back, errors included.
    assert_eq!(reply.headers["qingzhen-token"], STATIC_TOKEN);

    // Refused by the description alone: the emulator ignored an empty `hash` before,
    // the description's etag pattern does not allow it.
    let reply = call(
        &emulator,
        "/v1/store/token",
        &json!({"name": "a.bin", "hash": ""}),
    )
    .await;
    let message = reply.parameter_error();
    assert!(
        message.starts_with("invalid request body at `hash`: does not match"),
        "{message}"
    );
    assert_eq!(reply.json["status"], 400, "v1 errors carry the HTTP status");
    // An etag with spaces around it: the emulator's own reading trims them, the
    // description does not.
    let reply = call(
        &emulator,
        "/v2/offline/parseTorrent",
        &json!({"hash": [" lgYD1AjrK5Daxq-Dt0qemSPKdNbh "]}),
    )
    .await;
    let message = reply.parameter_error();
    assert!(message.contains("`hash[0]`"), "{message}");
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_static_token_is_a_6pan_token_and_an_upload_token() {
    let emulator = start_static().await;
    let reply = call(&emulator, "/v2/user/info", &json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json["code"], "OK");
    assert_eq!(reply.headers["qingzhen-token"], STATIC_TOKEN);
    // No login or expiry ends it.
    emulator.expire_sixpan_tokens();
    let reply = call(
        &emulator,
        "/v2/offline/page",
        &json!({"page": 1, "pageSize": 5}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // Another token is still refused.
    let reply = send(
        &emulator,
        Method::POST,
        "/v2/user/info",
        &[("Qingzhen-Token", "another-token")],
        "{}",
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");

    // As a bare upload token on a block call.
    let octet = "application/octet-stream";
    let block = block_call(&emulator, "/mkblk/5/0", BATCH, octet, "hello").await;
    assert_eq!(block.status, StatusCode::OK, "{block:?}");
    assert_eq!(block.json["offset"], 5);
    let ctx = block.json["ctx"].as_str().unwrap().to_owned();
    let text = "text/plain;charset=UTF-8";
    let file = block_call(&emulator, "/mkfile/5", BATCH, text, ctx).await;
    assert_eq!(file.status, StatusCode::OK, "{file:?}");
    let etag = offline_proto::qetag::qetag(b"hello");
    assert_eq!(file.json["hash"], etag.as_str());
    assert!(emulator.stored_blob(etag.as_str()).is_some());

    // In a form; a field of the wrong type is refused by the description, in the
    // storage service's own error shape.
    let upload = |deadline: &str| {
        let (content_type, body) = form(&[
            ("token", STATIC_TOKEN.as_bytes()),
            ("deadline", deadline.as_bytes()),
            ("file", b"form bytes"),
        ]);
        let emulator = &emulator;
        async move {
            let headers = [("content-type", content_type.as_str())];
            send(emulator, Method::POST, "/wcs/file/upload", &headers, body).await
        }
    };
    let reply = upload("soon").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(
        reply.json,
        json!({"code": 400, "message": "invalid request body at `deadline`: expected integer, got a string"})
    );
    let reply = upload("7").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.json["hash"],
        offline_proto::qetag::qetag(b"form bytes").as_str()
    );
    emulator.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn path_and_header_parameters_are_checked() {
    let emulator = start_static().await;
    let octet = "application/octet-stream";
    // The description's `maximum` of blockSize, and a UUID in UploadBatch.
    let reply = block_call(&emulator, "/mkblk/4194305/0", BATCH, octet, "x").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.json["code"], 400);
    let reply = block_call(&emulator, "/mkblk/1/0", "not-a-uuid", octet, "x").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    let message = reply.json["message"].as_str().unwrap();
    assert!(message.contains("UploadBatch"), "{message}");
    emulator.shutdown().await;
}
