//! Bulk submission and task tracking against the emulator, measured; `cargo xtask
//! bench` runs it in release mode and reads its JSON lines.
//!
//! ```text
//! cargo run --release -p provider-123pan --example bulk_bench -- [N] [LIMIT] [TASKS]
//! ```
//!
//! 1. **Submission**: N (default 200) `offline_download` calls, one after the other,
//!    against an emulator that allows LIMIT (default 20) per second, with the client
//!    told the same limit. Prints the time from the first call to the last answer (the
//!    access token is fetched before), the bound N / LIMIT, and how many calls the
//!    emulator answered with code 429.
//! 2. **Tracking**: TASKS (default 20) downloads that end one after the other (sizes
//!    growing by 96 KiB, fetched at 96 KiB/s: task i ends after about i seconds),
//!    watched to their end twice: with callbacks ([`Pan123::wait_with_callbacks`], a
//!    callback receiver on loopback) and by polling ([`Pan123::wait_all`], the default
//!    poll policy, the progress endpoint's default limit of 5 per second). For each
//!    task, the time from the moment the emulator marked it final (watched every
//!    millisecond) to the moment the stream reported it; and the progress calls made
//!    per task.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig};
use offline_proto::pan123::{Callback, TaskId};
use offline_proto::{HttpClient, HttpRequest, HttpResponse, TransportError};
use provider_123pan::{EndpointId, OfflineDownloadRequest, Pan123, TaskRef, Watched};
use transport_hyper::HyperClient;

/// A transport that counts progress calls.
struct Counting {
    inner: HyperClient,
    progress_calls: AtomicU64,
}

impl HttpClient for Counting {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if request.uri().path().ends_with("/process") {
            self.progress_calls.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.send(request).await
    }
}

fn counting() -> Arc<Counting> {
    Arc::new(Counting {
        inner: HyperClient::new().expect("a transport"),
        progress_calls: AtomicU64::new(0),
    })
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let n = arg(1, 200);
    let limit = arg(2, 20);
    let tasks = arg(3, 20);
    submission(n, limit).await;
    for callbacks in [true, false] {
        tracking(tasks, callbacks).await;
    }
}

async fn submission(n: u64, limit: u64) {
    let mut files = BTreeMap::new();
    files.insert(
        "small.bin".to_owned(),
        ServedFile::new("application/octet-stream", vec![1u8; 1024]),
    );
    let src = SourceServer::start(files).await.expect("a source server");
    let mut config = EmulatorConfig::default();
    #[allow(clippy::cast_precision_loss)]
    let rate = limit as f64;
    config.rate_limits.insert(EndpointId::OfflineDownload, rate);
    let emu = Emulator::start(config).await.expect("an emulator");
    let pan = Pan123::builder()
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret())
        .rate_limit(EndpointId::OfflineDownload, rate)
        .build()
        .expect("a client");
    pan.ensure_token().await.expect("a token");
    let url = src.file_url("small.bin");
    let started = Instant::now();
    let mut failed = 0u64;
    for _ in 0..n {
        if pan
            .offline_download(OfflineDownloadRequest::new(url.clone()))
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    let took = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let bound = n as f64 / rate;
    println!(
        "{}",
        serde_json::json!({
            "figure": "submission", "n": n, "limit": limit, "seconds": took,
            "bound_seconds": bound, "ratio": took / bound, "rate_limited": emu.rate_limited(),
            "failed": failed,
        })
    );
    emu.shutdown().await;
}

async fn tracking(count: u64, callbacks: bool) {
    let mut files = BTreeMap::new();
    for i in 1..=count {
        files.insert(
            format!("t{i}.bin"),
            ServedFile::new(
                "application/octet-stream",
                vec![7u8; usize::try_from(i * 96 * 1024).unwrap_or(0)],
            ),
        );
    }
    let src = Arc::new(SourceServer::start(files).await.expect("a source server"));
    let config = EmulatorConfig {
        fetch_rate: Some(96 * 1024),
        ..EmulatorConfig::default()
    };
    let emu = Arc::new(Emulator::start(config).await.expect("an emulator"));
    let http = counting();
    // Creating is rate-limited at 1/s by default; this figure is about tracking. One
    // client creates and watches, so its token is fetched before the watch starts.
    let pan = Pan123::builder()
        .http_client({
            let http = Arc::clone(&http);
            move |request: offline_proto::HttpRequest| {
                let http = Arc::clone(&http);
                async move { http.send(request).await }
            }
        })
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret())
        .rate_limit(EndpointId::OfflineDownload, 1000.0)
        .build()
        .expect("a client");
    emu.set_rate_limit(EndpointId::OfflineDownload, 0.0);
    let mut watched = Vec::new();
    for i in 1..=count {
        let url = src.file_url(&format!("t{i}.bin"));
        let mut request = OfflineDownloadRequest::new(url.clone());
        if callbacks {
            request.callback_url = Some(src.callback_url());
        }
        let id = pan.offline_download(request).await.expect("created");
        watched.push(Watched {
            task: TaskRef::cloud(id),
            callback_url: callbacks.then_some(url),
        });
    }
    // When the emulator marked each task final, seen every millisecond.
    let ended: Arc<Mutex<HashMap<TaskId, Instant>>> = Arc::default();
    let observer = {
        let (emu, ended) = (Arc::clone(&emu), Arc::clone(&ended));
        tokio::spawn(async move {
            loop {
                let now = Instant::now();
                for t in emu.tasks() {
                    if t.status.is_final() {
                        ended
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(t.id)
                            .or_insert(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let mut reported: HashMap<TaskId, Instant> = HashMap::new();
    let started = Instant::now();
    {
        let stream = if callbacks {
            let src = Arc::clone(&src);
            let arrivals = futures_util::stream::unfold(0usize, move |seen| {
                let src = Arc::clone(&src);
                async move {
                    let all: Vec<Callback> = src
                        .wait_callbacks(seen + 1, Duration::from_secs(3600))
                        .await;
                    let fresh = all
                        .get(seen..)
                        .map(<[Callback]>::to_vec)
                        .unwrap_or_default();
                    Some((futures_util::stream::iter(fresh), all.len().max(seen)))
                }
            })
            .flatten();
            pan.wait_with_callbacks(watched.clone(), arrivals)
        } else {
            pan.wait_all(watched.iter().map(|w| w.task))
        };
        let mut stream = stream;
        while let Some((task, update)) = stream.next().await {
            if let Ok(p) = update {
                if p.status.is_final() {
                    reported.insert(task.id, Instant::now());
                }
            }
        }
    }
    observer.abort();
    let ended = ended.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies: Vec<f64> = watched
        .iter()
        .filter_map(|w| {
            let end = ended.get(&w.task.id)?;
            let seen = reported.get(&w.task.id)?;
            Some(seen.saturating_duration_since(*end).as_secs_f64())
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    let calls = http.progress_calls.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let per_task = calls as f64 / count as f64;
    println!(
        "{}",
        serde_json::json!({
            "figure": "tracking", "mode": if callbacks { "callbacks" } else { "polling" },
            "tasks": count, "reported": reported.len(),
            "mean_latency_seconds": mean,
            "max_latency_seconds": latencies.last().copied().unwrap_or(f64::NAN),
            "progress_calls": calls, "progress_calls_per_task": per_task,
            "seconds": started.elapsed().as_secs_f64(),
            "rate_limited": emu.rate_limited(),
        })
    );
}
