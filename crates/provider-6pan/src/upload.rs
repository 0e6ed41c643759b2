//! Torrent and file upload to the drive: hash, instant upload by etag, else the
//! storage service's form or block upload, driven from [`UploadPlan`].
//!
//! # The driver
//!
//! [`SixPan::upload_file`] hashes the file on every core ([`crate::hash`]), asks
//! `storeToken` (an instant upload when the drive knows the etag), then keeps up to
//! [`max_blocks_in_flight`](crate::SixPanBuilder::max_blocks_in_flight) blocks under
//! way at once, each block's chunks in order. A chunk is read from the file (a
//! positioned read on a blocking thread) only when its request is about to be sent,
//! so memory is about one chunk per block in flight, whatever the file's size.
//!
//! A step that fails is sent again where it stopped, as long as the upload token
//! lasts: a dropped connection or a 5xx resends the same chunk at the same offset
//! (with backoff); a chunk whose answer was lost (the service moved the block's `ctx`
//! on, so the old one is refused) redoes that block from `mkblk`; a refused or
//! expiring upload token is renewed (`storeToken` again) without losing the blocks
//! already stored. Progress, in bytes acknowledged by the storage service, goes to a
//! [`watch`] channel ([`SixPan::upload_file_with_progress`]).

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use offline_proto::clock::Clock;
use offline_proto::qetag::{qetag, Etag};
use offline_proto::retry::Backoff;
use offline_proto::sixpan::storage::{
    decode_chunk_stored, decode_file_stored, new_batch_id, storage_base,
};
use offline_proto::sixpan::upload::{Step, StepId, UploadConfig, UploadOutcome, UploadPlan};
use offline_proto::sixpan::{ParseResult, StoreTokenResult, StoredFile};
use offline_proto::torrent::{Metainfo, MAX_TORRENT_BYTES};
use offline_proto::{ApiError, HttpClient, HttpResponse, TransportError, TransportErrorKind};
use tokio::sync::watch;

use crate::{Error, SixPan};

/// The folder `storeToken` puts torrents in.
pub const TORRENT_FOLDER: &str = ":torrent";

/// How many times in a row one storage step is sent again after a failure (with waits
/// of up to [`MAX_STEP_WAIT`], about a minute or two in all).
const MAX_STEP_RETRIES: u32 = 10;
/// How many times blocks may be redone from `mkblk` in one upload, on top of one per
/// block.
const MAX_EXTRA_RESTARTS: u64 = 8;
/// How many times every block may be redone (`mkfile` refused the ctxs).
const MAX_FULL_RESTARTS: u32 = 1;
/// The shortest time between two progress reports while chunks are acknowledged.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);
/// A token that expires within this margin is renewed before the next step.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// A token is not renewed for being close to its deadline sooner than this after it
/// arrived (a service that hands out short-lived tokens is not asked in a loop).
const MIN_TOKEN_USE: Duration = Duration::from_secs(5);
/// The first wait before a step is sent again; it doubles up to [`MAX_STEP_WAIT`].
const FIRST_STEP_WAIT: Duration = Duration::from_millis(200);
/// The longest wait before a step is sent again.
const MAX_STEP_WAIT: Duration = Duration::from_secs(10);
/// A torrent in the drive, parsed.
#[derive(Debug, Clone)]
pub struct TorrentUpload {
    /// The torrent file's etag.
    pub etag: Etag,
    /// Whether the drive already had it (instant upload, 秒传): no byte was sent.
    pub instant: bool,
    /// The parse result: name, size, files, and the identity to add.
    pub result: ParseResult,
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct UploadReport {
    /// The file's etag.
    pub etag: Etag,
    /// Size in bytes.
    pub size: u64,
    /// Whether the drive already had it (instant upload).
    pub instant: bool,
    /// The created file, when the service described it (instant uploads).
    pub file: Option<StoredFile>,
}

/// What an upload is doing, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UploadPhase {
    /// Hashing the file: `bytes` hashed of `total`.
    #[default]
    Hashing,
    /// Sending it: `bytes` acknowledged by the storage service of `total`.
    Uploading,
    /// Done: the drive holds the file (`instant` when no byte had to be sent).
    Done,
}

/// Progress of one upload, as sent to the channel of
/// [`SixPan::upload_file_with_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadProgress {
    /// What the upload is doing.
    pub phase: UploadPhase,
    /// Bytes hashed (while hashing) or acknowledged by the storage service.
    pub bytes: u64,
    /// The file's size.
    pub total: u64,
    /// Whether the drive already had the file (set with [`UploadPhase::Done`]).
    pub instant: bool,
}

/// Where the bytes of an upload come from.
#[derive(Clone)]
enum Source {
    Memory(Bytes),
    File { file: Arc<File>, path: Arc<Path> },
}

impl Source {
    /// The bytes of `range`, read now (from disk on a blocking thread).
    async fn read(&self, range: Range<u64>) -> Result<Bytes, Error> {
        match self {
            Self::Memory(b) => Ok(b.slice(range.start as usize..range.end as usize)),
            Self::File { file, path } => {
                let (file, path) = (Arc::clone(file), Arc::clone(path));
                let at = path.display().to_string();
                tokio::task::spawn_blocking(move || read_range(&file, &path, range))
                    .await
                    .map_err(|e| Error::Io {
                        path: at.clone(),
                        source: std::io::Error::other(e),
                    })?
                    .map_err(|source| Error::Io { path: at, source })
            }
        }
    }
}

/// Reads `range` of `file` with a positioned read (no shared cursor, so reads of
/// several blocks can run at once).
#[cfg(unix)]
fn read_range(file: &File, _path: &Path, range: Range<u64>) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt as _;
    let len = usize::try_from(range.end - range.start).map_err(std::io::Error::other)?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, range.start)?;
    Ok(Bytes::from(buf))
}

/// Reads `range` of the file at `path` through a handle of its own.
#[cfg(not(unix))]
fn read_range(_file: &File, path: &Path, range: Range<u64>) -> std::io::Result<Bytes> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let len = usize::try_from(range.end - range.start).map_err(std::io::Error::other)?;
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(range.start))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// Why a storage step failed.
enum StepFailure {
    Transport(TransportError),
    Api(ApiError),
}

/// The answer to one step, as the driver's loop receives it.
enum Answer {
    Token(Result<StoreTokenResult, Error>),
    Chunk(Result<offline_proto::sixpan::ChunkStored, StepFailure>),
    File(Result<offline_proto::sixpan::FileStored, StepFailure>),
    /// Reading the file failed: the upload cannot go on.
    Read(Error),
}

/// A step that came back, with the epoch it was sent in (see [`Epochs`]).
struct Event {
    step: Step,
    epoch: u64,
    answer: Answer,
}

/// What to do about a failed storage step.
enum Recovery {
    /// Send the same step again (same chunk, offset and ctx).
    Resend,
    /// Ask for a new upload token, then send the step again.
    RenewToken,
    /// Redo this block from `mkblk`.
    RestartBlock(u64),
    /// Redo every block (the ctxs are no longer known).
    RestartAll,
    /// Give up.
    Fatal,
}

/// Which failures are worth what, for a storage step.
fn recovery(step: &Step, failure: &StepFailure) -> Recovery {
    let status = match failure {
        StepFailure::Transport(e) => {
            return match e.kind() {
                TransportErrorKind::BodyTooLarge { .. } => Recovery::Fatal,
                _ => Recovery::Resend,
            }
        }
        StepFailure::Api(ApiError::TokenInvalid(_)) => return Recovery::RenewToken,
        StepFailure::Api(ApiError::RateLimited { .. } | ApiError::Decode(_)) => {
            return Recovery::Resend
        }
        StepFailure::Api(e) => e.status(),
    };
    if status.is_server_error() || status == http::StatusCode::REQUEST_TIMEOUT {
        return Recovery::Resend;
    }
    match step {
        // The ctx was refused: most often the chunk was stored but its answer was lost,
        // so the service moved the block on to a ctx this side never saw.
        Step::PutChunk { block, .. } => Recovery::RestartBlock(*block),
        Step::MakeFile { .. } => Recovery::RestartAll,
        _ => Recovery::Fatal,
    }
}

/// The blocks' epochs: a step carries the epoch of its block when it was handed out,
/// and an answer from an older epoch (the block was redone since) is dropped, as
/// [`UploadPlan::restart_block`] asks.
#[derive(Default)]
struct Epochs {
    all: u64,
    blocks: HashMap<u64, u64>,
}

impl Epochs {
    fn of(&self, step: &Step) -> u64 {
        match step.id() {
            StepId::Block(b) => self.all + self.blocks.get(&b).copied().unwrap_or(0),
            _ => 0,
        }
    }

    fn restart_block(&mut self, block: u64) {
        *self.blocks.entry(block).or_default() += 1;
    }

    fn restart_all(&mut self) {
        // Added to every block's own count, so every block's epoch moves on.
        self.all += 1 << 32;
    }
}

impl<C: HttpClient> SixPan<C> {
    /// Puts a torrent file in the drive's torrent folder and parses it: the file is
    /// checked locally (a non-torrent is refused before anything is sent), hashed,
    /// uploaded unless the drive knows its etag (instant upload), then parsed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, [`Error::Selection`] is never
    /// returned here; [`Error::Config`] when it is not a valid torrent (with the
    /// reason); the upload's and `parseTorrent`'s errors.
    pub async fn upload_torrent(&self, path: impl AsRef<Path>) -> Result<TorrentUpload, Error> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_TORRENT_BYTES as u64 {
            return Err(Error::Config(format!(
                "{}: {len} bytes is larger than a torrent can be ({MAX_TORRENT_BYTES})",
                path.display()
            )));
        }
        let bytes = Bytes::from(std::fs::read(path).map_err(io)?);
        Metainfo::from_bytes(&bytes)
            .map_err(|e| Error::Config(format!("{}: not a usable torrent: {e}", path.display())))?;
        let name = path.file_name().map_or_else(
            || "upload.torrent".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let etag = qetag(&bytes);
        let outcome = self
            .run_plan(
                UploadPlan::new(
                    name,
                    Some(TORRENT_FOLDER.to_owned()),
                    None,
                    bytes.len() as u64,
                    etag,
                    UploadConfig::default(),
                ),
                Source::Memory(bytes),
                None,
            )
            .await?;
        let mut results = self.parse_torrents(&[etag]).await?;
        let result = results.pop().ok_or_else(|| {
            Error::Api(ApiError::Provider(offline_proto::ProviderError::new(
                offline_proto::Code::Text("EMPTY_RESULT".to_owned()),
                "parseTorrent answered no result",
                None,
                http::StatusCode::OK,
            )))
        })?;
        Ok(TorrentUpload {
            etag,
            instant: outcome.instant,
            result,
        })
    }

    /// Uploads any file into the folder `dest` (a path such as `/backups`): hashed on
    /// every core, created at once when the drive knows its etag (instant upload),
    /// else sent in a form upload (up to 4 MiB) or a block upload with several blocks
    /// in flight, each chunk read from disk when it is sent. See the
    /// [module docs](self) for how failures are resumed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, [`Error::Upload`] (an etag mismatch
    /// names both values), and the calls' errors once a step has failed too often or
    /// cannot be sent again.
    pub async fn upload_file(
        &self,
        path: impl AsRef<Path>,
        dest: &str,
    ) -> Result<UploadReport, Error> {
        self.upload(path.as_ref(), dest, None).await
    }

    /// [`upload_file`](Self::upload_file), sending its progress to `progress`: the
    /// bytes hashed, then the bytes the storage service acknowledged, then
    /// [`UploadPhase::Done`]. Watch the receiving side to draw a bar.
    ///
    /// # Errors
    ///
    /// As [`upload_file`](Self::upload_file).
    pub async fn upload_file_with_progress(
        &self,
        path: impl AsRef<Path>,
        dest: &str,
        progress: &watch::Sender<UploadProgress>,
    ) -> Result<UploadReport, Error> {
        self.upload(path.as_ref(), dest, Some(progress)).await
    }

    async fn upload(
        &self,
        path: &Path,
        dest: &str,
        progress: Option<&watch::Sender<UploadProgress>>,
    ) -> Result<UploadReport, Error> {
        let shown = path.display().to_string();
        let io = |source| Error::Io {
            path: shown.clone(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let total = file.metadata().map_err(io)?.len();
        if let Some(tx) = progress {
            tx.send_replace(UploadProgress {
                phase: UploadPhase::Hashing,
                bytes: 0,
                total,
                instant: false,
            });
        }
        let threads = self.inner.hash_threads;
        let owned: PathBuf = path.to_owned();
        let tx = progress.cloned();
        let (etag, size) = tokio::task::spawn_blocking(move || match tx {
            Some(tx) => crate::hash::hash_file_with_progress(&owned, threads, &|n| {
                tx.send_modify(|p| p.bytes += n);
            }),
            None => crate::hash::hash_file(&owned, threads),
        })
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
        let name = path
            .file_name()
            .map_or_else(|| "upload".to_owned(), |n| n.to_string_lossy().into_owned());
        let plan = UploadPlan::new(
            name,
            Some(dest.to_owned()),
            None,
            size,
            etag,
            self.inner.upload_config,
        );
        let source = Source::File {
            file: Arc::new(file),
            path: Arc::from(path),
        };
        let outcome = self.run_plan(plan, source, progress).await?;
        Ok(UploadReport {
            etag,
            size,
            instant: outcome.instant,
            file: outcome.file,
        })
    }

    /// Drives one [`UploadPlan`] to its end, with every step it hands out under way at
    /// once (the plan bounds them by its `max_blocks_in_flight`).
    async fn run_plan(
        &self,
        mut plan: UploadPlan,
        source: Source,
        progress: Option<&watch::Sender<UploadProgress>>,
    ) -> Result<UploadOutcome, Error> {
        let batch = new_batch_id(self.seed());
        let total = plan.size();
        let report = |phase: UploadPhase, bytes: u64, instant: bool| {
            if let Some(tx) = progress {
                tx.send_replace(UploadProgress {
                    phase,
                    bytes,
                    total,
                    instant,
                });
            }
        };
        report(UploadPhase::Uploading, 0, false);
        let mut epochs = Epochs::default();
        // Per step: the backoff of its consecutive failures, and the wait before it is
        // sent next.
        let mut backoffs: HashMap<StepId, Backoff> = HashMap::new();
        let mut waits: HashMap<StepId, Duration> = HashMap::new();
        let mut restarts_left = plan.block_count() + MAX_EXTRA_RESTARTS;
        let mut full_restarts_left = MAX_FULL_RESTARTS;
        let mut reported = self.inner.clock.now();
        let mut upload_url: Option<String> = None;
        let mut token_at = self.inner.clock.now();
        let mut in_flight = FuturesUnordered::new();
        loop {
            if let Some(e) = plan.error() {
                return Err(Error::Upload(e.clone()));
            }
            if let Some(outcome) = plan.outcome() {
                report(UploadPhase::Done, total, outcome.instant);
                return Ok(outcome.clone());
            }
            if plan.token_expired(self.inner.clock.wall(), TOKEN_MARGIN)
                && token_at.elapsed() >= MIN_TOKEN_USE
            {
                plan.renew_token();
            }
            while let Some(step) = plan.poll() {
                if let Step::MakeFile { file_size, .. } = &step {
                    // Every chunk is stored; the service assembles the file.
                    report(UploadPhase::Uploading, *file_size, false);
                }
                let wait = waits.remove(&step.id());
                let epoch = epochs.of(&step);
                in_flight.push(self.perform(step, epoch, wait, &batch, &source));
            }
            let Some(event) = in_flight.next().await else {
                return Err(Error::Config(
                    "the upload plan stopped without an outcome".to_owned(),
                ));
            };
            let Event {
                step,
                epoch,
                answer,
            } = event;
            if epoch != epochs.of(&step) {
                // An answer about a block redone since: the plan no longer expects it.
                continue;
            }
            let id = step.id();
            let failure = match answer {
                Answer::Read(e) => return Err(e),
                Answer::Token(Err(e)) => return Err(e),
                Answer::Token(Ok(result)) => {
                    token_at = self.inner.clock.now();
                    if let StoreTokenResult::Upload(info) = &result {
                        let moved = upload_url
                            .as_deref()
                            .is_some_and(|old| !same_storage(old, &info.upload_url));
                        if moved {
                            epochs.restart_all();
                        }
                        upload_url = Some(info.upload_url.clone());
                    }
                    // An error ends the plan; the loop reports it.
                    let _ = plan.handle_store_token(result, self.inner.clock.wall());
                    continue;
                }
                Answer::Chunk(Ok(stored)) => {
                    backoffs.remove(&id);
                    if let StepId::Block(block) = id {
                        // A refused answer either ends the plan (reported by the loop)
                        // or changes nothing.
                        let _ = plan.handle_chunk(block, stored);
                    }
                    // `bytes_acknowledged` walks every block: not after every chunk.
                    if reported.elapsed() >= PROGRESS_EVERY {
                        reported = self.inner.clock.now();
                        report(UploadPhase::Uploading, plan.bytes_acknowledged(), false);
                    }
                    continue;
                }
                Answer::File(Ok(stored)) => {
                    backoffs.remove(&id);
                    let _ = plan.handle_file_stored(stored);
                    continue;
                }
                Answer::Chunk(Err(f)) | Answer::File(Err(f)) => f,
            };
            let give_up = |failure: StepFailure| match failure {
                StepFailure::Transport(e) => Error::Transport(e),
                StepFailure::Api(e) => Error::Api(e),
            };
            let recovery = recovery(&step, &failure);
            tracing::debug!(step = ?id, error = %match &failure {
                StepFailure::Transport(e) => e.to_string(),
                StepFailure::Api(e) => e.to_string(),
            }, "storage step failed");
            match recovery {
                Recovery::Fatal => return Err(give_up(failure)),
                Recovery::RestartBlock(_) if restarts_left == 0 => return Err(give_up(failure)),
                Recovery::RestartAll if full_restarts_left == 0 => return Err(give_up(failure)),
                Recovery::RestartBlock(block) => {
                    restarts_left -= 1;
                    epochs.restart_block(block);
                    plan.restart_block(block);
                }
                Recovery::RestartAll => {
                    full_restarts_left -= 1;
                    epochs.restart_all();
                    plan.restart_all_blocks();
                }
                Recovery::Resend | Recovery::RenewToken => {
                    let seed = self.seed();
                    let backoff = backoffs.entry(id).or_insert_with(|| {
                        Backoff::new(FIRST_STEP_WAIT, MAX_STEP_WAIT, MAX_STEP_RETRIES, seed)
                    });
                    let Some(wait) = backoff.next_delay() else {
                        return Err(give_up(failure));
                    };
                    let past_deadline = plan
                        .token_deadline()
                        .is_some_and(|d| d <= self.inner.clock.wall() + wait);
                    if matches!(recovery, Recovery::RenewToken) || past_deadline {
                        plan.renew_token();
                    }
                    waits.insert(id, wait);
                    plan.handle_failed(id);
                }
            }
        }
    }

    /// Sends one step (after `wait`, when it is being sent again) and decodes its
    /// answer. A file step reads its bytes first.
    async fn perform(
        &self,
        step: Step,
        epoch: u64,
        wait: Option<Duration>,
        batch: &str,
        source: &Source,
    ) -> Event {
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        if let Step::StoreToken(request) = &step {
            let answer = Answer::Token(self.call(request.clone()).await);
            return Event {
                step,
                epoch,
                answer,
            };
        }
        let answer = match self.send_storage(&step, batch, source).await {
            Err(e) => Answer::Read(e),
            Ok(sent) => match &step {
                Step::MakeBlock { .. } | Step::PutChunk { .. } => Answer::Chunk(
                    sent.and_then(|r| decode_chunk_stored(&r).map_err(StepFailure::Api)),
                ),
                _ => Answer::File(
                    sent.and_then(|r| decode_file_stored(&r).map_err(StepFailure::Api)),
                ),
            },
        };
        Event {
            step,
            epoch,
            answer,
        }
    }

    /// Reads the step's range and sends its storage request. The outer error is a
    /// local one (reading the file, encoding the request) that ends the upload.
    async fn send_storage(
        &self,
        step: &Step,
        batch: &str,
        source: &Source,
    ) -> Result<Result<HttpResponse, StepFailure>, Error> {
        let data = match step.range() {
            Some(range) => source.read(range).await?,
            None => Bytes::new(),
        };
        let request = step
            .storage_request(batch, data)
            .ok_or_else(|| Error::Config("a storage step without a request".to_owned()))??;
        self.acquire(step.endpoint()).await;
        Ok(self
            .inner
            .http
            .send(request)
            .await
            .map_err(StepFailure::Transport))
    }
}

/// Whether two upload URLs name the same storage service.
fn same_storage(a: &str, b: &str) -> bool {
    match (storage_base(a), storage_base(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
