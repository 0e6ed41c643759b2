//! One conformance scenario, run the same way over every transport.
//!
//! Dev-only test support (not published): [`scenario`] starts an emulator of both
//! providers and a loopback source server, switches on the emulator's faults
//! ([`Faults::mixed`] at [`FAULT_RATE`] under [`FAULT_SEED`]: 503s, 429s, connections
//! dropped before and after the work, truncated bodies, expired tokens), sends
//! [`CREATES`] creates per provider through a [`Transport`], and then counts, from the
//! emulator's own task lists, what each create became. Every create must end
//!
//! - **created exactly once**: the client said `Ok` and the emulator holds exactly one
//!   task for its source URL (the one the client named, when it named one); or
//! - **outcome unknown**: the client said `OutcomeUnknown` and the emulator holds 0 or
//!   1 task for it; or
//! - **failed**: any other error, and the emulator holds no task for it;
//!
//! never **duplicated** (2 tasks or more for one URL) and never **lost** (an `Ok` whose
//! task is missing, or an error other than `OutcomeUnknown` while the emulator holds
//! the task). [`Report::violations`] lists every breach; [`assert_conforms`] fails the
//! test on any.
//!
//! The transports ([`transports`]): the default `transport-hyper` client through the
//! real providers, the blocking `std::net` client of `offline-proto`'s example driven
//! by [`offline_proto::driver::drive_blocking`] on a manual clock, and a closure
//! transport (a closure wrapping a `HyperClient` that counts requests). Adding one is
//! implementing [`Transport`] and one line in `tests/conformance.rs`.

#[path = "../../offline-proto/examples/blocking_client/std_net.rs"]
mod std_net;

pub mod transports;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use offline_emulator::source::{ServedFile, SourceServer};
use offline_emulator::{Emulator, EmulatorConfig, EndpointId, Faults, RunningEmulator};

/// Creates sent per provider and transport.
pub const CREATES: usize = 200;

/// The share of requests the emulator faults while the creates run.
pub const FAULT_RATE: f64 = 0.1;

/// The seed of the emulator's fault generator.
pub const FAULT_SEED: u64 = 2026;

/// The rate limit (requests per second, every endpoint) of the emulator and of the
/// async clients: generous, so that the run is bounded by the work, not by pacing.
pub const RATE_LIMIT: f64 = 1000.0;

/// The drive folder 6pan tasks are added into.
pub const SIXPAN_FOLDER: &str = "/conformance";

/// A provider the scenario creates tasks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    /// 123pan: `POST /api/v1/offline/download` of a source URL.
    Pan123,
    /// 6pan: `parseUrl` then `add` of an http link.
    SixPan,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pan123 => "123pan",
            Self::SixPan => "6pan",
        })
    }
}

/// What the client said of one create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Created: the task's ID (123pan) or identity (6pan) when the client knows it.
    Created(Option<String>),
    /// `OutcomeUnknown`: the task may or may not exist; the text is the error's chain.
    Unknown(String),
    /// Any other error, as its chain.
    Failed(String),
    /// The client panicked (a blocking transport's thread): always a violation.
    Panicked(String),
}

/// A transport under test: a way to reach the emulator, able to send one create at a
/// time (the scenario runs [`concurrency`](Self::concurrency) of them at once).
pub trait Transport: Send + Sync {
    /// Its name in reports.
    fn name(&self) -> &'static str;
    /// The providers it can create tasks on.
    fn providers(&self) -> &'static [Provider];
    /// How many creates the scenario runs at once.
    fn concurrency(&self) -> usize;
    /// Creates a task on `provider` for the source `url`.
    fn create(&self, provider: Provider, url: String) -> impl Future<Output = Outcome> + Send;
    /// How many requests it has sent, when it counts them.
    fn requests(&self) -> Option<u64> {
        None
    }
    /// Anything else worth a line in the report.
    fn notes(&self) -> Option<String> {
        None
    }
    /// How many token requests (123pan) or logins (6pan) its client made, when known.
    fn token_fetches(&self, provider: Provider) -> Option<u64> {
        let _ = provider;
        None
    }
}

/// What one provider's run over one transport came to.
#[derive(Debug, Clone)]
pub struct Report {
    /// The transport's [`name`](Transport::name).
    pub transport: &'static str,
    /// The provider.
    pub provider: Provider,
    /// Creates sent.
    pub creates: usize,
    /// Created exactly once.
    pub created: usize,
    /// Reported `OutcomeUnknown`, of which the emulator holds the task for
    /// [`unknown_held`](Self::unknown_held).
    pub unknown: usize,
    /// Of the unknown ones, how many the emulator holds (0 or 1 task each).
    pub unknown_held: usize,
    /// Failed with another error, nothing held.
    pub failed: usize,
    /// Source URLs the emulator holds two tasks or more for.
    pub duplicates: usize,
    /// Creates lost: `Ok` with no (or another) task, or another error with a task held.
    pub lost: usize,
    /// Clients that panicked.
    pub panicked: usize,
    /// Faults the emulator injected during the run.
    pub faults_injected: u64,
    /// Requests the transport sent during the run, when it counts them.
    pub requests: Option<u64>,
    /// Token requests or logins the client made, when known.
    pub token_fetches: Option<u64>,
    /// How long the creates took.
    pub elapsed: Duration,
    /// The transport's [`notes`](Transport::notes), taken after the run.
    pub notes: Option<String>,
    /// Why creates ended unknown or failed: each error (its chain) and how many times.
    pub reasons: BTreeMap<String, usize>,
    /// Every breach, one line each (empty when the run conforms).
    pub violations: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<8} {:<7} creates {} created {} unknown {} ({} held) failed {} duplicates {} lost {} panicked {} | faults {}",
            self.transport,
            self.provider,
            self.creates,
            self.created,
            self.unknown,
            self.unknown_held,
            self.failed,
            self.duplicates,
            self.lost,
            self.panicked,
            self.faults_injected,
        )?;
        if let Some(n) = self.requests {
            write!(f, ", requests {n}")?;
        }
        if let Some(n) = self.token_fetches {
            write!(f, ", token fetches {n}")?;
        }
        write!(f, ", {:.2} s", self.elapsed.as_secs_f64())?;
        if let Some(notes) = &self.notes {
            write!(f, "\n  {notes}")?;
        }
        for (reason, n) in &self.reasons {
            write!(f, "\n  {n} × {reason}")?;
        }
        Ok(())
    }
}

/// An error's text without what differs from one request to the next (trace IDs,
/// ports, task numbers), so that equal causes are counted together.
fn generic(e: &str) -> String {
    let mut out = String::with_capacity(e.len());
    let mut digits = false;
    for c in e.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push('N');
            }
            digits = true;
        } else {
            digits = false;
            out.push(c);
        }
    }
    out
}

/// The source URL of create `i` on `provider` (one file per create, so that every
/// task has its own URL and name).
fn source_name(provider: Provider, i: usize) -> String {
    match provider {
        Provider::Pan123 => format!("p{i:03}.bin"),
        Provider::SixPan => format!("s{i:03}.bin"),
    }
}

/// Runs the scenario over the transport `connect` makes for the emulator: for each of
/// its providers, [`CREATES`] creates with faults on, then the count. Returns one
/// [`Report`] per provider; check them with [`assert_conforms`].
///
/// # Panics
///
/// When the emulator or the source server cannot start (no loopback port).
pub async fn scenario<T, F>(connect: F) -> Vec<Report>
where
    T: Transport,
    F: FnOnce(&RunningEmulator) -> T,
{
    let emu = Emulator::start(EmulatorConfig {
        rate_limits: EndpointId::ALL.map(|e| (e, RATE_LIMIT)).into(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts");
    let mut files = BTreeMap::new();
    for provider in [Provider::Pan123, Provider::SixPan] {
        for i in 0..CREATES {
            files.insert(
                source_name(provider, i),
                ServedFile::new("application/octet-stream", format!("source {i}\n")),
            );
        }
    }
    let sources = SourceServer::start(files)
        .await
        .expect("the source server starts");
    let transport = connect(&emu);

    let mut reports = Vec::new();
    for &provider in transport.providers() {
        let urls: Vec<String> = (0..CREATES)
            .map(|i| sources.file_url(&source_name(provider, i)))
            .collect();
        let faults_before = emu.faults_injected();
        let requests_before = transport.requests();
        emu.set_faults(Faults::mixed(FAULT_SEED, FAULT_RATE));
        let started = Instant::now();
        let outcomes: Vec<(String, Outcome)> = stream::iter(urls)
            .map(|url| {
                let transport = &transport;
                async move {
                    let outcome = transport.create(provider, url.clone()).await;
                    (url, outcome)
                }
            })
            .buffer_unordered(transport.concurrency().max(1))
            .collect()
            .await;
        let elapsed = started.elapsed();
        emu.set_faults(Faults::default());
        let faults_injected = emu.faults_injected() - faults_before;
        let held = held_tasks(&emu, provider);
        let mut report = count(transport.name(), provider, &outcomes, &held);
        report.faults_injected = faults_injected;
        report.requests = transport
            .requests()
            .map(|n| n - requests_before.unwrap_or(0));
        report.token_fetches = transport.token_fetches(provider);
        report.elapsed = elapsed;
        report.notes = transport.notes();
        reports.push(report);
    }
    drop(transport);
    emu.shutdown().await;
    reports
}

/// For each source URL, the IDs (123pan) or identities (6pan) of the tasks the
/// emulator holds for it.
fn held_tasks(emu: &RunningEmulator, provider: Provider) -> HashMap<String, Vec<String>> {
    let mut held: HashMap<String, Vec<String>> = HashMap::new();
    match provider {
        Provider::Pan123 => {
            for t in emu.tasks() {
                held.entry(t.url).or_default().push(t.id.0.to_string());
            }
        }
        Provider::SixPan => {
            for t in emu.sixpan_tasks() {
                held.entry(t.url).or_default().push(t.identity);
            }
        }
    }
    held
}

/// Classifies every create against what the emulator holds.
fn count(
    transport: &'static str,
    provider: Provider,
    outcomes: &[(String, Outcome)],
    held: &HashMap<String, Vec<String>>,
) -> Report {
    let mut r = Report {
        transport,
        provider,
        creates: outcomes.len(),
        created: 0,
        unknown: 0,
        unknown_held: 0,
        failed: 0,
        duplicates: 0,
        lost: 0,
        panicked: 0,
        faults_injected: 0,
        requests: None,
        token_fetches: None,
        elapsed: Duration::ZERO,
        notes: None,
        reasons: BTreeMap::new(),
        violations: Vec::new(),
    };
    let none = Vec::new();
    for (url, outcome) in outcomes {
        let tasks = held.get(url).unwrap_or(&none);
        if tasks.len() >= 2 {
            r.duplicates += 1;
            r.violations.push(format!(
                "duplicate: {url} has {} tasks {tasks:?} (client said {outcome:?})",
                tasks.len()
            ));
            continue;
        }
        match outcome {
            Outcome::Created(id) => match (tasks.first(), id) {
                (None, _) => {
                    r.lost += 1;
                    r.violations.push(format!(
                        "lost: {url} reported created as {id:?}, no task held"
                    ));
                }
                (Some(task), Some(id)) if task != id => {
                    r.lost += 1;
                    r.violations.push(format!(
                        "lost: {url} reported created as {id}, but the task held is {task}"
                    ));
                }
                (Some(_), _) => r.created += 1,
            },
            Outcome::Unknown(e) => {
                *r.reasons
                    .entry(format!("unknown: {}", generic(e)))
                    .or_default() += 1;
                r.unknown += 1;
                r.unknown_held += tasks.len();
            }
            Outcome::Failed(e) => {
                *r.reasons
                    .entry(format!("failed: {}", generic(e)))
                    .or_default() += 1;
                if tasks.is_empty() {
                    r.failed += 1;
                } else {
                    r.lost += 1;
                    r.violations.push(format!(
                        "lost: {url} reported failed ({e}), but the emulator holds task {tasks:?}"
                    ));
                }
            }
            Outcome::Panicked(e) => {
                r.panicked += 1;
                r.violations.push(format!("panic: {url}: {e}"));
            }
        }
    }
    let extra: usize = held
        .iter()
        .filter(|(url, _)| !outcomes.iter().any(|(u, _)| u == *url))
        .map(|(_, t)| t.len())
        .sum();
    if extra > 0 {
        r.violations
            .push(format!("{extra} tasks held for URLs nobody submitted"));
    }
    r
}

/// Prints the reports and fails on any violation, on a run that saw no fault, or on
/// one where fewer than 80 % of the creates were created (a transport that fails
/// everything does not conform either).
///
/// # Panics
///
/// On any of those, with every violation listed.
pub fn assert_conforms(reports: &[Report]) {
    assert!(!reports.is_empty(), "no provider was run");
    let mut problems = Vec::new();
    for r in reports {
        println!("{r}");
        for v in &r.violations {
            println!("  {v}");
        }
        problems.extend(
            r.violations
                .iter()
                .map(|v| format!("{} {}: {v}", r.transport, r.provider)),
        );
        if r.faults_injected == 0 {
            problems.push(format!(
                "{} {}: no fault was injected",
                r.transport, r.provider
            ));
        }
        if r.created * 10 < r.creates * 8 {
            problems.push(format!(
                "{} {}: only {} of {} created",
                r.transport, r.provider, r.created, r.creates
            ));
        }
        if r.requests.is_some_and(|n| n < r.creates as u64) {
            problems.push(format!(
                "{} {}: {:?} requests counted for {} creates",
                r.transport, r.provider, r.requests, r.creates
            ));
        }
        let settled = r.created + r.unknown + r.failed + r.duplicates + r.lost + r.panicked;
        if settled != r.creates {
            problems.push(format!(
                "{} {}: {settled} of {} creates accounted for",
                r.transport, r.provider, r.creates
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
