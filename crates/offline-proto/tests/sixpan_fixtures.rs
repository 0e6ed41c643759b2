//! 6pan through the client-side decoders and encoders: every described response
//! (`fixtures/6pan/*/response_*.gen.http`) decoded by the decoder of its endpoint and
//! snapshotted; the seed requests encoded and snapshotted as text; no 6pan decoder
//! panics on arbitrary input.

use std::fmt::Debug;
use std::path::Path;

use offline_proto::qetag::Etag;
use offline_proto::sixpan::api::{decode_envelope, Endpoint, Session};
use offline_proto::sixpan::identity::Identity;
use offline_proto::sixpan::storage::{decode_chunk_stored, decode_file_stored};
use offline_proto::sixpan::{
    AddRequest, AddTask, DeleteRequest, LoginRequest, LogoutOtherRequest, PageRequest,
    ParseTorrentRequest, ParseUrlRequest, StoreTokenRequest, UploadTokenRequest, UserInfoRequest,
    UserOnlineRequest,
};
use offline_proto::{BaseUrl, HttpRequest, Secret};
use proptest::prelude::*;

mod common;
use common::parse_raw_response;

/// Decodes a response with the decoder of the endpoint its directory names.
fn decode(endpoint: &str, response: &offline_proto::HttpResponse) -> Box<dyn Debug> {
    match endpoint {
        "login" => Box::new(LoginRequest::decode(response)),
        "user_info" => Box::new(UserInfoRequest::decode(response)),
        "store_token" => Box::new(StoreTokenRequest::decode(response)),
        "upload_token" => Box::new(UploadTokenRequest::decode(response)),
        "user_online" => Box::new(UserOnlineRequest::decode(response)),
        "logout_other" => Box::new(LogoutOtherRequest::decode(response)),
        "parse_url" => Box::new(ParseUrlRequest::decode(response)),
        "parse_torrent" => Box::new(ParseTorrentRequest::decode(response)),
        "add_tasks" => Box::new(AddRequest::decode(response)),
        "list_tasks" => Box::new(PageRequest::decode(response)),
        "delete_tasks" => Box::new(DeleteRequest::decode(response)),
        "upload" | "make_file" => Box::new(decode_file_stored(response)),
        "make_block" | "put_chunk" => Box::new(decode_chunk_stored(response)),
        other => panic!("no decoder for fixtures of {other:?}"),
    }
}

#[test]
fn described_responses_decode_as_snapshotted() {
    insta::glob!("../../../fixtures/6pan", "*/response_*.gen.http", |path| {
        let raw = std::fs::read(path).unwrap();
        let response = parse_raw_response(&raw);
        let endpoint = path
            .parent()
            .and_then(Path::file_name)
            .unwrap()
            .to_str()
            .unwrap();
        insta::assert_debug_snapshot!(decode(endpoint, &response));
    });
}

/// Method, URI, sorted headers (tokens redacted) and the body, as text.
fn render(request: &HttpRequest) -> String {
    let mut headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = if v.is_sensitive() {
                "[REDACTED]".to_owned()
            } else {
                v.to_str().unwrap().to_owned()
            };
            (k.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    let mut out = format!("{} {}\n", request.method(), request.uri());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(request.body()));
    out
}

fn base() -> BaseUrl {
    BaseUrl::parse("https://api.6pan.cn").unwrap()
}

fn identity(name: &str) -> Identity {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/6pan/identity")
        .join(name);
    Identity::parse(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

#[test]
fn seed_requests_encode_as_snapshotted() {
    let token = Secret::new("jwt-token");
    // Seed 000: parseTorrent of a torrent already in the drive.
    let parse_torrent = ParseTorrentRequest {
        hash: vec!["FhIXuVl6_FgFM6yKdfcIIicpwMrG".parse::<Etag>().unwrap()],
    };
    insta::assert_snapshot!(
        "parse_torrent_seed",
        render(&parse_torrent.to_http(&base(), Some(&token)).unwrap())
    );
    // Seed 000: add two tasks, the first with a file left out (`iginreFiles`).
    let add = AddRequest {
        path: "/ab/c/d".to_owned(),
        task: vec![
            AddTask {
                identity: identity("add_task_bilibili.txt"),
                ignore_files: Some(vec!["1a53d7efd98288b66986429b71cffcee".to_owned()]),
            },
            AddTask {
                identity: identity("add_task_parse_url.txt"),
                ignore_files: None,
            },
        ],
    };
    insta::assert_snapshot!(
        "add_seed",
        render(&add.to_http(&base(), Some(&token)).unwrap())
    );
    // Seed 001: an instant-upload attempt into the torrent folder.
    let store = StoreTokenRequest {
        name: "幸运星.torrent".to_owned(),
        hash: Some("lgYD1AjrK5Daxq-Dt0qemSPKdNbh".parse().unwrap()),
        parent: None,
        path: Some(":torrent".to_owned()),
    };
    insta::assert_snapshot!(
        "store_token_seed",
        render(&store.to_http(&base(), Some(&token)).unwrap())
    );
    let login = LoginRequest::with_password("demo@example.com", "password");
    insta::assert_snapshot!("login", render(&login.to_http(&base(), None).unwrap()));
    let parse = ParseUrlRequest::new(&[
        "https://example.com/a.iso",
        "magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924",
    ]);
    insta::assert_snapshot!(
        "parse_url_two_links",
        render(&parse.to_http(&base(), Some(&token)).unwrap())
    );
}

#[test]
fn the_add_request_keeps_identities_byte_for_byte() {
    let id = identity("parse_torrent_bt.txt");
    let add = AddRequest {
        path: "/d".to_owned(),
        task: vec![AddTask {
            identity: id.clone(),
            ignore_files: None,
        }],
    };
    let req = add.to_http(&base(), None).unwrap();
    let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
    assert_eq!(body["task"][0]["identity"].as_str().unwrap(), id.as_str());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sixpan_decoders_never_panic(
        status in 100u16..=599,
        body in proptest::collection::vec(any::<u8>(), 0..512),
        token_header in proptest::option::of("[ -~]{0,40}"),
    ) {
        let mut b = http::Response::builder().status(status);
        if let Some(t) = &token_header {
            b = b.header("qingzhen-token", t.as_str());
        }
        let response = b.body(bytes::Bytes::from(body.clone())).unwrap();
        let _ = decode_envelope::<serde_json::Value>(&response);
        for endpoint in ["login", "store_token", "parse_url", "add_tasks", "list_tasks", "delete_tasks", "upload", "make_block"] {
            let _ = decode(endpoint, &response);
        }
        let mut session = Session::new();
        let (seq, _) = session.begin();
        session.handle_response(seq, &response);
    }

    #[test]
    fn envelope_shaped_json_never_panics_and_errors_keep_the_body(
        success in any::<Option<bool>>(),
        code in proptest::option::of(prop_oneof![Just("OK".to_owned()), "[A-Z_]{1,20}"]),
        result in prop_oneof![Just("null".to_owned()), Just("[]".to_owned()), Just("{\"count\":1,\"success\":true}".to_owned()), (0u32..100_000).prop_map(|n| n.to_string())],
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(500)],
    ) {
        let mut fields = vec![format!("\"result\":{result}")];
        if let Some(s) = success { fields.push(format!("\"success\":{s}")); }
        if let Some(c) = &code { fields.push(format!("\"code\":\"{c}\"")); }
        let body = format!("{{{}}}", fields.join(","));
        let response = http::Response::builder().status(status).body(bytes::Bytes::from(body.clone())).unwrap();
        let ok_envelope = success == Some(true) && code.as_deref() == Some("OK");
        match decode_envelope::<offline_proto::sixpan::AddResult>(&response) {
            Ok(_) => prop_assert!(ok_envelope),
            Err(offline_proto::ApiError::Decode(d)) => prop_assert_eq!(d.body.as_ref(), body.as_bytes()),
            Err(e) => prop_assert!(!ok_envelope || e.provider_error().is_none(), "{e:?}"),
        }
    }
}
