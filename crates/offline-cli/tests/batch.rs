//! `offline add --from FILE` with its journal: exactly-once submission across runs,
//! and across a SIGKILL in the middle of a batch (a real child process), counted from
//! the emulator's own task list.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EndpointId, RunningEmulator};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_offline");

async fn setup() -> (RunningEmulator, SourceServer) {
    let emu = Emulator::start_default().await.unwrap();
    for e in EndpointId::ALL {
        emu.set_rate_limit(e, 200.0);
    }
    let mut files = BTreeMap::new();
    files.insert(
        "f.bin".to_owned(),
        ServedFile::new("application/octet-stream", vec![7u8; 1000]),
    );
    (emu, SourceServer::start(files).await.unwrap())
}

fn command(emu: &RunningEmulator, input: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--base-url",
        &emu.base_url(),
        "--rate-limit",
        "offline_download=100",
        "--json",
        "add",
        "--from",
    ])
    .arg(input)
    .args(extra)
    .env("OFFLINE_123PAN_CLIENT_ID", emu.client_id())
    .env("OFFLINE_123PAN_CLIENT_SECRET", emu.client_secret())
    .env("OFFLINE_CACHE_DIR", cache_of(input))
    .env_remove("OFFLINE_123PAN_ACCESS_TOKEN")
    .env_remove("OFFLINE_PROVIDER")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// The private token cache of a test: beside its batch file, in the test's temporary
/// directory.
fn cache_of(input: &std::path::Path) -> std::path::PathBuf {
    input.with_file_name("cache")
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        // Batch lines only (a run ends with a `summary` event).
        .filter(|v| v["event"] == "line")
        .collect()
}

/// Tasks per source URL on the emulator.
fn tasks_per_url(emu: &RunningEmulator) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for t in emu.tasks() {
        *m.entry(t.url).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_submits_nothing_twice() {
    let (emu, src) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let urls: Vec<String> = (0..8)
        .map(|i| format!("{}?n={i}", src.file_url("f.bin")))
        .collect();
    std::fs::write(
        &input,
        format!("# batch\n{}\nftp://not/allowed\n", urls.join("\n")),
    )
    .unwrap();

    let out = tokio::task::spawn_blocking({
        let mut c = command(&emu, &input, &[]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    let lines = json_lines(&out.stdout);
    assert_eq!(
        lines.iter().filter(|l| l["state"] == "submitted").count(),
        8,
        "{lines:?}"
    );
    let refused: Vec<_> = lines.iter().filter(|l| l["state"] == "failed").collect();
    assert_eq!(refused.len(), 1);
    assert!(refused[0]["error"].as_str().unwrap().contains("ftp"));
    assert_eq!(
        out.status.code(),
        Some(6),
        "an invalid line makes the run exit 6"
    );
    assert!(dir.path().join("urls.txt.journal.sqlite").exists());

    let out = tokio::task::spawn_blocking({
        let mut c = command(&emu, &input, &[]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    let again = json_lines(&out.stdout);
    assert_eq!(
        again.iter().filter(|l| l["state"] == "submitted").count(),
        8
    );
    let ids = |ls: &[Value]| -> Vec<String> {
        ls.iter()
            .filter_map(|l| l["task"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        ids(&lines),
        ids(&again),
        "the same task IDs, from the journal"
    );
    assert_eq!(emu.tasks().len(), 8, "nothing submitted twice");

    // `status --from` shows every line with its state.
    let out = Command::new(BIN)
        .args(["--base-url", &emu.base_url(), "--json", "status", "--from"])
        .arg(&input)
        .env("OFFLINE_123PAN_CLIENT_ID", emu.client_id())
        .env("OFFLINE_123PAN_CLIENT_SECRET", emu.client_secret())
        .env("OFFLINE_CACHE_DIR", cache_of(&input))
        .output()
        .unwrap();
    let status = json_lines(&out.stdout);
    assert_eq!(status.len(), 9);
    assert!(status
        .iter()
        .filter(|l| l["state"] == "submitted")
        .all(|l| l["status"].is_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_killed_mid_way_converges_without_duplicates() {
    let (emu, src) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let n = 60;
    let urls: Vec<String> = (0..n)
        .map(|i| format!("{}?n={i}", src.file_url("f.bin")))
        .collect();
    std::fs::write(&input, urls.join("\n")).unwrap();

    // Kill the first run (SIGKILL) once some tasks exist, twice over.
    for threshold in [10, 30] {
        let mut child = command(&emu, &input, &[]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while emu.tasks().len() < threshold && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(emu.tasks().len() < n, "killed before the end");
    }
    // Runs until everything has converged.
    let mut last = Vec::new();
    for _ in 0..3 {
        let out = tokio::task::spawn_blocking({
            let mut c = command(&emu, &input, &[]);
            move || c.output().unwrap()
        })
        .await
        .unwrap();
        last = json_lines(&out.stdout);
        if last
            .iter()
            .all(|l| l["state"] == "submitted" || l["state"] == "unknown")
        {
            break;
        }
    }
    assert_eq!(last.len(), n);
    let per_url = tasks_per_url(&emu);
    assert!(
        per_url.values().all(|&c| c == 1),
        "a URL was submitted twice: {per_url:?}"
    );
    let tasks: HashMap<u64, String> = emu.tasks().into_iter().map(|t| (t.id.0, t.url)).collect();
    for line in &last {
        let source = line["source"].as_str().unwrap();
        match line["state"].as_str().unwrap() {
            // Every recorded task ID is a real task of that URL.
            "submitted" => assert_eq!(
                tasks
                    .get(&line["task"].as_str().unwrap().parse::<u64>().unwrap())
                    .map(String::as_str),
                Some(source)
            ),
            // Killed between sending and recording: reported, never resubmitted.
            "unknown" => assert!(per_url.get(source).copied().unwrap_or(0) <= 1),
            other => panic!("line left {other}: {line}"),
        }
    }
    let submitted = last.iter().filter(|l| l["state"] == "submitted").count();
    let unknown = last.len() - submitted;
    assert!(
        unknown <= 2,
        "at most one line per kill is in doubt, got {unknown}"
    );
    assert_eq!(
        emu.tasks().len(),
        submitted + per_url_for_unknown(&last, &per_url)
    );
}

/// How many tasks exist for the lines whose outcome is unknown.
fn per_url_for_unknown(lines: &[Value], per_url: &HashMap<String, usize>) -> usize {
    lines
        .iter()
        .filter(|l| l["state"] == "unknown")
        .map(|l| {
            per_url
                .get(l["source"].as_str().unwrap())
                .copied()
                .unwrap_or(0)
        })
        .sum()
}

fn command_6pan(emu: &RunningEmulator, input: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--provider",
        "6pan",
        "--base-url",
        &emu.base_url(),
        "--json",
    ])
    .args([
        "--rate-limit",
        "parse_url=200",
        "--rate-limit",
        "add_tasks=200",
        "--rate-limit",
        "list_tasks=200",
    ])
    .args(["add", "--path", "/batch", "--from"])
    .arg(input)
    .env("OFFLINE_6PAN_ACCOUNT", emu.sixpan_account())
    .env("OFFLINE_6PAN_PASSWORD", emu.sixpan_password())
    .env("OFFLINE_CACHE_DIR", cache_of(input))
    .env_remove("OFFLINE_6PAN_TOKEN")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn a_6pan_batch_killed_mid_way_is_reconciled_from_the_task_list() {
    let (emu, src) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let torrent = dir.path().join("t.torrent");
    std::fs::write(
        &torrent,
        offline_proto::torrent::TorrentBuilder::new("from-a-file")
            .single(vec![1u8; 5000])
            .build(),
    )
    .unwrap();
    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "magnet:?xt=urn:btih:{:040x}&dn=item-{i}",
                0xabc0_0000u64 + i
            )
        })
        .collect();
    lines.push(src.file_url("f.bin"));
    lines.push(torrent.display().to_string());
    let input = dir.path().join("links.txt");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let n = lines.len();

    for threshold in [8, 20] {
        let mut child = command_6pan(&emu, &input).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while emu.sixpan_tasks().len() < threshold && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(emu.sixpan_tasks().len() < n, "killed before the end");
    }
    let mut last = Vec::new();
    for _ in 0..3 {
        let out = tokio::task::spawn_blocking({
            let mut c = command_6pan(&emu, &input);
            move || c.output().unwrap()
        })
        .await
        .unwrap();
        last = json_lines(&out.stdout);
        if last.iter().all(|l| l["state"] == "submitted") {
            break;
        }
    }
    assert_eq!(last.len(), n);
    assert!(
        last.iter().all(|l| l["state"] == "submitted"),
        "reconciliation settles every line: {last:?}"
    );
    let tasks = emu.sixpan_tasks();
    assert_eq!(tasks.len(), n, "each line created exactly one task");
    let mut names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "no name twice");
    let ids: std::collections::HashSet<&str> = tasks.iter().map(|t| t.identity.as_str()).collect();
    for line in &last {
        assert!(
            ids.contains(line["task"].as_str().unwrap()),
            "the recorded task exists: {line}"
        );
    }
}
