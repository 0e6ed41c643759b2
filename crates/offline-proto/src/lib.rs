//! The sans-IO protocol core of the offline-download toolkit.
//!
//! This crate knows the wire formats and the flows of the cloud drives' offline
//! download APIs (the [123pan open platform](pan123); 6pan to come), and nothing else:
//!
//! - it performs **no I/O**: a request is plain data ([`HttpRequest`], an
//!   `http::Request<Bytes>`), a response is plain data ([`HttpResponse`]); any
//!   transport can carry them (`transport-hyper` is the default; see
//!   `examples/blocking_transport.rs` for one that is not);
//! - it reads **no clock**: the state machines ([`token::TokenLifecycle`],
//!   [`tracker::Tracker`], [`ratelimit::RateLimiter`]) are handed `now` and answer what
//!   to do next, so tests drive them with synthetic time;
//! - it needs **no runtime**: nothing here is async except the [`HttpClient`] trait,
//!   which the provider crates are generic over.
//!
//! Validation that needs no server (URL schemes, image extensions, file names, the
//! root directory) happens when a request is encoded, so an invalid request never
//! exists. Decoders return [`ApiError`], which keeps the provider's code, message and
//! trace ID, or a [`DecodeError`] with the HTTP status, the JSON path that failed and
//! the raw body.

mod error;
mod secret;
mod transport;

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
    BaseUrl, BaseUrlError, HttpClient, HttpRequest, HttpResponse, TransportError,
    TransportErrorKind,
};
