//! The 6pan half of the emulator over real loopback HTTP: login and token rotation,
//! store tokens and instant upload, form and block uploads to the storage service,
//! parsing torrents and links, and tasks (web-seed downloads, file selection, page,
//! delete).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use offline_proto::qetag::qetag;
use offline_proto::sixpan::identity::{Identity, IdentityType};
use offline_proto::sixpan::upload_token::UploadToken;
use offline_proto::sixpan::TaskStatus;
use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};

/// The longest any poll loop waits.
const POLL_LIMIT: Duration = Duration::from_secs(10);
/// One storage block.
const BLOCK: usize = 4 * 1024 * 1024;
const MIB: usize = 1024 * 1024;

const ALICE: &[u8] = include_bytes!("../../../fixtures/torrents/alice.torrent");
const NUMBERS: &[u8] = include_bytes!("../../../fixtures/torrents/numbers.torrent");
const BATCH: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// `n` deterministic bytes.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i * 31 + i / 4093 + (i >> 13)) % 251).unwrap())
        .collect()
}

/// One answer: status, headers, body (and the body as JSON, `Null` when it is not).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }

    fn result(&self) -> &Value {
        &self.json["result"]
    }

    fn new_token(&self) -> Option<String> {
        self.headers
            .get("qingzhen-token")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Asserts a successful envelope with `status` 0 (v2) or 200 (v1).
    fn ok(self, status: i64) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        assert_eq!(self.json["success"], true, "{self:?}");
        assert_eq!(self.json["code"], "OK", "{self:?}");
        assert_eq!(self.json["status"], status, "{self:?}");
        self
    }

    /// Asserts an error envelope with this HTTP status and code.
    fn err(self, http: u16, code: &str) -> Self {
        assert_eq!(self.status.as_u16(), http, "{self:?}");
        assert_eq!(self.json["success"], false, "{self:?}");
        assert_eq!(self.code(), code, "{self:?}");
        assert!(self.json["result"].is_null(), "{self:?}");
        self
    }
}

/// A raw HTTP client with a 6pan session: it keeps the newest token.
struct SixPan {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    token: Option<String>,
}

impl SixPan {
    fn new(emulator: &RunningEmulator) -> Self {
        Self {
            base: emulator.base_url(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            token: None,
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        let mut builder = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::new(body.into())).unwrap();
        let response = tokio::time::timeout(POLL_LIMIT, self.client.request(request))
            .await
            .expect("answer within 10 s")
            .expect("request reaches the emulator");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
        }
    }

    /// POSTs JSON with `token` (or none) in `Qingzhen-Token`.
    async fn post_with(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(t) = token {
            headers.push(("Qingzhen-Token", t));
        }
        self.send(
            Method::POST,
            path,
            &headers,
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// POSTs JSON with the session's token and keeps the rotated one.
    async fn call(&mut self, path: &str, body: &Value) -> Reply {
        let reply = self
            .post_with(path, self.token.clone().as_deref(), body)
            .await;
        if let Some(t) = reply.new_token() {
            self.token = Some(t);
        }
        reply
    }

    async fn login_as(&mut self, account: &str, password: &str) -> Reply {
        let body = json!({"value": account, "password": md5_hex(password), "code": ""});
        let reply = self.post_with("/v2/user/login", None, &body).await;
        if let Some(t) = reply.new_token() {
            self.token = Some(t);
        }
        reply
    }

    async fn login(&mut self, emulator: &RunningEmulator) {
        self.login_as(emulator.sixpan_account(), emulator.sixpan_password())
            .await
            .ok(0);
        assert!(self.token.is_some());
    }

    /// `/v1/store/token` → the upload token and URL (asserts it is not instant).
    async fn upload_token(&mut self, name: &str, hash: Option<&str>) -> (String, String) {
        let mut body = json!({"name": name, "path": ":torrent"});
        if let Some(h) = hash {
            body["hash"] = json!(h);
        }
        let reply = self.call("/v1/store/token", &body).await.ok(200);
        let token = reply.result()["token"]
            .as_str()
            .expect("upload token")
            .to_owned();
        let url = reply.result()["uploadUrl"].as_str().unwrap().to_owned();
        (token, url)
    }

    /// Uploads `data` in one multipart form; the reply.
    async fn form_upload(&mut self, name: &str, data: &[u8]) -> Reply {
        let (token, url) = self.upload_token(name, None).await;
        let (content_type, body) =
            multipart(&[("token", token.as_bytes()), ("x:origin", b"test")], data);
        self.send(
            Method::POST,
            &format!("{url}/file/upload"),
            &[("content-type", &content_type)],
            body,
        )
        .await
    }

    async fn parse_torrent(&mut self, hash: &str) -> Value {
        self.call("/v2/offline/parseTorrent", &json!({"hash": [hash]}))
            .await
            .ok(0)
            .result()[0]
            .clone()
    }

    async fn page(&mut self, page: u32, size: u32) -> Value {
        self.call("/v2/offline/page", &json!({"page": page, "pageSize": size}))
            .await
            .ok(0)
            .result()
            .clone()
    }
}

fn md5_hex(text: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A multipart form of `parts` in order (a part named `file` is sent as a file);
/// `(content type, body)`.
fn form(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----sixpan-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in parts {
        let head = if *name == "file" {
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
        } else {
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
        };
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A multipart form of `fields` then `file`.
fn multipart(fields: &[(&str, &[u8])], file: &[u8]) -> (String, Vec<u8>) {
    let mut parts = fields.to_vec();
    parts.push(("file", file));
    form(&parts)
}

/// Bencode of a single-file torrent of `content` with a `url-list`.
fn single_file_torrent(name: &str, content: &[u8], piece_length: usize, web_seed: &str) -> Vec<u8> {
    let mut pieces = Vec::new();
    for chunk in content.chunks(piece_length) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"d4:infod");
    out.extend_from_slice(format!("6:lengthi{}e", content.len()).as_bytes());
    out.extend_from_slice(format!("4:name{}:{name}", name.len()).as_bytes());
    out.extend_from_slice(format!("12:piece lengthi{piece_length}e").as_bytes());
    out.extend_from_slice(format!("6:pieces{}:", pieces.len()).as_bytes());
    out.extend_from_slice(&pieces);
    out.extend_from_slice(format!("e8:url-list{}:{web_seed}e", web_seed.len()).as_bytes());
    out
}

/// A torrent file with a `url-list` added (its top-level keys all sort before it).
fn with_web_seed(torrent: &[u8], web_seed: &str) -> Vec<u8> {
    assert!(torrent.ends_with(b"ee"));
    let mut out = torrent[..torrent.len() - 1].to_vec();
    out.extend_from_slice(format!("8:url-list{}:{web_seed}e", web_seed.len()).as_bytes());
    out
}

async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(config).await.expect("emulator starts")
}

/// Polls until the task's status is final (not 100); its page entry.
async fn wait_final(api: &mut SixPan, identity: &str) -> Value {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        let page = api.page(1, 100).await;
        let task = page["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["identity"] == identity)
            .cloned()
            .expect("task listed");
        if task["status"] != 100 {
            return task;
        }
        assert!(
            Instant::now() < deadline,
            "task still running after 10 s: {task}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Adds one task; the new task's identity (the newest in the list).
async fn add_one(api: &mut SixPan, task: Value) -> String {
    let reply = api
        .call(
            "/v2/offline/add",
            &json!({"path": "/downloads", "task": [task]}),
        )
        .await
        .ok(0);
    assert_eq!(reply.result(), &json!({"success": true, "count": 1}));
    api.page(1, 1).await["list"][0]["identity"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn login_checks_credentials_and_devices() {
    let emulator = start(EmulatorConfig {
        sixpan_max_devices: 2,
        ..EmulatorConfig::default()
    })
    .await;
    let mut api = SixPan::new(&emulator);
    assert_eq!(emulator.sixpan_account(), "demo@offline.local");

    let reply = api
        .login_as(emulator.sixpan_account(), "not the password")
        .await
        .err(400, "PASSWORD_ERROR");
    assert!(reply.new_token().is_none());
    api.login_as("someone@else", emulator.sixpan_password())
        .await
        .err(400, "USER_NOT_FOUND");
    let bad = json!({"value": emulator.sixpan_account(), "password": "PLAIN", "code": ""});
    api.post_with("/v2/user/login", None, &bad)
        .await
        .err(400, "PARAMETER_ERROR");
    assert_eq!(emulator.sixpan_logins(), 0);

    let reply = api
        .login_as(emulator.sixpan_account(), emulator.sixpan_password())
        .await
        .ok(0);
    let first = reply
        .new_token()
        .expect("token in the qingzhen-token header");
    assert_eq!(first.split('.').count(), 3, "a JWT: {first}");
    assert_eq!(reply.result()["email"], "demo@offline.local");
    assert_eq!(emulator.sixpan_logins(), 1);

    // A second login (another device) ends the first token at once.
    api.login(&emulator).await;
    let second = api.token.clone().unwrap();
    api.post_with("/v2/user/info", Some(&first), &json!({}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");
    api.post_with("/v2/user/info", Some(&second), &json!({}))
        .await
        .ok(0);

    // A third login within the token lifetime is one device too many.
    api.login_as(emulator.sixpan_account(), emulator.sixpan_password())
        .await
        .err(400, "LOGIN_USER_TOO_MUCH");
    assert_eq!(emulator.sixpan_logins(), 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn tokens_rotate_on_every_call() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let t0 = api.token.clone().unwrap();

    let reply = api.call("/v2/user/info", &json!({})).await.ok(0);
    let t1 = reply.new_token().unwrap();
    assert_ne!(t1, t0);
    assert_eq!(reply.result()["identity"].as_str().unwrap().len(), 32);
    let t2 = api
        .call("/v2/user/info", &json!({}))
        .await
        .ok(0)
        .new_token()
        .unwrap();
    assert_ne!(t2, t1);

    // The superseded token still works within the grace period (and rotates too).
    let again = api
        .post_with("/v2/user/info", Some(&t0), &json!({}))
        .await
        .ok(0);
    assert!(again.new_token().is_some_and(|t| t != t0));

    // v1 answers carry the token in the body and as a bearer header too.
    let v1 = api
        .call("/v1/store/token", &json!({"name": "a.bin"}))
        .await
        .ok(200);
    let t3 = v1.new_token().unwrap();
    assert_eq!(v1.json["token"], t3.as_str());
    assert_eq!(v1.headers["authorization"], format!("Bearer {t3}").as_str());

    // No token, an unknown one.
    api.post_with("/v2/user/info", None, &json!({}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");
    api.post_with("/v2/user/info", Some("nope"), &json!({}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");

    // Like a login elsewhere: every token ends.
    emulator.expire_sixpan_tokens();
    let refused = api
        .post_with("/v2/user/info", Some(&t3), &json!({}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");
    assert!(refused.new_token().is_none());
    api.post_with("/v2/user/info", Some(&t0), &json!({}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");
    api.login(&emulator).await;
    api.call("/v2/user/info", &json!({})).await.ok(0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn superseded_tokens_stop_after_the_grace_and_tokens_expire() {
    let emulator = start(EmulatorConfig {
        sixpan_rotation_grace: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let t0 = api.token.clone().unwrap();
    api.call("/v2/user/info", &json!({})).await.ok(0);
    api.post_with("/v2/user/info", Some(&t0), &json!({}))
        .await
        .ok(0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let refused = api
        .post_with("/v2/user/info", Some(&t0), &json!({}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("replaced"),
        "{refused:?}"
    );
    // The newest token works.
    api.call("/v2/user/info", &json!({})).await.ok(0);
    emulator.shutdown().await;

    let emulator = start(EmulatorConfig {
        token_lifetime: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    api.call("/v2/user/info", &json!({})).await.ok(0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    api.call("/v2/user/info", &json!({}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");
    emulator.shutdown().await;
}

#[tokio::test]
async fn form_upload_then_instant_upload() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    // Unauthenticated store token calls are refused.
    api.post_with("/v1/store/token", None, &json!({"name": "alice.torrent"}))
        .await
        .err(401, "BEARER_AUTHORIZATION_HEADER_INVALID");
    api.login(&emulator).await;
    let etag = qetag(ALICE);

    // Not stored yet: an upload token, Qiniu style, with a deadline an hour away.
    let reply = api
        .call(
            "/v1/store/token",
            &json!({"name": "alice.torrent", "hash": etag.as_str(), "path": ":torrent"}),
        )
        .await
        .ok(200);
    let result = reply.result();
    assert_eq!(result["uploadUrl"], format!("{}/wcs", emulator.base_url()));
    assert_eq!(result["parent"], ":torrent");
    assert_eq!(result["version"], 1);
    let token = UploadToken::parse(result["token"].as_str().unwrap()).unwrap();
    let deadline = token.deadline().unwrap();
    let from_now = deadline.duration_since(SystemTime::now()).unwrap();
    assert!(
        from_now > Duration::from_secs(3500) && from_now <= Duration::from_secs(3600),
        "{from_now:?}"
    );
    assert!(token.policy().save_key.is_some());
    assert_eq!(token.policy().fsize_limit, Some(0));

    let stored = api.form_upload("alice.torrent", ALICE).await;
    assert_eq!(stored.status, StatusCode::OK, "{stored:?}");
    assert_eq!(stored.json["hash"], etag.as_str());
    assert!(stored.json["key"].as_str().is_some_and(|k| !k.is_empty()));
    let blob = emulator.stored_blob(etag).expect("blob stored");
    assert_eq!(std::fs::read(blob).unwrap(), ALICE);
    assert_eq!(emulator.instant_uploads(), 0);

    // Now the hash is known: the file is created at once.
    let reply = api
        .call(
            "/v1/store/token",
            &json!({"name": "again.torrent", "hash": etag.as_str(), "path": ":torrent"}),
        )
        .await
        .ok(200);
    let file = reply.result();
    assert_eq!(file["storeId"], etag.as_str());
    assert_eq!(file["size"], ALICE.len());
    assert_eq!(file["name"], "again.torrent");
    assert_eq!(file["ext"], ".torrent");
    assert_eq!(file["path"], ":torrent");
    assert_eq!(file["uuid"].as_str().unwrap().len(), 32);
    assert!(file.get("token").is_none());
    assert_eq!(emulator.instant_uploads(), 1);

    // A form whose `file` is not last, and one without a token.
    let (token, url) = api.upload_token("x.bin", None).await;
    let (ct, body) = form(&[("file", b"abc"), ("token", token.as_bytes())]);
    let late = api
        .send(
            Method::POST,
            &format!("{url}/file/upload"),
            &[("content-type", &ct)],
            body,
        )
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{late:?}");
    assert!(
        late.json["message"].as_str().unwrap().contains("last"),
        "{late:?}"
    );
    let (ct, body) = multipart(&[], b"abc");
    let anonymous = api
        .send(
            Method::POST,
            &format!("{url}/file/upload"),
            &[("content-type", &ct)],
            body,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{anonymous:?}");
    assert_eq!(anonymous.json["code"], 401);
    emulator.shutdown().await;
}

/// `mkblk` + `bput`s of one block, `chunk` bytes at a time; the block's last ctx.
async fn put_block(
    api: &SixPan,
    url: &str,
    token: &str,
    index: usize,
    block: &[u8],
    chunk: usize,
) -> String {
    let headers = [
        ("authorization", token),
        ("UploadBatch", BATCH),
        ("content-type", "application/octet-stream"),
    ];
    let mut chunks = block.chunks(chunk);
    let first = chunks.next().unwrap();
    let reply = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/{}/{index}", block.len()),
            &headers,
            first.to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let mut ctx = reply.json["ctx"].as_str().unwrap().to_owned();
    let mut offset = reply.json["offset"].as_u64().unwrap();
    assert_eq!(offset, first.len() as u64);
    for next in chunks {
        let reply = api
            .send(
                Method::POST,
                &format!("{url}/bput/{ctx}/{offset}"),
                &headers,
                next.to_vec(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        ctx = reply.json["ctx"].as_str().unwrap().to_owned();
        assert_eq!(reply.json["offset"], offset + next.len() as u64);
        offset += next.len() as u64;
    }
    ctx
}

#[tokio::test]
async fn block_upload_of_9_mib_in_3_blocks() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let data = pattern(9 * MIB);
    let etag = qetag(&data);
    let (token, url) = api.upload_token("nine.bin", Some(etag.as_str())).await;
    let mut ctxs = Vec::new();
    for (index, block) in data.chunks(BLOCK).enumerate() {
        ctxs.push(put_block(&api, &url, &token, index, block, MIB).await);
    }
    assert_eq!(emulator.uploaded_chunks(), 9);
    let reply = api
        .send(
            Method::POST,
            &format!("{url}/mkfile/{}", data.len()),
            &[
                ("authorization", &token),
                ("UploadBatch", BATCH),
                ("content-type", "text/plain;charset=UTF-8"),
            ],
            ctxs.join(","),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json["hash"], etag.as_str());
    let blob = emulator.stored_blob(etag.as_str()).expect("blob stored");
    assert!(std::fs::read(blob).unwrap() == data);
    // The ctxs are used up.
    let again = api
        .send(
            Method::POST,
            &format!("{url}/mkfile/{}", data.len()),
            &[("authorization", &token), ("UploadBatch", BATCH)],
            ctxs.join(","),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{again:?}");
    // Now instant.
    api.call(
        "/v1/store/token",
        &json!({"name": "nine-again.bin", "hash": etag.as_str()}),
    )
    .await
    .ok(200);
    assert_eq!(emulator.instant_uploads(), 1);
    emulator.shutdown().await;
}

#[tokio::test]
async fn block_upload_refusals() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let (token, url) = api.upload_token("x.bin", None).await;
    let octet = ("content-type", "application/octet-stream");
    let chunk = vec![7u8; 1000];
    let expect = |reply: Reply, status: u16, needle: &str| {
        assert_eq!(reply.status.as_u16(), status, "{reply:?}");
        assert_eq!(reply.json["code"], status, "{reply:?}");
        let message = reply.json["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    };

    let bearer = format!("Bearer {token}");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/4000/0"),
            &[("authorization", &bearer), ("UploadBatch", BATCH), octet],
            chunk.clone(),
        )
        .await;
    expect(r, 401, "Bearer");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/4000/0"),
            &[("UploadBatch", BATCH), octet],
            chunk.clone(),
        )
        .await;
    expect(r, 401, "Authorization");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/4000/0"),
            &[
                ("authorization", "ak:c2ln:e30="),
                ("UploadBatch", BATCH),
                octet,
            ],
            chunk.clone(),
        )
        .await;
    expect(r, 401, "unknown upload token");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/4000/0"),
            &[("authorization", &token), octet],
            chunk.clone(),
        )
        .await;
    expect(r, 400, "UploadBatch");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/9999999/0"),
            &[("authorization", &token), ("UploadBatch", BATCH), octet],
            chunk.clone(),
        )
        .await;
    expect(r, 400, "blockSize");

    let headers = [
        ("authorization", token.as_str()),
        ("UploadBatch", BATCH),
        octet,
    ];
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/4000/0"),
            &headers,
            chunk.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let ctx = r.json["ctx"].as_str().unwrap().to_owned();
    // A wrong offset, then a chunk past the block's end.
    let r = api
        .send(
            Method::POST,
            &format!("{url}/bput/{ctx}/999"),
            &headers,
            chunk.clone(),
        )
        .await;
    expect(r, 400, "offset 999");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/bput/{ctx}/1000"),
            &headers,
            vec![1u8; 3001],
        )
        .await;
    expect(r, 400, "past the block size");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/bput/nope/1000"),
            &headers,
            chunk.clone(),
        )
        .await;
    expect(r, 400, "ctx");
    // An incomplete block, and sizes that do not add up.
    let text = [("authorization", token.as_str()), ("UploadBatch", BATCH)];
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkfile/4000"),
            &text,
            ctx.clone(),
        )
        .await;
    expect(r, 400, "incomplete");
    let r = api
        .send(
            Method::POST,
            &format!("{url}/bput/{ctx}/1000"),
            &headers,
            vec![1u8; 3000],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let ctx = r.json["ctx"].as_str().unwrap().to_owned();
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkfile/4001"),
            &text,
            ctx.clone(),
        )
        .await;
    expect(r, 400, "not fileSize");
    // A chunk over 4 MiB.
    let r = api
        .send(
            Method::POST,
            &format!("{url}/mkblk/4194304/1"),
            &headers,
            vec![0u8; BLOCK + 1],
        )
        .await;
    expect(r, 413, "larger");
    let r = api
        .send(Method::POST, &format!("{url}/mkfile/4000"), &text, ctx)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // An expired upload token.
    let emulator2 = start(EmulatorConfig {
        sixpan_upload_token_lifetime: Duration::ZERO,
        ..EmulatorConfig::default()
    })
    .await;
    let mut api2 = SixPan::new(&emulator2);
    api2.login(&emulator2).await;
    let (token, url) = api2.upload_token("x.bin", None).await;
    let r = api2
        .send(
            Method::POST,
            &format!("{url}/mkblk/4000/0"),
            &[("authorization", &token), ("UploadBatch", BATCH), octet],
            chunk,
        )
        .await;
    expect(r, 401, "expired");
    emulator2.shutdown().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn parse_torrent_of_uploaded_files() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let etag = qetag(ALICE);
    api.form_upload("alice.torrent", ALICE).await;

    let parsed = api.parse_torrent(etag.as_str()).await;
    assert_eq!(parsed["name"], "alice.txt");
    assert_eq!(parsed["size"], 163_783);
    let files = parsed["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["name"], "alice.txt");
    assert_eq!(files[0]["size"], 163_783);
    assert_eq!(files[0]["fileIndex"], 0);
    let path_identity = files[0]["pathIdentity"].as_str().unwrap();
    assert!(path_identity.len() == 32 && path_identity.bytes().all(|b| b.is_ascii_hexdigit()));
    let identity = Identity::parse(parsed["identity"].as_str().unwrap()).unwrap();
    assert_eq!(identity.kind(), IdentityType::BitTorrent);
    assert_eq!(
        identity.view().info_hash.as_deref(),
        Some("722fe65b2aa26d14f35b4ad627d20236e481d924")
    );
    assert_eq!(
        identity.view().url.as_deref(),
        Some(format!("qingzhen-internal://{etag}").as_str())
    );
    assert_eq!(identity.view().name.as_deref(), Some("alice.txt"));
    // Stable per torrent: parsing again gives the same path identities.
    let again = api.parse_torrent(etag.as_str()).await;
    assert_eq!(again["files"][0]["pathIdentity"], path_identity);

    // Unknown hash; a stored file that is not a torrent; a malformed hash.
    api.call(
        "/v2/offline/parseTorrent",
        &json!({"hash": [qetag(b"nothing").as_str()]}),
    )
    .await
    .err(400, "FILE_NOT_FOUND");
    let text = b"just some text, not bencode";
    api.form_upload("notes.torrent", text).await;
    api.call(
        "/v2/offline/parseTorrent",
        &json!({"hash": [qetag(text).as_str()]}),
    )
    .await
    .err(400, "UNSUPPORTED_FILE");
    api.call("/v2/offline/parseTorrent", &json!({"hash": ["short"]}))
        .await
        .err(400, "PARAMETER_ERROR");
    emulator.shutdown().await;
}

#[tokio::test]
async fn parse_url_of_each_kind() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let links = [
        "https://example.com/files/archive%20v1.zip",
        "magnet:?xt=urn:btih:89D97C2261A21B040CF11CAA661A3BA7233BB7E6&dn=numbers",
        "magnet:?xt=urn:btih:RHMXYITBUINQIDHRDSVGMGR3U4RTXN7G",
        "ed2k://|file|movie.mkv|734003200|0123456789ABCDEF0123456789ABCDEF|/",
    ];
    let reply = api
        .call("/v2/offline/parseUrl", &json!({"url": links.join("\n")}))
        .await
        .ok(0);
    let results = reply.result().as_array().unwrap();
    assert_eq!(results.len(), 4);
    let identity = |i: usize| Identity::parse(results[i]["identity"].as_str().unwrap()).unwrap();

    assert_eq!(results[0]["name"], "archive v1.zip");
    assert_eq!(results[0]["size"], 0);
    assert_eq!(identity(0).kind(), IdentityType::Http);
    assert_eq!(identity(0).view().url.as_deref(), Some(links[0]));

    assert_eq!(results[1]["name"], "numbers");
    assert_eq!(identity(1).kind(), IdentityType::BitTorrent);
    let hex = "89d97c2261a21b040cf11caa661a3ba7233bb7e6";
    assert_eq!(identity(1).view().info_hash.as_deref(), Some(hex));
    assert_eq!(identity(2).view().info_hash.as_deref(), Some(hex));
    assert_eq!(results[2]["name"], hex);

    assert_eq!(results[3]["name"], "movie.mkv");
    assert_eq!(results[3]["size"], 734_003_200u64);
    assert_eq!(identity(3).kind(), IdentityType::Unknown(5040));

    for (link, code) in [
        ("magnet:?dn=nohash", "MAGNET_URL_INVALID"),
        ("magnet:?xt=urn:btih:1234", "MAGNET_URL_INVALID"),
        (
            "ed2k://|file|a|notanumber|0123456789abcdef0123456789abcdef|/",
            "ED2K_URL_INVALID",
        ),
        ("ed2k://|server|1.2.3.4|4661|/", "ED2K_URL_INVALID"),
        ("ftp://example.com/a.zip", "UNSUPPORED_PROTOCOL"),
        (
            "thunder://QUFodHRwOi8vZXhhbXBsZS5jb20vYS56aXBaWg==",
            "UNSUPPORED_PROTOCOL",
        ),
        ("just words", "UNSUPPORED_PROTOCOL"),
    ] {
        let body = json!({"url": format!("https://example.com/ok.zip\n{link}")});
        api.call("/v2/offline/parseUrl", &body).await.err(400, code);
    }
    api.call("/v2/offline/parseUrl", &json!({"url": " \n "}))
        .await
        .err(400, "PARAMETER_ERROR");
    api.call("/v2/offline/parseUrl", &json!({"link": "x"}))
        .await
        .err(400, "PARAMETER_ERROR");
    emulator.shutdown().await;
}

#[tokio::test]
async fn add_refuses_bad_identities_and_creates_nothing() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let reply = api
        .call(
            "/v2/offline/parseUrl",
            &json!({"url": "https://example.com/a.zip"}),
        )
        .await
        .ok(0);
    let good = reply.result()[0]["identity"].as_str().unwrap().to_owned();
    let (encoded, mac) = good.rsplit_once('$').unwrap();

    // A different MAC digit.
    let first = if mac.starts_with('0') { '1' } else { '0' };
    let flipped = format!("{first}{}", &mac[1..]);
    let tampered_mac = format!("{encoded}${flipped}");
    // Altered JSON with the original MAC.
    use base64::Engine as _;
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let altered = String::from_utf8(json)
        .unwrap()
        .replace("example.com", "evil.example");
    let tampered_json = format!(
        "{}${mac}",
        base64::engine::general_purpose::STANDARD.encode(altered)
    );
    // Truncated, and one minted elsewhere (the seed's).
    let truncated = good[..good.len() - 4].to_owned();
    let foreign = "eyJzdWNjZXNzIjp0cnVlLCJ0eXBlIjo1MDIwLCJpZGVudGl0eSI6IjI3NTk0YTRmM2RiZDFiNjZhNzg3YzYzMTkwMjg3ZWI3IiwidXJsIjoiaHR0cHM6Ly9hcGkuNnBhbi5jbi92Mi9vZmZsaW5lL3BhcnNlVXJsIiwibmFtZSI6InBhcnNlVXJsIn0=$e71c503288938e9614dca1c55e0ab811";

    for bad in [
        &tampered_mac,
        &tampered_json,
        &truncated,
        &foreign.to_owned(),
        &"no-dollar".to_owned(),
    ] {
        let body = json!({"path": "/", "task": [{"identity": good}, {"identity": bad}]});
        api.call("/v2/offline/add", &body)
            .await
            .err(400, "IDENTITY_INVALID");
    }
    api.call("/v2/offline/add", &json!({"path": "/", "task": []}))
        .await
        .err(400, "PARAMETER_ERROR");
    assert!(emulator.sixpan_tasks().is_empty());
    assert_eq!(api.page(1, 20).await["totalCount"], 0);
    emulator.shutdown().await;
}

#[tokio::test]
async fn torrent_with_a_loopback_web_seed_is_downloaded() {
    let content = pattern(100_000);
    let mut corrupt = content.clone();
    corrupt[40_000] ^= 0xff;
    let mut files = BTreeMap::new();
    files.insert(
        "payload.bin".to_owned(),
        ServedFile::new("application/octet-stream", content.clone()),
    );
    files.insert(
        "corrupt.bin".to_owned(),
        ServedFile::new("application/octet-stream", corrupt),
    );
    let source = SourceServer::start(files).await.unwrap();

    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;

    let torrent = single_file_torrent(
        "payload.bin",
        &content,
        16_384,
        &source.file_url("payload.bin"),
    );
    let etag = qetag(&torrent);
    api.form_upload("payload.torrent", &torrent).await;
    let parsed = api.parse_torrent(etag.as_str()).await;
    assert_eq!(parsed["size"], 100_000);
    let id = add_one(&mut api, json!({"identity": parsed["identity"]})).await;
    let task = wait_final(&mut api, &id).await;
    assert_eq!(task["status"], 1000, "{task}");
    assert_eq!(task["progress"], 100.0);
    assert_eq!(task["type"], 5030);
    assert_eq!(task["name"], "payload.bin");
    assert_eq!(task["size"], 100_000);
    assert_eq!(task["downloadSize"], 100_000);
    assert_eq!(task["userIdentity"].as_str().unwrap().len(), 32);

    let snapshot = emulator
        .sixpan_tasks()
        .into_iter()
        .find(|t| t.identity == id)
        .unwrap();
    assert_eq!(snapshot.status, TaskStatus::Done);
    assert_eq!(snapshot.selected_files, ["payload.bin"]);
    assert_eq!(snapshot.stored_paths.len(), 1);
    assert!(std::fs::read(&snapshot.stored_paths[0]).unwrap() == content);
    // The downloaded file is in the drive: uploading it again is instant.
    assert!(emulator.stored_blob(qetag(&content)).is_some());
    api.call(
        "/v1/store/token",
        &json!({"name": "p.bin", "hash": qetag(&content).as_str()}),
    )
    .await
    .ok(200);
    assert_eq!(emulator.instant_uploads(), 1);

    // The same torrent served with one byte changed fails its piece check.
    let bad = single_file_torrent(
        "payload.bin",
        &content,
        16_384,
        &source.file_url("corrupt.bin"),
    );
    api.form_upload("bad.torrent", &bad).await;
    let parsed = api.parse_torrent(qetag(&bad).as_str()).await;
    let id = add_one(&mut api, json!({"identity": parsed["identity"]})).await;
    let task = wait_final(&mut api, &id).await;
    assert_eq!(task["status"], -1, "{task}");
    let snapshot = emulator
        .sixpan_tasks()
        .into_iter()
        .find(|t| t.identity == id)
        .unwrap();
    assert!(
        snapshot.fail_reason.as_deref().unwrap().contains("SHA-1"),
        "{snapshot:?}"
    );
    assert!(snapshot.stored_paths.is_empty());
    emulator.shutdown().await;
}

#[tokio::test]
async fn file_selection_stores_only_the_selected_files() {
    let mut files = BTreeMap::new();
    for (name, body) in [
        ("numbers/1.txt", "1"),
        ("numbers/2.txt", "22"),
        ("numbers/3.txt", "333"),
    ] {
        files.insert(
            name.to_owned(),
            ServedFile::new("text/plain", body.as_bytes().to_vec()),
        );
    }
    let source = SourceServer::start(files).await.unwrap();
    let torrent = with_web_seed(NUMBERS, &format!("{}/files/", source.base_url()));

    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    api.form_upload("numbers.torrent", &torrent).await;
    let parsed = api.parse_torrent(qetag(&torrent).as_str()).await;
    let listed = parsed["files"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1]["path"], "numbers/2.txt");
    let skip = listed[1]["pathIdentity"].clone();

    let id = add_one(
        &mut api,
        json!({"identity": parsed["identity"], "iginreFiles": [skip]}),
    )
    .await;
    let task = wait_final(&mut api, &id).await;
    assert_eq!(
        task["status"], 900,
        "partly done: a file was skipped: {task}"
    );
    assert_eq!(task["size"], 4);
    let snapshot = emulator
        .sixpan_tasks()
        .into_iter()
        .find(|t| t.identity == id)
        .unwrap();
    assert_eq!(snapshot.selected_files, ["numbers/1.txt", "numbers/3.txt"]);
    let contents: Vec<(String, Vec<u8>)> = snapshot
        .stored_paths
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        contents,
        [
            ("1.txt".to_owned(), b"1".to_vec()),
            ("3.txt".to_owned(), b"333".to_vec())
        ]
    );
    assert!(emulator.stored_blob(qetag(b"22")).is_none());

    // Every file: done.
    let id = add_one(
        &mut api,
        json!({"identity": parsed["identity"], "iginreFiles": []}),
    )
    .await;
    let task = wait_final(&mut api, &id).await;
    assert_eq!(task["status"], 1000, "{task}");
    let snapshot = emulator
        .sixpan_tasks()
        .into_iter()
        .find(|t| t.identity == id)
        .unwrap();
    assert_eq!(snapshot.stored_paths.len(), 3);

    // Skipping every file is refused.
    let all: Vec<Value> = listed.iter().map(|f| f["pathIdentity"].clone()).collect();
    api.call(
        "/v2/offline/add",
        &json!({"path": "/", "task": [{"identity": parsed["identity"], "iginreFiles": all}]}),
    )
    .await
    .err(400, "PARAMETER_ERROR");
    emulator.shutdown().await;
}

#[tokio::test]
async fn http_and_simulated_tasks_page_and_delete() {
    let content = pattern(300_000);
    let mut files = BTreeMap::new();
    files.insert(
        "movie.bin".to_owned(),
        ServedFile::new("application/octet-stream", content.clone()),
    );
    let source = SourceServer::start(files).await.unwrap();
    let emulator = start(EmulatorConfig {
        sixpan_simulated_duration: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;

    let links = [
        source.file_url("movie.bin"),
        source.file_url("missing.bin"),
        "magnet:?xt=urn:btih:89d97c2261a21b040cf11caa661a3ba7233bb7e6&dn=numbers".to_owned(),
        "ed2k://|file|movie.mkv|1000|0123456789abcdef0123456789abcdef|/".to_owned(),
    ];
    let reply = api
        .call("/v2/offline/parseUrl", &json!({"url": links.join("\n")}))
        .await
        .ok(0);
    let tasks: Vec<Value> = reply
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"identity": r["identity"]}))
        .collect();
    let reply = api
        .call("/v2/offline/add", &json!({"path": "/ab/c", "task": tasks}))
        .await
        .ok(0);
    assert_eq!(reply.result(), &json!({"success": true, "count": 4}));

    // Newest first.
    let page = api.page(1, 20).await;
    assert_eq!(page["totalCount"], 4);
    assert_eq!(page["totalPage"], 1);
    let names: Vec<&str> = page["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["movie.mkv", "numbers", "missing.bin", "movie.bin"]);
    let ids: Vec<String> = page["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["identity"].as_str().unwrap().to_owned())
        .collect();

    for id in &ids {
        let task = wait_final(&mut api, id).await;
        let expected = if task["name"] == "missing.bin" {
            -1
        } else {
            1000
        };
        assert_eq!(task["status"], expected, "{task}");
    }
    let snapshots = emulator.sixpan_tasks();
    let http = snapshots.iter().find(|t| t.name == "movie.bin").unwrap();
    assert_eq!(http.type_code, 5020);
    assert!(std::fs::read(&http.stored_paths[0]).unwrap() == content);
    assert_eq!(http.folder, "/ab/c");
    let missing = snapshots.iter().find(|t| t.name == "missing.bin").unwrap();
    assert!(
        missing.fail_reason.as_deref().unwrap().contains("404"),
        "{missing:?}"
    );
    let ed2k = snapshots.iter().find(|t| t.name == "movie.mkv").unwrap();
    assert_eq!((ed2k.type_code, ed2k.download_size), (5040, 1000));
    assert!(ed2k.stored_paths.is_empty());

    // Paging: small pages, a clamped page size, a bad one.
    let second = api.page(2, 3).await;
    assert_eq!(second["totalPage"], 2);
    assert_eq!(second["list"].as_array().unwrap().len(), 1);
    assert_eq!(second["list"][0]["identity"], ids[3].as_str());
    assert_eq!(api.page(1, 1000).await["pageSize"], 100);
    api.call("/v2/offline/page", &json!({"page": 1, "pageSize": 0}))
        .await
        .err(400, "PARAMETER_ERROR");

    // Delete: unknown identities are ignored.
    let reply = api
        .call(
            "/v2/offline/delete",
            &json!({"identities": [ids[0], ids[1], "ffffffffffffffffffffffffffffffff"]}),
        )
        .await
        .ok(0);
    assert_eq!(reply.result(), 2);
    let page = api.page(1, 20).await;
    assert_eq!(page["totalCount"], 2);
    assert_eq!(emulator.sixpan_tasks().len(), 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_methods_and_bodies() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let token = api.token.clone().unwrap();
    let r = api
        .send(
            Method::GET,
            "/v2/user/info",
            &[("Qingzhen-Token", &token)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "POST");
    assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
    api.post_with("/v2/nothing", Some(&token), &json!({}))
        .await
        .err(404, "API_NOT_FOUND");
    let r = api
        .send(Method::POST, "/wcs/nothing", &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    api.call("/v2/offline/page", &json!({"page": "one"}))
        .await
        .err(400, "PARAMETER_ERROR");
    let r = api
        .send(
            Method::POST,
            "/v2/offline/page",
            &[("Qingzhen-Token", api.token.as_deref().unwrap())],
            "{not json",
        )
        .await
        .err(400, "PARAMETER_ERROR");
    assert_eq!(r.json["status"], 0);
    let r = api
        .send(
            Method::POST,
            "/v1/store/token",
            &[("Qingzhen-Token", r.new_token().as_deref().unwrap())],
            vec![b' '; 2 * MIB],
        )
        .await
        .err(413, "REQUEST_TOO_LARGE");
    assert_eq!(r.json["status"], 413, "v1 errors repeat the HTTP status");
    // The 123pan half still answers.
    let r = api
        .send(
            Method::POST,
            "/api/v1/access_token",
            &[("platform", "open_platform")],
            "{}",
        )
        .await;
    assert!(r.json.get("x-traceID").is_some(), "{r:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_running_downloads() {
    let mut files = BTreeMap::new();
    files.insert(
        "slow.bin".to_owned(),
        ServedFile::new("application/octet-stream", pattern(MIB)),
    );
    let source = SourceServer::start(files).await.unwrap();
    let emulator = start(EmulatorConfig {
        fetch_rate: Some(64 * 1024),
        ..EmulatorConfig::default()
    })
    .await;
    let mut api = SixPan::new(&emulator);
    api.login(&emulator).await;
    let reply = api
        .call(
            "/v2/offline/parseUrl",
            &json!({"url": source.file_url("slow.bin")}),
        )
        .await
        .ok(0);
    let id = add_one(&mut api, json!({"identity": reply.result()[0]["identity"]})).await;
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        let task = emulator
            .sixpan_tasks()
            .into_iter()
            .find(|t| t.identity == id)
            .unwrap();
        if task.download_size > 0 {
            assert_eq!(task.status, TaskStatus::Downloading);
            assert!(task.progress > 0.0 && task.progress < 100.0, "{task:?}");
            assert_eq!(task.size, MIB as u64);
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {task:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::timeout(Duration::from_secs(6), emulator.shutdown())
        .await
        .expect("shutdown does not wait for the whole download");
}
