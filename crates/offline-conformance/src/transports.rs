//! The transports under test, each a function from a running emulator to a
//! [`Transport`]: [`hyper`], [`blocking`], [`closure`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use offline_emulator::RunningEmulator;
use offline_proto::call::{CallError, ClientState};
use offline_proto::clock::{Clock, ManualClock};
use offline_proto::driver::{drive_blocking, BlockingTimer};
use offline_proto::{HttpClient, HttpRequest};
use provider_123pan::Pan123;
use provider_6pan::SixPan;
use transport_hyper::HyperClient;

use crate::std_net::StdNet;
use crate::{Outcome, Provider, Transport, RATE_LIMIT, SIXPAN_FOLDER};

/// How many creates the async transports run at once.
pub const ASYNC_CONCURRENCY: usize = 8;

/// Every provider.
const BOTH: &[Provider] = &[Provider::Pan123, Provider::SixPan];

use offline_proto::error_chain as chain;

fn pan123_outcome(r: Result<offline_proto::pan123::TaskId, provider_123pan::Error>) -> Outcome {
    match r {
        Ok(id) => Outcome::Created(Some(id.0.to_string())),
        Err(e @ provider_123pan::Error::OutcomeUnknown { .. }) => Outcome::Unknown(chain(&e)),
        Err(e) => Outcome::Failed(chain(&e)),
    }
}

fn sixpan_outcome(r: Result<Vec<provider_6pan::OfflineTask>, provider_6pan::Error>) -> Outcome {
    match r {
        Ok(tasks) => match tasks.as_slice() {
            [one] => Outcome::Created(Some(one.identity.0.clone())),
            // `Ok` without the task the add created: the caller cannot name it.
            other => Outcome::Created(Some(format!(
                "Ok with {} tasks: {:?}",
                other.len(),
                other.iter().map(|t| &t.identity).collect::<Vec<_>>()
            ))),
        },
        Err(e @ provider_6pan::Error::OutcomeUnknown { .. }) => Outcome::Unknown(chain(&e)),
        Err(e) => Outcome::Failed(chain(&e)),
    }
}

/// The two providers' async clients over any [`HttpClient`], as the real providers
/// build them: 123pan with the emulator's application, 6pan with its account, every
/// endpoint at [`RATE_LIMIT`].
fn providers<C: HttpClient + Clone>(emu: &RunningEmulator, http: C) -> (Pan123<C>, SixPan<C>) {
    let mut b = Pan123::builder()
        .http_client(http.clone())
        .base_url(emu.base_url())
        .client_id(emu.client_id())
        .client_secret(emu.client_secret());
    for e in offline_proto::pan123::EndpointId::ALL {
        b = b.rate_limit(e, RATE_LIMIT);
    }
    let pan = b.build().expect("a loopback 123pan client");
    let mut b = SixPan::builder()
        .http_client(http)
        .base_url(emu.base_url())
        .login(emu.sixpan_account(), emu.sixpan_password());
    for e in offline_proto::sixpan::EndpointId::ALL {
        b = b.rate_limit(e, RATE_LIMIT);
    }
    let six = b.build().expect("a loopback 6pan client");
    (pan, six)
}

/// The real async [`Pan123`] and [`SixPan`] over one [`HttpClient`]: [`hyper`]'s
/// `transport-hyper` [`HyperClient`], or [`closure`]'s closure (which counts every
/// request).
pub struct Async<C: HttpClient> {
    name: &'static str,
    pan: Pan123<C>,
    six: SixPan<C>,
    requests: Option<Arc<AtomicU64>>,
}

impl<C: HttpClient> std::fmt::Debug for Async<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Async")
            .field("name", &self.name)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

/// `transport-hyper`'s [`HyperClient`] through the real [`Pan123`] and [`SixPan`].
pub type Hyper = Async<HyperClient>;

/// The [`Hyper`] transport for `emu`.
///
/// # Panics
///
/// When the TLS roots cannot be loaded.
pub fn hyper(emu: &RunningEmulator) -> Hyper {
    let http = HyperClient::new().expect("the default transport");
    let (pan, six) = providers(emu, http);
    Async {
        name: "hyper",
        pan,
        six,
        requests: None,
    }
}

/// A closure transport: `move |request| async move { http.send(request).await }` over
/// a [`HyperClient`], counting every request, through the real [`Pan123`] and
/// [`SixPan`] (`http_client(closure).build()`).
///
/// # Panics
///
/// When the TLS roots cannot be loaded.
pub fn closure(emu: &RunningEmulator) -> Async<impl HttpClient + Clone> {
    let http = HyperClient::new().expect("the default transport");
    let requests = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&requests);
    let send = move |request: HttpRequest| {
        counter.fetch_add(1, Ordering::Relaxed);
        let http = http.clone();
        async move { http.send(request).await }
    };
    let (pan, six) = providers(emu, send);
    Async {
        name: "closure",
        pan,
        six,
        requests: Some(requests),
    }
}

impl<C: HttpClient> Transport for Async<C> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn providers(&self) -> &'static [Provider] {
        BOTH
    }
    fn concurrency(&self) -> usize {
        ASYNC_CONCURRENCY
    }
    async fn create(&self, provider: Provider, url: String) -> Outcome {
        match provider {
            Provider::Pan123 => pan123_outcome(self.pan.offline_download(url).await),
            Provider::SixPan => sixpan_outcome(self.six.add_urls(&[url], SIXPAN_FOLDER).await),
        }
    }
    fn requests(&self) -> Option<u64> {
        self.requests.as_ref().map(|r| r.load(Ordering::Relaxed))
    }
    fn token_fetches(&self, provider: Provider) -> Option<u64> {
        Some(match provider {
            Provider::Pan123 => self.pan.token_requests(),
            Provider::SixPan => self.six.logins(),
        })
    }
}

/// The blocking client of `offline-proto`'s example: its `std::net` transport
/// (`examples/blocking_client/std_net.rs`, one connection per request) driven by
/// [`drive_blocking`], with a [`ManualClock`] as the timer (a backoff or a rate-limit
/// wait moves the clock instead of sleeping) and the providers' default rate limits
/// (paced in the clock's time, so they cost no real time either). A wait of zero,
/// which would leave a manual clock where it is forever, moves it by 1 µs; the report
/// counts them (see `tests/bugs.rs`).
///
/// 123pan creates are one `OfflineDownloadRequest` call; 6pan ones a `ParseUrlRequest`
/// then an `AddRequest` call (no reconciliation: a lost `add` answer is
/// `OutcomeUnknown`). The creates run one at a time, on tokio's blocking threads, so
/// a run meets the same faults every time.
#[derive(Debug, Clone)]
pub struct Blocking {
    inner: Arc<BlockingInner>,
}

#[derive(Debug)]
struct BlockingInner {
    pan123: Mutex<ClientState<offline_proto::pan123::Credentials>>,
    sixpan: Mutex<ClientState<offline_proto::sixpan::auth::Credentials>>,
    http: StdNet,
    clock: SyntheticTime,
    started: Instant,
}

/// A [`ManualClock`] as a [`BlockingTimer`], except that a wait until an instant that
/// is not later than now moves it on by 1 µs (and is counted) instead of not at all.
///
/// The call machine asks for such waits: `offline-proto`'s token bucket can answer a
/// wait of zero without a token (see `tests/bugs.rs`), and a `ManualClock` would then
/// never move, so the call would spin forever.
#[derive(Debug, Clone)]
struct SyntheticTime {
    clock: ManualClock,
    zero_waits: Arc<AtomicU64>,
}

impl Clock for SyntheticTime {
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn wall(&self) -> SystemTime {
        self.clock.wall()
    }
}

impl BlockingTimer for SyntheticTime {
    fn block_until(&self, deadline: Instant) {
        if deadline <= self.clock.now() {
            self.zero_waits.fetch_add(1, Ordering::Relaxed);
            self.clock.advance(Duration::from_micros(1));
        } else {
            self.clock.block_until(deadline);
        }
    }
}

/// The [`Blocking`] transport for `emu`.
///
/// # Panics
///
/// When the emulator's base URL does not parse.
pub fn blocking(emu: &RunningEmulator) -> Blocking {
    let base = offline_proto::BaseUrl::parse(&emu.base_url()).expect("the emulator's base URL");
    let pan123 = ClientState::new(
        base.clone(),
        offline_proto::pan123::Credentials::client(
            emu.client_id(),
            emu.client_secret(),
            offline_proto::token::DEFAULT_MARGIN,
        ),
        offline_proto::pan123::EndpointId::ALL.map(|e| (e, e.default_rate_per_second())),
        1,
    );
    let sixpan = ClientState::new(
        base,
        offline_proto::sixpan::auth::Credentials::login(
            emu.sixpan_account(),
            emu.sixpan_password(),
        ),
        offline_proto::sixpan::EndpointId::ALL.map(|e| (e, e.default_rate_per_second())),
        2,
    );
    let start = Instant::now();
    Blocking {
        inner: Arc::new(BlockingInner {
            started: start,
            pan123: Mutex::new(pan123),
            sixpan: Mutex::new(sixpan),
            http: StdNet {
                connect_timeout: Duration::from_secs(5),
                io_timeout: Duration::from_secs(10),
                ..StdNet::default()
            },
            clock: SyntheticTime {
                clock: ManualClock::new(start, SystemTime::now()),
                zero_waits: Arc::new(AtomicU64::new(0)),
            },
        }),
    }
}

fn call_outcome<T>(r: Result<T, CallError>, id: impl FnOnce(T) -> Option<String>) -> Outcome {
    match r {
        Ok(v) => Outcome::Created(id(v)),
        Err(e @ CallError::OutcomeUnknown(_)) => Outcome::Unknown(chain(&e)),
        Err(e) => Outcome::Failed(chain(&e)),
    }
}

impl BlockingInner {
    fn create(&self, provider: Provider, url: &str) -> Outcome {
        let quiet = |_: &offline_proto::call::RetryNotice| {};
        match provider {
            Provider::Pan123 => call_outcome(
                drive_blocking(
                    &self.pan123,
                    &self.http,
                    &self.clock,
                    offline_proto::pan123::OfflineDownloadRequest::new(url),
                    quiet,
                ),
                |created| Some(created.task_id.0.to_string()),
            ),
            Provider::SixPan => {
                let parsed = drive_blocking(
                    &self.sixpan,
                    &self.http,
                    &self.clock,
                    offline_proto::sixpan::ParseUrlRequest::new(&[url]),
                    quiet,
                );
                let parsed = match parsed {
                    Ok(p) => p,
                    Err(e) => return Outcome::Failed(format!("parseUrl: {}", chain(&e))),
                };
                let add = offline_proto::sixpan::AddRequest {
                    path: SIXPAN_FOLDER.to_owned(),
                    task: parsed
                        .into_iter()
                        .map(|r| offline_proto::sixpan::AddTask {
                            identity: r.identity,
                            ignore_files: None,
                        })
                        .collect(),
                };
                call_outcome(
                    drive_blocking(&self.sixpan, &self.http, &self.clock, add, quiet),
                    |_| None,
                )
            }
        }
    }
}

impl Transport for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }
    fn providers(&self) -> &'static [Provider] {
        BOTH
    }
    fn concurrency(&self) -> usize {
        1
    }
    fn create(&self, provider: Provider, url: String) -> impl Future<Output = Outcome> + Send {
        let inner = Arc::clone(&self.inner);
        async move {
            match tokio::task::spawn_blocking(move || inner.create(provider, &url)).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::Panicked(e.to_string()),
            }
        }
    }
    fn notes(&self) -> Option<String> {
        let zero = self.inner.clock.zero_waits.load(Ordering::Relaxed);
        Some(format!(
            "so far: {zero} waits of zero (nudged by 1 µs), {:.1} s of synthetic time",
            (self.inner.clock.now() - self.inner.started).as_secs_f64()
        ))
    }
    fn token_fetches(&self, provider: Provider) -> Option<u64> {
        Some(match provider {
            Provider::Pan123 => lock(&self.inner.pan123).token_fetches(),
            Provider::SixPan => lock(&self.inner.sixpan).token_fetches(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
