//! The work behind every 123pan task: fetch the source (`common::fetch`), store the
//! bytes, report progress, decide success or failure (size limits, the image check),
//! then POST the callback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::Request;
use http_body_util::Full;
use offline_proto::pan123::{Callback, CallbackStatus, TaskId};
use tracing::{debug, info, warn};
use url::Url;

use super::state::{State, TaskKind};
use crate::common::fetch::{
    cancelled, error_chain, is_loopback, open_source, remove_quietly, sanitize_file_name,
    size_text, stream_to_file, HttpClient, AGENT, MAX_PIECE,
};

/// Attempts to deliver a callback: one, then up to three retries.
const CALLBACK_ATTEMPTS: u32 = 4;
/// Pause before the first callback retry; doubled before each further one.
const CALLBACK_BACKOFF: Duration = Duration::from_millis(200);
/// How long one callback attempt may take.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of a body looked at to recognise an image.
const SNIFF_LEN: usize = 64;

/// One task's work order.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) id: TaskId,
    pub(super) kind: TaskKind,
    pub(super) url: String,
    pub(super) file_name: String,
    pub(super) callback_url: Option<String>,
}

/// Runs a task to its end: download, record the outcome, deliver the callback.
pub(super) async fn run(state: Arc<State>, job: Job) {
    let env = &state.env;
    let mut shutdown = env.shutdown.clone();
    let stored_name = format!("{}-{}", job.id, sanitize_file_name(&job.file_name));
    let final_path = env.data_dir.join(&stored_name);
    let part_path = env.data_dir.join(format!("{stored_name}.part"));
    debug!(task = %job.id, "download started");
    let result = tokio::select! {
        r = download(&state, &job, &part_path) => r,
        () = cancelled(&mut shutdown) => {
            remove_quietly(&part_path).await;
            state.fail_task(job.id, "emulator shut down".to_owned());
            return;
        }
    };
    let outcome = match result {
        Ok((received, etag)) => match tokio::fs::rename(&part_path, &final_path).await {
            Ok(()) => Ok(state.succeed_task(job.id, received, final_path, etag)),
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
            state.fail_task(job.id, reason.clone());
            Callback {
                url: job.url.clone(),
                status: CallbackStatus::Failed,
                fail_reason: reason,
                file_id: None,
            }
        }
    };
    if let Some(target) = &job.callback_url {
        if env.loopback_only && !Url::parse(target).is_ok_and(|u| is_loopback(&u)) {
            debug!(task = %job.id, "callback not sent: not a loopback host (loopback only)");
            return;
        }
        let (lost, twice, delay) = env.faults.next_callback();
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
            d = deliver_callback(&env.http, target, &callback) => d,
            () = cancelled(&mut shutdown) => false,
        };
        if twice {
            debug!(task = %job.id, "callback sent twice (injected fault)");
            delivered &= deliver_callback(&env.http, target, &callback).await;
        }
        state.update_task(job.id, |t| t.callback_delivered = delivered);
    }
}

/// Downloads the source into `part`; the number of bytes stored and their MD5 (the
/// file's etag, lowercase hex), or why the task fails.
async fn download(state: &State, job: &Job, part: &Path) -> Result<(u64, String), String> {
    use md5::Digest;
    let mut md5 = md5::Md5::new();
    let env = &state.env;
    let (response, content_length) = open_source(env, &job.url).await?;
    let limit = match job.kind {
        TaskKind::CloudDrive => env.max_source_bytes,
        TaskKind::ImageBed => state.max_image_bytes,
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
    state.progress(job.id, 0, content_length);
    let received = stream_to_file(
        env,
        response.into_body(),
        part,
        content_length,
        piece_size(env.fetch_rate),
        |received, content_length, e| match content_length {
            Some(total) if received < total => format!(
                "truncated: received {received} of {total} bytes ({})",
                error_chain(e)
            ),
            _ => format!("source connection failed: {}", error_chain(e)),
        },
        |chunk, received| {
            if received > limit {
                return Err(too_large());
            }
            if let Some(s) = &mut sniffer {
                s.feed(chunk)?;
            }
            md5.update(chunk);
            state.progress(job.id, received, content_length);
            Ok(())
        },
    )
    .await?;
    if let Some(s) = &mut sniffer {
        s.finish()?;
    }
    Ok((received, crate::common::hex(&md5.finalize())))
}

/// Pieces of a twentieth of the rate (so that progress moves smoothly), at most
/// [`MAX_PIECE`].
fn piece_size(rate: Option<u64>) -> usize {
    match rate {
        Some(r) => usize::try_from(r / 20)
            .unwrap_or(MAX_PIECE)
            .clamp(1, MAX_PIECE),
        None => MAX_PIECE,
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
fn looks_like_image(prefix: &[u8]) -> bool {
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
    fn pieces() {
        assert_eq!(piece_size(None), MAX_PIECE);
        assert_eq!(piece_size(Some(10)), 1);
        assert_eq!(piece_size(Some(200_000)), 10_000);
        assert_eq!(piece_size(Some(u64::MAX)), MAX_PIECE);
    }
}
