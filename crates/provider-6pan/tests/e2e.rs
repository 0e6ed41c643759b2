//! provider-6pan against the emulator over real loopback HTTP, in tokio's paused
//! time: the emulator reads time through tokio's clock, so its simulated download
//! durations and the client's poll waits take no real time ([`emulator`] keeps paused
//! time creeping while sockets work).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, RunningEmulator, SixpanTaskSnapshot};
use offline_proto::qetag::qetag;
use offline_proto::sixpan::identity::Identity;
use offline_proto::torrent::TorrentBuilder;
use offline_proto::tracker::PollPolicy;
use offline_proto::ApiError;
use provider_6pan::{
    AddTask, EndpointId, Error, Expected, Selection, SixPan, SixPanBuilder, TaskId, TaskStatus,
};
use transport_hyper::HyperClient;

/// A builder with the emulator's address, logging in as `password`.
fn builder(emu: &RunningEmulator, password: &str) -> SixPanBuilder<HyperClient> {
    SixPan::builder()
        .base_url(emu.base_url())
        .login(emu.sixpan_account(), password)
}

fn client(emu: &RunningEmulator) -> SixPan {
    let mut b = builder(emu, emu.sixpan_password()).poll_policy(PollPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        factor: 1.5,
    });
    for e in EndpointId::ALL {
        b = b.rate_limit(e, 1000.0);
    }
    b.build().unwrap()
}

async fn emulator() -> RunningEmulator {
    transport_hyper::keep_paused_time_moving();
    Emulator::start(EmulatorConfig {
        sixpan_simulated_duration: Duration::from_millis(500),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The one task of `emu` added as `identity`.
fn snapshot(emu: &RunningEmulator, identity: &TaskId) -> SixpanTaskSnapshot {
    emu.sixpan_tasks()
        .into_iter()
        .find(|t| t.identity == identity.0)
        .unwrap()
}

const PACK: [(&str, &[u8]); 2] = [
    ("readme.txt", b"offline download, by web seed\n"),
    ("notes.txt", b"second text file\n"),
];

fn pack_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = PACK
        .iter()
        .map(|(n, d)| ((*n).to_owned(), d.to_vec()))
        .collect();
    files.push((
        "data.bin".to_owned(),
        (0..300_000u32).map(|i| (i % 241) as u8).collect(),
    ));
    files
}

/// A loopback server holding the files of a multi-file torrent "pack" under
/// `/files/seed/pack/`, and that torrent, whose web seed is the server.
async fn seeded() -> (SourceServer, Vec<u8>, BTreeMap<String, ServedFile>) {
    let served: BTreeMap<String, ServedFile> = pack_files()
        .into_iter()
        .map(|(name, data)| {
            (
                format!("seed/pack/{name}"),
                ServedFile::new("application/octet-stream", data),
            )
        })
        .collect();
    let src = SourceServer::start(served.clone()).await.unwrap();
    let mut builder =
        TorrentBuilder::new("pack").web_seed(format!("{}/files/seed/", src.base_url()));
    for (name, data) in pack_files() {
        builder = builder.file(&[&name], data);
    }
    (src, builder.build(), served)
}

/// `bytes` written to `name` in a fresh directory (kept alive by the first value).
fn on_disk(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// The emulator, the seeded pack's web seed (bind it, or it stops), a client, and the
/// pack's torrent uploaded and parsed.
struct Uploaded {
    emu: RunningEmulator,
    _src: SourceServer,
    served: BTreeMap<String, ServedFile>,
    pan: SixPan,
    up: provider_6pan::TorrentUpload,
}

async fn uploaded_pack() -> Uploaded {
    let emu = emulator().await;
    let (src, torrent, served) = seeded().await;
    let (_dir, path) = on_disk("pack.torrent", &torrent);
    let pan = client(&emu);
    let up = pan.upload_torrent(&path).await.unwrap();
    Uploaded {
        emu,
        _src: src,
        served,
        pan,
        up,
    }
}

#[tokio::test(start_paused = true)]
async fn second_torrent_upload_is_instant() {
    let emu = emulator().await;
    let (_src, torrent, _) = seeded().await;
    let (_dir, path) = on_disk("pack.torrent", &torrent);
    let pan = client(&emu);
    let first = pan.upload_torrent(&path).await.unwrap();
    assert!(!first.instant);
    assert_eq!(first.etag, qetag(&torrent));
    assert_eq!(first.result.name, "pack");
    assert_eq!(first.result.files.len(), 3);
    let second = pan.upload_torrent(&path).await.unwrap();
    assert!(second.instant, "the drive knew the etag");
    assert_eq!(emu.instant_uploads(), 1);
    assert_eq!(second.result.identity, first.result.identity);
}

#[tokio::test(start_paused = true)]
async fn not_a_torrent_is_refused_before_sending() {
    let emu = emulator().await;
    let (_dir, path) = on_disk("fake.torrent", b"<html>not a torrent</html>");
    let pan = client(&emu);
    let err = pan.upload_torrent(&path).await.unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("not a usable torrent")),
        "{err}"
    );
    assert_eq!(emu.sixpan_logins(), 0, "nothing was sent");
}

#[tokio::test(start_paused = true)]
async fn block_upload_of_a_file_over_8_mib() {
    let emu = emulator().await;
    let data: Vec<u8> = (0..(9 * 1024 * 1024 + 5) as u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let (_dir, path) = on_disk("big.bin", &data);
    let pan = client(&emu);
    let report = pan.upload_file(&path, "/backups").await.unwrap();
    assert!(!report.instant);
    assert_eq!(report.etag, qetag(&data));
    assert_eq!(report.size, data.len() as u64);
    let stored = emu
        .stored_blob(report.etag.as_str())
        .expect("stored by etag");
    assert_eq!(std::fs::read(stored).unwrap(), data);
    // Blocks of 4 MiB, 4 MiB and 1 MiB + 5 bytes, in 1 MiB chunks: 4 + 4 + 2 calls.
    assert_eq!(emu.uploaded_chunks(), 10);
    let again = pan.upload_file(&path, "/elsewhere").await.unwrap();
    assert!(again.instant);
    assert_eq!(emu.uploaded_chunks(), 10, "no byte sent the second time");
}

#[tokio::test(start_paused = true)]
async fn token_rotation_is_invisible_and_relogin_happens_once() {
    let emu = emulator().await;
    let pan = client(&emu);
    pan.user_info().await.unwrap();
    let t1 = pan.current_token().unwrap();
    pan.user_info().await.unwrap();
    let t2 = pan.current_token().unwrap();
    assert_ne!(t1, t2, "every answer rotates the token");
    // Concurrent calls keep working through rotations.
    let calls = (0..16).map(|_| {
        let pan = pan.clone();
        tokio::spawn(async move { pan.task_page(1, 10).await })
    });
    for r in futures_util::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(emu.sixpan_logins(), 1);
    // A login elsewhere: every token dies; 16 concurrent calls cause one new login.
    emu.expire_sixpan_tokens();
    let calls = (0..16).map(|_| {
        let pan = pan.clone();
        tokio::spawn(async move { pan.task_page(1, 10).await })
    });
    for r in futures_util::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(emu.sixpan_logins(), 2, "exactly one re-login");
    assert_eq!(pan.logins(), 2);
}

#[tokio::test(start_paused = true)]
async fn wrong_password_is_a_provider_error() {
    let emu = emulator().await;
    let pan = builder(&emu, "wrong").build().unwrap();
    let err = pan.user_info().await.unwrap_err();
    assert!(err.provider_error().is_some(), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_tampered_identity_is_refused_and_nothing_is_created() {
    let emu = emulator().await;
    let pan = client(&emu);
    let parsed = pan
        .parse_urls(&["http://127.0.0.1:9/file.iso"])
        .await
        .unwrap();
    let genuine = parsed[0].identity.as_str().to_owned();
    let (body, mac) = genuine.rsplit_once('$').unwrap();
    // Change the first hex digit of the MAC.
    let first = if mac.starts_with('0') { '1' } else { '0' };
    let flipped = format!("{first}{}", &mac[1..]);
    let tampered = Identity::parse(&format!("{body}${flipped}")).unwrap();
    let err = pan
        .add_tasks(
            "/downloads",
            vec![(
                Expected::from_parse(&parsed[0]),
                AddTask {
                    identity: tampered,
                    ignore_files: None,
                },
            )],
        )
        .await
        .unwrap_err();
    match &err {
        Error::Api(ApiError::Provider(p)) => assert_eq!(p.code.to_string(), "IDENTITY_INVALID"),
        other => panic!("{other:?}"),
    }
    assert!(emu.sixpan_tasks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn torrent_task_with_selection_completes_through_the_web_seed() {
    let Uploaded {
        emu,
        _src,
        served,
        pan,
        up,
    } = uploaded_pack().await;
    let added = pan
        .add_parsed(
            &up.result,
            &Selection::Globs(vec!["*.txt".into()]),
            "/downloads",
        )
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
    let updates: Vec<_> = pan.wait(vec![added[0].identity.clone()]).collect().await;
    let last = updates.last().unwrap().as_ref().unwrap();
    assert!(last.status.is_final());
    assert_ne!(last.status, TaskStatus::Failed);
    let snap = snapshot(&emu, &added[0].identity);
    let mut selected = snap.selected_files.clone();
    selected.sort();
    assert_eq!(selected.len(), 2, "{selected:?}");
    assert!(selected.iter().all(|p| p.ends_with(".txt")));
    assert_eq!(snap.stored_paths.len(), 2);
    for stored in &snap.stored_paths {
        let name = stored.file_name().unwrap().to_string_lossy().into_owned();
        let expected = served
            .iter()
            .find(|(k, _)| name.ends_with(k.rsplit('/').next().unwrap()))
            .map(|(_, f)| f.bytes.clone())
            .unwrap();
        assert_eq!(std::fs::read(stored).unwrap(), expected.as_ref());
    }
}

#[tokio::test(start_paused = true)]
async fn selection_errors_are_local() {
    // `_src` is bound (not `..`) so that the web seed lives to the end of the test.
    let Uploaded {
        emu, _src, pan, up, ..
    } = uploaded_pack().await;
    for sel in [
        Selection::Globs(vec!["*.mkv".into()]),
        Selection::Names(vec!["nope.txt".into()]),
        Selection::Indices(vec![7]),
    ] {
        let err = pan.add_parsed(&up.result, &sel, "/d").await.unwrap_err();
        assert!(matches!(err, Error::Selection(_)), "{sel:?}: {err:?}");
    }
    assert!(emu.sixpan_tasks().is_empty());
    // By index: just the binary file.
    let added = pan
        .add_parsed(&up.result, &Selection::Indices(vec![2]), "/d")
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn http_links_download_real_bytes_and_tasks_can_be_listed_and_deleted() {
    let emu = emulator().await;
    let mut files = BTreeMap::new();
    files.insert(
        "movie.bin".to_owned(),
        ServedFile::new("application/octet-stream", vec![9u8; 70_000]),
    );
    let src = SourceServer::start(files).await.unwrap();
    let pan = client(&emu);
    let added = pan
        .add_urls(&[src.file_url("movie.bin")], "/videos")
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
    let last = pan
        .wait(vec![added[0].identity.clone()])
        .collect::<Vec<_>>()
        .await
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(last.status, TaskStatus::Done);
    let snap = snapshot(&emu, &added[0].identity);
    assert_eq!(
        std::fs::read(&snap.stored_paths[0]).unwrap(),
        vec![9u8; 70_000]
    );

    let listed: Vec<_> = pan.tasks().collect().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(pan.delete(&[added[0].identity.clone()]).await.unwrap(), 1);
    assert_eq!(pan.tasks().collect::<Vec<_>>().await.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn magnets_and_bad_links() {
    let emu = emulator().await;
    let pan = client(&emu);
    let r = pan
        .parse_urls(&["magnet:?xt=urn:btih:722fe65b2aa26d14f35b4ad627d20236e481d924&dn=alice.txt"])
        .await
        .unwrap();
    assert_eq!(r[0].name, "alice.txt");
    assert_eq!(
        r[0].identity.view().info_hash.as_deref(),
        Some("722fe65b2aa26d14f35b4ad627d20236e481d924")
    );
    let err = pan.parse_urls(&["ftp://x.y/z"]).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "refused locally: {err:?}");
}
