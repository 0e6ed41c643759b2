//! The Transmission RPC layer against an in-memory [`Catalog`], with requests written
//! as Sonarr/Radarr (`TransmissionProxy.cs`), the `transmission-rpc` Python package
//! (`client.py`) and Transmission 4.1's own JSON-RPC 2.0 clients send them.
//!
//! The snapshots (`tests/snapshots/transmission__*.snap`) are the claim that the
//! answers have the documented shapes:
//!
//! - `session_get_legacy`: rpc-spec.md 4.0.6 §4.1 (every key, the old names; the keys
//!   and `units` as 4.0.6's `addSessionField` and daemon answer them);
//! - `session_get_jsonrpc`: rpc-spec.md 4.1 §4.1 (snake_case; 4.1's extra keys;
//!   `units` with five units each), inside a JSON-RPC 2.0 response (§2);
//! - `torrent_get_legacy_objects`, `torrent_get_legacy_table`: rpc-spec.md 4.0.6 §3.3
//!   (field names and types, `wanted` as 0/1, the `table` format's name row first),
//!   one task in each state, mapped as the module's table says;
//! - `torrent_get_jsonrpc_objects`, `torrent_get_jsonrpc_table`: rpc-spec.md 4.1 §3.3
//!   (snake_case, `wanted` as booleans, `files` with `begin_piece`/`end_piece`);
//! - `conflict_409`: rpc-server.cc's 409 (4.1.0: the session id and RPC version
//!   headers, the explanation body).

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use base64::Engine as _;
use offline_proto::aria2::{
    Failure, FailureKind, FileView, Gid, Progress, Source, TaskState, TaskView, TorrentInfo,
};
use offline_proto::catalog::task_hash;
use offline_proto::torrent::{Metainfo, TorrentBuilder};
use offline_proto::transmission::{
    self, handle, method_not_allowed, refusal, Config, Login, Reply, Request, State, MAX_BATCH_LEN,
    MAX_BODY_BYTES, MAX_LIST_LEN, SESSION_HEADER,
};
use offline_proto::Secret;
use proptest::prelude::*;
use serde_json::{json, Value};

// --- The fake catalog ---------------------------------------------------------------

#[path = "common/fake_catalog.rs"]
mod fake_catalog;
use fake_catalog::Fake;

// --- Harness ------------------------------------------------------------------------

const SESSION_ID: &str = "u6gSUEl2eb26wSk1pGuwIFN8TuSNBKCoHqwNGmQmDNE0Zpcc";

struct Daemon {
    fake: Fake,
    state: State,
    config: Config,
}

impl Daemon {
    fn new(fake: Fake) -> Self {
        Self {
            fake,
            state: State::new(SESSION_ID.into()),
            config: Config {
                login: None,
                report_prefix: Some("/mnt/cloud".into()),
                version: "0.1.0".into(),
            },
        }
    }

    fn send(&mut self, request: &Request<'_>) -> Reply {
        handle(request, &mut self.fake, &self.state, &self.config)
    }

    /// POSTs `body` from loopback with the session id.
    fn post(&mut self, body: &str) -> Reply {
        self.send(&Request {
            session_id: Some(SESSION_ID),
            authorization: None,
            peer_loopback: true,
            body: body.as_bytes(),
        })
    }

    /// The answer's JSON.
    fn json(&mut self, body: &str) -> Value {
        let reply = self.post(body);
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(
            reply.header("Content-Type"),
            Some("application/json; charset=UTF-8")
        );
        serde_json::from_slice(&reply.body).unwrap()
    }

    /// A bespoke call: the whole answer.
    fn legacy(&mut self, method: &str, arguments: Value) -> Value {
        let body = json!({"method": method, "arguments": arguments, "tag": 7});
        let answer = self.json(&body.to_string());
        assert_eq!(answer["tag"], 7, "{answer}");
        answer
    }

    /// A bespoke call that must succeed: its `arguments`.
    fn ok(&mut self, method: &str, arguments: Value) -> Value {
        let answer = self.legacy(method, arguments);
        assert_eq!(answer["result"], "success", "{method}: {answer}");
        answer["arguments"].clone()
    }

    /// A bespoke call that must fail: its `result` string.
    fn refused(&mut self, method: &str, arguments: Value) -> String {
        let answer = self.legacy(method, arguments);
        assert_ne!(answer["result"], "success", "{method}: {answer}");
        answer["result"].as_str().unwrap().to_owned()
    }

    /// A JSON-RPC 2.0 call: the whole answer.
    fn rpc(&mut self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": "x"});
        let answer = self.json(&body.to_string());
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], "x");
        answer
    }

    /// A JSON-RPC 2.0 call that must succeed: its `result`.
    fn rpc_ok(&mut self, method: &str, params: Value) -> Value {
        let answer = self.rpc(method, params);
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// A JSON-RPC 2.0 call that must fail: its `error`.
    fn rpc_err(&mut self, method: &str, params: Value) -> Value {
        let answer = self.rpc(method, params);
        assert!(answer.get("result").is_none(), "{method}: {answer}");
        answer["error"].clone()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A three-file torrent (pieces of 16 KiB).
fn album() -> Vec<u8> {
    TorrentBuilder::new("album")
        .file(&["a.flac"], vec![1; 40_000])
        .file(&["b.flac"], vec![2; 20_000])
        .file(&["cover.jpg"], vec![3; 1_000])
        .announce("http://tracker.example.org/announce")
        .build()
}

const MAGNET: &str =
    "magnet:?xt=urn:btih:0a3893293e27ac0490424c06de4d09242215f0a6&dn=Some.Show.S01E01.1080p";

// --- HTTP ---------------------------------------------------------------------------

#[test]
fn the_409_handshake_then_success() {
    let mut d = Daemon::new(Fake::default());
    // Sonarr's AuthenticateClient: a GET with no session id.
    let reply = d.send(&Request {
        session_id: None,
        authorization: None,
        peer_loopback: true,
        body: b"",
    });
    assert_eq!(reply.status, 409);
    assert_eq!(reply.header(SESSION_HEADER), Some(SESSION_ID));
    assert_eq!(reply.header("x-transmission-rpc-version"), Some("6.0.0"));
    let body = String::from_utf8(reply.body.clone()).unwrap();
    assert!(body.starts_with("<h1>409: Conflict</h1>"), "{body}");
    insta::assert_json_snapshot!(
        "conflict_409",
        json!({
            "status": reply.status,
            "headers": reply.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": body,
        })
    );
    // transmission-rpc's first POST carries the session id "0".
    let stale = d.send(&Request {
        session_id: Some("0"),
        authorization: None,
        peer_loopback: true,
        body: br#"{"method":"session-get","arguments":{"fields":["version"]}}"#,
    });
    assert_eq!(stale.status, 409);
    // Resent with the id from the header.
    let id = stale.header(SESSION_HEADER).unwrap().to_owned();
    let ok = d.send(&Request {
        session_id: Some(&id),
        authorization: None,
        peer_loopback: true,
        body: br#"{"method":"session-get","arguments":{"fields":["version"]}}"#,
    });
    assert_eq!(ok.status, 200);
    assert_eq!(
        String::from_utf8(ok.body).unwrap(),
        r#"{"arguments":{"version":"4.0.6 (offline-0.1.0)"},"result":"success"}"#
    );
    // A GET with the right id passes the checks; the daemon answers it 405.
    let get = Request {
        session_id: Some(SESSION_ID),
        authorization: None,
        peer_loopback: true,
        body: b"",
    };
    assert!(refusal(&get, &d.state, &d.config).is_none());
    let not_allowed = method_not_allowed();
    assert_eq!(not_allowed.status, 405);
    assert_eq!(not_allowed.body, b"<h1>405: Method Not Allowed</h1>");
}

#[test]
fn basic_login_then_session_id() {
    let mut d = Daemon::new(Fake::default());
    d.config.login = Some(Login {
        username: "sonarr".into(),
        password: Secret::new("p4ss:word"),
    });
    let basic = |pair: &str| format!("Basic {}", b64(pair.as_bytes()));
    let ask = |d: &mut Daemon, authorization: Option<&str>, loopback: bool| {
        d.send(&Request {
            session_id: Some(SESSION_ID),
            authorization,
            peer_loopback: loopback,
            body: br#"{"method":"session-stats"}"#,
        })
    };
    for auth in [
        None,
        Some(basic("sonarr:wrong")),
        Some(basic("radarr:p4ss:word")),
        Some("Basic %%%".to_owned()),
        Some("Digest abc".to_owned()),
    ] {
        let reply = ask(&mut d, auth.as_deref(), true);
        assert_eq!(reply.status, 401, "{auth:?}");
        assert_eq!(
            reply.header("WWW-Authenticate"),
            Some("Basic realm=\"Transmission\"")
        );
        assert_eq!(reply.body, b"<h1>401: Unauthorized</h1>");
    }
    // With the login, any peer is served; the session id is still needed after it.
    let good = basic("sonarr:p4ss:word");
    assert_eq!(ask(&mut d, Some(&good), false).status, 200);
    let no_id = d.send(&Request {
        session_id: None,
        authorization: Some(&good),
        peer_loopback: false,
        body: b"{}",
    });
    assert_eq!(no_id.status, 409);
    // The password is never in an answer.
    for reply in [
        ask(&mut d, None, false),
        no_id,
        ask(&mut d, Some(&good), true),
    ] {
        let all = format!(
            "{:?}{}",
            reply.headers,
            String::from_utf8_lossy(&reply.body)
        );
        assert!(!all.contains("p4ss"), "{all}");
    }
    d.config.login = None;
    let session = d.ok("session-get", json!({}));
    assert!(!session.to_string().contains("p4ss"));
}

#[test]
fn without_a_login_only_loopback_is_served() {
    let mut d = Daemon::new(Fake::default());
    let reply = d.send(&Request {
        session_id: Some(SESSION_ID),
        authorization: None,
        peer_loopback: false,
        body: br#"{"method":"session-stats"}"#,
    });
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, b"<h1>403: Forbidden</h1>");
    // The 403 comes before the session check: no session id is given away.
    let reply = d.send(&Request {
        session_id: None,
        authorization: None,
        peer_loopback: false,
        body: b"",
    });
    assert_eq!(reply.status, 403);
    assert!(reply.header(SESSION_HEADER).is_none());
}

#[test]
fn an_oversized_body_is_413_after_the_checks() {
    let mut d = Daemon::new(Fake::default());
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    let reply = d.send(&Request {
        session_id: Some(SESSION_ID),
        authorization: None,
        peer_loopback: true,
        body: &body,
    });
    assert_eq!(reply.status, 413);
    let reply = d.send(&Request {
        session_id: None,
        authorization: None,
        peer_loopback: true,
        body: &body,
    });
    assert_eq!(reply.status, 409);
}

// --- The envelope -------------------------------------------------------------------

#[test]
fn each_protocol_is_answered_in_its_own() {
    let mut d = Daemon::new(Fake::default());
    let legacy = d.post(r#"{"method":"session-get","arguments":{"fields":["rpc-version","rpc-version-semver","rpc_version_minimum"]},"tag":912313}"#);
    assert_eq!(
        String::from_utf8(legacy.body).unwrap(),
        r#"{"arguments":{"rpc-version":17,"rpc-version-minimum":14,"rpc-version-semver":"5.3.0"},"result":"success","tag":912313}"#
    );
    let rpc = d.post(r#"{"jsonrpc":"2.0","method":"session_get","params":{"fields":["rpc_version","rpc_version_semver","version"]},"id":912313}"#);
    assert_eq!(
        String::from_utf8(rpc.body).unwrap(),
        r#"{"id":912313,"jsonrpc":"2.0","result":{"rpc_version":18,"rpc_version_semver":"6.0.0","version":"4.1.0 (offline-0.1.0)"}}"#
    );
    // JSON-RPC 2.0 knows only the snake_case names (as 4.1): an old method name is
    // unknown there, an old field name is skipped.
    let error = d.rpc_err("session-get", json!({}));
    assert_eq!(
        error,
        json!({"code": -32601, "message": "Method not found"})
    );
    let result = d.rpc_ok("session_get", json!({"fields": ["rpc-version", "version"]}));
    assert_eq!(result, json!({"version": "4.1.0 (offline-0.1.0)"}));
    // A tag that is not an integer is not echoed; true counts as 1 (tr_variantGetInt).
    let answer = d.json(r#"{"method":"session-stats","tag":"abc"}"#);
    assert!(answer.get("tag").is_none());
    let answer = d.json(r#"{"method":"session-stats","tag":true}"#);
    assert_eq!(answer["tag"], 1);
    // jsonrpc other than "2.0".
    let answer = d.json(r#"{"jsonrpc":"1.0","method":"session_get","id":1}"#);
    assert_eq!(answer["error"]["code"], -32600);
    assert_eq!(
        answer["error"]["data"]["error_string"],
        "JSON-RPC version is not 2.0"
    );
    assert_eq!(answer["id"], Value::Null);
    // An id of the wrong type.
    let answer = d.json(r#"{"jsonrpc":"2.0","method":"session_get","id":{"a":1}}"#);
    assert_eq!(
        answer["error"]["data"]["error_string"],
        "id type must be String, Number, or Null"
    );
    // id null is an id, not a notification.
    let answer = d.json(r#"{"jsonrpc":"2.0","method":"session_stats","id":null}"#);
    assert_eq!(answer["id"], Value::Null);
    assert!(answer["result"].is_object());
}

#[test]
fn unknown_and_unprovided_methods() {
    let mut d = Daemon::new(Fake::default());
    for method in [
        "port-test",
        "blocklist-update",
        "session-close",
        "group-set",
        "torrent-rename-path",
        "torrent-frobnicate",
    ] {
        assert_eq!(
            d.refused(method, json!({})),
            "method name not recognized",
            "{method}"
        );
        let snake = method.replace('-', "_");
        assert_eq!(d.rpc_err(&snake, json!({}))["code"], -32601);
    }
    let answer = d.json(r#"{"arguments":{},"tag":3}"#);
    assert_eq!(
        answer,
        json!({"arguments": {}, "result": "no method name", "tag": 3})
    );
    let answer = d.json(r#"{"method":12}"#);
    assert_eq!(answer["result"], "no method name");
    // The bespoke protocol takes snake_case method names too (4.1's api-compat).
    assert!(d.ok("session_stats", json!({})).is_object());
    assert_eq!(d.ok("group-get", json!({})), json!({"group": []}));
}

#[test]
fn batches_and_notifications() {
    let mut d = Daemon::new(Fake::default());
    let body = json!([
        {"jsonrpc": "2.0", "method": "session_get", "params": {"fields": ["version"]}, "id": 1},
        {"jsonrpc": "2.0", "method": "torrent_add", "params": {"filename": MAGNET}},
        {"jsonrpc": "2.0", "method": "session_stats", "id": "two"},
        {"method": "session-get", "id": 3},
        7,
        {"jsonrpc": "2.0", "method": "nope", "id": 4},
    ]);
    let answer = d.json(&body.to_string());
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 5, "{answer}");
    assert_eq!(answers[0]["id"], 1);
    assert_eq!(answers[0]["result"]["version"], "4.1.0 (offline-0.1.0)");
    assert_eq!(answers[1]["id"], "two");
    assert_eq!(
        answers[1]["result"]["torrent_count"], 1,
        "the notification ran"
    );
    assert_eq!(
        answers[2]["error"]["data"]["error_string"],
        "JSON-RPC version is not 2.0"
    );
    assert_eq!(
        answers[3]["error"]["data"]["error_string"],
        "request must be an Object"
    );
    assert_eq!(answers[4]["error"]["code"], -32601);
    assert_eq!(d.fake.added.len(), 1);

    // Only notifications: 204, no body; a notification of a read-only method is not
    // even executed (4.1's has_side_effects).
    let reply = d.post(r#"[{"jsonrpc":"2.0","method":"session_stats"},{"jsonrpc":"2.0","method":"torrent_verify"}]"#);
    assert_eq!((reply.status, reply.body.len()), (204, 0));
    let reply = d.post(r#"{"jsonrpc":"2.0","method":"torrent_get","params":{"fields":["id"]}}"#);
    assert_eq!((reply.status, reply.body.len()), (204, 0));
    let reply = d.post(r#"{"jsonrpc":"2.0","method":"no_such_method"}"#);
    assert_eq!(reply.status, 204);

    // An empty batch and a too long one.
    let answer = d.json("[]");
    assert_eq!(
        answer,
        json!({"error": {"code": -32600, "message": "Invalid Request"}, "id": null, "jsonrpc": "2.0"})
    );
    let long: Vec<Value> = (0..=MAX_BATCH_LEN)
        .map(|i| json!({"jsonrpc": "2.0", "method": "session_stats", "id": i}))
        .collect();
    let answer = d.json(&Value::Array(long).to_string());
    assert_eq!(answer["error"]["code"], -32600);
}

#[test]
fn hostile_bodies_get_transmission_errors_not_panics() {
    let mut d = Daemon::new(Fake::default());
    let parse_error = |v: &Value| v["error"]["code"] == -32700 && v["id"].is_null();
    for body in [
        "",
        "{",
        "garbage",
        "{\"method\":\"torrent-get\",}",
        "\u{0}",
        "[1,",
    ] {
        let answer = d.json(body);
        assert!(parse_error(&answer), "{body:?}: {answer}");
        assert_eq!(answer["error"]["message"], "Parse error");
    }
    let reply = d.post_bytes(b"\xff\xfe{}");
    assert!(parse_error(&serde_json::from_slice(&reply.body).unwrap()));
    // Deep nesting: answered (here as a batch of one non-object), no stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(d.json(&deep).is_array());
    let deep = format!(
        "{{\"method\":\"session-set\",\"arguments\":{{\"version\":{}{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(d.json(&deep)["result"].is_string());
    for body in ["1", "\"torrent-get\"", "null", "true"] {
        let answer = d.json(body);
        assert_eq!(answer["error"]["code"], -32600, "{body}");
        assert_eq!(
            answer["error"]["data"]["error_string"],
            "request must be an Array or Object"
        );
    }
    let answer = d.json(r#"{"method":"session-get","method":"torrent-get"}"#);
    assert_eq!(answer["error"]["code"], -32600);
    // Arguments that are not an object are refused (Transmission would read no
    // arguments: for torrent-remove, every torrent).
    d.fake.tasks.push(in_state(1, TaskState::Running));
    for args in ["[1]", "1", "\"ids\""] {
        let body = format!(r#"{{"method":"torrent-remove","arguments":{args}}}"#);
        assert_eq!(d.json(&body)["result"], "arguments must be an object");
        let body =
            format!(r#"{{"jsonrpc":"2.0","method":"torrent_remove","params":{args},"id":1}}"#);
        let answer = d.json(&body);
        assert_eq!(answer["error"]["code"], -32602);
        assert_eq!(
            answer["error"]["data"]["error_string"],
            "params must be an object"
        );
    }
    // Arguments under the other protocol's member are never ignored.
    let answer =
        d.json(r#"{"jsonrpc":"2.0","method":"torrent_remove","arguments":{"ids":[1]},"id":1}"#);
    assert_eq!(
        answer["error"]["data"]["error_string"],
        "JSON-RPC 2.0 takes params, not arguments: send params"
    );
    let answer =
        d.json(r#"{"method":"torrent-remove","arguments":{"ids":[9]},"params":{"ids":[1]}}"#);
    assert_eq!(
        answer["result"],
        "arguments and params are both given: send arguments"
    );
    assert_eq!(d.fake.tasks.len(), 1);
    let answer = d.json(r#"{"method":"torrent-get","params":{"ids":[1],"fields":["id"]}}"#);
    assert_eq!(answer["arguments"]["torrents"], json!([{"id": 1}]));
}

impl Daemon {
    fn post_bytes(&mut self, body: &[u8]) -> Reply {
        self.send(&Request {
            session_id: Some(SESSION_ID),
            authorization: None,
            peer_loopback: true,
            body,
        })
    }
}

#[test]
fn wrong_argument_types_are_refused_by_name() {
    let mut d = Daemon::new(Fake::with_categories());
    d.fake.tasks.push(in_state(1, TaskState::Running));
    let cases: &[(&str, Value, &str)] = &[
        ("torrent-add", json!({"filename": 5}), "wrong type for filename: expected a string"),
        ("torrent-add", json!({"filename": MAGNET, "paused": "no"}), "wrong type for paused: expected a boolean"),
        ("torrent-add", json!({"filename": MAGNET, "labels": "tv"}), "wrong type for labels: expected an array"),
        ("torrent-add", json!({"filename": MAGNET, "labels": [1]}), "wrong type for labels: expected an array of strings"),
        ("torrent-add", json!({"filename": MAGNET, "download-dir": ["/x"]}), "wrong type for download-dir: expected a string"),
        ("torrent-add", json!({"filename": MAGNET, "files-unwanted": [-1]}), "wrong type for files-unwanted: expected an array of file indices (integers from 0)"),
        ("torrent-add", json!({"filename": MAGNET, "peer-limit": "x"}), "wrong type for peer-limit: expected an integer"),
        ("torrent-add", json!({"metainfo": {"a": 1}}), "wrong type for metainfo: expected a string"),
        ("torrent-get", json!({"fields": "name"}), "wrong type for fields: expected an array"),
        ("torrent-get", json!({"fields": ["id"], "ids": {"a": 1}}), "wrong type for ids: expected a torrent ID, a hash string, \"recently-active\" or an array of IDs and hash strings"),
        ("torrent-get", json!({"fields": ["id"], "ids": [1.5]}), "wrong type for ids: expected a torrent ID, a hash string, \"recently-active\" or an array of IDs and hash strings"),
        ("torrent-get", json!({"fields": ["id"], "ids": [true]}), "wrong type for ids: expected a torrent ID, a hash string, \"recently-active\" or an array of IDs and hash strings"),
        ("torrent-get", json!({"fields": ["id"], "format": 1}), "wrong type for format: expected a string"),
        ("torrent-remove", json!({"ids": [1], "delete-local-data": "yes"}), "wrong type for delete-local-data: expected a boolean"),
        ("torrent-remove", json!({"ids": false}), "wrong type for ids: expected a torrent ID, a hash string, \"recently-active\" or an array of IDs and hash strings"),
        ("torrent-set", json!({"ids": [1], "labels": [[]]}), "wrong type for labels: expected an array of strings"),
        ("torrent-set", json!({"ids": [1], "seedRatioLimit": "2"}), "wrong type for seedRatioLimit: expected a number"),
        ("torrent-set", json!({"ids": [1], "seedIdleMode": 1.5}), "wrong type for seedIdleMode: expected an integer"),
        ("torrent-set", json!({"ids": [1], "files-wanted": "0"}), "wrong type for files-wanted: expected an array"),
        ("torrent-set-location", json!({"ids": [1], "location": "/mnt/cloud/d", "move": []}), "wrong type for move: expected a boolean"),
        ("session-get", json!({"fields": [1]}), "wrong type for fields: expected an array of strings"),
    ];
    for (method, args, expected) in cases {
        assert_eq!(
            d.refused(method, args.clone()),
            *expected,
            "{method} {args}"
        );
    }
    assert!(d.fake.added.is_empty());
    assert_eq!(d.fake.tasks.len(), 1);
    // The same in JSON-RPC 2.0: -32602, named as sent.
    let error = d.rpc_err("torrent_add", json!({"filename": MAGNET, "paused": []}));
    assert_eq!(
        error,
        json!({"code": -32602, "message": "Invalid params", "data": {"error_string": "wrong type for paused: expected a boolean"}})
    );
}

#[test]
fn huge_ids_arrays_are_bounded() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks.push(in_state(1, TaskState::Running));
    let ids: Vec<u64> = (0..MAX_LIST_LEN as u64).map(|i| i % 3).collect();
    let started = Instant::now();
    let got = d.ok("torrent-get", json!({"ids": ids, "fields": ["id"]}));
    assert_eq!(
        got["torrents"],
        json!([{"id": 1}]),
        "named many times, answered once"
    );
    assert!(started.elapsed().as_secs() < 20);
    let ids: Vec<u64> = (0..=MAX_LIST_LEN as u64).collect();
    let refused = d.refused("torrent-get", json!({"ids": ids, "fields": ["id"]}));
    assert_eq!(
        refused,
        format!("ids has more than {MAX_LIST_LEN} elements")
    );
    let refused = d.refused(
        "torrent-remove",
        json!({"ids": (0..=MAX_LIST_LEN as u64).collect::<Vec<_>>()}),
    );
    assert!(refused.contains("more than"));
    assert_eq!(d.fake.tasks.len(), 1);
}

proptest! {
    #![proptest_config(common::proptest_config::persisted(256, "proptest-regressions/transmission.txt"))]

    /// Any body, any bytes: an answer, never a panic.
    #[test]
    fn any_body_is_answered(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Daemon::new(Fake::default());
        let reply = d.post_bytes(&body);
        prop_assert!(reply.status == 200 || reply.status == 204);
    }

    /// Requests made of the protocol's own words in random shapes: an answer, never a
    /// panic, and every answer is JSON.
    #[test]
    fn random_requests_are_answered(
        method in prop::sample::select(vec![
            "torrent-get", "torrent_add", "torrent-add", "torrent-set", "torrent-remove",
            "torrent-start", "torrent-stop", "session-set", "session-get", "free-space",
            "torrent-set-location", "queue-move-top",
        ]),
        jsonrpc in any::<bool>(),
        value in prop::sample::select(vec![
            json!(null), json!(1), json!(-1), json!(1.5), json!("x"), json!(""), json!(true),
            json!([]), json!([1, "a", null]), json!({"a": 1}), json!(MAGNET), json!("/abs"),
            json!([0, 1, 2]), json!("recently-active"), json!("table"),
        ]),
        key in prop::sample::select(vec![
            "ids", "fields", "filename", "metainfo", "labels", "paused", "download-dir",
            "files-unwanted", "files_wanted", "location", "format", "path", "delete-local-data",
            "seedRatioLimit", "cookies", "peer-limit", "version", "download_dir",
        ]),
    ) {
        let mut d = Daemon::new(Fake::with_categories());
        d.fake.tasks.push(in_state(1, TaskState::Running));
        let body = if jsonrpc {
            json!({"jsonrpc": "2.0", "method": method, "params": {key: value}, "id": 1})
        } else {
            json!({"method": method, "arguments": {key: value}})
        };
        let reply = d.post(&body.to_string());
        prop_assert_eq!(reply.status, 200);
        let answer: Value = serde_json::from_slice(&reply.body).unwrap();
        prop_assert!(answer.is_object());
    }
}

// --- session ------------------------------------------------------------------------

#[test]
fn session_get_as_sonarr_and_transmission_rpc_read_it() {
    let mut d = Daemon::new(Fake::default());
    // Sonarr: session-get with no arguments, read into TransmissionConfig.
    let config = d.ok("session-get", Value::Null);
    assert_eq!(config["rpc-version"], 17);
    assert_eq!(config["version"], "4.0.6 (offline-0.1.0)");
    assert_eq!(config["download-dir"], "/mnt/cloud/Downloads");
    assert_eq!(config["seedRatioLimit"], 2);
    assert_eq!(config["seedRatioLimited"], false);
    assert_eq!(config["idle-seeding-limit"], 30);
    assert_eq!(config["idle-seeding-limit-enabled"], false);
    assert_eq!(config["session-id"], SESSION_ID);
    insta::assert_json_snapshot!("session_get_legacy", config);
    let all = d.rpc("session_get", json!({}));
    insta::assert_json_snapshot!("session_get_jsonrpc", all);
    // transmission-rpc's Client.__init__.
    let few = d.ok(
        "session-get",
        json!({"fields": ["rpc-version", "rpc-version-semver", "version", "nonsense"]}),
    );
    assert_eq!(
        few,
        json!({"rpc-version": 17, "rpc-version-semver": "5.3.0", "version": "4.0.6 (offline-0.1.0)"})
    );
    // The exact text of a real number, as 4.0.6 and 4.1 write it.
    let text = String::from_utf8(
        d.post(r#"{"method":"session-get","arguments":{"fields":["seedRatioLimit"]}}"#)
            .body,
    )
    .unwrap();
    assert_eq!(
        text,
        r#"{"arguments":{"seedRatioLimit":2},"result":"success"}"#
    );
    let text = String::from_utf8(d.post(r#"{"jsonrpc":"2.0","method":"session_get","params":{"fields":["seed_ratio_limit"]},"id":1}"#).body).unwrap();
    assert_eq!(
        text,
        r#"{"id":1,"jsonrpc":"2.0","result":{"seed_ratio_limit":2.0}}"#
    );
}

#[test]
fn session_set_accepts_only_what_changes_nothing() {
    let mut d = Daemon::new(Fake::default());
    assert_eq!(
        d.ok(
            "session-set",
            json!({"speed-limit-down": 100, "seedRatioLimit": 2.0, "download-dir": "/mnt/cloud/Downloads/", "start-added-torrents": true, "version": "4.0.6 (offline-0.1.0)"})
        ),
        json!({})
    );
    assert_eq!(
        d.refused(
            "session-set",
            json!({"speed-limit-down": 50, "download-dir": "/mnt/cloud/Other", "dht-enabled": false, "alt-speed-enabled": true})
        ),
        "cannot be changed on this daemon: alt-speed-enabled, download-dir, speed-limit-down"
    );
    assert_eq!(
        d.refused("session-set", json!({"frobnicate": 1})),
        "unknown arguments: frobnicate"
    );
    let error = d.rpc_err("session_set", json!({"speed_limit_up_enabled": true}));
    assert_eq!(
        error["data"]["error_string"],
        "cannot be changed on this daemon: speed_limit_up_enabled"
    );
    // An old name in JSON-RPC 2.0 is an unknown name.
    let error = d.rpc_err("session_set", json!({"speed-limit-up": 100}));
    assert_eq!(
        error["data"]["error_string"],
        "unknown arguments: speed-limit-up"
    );
    assert_eq!(
        d.rpc_ok("session_set", json!({"speed_limit_up": 100})),
        json!({})
    );
}

#[test]
fn session_stats_and_free_space() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks.extend(states());
    let stats = d.ok("session-stats", json!({}));
    assert_eq!(stats["torrentCount"], 7);
    assert_eq!(stats["activeTorrentCount"], 1);
    assert_eq!(stats["pausedTorrentCount"], 6);
    assert_eq!(stats["downloadSpeed"], 15_158);
    assert_eq!(stats["uploadSpeed"], 0);
    assert_eq!(stats["current-stats"]["filesAdded"], 7);
    assert_eq!(stats["cumulative-stats"]["uploadedBytes"], 0);
    let stats = d.rpc_ok("session_stats", json!({}));
    assert_eq!(stats["torrent_count"], 7);
    assert_eq!(stats["current_stats"]["session_count"], 1);

    // free-space: what Transmission answers for a folder it cannot measure.
    let answer = d.legacy("free-space", json!({"path": "/mnt/cloud/Downloads"}));
    assert_eq!(
        answer,
        json!({
            "arguments": {"path": "/mnt/cloud/Downloads", "size-bytes": -1, "total_size": -1},
            "result": "the free space of a cloud drive is unknown to this daemon",
            "tag": 7,
        })
    );
    let error = d.rpc_err("free_space", json!({"path": "/x"}));
    assert_eq!(
        error,
        json!({"code": 5, "message": "system error", "data": {
            "error_string": "the free space of a cloud drive is unknown to this daemon",
            "result": {"path": "/x", "size_bytes": -1, "total_size": -1}}})
    );
    assert_eq!(
        d.refused("free-space", json!({})),
        "directory path argument is missing"
    );
    assert_eq!(
        d.refused("free-space", json!({"path": "rel"})),
        "directory path is not absolute"
    );
    assert_eq!(d.rpc_err("free_space", json!({"path": "rel"}))["code"], 3);
}

// --- torrent-add --------------------------------------------------------------------

#[test]
fn torrent_add_metainfo_as_sonarr_sends_it() {
    let mut d = Daemon::new(Fake::with_categories());
    let torrent = album();
    let meta = Metainfo::from_bytes(&torrent).unwrap();
    let added = d.ok(
        "torrent-add",
        json!({"metainfo": b64(&torrent), "paused": false, "labels": ["tv"]}),
    );
    assert_eq!(
        added,
        json!({"torrent-added": {"hashString": meta.info_hash.to_string(), "id": 1, "name": "album"}})
    );
    let task = &d.fake.added[0];
    assert_eq!(task.category.as_deref(), Some("tv"));
    assert_eq!(task.tags, ["tv"]);
    assert_eq!(
        task.request.dir.as_deref(),
        Some("/Media/TV"),
        "the category's folder"
    );
    assert!(!task.held);
    assert!(task.unwanted.is_empty());
    assert_eq!(
        task.request.source,
        Source::Torrent {
            bytes: torrent.clone(),
            web_seeds: Vec::new()
        }
    );
    // The same torrent again: torrent-duplicate, still success.
    let again = d.ok("torrent-add", json!({"metainfo": b64(&torrent)}));
    assert_eq!(
        again,
        json!({"torrent-duplicate": {"hashString": meta.info_hash.to_string(), "id": 1, "name": "album"}})
    );
    // JSON-RPC 2.0 names.
    let again = d.rpc_ok("torrent_add", json!({"metainfo": b64(&torrent)}));
    assert_eq!(
        again["torrent_duplicate"]["hash_string"],
        meta.info_hash.to_string()
    );
    assert_eq!(d.fake.added.len(), 1);
    // Padding is optional and line breaks are skipped, as Transmission's decoder.
    let mut wrapped = b64(&torrent).trim_end_matches('=').to_owned();
    wrapped.insert(10, '\n');
    assert!(d.ok("torrent-add", json!({"metainfo": wrapped}))["torrent-duplicate"].is_object());
}

#[test]
fn torrent_add_magnet_with_download_dir_and_labels() {
    let mut d = Daemon::new(Fake::with_categories());
    // Sonarr's AddTorrentFromUrl, with its TvDirectory under the mount.
    let added = d.ok(
        "torrent-add",
        json!({"filename": MAGNET, "paused": true, "download-dir": "/mnt/cloud/Media/Shows", "labels": [" tv ", "tv", "hd"]}),
    );
    assert_eq!(added["torrent-added"]["name"], "Some.Show.S01E01.1080p");
    assert_eq!(
        added["torrent-added"]["hashString"],
        "0a3893293e27ac0490424c06de4d09242215f0a6"
    );
    let task = &d.fake.added[0];
    assert_eq!(task.request.source, Source::Uris(vec![MAGNET.into()]));
    assert_eq!(
        task.request.dir.as_deref(),
        Some("/Media/Shows"),
        "download-dir wins"
    );
    assert_eq!(task.category.as_deref(), Some("tv"));
    assert_eq!(task.tags, ["tv", "hd"], "trimmed, duplicates dropped");
    assert!(task.held);

    // A first label that is no category: a tag only, the default folder.
    d.ok(
        "torrent-add",
        json!({"filename": "https://example.org/x.torrent", "labels": ["hd", "tv"]}),
    );
    let task = &d.fake.added[1];
    assert_eq!(
        (task.category.as_deref(), task.request.dir.as_deref()),
        (None, None)
    );
    assert_eq!(
        task.request.source,
        Source::Uris(vec!["https://example.org/x.torrent".into()])
    );
    // A category without a folder: the default folder's subfolder.
    d.rpc_ok("torrent_add", json!({"filename": "ed2k://|file|a.iso|1|0123456789abcdef0123456789abcdef|/", "labels": ["movies"]}));
    let task = &d.fake.added[2];
    assert_eq!(task.request.dir.as_deref(), Some("/Downloads/movies"));

    assert_eq!(
        d.refused("torrent-add", json!({"filename": MAGNET, "labels": [" "]})),
        "labels cannot be empty"
    );
    assert_eq!(
        d.refused(
            "torrent-add",
            json!({"filename": MAGNET, "labels": ["a,b"]})
        ),
        "labels cannot contain comma (,) character"
    );
    assert_eq!(
        d.refused(
            "torrent-add",
            json!({"filename": MAGNET, "download-dir": "Media"})
        ),
        "download directory path is not absolute"
    );
    assert_eq!(
        d.rpc_err(
            "torrent_add",
            json!({"filename": MAGNET, "download_dir": "Media"})
        )["code"],
        3
    );
    assert_eq!(
        d.refused(
            "torrent-add",
            json!({"filename": MAGNET, "download-dir": "/mnt/cloud/../etc"})
        ),
        "the path \"/mnt/cloud/../etc\" has a \"..\" component"
    );
    assert_eq!(d.fake.added.len(), 3);
    // Outside the prefix: a drive path as it is.
    d.ok(
        "torrent-add",
        json!({"filename": "https://example.org/y", "download-dir": "/srv/other"}),
    );
    assert_eq!(d.fake.added[3].request.dir.as_deref(), Some("/srv/other"));
}

#[test]
fn torrent_add_files_unwanted() {
    let mut d = Daemon::new(Fake::default());
    let torrent = album();
    d.ok(
        "torrent-add",
        json!({"metainfo": b64(&torrent), "files-unwanted": [1, 2, 2], "files-wanted": [2], "priority-normal": [0]}),
    );
    assert_eq!(
        d.fake.added[0].unwanted,
        [1],
        "files-wanted wins, as in Transmission"
    );
    let got = d.ok(
        "torrent-get",
        json!({"ids": [1], "fields": ["wanted", "sizeWhenDone", "totalSize"]}),
    );
    assert_eq!(
        got["torrents"],
        json!([{"wanted": [1, 0, 1], "sizeWhenDone": 41_000, "totalSize": 61_000}])
    );
    let other = TorrentBuilder::new("other")
        .file(&["x"], vec![0; 10])
        .file(&["y"], vec![1; 10])
        .build();
    assert_eq!(
        d.refused(
            "torrent-add",
            json!({"metainfo": b64(&other), "files-unwanted": [2]})
        ),
        "file index out of range"
    );
    assert_eq!(
        d.rpc_err(
            "torrent_add",
            json!({"metainfo": b64(&other), "files_wanted": [9]})
        ),
        json!({"code": 6, "message": "file index out of range"})
    );
    assert_eq!(
        d.refused(
            "torrent-add",
            json!({"metainfo": b64(&other), "files-unwanted": [0, 1]})
        ),
        "files-unwanted leaves no file to download"
    );
    assert_eq!(
        d.refused(
            "torrent-add",
            json!({"filename": MAGNET, "files-unwanted": [0]})
        ),
        "files-unwanted needs the torrent's file list: send the .torrent file as metainfo"
    );
    // files-wanted alone changes nothing, for a magnet link too.
    d.ok(
        "torrent-add",
        json!({"filename": MAGNET, "files-wanted": [0, 5]}),
    );
    assert_eq!(d.fake.added.len(), 2);
}

#[test]
fn torrent_add_refusals() {
    let mut d = Daemon::new(Fake::default());
    let cases: &[(Value, &str)] = &[
        (json!({}), "no filename or metainfo specified"),
        (json!({"filename": "", "metainfo": ""}), "no filename or metainfo specified"),
        (json!({"filename": MAGNET, "metainfo": b64(&album())}), "filename and metainfo are both given: send one"),
        (json!({"metainfo": "not base64!!"}), "unrecognized info"),
        (json!({"metainfo": b64(b"d4:infoi1ee")}), "unrecognized info"),
        (json!({"filename": "/home/me/x.torrent"}), "unrecognized info"),
        (json!({"filename": "C:\\x.torrent"}), "unrecognized info"),
        (json!({"filename": "file:///tmp/x.torrent"}), "unrecognized info"),
        (json!({"filename": MAGNET, "cookies": "a=b"}), "not supported for cloud-drive downloads: cookies"),
        (json!({"filename": MAGNET, "peer-limit": 10, "bandwidthPriority": 1, "priority-high": [0], "sequential_download": true}),
            "not supported for cloud-drive downloads: peer-limit, priority-high, bandwidthPriority, sequential_download"),
        (json!({"filename": MAGNET, "frobnicate": 1, "ids": [1]}), "unknown arguments: frobnicate, ids"),
    ];
    for (args, expected) in cases {
        assert_eq!(d.refused("torrent-add", args.clone()), *expected, "{args}");
    }
    assert!(d.fake.added.is_empty());
    // What changes nothing is accepted.
    d.ok(
        "torrent-add",
        json!({"filename": MAGNET, "cookies": "", "bandwidthPriority": 0, "sequential_download": false, "priority-high": [], "paused": 0}),
    );
    assert_eq!(d.fake.added.len(), 1);

    // The drive's refusal, with its reason.
    d.fake.refuse = Some("123pan cannot download torrents or magnet links".into());
    assert_eq!(
        d.refused(
            "torrent-add",
            json!({"filename": "magnet:?xt=urn:btih:1111111111111111111111111111111111111111"})
        ),
        "123pan cannot download torrents or magnet links"
    );
    assert_eq!(
        d.rpc_err(
            "torrent_add",
            json!({"filename": "https://example.org/a.iso"})
        ),
        json!({"code": 5, "message": "system error", "data": {"error_string": "123pan cannot download torrents or magnet links"}})
    );
    assert_eq!(
        d.rpc_err("torrent_add", json!({"metainfo": "!!"})),
        json!({"code": 4, "message": "unrecognized info"})
    );
}

// --- torrent-get --------------------------------------------------------------------

fn gid(n: u64) -> Gid {
    Gid::new(0xa000 + n)
}

fn in_state(id: u64, state: TaskState) -> TaskView {
    let mut t = TaskView::new(gid(id), state, "/Media/TV");
    t.id = id;
    t.hash = task_hash(None, &format!("https://example.org/{id}.iso"), 0);
    t.uris = vec![format!("https://example.org/{id}.iso")];
    t.name = Some(format!("file-{id}.iso"));
    t.total_length = Some(1_000_000);
    t.added_on = 1_700_000_000;
    t
}

/// One task in each state the drive gives.
fn states() -> Vec<TaskView> {
    let mut held = in_state(1, TaskState::Queued);
    held.held = true;
    held.category = Some("tv".into());
    held.tags = vec!["hd".into()];
    let mut queued = in_state(2, TaskState::Queued);
    queued.uris = vec![MAGNET.into()];
    queued.hash = "0a3893293e27ac0490424c06de4d09242215f0a6".into();
    queued.name = None;
    queued.total_length = None;
    let mut submitting = in_state(3, TaskState::Submitting);
    submitting.progress = Progress::Percent(0);
    let mut running = in_state(4, TaskState::Running);
    running.progress = Progress::Percent(42);
    running.download_speed = 15_158;
    running.name = Some("Show.S01E02.mkv".into());
    let mut complete = in_state(5, TaskState::Complete);
    complete.uris = Vec::new();
    complete.hash = "cd8f8e5a6a8b1c1e36aa2e4e5f7b3c9a1b2c3d4e".into();
    complete.name = Some("album".into());
    complete.total_length = None;
    complete.files = vec![
        FileView {
            path: "album/a.flac".into(),
            length: 3_000_000,
            selected: true,
        },
        FileView {
            path: "album/b.flac".into(),
            length: 1_000,
            selected: false,
        },
    ];
    complete.torrent = Some(TorrentInfo {
        info_hash: Some("cd8f8e5a6a8b1c1e36aa2e4e5f7b3c9a1b2c3d4e".parse().unwrap()),
        name: Some("album".into()),
        multi_file: true,
        announce_list: vec![
            vec!["http://tracker.example.org:6969/announce".into()],
            vec!["udp://tracker.opentrackr.org:1337/announce".into()],
        ],
        comment: Some("ripped".into()),
        creation_date: Some(1_600_000_000),
        piece_length: Some(262_144),
    });
    complete.completed_on = Some(1_700_003_600);
    complete.tags = vec!["music".into()];
    let mut failed = in_state(
        6,
        TaskState::Failed(Failure {
            kind: FailureKind::NotFound,
            message: "the link is dead (404)".into(),
        }),
    );
    failed.completed_on = Some(1_700_000_100);
    let unknown = in_state(7, TaskState::UnknownOutcome);
    vec![held, queued, submitting, running, complete, failed, unknown]
}

/// Sonarr's torrent-get fields, and more that clients read.
const FIELDS: &[&str] = &[
    "id",
    "hashString",
    "name",
    "downloadDir",
    "totalSize",
    "leftUntilDone",
    "isFinished",
    "eta",
    "status",
    "secondsDownloading",
    "secondsSeeding",
    "errorString",
    "uploadedEver",
    "downloadedEver",
    "seedRatioLimit",
    "seedRatioMode",
    "seedIdleLimit",
    "seedIdleMode",
    "fileCount",
    "file-count",
    "labels",
    "error",
    "percentDone",
    "sizeWhenDone",
    "haveValid",
    "rateDownload",
    "rateUpload",
    "uploadRatio",
    "addedDate",
    "doneDate",
    "queuePosition",
    "files",
    "fileStats",
    "wanted",
    "priorities",
    "magnetLink",
    "trackers",
    "pieceCount",
    "pieceSize",
    "metadataPercentComplete",
    "primary-mime-type",
    "desiredAvailable",
    "percentComplete",
    "comment",
    "dateCreated",
    "trackerList",
    "isStalled",
];

fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            '-' => out.push('_'),
            c if c.is_ascii_uppercase() => {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    out
}

#[test]
fn torrent_get_each_state_in_both_styles() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks = states();
    let objects = d.ok("torrent-get", json!({"fields": FIELDS}));
    insta::assert_json_snapshot!("torrent_get_legacy_objects", objects);
    let table = d.ok("torrent-get", json!({"fields": FIELDS, "format": "table"}));
    insta::assert_json_snapshot!("torrent_get_legacy_table", table);
    let snake_fields: Vec<String> = FIELDS.iter().map(|f| snake(f)).collect();
    let objects = d.rpc_ok("torrent_get", json!({"fields": snake_fields}));
    insta::assert_json_snapshot!("torrent_get_jsonrpc_objects", objects);
    let table = d.rpc_ok(
        "torrent_get",
        json!({"fields": snake_fields, "format": "table"}),
    );
    insta::assert_json_snapshot!("torrent_get_jsonrpc_table", table);

    // The statuses and completion, as Sonarr's GetItems reads them.
    let torrents = d.ok(
        "torrent-get",
        json!({"fields": ["status", "isFinished", "leftUntilDone", "errorString", "error"]}),
    )["torrents"]
        .clone();
    let got: Vec<(u64, bool, u64, u64)> = torrents
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["status"].as_u64().unwrap(),
                t["isFinished"].as_bool().unwrap(),
                t["error"].as_u64().unwrap(),
                t["leftUntilDone"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, false, 0, 1_000_000),
            (3, false, 0, 0),
            (3, false, 0, 1_000_000),
            (4, false, 0, 580_000),
            (0, true, 0, 0),
            (0, false, 3, 1_000_000),
            (0, false, 3, 1_000_000),
        ]
    );
    assert_eq!(torrents[5]["errorString"], "the link is dead (404)");
    assert_eq!(
        torrents[6]["errorString"],
        "the cloud drive's answer to the add was lost; whether it made a task is unknown"
    );
    // The exact text of real numbers: 4.0.6 writes four decimals, 4.1 the shortest.
    let text = String::from_utf8(d.post(r#"{"method":"torrent-get","arguments":{"ids":[4,5],"fields":["percentDone","uploadRatio"]}}"#).body).unwrap();
    assert_eq!(
        text,
        r#"{"arguments":{"torrents":[{"percentDone":0.4200,"uploadRatio":0},{"percentDone":1,"uploadRatio":0}]},"result":"success"}"#
    );
    let text = String::from_utf8(d.post(r#"{"jsonrpc":"2.0","method":"torrent_get","params":{"ids":[4,1],"fields":["percent_done","upload_ratio"]},"id":1}"#).body).unwrap();
    assert_eq!(
        text,
        r#"{"id":1,"jsonrpc":"2.0","result":{"torrents":[{"percent_done":0.42,"upload_ratio":0.0},{"percent_done":0.0,"upload_ratio":-1.0}]}}"#
    );
}

#[test]
fn torrent_get_ids_forms() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks = states();
    let ids = |d: &mut Daemon, ids: Value| -> Vec<u64> {
        d.ok("torrent-get", json!({"ids": ids, "fields": ["id"]}))["torrents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&mut d, Value::Null), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(ids(&mut d, json!(4)), [4]);
    assert_eq!(ids(&mut d, json!(99)), Vec::<u64>::new());
    assert_eq!(ids(&mut d, json!(-1)), Vec::<u64>::new());
    let upper = "0A3893293E27AC0490424C06DE4D09242215F0A6";
    assert_eq!(
        ids(&mut d, json!(upper)),
        [2],
        "Sonarr sends the hash it read, any case"
    );
    assert_eq!(ids(&mut d, json!([5, upper, 99, "nope", 5])), [5, 2]);
    assert_eq!(
        ids(&mut d, json!([MAGNET])),
        [2],
        "a magnet link names its torrent"
    );
    assert_eq!(ids(&mut d, json!("recently-active")), [1, 2, 3, 4, 5, 6, 7]);
    // 4.0.6 also reads a lone `id`.
    let got = d.ok("torrent-get", json!({"id": 3, "fields": ["id"]}));
    assert_eq!(got["torrents"], json!([{"id": 3}]));
    // Unknown field names are skipped (Sonarr asks for Vuze's fileCount).
    let got = d.ok(
        "torrent-get",
        json!({"ids": [1], "fields": ["fileCount", "id", "id", "nonsense"]}),
    );
    assert_eq!(got["torrents"], json!([{"id": 1}]));
    let got = d.ok("torrent-get", json!({"ids": [1], "fields": []}));
    assert_eq!(got["torrents"], json!([{}]));
    // Fields are required.
    let answer = d.legacy("torrent-get", json!({"ids": [1]}));
    assert_eq!(answer["result"], "no fields specified");
    assert_eq!(answer["arguments"], json!({"torrents": []}));
    let error = d.rpc_err("torrent_get", json!({"fields": ["hashString"]}));
    assert_eq!(error["data"]["error_string"], "no fields specified");
    // queuePosition is the position among all tasks whatever is asked.
    let got = d.ok(
        "torrent-get",
        json!({"ids": [6, 2], "fields": ["id", "queuePosition"]}),
    );
    assert_eq!(
        got["torrents"],
        json!([{"id": 6, "queuePosition": 5}, {"id": 2, "queuePosition": 1}])
    );
    // The table format: the names first, in the order asked.
    let got = d.ok(
        "torrent-get",
        json!({"ids": [4], "fields": ["name", "id"], "format": "table"}),
    );
    assert_eq!(
        got["torrents"],
        json!([["name", "id"], ["Show.S01E02.mkv", 4]])
    );
    let got = d.rpc_ok(
        "torrent_get",
        json!({"ids": [], "fields": ["name"], "format": "table"}),
    );
    assert_eq!(got["torrents"], json!([["name"]]));
}

#[test]
fn transmission_rpc_reads_every_field_it_knows() {
    // transmission-rpc asks for every field of TORRENT_GET_ARGS valid at rpc-version 17.
    let all = [
        "activityDate",
        "addedDate",
        "availability",
        "bandwidthPriority",
        "comment",
        "corruptEver",
        "creator",
        "dateCreated",
        "desiredAvailable",
        "doneDate",
        "downloadDir",
        "downloadedEver",
        "downloadLimit",
        "downloadLimited",
        "editDate",
        "error",
        "errorString",
        "eta",
        "etaIdle",
        "files",
        "fileStats",
        "group",
        "hashString",
        "haveUnchecked",
        "haveValid",
        "honorsSessionLimits",
        "id",
        "isFinished",
        "isPrivate",
        "isStalled",
        "labels",
        "leftUntilDone",
        "magnetLink",
        "manualAnnounceTime",
        "maxConnectedPeers",
        "metadataPercentComplete",
        "name",
        "peer-limit",
        "peers",
        "peersConnected",
        "peersFrom",
        "peersGettingFromUs",
        "peersSendingToUs",
        "percentComplete",
        "percentDone",
        "pieces",
        "pieceCount",
        "pieceSize",
        "priorities",
        "primary-mime-type",
        "queuePosition",
        "rateDownload",
        "rateUpload",
        "recheckProgress",
        "secondsDownloading",
        "secondsSeeding",
        "seedIdleLimit",
        "seedIdleMode",
        "seedRatioLimit",
        "seedRatioMode",
        "sizeWhenDone",
        "startDate",
        "status",
        "trackers",
        "trackerStats",
        "totalSize",
        "torrentFile",
        "uploadedEver",
        "uploadLimit",
        "uploadLimited",
        "uploadRatio",
        "wanted",
        "webseeds",
        "webseedsSendingToUs",
        "file-count",
        "trackerList",
    ];
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks = states();
    let got = d.ok("torrent-get", json!({"fields": all.to_vec()}));
    for torrent in got["torrents"].as_array().unwrap() {
        let keys: BTreeSet<&str> = torrent
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            all.iter().copied().collect(),
            "every field is answered"
        );
    }
    let complete = &got["torrents"][4];
    assert_eq!(complete["pieceCount"], 12);
    assert_eq!(complete["pieces"], "//A=", "12 bits set");
    assert_eq!(complete["availability"].as_array().unwrap().len(), 12);
    assert_eq!(complete["trackerStats"][1]["sitename"], "opentrackr");
    assert_eq!(
        complete["trackerStats"][1]["host"],
        "tracker.opentrackr.org:1337"
    );
    assert_eq!(
        complete["trackerStats"][0]["scrape"],
        "http://tracker.example.org:6969/scrape"
    );
    assert_eq!(complete["peersFrom"]["fromTracker"], 0);
    assert_eq!(
        complete["trackerList"],
        "http://tracker.example.org:6969/announce\n\nudp://tracker.opentrackr.org:1337/announce\n"
    );
    assert!(complete["magnetLink"].as_str().unwrap().starts_with(
        "magnet:?xt=urn:btih:cd8f8e5a6a8b1c1e36aa2e4e5f7b3c9a1b2c3d4e&dn=album&tr=http%3A%2F%2F"
    ));
    // Transmission-rpc's get_recently_active_torrents reads `removed`.
    let got = d.ok(
        "torrent-get",
        json!({"fields": ["id"], "ids": "recently-active"}),
    );
    assert_eq!(got["removed"], json!([]));
}

#[test]
fn torrent_get_over_ten_thousand_tasks() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks = (1..=10_000)
        .map(|i| {
            let mut t = in_state(i, TaskState::Running);
            t.progress = Progress::Percent((i % 100) as u8);
            t.download_speed = i;
            t
        })
        .collect();
    let body = json!({"method": "torrent-get", "arguments": {"fields": [
        "id", "hashString", "name", "downloadDir", "totalSize", "leftUntilDone", "isFinished",
        "eta", "status", "errorString", "labels", "percentDone"]}})
    .to_string();
    let started = Instant::now();
    let reply = d.post(&body);
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200);
    let answer: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        answer["arguments"]["torrents"].as_array().unwrap().len(),
        10_000
    );
    assert_eq!(answer["arguments"]["torrents"][9_999]["eta"], 100);
    eprintln!(
        "torrent-get of 10,000 tasks: {elapsed:?}, {} bytes",
        reply.body.len()
    );
}

// --- torrent-remove, -start, -stop, -set, -set-location, queue ----------------------

#[test]
fn torrent_remove_with_and_without_local_data() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks = states();
    d.ok(
        "torrent-remove",
        json!({"ids": [1, "0a3893293e27ac0490424c06de4d09242215f0a6"], "delete-local-data": true}),
    );
    assert_eq!(d.fake.deleted, [(gid(1), true), (gid(2), true)]);
    d.rpc_ok("torrent_remove", json!({"ids": 3}));
    assert_eq!(d.fake.deleted[2], (gid(3), false));
    // torrent-get "recently-active" lists what was removed here.
    let got = d.ok(
        "torrent-get",
        json!({"fields": ["id"], "ids": "recently-active"}),
    );
    assert_eq!(got["removed"], json!([1, 2, 3]));
    assert_eq!(got["torrents"].as_array().unwrap().len(), 4);
    let got = d.rpc_ok(
        "torrent_get",
        json!({"fields": ["id"], "ids": "recently_active"}),
    );
    assert_eq!(got["removed"], json!([1, 2, 3]));
    // Unknown IDs are skipped; a refusal is the error, nothing changed.
    d.ok("torrent-remove", json!({"ids": [99]}));
    d.fake.refuse_deletes = true;
    assert_eq!(
        d.refused(
            "torrent-remove",
            json!({"ids": [4], "delete-local-data": true})
        ),
        "this drive cannot delete files"
    );
    assert_eq!(d.fake.tasks.len(), 4);
    assert_eq!(
        d.refused(
            "torrent-remove",
            json!({"ids": [4], "deleteLocalData": true})
        ),
        "unknown arguments: deleteLocalData"
    );
}

#[test]
fn start_and_stop_hold_what_the_drive_does_not_have() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks = states();
    d.ok("torrent-start", json!({"ids": [1]}));
    assert!(!d.fake.task(gid(1)).held);
    d.ok("torrent-stop", json!({"ids": [1, 2, 4, 5]}));
    assert!(d.fake.task(gid(1)).held && d.fake.task(gid(2)).held);
    assert_eq!(
        d.fake.task(gid(4)).state,
        TaskState::Running,
        "the drive has it"
    );
    let got = d.ok("torrent-get", json!({"ids": [2, 4], "fields": ["status"]}));
    assert_eq!(got["torrents"], json!([{"status": 0}, {"status": 4}]));
    d.rpc_ok("torrent_start_now", json!({}));
    assert!(!d.fake.task(gid(1)).held && !d.fake.task(gid(2)).held);
    for method in [
        "torrent-verify",
        "torrent-reannounce",
        "queue-move-top",
        "queue-move-up",
        "queue-move-down",
        "queue-move-bottom",
    ] {
        assert_eq!(
            d.ok(
                method,
                json!({"ids": ["0a3893293e27ac0490424c06de4d09242215f0a6"]})
            ),
            json!({}),
            "{method}"
        );
    }
}

#[test]
fn torrent_set_labels_and_what_it_refuses() {
    let mut d = Daemon::new(Fake::with_categories());
    d.fake.tasks = states();
    let hash = d.fake.task(gid(4)).hash.clone();
    // Sonarr's SetTorrentSeedingConfiguration after an add: accepted, changes nothing.
    d.ok("torrent-set", json!({"ids": [hash], "seedRatioLimit": 1.0, "seedRatioMode": 1, "seedIdleLimit": 30, "seedIdleMode": 1}));
    // Sonarr's MarkItemAsImported: the labels, the category from the first.
    d.ok(
        "torrent-set",
        json!({"ids": [hash], "labels": ["tv", "imported"]}),
    );
    let task = d.fake.task(gid(4));
    assert_eq!(
        (task.category.as_deref(), task.tags.clone()),
        (Some("tv"), vec!["tv".to_owned(), "imported".to_owned()])
    );
    d.rpc_ok(
        "torrent_set",
        json!({"ids": [4], "labels": ["tv-imported"]}),
    );
    let task = d.fake.task(gid(4));
    assert_eq!(
        (task.category.as_deref(), task.tags.clone()),
        (None, vec!["tv-imported".to_owned()])
    );
    let got = d.ok("torrent-get", json!({"ids": [1], "fields": ["labels"]}));
    assert_eq!(
        got["torrents"],
        json!([{"labels": ["tv", "hd"]}]),
        "the category first"
    );

    // What asks for what is already so is accepted.
    d.ok("torrent-set", json!({"ids": [5], "bandwidthPriority": 0, "downloadLimited": false, "files-wanted": [0], "files-unwanted": [1], "priority-normal": [], "location": "/mnt/cloud/Media/TV/"}));
    assert_eq!(
        d.refused("torrent-set", json!({"ids": [5], "files-wanted": [1], "downloadLimit": 10, "location": "/mnt/cloud/Other", "trackerAdd": ["http://t/announce"]})),
        "not supported for cloud-drive downloads: files-wanted, location, downloadLimit, trackerAdd"
    );
    assert_eq!(
        d.refused("torrent-set", json!({"ids": [5], "files-unwanted": [2]})),
        "file index out of range"
    );
    assert_eq!(
        d.refused(
            "torrent-set",
            json!({"ids": [5], "labels": ["x"], "queuePosition": 0})
        ),
        "not supported for cloud-drive downloads: queuePosition"
    );
    assert_eq!(d.fake.task(gid(5)).tags, ["music"], "nothing changed");
    assert_eq!(
        d.refused("torrent-set", json!({"ids": [5], "frobnicate": 1})),
        "unknown arguments: frobnicate"
    );
    let error = d.rpc_err("torrent_set", json!({"ids": [5], "peer_limit": 5}));
    assert_eq!(error["code"], -32602);
    assert_eq!(
        error["data"]["error_string"],
        "not supported for cloud-drive downloads: peer_limit"
    );
}

#[test]
fn torrent_set_location_is_refused() {
    let mut d = Daemon::new(Fake::default());
    d.fake.tasks = states();
    assert_eq!(
        d.refused(
            "torrent-set-location",
            json!({"ids": [4], "location": "/mnt/cloud/Elsewhere", "move": true})
        ),
        "a cloud-drive task cannot be moved: its files stay where the drive stored them"
    );
    assert_eq!(
        d.ok(
            "torrent-set-location",
            json!({"ids": [4], "location": "/mnt/cloud/Media/TV"})
        ),
        json!({})
    );
    assert_eq!(
        d.refused("torrent-set-location", json!({"ids": [4]})),
        "no location"
    );
    assert_eq!(
        d.refused("torrent-set-location", json!({"ids": [4], "location": "x"})),
        "new location path is not absolute"
    );
    assert_eq!(
        d.rpc_err(
            "torrent_set_location",
            json!({"ids": [4], "location": "/x"})
        )["code"],
        -32602
    );
    assert_eq!(d.fake.task(gid(4)).dir, "/Media/TV");
}

#[test]
fn reports_paths_without_a_prefix_as_the_drive_has_them() {
    let mut d = Daemon::new(Fake::with_categories());
    d.config.report_prefix = None;
    d.fake.tasks = states();
    let got = d.ok(
        "torrent-get",
        json!({"ids": [4], "fields": ["downloadDir"]}),
    );
    assert_eq!(got["torrents"], json!([{"downloadDir": "/Media/TV"}]));
    assert_eq!(
        d.ok("session-get", json!({"fields": ["download-dir"]})),
        json!({"download-dir": "/Downloads"})
    );
    d.ok(
        "torrent-add",
        json!({"filename": "https://example.org/new.iso", "download-dir": "/Anywhere"}),
    );
    assert_eq!(d.fake.added[0].request.dir.as_deref(), Some("/Anywhere"));
}

#[test]
fn the_module_is_reachable_by_its_path() {
    assert_eq!(transmission::RPC_PATH, "/transmission/rpc");
    assert_eq!(transmission::SESSION_HEADER, "X-Transmission-Session-Id");
}
