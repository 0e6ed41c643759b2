//! The aria2 JSON-RPC layer against an in-memory task store, with bodies written as
//! AriaNg and aria2p send them.

mod common;

use std::ops::Range;

use offline_proto::aria2::{
    self, AddRequest, Caller, Config, Downloads, Event, Failure, FailureKind, FileView, Gid,
    Progress, Queue, Reply, Source, StoreError, TaskState, TaskView, TorrentInfo, MAX_BATCH_LEN,
    MAX_BODY_BYTES, METHODS,
};
use offline_proto::torrent::InfoHash;
use offline_proto::Secret;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Tasks in a vector: each queue is the vector's order of the tasks in it.
#[derive(Default)]
struct Fake {
    tasks: Vec<TaskView>,
    added: Vec<AddRequest>,
    refuse_adds: bool,
}

impl Fake {
    fn with(tasks: Vec<TaskView>) -> Self {
        Self {
            tasks,
            ..Self::default()
        }
    }

    fn in_queue(&self, queue: Queue) -> Vec<&TaskView> {
        self.tasks
            .iter()
            .filter(|t| t.state.queue() == queue)
            .collect()
    }
}

impl Downloads for Fake {
    fn add(&mut self, request: AddRequest) -> Result<Gid, StoreError> {
        if self.refuse_adds {
            return Err(StoreError("the queue is full".into()));
        }
        let gid = Gid::new(0x1000 + self.added.len() as u64);
        let mut task = TaskView::new(
            gid,
            TaskState::Queued,
            request.dir.clone().unwrap_or_else(|| "/default".into()),
        );
        if let Source::Uris(uris) = &request.source {
            task.uris = uris.clone();
        }
        self.tasks.push(task);
        self.added.push(request);
        Ok(gid)
    }

    fn task(&self, gid: Gid) -> Option<TaskView> {
        self.tasks.iter().find(|t| t.gid == gid).cloned()
    }

    fn count(&self, queue: Queue) -> usize {
        self.in_queue(queue).len()
    }

    fn list(&self, queue: Queue, range: Range<usize>) -> Vec<&TaskView> {
        self.in_queue(queue)[range].to_vec()
    }

    fn remove(&mut self, gid: Gid, _force: bool) -> Result<(), StoreError> {
        let at = self.tasks.iter().position(|t| t.gid == gid).unwrap();
        let mut task = self.tasks.remove(at);
        task.state = TaskState::Removed;
        self.tasks.push(task); // the most recently stopped
        Ok(())
    }

    fn remove_result(&mut self, gid: Gid) -> Result<(), StoreError> {
        self.tasks.retain(|t| t.gid != gid);
        Ok(())
    }

    fn purge_results(&mut self) {
        self.tasks.retain(|t| t.state.queue() != Queue::Stopped);
    }
}

const SECRET: &str = "s3cret";
const GID_A: &str = "2089b05ecca3d829";

fn config(secret: Option<&str>) -> Config {
    Config {
        secret: secret.map(Secret::new),
        version: "0.1.0".into(),
        session_id: "cd6a3bc6a1de28eb5bfa181e5f6b916d44af31a9".into(),
        default_dir: "/offline".into(),
    }
}

fn send(store: &mut Fake, config: &Config, body: &str) -> Reply {
    aria2::handle_body(body.as_bytes(), store, config)
}

/// The answer's JSON, sent with no secret configured.
fn rpc(store: &mut Fake, body: &str) -> Value {
    serde_json::from_str(&send(store, &config(None), body).body).unwrap()
}

/// The `result` of calling `method` with `params`.
fn result(store: &mut Fake, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": "q", "method": method, "params": params});
    let answer = rpc(store, &body.to_string());
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

/// The error message of calling `method` with `params` (the code must be 1).
fn error(store: &mut Fake, method: &str, params: Value) -> String {
    let body = json!({"jsonrpc": "2.0", "id": "q", "method": method, "params": params});
    let answer = rpc(store, &body.to_string());
    assert_eq!(answer["error"]["code"], 1, "{method}: {answer}");
    answer["error"]["message"].as_str().unwrap().to_owned()
}

fn gid(text: &str) -> Gid {
    text.parse().unwrap()
}

/// An HTTP download the drive is fetching.
fn running() -> TaskView {
    let mut t = TaskView::new(gid(GID_A), TaskState::Running, "/Movies/2026");
    t.uris = vec![
        "http://example.org/file".into(),
        "http://mirror/file".into(),
    ];
    t.name = Some("file".into());
    t.total_length = Some(34_896_138);
    t.progress = Progress::Bytes(901_120);
    t.download_speed = 15_158;
    t
}

/// A complete two-file torrent, one file unselected.
fn torrent() -> TaskView {
    let mut t = TaskView::new(gid("00000000000000bb"), TaskState::Complete, "/BT");
    t.uris = vec!["magnet:?xt=urn:btih:0a3893293e27ac0490424c06de4d09242215f0a6".into()];
    t.name = Some("album".into());
    t.files = vec![
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
    t.torrent = Some(TorrentInfo {
        info_hash: Some(
            "0a3893293e27ac0490424c06de4d09242215f0a6"
                .parse::<InfoHash>()
                .unwrap(),
        ),
        name: Some("album".into()),
        multi_file: true,
        announce_list: vec![vec!["http://tracker/announce".into()]],
        comment: Some("c".into()),
        creation_date: Some(1_700_000_000),
        piece_length: Some(262_144),
    });
    t
}

fn in_state(n: u64, state: TaskState) -> TaskView {
    TaskView::new(Gid::new(n), state, "/d")
}

// --- The envelope -------------------------------------------------------------------

#[test]
fn add_uri_as_aria2p_sends_it() {
    let mut store = Fake::default();
    let reply = send(
        &mut store,
        &config(Some(SECRET)),
        r#"{"jsonrpc":"2.0","id":"qwer","method":"aria2.addUri","params":["token:s3cret",["http://a/b"],{"dir":"/x","out":"b.bin","split":"4"}]}"#,
    );
    assert_eq!(
        reply.body,
        r#"{"id":"qwer","jsonrpc":"2.0","result":"0000000000001000"}"#
    );
    assert_eq!((reply.http_status, reply.unauthorized), (200, false));
    assert_eq!(
        store.added,
        [AddRequest {
            source: Source::Uris(vec!["http://a/b".into()]),
            dir: Some("/x".into()),
            out: Some("b.bin".into()),
            position: None,
        }]
    );
}

#[test]
fn errors_are_written_as_aria2_writes_them() {
    let mut store = Fake::default();
    let reply = send(
        &mut store,
        &config(None),
        r#"{"jsonrpc":"2.0","id":1,"method":"aria2.tellStatus","params":["2089b05ecca3d829"]}"#,
    );
    assert_eq!(
        reply.body,
        r#"{"id":1,"jsonrpc":"2.0","error":{"code":1,"message":"No such download for GID#2089b05ecca3d829"}}"#
    );
    assert_eq!(reply.http_status, 400);
}

#[test]
fn envelope_errors() {
    let mut store = Fake::default();
    let cases: [(&str, Value, i64, u16); 7] = [
        ("{not json", Value::Null, -32700, 500),
        ("\"aria2.getVersion\"", Value::Null, -32600, 400),
        (r#"{"method":"aria2.getVersion"}"#, Value::Null, -32600, 400),
        (r#"{"id":"x","method":7}"#, json!("x"), -32600, 400),
        (r#"{"id":"x"}"#, json!("x"), -32600, 400),
        (
            r#"{"id":"x","method":"aria2.getVersion","params":{"a":1}}"#,
            json!("x"),
            -32602,
            500,
        ),
        ("\u{0}", Value::Null, -32700, 500),
    ];
    for (body, id, code, status) in cases {
        let reply = send(&mut store, &config(None), body);
        let answer: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(answer["id"], id, "{body}");
        assert_eq!(answer["jsonrpc"], "2.0", "{body}");
        assert_eq!(answer["error"]["code"], code, "{body}");
        assert_eq!(reply.http_status, status, "{body}");
    }
    let answer = rpc(&mut store, "{not json");
    assert_eq!(answer["error"]["message"], "Parse error.");
}

#[test]
fn jsonrpc_1_style_ids_and_null_params_are_served() {
    let mut store = Fake::default();
    let answer = rpc(&mut store, r#"{"id":7,"method":"aria2.getVersion"}"#);
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["version"], "0.1.0");
    let answer = rpc(
        &mut store,
        r#"{"jsonrpc":"2.0","id":null,"method":"aria2.saveSession","params":null}"#,
    );
    assert_eq!(
        answer,
        json!({"id": null, "jsonrpc": "2.0", "result": "OK"})
    );
}

#[test]
fn batches_answer_in_order_and_skip_non_objects() {
    let mut store = Fake::default();
    let reply = send(
        &mut store,
        &config(None),
        r#"[{"jsonrpc":"2.0","id":"qwer","method":"aria2.addUri","params":[["http://example.org"]]},
            42,
            {"jsonrpc":"2.0","id":"asdf","method":"aria2.tellActive"},
            {"jsonrpc":"2.0","method":"aria2.tellActive"}]"#,
    );
    assert_eq!(reply.http_status, 200);
    let answers: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        answers,
        json!([
            {"id": "qwer", "jsonrpc": "2.0", "result": "0000000000001000"},
            {"id": "asdf", "jsonrpc": "2.0", "result": []},
            {"id": null, "jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request."}},
        ])
    );
    assert_eq!(send(&mut store, &config(None), "[]").body, "[]");
}

#[test]
fn bounds_refuse_the_whole_body_before_executing_anything() {
    let mut store = Fake::default();
    let call = r#"{"id":1,"method":"aria2.addUri","params":[["http://a/b"]]}"#;
    let batch = |n: usize| format!("[{}]", vec![call; n].join(","));

    let answers: Value =
        serde_json::from_str(&send(&mut store, &config(None), &batch(MAX_BATCH_LEN)).body).unwrap();
    assert_eq!(answers.as_array().unwrap().len(), MAX_BATCH_LEN);
    store.added.clear();

    let answer = rpc(&mut store, &batch(MAX_BATCH_LEN + 1));
    assert_eq!(answer["error"]["code"], -32600);
    assert_eq!(answer["id"], Value::Null);
    assert!(store.added.is_empty());

    let mut big =
        String::from(r#"{"id":1,"method":"aria2.addUri","params":[["http://a/b"]],"pad":""#);
    big.push_str(&"x".repeat(MAX_BODY_BYTES));
    big.push_str("\"}");
    let answer = rpc(&mut store, &big);
    assert_eq!(answer["error"]["code"], -32600);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1048576"));
    assert!(store.added.is_empty());
}

// --- The secret ---------------------------------------------------------------------

#[test]
fn token_rules() {
    let mut store = Fake::default();
    let secret = config(Some(SECRET));
    let call = |params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":"t","method":"aria2.getGlobalStat","params":{params}}}"#)
    };
    for params in [
        "[]",
        r#"["token:wrong"]"#,
        r#"["token:s3cre"]"#,
        r#"["token:s3cret!"]"#,
        r#"["s3cret"]"#,
    ] {
        let reply = send(&mut store, &secret, &call(params));
        assert_eq!(
            reply.body, r#"{"id":"t","jsonrpc":"2.0","error":{"code":1,"message":"Unauthorized"}}"#,
            "{params}"
        );
        assert!(reply.unauthorized);
        assert_eq!(reply.http_status, 400);
    }
    let reply = send(&mut store, &secret, &call(r#"["token:s3cret"]"#));
    assert!(reply.body.contains("numActive"), "{}", reply.body);

    // Without a secret, a token is taken off all the same.
    let answer = rpc(
        &mut store,
        r#"{"jsonrpc":"2.0","id":1,"method":"aria2.tellWaiting","params":["token:anything",0,10]}"#,
    );
    assert_eq!(answer["result"], json!([]));

    // An unknown method is refused for its token first, as aria2 does.
    let reply = send(&mut store, &secret, r#"{"id":1,"method":"aria2.shutdown"}"#);
    assert!(reply.body.contains("Unauthorized"));
}

#[test]
fn an_authenticated_caller_needs_no_token() {
    let mut store = Fake::default();
    let secret = config(Some(SECRET));
    let body = r#"[{"jsonrpc":"2.0","id":1,"method":"aria2.getGlobalStat"},
        {"jsonrpc":"2.0","id":2,"method":"aria2.tellActive","params":["token:wrong"]},
        {"jsonrpc":"2.0","id":3,"method":"system.multicall","params":[[{"methodName":"aria2.getVersion"}]]}]"#;
    let reply =
        aria2::handle_body_from(body.as_bytes(), &mut store, &secret, Caller::Authenticated);
    assert!(!reply.unauthorized, "{}", reply.body);
    let answer: Value = serde_json::from_str(&reply.body).unwrap();
    assert!(answer[0]["result"]["numActive"].is_string(), "{answer}");
    assert_eq!(answer[1]["result"], json!([]));
    assert_eq!(answer[2]["result"][0][0]["version"], "0.1.0");
    // The same body from an anonymous caller: every call refused.
    let reply = aria2::handle_body_from(body.as_bytes(), &mut store, &secret, Caller::Anonymous);
    assert!(reply.unauthorized);
    assert_eq!(reply, send(&mut store, &secret, body));
}

#[test]
fn list_methods_and_notifications_need_no_token() {
    let mut store = Fake::default();
    let secret = config(Some(SECRET));
    let reply = send(
        &mut store,
        &secret,
        r#"{"jsonrpc":"2.0","id":"q","method":"system.listMethods"}"#,
    );
    let answer: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer["result"], json!(METHODS));
    let reply = send(
        &mut store,
        &secret,
        r#"{"jsonrpc":"2.0","id":"q","method":"system.listNotifications","params":["token:wrong"]}"#,
    );
    let answer: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        answer["result"],
        json!([
            "aria2.onDownloadStart",
            "aria2.onDownloadPause",
            "aria2.onDownloadStop",
            "aria2.onDownloadComplete",
            "aria2.onDownloadError",
            "aria2.onBtDownloadComplete"
        ])
    );
}

#[test]
fn multicall_checks_the_token_of_each_call() {
    let mut store = Fake::default();
    let reply = send(
        &mut store,
        &config(Some(SECRET)),
        r#"{"jsonrpc":"2.0","id":"qwer","method":"system.multicall","params":[[
            {"methodName":"aria2.addUri","params":["token:s3cret",["http://example.org"]]},
            {"methodName":"aria2.addUri","params":["token:nope",["http://example.org"]]},
            {"methodName":"aria2.getVersion"},
            {"methodName":"system.multicall","params":[[]]},
            {"params":[]},
            "aria2.getVersion",
            {"methodName":"system.listMethods"}
        ]]}"#,
    );
    assert!(reply.unauthorized);
    assert_eq!(reply.http_status, 200);
    let answer: Value = serde_json::from_str(&reply.body).unwrap();
    let unauthorized = json!({"code": 1, "message": "Unauthorized"});
    let results = answer["result"].as_array().unwrap();
    assert_eq!(results[0], json!(["0000000000001000"]));
    assert_eq!(results[1], unauthorized);
    assert_eq!(results[2], unauthorized);
    assert_eq!(
        results[3],
        json!({"code": 1, "message": "Recursive system.multicall forbidden."})
    );
    assert_eq!(
        results[4],
        json!({"code": 1, "message": "Missing methodName."})
    );
    assert_eq!(
        results[5],
        json!({"code": 1, "message": "system.multicall expected struct."})
    );
    assert_eq!(results[6], json!([METHODS]));
    assert_eq!(store.added.len(), 1);

    // The token does not go outside the array.
    let mut store = Fake::default();
    let message = error(&mut store, "system.multicall", json!(["token:x", []]));
    assert_eq!(message, "The parameter at 0 has wrong type.");
    let message = error(
        &mut store,
        "system.multicall",
        json!([vec![json!({}); MAX_BATCH_LEN + 1]]),
    );
    assert!(message.contains("1000"), "{message}");
}

// --- Methods ------------------------------------------------------------------------

#[test]
fn every_listed_method_is_served() {
    for method in METHODS {
        let mut store = Fake::with(vec![running()]);
        let body = json!({"id": 1, "method": method, "params": []}).to_string();
        let answer = rpc(&mut store, &body);
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(!message.starts_with("No such method"), "{method}: {answer}");
    }
    let mut store = Fake::default();
    for method in [
        "aria2.shutdown",
        "aria2.addMetalink",
        "aria2.changePosition",
        "nope",
    ] {
        assert_eq!(
            error(&mut store, method, json!([])),
            format!("No such method: {method}")
        );
    }
}

#[test]
fn add_uri_parameters() {
    let mut store = Fake::default();
    assert_eq!(
        result(
            &mut store,
            "aria2.addUri",
            json!([["magnet:?xt=urn:btih:abc", 5], {}, 0])
        ),
        "0000000000001000"
    );
    assert_eq!(
        store.added[0].source,
        Source::Uris(vec!["magnet:?xt=urn:btih:abc".into()])
    );
    assert_eq!(
        (store.added[0].dir.as_deref(), store.added[0].position),
        (None, Some(0))
    );
    let cases = [
        (json!([]), "The parameter at 0 is required but missing."),
        (json!(["http://a/b"]), "The parameter at 0 has wrong type."),
        (json!([[]]), "URI is not provided."),
        (json!([[1, 2]]), "URI is not provided."),
        (
            json!([["http://a/b"], []]),
            "The parameter at 1 has wrong type.",
        ),
        (
            json!([["http://a/b"], {}, -1]),
            "Position must be greater than or equal to 0.",
        ),
        (
            json!([["http://a/b"], {}, 1.5]),
            "The parameter at 2 has wrong type.",
        ),
    ];
    for (params, message) in cases {
        assert_eq!(
            error(&mut store, "aria2.addUri", params.clone()),
            message,
            "{params}"
        );
    }
    store.refuse_adds = true;
    assert_eq!(
        error(&mut store, "aria2.addUri", json!([["http://a/b"]])),
        "the queue is full"
    );
}

#[test]
fn add_torrent_decodes_base64() {
    let mut store = Fake::default();
    // "d4:infod4:name1:aee": padded (as Python's base64 writes it) and not.
    for b64 in ["ZDQ6aW5mb2Q0Om5hbWUxOmFlZQ==", "ZDQ6aW5mb2Q0Om5hbWUxOmFlZQ"] {
        result(
            &mut store,
            "aria2.addTorrent",
            json!(["token:ignored", b64, ["http://seed/"], {"dir": "/BT"}, 3]),
        );
    }
    for added in &store.added {
        assert_eq!(
            added.source,
            Source::Torrent {
                bytes: b"d4:infod4:name1:aee".to_vec(),
                web_seeds: vec!["http://seed/".into()],
            }
        );
        assert_eq!(
            (added.dir.as_deref(), added.position),
            (Some("/BT"), Some(3))
        );
    }
    assert_eq!(
        error(&mut store, "aria2.addTorrent", json!(["not base64!"])),
        "The parameter at 0 is not valid base64."
    );
    assert_eq!(
        error(&mut store, "aria2.addTorrent", json!([""])),
        "No Torrent to download."
    );
    assert_eq!(
        error(&mut store, "aria2.addTorrent", json!([["x"]])),
        "The parameter at 0 has wrong type."
    );
}

#[test]
fn tell_status_of_a_running_http_download() {
    let mut store = Fake::with(vec![running()]);
    let status = result(&mut store, "aria2.tellStatus", json!([GID_A]));
    assert_eq!(
        status,
        json!({
            "gid": GID_A,
            "status": "active",
            "totalLength": "34896138",
            "completedLength": "901120",
            "uploadLength": "0",
            "downloadSpeed": "15158",
            "uploadSpeed": "0",
            "connections": "1",
            "pieceLength": "1048576",
            "numPieces": "34",
            "dir": "/Movies/2026",
            "files": [{
                "index": "1",
                "path": "/Movies/2026/file",
                "length": "34896138",
                "completedLength": "901120",
                "selected": "true",
                "uris": [
                    {"status": "used", "uri": "http://example.org/file"},
                    {"status": "waiting", "uri": "http://mirror/file"},
                ],
            }],
        })
    );
    // Upper case GIDs are the same download.
    let upper = result(
        &mut store,
        "aria2.tellStatus",
        json!([GID_A.to_uppercase()]),
    );
    assert_eq!(upper, status);
}

#[test]
fn tell_status_keys_filter() {
    let mut store = Fake::with(vec![running()]);
    assert_eq!(
        result(
            &mut store,
            "aria2.tellStatus",
            json!([
                GID_A,
                ["gid", "totalLength", "completedLength", "nonsense", 3]
            ])
        ),
        json!({"gid": GID_A, "totalLength": "34896138", "completedLength": "901120"})
    );
    let all = result(&mut store, "aria2.tellStatus", json!([GID_A]));
    assert_eq!(
        result(&mut store, "aria2.tellStatus", json!([GID_A, []])),
        all
    );
    assert_eq!(
        error(&mut store, "aria2.tellStatus", json!([GID_A, "gid"])),
        "The parameter at 1 has wrong type."
    );
    assert_eq!(
        result(&mut store, "aria2.tellActive", json!([["status"]])),
        json!([{"status": "active"}])
    );
}

#[test]
fn tell_status_of_a_complete_torrent() {
    let mut store = Fake::with(vec![torrent()]);
    let status = result(&mut store, "aria2.tellStatus", json!(["00000000000000BB"]));
    assert_eq!(
        status,
        json!({
            "gid": "00000000000000bb",
            "status": "complete",
            "totalLength": "3001000",
            "completedLength": "3001000",
            "uploadLength": "0",
            "downloadSpeed": "0",
            "uploadSpeed": "0",
            "connections": "0",
            "pieceLength": "262144",
            "numPieces": "12",
            "dir": "/BT",
            "errorCode": "0",
            "errorMessage": "",
            "infoHash": "0a3893293e27ac0490424c06de4d09242215f0a6",
            "numSeeders": "0",
            "seeder": "false",
            "bittorrent": {
                "announceList": [["http://tracker/announce"]],
                "comment": "c",
                "creationDate": 1_700_000_000,
                "mode": "multi",
                "info": {"name": "album"},
            },
            "files": [
                {"index": "1", "path": "/BT/album/a.flac", "length": "3000000",
                 "completedLength": "3000000", "selected": "true", "uris": []},
                {"index": "2", "path": "/BT/album/b.flac", "length": "1000",
                 "completedLength": "0", "selected": "false", "uris": []},
            ],
        })
    );
    assert_eq!(
        result(&mut store, "aria2.getFiles", json!(["00000000000000bb"])),
        status["files"]
    );
}

#[test]
fn stopped_downloads_carry_error_codes() {
    let failed = TaskState::Failed(Failure {
        kind: FailureKind::NotFound,
        message: "the link is dead".into(),
    });
    let cases = [
        (failed, "error", "3", "the link is dead"),
        (TaskState::Removed, "removed", "31", ""),
        (TaskState::Complete, "complete", "0", ""),
    ];
    for (state, status, code, message) in cases {
        let mut store = Fake::with(vec![in_state(1, state)]);
        let got = result(
            &mut store,
            "aria2.tellStatus",
            json!(["0000000000000001", ["status", "errorCode", "errorMessage"]]),
        );
        assert_eq!(
            got,
            json!({"status": status, "errorCode": code, "errorMessage": message})
        );
    }
    let mut store = Fake::with(vec![in_state(1, TaskState::UnknownOutcome)]);
    let got = result(&mut store, "aria2.tellStatus", json!(["0000000000000001"]));
    assert_eq!(
        (got["status"].as_str(), got["errorCode"].as_str()),
        (Some("error"), Some("1"))
    );
    assert!(got["errorMessage"].as_str().unwrap().contains("lost"));
    for state in [TaskState::Queued, TaskState::Submitting] {
        let mut store = Fake::with(vec![in_state(1, state)]);
        let got = result(&mut store, "aria2.tellStatus", json!(["0000000000000001"]));
        assert!(got.get("errorCode").is_none(), "{got}");
        assert_eq!(got["files"][0]["path"], "", "no name yet");
    }
    let exit_statuses = [
        (FailureKind::Unknown, 1),
        (FailureKind::Timeout, 2),
        (FailureKind::NotFound, 3),
        (FailureKind::Network, 6),
        (FailureKind::NoSpace, 9),
        (FailureKind::Duplicate, 11),
        (FailureKind::FileExists, 13),
        (FailureKind::BadTorrent, 26),
        (FailureKind::BadMagnet, 27),
    ];
    for (kind, status) in exit_statuses {
        assert_eq!(kind.exit_status(), status, "{kind:?}");
    }
}

#[test]
fn gid_parameters() {
    let mut store = Fake::with(vec![running()]);
    assert_eq!(
        error(&mut store, "aria2.tellStatus", json!(["2089b05e"])),
        "Invalid GID 2089b05e"
    );
    assert_eq!(
        error(&mut store, "aria2.tellStatus", json!([1])),
        "The parameter at 0 has wrong type."
    );
    assert_eq!(
        error(&mut store, "aria2.tellStatus", json!([])),
        "The parameter at 0 is required but missing."
    );
    let cases = [
        ("aria2.getUris", "No URI data is available for GID#"),
        ("aria2.getFiles", "No file data is available for GID#"),
        ("aria2.getPeers", "No peer data is available for GID#"),
        ("aria2.getOption", "Cannot get option for GID#"),
        ("aria2.remove", "Active Download not found for GID#"),
        ("aria2.forceRemove", "Active Download not found for GID#"),
        (
            "aria2.removeDownloadResult",
            "Could not remove download result of GID#",
        ),
    ];
    for (method, message) in cases {
        assert_eq!(
            error(&mut store, method, json!(["00000000000000ff"])),
            format!("{message}00000000000000ff"),
            "{method}"
        );
    }
    assert_eq!(
        error(
            &mut store,
            "aria2.changeOption",
            json!(["00000000000000ff", {}])
        ),
        "Cannot change option for GID#00000000000000ff"
    );
}

/// A, B, C waiting; D, E, F stopped in that order; G active.
fn queues() -> Fake {
    let mut tasks: Vec<TaskView> = (0xa..=0xc)
        .map(|n| in_state(n, TaskState::Queued))
        .collect();
    tasks.extend((0xd..=0xf).map(|n| in_state(n, TaskState::Complete)));
    tasks.push(in_state(0x10, TaskState::Running));
    Fake::with(tasks)
}

fn gids(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| u64::from_str_radix(s["gid"].as_str().unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn tell_waiting_and_stopped_pages_with_negative_offsets() {
    let mut store = queues();
    let waiting = |store: &mut Fake, offset: i64, num: i64| {
        gids(&result(
            store,
            "aria2.tellWaiting",
            json!([offset, num, ["gid"]]),
        ))
    };
    // The manual's example.
    assert_eq!(waiting(&mut store, 0, 1), [0xa]);
    assert_eq!(waiting(&mut store, 1, 2), [0xb, 0xc]);
    assert_eq!(waiting(&mut store, -1, 2), [0xc, 0xb]);
    assert_eq!(waiting(&mut store, -1, 100), [0xc, 0xb, 0xa]);
    assert_eq!(waiting(&mut store, 5, 1), Vec::<u64>::new());
    assert_eq!(waiting(&mut store, -4, 1), Vec::<u64>::new());
    assert_eq!(waiting(&mut store, 0, 0), Vec::<u64>::new());
    // AriaNg asks for the stopped list as (-1, 1000): the most recently stopped first.
    let stopped = result(
        &mut store,
        "aria2.tellStopped",
        json!([-1, 1000, ["gid", "status"]]),
    );
    assert_eq!(gids(&stopped), [0xf, 0xe, 0xd]);
    assert_eq!(
        stopped[0],
        json!({"gid": "000000000000000f", "status": "complete"})
    );
    assert_eq!(
        gids(&result(&mut store, "aria2.tellActive", json!([]))),
        [0x10]
    );
    assert_eq!(
        error(&mut store, "aria2.tellWaiting", json!([0, -1])),
        "The integer parameter at 1 has invalid value: the value must be greater than or equal to 0."
    );
    assert_eq!(
        error(&mut store, "aria2.tellStopped", json!([0])),
        "The parameter at 1 is required but missing."
    );
    assert_eq!(
        error(&mut store, "aria2.tellStopped", json!(["0", 1])),
        "The parameter at 0 has wrong type."
    );
}

#[test]
fn remove_and_results() {
    let mut store = queues();
    assert_eq!(
        result(&mut store, "aria2.remove", json!(["000000000000000a"])),
        "000000000000000a"
    );
    assert_eq!(
        result(&mut store, "aria2.forceRemove", json!(["0000000000000010"])),
        "0000000000000010"
    );
    assert_eq!(
        gids(&result(&mut store, "aria2.tellStopped", json!([0, 10]))),
        [0xd, 0xe, 0xf, 0xa, 0x10]
    );
    // A stopped download is not removed again, and only a stopped one's result goes.
    assert_eq!(
        error(&mut store, "aria2.remove", json!(["000000000000000d"])),
        "Active Download not found for GID#000000000000000d"
    );
    assert_eq!(
        error(
            &mut store,
            "aria2.removeDownloadResult",
            json!(["000000000000000b"])
        ),
        "Could not remove download result of GID#000000000000000b"
    );
    assert_eq!(
        result(
            &mut store,
            "aria2.removeDownloadResult",
            json!(["000000000000000d"])
        ),
        "OK"
    );
    assert!(store.task(Gid::new(0xd)).is_none());
    assert_eq!(
        result(&mut store, "aria2.purgeDownloadResult", json!([])),
        "OK"
    );
    assert_eq!(store.count(Queue::Stopped), 0);
    assert_eq!(store.count(Queue::Waiting), 2);
}

#[test]
fn nothing_can_be_paused() {
    let mut store = Fake::with(vec![running()]);
    for method in ["aria2.pause", "aria2.forcePause"] {
        assert_eq!(
            error(&mut store, method, json!([GID_A])),
            format!("GID#{GID_A} cannot be paused now")
        );
    }
    assert_eq!(
        error(&mut store, "aria2.unpause", json!([GID_A])),
        format!("GID#{GID_A} cannot be unpaused now")
    );
    for method in ["aria2.pauseAll", "aria2.forcePauseAll", "aria2.unpauseAll"] {
        assert_eq!(result(&mut store, method, json!([])), "OK");
    }
    assert_eq!(store.task(gid(GID_A)).unwrap().state, TaskState::Running);
}

#[test]
fn uris_files_and_peers() {
    let mut store = Fake::with(vec![running(), in_state(2, TaskState::Queued)]);
    assert_eq!(
        result(&mut store, "aria2.getUris", json!([GID_A])),
        json!([
            {"status": "used", "uri": "http://example.org/file"},
            {"status": "waiting", "uri": "http://mirror/file"},
        ])
    );
    assert_eq!(
        result(&mut store, "aria2.getPeers", json!([GID_A])),
        json!([])
    );
    store.tasks[1].uris = vec!["http://q/x".into()];
    assert_eq!(
        result(&mut store, "aria2.getUris", json!(["0000000000000002"])),
        json!([{"status": "waiting", "uri": "http://q/x"}])
    );
    let files = result(&mut store, "aria2.getFiles", json!([GID_A]));
    assert_eq!(files[0]["path"], "/Movies/2026/file");
}

#[test]
fn global_stat_counts_the_queues() {
    let mut store = queues();
    store.tasks[6].download_speed = 500;
    assert_eq!(
        result(&mut store, "aria2.getGlobalStat", json!([])),
        json!({
            "downloadSpeed": "500",
            "numActive": "1",
            "numWaiting": "3",
            "numStopped": "3",
            "numStoppedTotal": "3",
            "uploadSpeed": "0",
        })
    );
}

#[test]
fn version_session_and_options() {
    let mut store = Fake::with(vec![running()]);
    let secret = config(Some(SECRET));
    let call = |store: &mut Fake, method: &str, params: Value| {
        let mut all = vec![json!("token:s3cret")];
        all.extend(params.as_array().unwrap().iter().cloned());
        let body = json!({"jsonrpc": "2.0", "id": "v", "method": method, "params": all});
        let reply = send(store, &secret, &body.to_string());
        assert!(!reply.body.contains(SECRET), "{method} shows the secret");
        serde_json::from_str::<Value>(&reply.body).unwrap()["result"].clone()
    };
    assert_eq!(
        call(&mut store, "aria2.getVersion", json!([])),
        json!({"enabledFeatures": ["BitTorrent", "HTTPS"], "version": "0.1.0"})
    );
    assert_eq!(
        call(&mut store, "aria2.getSessionInfo", json!([])),
        json!({"sessionId": "cd6a3bc6a1de28eb5bfa181e5f6b916d44af31a9"})
    );
    assert_eq!(
        call(&mut store, "aria2.getGlobalOption", json!([])),
        json!({"dir": "/offline"})
    );
    assert_eq!(
        call(&mut store, "aria2.getOption", json!([GID_A])),
        json!({"dir": "/Movies/2026", "out": "file"})
    );
    let ignored = json!({"max-download-limit": "20K", "dir": "/elsewhere", "rpc-secret": "x"});
    assert_eq!(
        call(&mut store, "aria2.changeOption", json!([GID_A, ignored])),
        "OK"
    );
    assert_eq!(
        call(&mut store, "aria2.changeGlobalOption", json!([ignored])),
        "OK"
    );
    assert_eq!(
        call(&mut store, "aria2.getGlobalOption", json!([])),
        json!({"dir": "/offline"})
    );
    assert_eq!(store.task(gid(GID_A)).unwrap().dir, "/Movies/2026");
    assert_eq!(call(&mut store, "aria2.saveSession", json!([])), "OK");
    assert_eq!(
        error(&mut store, "aria2.changeGlobalOption", json!([])),
        "The parameter at 0 is required but missing."
    );
}

// --- Notifications ------------------------------------------------------------------

#[test]
fn notifications_json() {
    let gid = gid(GID_A);
    let expected = [
        (Event::Start, "aria2.onDownloadStart"),
        (Event::Pause, "aria2.onDownloadPause"),
        (Event::Stop, "aria2.onDownloadStop"),
        (Event::Complete, "aria2.onDownloadComplete"),
        (Event::Error, "aria2.onDownloadError"),
        (Event::BtComplete, "aria2.onBtDownloadComplete"),
    ];
    for (event, method) in expected {
        assert_eq!(
            event.notification(gid),
            format!(
                r#"{{"jsonrpc":"2.0","method":"{method}","params":[{{"gid":"2089b05ecca3d829"}}]}}"#
            )
        );
    }
}

#[test]
fn events_between_states() {
    use TaskState::*;
    let failed = Failed(Failure {
        kind: FailureKind::Unknown,
        message: String::new(),
    });
    let cases: [(Option<TaskState>, TaskState, bool, &[Event]); 11] = [
        (None, Queued, false, &[]),
        (None, Submitting, false, &[Event::Start]),
        (Some(Queued), Submitting, false, &[Event::Start]),
        (Some(Submitting), Running, false, &[]),
        (Some(Running), Running, false, &[]),
        (Some(Running), Complete, false, &[Event::Complete]),
        (
            Some(Running),
            Complete,
            true,
            &[Event::BtComplete, Event::Complete],
        ),
        (Some(Submitting), UnknownOutcome, false, &[Event::Error]),
        (Some(Running), failed.clone(), false, &[Event::Error]),
        (Some(Queued), Removed, false, &[Event::Stop]),
        (Some(failed), Removed, false, &[]),
    ];
    for (before, after, torrent, events) in cases {
        assert_eq!(
            Event::between(before.as_ref(), &after, torrent),
            events,
            "{before:?} -> {after:?}"
        );
    }
}

// --- Properties ---------------------------------------------------------------------

proptest! {
    #![proptest_config(common::proptest_config::regressions_in("proptest-regressions/aria2.txt"))]

    /// Whatever the body, the reply is JSON and nothing panics.
    #[test]
    fn any_body_gets_a_json_reply(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut store = queues();
        let reply = aria2::handle_body(&body, &mut store, &config(Some(SECRET)));
        prop_assert!(serde_json::from_str::<Value>(&reply.body).is_ok());
    }

    /// Any method with any simple parameters gets a result or an error, never a panic,
    /// and every error message is aria2's code 1 or a standard one.
    #[test]
    fn any_call_is_answered(
        method in proptest::sample::select(METHODS.to_vec()),
        params in proptest::collection::vec(
            prop_oneof![
                Just(json!(GID_A)),
                Just(json!("000000000000000a")),
                Just(json!("000000000000000d")),
                any::<i64>().prop_map(|n| json!(n)),
                "[a-z:/]{0,12}".prop_map(|s| json!(s)),
                Just(json!([])),
                Just(json!(["gid", "status"])),
                Just(json!({"dir": "/x"})),
            ],
            0..4,
        ),
    ) {
        let mut store = queues();
        store.tasks.push(running());
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply = aria2::handle_body(body.to_string().as_bytes(), &mut store, &config(None));
        let answer: Value = serde_json::from_str(&reply.body).unwrap();
        prop_assert!(answer.get("result").is_some() || answer["error"]["code"] == 1, "{}", answer);
    }
}
