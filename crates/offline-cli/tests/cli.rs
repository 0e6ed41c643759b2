//! The `offline` binary as a user runs it: a standalone emulator in one process, the
//! client in another, over loopback.

use std::process::Command;

use bytes::Bytes;
use offline_emulator::source::{ServedFile, SourceServer};
use serde_json::Value;
use tokio::task::block_in_place;

mod common;
use common::{json_values, serve, Standalone, BIN};

async fn sources() -> SourceServer {
    let bytes: Bytes = (0..200_000u32)
        .map(|i| (i % 13) as u8)
        .collect::<Vec<_>>()
        .into();
    serve([(
        "file.bin".to_owned(),
        ServedFile::new("application/octet-stream", bytes),
    )])
    .await
}

/// Runs `cmd`, which must exit with `code` and say `says` on stderr.
fn exits_saying(cmd: &mut Command, code: i32, says: &str) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

/// `offline add URL --wait --json` of the served `file` against a standalone emulator:
/// the emulator, and the run's [`common::outcome`].
async fn add_and_wait(file: &str) -> (Standalone, (i32, Vec<Value>, String)) {
    let emu = Standalone::start();
    let src = sources().await;
    let url = src.file_url(file);
    let ran = block_in_place(|| emu.run(&["add", &url, "--wait", "--json"]));
    (emu, ran)
}

#[tokio::test(flavor = "multi_thread")]
async fn add_wait_json_completes_a_download() {
    let (_emu, (code, lines, stderr)) = add_and_wait("file.bin").await;
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(lines[0]["event"], "created");
    let task = lines[0]["task"].as_str().unwrap().to_owned();
    let done = lines.iter().find(|l| l["event"] == "done").unwrap();
    assert_eq!(done["task"].as_str(), Some(task.as_str()));
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["percent"].as_f64(), Some(100.0));
    // Then the file it stored, in the default folder.
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "file");
    assert_eq!(last["task"].as_str(), Some(task.as_str()));
    assert_eq!(last["path"], "/来自:离线下载/file.bin");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_task_exits_1_and_status_reports_it() {
    let (emu, (code, lines, _)) = add_and_wait("missing.bin").await;
    assert_eq!(code, 1);
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "failed");
    let task = lines[0]["task"].as_str().unwrap().to_owned();
    let (code, lines, _) = block_in_place(|| emu.run(&["status", &task, "--json"]));
    assert_eq!(code, 0);
    assert_eq!(lines[0]["status"], "failed");
}

#[test]
fn provider_errors_are_one_line_with_code_and_trace_id() {
    let emu = Standalone::start();
    let (code, _, stderr) = emu.run(&["status", "999999"]);
    assert_eq!(code, 3);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: task 999999: "), "{stderr}");
    assert!(lines[0].contains("code "), "{stderr}");
    assert!(lines[0].contains("trace ID"), "{stderr}");
}

#[test]
fn invalid_input_and_missing_credentials_exit_6() {
    let emu = Standalone::start();
    let (code, lines, _) = emu.run(&["add", "ftp://example.com/x", "--json"]);
    assert_eq!(code, 6);
    assert_eq!(lines[0]["event"], "error");
    assert_eq!(lines[0]["kind"], "config");
    exits_saying(
        emu.cmd(&["status", "1"])
            .env_remove("OFFLINE_123PAN_CLIENT_ID")
            .env_remove("OFFLINE_123PAN_CLIENT_SECRET"),
        6,
        "OFFLINE_123PAN_CLIENT_ID",
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    exits_saying(
        Command::new(BIN)
            .args(["--base-url", "http://example.com", "status", "1"])
            .env("OFFLINE_123PAN_CLIENT_ID", "x")
            .env("OFFLINE_123PAN_CLIENT_SECRET", "y"),
        6,
        "plain http",
    );
}

#[test]
fn demo_runs_and_every_task_ends_as_expected() {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--size-mib",
            "1",
            "--fetch-rate",
            "4194304",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summaries: Vec<Value> = json_values(stdout.as_bytes())
        .into_iter()
        .filter(|v| v["event"] == "demo_summary")
        .collect();
    assert_eq!(
        summaries
            .iter()
            .filter(|s| s["provider"] == "123pan")
            .count(),
        3
    );
    assert_eq!(
        summaries.iter().filter(|s| s["provider"] == "6pan").count(),
        4
    );
    assert!(
        summaries.iter().all(|s| s["as_expected"] == true),
        "{summaries:?}"
    );
}

/// A torrent whose web seed is a loopback server holding its files.
async fn seeded_torrent(dir: &std::path::Path) -> (SourceServer, String) {
    let files: [(&str, &[u8]); 3] = [
        ("a.txt", b"first text\n"),
        ("b.txt", b"second text\n"),
        ("c.bin", &[7u8; 50_000]),
    ];
    let src = serve(common::seed_files("application/octet-stream", &files)).await;
    let torrent = common::seeded_torrent(&src, &files, &dir.join("pack.torrent"));
    (src, torrent)
}

/// `offline --provider 6pan ARGS` against `emu`.
fn sixpan(emu: &Standalone, args: &[&str]) -> (i32, Vec<Value>, String) {
    emu.run(&[&["--provider", "6pan"], args].concat())
}

#[tokio::test(flavor = "multi_thread")]
async fn sixpan_add_torrent_with_selection_waits_to_the_end_and_reupload_is_instant() {
    let emu = Standalone::start();
    let (_src, t) = seeded_torrent(emu.dir.path()).await;
    let (code, lines, stderr) = block_in_place(|| {
        sixpan(
            &emu,
            &[
                "add",
                &t,
                "--path",
                "/downloads",
                "--select",
                "*.txt",
                "--wait",
                "--json",
            ],
        )
    });
    assert_eq!(code, 0, "{lines:?}\n{stderr}");
    assert_eq!(lines[0]["event"], "uploaded");
    assert_eq!(lines[0]["instant"], false);
    assert_eq!(lines[0]["files"], 3);
    let created: Vec<&Value> = lines.iter().filter(|l| l["event"] == "created").collect();
    assert_eq!(created.len(), 1);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["task"], created[0]["task"]);

    // The same torrent again: an instant upload.
    let (code, lines, _) = block_in_place(|| sixpan(&emu, &["add", &t, "--json"]));
    assert_eq!(code, 0);
    assert_eq!(lines[0]["instant"], true);

    // list shows both tasks; rm deletes one.
    let (code, lines, _) = block_in_place(|| sixpan(&emu, &["list", "--json"]));
    assert_eq!(code, 0);
    assert_eq!(lines.len(), 2);
    let id = lines[0]["task"].as_str().unwrap().to_owned();
    let (code, lines, _) = block_in_place(|| sixpan(&emu, &["rm", &id, "--json"]));
    assert_eq!(code, 0);
    assert_eq!(lines[0]["count"], 1);
}

#[test]
fn sixpan_login_checks_credentials() {
    let emu = Standalone::start();
    let (code, lines, _) = sixpan(&emu, &["login", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["ok"], true);
    // Wrong credentials have their own exit code.
    exits_saying(
        emu.cmd(&["--provider", "6pan", "login"])
            .env("OFFLINE_6PAN_PASSWORD", "wrong"),
        7,
        "PASSWORD_ERROR",
    );
}
