//! The download machinery behind every task: fetch the source over http(s), store the
//! bytes, report progress, decide success or failure, then POST the callback.
//!
//! Redirects are followed, up to [`MAX_REDIRECTS`] hops, to http(s) targets only.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use offline_proto::pan123::{Callback, CallbackStatus, TaskId};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use url::Url;

use crate::state::{Shared, TaskKind};

/// The HTTP client used for sources and callbacks.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long connecting to a source or callback receiver may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a source may stay silent (before its answer, or between body chunks).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirect hops followed before the task fails.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Attempts to deliver a callback: one, then up to three retries.
const CALLBACK_ATTEMPTS: u32 = 4;
/// Pause before the first callback retry; doubled before each further one.
const CALLBACK_BACKOFF: Duration = Duration::from_millis(200);
/// How long one callback attempt may take.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest piece written (and counted for progress) at once, in bytes.
const MAX_PIECE: usize = 64 * 1024;
/// Bytes of a body looked at to recognise an image.
const SNIFF_LEN: usize = 64;
/// The longest stored file name (after the task ID), in bytes.
const MAX_STORED_NAME_BYTES: usize = 200;
/// The `User-Agent` of source and callback requests.
const AGENT: &str = concat!("offline-emulator/", env!("CARGO_PKG_VERSION"));

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

/// One task's work order.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: TaskId,
    pub(crate) kind: TaskKind,
    pub(crate) url: String,
    pub(crate) file_name: String,
    pub(crate) callback_url: Option<String>,
}

/// Runs a task to its end: download, record the outcome, deliver the callback.
pub(crate) async fn run(shared: Arc<Shared>, job: Job) {
    let mut shutdown = shared.shutdown.clone();
    let stored_name = format!("{}-{}", job.id, sanitize_file_name(&job.file_name));
    let final_path = shared.data_dir.join(&stored_name);
    let part_path = shared.data_dir.join(format!("{stored_name}.part"));
    debug!(task = %job.id, "download started");
    let result = tokio::select! {
        r = download(&shared, &job, &part_path) => r,
        () = cancelled(&mut shutdown) => {
            remove_quietly(&part_path).await;
            shared.fail_task(job.id, "emulator shut down".to_owned());
            return;
        }
    };
    let outcome = match result {
        Ok(received) => match tokio::fs::rename(&part_path, &final_path).await {
            Ok(()) => Ok(shared.succeed_task(job.id, received, final_path)),
            Err(e) => Err(format!("cannot store the file: {e}")),
        },
        Err(reason) => Err(reason),
    };
    let callback = match outcome {
        Ok(file_id) => {
            info!(task = %job.id, file_id, "task succeeded");
            Callback {
                url: job.url.clone(),
                status: CallbackStatus::Succeeded,
                fail_reason: String::new(),
                file_id: Some(file_id),
            }
        }
        Err(reason) => {
            info!(task = %job.id, %reason, "task failed");
            remove_quietly(&part_path).await;
            shared.fail_task(job.id, reason.clone());
            Callback {
                url: job.url.clone(),
                status: CallbackStatus::Failed,
                fail_reason: reason,
                file_id: None,
            }
        }
    };
    if let Some(target) = &job.callback_url {
        if shared.loopback_only && !Url::parse(target).is_ok_and(|u| is_loopback(&u)) {
            debug!(task = %job.id, "callback not sent: not a loopback host (loopback only)");
            return;
        }
        let (lost, twice, delay) = shared.faults.callback(shared.next_callback());
        if lost {
            debug!(task = %job.id, "callback lost (injected fault)");
            return;
        }
        if !delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancelled(&mut shutdown) => return,
            }
        }
        let mut delivered = tokio::select! {
            d = deliver_callback(&shared.http, target, &callback) => d,
            () = cancelled(&mut shutdown) => false,
        };
        if twice {
            debug!(task = %job.id, "callback sent twice (injected fault)");
            delivered &= deliver_callback(&shared.http, target, &callback).await;
        }
        shared.update_task(job.id, |t| t.callback_delivered = delivered);
    }
}

async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "cannot remove partial file");
        }
    }
}

/// Downloads the source into `part`; the number of bytes stored, or why the task
/// fails.
async fn download(shared: &Shared, job: &Job, part: &Path) -> Result<u64, String> {
    let response = get_following_redirects(&shared.http, &job.url, shared.loopback_only).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("source answered HTTP {}", status.as_u16()));
    }
    let content_length = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = match job.kind {
        TaskKind::CloudDrive => shared.max_source_bytes,
        TaskKind::ImageBed => shared.max_image_bytes,
    };
    let too_large = || match job.kind {
        TaskKind::CloudDrive => format!("source larger than {}", size_text(limit)),
        TaskKind::ImageBed => format!("image larger than {}", size_text(limit)),
    };
    if content_length.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut sniffer = match job.kind {
        TaskKind::ImageBed => Sniffer::for_content_type(
            response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        ),
        TaskKind::CloudDrive => None,
    };
    shared.progress(job.id, 0, content_length);

    let mut file = tokio::fs::File::create(part)
        .await
        .map_err(|e| format!("cannot store the file: {e}"))?;
    let mut body = response.into_body();
    let mut received: u64 = 0;
    let started = Instant::now();
    let piece = piece_size(shared.fetch_rate);
    loop {
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
            Err(_) => {
                return Err(format!(
                    "source timed out: no data for {} s",
                    IDLE_TIMEOUT.as_secs()
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(match content_length {
                    Some(total) if received < total => format!(
                        "truncated: received {received} of {total} bytes ({})",
                        error_chain(&e)
                    ),
                    _ => format!("source connection failed: {}", error_chain(&e)),
                })
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        for chunk in data.chunks(piece) {
            received += chunk.len() as u64;
            if received > limit {
                return Err(too_large());
            }
            if let Some(s) = &mut sniffer {
                s.feed(chunk)?;
            }
            file.write_all(chunk)
                .await
                .map_err(|e| format!("cannot store the file: {e}"))?;
            shared.progress(job.id, received, content_length);
            throttle(shared.fetch_rate, started, received).await;
        }
    }
    if let Some(total) = content_length {
        if received != total {
            return Err(format!("truncated: received {received} of {total} bytes"));
        }
    }
    if let Some(s) = &mut sniffer {
        s.finish()?;
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot store the file: {e}"))?;
    Ok(received)
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

/// `error: cause: cause's cause`, without repeats.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

fn piece_size(rate: Option<u64>) -> usize {
    match rate {
        Some(r) => usize::try_from(r / 20)
            .unwrap_or(MAX_PIECE)
            .clamp(1, MAX_PIECE),
        None => MAX_PIECE,
    }
}

/// Sleeps until `received` bytes are due at `rate` bytes per second since `started`.
async fn throttle(rate: Option<u64>, started: Instant, received: u64) {
    let Some(rate) = rate.filter(|r| *r > 0) else {
        return;
    };
    #[allow(clippy::cast_precision_loss)]
    let due = Duration::from_secs_f64(received as f64 / rate as f64);
    let elapsed = started.elapsed();
    if due > elapsed {
        tokio::time::sleep(due - elapsed).await;
    }
}

/// A size for a failure reason: `100 MB` for whole mebibytes, else `N bytes`.
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes >= MIB && bytes % MIB == 0 {
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

/// Decides whether an image-bed source is an image, from its declared type and its
/// first bytes.
#[derive(Debug)]
struct Sniffer {
    content_type: String,
    prefix: Vec<u8>,
    decided: bool,
}

impl Sniffer {
    /// A sniffer when `content_type` is present and not `image/*`; `None` (nothing to
    /// check) otherwise.
    fn for_content_type(content_type: Option<&str>) -> Option<Self> {
        let ct = content_type?.trim().to_ascii_lowercase();
        if ct.starts_with("image/") {
            return None;
        }
        Some(Self {
            content_type: ct,
            prefix: Vec::with_capacity(SNIFF_LEN),
            decided: false,
        })
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        if self.decided {
            return Ok(());
        }
        let take = chunk.len().min(SNIFF_LEN - self.prefix.len());
        self.prefix.extend_from_slice(&chunk[..take]);
        if self.prefix.len() >= SNIFF_LEN {
            self.decide()
        } else {
            Ok(())
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        if self.decided {
            Ok(())
        } else {
            self.decide()
        }
    }

    fn decide(&mut self) -> Result<(), String> {
        self.decided = true;
        if looks_like_image(&self.prefix) {
            Ok(())
        } else {
            Err(format!(
                "not an image (content-type {:?} and no image signature)",
                self.content_type
            ))
        }
    }
}

/// Whether `prefix` starts with the signature of an image format the image bed takes.
pub(crate) fn looks_like_image(prefix: &[u8]) -> bool {
    let starts = |sig: &[u8]| prefix.starts_with(sig);
    if starts(b"\x89PNG")
        || starts(b"\xFF\xD8\xFF")
        || starts(b"GIF87a")
        || starts(b"GIF89a")
        || starts(b"BM")
        || starts(b"II*\0")
        || starts(b"MM\0*")
    {
        return true;
    }
    if prefix.len() >= 12 && &prefix[..4] == b"RIFF" && &prefix[8..12] == b"WEBP" {
        return true;
    }
    let text = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = &text[start..];
    text.starts_with(b"<svg") || text.starts_with(b"<?xml")
}

/// POSTs the callback, retrying up to three times; whether a 2xx answer came.
async fn deliver_callback(client: &HttpClient, target: &str, callback: &Callback) -> bool {
    let body = match serde_json::to_vec(callback) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            warn!(error = %e, "cannot encode callback");
            return false;
        }
    };
    let mut backoff = CALLBACK_BACKOFF;
    for attempt in 1..=CALLBACK_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let request = match Request::post(target)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, AGENT)
            .body(Full::new(body.clone()))
        {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "invalid callback URL");
                return false;
            }
        };
        match tokio::time::timeout(CALLBACK_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => {
                debug!(attempt, "callback delivered");
                return true;
            }
            Ok(Ok(response)) => {
                warn!(
                    attempt,
                    status = response.status().as_u16(),
                    "callback refused"
                );
            }
            Ok(Err(e)) => warn!(attempt, error = %error_chain(&e), "callback failed"),
            Err(_) => warn!(attempt, "callback timed out"),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_signatures() {
        assert!(looks_like_image(b"\x89PNG\r\n\x1a\n...."));
        assert!(looks_like_image(b"\xFF\xD8\xFF\xE0"));
        assert!(looks_like_image(b"GIF89a"));
        assert!(looks_like_image(b"GIF87a"));
        assert!(looks_like_image(b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(looks_like_image(b"BM\x36\0"));
        assert!(looks_like_image(b"II*\0"));
        assert!(looks_like_image(b"MM\0*"));
        assert!(looks_like_image(b"\xEF\xBB\xBF  \n<svg xmlns="));
        assert!(looks_like_image(b"<?xml version=\"1.0\"?>"));
        assert!(!looks_like_image(b"<html><body>"));
        assert!(!looks_like_image(b"RIFF\x10\0\0\0AVI LIST"));
        assert!(!looks_like_image(b""));
    }

    #[test]
    fn sniffer_checks_only_non_image_types() {
        assert!(Sniffer::for_content_type(None).is_none());
        assert!(Sniffer::for_content_type(Some("image/png")).is_none());
        let mut s = Sniffer::for_content_type(Some("text/html; charset=utf-8")).unwrap();
        s.feed(b"<!doctype html>").unwrap();
        assert!(s.finish().unwrap_err().contains("not an image"));
        let mut s = Sniffer::for_content_type(Some("application/octet-stream")).unwrap();
        s.feed(b"\x89P").unwrap();
        s.feed(b"NG\r\n\x1a\n").unwrap();
        s.feed(&[0; 100]).unwrap();
        assert!(s.finish().is_ok());
        let mut s = Sniffer::for_content_type(Some("application/octet-stream")).unwrap();
        s.feed(b"\x89P").unwrap();
        assert!(
            s.feed(&[b'N'; 100]).is_err(),
            "decided once 64 bytes are in"
        );
    }

    #[test]
    fn stored_names() {
        assert_eq!(sanitize_file_name("a/b\\c:d.png"), "a_b_c_d.png");
        assert_eq!(sanitize_file_name(".."), "download");
        assert_eq!(sanitize_file_name("  "), "download");
        assert_eq!(sanitize_file_name("测试.mp4"), "测试.mp4");
        let long = "文".repeat(300);
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_STORED_NAME_BYTES);
        assert!(s.chars().all(|c| c == '文'));
    }

    #[test]
    fn sizes_and_pieces() {
        assert_eq!(size_text(100 * MIB), "100 MB");
        assert_eq!(size_text(1000), "1000 bytes");
        assert_eq!(piece_size(None), MAX_PIECE);
        assert_eq!(piece_size(Some(10)), 1);
        assert_eq!(piece_size(Some(200_000)), 10_000);
        assert_eq!(piece_size(Some(u64::MAX)), MAX_PIECE);
    }
}
