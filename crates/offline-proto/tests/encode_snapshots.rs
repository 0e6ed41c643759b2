//! Every 123pan encoder's request rendered as text and snapshotted, and the local
//! validation that refuses a request before it exists.
//!
//! The rendering is: `METHOD URI`, the headers sorted by name (`authorization` shown as
//! `Bearer [REDACTED]` once checked), a blank line, then the body as JSON with keys
//! sorted (so the text does not depend on `serde_json`'s `preserve_order` feature).

use std::collections::BTreeMap;

use offline_proto::pan123::{
    AccessTokenRequest, Endpoint, FileId, OfflineDownloadRequest, OfflineProcessRequest,
    OssOfflineDownloadRequest, OssProcessRequest, TaskId, DEFAULT_BASE_URL,
};
use offline_proto::{BaseUrl, EncodeError, HttpRequest, Secret, ValidationError};
use serde_json::Value;

/// The access token every request here carries; rendered redacted.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.test-token";

/// The image URL of seed 004's request example.
const SEED_004_URL: &str = concat!(
    "https://vip.123pan.cn/1815309870/",
    "%E6%B5%8B%E8%AF%95%E7%9B%B4%E9%93%BE%E6%96%87%E4%BB%B6%E5%A4%B9/",
    "6ac54ccb31a09a5c1223677ba07c283f.jpeg",
);

fn base() -> BaseUrl {
    BaseUrl::parse(DEFAULT_BASE_URL).unwrap()
}

fn token() -> Secret {
    Secret::new(TOKEN)
}

/// `value` with every object's keys in sorted order, whatever map `serde_json` uses.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let map: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(map.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Renders `request` as text. The `authorization` header, when present, must be
/// `Bearer <TOKEN>` and is shown redacted.
fn render(request: &HttpRequest) -> String {
    render_body(request, |body| body)
}

/// As [`render`], with `secret` (which must occur exactly once as a string value in
/// the body) replaced by `[REDACTED]`.
fn render_redacting(request: &HttpRequest, secret: &str) -> String {
    render_body(request, |body| {
        let mut found = 0;
        let redacted = redact_value(body, secret, &mut found);
        assert_eq!(found, 1, "the secret appears once in the body");
        redacted
    })
}

fn redact_value(value: Value, secret: &str, found: &mut usize) -> Value {
    match value {
        Value::String(s) if s == secret => {
            *found += 1;
            Value::String("[REDACTED]".to_owned())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, redact_value(v, secret, found)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| redact_value(v, secret, found))
                .collect(),
        ),
        other => other,
    }
}

fn render_body(request: &HttpRequest, edit_body: impl FnOnce(Value) -> Value) -> String {
    let mut out = format!("{} {}\n", request.method(), request.uri());
    let mut headers: Vec<(&str, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().expect("header values are ASCII");
            if name == http::header::AUTHORIZATION {
                assert_eq!(value, format!("Bearer {TOKEN}"));
                (name.as_str(), "Bearer [REDACTED]".to_owned())
            } else {
                (name.as_str(), value.to_owned())
            }
        })
        .collect();
    headers.sort();
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    out.push('\n');
    if request.body().is_empty() {
        out.push_str("(no body)\n");
    } else {
        let body: Value = serde_json::from_slice(request.body()).expect("the body is JSON");
        let body = sorted(edit_body(body));
        out.push_str(&serde_json::to_string_pretty(&body).unwrap());
        out.push('\n');
    }
    out
}

#[test]
fn access_token_request() {
    let secret = "client-secret-for-snapshot";
    let request = AccessTokenRequest {
        client_id: "0123456789abcdef0123456789abcdef".to_owned(),
        client_secret: Secret::new(secret),
    }
    .to_http(&base(), None)
    .unwrap();
    insta::assert_snapshot!(render_redacting(&request, secret));
}

#[test]
fn offline_download_minimal() {
    let request = encoded(&OfflineDownloadRequest::new(
        "https://example.com/video.mp4",
    ));
    insta::assert_snapshot!(render(&request));
}

#[test]
fn offline_download_with_every_option() {
    let request = encoded(&OfflineDownloadRequest {
        url: "https://vip.123pan.cn/1815309870/...(过长省略)".to_owned(),
        file_name: Some("测试https离线下载.mp4".to_owned()),
        dir_id: Some(FileId(10023)),
        callback_url: Some("https://hooks.example.com/123pan/offline".to_owned()),
    });
    insta::assert_snapshot!(render(&request));
}

#[test]
fn image_bed_download_seed() {
    let request = encoded(&OssOfflineDownloadRequest::new(SEED_004_URL));
    insta::assert_snapshot!(render(&request));
}

#[test]
fn image_bed_download_with_every_option() {
    let request = encoded(&OssOfflineDownloadRequest {
        file_name: Some("still.png".to_owned()),
        business_dir_id: Some("10023".to_owned()),
        callback_url: Some("https://hooks.example.com/123pan/oss".to_owned()),
        ..OssOfflineDownloadRequest::new("https://example.com/images/still.webp")
    });
    insta::assert_snapshot!(render(&request));
}

#[test]
fn offline_process() {
    let request = encoded(&OfflineProcessRequest::new(TaskId(394_756)));
    insta::assert_snapshot!(render(&request));
}

#[test]
fn image_bed_process() {
    let request = encoded(&OssProcessRequest::new(TaskId(403_316)));
    insta::assert_snapshot!(render(&request));
}

/// `request` encoded with the test token; it must be valid.
fn encoded(request: &impl Endpoint) -> HttpRequest {
    request.to_http(&base(), Some(&token())).unwrap()
}

/// The validation error `request` is refused with.
fn refusal(request: &impl Endpoint) -> ValidationError {
    match request.to_http(&base(), Some(&token())) {
        Err(EncodeError::Invalid(e)) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn only_http_and_https_sources_are_accepted() {
    for url in [
        "ftp://example.com/file.iso",
        "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
    ] {
        let scheme = url.split(':').next().unwrap();
        let refused = |e: &ValidationError| {
            matches!(e, ValidationError::UnsupportedScheme { url: u, scheme: s, .. }
                if u == url && s == scheme)
        };
        let e = refusal(&OfflineDownloadRequest::new(url));
        assert!(refused(&e), "cloud drive {url}: {e:?}");
        let e = refusal(&OssOfflineDownloadRequest::new(url));
        assert!(refused(&e), "image bed {url}: {e:?}");
    }
}

/// Requests that are valid but for one field, and the refusal each must get.
#[test]
fn a_request_with_one_bad_field_is_refused() {
    let drive = OfflineDownloadRequest::new;
    let bed = OssOfflineDownloadRequest::new;
    /// A refusal, and whether it is the right one.
    type Case = (ValidationError, fn(&ValidationError) -> bool);
    let cases: [Case; 6] = [
        // The callback URL must be http(s).
        (
            refusal(&OfflineDownloadRequest {
                callback_url: Some("ftp://hooks.example.com/x".to_owned()),
                ..drive("https://example.com/a.zip")
            }),
            |e| matches!(e, ValidationError::UnsupportedScheme { scheme, .. } if scheme == "ftp"),
        ),
        // The root directory is refused.
        (
            refusal(&OfflineDownloadRequest {
                dir_id: Some(FileId::ROOT),
                ..drive("https://example.com/a.zip")
            }),
            |e| *e == ValidationError::RootDirectory,
        ),
        (
            refusal(&OssOfflineDownloadRequest {
                business_dir_id: Some("0".to_owned()),
                ..bed("https://example.com/a.png")
            }),
            |e| *e == ValidationError::RootDirectory,
        ),
        // The image bed's `type` must be 1.
        (
            refusal(&OssOfflineDownloadRequest {
                business_type: 2,
                ..bed("https://example.com/a.png")
            }),
            |e| matches!(e, ValidationError::InvalidValue { field: "type", .. }),
        ),
        // A file name with a slash is refused.
        (
            refusal(&OfflineDownloadRequest {
                file_name: Some("dir/video.mp4".to_owned()),
                ..drive("https://example.com/video.mp4")
            }),
            |e| matches!(e, ValidationError::InvalidFileName { name, .. } if name == "dir/video.mp4"),
        ),
        (
            refusal(&OssOfflineDownloadRequest {
                file_name: Some("dir/still.png".to_owned()),
                ..bed("https://example.com/still.png")
            }),
            |e| matches!(e, ValidationError::InvalidFileName { name, .. } if name == "dir/still.png"),
        ),
    ];
    for (index, (error, expected)) in cases.iter().enumerate() {
        assert!(expected(error), "case {index}: {error:?}");
    }
}

#[test]
fn image_bed_refuses_a_video_url_without_an_image_file_name() {
    let e = refusal(&OssOfflineDownloadRequest::new(
        "https://example.com/media/movie.mp4",
    ));
    assert!(
        matches!(&e, ValidationError::NotAnImage { name, .. } if name == "movie.mp4"),
        "{e:?}"
    );
}

#[test]
fn image_bed_accepts_a_video_url_with_an_image_file_name() {
    let request = encoded(&OssOfflineDownloadRequest {
        file_name: Some("cover.png".to_owned()),
        ..OssOfflineDownloadRequest::new("https://example.com/media/movie.mp4")
    });
    let body: Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body["fileName"], "cover.png");
    assert_eq!(body["url"], "https://example.com/media/movie.mp4");
}

#[test]
fn access_token_request_needs_id_and_secret() {
    let request = AccessTokenRequest {
        client_id: String::new(),
        client_secret: Secret::new("s"),
    };
    assert_eq!(refusal(&request), ValidationError::Empty("clientID"));
    let request = AccessTokenRequest {
        client_id: "id".to_owned(),
        client_secret: Secret::new(""),
    };
    assert_eq!(refusal(&request), ValidationError::Empty("clientSecret"));
}

#[test]
fn token_that_cannot_be_a_header_is_refused() {
    let result = OfflineDownloadRequest::new("https://example.com/a.zip")
        .to_http(&base(), Some(&Secret::new("abc\r\nX-Injected: 1")));
    assert_eq!(result.unwrap_err(), EncodeError::Header("authorization"));
}
