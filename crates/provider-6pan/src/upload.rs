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
//! Every rule of how failures are survived is the plan's
//! ([`offline_proto::sixpan::upload`], "How failures are survived"): a dropped
//! connection or a 5xx resends the same chunk at the same offset after a backoff; a
//! chunk whose answer was lost (the service moved the block's `ctx` on, so the old one
//! is refused) redoes that block from `mkblk`; a refused `mkfile` redoes every block;
//! a refused or expiring upload token is renewed (`storeToken` again) without losing
//! the blocks already stored. The driver here only reads the file, sends what the plan
//! hands out (`storeToken` through the call machine, the storage calls after the
//! endpoint's rate limit), sleeps until the plan's deadlines and reports every answer
//! with the time of [`TokioClock`](transport_hyper::TokioClock). When the plan gives
//! up on a step, the error is that step's failure ([`Error::Transport`],
//! [`Error::Api`]); its own errors (an etag mismatch names both values) are
//! [`Error::Upload`]. Progress, in bytes acknowledged by the storage service, goes to
//! a [`watch`] channel ([`SixPan::upload_file_with_progress`]).

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use offline_proto::clock::Clock;
use offline_proto::qetag::{qetag, Etag};
use offline_proto::retry::Attempt;
use offline_proto::sixpan::storage::new_batch_id;
use offline_proto::sixpan::upload::{
    Output, Step, Ticket, TokenAnswer, UploadConfig, UploadOutcome, UploadPlan, UploadTokenApi,
};
use offline_proto::sixpan::{ParseResult, StoredFile, UploadTokenRequest};
use offline_proto::torrent::{Metainfo, MAX_TORRENT_BYTES};
use offline_proto::{ApiError, HttpClient, HttpResponse, TransportError};
use tokio::sync::watch;

use crate::{Error, SixPan};

/// The folder `storeToken` puts torrents in.
pub const TORRENT_FOLDER: &str = ":torrent";

/// The shortest time between two progress reports while chunks are acknowledged.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

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

/// The answer to one step, as the driver's loop receives it.
enum Answer {
    /// `storeToken` or `uploadToken` ([`UploadTokenApi`]), through the call machine
    /// (which retries it by itself).
    Token(Result<TokenAnswer, Error>),
    /// A storage step's HTTP result, for the plan to decode and judge.
    Storage(Result<HttpResponse, TransportError>),
    /// Reading the file or encoding the request failed: the upload cannot go on.
    Local(Error),
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
        self.upload_torrent_bytes(&name, bytes).await
    }

    /// [`upload_torrent`](Self::upload_torrent) of a torrent held in memory, stored
    /// under the file name `name` in the torrent folder.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `bytes` is over [`MAX_TORRENT_BYTES`] or not a valid
    /// torrent (with the reason); the upload's and `parseTorrent`'s errors.
    pub async fn upload_torrent_bytes(
        &self,
        name: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<TorrentUpload, Error> {
        let bytes: Bytes = bytes.into();
        if bytes.len() > MAX_TORRENT_BYTES {
            return Err(Error::Config(format!(
                "{name}: {} bytes is larger than a torrent can be ({MAX_TORRENT_BYTES})",
                bytes.len()
            )));
        }
        Metainfo::from_bytes(&bytes)
            .map_err(|e| Error::Config(format!("{name}: not a usable torrent: {e}")))?;
        let name = name.to_owned();
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
    /// in flight, each chunk read from disk when it is sent. Failures are survived by
    /// the rules of [`UploadPlan`] ([`offline_proto::sixpan::upload`], "How failures
    /// are survived").
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

    /// Drives one [`UploadPlan`] to its end: sends what it hands out (every step at
    /// once; the plan bounds them by its `max_blocks_in_flight`), sleeps until its
    /// deadlines, and reports every answer with the time. Every rule is the plan's.
    async fn run_plan(
        &self,
        plan: UploadPlan,
        source: Source,
        progress: Option<&watch::Sender<UploadProgress>>,
    ) -> Result<UploadOutcome, Error> {
        let mut plan = plan.with_seed(self.seed());
        let clock = &self.inner.clock;
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
        let mut reported = clock.now();
        let mut in_flight = FuturesUnordered::new();
        loop {
            let next = match plan.poll(clock.now(), clock.wall()) {
                Output::Send(ticket, step) => {
                    if let Step::MakeFile { file_size, .. } = &step {
                        // Every chunk is stored; the service assembles the file.
                        report(UploadPhase::Uploading, *file_size, false);
                    }
                    in_flight.push(self.perform(ticket, step, &batch, &source));
                    continue;
                }
                Output::Done(outcome) => {
                    report(UploadPhase::Done, total, outcome.instant);
                    return Ok(*outcome);
                }
                Output::Failed(error) => {
                    tracing::debug!(%error, "upload ended");
                    return Err(match plan.take_cause() {
                        Some(Attempt::Transport(e)) => Error::Transport(e),
                        Some(Attempt::Api(e)) => Error::Api(e),
                        None => Error::Upload(error),
                    });
                }
                Output::WaitUntil(at) => {
                    let sleep = tokio::time::sleep_until(at.into());
                    if in_flight.is_empty() {
                        sleep.await;
                        continue;
                    }
                    tokio::select! {
                        next = in_flight.next() => next,
                        () = sleep => continue,
                    }
                }
                Output::AwaitAnswer => in_flight.next().await,
            };
            let Some((ticket, answer)) = next else {
                return Err(Error::Config(
                    "the upload plan waits for an answer with no step under way".to_owned(),
                ));
            };
            // A refused answer either ends the plan (its next poll says so) or changes
            // nothing (a stale one): the results of `handle_*` need no look.
            let _ = match answer {
                Answer::Local(e) | Answer::Token(Err(e)) => return Err(e),
                Answer::Token(Ok(result)) => {
                    plan.handle_store_token(ticket, result, clock.now(), clock.wall())
                }
                Answer::Storage(result) => {
                    plan.handle_response(ticket, result, clock.now(), clock.wall())
                }
            };
            // `bytes_acknowledged` walks every block: not after every chunk.
            if clock.now().saturating_duration_since(reported) >= PROGRESS_EVERY {
                reported = clock.now();
                report(UploadPhase::Uploading, plan.bytes_acknowledged(), false);
            }
        }
    }

    /// Sends one step and returns its answer. A storage step reads its bytes first.
    async fn perform(
        &self,
        ticket: Ticket,
        step: Step,
        batch: &str,
        source: &Source,
    ) -> (Ticket, Answer) {
        let answer = match &step {
            Step::StoreToken(request) => Answer::Token(match self.inner.upload_token_api {
                UploadTokenApi::StoreToken => self.call(request.clone()).await.map(Into::into),
                UploadTokenApi::V2 => self
                    .call(UploadTokenRequest::from(request))
                    .await
                    .and_then(|result| TokenAnswer::try_from(result).map_err(Error::Upload)),
            }),
            _ => match self.send_storage(&step, batch, source).await {
                Ok(result) => Answer::Storage(result),
                Err(e) => Answer::Local(e),
            },
        };
        (ticket, answer)
    }

    /// Reads the step's range and sends its storage request. The outer error is a
    /// local one (reading the file, encoding the request) that ends the upload.
    async fn send_storage(
        &self,
        step: &Step,
        batch: &str,
        source: &Source,
    ) -> Result<Result<HttpResponse, TransportError>, Error> {
        let data = match step.range() {
            Some(range) => source.read(range).await?,
            None => Bytes::new(),
        };
        let request = step
            .storage_request(batch, data)
            .ok_or_else(|| Error::Config("a storage step without a request".to_owned()))??;
        self.acquire(step.endpoint()).await;
        Ok(self.inner.http.send(request).await)
    }
}
