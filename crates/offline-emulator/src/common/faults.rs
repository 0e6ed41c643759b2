//! Faults the emulator can inject, switchable at start ([`crate::EmulatorConfig::faults`])
//! and at run time ([`crate::RunningEmulator::set_faults`], or `PUT /_emulator/faults`
//! with the admin token), deterministic under a seed.
//!
//! Each API request draws one [`Action`] from a generator seeded with
//! `seed` and the request's number, so a client that sends the same requests in the
//! same order meets the same faults. The description routes (`/openapi.json`) are never
//! faulted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What to inject, as fractions of requests (0.0 to 1.0) and durations.
///
/// As JSON (the standalone emulator's `PUT /_emulator/faults`, with the admin token:
/// see [`RunningEmulator::admin_token`](crate::RunningEmulator::admin_token)), durations are whole
/// milliseconds: `{"seed": 1, "server_error": 0.05, "latency": 20}`; absent fields are 0.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Faults {
    /// The generator's seed.
    pub seed: u64,
    /// Added before every answer.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Answered HTTP 503 with an HTML body, without being carried out.
    pub server_error: f64,
    /// Answered as rate limited (123pan: code 429; 6pan: HTTP 429), without being
    /// carried out.
    pub rate_limited: f64,
    /// The connection is closed before the request is carried out.
    pub drop_before: f64,
    /// The request is carried out, then the connection is closed without an answer.
    pub drop_after: f64,
    /// The request is carried out and the answer's body is cut in half (the JSON ends
    /// in the middle of a value).
    pub truncate: f64,
    /// The token is answered as expired (123pan code 401; 6pan HTTP 401), without the
    /// request being carried out; the token itself stays valid.
    pub token_expired: f64,
    /// 123pan creates answered with the concurrent-task cap (code 2,
    /// `同时下载的任务超出最大限制，不能下载`), without being carried out.
    pub task_limit: f64,
    /// 123pan creates answered as a duplicate task (code 2, `离线任务已存在，请勿重复提交`),
    /// without being carried out.
    pub duplicate_task: f64,
    /// 123pan creates answered with the traffic quota exhausted (code 5113), without
    /// being carried out.
    pub quota_exceeded: f64,
    /// Callbacks that are never sent.
    pub callback_lost: f64,
    /// Callbacks that are sent twice.
    pub callback_twice: f64,
    /// Added before each callback is sent.
    #[serde(with = "millis")]
    pub callback_delay: Duration,
}

/// A duration as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Faults {
    /// The same fraction of requests for each of the request faults that may or may not
    /// let the request through (server error, rate limit, drops, truncation, token
    /// expiry), split evenly: `total` is the share of requests faulted in all.
    pub fn mixed(seed: u64, total: f64) -> Self {
        let each = total / 6.0;
        Self {
            seed,
            server_error: each,
            rate_limited: each,
            drop_before: each,
            drop_after: each,
            truncate: each,
            token_expired: each,
            ..Self::default()
        }
    }

    /// Whether any request fault is switched on.
    pub fn any_request_fault(&self) -> bool {
        self.server_error
            + self.rate_limited
            + self.drop_before
            + self.drop_after
            + self.truncate
            + self.token_expired
            > 0.0
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Carried out and answered normally.
    Pass,
    /// HTTP 503, not carried out.
    ServerError,
    /// Rate limited, not carried out.
    RateLimited,
    /// Connection closed, not carried out.
    DropBefore,
    /// Carried out, connection closed without an answer.
    DropAfter,
    /// Carried out, body cut in half.
    Truncate,
    /// Token answered as expired, not carried out.
    TokenExpired,
}

/// A refusal injected into a create call (after its checks, before anything is
/// created).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateFault {
    /// The concurrent-task cap.
    TaskLimit,
    /// A duplicate task.
    DuplicateTask,
    /// The quota is used up.
    QuotaExceeded,
}

/// The faults in force and the request and callback counters.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    faults: Mutex<Faults>,
    requests: AtomicU64,
    creates: AtomicU64,
    callbacks: AtomicU64,
    injected: AtomicU64,
}

/// SplitMix64: one well-mixed number from a seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(seed: u64, n: u64, salt: u64) -> f64 {
    (mix(seed ^ mix(n) ^ salt) >> 11) as f64 / (1u64 << 53) as f64
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            faults: Mutex::new(faults),
            ..Self::default()
        }
    }

    pub(crate) fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    pub(crate) fn get(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many faults were injected so far.
    pub(crate) fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The action for the next request, and the latency to add.
    pub(crate) fn next(&self) -> (Action, Duration) {
        let f = self.get();
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let action = decide(&f, n);
        if action != Action::Pass {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        (action, f.latency)
    }

    /// The refusal injected into the next create call, if any (one draw against the
    /// cumulative create fractions).
    pub(crate) fn next_create(&self) -> Option<CreateFault> {
        let f = self.get();
        let n = self.creates.fetch_add(1, Ordering::Relaxed);
        let x = unit(f.seed, n, 0x00C4_EA7E);
        let table = [
            (f.task_limit, CreateFault::TaskLimit),
            (f.duplicate_task, CreateFault::DuplicateTask),
            (f.quota_exceeded, CreateFault::QuotaExceeded),
        ];
        let mut edge = 0.0;
        for (share, fault) in table {
            edge += share.max(0.0);
            if x < edge {
                self.injected.fetch_add(1, Ordering::Relaxed);
                return Some(fault);
            }
        }
        None
    }

    /// Whether the next callback is lost, sent twice, and how long it waits.
    pub(crate) fn next_callback(&self) -> (bool, bool, Duration) {
        let f = self.get();
        let n = self.callbacks.fetch_add(1, Ordering::Relaxed);
        let lost = unit(f.seed, n, 0xCA11_BAC0) < f.callback_lost;
        let twice = unit(f.seed, n, 0x7_1CE) < f.callback_twice;
        (lost, twice, f.callback_delay)
    }
}

/// The action for request number `n` under `f`: one draw against the cumulative
/// fractions, so that at most one fault hits a request.
pub fn decide(f: &Faults, n: u64) -> Action {
    let x = unit(f.seed, n, 0x5EED);
    let table = [
        (f.server_error, Action::ServerError),
        (f.rate_limited, Action::RateLimited),
        (f.drop_before, Action::DropBefore),
        (f.drop_after, Action::DropAfter),
        (f.truncate, Action::Truncate),
        (f.token_expired, Action::TokenExpired),
    ];
    let mut edge = 0.0;
    for (share, action) in table {
        edge += share.max(0.0);
        if x < edge {
            return action;
        }
    }
    Action::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_means_pass() {
        let f = Faults::default();
        assert!((0..10_000).all(|n| decide(&f, n) == Action::Pass));
    }

    #[test]
    fn shares_are_respected_and_deterministic() {
        let f = Faults::mixed(7, 0.10);
        let actions: Vec<Action> = (0..60_000).map(|n| decide(&f, n)).collect();
        let faulted = actions.iter().filter(|a| **a != Action::Pass).count() as f64 / 60_000.0;
        assert!((faulted - 0.10).abs() < 0.01, "{faulted}");
        for kind in [Action::ServerError, Action::DropAfter, Action::TokenExpired] {
            let share = actions.iter().filter(|a| **a == kind).count() as f64 / 60_000.0;
            assert!((share - 0.10 / 6.0).abs() < 0.005, "{kind:?}: {share}");
        }
        let again: Vec<Action> = (0..60_000).map(|n| decide(&f, n)).collect();
        assert_eq!(actions, again, "same seed, same faults");
        let other: Vec<Action> = (0..60_000)
            .map(|n| decide(&Faults::mixed(8, 0.10), n))
            .collect();
        assert_ne!(actions, other);
    }
}
