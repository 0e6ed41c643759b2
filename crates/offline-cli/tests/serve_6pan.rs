//! `offline --provider 6pan serve` as a real process against the in-process emulator,
//! driven over loopback HTTP with aria2 JSON-RPC: a link and a magnet complete, a
//! torrent (`aria2.addTorrent`) completes with its files, a garbage torrent is an
//! aria2 error at once, and a kill -9 during submissions and a restart create nothing
//! twice (rows left `submitting` are found in the task list or submitted again).

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use offline_emulator::EmulatorConfig;
use serde_json::{json, Value};

/// Starts `offline --provider 6pan serve` on an ephemeral loopback port; the process
/// and its URL.
fn serve(env: &Env, state: &str, extra: &[&str]) -> (Running, String) {
    serve_daemon(env, &["--provider", "6pan"], state, extra)
}

/// Asks `tellStatus` until the download is `complete` (or `error`); its status.
async fn until_stopped(url: &str, gid: &str) -> Value {
    for _ in 0..600 {
        let (_, answer) = rpc(url, &call("aria2.tellStatus", json!([gid]))).await;
        let status = answer["result"]["status"].as_str().unwrap_or("").to_owned();
        if status == "complete" || status == "error" {
            return answer["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{gid} did not stop");
}

/// An emulator whose simulated 6pan tasks (magnets) take a second.
fn quick() -> EmulatorConfig {
    EmulatorConfig {
        sixpan_simulated_duration: Duration::from_secs(1),
        ..EmulatorConfig::default()
    }
}

/// The files of the served torrent `pack`, under `seed/pack/`, and `f.bin`.
fn files() -> Vec<(String, offline_emulator::source::ServedFile)> {
    let mut files: Vec<_> = seed_files("text/plain", &SEED).collect();
    files.extend(bin_and_png());
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_a_magnet_and_a_torrent_complete_and_a_garbage_torrent_is_refused() {
    let env = Env::start(quick(), 1000.0, files()).await;
    let state = env.path("serve.sqlite");
    let (_daemon, url) = serve(&env, state.to_str().unwrap(), &[]);

    // A link into a folder.
    let (_, added) = rpc(
        &url,
        &call("aria2.addUri", json!([[env.url(1)], {"dir": "/dl/aria2"}])),
    )
    .await;
    let link = added["result"].as_str().expect("a GID").to_owned();

    // A magnet (simulated by the emulator).
    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=thing";
    let (_, added) = rpc(&url, &call("aria2.addUri", json!([[magnet]]))).await;
    let magnet_gid = added["result"].as_str().expect("a GID").to_owned();

    // A torrent whose web seed is the test's file server.
    let mut builder = offline_proto::torrent::TorrentBuilder::new("pack")
        .web_seed(format!("{}/files/seed/", env.src.base_url()));
    for (name, data) in SEED {
        builder = builder.file(&[name], data.to_vec());
    }
    let torrent = base64::engine::general_purpose::STANDARD.encode(builder.build());
    let (_, added) = rpc(&url, &call("aria2.addTorrent", json!([torrent]))).await;
    let torrent_gid = added["result"].as_str().expect("a GID").to_owned();

    // Web seeds sent with a torrent cannot be passed on to the drive: refused, not
    // dropped.
    let seeded = call(
        "aria2.addTorrent",
        json!([torrent, ["http://127.0.0.1:9/seed"]]),
    );
    let (_, refused) = rpc(&url, &seeded).await;
    assert_eq!(refused["error"]["code"], 1, "{refused}");

    // Garbage is refused at once, as an aria2 error.
    let garbage = base64::engine::general_purpose::STANDARD.encode(b"d4:infoi3ee");
    let (_, refused) = rpc(&url, &call("aria2.addTorrent", json!([garbage]))).await;
    assert_eq!(refused["error"]["code"], 1, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a usable torrent"),
        "{refused}"
    );
    // So is a link 6pan cannot fetch.
    let (_, refused) = rpc(
        &url,
        &call("aria2.addUri", json!([["ftp://example.com/a"]])),
    )
    .await;
    assert_eq!(refused["error"]["code"], 1, "{refused}");

    let done = until_stopped(&url, &link).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["dir"], "/dl/aria2");
    assert_eq!(done["totalLength"], "1000", "{done}");
    assert_eq!(done["completedLength"], "1000", "{done}");

    let done = until_stopped(&url, &magnet_gid).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(
        done["infoHash"], "0123456789abcdef0123456789abcdef01234567",
        "{done}"
    );

    let done = until_stopped(&url, &torrent_gid).await;
    assert_eq!(done["status"], "complete", "{done}");
    let paths: Vec<&str> = done["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/pack/a.txt", "/pack/b.txt"], "{done}");
    assert_eq!(done["bittorrent"]["info"]["name"], "pack", "{done}");
    assert_eq!(done["uris"], Value::Null);

    // One task each on the drive; the torrent's files stored.
    let tasks = env.emu.sixpan_tasks();
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    let pack = tasks.iter().find(|t| t.name == "pack").unwrap();
    assert_eq!(pack.stored_paths.len(), 2, "{pack:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_during_submissions_creates_nothing_twice() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, files()).await;
    let state = env.path("serve.sqlite");
    let state = state.to_str().unwrap();
    // Adds paced at 2/s, parses not: a row waits `submitting` (recorded "may have been
    // sent") for most of each add's turn, and the kill lands while most are pending.
    let pace = ["--rate-limit", "addTasks=2", "--rate-limit", "parseUrl=100"];
    let (mut daemon, url) = serve(&env, state, &pace);
    let n = 16;
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
    // kill -9 after a few creates, while a row is `submitting`.
    let submitting = || {
        offline_store::Journal::open_read_only(std::path::Path::new(state))
            .and_then(|j| j.all())
            .map(|rows| {
                rows.iter()
                    .filter(|r| r.state == offline_store::State::Submitting)
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(30), || env.emu.sixpan_tasks().len()
            >= 3
            && submitting() == 1)
        .await,
        "no task was created"
    );
    assert!(kill("-9", daemon.id()));
    let _ = daemon.wait();
    assert_eq!(submitting(), 1, "the kill left no row `submitting`");
    let before = env.emu.sixpan_tasks().len();
    assert!(
        before < n,
        "the kill came too late to test anything ({before})"
    );

    let (_daemon, url) = serve(&env, state, &pace);
    for gid in &gids {
        let done = until_stopped(&url, gid).await;
        assert_eq!(done["status"], "complete", "{done}");
    }
    // Every link created exactly once: the row left `submitting` was found in the task
    // list or, absent there, submitted again.
    let mut urls: Vec<String> = env.emu.sixpan_tasks().into_iter().map(|t| t.url).collect();
    urls.sort_unstable();
    let created = urls.len();
    urls.dedup();
    assert_eq!(urls.len(), created, "a link was created twice");
    assert_eq!(created, n);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_123pan_a_torrent_is_still_an_aria2_error_at_once() {
    let env = Env::start(EmulatorConfig::default(), 1000.0, bin_and_png()).await;
    let state = env.path("serve.sqlite");
    let args = [
        "--json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--state",
        state.to_str().unwrap(),
    ];
    let mut daemon = Running::spawn(&mut env.cmd(&args));
    let url = daemon.json_line()["url"].as_str().unwrap().to_owned();
    let torrent = offline_proto::torrent::TorrentBuilder::new("t")
        .single(b"x".to_vec())
        .build();
    let torrent = base64::engine::general_purpose::STANDARD.encode(torrent);
    let (_, refused) = rpc(&url, &call("aria2.addTorrent", json!([torrent]))).await;
    assert_eq!(refused["error"]["code"], 1, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no torrents"),
        "{refused}"
    );
}
