//! The block upload driver against the emulator: blocks in flight at once, dropped
//! connections in the middle of a block, progress.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use offline_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use offline_proto::qetag::qetag;
use offline_proto::{HttpClient, HttpRequest, HttpResponse, TransportError, TransportErrorKind};
use provider_6pan::{EndpointId, SixPan, UploadPhase, UploadProgress};
use transport_hyper::HyperClient;

/// How the wrapper fails the chosen `bput`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop {
    /// Never.
    Nothing,
    /// The connection drops before the request reaches the server.
    BeforeSending,
    /// The server stores the chunk, then the connection drops before its answer.
    AnswerLost,
}

/// A transport that fails the `nth` chunk request (`mkblk` or `bput`, from 1) once,
/// holds every storage request for `delay`, and counts the storage requests under way
/// at once.
struct Flaky {
    inner: HyperClient,
    drop: Drop,
    nth: usize,
    delay: Duration,
    chunks: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Flaky {
    fn new(drop: Drop, nth: usize, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: HyperClient::new().unwrap(),
            drop,
            nth,
            delay,
            chunks: AtomicUsize::new(0),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        })
    }
}

/// Runs `send` with a 1 ms tick beside it. Under paused time the runtime moves the
/// clock to the next timer whenever it has nothing to do but wait for I/O — here the
/// loopback sockets between client and emulator, which a loaded machine may deliver a
/// moment late — and without the tick that timer would be the transport's 60 s
/// timeout, firing for nothing.
async fn ticking<T>(send: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(send);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    loop {
        tokio::select! {
            out = &mut send => return out,
            _ = tick.tick() => {}
        }
    }
}

impl HttpClient for Flaky {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        ticking(self.send_flaky(request)).await
    }
}

impl Flaky {
    async fn send_flaky(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let path = request.uri().path().to_owned();
        let is_chunk = path.contains("/mkblk/") || path.contains("/bput/");
        if !path.starts_with("/wcs/") {
            return self.inner.send(request).await;
        }
        let under_way = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(under_way, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let n = if is_chunk {
            self.chunks.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            0
        };
        let result = if n == self.nth && self.drop == Drop::BeforeSending {
            Err(TransportError::new(
                TransportErrorKind::Closed,
                "connection reset before the request was sent",
            ))
        } else if n == self.nth && self.drop == Drop::AnswerLost {
            let _stored = self.inner.send(request).await;
            Err(TransportError::new(
                TransportErrorKind::Closed,
                "connection reset before the answer arrived",
            ))
        } else {
            self.inner.send(request).await
        };
        self.now.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

async fn emulator() -> RunningEmulator {
    Emulator::start(EmulatorConfig::default()).await.unwrap()
}

fn client(emu: &RunningEmulator, http: Arc<Flaky>, blocks: usize) -> SixPan<impl HttpClient> {
    // A closure is a transport: share the counting client through it.
    let transport = move |request: HttpRequest| {
        let http = Arc::clone(&http);
        async move { http.send(request).await }
    };
    let mut b = SixPan::builder()
        .http_client(transport)
        .base_url(emu.base_url())
        .login(emu.sixpan_account(), emu.sixpan_password())
        .max_blocks_in_flight(blocks);
    for e in EndpointId::ALL {
        b = b.rate_limit(e, 1000.0);
    }
    b.build().unwrap()
}

/// A file of `len` bytes in a fresh directory.
fn file(len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 11) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    (dir, path, data)
}

/// Uploads a file of `len` bytes through `http` with `blocks` blocks in flight and
/// checks that the emulator stored exactly its bytes.
async fn upload_checked(emu: &RunningEmulator, http: &Arc<Flaky>, blocks: usize, len: usize) {
    let (_dir, path, data) = file(len);
    let pan = client(emu, Arc::clone(http), blocks);
    let report = pan.upload_file(&path, "/up").await.unwrap();
    assert_eq!(report.etag, qetag(&data));
    let stored = emu.stored_blob(report.etag.as_str()).unwrap();
    assert_eq!(std::fs::read(stored).unwrap(), data);
}

/// Two blocks of 4 MiB and one of 12 345 bytes: 4 + 4 + 1 chunks.
const NINE_CHUNKS: usize = 2 * 4 * 1024 * 1024 + 12_345;

// Paused time: the resend waits its backoff at once (the emulator shares the runtime).
#[tokio::test(start_paused = true)]
async fn a_connection_dropped_before_the_third_chunk_is_resumed() {
    let emu = emulator().await;
    let http = Flaky::new(Drop::BeforeSending, 3, Duration::ZERO);
    upload_checked(&emu, &http, 1, NINE_CHUNKS).await;
    // 4 + 4 + 1 chunks stored; the dropped one was sent again (10 attempts).
    assert_eq!(emu.uploaded_chunks(), 9);
    assert_eq!(http.chunks.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_in_the_middle_of_a_block_redoes_the_block() {
    let emu = emulator().await;
    let http = Flaky::new(Drop::AnswerLost, 3, Duration::ZERO);
    upload_checked(&emu, &http, 1, NINE_CHUNKS).await;
    // The third chunk was stored but its answer lost: resending it with the old ctx is
    // refused, so block 0 is redone from mkblk (3 stored + 1 refused + 4 + 4 + 1).
    assert_eq!(emu.uploaded_chunks(), 3 + 9);
    assert_eq!(http.chunks.load(Ordering::SeqCst), 3 + 1 + 9);
}

#[tokio::test(start_paused = true)]
async fn three_blocks_in_flight_with_progress() {
    let emu = emulator().await;
    let (_dir, path, data) = file(5 * 4 * 1024 * 1024 + 1);
    let http = Flaky::new(Drop::Nothing, 0, Duration::from_millis(30));
    let pan = client(&emu, Arc::clone(&http), 3);
    let (tx, mut rx) = tokio::sync::watch::channel(UploadProgress::default());
    let seen = tokio::spawn(async move {
        let mut updates = Vec::new();
        while rx.changed().await.is_ok() {
            updates.push(*rx.borrow_and_update());
        }
        updates
    });
    let report = pan
        .upload_file_with_progress(&path, "/up", &tx)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(report.etag, qetag(&data));
    assert!(!report.instant);
    let stored = emu.stored_blob(report.etag.as_str()).unwrap();
    assert_eq!(std::fs::read(stored).unwrap(), data);
    assert_eq!(
        http.most.load(Ordering::SeqCst),
        3,
        "three blocks were sent at once, never more"
    );
    let updates = seen.await.unwrap();
    let last = updates.last().unwrap();
    assert_eq!(last.phase, UploadPhase::Done);
    assert_eq!(
        (last.bytes, last.total),
        (data.len() as u64, data.len() as u64)
    );
    let uploading: Vec<u64> = updates
        .iter()
        .filter(|p| p.phase == UploadPhase::Uploading)
        .map(|p| p.bytes)
        .collect();
    assert!(uploading.windows(2).all(|w| w[0] <= w[1]), "{uploading:?}");

    // The same file again: instant, and the channel says so.
    let (tx, rx) = tokio::sync::watch::channel(UploadProgress::default());
    let again = pan
        .upload_file_with_progress(&path, "/other", &tx)
        .await
        .unwrap();
    assert!(again.instant);
    assert!(rx.borrow().instant);
    assert_eq!(rx.borrow().phase, UploadPhase::Done);
}

// Real time: the emulator judges upload tokens by the system clock, which paused time
// does not move.
#[tokio::test]
async fn an_upload_token_that_expires_mid_upload_is_renewed_and_the_blocks_kept() {
    let emu = Emulator::start(EmulatorConfig {
        sixpan_upload_token_lifetime: Duration::from_secs(2),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    // 13 chunks, one at a time, 250 ms each: the first token dies after 2 s.
    let http = Flaky::new(Drop::Nothing, 0, Duration::from_millis(250));
    upload_checked(&emu, &http, 1, 3 * 4 * 1024 * 1024 + 99).await;
    // Every stored chunk was kept: 4 + 4 + 4 + 1, none sent twice but the refused one.
    assert_eq!(emu.uploaded_chunks(), 13);
    assert!(
        http.chunks.load(Ordering::SeqCst) >= 14,
        "a chunk was refused"
    );
}
