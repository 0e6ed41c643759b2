//! The storage upload of one file as a state machine: etag, `storeToken` (instant
//! upload when the drive already holds the hash), then a form upload or a block
//! upload, and the final check that the stored hash is the local etag.
//!
//! [`UploadPlan`] performs no I/O, reads no clock and never sees the file's bytes: it
//! tells the driver which call to make and which byte range of the file to read and
//! send ([`Step`]), and the driver reports what came back. Facts: `docs/wire-notes.md`
//! (6pan section, "Upload to the storage service"); the requests are built by
//! [`super::storage`] ([`Step::storage_request`] picks the right one).
//!
//! # Order of calls
//!
//! The shape is quinn-proto's: inputs are `handle_*`, outputs come from
//! [`poll`](UploadPlan::poll), and time is handed in.
//!
//! 1. Hash the file ([`crate::qetag`]) and create the plan with its size and etag.
//! 2. Call [`poll`](UploadPlan::poll) until it returns `None`, starting every
//!    [`Step`] it returns (one at a time, or all at once: each step is independent of
//!    the others handed out with it).
//! 3. When a step's answer arrives, report it: [`handle_store_token`] for
//!    [`Step::StoreToken`], [`handle_chunk`] for [`Step::MakeBlock`] and
//!    [`Step::PutChunk`], [`handle_file_stored`] for [`Step::UploadSmall`] and
//!    [`Step::MakeFile`]. When a step fails in transport (or with an error answer
//!    worth retrying), report [`handle_failed`] with its [`Step::id`]: the same step
//!    is handed out again. Then go back to 2.
//! 4. Stop when [`outcome`](UploadPlan::outcome) or [`error`](UploadPlan::error) is
//!    `Some` ([`is_finished`](UploadPlan::is_finished)).
//!
//! Before sending a step, a driver may check [`token_expired`]`(now, margin)` and call
//! [`renew_token`] to ask for a fresh upload token; the progress is kept (and the
//! blocks are redone if the new token points to another storage host). A block whose
//! `ctx` was lost (a dropped connection, a `ctx` the service no longer knows) is
//! redone from `mkblk` with [`restart_block`].
//!
//! ```text
//!  new(name, path, parent, size, etag, config)
//!        │
//!        ▼
//!  Step::StoreToken ──handle_store_token──┬── Instant(file) ─────────────────────► Done (instant)
//!        ▲                                │    storeId must equal the etag
//!        │ renew_token                    └── Upload(token, uploadUrl)
//!        │                                         │
//!        │               size == 0 or ≤ small_file_limit ? ─── yes ──► Step::UploadSmall
//!        │                                         │ no                (the whole file)
//!        │                                         ▼                          │
//!        │            for each 4 MiB block (up to max_blocks_in_flight        │
//!        │            at once; chunks of one block in order):                 │
//!        │              Step::MakeBlock ─handle_chunk─► Step::PutChunk ─┐     │
//!        │                                               ▲ handle_chunk │     │
//!        │                                               └──────────────┘     │
//!        │                                         │ every block acknowledged │
//!        │                                         ▼                          │
//!        └──────────────────────────────── Step::MakeFile                     │
//!                                                  │                          │
//!                                                  ▼                          ▼
//!                                     handle_file_stored: hash == etag ? ─► Done
//!                                                  │ no
//!                                                  ▼
//!                                     UploadError::EtagMismatch { local, remote }
//! ```
//!
//! # Which path a file takes
//!
//! - **Empty file**: a form upload (`/file/upload`) with an empty `file` part, whatever
//!   the configuration: `mkblk` needs a block of at least one byte. Its etag is the
//!   one of empty data, `Fto5o-5ea0sNMlW_75VgGJCv2AcJ`.
//! - **Up to [`small_file_limit`](UploadConfig::small_file_limit)** (default one block,
//!   4 MiB, so a file of exactly 4 194 304 bytes included): one form upload.
//! - **Larger** (4 MiB + 1 by default): blocks of 4 MiB (the last one shorter: one
//!   byte for 4 MiB + 1), each sent as `mkblk` with its first chunk then `bput` for the
//!   others, then `mkfile` with the last ctx of every block. With
//!   `small_file_limit: 0`, every non-empty file takes this path.
//!
//! Errors: an answer that was not asked for (a late answer to a step that was failed
//! or restarted, a second answer) is refused with [`UploadError::UnexpectedAnswer`]
//! and changes nothing. Every other error ends the plan: [`poll`] returns `None` from
//! then on and [`error`](UploadPlan::error) keeps it; start again with a new plan.
//!
//! ```
//! use std::time::SystemTime;
//! use offline_proto::qetag::qetag;
//! use offline_proto::sixpan::upload::{Step, UploadConfig, UploadPlan};
//! use offline_proto::sixpan::{FileStored, StoreTokenResult, UploadInfo};
//!
//! let data = b"hello".to_vec();
//! let etag = qetag(&data);
//! let mut plan = UploadPlan::new("hello.txt".into(), None, None, data.len() as u64, etag,
//!                                UploadConfig::default());
//! while let Some(step) = plan.poll() {
//!     match step {
//!         // A driver sends `request` to the API host and decodes the answer.
//!         Step::StoreToken(request) => {
//!             assert_eq!(request.hash, Some(etag));
//!             let info = UploadInfo {
//!                 token: "ak:sign:e30".into(),
//!                 upload_url: "http://upload.example".into(),
//!                 upload_type: None, version: None, name: None, parent: None, user_id: None,
//!             };
//!             plan.handle_store_token(StoreTokenResult::Upload(info), SystemTime::now()).unwrap();
//!         }
//!         // A driver reads the range, sends `upload_request` and decodes the answer.
//!         Step::UploadSmall { range, .. } => {
//!             let stored = qetag(&data[range.start as usize..range.end as usize]);
//!             plan.handle_file_stored(FileStored { hash: stored, key: None }).unwrap();
//!         }
//!         other => unreachable!("{other:?}"),
//!     }
//! }
//! let outcome = plan.outcome().unwrap();
//! assert!(!outcome.instant);
//! assert_eq!(outcome.etag, etag);
//! ```
//!
//! [`handle_store_token`]: UploadPlan::handle_store_token
//! [`handle_chunk`]: UploadPlan::handle_chunk
//! [`handle_file_stored`]: UploadPlan::handle_file_stored
//! [`handle_failed`]: UploadPlan::handle_failed
//! [`token_expired`]: UploadPlan::token_expired
//! [`renew_token`]: UploadPlan::renew_token
//! [`restart_block`]: UploadPlan::restart_block
//! [`poll`]: UploadPlan::poll

use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::storage;
use super::upload_token::UploadToken;
use super::{ChunkStored, EndpointId, FileStored, StoreTokenRequest, StoreTokenResult, StoredFile};
use crate::qetag::{Etag, BLOCK_SIZE};
use crate::{EncodeError, HttpRequest, Secret, ValidationError};

/// The default chunk size of a block upload: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1024 * 1024;

/// The block size as a `u64`.
const BLOCK: u64 = BLOCK_SIZE as u64;

/// How a plan uploads. Out-of-range values are brought into range when a plan is
/// created (see each field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadConfig {
    /// The size of one `mkblk`/`bput` body, in bytes: 1 to 4 MiB (0 reads as 1, more
    /// than 4 MiB as 4 MiB). Default 1 MiB. A smaller chunk loses less on a dropped
    /// connection; a larger one makes fewer requests.
    pub chunk_size: u32,
    /// How many blocks may be under way at once (0 reads as 1). Default 1. With more,
    /// [`UploadPlan::poll`] hands out the first step of several blocks before their
    /// answers arrive, so a driver can upload them in parallel; the chunks of one block
    /// always go one after the other.
    pub max_blocks_in_flight: usize,
    /// Files up to this size (in bytes) go in one form upload; larger ones go in
    /// blocks. Default (and maximum: larger values read as) one block, 4 MiB: the
    /// service's form upload is only documented for files up to one block. An empty
    /// file always goes in a form upload.
    pub small_file_limit: u64,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_blocks_in_flight: 1,
            small_file_limit: BLOCK,
        }
    }
}

impl UploadConfig {
    /// The configuration with every field brought into range.
    #[must_use]
    pub fn normalized(self) -> Self {
        Self {
            chunk_size: self.chunk_size.clamp(1, BLOCK_SIZE as u32),
            max_blocks_in_flight: self.max_blocks_in_flight.max(1),
            small_file_limit: self.small_file_limit.min(BLOCK),
        }
    }
}

/// What the driver must do next. Each step names the byte range of the file to read
/// and send, exactly: the plan never sees the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send `POST /v1/store/token` with this body to the API host and report the
    /// answer with [`UploadPlan::handle_store_token`]. The body carries the etag, so a
    /// file the drive already holds is created at once (秒传).
    StoreToken(StoreTokenRequest),
    /// Read `range` (the whole file, possibly empty) and send it with
    /// [`storage::upload_request`]; report the answer with
    /// [`UploadPlan::handle_file_stored`].
    UploadSmall {
        /// The `uploadUrl` from `storeToken`.
        upload_url: String,
        /// The upload token (a form field of this call).
        token: Secret,
        /// The file name for the form's `file` part.
        file_name: String,
        /// The bytes to send: `0..size`.
        range: Range<u64>,
    },
    /// Read `range` (the block's first chunk) and send it with
    /// [`storage::make_block_request`]; report the answer with
    /// [`UploadPlan::handle_chunk`]`(block, ..)`.
    MakeBlock {
        /// The `uploadUrl` from `storeToken`.
        upload_url: String,
        /// The upload token (the `Authorization` header).
        token: Secret,
        /// The block's index, from 0.
        block: u64,
        /// The block's size: 4 MiB, or less for the last block.
        block_size: u64,
        /// The bytes of the file to send.
        range: Range<u64>,
    },
    /// Read `range` (the block's next chunk) and send it with
    /// [`storage::put_chunk_request`]; report the answer with
    /// [`UploadPlan::handle_chunk`]`(block, ..)`.
    PutChunk {
        /// The `uploadUrl` from `storeToken`.
        upload_url: String,
        /// The upload token (the `Authorization` header).
        token: Secret,
        /// The block's index, from 0.
        block: u64,
        /// The block's latest context.
        ctx: String,
        /// Where the chunk starts in the block (bytes of the block stored so far).
        offset: u64,
        /// The bytes of the file to send.
        range: Range<u64>,
    },
    /// Send [`storage::make_file_request`] with these ctxs (nothing to read); report
    /// the answer with [`UploadPlan::handle_file_stored`].
    MakeFile {
        /// The `uploadUrl` from `storeToken`.
        upload_url: String,
        /// The upload token (the `Authorization` header).
        token: Secret,
        /// The whole file's size.
        file_size: u64,
        /// The last ctx of every block, in block order.
        ctxs: Vec<String>,
    },
}

/// Which step failed, for [`UploadPlan::handle_failed`]: [`Step::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepId {
    /// [`Step::StoreToken`].
    StoreToken,
    /// [`Step::UploadSmall`].
    UploadSmall,
    /// [`Step::MakeBlock`] or [`Step::PutChunk`] of this block (one block has at most
    /// one step under way).
    Block(u64),
    /// [`Step::MakeFile`].
    MakeFile,
}

impl Step {
    /// Which step this is, for [`UploadPlan::handle_failed`].
    pub fn id(&self) -> StepId {
        match self {
            Self::StoreToken(_) => StepId::StoreToken,
            Self::UploadSmall { .. } => StepId::UploadSmall,
            Self::MakeBlock { block, .. } | Self::PutChunk { block, .. } => StepId::Block(*block),
            Self::MakeFile { .. } => StepId::MakeFile,
        }
    }

    /// The endpoint this step calls (for rate limits and logs).
    pub fn endpoint(&self) -> EndpointId {
        match self {
            Self::StoreToken(_) => EndpointId::StoreToken,
            Self::UploadSmall { .. } => EndpointId::Upload,
            Self::MakeBlock { .. } => EndpointId::MakeBlock,
            Self::PutChunk { .. } => EndpointId::PutChunk,
            Self::MakeFile { .. } => EndpointId::MakeFile,
        }
    }

    /// The byte range of the file this step sends; `None` for the steps that send no
    /// file bytes (`StoreToken`, `MakeFile`).
    pub fn range(&self) -> Option<Range<u64>> {
        match self {
            Self::UploadSmall { range, .. }
            | Self::MakeBlock { range, .. }
            | Self::PutChunk { range, .. } => Some(range.clone()),
            Self::StoreToken(_) | Self::MakeFile { .. } => None,
        }
    }

    /// The storage request of this step, with `data` = the bytes of
    /// [`range`](Self::range) (empty for `MakeFile`) and `batch` = the file's
    /// `UploadBatch` ID ([`storage::new_batch_id`], the same for every step of a plan).
    /// The form upload is sent without `key` or `mimeType`; call
    /// [`storage::upload_request`] directly to set them. `None` for
    /// [`Step::StoreToken`], which goes to the API host.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Invalid`] when `data` is not exactly as long as the range, and
    /// the errors of the [`storage`] encoders.
    pub fn storage_request(
        &self,
        batch: &str,
        data: Bytes,
    ) -> Option<Result<HttpRequest, EncodeError>> {
        if let Self::StoreToken(_) = self {
            return None;
        }
        let expected = self.range().map_or(0, |r| r.end - r.start);
        if data.len() as u64 != expected {
            return Some(Err(ValidationError::InvalidValue {
                field: "data",
                reason: format!(
                    "the step sends bytes {:?} ({expected} bytes), {} were given",
                    self.range().unwrap_or(0..0),
                    data.len()
                ),
            }
            .into()));
        }
        Some(match self {
            Self::StoreToken(_) => return None,
            Self::UploadSmall {
                upload_url,
                token,
                file_name,
                ..
            } => storage::upload_request(upload_url, token, None, file_name, None, data),
            Self::MakeBlock {
                upload_url,
                token,
                block,
                block_size,
                ..
            } => storage::make_block_request(upload_url, token, batch, *block_size, *block, data),
            Self::PutChunk {
                upload_url,
                token,
                ctx,
                offset,
                ..
            } => storage::put_chunk_request(upload_url, token, batch, ctx, *offset, data),
            Self::MakeFile {
                upload_url,
                token,
                file_size,
                ctxs,
            } => storage::make_file_request(upload_url, token, batch, *file_size, ctxs),
        })
    }
}

/// How an upload ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// Whether the drive already held the file, so no byte was sent (秒传).
    pub instant: bool,
    /// The file's etag, equal to the one the service stored.
    pub etag: Etag,
    /// The file in the drive, when the service said (an instant upload answers it; the
    /// storage service does not).
    pub file: Option<StoredFile>,
    /// The storage key, when the storage service said.
    pub key: Option<String>,
}

/// Why an upload cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The service stored a file whose hash is not the local etag: the bytes sent were
    /// not the file's (it changed while uploading, or a range was read wrongly).
    #[error("the stored file's hash {remote} is not the local etag {local}")]
    EtagMismatch {
        /// The etag computed locally.
        local: Etag,
        /// The hash the service answered.
        remote: Etag,
    },
    /// A chunk answer's `offset` is not the bytes of the block sent so far.
    #[error(
        "block {block}: the storage service reports offset {got}, but {expected} bytes of the block were sent"
    )]
    UnexpectedOffset {
        /// The block's index.
        block: u64,
        /// The bytes of the block sent, up to and including the chunk answered.
        expected: u64,
        /// The `offset` of the answer.
        got: u64,
    },
    /// An answer the plan did not ask for (a late answer to a step that was failed or
    /// restarted, an answer to the wrong call). It is refused and changes nothing.
    #[error("unexpected answer: {0}")]
    UnexpectedAnswer(&'static str),
    /// An answer the plan cannot use (an empty `ctx`).
    #[error("invalid answer from the storage service: {0}")]
    InvalidAnswer(&'static str),
    /// The upload token from `storeToken` had expired when it arrived (by the put
    /// policy's deadline and the `now` given): the local clock is probably wrong.
    #[error("the upload token expired at {deadline:?}, before it arrived (is the clock right?)")]
    TokenExpired {
        /// The put policy's deadline.
        deadline: SystemTime,
    },
    /// The etag given to the plan cannot be the etag of a file of that size (a
    /// one-block etag for a file over 4 MiB, or the reverse).
    #[error("{etag} is not the etag of a {size}-byte file: it is a {} etag", if *multi_block { "multi-block" } else { "one-block" })]
    EtagSize {
        /// The size given.
        size: u64,
        /// The etag given.
        etag: Etag,
        /// Whether the etag is a multi-block one.
        multi_block: bool,
    },
}

impl UploadError {
    /// Whether this error ended the plan (all but [`UploadError::UnexpectedAnswer`]).
    pub fn ends_upload(&self) -> bool {
        !matches!(self, Self::UnexpectedAnswer(_))
    }
}

/// Where the storage service is and the token to use.
#[derive(Debug, Clone)]
struct Storage {
    upload_url: String,
    token: Secret,
    /// The token with its put policy, when it reads as one.
    parsed: Option<UploadToken>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenState {
    /// `poll` must hand out a `StoreToken` step.
    Needed,
    /// A `StoreToken` step is under way.
    Asked,
    /// A token is held.
    Held,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockState {
    /// Not started (or restarted): the next step is `MakeBlock`.
    Pending,
    /// Started: `acked` bytes are stored under `ctx` (none before the first chunk is
    /// acknowledged); `sending` is the length of the chunk under way.
    Active {
        ctx: Option<String>,
        acked: u64,
        sending: Option<u64>,
    },
    /// Every byte is stored; `ctx` goes to `mkfile`.
    Done { ctx: String },
}

#[derive(Debug, Clone)]
struct Block {
    /// Where the block starts in the file.
    start: u64,
    /// Its length.
    size: u64,
    state: BlockState,
}

/// The upload of one file. See the [module docs](self) for the order of calls.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    name: String,
    path: Option<String>,
    parent: Option<String>,
    size: u64,
    etag: Etag,
    config: UploadConfig,
    token: TokenState,
    storage: Option<Storage>,
    /// Form upload (true) or block upload.
    small: bool,
    small_sent: bool,
    blocks: Vec<Block>,
    make_file_sent: bool,
    finished: Option<Result<UploadOutcome, UploadError>>,
}

impl UploadPlan {
    /// A plan to upload `name` (`size` bytes, etag `etag`) into the folder `parent`
    /// (a UUID) or `path` (`:torrent` is the system torrent folder); both `None` means
    /// the root. `config` is [normalized](UploadConfig::normalized).
    ///
    /// A size and etag that cannot belong together (see [`UploadError::EtagSize`])
    /// give a plan that is already finished with that error.
    pub fn new(
        name: String,
        path: Option<String>,
        parent: Option<String>,
        size: u64,
        etag: Etag,
        config: UploadConfig,
    ) -> Self {
        let config = config.normalized();
        let small = size == 0 || size <= config.small_file_limit;
        let blocks = if small {
            Vec::new()
        } else {
            (0..size.div_ceil(BLOCK))
                .map(|index| {
                    let start = index * BLOCK;
                    Block {
                        start,
                        size: BLOCK.min(size - start),
                        state: BlockState::Pending,
                    }
                })
                .collect()
        };
        let multi_block = etag.is_multi_block();
        let finished = (multi_block != (size > BLOCK)).then_some(Err(UploadError::EtagSize {
            size,
            etag,
            multi_block,
        }));
        Self {
            name,
            path,
            parent,
            size,
            etag,
            config,
            token: TokenState::Needed,
            storage: None,
            small,
            small_sent: false,
            blocks,
            make_file_sent: false,
            finished,
        }
    }

    // ---------------------------------------------------------------------------------
    // Getters
    // ---------------------------------------------------------------------------------

    /// The file name given to `storeToken`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The local etag.
    pub fn etag(&self) -> Etag {
        self.etag
    }

    /// The configuration in use (normalized).
    pub fn config(&self) -> UploadConfig {
        self.config
    }

    /// Whether the file goes in one form upload (`true`) or in blocks. Decided at
    /// creation; an instant upload sends neither.
    pub fn is_form_upload(&self) -> bool {
        self.small
    }

    /// The number of 4 MiB blocks of a block upload (0 for a form upload).
    pub fn block_count(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The byte range of block `block` in the file, if there is such a block.
    pub fn block_range(&self, block: u64) -> Option<Range<u64>> {
        let b = self.blocks.get(usize::try_from(block).ok()?)?;
        Some(b.start..b.start + b.size)
    }

    /// The bytes the storage service has acknowledged, for progress bars: the sum of
    /// the acknowledged chunks of a block upload; 0 then the whole size for a form
    /// upload; the whole size for an instant upload.
    pub fn bytes_acknowledged(&self) -> u64 {
        if matches!(self.finished, Some(Ok(_))) {
            return self.size;
        }
        self.blocks
            .iter()
            .map(|b| match &b.state {
                BlockState::Pending => 0,
                BlockState::Active { acked, .. } => *acked,
                BlockState::Done { .. } => b.size,
            })
            .sum()
    }

    /// Whether the upload token expires before `now + margin`, by its put policy's
    /// deadline. `false` before a token arrived, and for a token without a readable
    /// deadline (the service is then the judge). Check it before sending a step and
    /// call [`renew_token`](Self::renew_token) when it says so.
    pub fn token_expired(&self, now: SystemTime, margin: Duration) -> bool {
        self.storage
            .as_ref()
            .and_then(|s| s.parsed.as_ref())
            .is_some_and(|t| t.expires_within(now, margin))
    }

    /// The upload token's deadline from its put policy, when known.
    pub fn token_deadline(&self) -> Option<SystemTime> {
        self.storage.as_ref()?.parsed.as_ref()?.deadline()
    }

    /// How the upload ended, once it ended well.
    pub fn outcome(&self) -> Option<&UploadOutcome> {
        self.finished.as_ref()?.as_ref().ok()
    }

    /// The error that ended the upload, if one did.
    pub fn error(&self) -> Option<&UploadError> {
        self.finished.as_ref()?.as_ref().err()
    }

    /// Whether the upload ended, well or not.
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    // ---------------------------------------------------------------------------------
    // Output
    // ---------------------------------------------------------------------------------

    /// The next step to start, or `None` when the plan waits for answers or is
    /// finished. Call it until it returns `None` after creating the plan and after
    /// every `handle_*` call; each step is handed out once (again only after
    /// [`handle_failed`](Self::handle_failed), [`restart_block`](Self::restart_block)
    /// or [`renew_token`](Self::renew_token)).
    pub fn poll(&mut self) -> Option<Step> {
        if self.finished.is_some() {
            return None;
        }
        match self.token {
            TokenState::Needed => {
                self.token = TokenState::Asked;
                return Some(Step::StoreToken(StoreTokenRequest {
                    name: self.name.clone(),
                    hash: Some(self.etag),
                    parent: self.parent.clone(),
                    path: self.path.clone(),
                }));
            }
            TokenState::Asked => return None,
            TokenState::Held => {}
        }
        let storage = self.storage.as_ref()?;
        let upload_url = storage.upload_url.clone();
        let token = storage.token.clone();
        if self.small {
            if self.small_sent {
                return None;
            }
            self.small_sent = true;
            return Some(Step::UploadSmall {
                upload_url,
                token,
                file_name: self.name.clone(),
                range: 0..self.size,
            });
        }
        let chunk = u64::from(self.config.chunk_size);
        // Blocks under way first, then new blocks up to the limit.
        let active = self
            .blocks
            .iter()
            .filter(|b| matches!(b.state, BlockState::Active { .. }))
            .count();
        let next = self
            .blocks
            .iter()
            .position(|b| matches!(b.state, BlockState::Active { sending: None, .. }));
        let next = next.or_else(|| {
            (active < self.config.max_blocks_in_flight)
                .then(|| {
                    self.blocks
                        .iter()
                        .position(|b| b.state == BlockState::Pending)
                })
                .flatten()
        });
        if let Some(index) = next {
            let block = &mut self.blocks[index];
            if block.state == BlockState::Pending {
                block.state = BlockState::Active {
                    ctx: None,
                    acked: 0,
                    sending: None,
                };
            }
            let BlockState::Active {
                ctx,
                acked,
                sending,
            } = &mut block.state
            else {
                unreachable!("the block was just made active");
            };
            let len = chunk.min(block.size - *acked);
            *sending = Some(len);
            let range = block.start + *acked..block.start + *acked + len;
            return Some(match ctx {
                None => Step::MakeBlock {
                    upload_url,
                    token,
                    block: index as u64,
                    block_size: block.size,
                    range,
                },
                Some(ctx) => Step::PutChunk {
                    upload_url,
                    token,
                    block: index as u64,
                    ctx: ctx.clone(),
                    offset: *acked,
                    range,
                },
            });
        }
        if self.make_file_sent {
            return None;
        }
        let ctxs: Option<Vec<String>> = self
            .blocks
            .iter()
            .map(|b| match &b.state {
                BlockState::Done { ctx } => Some(ctx.clone()),
                _ => None,
            })
            .collect();
        let ctxs = ctxs?;
        self.make_file_sent = true;
        Some(Step::MakeFile {
            upload_url,
            token,
            file_size: self.size,
            ctxs,
        })
    }

    // ---------------------------------------------------------------------------------
    // Inputs
    // ---------------------------------------------------------------------------------

    /// Reports the answer to [`Step::StoreToken`]. `now` is the current wall-clock time,
    /// to check the token's deadline.
    ///
    /// An instant answer ends the plan (its `storeId` must be the local etag). An
    /// upload token lets the upload start, or go on after
    /// [`renew_token`](Self::renew_token): if the new `uploadUrl` names another
    /// storage host than the previous one, every block is redone.
    ///
    /// # Errors
    ///
    /// [`UploadError::UnexpectedAnswer`] when no `StoreToken` step is under way;
    /// [`UploadError::EtagMismatch`] when the instant file's `storeId` is not the local
    /// etag; [`UploadError::TokenExpired`] when the token's deadline is not after
    /// `now`.
    pub fn handle_store_token(
        &mut self,
        result: StoreTokenResult,
        now: SystemTime,
    ) -> Result<(), UploadError> {
        self.check_running()?;
        if self.token != TokenState::Asked {
            return Err(UploadError::UnexpectedAnswer(
                "a storeToken answer, but no storeToken step is under way",
            ));
        }
        match result {
            StoreTokenResult::Instant(file) => {
                if file.store_id != self.etag {
                    return self.fail(UploadError::EtagMismatch {
                        local: self.etag,
                        remote: file.store_id,
                    });
                }
                self.token = TokenState::Held;
                self.finished = Some(Ok(UploadOutcome {
                    instant: true,
                    etag: self.etag,
                    file: Some(file),
                    key: None,
                }));
                Ok(())
            }
            StoreTokenResult::Upload(info) => {
                let parsed = UploadToken::parse(info.token.expose()).ok();
                if let Some(deadline) = parsed.as_ref().and_then(UploadToken::deadline) {
                    if deadline <= now {
                        return self.fail(UploadError::TokenExpired { deadline });
                    }
                }
                let moved = self
                    .storage
                    .as_ref()
                    .is_some_and(|old| !same_host(&old.upload_url, &info.upload_url));
                if moved {
                    self.restart_all_blocks();
                }
                self.storage = Some(Storage {
                    upload_url: info.upload_url,
                    token: info.token,
                    parsed,
                });
                self.token = TokenState::Held;
                Ok(())
            }
        }
    }

    /// Reports the answer to [`Step::MakeBlock`] or [`Step::PutChunk`] of `block`.
    ///
    /// # Errors
    ///
    /// [`UploadError::UnexpectedAnswer`] when no step of that block is under way
    /// (nothing changes); [`UploadError::UnexpectedOffset`] when `answer.offset` is not
    /// the bytes of the block sent so far, including this chunk;
    /// [`UploadError::InvalidAnswer`] for an empty `ctx`.
    pub fn handle_chunk(&mut self, block: u64, answer: ChunkStored) -> Result<(), UploadError> {
        self.check_running()?;
        let Some(entry) = usize::try_from(block)
            .ok()
            .and_then(|i| self.blocks.get_mut(i))
        else {
            return Err(UploadError::UnexpectedAnswer(
                "a chunk answer for a block this file does not have",
            ));
        };
        let BlockState::Active {
            acked,
            sending: Some(len),
            ..
        } = entry.state
        else {
            return Err(UploadError::UnexpectedAnswer(
                "a chunk answer for a block with no step under way",
            ));
        };
        let expected = acked + len;
        if answer.offset != expected {
            return self.fail(UploadError::UnexpectedOffset {
                block,
                expected,
                got: answer.offset,
            });
        }
        if answer.ctx.is_empty() {
            return self.fail(UploadError::InvalidAnswer("an empty ctx"));
        }
        entry.state = if expected == entry.size {
            BlockState::Done { ctx: answer.ctx }
        } else {
            BlockState::Active {
                ctx: Some(answer.ctx),
                acked: expected,
                sending: None,
            }
        };
        Ok(())
    }

    /// Reports the answer to [`Step::UploadSmall`] or [`Step::MakeFile`]: the upload
    /// is done when the stored hash is the local etag.
    ///
    /// # Errors
    ///
    /// [`UploadError::UnexpectedAnswer`] when neither step is under way (nothing
    /// changes); [`UploadError::EtagMismatch`] with both values when the hash differs.
    pub fn handle_file_stored(&mut self, answer: FileStored) -> Result<(), UploadError> {
        self.check_running()?;
        let asked = if self.small {
            self.small_sent
        } else {
            self.make_file_sent
        };
        if !asked {
            return Err(UploadError::UnexpectedAnswer(
                "a file answer, but no upload or makeFile step is under way",
            ));
        }
        if answer.hash != self.etag {
            return self.fail(UploadError::EtagMismatch {
                local: self.etag,
                remote: answer.hash,
            });
        }
        self.finished = Some(Ok(UploadOutcome {
            instant: false,
            etag: self.etag,
            file: None,
            key: answer.key,
        }));
        Ok(())
    }

    /// Reports that the step `step` failed without a usable answer (a transport error,
    /// a 5xx, a rate limit): the same step is handed out again by
    /// [`poll`](Self::poll) — the same chunk at the same offset with the same ctx for
    /// a block. Nothing happens when no such step is under way.
    ///
    /// When the service no longer knows the block's ctx, call
    /// [`restart_block`](Self::restart_block) instead.
    pub fn handle_failed(&mut self, step: StepId) {
        if self.finished.is_some() {
            return;
        }
        match step {
            StepId::StoreToken => {
                if self.token == TokenState::Asked {
                    self.token = TokenState::Needed;
                }
            }
            StepId::UploadSmall => {
                if self.small {
                    self.small_sent = false;
                }
            }
            StepId::MakeFile => {
                if !self.small {
                    self.make_file_sent = false;
                }
            }
            StepId::Block(block) => {
                if let Some(entry) = usize::try_from(block)
                    .ok()
                    .and_then(|i| self.blocks.get_mut(i))
                {
                    if let BlockState::Active { sending, .. } = &mut entry.state {
                        *sending = None;
                    }
                }
            }
        }
    }

    /// Redoes block `block` from `mkblk` (after a dropped connection lost its ctx, or
    /// the service refused the ctx). Its acknowledged bytes are forgotten, and a
    /// `makeFile` under way is forgotten too (it is asked again once the block is
    /// done). Do not report answers to steps of this block handed out before. Nothing
    /// happens for a block the file does not have.
    pub fn restart_block(&mut self, block: u64) {
        if self.finished.is_some() {
            return;
        }
        if let Some(entry) = usize::try_from(block)
            .ok()
            .and_then(|i| self.blocks.get_mut(i))
        {
            entry.state = BlockState::Pending;
            self.make_file_sent = false;
        }
    }

    /// Redoes every block from `mkblk` (see [`restart_block`](Self::restart_block)),
    /// e.g. when `makeFile` is refused because the ctxs expired.
    pub fn restart_all_blocks(&mut self) {
        if self.finished.is_some() {
            return;
        }
        for block in &mut self.blocks {
            block.state = BlockState::Pending;
        }
        self.make_file_sent = false;
    }

    /// Asks for a fresh upload token: the next [`poll`](Self::poll) hands out a
    /// [`Step::StoreToken`], and no storage step until it is answered. Steps under way
    /// may still be reported. Nothing happens while a `StoreToken` step is under way.
    pub fn renew_token(&mut self) {
        if self.finished.is_none() && self.token == TokenState::Held {
            self.token = TokenState::Needed;
        }
    }

    fn check_running(&self) -> Result<(), UploadError> {
        if self.finished.is_some() {
            Err(UploadError::UnexpectedAnswer("the upload is finished"))
        } else {
            Ok(())
        }
    }

    fn fail(&mut self, error: UploadError) -> Result<(), UploadError> {
        self.finished = Some(Err(error.clone()));
        Err(error)
    }
}

/// Whether two upload URLs name the same storage service (after
/// [`storage::storage_base`]); unusable URLs compare as text.
fn same_host(a: &str, b: &str) -> bool {
    match (storage::storage_base(a), storage::storage_base(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qetag::qetag;
    use crate::sixpan::UploadInfo;

    fn info(url: &str) -> StoreTokenResult {
        StoreTokenResult::Upload(UploadInfo {
            token: Secret::new("ak:sign:e30"),
            upload_url: url.into(),
            upload_type: None,
            version: None,
            name: None,
            parent: None,
            user_id: None,
        })
    }

    /// A plan for a file of `size` bytes (content irrelevant: the etag only needs
    /// the right block count).
    fn plan(size: u64, config: UploadConfig) -> UploadPlan {
        let etag = if size > BLOCK {
            Etag::from_block_digests(&[[1; 20], [2; 20]])
        } else {
            qetag(b"x")
        };
        UploadPlan::new("f".into(), None, None, size, etag, config)
    }

    #[test]
    fn config_is_normalized() {
        let config = UploadConfig {
            chunk_size: 0,
            max_blocks_in_flight: 0,
            small_file_limit: u64::MAX,
        }
        .normalized();
        assert_eq!(config.chunk_size, 1);
        assert_eq!(config.max_blocks_in_flight, 1);
        assert_eq!(config.small_file_limit, BLOCK);
        let config = UploadConfig {
            chunk_size: u32::MAX,
            ..UploadConfig::default()
        };
        assert_eq!(config.normalized().chunk_size, BLOCK_SIZE as u32);
    }

    #[test]
    fn paths_by_size() {
        assert!(plan(0, UploadConfig::default()).is_form_upload());
        assert!(plan(BLOCK, UploadConfig::default()).is_form_upload());
        let p = plan(BLOCK + 1, UploadConfig::default());
        assert!(!p.is_form_upload());
        assert_eq!(p.block_count(), 2);
        assert_eq!(p.block_range(1), Some(BLOCK..BLOCK + 1));
        assert_eq!(p.block_range(2), None);
        let all_blocks = UploadConfig {
            small_file_limit: 0,
            ..UploadConfig::default()
        };
        assert!(plan(0, all_blocks).is_form_upload());
        assert_eq!(plan(1, all_blocks).block_count(), 1);
    }

    #[test]
    fn etag_and_size_must_agree() {
        let p = UploadPlan::new(
            "f".into(),
            None,
            None,
            BLOCK + 1,
            qetag(b"x"),
            UploadConfig::default(),
        );
        assert!(matches!(
            p.error(),
            Some(UploadError::EtagSize {
                multi_block: false,
                ..
            })
        ));
        let mut p = p;
        assert_eq!(p.poll(), None);
        assert!(p.error().unwrap().to_string().contains("one-block"));
    }

    #[test]
    fn unasked_answers_are_refused_without_harm() {
        let mut p = plan(2 * BLOCK, UploadConfig::default());
        let err = p.handle_store_token(info("http://u"), SystemTime::UNIX_EPOCH);
        assert!(matches!(err, Err(UploadError::UnexpectedAnswer(_))));
        assert!(matches!(p.poll(), Some(Step::StoreToken(_))));
        p.handle_store_token(info("http://u"), SystemTime::UNIX_EPOCH)
            .unwrap();
        let answer = ChunkStored {
            ctx: "c".into(),
            offset: 1,
        };
        let err = p.handle_chunk(0, answer.clone()).unwrap_err();
        assert!(!err.ends_upload());
        assert!(p.handle_chunk(9, answer).is_err());
        let stored = FileStored {
            hash: p.etag(),
            key: None,
        };
        assert!(matches!(
            p.handle_file_stored(stored),
            Err(UploadError::UnexpectedAnswer(_))
        ));
        assert!(!p.is_finished());
        assert!(matches!(p.poll(), Some(Step::MakeBlock { block: 0, .. })));
    }

    #[test]
    fn renewal_to_another_host_redoes_blocks() {
        let mut p = plan(2 * BLOCK, UploadConfig::default());
        p.poll();
        p.handle_store_token(info("http://a/file/upload"), SystemTime::UNIX_EPOCH)
            .unwrap();
        let Some(Step::MakeBlock { range, .. }) = p.poll() else {
            panic!()
        };
        p.handle_chunk(
            0,
            ChunkStored {
                ctx: "c".into(),
                offset: range.end,
            },
        )
        .unwrap();
        assert_eq!(p.bytes_acknowledged(), u64::from(DEFAULT_CHUNK_SIZE));
        // The same host (with or without /file/upload): progress kept.
        p.renew_token();
        assert!(matches!(p.poll(), Some(Step::StoreToken(_))));
        assert_eq!(p.poll(), None);
        p.handle_store_token(info("http://a"), SystemTime::UNIX_EPOCH)
            .unwrap();
        assert!(matches!(p.poll(), Some(Step::PutChunk { block: 0, .. })));
        // Another host: redone.
        p.renew_token();
        p.poll();
        p.handle_store_token(info("http://b"), SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(p.bytes_acknowledged(), 0);
        let Some(Step::MakeBlock {
            block: 0,
            upload_url,
            ..
        }) = p.poll()
        else {
            panic!()
        };
        assert_eq!(upload_url, "http://b");
    }

    #[test]
    fn storage_request_checks_the_data_length() {
        let step = Step::MakeBlock {
            upload_url: "http://u".into(),
            token: Secret::new("t"),
            block: 0,
            block_size: 10,
            range: 0..4,
        };
        let err = step
            .storage_request("b", Bytes::from_static(b"abc"))
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("0..4"), "{err}");
        assert!(step
            .storage_request("b", Bytes::from_static(b"abcd"))
            .unwrap()
            .is_ok());
        let token = Step::StoreToken(StoreTokenRequest {
            name: "n".into(),
            hash: None,
            parent: None,
            path: None,
        });
        assert!(token.storage_request("b", Bytes::new()).is_none());
        assert_eq!(token.id(), StepId::StoreToken);
        assert_eq!(token.endpoint(), EndpointId::StoreToken);
    }
}
