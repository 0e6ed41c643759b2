//! The default HTTP transport of the offline-download toolkit.
//!
//! [`HyperClient`] implements [`offline_proto::HttpClient`] over
//! `hyper_util::client::legacy::Client` with `hyper-rustls` (the `ring` provider and
//! the webpki roots): HTTP/1.1 and HTTP/2 (negotiated by ALPN), pooled connections, a
//! connect timeout, a total timeout per request, and a size limit on every response
//! body (`http_body_util::Limited`). Redirects are never followed, so credentials never
//! travel to another host.
//!
//! ```no_run
//! # async fn f() {
//! use offline_proto::HttpClient;
//! let client = transport_hyper::HyperClient::builder()
//!     .total_timeout(std::time::Duration::from_secs(30))
//!     .build()
//!     .expect("TLS roots load");
//! let req = http::Request::get("https://open-api.123pan.com/").body(bytes::Bytes::new()).unwrap();
//! let resp = client.send(req).await;
//! # }
//! ```

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_proto::{HttpClient, HttpRequest, HttpResponse, TransportError, TransportErrorKind};

/// Default connect timeout: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total timeout of one request, from sending to the last body byte: 60 s.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default response body limit: 8 MiB (provider answers are a few KiB).
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Settings of a [`HyperClient`].
#[derive(Debug, Clone)]
pub struct HyperClientBuilder {
    connect_timeout: Duration,
    total_timeout: Duration,
    body_limit: usize,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
}

impl Default for HyperClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
        }
    }
}

impl HyperClientBuilder {
    offline_proto::setters! {
        /// How long to wait for a TCP (and TLS) connection. Default 10 s.
        connect_timeout: Duration;
        /// How long one request may take from sending to the last body byte. Default 60 s.
        total_timeout: Duration;
        /// The largest response body accepted, in bytes. Default 8 MiB.
        body_limit: usize;
        /// How long an idle pooled connection is kept. Default 90 s.
        pool_idle_timeout: Duration;
        /// How many idle connections per host the pool keeps. Default 32.
        pool_max_idle_per_host: usize;
    }

    /// Builds the client. Must be called inside a Tokio runtime's context only when
    /// requests are sent, not at build time.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] of kind `Other` if the TLS configuration cannot be made
    /// (the ring provider refuses the default protocol versions; does not happen in
    /// practice).
    pub fn build(self) -> Result<HyperClient, TransportError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .map_err(|e| {
                TransportError::new(TransportErrorKind::Other, format!("TLS setup failed: {e}"))
            })?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .build(https);
        Ok(HyperClient {
            inner,
            total_timeout: self.total_timeout,
            body_limit: self.body_limit,
        })
    }
}

/// The hyper-based [`HttpClient`]. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct HyperClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    total_timeout: Duration,
    body_limit: usize,
}

impl std::fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperClient")
            .field("total_timeout", &self.total_timeout)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl HyperClient {
    /// A builder with the defaults.
    pub fn builder() -> HyperClientBuilder {
        HyperClientBuilder::default()
    }

    /// A client with the defaults.
    ///
    /// # Errors
    ///
    /// As [`HyperClientBuilder::build`].
    pub fn new() -> Result<Self, TransportError> {
        Self::builder().build()
    }

    async fn send_inner(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        // The endpoint's own limit when the request carries one (the call machine sets
        // it), else this client's.
        let limit = request
            .extensions()
            .get::<offline_proto::ResponseLimit>()
            .map(|l| l.0);
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = self.inner.request(request).await.map_err(|e| {
            let kind = if e.is_connect() {
                TransportErrorKind::Connect
            } else {
                TransportErrorKind::Closed
            };
            let msg = if e.is_connect() {
                "could not connect"
            } else {
                "connection closed before the response arrived"
            };
            TransportError::new(kind, format!("{msg}: {}", offline_proto::error_chain(&e)))
                .with_source(e)
        })?;
        let (parts, body) = response.into_parts();
        let limit = limit.unwrap_or(self.body_limit);
        let collected = Limited::new(body, limit).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                TransportError::new(
                    TransportErrorKind::BodyTooLarge { limit },
                    format!("response body larger than {limit} bytes"),
                )
            } else {
                let msg = format!(
                    "response body broken off: {}",
                    offline_proto::error_chain(e.as_ref())
                );
                TransportError::new(TransportErrorKind::Closed, msg).with_source(e)
            }
        })?;
        Ok(http::Response::from_parts(parts, collected.to_bytes()))
    }
}

impl HttpClient for HyperClient {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        tracing::debug!(%method, %path, "sending");
        match tokio::time::timeout(self.total_timeout, self.send_inner(request)).await {
            Ok(result) => {
                match &result {
                    Ok(r) => {
                        tracing::debug!(%method, %path, status = r.status().as_u16(), bytes = r.body().len(), "answered")
                    }
                    Err(e) => tracing::debug!(%method, %path, error = %e, "failed"),
                }
                result
            }
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!("no complete answer within {:?}", self.total_timeout),
            )),
        }
    }
}

/// The clock of the tokio runtime: [`tokio::time::Instant`] for the monotonic time and
/// a wall clock anchored to it ([`offline_proto::clock::Anchor`]), so that under
/// tokio's paused test time (`#[tokio::test(start_paused = true)]`) both clocks advance
/// together and nothing waits for real. Outside a paused runtime it reads the
/// operating system's clocks.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    anchor: offline_proto::clock::Anchor,
}

impl TokioClock {
    /// A clock anchored now: its wall time starts at `SystemTime::now()`.
    pub fn new() -> Self {
        Self {
            anchor: offline_proto::clock::Anchor::new(
                tokio::time::Instant::now().into_std(),
                std::time::SystemTime::now(),
            ),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl offline_proto::clock::Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }
    fn wall(&self) -> std::time::SystemTime {
        self.anchor.wall_at(self.now())
    }
}

impl offline_proto::driver::Timer for TokioClock {
    fn sleep_until(
        &self,
        deadline: std::time::Instant,
    ) -> impl std::future::Future<Output = ()> + Send {
        tokio::time::sleep_until(deadline.into())
    }
}

/// Keeps tokio's paused time (`#[tokio::test(start_paused = true)]`) moving in steps
/// of at most 1 ms for as long as the runtime lives, so that tests over real loopback
/// sockets run in paused time without jumping their timeouts.
///
/// Tokio advances paused time to the next timer whenever the runtime has nothing to
/// run, also while a socket's data is on its way; alone, a wait on a socket would then
/// jump straight past a 10 s connect or 60 s request timeout. With a timer always due
/// within a millisecond, paused time only creeps while sockets work, and sleeps still
/// take no real time (a step costs microseconds). Spawns one task; call it once per
/// runtime, inside it.
///
/// # Panics
///
/// Outside a tokio runtime (as `tokio::spawn` does).
pub fn keep_paused_time_moving() {
    tokio::spawn(async {
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(1));
        loop {
            interval.tick().await;
        }
    });
}

/// Logs a retry the call machine is about to wait for, as the providers do: a
/// `tracing` event with target `offline::retry` at INFO, with the fields `endpoint`,
/// `error`, `delay_ms`, `attempt` and `max` (the CLI shows them on stderr).
pub fn log_retry(notice: &offline_proto::call::RetryNotice) {
    tracing::info!(
        target: "offline::retry",
        endpoint = %notice.endpoint,
        error = %notice.error,
        delay_ms = u64::try_from(notice.delay.as_millis()).unwrap_or(u64::MAX),
        attempt = notice.attempt,
        max = notice.max,
        "retrying"
    );
}

/// A [`Watch`](offline_proto::driver::Watch) that logs retries as [`log_retry`] does
/// and calls the closure when the request leaves.
#[derive(Debug, Clone, Copy)]
pub struct Logged<F>(pub F);

impl<F: Fn()> offline_proto::driver::Watch for Logged<F> {
    fn retry(&self, notice: &offline_proto::call::RetryNotice) {
        log_retry(notice);
    }
    fn sending(&self, _request: &offline_proto::HttpRequest) {
        (self.0)();
    }
}
