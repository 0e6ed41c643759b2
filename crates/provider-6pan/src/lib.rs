//! Async client for 6pan's offline download.
//!
//! ```no_run
//! # async fn f() -> Result<(), provider_6pan::Error> {
//! use futures_util::StreamExt;
//! use provider_6pan::{Selection, SixPan};
//!
//! let pan = SixPan::builder().login("me@example.com", "password").build()?;
//! // A torrent: hashed, uploaded (or instantly known by its etag), then parsed.
//! let parsed = pan.upload_torrent("ubuntu.torrent").await?;
//! println!("{} files", parsed.result.files.len());
//! let added = pan
//!     .add_parsed(&parsed.result, &Selection::Globs(vec!["*.iso".into()]), "/downloads")
//!     .await?;
//! let mut updates = pan.wait(added.iter().map(|t| t.identity.clone()).collect());
//! while let Some(task) = updates.next().await {
//!     let task = task?;
//!     println!("{} {:?} {:?}", task.name, task.status, task.progress);
//! }
//! # Ok(()) }
//! ```
//!
//! A [`SixPan`] logs in on its first call (or starts from a token), and keeps the
//! newest token of every answer: 6pan rotates its `Qingzhen-Token` after each call, and
//! a slow answer to an older request never rolls it back. When the token is rejected
//! (a login elsewhere invalidates it) the client logs in once more, once for all the
//! calls that noticed at the same moment.
//!
//! `add` creates tasks, so it is never sent twice blindly: if its answer is lost, the
//! task list is read to see whether the tasks exist ([`Error::OutcomeUnknown`] if that
//! does not settle it).

mod client;
mod error;
pub mod hash;
mod offline;
mod upload;

pub use client::{SixPan, SixPanBuilder, DEFAULT_BLOCKS_IN_FLIGHT};
pub use error::Error;
pub use offline::{Selection, CREATE_TIME_TOLERANCE, PAGE_SIZE};
pub use offline_proto::sixpan::tasks::{Expected, Match};
pub use offline_proto::sixpan::upload::UploadTokenApi;
pub use offline_proto::sixpan::{
    AddTask, EndpointId, OfflineTask, ParseFile, ParseResult, TaskId, TaskStatus, TaskType,
};
pub use upload::{TorrentUpload, UploadPhase, UploadProgress, UploadReport, TORRENT_FOLDER};
