//! 123pan's credential rules for the [call machine](crate::call): an access token
//! fetched with the client ID and secret (`POST /api/v1/access_token`), used until its
//! `expiredAt` minus a margin, refreshed once when a call is answered with code 401.
//!
//! "Too many tokens" (code 401 with [`TOO_MANY_TOKENS_MESSAGE`](super::TOO_MANY_TOKENS_MESSAGE))
//! is never answered with another token request: the fetch that met it ends its call
//! with [`ApiError::TooManyTokens`], and the credentials refuse to fetch again, without
//! sending anything, until the oldest token they know of expires (or for
//! [`TOO_MANY_TOKENS_PAUSE`] when they know none).

use std::time::{Duration, SystemTime};

use super::{AccessTokenRequest, Endpoint, EndpointId};
use crate::call::{Auth, AuthStep, Ticket};
use crate::token::{TokenAction, TokenLifecycle, DEFAULT_MARGIN};
use crate::{ApiError, BaseUrl, EncodeError, HttpRequest, HttpResponse, Secret, ValidationError};

/// How long credentials refuse to fetch a token after a "too many tokens" answer when
/// they know of no token of theirs that will expire sooner: 60 s.
pub const TOO_MANY_TOKENS_PAUSE: Duration = Duration::from_secs(60);

/// How many token expiries the credentials remember (for "the oldest token expires at").
const REMEMBERED_EXPIRIES: usize = 8;

/// The credentials of a 123pan client and the state of its access token.
#[derive(Debug, Clone)]
pub struct Credentials {
    lifecycle: TokenLifecycle,
    app: Option<(String, Secret)>,
    seq: u64,
    /// Expiries of the tokens these credentials were issued or given, oldest first.
    expiries: Vec<SystemTime>,
    /// A "too many tokens" answer, and until when no token is fetched because of it.
    refused: Option<(ApiError, SystemTime)>,
}

impl Credentials {
    /// Credentials that fetch tokens with the application's client ID and secret,
    /// replacing a token `margin` before its expiry ([`DEFAULT_MARGIN`]: 5 minutes).
    pub fn client(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        margin: Duration,
    ) -> Self {
        Self {
            lifecycle: TokenLifecycle::fetching(margin),
            app: Some((client_id.into(), client_secret.into())),
            seq: 0,
            expiries: Vec::new(),
            refused: None,
        }
    }

    /// A fixed access token that cannot be refreshed: used until `expires_at` (when
    /// known) or until the server rejects it.
    pub fn token(token: impl Into<Secret>, expires_at: Option<SystemTime>) -> Self {
        Self {
            lifecycle: TokenLifecycle::fixed(token.into(), expires_at),
            app: None,
            seq: 0,
            expiries: expires_at.into_iter().collect(),
            refused: None,
        }
    }

    /// Starts client credentials from a token known to be good until `expires_at` (a
    /// cached one), as if it had just been fetched at `now`.
    #[must_use]
    pub fn with_cached_token(
        mut self,
        token: impl Into<Secret>,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Self {
        self.lifecycle.handle_token(token.into(), expires_at, now);
        self.remember(expires_at);
        self
    }

    /// When the oldest token these credentials were issued or given expires, among
    /// those still alive at `now` (wall clock): the earliest time one of the client's
    /// live tokens is known to free its slot.
    pub fn oldest_token_expiry(&self, now: SystemTime) -> Option<SystemTime> {
        self.expiries.iter().copied().filter(|t| *t > now).min()
    }

    fn remember(&mut self, expires_at: SystemTime) {
        if self.expiries.len() >= REMEMBERED_EXPIRIES {
            self.expiries.remove(0);
        }
        self.expiries.push(expires_at);
    }

    /// A token fetch was answered "too many tokens" at `wall`: the error, with the
    /// oldest known expiry filled in; no fetch until then.
    fn too_many_tokens(&mut self, error: ApiError, wall: SystemTime) -> ApiError {
        let ApiError::TooManyTokens { error, .. } = error else {
            return error;
        };
        let oldest = self.oldest_token_expiry(wall);
        let error = ApiError::TooManyTokens {
            error,
            oldest_expires_at: oldest,
        };
        let until = oldest.unwrap_or_else(|| wall + TOO_MANY_TOKENS_PAUSE);
        self.refused = Some((error.clone(), until));
        error
    }

    /// The token lifecycle (its expiry, how many fetches it asked for).
    pub fn lifecycle(&self) -> &TokenLifecycle {
        &self.lifecycle
    }

    /// The token held now and its expiry, if one is held (for saving it between runs;
    /// treat it as a password).
    pub fn current(&self) -> Option<(Secret, Option<SystemTime>)> {
        self.lifecycle.current()
    }
}

impl Default for Credentials {
    /// No credentials: every call ends in `CallError::NotAuthenticated`.
    fn default() -> Self {
        Self {
            lifecycle: TokenLifecycle::fetching(DEFAULT_MARGIN),
            app: None,
            seq: 0,
            expiries: Vec::new(),
            refused: None,
        }
    }
}

impl EndpointId {
    /// The largest answer the call can legitimately send, in bytes: every 123pan
    /// answer here is small, [`crate::call::DEFAULT_RESPONSE_LIMIT`] (8 MiB).
    pub fn response_limit(self) -> usize {
        crate::call::DEFAULT_RESPONSE_LIMIT
    }
}

impl Auth for Credentials {
    type Id = EndpointId;

    fn fetch_endpoint(&self) -> EndpointId {
        EndpointId::AccessToken
    }

    fn poll(&mut self, wall: SystemTime) -> AuthStep {
        match self.lifecycle.poll(wall) {
            TokenAction::Use(token) => {
                self.seq += 1;
                AuthStep::Use(Ticket {
                    seq: self.seq,
                    token: Some(token),
                })
            }
            TokenAction::Fetch if self.app.is_some() => match &self.refused {
                Some((error, until)) if wall < *until => {
                    self.lifecycle.handle_fetch_failed();
                    AuthStep::Refused(error.clone())
                }
                _ => {
                    self.refused = None;
                    AuthStep::Fetch
                }
            },
            TokenAction::Fetch => {
                self.lifecycle.handle_fetch_failed();
                AuthStep::Unavailable
            }
            TokenAction::Wait => AuthStep::Wait,
            TokenAction::Unavailable => AuthStep::Unavailable,
        }
    }

    fn fetch_request(&self, base: &BaseUrl) -> Result<HttpRequest, EncodeError> {
        let Some((id, secret)) = &self.app else {
            return Err(ValidationError::Empty("clientID").into());
        };
        let request = AccessTokenRequest {
            client_id: id.clone(),
            client_secret: secret.clone(),
        };
        Endpoint::to_http(&request, base, None)
    }

    fn handle_fetched(
        &mut self,
        response: &HttpResponse,
        wall: SystemTime,
    ) -> Result<(), ApiError> {
        match <AccessTokenRequest as Endpoint>::decode(response) {
            Ok(data) => {
                let expires_at = data.expired_at.into();
                self.lifecycle
                    .handle_token(data.access_token, expires_at, wall);
                self.remember(expires_at);
                Ok(())
            }
            Err(e) => {
                self.lifecycle.handle_fetch_failed();
                Err(self.too_many_tokens(e, wall))
            }
        }
    }

    fn handle_fetch_failed(&mut self) {
        self.lifecycle.handle_fetch_failed();
    }

    fn handle_answer(&mut self, _: EndpointId, _: &Ticket, _: &HttpResponse) {}

    fn handle_rejected(&mut self, ticket: &Ticket) -> bool {
        match &ticket.token {
            Some(token) => self.lifecycle.handle_rejected(token),
            None => false,
        }
    }
}

crate::call::provider_requests!(Endpoint, Credentials, EndpointId, unauthenticated: [EndpointId::AccessToken, EndpointId::OAuthToken]);
