//! The conformance scenario over every transport: 200 creates per provider against
//! the emulator with 10 % of requests faulted; each create ends created exactly once
//! or reported `OutcomeUnknown`, never duplicated, never lost (see the crate docs).
//!
//! One line per transport.

use offline_conformance::{assert_conforms, scenario, transports};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_hyper() {
    assert_conforms(&scenario(transports::hyper).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_blocking_std_net() {
    assert_conforms(&scenario(transports::blocking).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_closure() {
    assert_conforms(&scenario(transports::closure).await);
}
