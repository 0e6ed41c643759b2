//! The budgeted scheduler against round-robin at the same budget, in synthetic time.
//!
//! `cargo test -p offline-proto --test schedule -- --nocapture` prints the figures
//! (the README's Performance row comes from `steady_1000_tasks_at_5_per_second`).
//!
//! The scenario ([`scenario`]): `slots` tasks run at once; each slot's first task is
//! picked up at a staggered time in the first 10 minutes, already part-way through (a
//! daemon taking over running tasks), and when a task ends the slot's next one is
//! submitted 0–60 s later. A task's working time is uniform in 10 min – 2 h; its
//! progress is linear with noise (its speed changes every 1–10 minutes by a factor in
//! 0.5–1.5); 15 % stall at a percent for 5–30 min; 5 % of submitted tasks are files the
//! drive already holds and end within 10 s of their submission (half of those at once,
//! so they end on the first poll); 30 % report whole percents (as the image-bed call
//! does), the others two decimals. Every task ending within the measured horizon
//! counts; the delay is the time of the first poll that sees it final minus its true
//! end. Answers come back at once; the task list is the same for every strategy.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use offline_proto::schedule::{Next, PollPolicy, Scheduler, FLOOR_ROUNDS};

/// xorshift64*: small, seeded, enough for a simulation.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Picked up part-way through at the start.
    PickedUp,
    /// Submitted, linear with noise.
    Linear,
    /// Stalls at a percent for a while.
    Stalled,
    /// The drive already holds the file.
    Held,
}

#[derive(Debug, Clone)]
struct Task {
    /// Seconds from the start of the simulation.
    added: f64,
    end: f64,
    whole: bool,
    kind: Kind,
    /// (seconds, true percent), increasing; the last is (end, 100).
    points: Vec<(f64, f64)>,
}

impl Task {
    fn percent(&self, t: f64) -> f64 {
        let i = self.points.partition_point(|&(at, _)| at <= t);
        if i == 0 {
            return 0.0;
        }
        if i == self.points.len() {
            return 100.0;
        }
        let (t0, p0) = self.points[i - 1];
        let (t1, p1) = self.points[i];
        p0 + (p1 - p0) * (t - t0) / (t1 - t0)
    }

    /// What the provider answers at `t`: the reported percent and whether it ended.
    fn reading(&self, t: f64) -> (f64, bool) {
        if t >= self.end {
            return (100.0, true);
        }
        let p = self.percent(t).min(99.999);
        let reported = if self.whole {
            p.floor()
        } else {
            (p * 100.0).floor() / 100.0
        };
        (reported, false)
    }
}

/// A task started at `started` (seconds), submitted or picked up at `added`.
fn task(rng: &mut Rng, started: f64, added: f64, kind: Kind) -> Task {
    let whole = rng.chance(0.3);
    if kind == Kind::Held {
        let end = if rng.chance(0.5) {
            added
        } else {
            added + rng.range(0.0, 10.0)
        };
        return Task {
            added,
            end,
            whole,
            kind,
            points: vec![(added, 0.0), (end.max(added + 1e-6), 100.0)],
        };
    }
    let working = rng.range(600.0, 7200.0);
    // Speed segments in units of the nominal speed, then scaled to `working` seconds.
    let mut raw = vec![(0.0, 0.0)];
    let (mut t, mut x) = (0.0, 0.0);
    while x < 100.0 {
        let len = rng.range(60.0, 600.0) / working * 3900.0;
        let speed = rng.range(0.5, 1.5) * 100.0 / 3900.0;
        if x + speed * len >= 100.0 {
            t += (100.0 - x) / speed;
            x = 100.0;
        } else {
            t += len;
            x += speed * len;
        }
        raw.push((t, x));
    }
    let scale = working / t;
    let mut points: Vec<(f64, f64)> = raw
        .into_iter()
        .map(|(t, x)| (started + t * scale, x))
        .collect();
    if kind == Kind::Stalled {
        let at = rng.range(5.0, 95.0);
        let len = rng.range(300.0, 1800.0);
        let i = points.partition_point(|&(_, x)| x <= at);
        let (t0, x0) = points[i - 1];
        let (t1, x1) = points[i];
        let ts = t0 + (t1 - t0) * (at - x0) / (x1 - x0);
        for p in &mut points[i..] {
            p.0 += len;
        }
        points.insert(i, (ts + len, at));
        points.insert(i, (ts, at));
    }
    let end = points.last().map_or(started, |p| p.0);
    Task {
        added,
        end,
        whole,
        kind,
        points,
    }
}

/// The tasks of `slots` slots, by submission time. With `replace`, each slot gets its
/// next task 0–60 s after its task ends, until `until` seconds; without, each slot
/// holds one task, submitted fresh at a staggered time in the first 10 minutes.
fn scenario(seed: u64, slots: usize, replace: bool, until: f64) -> Vec<Task> {
    let mut rng = Rng::new(seed);
    let mut tasks = Vec::new();
    for _ in 0..slots {
        let added = rng.range(0.0, 600.0);
        let first = if replace {
            // Already running: picked up at a random point of its run.
            let mut t = task(&mut rng, 0.0, added, Kind::PickedUp);
            let age = rng.range(0.0, 0.9) * (t.end - t.points[0].0);
            for p in &mut t.points {
                p.0 += added - age;
            }
            t.end += added - age;
            t
        } else {
            fresh(&mut rng, added)
        };
        let mut next = first.end + rng.range(0.0, 60.0);
        tasks.push(first);
        while replace && next < until {
            let t = fresh(&mut rng, next);
            next = t.end + rng.range(0.0, 60.0);
            tasks.push(t);
        }
    }
    tasks.sort_by(|a, b| a.added.total_cmp(&b.added));
    tasks
}

fn fresh(rng: &mut Rng, added: f64) -> Task {
    let kind = if rng.chance(0.05) {
        Kind::Held
    } else if rng.chance(0.15) {
        Kind::Stalled
    } else {
        Kind::Linear
    };
    task(rng, added, added, kind)
}

/// A way to pick the next task to ask about.
trait Strategy {
    fn add(&mut self, key: u32, now: Instant);
    fn poll(&mut self, now: Instant) -> Next<u32>;
    fn answer(&mut self, key: u32, percent: f64, is_final: bool, now: Instant);
    fn len(&self) -> usize;
}

impl Strategy for Scheduler<u32> {
    fn add(&mut self, key: u32, now: Instant) {
        Scheduler::add(self, key, now);
    }
    fn poll(&mut self, now: Instant) -> Next<u32> {
        Scheduler::poll(self, now)
    }
    fn answer(&mut self, key: u32, percent: f64, is_final: bool, now: Instant) {
        self.handle_progress(&key, percent, is_final, now);
    }
    fn len(&self) -> usize {
        Scheduler::len(self)
    }
}

/// Plain round-robin: one poll every `1 / budget` s, the tasks in turn.
struct RoundRobin {
    queue: VecDeque<u32>,
    every: Duration,
    next: Option<Instant>,
    out: usize,
}

impl RoundRobin {
    fn new(budget: f64) -> Self {
        Self {
            queue: VecDeque::new(),
            every: Duration::from_secs_f64(1.0 / budget),
            next: None,
            out: 0,
        }
    }
}

impl Strategy for RoundRobin {
    fn add(&mut self, key: u32, _now: Instant) {
        self.queue.push_back(key);
    }
    fn poll(&mut self, now: Instant) -> Next<u32> {
        if self.queue.is_empty() {
            return if self.out > 0 {
                Next::Awaiting
            } else {
                Next::Done
            };
        }
        if let Some(t) = self.next.filter(|&t| now < t) {
            return Next::At(t);
        }
        self.next = Some(now + self.every);
        self.out += 1;
        Next::Poll(self.queue.pop_front().unwrap())
    }
    fn answer(&mut self, key: u32, _percent: f64, is_final: bool, _now: Instant) {
        self.out -= 1;
        if !is_final {
            self.queue.push_back(key);
        }
    }
    fn len(&self) -> usize {
        self.queue.len() + self.out
    }
}

/// What one run measured.
#[derive(Debug)]
struct Figures {
    /// Tasks that ended within the horizon.
    tasks: usize,
    mean: f64,
    p50: f64,
    p95: f64,
    max: f64,
    /// Mean delay by kind: (kind, tasks, mean).
    by_kind: Vec<(Kind, usize, f64)>,
    polls: usize,
    /// Polls per second over the horizon.
    rate: f64,
    /// Most polls in any 1 s window.
    busiest_second: usize,
    /// Longest time between two polls of one task, and most tasks tracked at once.
    longest_gap: f64,
    most_tracked: usize,
}

/// Runs `strategy` over `tasks`; every task ending before `horizon` s is measured.
fn simulate(strategy: &mut dyn Strategy, tasks: &[Task], horizon: f64) -> Figures {
    let t0 = Instant::now();
    let at = |s: f64| t0 + Duration::from_secs_f64(s);
    let secs = |t: Instant| (t - t0).as_secs_f64();
    let measured = tasks.iter().filter(|t| t.end < horizon).count();
    let mut seen = vec![None::<f64>; tasks.len()];
    let mut last_poll = vec![None::<f64>; tasks.len()];
    let mut longest_gap: f64 = 0.0;
    let mut grants: Vec<Instant> = Vec::new();
    let mut most_tracked = 0;
    let mut seen_measured = 0;
    let mut next_add = 0;
    let mut now = t0;
    while seen_measured < measured {
        while next_add < tasks.len() && at(tasks[next_add].added) <= now {
            strategy.add(next_add as u32, at(tasks[next_add].added));
            next_add += 1;
        }
        most_tracked = most_tracked.max(strategy.len());
        let upcoming = tasks.get(next_add).map(|t| at(t.added));
        match strategy.poll(now) {
            Next::Poll(k) => {
                let i = k as usize;
                let t = secs(now);
                grants.push(now);
                if let Some(prev) = last_poll[i] {
                    longest_gap = longest_gap.max(t - prev);
                }
                last_poll[i] = Some(t);
                let (percent, is_final) = tasks[i].reading(t);
                if is_final && seen[i].is_none() {
                    seen[i] = Some(t);
                    if tasks[i].end < horizon {
                        seen_measured += 1;
                    }
                }
                strategy.answer(k, percent, is_final, now);
            }
            Next::At(t) => now = upcoming.map_or(t, |u| u.min(t)),
            Next::Awaiting => unreachable!("answers come back at once"),
            Next::Done => match upcoming {
                Some(u) => now = u,
                None => break,
            },
        }
        assert!(secs(now) < horizon + 86_400.0, "a task was never seen");
    }
    let mut delays: Vec<(Kind, f64)> = tasks
        .iter()
        .zip(&seen)
        .filter(|(t, _)| t.end < horizon)
        .map(|(t, s)| (t.kind, s.unwrap() - t.end))
        .collect();
    delays.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = delays.len();
    let q = |f: f64| delays[((n as f64 * f) as usize).min(n - 1)].1;
    let mean = delays.iter().map(|d| d.1).sum::<f64>() / n as f64;
    let by_kind = [Kind::PickedUp, Kind::Linear, Kind::Stalled, Kind::Held]
        .into_iter()
        .map(|k| {
            let ds: Vec<f64> = delays.iter().filter(|d| d.0 == k).map(|d| d.1).collect();
            let m = ds.iter().sum::<f64>() / ds.len().max(1) as f64;
            (k, ds.len(), m)
        })
        .collect();
    let in_horizon = grants.iter().filter(|&&g| secs(g) < horizon).count();
    let mut busiest_second = 0;
    let mut lo = 0;
    for hi in 0..grants.len() {
        while grants[hi] - grants[lo] >= Duration::from_secs(1) {
            lo += 1;
        }
        busiest_second = busiest_second.max(hi - lo + 1);
    }
    Figures {
        tasks: n,
        mean,
        p50: q(0.5),
        p95: q(0.95),
        max: delays[n - 1].1,
        by_kind,
        polls: grants.len(),
        rate: in_horizon as f64 / horizon,
        busiest_second,
        longest_gap,
        most_tracked,
    }
}

fn policy() -> PollPolicy {
    PollPolicy::default()
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name}: {} tasks ended; task end -> seen: mean {:.1} s, p50 {:.1} s, p95 {:.1} s, \
         max {:.1} s; {} polls ({:.2}/s over the horizon, at most {} in any 1 s); longest \
         gap between two polls of a task {:.0} s; at most {} tracked",
        f.tasks,
        f.mean,
        f.p50,
        f.p95,
        f.max,
        f.polls,
        f.rate,
        f.busiest_second,
        f.longest_gap,
        f.most_tracked
    );
    for (kind, n, m) in &f.by_kind {
        println!("    {kind:?}: {n} tasks, mean {m:.1} s");
    }
}

const BUDGET: f64 = 5.0;
const SEED: u64 = 20_261_202;

#[test]
fn steady_1000_tasks_at_5_per_second() {
    // Six hours with 1,000 tasks running at any time.
    let horizon = 6.0 * 3600.0;
    let tasks = scenario(SEED, 1000, true, horizon + 3.0 * 3600.0);
    let mut budgeted = Scheduler::new(BUDGET, policy());
    let ours = simulate(&mut budgeted, &tasks, horizon);
    let rr = simulate(&mut RoundRobin::new(BUDGET), &tasks, horizon);
    print("budgeted", &ours);
    print("round-robin", &rr);
    println!(
        "mean {:.1} s vs round-robin {:.1} s: {:.3} of it, {:.3} of the N / B / 2 = 100 s bound",
        ours.mean,
        rr.mean,
        ours.mean / rr.mean,
        ours.mean / 100.0
    );
    assert!(ours.busiest_second <= 5, "{}", ours.busiest_second);
    assert!(ours.mean < 50.0, "mean {:.1} s", ours.mean);
    assert!(ours.mean < rr.mean / 2.0);
    assert!(
        (80.0..120.0).contains(&rr.mean),
        "round-robin {:.1}",
        rr.mean
    );
    // The bound: the floor gap (FLOOR_ROUNDS × N / B) plus N / B.
    let bound = (FLOOR_ROUNDS + 1.0) * ours.most_tracked as f64 / BUDGET;
    assert!(ours.longest_gap <= bound, "{} > {bound}", ours.longest_gap);
}

#[test]
fn batch_of_1000_tasks_at_5_per_second() {
    // 1,000 tasks submitted in the first 10 minutes, none after.
    let horizon = 3.0 * 3600.0;
    let tasks = scenario(SEED + 1, 1000, false, 0.0);
    assert!(tasks.iter().all(|t| t.end < horizon));
    let ours = simulate(&mut Scheduler::new(BUDGET, policy()), &tasks, horizon);
    let rr = simulate(&mut RoundRobin::new(BUDGET), &tasks, horizon);
    print("budgeted (batch)", &ours);
    print("round-robin (batch)", &rr);
    assert!(ours.busiest_second <= 5);
    assert!(ours.mean < rr.mean / 2.0, "{} vs {}", ours.mean, rr.mean);
}

#[test]
fn other_seeds_stay_under_half_the_bound() {
    for seed in 1..=3 {
        let horizon = 3.0 * 3600.0;
        let tasks = scenario(seed, 1000, true, horizon + 3.0 * 3600.0);
        let ours = simulate(&mut Scheduler::new(BUDGET, policy()), &tasks, horizon);
        print(&format!("budgeted (seed {seed})"), &ours);
        assert!(ours.busiest_second <= 5);
        assert!(ours.mean < 50.0, "seed {seed}: {:.1}", ours.mean);
    }
}
