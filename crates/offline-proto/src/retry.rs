//! Retry policy: which failures are worth sending again, how long to wait, and how many
//! retries a client may spend.
//!
//! Pure and clock-free like the rest of the core: [`classify`] reads an outcome,
//! [`Backoff`] computes exponential delays with full jitter from a seeded generator,
//! and [`RetryBudget`] (in the manner of tower's `TpsBudget`) caps retries to a share of
//! recent requests, handed `now`.
//!
//! The rule that matters most: a request that **creates** something (a 123pan offline
//! download, a 6pan add) is sent again only when the server certainly did not carry it
//! out — a connection that never opened, or an explicit rate-limit or busy answer.
//! After a timeout, a reset or a truncated answer it may exist; the caller gets
//! [`Retry::No`] and must reconcile (list tasks) or report "outcome unknown".
//!
//! The 6pan storage service's upload steps are judged by
//! [`sixpan::upload::recovery`](crate::sixpan::upload::recovery), which starts from
//! [`classify`] (as a read) and adds what the storage service needs (resend any
//! unanswered chunk, renew a refused upload token, redo a block whose ctx is refused);
//! its table says where the two differ.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::ratelimit::RateLimiter;
use crate::{ApiError, TransportError, TransportErrorKind};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Do not send again: the failure is final, or sending again could do the work twice.
    No,
    /// Send again after exactly this long (the server said so: `Retry-After`).
    After(Duration),
    /// Send again after the next [`Backoff`] delay.
    Backoff,
}

/// Classifies a failed attempt at a request. `creates` says whether the request creates
/// something (see the [module docs](self)).
///
/// | failure | read | create |
/// |---|---|---|
/// | connect error (never sent) | Backoff | Backoff |
/// | timeout, reset, truncated body after sending | Backoff | **No** |
/// | body over the size limit | No | No |
/// | rate limited (`429`), with `Retry-After` | After | After |
/// | rate limited, without | Backoff | Backoff |
/// | HTTP 502/503/504 without an envelope | Backoff | **No** (the gateway may have forwarded it) |
/// | HTTP 500 without an envelope | Backoff | No |
/// | a body that ends in the middle of its JSON | Backoff | No (it was carried out, or not: unknown) |
/// | token invalid (`401`) | No (the token flow refreshes once) | No |
/// | too many tokens (`401` + its message) | No (and never a new token) | No |
/// | concurrent task cap ([`ApiError::TaskLimit`]) | No | No (within a call: the cap lasts minutes; a batch submits again later, [`resubmit_after`]) |
/// | any other provider error, decode error | No | No |
pub fn classify(creates: bool, failure: &Failure<'_>) -> Retry {
    match failure {
        Failure::Transport(e) => match e.kind() {
            TransportErrorKind::Connect => Retry::Backoff,
            TransportErrorKind::Timeout | TransportErrorKind::Closed if !creates => Retry::Backoff,
            _ => Retry::No,
        },
        Failure::Api(ApiError::RateLimited { retry_after, .. }) => {
            retry_after.map_or(Retry::Backoff, Retry::After)
        }
        Failure::Api(ApiError::Http { status, .. }) if status.is_server_error() && !creates => {
            Retry::Backoff
        }
        Failure::Api(ApiError::Decode(d))
            if d.kind == crate::DecodeErrorKind::Truncated && !creates =>
        {
            Retry::Backoff
        }
        Failure::Api(_) => Retry::No,
    }
}

/// After a read made by a watch (a progress call) failed for good, its own retries
/// spent: `Some(wait)` when the watch should ask again later (after `wait` when the
/// server said how long, else at its own pace), `None` when the failure is final and
/// ends the watch of that task. A transport failure is always worth asking again;
/// this decides for the provider's answers.
pub fn ask_again_later(error: &ApiError) -> Option<Option<Duration>> {
    match error {
        ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
        ApiError::Http { status, .. } if status.is_server_error() => Some(None),
        ApiError::Decode(d) if d.kind == crate::DecodeErrorKind::Truncated => Some(None),
        _ => None,
    }
}

/// The first wait before a create refused by the concurrent-task cap is submitted
/// again: 5 s (a public Python client of the open platform backs off 5/15/30 s, a Node
/// client waits 60 s).
pub const RESUBMIT_FIRST_DELAY: Duration = Duration::from_secs(5);
/// The longest wait between two submissions of a capped create: 60 s.
pub const RESUBMIT_MAX_DELAY: Duration = Duration::from_secs(60);
/// How many times a capped create is submitted again before its line stays pending.
pub const MAX_RESUBMITS: u32 = 6;

/// After a create failed with `error` for the `attempt`-th time (from 0): how long to
/// wait before submitting it again, or `None` when it must not be (any error but the
/// concurrent-task cap, [`ApiError::TaskLimit`], which says the create did not happen),
/// or the [`MAX_RESUBMITS`] are spent. The waits double from `first` (normally
/// [`RESUBMIT_FIRST_DELAY`]), at most [`RESUBMIT_MAX_DELAY`] (or `first` when larger).
pub fn resubmit_after(error: &ApiError, attempt: u32, first: Duration) -> Option<Duration> {
    if !matches!(error, ApiError::TaskLimit(_)) || attempt >= MAX_RESUBMITS {
        return None;
    }
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    Some(
        first
            .saturating_mul(factor)
            .min(RESUBMIT_MAX_DELAY.max(first)),
    )
}

/// How many failed calls in a row end a watch of one task.
pub const MAX_CONSECUTIVE_WATCH_ERRORS: u32 = 5;

/// Whether a watch asks about a task again after a failed progress call, the rule
/// [`Tracker`](crate::tracker::Tracker) and [`Scheduler`](crate::schedule::Scheduler)
/// share: `again` is what the failure allows (`None`: not worth asking again;
/// `Some(retry_after)`: ask again, after the server's `Retry-After` if it gave one),
/// `failures` the failed calls in a row, this one included. The wait to honour, or
/// `None` when the watch ends (at [`MAX_CONSECUTIVE_WATCH_ERRORS`] failures in a row).
pub fn watch_again(
    failures: u32,
    again: Option<Option<std::time::Duration>>,
) -> Option<Option<std::time::Duration>> {
    again.filter(|_| failures < MAX_CONSECUTIVE_WATCH_ERRORS)
}

/// A failed attempt, as [`classify`] reads it.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// No complete answer.
    Transport(&'a TransportError),
    /// An answer that is an error.
    Api(&'a ApiError),
}

/// SplitMix64: a tiny, seeded, deterministic generator for jitter.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Exponential backoff with full jitter: attempt `n` (from 0) waits a uniformly random
/// time in `[0, min(max, base × 2ⁿ)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    max_attempts: u32,
    rng: SplitMix64,
}

impl Backoff {
    /// A backoff starting at `base`, capped at `max`, allowing `max_attempts` retries,
    /// with jitter drawn from a generator seeded with `seed` (the same seed gives the
    /// same delays).
    pub fn new(base: Duration, max: Duration, max_attempts: u32, seed: u64) -> Self {
        Self {
            base,
            max,
            attempt: 0,
            max_attempts,
            rng: SplitMix64(seed),
        }
    }

    /// The retries made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next retry, or `None` when the attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempt >= self.max_attempts {
            return None;
        }
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt += 1;
        Some(ceiling.mul_f64(self.rng.next_f64()))
    }
}

/// A retry budget shared by every request of a client: retries may be at most
/// `ratio` of the requests of the last `window`, plus `min_per_second` retries per
/// second whatever the traffic, so that a struggling server is not buried under
/// retries.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    window: Duration,
    ratio: f64,
    min_per_second: f64,
    requests: VecDeque<Instant>,
    retries: VecDeque<Instant>,
}

impl Default for RetryBudget {
    /// 20 % of the requests of the last 10 s, plus 1 retry per second.
    fn default() -> Self {
        Self::new(Duration::from_secs(10), 0.2, 1.0)
    }
}

impl RetryBudget {
    /// A budget over `window` allowing retries worth `ratio` of the requests plus
    /// `min_per_second` per second.
    pub fn new(window: Duration, ratio: f64, min_per_second: f64) -> Self {
        Self {
            window,
            ratio: ratio.max(0.0),
            min_per_second: min_per_second.max(0.0),
            requests: VecDeque::new(),
            retries: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        for q in [&mut self.requests, &mut self.retries] {
            while q
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > self.window)
            {
                q.pop_front();
            }
        }
    }

    /// Records a first attempt at a request.
    pub fn deposit(&mut self, now: Instant) {
        self.expire(now);
        self.requests.push_back(now);
    }

    /// Takes one retry from the budget; `false` when it is spent (do not retry).
    pub fn withdraw(&mut self, now: Instant) -> bool {
        self.expire(now);
        let allowed = self.requests.len() as f64 * self.ratio
            + self.min_per_second * self.window.as_secs_f64();
        if (self.retries.len() as f64) < allowed.floor() {
            self.retries.push_back(now);
            true
        } else {
            false
        }
    }
}

/// A failed attempt, owned: what [`classify`] reads through [`Attempt::as_failure`].
#[derive(Debug)]
pub enum Attempt {
    /// No complete answer.
    Transport(TransportError),
    /// An answer that is an error.
    Api(ApiError),
}

impl Attempt {
    /// The borrowed view [`classify`] takes.
    pub fn as_failure(&self) -> Failure<'_> {
        match self {
            Self::Transport(e) => Failure::Transport(e),
            Self::Api(e) => Failure::Api(e),
        }
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => e.fmt(f),
            Self::Api(e) => e.fmt(f),
        }
    }
}

/// A client paces itself at this share of each endpoint's limit, so that network
/// jitter does not turn an on-time request into a `429`: N calls take N / (0.99 ×
/// limit), within about 1 % of the bound (measured by `cargo xtask bench`).
pub const PACE: f64 = 0.99;

/// A paced bucket holds just over one request: no burst beyond a single request, but a
/// wait that a timer overran is credited to the next request instead of being lost.
pub const PACE_BURST: f64 = 1.0 + (1.0 - PACE);

/// How many times one call is sent again at most.
pub const MAX_RETRIES: u32 = 8;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Everything a client shares between its calls to decide when to send and whether to
/// send again: a token bucket per endpoint ([`RateLimiter`], paced at [`PACE`]), the
/// [`RetryBudget`], and jitter seeds. Handed `now`; a driver keeps it behind a lock and
/// does the sleeping and sending:
///
/// 1. [`begin`](Self::begin) a call (it counts toward the budget and gives the call's
///    [`Backoff`]);
/// 2. before each attempt, [`try_acquire`](Self::try_acquire) until it says go;
/// 3. after a failed attempt, [`retry_delay`](Self::retry_delay): `Some(wait)` to send
///    again after `wait`, `None` to give up.
#[derive(Debug, Clone)]
pub struct Pacer<K: Ord + Copy> {
    limiter: RateLimiter<K>,
    budget: RetryBudget,
    seed: u64,
    calls: u64,
}

impl<K: Ord + Copy> Pacer<K> {
    /// A pacer with no limits yet and the default budget; `seed` varies the jitter
    /// (the same seed gives the same delays).
    pub fn new(seed: u64) -> Self {
        Self {
            limiter: RateLimiter::new(),
            budget: RetryBudget::default(),
            seed,
            calls: 0,
        }
    }

    /// Limits `key` to `per_second` requests a second (paced at [`PACE`] of it); a
    /// value that is not a positive number leaves `key` unlimited.
    pub fn set_limit(&mut self, key: K, per_second: f64) {
        if per_second.is_finite() && per_second > 0.0 {
            self.limiter.set(key, per_second * PACE, PACE_BURST);
        }
    }

    /// Takes a token for `key` at `now`.
    ///
    /// # Errors
    ///
    /// `Err(wait)`: try again after `wait`.
    pub fn try_acquire(&mut self, key: K, now: Instant) -> Result<(), Duration> {
        self.limiter.try_acquire(&key, now)
    }

    /// A fresh seed for anything that needs one (jitter, batch IDs).
    pub fn next_seed(&mut self) -> u64 {
        self.calls += 1;
        self.seed ^ self.calls.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Starts a call to `key` at `now`: counts it toward the retry budget and returns
    /// its backoff, starting at one request interval of `key` (100 ms to 2 s; 200 ms
    /// when unlimited), at most [`MAX_BACKOFF`], for [`MAX_RETRIES`] retries.
    pub fn begin(&mut self, key: K, now: Instant) -> Backoff {
        self.budget.deposit(now);
        let base = self
            .limiter
            .bucket(&key)
            .map_or(Duration::from_millis(200), |b| {
                Duration::from_secs_f64((1.0 / b.rate()).clamp(0.1, 2.0))
            });
        let seed = self.next_seed();
        Backoff::new(base, MAX_BACKOFF, MAX_RETRIES, seed)
    }

    /// After a failed attempt at `now`: how long to wait before sending again, or
    /// `None` to give up — the failure is final ([`classify`]), the call's retries are
    /// used up, or the client's retry budget is spent.
    pub fn retry_delay(
        &mut self,
        backoff: &mut Backoff,
        creates: bool,
        failure: &Failure<'_>,
        now: Instant,
    ) -> Option<Duration> {
        let delay = match classify(creates, failure) {
            Retry::No => None,
            Retry::After(wait) => backoff.next_delay().map(|_| wait),
            Retry::Backoff => backoff.next_delay(),
        }?;
        self.budget.withdraw(now).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_task_cap_is_resubmitted_with_doubling_bounded_waits() {
        let error = |code: i64, message: &str| {
            crate::ProviderError::new(crate::Code::Int(code), message, None, http::StatusCode::OK)
        };
        let cap = ApiError::TaskLimit(error(2, "同时下载的任务超出最大限制，不能下载"));
        let first = Duration::from_secs(5);
        let waits: Vec<_> = (0..MAX_RESUBMITS + 1)
            .map(|n| resubmit_after(&cap, n, first))
            .collect();
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(
            waits,
            [
                secs(5),
                secs(10),
                secs(20),
                secs(40),
                secs(60),
                secs(60),
                None
            ]
        );
        for other in [
            ApiError::DuplicateTask(error(2, "离线任务已存在")),
            ApiError::QuotaExceeded(error(5113, "traffic quota exceeded")),
            ApiError::Provider(error(2, "解析失败")),
        ] {
            assert_eq!(resubmit_after(&other, 0, first), None, "{other:?}");
        }
    }
    use crate::{Code, ProviderError};
    use bytes::Bytes;
    use http::StatusCode;

    fn transport(kind: TransportErrorKind) -> TransportError {
        TransportError::new(kind, "x")
    }

    fn rate_limited(after: Option<Duration>) -> ApiError {
        ApiError::RateLimited {
            error: ProviderError {
                code: Code::Int(429),
                message: String::new(),
                trace_id: None,
                status: StatusCode::OK,
            },
            retry_after: after,
        }
    }

    #[test]
    fn creates_are_never_resent_after_they_may_have_arrived() {
        for kind in [TransportErrorKind::Timeout, TransportErrorKind::Closed] {
            let e = transport(kind);
            assert_eq!(classify(true, &Failure::Transport(&e)), Retry::No);
            assert_eq!(classify(false, &Failure::Transport(&e)), Retry::Backoff);
        }
        let e = transport(TransportErrorKind::Connect);
        assert_eq!(classify(true, &Failure::Transport(&e)), Retry::Backoff);
        let gw = ApiError::Http {
            status: StatusCode::BAD_GATEWAY,
            body: Bytes::new(),
        };
        assert_eq!(classify(true, &Failure::Api(&gw)), Retry::No);
        assert_eq!(classify(false, &Failure::Api(&gw)), Retry::Backoff);
        let cut = ApiError::Decode(crate::DecodeError {
            kind: crate::DecodeErrorKind::Truncated,
            status: StatusCode::OK,
            content_type: None,
            path: None,
            detail: String::new(),
            body: Bytes::from_static(b"{\"code\":0,"),
        });
        assert_eq!(classify(false, &Failure::Api(&cut)), Retry::Backoff);
        assert_eq!(classify(true, &Failure::Api(&cut)), Retry::No);
    }

    #[test]
    fn rate_limits_are_retried_for_everything() {
        let e = rate_limited(Some(Duration::from_secs(3)));
        assert_eq!(
            classify(true, &Failure::Api(&e)),
            Retry::After(Duration::from_secs(3))
        );
        let e = rate_limited(None);
        assert_eq!(classify(true, &Failure::Api(&e)), Retry::Backoff);
        let big = transport(TransportErrorKind::BodyTooLarge { limit: 1 });
        assert_eq!(classify(false, &Failure::Transport(&big)), Retry::No);
    }

    #[test]
    fn backoff_is_bounded_jittered_and_deterministic() {
        let mut a = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 6, 42);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 6, 42);
        let mut delays = Vec::new();
        for n in 0..6 {
            let d = a.next_delay().unwrap();
            assert_eq!(Some(d), b.next_delay());
            let ceiling = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(2));
            assert!(d <= ceiling, "{n}: {d:?} > {ceiling:?}");
            delays.push(d);
        }
        assert_eq!(a.next_delay(), None);
        delays.dedup();
        assert!(delays.len() > 1, "jitter varies the delays");
    }

    #[test]
    fn budget_caps_retries_to_a_share_of_requests() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(Duration::from_secs(10), 0.1, 0.0);
        for _ in 0..100 {
            budget.deposit(t0);
        }
        let granted = (0..50).filter(|_| budget.withdraw(t0)).count();
        assert_eq!(granted, 10);
        // After the window, the old requests no longer count.
        assert!(!budget.withdraw(t0 + Duration::from_secs(11)));
        let mut floor = RetryBudget::new(Duration::from_secs(10), 0.0, 0.5);
        assert_eq!((0..20).filter(|_| floor.withdraw(t0)).count(), 5);
    }

    #[test]
    fn pacer_paces_retries_and_gives_up() {
        let t0 = Instant::now();
        let mut p: Pacer<u8> = Pacer::new(1);
        p.set_limit(1, 10.0);
        p.set_limit(2, 0.0);
        assert!(p.try_acquire(1, t0).is_ok());
        let wait = p.try_acquire(1, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait < Duration::from_millis(110),
            "{wait:?}"
        );
        assert!(
            (0..100).all(|_| p.try_acquire(2, t0).is_ok()),
            "0 means unlimited"
        );

        let mut backoff = p.begin(1, t0);
        let rl = rate_limited(Some(Duration::from_secs(2)));
        assert_eq!(
            p.retry_delay(&mut backoff, true, &Failure::Api(&rl), t0),
            Some(Duration::from_secs(2))
        );
        let reset = transport(TransportErrorKind::Closed);
        assert_eq!(
            p.retry_delay(&mut backoff, true, &Failure::Transport(&reset), t0),
            None
        );
        let delay = p
            .retry_delay(&mut backoff, false, &Failure::Transport(&reset), t0)
            .unwrap();
        assert!(
            delay <= Duration::from_millis(2 * 102),
            "second retry: at most 2 intervals, {delay:?}"
        );
        for _ in 0..(MAX_RETRIES - 2) {
            assert!(p
                .retry_delay(&mut backoff, false, &Failure::Transport(&reset), t0)
                .is_some());
        }
        assert_eq!(
            p.retry_delay(&mut backoff, false, &Failure::Transport(&reset), t0),
            None,
            "retries used up"
        );
        assert_ne!(p.next_seed(), p.next_seed());
    }
}
