//! Tracking many tasks within a request budget, each polled when its progress rate
//! says it is due.
//!
//! [`tracker::Tracker`](crate::tracker::Tracker) polls every task on its own
//! exponential interval and knows no global limit: fine for the few tasks a command
//! waits for, not for a daemon that watches a thousand without callbacks while the
//! provider allows a few progress calls per second. Polling those round-robin, a
//! task's end is seen `N / B / 2` seconds after it happens on average (`N` tasks, `B`
//! polls per second: 100 s for 1,000 tasks at 5/s). A [`Scheduler`] spends the same
//! budget where ends are likely instead.
//!
//! The driver loop is the tracker's: [`poll`](Scheduler::poll) at `now` says
//! [`Next::Poll`] (ask about this task now), [`Next::At`] (nothing before then),
//! [`Next::Awaiting`] (only answers are outstanding) or [`Next::Done`] (nothing is
//! tracked); answers go back through [`handle_progress`](Scheduler::handle_progress)
//! (with the task's percent) or [`handle_error`](Scheduler::handle_error).
//!
//! # Strategy
//!
//! - **Rate.** In percent per second, measured over the intervals in which the
//!   reading moved: the percent gained over the time it took, both summed with an
//!   exponential forgetting of [`RATE_HORIZON`]. A reading that moves by whole
//!   percents (as the image-bed call reports) is measured from step to step, each step
//!   placed in the middle of the interval it happened in, so polls much more frequent
//!   than its steps do not inflate the rate. A stall does not lower the rate (it says
//!   how fast the task goes when it goes); it delays the next poll instead (below). A
//!   reading below the previous one (the provider restarted the task) forgets the
//!   rate.
//! - **Predicted end.** The time the reading last moved (for a whole-percent reading,
//!   the estimated time of its last step) plus the remaining percent over the rate;
//!   never before the latest answer plus what the last step can still take (nothing
//!   for a reading with decimals, up to the time of one step for a whole-percent one).
//! - **Next poll.** A task with an unknown rate (no move seen yet) is asked again
//!   after [`PollPolicy::initial`], growing by [`PollPolicy::factor`] while nothing
//!   moves. A task with a rate is asked again when [`APPROACH`] of its predicted
//!   remaining time has passed (halving the distance to its end, so the polls close in
//!   on it); once its predicted end has passed without a final answer, after
//!   [`OVERDUE`] times the time since then (backing off from a task slower than it
//!   looked); and a task whose reading has not moved for a time `T` waits at least
//!   [`STALL`]` × T` (so a task stuck at 99.9 % backs off instead of taking a poll
//!   every end gap). Always within the *end gap* and the *floor gap*.
//! - **Gaps from the budget.** With `N` tasks tracked and `B` polls per second, the end
//!   gap is `max(PollPolicy::initial, N / B / END_SHARE)` and the floor gap is
//!   `max(PollPolicy::max, FLOOR_ROUNDS × N / B)`: at 1,000 tasks and 5/s, 5 s and
//!   600 s. A task that shows no progress for long is still asked about every floor
//!   gap, so one that stalls and then finishes is not forgotten, and those asks take at
//!   most `1 / FLOOR_ROUNDS` of the budget.
//! - **Budget.** Never more than `n` polls in any window of `n / B` seconds, with
//!   `n = ⌊B⌋` (1 when `B < 1`): for a whole-number budget, at most `B` polls in any
//!   1 s window, in bursts of up to `B` at once. (A token bucket with a burst above
//!   one token lets `burst + B − 1` through some 1 s window; a sliding window of the
//!   last `n` grants does not.)
//! - **Urgency.** When more tasks are due than the budget lets through, the one whose
//!   possible end is oldest goes first: a task's urgency is its due time, or its
//!   predicted end when that comes first, but never earlier than its last answer, so
//!   among tasks whose predicted end has passed, the one unobserved longest goes first;
//!   tasks that are only closing in or taking a floor poll wait behind them.
//!
//! # The bound
//!
//! A due task waits behind at most every other task once: an answer at `t` gives its
//! task an urgency no earlier than `t`, so a task served after another became due is
//! not served again before it. A task is therefore asked about at least every floor
//! gap plus `(N − 1) / B` seconds (plus the time its answers take), however the
//! others progress; when the schedule asks for more than the budget, the scheduler
//! degrades to round-robin among the due tasks, urgent ones first.
//!
//! `crates/offline-proto/tests/schedule.rs` simulates 1,000 tasks at 5/s against
//! round-robin; the figures are in the README's Performance section.
//!
//! # Cost
//!
//! [`poll`](Scheduler::poll) and the `handle_*` methods are `O(log N)` (binary heaps of
//! due times and urgencies, plus the task map); a removed or rescheduled task's old
//! heap entry is dropped when it reaches the top. Nothing reads a clock: every method
//! takes `now`, and the same calls give the same answers.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

pub use crate::tracker::{Next, PollPolicy};

/// Share of a task's predicted remaining time after which it is asked again (0.5: each
/// poll halves the distance to the predicted end).
pub const APPROACH: f64 = 0.5;

/// A task whose predicted end has passed without a final answer is asked again after
/// this many times the time since its predicted end (within the end and floor gaps).
pub const OVERDUE: f64 = 0.5;

/// A task whose reading has not moved for a time `T` (beyond the time a whole-percent
/// step takes at its rate) is asked again after at least `STALL × T` (within the end
/// and floor gaps).
pub const STALL: f64 = 0.25;

/// The end gap is `N / B / END_SHARE` seconds (`N` tasks, `B` polls per second) or
/// [`PollPolicy::initial`], whichever is longer: the shortest interval between two
/// polls of a task with a known rate.
pub const END_SHARE: f64 = 40.0;

/// The floor gap is `FLOOR_ROUNDS × N / B` seconds or [`PollPolicy::max`], whichever is
/// longer: the longest interval the scheduler plans between two polls of a task.
pub const FLOOR_ROUNDS: f64 = 3.0;

/// Time constant of the rate's exponential forgetting.
pub const RATE_HORIZON: Duration = Duration::from_secs(600);

/// Budgets below this many polls per second are raised to it.
pub const MIN_BUDGET: f64 = 0.001;

/// The budget window remembers at most this many grants: a budget above it allows
/// `MAX_WINDOW` polls in any `MAX_WINDOW / B` seconds.
pub const MAX_WINDOW: usize = 1024;

/// Predictions are capped at this distance (a rate near zero).
const FAR: f64 = 30.0 * 86_400.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// In the heap of due times.
    Waiting,
    /// Due, in the heap of urgencies.
    Ready,
    /// Handed out by `poll`, its answer not reported yet.
    InFlight,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Sequence number of the entry's live heap item; older items are stale.
    seq: u64,
    slot: Slot,
    polls: u32,
    /// Failed asks in a row.
    errors: u32,
    /// Delay before the next poll while the rate is unknown.
    backoff: Duration,
    /// Latest answer: when, and the percent.
    last: Option<(Instant, f64)>,
    /// When the current reading was reached (estimated), and the reading.
    anchor: Option<(Instant, f64)>,
    /// Every reading so far is a whole percent.
    whole: bool,
    /// Percent gained and seconds spent, exponentially forgotten.
    gained: f64,
    spent: f64,
    end: Option<Instant>,
}

impl Entry {
    fn new(policy: &PollPolicy) -> Self {
        Self {
            seq: 0,
            slot: Slot::Waiting,
            polls: 0,
            errors: 0,
            backoff: policy.initial,
            last: None,
            anchor: None,
            whole: true,
            gained: 0.0,
            spent: 0.0,
            end: None,
        }
    }

    fn rate(&self) -> Option<f64> {
        (self.gained > 0.0 && self.spent > 0.0).then(|| self.gained / self.spent)
    }

    fn forget_rate(&mut self, policy: &PollPolicy) {
        self.gained = 0.0;
        self.spent = 0.0;
        self.backoff = policy.initial;
        self.whole = true;
    }

    /// Takes in a reading of `percent` at `now`.
    fn observe(&mut self, percent: f64, now: Instant, policy: &PollPolicy) {
        if percent.is_nan() {
            return;
        }
        let p = percent.clamp(0.0, 100.0);
        match self.last {
            Some((_, prev)) if p < prev => {
                // Restarted: what was learnt no longer holds.
                self.forget_rate(policy);
                self.anchor = Some((now, p));
            }
            Some((at, prev)) if p > prev => {
                let step = self.whole && p.fract() == 0.0;
                // Whole-percent readings move by steps: measure from step to step, each
                // taken in the middle of the interval it happened in.
                let (reached, (since, from)) = if step {
                    let mid = at + now.saturating_duration_since(at) / 2;
                    (mid, self.anchor.unwrap_or((at, prev)))
                } else {
                    (now, (at, prev))
                };
                let dt = reached.saturating_duration_since(since).as_secs_f64();
                if dt > 0.0 {
                    let keep = (-dt / RATE_HORIZON.as_secs_f64()).exp();
                    self.gained = self.gained * keep + (p - from);
                    self.spent = self.spent * keep + dt;
                }
                self.anchor = Some((reached, p));
                self.backoff = policy.initial;
            }
            Some(_) => {}
            None => self.anchor = Some((now, p)),
        }
        self.whole &= p.fract() == 0.0;
        self.last = Some((now, p));
    }
}

/// A heap item: ordered so that `BinaryHeap` pops the earliest `at` (then the lowest
/// `seq`, so ties go in scheduling order); `key` is never compared.
#[derive(Debug, Clone)]
struct Item<K> {
    at: Instant,
    seq: u64,
    /// For the heap of due times: the urgency the item takes into the other heap.
    urgency: Instant,
    key: K,
}

impl<K> PartialEq for Item<K> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl<K> Eq for Item<K> {}

impl<K> PartialOrd for Item<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Item<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The budget: at most `n` grants in any window of `span`.
#[derive(Debug, Clone)]
struct Window {
    n: usize,
    span: Duration,
    grants: VecDeque<Instant>,
}

impl Window {
    fn new(budget: f64) -> Self {
        // `budget` is ≥ MIN_BUDGET and finite here.
        let n = (budget.floor() as usize).clamp(1, MAX_WINDOW);
        Self {
            n,
            span: Duration::from_secs_f64(n as f64 / budget),
            grants: VecDeque::with_capacity(n),
        }
    }

    /// The earliest instant a grant is allowed.
    fn free_at(&self) -> Option<Instant> {
        if self.grants.len() < self.n {
            None
        } else {
            self.grants.front().map(|&t| t + self.span)
        }
    }

    fn grant(&mut self, now: Instant) {
        if self.grants.len() == self.n {
            self.grants.pop_front();
        }
        self.grants.push_back(now);
    }
}

/// Many tasks keyed by `K`, polled within a budget of polls per second, each when its
/// progress says it is due. See the [module docs](self) for the strategy and the bound.
///
/// A task stays tracked until a final answer ([`handle_progress`] with `is_final`),
/// [`remove`](Self::remove), or a failure that ends its watch ([`handle_failure`]).
///
/// [`handle_progress`]: Self::handle_progress
/// [`handle_failure`]: Self::handle_failure
#[derive(Debug, Clone)]
pub struct Scheduler<K: Ord + Clone> {
    tasks: BTreeMap<K, Entry>,
    policy: PollPolicy,
    budget: f64,
    window: Window,
    waiting: BinaryHeap<Item<K>>,
    ready: BinaryHeap<Item<K>>,
    in_flight: usize,
    seq: u64,
}

impl<K: Ord + Clone> Scheduler<K> {
    /// An empty scheduler allowing `budget_per_second` polls per second (raised to
    /// [`MIN_BUDGET`] when smaller or not a number; see the module docs for the window
    /// it is enforced over). `policy` gives the first interval of a task whose rate is
    /// unknown ([`PollPolicy::initial`], also the shortest interval), its growth
    /// ([`PollPolicy::factor`]) and the longest interval with few tasks
    /// ([`PollPolicy::max`]).
    pub fn new(budget_per_second: f64, policy: PollPolicy) -> Self {
        let budget = if budget_per_second.is_finite() {
            budget_per_second.max(MIN_BUDGET)
        } else if budget_per_second > 0.0 {
            f64::MAX
        } else {
            MIN_BUDGET
        };
        Self {
            tasks: BTreeMap::new(),
            policy,
            budget,
            window: Window::new(budget.min(1e12)),
            waiting: BinaryHeap::new(),
            ready: BinaryHeap::new(),
            in_flight: 0,
            seq: 0,
        }
    }

    /// The budget in polls per second.
    pub fn budget(&self) -> f64 {
        self.budget
    }

    /// How many tasks are tracked (not ended, not removed).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is tracked.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether `key` is tracked.
    pub fn contains(&self, key: &K) -> bool {
        self.tasks.contains_key(key)
    }

    /// How many polls handed out by [`poll`](Self::poll) have no answer reported yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// How many answers about `key` (progress or errors) have been reported; `None`
    /// when it is not tracked.
    pub fn polls(&self, key: &K) -> Option<u32> {
        self.tasks.get(key).map(|e| e.polls)
    }

    /// The rate of `key` in percent per second while it moves (stalls are not
    /// counted), once its progress has been seen to move; `None` before that or when
    /// it is not tracked.
    pub fn rate(&self, key: &K) -> Option<f64> {
        self.tasks.get(key).and_then(Entry::rate)
    }

    /// When `key` is predicted to end (from its latest answer); `None` while its rate is
    /// unknown or when it is not tracked.
    pub fn predicted_end(&self, key: &K) -> Option<Instant> {
        self.tasks.get(key).and_then(|e| e.end)
    }

    /// The end gap and the floor gap (see the module docs) for the tasks tracked now.
    pub fn gaps(&self) -> (Duration, Duration) {
        let round = self.tasks.len().max(1) as f64 / self.budget;
        let floor = self
            .policy
            .max
            .max(secs(FLOOR_ROUNDS * round))
            .max(self.policy.initial);
        let end = self.policy.initial.max(secs(round / END_SHARE)).min(floor);
        (end, floor)
    }

    /// Starts tracking `key`; its first poll is due at `now`, urgently (a task the
    /// drive finishes at once is seen on its first poll). Adding a tracked key again
    /// restarts it: what was learnt about it is forgotten, and an answer to a poll
    /// already handed out counts as an answer to the restarted task.
    pub fn add(&mut self, key: K, now: Instant) {
        let mut fresh = Entry::new(&self.policy);
        match self.tasks.get_mut(&key) {
            Some(e) if e.slot == Slot::InFlight => {
                fresh.slot = Slot::InFlight;
                *e = fresh;
            }
            _ => {
                self.tasks.insert(key.clone(), fresh);
                self.push(key, now, now);
            }
        }
    }

    /// Stops tracking `key`. Returns whether it was tracked.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.tasks.remove(key) {
            Some(e) => {
                if e.slot == Slot::InFlight {
                    self.in_flight -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// What to do at `now`. A task returned in [`Next::Poll`] counts against the budget
    /// at `now` and is not returned again until its answer is reported; [`Next::At`]
    /// is the earliest instant something can be handed out (a task's due time or, when
    /// tasks are due, the instant the budget allows the next poll).
    pub fn poll(&mut self, now: Instant) -> Next<K> {
        while let Some(top) = self.waiting.peek() {
            if top.at > now {
                if self.live(top, Slot::Waiting) {
                    break;
                }
            } else if self.live(top, Slot::Waiting) {
                let Some(mut item) = self.waiting.pop() else {
                    break;
                };
                if let Some(e) = self.tasks.get_mut(&item.key) {
                    e.slot = Slot::Ready;
                }
                item.at = item.urgency;
                self.ready.push(item);
                continue;
            }
            self.waiting.pop();
        }
        while let Some(top) = self.ready.peek() {
            if self.live(top, Slot::Ready) {
                break;
            }
            self.ready.pop();
        }
        if !self.ready.is_empty() {
            if let Some(free) = self.window.free_at().filter(|&t| now < t) {
                return Next::At(free);
            }
            if let Some(item) = self.ready.pop() {
                if let Some(e) = self.tasks.get_mut(&item.key) {
                    e.slot = Slot::InFlight;
                }
                self.in_flight += 1;
                self.window.grant(now);
                return Next::Poll(item.key);
            }
        }
        match self.waiting.peek() {
            Some(top) => Next::At(top.at),
            None if self.in_flight > 0 => Next::Awaiting,
            None => Next::Done,
        }
    }

    /// The provider answered about `key` at `now`: `percent` is its progress (0 to 100;
    /// values outside are clamped, a NaN is ignored), `is_final` whether it ended. A
    /// final answer stops tracking the task. An answer nobody asked for (a callback's
    /// hint, another reader) counts too: the task is rescheduled from it. Returns
    /// whether the task ended (false for a key that is not tracked, which is ignored).
    pub fn handle_progress(&mut self, key: &K, percent: f64, is_final: bool, now: Instant) -> bool {
        let policy = self.policy;
        let (end_gap, floor) = self.gaps();
        let Some(e) = self.tasks.get_mut(key) else {
            return false;
        };
        if e.slot == Slot::InFlight {
            self.in_flight -= 1;
        }
        if is_final {
            self.tasks.remove(key);
            return true;
        }
        e.polls = e.polls.saturating_add(1);
        e.errors = 0;
        e.observe(percent, now, &policy);
        let (due, urgency) = plan(e, now, &policy, end_gap, floor);
        self.push(key.clone(), due, urgency);
        false
    }

    /// Asking about `key` failed at `now` (a rate limit, a dropped connection). The task
    /// is asked again after `retry_after` when given, else after
    /// [`PollPolicy::initial`] growing by [`PollPolicy::factor`] with each failure in a
    /// row (up to the floor gap). Its rate and prediction are kept. A key that is not
    /// tracked is ignored.
    pub fn handle_error(&mut self, key: &K, now: Instant, retry_after: Option<Duration>) {
        let policy = self.policy;
        let (_, floor) = self.gaps();
        let Some(e) = self.tasks.get_mut(key) else {
            return;
        };
        if e.slot == Slot::InFlight {
            self.in_flight -= 1;
        }
        e.polls = e.polls.saturating_add(1);
        e.errors = e.errors.saturating_add(1);
        let gap = retry_after.unwrap_or_else(|| {
            let grown = policy.initial.as_secs_f64()
                * policy
                    .factor
                    .max(1.0)
                    .powi(e.errors.saturating_sub(1).min(64) as i32);
            secs(grown).min(floor)
        });
        let due = now.checked_add(gap).unwrap_or(now + secs(FAR));
        self.push(key.clone(), due, due);
    }

    /// Asking about `key` failed at `now`; `again` is
    /// [`ask_again_later`](crate::retry::ask_again_later)'s reading of the error, as
    /// for [`Tracker::handle_failure`](crate::tracker::Tracker::handle_failure): the
    /// task is asked again (as [`handle_error`](Self::handle_error) schedules it)
    /// unless the failure is not worth it or it is the
    /// [`MAX_CONSECUTIVE_WATCH_ERRORS`]th in a row; then it is no longer tracked.
    /// Returns whether it will be asked again (false: report the error, the watch of
    /// `key` ended; also false for a key that is not tracked).
    ///
    /// [`MAX_CONSECUTIVE_WATCH_ERRORS`]: crate::retry::MAX_CONSECUTIVE_WATCH_ERRORS
    pub fn handle_failure(
        &mut self,
        key: &K,
        now: Instant,
        again: Option<Option<Duration>>,
    ) -> bool {
        let Some(e) = self.tasks.get(key) else {
            return false;
        };
        match crate::retry::watch_again(e.errors + 1, again) {
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

    fn live(&self, item: &Item<K>, slot: Slot) -> bool {
        self.tasks
            .get(&item.key)
            .is_some_and(|e| e.seq == item.seq && e.slot == slot)
    }

    /// Queues `key` (tracked) as due at `due` with `urgency`.
    fn push(&mut self, key: K, due: Instant, urgency: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.tasks.get_mut(&key) {
            e.seq = seq;
            e.slot = Slot::Waiting;
        }
        self.waiting.push(Item {
            at: due,
            seq,
            urgency: urgency.min(due),
            key,
        });
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, FAR))
}

/// The next poll of a task answered at `now`: its due time and its urgency.
fn plan(
    e: &mut Entry,
    now: Instant,
    policy: &PollPolicy,
    end_gap: Duration,
    floor: Duration,
) -> (Instant, Instant) {
    let (Some(rate), Some((_, p)), Some((reached, from))) = (e.rate(), e.last, e.anchor) else {
        let gap = e.backoff.min(floor);
        e.backoff = e.backoff.mul_f64(policy.factor.max(1.0)).min(floor);
        e.end = None;
        return (now + gap, now + gap);
    };
    let step = if e.whole { 1.0 } else { 0.0 };
    // Remaining seconds by the anchor (negative once the predicted end has passed), and
    // at least what the reading's last step can still take.
    let by_anchor = (100.0 - from) / rate - now.saturating_duration_since(reached).as_secs_f64();
    let at_least = (100.0 - p - step).max(0.0) / rate;
    let remaining = by_anchor.max(at_least).min(FAR);
    // Unmoved for longer than a step takes: stalled for that long.
    let stalled = now.saturating_duration_since(reached).as_secs_f64() - step / rate;
    let gap = if remaining > 0.0 {
        APPROACH * remaining
    } else {
        OVERDUE * -by_anchor
    };
    let gap = secs(gap.max(STALL * stalled)).max(end_gap).min(floor);
    let end = now + secs(remaining);
    e.end = Some(end);
    let due = now + gap;
    (due, end.min(due))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    fn policy() -> PollPolicy {
        PollPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
        }
    }

    #[test]
    fn a_key_that_ends_on_its_first_poll_is_done_at_once() {
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        assert_eq!(sc.poll(t0), Next::Done);
        sc.add("a", t0);
        assert!(sc.contains(&"a"));
        assert_eq!(sc.poll(t0), Next::Poll("a"));
        assert_eq!(sc.poll(t0), Next::Awaiting);
        assert_eq!(sc.in_flight(), 1);
        assert!(sc.handle_progress(&"a", 100.0, true, t0));
        assert!(!sc.contains(&"a"));
        assert_eq!(sc.len(), 0);
        assert_eq!(sc.in_flight(), 0);
        assert_eq!(sc.poll(t0), Next::Done);
        assert!(
            !sc.handle_progress(&"a", 100.0, true, t0),
            "no longer tracked"
        );
    }

    #[test]
    fn unknown_rate_backs_off_from_the_initial_interval() {
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        sc.add(1u32, t0);
        let mut now = t0;
        let mut gaps = Vec::new();
        for _ in 0..5 {
            assert_eq!(sc.poll(now), Next::Poll(1));
            assert!(!sc.handle_progress(&1, 0.0, false, now));
            let Next::At(t) = sc.poll(now) else {
                panic!("a due time")
            };
            gaps.push((t - now).as_secs());
            now = t;
        }
        assert_eq!(gaps, [1, 2, 4, 8, 16]);
        assert_eq!(sc.rate(&1), None);
        assert_eq!(sc.polls(&1), Some(5));
    }

    #[test]
    fn linear_progress_is_predicted_and_approached() {
        // 0.1 %/s: 1000 s from 0 to 100.
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        sc.add(1u32, t0);
        let mut now = t0;
        let mut polls = 0;
        loop {
            match sc.poll(now) {
                Next::Poll(k) => {
                    polls += 1;
                    let elapsed = (now - t0).as_secs_f64();
                    let percent = (elapsed * 0.1).min(100.0);
                    if sc.handle_progress(&k, percent, percent >= 100.0, now) {
                        break;
                    }
                    if elapsed > 100.0 {
                        let end = sc.predicted_end(&k).unwrap();
                        let err = (end - t0).as_secs_f64() - 1000.0;
                        assert!(err.abs() < 1.0, "predicted {err} s off at {elapsed}");
                    }
                }
                Next::At(t) => now = t,
                other => panic!("{other:?}"),
            }
        }
        let late = (now - t0).as_secs_f64() - 1000.0;
        // The end gap with one task is the policy's initial interval (1 s).
        assert!((0.0..=1.0).contains(&late), "seen {late} s late");
        assert!(polls < 30, "{polls} polls");
    }

    #[test]
    fn never_more_than_the_budget_in_any_second() {
        // 200 short tasks (30 to 79 s each), each added again when it ends: far more
        // polls wanted than 5/s.
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        let mut started = vec![t0; 200];
        for k in 0..200u32 {
            sc.add(k, t0);
        }
        let mut now = t0;
        let mut grants = Vec::new();
        while now < t0 + s(3600.0) {
            match sc.poll(now) {
                Next::Poll(k) => {
                    grants.push(now);
                    let i = k as usize;
                    let took = 30.0 + f64::from(k % 50);
                    let p = (now - started[i]).as_secs_f64() / took * 100.0;
                    if sc.handle_progress(&k, p.min(100.0), p >= 100.0, now) {
                        started[i] = now;
                        sc.add(k, now);
                    }
                }
                Next::At(t) => now = t,
                other => panic!("{other:?}"),
            }
        }
        assert!(
            grants.len() as f64 > 0.99 * 5.0 * 3600.0,
            "{}",
            grants.len()
        );
        for w in grants.windows(6) {
            assert!(w[5] - w[0] >= s(1.0), "6 polls within a second");
        }
        // A burst of up to 5 at once is allowed.
        assert_eq!(grants[4], t0);
    }

    #[test]
    fn fractional_and_tiny_budgets() {
        let t0 = Instant::now();
        let mut sc = Scheduler::new(0.5, policy());
        sc.add(1u8, t0);
        sc.add(2u8, t0);
        assert_eq!(sc.poll(t0), Next::Poll(1));
        assert_eq!(sc.poll(t0), Next::At(t0 + s(2.0)));
        assert_eq!(sc.poll(t0 + s(2.0)), Next::Poll(2));
        let sc = Scheduler::<u8>::new(f64::NAN, policy());
        assert_eq!(sc.budget(), MIN_BUDGET);
        let sc = Scheduler::<u8>::new(-3.0, policy());
        assert_eq!(sc.budget(), MIN_BUDGET);
    }

    #[test]
    fn errors_wait_for_retry_after_or_back_off() {
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        sc.add(1u32, t0);
        assert_eq!(sc.poll(t0), Next::Poll(1));
        sc.handle_error(&1, t0, Some(s(7.0)));
        assert_eq!(sc.in_flight(), 0);
        assert_eq!(sc.poll(t0), Next::At(t0 + s(7.0)));
        let t1 = t0 + s(7.0);
        assert_eq!(sc.poll(t1), Next::Poll(1));
        sc.handle_error(&1, t1, None);
        assert_eq!(
            sc.poll(t1),
            Next::At(t1 + s(2.0)),
            "second failure in a row"
        );
        let t2 = t1 + s(2.0);
        assert_eq!(sc.poll(t2), Next::Poll(1));
        sc.handle_progress(&1, 10.0, false, t2);
        assert_eq!(sc.poll(t2), Next::At(t2 + s(1.0)), "an answer resets");
        // The fifth failure in a row ends the watch.
        let mut now = t2 + s(1.0);
        for i in 0..5 {
            assert_eq!(sc.poll(now + s(1000.0)), Next::Poll(1));
            let again = sc.handle_failure(&1, now, Some(None));
            assert_eq!(again, i < 4);
            now += s(1000.0);
        }
        assert!(!sc.contains(&1));
        assert_eq!(sc.poll(now), Next::Done);
        assert!(!sc.handle_failure(&1, now, Some(None)), "unknown key");
        sc.handle_error(&1, now, None);
        assert_eq!(sc.len(), 0);
    }

    #[test]
    fn tasks_added_and_removed_mid_run() {
        let t0 = Instant::now();
        let mut sc = Scheduler::new(2.0, policy());
        sc.add(1u32, t0);
        sc.add(2, t0);
        assert_eq!(sc.poll(t0), Next::Poll(1));
        // Removed while in flight: its answer is ignored.
        assert!(sc.remove(&1));
        assert!(!sc.remove(&1));
        assert_eq!(sc.in_flight(), 0);
        assert!(!sc.handle_progress(&1, 50.0, false, t0));
        // Removed while queued: never handed out.
        sc.add(3, t0);
        assert!(sc.remove(&2));
        assert_eq!(sc.poll(t0), Next::Poll(3));
        assert_eq!(sc.poll(t0), Next::Awaiting);
        sc.handle_progress(&3, 5.0, false, t0);
        assert_eq!(sc.len(), 1);
        // Re-added while in flight: the answer counts for the restarted task, and it is
        // not handed out twice.
        let t1 = t0 + s(1.0);
        assert_eq!(sc.poll(t1), Next::Poll(3));
        sc.add(3, t1);
        assert_eq!(sc.poll(t1), Next::Awaiting);
        sc.handle_progress(&3, 6.0, false, t1);
        assert_eq!(sc.polls(&3), Some(1));
        assert_eq!(sc.rate(&3), None, "restarted: no rate yet");
        // Added later, due at once.
        sc.add(4, t1);
        assert_eq!(sc.poll(t1 + s(1.0)), Next::Poll(4));
        assert!(sc.handle_progress(&4, 100.0, true, t1 + s(1.0)));
        assert_eq!(sc.len(), 1);
    }

    #[test]
    fn a_task_past_its_predicted_end_goes_before_an_earlier_due_one() {
        let t0 = Instant::now();
        let pol = PollPolicy {
            initial: s(10.0),
            ..policy()
        };
        let mut sc = Scheduler::new(1.0, pol);
        sc.add(1u32, t0);
        sc.add(2, t0);
        assert_eq!(sc.poll(t0), Next::Poll(1));
        sc.handle_progress(&1, 89.5, false, t0);
        assert_eq!(sc.poll(t0 + s(1.0)), Next::Poll(2));
        sc.handle_error(&2, t0 + s(1.0), Some(s(2.0)));
        assert_eq!(sc.poll(t0 + s(10.0)), Next::Poll(2));
        sc.handle_error(&2, t0 + s(10.0), Some(s(5.0)));
        assert_eq!(sc.poll(t0 + s(11.0)), Next::Poll(1));
        // 1 %/s, half a percent left: predicted to end at 11.55 s, due at 21 s (the end
        // gap is the policy's initial 10 s); 2 is due at 15 s.
        sc.handle_progress(&1, 99.5, false, t0 + s(11.0));
        let end = sc.predicted_end(&1).unwrap() - t0;
        assert!((end.as_secs_f64() - 11.55).abs() < 0.01, "{end:?}");
        assert_eq!(sc.poll(t0 + s(12.0)), Next::At(t0 + s(15.0)));
        // Both due: the one whose predicted end passed goes first.
        let late = t0 + s(30.0);
        assert_eq!(sc.poll(late), Next::Poll(1));
        assert_eq!(sc.poll(late), Next::At(late + s(1.0)));
        assert_eq!(sc.poll(late + s(1.0)), Next::Poll(2));
    }

    #[test]
    fn a_stalled_task_is_still_polled_every_floor_gap() {
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        sc.add(1u32, t0);
        let mut now = t0;
        let mut last_poll = t0;
        let mut longest = Duration::ZERO;
        // 1 %/s for 10 s, then stuck at 10 % for an hour, then done.
        loop {
            match sc.poll(now) {
                Next::Poll(k) => {
                    longest = longest.max(now - last_poll);
                    last_poll = now;
                    let e = (now - t0).as_secs_f64();
                    let p = e.min(10.0);
                    if sc.handle_progress(&k, p, e > 3600.0, now) {
                        break;
                    }
                }
                Next::At(t) => now = t,
                other => panic!("{other:?}"),
            }
        }
        let (_, floor) = sc.gaps();
        assert_eq!(floor, s(60.0), "the policy's max with one task");
        assert!(longest <= floor, "{longest:?}");
        assert!(now - t0 <= s(3660.0));
    }

    #[test]
    fn a_task_stuck_near_its_end_backs_off() {
        // 1 %/s up to 99.9 %, then stuck there for a day: polls grow apart with the
        // stall instead of coming every end gap.
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        sc.add(1u32, t0);
        let mut now = t0;
        let mut polls = 0;
        while now < t0 + s(86_400.0) {
            match sc.poll(now) {
                Next::Poll(k) => {
                    polls += 1;
                    let p = (now - t0).as_secs_f64().min(99.9);
                    sc.handle_progress(&k, p, false, now);
                }
                Next::At(t) => now = t,
                other => panic!("{other:?}"),
            }
        }
        // The floor gap (the policy's 60 s) caps the back-off: about 1,440 polls a day,
        // where one every end gap (1 s) would be 86,400.
        assert!(polls < 1600, "{polls}");
    }

    #[test]
    fn whole_percent_readings_still_give_the_rate() {
        // An image-bed task reports whole percents: 0.05 %/s, 2000 s in all.
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        sc.add(1u32, t0);
        let mut now = t0;
        loop {
            match sc.poll(now) {
                Next::Poll(k) => {
                    let e = (now - t0).as_secs_f64();
                    let p = (e * 0.05).floor().min(100.0);
                    if sc.handle_progress(&k, p, e >= 2000.0, now) {
                        break;
                    }
                    if e > 600.0 {
                        let r = sc.rate(&k).unwrap();
                        assert!((r / 0.05 - 1.0).abs() < 0.2, "rate {r} at {e}");
                    }
                }
                Next::At(t) => now = t,
                other => panic!("{other:?}"),
            }
        }
        let late = (now - t0).as_secs_f64() - 2000.0;
        assert!((0.0..30.0).contains(&late), "{late}");
    }

    #[test]
    fn a_restart_forgets_the_rate_and_nan_is_ignored() {
        let t0 = Instant::now();
        let mut sc = Scheduler::new(5.0, policy());
        sc.add(1u32, t0);
        sc.handle_progress(&1, 10.0, false, t0);
        sc.handle_progress(&1, 20.0, false, t0 + s(10.0));
        assert!(sc.rate(&1).is_some());
        sc.handle_progress(&1, f64::NAN, false, t0 + s(11.0));
        assert!(sc.rate(&1).is_some());
        sc.handle_progress(&1, 0.0, false, t0 + s(12.0));
        assert_eq!(sc.rate(&1), None);
        assert_eq!(sc.predicted_end(&1), None);
    }
}
