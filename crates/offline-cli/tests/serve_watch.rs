//! `offline --provider 6pan serve --watch DIR` as a real process against the
//! in-process emulator: a `.torrent`, a `.magnet` and a `.url` dropped in are added
//! once and moved to `.submitted/`, a garbage torrent goes to `.failed/` with a
//! `.reason`; after a restart nothing is added again, even a file put back as it was
//! (a stop between the add and the move).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use offline_emulator::EmulatorConfig;
use serde_json::{json, Value};

/// A JSON-RPC call's answer.
async fn rpc(url: &str, body: &Value) -> Value {
    common::rpc(url, body).await.1
}

fn serve(env: &Env, state: &str, watch: &Path) -> (Running, String) {
    let watch = ["--watch", watch.to_str().unwrap()];
    serve_daemon(env, &["--provider", "6pan"], state, &watch)
}

/// The names in `dir`, sorted (none when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The stopped downloads' statuses, once `n` are complete (within 30 s).
async fn until_complete(url: &str, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let answer = rpc(url, &call("aria2.tellStopped", json!([0, 100]))).await;
        let stopped = answer["result"].as_array().cloned().unwrap_or_default();
        if stopped.iter().filter(|s| s["status"] == "complete").count() >= n {
            return stopped;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} downloads did not complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_files_are_added_once_and_moved_and_garbage_fails_with_a_reason() {
    let config = EmulatorConfig {
        sixpan_simulated_duration: Duration::from_secs(1),
        ..EmulatorConfig::default()
    };
    let mut files: Vec<_> = seed_files("text/plain", &SEED).collect();
    files.extend(bin_and_png());
    let env = Env::start(config, 1000.0, files).await;
    let state = env.path("serve.sqlite");
    let state = state.to_str().unwrap();
    let watch = env.path("watch");
    std::fs::create_dir(&watch).unwrap();
    let (mut daemon, url) = serve(&env, state, &watch);

    seeded_torrent(&env.src, &SEED, &watch.join("pack.torrent"));
    std::fs::write(
        watch.join("m.magnet"),
        "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=thing\n",
    )
    .unwrap();
    std::fs::write(
        watch.join("link.url"),
        format!("[InternetShortcut]\r\nURL={}\r\n", env.url(5)),
    )
    .unwrap();
    std::fs::write(watch.join("garbage.torrent"), b"not bencode at all").unwrap();
    // Still being written: left alone.
    std::fs::write(watch.join("later.torrent.part"), b"d4:info").unwrap();

    let submitted = watch.join(".submitted");
    let failed = watch.join(".failed");
    assert!(
        eventually(Duration::from_secs(20), || names(&submitted).len() == 3
            && names(&failed).len() == 2)
        .await,
        "{:?} {:?} {:?}",
        names(&watch),
        names(&submitted),
        names(&failed)
    );
    assert_eq!(names(&submitted), ["link.url", "m.magnet", "pack.torrent"]);
    assert_eq!(
        names(&failed),
        ["garbage.torrent", "garbage.torrent.reason"]
    );
    let reason = std::fs::read_to_string(failed.join("garbage.torrent.reason")).unwrap();
    assert!(reason.contains("not a usable torrent"), "{reason}");
    assert!(watch.join("later.torrent.part").exists());

    let stopped = until_complete(&url, 3).await;
    assert_eq!(stopped.len(), 3, "{stopped:?}");
    let torrent = stopped
        .iter()
        .find(|s| s["bittorrent"]["info"]["name"] == "pack")
        .expect("the torrent's download");
    assert_eq!(torrent["files"].as_array().unwrap().len(), 2, "{torrent}");
    assert_eq!(env.emu.sixpan_tasks().len(), 3);

    // A stop between the add and the move: the file is back where it was, as it was.
    assert!(kill("-9", daemon.id()));
    let _ = daemon.wait();
    let moved = submitted.join("m.magnet");
    let modified = std::fs::metadata(&moved).unwrap().modified().unwrap();
    std::fs::copy(&moved, watch.join("m.magnet")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(watch.join("m.magnet"))
        .unwrap()
        .set_modified(modified)
        .unwrap();

    let (_daemon, url) = serve(&env, state, &watch);
    assert!(
        eventually(Duration::from_secs(20), || names(&submitted).len() == 4).await,
        "{:?}",
        names(&watch)
    );
    assert!(names(&submitted).contains(&"m.1.magnet".to_owned()));
    let answer = rpc(&url, &call("aria2.tellStopped", json!([0, 100]))).await;
    assert_eq!(answer["result"].as_array().unwrap().len(), 3, "{answer}");
    assert_eq!(env.emu.sixpan_tasks().len(), 3, "a file was added twice");
}
