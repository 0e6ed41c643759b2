//! The client value and its calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use offline_proto::call::{ClientState, Request};
use offline_proto::clock::Clock;
use offline_proto::pan123::{
    Credentials, EndpointId, OfflineDownloadRequest, OfflineProcessRequest,
    OssOfflineDownloadRequest, OssProcessRequest, Process, TaskId,
};
use offline_proto::token::DEFAULT_MARGIN;
use offline_proto::tracker::PollPolicy;
use offline_proto::{BaseUrl, HttpClient, Secret, TransportError};
use transport_hyper::{HyperClient, TokioClock};

use crate::Error;

/// A 123pan open platform client. Cheap to clone; clones share the token, the rate
/// limiter and the transport. See the [crate docs](crate).
pub struct Pan123<C: HttpClient = HyperClient> {
    inner: Arc<Inner<C>>,
}

impl<C: HttpClient> Clone for Pan123<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: HttpClient> std::fmt::Debug for Pan123<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pan123")
            .field("base_url", &self.inner.base.as_str())
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"***")
            .finish_non_exhaustive()
    }
}

struct Inner<C> {
    http: C,
    base: BaseUrl,
    client_id: Option<String>,
    state: Mutex<ClientState<Credentials>>,
    clock: TokioClock,
    poll_policy: PollPolicy,
    /// Folder paths resolved so far ([`Pan123::resolve_dir`]).
    dirs: tokio::sync::Mutex<crate::files::DirCache>,
}

/// Builds a [`Pan123`]: credentials (client ID and secret, or a ready access token),
/// base URL, transport, rate limits, polling policy.
pub struct Pan123Builder<C> {
    /// The transport, or why the default one could not be made.
    http: Result<C, TransportError>,
    base_url: String,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    access_token: Option<(Secret, Option<SystemTime>)>,
    oauth: Option<(Secret, Option<offline_proto::pan123::RefreshHook>)>,
    rate_limits: BTreeMap<EndpointId, f64>,
    token_margin: Duration,
    poll_policy: PollPolicy,
    insecure_http: bool,
    call_deadline: Option<Duration>,
    command_deadline: Option<std::time::Instant>,
}

impl<C> std::fmt::Debug for Pan123Builder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pan123Builder")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("access_token", &self.access_token.as_ref().map(|(t, _)| t))
            .field("insecure_http", &self.insecure_http)
            .finish_non_exhaustive()
    }
}

impl Pan123<HyperClient> {
    /// A builder using the default transport ([`HyperClient`]) and the production base
    /// URL.
    pub fn builder() -> Pan123Builder<HyperClient> {
        Pan123Builder {
            http: HyperClient::new(),
            base_url: offline_proto::pan123::DEFAULT_BASE_URL.to_owned(),
            client_id: None,
            client_secret: None,
            access_token: None,
            oauth: None,
            rate_limits: EndpointId::ALL
                .into_iter()
                .map(|e| (e, e.default_rate_per_second()))
                .collect(),
            token_margin: DEFAULT_MARGIN,
            poll_policy: PollPolicy::default(),
            insecure_http: false,
            call_deadline: Some(offline_proto::call::DEFAULT_CALL_DEADLINE),
            command_deadline: None,
        }
    }
}

impl<C> Pan123Builder<C> {
    /// Uses another transport (any [`HttpClient`]).
    pub fn http_client<C2: HttpClient>(self, http: C2) -> Pan123Builder<C2> {
        Pan123Builder {
            http: Ok(http),
            base_url: self.base_url,
            client_id: self.client_id,
            client_secret: self.client_secret,
            access_token: self.access_token,
            oauth: self.oauth,
            rate_limits: self.rate_limits,
            token_margin: self.token_margin,
            poll_policy: self.poll_policy,
            insecure_http: self.insecure_http,
            call_deadline: self.call_deadline,
            command_deadline: self.command_deadline,
        }
    }

    /// The application's client ID.
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The application's client secret.
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// A ready access token, used until it expires or is rejected. With a client ID and
    /// secret as well, a new token is fetched after that; without, calls then fail with
    /// [`Error::NotAuthenticated`].
    #[must_use]
    pub fn access_token(
        mut self,
        token: impl Into<Secret>,
        expires_at: Option<SystemTime>,
    ) -> Self {
        self.access_token = Some((token.into(), expires_at));
        self
    }

    /// OAuth credentials of a third-party app: the user's `refresh_token` (from the
    /// code exchange, [`offline_proto::pan123::oauth_code_request`]) with the
    /// [`client_id`](Self::client_id) and, when known, the
    /// [`client_secret`](Self::client_secret) (a refresh may omit it). The refresh
    /// token is single use and rotates with every refresh: `on_refresh` is called with
    /// each new one before the new access token is used — persist it there
    /// (atomically), or read [`Pan123::refresh_token`] after each call. Takes
    /// precedence over the client-credentials flow.
    #[must_use]
    pub fn oauth_refresh_token(
        mut self,
        refresh_token: impl Into<Secret>,
        on_refresh: Option<offline_proto::pan123::RefreshHook>,
    ) -> Self {
        self.oauth = Some((refresh_token.into(), on_refresh));
        self
    }

    /// The API root, `https://open-api.123pan.com` by default.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    offline_proto::setters! {
        /// Allows a plain-http base URL on a host other than loopback (credentials then
        /// travel unencrypted). Loopback URLs are always allowed.
        insecure_http: bool;
        /// How long before `expiredAt` a token is replaced. Default 5 minutes.
        token_margin: Duration;
        /// How often [`Pan123::wait`] asks about a running task.
        poll_policy: PollPolicy;
        /// How long one call keeps trying, retries included, from its start; `None`:
        /// as long as its attempts and the retry budget allow. Default
        /// [`DEFAULT_CALL_DEADLINE`](offline_proto::call::DEFAULT_CALL_DEADLINE), 120 s.
        call_deadline: Option<Duration>;
        /// An instant (monotonic: [`std::time::Instant`], as tokio's clock reads it)
        /// past which no call keeps trying: a whole command's deadline, however many
        /// calls it makes. A call then gives up at the earlier of its own deadline and
        /// this one, a request still unanswered then is cut (a create: outcome
        /// unknown), and a call that would start or send later ends at once without
        /// sending, with [`Error::Transport`] (a timeout for which
        /// [`offline_proto::call::past_command_deadline`] holds). `None` (the default):
        /// none. See [`ClientState::set_command_deadline`](offline_proto::call::ClientState::set_command_deadline).
        command_deadline: Option<std::time::Instant>;
    }

    /// The rate limit of `endpoint` in requests per second (the client paces itself at
    /// [`PACE`](offline_proto::retry::PACE), 99 %, of it); 0 removes it. Defaults:
    /// [`EndpointId::default_rate_per_second`].
    #[must_use]
    pub fn rate_limit(mut self, endpoint: EndpointId, per_second: f64) -> Self {
        self.rate_limits.insert(endpoint, per_second);
        self
    }
}

impl<C: HttpClient> Pan123Builder<C> {
    /// Builds the client. Nothing is sent until the first call.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when neither credentials nor a token are given, the base URL
    /// does not parse, or it is plain http on a non-loopback host without
    /// [`insecure_http`](Self::insecure_http); [`Error::Transport`] if the default
    /// transport ([`HyperClient`]) could not be made.
    pub fn build(self) -> Result<Pan123<C>, Error> {
        let http = self.http.map_err(Error::Transport)?;
        let base = BaseUrl::parse_for_credentials(&self.base_url, self.insecure_http)
            .map_err(|e| Error::Config(e.to_string()))?;
        let clock = TokioClock::new();
        let oauth = match (self.oauth, self.client_id.clone()) {
            (Some((refresh, hook)), Some(id)) => {
                let mut c =
                    Credentials::oauth(id, self.client_secret.clone(), refresh, self.token_margin);
                if let Some(hook) = hook {
                    c = c.on_refresh(hook);
                }
                if let Some((token, exp)) = self.access_token.clone() {
                    c = c.with_cached_token(
                        token,
                        exp.unwrap_or(clock.wall() + Duration::from_secs(3600)),
                        clock.wall(),
                    );
                }
                Some(c)
            }
            (Some(_), None) => {
                return Err(Error::Config(
                    "an OAuth refresh token needs the app's client ID".to_owned(),
                ))
            }
            (None, _) => None,
        };
        let credentials = match (
            self.access_token,
            self.client_id.clone(),
            self.client_secret,
        ) {
            _ if oauth.is_some() => oauth.unwrap_or_default(),
            (Some((token, exp)), None, _) | (Some((token, exp)), _, None) => {
                Credentials::token(token, exp)
            }
            (token, Some(id), Some(secret)) => {
                let credentials = Credentials::client(id, secret, self.token_margin);
                match token {
                    Some((token, exp)) => credentials.with_cached_token(
                        token,
                        exp.unwrap_or(clock.wall() + Duration::from_secs(3600)),
                        clock.wall(),
                    ),
                    None => credentials,
                }
            }
            (None, _, _) => {
                return Err(Error::Config(
                    "either a client ID and secret or an access token is needed".to_owned(),
                ))
            }
        };
        let mut state = ClientState::new(base.clone(), credentials, self.rate_limits, clock_seed());
        state.set_call_deadline(self.call_deadline);
        state.set_command_deadline(self.command_deadline);
        Ok(Pan123 {
            inner: Arc::new(Inner {
                http,
                base,
                client_id: self.client_id,
                state: Mutex::new(state),
                clock,
                poll_policy: self.poll_policy,
                dirs: tokio::sync::Mutex::default(),
            }),
        })
    }
}

impl<C: HttpClient> Pan123<C> {
    /// The API root this client talks to.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base
    }

    /// Sets (or with `None` clears) the command deadline of this client's calls from
    /// now on: the instant past which no call keeps trying (see the builder's
    /// [`Pan123Builder::command_deadline`]). A call already under way keeps the
    /// deadline it started with.
    pub fn set_command_deadline(&self, deadline: Option<std::time::Instant>) {
        self.state().set_command_deadline(deadline);
    }

    /// The command deadline of this client's calls, if any.
    pub fn command_deadline(&self) -> Option<std::time::Instant> {
        self.state().command_deadline()
    }

    pub(crate) fn poll_policy(&self) -> PollPolicy {
        self.inner.poll_policy
    }

    /// Asks the service to download `request.url` into the cloud drive
    /// (`POST /api/v1/offline/download`). A bare URL converts into a request with no
    /// options.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a non-http(s) URL, a bad file name or directory 0 (nothing
    /// sent); [`Error::OutcomeUnknown`] when the request may have reached the server but
    /// no answer came back; [`Error::Api`] for the provider's refusal;
    /// [`Error::Transport`] when it certainly was not sent.
    pub async fn offline_download(
        &self,
        request: impl Into<OfflineDownloadRequest>,
    ) -> Result<TaskId, Error> {
        let request = request.into();
        Ok(self.call(request).await?.task_id)
    }

    /// [`offline_download`](Self::offline_download), calling `sending` right before
    /// the create request leaves (after every rate-limit and token wait), so that a
    /// caller records "may have been sent" only when it may: a batch journal marks
    /// its line then.
    ///
    /// # Errors
    ///
    /// As [`offline_download`](Self::offline_download).
    pub async fn offline_download_observed(
        &self,
        request: impl Into<OfflineDownloadRequest>,
        sending: impl Fn(),
    ) -> Result<TaskId, Error> {
        Ok(self.call_observed(request.into(), sending).await?.task_id)
    }

    /// [`oss_offline_download`](Self::oss_offline_download) with the same `sending`
    /// hook as [`offline_download_observed`](Self::offline_download_observed).
    ///
    /// # Errors
    ///
    /// As [`oss_offline_download`](Self::oss_offline_download).
    pub async fn oss_offline_download_observed(
        &self,
        request: impl Into<OssOfflineDownloadRequest>,
        sending: impl Fn(),
    ) -> Result<TaskId, Error> {
        Ok(self.call_observed(request.into(), sending).await?.task_id)
    }

    /// Asks the service to migrate the image at `request.url` into the image bed
    /// (`POST /api/v1/oss/offline/download`).
    ///
    /// # Errors
    ///
    /// As [`offline_download`](Self::offline_download); [`Error::Invalid`] also when
    /// neither the URL nor the file name ends in an image extension.
    pub async fn oss_offline_download(
        &self,
        request: impl Into<OssOfflineDownloadRequest>,
    ) -> Result<TaskId, Error> {
        let request = request.into();
        Ok(self.call(request).await?.task_id)
    }

    /// A cloud-drive task's progress (`GET /api/v1/offline/download/process`).
    ///
    /// # Errors
    ///
    /// [`Error::Api`] (an unknown task is the provider's error), [`Error::Transport`].
    pub async fn process(&self, task: TaskId) -> Result<Process, Error> {
        self.call(OfflineProcessRequest::new(task)).await
    }

    /// An image-bed task's progress (`GET /api/v1/oss/offline/download/process`); the
    /// percent is an integer on the wire.
    ///
    /// # Errors
    ///
    /// As [`process`](Self::process).
    pub async fn oss_process(&self, task: TaskId) -> Result<Process, Error> {
        self.call(OssProcessRequest::new(task)).await
    }

    /// Fetches an access token now if none is held or the held one is about to expire,
    /// and returns its expiry. Useful to check credentials.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] when the credentials are refused, [`Error::NotAuthenticated`],
    /// [`Error::Transport`].
    pub async fn ensure_token(&self) -> Result<Option<SystemTime>, Error> {
        self.call(offline_proto::call::EnsureToken(EndpointId::AccessToken))
            .await?;
        Ok(self.current_token().and_then(|(_, exp)| exp))
    }

    /// The access token held now and its expiry, if one is held: for saving it
    /// between runs (treat it as a password).
    pub fn current_token(&self) -> Option<(Secret, Option<SystemTime>)> {
        self.state().auth().current()
    }

    /// The newest OAuth refresh token and how many times it has rotated, with OAuth
    /// credentials ([`Pan123Builder::oauth_refresh_token`]): persist it after each
    /// call (each refresh replaces it, and the old one is refused).
    pub fn refresh_token(&self) -> Option<(Secret, u64)> {
        self.state().auth().refresh_token()
    }

    /// How many access-token requests this client has sent.
    pub fn token_requests(&self) -> u64 {
        self.state().token_fetches()
    }

    pub(crate) fn clock(&self) -> &TokioClock {
        &self.inner.clock
    }

    pub(crate) fn dir_cache(&self) -> &tokio::sync::Mutex<crate::files::DirCache> {
        &self.inner.dirs
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClientState<Credentials>> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs one call through the call machine ([`offline_proto::call`]): token,
    /// pacing, retries, the create rule.
    pub(crate) async fn call<R: Request<Credentials>>(
        &self,
        request: R,
    ) -> Result<R::Output, Error> {
        self.call_observed(request, || {}).await
    }

    async fn call_observed<R: Request<Credentials>>(
        &self,
        request: R,
        sending: impl Fn(),
    ) -> Result<R::Output, Error> {
        let id = request.id();
        offline_proto::driver::drive_watched(
            &self.inner.state,
            &self.inner.http,
            &self.inner.clock,
            request,
            transport_hyper::Logged(sending),
        )
        .await
        .map_err(|e| Error::from_call(e, id))
    }
}

/// A seed for jitter, from the clock (the core reads none).
fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
