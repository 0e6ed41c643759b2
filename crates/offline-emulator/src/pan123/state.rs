//! What the 123pan half remembers: tokens, rate-limit buckets, tasks, counters.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use offline_proto::pan123::{
    AccessTokenData, EndpointId, FileId, TaskId, TaskStatus, OFFLINE_FOLDER,
};
use offline_proto::ratelimit::TokenBucket;
use offline_proto::Secret;
use rand::distr::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use time::macros::offset;
use time::OffsetDateTime;

use tracing::debug;

use super::files::{time_text, Links, MkdirRefusal, Node, Tree};
use crate::common::config::EmulatorConfig;
use crate::common::fetch::running_process;
use crate::common::{lock, Env};

/// The first task ID handed out; later ones count up.
const FIRST_TASK_ID: u64 = 100_001;
/// The first file ID handed out; later ones count up.
const FIRST_FILE_ID: u64 = 500_001;
/// Length of an access token, in characters.
const TOKEN_CHARS: usize = 48;
/// Stand-in lifetime, in days, when the configured one is too large to represent.
const FAR_FUTURE_DAYS: i64 = 100 * 365;

/// Which product a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A cloud-drive offline download (`POST /api/v1/offline/download`).
    CloudDrive,
    /// An image-bed migration (`POST /api/v1/oss/offline/download`).
    ImageBed,
}

/// Everything the emulator knows about one task, as seen at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSnapshot {
    /// The task's ID, as answered by the create call (the first is 100001).
    pub id: TaskId,
    /// Cloud drive or image bed (`cloud_drive` / `image_bed` in JSON).
    pub kind: TaskKind,
    /// The source URL as the client sent it.
    pub url: String,
    /// The file name: `fileName` when given, else the URL's last path segment, else
    /// `download`.
    pub file_name: String,
    /// Running, failed or succeeded.
    pub status: TaskStatus,
    /// Progress in percent, 0 to 100 (0 after a failure, 100 after success). With a
    /// known `Content-Length` it is `bytes_received / content_length * 100`; without,
    /// it grows as `95 * (1 - 2^(-bytes_received / 1 MiB))` until the task ends.
    pub process: f64,
    /// Bytes of the source stored so far.
    pub bytes_received: u64,
    /// The source's `Content-Length`, in bytes, once its answer arrived.
    pub content_length: Option<u64>,
    /// The folder the file lands in: the cloud drive's `dirID`, or the folder
    /// `来自:离线下载` when none was given; the image bed's `businessDirID`, or its root
    /// (0).
    pub folder_id: u64,
    /// The drive's file ID once the task succeeded (the first is 500001).
    pub file_id: Option<u64>,
    /// The stored file's path in its tree once the task succeeded (`/来自:离线下载/a.bin`;
    /// renamed `a(1).bin` when the name was taken in the folder).
    pub drive_path: Option<String>,
    /// MD5 of the stored bytes (32 lowercase hex digits) once the task succeeded: the
    /// file's `etag`.
    pub etag: Option<String>,
    /// Why the task failed.
    pub fail_reason: Option<String>,
    /// Where the bytes are stored once the task succeeded:
    /// `<data_dir>/<taskID>-<sanitized file name>`.
    pub stored_path: Option<PathBuf>,
    /// The callback URL the client gave.
    pub callback_url: Option<String>,
    /// Whether the callback was answered with a 2xx status.
    pub callback_delivered: bool,
}

struct TokenRecord {
    client_id: String,
    expires: Instant,
    revoked: bool,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token this emulator never issued.
    Unknown,
    /// Issued, but past its lifetime or expired by [`State::expire_tokens`].
    Expired,
    /// Not a bearer token's refusal: the client holds
    /// [`EmulatorConfig::max_tokens_per_client`] live tokens, so no new one is issued.
    TooMany,
}

impl TokenRefusal {
    /// The envelope message.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Missing => "invalid token: missing Authorization: Bearer header",
            Self::Unknown => "invalid token",
            Self::Expired => "token is expired",
            Self::TooMany => offline_proto::pan123::TOO_MANY_TOKENS_MESSAGE,
        }
    }
}

/// An authorization code the authorize page issued, until it is exchanged.
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    expires: Instant,
}

/// How long an authorization code may be exchanged: 5 minutes.
const CODE_LIFETIME: Duration = Duration::from_secs(300);
/// How long an OAuth access token lives: 7200 s, as the service answers `expires_in`.
pub(crate) const OAUTH_TOKEN_LIFETIME: Duration = Duration::from_secs(7200);

/// Why an OAuth grant was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantRefusal {
    /// Unknown, used, expired, or issued for another client or redirect URI.
    Code,
    /// Unknown or already used.
    RefreshToken,
    /// The client is at its cap of live tokens.
    Tokens(TokenRefusal),
}

struct Inner {
    tokens: HashMap<String, TokenRecord>,
    codes: HashMap<String, CodeRecord>,
    /// Live refresh tokens: the client ID and the access token issued with each.
    refresh_tokens: HashMap<String, (String, String)>,
    rates: BTreeMap<EndpointId, f64>,
    buckets: BTreeMap<(String, EndpointId), TokenBucket>,
    tasks: BTreeMap<TaskId, TaskSnapshot>,
    next_task: u64,
    next_file: u64,
    /// The cloud drive's folders and files.
    drive: Tree,
    /// The image bed's.
    image_bed: Tree,
    /// The download URLs handed out.
    links: Links,
}

/// The 123pan half's counters, as `GET /_emulator/stats` lists them under `123pan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pan123Stats {
    /// Access tokens issued (successful `POST /api/v1/access_token` calls).
    pub token_requests: u64,
    /// Cloud-drive tasks created (`POST /api/v1/offline/download` carried out).
    pub tasks_created: u64,
    /// Image-bed tasks created (`POST /api/v1/oss/offline/download` carried out).
    pub image_tasks_created: u64,
    /// Requests answered with code 429 by the rate limits (not injected faults).
    pub rate_limited: u64,
    /// Token requests refused because the client held its cap of live tokens
    /// ([`EmulatorConfig::max_tokens_per_client`]).
    #[serde(default)]
    pub tokens_refused: u64,
}

/// Everything the 123pan half knows, shared by every connection and every download.
pub(crate) struct State {
    /// What both halves share (clock, HTTP client, stop signal, limits, workers).
    pub(crate) env: Arc<Env>,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    token_lifetime: Duration,
    max_tokens: Option<usize>,
    pub(crate) max_image_bytes: u64,
    inner: Mutex<Inner>,
    token_requests: AtomicU64,
    rate_limited: AtomicU64,
    tokens_refused: AtomicU64,
    tasks_created: AtomicU64,
    image_tasks_created: AtomicU64,
    trace_counter: AtomicU64,
}

impl State {
    pub(crate) fn new(config: &EmulatorConfig, env: Arc<Env>) -> Self {
        Self {
            env,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            token_lifetime: config.token_lifetime,
            max_tokens: config.max_tokens_per_client,
            max_image_bytes: config.max_image_bytes,
            inner: Mutex::new(Inner {
                tokens: HashMap::new(),
                codes: HashMap::new(),
                refresh_tokens: HashMap::new(),
                rates: config.rate_limits.clone(),
                buckets: BTreeMap::new(),
                tasks: BTreeMap::new(),
                next_task: FIRST_TASK_ID,
                next_file: FIRST_FILE_ID,
                drive: Tree::default(),
                image_bed: Tree::default(),
                links: Links::default(),
            }),
            token_requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            tokens_refused: AtomicU64::new(0),
            tasks_created: AtomicU64::new(0),
            image_tasks_created: AtomicU64::new(0),
            trace_counter: AtomicU64::new(0),
        }
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> Pan123Stats {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Pan123Stats {
            token_requests: get(&self.token_requests),
            tasks_created: get(&self.tasks_created),
            image_tasks_created: get(&self.image_tasks_created),
            rate_limited: get(&self.rate_limited),
            tokens_refused: get(&self.tokens_refused),
        }
    }

    /// A trace ID unique to this emulator: `emu-<counter>-<8 random hex digits>`.
    pub(crate) fn trace_id(&self) -> String {
        let n = self.trace_counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("emu-{n}-{:08x}", rand::random::<u32>())
    }

    /// Issues a token for `client_id` and counts the request.
    ///
    /// # Errors
    ///
    /// [`TokenRefusal::TooMany`] when the client holds its cap of live tokens.
    pub(crate) fn issue_token(&self, client_id: &str) -> Result<AccessTokenData, TokenRefusal> {
        self.issue_token_for(client_id, self.token_lifetime)
            .map(|(token, expired_at)| AccessTokenData {
                access_token: token,
                expired_at,
            })
    }

    /// Issues a token for `client_id` living `lifetime`, under the client's cap of live
    /// tokens: the token and its expiry (RFC 3339 in +08:00, whole seconds).
    pub(crate) fn issue_token_for(
        &self,
        client_id: &str,
        lifetime: Duration,
    ) -> Result<(Secret, OffsetDateTime), TokenRefusal> {
        let now = self.env.now();
        if let Some(cap) = self.max_tokens {
            let inner = lock(&self.inner);
            let live = inner
                .tokens
                .values()
                .filter(|r| r.client_id == client_id && !r.revoked && now < r.expires)
                .count();
            if live >= cap {
                self.tokens_refused.fetch_add(1, Ordering::Relaxed);
                return Err(TokenRefusal::TooMany);
            }
        }
        let token = format!("{}{}", self.env.token_prefix, random_text(TOKEN_CHARS));
        let wall = OffsetDateTime::from(self.env.clock.wall());
        let expired_at = time::Duration::try_from(lifetime)
            .ok()
            .and_then(|d| wall.checked_add(d))
            .unwrap_or_else(|| wall + time::Duration::days(FAR_FUTURE_DAYS))
            .to_offset(offset!(+8));
        let expired_at = expired_at.replace_nanosecond(0).unwrap_or(expired_at);
        let expires = now
            .checked_add(lifetime)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * FAR_FUTURE_DAYS.unsigned_abs()));
        lock(&self.inner).tokens.insert(
            token.clone(),
            TokenRecord {
                client_id: client_id.to_owned(),
                expires,
                revoked: false,
            },
        );
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        Ok((Secret::new(token), expired_at))
    }

    /// The authorize page's code for `client_id` and `redirect_uri`: single use, good for
    /// 5 minutes.
    pub(crate) fn issue_code(&self, client_id: &str, redirect_uri: &str) -> String {
        let code = random_text(32);
        let expires = self.env.now() + CODE_LIFETIME;
        lock(&self.inner).codes.insert(
            code.clone(),
            CodeRecord {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                expires,
            },
        );
        code
    }

    /// Exchanges a code (used up whatever the outcome) for an access token and a
    /// refresh token: `(access, refresh, lifetime)`.
    pub(crate) fn exchange_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<(Secret, Secret, Duration), GrantRefusal> {
        let record = lock(&self.inner)
            .codes
            .remove(code)
            .ok_or(GrantRefusal::Code)?;
        let fits = record.client_id == client_id
            && redirect_uri.is_none_or(|u| u == record.redirect_uri)
            && self.env.now() < record.expires;
        if !fits {
            return Err(GrantRefusal::Code);
        }
        self.issue_oauth(client_id)
    }

    /// Exchanges a refresh token (single use) for new tokens; the access token issued
    /// with the old one stops working.
    pub(crate) fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<(Secret, Secret, Duration), GrantRefusal> {
        let (owner, old_access) = {
            let mut inner = lock(&self.inner);
            let (owner, old) = inner
                .refresh_tokens
                .remove(refresh_token)
                .ok_or(GrantRefusal::RefreshToken)?;
            if owner != client_id {
                return Err(GrantRefusal::RefreshToken);
            }
            if let Some(r) = inner.tokens.get_mut(&old) {
                r.revoked = true;
            }
            (owner, old)
        };
        debug!(ended = old_access.len(), "old OAuth access token ended");
        self.issue_oauth(&owner)
    }

    fn issue_oauth(&self, client_id: &str) -> Result<(Secret, Secret, Duration), GrantRefusal> {
        let (access, _) = self
            .issue_token_for(client_id, OAUTH_TOKEN_LIFETIME)
            .map_err(GrantRefusal::Tokens)?;
        let refresh = format!("{}{}", self.env.token_prefix, random_text(TOKEN_CHARS));
        lock(&self.inner).refresh_tokens.insert(
            refresh.clone(),
            (client_id.to_owned(), access.expose().to_owned()),
        );
        Ok((access, Secret::new(refresh), OAUTH_TOKEN_LIFETIME))
    }

    /// The client ID a bearer token belongs to. `header` is the `Authorization` value.
    pub(crate) fn check_token(&self, header: Option<&str>) -> Result<String, TokenRefusal> {
        let token = header
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(TokenRefusal::Missing)?;
        if self.env.is_static_token(token) {
            return Ok(self.client_id.clone());
        }
        let now = self.env.now();
        let inner = lock(&self.inner);
        let record = inner.tokens.get(token).ok_or(TokenRefusal::Unknown)?;
        if record.revoked || now >= record.expires {
            return Err(TokenRefusal::Expired);
        }
        Ok(record.client_id.clone())
    }

    pub(crate) fn expire_tokens(&self) {
        for record in lock(&self.inner).tokens.values_mut() {
            record.revoked = true;
        }
    }

    /// Sets an endpoint's rate and refills its buckets.
    pub(crate) fn set_rate_limit(&self, endpoint: EndpointId, per_second: f64) {
        let mut inner = lock(&self.inner);
        inner.rates.insert(endpoint, per_second);
        inner.buckets.retain(|(_, e), _| *e != endpoint);
    }

    /// Takes a token from the bucket of `(client, endpoint)`; `false` (and one more
    /// rate-limited request counted) when it is empty.
    pub(crate) fn acquire(&self, client: &str, endpoint: EndpointId) -> bool {
        let now = self.env.now();
        let mut inner = lock(&self.inner);
        let Some(rate) = inner
            .rates
            .get(&endpoint)
            .copied()
            .filter(|r| r.is_finite() && *r > 0.0)
        else {
            return true;
        };
        let ok = inner
            .buckets
            .entry((client.to_owned(), endpoint))
            .or_insert_with(|| TokenBucket::new(rate, rate.max(1.0)))
            .try_acquire(now)
            .is_ok();
        if !ok {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Records a new running task and returns its ID.
    pub(crate) fn create_task(
        &self,
        kind: TaskKind,
        url: &str,
        file_name: &str,
        folder_id: u64,
        callback_url: Option<String>,
    ) -> TaskId {
        match kind {
            TaskKind::CloudDrive => &self.tasks_created,
            TaskKind::ImageBed => &self.image_tasks_created,
        }
        .fetch_add(1, Ordering::Relaxed);
        let mut inner = lock(&self.inner);
        let id = TaskId(inner.next_task);
        inner.next_task += 1;
        inner.tasks.insert(
            id,
            TaskSnapshot {
                id,
                kind,
                url: url.to_owned(),
                file_name: file_name.to_owned(),
                status: TaskStatus::Running,
                process: 0.0,
                bytes_received: 0,
                content_length: None,
                folder_id,
                file_id: None,
                drive_path: None,
                etag: None,
                fail_reason: None,
                stored_path: None,
                callback_url,
                callback_delivered: false,
            },
        );
        id
    }

    /// Changes a task in place.
    pub(crate) fn update_task(&self, id: TaskId, f: impl FnOnce(&mut TaskSnapshot)) {
        if let Some(task) = lock(&self.inner).tasks.get_mut(&id) {
            f(task);
        }
    }

    /// Records the progress of a running task.
    pub(crate) fn progress(&self, id: TaskId, received: u64, content_length: Option<u64>) {
        self.update_task(id, |t| {
            t.bytes_received = received;
            t.content_length = content_length;
            t.process = running_process(received, content_length);
        });
    }

    /// Marks a task failed (progress drops to 0).
    pub(crate) fn fail_task(&self, id: TaskId, reason: String) {
        self.update_task(id, |t| {
            t.status = TaskStatus::Failed;
            t.process = 0.0;
            t.fail_reason = Some(reason);
        });
    }

    /// Marks a task succeeded, stores its file in its folder (renamed when the name is
    /// taken there) and returns the file's new ID.
    pub(crate) fn succeed_task(
        &self,
        id: TaskId,
        received: u64,
        stored: PathBuf,
        etag: String,
    ) -> u64 {
        let created = time_text(self.env.clock.wall());
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let file_id = inner.next_file;
        inner.next_file += 1;
        if let Some(t) = inner.tasks.get_mut(&id) {
            let tree = match t.kind {
                TaskKind::CloudDrive => &mut inner.drive,
                TaskKind::ImageBed => &mut inner.image_bed,
            };
            tree.add_file(Node {
                id: file_id,
                parent: t.folder_id,
                name: t.file_name.clone(),
                folder: false,
                size: received,
                etag: etag.clone(),
                stored: Some(stored.clone()),
                trashed: false,
                created,
            });
            t.status = TaskStatus::Succeeded;
            t.process = 100.0;
            t.bytes_received = received;
            t.file_id = Some(file_id);
            t.drive_path = Some(tree.path_of(file_id));
            t.etag = Some(etag);
            t.stored_path = Some(stored);
        }
        file_id
    }

    /// The folder a cloud-drive create lands in: `dir` when it is a folder of the
    /// drive, else (absent) the folder `来自:离线下载` at the root, created on first use.
    ///
    /// # Errors
    ///
    /// The message for an unknown folder.
    pub(crate) fn download_folder(&self, dir: Option<FileId>) -> Result<u64, String> {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        match dir {
            Some(FileId(id)) if inner.drive.is_folder(id) => Ok(id),
            Some(FileId(id)) => Err(format!("dirID {id} is not a folder of this drive")),
            None => {
                if let Some(id) = inner.drive.folder_named(0, OFFLINE_FOLDER) {
                    return Ok(id);
                }
                let id = inner.next_file;
                inner.next_file += 1;
                let created = time_text(self.env.clock.wall());
                inner
                    .drive
                    .mkdir(id, 0, OFFLINE_FOLDER, created)
                    .map_err(|e| format!("cannot create {OFFLINE_FOLDER}: {e:?}"))
            }
        }
    }

    /// Creates a folder in the drive.
    pub(crate) fn mkdir(&self, parent: u64, name: &str) -> Result<u64, MkdirRefusal> {
        let created = time_text(self.env.clock.wall());
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let id = inner.next_file;
        let made = inner.drive.mkdir(id, parent, name, created)?;
        inner.next_file += 1;
        Ok(made)
    }

    /// Reads the drive's tree.
    pub(crate) fn with_drive<T>(&self, f: impl FnOnce(&Tree) -> T) -> T {
        f(&lock(&self.inner).drive)
    }

    /// Moves a drive entry to the trash; `false` when there is none.
    pub(crate) fn trash(&self, id: u64) -> bool {
        lock(&self.inner).drive.trash(id)
    }

    /// Moves drive entries to the trash (`POST /api/v1/file/trash`): all of them, or
    /// none when one is unknown (`Err` with its ID).
    pub(crate) fn trash_all(&self, ids: &[u64]) -> Result<(), u64> {
        lock(&self.inner).drive.trash_all(ids)
    }

    /// A download token for drive file `id`, or `None` when it is not a file or is in
    /// the trash (itself or through a folder above it).
    pub(crate) fn issue_link(&self, id: u64) -> Option<(String, String)> {
        let now = self.env.now();
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let node = inner.drive.node(id).filter(|n| !n.folder)?;
        if inner.drive.in_trash(id) {
            return None;
        }
        let name = node.name.clone();
        Some((inner.links.issue(id, now), name))
    }

    /// The stored bytes and size a download token stands for, while it is valid and
    /// its file is not in the trash.
    pub(crate) fn linked_file(&self, token: &str) -> Option<(PathBuf, u64)> {
        let now = self.env.now();
        let inner = lock(&self.inner);
        let id = inner.links.file(token, now)?;
        if inner.drive.in_trash(id) {
            return None;
        }
        let node = inner.drive.node(id)?;
        Some((node.stored.clone()?, node.size))
    }

    pub(crate) fn task(&self, id: TaskId) -> Option<TaskSnapshot> {
        lock(&self.inner).tasks.get(&id).cloned()
    }

    pub(crate) fn tasks(&self) -> Vec<TaskSnapshot> {
        lock(&self.inner).tasks.values().cloned().collect()
    }
}

/// `n` random letters and digits.
fn random_text(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_serialize_with_wire_status() {
        let snap = TaskSnapshot {
            id: TaskId(100_001),
            kind: TaskKind::ImageBed,
            url: "http://h/a.png".to_owned(),
            file_name: "a.png".to_owned(),
            status: TaskStatus::Succeeded,
            process: 100.0,
            bytes_received: 3,
            content_length: Some(3),
            folder_id: 0,
            file_id: Some(500_001),
            drive_path: Some("/a.png".to_owned()),
            etag: None,
            fail_reason: None,
            stored_path: None,
            callback_url: None,
            callback_delivered: false,
        };
        let v = serde_json::to_value(&snap).unwrap();
        assert_eq!(v["id"], 100_001);
        assert_eq!(v["kind"], "image_bed");
        assert_eq!(v["status"], 2);
    }
}
