//! Client-side rate limiting: a token bucket per endpoint, handed `now`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A token bucket: `rate` requests per second on average, at most `burst` at once.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket. `rate` is in requests per second (must be > 0; smaller values are
    /// raised to 0.001), `burst` in requests (at least 1).
    pub fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate: rate.max(0.001),
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// The rate in requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        self.last = Some(now);
    }

    /// Takes one token at `now`, or says how long to wait before one is there.
    ///
    /// # Errors
    ///
    /// `Err(wait)`: no token now; try again after `wait`.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        // A hair below one token counts as one: refilling by the exact wait this
        // method asked for can land a rounding error short, and the caller must not
        // be sent back to wait for nanoseconds forever.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            Ok(())
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(missing / self.rate).max(Duration::from_micros(1)))
        }
    }
}

/// One [`TokenBucket`] per key (an endpoint).
#[derive(Debug, Clone, Default)]
pub struct RateLimiter<K: Ord> {
    buckets: BTreeMap<K, TokenBucket>,
}

impl<K: Ord> RateLimiter<K> {
    /// An empty limiter: keys without a bucket are not limited.
    pub fn new() -> Self {
        Self {
            buckets: BTreeMap::new(),
        }
    }

    /// Sets the limit of `key`: `rate` requests per second, bursts of `burst`.
    pub fn set(&mut self, key: K, rate: f64, burst: f64) {
        self.buckets.insert(key, TokenBucket::new(rate, burst));
    }

    /// The bucket of `key`, if limited.
    pub fn bucket(&self, key: &K) -> Option<&TokenBucket> {
        self.buckets.get(key)
    }

    /// Takes a token for `key` at `now`.
    ///
    /// # Errors
    ///
    /// `Err(wait)`: try again after `wait`.
    pub fn try_acquire(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.buckets.get_mut(key) {
            Some(b) => b.try_acquire(now),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_requests() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 1.0);
        assert!(b.try_acquire(t0).is_ok());
        let wait = b.try_acquire(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(b.try_acquire(t0 + Duration::from_millis(499)).is_err());
        assert!(b.try_acquire(t0 + Duration::from_millis(1000)).is_ok());
    }

    #[test]
    fn hundred_requests_take_rate_bound_time() {
        // Simulate a client that sleeps exactly as long as told.
        let t0 = Instant::now();
        let mut now = t0;
        let mut b = TokenBucket::new(5.0, 5.0);
        for _ in 0..100 {
            loop {
                match b.try_acquire(now) {
                    Ok(()) => break,
                    Err(w) => now += w,
                }
            }
        }
        let took = now - t0;
        // 5 burst free, 95 at 5/s = 19 s.
        assert!((took.as_secs_f64() - 19.0).abs() < 0.01, "{took:?}");
    }

    #[test]
    fn limiter_keys_are_independent() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new();
        l.set("a", 1.0, 1.0);
        assert!(l.try_acquire(&"a", t0).is_ok());
        assert!(l.try_acquire(&"a", t0).is_err());
        assert!(l.try_acquire(&"b", t0).is_ok());
        assert!(l.try_acquire(&"b", t0).is_ok());
    }
}
