//! The loop that drives a [`Call`], written once: [`drive`] for any async
//! [`HttpClient`] and [`Timer`], [`drive_blocking`] for any [`BlockingHttpClient`] and
//! [`BlockingTimer`].
//!
//! The loop does nothing but what the machine says: send, sleep, return. All rules are
//! in [`crate::call`]. Neither function reads a clock of its own (time comes from the
//! timer) nor needs a particular runtime: tokio's timer is `transport_hyper::TokioClock`,
//! a blocking one is [`SystemClock`](crate::clock::SystemClock) or, in tests,
//! [`ManualClock`](crate::clock::ManualClock).

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::call::{Auth, Call, CallError, ClientState, Output, Request, RetryNotice};
use crate::clock::Clock;
use crate::{HttpClient, HttpRequest, HttpResponse, TransportError};

/// A clock that can also wait: what an async driver needs of its runtime.
pub trait Timer: Clock {
    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send;
}

/// A clock that can also block the thread until an instant.
pub trait BlockingTimer: Clock {
    /// Returns at `deadline` (at once if it has passed).
    fn block_until(&self, deadline: Instant);
}

impl BlockingTimer for crate::clock::SystemClock {
    fn block_until(&self, deadline: Instant) {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }
}

/// A blocking transport: sends a request, returns the whole response.
///
/// Implemented for every closure `Fn(HttpRequest) -> Result<HttpResponse,
/// TransportError>`, so a transport can be a function.
pub trait BlockingHttpClient {
    /// Sends `request` and reads the whole response.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] when no complete response arrived; its kind says whether
    /// the request may have reached the server.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

impl<F> BlockingHttpClient for F
where
    F: Fn(HttpRequest) -> Result<HttpResponse, TransportError>,
{
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self(request)
    }
}

fn lock<A: Auth>(state: &Mutex<ClientState<A>>) -> MutexGuard<'_, ClientState<A>> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One call in progress against its shared state: both drivers' common half. It
/// releases what the call holds in the shared state (a token fetch under way) when it
/// is dropped before the end (a future dropped mid-call).
struct Run<'a, A: Auth, R: Request<A>> {
    state: &'a Mutex<ClientState<A>>,
    call: Call<A, R>,
}

/// What a driver does next: the machine's [`Output`] with the retry notice handed on.
enum Step<T> {
    Send(HttpRequest),
    Sleep(Instant),
    Done(Result<T, CallError>),
}

impl<'a, A: Auth, R: Request<A>> Run<'a, A, R> {
    fn new(state: &'a Mutex<ClientState<A>>, request: R) -> Self {
        Self {
            state,
            call: Call::new(request),
        }
    }

    fn next(&mut self, clock: &(impl Clock + ?Sized), watch: &impl Watch) -> Step<R::Output> {
        let output = self
            .call
            .poll(&mut lock(self.state), clock.now(), clock.wall());
        match output {
            Output::Send(request) => {
                if self.call.request_in_flight() {
                    watch.sending(&request);
                }
                Step::Send(request)
            }
            Output::Wait { until, retry } => {
                if let Some(notice) = &retry {
                    watch.retry(notice);
                }
                Step::Sleep(until)
            }
            Output::Done(result) => Step::Done(result),
        }
    }

    fn answer(
        &mut self,
        result: Result<HttpResponse, TransportError>,
        clock: &(impl Clock + ?Sized),
    ) {
        self.call
            .handle_response(&mut lock(self.state), result, clock.now(), clock.wall());
    }
}

impl<A: Auth, R: Request<A>> Drop for Run<'_, A, R> {
    fn drop(&mut self) {
        if !self.call.is_done() {
            self.call.abandon(&mut lock(self.state));
        }
    }
}

/// What a driver tells its caller while a call runs.
pub trait Watch {
    /// A retry is about to be waited for.
    fn retry(&self, notice: &RetryNotice);
    /// The request itself (not a token request) is about to leave: from now on it
    /// may reach the server. A batch records "may have been sent" here, after every
    /// rate-limit wait.
    fn sending(&self, _request: &HttpRequest) {}
}

/// A [`Watch`] that only hears of retries.
#[derive(Debug, Clone, Copy)]
pub struct OnRetry<F>(pub F);

impl<F: Fn(&RetryNotice)> Watch for OnRetry<F> {
    fn retry(&self, notice: &RetryNotice) {
        (self.0)(notice);
    }
}

/// Runs `request` to the end over `http`, sleeping with `timer`; `on_retry` hears of
/// every retry before its wait.
///
/// # Errors
///
/// The call's [`CallError`].
pub async fn drive<A, R, H, T>(
    state: &Mutex<ClientState<A>>,
    http: &H,
    timer: &T,
    request: R,
    on_retry: impl Fn(&RetryNotice),
) -> Result<R::Output, CallError>
where
    A: Auth,
    R: Request<A>,
    H: HttpClient + ?Sized,
    T: Timer + ?Sized,
{
    drive_watched(state, http, timer, request, OnRetry(on_retry)).await
}

/// [`drive`], with a [`Watch`] that also hears when the request itself leaves.
///
/// # Errors
///
/// The call's [`CallError`].
pub async fn drive_watched<A, R, H, T>(
    state: &Mutex<ClientState<A>>,
    http: &H,
    timer: &T,
    request: R,
    watch: impl Watch,
) -> Result<R::Output, CallError>
where
    A: Auth,
    R: Request<A>,
    H: HttpClient + ?Sized,
    T: Timer + ?Sized,
{
    let mut run = Run::new(state, request);
    loop {
        match run.next(timer, &watch) {
            Step::Send(req) => {
                let result = match run.call.deadline() {
                    // The call's deadline also ends a request still waiting for its
                    // answer: a timeout (so a create may have been sent). A request
                    // handed out after the deadline (its rate-limit wait ran past it)
                    // is sent whole: cut at once, it would be reported as possibly sent
                    // though it never left; no retry follows it. (A command deadline
                    // that has passed ends the call before it hands a request out.)
                    Some(at) if at > timer.now() => first(http.send(req), timer.sleep_until(at))
                        .await
                        .unwrap_or_else(|| {
                            Err(TransportError::new(
                                crate::TransportErrorKind::Timeout,
                                if run.call.deadline_is_command() {
                                    "no answer before the command's deadline"
                                } else {
                                    "no answer before the call's deadline"
                                },
                            ))
                        }),
                    _ => http.send(req).await,
                };
                run.answer(result, timer);
            }
            Step::Sleep(until) => timer.sleep_until(until).await,
            Step::Done(result) => return result,
        }
    }
}

/// `a`'s output if it completes before `b`, else `None` (`a` is then dropped).
async fn first<T>(a: impl Future<Output = T>, b: impl Future<Output = ()>) -> Option<T> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(value) = a.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(value));
        }
        b.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// [`drive`] for a blocking transport on the calling thread (which cannot cut a
/// request short: give the transport its own timeout, as the example's does).
///
/// # Errors
///
/// The call's [`CallError`].
pub fn drive_blocking<A, R, H, T>(
    state: &Mutex<ClientState<A>>,
    http: &H,
    timer: &T,
    request: R,
    on_retry: impl Fn(&RetryNotice),
) -> Result<R::Output, CallError>
where
    A: Auth,
    R: Request<A>,
    H: BlockingHttpClient + ?Sized,
    T: BlockingTimer + ?Sized,
{
    let watch = OnRetry(on_retry);
    let mut run = Run::new(state, request);
    loop {
        match run.next(timer, &watch) {
            Step::Send(req) => run.answer(http.send(req), timer),
            Step::Sleep(until) => timer.block_until(until),
            Step::Done(result) => return result,
        }
    }
}
