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

use super::{AccessTokenRequest, Endpoint, EndpointId, GrantType, OAuthTokenQuery};
use crate::call::{Auth, AuthStep, Ticket};
use crate::token::{TokenAction, TokenLifecycle, DEFAULT_MARGIN};
use crate::{ApiError, BaseUrl, EncodeError, HttpRequest, HttpResponse, Secret, ValidationError};

/// How long credentials refuse to fetch a token after a "too many tokens" answer when
/// they know of no token of theirs that will expire sooner: 60 s.
pub const TOO_MANY_TOKENS_PAUSE: Duration = Duration::from_secs(60);

/// How many token expiries the credentials remember (for "the oldest token expires at").
const REMEMBERED_EXPIRIES: usize = 8;

/// Called with each new refresh token (and the access token's expiry) the moment it
/// arrives, before the new access token is used: the refresh token is single use, so
/// the caller must persist it here (atomically) or lose the user's authorization.
pub type RefreshHook = std::sync::Arc<dyn Fn(&Secret, SystemTime) + Send + Sync>;

/// A third-party app's OAuth grant: the client ID, its secret when known (a refresh may
/// omit it: OpenList `drivers/123_open` does for third-party mount apps), and the
/// newest refresh token.
#[derive(Clone)]
struct OAuthGrant {
    client_id: String,
    client_secret: Option<Secret>,
    refresh_token: Secret,
    rotations: u64,
    hook: Option<RefreshHook>,
}

impl std::fmt::Debug for OAuthGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthGrant")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("refresh_token", &self.refresh_token)
            .field("rotations", &self.rotations)
            .finish_non_exhaustive()
    }
}

/// The authorization page of the 123pan open platform's third-party apps (the
/// developer guide's 授权地址; p123client's `login_oauth_authorize` reaches the same
/// grant through `GET /api/v1/oauth2/user/authorize`).
pub const AUTHORIZE_URL: &str = "https://www.123pan.com/auth";

/// The scopes a third-party app asks for by default (p123client's
/// `login_oauth_authorize` and `login_oauth_verify`).
pub const DEFAULT_SCOPE: &str = "user:base,file:all:read,file:all:write";

/// Where the authorize page of the API root `base_url` is: [`AUTHORIZE_URL`] for
/// production ([`DEFAULT_BASE_URL`](super::DEFAULT_BASE_URL)), else `/auth` under
/// `base_url` (the emulator's, or a stand-in that serves both).
pub fn authorize_page(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if base == super::DEFAULT_BASE_URL {
        AUTHORIZE_URL.to_owned()
    } else {
        format!("{base}/auth")
    }
}

/// The page a user opens to authorize a third-party app: `base` (normally
/// [`AUTHORIZE_URL`]) with the query `client_id`, `redirect_uri`, `scope` and `state`,
/// each percent-encoded. The page sends the browser to
/// `redirect_uri?code=CODE&state=STATE`; exchange the code with
/// [`oauth_code_request`] and hand the answer to [`Credentials::handle_oauth_answer`].
pub fn authorize_url(
    base: &str,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    state: &str,
) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", state)
        .finish();
    format!("{}?{query}", base.trim_end_matches('?'))
}

/// Why a redirect to `redirect_uri` does not carry a code for this authorization.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// The `state` is missing or not the one sent with the authorize URL: the
    /// redirect belongs to another authorization (or is forged); ignore it.
    #[error("the redirect's state is not this authorization's")]
    State,
    /// The user (or the page) refused: the redirect's `error` (and
    /// `error_description`, when given).
    #[error("the authorization was refused: {0}")]
    Denied(String),
    /// Neither a code nor an error.
    #[error("the redirect carries no code")]
    NoCode,
}

/// Reads the query of the redirect the authorize page sent the browser to
/// (`redirect_uri?code=CODE&state=STATE`): the code, when `state` is the one sent
/// with [`authorize_url`]. The state is checked first: a redirect of another
/// authorization says nothing about this one, not even a refusal.
///
/// # Errors
///
/// [`RedirectError`]: another state, a refusal (`error=...`), no code.
pub fn oauth_redirect_code(query: &str, state: &str) -> Result<String, RedirectError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("state") != Some(state) || state.is_empty() {
        return Err(RedirectError::State);
    }
    if let Some(error) = get("error") {
        let text = match get("error_description").filter(|d| !d.is_empty()) {
            Some(d) => format!("{error}: {d}"),
            None => error.to_owned(),
        };
        return Err(RedirectError::Denied(text));
    }
    get("code")
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .ok_or(RedirectError::NoCode)
}

/// `POST /api/v1/oauth2/access_token` with `query` (query only, no body; no
/// Authorization): the code exchange or a refresh. Decode the answer with
/// [`decode_oauth_token`](super::decode_oauth_token).
///
/// # Errors
///
/// [`EncodeError`] when the URI cannot be built.
pub fn oauth_token_request(
    query: &OAuthTokenQuery,
    base: &BaseUrl,
) -> Result<HttpRequest, EncodeError> {
    let mut pairs: Vec<(&str, &str)> = vec![("client_id", query.client_id.as_str())];
    if let Some(secret) = &query.client_secret {
        pairs.push(("client_secret", secret.expose()));
    }
    pairs.push(("grant_type", query.grant_type.as_str()));
    if let Some(code) = &query.code {
        pairs.push(("code", code.as_str()));
    }
    if let Some(token) = &query.refresh_token {
        pairs.push(("refresh_token", token.expose()));
    }
    if let Some(uri) = &query.redirect_uri {
        pairs.push(("redirect_uri", uri.as_str()));
    }
    let id = EndpointId::OAuthToken;
    http::Request::builder()
        .method(id.method())
        .uri(base.endpoint(id.path(), &pairs)?)
        .header(super::PLATFORM_HEADER, super::PLATFORM)
        .body(bytes::Bytes::new())
        .map_err(|e| EncodeError::Uri(e.to_string()))
}

/// The code exchange of the authorization-code flow: `grant_type=authorization_code`
/// with the `code` the authorization page sent to `redirect_uri`.
///
/// # Errors
///
/// As [`oauth_token_request`].
pub fn oauth_code_request(
    base: &BaseUrl,
    client_id: &str,
    client_secret: Option<&Secret>,
    code: &str,
    redirect_uri: &str,
) -> Result<HttpRequest, EncodeError> {
    oauth_token_request(
        &OAuthTokenQuery {
            client_id: client_id.to_owned(),
            client_secret: client_secret.cloned(),
            grant_type: GrantType::AuthorizationCode,
            code: Some(code.to_owned()),
            refresh_token: None,
            redirect_uri: Some(redirect_uri.to_owned()),
        },
        base,
    )
}

/// The credentials of a 123pan client and the state of its access token.
#[derive(Debug, Clone)]
pub struct Credentials {
    lifecycle: TokenLifecycle,
    app: Option<(String, Secret)>,
    oauth: Option<OAuthGrant>,
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
            oauth: None,
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
            oauth: None,
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

    /// OAuth credentials of a third-party app: `refresh_token` (single use) is
    /// exchanged for an access token when one is needed (`grant_type=refresh_token`,
    /// with `client_secret` only when given), and again a `margin` before that token
    /// expires or when a call is answered with code 401. Every refresh rotates the
    /// refresh token: read the newest with [`refresh_token`](Self::refresh_token) and
    /// persist it after each call, or have [`on_refresh`](Self::on_refresh) persist
    /// it before the new access token is used.
    pub fn oauth(
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
        refresh_token: impl Into<Secret>,
        margin: Duration,
    ) -> Self {
        Self {
            lifecycle: TokenLifecycle::fetching(margin),
            app: None,
            oauth: Some(OAuthGrant {
                client_id: client_id.into(),
                client_secret,
                refresh_token: refresh_token.into(),
                rotations: 0,
                hook: None,
            }),
            seq: 0,
            expiries: Vec::new(),
            refused: None,
        }
    }

    /// Calls `hook` with every new refresh token, inside the answer's handling and
    /// before the new access token can be used by any call (OAuth credentials only).
    #[must_use]
    pub fn on_refresh(mut self, hook: RefreshHook) -> Self {
        if let Some(grant) = &mut self.oauth {
            grant.hook = Some(hook);
        }
        self
    }

    /// The newest refresh token and how many times it has rotated (OAuth credentials
    /// only): persist it after each call; the one it replaced is refused.
    pub fn refresh_token(&self) -> Option<(Secret, u64)> {
        self.oauth
            .as_ref()
            .map(|g| (g.refresh_token.clone(), g.rotations))
    }

    /// Takes in the answer to a code exchange ([`oauth_code_request`]) or a refresh
    /// received at `now`: the access token (good for `expires_in` seconds) and the new
    /// refresh token, which the hook sees first.
    ///
    /// # Errors
    ///
    /// The provider's refusal (an unknown or used code: code 401) or an unreadable
    /// answer; nothing changes then.
    pub fn handle_oauth_answer(
        &mut self,
        response: &HttpResponse,
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let tokens = super::decode_oauth_token(response)?;
        let expires_at = now + Duration::from_secs(tokens.expires_in);
        if let Some(grant) = &mut self.oauth {
            if let Some(hook) = &grant.hook {
                hook(&tokens.refresh_token, expires_at);
            }
            grant.refresh_token = tokens.refresh_token;
            grant.rotations += 1;
        }
        self.lifecycle
            .handle_token(tokens.access_token, expires_at, now);
        self.remember(expires_at);
        Ok(())
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
            oauth: None,
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
        if self.oauth.is_some() {
            EndpointId::OAuthToken
        } else {
            EndpointId::AccessToken
        }
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
            TokenAction::Fetch if self.app.is_some() || self.oauth.is_some() => match &self.refused
            {
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
        if let Some(grant) = &self.oauth {
            let query = OAuthTokenQuery {
                client_id: grant.client_id.clone(),
                client_secret: grant.client_secret.clone(),
                grant_type: GrantType::RefreshToken,
                code: None,
                refresh_token: Some(grant.refresh_token.clone()),
                redirect_uri: None,
            };
            return oauth_token_request(&query, base);
        }
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
        if self.oauth.is_some() {
            return self.handle_oauth_answer(response, wall).map_err(|e| {
                self.lifecycle.handle_fetch_failed();
                self.too_many_tokens(e, wall)
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_gives_its_code_only_with_this_authorizations_state() {
        assert_eq!(oauth_redirect_code("code=c1&state=s1", "s1").unwrap(), "c1");
        assert_eq!(
            oauth_redirect_code("code=c1&state=other", "s1"),
            Err(RedirectError::State)
        );
        assert_eq!(
            oauth_redirect_code("code=c1", "s1"),
            Err(RedirectError::State)
        );
        assert_eq!(
            oauth_redirect_code("code=c1&state=", ""),
            Err(RedirectError::State)
        );
        assert_eq!(
            oauth_redirect_code("error=access_denied&error_description=no&state=s1", "s1"),
            Err(RedirectError::Denied("access_denied: no".to_owned()))
        );
        assert_eq!(
            oauth_redirect_code("error=access_denied&state=x", "s1"),
            Err(RedirectError::State)
        );
        assert_eq!(
            oauth_redirect_code("state=s1&code=", "s1"),
            Err(RedirectError::NoCode)
        );
    }

    #[test]
    fn the_authorize_page_is_production_s_or_under_another_base() {
        assert_eq!(
            authorize_page("https://open-api.123pan.com/"),
            AUTHORIZE_URL
        );
        assert_eq!(
            authorize_page("http://127.0.0.1:5/"),
            "http://127.0.0.1:5/auth"
        );
    }
}
