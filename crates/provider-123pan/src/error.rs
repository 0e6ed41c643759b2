//! The error of every [`Pan123`](crate::Pan123) call.

use offline_proto::pan123::EndpointId;
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
    /// No complete answer arrived, and sending again is safe (a read, or a create that
    /// certainly did not leave this machine).
    #[error("transport: {0}")]
    Transport(#[source] TransportError),
    /// The provider answered with an error (its code, message and trace ID are kept).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A create call may have reached the server, but no answer came back: a task may
    /// or may not exist. It was not sent again. Check the drive's offline-download list
    /// (or wait for the callback) before submitting the URL again.
    #[error("outcome unknown for {endpoint:?} of {url}: {source}; the task may exist: check the drive's offline download list before submitting again")]
    OutcomeUnknown {
        /// The create endpoint.
        endpoint: EndpointId,
        /// The source URL of the create call.
        url: String,
        /// What happened on the wire.
        #[source]
        source: TransportError,
    },
    /// There is no usable access token and none can be fetched: the fixed token given
    /// to the builder expired or was rejected, and no client ID and secret are known.
    #[error("the access token was rejected or expired and no client ID/secret is configured to fetch a new one")]
    TokenUnavailable,
}

impl Error {
    /// The provider's answer, if the error is one: code, message, trace ID.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Api(e) => e.provider_error(),
            _ => None,
        }
    }
}
