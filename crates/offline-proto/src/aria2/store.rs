//! What the daemon provides: its task store.

use std::ops::Range;

use super::{Gid, Queue, TaskView};

/// A download to add, as `aria2.addUri` or `aria2.addTorrent` asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddRequest {
    /// What to download.
    pub source: Source,
    /// The `dir` option: the drive folder to download into (`None`: the daemon's
    /// default). Taken as the caller sent it; the daemon resolves it.
    pub dir: Option<String>,
    /// The `out` option: the file name to store it under (`None`: the drive's choice).
    pub out: Option<String>,
    /// The `position` in the waiting queue (0 is the front; `None` or past the end:
    /// the end). aria2 manual, RPC interface, `aria2.addUri`. A daemon may ignore it.
    pub position: Option<u64>,
}

/// What an [`AddRequest`] downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `aria2.addUri`: URIs "pointing to the same resource" (a magnet link alone)
    /// (aria2 manual, RPC interface, `aria2.addUri`); never empty.
    Uris(Vec<String>),
    /// `aria2.addTorrent`: the `.torrent` file's bytes (decoded from base64), and the
    /// web-seed URIs sent with it.
    Torrent {
        /// The `.torrent` bytes, not yet checked.
        bytes: Vec<u8>,
        /// Web seeds (the method's `uris` parameter).
        web_seeds: Vec<String>,
    },
}

/// The daemon's refusal of an add or a removal: sent to the caller as an aria2 error
/// (code 1) with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The task store `offline serve` implements; [`super::handle`] calls it.
///
/// The calls come one at a time (`&mut self`), so a task looked up by the dispatcher is
/// still there when the dispatcher acts on it. The store sorts each task into the
/// queue its [`TaskState::queue`](super::TaskState::queue) says.
pub trait Downloads {
    /// Registers a download and returns its new GID.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the daemon refuses it (a bad torrent, a folder it cannot
    /// make, a full queue).
    fn add(&mut self, request: AddRequest) -> Result<Gid, StoreError>;

    /// The task with this GID, in any queue; `None` if there is none (or its result
    /// was removed).
    fn task(&self, gid: Gid) -> Option<TaskView>;

    /// How many tasks are in `queue`.
    fn count(&self, queue: Queue) -> usize;

    /// The tasks at positions `range` of `queue`, in queue order: [`Queue::Waiting`]
    /// front first, [`Queue::Stopped`] least recently stopped first, [`Queue::Active`]
    /// in any stable order. `range` is within `0..count(queue)`.
    fn list(&self, queue: Queue, range: Range<usize>) -> Vec<&TaskView>;

    /// Removes an active or waiting download (it becomes `removed`, a stopped
    /// download); `force` is `aria2.forceRemove` (aria2 manual, RPC interface: "without
    /// performing any actions which take time"). Only called for a task in the active
    /// or waiting queue.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when it cannot be removed now.
    fn remove(&mut self, gid: Gid, force: bool) -> Result<(), StoreError>;

    /// Forgets a stopped download (`aria2.removeDownloadResult`). Only called for a task
    /// in the stopped queue.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when it cannot be forgotten.
    fn remove_result(&mut self, gid: Gid) -> Result<(), StoreError>;

    /// Forgets every stopped download (`aria2.purgeDownloadResult`).
    fn purge_results(&mut self);

    /// The overall download speed in bytes per second (`getGlobalStat`'s
    /// `downloadSpeed`); by default the sum of the active tasks'.
    fn download_speed(&self) -> u64 {
        let active = self.list(Queue::Active, 0..self.count(Queue::Active));
        active.iter().map(|t| t.download_speed).sum()
    }
}
