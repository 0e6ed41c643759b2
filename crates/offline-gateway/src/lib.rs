//! `offline serve`: a cloud drive behind aria2's JSON-RPC, so that the tools that
//! drive aria2 (AriaNg, browser extensions, `aria2p`, scripts) drive the drive's
//! offline download instead.
//!
//! This first part serves 123pan over `POST /jsonrpc` (aria2 JSON-RPC 1.x/2.0 and
//! batches, `token:SECRET`; the protocol is [`offline_proto::aria2`]'s, this crate
//! only moves bytes and time). Every accepted download is written to the task store
//! ([`offline_store`], the CLI's batch journal schema) before it is submitted;
//! submissions go one at a time through the provider's own pacing, and tracking polls
//! each running task's progress within the progress endpoint's rate limit.
//!
//! A restart (kill -9 included) resumes from the store: `pending` rows are
//! submitted, `submitted` ones tracked again, and a row left `submitting` (the create
//! may have reached the drive; 123pan has no task list to look in) is reported as an
//! aria2 error with the outcome-unknown reason, never submitted again.
//!
//! Not yet here: WebSocket and its notifications, 6pan and torrents, callbacks, the
//! watch folder, the web page, the qBittorrent and Transmission interfaces.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use offline_proto::aria2::{
    self, AddRequest, Downloads, Failure, FailureKind, Gid, Progress, Queue, Source, StoreError,
    TaskState, TaskView,
};
use offline_proto::pan123::{validate_http_url, FileId, OfflineDownloadRequest};
use offline_proto::HttpClient;
use offline_store::{Entry, Journal, State as Row};
use provider_123pan::{Error, Pan123, TaskRef, TaskStatus};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

/// The store's `kind` of a 123pan cloud-drive download.
const KIND: &str = "cloud";

/// How long the poller rests when nothing is running.
const IDLE: Duration = Duration::from_millis(500);

/// The reason given for a row whose create may or may not have reached the drive.
pub const UNKNOWN_OUTCOME: &str = "the add was sent but its answer was lost: the task may exist on the drive (123pan has no task list to check); not submitted again";

/// How `offline serve` is set up.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The RPC secret (`--rpc-secret`): every RPC but the listing methods needs
    /// `token:SECRET`.
    pub secret: Option<offline_proto::Secret>,
    /// The drive folder downloads go to when the client names none (`--dir`), a path;
    /// `None`: the drive's default (`来自:离线下载`).
    pub default_dir: Option<String>,
}

/// One download as the daemon knows it.
#[derive(Debug, Clone)]
struct Task {
    entry: Entry,
    view: TaskView,
    dir: Option<String>,
    out: Option<String>,
}

/// The store the RPC methods read and change: the SQLite rows and the live view.
struct Store {
    journal: Journal,
    tasks: BTreeMap<Gid, Task>,
    /// GIDs in the order they stopped (`tellStopped` lists the oldest first).
    stopped: Vec<Gid>,
    default_dir: String,
}

fn gid_of(entry: &Entry) -> Gid {
    Gid::derive(format!("{}#{}", entry.source, entry.occurrence).as_bytes())
}

fn view_of(entry: &Entry, dir: &str) -> TaskView {
    let state = match entry.state {
        Row::Pending => TaskState::Queued,
        Row::Submitting => TaskState::UnknownOutcome,
        Row::Submitted => TaskState::Running,
        Row::Failed => TaskState::Failed(Failure {
            kind: FailureKind::Unknown,
            message: entry.error.clone().unwrap_or_default(),
        }),
        Row::Unknown => TaskState::UnknownOutcome,
    };
    let mut view = TaskView::new(gid_of(entry), state, dir);
    view.uris = vec![entry.source.clone()];
    view.name = Some(offline_proto::pan123::url_stored_name(&entry.source));
    view.progress = Progress::Percent(0);
    view
}

impl Store {
    fn open(path: &Path, default_dir: String) -> rusqlite::Result<Self> {
        let journal = Journal::open(path)?;
        let mut store = Self {
            journal,
            tasks: BTreeMap::new(),
            stopped: Vec::new(),
            default_dir,
        };
        for entry in store.journal.all()? {
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
            let (dir, out) = options_of(&entry);
            let shown = dir.clone().unwrap_or_else(|| store.default_dir.clone());
            let task = Task {
                view: view_of(&entry, &shown),
                entry,
                dir,
                out,
            };
            let gid = task.view.gid;
            if task.view.state.queue() == Queue::Stopped {
                store.stopped.push(gid);
            }
            store.tasks.insert(gid, task);
        }
        Ok(store)
    }

    fn in_queue(&self, queue: Queue) -> Vec<&Task> {
        if queue == Queue::Stopped {
            return self
                .stopped
                .iter()
                .filter_map(|g| self.tasks.get(g))
                .collect();
        }
        let mut tasks: Vec<&Task> = self
            .tasks
            .values()
            .filter(|t| t.view.state.queue() == queue)
            .collect();
        tasks.sort_by_key(|t| t.entry.line);
        tasks
    }

    fn set_state(&mut self, gid: Gid, state: TaskState) {
        let Some(task) = self.tasks.get_mut(&gid) else {
            return;
        };
        let was_stopped = task.view.state.queue() == Queue::Stopped;
        task.view.state = state;
        if !was_stopped && task.view.state.queue() == Queue::Stopped {
            self.stopped.push(gid);
        }
    }
}

/// The `dir` and `out` a row was accepted with.
fn options_of(entry: &Entry) -> (Option<String>, Option<String>) {
    let parsed: serde_json::Value = entry
        .options
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or_default();
    let text = |k: &str| parsed.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    (text("dir"), text("out"))
}

fn store_error(e: rusqlite::Error) -> StoreError {
    StoreError(format!("the task store could not record it: {e}"))
}

impl Downloads for Store {
    fn add(&mut self, request: AddRequest) -> Result<Gid, StoreError> {
        let uri = match request.source {
            Source::Uris(uris) => uris.into_iter().next().unwrap_or_default(),
            Source::Torrent { .. } => {
                return Err(StoreError(
                    "123pan's open platform takes no torrents (http and https links only)".into(),
                ))
            }
        };
        // Refused at once, not accepted and failed later: the open platform fetches
        // http(s) only.
        validate_http_url("uri", &uri).map_err(|e| {
            StoreError(format!(
                "123pan's open platform downloads http and https links only: {e}"
            ))
        })?;
        let entry = self.journal.append(&uri, KIND).map_err(store_error)?;
        let options = serde_json::json!({"dir": request.dir, "out": request.out}).to_string();
        self.journal
            .set_options(&entry, &options)
            .map_err(store_error)?;
        let shown = request
            .dir
            .clone()
            .unwrap_or_else(|| self.default_dir.clone());
        let gid = gid_of(&entry);
        let mut view = view_of(&entry, &shown);
        if let Some(out) = &request.out {
            view.name = Some(out.clone());
        }
        self.tasks.insert(
            gid,
            Task {
                entry,
                view,
                dir: request.dir,
                out: request.out,
            },
        );
        Ok(gid)
    }

    fn task(&self, gid: Gid) -> Option<TaskView> {
        self.tasks.get(&gid).map(|t| t.view.clone())
    }

    fn count(&self, queue: Queue) -> usize {
        self.in_queue(queue).len()
    }

    fn list(&self, queue: Queue, range: Range<usize>) -> Vec<TaskView> {
        let tasks = self.in_queue(queue);
        tasks
            .get(range.start.min(tasks.len())..range.end.min(tasks.len()))
            .unwrap_or_default()
            .iter()
            .map(|t| t.view.clone())
            .collect()
    }

    fn remove(&mut self, gid: Gid, _force: bool) -> Result<(), StoreError> {
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
        }
        // A task on the drive keeps running there (123pan has no cancel call); this
        // daemon only stops tracking it.
        self.set_state(gid, TaskState::Removed);
        Ok(())
    }

    fn remove_result(&mut self, gid: Gid) -> Result<(), StoreError> {
        let task = self
            .tasks
            .remove(&gid)
            .ok_or_else(|| StoreError(format!("GID#{gid} is not found")))?;
        self.stopped.retain(|g| *g != gid);
        self.journal.remove(&task.entry).map_err(store_error)
    }

    fn purge_results(&mut self) {
        for gid in std::mem::take(&mut self.stopped) {
            if let Some(task) = self.tasks.remove(&gid) {
                if let Err(e) = self.journal.remove(&task.entry) {
                    warn!(error = %e, "cannot remove a download result from the store");
                }
            }
        }
    }
}

/// The daemon: the store, the provider, and the work that moves tasks along.
pub struct Gateway<C: HttpClient> {
    shared: Arc<Shared<C>>,
}

struct Shared<C: HttpClient> {
    pan: Pan123<C>,
    store: Mutex<Store>,
    rpc: aria2::Config,
    wake: Notify,
}

impl<C: HttpClient> Clone for Gateway<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: HttpClient + 'static> Gateway<C> {
    /// Opens (creating if needed) the task store at `state` and resumes what it holds.
    ///
    /// # Errors
    ///
    /// A SQLite error opening or reading the store.
    pub fn open(pan: Pan123<C>, state: &Path, config: ServeConfig) -> rusqlite::Result<Self> {
        let default_dir = config
            .default_dir
            .clone()
            .unwrap_or_else(|| format!("/{}", offline_proto::pan123::OFFLINE_FOLDER));
        let store = Store::open(state, default_dir.clone())?;
        let session: u64 = rand::random();
        Ok(Self {
            shared: Arc::new(Shared {
                pan,
                store: Mutex::new(store),
                rpc: aria2::Config {
                    secret: config.secret,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    session_id: format!("{session:016x}"),
                    default_dir,
                },
                wake: Notify::new(),
            }),
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The routes: `POST /jsonrpc`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/jsonrpc", post(jsonrpc::<C>))
            .layer(DefaultBodyLimit::max(aria2::MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Serves on `listener` and runs the submission and tracking work until
    /// `shutdown` resolves.
    ///
    /// # Errors
    ///
    /// An I/O error of the listener.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let work = tokio::spawn({
            let gateway = self.clone();
            async move { gateway.work().await }
        });
        let result = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        work.abort();
        result
    }

    /// Submits pending rows and polls running tasks, forever.
    async fn work(&self) {
        loop {
            let submitted = self.submit_next().await;
            let polled = self.poll_running().await;
            if !submitted && !polled {
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
        }
    }

    /// Submits the first pending row, if any; whether there was one.
    async fn submit_next(&self) -> bool {
        let next = {
            let store = self.store();
            store
                .in_queue(Queue::Waiting)
                .first()
                .map(|t| (t.view.gid, t.entry.clone(), t.dir.clone(), t.out.clone()))
        };
        let Some((gid, entry, dir, out)) = next else {
            return false;
        };
        let pan = &self.shared.pan;
        let folder = match dir.or_else(|| self.shared.rpc_default_dir()) {
            Some(dir) => match resolve(pan, &dir).await {
                Ok(id) => Some(id),
                Err(e) => {
                    self.finish(gid, &entry, Row::Failed, None, &e.to_string());
                    return true;
                }
            },
            None => None,
        };
        let mut request = OfflineDownloadRequest::new(entry.source.clone());
        request.dir_id = folder;
        request.file_name = out;
        self.store().set_state(gid, TaskState::Submitting);
        let claim = || {
            if let Err(e) = self.store().journal.claim(&entry, KIND) {
                warn!(error = %e, "cannot record a submission in the task store");
            }
        };
        match pan.offline_download_observed(request, claim).await {
            Ok(task) => {
                info!(%gid, %task, "submitted");
                let id = task.to_string();
                let recorded = self
                    .store()
                    .journal
                    .set(&entry, Row::Submitted, Some(&id), None);
                if let Err(e) = recorded {
                    warn!(error = %e, "cannot record a task ID in the task store");
                }
                let mut store = self.store();
                if let Some(t) = store.tasks.get_mut(&gid) {
                    t.entry.state = Row::Submitted;
                    t.entry.task = Some(id);
                }
                store.set_state(gid, TaskState::Running);
            }
            Err(e @ Error::OutcomeUnknown { .. }) => {
                self.finish(gid, &entry, Row::Unknown, None, &format!("{e}"));
            }
            Err(Error::Transport(e)) => {
                // Certainly not sent: it stays pending and is tried again later.
                debug!(%gid, error = %e, "submission not sent; will try again");
                let _ = self.store().journal.set(&entry, Row::Pending, None, None);
                self.store().set_state(gid, TaskState::Queued);
                tokio::time::sleep(IDLE).await;
            }
            Err(e) => self.finish(gid, &entry, Row::Failed, None, &e.to_string()),
        }
        true
    }

    /// Records a row's end and shows it as an aria2 error.
    fn finish(&self, gid: Gid, entry: &Entry, row: Row, task: Option<&str>, reason: &str) {
        let mut store = self.store();
        if let Err(e) = store.journal.set(entry, row, task, Some(reason)) {
            warn!(error = %e, "cannot record an outcome in the task store");
        }
        let state = if row == Row::Unknown {
            TaskState::UnknownOutcome
        } else {
            TaskState::Failed(Failure {
                kind: FailureKind::Unknown,
                message: reason.to_owned(),
            })
        };
        if let Some(t) = store.tasks.get_mut(&gid) {
            t.entry.state = row;
            t.entry.error = Some(reason.to_owned());
        }
        store.set_state(gid, state);
    }

    /// Asks the progress of every running task once (the provider paces the calls
    /// at the progress endpoint's rate limit); whether any was running.
    async fn poll_running(&self) -> bool {
        let running: Vec<(Gid, u64)> = {
            let store = self.store();
            store
                .in_queue(Queue::Active)
                .iter()
                .filter(|t| t.view.state == TaskState::Running)
                .filter_map(|t| Some((t.view.gid, t.entry.task.as_deref()?.parse().ok()?)))
                .collect()
        };
        for (gid, id) in &running {
            let task = TaskRef::cloud(provider_123pan::TaskId(*id));
            match self.shared.pan.progress(task).await {
                Ok(p) => {
                    let mut store = self.store();
                    if let Some(t) = store.tasks.get_mut(gid) {
                        if t.view.state != TaskState::Running {
                            continue; // removed meanwhile
                        }
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        let percent = p.percent.clamp(0.0, 100.0).round() as u8;
                        t.view.progress = Progress::Percent(percent);
                    }
                    match p.status {
                        TaskStatus::Succeeded => store.set_state(*gid, TaskState::Complete),
                        TaskStatus::Failed => store.set_state(
                            *gid,
                            TaskState::Failed(Failure {
                                kind: FailureKind::NotFound,
                                message: "the drive could not fetch the source".to_owned(),
                            }),
                        ),
                        _ => {}
                    }
                }
                Err(e) => debug!(%gid, error = %e, "progress call failed; asking again later"),
            }
        }
        !running.is_empty()
    }
}

impl<C: HttpClient> Shared<C> {
    fn rpc_default_dir(&self) -> Option<String> {
        let default = format!("/{}", offline_proto::pan123::OFFLINE_FOLDER);
        (self.rpc.default_dir != default).then(|| self.rpc.default_dir.clone())
    }
}

/// A `dir` option: a drive path resolved (missing folders made), or a folder ID.
async fn resolve<C: HttpClient>(pan: &Pan123<C>, dir: &str) -> Result<FileId, Error> {
    if let Ok(id) = dir.trim().parse::<u64>() {
        return Ok(FileId(id));
    }
    Ok(pan.resolve_dir(dir, true).await?.id)
}

/// `POST /jsonrpc`: one JSON-RPC body through [`aria2::handle_body`]; a refused token
/// is answered after a second, as aria2 does, to slow guessing.
async fn jsonrpc<C: HttpClient + 'static>(
    AxumState(gateway): AxumState<Gateway<C>>,
    body: Bytes,
) -> Response {
    let reply = {
        let mut store = gateway.store();
        aria2::handle_body(&body, &mut *store, &gateway.shared.rpc)
    };
    gateway.shared.wake.notify_one();
    if reply.unauthorized {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let status = StatusCode::from_u16(reply.http_status).unwrap_or(StatusCode::OK);
    (
        status,
        [(header::CONTENT_TYPE, "application/json-rpc")],
        reply.body,
    )
        .into_response()
}

/// Whether `addr` may be listened on without a secret: loopback only.
pub fn needs_secret(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}
