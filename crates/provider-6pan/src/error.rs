//! The error of every [`SixPan`](crate::SixPan) call.

use offline_proto::call::Unknown;
use offline_proto::sixpan::upload::UploadError;
use offline_proto::sixpan::EndpointId;
use offline_proto::{ApiError, EncodeError, TransportError};

/// Why a call failed. `Display` describes this level only; the cause is the
/// [`source`](std::error::Error::source) (print the chain to see each cause once).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client is misconfigured (no credentials, a bad base URL).
    #[error("configuration: {0}")]
    Config(String),
    /// The request was refused locally; nothing was sent.
    #[error(transparent)]
    Invalid(#[from] EncodeError),
    /// No complete answer arrived, and sending again is safe (a read, or a create that
    /// certainly did not leave this machine).
    #[error("no answer from the server")]
    Transport(#[source] TransportError),
    /// The provider answered with an error (its string code and message are kept).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// An `add` may have reached the server without an answer, and listing the tasks
    /// did not settle whether it created them. It was not sent again.
    #[error(
        "outcome unknown for {endpoint:?}: the tasks may exist; check `list` before adding again"
    )]
    OutcomeUnknown {
        /// The create endpoint.
        endpoint: EndpointId,
        /// What happened on the wire.
        #[source]
        source: Unknown,
    },
    /// No token is held and no account and password are configured to log in.
    #[error("not authenticated: the token was rejected or expired and no account/password is configured to log in again")]
    NotAuthenticated,
    /// Every login made for one call gave a token that was refused at once.
    #[error("{fetches} logins were made for one call and none gave a usable token")]
    TokenLoop {
        /// How many were made.
        fetches: u32,
    },
    /// The storage upload failed (an etag mismatch names both values).
    #[error("upload failed")]
    Upload(#[from] UploadError),
    /// A local file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The task list could not be read to its end (a server whose paging repeats or
    /// never ends).
    #[error("listing tasks failed")]
    Paging(#[from] offline_proto::sixpan::tasks::PagingError),
    /// A file selection matched nothing, or named a file that is not there.
    #[error("selection: {0}")]
    Selection(String),
}

offline_proto::provider_error_impls!(Error, EndpointId);
