//! `wait_with_callbacks` against the emulator: a task with a callback is asked once,
//! when its callback arrives; a task without one is polled; a stray callback asks
//! nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig};
use offline_proto::pan123::{Callback, CallbackStatus};
use offline_proto::tracker::PollPolicy;
use offline_proto::{HttpClient, HttpRequest, HttpResponse, TransportError};
use provider_123pan::{OfflineDownloadRequest, Pan123, TaskRef, TaskStatus, Watched};
use transport_hyper::HyperClient;

/// Counts the progress calls per task ID.
struct Counting {
    inner: HyperClient,
    calls: std::sync::Mutex<BTreeMap<String, u64>>,
    total: AtomicU64,
}

impl HttpClient for Counting {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if request.uri().path().ends_with("/process") {
            let query = request.uri().query().unwrap_or_default().to_owned();
            *self.calls.lock().unwrap().entry(query).or_default() += 1;
            self.total.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send(request).await
    }
}

#[tokio::test]
async fn callbacks_ask_once_and_the_rest_is_polled() {
    let mut files = BTreeMap::new();
    for (name, len) in [("a.bin", 200_000), ("b.bin", 300_000), ("c.bin", 100_000)] {
        files.insert(
            name.to_owned(),
            ServedFile::new("application/octet-stream", vec![3u8; len]),
        );
    }
    let src = Arc::new(SourceServer::start(files).await.unwrap());
    let emu = Emulator::start(EmulatorConfig {
        fetch_rate: Some(400_000),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    emu.set_rate_limit(provider_123pan::EndpointId::OfflineDownload, 0.0);
    let http = Arc::new(Counting {
        inner: HyperClient::new().unwrap(),
        calls: std::sync::Mutex::default(),
        total: AtomicU64::new(0),
    });
    let pan = Pan123::builder()
        .http_client(offline_proto::shared(Arc::clone(&http)))
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret())
        .rate_limit(provider_123pan::EndpointId::OfflineDownload, 1000.0)
        .poll_policy(PollPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(200),
            factor: 1.5,
        })
        .build()
        .unwrap();
    let mut watched = Vec::new();
    for (name, callback) in [("a.bin", true), ("b.bin", true), ("c.bin", false)] {
        let url = src.file_url(name);
        let mut request = OfflineDownloadRequest::new(url.clone());
        if callback {
            request.callback_url = Some(src.callback_url());
        }
        let id = pan.offline_download(request).await.unwrap();
        watched.push(Watched {
            task: TaskRef::cloud(id),
            callback_url: callback.then_some(url),
        });
    }
    // The receiver's callbacks as a stream, plus one for a URL nobody watches.
    let stray = Callback {
        url: "http://127.0.0.1:9/elsewhere.bin".to_owned(),
        status: CallbackStatus::Succeeded,
        fail_reason: String::new(),
        file_id: None,
    };
    let received = {
        let src = Arc::clone(&src);
        futures_util::stream::unfold(0usize, move |seen| {
            let src = Arc::clone(&src);
            async move {
                let all = src.wait_callbacks(seen + 1, Duration::from_secs(30)).await;
                let fresh: Vec<Callback> = all.get(seen..).map(<[_]>::to_vec).unwrap_or_default();
                Some((futures_util::stream::iter(fresh), all.len().max(seen)))
            }
        })
        .flatten()
    };
    let callbacks = futures_util::stream::iter([stray]).chain(received);
    let updates: Vec<_> = tokio::time::timeout(
        Duration::from_secs(30),
        pan.wait_with_callbacks(watched.clone(), callbacks)
            .collect::<Vec<_>>(),
    )
    .await
    .expect("every task ends");
    let finals: Vec<TaskRef> = updates
        .iter()
        .filter_map(|(task, u)| {
            let p = u.as_ref().unwrap();
            (p.status == TaskStatus::Succeeded).then_some(*task)
        })
        .collect();
    assert_eq!(finals.len(), 3, "{updates:?}");
    let calls = http.calls.lock().unwrap().clone();
    for w in &watched[..2] {
        let key = format!("taskID={}", w.task.id);
        assert_eq!(calls.get(&key), Some(&1), "one confirming call: {calls:?}");
    }
    let polled = format!("taskID={}", watched[2].task.id);
    assert!(calls.get(&polled).copied().unwrap_or(0) >= 1, "{calls:?}");
    assert_eq!(emu.rate_limited(), 0);
}
