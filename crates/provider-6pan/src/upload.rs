//! Torrent and file upload to the drive: hash, instant upload by etag, else the
//! storage service's form or block upload, driven from [`UploadPlan`].

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use offline_proto::qetag::{qetag, Etag, Qetag};
use offline_proto::retry::{classify, Backoff, Failure, Retry};
use offline_proto::sixpan::storage::{decode_chunk_stored, decode_file_stored, new_batch_id};
use offline_proto::sixpan::upload::{Step, UploadConfig, UploadOutcome, UploadPlan};
use offline_proto::sixpan::{ParseResult, StoredFile};
use offline_proto::torrent::{Metainfo, MAX_TORRENT_BYTES};
use offline_proto::{ApiError, HttpClient};

use crate::{Error, SixPan};

/// The folder `storeToken` puts torrents in.
pub const TORRENT_FOLDER: &str = ":torrent";

/// How many times one storage step is sent again after a transport failure.
const MAX_STEP_RETRIES: u32 = 5;

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

/// Where the bytes of an upload come from.
enum Source<'a> {
    Memory(&'a Bytes),
    File(&'a Path),
}

impl Source<'_> {
    fn read(&self, range: std::ops::Range<u64>) -> Result<Bytes, Error> {
        match self {
            Self::Memory(b) => Ok(b.slice(range.start as usize..range.end as usize)),
            Self::File(path) => {
                let io = |source| Error::Io {
                    path: path.display().to_string(),
                    source,
                };
                let mut f = std::fs::File::open(path).map_err(io)?;
                f.seek(SeekFrom::Start(range.start)).map_err(io)?;
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                f.read_exact(&mut buf).map_err(io)?;
                Ok(Bytes::from(buf))
            }
        }
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
                &name,
                Some(TORRENT_FOLDER.to_owned()),
                bytes.len() as u64,
                etag,
                Source::Memory(&bytes),
                UploadConfig::default(),
            )
            .await?;
        let mut results = self.parse_torrents(&[etag]).await?;
        let result = results.pop().ok_or_else(|| {
            Error::Api(ApiError::Provider(offline_proto::ProviderError {
                code: offline_proto::Code::Text("EMPTY_RESULT".to_owned()),
                message: "parseTorrent answered no result".to_owned(),
                trace_id: None,
                status: http::StatusCode::OK,
            }))
        })?;
        Ok(TorrentUpload {
            etag,
            instant: outcome.instant,
            result,
        })
    }

    /// Uploads any file into the folder `dest` (a path such as `/backups`): streamed
    /// hashing, instant upload when the drive knows the etag, else a form upload (up
    /// to 4 MiB) or a block upload reading each chunk from disk when it is sent.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], [`Error::Upload`] (an etag mismatch names both values), and the
    /// calls' errors.
    pub async fn upload_file(
        &self,
        path: impl AsRef<Path>,
        dest: &str,
    ) -> Result<UploadReport, Error> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let (etag, size) = {
            let mut f = std::fs::File::open(path).map_err(io)?;
            let mut h = Qetag::new();
            let mut buf = vec![0u8; 128 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            let size = h.bytes_hashed();
            (h.finalize(), size)
        };
        let name = path
            .file_name()
            .map_or_else(|| "upload".to_owned(), |n| n.to_string_lossy().into_owned());
        let outcome = self
            .run_plan(
                &name,
                Some(dest.to_owned()),
                size,
                etag,
                Source::File(path),
                UploadConfig::default(),
            )
            .await?;
        Ok(UploadReport {
            etag,
            size,
            instant: outcome.instant,
            file: outcome.file,
        })
    }

    /// Drives one [`UploadPlan`] to its end, one step at a time.
    async fn run_plan(
        &self,
        name: &str,
        path: Option<String>,
        size: u64,
        etag: Etag,
        source: Source<'_>,
        config: UploadConfig,
    ) -> Result<UploadOutcome, Error> {
        let mut plan = UploadPlan::new(name.to_owned(), path, None, size, etag, config);
        let batch = new_batch_id(self.seed());
        let mut backoff = Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(5),
            MAX_STEP_RETRIES,
            self.seed(),
        );
        loop {
            if let Some(e) = plan.error() {
                return Err(Error::Upload(e.clone()));
            }
            if let Some(outcome) = plan.outcome() {
                return Ok(outcome.clone());
            }
            if plan.token_expired(SystemTime::now(), Duration::from_secs(60)) {
                plan.renew_token();
            }
            let Some(step) = plan.poll() else {
                return Err(Error::Config(
                    "the upload plan stopped without an outcome".to_owned(),
                ));
            };
            if let Step::StoreToken(request) = &step {
                let answer = self.call(request).await?;
                // An error here ends the plan; the loop reports it.
                let _ = plan.handle_store_token(answer, SystemTime::now());
                continue;
            }
            let data = match step.range() {
                Some(range) => source.read(range)?,
                None => Bytes::new(),
            };
            let request = step
                .storage_request(&batch, data)
                .ok_or_else(|| Error::Config("a storage step without a request".to_owned()))??;
            self.acquire(step.endpoint()).await;
            let answer = self.inner.http.send(request).await;
            let failed = match answer {
                Ok(response) => {
                    let handled = match &step {
                        Step::MakeBlock { block, .. } | Step::PutChunk { block, .. } => {
                            decode_chunk_stored(&response).map(|a| plan.handle_chunk(*block, a))
                        }
                        _ => decode_file_stored(&response).map(|a| plan.handle_file_stored(a)),
                    };
                    match handled {
                        // A plan error ends the plan; the loop reports it.
                        Ok(_) => continue,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Ok(e),
            };
            // Storage steps carry their own position (ctx, offset), so sending one
            // again is safe: classify it as a read.
            let retry = match &failed {
                Ok(transport) => classify(false, &Failure::Transport(transport)),
                Err(api) => classify(false, &Failure::Api(api)),
            };
            let delay = match retry {
                Retry::No => None,
                Retry::After(d) => backoff.next_delay().map(|_| d),
                Retry::Backoff => backoff.next_delay(),
            };
            match delay {
                Some(d) => {
                    tracing::debug!(step = ?step.id(), ?d, "storage step failed; sending it again");
                    plan.handle_failed(step.id());
                    tokio::time::sleep(d).await;
                }
                None => {
                    return Err(match failed {
                        Ok(transport) => Error::Transport(transport),
                        Err(api) => Error::Api(api),
                    })
                }
            }
        }
    }
}
