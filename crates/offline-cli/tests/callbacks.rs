//! `offline callbacks --listen`: the emulator's real callbacks arrive and are
//! confirmed with the progress call; forged ones (a success for a task that failed, a
//! URL no task has, a status that means nothing) are reported unconfirmed; requests
//! that are not JSON callbacks are refused with 405, 415, 413 or 400.

use std::process::Stdio;
use std::time::Duration;

use offline_emulator::EmulatorConfig;
use serde_json::Value;
use tokio::task::block_in_place;

mod common;
use common::{eventually, json_lines, octets, output, post, Env, Running};

async fn setup() -> Env {
    let config = EmulatorConfig {
        // Slow enough that a task is still running when `add` has journaled it.
        fetch_rate: Some(100_000),
        ..EmulatorConfig::default()
    };
    Env::start(config, 200.0, [("ok.bin".to_owned(), octets(1, 50_000))]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn real_callbacks_are_confirmed_and_forged_ones_are_not() {
    let env = setup().await;
    let emu = &env.emu;
    let ok = env.src.file_url("ok.bin");
    let missing = env.src.file_url("missing.bin");
    let batch = env.path("batch.txt");
    std::fs::write(&batch, format!("{ok}\n{missing}\n")).unwrap();

    // The listener: two real callbacks and three forged ones, then it stops.
    let mut listener = Running::spawn(
        env.cmd(&["--json", "callbacks", "--listen", "127.0.0.1:0", "--from"])
            .arg(&batch)
            .args(["--max", "4", "--timeout", "120"]),
    );
    let listening = listener.json_line();
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
    let mut add = env.cmd(&["--json", "add", "--from"]);
    add.arg(&batch).args(["--callback", &url, "--wait"]);
    let out = output(add).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "one task fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both callbacks were delivered before the forged ones are sent.
    eventually(Duration::from_secs(10), || {
        emu.tasks().iter().all(|t| t.callback_delivered)
    })
    .await;
    assert!(emu.tasks().iter().all(|t| t.callback_delivered));

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
        lines.push(block_in_place(|| listener.json_line()));
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

    let o = block_in_place(|| listener.wait());
    lines.extend(json_lines(&o.stdout));
    let errors = String::from_utf8_lossy(&o.stderr);

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

/// The emulator with one task that succeeded: its `ID=URL` for `--task`.
async fn finished_task() -> (Env, String, String) {
    let env = setup().await;
    let ok = env.src.file_url("ok.bin");
    let out = output(env.cmd(&["--json", "add", &ok, "--wait"])).await;
    assert_eq!(out.status.code(), Some(0));
    let task = format!("{}={ok}", env.emu.tasks()[0].id.0);
    (env, ok, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_on_the_command_line_and_a_timeout() {
    // A task created beforehand, named with its URL on the command line.
    let (env, ok, task) = finished_task().await;

    let mut listener = Running::spawn(
        env.cmd(&["callbacks", "--listen", "127.0.0.1:0", "--timeout", "3"])
            .args(["--task", &task, "--task", "424242"])
            .stderr(Stdio::null()),
    );
    let first = listener.line();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the first line names the URL")
        .to_owned();
    let body = serde_json::json!({"url": ok, "status": 0, "fileID": 1}).to_string();
    assert_eq!(post(&url, "application/json", body).await, 200);
    let o = block_in_place(|| listener.wait());
    let rest: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
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
    let (env, ok, task) = finished_task().await;
    let mut listener = Running::spawn(
        env.cmd(&["--json", "callbacks", "--listen", "127.0.0.1:0"])
            .args(["--task", &task, "--max", "1"])
            .args(["--timeout", "60"])
            .stderr(Stdio::null()),
    );
    let listening = listener.json_line();
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

    let o = block_in_place(|| listener.wait());
    let lines = json_lines(&o.stdout);
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
