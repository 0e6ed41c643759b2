//! The sans-IO Transmission RPC layer: `offline serve` answers as a Transmission
//! daemon, so Sonarr, Radarr, the `transmission-rpc` Python package, Transmission's
//! own remotes and the many tools built on them drive the cloud drive.
//!
//! The sources of every name and rule: Transmission's `docs/rpc-spec.md` as of
//! **4.0.6** (the bespoke protocol: `{"method":"torrent-get","arguments":{…},"tag":N}`
//! answered `{"arguments":{…},"result":"success","tag":N}`, kebab-case and camelCase
//! names) and as of **4.1** (JSON-RPC 2.0: `{"jsonrpc":"2.0","method":"torrent_get",
//! "params":{…},"id":N}` answered `{"id":N,"jsonrpc":"2.0","result":{…}}` or an
//! `error`, every name snake_case), and where the spec is silent, Transmission's own
//! code at those tags: `libtransmission/rpcimpl.cc` (methods, error texts),
//! `libtransmission/rpc-server.cc` (HTTP: login, the 409 handshake),
//! `libtransmission/api-compat.cc` (4.1: how the two protocols are told apart and
//! their names converted), `libtransmission/variant-json.cc` (how JSON is written).
//!
//! The daemon moves bytes; this module decides. [`handle`] takes one HTTP request to
//! the RPC path (`/transmission/rpc`, [`RPC_PATH`]) already read ([`Request`]: the
//! session-id and `Authorization` headers, whether the peer is on loopback, the body)
//! and returns the [`Reply`] to send: its status, headers and body.
//!
//! - [`http`]: the login (401), the loopback rule without a login (403), and the
//!   session-id handshake (409 with `X-Transmission-Session-Id`), in that order, as
//!   Transmission checks them. Call [`handle`] for **every** request to the RPC path,
//!   whatever its HTTP method: Sonarr and Radarr fetch the session id with a `GET`,
//!   which Transmission answers 409 like any other request. A request that is not a
//!   `POST` should still get [`refusal`]'s answer when there is one, and
//!   [`method_not_allowed`] (Transmission's 405) otherwise.
//! - [`envelope`]: how the protocol of a request is told — **a request object with a
//!   `jsonrpc` member is JSON-RPC 2.0, one without is the bespoke protocol**, as
//!   Transmission 4.1 tells them — and how each is answered in its own protocol and
//!   names; batches (JSON-RPC 2.0 arrays) and notifications (HTTP 204); error codes.
//! - [`methods`]: every method and what it does with the [`Catalog`].
//! - [`fields`]: `torrent-get`'s fields, and how a task's state reads as a torrent's
//!   status (the table below).
//! - [`session`]: `session-get`'s values, `session-set`, `session-stats`, `free-space`.
//!
//! Versions: in the bespoke protocol this daemon is a Transmission **4.0.6**:
//! `version` `"4.0.6 (offline-<Config::version>)"`, `rpc-version` 17,
//! `rpc-version-minimum` 14, `rpc-version-semver` `"5.3.0"` (the values 4.0.6
//! answers; Sonarr reads the number before the parenthesis and needs at least 2.40,
//! and 4.0 for labels). In JSON-RPC 2.0 it is a **4.1.0**: `"4.1.0 (offline-…)"`,
//! `rpc_version` 18, `rpc_version_minimum` 14, `rpc_version_semver` `"6.0.0"`, and
//! the 409 says `X-Transmission-Rpc-Version: 6.0.0`. Each protocol sees the
//! Transmission that speaks it, so a client checking versions gets a consistent
//! picture whichever it speaks.
//!
//! Paths: the drive's folders (`/Media/TV`) are shown to clients under
//! [`Config::report_prefix`] (`/mnt/cloud` gives `/mnt/cloud/Media/TV`), where the
//! client's machine mounts the drive; a `download-dir` a client sends must be under
//! that prefix and is taken back to the drive's folder.
//!
//! How a task reads as a torrent (details in [`fields`]):
//!
//! | [`TaskState`](crate::aria2::TaskState) | `status` | `isFinished` | `error` | `errorString` | `percentDone` | `leftUntilDone` |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | `Queued`, held (added paused) | 0 stopped | false | 0 | `""` | progress | the rest |
//! | `Queued`, `Submitting` | 3 queued to download | false | 0 | `""` | progress | the rest |
//! | `Running` | 4 downloading | false | 0 | `""` | progress | the rest |
//! | `Complete` | 0 stopped | true | 0 | `""` | 1 | 0 |
//! | `Failed` | 0 stopped | false | 3 (local error) | the failure's message | progress | the rest |
//! | `UnknownOutcome` | 0 stopped | false | 3 (local error) | "the cloud drive's answer to the add was lost; whether it made a task is unknown" | progress | the rest |
//! | `Removed` | not listed | | | | | |
//!
//! The drive does not seed, so a complete task is stopped and finished (Sonarr and
//! Radarr read `leftUntilDone` 0 with status 0, or `isFinished`, as completed); its
//! upload figures are 0, `uploadRatio` -1 until something was downloaded and 0 after
//! (Transmission's `TR_RATIO_NA` for nothing downloaded).
//!
//! Bounds, checked before anything is done: the body ([`MAX_BODY_BYTES`], 413
//! above it), a batch ([`MAX_BATCH_LEN`] requests), any array argument
//! ([`MAX_LIST_LEN`] elements: `ids`, `fields`, `labels`, file indices), the members
//! of an arguments object (256). JSON is read lazily: arguments a method does not
//! take are not decoded.
//!
//! The interface lacks a task lookup by GID; `torrent-add` finds the task it added
//! (or the duplicate) among [`Catalog::listed`].

pub mod envelope;
pub mod fields;
pub mod http;
pub mod methods;
pub mod session;

mod args;
mod json;

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::catalog::Catalog;
pub use crate::catalog::{Config, WebLogin as Login};

use envelope::Failure;
use json::Style;

/// The largest request body read, in bytes (16 MiB): a `torrent-add`'s base64
/// `metainfo` is a third larger than the `.torrent` file, so torrents up to about
/// 12 MiB fit. A larger body is answered 413.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// The most requests a JSON-RPC 2.0 batch may hold.
pub const MAX_BATCH_LEN: usize = 1000;

/// The most elements an array argument may have (`ids`, `fields`, `labels`, file
/// indices).
pub const MAX_LIST_LEN: usize = 100_000;

/// How many removals [`State`] remembers for `torrent-get`'s `removed`.
pub const REMEMBERED_REMOVALS: usize = 64;

/// The CSRF header (rpc-spec.md §2.3.1 / 4.1 §2.2.1).
pub const SESSION_HEADER: &str = "X-Transmission-Session-Id";

/// The header of a 409 that names the JSON-RPC version spoken (rpc-spec.md 4.1 §5).
pub const RPC_VERSION_HEADER: &str = "X-Transmission-Rpc-Version";

/// Transmission's RPC path (rpc-spec.md §2.3: `http://host:9091/transmission/rpc`).
pub const RPC_PATH: &str = "/transmission/rpc";

/// The Transmission version claimed in the bespoke protocol.
pub const TRANSMISSION_VERSION: &str = "4.0.6";
/// `rpc-version` in the bespoke protocol (Transmission 4.0.6's).
pub const RPC_VERSION: i64 = 17;
/// `rpc-version-minimum` (the same in 4.0.6 and 4.1).
pub const RPC_VERSION_MINIMUM: i64 = 14;
/// `rpc-version-semver` in the bespoke protocol (Transmission 4.0.6's).
pub const RPC_VERSION_SEMVER: &str = "5.3.0";
/// The Transmission version claimed in JSON-RPC 2.0.
pub const JSONRPC_TRANSMISSION_VERSION: &str = "4.1.0";
/// `rpc_version` in JSON-RPC 2.0 (Transmission 4.1.0's).
pub const JSONRPC_RPC_VERSION: i64 = 18;
/// `rpc_version_semver` in JSON-RPC 2.0 (Transmission 4.1.0's; also the
/// [`RPC_VERSION_HEADER`] of a 409).
pub const JSONRPC_RPC_VERSION_SEMVER: &str = "6.0.0";

/// One HTTP request to the RPC path, as the daemon read it. `Debug` shows no
/// credentials (the `Authorization` header is `***`) and the body's length only.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The `X-Transmission-Session-Id` header, if sent.
    pub session_id: Option<&'a str>,
    /// The `Authorization` header, if sent.
    pub authorization: Option<&'a str>,
    /// Whether the peer's address is a loopback address.
    pub peer_loopback: bool,
    /// The body (at most [`MAX_BODY_BYTES`] are read).
    pub body: &'a [u8],
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("session_id", &self.session_id)
            .field("authorization", &self.authorization.map(|_| "***"))
            .field("peer_loopback", &self.peer_loopback)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status: 200 (a JSON answer), 204 (JSON-RPC notifications only), 401,
    /// 403, 405, 409 or 413. A 401 is a failed login: a daemon may slow such answers,
    /// as Transmission's anti-brute-force counter does.
    pub status: u16,
    /// The headers to send (`Content-Type`; `WWW-Authenticate` with a 401;
    /// `X-Transmission-Session-Id` and friends with a 409).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of header `name` (ASCII case-insensitive), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the layer keeps between requests: the session id (made by the daemon, e.g.
/// anew at each start, as Transmission makes one per session), and the IDs of the
/// last [`REMEMBERED_REMOVALS`] tasks removed through this interface (for
/// `torrent-get`'s `removed`).
#[derive(Debug)]
pub struct State {
    session_id: String,
    removed: Mutex<VecDeque<u64>>,
}

impl State {
    /// The state of a session whose id is `session_id` (any ASCII text; Transmission
    /// uses 48 random alphanumerics).
    pub fn new(session_id: String) -> Self {
        Self {
            session_id,
            removed: Mutex::new(VecDeque::new()),
        }
    }

    /// The session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    fn record_removed(&self, id: u64) {
        let mut removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        removed.retain(|&r| r != id);
        if removed.len() == REMEMBERED_REMOVALS {
            removed.pop_front();
        }
        removed.push_back(id);
    }

    fn removed_ids(&self) -> Vec<u64> {
        let removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        removed.iter().copied().collect()
    }
}

/// Answers one request to the RPC path: the login and session checks ([`refusal`]),
/// then the body ([`envelope`]), executed against `catalog`.
pub fn handle<C: Catalog + ?Sized>(
    request: &Request<'_>,
    catalog: &mut C,
    state: &State,
    config: &Config,
) -> Reply {
    if let Some(refused) = refusal(request, state, config) {
        return refused;
    }
    if request.body.len() > MAX_BODY_BYTES {
        return http::simple(
            413,
            "Request Entity Too Large",
            &format!("<p>The body is over {MAX_BODY_BYTES} bytes.</p>"),
        );
    }
    envelope::answer(request.body, catalog, state, config)
}

/// The 401, 403 or 409 `request` gets before its body is read, if any (see
/// [`http`]).
pub fn refusal(request: &Request<'_>, state: &State, config: &Config) -> Option<Reply> {
    http::refusal(request, state, config)
}

/// Transmission's answer to a request to the RPC path that passed [`refusal`] but is
/// not a `POST`: 405 `<h1>405: Method Not Allowed</h1>`.
pub fn method_not_allowed() -> Reply {
    http::simple(405, "Method Not Allowed", "")
}

/// `version` in `style`.
fn version_text(style: Style, ours: &str) -> String {
    let theirs = style.pick(TRANSMISSION_VERSION, JSONRPC_TRANSMISSION_VERSION);
    format!("{theirs} (offline-{ours})")
}

/// The drive folder for a folder a client sent (`download-dir`, `location`): see
/// [`crate::catalog::drive_path`].
///
/// # Errors
///
/// Not absolute (Transmission's `"download directory path is not absolute"`), or
/// with a `..` component.
fn drive_path(prefix: Option<&str>, given: &str) -> Result<String, Failure> {
    if !given.starts_with('/') {
        return Err(Failure::path_not_absolute(
            "download directory path is not absolute",
        ));
    }
    crate::catalog::drive_path(prefix, given, "/").map_err(Failure::params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_credentials() {
        let request = Request {
            session_id: Some("id"),
            authorization: Some("Basic c29uYXJyOnNlY3JldA=="),
            peer_loopback: false,
            body: b"{}",
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("c29uYXJy"), "{shown}");
        assert!(
            shown.contains("***") && shown.contains("body_len: 2"),
            "{shown}"
        );
    }

    #[test]
    fn download_dirs_are_absolute() {
        let p = Some("/mnt/cloud");
        assert_eq!(drive_path(p, "/mnt/cloud/Media/TV").unwrap(), "/Media/TV");
        assert_eq!(drive_path(p, "/Media/TV").unwrap(), "/Media/TV");
        assert!(drive_path(p, "Media").is_err());
        assert!(drive_path(p, "/mnt/cloud/../x").is_err());
    }

    #[test]
    fn removals_are_remembered_up_to_the_bound() {
        let state = State::new("s".into());
        for id in 0..(REMEMBERED_REMOVALS as u64 + 5) {
            state.record_removed(id);
        }
        state.record_removed(10);
        let ids = state.removed_ids();
        assert_eq!(ids.len(), REMEMBERED_REMOVALS);
        assert_eq!(ids.last(), Some(&10));
        assert!(!ids.contains(&0));
    }
}
