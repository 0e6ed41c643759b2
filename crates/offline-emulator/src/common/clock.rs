//! The emulator's default clock: tokio's, so that a test in paused time
//! (`#[tokio::test(start_paused = true)]`) moves every deadline of the emulator (token
//! expiry, rate-limit refills, task progress, upload-token deadlines) with it.
//!
//! Every reading of time in the emulator goes through the one
//! [`Clock`](offline_proto::clock::Clock) of
//! [`EmulatorConfig::clock`](crate::EmulatorConfig::clock); every wait goes through
//! `tokio::time`, which paused time drives too.

use std::time::{SystemTime, UNIX_EPOCH};

pub use transport_hyper::TokioClock;

/// Milliseconds since the Unix epoch of `time` (0 before it, `i64::MAX` far after).
pub(crate) fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use offline_proto::clock::Clock;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn both_clocks_follow_paused_time() {
        let clock = TokioClock::new();
        let (t0, w0) = (clock.now(), clock.wall());
        tokio::time::advance(Duration::from_secs(7200)).await;
        assert_eq!(clock.now() - t0, Duration::from_secs(7200));
        assert_eq!(
            clock.wall().duration_since(w0).unwrap(),
            Duration::from_secs(7200)
        );
        assert!(unix_ms(clock.wall()) > 1_600_000_000_000);
        assert_eq!(unix_ms(UNIX_EPOCH), 0);
    }
}
