//! 6pan's credential rules for the [call machine](crate::call): a login token
//! (`Qingzhen-Token`) that every answer may replace (the newest by send order is kept,
//! [`Session`]), obtained by logging in with the account and the password's MD5, and
//! renewed by one login, shared by every call, when the service rejects it (a login
//! elsewhere invalidates it).

use std::time::SystemTime;

use super::api::{rotated_token, Endpoint, Session};
use super::{EndpointId, LoginRequest};
use crate::call::{Auth, AuthStep, Ticket};
use crate::{ApiError, BaseUrl, Code, EncodeError, HttpRequest, HttpResponse, ProviderError};
use crate::{Secret, ValidationError};

/// The credentials of a 6pan client and the state of its login token.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    session: Session,
    login: Option<LoginRequest>,
    fetching: Option<u64>,
    logins: u64,
}

impl Credentials {
    /// Credentials that log in with `account` (phone number or e-mail) and
    /// `password` (sent as its MD5), now and whenever the token is rejected.
    pub fn login(account: impl Into<String>, password: &str) -> Self {
        Self {
            login: Some(LoginRequest::with_password(account, password)),
            ..Self::default()
        }
    }

    /// Starts from a token (a saved one); with an account as well, a rejected token is
    /// replaced by logging in.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<Secret>) -> Self {
        self.session = Session::with_token(token.into());
        self
    }

    /// The token held now (for saving between runs; treat it as a password).
    pub fn token(&self) -> Option<&Secret> {
        self.session.token()
    }

    /// How many logins these credentials have made.
    pub fn logins(&self) -> u64 {
        self.logins
    }

    /// How many times an answer replaced the token.
    pub fn rotations(&self) -> u64 {
        self.session.rotations()
    }

    /// Whether an account and password are known (a rejected token can be replaced).
    pub fn can_login(&self) -> bool {
        self.login.is_some()
    }

    /// Drops the token, so that the next call logs in (an explicit login).
    pub fn force_login(&mut self) {
        let current = self.session.token().cloned();
        self.session.handle_rejected(current.as_ref());
    }
}

impl EndpointId {
    /// The largest answer the call can legitimately send, in bytes. A parse answer
    /// lists every file of a torrent (a few hundred bytes each, with paths that can be
    /// long), so `parseUrl` and `parseTorrent` may answer up to 256 MiB — a torrent of
    /// several hundred thousand files; a page of the task list up to 32 MiB; the rest
    /// up to [`crate::call::DEFAULT_RESPONSE_LIMIT`] (8 MiB).
    pub fn response_limit(self) -> usize {
        match self {
            Self::ParseUrl | Self::ParseTorrent => 256 * 1024 * 1024,
            Self::ListTasks => 32 * 1024 * 1024,
            _ => crate::call::DEFAULT_RESPONSE_LIMIT,
        }
    }
}

impl Auth for Credentials {
    type Id = EndpointId;

    fn fetch_endpoint(&self) -> EndpointId {
        EndpointId::Login
    }

    fn poll(&mut self, _wall: SystemTime) -> AuthStep {
        if self.fetching.is_some() {
            return AuthStep::Wait;
        }
        if self.session.token().is_some() {
            let (seq, token) = self.session.begin();
            return AuthStep::Use(Ticket { seq, token });
        }
        if self.login.is_none() {
            return AuthStep::Unavailable;
        }
        self.fetching = Some(self.session.begin().0);
        AuthStep::Fetch
    }

    fn fetch_request(&self, base: &BaseUrl) -> Result<HttpRequest, EncodeError> {
        match &self.login {
            Some(login) => Endpoint::to_http(login, base, None),
            None => Err(ValidationError::Empty("value").into()),
        }
    }

    fn handle_fetched(
        &mut self,
        response: &HttpResponse,
        _wall: SystemTime,
    ) -> Result<(), ApiError> {
        let seq = self.fetching.take().unwrap_or_default();
        <LoginRequest as Endpoint>::decode(response)?;
        let token = rotated_token(response).ok_or_else(|| {
            ApiError::Provider(ProviderError {
                code: Code::Text("NO_TOKEN".to_owned()),
                message: "login answered without a token".to_owned(),
                trace_id: None,
                status: response.status(),
            })
        })?;
        self.session.handle_token(seq, token);
        self.logins += 1;
        Ok(())
    }

    fn handle_fetch_failed(&mut self) {
        self.fetching = None;
    }

    fn handle_answer(&mut self, endpoint: EndpointId, ticket: &Ticket, response: &HttpResponse) {
        if endpoint != EndpointId::Login && ticket.seq > 0 {
            self.session.handle_response(ticket.seq, response);
        }
    }

    fn handle_rejected(&mut self, ticket: &Ticket) -> bool {
        let newer = self.session.handle_rejected(ticket.token.as_ref());
        newer || self.login.is_some()
    }
}

crate::call::provider_requests!(Endpoint, Credentials, EndpointId, unauthenticated: [EndpointId::Login]);
