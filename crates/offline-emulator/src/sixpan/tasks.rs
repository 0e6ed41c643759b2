//! Offline tasks: `/v2/offline/add`, `/v2/offline/page`, `/v2/offline/delete`, and the
//! work behind them.
//!
//! - An http(s) link is really downloaded (redirects followed, as for 123pan) into
//!   `<data_dir>/6pan/downloads/<task identity>/`.
//! - A torrent parsed from the drive whose `url-list` has a web seed on loopback is
//!   downloaded file by file from that web seed, every piece seen whole checked
//!   against its SHA-1 and every file's size checked; only the files not listed in
//!   `iginreFiles` are fetched.
//! - Anything else (a magnet link, an ed2k link, a torrent without a loopback web seed)
//!   progresses linearly over `sixpan_simulated_duration` (10 s by default: +10 % per
//!   second) to done, storing nothing.
//!
//! Every downloaded file becomes a file of the drive (in the task's folder) and a
//! stored blob, so that a later `/v1/store/token` with its etag is an instant upload.
//!
//! Status: `100` while running; `1000` when every file is stored; `900` when some files
//! were skipped (`iginreFiles`) or failed and at least one was stored; `-1` when the
//! download failed (or every file failed).
//!
//! A listed task carries what Mrs4s/six-cli's `SixOfflineTask` reads: a failed task
//! its reason as `errorCode` ([`ERROR_DOWNLOAD_FAILED`], the emulator's choice: no
//! source documents the codes) and `errorMessage` (a partly done one the message of
//! the files that failed), a finished one (done or partly done) `accessPath`, the
//! drive path of what it stored (`<folder>/<task name>`); `data` is a JSON string
//! `{user, path, url, files}` (the Android client's `OfflineData` reads `user` and
//! `path`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offline_proto::qetag::{Etag, Qetag};
use offline_proto::sixpan::tasks::UserIdentity;
use offline_proto::sixpan::{
    AddResult, DeleteRequest, EndpointId, OfflineTask, PageRequest, TaskPage, TaskStatus, TaskType,
};
use offline_proto::torrent::Metainfo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tracing::{debug, info, warn};
use url::Url;

use super::offline::{path_identity, INTERNAL_SCHEME, TYPE_BT, TYPE_ED2K, TYPE_HTTP};
use super::webseed::{file_url, loopback_seed, PieceVerifier};
use super::{
    conform, normalize_folder, parse_json, to_value, Answer, ApiError, SixpanState,
    IDENTITY_INVALID,
};
use crate::common::fetch::{
    cancelled, open_source, remove_quietly, running_process, sanitize_file_name, size_text,
    stream_to_file, MAX_PIECE,
};
use crate::common::{lock, random_hex};

/// The largest page; a larger `pageSize` is clamped to it.
pub(super) const MAX_PAGE_SIZE: u32 = 100;
/// Folder of downloads under `<data_dir>/6pan`.
const DOWNLOADS: &str = "downloads";
/// The failure reason of a download whose task was deleted.
const DELETED: &str = "task deleted";
/// The `errorCode` of a failed task (the emulator's choice: no source documents the
/// codes, Mrs4s/six-cli reads an `int32`).
const ERROR_DOWNLOAD_FAILED: i32 = 1;

/// What a 6pan task downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SixpanTaskKind {
    /// An http(s) link (type 5020), really downloaded.
    Http,
    /// A torrent parsed from the drive (type 5030): downloaded through a loopback web
    /// seed when it has one, else simulated.
    Torrent,
    /// A magnet link (type 5030), simulated.
    Magnet,
    /// An ed2k link (type 5040), simulated.
    Ed2k,
}

/// Everything the emulator knows about one 6pan task, as seen at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SixpanTaskSnapshot {
    /// The task's identity (32 hex digits), as `/v2/offline/page` lists it.
    pub identity: String,
    /// The task's name: the torrent's name, the link's file name or `dn`.
    pub name: String,
    /// What the task downloads.
    pub kind: SixpanTaskKind,
    /// The wire type code (5020, 5030, 5040).
    pub type_code: i64,
    /// The status code: `-1` failed, `100` downloading, `900` partly done, `1000` done.
    pub status: TaskStatus,
    /// Progress in percent, 0 to 100.
    pub progress: f64,
    /// Bytes to download (the selected files of a torrent); 0 when not known.
    pub size: u64,
    /// Bytes downloaded so far.
    pub download_size: u64,
    /// The source: the link, or `qingzhen-internal://<etag>` for a torrent in the drive.
    pub url: String,
    /// The drive folder the task downloads into.
    pub folder: String,
    /// The torrent paths (`name/dir/file`) of the files selected; empty for links.
    pub selected_files: Vec<String>,
    /// Where the downloaded files are stored on disk.
    pub stored_paths: Vec<PathBuf>,
    /// Why the task (or some of its files) failed.
    pub fail_reason: Option<String>,
    /// When the task was added, ms since the epoch.
    pub create_time: i64,
}

/// How a task advances.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// A worker is downloading.
    Fetching,
    /// Progress grows with time from `started`.
    Simulated { started: Instant },
    /// Over.
    Ended(TaskStatus),
}

#[derive(Debug, Clone)]
struct Task {
    identity: String,
    name: String,
    kind: SixpanTaskKind,
    type_code: i64,
    url: String,
    folder: String,
    create_time: i64,
    size: u64,
    size_known: bool,
    downloaded: u64,
    run: Run,
    selected: Vec<String>,
    skipped: bool,
    stored: Vec<PathBuf>,
    fail_reason: Option<String>,
}

impl Task {
    /// Status, progress and downloaded bytes at `now`.
    fn view(&self, now: Instant, simulated: Duration) -> (TaskStatus, f64, u64) {
        let finished = if self.skipped {
            TaskStatus::PartlyDone
        } else {
            TaskStatus::Done
        };
        match self.run {
            Run::Fetching => (
                TaskStatus::Downloading,
                running_process(self.downloaded, self.size_known.then_some(self.size)),
                self.downloaded,
            ),
            Run::Simulated { started } => {
                let fraction = if simulated.is_zero() {
                    1.0
                } else {
                    (now.duration_since(started).as_secs_f64() / simulated.as_secs_f64()).min(1.0)
                };
                if fraction >= 1.0 {
                    (finished, 100.0, self.size)
                } else {
                    // A fraction of a size: precision loss does not matter here.
                    #[allow(
                        clippy::cast_precision_loss,
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss
                    )]
                    let done = (self.size as f64 * fraction) as u64;
                    (TaskStatus::Downloading, fraction * 100.0, done)
                }
            }
            Run::Ended(TaskStatus::Failed) => (TaskStatus::Failed, 0.0, self.downloaded),
            Run::Ended(status) => (status, 100.0, self.downloaded),
        }
    }

    fn snapshot(&self, now: Instant, simulated: Duration) -> SixpanTaskSnapshot {
        let (status, progress, download_size) = self.view(now, simulated);
        SixpanTaskSnapshot {
            identity: self.identity.clone(),
            name: self.name.clone(),
            kind: self.kind,
            type_code: self.type_code,
            status,
            progress,
            size: self.size,
            download_size,
            url: self.url.clone(),
            folder: self.folder.clone(),
            selected_files: self.selected.clone(),
            stored_paths: self.stored.clone(),
            fail_reason: self.fail_reason.clone(),
            create_time: self.create_time,
        }
    }
}

/// The tasks, oldest first.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    list: Vec<Task>,
}

/// `POST /v2/offline/add` body. The generated `AddRequest` reads each identity with
/// `Identity::parse`; this one keeps the strings so that a bad blob is answered
/// `IDENTITY_INVALID` rather than as a malformed body.
#[derive(Debug, Deserialize)]
struct AddBody {
    path: String,
    task: Vec<AddTaskBody>,
}

#[derive(Debug, Deserialize)]
struct AddTaskBody {
    identity: String,
    #[serde(rename = "iginreFiles", default)]
    ignore_files: Option<Vec<String>>,
}

/// What a verified identity asks for.
enum Plan {
    Http {
        url: String,
    },
    Torrent {
        meta: Box<Metainfo>,
        selected: Vec<bool>,
        seed: Url,
    },
    Simulated,
}

struct Prepared {
    name: String,
    kind: SixpanTaskKind,
    type_code: i64,
    url: String,
    size: u64,
    selected: Vec<String>,
    skipped: bool,
    plan: Plan,
}

/// A file a torrent task stored.
struct Fetched {
    target: PathBuf,
    etag: Etag,
    size: u64,
    components: Vec<String>,
    end: u64,
}

impl SixpanState {
    /// Every task, oldest first.
    pub(crate) fn tasks(&self) -> Vec<SixpanTaskSnapshot> {
        let now = self.env.now();
        lock(&self.tasks)
            .list
            .iter()
            .map(|t| t.snapshot(now, self.simulated_duration))
            .collect()
    }

    /// Changes a task in place; `None` when it is gone (deleted).
    fn with_task<R>(&self, identity: &str, f: impl FnOnce(&mut Task) -> R) -> Option<R> {
        lock(&self.tasks)
            .list
            .iter_mut()
            .find(|t| t.identity == identity)
            .map(f)
    }

    /// `POST /v2/offline/add`: checks every identity, then creates one task per entry.
    pub(super) async fn add(self: &Arc<Self>, body: &[u8]) -> Answer {
        let (request, json): (AddBody, _) = parse_json(body)?;
        if request.task.is_empty() {
            return Err(ApiError::parameter("task must list at least one task"));
        }
        let folder = normalize_folder(&request.path);
        let mut objects = Vec::with_capacity(request.task.len());
        for (i, task) in request.task.iter().enumerate() {
            objects.push(self.verify_identity(&task.identity).map_err(|why| {
                ApiError::bad(
                    IDENTITY_INVALID,
                    format!("identity of task #{i} is invalid: {why}"),
                )
            })?);
        }
        conform(EndpointId::AddTasks, &json)?;
        let mut prepared = Vec::with_capacity(request.task.len());
        for (i, (task, object)) in request.task.iter().zip(&objects).enumerate() {
            prepared.push(
                self.prepare(i, object, task.ignore_files.as_deref().unwrap_or(&[]))
                    .await?,
            );
        }
        let count = prepared.len() as u64;
        for task in prepared {
            self.start(task, &folder);
        }
        to_value(&AddResult {
            success: true,
            count,
        })
    }

    async fn prepare(
        &self,
        i: usize,
        object: &Map<String, Value>,
        ignore: &[String],
    ) -> Result<Prepared, ApiError> {
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let type_code = match object.get("type") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or_default();
        let url = text("url");
        let name = Some(text("name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| text("identity"));
        let simulated = |kind, size| Prepared {
            name: name.clone(),
            kind,
            type_code,
            url: url.clone(),
            size,
            selected: Vec::new(),
            skipped: false,
            plan: Plan::Simulated,
        };
        match type_code {
            TYPE_HTTP => {
                if !Url::parse(&url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                    return Err(ApiError::bad(
                        IDENTITY_INVALID,
                        format!("identity of task #{i} names no http(s) URL"),
                    ));
                }
                Ok(Prepared {
                    plan: Plan::Http { url: url.clone() },
                    ..simulated(SixpanTaskKind::Http, 0)
                })
            }
            TYPE_BT if url.starts_with(INTERNAL_SCHEME) => {
                let meta = self.load_torrent(&url[INTERNAL_SCHEME.len()..]).await?;
                let info_hash = meta.info_hash.to_string();
                let ignore: HashSet<&str> = ignore.iter().map(String::as_str).collect();
                let mut selected = vec![false; meta.files.len()];
                let mut paths = Vec::new();
                let mut size = 0u64;
                let mut skipped = false;
                for file in meta.files.iter().filter(|f| !f.padding) {
                    if ignore.contains(path_identity(&info_hash, file.index).as_str()) {
                        skipped = true;
                    } else {
                        selected[file.index] = true;
                        paths.push(file.joined_path());
                        size += file.length;
                    }
                }
                if paths.is_empty() {
                    return Err(ApiError::parameter(format!(
                        "iginreFiles of task #{i} skips every file of the torrent"
                    )));
                }
                let plan = match loopback_seed(&meta) {
                    Some(seed) => Plan::Torrent {
                        meta: Box::new(meta),
                        selected,
                        seed,
                    },
                    None => Plan::Simulated,
                };
                Ok(Prepared {
                    selected: paths,
                    skipped,
                    plan,
                    ..simulated(SixpanTaskKind::Torrent, size)
                })
            }
            TYPE_BT => Ok(simulated(SixpanTaskKind::Magnet, 0)),
            TYPE_ED2K => {
                let size = object
                    .get("size")
                    .and_then(Value::as_u64)
                    .unwrap_or_default();
                Ok(simulated(SixpanTaskKind::Ed2k, size))
            }
            other => Err(ApiError::bad(
                IDENTITY_INVALID,
                format!(
                    "identity of task #{i} has type {other}, which this server does not download"
                ),
            )),
        }
    }

    /// Records a task and starts its work.
    fn start(self: &Arc<Self>, prepared: Prepared, folder: &str) {
        let identity = random_hex(16);
        let run = match prepared.plan {
            Plan::Simulated => Run::Simulated {
                started: self.env.now(),
            },
            Plan::Http { .. } | Plan::Torrent { .. } => Run::Fetching,
        };
        lock(&self.tasks).list.push(Task {
            identity: identity.clone(),
            name: prepared.name.clone(),
            kind: prepared.kind,
            type_code: prepared.type_code,
            url: prepared.url,
            folder: folder.to_owned(),
            create_time: self.env.now_ms(),
            size: prepared.size,
            size_known: prepared.kind != SixpanTaskKind::Http,
            downloaded: 0,
            run,
            selected: prepared.selected,
            skipped: prepared.skipped,
            stored: Vec::new(),
            fail_reason: None,
        });
        self.tasks_created.fetch_add(1, Ordering::Relaxed);
        info!(task = %identity, kind = ?prepared.kind, "6pan task created");
        let state = Arc::clone(self);
        let folder = folder.to_owned();
        match prepared.plan {
            Plan::Simulated => {}
            Plan::Http { url } => {
                let name = prepared.name;
                self.env
                    .spawn_worker(async move { state.run_http(identity, url, name, folder).await });
            }
            Plan::Torrent {
                meta,
                selected,
                seed,
            } => {
                self.env.spawn_worker(async move {
                    state
                        .run_torrent(identity, *meta, selected, seed, folder)
                        .await;
                });
            }
        }
    }

    /// Ends a task with `status`.
    fn end_task(
        &self,
        identity: &str,
        status: TaskStatus,
        reason: Option<String>,
        stored: Vec<PathBuf>,
    ) {
        self.with_task(identity, |t| {
            t.run = Run::Ended(status);
            t.fail_reason = reason;
            t.stored = stored;
        });
        info!(task = %identity, status = status.code(), "6pan task ended");
    }

    async fn run_http(
        self: Arc<Self>,
        identity: String,
        url: String,
        name: String,
        folder: String,
    ) {
        let mut shutdown = self.env.shutdown.clone();
        let dir = self.dir(DOWNLOADS).join(&identity);
        let target = dir.join(sanitize_file_name(&name));
        let result = tokio::select! {
            r = self.fetch_to(&identity, &url, &target, None, None) => r,
            () = cancelled(&mut shutdown) => Err("emulator shut down".to_owned()),
        };
        match result {
            Ok((size, etag)) => {
                self.add_blob(etag, target.clone(), size);
                self.create_file(etag, &folder, &name, size);
                self.with_task(&identity, |t| {
                    t.size = size;
                    t.size_known = true;
                    t.downloaded = size;
                });
                self.end_task(&identity, TaskStatus::Done, None, vec![target]);
            }
            Err(reason) => {
                remove_dir_quietly(&dir).await;
                if reason != DELETED {
                    self.end_task(&identity, TaskStatus::Failed, Some(reason), Vec::new());
                }
            }
        }
    }

    async fn run_torrent(
        self: Arc<Self>,
        identity: String,
        meta: Metainfo,
        selected: Vec<bool>,
        seed: Url,
        folder: String,
    ) {
        let mut shutdown = self.env.shutdown.clone();
        let dir = self.dir(DOWNLOADS).join(&identity);
        let outcome = tokio::select! {
            o = self.fetch_torrent(&identity, &meta, &selected, &seed, &dir) => o,
            () = cancelled(&mut shutdown) => Err("emulator shut down".to_owned()),
        };
        let (fetched, failed) = match outcome {
            Ok(done) => done,
            Err(reason) => {
                remove_dir_quietly(&dir).await;
                if reason != DELETED {
                    self.end_task(&identity, TaskStatus::Failed, Some(reason), Vec::new());
                }
                return;
            }
        };
        let mut stored = Vec::with_capacity(fetched.len());
        for file in fetched {
            self.add_blob(file.etag, file.target.clone(), file.size);
            let (name, dirs) = file
                .components
                .split_last()
                .map_or((String::new(), &[][..]), |(n, d)| (n.clone(), d));
            let in_folder = normalize_folder(&format!("{folder}/{}", dirs.join("/")));
            self.create_file(file.etag, &in_folder, &name, file.size);
            stored.push(file.target);
        }
        let skipped = selected
            .iter()
            .zip(&meta.files)
            .any(|(s, f)| !s && !f.padding);
        let status = if failed.is_empty() {
            if skipped {
                TaskStatus::PartlyDone
            } else {
                TaskStatus::Done
            }
        } else if stored.is_empty() {
            TaskStatus::Failed
        } else {
            TaskStatus::PartlyDone
        };
        let reason = (!failed.is_empty()).then(|| failed.join("; "));
        self.end_task(&identity, status, reason, stored);
    }

    /// Downloads the selected files in torrent order; the files stored and the
    /// failures (`path: reason`). An error only when the task is gone.
    async fn fetch_torrent(
        &self,
        identity: &str,
        meta: &Metainfo,
        selected: &[bool],
        seed: &Url,
        dir: &Path,
    ) -> Result<(Vec<Fetched>, Vec<String>), String> {
        let mut verifier = PieceVerifier::new(meta);
        let mut fetched: Vec<Fetched> = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        let mut base = 0u64;
        for file in &meta.files {
            let end = file.offset + file.length;
            if file.padding {
                verifier.skip_to(file.offset);
                if let Err(reason) = verifier.feed_zeros(file.length) {
                    fail_last(&mut fetched, &mut failed, file.offset, &reason).await;
                }
                continue;
            }
            if !selected.get(file.index).copied().unwrap_or(false) {
                verifier.skip_to(end);
                continue;
            }
            verifier.skip_to(file.offset);
            let url = file_url(seed, meta, file);
            let components: Vec<String> = file.path.iter().map(|c| sanitize_file_name(c)).collect();
            let target = components.iter().fold(dir.to_path_buf(), |p, c| p.join(c));
            debug!(task = %identity, %url, "fetching from the web seed");
            match self
                .fetch_to(
                    identity,
                    &url,
                    &target,
                    Some(file.length),
                    Some((&mut verifier, base)),
                )
                .await
            {
                Ok((size, etag)) => fetched.push(Fetched {
                    target,
                    etag,
                    size,
                    components: file.path.clone(),
                    end,
                }),
                Err(reason) if reason == DELETED => return Err(reason),
                Err(reason) => {
                    failed.push(format!("{}: {reason}", file.joined_path()));
                    verifier.skip_to(end);
                }
            }
            base += file.length;
            if self.with_task(identity, |t| t.downloaded = base).is_none() {
                return Err(DELETED.to_owned());
            }
        }
        if let Err(reason) = verifier.finish() {
            fail_last(&mut fetched, &mut failed, meta.total_length, &reason).await;
        }
        Ok((fetched, failed))
    }

    /// GETs `url` into `target` (through `target.part`), hashing on the way; the bytes
    /// stored and their etag. `expected` is the size the torrent gives; `torrent` the
    /// piece verifier and the bytes of the task before this file.
    async fn fetch_to(
        &self,
        identity: &str,
        url: &str,
        target: &Path,
        expected: Option<u64>,
        torrent: Option<(&mut PieceVerifier<'_>, u64)>,
    ) -> Result<(u64, Etag), String> {
        let mut part = target.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let result = self
            .fetch_inner(identity, url, target, &part, expected, torrent)
            .await;
        if result.is_err() {
            remove_quietly(&part).await;
        }
        result
    }

    async fn fetch_inner(
        &self,
        identity: &str,
        url: &str,
        target: &Path,
        part: &Path,
        expected: Option<u64>,
        mut torrent: Option<(&mut PieceVerifier<'_>, u64)>,
    ) -> Result<(u64, Etag), String> {
        let (response, content_length) = open_source(&self.env, url).await?;
        if let (Some(want), Some(have)) = (expected, content_length) {
            if want != have {
                return Err(format!(
                    "the web seed has {have} bytes, the torrent says {want}"
                ));
            }
        }
        let limit = self.env.max_source_bytes;
        if content_length.is_some_and(|n| n > limit) {
            return Err(format!("source larger than {}", size_text(limit)));
        }
        let base = torrent.as_ref().map(|(_, base)| *base);
        if base.is_none() {
            self.with_task(identity, |t| {
                t.size = content_length.unwrap_or(0);
                t.size_known = content_length.is_some();
            });
        }
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| format!("cannot store the file: {e}"))?;
        }
        let mut hasher = Qetag::new();
        let received = stream_to_file(
            &self.env,
            response.into_body(),
            part,
            content_length,
            MAX_PIECE,
            |received, _, e| format!("source connection failed after {received} bytes: {e}"),
            |chunk, received| {
                if let Some(want) = expected.filter(|w| received > *w) {
                    return Err(format!(
                        "the web seed sent more than the file's {want} bytes"
                    ));
                }
                if received > limit {
                    return Err(format!("source larger than {}", size_text(limit)));
                }
                if let Some((verifier, _)) = torrent.as_mut() {
                    verifier.feed(chunk)?;
                }
                hasher.update(chunk);
                let done = base.unwrap_or(0) + received;
                match self.with_task(identity, |t| t.downloaded = done) {
                    Some(()) => Ok(()),
                    None => Err(DELETED.to_owned()),
                }
            },
        )
        .await?;
        if let Some(want) = expected.filter(|w| *w != received) {
            return Err(format!(
                "the web seed sent {received} of the file's {want} bytes"
            ));
        }
        tokio::fs::rename(part, target)
            .await
            .map_err(|e| format!("cannot store the file: {e}"))?;
        Ok((received, hasher.finalize()))
    }

    /// `POST /v2/offline/page`: newest first.
    pub(super) fn page(&self, body: &[u8]) -> Answer {
        let (request, json): (PageRequest, _) = parse_json(body)?;
        if request.page_size == 0 {
            return Err(ApiError::parameter("pageSize must be at least 1"));
        }
        conform(EndpointId::ListTasks, &json)?;
        let page = request.page.max(1);
        let size = request.page_size.min(MAX_PAGE_SIZE);
        let now = self.env.now();
        let tasks = lock(&self.tasks);
        let total = tasks.list.len() as u64;
        let skip = usize::try_from(u64::from(page - 1) * u64::from(size)).unwrap_or(usize::MAX);
        let list: Vec<OfflineTask> = tasks
            .list
            .iter()
            .rev()
            .skip(skip)
            .take(size as usize)
            .map(|t| self.offline_task(t, now))
            .collect();
        drop(tasks);
        to_value(&TaskPage {
            list,
            total_count: Some(total),
            total_page: Some(total.div_ceil(u64::from(size))),
            page: Some(page),
            page_size: Some(size),
        })
    }

    fn offline_task(&self, task: &Task, now: Instant) -> OfflineTask {
        let (status, progress, downloaded) = task.view(now, self.simulated_duration);
        let finished = matches!(status, TaskStatus::Done | TaskStatus::PartlyDone);
        let access_path = finished.then(|| {
            format!(
                "{}/{}",
                normalize_folder(&task.folder).trim_end_matches('/'),
                task.name
            )
        });
        OfflineTask {
            identity: task.identity.clone().into(),
            // As real servers answer (six-cli and FlyingPiggyCloud decode a number, and
            // `data` as a JSON string holding an object).
            user_identity: Some(UserIdentity::Number(self.user.id)),
            create_time: Some(task.create_time),
            name: task.name.clone(),
            task_type: Some(TaskType::from_code(task.type_code)),
            status,
            size: Some(i64::try_from(task.size).unwrap_or(i64::MAX)),
            download_size: Some(i64::try_from(downloaded).unwrap_or(i64::MAX)),
            progress: Some(progress),
            cip: None,
            data: Some(serde_json::Value::String(
                json!({
                    "user": self.user.id,
                    "path": task.folder,
                    "url": task.url,
                    "files": task.selected,
                })
                .to_string(),
            )),
            access_path,
            error_code: (status == TaskStatus::Failed).then_some(ERROR_DOWNLOAD_FAILED),
            error_message: task
                .fail_reason
                .clone()
                .filter(|_| status != TaskStatus::Downloading),
        }
    }

    /// `POST /v2/offline/delete`: how many tasks were deleted (unknown identities are
    /// ignored). A running download stops; files already stored stay in the drive.
    pub(super) fn delete(&self, body: &[u8]) -> Answer {
        let (request, json): (DeleteRequest, _) = parse_json(body)?;
        if request.identities.is_empty() {
            return Err(ApiError::parameter(
                "identities must list at least one task",
            ));
        }
        conform(EndpointId::DeleteTasks, &json)?;
        let wanted: HashSet<&str> = request.identities.iter().map(|i| i.as_str()).collect();
        let mut tasks = lock(&self.tasks);
        let before = tasks.list.len();
        tasks.list.retain(|t| !wanted.contains(t.identity.as_str()));
        let count = before - tasks.list.len();
        drop(tasks);
        debug!(count, "6pan tasks deleted");
        Ok(Value::from(count))
    }
}

/// Marks the last stored file failed when it ends at `end` (a piece that failed its
/// check after it, in padding or at the torrent's end, covered its tail).
async fn fail_last(fetched: &mut Vec<Fetched>, failed: &mut Vec<String>, end: u64, reason: &str) {
    if fetched.last().is_some_and(|f| f.end == end) {
        if let Some(file) = fetched.pop() {
            remove_quietly(&file.target).await;
            failed.push(format!("{}: {reason}", file.components.join("/")));
        }
    }
}

async fn remove_dir_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "cannot remove a download folder");
        }
    }
}
