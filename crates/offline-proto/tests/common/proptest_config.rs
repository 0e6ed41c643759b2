//! The proptest configuration of the crate's property tests: failures are recorded in
//! a file under `proptest-regressions/` (relative to the crate, where `cargo test`
//! runs), which is committed. Shared by the integration tests (through
//! `tests/common/mod.rs`) and the unit tests (through `src/lib.rs`).

use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

/// The default configuration, with failures persisted in `path`
/// (`proptest-regressions/<test>.txt`).
pub(crate) fn regressions_in(path: &'static str) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
        ..ProptestConfig::default()
    }
}

/// [`regressions_in`] `path`, running `cases` cases.
pub(crate) fn persisted(cases: u32, path: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..regressions_in(path)
    }
}
