//! The `offline` binary as a user runs it: a standalone emulator in one process, the
//! client in another, over loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use offline_emulator::source::{ServedFile, SourceServer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_offline");

/// A child process killed when dropped, so a failing test leaves nothing running; with
/// the private token cache of the clients that talk to it.
struct Guard(Child, tempfile::TempDir);

impl Guard {
    /// The clients' token cache (`OFFLINE_CACHE_DIR`).
    fn cache(&self) -> PathBuf {
        self.1.path().join("cache")
    }
}

impl Drop for Guard {
    /// SIGTERM, so that the emulator removes its temporary data directory; SIGKILL if
    /// it has not ended within 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `offline emulator --json` on a free port and returns it with its base URL.
fn start_emulator() -> (Guard, String) {
    let mut child = Command::new(BIN)
        .args(["emulator", "--addr", "127.0.0.1:0", "--json"])
        .env_remove("OFFLINE_123PAN_CLIENT_ID")
        .env_remove("OFFLINE_123PAN_CLIENT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("offline emulator starts");
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child, tempfile::tempdir().unwrap());
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).expect("the first line is JSON");
    assert_eq!(v["event"], "emulator");
    assert_eq!(v["client_id"], "offline-demo-client");
    (guard, v["base_url"].as_str().unwrap().to_owned())
}

fn offline(base: &str, cache: &Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(BIN)
        .arg("--base-url")
        .arg(base)
        .args(args)
        .env("OFFLINE_CACHE_DIR", cache)
        .env("OFFLINE_123PAN_CLIENT_ID", "offline-demo-client")
        .env("OFFLINE_123PAN_CLIENT_SECRET", "offline-demo-secret")
        .env_remove("OFFLINE_123PAN_ACCESS_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn sources() -> SourceServer {
    let mut files = BTreeMap::new();
    let bytes: Bytes = (0..200_000u32)
        .map(|i| (i % 13) as u8)
        .collect::<Vec<_>>()
        .into();
    files.insert(
        "file.bin".to_owned(),
        ServedFile::new("application/octet-stream", bytes),
    );
    SourceServer::start(files).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_wait_json_completes_a_download() {
    let (emu, base) = start_emulator();
    let cache = emu.cache();
    let src = sources().await;
    let url = src.file_url("file.bin");
    let (code, lines, stderr) = tokio::task::spawn_blocking(move || {
        offline(&base, &cache, &["add", &url, "--wait", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(lines[0]["event"], "created");
    let task = lines[0]["task"].as_str().unwrap().to_owned();
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["task"].as_str(), Some(task.as_str()));
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["percent"].as_f64(), Some(100.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_task_exits_1_and_status_reports_it() {
    let (emu, base) = start_emulator();
    let cache = emu.cache();
    let src = sources().await;
    let url = src.file_url("missing.bin");
    let (b, c) = (base.clone(), cache.clone());
    let (code, lines, _) =
        tokio::task::spawn_blocking(move || offline(&b, &c, &["add", &url, "--wait", "--json"]))
            .await
            .unwrap();
    assert_eq!(code, 1);
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "failed");
    let task = lines[0]["task"].as_str().unwrap().to_owned();
    let (code, lines, _) =
        tokio::task::spawn_blocking(move || offline(&base, &cache, &["status", &task, "--json"]))
            .await
            .unwrap();
    assert_eq!(code, 0);
    assert_eq!(lines[0]["status"], "failed");
}

#[test]
fn provider_errors_are_one_line_with_code_and_trace_id() {
    let (emu, base) = start_emulator();
    let cache = emu.cache();
    let out = Command::new(BIN)
        .args(["--base-url", &base, "status", "999999"])
        .env("OFFLINE_CACHE_DIR", &cache)
        .env("OFFLINE_123PAN_CLIENT_ID", "offline-demo-client")
        .env("OFFLINE_123PAN_CLIENT_SECRET", "offline-demo-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: task 999999: "), "{stderr}");
    assert!(lines[0].contains("code "), "{stderr}");
    assert!(lines[0].contains("trace ID"), "{stderr}");
}

#[test]
fn invalid_input_and_missing_credentials_exit_6() {
    let (emu, base) = start_emulator();
    let cache = emu.cache();
    let (code, lines, _) = offline(&base, &cache, &["add", "ftp://example.com/x", "--json"]);
    assert_eq!(code, 6);
    assert_eq!(lines[0]["event"], "error");
    assert_eq!(lines[0]["kind"], "config");
    let out = Command::new(BIN)
        .args(["--base-url", &base, "status", "1"])
        .env("OFFLINE_CACHE_DIR", &cache)
        .env_remove("OFFLINE_123PAN_CLIENT_ID")
        .env_remove("OFFLINE_123PAN_CLIENT_SECRET")
        .env_remove("OFFLINE_123PAN_ACCESS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OFFLINE_123PAN_CLIENT_ID"));
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let out = Command::new(BIN)
        .args(["--base-url", "http://example.com", "status", "1"])
        .env("OFFLINE_123PAN_CLIENT_ID", "x")
        .env("OFFLINE_123PAN_CLIENT_SECRET", "y")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain http"));
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
    let summaries: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
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
async fn seeded_torrent(dir: &std::path::Path) -> (SourceServer, std::path::PathBuf) {
    let files: [(&str, &[u8]); 3] = [
        ("a.txt", b"first text\n"),
        ("b.txt", b"second text\n"),
        ("c.bin", &[7u8; 50_000]),
    ];
    let mut served = BTreeMap::new();
    for (n, d) in files {
        served.insert(
            format!("seed/pack/{n}"),
            ServedFile::new("application/octet-stream", d.to_vec()),
        );
    }
    let src = SourceServer::start(served).await.unwrap();
    let mut b = offline_proto::torrent::TorrentBuilder::new("pack")
        .web_seed(format!("{}/files/seed/", src.base_url()));
    for (n, d) in files {
        b = b.file(&[n], d.to_vec());
    }
    let path = dir.join("pack.torrent");
    std::fs::write(&path, b.build()).unwrap();
    (src, path)
}

fn offline_6pan(base: &str, cache: &Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(BIN)
        .args(["--provider", "6pan", "--base-url", base])
        .args(args)
        .env("OFFLINE_CACHE_DIR", cache)
        .env("OFFLINE_6PAN_ACCOUNT", "demo@offline.local")
        .env("OFFLINE_6PAN_PASSWORD", "offline-demo-password")
        .env_remove("OFFLINE_6PAN_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sixpan_add_torrent_with_selection_waits_to_the_end_and_reupload_is_instant() {
    let (emu, base) = start_emulator();
    let cache = emu.cache();
    let dir = tempfile::tempdir().unwrap();
    let (_src, torrent) = seeded_torrent(dir.path()).await;
    let t = torrent.to_string_lossy().into_owned();
    let (b, c) = (base.clone(), cache.clone());
    let (code, lines, stderr) = tokio::task::spawn_blocking(move || {
        offline_6pan(
            &b,
            &c,
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
    })
    .await
    .unwrap();
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
    let t = torrent.to_string_lossy().into_owned();
    let (b, c) = (base.clone(), cache.clone());
    let (code, lines, _) =
        tokio::task::spawn_blocking(move || offline_6pan(&b, &c, &["add", &t, "--json"]))
            .await
            .unwrap();
    assert_eq!(code, 0);
    assert_eq!(lines[0]["instant"], true);

    // list shows both tasks; rm deletes one.
    let (b, c) = (base.clone(), cache.clone());
    let (code, lines, _) =
        tokio::task::spawn_blocking(move || offline_6pan(&b, &c, &["list", "--json"]))
            .await
            .unwrap();
    assert_eq!(code, 0);
    assert_eq!(lines.len(), 2);
    let id = lines[0]["task"].as_str().unwrap().to_owned();
    let (code, lines, _) =
        tokio::task::spawn_blocking(move || offline_6pan(&base, &cache, &["rm", &id, "--json"]))
            .await
            .unwrap();
    assert_eq!(code, 0);
    assert_eq!(lines[0]["count"], 1);
}

#[test]
fn sixpan_login_checks_credentials() {
    let (emu, base) = start_emulator();
    let cache = emu.cache();
    let (code, lines, _) = offline_6pan(&base, &cache, &["login", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["ok"], true);
    let out = Command::new(BIN)
        .args(["--provider", "6pan", "--base-url", &base, "login"])
        .env("OFFLINE_CACHE_DIR", &cache)
        .env("OFFLINE_6PAN_ACCOUNT", "demo@offline.local")
        .env("OFFLINE_6PAN_PASSWORD", "wrong")
        .output()
        .unwrap();
    // Wrong credentials have their own exit code.
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PASSWORD_ERROR"));
}
