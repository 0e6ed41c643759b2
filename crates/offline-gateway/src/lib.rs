//! `offline serve`: a cloud drive behind aria2's JSON-RPC, so that the tools that
//! drive aria2 (AriaNg, browser extensions, `aria2p`, scripts) drive the drive's
//! offline download instead.
//!
//! One listener serves `POST /jsonrpc` and a WebSocket at `/jsonrpc` (aria2 JSON-RPC
//! 1.x/2.0 and batches, `token:SECRET`, and over the WebSocket the notifications
//! `aria2.onDownloadStart`, `onDownloadComplete`, `onDownloadError`,
//! `onDownloadStop`; the protocol is [`offline_proto::aria2`]'s, this crate only
//! moves bytes and time), and the callback route `POST /callback/{gid}/{token}`
//! that the drive's task-end callbacks come to. A WebSocket whose `Origin` names
//! another host than the one it connects to is refused (a web page elsewhere cannot
//! drive the daemon through a browser); clients that send no `Origin` (aria2p,
//! scripts) are served.
//!
//! Every accepted download is written to the task store ([`offline_store`], the CLI's
//! batch journal schema) before it is submitted; submissions go one at a time through
//! the provider's own pacing, and tracking asks each running task's progress within
//! the progress endpoint's rate limit. Where the drive sends callbacks (123pan, with
//! [`ServeConfig::callback_base`]) each task is created with a callback URL naming
//! its GID and a random token kept in its row; a callback that carries them is only a
//! hint, confirmed by one progress call; for a task whose create's answer was lost
//! (no task ID to ask about) the callback's file is checked with the file endpoints.
//!
//! A restart (kill -9 included) resumes from the store: `pending` rows are submitted,
//! `submitted` ones tracked again unless their end was recorded. A row left
//! `submitting` (the create may have reached the drive) depends on the drive: on
//! 123pan, which has no task list to look in, it is reported as an aria2 error with
//! the outcome-unknown reason, never submitted again; on 6pan ([`SixPanDrive`]) it,
//! and every row whose create's answer was lost, is looked for in the task list
//! ([`Drive::reconcile`]): found, it is tracked; absent, submitted again.
//!
//! Drives: 123pan ([`provider_123pan::Pan123`], http(s) links, callbacks) and 6pan
//! ([`SixPanDrive`]: http(s), magnet and ed2k links and torrents, tracked from its task
//! list). A folder can be watched for `.torrent`, `.magnet` and `.url`/`.txt` files
//! ([`ServeConfig::watch`], [`watch`]).
//!
//! The web page at `/` ([`web`]) lists the tasks live, adds links and removes them;
//! with a web login it and the JSON-RPC calls that carry it are authorized by HTTP
//! Basic. A `POST /jsonrpc` whose browser `Origin` names another host is refused, as
//! the WebSocket is.
//!
//! The listener is bounded: [`MAX_CONNECTIONS`] at once (more wait in the kernel's
//! backlog), [`HEADER_TIMEOUT`] to send a request's headers, [`BODY_TIMEOUT`] for its
//! whole body, [`aria2::MAX_BODY_BYTES`] of body.

mod catalog;
mod clients;
mod drive;
mod http;
pub mod sixpan;
mod store;
pub mod watch;
pub mod web;
mod work;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use offline_proto::aria2;
use tokio::sync::{mpsc, Notify};

pub use drive::{Accepted, Claim, Drive, Hint, Job, Lost, Observed, Reconciled, Stored, Submitted};
pub use sixpan::SixPanDrive;
pub use store::UNKNOWN_OUTCOME;

use store::Store;

/// The most connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's whole body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Callbacks waiting to be confirmed; more are answered 503 (the drive sends again).
pub const CALLBACK_QUEUE: usize = 1024;

/// How `offline serve` is set up.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    /// The RPC secret (`--rpc-secret`): every RPC but the listing methods needs
    /// `token:SECRET`.
    pub secret: Option<offline_proto::Secret>,
    /// The drive folder downloads go to when the client names none (`--dir`), a path
    /// or a folder ID; `None`: the drive's default ([`Drive::default_dir`]: 123pan's
    /// `来自:离线下载`, 6pan's `/`).
    pub default_dir: Option<String>,
    /// The URL the drive reaches this daemon's listener at, e.g.
    /// `https://gateway.example` (`--callback-url`): tasks are then created with a
    /// callback URL under it. `None`: no callbacks, tracking polls.
    pub callback_base: Option<String>,
    /// A folder to watch for `.torrent`, `.magnet` and `.url`/`.txt` files
    /// (`--watch`, see [`watch`]); `None`: none.
    pub watch: Option<std::path::PathBuf>,
    /// The web page's login (`--web-username`, `--web-password`): the page needs it
    /// (HTTP Basic), and JSON-RPC requests that carry it need no token. Without
    /// [`ServeConfig::secret`], its password is also the RPC secret. See [`web`].
    pub web_login: Option<aria2::WebLogin>,
    /// The path the media apps see the drive at (`--report-path-prefix`, e.g.
    /// `/mnt/cloud` where rclone mounts it): the qBittorrent and Transmission
    /// interfaces report every drive path under it (`/Media/TV` as
    /// `/mnt/cloud/Media/TV`). `None`: drive paths as they are.
    pub report_prefix: Option<String>,
}

/// The daemon: the store, the drive, and the work that moves tasks along.
pub struct Gateway<D: Drive> {
    shared: Arc<Shared<D>>,
}

struct Shared<D: Drive> {
    drive: D,
    store: Mutex<Store>,
    rpc: aria2::Config,
    /// The folder asked for with `--dir`, if any (else the drive's default).
    default_dir: Option<String>,
    callback_base: Option<String>,
    /// The watch folder, if any.
    watch: Option<std::path::PathBuf>,
    /// The web page's login, if any.
    web_login: Option<aria2::WebLogin>,
    /// Something changed: a download was added or removed (for the submission loop).
    wake: Notify,
    /// The running tasks changed (for the tracker).
    track: Notify,
    /// When the daemon started (the qBittorrent sessions' clock).
    started: std::time::Instant,
    /// The qBittorrent interface's sessions.
    qbittorrent: Mutex<offline_proto::qbittorrent::State>,
    /// The qBittorrent and Transmission interfaces' login and report prefix.
    clients: offline_proto::catalog::Config,
    /// The Transmission interface's session.
    transmission: offline_proto::transmission::State,
    /// Callbacks that named a task, for the tracker to confirm.
    hints: mpsc::Sender<(aria2::Gid, Hint)>,
    hints_rx: Mutex<Option<mpsc::Receiver<(aria2::Gid, Hint)>>>,
}

impl<D: Drive> Clone for Gateway<D> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<D: Drive> Gateway<D> {
    /// Opens (creating if needed) the task store at `state` and resumes what it holds.
    ///
    /// # Errors
    ///
    /// A SQLite error opening or reading the store.
    pub fn open(drive: D, state: &Path, config: ServeConfig) -> rusqlite::Result<Self> {
        let shown_dir = config
            .default_dir
            .clone()
            .unwrap_or_else(|| drive.default_dir());
        let store = Store::open(state, shown_dir.clone(), drive.kind(), drive.reconciles())?;
        let session: u64 = rand::random();
        let (hints, hints_rx) = mpsc::channel(CALLBACK_QUEUE);
        let version = env!("CARGO_PKG_VERSION").to_owned();
        let clients = offline_proto::catalog::Config {
            login: config.web_login.clone(),
            report_prefix: config.report_prefix.clone(),
            version: version.clone(),
        };
        let transmission_session = format!("{:048x}", rand::random::<u128>());
        Ok(Self {
            shared: Arc::new(Shared {
                drive,
                store: Mutex::new(store),
                rpc: aria2::Config {
                    // Without an RPC secret, the web password stands for it.
                    secret: config
                        .secret
                        .or_else(|| config.web_login.as_ref().map(|l| l.password.clone())),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    session_id: format!("{session:016x}"),
                    default_dir: shown_dir,
                },
                default_dir: config.default_dir,
                callback_base: config
                    .callback_base
                    .map(|b| b.trim_end_matches('/').to_owned()),
                watch: config.watch,
                web_login: config.web_login,
                wake: Notify::new(),
                track: Notify::new(),
                started: std::time::Instant::now(),
                qbittorrent: Mutex::new(offline_proto::qbittorrent::State::default()),
                clients,
                transmission: offline_proto::transmission::State::new(transmission_session),
                hints,
                hints_rx: Mutex::new(Some(hints_rx)),
            }),
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves on `listener` and runs the submission and tracking work until
    /// `shutdown` resolves.
    ///
    /// # Errors
    ///
    /// None yet: accept errors (out of file descriptors) are waited out.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let work = tokio::spawn({
            let gateway = self.clone();
            async move { gateway.work().await }
        });
        let watch = self.shared.watch.clone().map(|dir| {
            let gateway = self.clone();
            tokio::spawn(async move { gateway.watch(dir).await })
        });
        tokio::select! {
            () = http::accept_loop(listener, self.router()) => {}
            () = shutdown => {}
        }
        work.abort();
        if let Some(watch) = watch {
            watch.abort();
        }
        Ok(())
    }
}

/// Whether listening on `addr` needs a secret (`--rpc-secret` or `--web-password`):
/// anything but loopback does.
pub fn needs_secret(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}
