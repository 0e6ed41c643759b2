//! Async client for the 123pan open platform's offline download.
//!
//! ```no_run
//! # async fn f() -> Result<(), provider_123pan::Error> {
//! use futures_util::StreamExt;
//! use provider_123pan::{Pan123, TaskRef};
//!
//! let pan = Pan123::builder()
//!     .client_id("my-client-id")
//!     .client_secret("my-client-secret")
//!     .build()?;
//! let task = pan.offline_download("https://example.com/video.mp4").await?;
//! let mut updates = pan.wait(TaskRef::cloud(task));
//! while let Some(update) = updates.next().await {
//!     let update = update?;
//!     println!("{:.1}% {}", update.percent, update.status);
//! }
//! # Ok(()) }
//! ```
//!
//! A [`Pan123`] is built once and cloned freely: clones share the access token, the
//! rate limiter and the connection pool. The token is fetched on first use, reused
//! until five minutes before its `expiredAt`, and refreshed once when the server
//! rejects it; however many calls find it expired at the same moment, exactly one
//! token request is made. Every call waits for its endpoint's rate limit (a token
//! bucket per endpoint; defaults from `docs/wire-notes.md`, configurable) and is sent again
//! after a `429` answer, which means the server did not carry it out.
//!
//! Folders and files around the downloads: [`Pan123::resolve_dir`] turns a path such
//! as `/Movies/2026` into a folder ID (creating missing folders when asked, cached per
//! client), [`Pan123::mkdir`], [`Pan123::list`] (a stream of pages),
//! [`Pan123::file`], [`Pan123::files`], [`Pan123::download_url`] and [`Pan123::trash`]
//! (the files a finished download stored, say, once they are fetched).
//!
//! A create call (`offline_download`, `oss_offline_download`) whose request may have
//! reached the server without an answer coming back is **never** sent again: it fails
//! with [`Error::OutcomeUnknown`], since sending it twice could create two tasks.

pub mod callbacks;
mod client;
mod error;
mod files;
mod wait;

pub use callbacks::Watched;
pub use client::{Pan123, Pan123Builder};
pub use error::Error;
pub use files::ResolvedDir;
pub use offline_proto::pan123::{
    Callback, CallbackStatus, DrivePath, EndpointId, FileDetailData, FileEntry, FileId,
    FileListPage, OfflineDownloadRequest, OssOfflineDownloadRequest, Process, TaskId, TaskStatus,
};
pub use wait::{Progress, TaskKind, TaskRef};
