//! `offline callbacks --listen`: the emulator's real callbacks arrive and are
//! confirmed with the progress call; forged ones (a success for a task that failed, a
//! URL no task has, a status that means nothing) are reported unconfirmed; requests
//! that are not JSON callbacks are refused with 405, 415, 413 or 400.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, EndpointId, RunningEmulator};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_offline");

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn setup() -> (RunningEmulator, SourceServer) {
    let emu = Emulator::start(EmulatorConfig {
        // Slow enough that a task is still running when `add` has journaled it.
        fetch_rate: Some(100_000),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    for e in EndpointId::ALL {
        emu.set_rate_limit(e, 200.0);
    }
    let mut files = BTreeMap::new();
    files.insert(
        "ok.bin".to_owned(),
        ServedFile::new("application/octet-stream", vec![1u8; 50_000]),
    );
    (emu, SourceServer::start(files).await.unwrap())
}

/// `offline` with the emulator's credentials and a private token cache in `dir`.
fn offline(emu: &RunningEmulator, dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["--base-url", &emu.base_url()])
        .env("OFFLINE_123PAN_CLIENT_ID", emu.client_id())
        .env("OFFLINE_123PAN_CLIENT_SECRET", emu.client_secret())
        .env("OFFLINE_CACHE_DIR", dir.join("cache"))
        .env_remove("OFFLINE_123PAN_ACCESS_TOKEN")
        .env_remove("OFFLINE_PROVIDER");
    cmd
}

async fn post(url: &str, content_type: &str, body: impl Into<Bytes>) -> u16 {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(url)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn real_callbacks_are_confirmed_and_forged_ones_are_not() {
    let (emu, src) = setup().await;
    let ok = src.file_url("ok.bin");
    let missing = src.file_url("missing.bin");
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch.txt");
    std::fs::write(&batch, format!("{ok}\n{missing}\n")).unwrap();

    // The listener: two real callbacks and three forged ones, then it stops.
    let mut child = offline(&emu, dir.path())
        .args(["--json", "callbacks", "--listen", "127.0.0.1:0", "--from"])
        .arg(&batch)
        .args(["--max", "4", "--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let guard = Guard(child);
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let listening: Value = serde_json::from_str(&first).expect("the first line is JSON");
    assert_eq!(listening["event"], "listening");
    let url = listening["url"].as_str().unwrap().to_owned();

    // Requests that are not callbacks are refused and do not count.
    assert_eq!(post(&url, "text/plain", "{}").await, 415);
    assert_eq!(
        post(&url, "application/json", vec![b' '; 70 * 1024]).await,
        413
    );
    assert_eq!(post(&url, "application/json", "{\"url\":").await, 400);
    assert_eq!(post(&url, "application/json", "{\"status\":0}").await, 400);

    // Real tasks with real callbacks: one succeeds, one fails (404 at the source).
    let out = {
        let mut cmd = offline(&emu, dir.path());
        cmd.args(["--json", "add", "--from"])
            .arg(&batch)
            .args(["--callback", &url, "--wait"]);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    assert_eq!(
        out.status.code(),
        Some(1),
        "one task fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both callbacks were delivered before the forged ones are sent.
    for _ in 0..100 {
        if emu.tasks().iter().all(|t| t.callback_delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(emu.tasks().iter().all(|t| t.callback_delivered));

    // The listener's events as they come.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let reader = tokio::task::spawn_blocking(move || {
        for line in stdout.lines() {
            let _ = tx.send(serde_json::from_str(&line.unwrap()).unwrap());
        }
        drop(guard);
    });
    let mut lines: Vec<Value> = Vec::new();
    // A URL no task has: reported unconfirmed (after one more look a second later),
    // and not counted toward --max.
    let nowhere_url = "https://elsewhere.example/x.bin";
    let body = serde_json::json!({"url": nowhere_url, "status": 0});
    assert_eq!(post(&url, "application/json", body.to_string()).await, 200);
    while !lines
        .iter()
        .any(|l| l["event"] == "callback" && l["url"] == nowhere_url)
    {
        let line = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
        lines.push(line.unwrap().expect("the listener reports it"));
    }
    // Forged for known tasks: success for the task that failed, with a fileID; a
    // status that is neither 0 nor 1.
    let forged = [
        serde_json::json!({"url": missing, "status": 0, "failReason": "", "fileID": 9}),
        serde_json::json!({"url": ok, "status": 7}),
    ];
    for body in &forged {
        assert_eq!(
            post(&url, "application/json; charset=utf-8", body.to_string()).await,
            200
        );
    }
    while let Some(line) = rx.recv().await {
        lines.push(line);
    }
    reader.await.unwrap();
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut errors).unwrap();

    let refused: Vec<&Value> = lines.iter().filter(|l| l["event"] == "refused").collect();
    let statuses: Vec<u64> = refused
        .iter()
        .map(|l| l["http_status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [415, 413, 400, 400], "{lines:#?}");
    let callbacks: Vec<&Value> = lines.iter().filter(|l| l["event"] == "callback").collect();
    assert_eq!(callbacks.len(), 5, "{lines:#?}\n{errors}");
    let find = |url: &str, status: i64| {
        callbacks
            .iter()
            .find(|c| c["url"] == url && c["status_code"] == status)
            .unwrap_or_else(|| panic!("no callback for {url} {status}: {lines:#?}"))
    };
    let tasks = emu.tasks();
    // Task IDs are strings in every event.
    let task_of = |u: &str| tasks.iter().find(|t| t.url == u).unwrap().id.0.to_string();

    let real_ok = find(&ok, 0);
    assert_eq!(real_ok["confirmed"], true, "{real_ok}");
    assert_eq!(real_ok["task"], task_of(&ok));
    assert_eq!(real_ok["task_status"], "succeeded");
    let real_failed = find(&missing, 1);
    assert_eq!(real_failed["confirmed"], true, "{real_failed}");
    assert_eq!(real_failed["task"], task_of(&missing));
    assert_eq!(real_failed["task_status"], "failed");
    assert!(!real_failed["fail_reason"].as_str().unwrap().is_empty());

    let forged_success = find(&missing, 0);
    assert_eq!(forged_success["confirmed"], false);
    assert_eq!(forged_success["file_id"], 9, "reported as sent...");
    assert_eq!(
        forged_success["unverified"],
        serde_json::json!(["file_id", "fail_reason"]),
        "...and as unverified"
    );
    assert_eq!(forged_success["task"], task_of(&missing));
    assert_eq!(forged_success["task_status"], "failed");
    assert!(
        forged_success["reason"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{forged_success}"
    );
    let nowhere = find(nowhere_url, 0);
    assert_eq!(nowhere["confirmed"], false);
    assert_eq!(nowhere["task"], Value::Null);
    assert!(nowhere["reason"]
        .as_str()
        .unwrap()
        .contains("no known task"));
    let odd = find(&ok, 7);
    assert_eq!(odd["confirmed"], false);

    let last = lines.last().unwrap();
    assert_eq!(last["event"], "stopped");
    assert_eq!(last["reason"], "max");
    assert_eq!(
        last["received"], 4,
        "the one for no known task is not counted"
    );
    assert_eq!(last["unmatched"], 1);
    assert_eq!(last["confirmed"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_on_the_command_line_and_a_timeout() {
    let (emu, src) = setup().await;
    let ok = src.file_url("ok.bin");
    let dir = tempfile::tempdir().unwrap();
    // A task created beforehand, named with its URL on the command line.
    let out = offline(&emu, dir.path())
        .args(["--json", "add", &ok, "--wait"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let id = emu.tasks()[0].id.0;

    let mut child = offline(&emu, dir.path())
        .args(["callbacks", "--listen", "127.0.0.1:0", "--timeout", "3"])
        .args(["--task", &format!("{id}={ok}"), "--task", "424242"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let guard = Guard(child);
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the first line names the URL")
        .to_owned();
    let body = serde_json::json!({"url": ok, "status": 0, "fileID": 1}).to_string();
    assert_eq!(post(&url, "application/json", body).await, 200);
    let rest: Vec<String> = tokio::task::spawn_blocking(move || {
        let lines = stdout.lines().map(Result::unwrap).collect();
        drop(guard);
        lines
    })
    .await
    .unwrap();
    assert!(
        rest[0].contains("confirmed: task") && !rest[0].contains("NOT"),
        "{rest:?}"
    );
    assert!(
        rest.last().unwrap().starts_with("stopped (timeout)"),
        "{rest:?}"
    );
}

// Issue 10 #15: 1,100 garbage callbacks (well-formed, for URLs no task has) used to be
// confirmed one at a time, about 2 s each, so the genuine callback behind them was
// answered 503 and never reported. Now they are cheap, do not count toward --max, and
// the genuine one is confirmed at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_garbage_callbacks_does_not_bury_the_genuine_one() {
    let (emu, src) = setup().await;
    let ok = src.file_url("ok.bin");
    let dir = tempfile::tempdir().unwrap();
    let out = offline(&emu, dir.path())
        .args(["--json", "add", &ok, "--wait"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let id = emu.tasks()[0].id.0;
    let mut child = offline(&emu, dir.path())
        .args(["--json", "callbacks", "--listen", "127.0.0.1:0"])
        .args([
            "--task",
            &format!("{id}={ok}"),
            "--max",
            "1",
            "--timeout",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let guard = Guard(child);
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let listening: Value = serde_json::from_str(&first).unwrap();
    let url = listening["url"].as_str().unwrap().to_owned();

    // In waves of 100 at once, so that the test stays within 1,024 open files.
    let mut accepted = 0;
    for wave in 0..11 {
        let garbage = (0..100).map(|i| {
            let url = url.clone();
            let fake = format!("https://x.example/{wave}/{i}");
            let body = serde_json::json!({"url": fake, "status": 0});
            tokio::spawn(async move { post(&url, "application/json", body.to_string()).await })
        });
        let statuses = futures_util::future::join_all(garbage).await;
        accepted += statuses.iter().filter(|s| matches!(s, Ok(200))).count();
    }
    assert_eq!(accepted, 1_100, "every garbage callback was answered 200");
    let genuine = serde_json::json!({"url": ok, "status": 0, "fileID": 1}).to_string();
    assert_eq!(post(&url, "application/json", genuine).await, 200);

    let lines: Vec<Value> = tokio::task::spawn_blocking(move || {
        let lines = stdout
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        drop(guard);
        lines
    })
    .await
    .unwrap();
    let real = lines
        .iter()
        .find(|l| l["event"] == "callback" && l["url"] == ok.as_str())
        .unwrap_or_else(|| panic!("the genuine callback was reported: {:?}", lines.last()));
    assert_eq!(real["confirmed"], true, "{real}");
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "stopped");
    assert_eq!(last["reason"], "max", "{last}");
    assert_eq!(last["received"], 1, "garbage does not count toward --max");
}
