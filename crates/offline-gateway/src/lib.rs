//! `offline serve`: a cloud drive behind aria2's JSON-RPC, so that the tools that
//! drive aria2 (AriaNg, browser extensions, `aria2p`, scripts) drive the drive's
//! offline download instead.
//!
//! This first part serves 123pan over `POST /jsonrpc` and a WebSocket at `/jsonrpc`
//! (aria2 JSON-RPC 1.x/2.0 and batches, `token:SECRET`, and over the WebSocket the
//! notifications `aria2.onDownloadStart`, `onDownloadComplete`, `onDownloadError`,
//! `onDownloadStop`; the protocol is [`offline_proto::aria2`]'s, this crate only
//! moves bytes and time). A WebSocket whose `Origin` names another host than the one
//! it connects to is refused (a web page elsewhere cannot drive the daemon through a
//! browser); clients that send no `Origin` (aria2p, scripts) are served. Every accepted download is written to the task store
//! ([`offline_store`], the CLI's batch journal schema) before it is submitted;
//! submissions go one at a time through the provider's own pacing, and tracking polls
//! each running task's progress within the progress endpoint's rate limit.
//!
//! A restart (kill -9 included) resumes from the store: `pending` rows are
//! submitted, `submitted` ones tracked again, and a row left `submitting` (the create
//! may have reached the drive; 123pan has no task list to look in) is reported as an
//! aria2 error with the outcome-unknown reason, never submitted again.
//!
//! Not yet here: 6pan and torrents, callbacks, the
//! watch folder, the web page, the qBittorrent and Transmission interfaces.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use offline_proto::aria2::{
    self, AddRequest, Downloads, Event, Failure, FailureKind, Gid, Progress, Queue, Source,
    StoreError, TaskState, TaskView,
};
use offline_proto::pan123::{validate_http_url, FileId, OfflineDownloadRequest};
use offline_proto::HttpClient;
use offline_store::{Entry, Journal, State as Row};
use provider_123pan::{Error, Pan123, TaskRef, TaskStatus};
use tokio::sync::{broadcast, Notify};
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
    /// The notifications of state changes, for every WebSocket.
    events: broadcast::Sender<String>,
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
            events: broadcast::channel(1024).0,
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
        for event in Event::between(Some(&task.view.state), &state, task.view.torrent.is_some()) {
            // No receiver (no WebSocket open) is not an error.
            let _ = self.events.send(event.notification(gid));
        }
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

    /// The routes: `POST /jsonrpc`, and `GET /jsonrpc` upgraded to a WebSocket.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/jsonrpc", post(jsonrpc::<C>).get(websocket::<C>))
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

    /// Answers one JSON-RPC body (HTTP or a WebSocket frame) and wakes the work up; a
    /// refused token is answered after a second, as aria2 does, to slow guessing.
    async fn answer(&self, body: &[u8]) -> aria2::Reply {
        let reply = {
            let mut store = self.store();
            aria2::handle_body(body, &mut *store, &self.shared.rpc)
        };
        self.shared.wake.notify_one();
        if reply.unauthorized {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        reply
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
    if let Some(id) = FileId::from_arg(dir) {
        return Ok(id);
    }
    Ok(pan.resolve_dir(dir, true).await?.id)
}

/// `POST /jsonrpc`: one JSON-RPC body through [`aria2::handle_body`].
async fn jsonrpc<C: HttpClient + 'static>(
    AxumState(gateway): AxumState<Gateway<C>>,
    body: Bytes,
) -> Response {
    let reply = gateway.answer(&body).await;
    let status = StatusCode::from_u16(reply.http_status).unwrap_or(StatusCode::OK);
    (
        status,
        [(header::CONTENT_TYPE, "application/json-rpc")],
        reply.body,
    )
        .into_response()
}

/// Whether a WebSocket's `Origin` may drive the daemon: absent (not a browser), or
/// naming the host it connected to (`Host`), or a loopback host.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host_of = |s: &str| {
        let rest = s.split_once("://").map_or(s, |(_, r)| r);
        rest.split('/').next().unwrap_or("").to_ascii_lowercase()
    };
    let origin_host = host_of(origin);
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase());
    if own.as_deref() == Some(origin_host.as_str()) {
        return true;
    }
    let name = origin_host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(origin_host.as_str(), |(name, _)| name);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// `GET /jsonrpc` as a WebSocket: each text frame is a JSON-RPC body answered in
/// order; state changes arrive as aria2 notifications.
async fn websocket<C: HttpClient + 'static>(
    AxumState(gateway): AxumState<Gateway<C>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers) {
        return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
    }
    upgrade
        .max_message_size(aria2::MAX_BODY_BYTES)
        .on_upgrade(move |socket| session(gateway, socket))
}

async fn session<C: HttpClient + 'static>(gateway: Gateway<C>, mut socket: WebSocket) {
    let mut events = gateway.store().events.subscribe();
    loop {
        tokio::select! {
            message = socket.recv() => {
                let body = match message {
                    Some(Ok(Message::Text(text))) => Bytes::from(text.as_str().to_owned()),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                };
                let reply = gateway.answer(&body).await;
                if socket.send(Message::Text(reply.body.into())).await.is_err() {
                    return;
                }
            }
            event = events.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                // A slow reader missed some: it goes on with the next ones.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Whether `addr` may be listened on without a secret: loopback only.
pub fn needs_secret(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let headers = |origin: Option<&str>, host: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, host.parse().unwrap());
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().unwrap());
            }
            h
        };
        assert!(origin_allowed(&headers(None, "10.0.0.2:6800")));
        assert!(origin_allowed(&headers(
            Some("http://10.0.0.2:6800"),
            "10.0.0.2:6800"
        )));
        assert!(origin_allowed(&headers(
            Some("http://localhost:3000"),
            "127.0.0.1:6800"
        )));
        assert!(origin_allowed(&headers(
            Some("http://127.0.0.1"),
            "127.0.0.1:6800"
        )));
        assert!(!origin_allowed(&headers(
            Some("https://evil.example"),
            "127.0.0.1:6800"
        )));
        assert!(!origin_allowed(&headers(
            Some("http://localhost.evil.example"),
            "127.0.0.1:6800"
        )));
    }
}
