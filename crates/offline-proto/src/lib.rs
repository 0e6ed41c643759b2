//! The sans-IO protocol core of the offline-download toolkit.
//!
//! This crate knows the wire formats and the flows of the cloud drives' offline
//! download APIs (the [123pan open platform](pan123) and [6pan](sixpan)), and nothing
//! else:
//!
//! - it performs **no I/O**: a request is plain data ([`HttpRequest`], an
//!   `http::Request<Bytes>`), a response is plain data ([`HttpResponse`]); any
//!   transport can carry them (`transport-hyper` is the default; a closure is one too,
//!   and `examples/blocking_client/` is a complete client over blocking `std::net`);
//! - it reads **no clock**: the state machines are handed `now` or answers and say
//!   what to do next, so tests drive them with synthetic time
//!   ([`clock::ManualClock`]);
//! - it needs **no runtime**: [`driver::drive`] runs over any async [`HttpClient`] and
//!   [`driver::Timer`], [`driver::drive_blocking`] over any
//!   [`driver::BlockingHttpClient`].
//!
//! The state machines:
//!
//! - [`call::Call`]: **one provider call**, with every rule of it in one place —
//!   validation, the token (one fetch however many calls need it, one refresh on a
//!   rejection, 6pan's rotation by send order), pacing, retries classified once,
//!   `Retry-After` capped, and the create rule (sent again only when the server
//!   certainly did not act, else [`call::CallError::OutcomeUnknown`]). The shared part
//!   is [`call::ClientState`]; the providers' credential rules are
//!   [`pan123::Credentials`] and [`sixpan::auth::Credentials`].
//! - [`token::TokenLifecycle`], [`ratelimit::RateLimiter`], [`retry::Backoff`],
//!   [`retry::RetryBudget`] and [`retry::Pacer`]: the parts the call is made of.
//! - [`tracker::Tracker`]: which task to poll next and when.
//! - [`schedule::Scheduler`]: the same for many tasks within a budget of polls per
//!   second, each polled around its end as its progress rate predicts it.
//! - [`sixpan::upload::UploadPlan`]: a 6pan storage upload.
//! - [`sixpan::tasks::Pager`] and [`sixpan::tasks::Reconciler`]: bounded paging of the
//!   task list, and finding the tasks a lost `add` created.
//! - [`transmission::handle`]: Transmission's RPC (4.0.6's protocol, 4.1's JSON-RPC 2.0) over a [`catalog::Catalog`].
//!
//! Beside the protocols: [`qetag`] (the Qiniu etag 6pan identifies files by) and
//! [`torrent`] (metainfo with the infohash of the raw info dictionary, and a builder).
//!
//! The wire types and endpoint tables are generated from the OpenAPI descriptions in
//! `fixtures/openapi/` by `cargo xtask codegen`.
//!
//! Validation that needs no server (URL schemes, image extensions, file names, the
//! root directory) happens when a request is encoded, so an invalid request never
//! exists. Decoders return [`ApiError`], which keeps the provider's code, message and
//! trace ID, or a [`DecodeError`] with the HTTP status, the JSON path that failed and
//! the raw body.

mod error;
mod open_enum;
mod secret;
mod setters;
mod transport;

/// The property tests' configuration, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/common/proptest_config.rs"]
mod proptest_config;

pub mod aria2;
pub mod call;
pub mod catalog;
pub mod clock;
pub mod common;
pub mod driver;
pub mod pan123;
pub mod qbittorrent;
pub mod qetag;
pub mod ratelimit;
pub mod retry;
pub mod schedule;
pub mod sixpan;
pub mod token;
pub mod torrent;
pub mod tracker;
pub mod transmission;

pub use error::{
    error_chain, ApiError, Code, DecodeError, DecodeErrorKind, EncodeError, ProviderError,
    ValidationError,
};
pub use secret::Secret;
pub use transport::{
    shared, BaseUrl, BaseUrlError, HttpClient, HttpRequest, HttpResponse, ResponseLimit,
    TransportError, TransportErrorKind,
};
