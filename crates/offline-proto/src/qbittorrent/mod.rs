//! The sans-IO qBittorrent Web API (v2) layer: `offline serve` answers under
//! `/api/v2/` as a qBittorrent, so Sonarr, Radarr, Lidarr, Prowlarr, MoviePilot,
//! Flexget, the `qbittorrent-api` Python package and qBittorrent's own WebUI clients
//! drive the cloud drive.
//!
//! The source of every name and rule is qBittorrent **v4.6.7** (WebAPI **2.9.3**):
//! its WebUI API wiki page ("WebUI API (qBittorrent 4.1)") and, where the wiki is
//! silent, its code at that tag: `src/webui/webapplication.cpp` (sessions, the
//! cross-site check, parameters), `src/webui/api/authcontroller.cpp` (login, bans),
//! `src/webui/api/torrentscontroller.cpp`, `appcontroller.cpp`,
//! `transfercontroller.cpp`, `synccontroller.cpp` and
//! `serialize/serialize_torrent.cpp`.
//!
//! The daemon moves bytes; this module decides. [`handle`] takes one HTTP request
//! under `/api/v2/` already read ([`Request`]: the method, the path after `/api/v2/`,
//! the query, the body's [`Form`], the headers the checks need, the peer, a clock and
//! a fresh session ID) and returns the [`Reply`]: status, content type, body and the
//! `Set-Cookie` to send. The daemon answers 413 itself for a body over
//! [`MAX_BODY_BYTES`] and 400 for a multipart body it cannot decode.
//!
//! # Who may call
//!
//! In qBittorrent's order (`WebApplication::processRequest`):
//!
//! 1. a cross-site request (`Origin`, else `Referer`, names another host than
//!    `Host`) is refused: 401 `Unauthorized`;
//! 2. the `SID` cookie names a session ([`SESSION_TIMEOUT`] without a request ends
//!    it). Without [`Config::login`] a **loopback** peer needs none: a session is
//!    started for it (and its cookie sent), as qBittorrent's "bypass authentication
//!    for clients on localhost"; any other peer is refused (403 `Forbidden`) — there
//!    are no credentials it could log in with;
//! 3. `auth/login` (POST, `username`, `password`) is the one call without a session:
//!    right → `Ok.` and `Set-Cookie: SID=…; HttpOnly; SameSite=Strict; path=/`; wrong
//!    → `Fails.` (200), counted per address: the [`MAX_AUTH_FAILS`]th starts a ban of
//!    [`BAN_DURATION`] seconds during which `auth/login` answers 403 with
//!    [`BANNED_MESSAGE`] (as qBittorrent, the ban is checked by `auth/login` only: a
//!    banned address without a session can do nothing else either). A caller that has
//!    a session gets `Ok.` at once;
//! 4. anything else without a session: 403 `Forbidden`. `auth/logout` ends the
//!    session (and expires the cookie).
//!
//! # Methods
//!
//! qBittorrent 4.6.7 takes `GET` or `POST` for most calls; 5.0 takes only `POST` for
//! those that change something. This layer takes **`GET` or `POST` for reads** and
//! **only `POST` for actions** (login and logout included), answering 405 `Method Not
//! Allowed` otherwise: every app that drives a qBittorrent (Sonarr and Radarr's
//! `QBittorrentProxyV2`, `qbittorrent-api`) POSTs its actions, and a `GET` action is
//! what a cross-site `<img>` could send to a loopback daemon without a login. A `GET`'s
//! parameters are its query string, a `POST`'s its body only, as qBittorrent reads
//! them ([`Form`]).
//!
//! # Errors
//!
//! As qBittorrent's `APIErrorType`s: a missing parameter (its `requireParams`) 400
//! `Missing required parameters: …` (the text of qBittorrent's current
//! `apicontroller.cpp`; the status is 4.6.7's, its text may be terser), bad data 400, a
//! conflict 409 (with qBittorrent's texts: `Incorrect category name`, `Unable to
//! create category`, `Unable to edit category`, or the catalog's reason), an unknown
//! torrent or endpoint 404 `Not Found`, each with a plain-text body. Unknown paths are
//! 404 too (after the session check: 403 comes first, as in qBittorrent).
//!
//! # Paths
//!
//! The drive's folders (`/Media/TV`) are shown under [`Config::report_prefix`]
//! (`/mnt/cloud` gives `/mnt/cloud/Media/TV`), where the app's machine mounts the
//! drive; a `savepath` sent must be under that prefix (then it is taken back to the
//! drive's folder) or relative (then it is under the default folder, as qBittorrent
//! reads a relative save path).
//!
//! # How a task reads as a torrent
//!
//! | [`TaskState`](crate::aria2::TaskState) | `state` | `progress` |
//! | --- | --- | --- |
//! | `Queued`, held (added paused) | `pausedDL` | done share |
//! | `Queued` | `queuedDL` | done share |
//! | `Submitting` | `metaDL` for a magnet link without files, else `queuedDL` | done share |
//! | `Running`, with a speed | `downloading` | done share |
//! | `Running`, a magnet link without files at 0 % | `metaDL` | 0 |
//! | `Running`, no speed | `stalledDL` | done share |
//! | `Complete` | `pausedUP` (the drive does not seed: a finished, stopped torrent) | 1 |
//! | `Failed`, `UnknownOutcome` | `error` (the reason in `torrents/properties`' `comment` and `torrents/trackers`' `msg`) | done share |
//!
//! `size` counts the selected files, `total_size` all of them; upload figures, peers
//! and seeds are 0, limits -1; `ratio` 0. The fields and their JSON types are
//! `torrents/info`'s in 4.6.7, alphabetical as Qt writes them.
//!
//! # Endpoints
//!
//! - `auth/login`, `auth/logout`;
//! - `app/version` (`v4.6.7`), `app/webapiVersion` (`2.9.3`), `app/buildInfo`,
//!   `app/preferences` (the fields the apps read: no queueing, no share limits, DHT
//!   on, the default folder as `save_path`), `app/setPreferences` (accepted and
//!   ignored), `app/defaultSavePath`;
//! - `torrents/info` (`filter`, `category`, `tag`, `hashes`, `sort`, `reverse`,
//!   `limit`, `offset`), `torrents/properties`, `torrents/files`,
//!   `torrents/trackers`;
//! - `torrents/add` (`urls`: magnet links, http(s) links and bare infohashes; the
//!   uploaded `.torrent` files; `savepath`, `category`, `tags`, `paused`/`stopped`,
//!   `rename`), `torrents/delete`, `torrents/pause`/`resume` and their 5.0 names
//!   `torrents/stop`/`start` (honoured for a task not yet sent to the drive; for one
//!   the drive already fetches, nothing changes: the drive cannot pause it);
//! - `torrents/categories`, `createCategory`, `editCategory`, `removeCategories`,
//!   `setCategory`; `torrents/tags`, `createTags`, `deleteTags`, `addTags`,
//!   `removeTags`;
//! - `torrents/topPrio`, `bottomPrio`, `increasePrio`, `decreasePrio`: 409 `Torrent
//!   queueing must be enabled`, as qBittorrent with queueing off;
//!   `torrents/setShareLimits`, `setForceStart`, `setSuperSeeding`,
//!   `setAutoManagement`, `toggleSequentialDownload`, `toggleFirstLastPiecePrio`,
//!   `setDownloadLimit`, `setUploadLimit`, `recheck`, `reannounce`: accepted and
//!   ignored (200; the drive has no such settings);
//! - `transfer/info`, `sync/maindata` (per session, full then partial updates).

mod endpoints;
mod form;
mod session;
mod sync;
mod torrent;

pub use form::{Form, FormFile, MAX_FORM_FIELDS};
pub use session::{
    State, BANNED_MESSAGE, BAN_DURATION, MAX_AUTH_FAILS, MAX_SESSIONS, MAX_SYNC_SNAPSHOTS,
    MAX_TRACKED_ADDRESSES, SESSION_TIMEOUT, SID_COOKIE,
};
pub use torrent::MAX_ETA;

use std::borrow::Cow;
use std::net::IpAddr;

use crate::catalog::Catalog;
pub use crate::catalog::{Config, WebLogin as Login};

/// The largest request body read, in bytes (16 MiB, a few torrent files): the daemon
/// answers 413 for a larger one.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// The qBittorrent version claimed (`app/version` answers it with a `v`).
pub const QBITTORRENT_VERSION: &str = "4.6.7";

/// The WebAPI version claimed (`app/webapiVersion`): qBittorrent 4.6.7's.
pub const WEBAPI_VERSION: &str = "2.9.3";

/// The `Content-Type` of a text answer (`Ok.`, `Fails.`, versions, errors).
pub const TEXT: &str = "text/plain; charset=UTF-8";

/// The `Content-Type` of a JSON answer.
pub const JSON: &str = "application/json";

/// One HTTP request under `/api/v2/`, as the daemon read it. `Debug` shows no
/// credentials: the cookie, the new session ID and `password` values are `***`.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method (`GET`, `POST`, …).
    pub method: &'a str,
    /// The path after `/api/v2/` (`torrents/info`).
    pub path: &'a str,
    /// The raw query string without its `?` (`""` if none): a `GET`'s parameters.
    pub query: &'a str,
    /// The body's fields and files (urlencoded or multipart, decoded by the daemon): a
    /// `POST`'s parameters; empty for a `GET`.
    pub form: &'a Form,
    /// The `Cookie` header.
    pub cookie: Option<&'a str>,
    /// The `Host` header.
    pub host: Option<&'a str>,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Referer` header.
    pub referer: Option<&'a str>,
    /// Whether the peer's address is a loopback address.
    pub peer_loopback: bool,
    /// The peer's address (failed logins are counted per address).
    pub peer: IpAddr,
    /// Seconds on a monotonic clock (session expiry, bans).
    pub now: u64,
    /// A fresh random session ID (e.g. 32 hex digits), used if this request starts a
    /// session.
    pub new_sid: &'a str,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let query = Form::from_urlencoded(self.query.as_bytes());
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "query",
                &query.fields.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("form", self.form)
            .field("cookie", &self.cookie.map(|_| "***"))
            .field("host", &self.host)
            .field("origin", &self.origin)
            .field("referer", &self.referer)
            .field("peer_loopback", &self.peer_loopback)
            .field("peer", &self.peer)
            .field("now", &self.now)
            .field("new_sid", &"***")
            .finish()
    }
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status: 200, or 400, 401, 403, 404, 405, 409.
    pub status: u16,
    /// The `Content-Type`: [`TEXT`] or [`JSON`].
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// The `Set-Cookie` header's value to send, if any.
    pub set_cookie: Option<String>,
}

impl Reply {
    /// A text answer with status 200.
    fn text(body: impl Into<String>) -> Self {
        Self::status_text(200, body)
    }

    /// A text answer.
    fn status_text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: body.into().into_bytes(),
            set_cookie: None,
        }
    }

    /// 200 with an empty body.
    fn empty() -> Self {
        Self::text("")
    }

    /// A JSON answer with status 200.
    fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        Self::json_bytes(serde_json::to_vec(value).expect("the answers serialize"))
    }

    /// A JSON answer already written.
    fn json_bytes(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type: JSON,
            body,
            set_cookie: None,
        }
    }

    /// The body as text (lossy), for tests and logs.
    pub fn text_body(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// A refusal, as qBittorrent's `APIError`/`HTTPError`: a status and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: u16,
    message: Cow<'static, str>,
}

impl Refusal {
    fn new(status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// `APIErrorType::BadParams`/`BadData`: 400.
    fn bad(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(400, message)
    }

    /// `APIErrorType::Conflict`: 409.
    fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(409, message)
    }

    /// `APIErrorType::NotFound`: 404.
    fn not_found() -> Self {
        Self::new(404, "Not Found")
    }

    fn reply(self) -> Reply {
        Reply::status_text(self.status, self.message)
    }
}

/// A call's answer or refusal.
type Answer = Result<Reply, Refusal>;

/// Whether an endpoint only reads (taken with `GET` or `POST`) or acts (`POST` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Action,
}

/// The most body bytes a request may send before it is known to come from a session
/// (or from a loopback peer with no login configured): enough for `auth/login`'s
/// form. Bigger bodies (a `.torrent` upload) need a session, so a peer that has not
/// logged in cannot make the daemon hold [`MAX_BODY_BYTES`] per connection.
pub const MAX_ANONYMOUS_BODY_BYTES: usize = 64 << 10;

/// How many body bytes to read for a request with this `Cookie` header from a peer
/// (`peer_loopback`) at `now`, before [`handle`]: [`MAX_BODY_BYTES`] for a live
/// session, or for a loopback peer when `config` has no login (it needs none);
/// else [`MAX_ANONYMOUS_BODY_BYTES`]. The daemon answers a bigger body 413 without
/// reading it. Changes nothing in `state`.
pub fn body_limit(
    cookie: Option<&str>,
    peer_loopback: bool,
    state: &State,
    config: &Config,
    now: u64,
) -> usize {
    let open = config.login.is_none() && peer_loopback;
    if open || state.has_session(cookie, now) {
        MAX_BODY_BYTES
    } else {
        MAX_ANONYMOUS_BODY_BYTES
    }
}

/// Answers one request under `/api/v2/` (see the module's docs for the order of the
/// checks), executed against `catalog`; `state` keeps the sessions and failed logins
/// between requests.
pub fn handle<C: Catalog + ?Sized>(
    request: &Request<'_>,
    catalog: &mut C,
    state: &mut State,
    config: &Config,
) -> Reply {
    if session::is_cross_site(request.host, request.origin, request.referer) {
        return Reply::status_text(401, "Unauthorized");
    }
    let path = request.path.trim_start_matches('/');
    let mut started = None;
    let mut sid = state.resume(request.cookie, request.now);
    if sid.is_none() && config.login.is_none() {
        if !request.peer_loopback {
            return Reply::status_text(403, "Forbidden");
        }
        state.start(request.new_sid, request.now);
        started = Some(session::start_cookie(request.new_sid));
        sid = Some(request.new_sid.to_owned());
    }
    let mut reply = match (endpoints::kind(path), sid) {
        _ if path == "auth/login" && request.method != "POST" => method_not_allowed(),
        (_, sid) if path == "auth/login" => login(request, state, config, sid.is_some()),
        (_, None) => Reply::status_text(403, "Forbidden"),
        (None, Some(_)) => Refusal::not_found().reply(),
        (Some(kind), Some(sid)) => {
            let method_ok = match kind {
                Kind::Read => matches!(request.method, "GET" | "POST"),
                Kind::Action => request.method == "POST",
            };
            if method_ok {
                let query;
                let params = if request.method == "GET" {
                    query = form::query(request.query);
                    &*query
                } else {
                    request.form
                };
                let call = endpoints::Call {
                    params,
                    prefix: config.report_prefix.as_deref(),
                    config,
                };
                endpoints::dispatch(path, &call, catalog, state, &sid, request.now)
                    .unwrap_or_else(Refusal::reply)
            } else {
                method_not_allowed()
            }
        }
    };
    if reply.set_cookie.is_none() {
        reply.set_cookie = started;
    }
    reply
}

fn method_not_allowed() -> Reply {
    Reply::status_text(405, "Method Not Allowed")
}

/// `auth/login` (`AuthController::loginAction`).
fn login(request: &Request<'_>, state: &mut State, config: &Config, has_session: bool) -> Reply {
    if has_session {
        return Reply::text("Ok.");
    }
    let Some(expected) = &config.login else {
        // Unreachable: without a login every served peer has a session.
        return Reply::status_text(403, "Forbidden");
    };
    state.lift_ended_ban(request.peer, request.now);
    if state.is_banned(request.peer, request.now) {
        return Reply::status_text(403, BANNED_MESSAGE);
    }
    let username = request.form.get("username").unwrap_or("");
    let password = request.form.get("password").unwrap_or("");
    if expected.matches(username.as_bytes(), password.as_bytes()) {
        state.login_succeeded(request.peer);
        state.start(request.new_sid, request.now);
        let mut reply = Reply::text("Ok.");
        reply.set_cookie = Some(session::start_cookie(request.new_sid));
        reply
    } else {
        state.login_failed(request.peer, request.now);
        Reply::text("Fails.")
    }
}
