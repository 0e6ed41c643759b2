//! What both providers use: the settings, the clock, the injected faults, reading
//! request bodies, fetching sources over http(s), checking requests against a
//! description, and [`Env`], the part of the state both halves share (the clock, the
//! HTTP client, the stop signal, the background workers).
//!
//! Nothing here knows either provider: `pan123` and `sixpan` use this module, never
//! each other, and this module uses neither.

pub(crate) mod body;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod faults;
pub(crate) mod fetch;
pub(crate) mod openapi;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use offline_proto::clock::Clock;
use tokio::sync::watch;
use tokio::task::JoinSet;

use config::EmulatorConfig;
use faults::FaultState;
use fetch::HttpClient;

/// Checks `f` against a table of `(input, expected output)` cases (unit tests).
#[cfg(test)]
pub(crate) fn check_table<I: std::fmt::Debug + Copy, O: PartialEq<E> + std::fmt::Debug, E>(
    f: impl Fn(I) -> O,
    cases: impl IntoIterator<Item = (I, E)>,
) where
    E: std::fmt::Debug,
{
    for (input, expected) in cases {
        assert_eq!(f(input), expected, "for {input:?}");
    }
}

/// How long connections and workers get to finish after a stop.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// What both providers share: the clock every reading of time goes through, where
/// files land, the HTTP client for sources and callbacks, the stop signal, the
/// injected faults, the download limits, and the background workers.
pub(crate) struct Env {
    /// The one clock of the emulator ([`EmulatorConfig::clock`]).
    pub(crate) clock: Arc<dyn Clock>,
    /// Where downloaded and uploaded files are stored.
    pub(crate) data_dir: PathBuf,
    /// The client for sources and callbacks.
    pub(crate) http: HttpClient,
    /// Becomes `true` (or its sender goes away) when the emulator stops.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The injected faults.
    pub(crate) faults: FaultState,
    /// Fetch sources and send callbacks only to loopback hosts.
    pub(crate) loopback_only: bool,
    /// Bytes per second per download; `None` is unthrottled.
    pub(crate) fetch_rate: Option<u64>,
    /// The largest source a download accepts.
    pub(crate) max_source_bytes: u64,
    /// A token that is always valid ([`EmulatorConfig::static_token`]).
    static_token: Option<String>,
    /// What every issued credential starts with ([`EmulatorConfig::token_prefix`]).
    pub(crate) token_prefix: String,
    /// Connections served at once ([`EmulatorConfig::max_connections`]).
    pub(crate) max_connections: usize,
    workers: Mutex<JoinSet<()>>,
}

impl Env {
    /// The shared state for `config`, storing files in `data_dir`.
    pub(crate) fn new(
        config: &EmulatorConfig,
        data_dir: PathBuf,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            clock: Arc::clone(&config.clock),
            data_dir,
            http: fetch::http_client(),
            shutdown,
            faults: FaultState::new(config.faults.clone()),
            loopback_only: config.loopback_only,
            fetch_rate: config.fetch_rate.filter(|r| *r > 0),
            max_source_bytes: config.max_source_bytes,
            max_connections: config.max_connections.max(1),
            static_token: config.static_token.clone().filter(|t| !t.is_empty()),
            token_prefix: config.token_prefix.clone(),
            workers: Mutex::new(JoinSet::new()),
        }
    }

    /// The monotonic time now, from the clock.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The wall-clock time now, from the clock, in milliseconds since the Unix epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        clock::unix_ms(self.clock.wall())
    }

    /// Whether `token` is the configured static token (compared in constant time).
    pub(crate) fn is_static_token(&self, token: &str) -> bool {
        self.static_token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
    }

    /// Runs `fut` as a background worker that [`drain_workers`](Self::drain_workers)
    /// waits for.
    pub(crate) fn spawn_worker(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let mut workers = lock(&self.workers);
        while workers.try_join_next().is_some() {}
        workers.spawn(fut);
    }

    /// Waits (at most [`GRACE`]) for the workers, which end on their own once the stop
    /// signal is sent, then aborts any left.
    pub(crate) async fn drain_workers(&self) {
        let mut workers = std::mem::take(&mut *lock(&self.workers));
        let drain = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(GRACE, drain).await.is_err() {
            workers.shutdown().await;
        }
    }
}

/// Locks `m`, keeping on after a panic elsewhere: the data behind it is plain.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `n` random bytes as lowercase hex (`2n` digits).
pub(crate) fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex(&bytes)
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `text` is a UUID: `8-4-4-4-12` hex digits.
pub(crate) fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A JSON answer with `status` and `body`.
pub(crate) fn json_response(
    status: http::StatusCode,
    body: impl Into<bytes::Bytes>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let mut response = http::Response::new(http_body_util::Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_eq!(random_hex(16).len(), 32);
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    }
}
