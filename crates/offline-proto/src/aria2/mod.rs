//! The sans-IO aria2 JSON-RPC layer: `offline serve` answers as an aria2 download
//! client, so AriaNg, browser extensions and `aria2p` can drive the cloud drive.
//!
//! The source of every name and rule is aria2's manual, section "RPC interface"
//! (<https://aria2.github.io/manual/en/html/aria2c.html#rpc-interface>); where the
//! manual is silent, this layer answers as aria2 itself does, and says so.
//!
//! The daemon moves bytes; this module decides:
//!
//! - [`handle_body`]: a request body (HTTP `POST /jsonrpc`, or a WebSocket text frame)
//!   in, the [`Reply`] to send out. Made of [`envelope::parse`] (bounded by
//!   [`MAX_BODY_BYTES`] and [`MAX_BATCH_LEN`]) and [`handle`] (one request; the
//!   `token:` secret; every method, listed in [`METHODS`]).
//! - [`Downloads`]: the task store the daemon implements. It hands out
//!   [`TaskView`]s; [`status()`], [`files()`] and [`uris()`] read them as aria2's
//!   structs (the mapping decisions are in [`status`](mod@status)).
//! - [`Event`]: the WebSocket notifications, and [`Event::between`] to know which to
//!   send when a task's state changes.
//! - [`Gid`]: the 16-hex-digit download key.
//! - [`Caller`], [`WebLogin`]: who may call, by `token:` or by the web page's HTTP
//!   Basic login ([`handle_body_from`]).

mod auth;
pub mod envelope;
mod events;
mod gid;
mod methods;
pub mod status;
mod store;

pub use auth::{Caller, WebLogin};
pub use envelope::{Request, Response, RpcError, MAX_BATCH_LEN, MAX_BODY_BYTES};
pub use events::Event;
pub use gid::{Gid, GidError};
pub use methods::{handle, handle_from, page, ENABLED_FEATURES, METHODS};
pub use status::{
    files, status, uris, Failure, FailureKind, FileView, Progress, Queue, TaskState, TaskView,
    TorrentInfo, PERCENT_KEY,
};
pub use store::{AddRequest, Downloads, Source, StoreError};

use crate::Secret;

/// What the daemon is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The RPC secret (aria2's `--rpc-secret`): when set, every method but
    /// `system.listMethods`, `system.listNotifications` and `system.multicall` itself
    /// needs `token:SECRET` as its first parameter. Never answered by any method.
    pub secret: Option<Secret>,
    /// `aria2.getVersion`'s `version`: the daemon's own version, e.g. `0.1.0`.
    pub version: String,
    /// `aria2.getSessionInfo`'s `sessionId`: made anew each time the daemon starts
    /// (aria2 manual, RPC interface, `aria2.getSessionInfo`).
    pub session_id: String,
    /// `aria2.getGlobalOption`'s `dir`: the drive folder downloads go to when no `dir`
    /// is given.
    pub default_dir: String,
}

/// What to send back for a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The JSON text.
    pub body: String,
    /// The HTTP status aria2 would send it with ([`Response::http_status`]; 200 for a
    /// batch). Not used over WebSocket.
    pub http_status: u16,
    /// Whether any call was refused for its token: aria2 sends such answers only after
    /// a delay (about a second) to slow guessing; the daemon should too.
    pub unauthorized: bool,
}

/// Parses `body`, executes what it asks of `store`, and returns the reply (for a
/// batch, the answers in the order of the calls).
pub fn handle_body<D: Downloads + ?Sized>(body: &[u8], store: &mut D, config: &Config) -> Reply {
    handle_body_from(body, store, config, Caller::Anonymous)
}

/// [`handle_body`] for a body from `caller` (see [`Caller`]): the calls of an
/// [`Caller::Authenticated`] body need no `token:`.
pub fn handle_body_from<D: Downloads + ?Sized>(
    body: &[u8],
    store: &mut D,
    config: &Config,
    caller: Caller,
) -> Reply {
    let mut one = |call: envelope::Call| match call {
        Ok(request) => handle_from(request, store, config, caller),
        Err(refusal) => refusal,
    };
    match envelope::parse(body) {
        Err(refusal) => single(&refusal),
        Ok(envelope::Envelope::Single(call)) => single(&one(call)),
        Ok(envelope::Envelope::Batch(calls)) => {
            let answers: Vec<Response> = calls.into_iter().map(&mut one).collect();
            Reply {
                body: serde_json::to_string(&answers).expect("JSON values serialize"),
                http_status: 200,
                unauthorized: answers.iter().any(|a| a.unauthorized),
            }
        }
    }
}

fn single(response: &Response) -> Reply {
    Reply {
        body: response.to_json(),
        http_status: response.http_status(),
        unauthorized: response.unauthorized,
    }
}
