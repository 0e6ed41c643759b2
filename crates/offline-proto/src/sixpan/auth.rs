//! 6pan's credential rules for the [call machine](crate::call): a login token
//! (`Qingzhen-Token`) that every answer may replace (the newest by send order is kept,
//! [`Session`]), obtained by logging in with the account and the password's MD5, and
//! renewed by one login, shared by every call, when the service rejects it (a login
//! elsewhere invalidates it).

use std::time::SystemTime;

use super::api::{rotated_token, Endpoint, Session};
use super::{EndpointId, ErrorCode, LoginRequest};
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
    /// The token a `LOGIN_USER_TOO_MUCH` refusal carried, kept aside (never used by
    /// itself) until [`Credentials::use_crowded_token`].
    crowded: Option<Secret>,
}

/// Whether `error` is 6pan's `LOGIN_USER_TOO_MUCH`: the login was refused because too
/// many sessions are logged in. Only the user may resolve it, by logging the other
/// sessions out ([`Credentials::use_crowded_token`], then `userOnline` and
/// `logoutOther`).
pub fn is_too_many_sessions(error: &ApiError) -> bool {
    matches!(error, ApiError::Provider(p)
        if p.code == Code::Text(ErrorCode::LoginUserTooMuch.as_str().to_owned()))
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

    /// Whether the last refused login (`LOGIN_USER_TOO_MUCH`) carried a token.
    pub fn has_crowded_token(&self) -> bool {
        self.crowded.is_some()
    }

    /// Makes the token of the last `LOGIN_USER_TOO_MUCH` refusal the current one, so
    /// that the next calls (`userOnline`, `logoutOther`) send it; `false` when no
    /// refusal carried one. Call it only when the user asked to log the other sessions
    /// out: it is never used otherwise.
    pub fn use_crowded_token(&mut self) -> bool {
        let Some(token) = self.crowded.take() else {
            return false;
        };
        let (seq, _) = self.session.begin();
        self.session.handle_token(seq, token);
        true
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
        if let Err(error) = <LoginRequest as Endpoint>::decode(response) {
            // The refusal of a crowded account still carries a token, kept aside for
            // the user's "log the others out" (the Android client's flow).
            self.crowded = if is_too_many_sessions(&error) {
                rotated_token(response)
            } else {
                None
            };
            return Err(error);
        }
        self.crowded = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sixpan::LogoutOtherRequest;
    use crate::sixpan::{OnlineSession, OnlineSessions};

    fn answer(token: Option<&str>, body: &str) -> HttpResponse {
        let mut b = http::Response::builder().status(400);
        if let Some(token) = token {
            b = b.header("qingzhen-token", token);
        }
        b.body(bytes::Bytes::from(body.to_owned())).unwrap()
    }

    // Issue 12 #10b: the token of a LOGIN_USER_TOO_MUCH refusal is kept aside, used
    // only when asked; another refusal forgets it.
    #[test]
    fn a_crowded_login_keeps_its_token_aside_until_asked() {
        let mut c = Credentials::login("a@b.c", "pw");
        assert!(matches!(c.poll(SystemTime::UNIX_EPOCH), AuthStep::Fetch));
        let crowded = answer(
            Some("crowded"),
            r#"{"status":0,"result":null,"code":"LOGIN_USER_TOO_MUCH","success":false}"#,
        );
        let error = c
            .handle_fetched(&crowded, SystemTime::UNIX_EPOCH)
            .unwrap_err();
        assert!(is_too_many_sessions(&error));
        assert!(c.token().is_none(), "never used by itself");
        assert!(c.has_crowded_token());
        assert!(c.use_crowded_token());
        assert_eq!(c.token(), Some(&Secret::new("crowded")));
        assert!(!c.use_crowded_token(), "used once");

        let wrong = answer(
            Some("x"),
            r#"{"status":0,"result":null,"code":"PASSWORD_ERROR","success":false}"#,
        );
        c.force_login();
        assert!(matches!(c.poll(SystemTime::UNIX_EPOCH), AuthStep::Fetch));
        assert!(!is_too_many_sessions(
            &c.handle_fetched(&wrong, SystemTime::UNIX_EPOCH)
                .unwrap_err()
        ));
        assert!(!c.has_crowded_token());
    }

    #[test]
    fn logging_others_out_never_names_this_session() {
        let session = |ssid: &str| OnlineSession {
            device: None,
            ignore_case: None,
            refresh_time: None,
            ssid: ssid.into(),
            status: None,
        };
        let sessions = OnlineSessions {
            this: Some(session("me")),
            online: vec![session("a"), session("me"), session(""), session("b")],
        };
        assert_eq!(LogoutOtherRequest::others(&sessions).ssid, ["a", "b"]);
    }
}
