//! Fetching sources over http(s), for the tasks of both providers: the HTTP client,
//! GETs that follow redirects (up to [`MAX_REDIRECTS`] hops, to http(s) targets only),
//! streaming a body into a file at the configured rate, and the words of the failure
//! reasons.

use std::error::Error as StdError;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{LOCATION, USER_AGENT};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{debug, warn};
use url::Url;

use super::body::content_length;
use super::Env;

/// The HTTP client used for sources and callbacks.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long connecting to a source or callback receiver may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a source may stay silent (before its answer, or between body chunks).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirect hops followed before the task fails.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// The largest piece written (and counted for progress) at once, in bytes.
pub(crate) const MAX_PIECE: usize = 64 * 1024;
/// The longest stored file name (after the task ID), in bytes.
const MAX_STORED_NAME_BYTES: usize = 200;
/// Bytes after which a download without a known length reports about half done.
const UNKNOWN_LENGTH_HALF: f64 = 1024.0 * 1024.0;
/// The `User-Agent` of source and callback requests.
pub(crate) const AGENT: &str = concat!("offline-emulator/", env!("CARGO_PKG_VERSION"));

const MIB: u64 = 1024 * 1024;

/// Builds the client: plain http and https (rustls, webpki roots), HTTP/1.1, a 10 s
/// connect timeout, no idle pooled connections (so nothing outlives a download).
pub(crate) fn http_client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.enforce_http(false);
    http.set_nodelay(true);
    // Name the ring provider, so that another rustls backend turned on elsewhere in a
    // build cannot make the choice ambiguous (ring with default versions never fails).
    let https = HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .unwrap_or_else(|_| HttpsConnectorBuilder::new().with_webpki_roots())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(https)
}

/// Resolves when the emulator stops (or its handle is gone).
pub(crate) async fn cancelled(rx: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: the emulator is gone, stop too.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The progress percentage of a running download.
pub(crate) fn running_process(received: u64, content_length: Option<u64>) -> f64 {
    // Precision loss above 2^53 bytes does not matter for a percentage.
    #[allow(clippy::cast_precision_loss)]
    let received = received as f64;
    match content_length {
        #[allow(clippy::cast_precision_loss)]
        Some(total) if total > 0 => (received / total as f64 * 100.0).min(100.0),
        Some(_) => 0.0,
        None => 95.0 * (1.0 - 0.5_f64.powf(received / UNKNOWN_LENGTH_HALF)),
    }
}

/// GETs a source for a task: the answer (2xx, after redirects) and its
/// `Content-Length`, or why the task fails.
pub(crate) async fn open_source(
    env: &Env,
    url: &str,
) -> Result<(Response<Incoming>, Option<u64>), String> {
    let response = get_following_redirects(&env.http, url, env.loopback_only).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("source answered HTTP {}", status.as_u16()));
    }
    let length = content_length(response.headers());
    Ok((response, length))
}

/// How a failed body read reads in a failure reason, from the bytes received, the
/// declared length, and the error.
pub(crate) type BodyFailure = fn(u64, Option<u64>, &hyper::Error) -> String;

/// Streams `body` into a new file at `path`, `piece` bytes at a time at most, at the
/// configured rate. `check` sees each piece and the bytes received with it before the
/// piece is written, and may fail the download. A body shorter than `content_length`
/// fails as truncated. The bytes stored, or why the download fails.
pub(crate) async fn stream_to_file(
    env: &Env,
    mut body: Incoming,
    path: &Path,
    content_length: Option<u64>,
    piece: usize,
    failure: BodyFailure,
    mut check: impl FnMut(&[u8], u64) -> Result<(), String>,
) -> Result<u64, String> {
    let store = |e: std::io::Error| format!("cannot store the file: {e}");
    let mut file = tokio::fs::File::create(path).await.map_err(store)?;
    let mut received: u64 = 0;
    let started = env.now();
    loop {
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
            Err(_) => {
                return Err(format!(
                    "source timed out: no data for {} s",
                    IDLE_TIMEOUT.as_secs()
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(failure(received, content_length, &e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        for chunk in data.chunks(piece.max(1)) {
            received += chunk.len() as u64;
            check(chunk, received)?;
            file.write_all(chunk).await.map_err(store)?;
            throttle(env, started, received).await;
        }
    }
    if let Some(total) = content_length.filter(|t| *t != received) {
        return Err(format!("truncated: received {received} of {total} bytes"));
    }
    file.flush().await.map_err(store)?;
    Ok(received)
}

/// Sleeps until `received` bytes are due at the configured rate since `started`.
async fn throttle(env: &Env, started: Instant, received: u64) {
    let Some(rate) = env.fetch_rate.filter(|r| *r > 0) else {
        return;
    };
    #[allow(clippy::cast_precision_loss)]
    let due = Duration::from_secs_f64(received as f64 / rate as f64);
    let elapsed = env.now().saturating_duration_since(started);
    if due > elapsed {
        tokio::time::sleep(due - elapsed).await;
    }
}

/// GETs `url`, following up to [`MAX_REDIRECTS`] redirects to http(s) targets.
/// With `loopback_only`, a URL (or redirect) to any other host fails the task before
/// anything is sent.
pub(crate) async fn get_following_redirects(
    client: &HttpClient,
    url: &str,
    loopback_only: bool,
) -> Result<Response<Incoming>, String> {
    let mut current = Url::parse(url).map_err(|e| format!("invalid source URL: {e}"))?;
    for _hop in 0..=MAX_REDIRECTS {
        if !matches!(current.scheme(), "http" | "https") {
            return Err(format!(
                "unsupported URL scheme {:?}: only http and https",
                current.scheme()
            ));
        }
        if loopback_only && !is_loopback(&current) {
            return Err(format!(
                "source host {} is not reachable from this emulator (loopback only)",
                current.host_str().unwrap_or("")
            ));
        }
        let response = send_get(client, &current).await?;
        if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("source answered HTTP {status} without a Location"))?;
        current = current
            .join(location)
            .map_err(|e| format!("source redirected to an invalid URL {location:?}: {e}"))?;
        debug!(status, "following redirect");
    }
    Err(format!("too many redirects (more than {MAX_REDIRECTS})"))
}

async fn send_get(client: &HttpClient, url: &Url) -> Result<Response<Incoming>, String> {
    let mut url = url.clone();
    url.set_fragment(None);
    let request = Request::get(url.as_str())
        .header(USER_AGENT, AGENT)
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("invalid source URL: {e}"))?;
    match tokio::time::timeout(IDLE_TIMEOUT, client.request(request)).await {
        Err(_) => Err(format!(
            "source timed out: no answer within {} s",
            IDLE_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(describe_client_error(&e)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// Whether `url`'s host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A failure reason for a request that got no answer.
fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    let chain = error_chain(e);
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!("connection refused: {chain}")
                }
                std::io::ErrorKind::TimedOut => return format!("connection timed out: {chain}"),
                _ => {}
            }
        }
        source = err.source();
    }
    if e.is_connect() {
        format!("cannot connect to source: {chain}")
    } else {
        format!("source request failed: {chain}")
    }
}

pub(crate) use offline_proto::error_chain;

/// A size for a failure reason: `100 MB` for whole mebibytes, else `N bytes`.
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The name a file is stored under: path separators, reserved and control characters
/// become `_`, at most [`MAX_STORED_NAME_BYTES`] bytes, `download` when nothing is left.
pub(crate) fn sanitize_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_STORED_NAME_BYTES));
    for c in name.trim().chars() {
        let c = if c.is_control() || "\\/:*?\"<>|".contains(c) {
            '_'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_STORED_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    if out.chars().all(|c| c == '.' || c == ' ') {
        "download".to_owned()
    } else {
        out
    }
}

/// Removes a file, saying so (at `warn`) only when it was there and could not be.
pub(crate) async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "cannot remove a file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names() {
        crate::common::check_table(
            sanitize_file_name,
            [
                ("a/b\\c:d.png", "a_b_c_d.png"),
                ("..", "download"),
                ("  ", "download"),
                ("测试.mp4", "测试.mp4"),
            ],
        );
        let long = "文".repeat(300);
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_STORED_NAME_BYTES);
        assert!(s.chars().all(|c| c == '文'));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_text(100 * MIB), "100 MB");
        assert_eq!(size_text(1000), "1000 bytes");
    }

    #[test]
    fn process_from_bytes() {
        crate::common::check_table(
            |(received, length)| running_process(received, length),
            [
                ((0, Some(100)), 0.0),
                ((50, Some(200)), 25.0),
                ((300, Some(200)), 100.0),
                ((10, Some(0)), 0.0),
                ((0, None), 0.0),
            ],
        );
        let half = running_process(1024 * 1024, None);
        assert!((half - 47.5).abs() < 1e-9, "{half}");
        assert!(running_process(u64::MAX, None) <= 95.0);
    }
}
