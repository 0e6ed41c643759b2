//! The sans-IO protocol core of the offline-download toolkit.
//!
//! This crate knows the wire formats and the flows of the cloud drives' offline
//! download APIs (the [123pan open platform](pan123) and [6pan](sixpan)), and nothing
//! else:
//!
//! - it performs **no I/O**: a request is plain data ([`HttpRequest`], an
//!   `http::Request<Bytes>`), a response is plain data ([`HttpResponse`]); any
//!   transport can carry them (`transport-hyper` is the default; see
//!   `examples/blocking_transport.rs` for one that is not);
//! - it reads **no clock**: the state machines ([`token::TokenLifecycle`],
//!   [`tracker::Tracker`], [`ratelimit::RateLimiter`], [`retry::Backoff`] and
//!   [`retry::RetryBudget`], 6pan's token rotation [`sixpan::api::Session`] and storage
//!   upload [`sixpan::upload::UploadPlan`]) are handed `now` or answers and say what to
//!   do next, so tests drive them with synthetic time;
//! - it needs **no runtime**: nothing here is async except the [`HttpClient`] trait,
//!   which the provider crates are generic over.
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
mod transport;

pub mod call;
pub mod clock;
pub mod common;
pub mod driver;
pub mod pan123;
pub mod qetag;
pub mod ratelimit;
pub mod retry;
pub mod sixpan;
pub mod token;
pub mod torrent;
pub mod tracker;

pub use error::{
    ApiError, Code, DecodeError, DecodeErrorKind, EncodeError, ProviderError, ValidationError,
};
pub use secret::Secret;
pub use transport::{
    shared, BaseUrl, BaseUrlError, HttpClient, HttpRequest, HttpResponse, TransportError,
    TransportErrorKind,
};
