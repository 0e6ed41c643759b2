//! The error of every [`SixPan`](crate::SixPan) call.

use offline_proto::sixpan::upload::UploadError;
use offline_proto::sixpan::EndpointId;
use offline_proto::{ApiError, EncodeError, ProviderError, TransportError};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client is misconfigured (no credentials, a bad base URL).
    #[error("configuration: {0}")]
    Config(String),
    /// The request was refused locally; nothing was sent.
    #[error(transparent)]
    Invalid(#[from] EncodeError),
    /// No complete answer arrived, and sending again is safe.
    #[error("transport: {0}")]
    Transport(#[source] TransportError),
    /// The provider answered with an error (its string code and message are kept).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// An `add` may have reached the server without an answer, and listing the tasks
    /// did not settle whether it created them. It was not sent again.
    #[error("outcome unknown for {endpoint:?}: {source}; the tasks may exist: check `list` before adding again")]
    OutcomeUnknown {
        /// The create endpoint.
        endpoint: EndpointId,
        /// What happened on the wire.
        #[source]
        source: TransportError,
    },
    /// No token is held and no account and password are configured to log in.
    #[error(
        "not logged in: the token was rejected or expired and no account/password is configured"
    )]
    NotLoggedIn,
    /// The storage upload failed (an etag mismatch names both values).
    #[error("upload: {0}")]
    Upload(#[from] UploadError),
    /// A local file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file selection matched nothing, or named a file that is not there.
    #[error("selection: {0}")]
    Selection(String),
}

impl Error {
    /// The provider's answer, if the error is one.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Api(e) => e.provider_error(),
            _ => None,
        }
    }
}
