//! The daemon's task store: the SQLite rows of [`offline_store`] (the CLI's batch
//! journal schema) and the live aria2 view of each, kept in step.
//!
//! A row's `options` hold what it was accepted with (`{"dir", "out", "callback"}`,
//! the last a random token that the task's callback URL carries; a torrent's bytes as
//! standard base64 under `torrent`; for a file of the watch folder, `watch`: the
//! file's name, size and modification time, so that a restart never adds it twice),
//! and its
//! `outcome` how the task ended (`{"status": "complete"|"error"|"removed",
//! "message"}`), so a restart shows every task as it last was and tracks only those
//! still running.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use base64::Engine as _;
use offline_proto::aria2::{
    AddRequest, Downloads, Event, Failure, FailureKind, FileView, Gid, Progress, Queue, StoreError,
    TaskState, TaskView, TorrentInfo,
};
use offline_proto::catalog::{task_hash, Category};
use offline_proto::torrent::Metainfo;
use offline_store::{Entry, Journal, State as Row};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tracing::warn;

use crate::drive::{Accepted, Drive};

/// The setting the categories are kept in: a JSON object, name → save path.
const CATEGORIES: &str = "categories";
/// The setting the tags made with `createTags` are kept in: a JSON array.
const TAGS: &str = "tags";

/// The reason given for a row whose create may or may not have reached the drive.
pub const UNKNOWN_OUTCOME: &str = "the add was sent but its answer was lost: the task may exist on the drive (123pan has no task list to check); not submitted again";

/// One download as the daemon knows it.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) entry: Entry,
    pub(crate) view: TaskView,
    pub(crate) dir: Option<String>,
    pub(crate) out: Option<String>,
    /// The token the task's callback URL carries.
    pub(crate) callback: Option<String>,
    /// The torrent's bytes, base64 (as the row keeps them), for a torrent.
    pub(crate) torrent: Option<String>,
    /// Deleted by a user (qBittorrent `torrents/delete`, Transmission
    /// `torrent-remove`): the drive task (and with `true` its files) still to delete.
    pub(crate) deleting: Option<bool>,
    /// The stored file's ID, once looked up (what a deletion trashes).
    pub(crate) file_id: Option<String>,
}

impl Task {
    /// The paths (within the torrent) of the files to download; `None`: all.
    pub(crate) fn wanted(&self) -> Option<Vec<String>> {
        if self.view.files.iter().all(|f| f.selected) {
            return None;
        }
        Some(
            self.view
                .files
                .iter()
                .filter(|f| f.selected)
                .map(|f| f.path.clone())
                .collect(),
        )
    }
}

/// The store the RPC methods read and change: the SQLite rows and the live view.
pub(crate) struct Store {
    pub(crate) journal: Journal,
    pub(crate) tasks: BTreeMap<Gid, Task>,
    /// GIDs in the order they stopped (`tellStopped` lists the oldest first).
    stopped: Vec<Gid>,
    /// The waiting and the active tasks by the order they were accepted in (so that
    /// `tellWaiting`/`tellActive` cost what they return, not the whole store).
    waiting: BTreeMap<usize, Gid>,
    active: BTreeMap<usize, Gid>,
    default_dir: String,
    kind: &'static str,
    /// Rows whose create may have reached the drive, to look for in its task list
    /// ([`crate::Drive::reconcile`]), with when to look next (a drive that can).
    pub(crate) lost: BTreeMap<Gid, tokio::time::Instant>,
    /// The watch-folder files recorded (`name|size|mtime`), never added twice.
    pub(crate) watched: HashSet<String>,
    /// The notifications of state changes, for every WebSocket.
    pub(crate) events: broadcast::Sender<String>,
    /// Every task by the order it was added (its row's line).
    order: BTreeMap<usize, Gid>,
    /// The tasks by hash and by ID (the torrent-client interfaces' keys); a hash
    /// names the newest task that has it.
    hashes: HashMap<String, Gid>,
    ids: HashMap<u64, Gid>,
    /// The categories by name (the `categories` setting).
    pub(crate) categories: BTreeMap<String, Category>,
    /// The tags made with `createTags` (the `tags` setting).
    pub(crate) tags: BTreeSet<String>,
    /// Deleted tasks whose drive task or files are still to delete.
    pub(crate) deleting: BTreeSet<Gid>,
}

pub(crate) fn gid_of(entry: &Entry) -> Gid {
    Gid::derive(format!("{}#{}", entry.source, entry.occurrence).as_bytes())
}

/// The state a row stands for: its recorded outcome, else its journal state.
fn state_of(entry: &Entry) -> TaskState {
    let outcome: Option<Value> = entry
        .outcome
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok());
    if let Some(outcome) = outcome {
        let message = outcome
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match outcome.get("status").and_then(Value::as_str) {
            Some("complete") => return TaskState::Complete,
            Some("removed" | "deleted") => return TaskState::Removed,
            Some("error") => {
                return TaskState::Failed(Failure {
                    kind: FailureKind::NotFound,
                    message,
                })
            }
            _ => {}
        }
    }
    match entry.state {
        Row::Pending => TaskState::Queued,
        // Left so only for a drive that reconciles (else `open` made it unknown).
        Row::Submitting => TaskState::Submitting,
        Row::Unknown => TaskState::UnknownOutcome,
        Row::Submitted => TaskState::Running,
        Row::Failed => TaskState::Failed(Failure {
            kind: FailureKind::Unknown,
            message: entry.error.clone().unwrap_or_default(),
        }),
    }
}

/// The outcome recorded for a stopped state (`None`: not a stop to record), with
/// when it stopped (`at`, seconds since the Unix epoch).
fn outcome_of(state: &TaskState) -> Option<String> {
    let at = unix_now();
    let value = match state {
        TaskState::Complete => json!({"status": "complete", "at": at}),
        TaskState::Removed => json!({"status": "removed", "at": at}),
        TaskState::Failed(f) => json!({"status": "error", "message": f.message, "at": at}),
        _ => return None,
    };
    Some(value.to_string())
}

/// What a row was accepted with: its options.
#[derive(Default)]
struct Options {
    dir: Option<String>,
    out: Option<String>,
    callback: Option<String>,
    torrent: Option<String>,
    watch: Option<String>,
    category: Option<String>,
    tags: Vec<String>,
    held: bool,
    unwanted: Vec<usize>,
    added: i64,
    /// The files a parse listed (a magnet link's): path and length in bytes.
    files: Vec<(String, u64)>,
}

fn options_of(entry: &Entry) -> Options {
    let parsed: Value = entry
        .options
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or_default();
    let text = |k: &str| parsed.get(k).and_then(Value::as_str).map(str::to_owned);
    let list = |k: &str| {
        parsed
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    Options {
        dir: text("dir"),
        out: text("out"),
        callback: text("callback"),
        torrent: text("torrent"),
        watch: text("watch"),
        category: text("category"),
        tags: list("tags")
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        held: parsed.get("held").and_then(Value::as_bool).unwrap_or(false),
        unwanted: list("unwanted")
            .iter()
            .filter_map(|i| i.as_u64().and_then(|i| usize::try_from(i).ok()))
            .collect(),
        added: parsed.get("added").and_then(Value::as_i64).unwrap_or(0),
        files: list("files")
            .iter()
            .filter_map(|f| Some((f.get(0)?.as_str()?.to_owned(), f.get(1)?.as_u64()?)))
            .collect(),
    }
}

/// Seconds since the Unix epoch on this machine's clock.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A torrent's bytes from the base64 a row keeps.
pub(crate) fn torrent_bytes(base64: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()
}

/// What a torrent says, for the view: its files (paths below `dir`, padding files
/// left out) and its `bittorrent` facts.
fn torrent_view(meta: &Metainfo) -> (Vec<FileView>, TorrentInfo) {
    let files = meta
        .files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| FileView {
            path: f.joined_path(),
            length: f.length,
            selected: true,
        })
        .collect();
    let mut announce_list = meta.announce_list.clone();
    if announce_list.is_empty() {
        announce_list.extend(meta.announce.clone().map(|a| vec![a]));
    }
    let info = TorrentInfo {
        info_hash: Some(meta.info_hash),
        name: Some(meta.name.clone()),
        multi_file: meta.multi_file,
        announce_list,
        comment: meta.comment.clone(),
        creation_date: meta.creation_date,
        piece_length: Some(meta.piece_length),
    };
    (files, info)
}

/// What a magnet link says, for the view: its infohash (40 hex digits) and `dn`.
fn magnet_view(link: &str) -> Option<TorrentInfo> {
    let query = link.strip_prefix("magnet:?")?;
    let mut info = TorrentInfo {
        info_hash: offline_proto::torrent::magnet_info_hash(link),
        ..TorrentInfo::default()
    };
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if key == "dn" {
            info.name = Some(percent_decode(value));
        }
    }
    Some(info)
}

/// `%XX` and `+` decoded (lossy UTF-8).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn store_error(e: rusqlite::Error) -> StoreError {
    StoreError(format!("the task store could not record it: {e}"))
}

impl Store {
    /// Opens the store at `path` and rebuilds every task's view. A row left
    /// `submitting` (the create may have reached the drive) becomes `unknown`, unless
    /// the drive `reconciles`: then it, and every `unknown` row not ended, is to be
    /// looked for in the drive's task list ([`Store::lost`]).
    pub(crate) fn open(
        path: &Path,
        default_dir: String,
        kind: &'static str,
        reconciles: bool,
    ) -> rusqlite::Result<Self> {
        let journal = Journal::open(path)?;
        let mut store = Self {
            journal,
            tasks: BTreeMap::new(),
            stopped: Vec::new(),
            waiting: BTreeMap::new(),
            active: BTreeMap::new(),
            default_dir,
            kind,
            lost: BTreeMap::new(),
            watched: HashSet::new(),
            events: broadcast::channel(1024).0,
            order: BTreeMap::new(),
            hashes: HashMap::new(),
            ids: HashMap::new(),
            categories: BTreeMap::new(),
            tags: BTreeSet::new(),
            deleting: BTreeSet::new(),
        };
        store.load_settings()?;
        let now = tokio::time::Instant::now();
        for entry in store.journal.all()? {
            if reconciles
                && matches!(entry.state, Row::Submitting | Row::Unknown)
                && entry.outcome.is_none()
            {
                // Looked for in the task list before anything else is submitted.
                let task = store.task_of(entry);
                store.lost.insert(task.view.gid, now);
                store.insert(task);
                continue;
            }
            // A create in flight when the process stopped: it may exist; never resent.
            let entry = if entry.state == Row::Submitting {
                store
                    .journal
                    .set(&entry, Row::Unknown, None, Some(UNKNOWN_OUTCOME))?;
                Entry {
                    state: Row::Unknown,
                    error: Some(UNKNOWN_OUTCOME.to_owned()),
                    ..entry
                }
            } else {
                entry
            };
            let task = store.task_of(entry);
            store.insert(task);
        }
        Ok(store)
    }

    /// Reads the categories and the tags made from the settings.
    fn load_settings(&mut self) -> rusqlite::Result<()> {
        let read = |key: &str| -> rusqlite::Result<Value> {
            Ok(self
                .journal
                .setting(key)?
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default())
        };
        let categories = read(CATEGORIES)?;
        let tags = read(TAGS)?;
        if let Some(map) = categories.as_object() {
            for (name, path) in map {
                let save_path = path.as_str().unwrap_or_default().to_owned();
                self.categories.insert(name.clone(), Category { save_path });
            }
        }
        if let Some(list) = tags.as_array() {
            self.tags = list
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
        }
        Ok(())
    }

    /// Writes the categories and the tags made to the settings.
    pub(crate) fn save_settings(&self) -> rusqlite::Result<()> {
        let categories: serde_json::Map<String, Value> = self
            .categories
            .iter()
            .map(|(name, c)| (name.clone(), json!(c.save_path)))
            .collect();
        self.journal
            .set_setting(CATEGORIES, Some(&Value::Object(categories).to_string()))?;
        self.journal
            .set_setting(TAGS, Some(&json!(self.tags).to_string()))
    }

    /// Adds a task to the map and to the queue its state says.
    fn insert(&mut self, task: Task) {
        if let Some(watch) = options_of(&task.entry).watch {
            self.watched.insert(watch);
        }
        let (gid, line, queue) = (task.view.gid, task.entry.line, task.view.state.queue());
        self.order.insert(line, gid);
        self.hashes.insert(task.view.hash.clone(), gid);
        self.ids.insert(task.view.id, gid);
        if task.deleting.is_some() {
            self.deleting.insert(gid);
        }
        self.tasks.insert(gid, task);
        match queue {
            Queue::Waiting => {
                self.waiting.insert(line, gid);
            }
            Queue::Active => {
                self.active.insert(line, gid);
            }
            Queue::Stopped => self.stopped.push(gid),
        }
    }

    fn task_of(&self, entry: Entry) -> Task {
        let Options {
            dir,
            out,
            callback,
            torrent,
            watch: _,
            category,
            tags,
            held,
            unwanted,
            added,
            files,
        } = options_of(&entry);
        let shown = dir.clone().unwrap_or_else(|| self.default_dir.clone());
        let mut view = TaskView::new(gid_of(&entry), state_of(&entry), shown);
        view.id = u64::try_from(entry.line).unwrap_or(u64::MAX);
        view.category = category;
        view.tags = tags;
        view.held = held && view.state == TaskState::Queued;
        view.added_on = added;
        let meta = torrent
            .as_deref()
            .and_then(torrent_bytes)
            .and_then(|b| Metainfo::from_bytes(&b).ok());
        if let Some(meta) = &meta {
            // A torrent: no URIs (as aria2 shows one), its files and facts.
            let (files, info) = torrent_view(meta);
            view.files = files;
            view.torrent = Some(info);
            view.total_length = Some(meta.total_length);
        } else {
            view.uris = vec![entry.source.clone()];
            if entry.source.to_ascii_lowercase().starts_with("magnet:") {
                view.torrent = magnet_view(&entry.source);
            }
            if files.len() > 1 || view.torrent.is_some() {
                view.files = files
                    .into_iter()
                    .map(|(path, length)| FileView {
                        path,
                        length,
                        selected: true,
                    })
                    .collect();
            }
        }
        for index in unwanted {
            if let Some(f) = view.files.get_mut(index) {
                f.selected = false;
            }
        }
        view.hash = task_hash(
            view.torrent.as_ref().and_then(|t| t.info_hash),
            &entry.source,
            entry.occurrence.saturating_sub(1),
        );
        let guessed = || {
            if view.torrent.is_some() {
                view.torrent.as_ref().and_then(|t| t.name.clone())
            } else {
                Some(offline_proto::pan123::url_stored_name(&entry.source))
            }
        };
        view.name = out.clone().or_else(|| entry.name.clone()).or_else(guessed);
        view.progress = Progress::Percent(if view.state == TaskState::Complete {
            100
        } else {
            0
        });
        let outcome: Value = entry
            .outcome
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        if let Some(name) = outcome.get("name").and_then(Value::as_str) {
            view.name = Some(name.to_owned());
        }
        view.total_length = outcome
            .get("length")
            .and_then(Value::as_u64)
            .or(view.total_length);
        view.completed_on = outcome.get("at").and_then(Value::as_i64);
        let deleting =
            (outcome.get("status").and_then(Value::as_str) == Some("deleted")).then(|| {
                outcome
                    .get("files")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            });
        let file_id = outcome
            .get("file")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Task {
            entry,
            view,
            dir,
            out,
            callback,
            torrent,
            deleting,
            file_id,
        }
    }

    /// The folder shown for a task with no `dir`.
    pub(crate) fn default_dir(&self) -> &str {
        &self.default_dir
    }

    /// Every task's view, in the order added.
    pub(crate) fn in_order(&self) -> impl Iterator<Item = &TaskView> + '_ {
        self.order
            .values()
            .filter_map(|g| self.tasks.get(g))
            .map(|t| &t.view)
    }

    /// The GID of the newest task with this hash (lower-case).
    pub(crate) fn gid_by_hash(&self, hash: &str) -> Option<&Gid> {
        self.hashes.get(hash)
    }

    /// The GID of the task with this ID.
    pub(crate) fn gid_by_id(&self, id: u64) -> Option<&Gid> {
        self.ids.get(&id)
    }

    /// Forgets a task and its row now.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the row cannot be deleted.
    pub(crate) fn remove_now(&mut self, gid: Gid) -> Result<(), StoreError> {
        let Some(task) = self.tasks.get(&gid) else {
            return Ok(());
        };
        self.journal.remove(&task.entry).map_err(store_error)?;
        self.stopped.retain(|g| *g != gid);
        if let Some(task) = self.forget(gid) {
            self.waiting.remove(&task.entry.line);
            self.active.remove(&task.entry.line);
        }
        Ok(())
    }

    /// Records the files a parse listed for a task whose files were not known (a
    /// magnet link's), in its options and its view.
    pub(crate) fn set_parsed_files(&mut self, gid: Gid, files: &[(String, u64)]) {
        let Some(task) = self.tasks.get_mut(&gid) else {
            return;
        };
        if !task.view.files.is_empty() || files.is_empty() || task.torrent.is_some() {
            return;
        }
        if task.view.torrent.is_none() && files.len() < 2 {
            return;
        }
        task.view.files = files
            .iter()
            .map(|(path, length)| FileView {
                path: path.clone(),
                length: *length,
                selected: true,
            })
            .collect();
        let value = json!(files);
        if let Err(e) = self.set_option(gid, "files", Some(value)) {
            warn!(error = %e, "cannot record a task's files in the task store");
        }
    }

    /// Marks a removed task as deleted by a user (`outcome`), its drive task (and
    /// with `files` its stored file) still to delete ([`Store::deleting`]).
    pub(crate) fn set_deleting(&mut self, gid: Gid, outcome: &str, files: bool) {
        let Some(task) = self.tasks.get_mut(&gid) else {
            return;
        };
        if let Err(e) = self.journal.set_outcome(&task.entry, Some(outcome)) {
            warn!(error = %e, "cannot record a deletion in the task store");
        }
        task.entry.outcome = Some(outcome.to_owned());
        task.deleting = Some(files);
        self.deleting.insert(gid);
    }

    /// The task IDs the rows hold (a reconciliation never takes one of them).
    pub(crate) fn task_ids(&self) -> BTreeSet<String> {
        self.tasks
            .values()
            .filter_map(|t| t.entry.task.clone())
            .collect()
    }

    /// The tasks of `queue` in its order.
    pub(crate) fn in_queue(&self, queue: Queue) -> impl Iterator<Item = &Task> + '_ {
        let gids: Box<dyn Iterator<Item = &Gid> + '_> = match queue {
            Queue::Stopped => Box::new(self.stopped.iter()),
            Queue::Waiting => Box::new(self.waiting.values()),
            Queue::Active => Box::new(self.active.values()),
        };
        gids.filter_map(|g| self.tasks.get(g))
    }

    /// Moves a task to `state`: the notifications go out, a stop is recorded in the
    /// row (so that a restart shows it as it ended), and the stopped queue keeps the
    /// order of stops.
    pub(crate) fn set_state(&mut self, gid: Gid, state: TaskState) {
        let Some(task) = self.tasks.get_mut(&gid) else {
            return;
        };
        if task.view.state == state {
            return;
        }
        let (was, line) = (task.view.state.queue(), task.entry.line);
        for event in Event::between(Some(&task.view.state), &state, task.view.torrent.is_some()) {
            // No receiver (no WebSocket open) is not an error.
            let _ = self.events.send(event.notification(gid));
        }
        if let Some(outcome) = outcome_of(&state) {
            if let Err(e) = self.journal.set_outcome(&task.entry, Some(&outcome)) {
                warn!(error = %e, "cannot record an outcome in the task store");
            }
            task.entry.outcome = Some(outcome);
            if state != TaskState::Removed {
                task.view.completed_on = Some(unix_now());
            }
        }
        if state == TaskState::Complete {
            task.view.progress = Progress::Percent(100);
        }
        let now = state.queue();
        task.view.state = state;
        if was == now {
            return;
        }
        match was {
            Queue::Waiting => self.waiting.remove(&line),
            Queue::Active => self.active.remove(&line),
            Queue::Stopped => None,
        };
        match now {
            Queue::Waiting => self.waiting.insert(line, gid),
            Queue::Active => self.active.insert(line, gid),
            Queue::Stopped => {
                self.stopped.push(gid);
                None
            }
        };
    }

    /// Records a row's journal state (and task ID) and moves its view to `state`.
    pub(crate) fn record(
        &mut self,
        gid: Gid,
        row: Row,
        task_id: Option<&str>,
        reason: Option<&str>,
        state: TaskState,
    ) {
        if let Some(task) = self.tasks.get_mut(&gid) {
            if let Err(e) = self.journal.set(&task.entry, row, task_id, reason) {
                warn!(error = %e, "cannot record a state in the task store");
            }
            task.entry.state = row;
            if let Some(id) = task_id {
                task.entry.task = Some(id.to_owned());
            }
            task.entry.error = reason.map(str::to_owned);
        }
        self.set_state(gid, state);
    }

    /// Records the file a completed task stored: its name and length in bytes (shown
    /// as `totalLength`, `completedLength` and `files[].path`, and kept in the row's
    /// outcome for a restart).
    pub(crate) fn set_stored(&mut self, gid: Gid, stored: &crate::drive::Stored) {
        let Some(task) = self.tasks.get_mut(&gid) else {
            return;
        };
        let (name, length) = (&stored.name, stored.length);
        task.view.name = Some(name.clone());
        task.view.total_length = Some(length);
        task.file_id.clone_from(&stored.file_id);
        if task.view.state == TaskState::Complete {
            let at = task.view.completed_on.unwrap_or_else(unix_now);
            let outcome = json!({
                "status": "complete", "name": name, "length": length, "at": at,
                "file": stored.file_id,
            });
            let outcome = outcome.to_string();
            if let Err(e) = self.journal.set_outcome(&task.entry, Some(&outcome)) {
                warn!(error = %e, "cannot record an outcome in the task store");
            }
            task.entry.outcome = Some(outcome);
        }
    }

    /// Records that a task's create may or may not have reached the drive, with what
    /// to check (`reason`): the row `unknown`, the view an aria2 error saying so.
    pub(crate) fn record_unknown(&mut self, gid: Gid, reason: &str) {
        self.record(
            gid,
            Row::Unknown,
            None,
            Some(reason),
            TaskState::UnknownOutcome,
        );
    }

    /// The task whose callback URL carries `token` under `gid`.
    pub(crate) fn by_callback(&self, gid: Gid, token: &str) -> Option<&Task> {
        self.tasks
            .get(&gid)
            .filter(|t| t.callback.as_deref().is_some_and(|c| c == token))
    }
}

/// What a torrent-client interface adds beside an [`AddRequest`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Extras {
    pub(crate) category: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) held: bool,
    pub(crate) unwanted: Vec<usize>,
}

/// The store with the drive whose rules decide what is accepted: what
/// [`offline_proto::aria2::handle_body`] reads and changes.
pub(crate) struct WithDrive<'a, D: Drive> {
    pub(crate) store: &'a mut Store,
    pub(crate) drive: &'a D,
}

impl<D: Drive> Downloads for WithDrive<'_, D> {
    fn add(&mut self, request: AddRequest) -> Result<Gid, StoreError> {
        let accepted = self.drive.accept(&request)?;
        self.store.add(request, accepted, None)
    }

    fn task(&self, gid: Gid) -> Option<TaskView> {
        self.store.task(gid)
    }

    fn count(&self, queue: Queue) -> usize {
        self.store.count(queue)
    }

    fn list(&self, queue: Queue, range: Range<usize>) -> Vec<&TaskView> {
        self.store.list(queue, range)
    }

    fn remove(&mut self, gid: Gid, force: bool) -> Result<(), StoreError> {
        self.store.remove(gid, force)
    }

    fn remove_result(&mut self, gid: Gid) -> Result<(), StoreError> {
        self.store.remove_result(gid)
    }

    fn purge_results(&mut self) {
        self.store.purge_results();
    }
}

impl Store {
    /// Records a download the drive accepted (committed before this returns);
    /// `watch` names the watch-folder file it came from (`name|size|mtime`).
    pub(crate) fn add(
        &mut self,
        request: AddRequest,
        accepted: Accepted,
        watch: Option<&str>,
    ) -> Result<Gid, StoreError> {
        self.add_with(request, accepted, watch, &Extras::default())
    }

    /// [`Store::add`] with what a torrent-client interface adds.
    pub(crate) fn add_with(
        &mut self,
        request: AddRequest,
        accepted: Accepted,
        watch: Option<&str>,
        extras: &Extras,
    ) -> Result<Gid, StoreError> {
        let Accepted {
            source,
            name,
            torrent,
        } = accepted;
        let entry = self
            .journal
            .append(&source, self.kind)
            .map_err(store_error)?;
        let callback = format!("{:032x}", rand::random::<u128>());
        let mut options = json!({"dir": request.dir, "out": request.out, "callback": callback});
        if let Some(bytes) = &torrent {
            options["torrent"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        if let Some(watch) = watch {
            options["watch"] = json!(watch);
        }
        options["added"] = json!(unix_now());
        if let Some(category) = &extras.category {
            options["category"] = json!(category);
        }
        if !extras.tags.is_empty() {
            options["tags"] = json!(extras.tags);
        }
        if extras.held {
            options["held"] = json!(true);
        }
        if !extras.unwanted.is_empty() {
            options["unwanted"] = json!(extras.unwanted);
        }
        self.journal
            .set_options(&entry, &options.to_string())
            .map_err(store_error)?;
        if let Some(name) = &name {
            self.journal
                .set_name(&entry, name, None)
                .map_err(store_error)?;
        }
        let entry = Entry {
            options: Some(options.to_string()),
            name,
            ..entry
        };
        let task = self.task_of(entry);
        let gid = task.view.gid;
        self.insert(task);
        Ok(gid)
    }

    pub(crate) fn task(&self, gid: Gid) -> Option<TaskView> {
        self.tasks.get(&gid).map(|t| t.view.clone())
    }

    pub(crate) fn count(&self, queue: Queue) -> usize {
        match queue {
            Queue::Stopped => self.stopped.len(),
            Queue::Waiting => self.waiting.len(),
            Queue::Active => self.active.len(),
        }
    }

    pub(crate) fn list(&self, queue: Queue, range: Range<usize>) -> Vec<&TaskView> {
        self.in_queue(queue)
            .skip(range.start)
            .take(range.end.saturating_sub(range.start))
            .map(|t| &t.view)
            .collect()
    }

    pub(crate) fn remove(&mut self, gid: Gid, _force: bool) -> Result<(), StoreError> {
        let task = self
            .tasks
            .get(&gid)
            .ok_or_else(|| StoreError(format!("GID#{gid} is not found")))?;
        if task.entry.state == Row::Pending {
            // Never sent: it is dropped from the queue for good.
            self.journal
                .set(
                    &task.entry,
                    Row::Failed,
                    None,
                    Some("removed before it was submitted"),
                )
                .map_err(store_error)?;
            if let Some(t) = self.tasks.get_mut(&gid) {
                t.entry.state = Row::Failed;
            }
        }
        // A task on the drive keeps running there (123pan has no cancel call); this
        // daemon only stops tracking it.
        self.set_state(gid, TaskState::Removed);
        Ok(())
    }

    /// Drops a task from the map and every index (not from the rows).
    fn forget(&mut self, gid: Gid) -> Option<Task> {
        let task = self.tasks.remove(&gid)?;
        self.order.remove(&task.entry.line);
        if self.hashes.get(&task.view.hash) == Some(&gid) {
            self.hashes.remove(&task.view.hash);
        }
        self.ids.remove(&task.view.id);
        self.deleting.remove(&gid);
        self.lost.remove(&gid);
        Some(task)
    }

    pub(crate) fn remove_result(&mut self, gid: Gid) -> Result<(), StoreError> {
        if self.deleting.contains(&gid) {
            return Err(StoreError(format!(
                "GID#{gid} is being deleted on the drive; it goes once that is done"
            )));
        }
        if !self.tasks.contains_key(&gid) {
            return Err(StoreError(format!("GID#{gid} is not found")));
        }
        self.remove_now(gid)
    }

    pub(crate) fn purge_results(&mut self) {
        for gid in std::mem::take(&mut self.stopped) {
            if self.deleting.contains(&gid) {
                // Still to delete on the drive: kept until then.
                self.stopped.push(gid);
                continue;
            }
            if let Some(task) = self.forget(gid) {
                if let Err(e) = self.journal.remove(&task.entry) {
                    warn!(error = %e, "cannot remove a download result from the store");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnets_and_percent_decoding() {
        let info = magnet_view(
            "magnet:?xt=urn:btih:0123456789ABCDEF0123456789abcdef01234567&dn=a%20b+c&tr=x",
        )
        .unwrap();
        assert_eq!(
            info.info_hash.unwrap().to_string(),
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(info.name.as_deref(), Some("a b c"));
        assert_eq!(magnet_view("https://a/b"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%e4%b8%ad"), "中");
    }
}
