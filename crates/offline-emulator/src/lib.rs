//! A local server that behaves like the 123pan open platform's offline download, for
//! tests and demos.
//!
//! [`Emulator::start`] binds a real hyper HTTP/1.1 server (loopback by default) that
//! answers the four offline calls and the token call the way `docs/wire-notes.md` describes
//! them: it issues and expires tokens, enforces per-client rate limits, really fetches
//! the http(s) URLs it is given (following up to 5 redirects), stores the bytes under
//! [`RunningEmulator::data_dir`], reports progress from the bytes received, fails tasks
//! with the reasons the service gives, and POSTs callbacks.
//!
//! It also keeps the drive's folders and files: a finished cloud-drive download lands
//! in its `dirID`, or in the folder `来自:离线下载` at the root, created on first use;
//! image-bed files go to a tree of their own. `GET /api/v2/file/list` (paged by
//! `lastFileId`, `-1` on the last page), `POST /upload/v1/file/mkdir` (a taken name is
//! code 1, `该目录下已经有同名文件夹,无法进行创建`), `GET /api/v1/file/detail`,
//! `POST /api/v1/file/infos`, `GET /api/v1/file/download_info` and `POST
//! /api/v1/file/trash` answer from it; the download URL
//! (`http://<host>/_download/<token>/<name>`, valid an hour, never faulted) serves the
//! stored bytes and honours a single `Range`. A trashed entry stays listed (and in
//! infos and detail) with `trashed: 1`; it, and whatever is under a trashed folder,
//! gets no download URL, and the URLs handed out before serve HTTP 404. A file's `etag` is the
//! MD5 of its bytes. A top-level body member sent as `null` is taken as absent and a
//! query value left empty (`searchMode=`) as not given, as production takes them;
//! IDs are accepted as numbers or strings of digits.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let emulator = offline_emulator::Emulator::start_default().await?;
//! assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Answers
//!
//! Every answer is an envelope `{"code", "message", "data", "x-traceID"}` with
//! `content-type: application/json` and a trace ID unique to the answer
//! (`emu-<counter>-<hex>`). Error codes:
//!
//! | code | HTTP | when |
//! |---|---|---|
//! | 400 | 200 | no `Platform: open_platform` header; a body that is not the expected JSON; an invalid field (URL scheme, file name, `dirID` 0, image extension, `type` not 1); a missing or non-numeric `taskID`; anything else the description refuses (see below) |
//! | 401 | 200 | wrong `clientID`/`clientSecret`; a missing, unknown (`invalid token`) or expired (`token is expired`) bearer token; an unknown, used or expired OAuth code or refresh token; a token call from a client at its cap of live tokens ([`EmulatorConfig::max_tokens_per_client`]: `tokens number has exceeded the limit`) |
//! | 404 | 200 | `task not found`: an unknown task ID, or a task of the other product (a cloud-drive task asked on the image-bed progress call, or the reverse) |
//! | 1 | 200 | mkdir: a folder of that name is there already |
//! | 5066 | 200 | an unknown file or folder (detail, download_info, list, trash, a create's `dirID`, mkdir's `parentID`) |
//! | 429 | 200 | over the client's rate limit for the endpoint (`操作频繁，请稍后再试`) |
//! | 404 | 404 | unknown path |
//! | 405 | 405 | known path, wrong method (with `Allow`) |
//! | 413 | 413 | request body over 1 MiB |
//!
//! # The descriptions
//!
//! `GET /openapi.json` answers the 123pan description (`fixtures/openapi/123pan.json`,
//! generated from `123pan.yaml`). Every request is checked against it: read into the
//! generated wire types (a wrong shape is refused with the JSON path that failed),
//! checked by `offline-proto`'s validation, then checked against the operation's
//! schemas, so that every constraint the description states is enforced. A refused
//! request gets the code-400 envelope above, never a 500.
//!
//! `GET /6pan/openapi.json` answers the 6pan description (`fixtures/openapi/6pan.json`)
//! with its `servers` rewritten to this emulator, as the request's `Host` names it:
//! the API host at `http://<host>`, the storage service (`{uploadUrl}` in the
//! description) at `http://<host>/wcs`. Every 6pan request is checked against it the
//! same way (the body's schema, a form's fields, path and header parameters such as
//! `UploadBatch`), after the emulator's own checks and before anything changes: a
//! refused API call gets HTTP 400 `PARAMETER_ERROR`, a refused storage call HTTP 400
//! `{"code": 400, "message"}`, never a 500.
//!
//! CI runs schemathesis against both. For such tools, [`EmulatorConfig::static_token`]
//! makes one token always valid (as a 123pan bearer token, a 6pan `Qingzhen-Token`
//! and a storage upload token), [`EmulatorConfig::loopback_only`] keeps made-up source
//! and callback URLs on the machine, and the rate limits can be removed
//! ([`EmulatorConfig::rate_limits`]); `offline emulator` has a flag for each.
//!
//! # 6pan
//!
//! The same server answers 6pan's v1/v2 calls (`/v2/user/login`, `/v2/user/info`,
//! `/v1/store/token`, `/v2/offline/{parseUrl,parseTorrent,add,page,delete}`) and its
//! storage service under `/wcs` (form and block uploads): rotating `qingzhen-token`s,
//! instant upload by etag, signed identity blobs, and tasks that download http(s)
//! links and torrents with a loopback web seed (others progress over
//! [`EmulatorConfig::sixpan_simulated_duration`]). Error codes chosen by the emulator
//! where no source names one: `PARAMETER_ERROR`, `USER_NOT_FOUND`, `PASSWORD_ERROR`,
//! `IDENTITY_INVALID`, `API_NOT_FOUND`, `METHOD_NOT_ALLOWED`, `REQUEST_TOO_LARGE`;
//! ed2k identities have type 5040. (The description leaves both sets open, so these
//! conform to it.)
//!
//! # Time
//!
//! Every reading of time goes through one clock, [`EmulatorConfig::clock`]
//! (default [`TokioClock`]: tokio's clock, with a wall clock anchored to it), and every
//! wait through `tokio::time`, so that a test in tokio's paused time moves token expiry,
//! deadlines, rate limits, progress and callback backoff without waiting.
//!
//! # The emulator's own routes
//!
//! `GET /_emulator/stats` answers the counters ([`Stats`], also
//! [`RunningEmulator::stats`]) to anyone; `GET /_emulator/faults` the faults in force.
//! `PUT /_emulator/faults`, and every other method but `GET` and `HEAD` under
//! `/_emulator/`, needs the admin token ([`RunningEmulator::admin_token`]) as
//! `Authorization: Bearer <token>` (HTTP 401 without it). These routes are never
//! faulted.
//!
//! The emulator is a test tool: it fetches whatever URL a task names. With
//! [`EmulatorConfig::loopback_only`] it stays on this machine, but still reaches every
//! local port; keep it on loopback.
//!
//! # Not emulated
//!
//! Moving, renaming and deleting files (an entry can be put in the trash only through
//! [`RunningEmulator::trash_file`]), image-bed folders (`businessDirID` is taken as
//! given), a user who declines the authorize page (`GET /auth` approves at once and
//! redirects to `redirect_uri?code&state`; codes are single use for 5 minutes, refresh
//! tokens single use, refreshing ends the old access token), uploads, traffic quotas,
//! the "retrying" status (3), and overwriting images with the same
//! etag.

mod admin;
mod common;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod hub;
mod pan123;
mod server;
mod sixpan;
pub mod source;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

pub use common::body::BODY_DEADLINE;
pub use common::clock::TokioClock;
pub use common::config::{EmulatorConfig, DEFAULT_MAX_CONNECTIONS};
pub use common::faults::{decide as fault_for_request, Action as FaultAction, Faults};
pub use hub::Stats;
pub use offline_proto::clock::Clock;
pub use offline_proto::pan123::{EndpointId, TaskId, TaskStatus};
pub use pan123::state::{Pan123Stats, TaskKind, TaskSnapshot};
pub use sixpan::{SixpanStats, SixpanTaskKind, SixpanTaskSnapshot};

use hub::Hub;

/// Starts emulators. See [`RunningEmulator`] for what a started one offers.
#[derive(Debug, Clone, Copy)]
pub struct Emulator;

impl Emulator {
    /// Binds `config.addr`, prepares the data directory and starts serving in the
    /// background on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// The I/O error of binding the address, or of creating the data directory
    /// (`config.data_dir`, or a temporary one when that is `None`).
    pub async fn start(config: EmulatorConfig) -> io::Result<RunningEmulator> {
        let (temp_dir, data_dir) = match &config.data_dir {
            Some(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                (None, dir.clone())
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("offline-emulator-")
                    .tempdir()?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let hub = Arc::new(Hub::new(&config, data_dir, stopped));
        let accept = tokio::spawn(server::serve(listener, hub.clone()));
        info!(%addr, data_dir = %hub.env.data_dir.display(), "emulator listening");
        Ok(RunningEmulator {
            addr,
            hub,
            stop,
            accept: Some(accept),
            _temp_dir: temp_dir,
        })
    }

    /// [`start`](Self::start) with [`EmulatorConfig::default`]: loopback, a free
    /// port, a temporary data directory.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn start_default() -> io::Result<RunningEmulator> {
        Self::start(EmulatorConfig::default()).await
    }
}

/// A started emulator. Dropping it stops the server (without waiting; use
/// [`shutdown`](Self::shutdown) to wait) and removes a temporary data directory.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    hub: Arc<Hub>,
    stop: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    /// Held only to be removed on drop.
    _temp_dir: Option<tempfile::TempDir>,
}

impl RunningEmulator {
    /// The base URL to give a client: `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The client ID the token call accepts.
    pub fn client_id(&self) -> &str {
        &self.hub.pan123.client_id
    }

    /// The client secret the token call accepts.
    pub fn client_secret(&self) -> &str {
        &self.hub.pan123.client_secret
    }

    /// The directory downloaded files are stored in, as
    /// `<taskID>-<sanitized file name>`.
    pub fn data_dir(&self) -> &Path {
        &self.hub.env.data_dir
    }

    /// The clock the emulator reads the time from ([`EmulatorConfig::clock`]).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.hub.env.clock
    }

    /// The token that the admin routes which change the emulator
    /// (`PUT /_emulator/faults`) require, as `Authorization: Bearer <token>`:
    /// [`EmulatorConfig::admin_token`], or a random one made at start. The in-process
    /// calls ([`set_faults`](Self::set_faults) and the rest) need none.
    pub fn admin_token(&self) -> &str {
        &self.hub.admin_token
    }

    /// Every counter so far, as `GET /_emulator/stats` answers them.
    pub fn stats(&self) -> Stats {
        self.hub.stats()
    }

    /// How many access-token requests were answered successfully.
    pub fn token_requests(&self) -> u64 {
        self.hub.pan123.stats().token_requests
    }

    /// How many requests were answered with code 429.
    pub fn rate_limited(&self) -> u64 {
        self.hub.pan123.stats().rate_limited
    }

    /// Expires every token issued so far: their next use is answered with code 401
    /// `token is expired`. Tokens issued afterwards work.
    pub fn expire_tokens(&self) {
        self.hub.pan123.expire_tokens();
    }

    /// Sets the rate limit of `endpoint`, in requests per second per client (bursts of
    /// `max(1, per_second)`), and refills its buckets. A value that is not a positive
    /// finite number removes the limit.
    pub fn set_rate_limit(&self, endpoint: EndpointId, per_second: f64) {
        self.hub.pan123.set_rate_limit(endpoint, per_second);
    }

    /// Every task so far, ordered by ID.
    pub fn tasks(&self) -> Vec<TaskSnapshot> {
        self.hub.pan123.tasks()
    }

    /// Moves a 123pan drive entry (file or folder) to the trash, as the user would in the
    /// app: the list call still answers it, with `trashed: 1`. `false` when there is no
    /// such entry.
    pub fn trash_file(&self, file_id: u64) -> bool {
        self.hub.pan123.trash(file_id)
    }

    /// The 6pan account a login accepts ([`EmulatorConfig::sixpan_account`]).
    pub fn sixpan_account(&self) -> &str {
        self.hub.sixpan.account()
    }

    /// The 6pan password a login accepts (sent as its lowercase hex MD5).
    pub fn sixpan_password(&self) -> &str {
        self.hub.sixpan.password()
    }

    /// Every 6pan task that was not deleted, oldest first.
    pub fn sixpan_tasks(&self) -> Vec<SixpanTaskSnapshot> {
        self.hub.sixpan.tasks()
    }

    /// How many 6pan `/v1/store/token` calls created the file at once (秒传).
    pub fn instant_uploads(&self) -> u64 {
        self.hub.sixpan.stats().instant_uploads
    }

    /// How many chunks (`mkblk` and `bput`) the 6pan storage service accepted.
    pub fn uploaded_chunks(&self) -> u64 {
        self.hub.sixpan.stats().uploaded_chunks
    }

    /// How many 6pan logins succeeded.
    pub fn sixpan_logins(&self) -> u64 {
        self.hub.sixpan.stats().logins
    }

    /// Ends every 6pan token issued so far, at once, as a login elsewhere would: their
    /// next use is answered HTTP 401 `BEARER_AUTHORIZATION_HEADER_INVALID`.
    pub fn expire_sixpan_tokens(&self) {
        self.hub.sixpan.expire_tokens();
    }

    /// Where the 6pan blob of `etag` (a bare 28-character etag, or one with a size
    /// suffix) is stored, if one is: an upload's bytes, or a downloaded file's.
    pub fn stored_blob(&self, etag: impl AsRef<str>) -> Option<std::path::PathBuf> {
        self.hub.sixpan.stored_blob(etag.as_ref())
    }

    /// Switches the injected faults (see [`Faults`]); takes effect from the next
    /// request. `Faults::default()` switches them off. No admin token needed.
    pub fn set_faults(&self, faults: Faults) {
        self.hub.env.faults.set(faults);
    }

    /// How many requests met an injected fault so far.
    pub fn faults_injected(&self) -> u64 {
        self.hub.env.faults.injected()
    }

    /// Stops gracefully: stops accepting, lets open connections finish their current
    /// request, stops running downloads (they fail with `emulator shut down`, with no
    /// callback), and waits for all of it (at most about 5 s each for connections and
    /// workers). A temporary data directory is removed afterwards.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        self.hub.env.drain_workers().await;
        info!(addr = %self.addr, "emulator stopped");
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        // Everything spawned watches this and ends; the temporary directory (if any)
        // is removed right after, when the fields drop.
        self.stop.send_replace(true);
    }
}
