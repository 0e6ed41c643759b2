//! The error of every [`SixPan`](crate::SixPan) call.

use offline_proto::call::{CallError, Unknown};
use offline_proto::sixpan::upload::UploadError;
use offline_proto::sixpan::EndpointId;
use offline_proto::{ApiError, EncodeError, ProviderError, TransportError};

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

impl Error {
    /// The provider's answer, if the error is one.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Api(e) => e.provider_error(),
            _ => None,
        }
    }

    /// For a watch whose list call failed: `Some(wait)` to ask again later, `None`
    /// when the failure is final ([`offline_proto::retry::ask_again_later`]).
    pub fn ask_again_later(&self) -> Option<Option<std::time::Duration>> {
        match self {
            Self::Transport(_) => Some(None),
            Self::Api(e) => offline_proto::retry::ask_again_later(e),
            _ => None,
        }
    }

    /// The error a call machine's [`CallError`] at `endpoint` is.
    pub(crate) fn from_call(e: CallError, endpoint: EndpointId) -> Self {
        match e {
            CallError::Invalid(e) => Self::Invalid(e),
            CallError::Transport(e) => Self::Transport(e),
            CallError::Api(e) => Self::Api(e),
            CallError::OutcomeUnknown(source) => Self::OutcomeUnknown { endpoint, source },
            CallError::TokenLoop { fetches } => Self::TokenLoop { fetches },
            _ => Self::NotAuthenticated,
        }
    }
}
