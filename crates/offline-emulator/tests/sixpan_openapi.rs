//! The 6pan description the emulator serves (`/6pan/openapi.json`), the checks it makes
//! against it, and the static token as a 6pan token and as an upload token: what CI's
//! schemathesis run relies on.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use offline_proto::sixpan::{EndpointId, Host};
use serde_json::{json, Value};

const STATIC_TOKEN: &str = "static-6pan-token";
const BATCH: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// One answer: status, headers, and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

async fn send(
    emulator: &RunningEmulator,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}{path}", emulator.base_url()));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(body.into())).unwrap();
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(10), client.request(request))
            .await
            .expect("answer within 10 s")
            .expect("request reaches the emulator");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// POSTs JSON to an API-host call with the static token.
async fn call(emulator: &RunningEmulator, path: &str, body: &Value) -> Reply {
    send(
        emulator,
        Method::POST,
        path,
        &[
            ("content-type", "application/json"),
            ("Qingzhen-Token", STATIC_TOKEN),
        ],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

/// Asserts an HTTP 400 `PARAMETER_ERROR` envelope; its message.
fn parameter_error(reply: &Reply) -> &str {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.json["code"], "PARAMETER_ERROR", "{reply:?}");
    assert_eq!(reply.json["success"], false, "{reply:?}");
    assert!(reply.json["result"].is_null(), "{reply:?}");
    reply.json["message"].as_str().unwrap()
}

async fn start() -> RunningEmulator {
    Emulator::start(EmulatorConfig {
        static_token: Some(STATIC_TOKEN.to_owned()),
        loopback_only: true,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

#[tokio::test]
async fn the_description_is_served_with_the_emulator_as_its_servers() {
    let emulator = start().await;
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

#[tokio::test]
async fn bodies_the_description_refuses_are_parameter_errors() {
    let emulator = start().await;
    // A wrong type, caught by the typed parse.
    let reply = call(
        &emulator,
        "/v2/offline/page",
        &json!({"page": "1", "pageSize": 20}),
    )
    .await;
    let message = parameter_error(&reply);
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
    let message = parameter_error(&reply);
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
    let message = parameter_error(&reply);
    assert!(message.contains("`hash[0]`"), "{message}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_static_token_is_a_6pan_token_and_an_upload_token() {
    let emulator = start().await;
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
    let block = send(
        &emulator,
        Method::POST,
        "/wcs/mkblk/5/0",
        &[
            ("Authorization", STATIC_TOKEN),
            ("UploadBatch", BATCH),
            ("content-type", "application/octet-stream"),
        ],
        "hello",
    )
    .await;
    assert_eq!(block.status, StatusCode::OK, "{block:?}");
    assert_eq!(block.json["offset"], 5);
    let ctx = block.json["ctx"].as_str().unwrap().to_owned();
    let file = send(
        &emulator,
        Method::POST,
        "/wcs/mkfile/5",
        &[
            ("Authorization", STATIC_TOKEN),
            ("UploadBatch", BATCH),
            ("content-type", "text/plain;charset=UTF-8"),
        ],
        ctx,
    )
    .await;
    assert_eq!(file.status, StatusCode::OK, "{file:?}");
    let etag = offline_proto::qetag::qetag(b"hello");
    assert_eq!(file.json["hash"], etag.as_str());
    assert!(emulator.stored_blob(etag.as_str()).is_some());

    // In a form; a field of the wrong type is refused by the description, in the
    // storage service's own error shape.
    let form = |deadline: &str| {
        let boundary = "sixpan-openapi-boundary";
        let mut body = String::new();
        for (name, value) in [("token", STATIC_TOKEN), ("deadline", deadline)] {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nform bytes\r\n--{boundary}--\r\n"
        ));
        (format!("multipart/form-data; boundary={boundary}"), body)
    };
    let (content_type, body) = form("soon");
    let reply = send(
        &emulator,
        Method::POST,
        "/wcs/file/upload",
        &[("content-type", &content_type)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(
        reply.json,
        json!({"code": 400, "message": "invalid request body at `deadline`: expected integer, got a string"})
    );
    let (content_type, body) = form("7");
    let reply = send(
        &emulator,
        Method::POST,
        "/wcs/file/upload",
        &[("content-type", &content_type)],
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(
        reply.json["hash"],
        offline_proto::qetag::qetag(b"form bytes").as_str()
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn path_and_header_parameters_are_checked() {
    let emulator = start().await;
    let octet = ("content-type", "application/octet-stream");
    // The description's `maximum` of blockSize, and a UUID in UploadBatch.
    let reply = send(
        &emulator,
        Method::POST,
        "/wcs/mkblk/4194305/0",
        &[
            ("Authorization", STATIC_TOKEN),
            ("UploadBatch", BATCH),
            octet,
        ],
        "x",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.json["code"], 400);
    let reply = send(
        &emulator,
        Method::POST,
        "/wcs/mkblk/1/0",
        &[
            ("Authorization", STATIC_TOKEN),
            ("UploadBatch", "not-a-uuid"),
            octet,
        ],
        "x",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    let message = reply.json["message"].as_str().unwrap();
    assert!(message.contains("UploadBatch"), "{message}");
    emulator.shutdown().await;
}
