//! The storage upload of one file as a state machine: etag, `storeToken` (instant
//! upload when the drive already holds the hash), then a form upload or a block
//! upload, and the final check that the stored hash is the local etag — with every
//! rule of how failures are survived: resends with backoff, blocks redone, the whole
//! upload redone, the upload token renewed, and the budgets of each.
//!
//! [`UploadPlan`] performs no I/O, reads no clock and never sees the file's bytes: it
//! tells the driver which call to make and which byte range of the file to read and
//! send ([`Step`]), when to wait, and the driver reports what came back, with the time.
//! Facts: `docs/wire-notes.md` (6pan section, "Upload to the storage service"); the
//! requests are built by [`super::storage`] ([`Step::storage_request`] picks the right
//! one).
//!
//! # Order of calls
//!
//! The shape is quinn-proto's (and [`crate::call`]'s): inputs are `handle_*`, outputs
//! come from [`poll`](UploadPlan::poll), and time is handed in — `now` (monotonic, for
//! waits) and `wall` (for the upload token's deadline).
//!
//! ```text
//! let mut plan = UploadPlan::new(name, path, parent, size, etag, config).with_seed(seed);
//! loop {
//!     match plan.poll(clock.now(), clock.wall()) {
//!         Output::Send(ticket, step) => start(ticket, step),   // and poll again at once
//!         Output::WaitUntil(at)      => wait for an answer, or until `at`,
//!         Output::AwaitAnswer        => wait for an answer,
//!         Output::Done(outcome)      => break Ok(outcome),
//!         Output::Failed(error)      => break Err(error),
//!     }
//!     // when an answer to `ticket` arrives:
//!     plan.handle_response(ticket, http_result, clock.now(), clock.wall());  // storage steps
//!     plan.handle_store_token(ticket, result, clock.now(), clock.wall());    // Step::StoreToken
//! }
//! ```
//!
//! 1. Hash the file ([`crate::qetag`]) and create the plan with its size and etag.
//! 2. Call [`poll`](UploadPlan::poll) and start every [`Output::Send`] it returns (one
//!    at a time, or all at once: each step is independent of the others handed out
//!    with it), until it returns something else.
//! 3. When a step's answer arrives, report it with the [`Ticket`] it was handed out
//!    with: [`handle_response`] for the storage steps (the plan decodes the answer),
//!    or, for a driver that decodes itself, [`handle_chunk`] ([`Step::MakeBlock`],
//!    [`Step::PutChunk`]) and [`handle_file_stored`] ([`Step::UploadSmall`],
//!    [`Step::MakeFile`]); [`handle_store_token`] for [`Step::StoreToken`]. Report a
//!    step that failed with [`handle_failure`] (a [`TransportError`] or an
//!    [`ApiError`], as [`Attempt`]). Then go back to 2.
//! 4. Stop at [`Output::Done`] or [`Output::Failed`].
//!
//! An answer that comes from before its block (or the whole upload) was redone carries
//! an old epoch in its ticket: the plan ignores it by itself ([`UploadError::UnexpectedAnswer`],
//! which changes nothing).
//!
//! ```text
//!  new(name, path, parent, size, etag, config)
//!        │
//!        ▼
//!  Step::StoreToken ──handle_store_token──┬── Instant(file) ─────────────────────► Done (instant)
//!        ▲                                │    storeId must equal the etag
//!        │ renewal (see below)            └── Upload(token, uploadUrl)
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
//! # How failures are survived
//!
//! A failed step is judged by [`recovery`], the one classifier of upload failures
//! (it starts from [`retry::classify`], the rule of every API call, and adds what the
//! storage service needs; its table is there). Then, within the budgets of the
//! [`UploadPolicy`]:
//!
//! - **Resend**: the same step (the same chunk at the same offset with the same ctx)
//!   after a wait of [`Backoff`] (full jitter, from
//!   [`first_retry_wait`](UploadPolicy::first_retry_wait) doubling up to
//!   [`max_retry_wait`](UploadPolicy::max_retry_wait)) or the server's `Retry-After`
//!   (at most [`MAX_RETRY_AFTER`]), at most
//!   [`max_step_retries`](UploadPolicy::max_step_retries) times in a row for one step:
//!   [`poll`](UploadPlan::poll) says [`Output::WaitUntil`] until then.
//! - **Redo the block** from `mkblk` when the service refuses a `bput` ctx: most often
//!   the chunk was stored but its answer was lost, so the service moved the block on
//!   to a ctx this side never saw. One restart per block plus
//!   [`extra_block_restarts`](UploadPolicy::extra_block_restarts) in one upload.
//! - **Redo every block** when `mkfile` is refused (the service forgot the ctxs), at
//!   most [`full_restarts`](UploadPolicy::full_restarts) times.
//! - **Renew the upload token** (`storeToken` again, the progress kept) before the next
//!   step when its put policy's deadline is within
//!   [`token_margin`](UploadPolicy::token_margin) (but not sooner than
//!   [`min_token_use`](UploadPolicy::min_token_use) after it arrived, so that a service
//!   handing out short-lived tokens is not asked in a loop); after a token-invalid
//!   answer; and when a resend's wait would take it past the deadline. A renewed token
//!   that names another storage host (after [`storage::storage_base`]) redoes every
//!   block: the ctxs belong to the old host. This is not counted in the budgets.
//! - Anything else, or a spent budget, ends the upload in [`UploadError::GaveUp`],
//!   naming the step, the reason and the last failure;
//!   [`take_cause`](UploadPlan::take_cause) hands out that failure itself.
//!
//! Errors: an answer that was not asked for (a late answer to a step that was failed or
//! redone, a second answer) is refused with [`UploadError::UnexpectedAnswer`] and
//! changes nothing. Every other error ends the plan: [`poll`](UploadPlan::poll) returns
//! [`Output::Failed`] from then on; start again with a new plan.
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use offline_proto::qetag::qetag;
//! use offline_proto::sixpan::upload::{Output, Step, UploadConfig, UploadPlan};
//! use offline_proto::sixpan::{FileStored, StoreTokenResult, UploadInfo};
//!
//! let data = b"hello".to_vec();
//! let etag = qetag(&data);
//! let mut plan = UploadPlan::new("hello.txt".into(), None, None, data.len() as u64, etag,
//!                                UploadConfig::default());
//! let (now, wall) = (Instant::now(), SystemTime::now());
//! let outcome = loop {
//!     match plan.poll(now, wall) {
//!         // A driver sends `request` to the API host and decodes the answer.
//!         Output::Send(ticket, Step::StoreToken(request)) => {
//!             assert_eq!(request.hash, Some(etag));
//!             let info = UploadInfo {
//!                 token: "ak:sign:e30".into(),
//!                 upload_url: "http://upload.example".into(),
//!                 upload_type: None, version: None, name: None, parent: None, user_id: None,
//!             };
//!             plan.handle_store_token(ticket, StoreTokenResult::Upload(info), now, wall)
//!                 .unwrap();
//!         }
//!         // A driver reads the range, sends `storage_request` and reports the answer
//!         // with `handle_response`; here the answer is made up.
//!         Output::Send(ticket, Step::UploadSmall { range, .. }) => {
//!             let stored = qetag(&data[range.start as usize..range.end as usize]);
//!             plan.handle_file_stored(ticket, FileStored { hash: stored, key: None })
//!                 .unwrap();
//!         }
//!         Output::Done(outcome) => break outcome,
//!         other => unreachable!("{other:?}"),
//!     }
//! };
//! assert!(!outcome.instant);
//! assert_eq!(outcome.etag, etag);
//! ```
//!
//! [`handle_store_token`]: UploadPlan::handle_store_token
//! [`handle_response`]: UploadPlan::handle_response
//! [`handle_chunk`]: UploadPlan::handle_chunk
//! [`handle_file_stored`]: UploadPlan::handle_file_stored
//! [`handle_failure`]: UploadPlan::handle_failure

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::storage::{self, decode_chunk_stored, decode_file_stored};
use super::upload_token::UploadToken;
use super::{
    ChunkStored, EndpointId, FileStored, Host, StoreTokenRequest, StoreTokenResult, StoredFile,
    UploadInfo, UploadTokenResult,
};
use crate::call::MAX_RETRY_AFTER;
use crate::clock::checked_deadline;
use crate::qetag::{Etag, BLOCK_SIZE};
use crate::retry::{self, Attempt, Backoff, Failure, Retry};
use crate::{
    ApiError, EncodeError, HttpRequest, HttpResponse, Secret, TransportError, TransportErrorKind,
    ValidationError,
};

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

/// Which call asks for the upload token of a [`Step::StoreToken`].
///
/// The seeds document `POST /v1/store/token` ([`StoreTokenRequest`] →
/// [`StoreTokenResult`]); every v2 client (the Android client's `uploadFileV2`, the
/// `@geeeger/ws-uploader` web uploader, a C# client) calls `POST /v2/upload/token`
/// ([`UploadTokenRequest`](super::UploadTokenRequest) `{name, path | identity, hash}` → [`UploadTokenResult`]
/// `{hashCached, uploadInfo}`; `UploadTokenRequest::from(&StoreTokenRequest)` builds
/// it from the step's body). Both end in a [`TokenAnswer`] for
/// [`UploadPlan::handle_store_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UploadTokenApi {
    /// `POST /v1/store/token`, as the seeds show (the default).
    #[default]
    StoreToken,
    /// `POST /v2/upload/token`, as the v2 clients call it.
    V2,
}

impl UploadTokenApi {
    /// The endpoint it calls.
    pub fn endpoint(self) -> EndpointId {
        match self {
            Self::StoreToken => EndpointId::StoreToken,
            Self::V2 => EndpointId::UploadToken,
        }
    }
}

/// An answer to a [`Step::StoreToken`], from either [`UploadTokenApi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAnswer {
    /// The drive already holds a file of this hash and created the file (秒传): no
    /// byte is sent. `/v1/store/token` answers the created file (its `storeId` must be
    /// the local etag); `/v2/upload/token` only `hashCached: true` (`None`).
    Instant(Option<StoredFile>),
    /// Upload with this token to this URL.
    Upload(UploadInfo),
}

impl From<StoreTokenResult> for TokenAnswer {
    fn from(result: StoreTokenResult) -> Self {
        match result {
            StoreTokenResult::Instant(file) => Self::Instant(Some(file)),
            StoreTokenResult::Upload(info) => Self::Upload(info),
        }
    }
}

impl TryFrom<UploadTokenResult> for TokenAnswer {
    type Error = UploadError;

    /// `hashCached: true` is an instant upload; otherwise `uploadInfo` (its
    /// `uploadToken` and `uploadUrl`, the same as `storeToken`'s `token` and
    /// `uploadUrl`) must be there.
    ///
    /// # Errors
    ///
    /// [`UploadError::UnexpectedAnswer`] for `hashCached: false` without `uploadInfo`.
    fn try_from(result: UploadTokenResult) -> Result<Self, UploadError> {
        if result.hash_cached {
            return Ok(Self::Instant(None));
        }
        let info = result.upload_info.ok_or(UploadError::UnexpectedAnswer(
            "a /v2/upload/token answer with hashCached false and no uploadInfo",
        ))?;
        Ok(Self::Upload(UploadInfo {
            token: info.upload_token,
            upload_url: info.upload_url,
            upload_type: info.upload_type,
            version: None,
            name: None,
            parent: None,
            user_id: None,
        }))
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
    /// [`UploadPlan::handle_response`] (or [`UploadPlan::handle_file_stored`]).
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
    /// [`UploadPlan::handle_response`] (or [`UploadPlan::handle_chunk`]).
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
    /// [`UploadPlan::handle_response`] (or [`UploadPlan::handle_chunk`]).
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
    /// the answer with [`UploadPlan::handle_response`] (or [`UploadPlan::handle_file_stored`]).
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

/// Which step: [`Step::id`], [`Ticket::id`].
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

/// What a driver keeps with a step it sends, to report the answer or the failure:
/// which step it is and the epoch it was handed out in. An answer whose epoch is no
/// longer current (its block, or the whole upload, was redone since; a `storeToken`
/// asked again) is ignored by the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    id: StepId,
    epoch: u64,
}

impl Ticket {
    /// Which step it was handed out with.
    pub fn id(&self) -> StepId {
        self.id
    }

    /// The epoch of its target when it was handed out (opaque; only equality counts).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// What a driver does next: [`UploadPlan::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Start this step now, keeping the ticket to report its answer, then poll again.
    Send(Ticket, Step),
    /// Nothing to send before this instant (a step waits to be sent again). Answers to
    /// the steps under way may arrive before: report them and poll again.
    WaitUntil(Instant),
    /// Nothing to send until an answer to a step under way arrives.
    AwaitAnswer,
    /// The upload ended well (boxed: it is much larger than the other variants).
    Done(Box<UploadOutcome>),
    /// The upload cannot go on.
    Failed(UploadError),
}

impl Step {
    /// Which step this is (also in its [`Ticket`]).
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
    /// redone, an answer of an older epoch, an answer to the wrong call). It is refused
    /// and changes nothing.
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
    /// A step failed and the plan gave up on it: the failure is not one a resend
    /// cures, or a budget of the [`UploadPolicy`] is spent.
    /// [`UploadPlan::take_cause`] hands out the failure itself.
    #[error("gave up on {} ({step:?}): {reason}; the last failure: {last}", endpoint.operation_id())]
    GaveUp {
        /// The step that failed.
        step: StepId,
        /// Its endpoint.
        endpoint: EndpointId,
        /// Why the plan stopped.
        reason: GiveUp,
        /// The last failure, as text.
        last: String,
    },
}

/// Why a plan gave up on a step ([`UploadError::GaveUp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GiveUp {
    /// The failure is final: sending again cannot help ([`Recovery::Fatal`]).
    #[error("the failure is final")]
    Final,
    /// The step failed this many times in a row, the
    /// [`max_step_retries`](UploadPolicy::max_step_retries) allowed, and once more.
    #[error("it was sent again {retries} times in a row and failed each time")]
    Retries {
        /// The resends made.
        retries: u32,
    },
    /// The server asked to wait longer than [`MAX_RETRY_AFTER`] before sending again.
    #[error(
        "the server asked to wait {asked:?} before sending again (more than {MAX_RETRY_AFTER:?})"
    )]
    RetryAfter {
        /// The `Retry-After` asked for.
        asked: Duration,
    },
    /// Blocks were redone from `mkblk` this many times, the budget of the upload (one
    /// per block plus [`extra_block_restarts`](UploadPolicy::extra_block_restarts)).
    #[error("blocks were redone {budget} times already, the budget of this upload")]
    BlockRestarts {
        /// The budget that is spent.
        budget: u64,
    },
    /// Every block was redone this many times, the
    /// [`full_restarts`](UploadPolicy::full_restarts) allowed.
    #[error("every block was redone {budget} times already, the budget of this upload")]
    FullRestarts {
        /// The budget that is spent.
        budget: u32,
    },
}

impl UploadError {
    /// Whether this error ended the plan (all but [`UploadError::UnexpectedAnswer`]).
    pub fn ends_upload(&self) -> bool {
        !matches!(self, Self::UnexpectedAnswer(_))
    }
}

/// How a plan survives failures: waits between resends, budgets, and when the upload
/// token is renewed. See the [module docs](self#how-failures-are-survived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    /// The longest first wait before a failed step is sent again (the wait is drawn
    /// at random up to it, [`Backoff`]); the bound doubles with every failure in a row
    /// up to [`max_retry_wait`](Self::max_retry_wait). Default 200 ms.
    pub first_retry_wait: Duration,
    /// The longest wait before a step is sent again. Default 10 s.
    pub max_retry_wait: Duration,
    /// How many times in a row one step is sent again after failures before the plan
    /// gives up ([`GiveUp::Retries`]); an answer to the step starts the count again.
    /// Default 10 (with the default waits, about a minute or two in all).
    pub max_step_retries: u32,
    /// How many times blocks may be redone from `mkblk` in one upload, on top of one
    /// per block ([`GiveUp::BlockRestarts`]). Default 8.
    pub extra_block_restarts: u64,
    /// How many times every block may be redone after `mkfile` refused the ctxs
    /// ([`GiveUp::FullRestarts`]). Default 1.
    pub full_restarts: u32,
    /// An upload token whose deadline is within this margin is renewed before the
    /// next step. Default 60 s.
    pub token_margin: Duration,
    /// An upload token is not renewed for being close to its deadline sooner than
    /// this after it arrived, so that a service handing out short-lived tokens is not
    /// asked in a loop (a refused token is still renewed). Default 5 s.
    pub min_token_use: Duration,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        Self {
            first_retry_wait: Duration::from_millis(200),
            max_retry_wait: Duration::from_secs(10),
            max_step_retries: 10,
            extra_block_restarts: 8,
            full_restarts: 1,
            token_margin: Duration::from_secs(60),
            min_token_use: Duration::from_secs(5),
        }
    }
}

/// What a failed step calls for: [`recovery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Send the same step again (the same chunk, offset and ctx): after the server's
    /// `Retry-After` when it is `Some`, else after the next [`Backoff`] delay.
    Resend(Option<Duration>),
    /// Ask for a new upload token, then send the step again (after a backoff delay).
    RenewToken,
    /// Redo this block from `mkblk`.
    RestartBlock,
    /// Redo every block: the service no longer knows the ctxs.
    RestartAll,
    /// Give up: sending again cannot help.
    Fatal,
}

/// The one classifier of upload failures: what a failure of a step to `endpoint` calls
/// for.
///
/// `storeToken` (as any API-host call) follows the rule of every call,
/// [`retry::classify`] as a read (in a provider it goes through the call machine,
/// which applies that rule itself and whose final error ends the upload).
///
/// The storage steps (`upload`, `mkblk`, `bput`, `mkfile`) start from the same rule —
/// what a read sends again is sent again, waiting the server's `Retry-After` when it
/// gave one — and differ where the storage service does:
///
/// | failure | `classify` (read) | storage step |
/// |---|---|---|
/// | connect error, timeout, reset, truncated body | Backoff | Resend |
/// | any other transport error but an oversized body | No | **Resend** (no answer came: nothing is lost by asking again) |
/// | body over the transport's size limit | No | Fatal |
/// | rate limited (`429`) | After / Backoff | Resend (after `Retry-After`) |
/// | HTTP 5xx (with or without a `{code, message}` body), 408 | Backoff for 5xx without a body | **Resend** |
/// | an answer that does not decode | Backoff when truncated | **Resend** (a proxy's page, a cut answer) |
/// | upload token invalid (`401`) | No | **RenewToken** |
/// | any other refusal of `bput` | No | **RestartBlock**: the ctx is refused, most often because the chunk was stored and its answer lost, so the service moved the block on |
/// | any other refusal of `mkfile` | No | **RestartAll**: the service forgot the ctxs |
/// | any other refusal of `upload` or `mkblk` | No | Fatal |
///
/// Resending a chunk is safe, unlike resending a create: a chunk stored twice under
/// the same ctx is refused (and the block redone), never stored twice in the file.
pub fn recovery(endpoint: EndpointId, failure: Failure<'_>) -> Recovery {
    let read = retry::classify(false, &failure);
    if endpoint.host() != Host::Upload {
        return match read {
            Retry::No => Recovery::Fatal,
            Retry::After(wait) => Recovery::Resend(Some(wait)),
            Retry::Backoff => Recovery::Resend(None),
        };
    }
    match read {
        Retry::After(wait) => return Recovery::Resend(Some(wait)),
        Retry::Backoff => return Recovery::Resend(None),
        Retry::No => {}
    }
    let status = match failure {
        Failure::Transport(e) => {
            return match e.kind() {
                TransportErrorKind::BodyTooLarge { .. } => Recovery::Fatal,
                _ => Recovery::Resend(None),
            }
        }
        Failure::Api(ApiError::TokenInvalid(_)) => return Recovery::RenewToken,
        Failure::Api(ApiError::Decode(_)) => return Recovery::Resend(None),
        Failure::Api(e) => e.status(),
    };
    if status.is_server_error() || status == http::StatusCode::REQUEST_TIMEOUT {
        return Recovery::Resend(None);
    }
    match endpoint {
        EndpointId::PutChunk => Recovery::RestartBlock,
        EndpointId::MakeFile => Recovery::RestartAll,
        _ => Recovery::Fatal,
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
    /// Not started (or redone): the next step is `MakeBlock`.
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
    /// Its epoch: a new one every time it is redone.
    epoch: u64,
}

/// The failures in a row of one step, and when it may be sent again.
#[derive(Debug, Clone)]
struct Retrying {
    backoff: Backoff,
    not_before: Option<Instant>,
}

/// The upload of one file, with its failure policy. See the [module docs](self) for
/// the order of calls.
#[derive(Debug)]
pub struct UploadPlan {
    name: String,
    path: Option<String>,
    parent: Option<String>,
    size: u64,
    etag: Etag,
    config: UploadConfig,
    policy: UploadPolicy,
    seed: u64,
    seeds_used: u64,
    token: TokenState,
    /// When the token held arrived.
    token_at: Option<Instant>,
    storage: Option<Storage>,
    /// Form upload (true) or block upload.
    small: bool,
    small_sent: bool,
    blocks: Vec<Block>,
    make_file_sent: bool,
    /// The last epoch handed out; every epoch below is unique in the plan.
    epochs: u64,
    /// The epoch of the `storeToken` step under way.
    token_epoch: u64,
    /// The epoch of `UploadSmall` / `MakeFile`.
    file_epoch: u64,
    retries: HashMap<StepId, Retrying>,
    block_restarts_left: u64,
    full_restarts_left: u32,
    finished: Option<Result<UploadOutcome, UploadError>>,
    /// The failure the plan gave up on, until taken.
    cause: Option<Attempt>,
}

impl UploadPlan {
    /// A plan to upload `name` (`size` bytes, etag `etag`) into the folder `parent`
    /// (a UUID) or `path` (`:torrent` is the system torrent folder); both `None` means
    /// the root. `config` is [normalized](UploadConfig::normalized). The policy is
    /// [`UploadPolicy::default`] and the jitter seed 0 until
    /// [`with_policy`](Self::with_policy) and [`with_seed`](Self::with_seed) say
    /// otherwise.
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
        let blocks: Vec<Block> = if small {
            Vec::new()
        } else {
            (0..size.div_ceil(BLOCK))
                .map(|index| {
                    let start = index * BLOCK;
                    Block {
                        start,
                        size: BLOCK.min(size - start),
                        state: BlockState::Pending,
                        epoch: 0,
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
        let policy = UploadPolicy::default();
        Self {
            name,
            path,
            parent,
            size,
            etag,
            config,
            policy,
            seed: 0,
            seeds_used: 0,
            token: TokenState::Needed,
            token_at: None,
            storage: None,
            small,
            small_sent: false,
            block_restarts_left: blocks.len() as u64 + policy.extra_block_restarts,
            full_restarts_left: policy.full_restarts,
            blocks,
            make_file_sent: false,
            epochs: 0,
            token_epoch: 0,
            file_epoch: 0,
            retries: HashMap::new(),
            finished,
            cause: None,
        }
    }

    /// The plan with `policy` for its failures (budgets start from it).
    #[must_use]
    pub fn with_policy(mut self, policy: UploadPolicy) -> Self {
        self.policy = policy;
        self.block_restarts_left = self.block_count() + policy.extra_block_restarts;
        self.full_restarts_left = policy.full_restarts;
        self
    }

    /// The plan with its backoff jitter drawn from `seed` (the same seed gives the
    /// same waits; give every plan its own).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
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

    /// The failure policy in use.
    pub fn policy(&self) -> UploadPolicy {
        self.policy
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
        let b = self.block(block)?;
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
    /// deadline (the service is then the judge). The plan renews the token itself
    /// ([`UploadPolicy::token_margin`]); this is for display and tests.
    pub fn token_expired(&self, now: SystemTime, margin: Duration) -> bool {
        self.parsed_token()
            .is_some_and(|t| t.expires_within(now, margin))
    }

    /// The upload token's deadline from its put policy, when known.
    pub fn token_deadline(&self) -> Option<SystemTime> {
        self.parsed_token()?.deadline()
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

    /// The failure itself (a [`TransportError`] or an [`ApiError`]) after the plan
    /// gave up on a step ([`UploadError::GaveUp`]), once: for a driver that returns
    /// it as its own error.
    pub fn take_cause(&mut self) -> Option<Attempt> {
        self.cause.take()
    }

    // ---------------------------------------------------------------------------------
    // Output
    // ---------------------------------------------------------------------------------

    /// What to do next at `now` (monotonic) and `wall` (wall-clock time): a step to
    /// send, an instant to wait for, an answer to wait for, or the end. Call it after
    /// creating the plan, after every `handle_*` call and when a wait ends; start every
    /// step it hands out (each once: again only when the plan says so after a
    /// failure).
    ///
    /// Before it hands out a storage step, the plan renews an upload token that is
    /// within [`UploadPolicy::token_margin`] of its deadline (a [`Step::StoreToken`]
    /// first; no storage step until it is answered).
    pub fn poll(&mut self, now: Instant, wall: SystemTime) -> Output {
        if let Some(finished) = &self.finished {
            return match finished {
                Ok(outcome) => Output::Done(Box::new(outcome.clone())),
                Err(error) => Output::Failed(error.clone()),
            };
        }
        if self.token == TokenState::Held && self.token_due(now, wall) {
            self.token = TokenState::Needed;
        }
        match self.token {
            TokenState::Needed => {
                if let Some(at) = self.waiting(StepId::StoreToken, now) {
                    return Output::WaitUntil(at);
                }
                self.token = TokenState::Asked;
                self.token_epoch = self.next_epoch();
                let step = Step::StoreToken(StoreTokenRequest {
                    name: self.name.clone(),
                    hash: Some(self.etag),
                    parent: self.parent.clone(),
                    path: self.path.clone(),
                });
                return self.hand_out(StepId::StoreToken, self.token_epoch, step);
            }
            TokenState::Asked => return Output::AwaitAnswer,
            TokenState::Held => {}
        }
        if let Some(output) = self.next_storage_step(now) {
            return output;
        }
        self.retries
            .values()
            .filter_map(|r| r.not_before)
            .filter(|at| *at > now)
            .min()
            .map_or(Output::AwaitAnswer, Output::WaitUntil)
    }

    fn next_storage_step(&mut self, now: Instant) -> Option<Output> {
        let storage = self.storage.as_ref()?;
        let upload_url = storage.upload_url.clone();
        let token = storage.token.clone();
        if self.small {
            if self.small_sent || self.waiting(StepId::UploadSmall, now).is_some() {
                return None;
            }
            self.small_sent = true;
            let step = Step::UploadSmall {
                upload_url,
                token,
                file_name: self.name.clone(),
                range: 0..self.size,
            };
            return Some(self.hand_out(StepId::UploadSmall, self.file_epoch, step));
        }
        let chunk = u64::from(self.config.chunk_size);
        // Blocks under way first (but those waiting to be sent again), then new blocks
        // up to the limit.
        let active = self
            .blocks
            .iter()
            .filter(|b| matches!(b.state, BlockState::Active { .. }))
            .count();
        let next = (0..self.blocks.len()).find(|&i| {
            matches!(
                self.blocks[i].state,
                BlockState::Active { sending: None, .. }
            ) && self.waiting(StepId::Block(i as u64), now).is_none()
        });
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
            let step = match ctx {
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
            };
            let epoch = block.epoch;
            return Some(self.hand_out(StepId::Block(index as u64), epoch, step));
        }
        if self.make_file_sent || self.waiting(StepId::MakeFile, now).is_some() {
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
        let step = Step::MakeFile {
            upload_url,
            token,
            file_size: self.size,
            ctxs,
        };
        Some(self.hand_out(StepId::MakeFile, self.file_epoch, step))
    }

    fn hand_out(&mut self, id: StepId, epoch: u64, step: Step) -> Output {
        if let Some(retrying) = self.retries.get_mut(&id) {
            retrying.not_before = None;
        }
        Output::Send(Ticket { id, epoch }, step)
    }

    // ---------------------------------------------------------------------------------
    // Inputs
    // ---------------------------------------------------------------------------------

    /// Reports the answer to [`Step::StoreToken`] at `now` / `wall` (the token's
    /// deadline is checked against `wall`): a [`StoreTokenResult`] (`/v1/store/token`)
    /// or a [`TokenAnswer`] (either [`UploadTokenApi`]).
    ///
    /// An instant answer ends the plan (the file's `storeId`, when it comes with one,
    /// must be the local etag; `/v2/upload/token`'s `hashCached: true` has none). An
    /// upload token lets the upload start, or go on after a renewal: if the new
    /// `uploadUrl` names another storage host than the previous one, every block is
    /// redone (and the answers of the old host still under way are ignored).
    ///
    /// # Errors
    ///
    /// [`UploadError::UnexpectedAnswer`] when `ticket`'s `StoreToken` step is not
    /// under way; [`UploadError::EtagMismatch`] when the instant file's `storeId` is not
    /// the local etag; [`UploadError::TokenExpired`] when the token's deadline is not
    /// after `wall`.
    pub fn handle_store_token(
        &mut self,
        ticket: Ticket,
        result: impl Into<TokenAnswer>,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), UploadError> {
        self.check_running()?;
        if ticket.id != StepId::StoreToken || !self.under_way(ticket) {
            return Err(UploadError::UnexpectedAnswer(
                "a storeToken answer, but no storeToken step is under way",
            ));
        }
        self.retries.remove(&StepId::StoreToken);
        match result.into() {
            TokenAnswer::Instant(file) => {
                if let Some(remote) = file.as_ref().map(|f| f.store_id) {
                    if remote != self.etag {
                        return self.fail(UploadError::EtagMismatch {
                            local: self.etag,
                            remote,
                        });
                    }
                }
                self.token = TokenState::Held;
                self.finished = Some(Ok(UploadOutcome {
                    instant: true,
                    etag: self.etag,
                    file,
                    key: None,
                }));
                Ok(())
            }
            TokenAnswer::Upload(info) => {
                let parsed = UploadToken::parse(info.token.expose()).ok();
                if let Some(deadline) = parsed.as_ref().and_then(UploadToken::deadline) {
                    if deadline <= wall {
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
                self.token_at = Some(now);
                Ok(())
            }
        }
    }

    /// Reports the HTTP result of a storage step (every step but
    /// [`Step::StoreToken`]) at `now` / `wall`: the answer is decoded and goes to
    /// [`handle_chunk`](Self::handle_chunk) or
    /// [`handle_file_stored`](Self::handle_file_stored); a transport error or an error
    /// answer goes to [`handle_failure`](Self::handle_failure).
    ///
    /// # Errors
    ///
    /// As [`handle_chunk`](Self::handle_chunk) and
    /// [`handle_file_stored`](Self::handle_file_stored);
    /// [`UploadError::UnexpectedAnswer`] for a `StoreToken` ticket.
    pub fn handle_response(
        &mut self,
        ticket: Ticket,
        response: Result<HttpResponse, TransportError>,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(), UploadError> {
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                self.handle_failure(ticket, Attempt::Transport(e), now, wall);
                return Ok(());
            }
        };
        let decoded = match ticket.id {
            StepId::StoreToken => {
                return Err(UploadError::UnexpectedAnswer(
                    "a storeToken answer goes to handle_store_token",
                ))
            }
            StepId::Block(_) => decode_chunk_stored(&response).map(Ok),
            StepId::UploadSmall | StepId::MakeFile => decode_file_stored(&response).map(Err),
        };
        match decoded {
            Ok(Ok(chunk)) => self.handle_chunk(ticket, chunk),
            Ok(Err(file)) => self.handle_file_stored(ticket, file),
            Err(e) => {
                self.handle_failure(ticket, Attempt::Api(e), now, wall);
                Ok(())
            }
        }
    }

    /// Reports the answer to [`Step::MakeBlock`] or [`Step::PutChunk`].
    ///
    /// # Errors
    ///
    /// [`UploadError::UnexpectedAnswer`] when `ticket`'s step is not under way — an
    /// answer from before the block was redone included (nothing changes);
    /// [`UploadError::UnexpectedOffset`] when `answer.offset` is not the bytes of the
    /// block sent so far, including this chunk; [`UploadError::InvalidAnswer`] for an
    /// empty `ctx`.
    pub fn handle_chunk(&mut self, ticket: Ticket, answer: ChunkStored) -> Result<(), UploadError> {
        self.check_running()?;
        let StepId::Block(block) = ticket.id else {
            return Err(UploadError::UnexpectedAnswer(
                "a chunk answer to a step that is not a block's",
            ));
        };
        let Some(entry) = usize::try_from(block)
            .ok()
            .and_then(|i| self.blocks.get_mut(i))
        else {
            return Err(UploadError::UnexpectedAnswer(
                "a chunk answer for a block this file does not have",
            ));
        };
        if entry.epoch != ticket.epoch {
            return Err(UploadError::UnexpectedAnswer(
                "a chunk answer from before the block was redone",
            ));
        }
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
        self.retries.remove(&ticket.id);
        Ok(())
    }

    /// Reports the answer to [`Step::UploadSmall`] or [`Step::MakeFile`]: the upload
    /// is done when the stored hash is the local etag.
    ///
    /// # Errors
    ///
    /// [`UploadError::UnexpectedAnswer`] when `ticket`'s step is not under way
    /// (nothing changes); [`UploadError::EtagMismatch`] with both values when the hash
    /// differs.
    pub fn handle_file_stored(
        &mut self,
        ticket: Ticket,
        answer: FileStored,
    ) -> Result<(), UploadError> {
        self.check_running()?;
        if !matches!(ticket.id, StepId::UploadSmall | StepId::MakeFile) || !self.under_way(ticket) {
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

    /// Reports that `ticket`'s step failed at `now` / `wall`: no answer (a
    /// [`TransportError`]) or an error answer (an [`ApiError`]). What follows is
    /// [`recovery`]'s call within the [`UploadPolicy`]: the same step sent again after
    /// a wait ([`Output::WaitUntil`]), the upload token renewed, the block or every
    /// block redone, or the upload given up ([`UploadError::GaveUp`]). Nothing happens
    /// when the step is not under way (a late or stale report).
    ///
    /// A driver whose `storeToken` goes through a call machine that retries by itself
    /// returns that machine's final error instead of reporting it here.
    pub fn handle_failure(
        &mut self,
        ticket: Ticket,
        failure: Attempt,
        now: Instant,
        wall: SystemTime,
    ) {
        if self.finished.is_some() || !self.under_way(ticket) {
            return;
        }
        let id = ticket.id;
        let endpoint = self.endpoint_of(id);
        let recovery = recovery(endpoint, failure.as_failure());
        match recovery {
            Recovery::Fatal => self.give_up(id, endpoint, GiveUp::Final, failure),
            Recovery::RestartBlock => {
                let StepId::Block(block) = id else {
                    return self.give_up(id, endpoint, GiveUp::Final, failure);
                };
                if self.block_restarts_left == 0 {
                    let budget = self.block_count() + self.policy.extra_block_restarts;
                    return self.give_up(id, endpoint, GiveUp::BlockRestarts { budget }, failure);
                }
                self.block_restarts_left -= 1;
                self.restart_block(block);
            }
            Recovery::RestartAll => {
                if self.full_restarts_left == 0 {
                    let budget = self.policy.full_restarts;
                    return self.give_up(id, endpoint, GiveUp::FullRestarts { budget }, failure);
                }
                self.full_restarts_left -= 1;
                self.restart_all_blocks();
            }
            Recovery::Resend(_) | Recovery::RenewToken => {
                let asked = if let Recovery::Resend(asked) = recovery {
                    asked
                } else {
                    None
                };
                let seed = self.next_seed();
                let policy = self.policy;
                let retrying = self.retries.entry(id).or_insert_with(|| Retrying {
                    backoff: Backoff::new(
                        policy.first_retry_wait,
                        policy.max_retry_wait,
                        policy.max_step_retries,
                        seed,
                    ),
                    not_before: None,
                });
                let Some(delay) = retrying.backoff.next_delay() else {
                    let retries = policy.max_step_retries;
                    return self.give_up(id, endpoint, GiveUp::Retries { retries }, failure);
                };
                let wait = match asked {
                    Some(asked) if asked > MAX_RETRY_AFTER => {
                        return self.give_up(id, endpoint, GiveUp::RetryAfter { asked }, failure)
                    }
                    Some(asked) => asked,
                    None => delay,
                };
                retrying.not_before = Some(checked_deadline(now, wait).unwrap_or(now));
                let past_deadline = self
                    .token_deadline()
                    .is_some_and(|deadline| wall.checked_add(wait).is_none_or(|w| deadline <= w));
                if recovery == Recovery::RenewToken || past_deadline {
                    self.renew_token();
                }
                self.mark_idle(id);
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------

    fn block(&self, block: u64) -> Option<&Block> {
        self.blocks.get(usize::try_from(block).ok()?)
    }

    fn parsed_token(&self) -> Option<&UploadToken> {
        self.storage.as_ref()?.parsed.as_ref()
    }

    /// Whether the token held is to be renewed before the next step.
    fn token_due(&self, now: Instant, wall: SystemTime) -> bool {
        self.token_expired(wall, self.policy.token_margin)
            && self
                .token_at
                .is_none_or(|at| now.saturating_duration_since(at) >= self.policy.min_token_use)
    }

    /// When step `id` may be sent again, if that is after `now`.
    fn waiting(&self, id: StepId, now: Instant) -> Option<Instant> {
        self.retries.get(&id)?.not_before.filter(|at| *at > now)
    }

    fn next_epoch(&mut self) -> u64 {
        self.epochs += 1;
        self.epochs
    }

    fn next_seed(&mut self) -> u64 {
        self.seeds_used += 1;
        self.seed ^ self.seeds_used.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Whether `ticket`'s step is under way in its epoch.
    fn under_way(&self, ticket: Ticket) -> bool {
        match ticket.id {
            StepId::StoreToken => {
                self.token == TokenState::Asked && ticket.epoch == self.token_epoch
            }
            StepId::UploadSmall => self.small && self.small_sent && ticket.epoch == self.file_epoch,
            StepId::MakeFile => {
                !self.small && self.make_file_sent && ticket.epoch == self.file_epoch
            }
            StepId::Block(block) => self.block(block).is_some_and(|b| {
                b.epoch == ticket.epoch
                    && matches!(
                        b.state,
                        BlockState::Active {
                            sending: Some(_),
                            ..
                        }
                    )
            }),
        }
    }

    /// The endpoint of step `id` under way.
    fn endpoint_of(&self, id: StepId) -> EndpointId {
        match id {
            StepId::StoreToken => EndpointId::StoreToken,
            StepId::UploadSmall => EndpointId::Upload,
            StepId::MakeFile => EndpointId::MakeFile,
            StepId::Block(block) => match self.block(block).map(|b| &b.state) {
                Some(BlockState::Active { ctx: Some(_), .. }) => EndpointId::PutChunk,
                _ => EndpointId::MakeBlock,
            },
        }
    }

    /// Step `id` is no longer under way: it is handed out again.
    fn mark_idle(&mut self, id: StepId) {
        match id {
            StepId::StoreToken => {
                if self.token == TokenState::Asked {
                    self.token = TokenState::Needed;
                }
            }
            StepId::UploadSmall => self.small_sent = false,
            StepId::MakeFile => self.make_file_sent = false,
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

    /// Redoes block `block` from `mkblk` in a new epoch; a `makeFile` under way is
    /// forgotten too (it is asked again once the block is done).
    fn restart_block(&mut self, block: u64) {
        let epoch = self.next_epoch();
        if let Some(entry) = usize::try_from(block)
            .ok()
            .and_then(|i| self.blocks.get_mut(i))
        {
            entry.state = BlockState::Pending;
            entry.epoch = epoch;
        }
        self.forget_file_step();
        if let Some(retrying) = self.retries.get_mut(&StepId::Block(block)) {
            retrying.not_before = None;
        }
    }

    /// Redoes every block from `mkblk`, each in a new epoch.
    fn restart_all_blocks(&mut self) {
        for block in 0..self.block_count() {
            self.restart_block(block);
        }
        self.forget_file_step();
    }

    fn forget_file_step(&mut self) {
        self.make_file_sent = false;
        self.file_epoch = self.next_epoch();
        if let Some(retrying) = self.retries.get_mut(&StepId::MakeFile) {
            retrying.not_before = None;
        }
    }

    /// Asks for a fresh upload token before the next storage step; nothing happens
    /// while a `StoreToken` step is under way.
    fn renew_token(&mut self) {
        if self.token == TokenState::Held {
            self.token = TokenState::Needed;
        }
    }

    fn give_up(&mut self, step: StepId, endpoint: EndpointId, reason: GiveUp, failure: Attempt) {
        self.finished = Some(Err(UploadError::GaveUp {
            step,
            endpoint,
            reason,
            last: failure.to_string(),
        }));
        self.cause = Some(failure);
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
/// [`storage::storage_base`]); unusable URLs compare as text. The one rule of "the same
/// storage host": a renewal to another one redoes the blocks.
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
    use crate::sixpan::{UploadInfo, UploadTokenInfo, UploadTokenRequest};

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

    /// Synthetic time: a monotonic and a wall-clock reading that move together.
    struct Time {
        now: Instant,
        wall: SystemTime,
    }

    impl Time {
        fn new() -> Self {
            Self {
                now: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            }
        }

        /// The next step to send, waiting (in synthetic time) when the plan says so;
        /// `None` when it waits for an answer or is finished.
        fn next(&mut self, p: &mut UploadPlan) -> Option<(Ticket, Step)> {
            loop {
                match p.poll(self.now, self.wall) {
                    Output::Send(ticket, step) => return Some((ticket, step)),
                    Output::WaitUntil(at) => {
                        let by = at - self.now;
                        self.now += by;
                        self.wall += by;
                    }
                    _ => return None,
                }
            }
        }

        fn store_token(&self, p: &mut UploadPlan, ticket: Ticket, url: &str) {
            p.handle_store_token(ticket, info(url), self.now, self.wall)
                .unwrap();
        }

        fn refuse(&self, p: &mut UploadPlan, ticket: Ticket, error: ApiError) {
            p.handle_failure(ticket, Attempt::Api(error), self.now, self.wall);
        }
    }

    fn provider(status: u16) -> crate::ProviderError {
        crate::ProviderError {
            code: crate::Code::Int(i64::from(status)),
            message: String::new(),
            trace_id: None,
            status: http::StatusCode::from_u16(status).unwrap(),
        }
    }

    // Issue 12 #9: `/v2/upload/token` as every v2 client calls it. Its body carries the
    // step's name, folder and etag; `hashCached: true` is the instant outcome (no file
    // described, so nothing to compare), `uploadInfo` an upload like storeToken's.
    #[test]
    fn v2_upload_token_answers_drive_the_same_plan() {
        let mut time = Time::new();
        let mut p = UploadPlan::new(
            "a.bin".into(),
            Some("/up".into()),
            None,
            1,
            qetag(b"x"),
            UploadConfig::default(),
        );
        let (ticket, step) = time.next(&mut p).unwrap();
        let Step::StoreToken(request) = &step else {
            panic!("the token first: {step:?}");
        };
        let body = UploadTokenRequest::from(request);
        assert_eq!(
            (
                body.name.as_str(),
                body.path.as_deref(),
                body.identity,
                body.hash
            ),
            ("a.bin", Some("/up"), None, Some(qetag(b"x")))
        );
        let cached = UploadTokenResult {
            hash_cached: true,
            upload_info: None,
        };
        p.handle_store_token(
            ticket,
            TokenAnswer::try_from(cached).unwrap(),
            time.now,
            time.wall,
        )
        .unwrap();
        let Output::Done(outcome) = p.poll(time.now, time.wall) else {
            panic!("an instant upload ends the plan");
        };
        assert!(outcome.instant && outcome.file.is_none());

        // Not cached: the upload goes on with uploadInfo's token and URL.
        let mut p = plan(1, UploadConfig::default());
        let (ticket, _) = time.next(&mut p).unwrap();
        let answer = UploadTokenResult {
            hash_cached: false,
            upload_info: Some(UploadTokenInfo {
                upload_token: Secret::new("ak:sign:e30"),
                upload_type: Some(0),
                upload_url: "http://up.example".into(),
                file_path: Some("/f".into()),
            }),
        };
        let answer = TokenAnswer::try_from(answer).unwrap();
        p.handle_store_token(ticket, answer, time.now, time.wall)
            .unwrap();
        let (_, step) = time.next(&mut p).unwrap();
        assert!(
            matches!(&step, Step::UploadSmall { upload_url, .. } if upload_url == "http://up.example"),
            "{step:?}"
        );
        // Neither cached nor uploadInfo: not an answer to go on with.
        let hollow = UploadTokenResult {
            hash_cached: false,
            upload_info: None,
        };
        assert!(matches!(
            TokenAnswer::try_from(hollow),
            Err(UploadError::UnexpectedAnswer(_))
        ));
        // A parent UUID without a path goes as `identity`.
        let by_uuid = UploadTokenRequest::from(&StoreTokenRequest {
            name: "n".into(),
            hash: None,
            parent: Some("0233a0a4".into()),
            path: None,
        });
        assert_eq!(by_uuid.identity.as_deref(), Some("0233a0a4"));
        assert_eq!(UploadTokenApi::default().endpoint(), EndpointId::StoreToken);
        assert_eq!(UploadTokenApi::V2.endpoint(), EndpointId::UploadToken);
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
        assert_eq!(Time::new().next(&mut p), None);
        assert!(p.error().unwrap().to_string().contains("one-block"));
    }

    #[test]
    fn unasked_answers_are_refused_without_harm() {
        let mut t = Time::new();
        let mut p = plan(2 * BLOCK, UploadConfig::default());
        let unasked = Ticket {
            id: StepId::StoreToken,
            epoch: 1,
        };
        let err = p.handle_store_token(unasked, info("http://u"), t.now, t.wall);
        assert!(matches!(err, Err(UploadError::UnexpectedAnswer(_))));
        let Some((ticket, Step::StoreToken(_))) = t.next(&mut p) else {
            panic!()
        };
        t.store_token(&mut p, ticket, "http://u");
        let answer = ChunkStored {
            ctx: "c".into(),
            offset: 1,
        };
        let block = |b| Ticket {
            id: StepId::Block(b),
            epoch: 0,
        };
        let err = p.handle_chunk(block(0), answer.clone()).unwrap_err();
        assert!(!err.ends_upload());
        assert!(p.handle_chunk(block(9), answer).is_err());
        let stored = FileStored {
            hash: p.etag(),
            key: None,
        };
        let make_file = Ticket {
            id: StepId::MakeFile,
            epoch: p.file_epoch,
        };
        assert!(matches!(
            p.handle_file_stored(make_file, stored),
            Err(UploadError::UnexpectedAnswer(_))
        ));
        assert!(!p.is_finished());
        assert!(matches!(
            t.next(&mut p),
            Some((_, Step::MakeBlock { block: 0, .. }))
        ));
    }

    #[test]
    fn renewal_to_another_host_redoes_blocks() {
        let mut t = Time::new();
        let mut p = plan(2 * BLOCK, UploadConfig::default());
        let (ticket, _) = t.next(&mut p).unwrap();
        t.store_token(&mut p, ticket, "http://a/file/upload");
        let Some((ticket, Step::MakeBlock { range, .. })) = t.next(&mut p) else {
            panic!()
        };
        p.handle_chunk(
            ticket,
            ChunkStored {
                ctx: "c".into(),
                offset: range.end,
            },
        )
        .unwrap();
        assert_eq!(p.bytes_acknowledged(), u64::from(DEFAULT_CHUNK_SIZE));
        // The same host (with or without /file/upload): progress kept. The token is
        // refused, so it is renewed.
        let (chunk, _) = t.next(&mut p).unwrap();
        t.refuse(&mut p, chunk, ApiError::TokenInvalid(provider(401)));
        let Some((ticket, Step::StoreToken(_))) = t.next(&mut p) else {
            panic!()
        };
        assert_eq!(t.next(&mut p), None);
        t.store_token(&mut p, ticket, "http://a");
        let Some((chunk, Step::PutChunk { block: 0, .. })) = t.next(&mut p) else {
            panic!()
        };
        // Another host: redone, and the answer of the old host is ignored.
        t.refuse(&mut p, chunk, ApiError::TokenInvalid(provider(401)));
        let (ticket, _) = t.next(&mut p).unwrap();
        t.store_token(&mut p, ticket, "http://b");
        assert_eq!(p.bytes_acknowledged(), 0);
        let Some((
            _,
            Step::MakeBlock {
                block: 0,
                upload_url,
                ..
            },
        )) = t.next(&mut p)
        else {
            panic!()
        };
        assert_eq!(upload_url, "http://b");
        let late = ChunkStored {
            ctx: "late".into(),
            offset: 2 * u64::from(DEFAULT_CHUNK_SIZE),
        };
        assert!(matches!(
            p.handle_chunk(chunk, late),
            Err(UploadError::UnexpectedAnswer(_))
        ));
    }

    #[test]
    fn one_classifier_for_upload_failures() {
        use crate::{DecodeError, DecodeErrorKind, TransportErrorKind as K};
        let transport = |kind| TransportError::new(kind, "x");
        let api = |e: &ApiError, endpoint| recovery(endpoint, Failure::Api(e));
        for kind in [K::Connect, K::Timeout, K::Closed, K::Other] {
            let e = transport(kind);
            assert_eq!(
                recovery(EndpointId::PutChunk, Failure::Transport(&e)),
                Recovery::Resend(None),
                "{kind:?}"
            );
        }
        // storeToken follows the rule of every call: a read.
        let other = transport(K::Other);
        assert_eq!(
            recovery(EndpointId::StoreToken, Failure::Transport(&other)),
            Recovery::Fatal
        );
        let big = transport(K::BodyTooLarge { limit: 1 });
        assert_eq!(
            recovery(EndpointId::MakeBlock, Failure::Transport(&big)),
            Recovery::Fatal
        );
        let limited = ApiError::RateLimited {
            error: provider(429),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            api(&limited, EndpointId::MakeFile),
            Recovery::Resend(Some(Duration::from_secs(3)))
        );
        let token = ApiError::TokenInvalid(provider(401));
        assert_eq!(api(&token, EndpointId::Upload), Recovery::RenewToken);
        assert_eq!(api(&token, EndpointId::StoreToken), Recovery::Fatal);
        let busy = ApiError::Provider(provider(503));
        assert_eq!(api(&busy, EndpointId::PutChunk), Recovery::Resend(None));
        let slow = ApiError::Provider(provider(408));
        assert_eq!(api(&slow, EndpointId::MakeBlock), Recovery::Resend(None));
        let garbled = ApiError::Decode(DecodeError {
            kind: DecodeErrorKind::NotJson,
            status: http::StatusCode::OK,
            content_type: None,
            path: None,
            detail: String::new(),
            body: Bytes::new(),
        });
        assert_eq!(api(&garbled, EndpointId::PutChunk), Recovery::Resend(None));
        let refused = ApiError::Provider(provider(400));
        assert_eq!(api(&refused, EndpointId::PutChunk), Recovery::RestartBlock);
        assert_eq!(api(&refused, EndpointId::MakeFile), Recovery::RestartAll);
        assert_eq!(api(&refused, EndpointId::MakeBlock), Recovery::Fatal);
        assert_eq!(api(&refused, EndpointId::Upload), Recovery::Fatal);
    }

    #[test]
    fn a_long_retry_after_gives_up() {
        let mut t = Time::new();
        let mut p = plan(10, UploadConfig::default());
        let (ticket, _) = t.next(&mut p).unwrap();
        t.store_token(&mut p, ticket, "http://u");
        let (ticket, _) = t.next(&mut p).unwrap();
        let asked = MAX_RETRY_AFTER + Duration::from_secs(1);
        let limited = ApiError::RateLimited {
            error: provider(429),
            retry_after: Some(asked),
        };
        t.refuse(&mut p, ticket, limited);
        assert!(matches!(
            p.error(),
            Some(UploadError::GaveUp {
                reason: GiveUp::RetryAfter { .. },
                ..
            })
        ));
        assert!(matches!(p.take_cause(), Some(Attempt::Api(_))));
        assert!(p.take_cause().is_none(), "handed out once");
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
