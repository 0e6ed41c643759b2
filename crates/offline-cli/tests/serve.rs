//! `offline serve` as a real process against the in-process emulator, driven over
//! real loopback HTTP with aria2 JSON-RPC: add a link into a folder, see it complete,
//! the secret and the refusals; a kill -9 right after a multicall of adds and a
//! restart: nothing created twice, nothing lost.

mod common;

use std::time::Duration;

use common::*;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_emulator::EmulatorConfig;
use serde_json::{json, Value};

/// Starts `offline serve` on an ephemeral loopback port; the process and its URL.
fn serve(env: &Env, state: &str, extra: &[&str]) -> (Running, String) {
    serve_daemon(env, &[], state, extra)
}

/// Asks `tellStatus` until the download is `complete` (or `error`); its status.
async fn until_stopped(url: &str, gid: &str, token: &str) -> Value {
    for _ in 0..400 {
        let (_, answer) = rpc(url, &call("aria2.tellStatus", json!([token, gid]))).await;
        let status = answer["result"]["status"].as_str().unwrap_or("").to_owned();
        if status == "complete" || status == "error" {
            return answer["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{gid} did not stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_added_link_completes_into_its_folder_and_refusals_are_aria2_errors() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let (_daemon, url) = serve(&env, state.to_str().unwrap(), &["--rpc-secret", "s3"]);
    let source = env.url(1);

    // The secret: without it, aria2's Unauthorized (code 1); the listing methods are open.
    let (_, refused) = rpc(&url, &call("aria2.addUri", json!([[source]]))).await;
    assert_eq!(refused["error"]["code"], 1, "{refused}");
    assert_eq!(refused["error"]["message"], "Unauthorized");
    let (_, methods) = rpc(&url, &call("system.listMethods", json!([]))).await;
    assert!(methods["result"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "aria2.addUri"));

    // A magnet is refused at once: 123pan's open platform fetches http(s) only.
    let (_, magnet) = rpc(
        &url,
        &call(
            "aria2.addUri",
            json!([
                "token:s3",
                ["magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"]
            ]),
        ),
    )
    .await;
    assert_eq!(magnet["error"]["code"], 1, "{magnet}");
    assert!(magnet["error"]["message"]
        .as_str()
        .unwrap()
        .contains("http and https"));

    // addUri into a folder given by path; it completes there.
    let (status, added) = rpc(
        &url,
        &call(
            "aria2.addUri",
            json!(["token:s3", [source], {"dir": "/Downloads/aria2"}]),
        ),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    let gid = added["result"].as_str().unwrap().to_owned();
    assert_eq!(gid.len(), 16);
    let done = until_stopped(&url, &gid, "token:s3").await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["dir"], "/Downloads/aria2");
    let task = &env.emu.tasks()[0];
    assert_eq!(task.drive_path.as_deref(), Some("/Downloads/aria2/f.bin"));
    // The stored file's length is looked up once it completes.
    let mut sized = Value::Null;
    for _ in 0..200 {
        let keys = json!(["token:s3", gid, ["totalLength", "completedLength", "files"]]);
        let (_, s) = rpc(&url, &call("aria2.tellStatus", keys)).await;
        sized = s["result"].clone();
        if sized["totalLength"] == "1000" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sized["totalLength"], "1000", "{sized}");
    assert_eq!(sized["completedLength"], "1000", "{sized}");
    assert_eq!(
        sized["files"][0]["path"], "/Downloads/aria2/f.bin",
        "{sized}"
    );

    let (_, stopped) = rpc(
        &url,
        &call(
            "aria2.tellStopped",
            json!(["token:s3", 0, 10, ["gid", "status"]]),
        ),
    )
    .await;
    assert_eq!(
        stopped["result"],
        json!([{"gid": gid, "status": "complete"}])
    );
    let (_, removed) = rpc(
        &url,
        &call("aria2.removeDownloadResult", json!(["token:s3", gid])),
    )
    .await;
    assert_eq!(removed["result"], "OK");
    let (_, stat) = rpc(&url, &call("aria2.getGlobalStat", json!(["token:s3"]))).await;
    assert_eq!(stat["result"]["numStopped"], "0", "{stat}");

    // A second daemon on the same state file is refused (exit 8): it would submit the
    // same pending rows.
    let o = env
        .run(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
        ])
        .await;
    assert_eq!(
        o.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A non-loopback address without a secret, and a callback URL for 6pan (which
    // sends none), are refused before anything.
    let o = env
        .run(&[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--state",
            state.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2));
    let o = env
        .run(&[
            "--provider",
            "6pan",
            "serve",
            "--callback-url",
            "http://127.0.0.1:1",
            "--state",
            state.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2));
    // A report prefix that is not an absolute path names no mount point.
    let o = env
        .run(&[
            "serve",
            "--report-path-prefix",
            "mnt/cloud",
            "--state",
            state.to_str().unwrap(),
        ])
        .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--report-path-prefix"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_websocket_answers_calls_and_notifies_start_and_complete() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let (_daemon, url) = serve(&env, state.to_str().unwrap(), &[]);
    let ws_url = url.replacen("http://", "ws://", 1);

    // A page on another host may not connect (its browser sends its Origin).
    let mut foreign = ws_url.as_str().into_client_request_for_test();
    foreign
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(foreign).await.is_err());

    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    let add = call("aria2.addUri", json!([[env.url(7)]]));
    socket.send(Message::text(add.to_string())).await.unwrap();
    let mut gid = None;
    let mut seen = Vec::new();
    while !seen.iter().any(|m| m == "aria2.onDownloadComplete") {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame within 20 s")
            .unwrap()
            .unwrap();
        let value: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        if value["id"] == "t" {
            gid = Some(value["result"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(
                value["params"][0]["gid"].as_str(),
                gid.as_deref(),
                "{value}"
            );
            seen.push(value["method"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, ["aria2.onDownloadStart", "aria2.onDownloadComplete"]);
}

/// A WebSocket request for `url` whose headers a test can change.
trait ForTest {
    fn into_client_request_for_test(self) -> http::Request<()>;
}

impl ForTest for &str {
    fn into_client_request_for_test(self) -> http::Request<()> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        self.into_client_request().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_after_a_multicall_of_adds_loses_nothing_and_creates_nothing_twice() {
    // Creates paced at 20/s: the kill lands while most are still pending.
    let env = Env::start(EmulatorConfig::default(), 20.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let state = state.to_str().unwrap();
    let pace = ["--rate-limit", "offline_download=20"];
    let (mut daemon, url) = serve(&env, state, &pace);
    let n = 100;
    let calls: Vec<Value> = (0..n)
        .map(|i| json!({"methodName": "aria2.addUri", "params": [[env.url(i)]]}))
        .collect();
    let (_, answer) = rpc(&url, &call("system.multicall", json!([calls]))).await;
    let gids: Vec<String> = answer["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(gids.len(), n);
    // kill -9 after a few creates.
    for _ in 0..200 {
        if env.emu.tasks().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unsafe_kill(daemon.id());
    let _ = daemon.wait();
    let before = env.emu.tasks().len();
    assert!(
        before < n,
        "the kill came too late to test anything ({before})"
    );

    let (_daemon, url) = serve(&env, state, &pace);
    let mut outcomes = Vec::new();
    for gid in &gids {
        outcomes.push(until_stopped(&url, gid, "token:unused-no-secret").await);
    }
    // Every link created at most once; each one either complete or reported unknown.
    let tasks = env.emu.tasks();
    let mut sources: Vec<&str> = tasks.iter().map(|t| t.url.as_str()).collect();
    sources.sort_unstable();
    let created = sources.len();
    sources.dedup();
    assert_eq!(sources.len(), created, "a link was created twice");
    let unknown = outcomes
        .iter()
        .filter(|o| o["status"] == "error")
        .inspect(|o| {
            assert!(
                o["errorMessage"]
                    .as_str()
                    .unwrap()
                    .contains("answer was lost"),
                "{o}"
            );
        })
        .count();
    let complete = outcomes
        .iter()
        .filter(|o| o["status"] == "complete")
        .count();
    assert_eq!(complete + unknown, n);
    // A create in flight at the kill may exist (unknown); every other created link
    // completed, and nothing completed that was not created.
    assert!(
        complete <= created && created - complete <= unknown,
        "{complete} {created} {unknown}"
    );
    assert!(
        unknown <= 1,
        "at most the one in flight is unknown: {unknown}"
    );
}

/// SIGKILL.
fn unsafe_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// POSTs `body` to `url` (a callback route); the HTTP status.
async fn post_status(url: &str, body: &Value) -> u16 {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    client.request(req).await.unwrap().status().as_u16()
}

// A create whose answer is lost (the emulator carries it out, then drops the
// connection) is reported unknown, and resolved when the drive's callback for it —
// its URL names the task's GID and token — arrives and the file it names checks out.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_create_is_resolved_by_its_callback() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let (_daemon, url) = serve(&env, state.to_str().unwrap(), &[]);
    // A first download: the token and the folder are in place.
    let (_, first) = rpc(&url, &call("aria2.addUri", json!([[env.url(1)]]))).await;
    let first = first["result"].as_str().unwrap().to_owned();
    assert_eq!(
        until_stopped(&url, &first, "token:x").await["status"],
        "complete"
    );
    assert!(
        env.emu.tasks()[0]
            .callback_url
            .as_deref()
            .is_some_and(|c| c.contains(&format!("/callback/{first}/"))),
        "tasks are created with the daemon's callback URL: {:?}",
        env.emu.tasks()[0].callback_url
    );

    // The next create is carried out and its answer lost; its callback comes late.
    env.emu.set_faults(offline_emulator::Faults {
        drop_after: 1.0,
        callback_delay: Duration::from_millis(1500),
        ..offline_emulator::Faults::default()
    });
    let (_, added) = rpc(&url, &call("aria2.addUri", json!([[env.url(2)]]))).await;
    let gid = added["result"].as_str().unwrap().to_owned();
    let lost = until_stopped(&url, &gid, "token:x").await;
    env.emu.set_faults(offline_emulator::Faults::default());
    assert_eq!(lost["status"], "error", "{lost}");
    assert!(
        lost["errorMessage"].as_str().unwrap().contains("was lost"),
        "{lost}"
    );
    // The callback arrives: complete, and the store says so after a restart too.
    let mut resolved = Value::Null;
    for _ in 0..200 {
        let (_, s) = rpc(&url, &call("aria2.tellStatus", json!([gid, ["status"]]))).await;
        resolved = s["result"].clone();
        if resolved["status"] == "complete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(resolved["status"], "complete", "{resolved}");
    assert_eq!(env.emu.tasks().len(), 2, "nothing was created twice");
}

// A callback is a hint: with a wrong token it is dropped (404); with the right one
// for a task still running, the progress call has the last word and the task stays
// active.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_callback_does_not_end_a_running_task() {
    let env = Env::start(
        EmulatorConfig {
            fetch_rate: Some(1),
            ..EmulatorConfig::default()
        },
        1000.0,
        bin_and_png(),
    )
    .await;
    let state = env.path("serve.sqlite");
    let (_daemon, url) = serve(&env, state.to_str().unwrap(), &[]);
    let source = env.url(3);
    let (_, added) = rpc(&url, &call("aria2.addUri", json!([[source]]))).await;
    let gid = added["result"].as_str().unwrap().to_owned();
    let mut callback = None;
    for _ in 0..200 {
        callback = env.emu.tasks().first().and_then(|t| t.callback_url.clone());
        if callback.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let callback = callback.expect("the task was created with a callback URL");
    let forged = json!({"url": source, "status": 0, "failReason": "", "fileID": 1});
    let wrong = format!("{}0", callback.trim_end_matches(|c: char| c != '/'));
    assert_eq!(post_status(&wrong, &forged).await, 404);
    assert_eq!(post_status(&callback, &forged).await, 204);
    // Confirmed by the progress call (asked at once): it stays active throughout.
    for _ in 0..10 {
        let (_, s) = rpc(&url, &call("aria2.tellStatus", json!([gid, ["status"]]))).await;
        assert_eq!(s["result"]["status"], "active", "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
