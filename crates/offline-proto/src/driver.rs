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

/// Releases what a call holds in the shared state (a token fetch under way) when its
/// future is dropped before the end.
struct Guard<'a, A: Auth, R: Request<A>> {
    state: &'a Mutex<ClientState<A>>,
    call: Call<A, R>,
}

impl<A: Auth, R: Request<A>> Drop for Guard<'_, A, R> {
    fn drop(&mut self) {
        if !self.call.is_done() {
            self.call.abandon(&mut lock(self.state));
        }
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
    let mut guard = Guard {
        state,
        call: Call::new(request),
    };
    loop {
        let output = {
            let mut s = lock(state);
            guard.call.poll(&mut s, timer.now(), timer.wall())
        };
        match output {
            Output::Send(req) => {
                let result = http.send(req).await;
                let mut s = lock(state);
                guard
                    .call
                    .handle_response(&mut s, result, timer.now(), timer.wall());
            }
            Output::Wait { until, retry } => {
                if let Some(notice) = &retry {
                    on_retry(notice);
                }
                timer.sleep_until(until).await;
            }
            Output::Done(result) => return result,
        }
    }
}

/// [`drive`] for a blocking transport on the calling thread.
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
    let mut guard = Guard {
        state,
        call: Call::new(request),
    };
    loop {
        let output = {
            let mut s = lock(state);
            guard.call.poll(&mut s, timer.now(), timer.wall())
        };
        match output {
            Output::Send(req) => {
                let result: Result<HttpResponse, TransportError> = http.send(req);
                let mut s = lock(state);
                guard
                    .call
                    .handle_response(&mut s, result, timer.now(), timer.wall());
            }
            Output::Wait { until, retry } => {
                if let Some(notice) = &retry {
                    on_retry(notice);
                }
                timer.block_until(until);
            }
            Output::Done(result) => return result,
        }
    }
}
