//! A complete 123pan client with no async runtime and no HTTP library: a blocking
//! transport over `std::net` ([`std_net::StdNet`]) driven by the core's call machine
//! ([`offline_proto::driver::drive_blocking`]), so it has everything the async
//! providers have — one token fetched and reused, refreshed once on a 401, every call
//! paced at its endpoint's rate limit, retries with backoff within a budget, and a
//! create whose answer is lost reported as "outcome unknown" instead of sent twice —
//! then the task tracked to its end by the core's tracker.
//!
//! It speaks plain http only, so point it at an emulator:
//!
//! ```sh
//! offline emulator --addr 127.0.0.1:8123 &
//! cargo run -p offline-proto --example blocking_client -- http://127.0.0.1:8123 http://127.0.0.1:8000/file.bin
//! ```

mod std_net;

use std::sync::Mutex;

use offline_proto::call::{CallError, ClientState};
use offline_proto::clock::{Clock, SystemClock};
use offline_proto::driver::{drive_blocking, BlockingTimer};
use offline_proto::pan123::{
    Credentials, EndpointId, OfflineDownloadRequest, OfflineProcessRequest,
};
use offline_proto::token::DEFAULT_MARGIN;
use offline_proto::tracker::{Next, PollPolicy, Tracker};
use offline_proto::BaseUrl;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = BaseUrl::parse(
        &args
            .next()
            .unwrap_or_else(|| "http://127.0.0.1:8123".into()),
    )?;
    let source = args
        .next()
        .ok_or("usage: blocking_client BASE_URL SOURCE_URL")?;
    let client_id =
        std::env::var("OFFLINE_123PAN_CLIENT_ID").unwrap_or_else(|_| "offline-demo-client".into());
    let secret = std::env::var("OFFLINE_123PAN_CLIENT_SECRET")
        .unwrap_or_else(|_| "offline-demo-secret".into());

    // Everything the calls share; the limits are the providers' defaults.
    let state = Mutex::new(ClientState::new(
        base,
        Credentials::client(client_id, secret, DEFAULT_MARGIN),
        EndpointId::ALL.map(|e| (e, e.default_rate_per_second())),
        1,
    ));
    let http = std_net::StdNet::default();
    let clock = SystemClock;
    let say = |n: &offline_proto::call::RetryNotice| {
        eprintln!(
            "{}: {}, retrying in {:?} ({}/{})",
            n.endpoint, n.error, n.delay, n.attempt, n.max
        );
    };

    let created = drive_blocking(
        &state,
        &http,
        &clock,
        OfflineDownloadRequest::new(source.clone()),
        say,
    );
    let task = match created {
        Ok(created) => created.task_id,
        Err(CallError::OutcomeUnknown(why)) => {
            eprintln!("the task may or may not exist ({why}); check before submitting again");
            std::process::exit(5);
        }
        Err(e) => return Err(e.into()),
    };
    println!("created task {task} for {source}");

    // The tracker says when to poll; the timer sleeps.
    let mut tracker = Tracker::new(PollPolicy::default());
    tracker.add(task, clock.now());
    loop {
        match tracker.poll(clock.now()) {
            Next::Poll(id) => {
                let p = drive_blocking(&state, &http, &clock, OfflineProcessRequest::new(id), say)?;
                println!("task {id}: {} {:.1}%", p.status, p.process);
                tracker.handle_progress(&id, p.status.is_final(), clock.now());
            }
            Next::At(when) => clock.block_until(when),
            Next::Awaiting | Next::Done => return Ok(()),
        }
    }
}
