//! The provider-neutral view of a task, and how it reads as aria2's `tellStatus`,
//! `getFiles` and `getUris` structs.
//!
//! Mapping decisions (aria2's fields are in aria2 manual, RPC interface,
//! `aria2.tellStatus`; every value is a decimal **string** there, "Values are
//! strings", but for `bittorrent.creationDate`, "an integer"):
//!
//! | [`TaskState`] | `status` | queue ([`Queue`]) | `errorCode` |
//! | --- | --- | --- | --- |
//! | `Queued` (not yet sent to the drive) | `waiting` | waiting | absent |
//! | `Submitting` (the add is on its way) | `active` | active | absent |
//! | `Running` (the drive is fetching) | `active` | active | absent |
//! | `Complete` | `complete` | stopped | `"0"` |
//! | `Failed` | `error` | stopped | the [`FailureKind`]'s exit status |
//! | `Removed` | `removed` | stopped | `"31"` (aria2's own code for a removal) |
//! | `UnknownOutcome` (the add's answer was lost) | `error` | stopped | `"1"` |
//!
//! `paused` is never reported: a cloud drive's offline task cannot be paused.
//! `errorCode`/`errorMessage` appear for stopped downloads only ("This value is only
//! available for stopped/completed downloads").
//!
//! - `totalLength`: the known total, else the sum of the files' lengths, else `0`
//!   (what aria2 shows before it knows a length).
//! - `completedLength`: the bytes done, or the percentage of `totalLength`; a complete
//!   task is `totalLength` whatever the drive said last.
//! - `uploadLength`, `uploadSpeed`: `0` (the drive does not upload for us).
//! - `downloadSpeed`: [`TaskView::download_speed`] while running, else `0`.
//! - `connections`: `1` while the drive works on it (`active`), else `0`.
//! - `pieceLength`: the torrent's when known, else 1 MiB (aria2's `--piece-length`
//!   default); `numPieces`: `totalLength` in such pieces, rounded up.
//! - `bitfield`, `followedBy`, `following`, `belongsTo`, `verifiedLength`,
//!   `verifyIntegrityPending`: never present (no pieces are seen here; aria2 leaves
//!   them out in the same cases).
//! - `dir`: the drive folder, e.g. `/Movies/2026`.
//! - `files`: [`TaskView::files`], or, when it is empty, one file named
//!   [`TaskView::name`] (path `""` while the name is unknown, as aria2 before it has
//!   one). `path` is `dir` joined with the file's path; `index` counts from 1. A
//!   file's `completedLength`: a task with one file gives it the task's; with more,
//!   a selected file of a complete task is whole, others `0` (the drive reports no
//!   per-file progress). `uris`: the task's source URIs for a URI download, none for a
//!   torrent.
//! - URIs (`getUris`, files' `uris`): the first is `used` once the task left the
//!   queue, the others `waiting`.
//! - [`PERCENT_KEY`] (`offlinePercent`, not an aria2 key): the percent done, `"0"` to
//!   `"100"`, answered only when named in `keys` (so aria2's clients, which never name
//!   it, see aria2's fields only). The drives report percent, not bytes, so a running
//!   task's `completedLength` is `0` while its length is unknown; the web page asks
//!   for this key to draw its progress bar.
//! - Torrents ([`TaskView::torrent`]): `infoHash` when known, `numSeeders` `0`,
//!   `seeder` `false`, `bittorrent` with `announceList`, `comment`, `creationDate`,
//!   `mode` (`single`/`multi`) and `info.name` when known.

use serde_json::{json, Map, Value};

use super::Gid;
use crate::catalog::join;
use crate::torrent::InfoHash;

/// The piece length reported when no torrent gives one: aria2's `--piece-length`
/// default, 1 MiB (aria2 manual, Options, `--piece-length`).
pub const DEFAULT_PIECE_LENGTH: u64 = 1 << 20;

/// aria2's exit status for a download removed by the user: `REMOVED`, 31, in aria2's
/// `error_code.h` (the manual's EXIT STATUS list stops at 28).
pub const REMOVED_ERROR_CODE: u32 = 31;

/// A task as the daemon knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// Its GID, stable for the task's life.
    pub gid: Gid,
    /// The source URIs (a URL, or a magnet link), in the order given.
    pub uris: Vec<String>,
    /// The name the drive stores it under, when known.
    pub name: Option<String>,
    /// The total length in bytes, when known.
    pub total_length: Option<u64>,
    /// How far the drive got.
    pub progress: Progress,
    /// The download speed in bytes per second, as the drive reports or the daemon
    /// estimates (`0` when unknown).
    pub download_speed: u64,
    /// Where it is in its life.
    pub state: TaskState,
    /// The drive folder it lands in, e.g. `/Movies/2026`.
    pub dir: String,
    /// Its files (paths relative to `dir`); empty for a single-file download whose
    /// name stands for the file.
    pub files: Vec<FileView>,
    /// What the torrent says, for a torrent download.
    pub torrent: Option<TorrentInfo>,
    /// A small integer naming the task for its life (Transmission's `id`), unique in
    /// the store.
    pub id: u64,
    /// The task's hash for the torrent-client interfaces (40 lower-case hex digits,
    /// [`crate::catalog::task_hash`]).
    pub hash: String,
    /// Its category (qBittorrent), when filed under one.
    pub category: Option<String>,
    /// Its tags (qBittorrent) or labels (Transmission), in the order set.
    pub tags: Vec<String>,
    /// When it was added, seconds since the Unix epoch (`0`: unknown).
    pub added_on: i64,
    /// When it ended (completed or failed), seconds since the Unix epoch.
    pub completed_on: Option<i64>,
    /// Held back by a user (added paused): accepted, not sent to the drive until
    /// resumed. Only a [`TaskState::Queued`] task is held.
    pub held: bool,
}

impl TaskView {
    /// A task with no URIs, name, length, progress, files or torrent; its
    /// [`id`](Self::id) is the GID's value and its [`hash`](Self::hash) the SHA-1 of
    /// the GID's text, until the store sets them.
    pub fn new(gid: Gid, state: TaskState, dir: impl Into<String>) -> Self {
        Self {
            gid,
            uris: Vec::new(),
            name: None,
            total_length: None,
            progress: Progress::Bytes(0),
            download_speed: 0,
            state,
            dir: dir.into(),
            files: Vec::new(),
            torrent: None,
            id: gid.get(),
            hash: crate::catalog::task_hash(None, &gid.to_string(), 0),
            category: None,
            tags: Vec::new(),
            added_on: 0,
            completed_on: None,
            held: false,
        }
    }

    /// `totalLength` in bytes: the known total, else the sum of the files', else 0.
    pub fn total_length(&self) -> u64 {
        self.total_length
            .unwrap_or_else(|| self.files.iter().map(|f| f.length).sum())
    }

    /// `completedLength` in bytes (see the module's mapping).
    pub fn completed_length(&self) -> u64 {
        let total = self.total_length();
        if self.state == TaskState::Complete {
            return total;
        }
        match self.progress {
            Progress::Bytes(done) if total > 0 => done.min(total),
            Progress::Bytes(done) => done,
            Progress::Percent(pct) => {
                let pct = u128::from(pct.min(100));
                u64::try_from(u128::from(total) * pct / 100).unwrap_or(total)
            }
        }
    }
}

/// The `tellStatus` key of [`TaskView::percent`], answered only when asked for by name.
pub const PERCENT_KEY: &str = "offlinePercent";

impl TaskView {
    /// The percent done, 0 to 100: 100 when complete, else the drive's percent, or the
    /// bytes done of a known length (0 when neither is known).
    pub fn percent(&self) -> u8 {
        if self.state == TaskState::Complete {
            return 100;
        }
        match self.progress {
            Progress::Percent(pct) => pct.min(100),
            Progress::Bytes(done) => {
                let total = self.total_length();
                if total == 0 {
                    0
                } else {
                    u8::try_from(u128::from(done.min(total)) * 100 / u128::from(total))
                        .unwrap_or(100)
                }
            }
        }
    }
}

/// How far a task got: bytes, or a percentage when that is all the drive says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Bytes done.
    Bytes(u64),
    /// Percent done, 0 to 100 (more reads as 100).
    Percent(u8),
}

/// Where a task is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Accepted by the daemon, not yet sent to the drive.
    Queued,
    /// The add is being sent to the drive.
    Submitting,
    /// The drive is fetching it.
    Running,
    /// The drive has it whole.
    Complete,
    /// The drive (or the daemon) gave up on it.
    Failed(Failure),
    /// Removed by a user.
    Removed,
    /// The add was sent but its answer was lost, and no task could be matched to it.
    UnknownOutcome,
}

impl TaskState {
    /// The queue aria2 lists the task in (`tellActive`, `tellWaiting`, `tellStopped`).
    pub fn queue(&self) -> Queue {
        match self {
            TaskState::Queued => Queue::Waiting,
            TaskState::Submitting | TaskState::Running => Queue::Active,
            TaskState::Complete
            | TaskState::Failed(_)
            | TaskState::Removed
            | TaskState::UnknownOutcome => Queue::Stopped,
        }
    }

    /// aria2's `status` value.
    pub fn status(&self) -> &'static str {
        match self {
            TaskState::Queued => "waiting",
            TaskState::Submitting | TaskState::Running => "active",
            TaskState::Complete => "complete",
            TaskState::Failed(_) | TaskState::UnknownOutcome => "error",
            TaskState::Removed => "removed",
        }
    }

    /// `errorCode` and `errorMessage`, for a stopped task.
    fn error(&self) -> Option<(u32, &str)> {
        match self {
            TaskState::Complete => Some((0, "")),
            TaskState::Removed => Some((REMOVED_ERROR_CODE, "")),
            TaskState::Failed(failure) => Some((failure.kind.exit_status(), &failure.message)),
            TaskState::UnknownOutcome => Some((
                FailureKind::Unknown.exit_status(),
                "the cloud drive's answer to the add was lost; whether it made a task is unknown",
            )),
            TaskState::Queued | TaskState::Submitting | TaskState::Running => None,
        }
    }
}

/// Why a task failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The closest aria2 exit status.
    pub kind: FailureKind,
    /// The provider's reason, shown as `errorMessage`.
    pub message: String,
}

/// The kinds of failure that have an aria2 exit status to stand for them (aria2
/// manual, EXIT STATUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Anything else: 1, "an unknown error occurred".
    Unknown,
    /// The drive gave up waiting: 2, "time out occurred".
    Timeout,
    /// The source is gone (404, dead link, no seeds ever): 3, "a resource was not
    /// found".
    NotFound,
    /// The drive could not reach the source: 6, "network problem occurred".
    Network,
    /// The drive's quota is used up: 9, "there was not enough disk space available".
    NoSpace,
    /// The drive already runs this download: 11, "aria2 was downloading same file at
    /// that moment".
    Duplicate,
    /// The name is taken in the folder: 13, "file already existed".
    FileExists,
    /// The torrent was refused: 26, ".torrent file was corrupted or missing
    /// information".
    BadTorrent,
    /// The magnet link was refused: 27, "Magnet URI was bad".
    BadMagnet,
}

impl FailureKind {
    /// The aria2 exit status.
    pub const fn exit_status(self) -> u32 {
        match self {
            FailureKind::Unknown => 1,
            FailureKind::Timeout => 2,
            FailureKind::NotFound => 3,
            FailureKind::Network => 6,
            FailureKind::NoSpace => 9,
            FailureKind::Duplicate => 11,
            FailureKind::FileExists => 13,
            FailureKind::BadTorrent => 26,
            FailureKind::BadMagnet => 27,
        }
    }
}

/// One file of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    /// Its path relative to the task's `dir` (`/`-separated).
    pub path: String,
    /// Its length in bytes.
    pub length: u64,
    /// Whether it is downloaded (a torrent's file selection); `true` otherwise.
    pub selected: bool,
}

/// What a torrent says, for `infoHash` and `bittorrent`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TorrentInfo {
    /// The v1 info hash, when known (a magnet link or a parsed torrent gives it).
    pub info_hash: Option<InfoHash>,
    /// The info dictionary's `name`.
    pub name: Option<String>,
    /// Whether it has a `files` list (`mode` `multi`) or is a single file.
    pub multi_file: bool,
    /// Tiers of announce URLs (`announce` alone is one tier of one).
    pub announce_list: Vec<Vec<String>>,
    /// The comment.
    pub comment: Option<String>,
    /// The creation time, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// The piece length in bytes.
    pub piece_length: Option<u64>,
}

/// The queues aria2 lists downloads by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// `tellActive`: downloading.
    Active,
    /// `tellWaiting`: in the queue, front first.
    Waiting,
    /// `tellStopped`: complete, failed or removed, least recently stopped first.
    Stopped,
}

/// `aria2.tellStatus`'s struct for `task`, with only the `keys` named when `keys` is
/// not empty (aria2 manual, RPC interface, `aria2.tellStatus`: "If *keys* is empty or
/// omitted, the response contains all keys"). Unknown keys are ignored.
pub fn status(task: &TaskView, keys: &[String]) -> Value {
    let total = task.total_length();
    let active = task.state.queue() == Queue::Active;
    let piece_length = task
        .torrent
        .as_ref()
        .and_then(|t| t.piece_length)
        .filter(|&p| p > 0)
        .unwrap_or(DEFAULT_PIECE_LENGTH);
    let want = |key: &str| keys.is_empty() || keys.iter().any(|k| k == key);
    let mut m = Map::new();
    // The costly values (`files`, `bittorrent`) are only built when asked for.
    let mut put = |key: &str, value: &dyn Fn() -> Value| {
        if want(key) {
            m.insert(key.to_owned(), value());
        }
    };
    put("gid", &|| json!(task.gid));
    put("status", &|| json!(task.state.status()));
    put("totalLength", &|| number(total));
    put("completedLength", &|| number(task.completed_length()));
    put("uploadLength", &|| number(0));
    put("downloadSpeed", &|| {
        number(if active { task.download_speed } else { 0 })
    });
    put("uploadSpeed", &|| number(0));
    put("connections", &|| number(u64::from(active)));
    put("pieceLength", &|| number(piece_length));
    put("numPieces", &|| number(total.div_ceil(piece_length)));
    put("dir", &|| json!(task.dir));
    put("files", &|| Value::Array(files(task)));
    if let Some((code, message)) = task.state.error() {
        put("errorCode", &|| json!(code.to_string()));
        put("errorMessage", &|| json!(message));
    }
    if let Some(torrent) = &task.torrent {
        if let Some(hash) = torrent.info_hash {
            put("infoHash", &|| json!(hash.to_string()));
        }
        put("numSeeders", &|| number(0));
        put("seeder", &|| json!("false"));
        put("bittorrent", &|| bittorrent(torrent));
    }
    if keys.iter().any(|k| k == PERCENT_KEY) {
        m.insert(PERCENT_KEY.to_owned(), json!(task.percent().to_string()));
    }
    Value::Object(m)
}

/// `bittorrent`: "Struct which contains information retrieved from the .torrent".
fn bittorrent(torrent: &TorrentInfo) -> Value {
    let mut m = Map::new();
    m.insert("announceList".into(), json!(torrent.announce_list));
    if let Some(comment) = &torrent.comment {
        m.insert("comment".into(), json!(comment));
    }
    if let Some(date) = torrent.creation_date {
        m.insert("creationDate".into(), json!(date));
    }
    let mode = if torrent.multi_file {
        "multi"
    } else {
        "single"
    };
    m.insert("mode".into(), json!(mode));
    if let Some(name) = &torrent.name {
        m.insert("info".into(), json!({ "name": name }));
    }
    Value::Object(m)
}

/// `aria2.getFiles`'s array for `task` (aria2 manual, RPC interface,
/// `aria2.getFiles`).
pub fn files(task: &TaskView) -> Vec<Value> {
    let uris = if task.torrent.is_none() {
        uris(task)
    } else {
        Vec::new()
    };
    let file = |index: usize, path: String, length: u64, completed: u64, selected: bool| {
        json!({
            "index": (index + 1).to_string(),
            "path": path,
            "length": number(length),
            "completedLength": number(completed),
            "selected": selected.to_string(),
            "uris": uris,
        })
    };
    if task.files.is_empty() {
        let path = task
            .name
            .as_deref()
            .map_or_else(String::new, |name| join(&task.dir, name));
        return vec![file(
            0,
            path,
            task.total_length(),
            task.completed_length(),
            true,
        )];
    }
    let single = task.files.len() == 1;
    let complete = task.state == TaskState::Complete;
    task.files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let completed = match () {
                () if single => task.completed_length(),
                () if complete && f.selected => f.length,
                () => 0,
            };
            file(i, join(&task.dir, &f.path), f.length, completed, f.selected)
        })
        .collect()
}

/// `aria2.getUris`'s array for `task` (aria2 manual, RPC interface, `aria2.getUris`:
/// `used` "if the URI is in use", `waiting` "if the URI is still waiting in the
/// queue").
pub fn uris(task: &TaskView) -> Vec<Value> {
    let started = task.state != TaskState::Queued;
    task.uris
        .iter()
        .enumerate()
        .map(|(i, uri)| {
            let status = if i == 0 && started { "used" } else { "waiting" };
            json!({ "status": status, "uri": uri })
        })
        .collect()
}

/// A number as aria2 writes it: a decimal string.
pub(super) fn number(n: u64) -> Value {
    Value::String(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_puts_one_slash() {
        assert_eq!(join("/Movies", "a.mkv"), "/Movies/a.mkv");
        assert_eq!(join("/", "a.mkv"), "/a.mkv");
        assert_eq!(join("/Movies/", "/d/a.mkv"), "/Movies/d/a.mkv");
        assert_eq!(join("", "a.mkv"), "a.mkv");
        assert_eq!(join("/Movies", ""), "/Movies");
    }

    #[test]
    fn completed_length_from_percent_and_bytes() {
        let mut t = TaskView::new(Gid::new(1), TaskState::Running, "/");
        t.total_length = Some(1000);
        t.progress = Progress::Percent(42);
        assert_eq!(t.completed_length(), 420);
        t.progress = Progress::Percent(250);
        assert_eq!(t.completed_length(), 1000);
        t.progress = Progress::Bytes(5000);
        assert_eq!(t.completed_length(), 1000);
        t.total_length = None;
        assert_eq!(t.completed_length(), 5000);
        t.total_length = Some(u64::MAX);
        t.progress = Progress::Percent(100);
        assert_eq!(t.completed_length(), u64::MAX);
        t.state = TaskState::Complete;
        t.total_length = Some(7);
        t.progress = Progress::Bytes(0);
        assert_eq!(t.completed_length(), 7);
    }

    #[test]
    fn the_percent_key_is_answered_only_when_asked_for() {
        let mut t = TaskView::new(Gid::new(1), TaskState::Running, "/");
        t.progress = Progress::Percent(42);
        assert!(status(&t, &[]).get(PERCENT_KEY).is_none());
        let keys = [PERCENT_KEY.to_owned(), "status".to_owned()];
        assert_eq!(
            status(&t, &keys),
            json!({"status": "active", "offlinePercent": "42"})
        );
        t.progress = Progress::Bytes(250);
        t.total_length = Some(1000);
        assert_eq!(t.percent(), 25);
        t.total_length = None;
        assert_eq!(t.percent(), 0);
        t.state = TaskState::Complete;
        assert_eq!(t.percent(), 100);
    }
}
