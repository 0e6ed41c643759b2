//! Folders and files against the emulator over real loopback HTTP, in paused time:
//! `resolve_dir` creating and caching a path, the paged list skipping trashed entries,
//! details, infos, the download URL's bytes, and `trash` (batches of 100).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use offline_proto::pan123::EndpointId;
use offline_proto::{HttpClient, HttpRequest};
use provider_123pan::{Error, FileId, OfflineDownloadRequest, Pan123, TaskRef, TaskStatus};
use transport_hyper::HyperClient;

/// Every request path this client sent, in order.
type Sent = Arc<Mutex<Vec<String>>>;

/// A client of `emu` over hyper that records the path of every request it sends.
fn counting_client(emu: &RunningEmulator) -> (Pan123<impl HttpClient>, Sent) {
    racing_client(emu, Arc::default())
}

/// [`counting_client`]; while `race` is set, the next mkdir is first sent by "another
/// process" (the same request, once), so that this one finds the name taken.
fn racing_client(emu: &RunningEmulator, race: Arc<AtomicBool>) -> (Pan123<impl HttpClient>, Sent) {
    let sent: Sent = Arc::default();
    let hyper = Arc::new(HyperClient::new().unwrap());
    let log = Arc::clone(&sent);
    let transport = move |request: HttpRequest| {
        log.lock().unwrap().push(request.uri().path().to_owned());
        let hyper = Arc::clone(&hyper);
        let first =
            (request.uri().path() == MKDIR && race.swap(false, Ordering::SeqCst)).then(|| {
                let mut copy = http::Request::new(request.body().clone());
                *copy.method_mut() = request.method().clone();
                *copy.uri_mut() = request.uri().clone();
                *copy.headers_mut() = request.headers().clone();
                copy
            });
        async move {
            if let Some(copy) = first {
                let won = hyper.send(copy).await.unwrap();
                assert!(String::from_utf8_lossy(won.body()).contains("dirID"));
            }
            hyper.send(request).await
        }
    };
    let mut builder = Pan123::builder()
        .http_client(transport)
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret());
    for e in EndpointId::ALL {
        builder = builder.rate_limit(e, 1000.0);
    }
    (builder.build().unwrap(), sent)
}

fn count(sent: &Sent, path: &str) -> usize {
    sent.lock().unwrap().iter().filter(|p| *p == path).count()
}

async fn start() -> RunningEmulator {
    transport_hyper::keep_paused_time_moving();
    let mut config = EmulatorConfig::default();
    config.rate_limits.clear();
    Emulator::start(config).await.unwrap()
}

const LIST: &str = "/api/v2/file/list";
const MKDIR: &str = "/upload/v1/file/mkdir";
const TRASH: &str = "/api/v1/file/trash";

#[tokio::test(start_paused = true)]
async fn resolve_dir_creates_missing_folders_once_and_caches_the_path() {
    let emu = start().await;
    let (pan, sent) = counting_client(&emu);

    assert!(matches!(
        pan.resolve_dir("/Movies/2026", false).await,
        Err(Error::NoSuchFolder { ref missing, .. }) if missing == "/Movies"
    ));
    let made = pan.resolve_dir("/Movies/2026", true).await.unwrap();
    assert_eq!(made.path.to_string(), "/Movies/2026");
    let created: Vec<String> = made.created.iter().map(ToString::to_string).collect();
    assert_eq!(created, ["/Movies", "/Movies/2026"]);
    assert_eq!(count(&sent, MKDIR), 2);

    // A thousand resolutions of the same path, concurrently: no list or mkdir more.
    let lists = count(&sent, LIST);
    let again =
        futures_util::future::join_all((0..1000).map(|_| pan.resolve_dir("//Movies/2026/", true)))
            .await;
    assert!(again.iter().all(|r| r.as_ref().unwrap().id == made.id));
    assert!(again.iter().all(|r| r.as_ref().unwrap().created.is_empty()));
    assert_eq!((count(&sent, LIST), count(&sent, MKDIR)), (lists, 2));

    // Another client (another process, say) finds the folders instead of making them.
    let (other, other_sent) = counting_client(&emu);
    let found = other.resolve_dir("/Movies/2026", true).await.unwrap();
    assert_eq!(found.id, made.id);
    assert!(found.created.is_empty());
    assert_eq!(count(&other_sent, MKDIR), 0);

    // A folder made by another process between this client's list and its mkdir:
    // mkdir is refused as a duplicate, and the folder is looked up again.
    let race = Arc::new(AtomicBool::new(true));
    let (third, third_sent) = racing_client(&emu, Arc::clone(&race));
    let raced = third.resolve_dir("/Movies/2027", true).await.unwrap();
    assert!(!race.load(Ordering::SeqCst), "the race happened");
    assert!(raced.created.is_empty(), "{raced:?}");
    assert_eq!(count(&third_sent, MKDIR), 1);
    let listed = pan.resolve_dir("/Movies", false).await.unwrap().id;
    let entries = pan.list_all(listed).await.unwrap();
    let named: Vec<_> = entries.iter().filter(|e| e.filename == "2027").collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].file_id, raced.id);

    assert!(matches!(
        pan.resolve_dir("/a/../b", true).await,
        Err(Error::Invalid(_))
    ));
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_download_into_a_resolved_folder_is_listed_described_and_fetched() {
    let emu = start().await;
    let bytes: Bytes = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut files = BTreeMap::new();
    files.insert(
        "movie.mkv".to_owned(),
        ServedFile::new("video/x-matroska", bytes.clone()),
    );
    let source = SourceServer::start(files).await.unwrap();
    let (pan, _) = counting_client(&emu);

    let dir = pan.resolve_dir("/Movies/2026", true).await.unwrap();
    let mut request = OfflineDownloadRequest::new(source.file_url("movie.mkv"));
    request.dir_id = Some(dir.id);
    let task = pan.offline_download(request).await.unwrap();
    let done = pan.wait_final(TaskRef::cloud(task)).await.unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);

    // Many folders beside it, one trashed file: the list pages and skips the trash.
    for i in 0..120 {
        pan.mkdir(dir.id, &format!("extra-{i:03}")).await.unwrap();
    }
    let extra = pan.mkdir(dir.id, "trashed").await.unwrap();
    assert!(emu.trash_file(extra.0));
    let mut pages = 0;
    let mut stream = pan.list(dir.id);
    while let Some(page) = stream.next().await {
        page.unwrap();
        pages += 1;
    }
    assert_eq!(pages, 2);
    let entries = pan.list_all(dir.id).await.unwrap();
    assert_eq!(entries.len(), 121);
    let file = entries
        .iter()
        .find(|e| !e.is_folder())
        .expect("the downloaded file");
    assert_eq!(file.filename, "movie.mkv");
    assert_eq!(file.size, 200_000);

    let detail = pan.file(file.file_id).await.unwrap();
    assert_eq!(detail.parent_file_id, dir.id);
    assert_eq!(detail.etag, file.etag);
    let folder = pan.file(dir.id).await.unwrap();
    assert!(folder.is_folder());
    assert_eq!(folder.size, 200_000);

    let infos = pan
        .files(&[file.file_id, FileId(424_242), dir.id])
        .await
        .unwrap();
    let ids: Vec<FileId> = infos.iter().map(|e| e.file_id).collect();
    assert_eq!(ids, [file.file_id, dir.id]);

    let url = pan.download_url(file.file_id).await.unwrap();
    let fetched = HyperClient::new()
        .unwrap()
        .send(http::Request::get(url).body(Bytes::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.body(), &bytes);

    let missing = pan.file(FileId(424_242)).await.unwrap_err();
    assert!(
        matches!(missing, Error::Api(offline_proto::ApiError::NotFound(_))),
        "{missing:?}"
    );
    emu.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn trash_moves_a_downloaded_file_to_the_trash_in_batches_of_a_hundred() {
    let emu = start().await;
    let bytes: Bytes = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let mut files = BTreeMap::new();
    files.insert(
        "done.bin".to_owned(),
        ServedFile::new("application/octet-stream", bytes),
    );
    let source = SourceServer::start(files).await.unwrap();
    let (pan, sent) = counting_client(&emu);

    let dir = pan.resolve_dir("/Downloads", true).await.unwrap();
    let mut request = OfflineDownloadRequest::new(source.file_url("done.bin"));
    request.dir_id = Some(dir.id);
    let task = pan.offline_download(request).await.unwrap();
    let done = pan.wait_final(TaskRef::cloud(task)).await.unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);
    let stored = pan.list_all(dir.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    let file = stored[0].file_id;
    pan.download_url(file).await.unwrap();

    // One file: one call; it is still listed and described, flagged, and out of the
    // folder's entries; no download URL for it any more.
    pan.trash(&[file]).await.unwrap();
    assert_eq!(count(&sent, TRASH), 1);
    let mut listed = Vec::new();
    let mut pages = pan.list(dir.id);
    while let Some(page) = pages.next().await {
        listed.extend(page.unwrap().file_list);
    }
    drop(pages);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].file_id, file);
    assert!(listed[0].is_trashed());
    assert!(pan.list_all(dir.id).await.unwrap().is_empty());
    let described = pan.files(&[file]).await.unwrap();
    assert_eq!(described.len(), 1);
    assert!(described[0].is_trashed());
    assert!(pan.file(file).await.unwrap().trashed.0);
    let gone = pan.download_url(file).await.unwrap_err();
    assert!(
        matches!(gone, Error::Api(offline_proto::ApiError::NotFound(_))),
        "{gone:?}"
    );

    // The same file again: fine.
    pan.trash(&[file]).await.unwrap();
    assert_eq!(count(&sent, TRASH), 2);

    // 101 IDs: two calls, 100 and 1; every one trashed.
    let mut many = Vec::new();
    for i in 0..101 {
        many.push(pan.mkdir(dir.id, &format!("old-{i:03}")).await.unwrap());
    }
    pan.trash(&many).await.unwrap();
    assert_eq!(count(&sent, TRASH), 4);
    let described = pan.files(&many).await.unwrap();
    assert_eq!(described.len(), 101);
    assert!(described.iter().all(|e| e.is_trashed()));
    assert!(pan.list_all(dir.id).await.unwrap().is_empty());

    // No IDs: refused here, nothing sent.
    let before = sent.lock().unwrap().len();
    let none = pan.trash(&[]).await.unwrap_err();
    assert!(
        matches!(
            none,
            Error::Invalid(offline_proto::EncodeError::Invalid(
                offline_proto::ValidationError::Empty("fileIDs")
            ))
        ),
        "{none:?}"
    );
    assert_eq!(sent.lock().unwrap().len(), before);

    // An unknown ID: the emulator's 5066, and nothing of that call trashed.
    let keep = pan.mkdir(dir.id, "keep").await.unwrap();
    let unknown = pan.trash(&[keep, FileId(424_242)]).await.unwrap_err();
    assert!(
        matches!(unknown, Error::Api(offline_proto::ApiError::NotFound(_))),
        "{unknown:?}"
    );
    assert_eq!(pan.list_all(dir.id).await.unwrap().len(), 1);
    emu.shutdown().await;
}
