//! `offline serve` as a qBittorrent and a Transmission: real processes against the
//! in-process emulator, driven over loopback HTTP as the media apps drive those
//! clients.
//!
//! - 6pan: a multi-file torrent added through Transmission with a file left out
//!   (`files-unwanted`) completes partly done (status 900) and both interfaces report
//!   exactly the selected file as complete; qBittorrent's login, categories (a drive
//!   folder made on first use), tags, `sync/maindata` increments.
//! - A task added paused is never submitted, keeps its category, tags and hold over
//!   a kill -9 and a restart, and completes once resumed.
//! - 123pan: a link completes with its stored file; `deleteFiles` moves that file to
//!   the drive's trash; a magnet is refused in each protocol's own way.

mod common;

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_emulator::EmulatorConfig;
use serde_json::{json, Value};

/// An HTTP answer: status, headers, body.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

/// One plain HTTP request.
async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = client
        .request(req.body(Full::new(body.into())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// The head of the answer to a `POST` to `url` whose head (with `headers`) announces
/// a body of 16 MiB + 1 bytes that is never sent: what the daemon says before reading
/// any of it (a daemon waiting for the body would not answer within 10 s).
async fn unsent_body(url: &str, headers: &[(&str, &str)]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        (16 << 20) + 1
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("no answer while the body was unsent")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// The daemon's base URL (`http://127.0.0.1:PORT`) from its `/jsonrpc` URL.
fn base_of(url: &str) -> String {
    url.trim_end_matches("/jsonrpc").to_owned()
}

/// A qBittorrent Web API session: the base URL and the SID cookie.
struct Qbt {
    base: String,
    cookie: String,
}

impl Qbt {
    async fn login(base: &str, password: &str) -> Self {
        let wrong = send(
            "POST",
            &format!("{base}/api/v2/auth/login"),
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("username=admin&password={password}x"),
        )
        .await;
        assert_eq!((wrong.status, wrong.text().as_str()), (200, "Fails."));
        let ok = send(
            "POST",
            &format!("{base}/api/v2/auth/login"),
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("username=admin&password={password}"),
        )
        .await;
        assert_eq!((ok.status, ok.text().as_str()), (200, "Ok."));
        let cookie = ok.header("set-cookie").expect("a SID cookie");
        let sid = cookie.split(';').next().unwrap().to_owned();
        assert!(sid.starts_with("SID="), "{cookie}");
        Self {
            base: base.to_owned(),
            cookie: sid,
        }
    }

    async fn get(&self, path_and_query: &str) -> Answer {
        send(
            "GET",
            &format!("{}/api/v2/{path_and_query}", self.base),
            &[("cookie", &self.cookie)],
            Bytes::new(),
        )
        .await
    }

    async fn post(&self, path: &str, form: &str) -> Answer {
        send(
            "POST",
            &format!("{}/api/v2/{path}", self.base),
            &[
                ("cookie", &self.cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form.to_owned(),
        )
        .await
    }
}

/// A Transmission RPC client: the URL, the Basic credentials, the session ID.
struct Trn {
    url: String,
    auth: String,
    session: String,
}

impl Trn {
    async fn connect(base: &str, password: &str) -> Self {
        let url = format!("{base}/transmission/rpc");
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
        );
        let body = json!({"method": "session-get"}).to_string();
        let refused = send("POST", &url, &[], body.clone()).await;
        assert_eq!(refused.status, 401, "{}", refused.text());
        let first = send("POST", &url, &[("authorization", &auth)], body).await;
        assert_eq!(first.status, 409, "{}", first.text());
        let session = first
            .header("x-transmission-session-id")
            .expect("the session ID");
        Self { url, auth, session }
    }

    async fn call(&self, method: &str, arguments: Value) -> Value {
        let body = json!({"method": method, "arguments": arguments, "tag": 7}).to_string();
        let answer = send(
            "POST",
            &self.url,
            &[
                ("authorization", &self.auth),
                ("x-transmission-session-id", &self.session),
            ],
            body,
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let value = answer.json();
        assert_eq!(value["tag"], 7, "{value}");
        value
    }
}

/// How many tasks the emulated 6pan has for `link`.
fn sixpan_tasks_of(env: &Env, link: &str) -> usize {
    env.emu
        .sixpan_tasks()
        .iter()
        .filter(|t| t.url == link)
        .count()
}

const PASSWORD: &str = "clients-test-password";

/// An emulator whose simulated 6pan tasks (magnets) take a second.
fn quick() -> EmulatorConfig {
    EmulatorConfig {
        sixpan_simulated_duration: Duration::from_secs(1),
        ..EmulatorConfig::default()
    }
}

fn serve_6pan(env: &Env, state: &str) -> (Running, String) {
    let (daemon, url) = serve_daemon(
        env,
        &["--provider", "6pan"],
        state,
        &[
            "--web-password",
            PASSWORD,
            "--report-path-prefix",
            "/mnt/cloud",
        ],
    );
    (daemon, base_of(&url))
}

/// Polls `torrent-get` of `id` until `isFinished` or an error; the torrent.
async fn until_finished(trn: &Trn, id: &Value, fields: &[&str]) -> Value {
    for _ in 0..600 {
        let got = trn
            .call("torrent-get", json!({"ids": [id], "fields": fields}))
            .await;
        let t = got["arguments"]["torrents"][0].clone();
        if t["isFinished"] == true || t["error"].as_i64().unwrap_or(0) != 0 {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("torrent {id} did not finish");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torrent_with_a_file_left_out_reports_exactly_the_selected_file_in_both_interfaces() {
    let env = Env::start(quick(), 1000.0, seed_files("text/plain", &SEED)).await;
    let state = env.path("serve.sqlite");
    let (_daemon, base) = serve_6pan(&env, state.to_str().unwrap());

    let qbt = Qbt::login(&base, PASSWORD).await;
    // Categories are drive folders; a non-absolute save path is refused.
    let made = qbt
        .post(
            "torrents/createCategory",
            "category=tv&savePath=%2FMedia%2FTV",
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let again = qbt
        .post(
            "torrents/createCategory",
            "category=tv&savePath=%2FMedia%2FTV",
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
    let cats = qbt.get("torrents/categories").await.json();
    assert_eq!(cats["tv"]["savePath"], "/mnt/cloud/Media/TV", "{cats}");

    // Transmission: the torrent with b.txt left out, labelled `tv` (the category).
    let trn = Trn::connect(&base, PASSWORD).await;
    let mut builder = offline_proto::torrent::TorrentBuilder::new("pack")
        .web_seed(format!("{}/files/seed/", env.src.base_url()));
    for (name, data) in SEED {
        builder = builder.file(&[name], data.to_vec());
    }
    let metainfo = base64::engine::general_purpose::STANDARD.encode(builder.build());
    let added = trn
        .call(
            "torrent-add",
            json!({"metainfo": metainfo, "files-unwanted": [1], "labels": ["tv", "sonarr"]}),
        )
        .await;
    assert_eq!(added["result"], "success", "{added}");
    let torrent = &added["arguments"]["torrent-added"];
    let id = torrent["id"].clone();
    let hash = torrent["hashString"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 40);

    // sync/maindata: a full update first, then only changes.
    let full = qbt.get("sync/maindata?rid=0").await.json();
    assert_eq!(full["full_update"], true, "{full}");
    let rid = full["rid"].as_i64().unwrap();
    assert_eq!(full["torrents"][&hash]["category"], "tv", "{full}");

    let fields = [
        "id",
        "name",
        "status",
        "percentDone",
        "leftUntilDone",
        "isFinished",
        "error",
        "errorString",
        "downloadDir",
        "labels",
        "files",
        "fileStats",
        "wanted",
        "sizeWhenDone",
        "totalSize",
    ];
    let t = until_finished(&trn, &id, &fields).await;
    assert_eq!(t["error"], 0, "{t}");
    assert_eq!(t["percentDone"], 1.0, "{t}");
    assert_eq!(t["leftUntilDone"], 0, "{t}");
    assert_eq!(t["downloadDir"], "/mnt/cloud/Media/TV", "{t}");
    assert_eq!(t["labels"], json!(["tv", "sonarr"]), "{t}");
    let (a, b) = (SEED[0].1.len(), SEED[1].1.len());
    assert_eq!(t["sizeWhenDone"], a, "{t}");
    assert_eq!(t["totalSize"], a + b, "{t}");
    assert_eq!(t["wanted"], json!([1, 0]), "{t}");
    assert_eq!(t["fileStats"][0]["bytesCompleted"], a, "{t}");
    assert_eq!(t["fileStats"][1]["bytesCompleted"], 0, "{t}");
    assert_eq!(t["fileStats"][1]["wanted"], false, "{t}");

    // qBittorrent sees the same task: complete, the selected file whole.
    let info = qbt
        .get(&format!("torrents/info?hashes={hash}"))
        .await
        .json();
    let q = &info[0];
    assert_eq!(q["state"], "pausedUP", "{q}");
    assert_eq!(q["progress"], 1.0, "{q}");
    assert_eq!(q["category"], "tv", "{q}");
    assert_eq!(q["save_path"], "/mnt/cloud/Media/TV", "{q}");
    assert_eq!(q["content_path"], "/mnt/cloud/Media/TV/pack", "{q}");
    let files = qbt.get(&format!("torrents/files?hash={hash}")).await.json();
    assert_eq!(files[0]["progress"], 1.0, "{files}");
    assert_eq!(files[0]["priority"], 1, "{files}");
    assert_eq!(files[1]["priority"], 0, "{files}");
    let later = qbt.get(&format!("sync/maindata?rid={rid}")).await.json();
    assert!(later["rid"].as_i64().unwrap() > rid, "{later}");
    assert_ne!(later["full_update"], true, "{later}");
    assert_eq!(later["torrents"][&hash]["state"], "pausedUP", "{later}");
    assert!(later["torrents"][&hash].get("name").is_none(), "{later}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_task_is_held_over_a_kill_and_a_restart_and_completes_once_resumed() {
    let env = Env::start(quick(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let state = state.to_str().unwrap();
    let (mut daemon, base) = serve_6pan(&env, state);
    let qbt = Qbt::login(&base, PASSWORD).await;
    assert_eq!(
        qbt.post("torrents/createCategory", "category=movies&savePath=")
            .await
            .status,
        200
    );
    let link = env.url(1);
    let form = format!(
        "urls={}&category=movies&tags=radarr,4k&paused=true",
        form_urlencoded::byte_serialize(link.as_bytes()).collect::<String>()
    );
    let added = qbt.post("torrents/add", &form).await;
    assert_eq!((added.status, added.text().as_str()), (200, "Ok."));
    let info = qbt.get("torrents/info?category=movies").await.json();
    let hash = info[0]["hash"].as_str().unwrap().to_owned();
    assert_eq!(info[0]["state"], "pausedDL", "{info}");
    assert_eq!(info[0]["tags"], "4k, radarr", "{info}");
    // The category has no save path: the default folder's subfolder of its name.
    assert_eq!(info[0]["save_path"], "/mnt/cloud/movies", "{info}");

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        tasks_per_url(&env.emu).is_empty(),
        "a held task reached the drive"
    );
    assert!(kill("-KILL", daemon.id()));
    let _ = daemon.wait();

    let (_daemon, base) = serve_6pan(&env, state);
    let qbt = Qbt::login(&base, PASSWORD).await;
    let info = qbt
        .get(&format!("torrents/info?hashes={hash}"))
        .await
        .json();
    assert_eq!(info[0]["state"], "pausedDL", "{info}");
    assert_eq!(info[0]["category"], "movies", "{info}");
    assert_eq!(info[0]["tags"], "4k, radarr", "{info}");
    let cats = qbt.get("torrents/categories").await.json();
    assert!(cats.get("movies").is_some(), "{cats}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        tasks_per_url(&env.emu).is_empty(),
        "a held task reached the drive"
    );

    let resumed = qbt.post("torrents/resume", &format!("hashes={hash}")).await;
    assert_eq!(resumed.status, 200);
    let mut state_seen = String::new();
    for _ in 0..600 {
        let info = qbt
            .get(&format!("torrents/info?hashes={hash}"))
            .await
            .json();
        state_seen = info[0]["state"].as_str().unwrap_or("").to_owned();
        if state_seen == "pausedUP" || state_seen == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state_seen, "pausedUP");
    assert_eq!(sixpan_tasks_of(&env, &link), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_123pan_delete_files_trashes_the_stored_file_and_magnets_are_refused() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let (_daemon, url) = serve_daemon(
        &env,
        &[],
        state.to_str().unwrap(),
        &["--web-password", PASSWORD],
    );
    let base = base_of(&url);
    let qbt = Qbt::login(&base, PASSWORD).await;
    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
    let refused = qbt
        .post(
            "torrents/add",
            &format!(
                "urls={}",
                form_urlencoded::byte_serialize(magnet.as_bytes()).collect::<String>()
            ),
        )
        .await;
    assert_eq!((refused.status, refused.text().as_str()), (200, "Fails."));
    let trn = Trn::connect(&base, PASSWORD).await;
    let refused = trn.call("torrent-add", json!({"filename": magnet})).await;
    assert_ne!(refused["result"], "success", "{refused}");
    assert!(
        refused["result"].as_str().unwrap().contains("http"),
        "the drive's reason: {refused}"
    );

    let link = env.url(3);
    let added = trn
        .call(
            "torrent-add",
            json!({"filename": link, "download-dir": "/Movies/2026"}),
        )
        .await;
    let id = added["arguments"]["torrent-added"]["id"].clone();
    let t = until_finished(&trn, &id, &["id", "isFinished", "error", "name", "files"]).await;
    assert_eq!(t["error"], 0, "{t}");
    let name = t["name"].as_str().unwrap().to_owned();
    let listed = env.run(&["--json", "ls", "/Movies/2026"]).await;
    let file_id = json_lines(&listed.stdout)
        .into_iter()
        .find(|l| l["event"] == "file" && l["name"] == name.as_str())
        .and_then(|l| l["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} is not stored in /Movies/2026"));
    let trashed = || async {
        let out = env.run(&["--json", "info", &file_id]).await;
        json_lines(&out.stdout)
            .into_iter()
            .find(|l| l["event"] == "file")
            .map(|l| l["trashed"].clone())
    };
    assert_eq!(trashed().await, Some(json!(false)));

    let removed = trn
        .call(
            "torrent-remove",
            json!({"ids": [id], "delete-local-data": true}),
        )
        .await;
    assert_eq!(removed["result"], "success", "{removed}");
    let mut in_trash = false;
    for _ in 0..200 {
        if trashed().await == Some(json!(true)) {
            in_trash = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(in_trash, "the stored file was not moved to the trash");
    let got = trn.call("torrent-get", json!({"fields": ["id"]})).await;
    assert_eq!(got["arguments"]["torrents"], json!([]), "{got}");
}

/// Bodies are read only as far as the caller is trusted: a peer without a qBittorrent
/// session sends a login form at most (413 past it), a Transmission caller without
/// the login or the session ID gets its 401 or 409 before any of its body is read, a
/// logged-in one gets 413 past 16 MiB, a broken multipart form is a 400; the daemon
/// answers normally afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_are_bounded_by_who_sends_them() {
    let env = Env::start(quick(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let (_daemon, base) = serve_6pan(&env, state.to_str().unwrap());
    let form = [("content-type", "application/x-www-form-urlencoded")];

    // qBittorrent: no session, a body past the anonymous bound.
    let big = format!("urls={}", "a".repeat(100 << 10));
    let anonymous = send(
        "POST",
        &format!("{base}/api/v2/torrents/add"),
        &form,
        big.clone(),
    )
    .await;
    assert_eq!(anonymous.status, 413, "{}", anonymous.text());
    // A small one is read, and refused as qBittorrent refuses it.
    let small = send(
        "POST",
        &format!("{base}/api/v2/torrents/add"),
        &form,
        "urls=x",
    )
    .await;
    assert_eq!((small.status, small.text().as_str()), (403, "Forbidden"));
    // With a session the same body is read (and the link refused by the drive).
    let qbt = Qbt::login(&base, PASSWORD).await;
    let read = qbt.post("torrents/add", &big).await;
    assert_eq!((read.status, read.text().as_str()), (200, "Fails."));
    let broken = send(
        "POST",
        &format!("{base}/api/v2/torrents/add"),
        &[
            ("cookie", &qbt.cookie),
            ("content-type", "multipart/form-data; boundary=XyZ"),
        ],
        "--XyZ\r\nContent-Disposition: form-data; name=\"urls\"\r\n\r\nhttp://a/b",
    )
    .await;
    assert_eq!(broken.status, 400, "{}", broken.text());

    // Transmission: the login and the session ID come before the body.
    let url = format!("{base}/transmission/rpc");
    // Announced at 16 MiB + 1 and never sent: the answer comes without it.
    let refused = unsent_body(&url, &[]).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let trn = Trn::connect(&base, PASSWORD).await;
    let no_session = unsent_body(&url, &[("authorization", &trn.auth)]).await;
    assert!(no_session.starts_with("HTTP/1.1 409"), "{no_session}");
    let huge = vec![b' '; (16 << 20) + 1];
    let too_big = send(
        "POST",
        &url,
        &[
            ("authorization", &trn.auth),
            ("x-transmission-session-id", &trn.session),
        ],
        huge,
    )
    .await;
    assert_eq!(too_big.status, 413, "{}", too_big.text());

    // Still answering.
    let got = trn
        .call("session-get", json!({"fields": ["version"]}))
        .await;
    assert_eq!(got["result"], "success", "{got}");
    assert_eq!(qbt.get("app/version").await.text(), "v4.6.7");
}
