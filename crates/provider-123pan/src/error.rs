//! The error of every [`Pan123`](crate::Pan123) call.

use offline_proto::call::Unknown;
use offline_proto::pan123::{EndpointId, PageError};
use offline_proto::{ApiError, EncodeError, TransportError};

/// Why a call failed. `Display` describes this level only; the cause is the
/// [`source`](std::error::Error::source) (print the chain, e.g. `{:#}` with anyhow, to
/// see each cause once).
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
    /// The provider answered with an error (its code, message and trace ID are kept).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A create may have reached the server, but what it did is unknown: a task may
    /// or may not exist. It was not sent again. Check the drive's offline-download
    /// list (or wait for the callback) before submitting the URL again.
    #[error("outcome unknown for {endpoint:?}: the task may exist; check the drive's offline download list before submitting again")]
    OutcomeUnknown {
        /// The create endpoint.
        endpoint: EndpointId,
        /// What happened on the wire.
        #[source]
        source: Unknown,
    },
    /// There is no usable access token and none can be fetched: the fixed token given
    /// to the builder expired or was rejected, and no client ID and secret are known.
    #[error("not authenticated: the access token was rejected or expired and no client ID/secret is configured to fetch a new one")]
    NotAuthenticated,
    /// A folder of a path does not exist ([`Pan123::resolve_dir`](crate::Pan123::resolve_dir)
    /// without `create`).
    #[error("no folder {missing} in the drive (resolving {path})")]
    NoSuchFolder {
        /// The whole path asked for.
        path: String,
        /// The first folder of it that is missing.
        missing: String,
    },
    /// The file list would page forever (a repeated cursor, too many pages).
    #[error(transparent)]
    Paging(PageError),
    /// Every access token fetched for one call was unusable at once.
    #[error("{fetches} access tokens were fetched for one call and none could be used")]
    TokenLoop {
        /// How many were fetched.
        fetches: u32,
    },
}

offline_proto::provider_error_impls!(Error, EndpointId);
