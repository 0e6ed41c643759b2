//! 123pan's credential rules for the [call machine](crate::call): an access token
//! fetched with the client ID and secret (`POST /api/v1/access_token`), used until its
//! `expiredAt` minus a margin, refreshed once when a call is answered with code 401.

use std::time::{Duration, SystemTime};

use super::{AccessTokenRequest, Endpoint, EndpointId};
use crate::call::{Auth, AuthStep, Ticket};
use crate::token::{TokenAction, TokenLifecycle, DEFAULT_MARGIN};
use crate::{ApiError, BaseUrl, EncodeError, HttpRequest, HttpResponse, Secret, ValidationError};

/// The credentials of a 123pan client and the state of its access token.
#[derive(Debug, Clone)]
pub struct Credentials {
    lifecycle: TokenLifecycle,
    app: Option<(String, Secret)>,
    seq: u64,
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
        }
    }

    /// A fixed access token that cannot be refreshed: used until `expires_at` (when
    /// known) or until the server rejects it.
    pub fn token(token: impl Into<Secret>, expires_at: Option<SystemTime>) -> Self {
        Self {
            lifecycle: TokenLifecycle::fixed(token.into(), expires_at),
            app: None,
            seq: 0,
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
        self
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
            TokenAction::Fetch if self.app.is_some() => AuthStep::Fetch,
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
                self.lifecycle
                    .handle_token(data.access_token, data.expired_at.into(), wall);
                Ok(())
            }
            Err(e) => {
                self.lifecycle.handle_fetch_failed();
                Err(e)
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
