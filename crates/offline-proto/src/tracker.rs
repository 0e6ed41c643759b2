//! Task tracking as a state machine: which task to poll next and when.
//!
//! A [`Tracker`] holds the tasks a user waits for. The driver loops:
//!
//! 1. [`poll`](Tracker::poll) at `now` says [`Next::Poll`] (ask the provider about this
//!    task now), [`Next::At`] (sleep until then), [`Next::Awaiting`] (answers are
//!    outstanding) or [`Next::Done`] (every task has ended);
//! 2. the answer goes back through [`handle_progress`](Tracker::handle_progress) or
//!    [`handle_error`](Tracker::handle_error).
//!
//! While a task runs, the interval between two polls of it grows by
//! [`PollPolicy::factor`] from [`PollPolicy::initial`] up to [`PollPolicy::max`]; it
//! stops at a final status and keeps going while the provider retries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often to ask about a running task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollPolicy {
    /// Delay before the second poll of a task (the first is immediate).
    pub initial: Duration,
    /// Longest delay between two polls of a task.
    pub max: Duration,
    /// Growth of the delay after each poll that finds the task still running (≥ 1).
    pub factor: f64,
}

impl Default for PollPolicy {
    /// 250 ms, doubling up to 10 s: a task the drive finishes at once (a file it
    /// already holds) is reported within a quarter of a second, and a long one is
    /// asked about every 10 s after 40 s (9 polls in its first minute).
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
            factor: 2.0,
        }
    }
}

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<K> {
    /// Ask about this task now, then report the answer.
    Poll(K),
    /// Nothing is due before this instant.
    At(Instant),
    /// Nothing is due, but answers are outstanding: report them first.
    Awaiting,
    /// Every task has ended (or none is tracked).
    Done,
}

#[derive(Debug, Clone)]
struct Entry {
    due: Instant,
    interval: Duration,
    in_flight: bool,
    done: bool,
    polls: u32,
    /// Failed asks in a row.
    errors: u32,
}

/// The tasks being waited for, keyed by `K`. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Tracker<K: Ord + Clone> {
    tasks: BTreeMap<K, Entry>,
    policy: PollPolicy,
}

impl<K: Ord + Clone> Tracker<K> {
    /// An empty tracker.
    pub fn new(policy: PollPolicy) -> Self {
        Self {
            tasks: BTreeMap::new(),
            policy,
        }
    }

    /// Starts tracking `key`; its first poll is due at `now`. Adding a key again
    /// restarts it.
    pub fn add(&mut self, key: K, now: Instant) {
        self.tasks.insert(
            key,
            Entry {
                due: now,
                interval: self.policy.initial,
                in_flight: false,
                done: false,
                polls: 0,
                errors: 0,
            },
        );
    }

    /// Stops tracking `key`.
    pub fn remove(&mut self, key: &K) {
        self.tasks.remove(key);
    }

    /// How many tracked tasks have not ended.
    pub fn pending(&self) -> usize {
        self.tasks.values().filter(|e| !e.done).count()
    }

    /// How many polls of `key` have been answered.
    pub fn polls(&self, key: &K) -> Option<u32> {
        self.tasks.get(key).map(|e| e.polls)
    }

    /// What to do at `now`. A task returned in [`Next::Poll`] is not returned again
    /// until its answer is reported.
    pub fn poll(&mut self, now: Instant) -> Next<K> {
        let mut earliest: Option<(&K, Instant)> = None;
        let mut awaiting = false;
        for (k, e) in &self.tasks {
            if e.done {
                continue;
            }
            if e.in_flight {
                awaiting = true;
                continue;
            }
            if earliest.is_none_or(|(_, d)| e.due < d) {
                earliest = Some((k, e.due));
            }
        }
        match earliest {
            Some((k, due)) if due <= now => {
                let k = k.clone();
                if let Some(e) = self.tasks.get_mut(&k) {
                    e.in_flight = true;
                }
                Next::Poll(k)
            }
            Some((_, due)) => Next::At(due),
            None if awaiting => Next::Awaiting,
            None => Next::Done,
        }
    }

    /// The provider answered about `key` at `now`; `is_final` says whether the task
    /// ended. Returns whether the task is now finished (false for an unknown key).
    pub fn handle_progress(&mut self, key: &K, is_final: bool, now: Instant) -> bool {
        let policy = self.policy;
        let Some(e) = self.tasks.get_mut(key) else {
            return false;
        };
        e.in_flight = false;
        e.polls += 1;
        e.errors = 0;
        if is_final {
            e.done = true;
            return true;
        }
        e.due = now + e.interval;
        e.interval = e.interval.mul_f64(policy.factor.max(1.0)).min(policy.max);
        false
    }

    /// Asking about `key` failed at `now` (a rate limit, a dropped connection). The
    /// task is asked again after `retry_after` when given, else after its current
    /// interval, which grows as for a running task.
    pub fn handle_error(&mut self, key: &K, now: Instant, retry_after: Option<Duration>) {
        let policy = self.policy;
        if let Some(e) = self.tasks.get_mut(key) {
            e.in_flight = false;
            e.due = now + retry_after.unwrap_or(e.interval);
            e.interval = e.interval.mul_f64(policy.factor.max(1.0)).min(policy.max);
        }
    }

    /// Asking about `key` failed at `now`; `again` is
    /// [`ask_again_later`](crate::retry::ask_again_later)'s reading of the error
    /// (`Some(retry_after)` for a failure worth asking again: a rate limit, a 5xx, a
    /// truncated answer). The one rule of every watch: the task is asked again (as
    /// [`handle_error`](Self::handle_error) schedules it) unless the failure is not
    /// worth it or it is the [`MAX_CONSECUTIVE_WATCH_ERRORS`]th in a row; then the
    /// task is no longer tracked. Returns whether it will be asked again (false: report
    /// the error, the watch of `key` ended).
    ///
    /// [`MAX_CONSECUTIVE_WATCH_ERRORS`]: crate::retry::MAX_CONSECUTIVE_WATCH_ERRORS
    pub fn handle_failure(
        &mut self,
        key: &K,
        now: Instant,
        again: Option<Option<Duration>>,
    ) -> bool {
        let Some(e) = self.tasks.get_mut(key) else {
            return false;
        };
        e.errors += 1;
        match crate::retry::watch_again(e.errors, again) {
            Some(retry_after) => {
                self.handle_error(key, now, retry_after);
                true
            }
            _ => {
                self.remove(key);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PollPolicy {
        PollPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
            factor: 2.0,
        }
    }

    #[test]
    fn failures_are_asked_again_until_the_fifth_in_a_row_or_a_final_one() {
        let t0 = Instant::now();
        let mut tr = Tracker::new(policy());
        tr.add(1u64, t0);
        let later = Some(Some(Duration::from_secs(9)));
        for _ in 0..4 {
            assert_eq!(tr.poll(t0 + Duration::from_secs(100)), Next::Poll(1));
            assert!(tr.handle_failure(&1, t0, later));
        }
        assert_eq!(tr.poll(t0), Next::At(t0 + Duration::from_secs(9)));
        // An answer resets the count.
        assert_eq!(tr.poll(t0 + Duration::from_secs(9)), Next::Poll(1));
        tr.handle_progress(&1, false, t0);
        for _ in 0..4 {
            assert_eq!(tr.poll(t0 + Duration::from_secs(100)), Next::Poll(1));
            assert!(tr.handle_failure(&1, t0, Some(None)));
        }
        assert_eq!(tr.poll(t0 + Duration::from_secs(100)), Next::Poll(1));
        assert!(!tr.handle_failure(&1, t0, Some(None)), "the fifth in a row");
        assert_eq!(tr.poll(t0), Next::Done);
        // A failure not worth asking again ends the watch at once.
        tr.add(2, t0);
        assert_eq!(tr.poll(t0), Next::Poll(2));
        assert!(!tr.handle_failure(&2, t0, None));
        assert_eq!(tr.pending(), 0);
        assert!(!tr.handle_failure(&3, t0, later), "unknown key");
    }

    #[test]
    fn polls_back_off_while_running_and_stop_when_final() {
        let t0 = Instant::now();
        let mut tr = Tracker::new(policy());
        tr.add(7u64, t0);
        assert_eq!(tr.poll(t0), Next::Poll(7));
        assert_eq!(tr.poll(t0), Next::Awaiting);
        assert!(!tr.handle_progress(&7, false, t0));
        assert_eq!(tr.poll(t0), Next::At(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(tr.poll(t1), Next::Poll(7));
        tr.handle_progress(&7, false, t1);
        assert_eq!(tr.poll(t1), Next::At(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(tr.poll(t2), Next::Poll(7));
        tr.handle_progress(&7, false, t2);
        let t3 = t2 + Duration::from_secs(4);
        assert_eq!(tr.poll(t2), Next::At(t3));
        assert_eq!(tr.poll(t3), Next::Poll(7));
        tr.handle_progress(&7, false, t3);
        // capped at max
        assert_eq!(tr.poll(t3), Next::At(t3 + Duration::from_secs(4)));
        let t4 = t3 + Duration::from_secs(4);
        assert_eq!(tr.poll(t4), Next::Poll(7));
        assert!(tr.handle_progress(&7, true, t4));
        assert_eq!(tr.poll(t4 + Duration::from_secs(100)), Next::Done);
        assert_eq!(tr.pending(), 0);
        assert_eq!(tr.polls(&7), Some(5));
    }

    #[test]
    fn earliest_task_first_and_errors_reschedule() {
        let t0 = Instant::now();
        let mut tr = Tracker::new(policy());
        tr.add(1u64, t0 + Duration::from_millis(10));
        tr.add(2u64, t0);
        assert_eq!(tr.poll(t0), Next::Poll(2));
        tr.handle_error(&2, t0, Some(Duration::from_secs(3)));
        assert_eq!(tr.poll(t0), Next::At(t0 + Duration::from_millis(10)));
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(tr.poll(t1), Next::Poll(1));
        assert!(tr.handle_progress(&1, true, t1));
        assert_eq!(tr.poll(t1), Next::At(t0 + Duration::from_secs(3)));
        assert_eq!(tr.pending(), 1);
    }

    #[test]
    fn synthetic_hour_of_polling_is_bounded() {
        // A task that runs for an hour is polled about 3600/max times, not 3600.
        let t0 = Instant::now();
        let mut now = t0;
        let mut tr = Tracker::new(PollPolicy::default());
        tr.add(1u64, now);
        let mut polls = 0;
        loop {
            match tr.poll(now) {
                Next::Poll(k) => {
                    polls += 1;
                    let done = now - t0 >= Duration::from_secs(3600);
                    tr.handle_progress(&k, done, now);
                }
                Next::At(t) => now = t,
                Next::Awaiting => unreachable!(),
                Next::Done => break,
            }
        }
        assert!((360..=372).contains(&polls), "{polls}");
    }
}
