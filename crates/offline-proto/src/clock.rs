//! Time as drivers see it: one injected [`Clock`] for the monotonic instant and the
//! wall-clock time, so that a driver's tests can run on synthetic or paused time.
//!
//! The core itself never reads a clock: its state machines are handed `now`. This
//! module only gives drivers (the async providers, the blocking client, the emulator)
//! one trait to read time through, and [`Anchor`], which derives a wall-clock time
//! from a monotonic instant so that a paused monotonic clock (tokio's
//! `time::pause`) moves the wall clock with it: a token that expires in 7200 s of
//! wall-clock time then expires after 7200 s of paused time too.

use std::time::{Duration, Instant, SystemTime};

/// Where a driver reads the time. `now` is monotonic (never goes back); `wall` is the
/// calendar time providers state expiries in (`expiredAt`, `deadline`).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The monotonic time now.
    fn now(&self) -> Instant;
    /// The wall-clock time now.
    fn wall(&self) -> SystemTime;
}

/// The operating system's clocks: `Instant::now()` and `SystemTime::now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A pair of readings taken together, from which the wall-clock time of any later
/// monotonic instant follows: `wall(t) = wall₀ + (t − t₀)`.
///
/// A clock built on a monotonic source that can be paused or advanced (tokio's
/// test clock) keeps one of these, so that its wall clock advances exactly as its
/// monotonic clock does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    instant: Instant,
    wall: SystemTime,
}

impl Anchor {
    /// An anchor from a monotonic reading and the wall-clock time at that moment.
    pub fn new(instant: Instant, wall: SystemTime) -> Self {
        Self { instant, wall }
    }

    /// The wall-clock time at the monotonic instant `at` (before the anchor: the
    /// anchor's own wall time minus the difference, saturating at the Unix epoch).
    pub fn wall_at(&self, at: Instant) -> SystemTime {
        match at.checked_duration_since(self.instant) {
            Some(ahead) => self.wall.checked_add(ahead).unwrap_or(self.wall),
            None => {
                let behind = self.instant.saturating_duration_since(at);
                self.wall
                    .checked_sub(behind)
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            }
        }
    }
}

/// `now + wait`, or `None` when the sum does not fit an [`Instant`] (a `Retry-After`
/// of 2⁶⁴ − 1 seconds): never panics, unlike `Instant + Duration`.
pub fn checked_deadline(now: Instant, wait: Duration) -> Option<Instant> {
    now.checked_add(wait)
}

/// A clock that moves only when told to, or when something waits on it: for tests of
/// drivers in synthetic time. Clones share one time.
///
/// Waiting on it ([`crate::driver::BlockingTimer::block_until`]) advances it to the
/// deadline at once, so a blocking client that backs off for ten seconds takes no real
/// time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: std::sync::Arc<std::sync::Mutex<(Instant, SystemTime)>>,
}

impl ManualClock {
    /// A clock at `start` / `wall`.
    pub fn new(start: Instant, wall: SystemTime) -> Self {
        Self {
            inner: std::sync::Arc::new(std::sync::Mutex::new((start, wall))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.0 += by;
        t.1 += by;
    }

    /// Moves the clock to `at`, if that is later than now.
    pub fn advance_to(&self, at: Instant) {
        let now = self.now();
        if at > now {
            self.advance(at - now);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }
    fn wall(&self) -> SystemTime {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
    }
}

impl crate::driver::BlockingTimer for ManualClock {
    fn block_until(&self, deadline: Instant) {
        self.advance_to(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_moves_the_wall_clock_with_the_monotonic_one() {
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = Anchor::new(t0, w0);
        assert_eq!(a.wall_at(t0), w0);
        assert_eq!(
            a.wall_at(t0 + Duration::from_secs(7200)),
            w0 + Duration::from_secs(7200)
        );
        if let Some(before) = t0.checked_sub(Duration::from_secs(5)) {
            assert_eq!(a.wall_at(before), w0 - Duration::from_secs(5));
        }
        assert_eq!(checked_deadline(t0, Duration::MAX), None);
    }
}
