//! The client value and its calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use offline_proto::pan123::{
    AccessTokenData, AccessTokenRequest, Endpoint, EndpointId, OfflineDownloadRequest,
    OfflineProcessRequest, OssOfflineDownloadRequest, OssProcessRequest, Process, TaskId,
};
use offline_proto::retry::{Attempt, Pacer};
use offline_proto::token::{TokenAction, TokenLifecycle, DEFAULT_MARGIN};
use offline_proto::tracker::PollPolicy;
use offline_proto::{ApiError, BaseUrl, HttpClient, Secret, TransportError};
use transport_hyper::HyperClient;

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
    client_secret: Option<Secret>,
    token: tokio::sync::Mutex<TokenLifecycle>,
    pacer: Mutex<Pacer<EndpointId>>,
    poll_policy: PollPolicy,
}

/// Builds a [`Pan123`]: credentials (client ID and secret, or a ready access token),
/// base URL, transport, rate limits, polling policy.
pub struct Pan123Builder<C> {
    http: Option<C>,
    base_url: String,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    access_token: Option<(Secret, Option<SystemTime>)>,
    rate_limits: BTreeMap<EndpointId, f64>,
    token_margin: Duration,
    poll_policy: PollPolicy,
    insecure_http: bool,
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
            http: None,
            base_url: offline_proto::pan123::DEFAULT_BASE_URL.to_owned(),
            client_id: None,
            client_secret: None,
            access_token: None,
            rate_limits: EndpointId::ALL
                .into_iter()
                .map(|e| (e, e.default_rate_per_second()))
                .collect(),
            token_margin: DEFAULT_MARGIN,
            poll_policy: PollPolicy::default(),
            insecure_http: false,
        }
    }
}

impl<C> Pan123Builder<C> {
    /// Uses another transport (any [`HttpClient`]).
    pub fn http_client<C2: HttpClient>(self, http: C2) -> Pan123Builder<C2> {
        Pan123Builder {
            http: Some(http),
            base_url: self.base_url,
            client_id: self.client_id,
            client_secret: self.client_secret,
            access_token: self.access_token,
            rate_limits: self.rate_limits,
            token_margin: self.token_margin,
            poll_policy: self.poll_policy,
            insecure_http: self.insecure_http,
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
    /// [`Error::TokenUnavailable`].
    #[must_use]
    pub fn access_token(
        mut self,
        token: impl Into<Secret>,
        expires_at: Option<SystemTime>,
    ) -> Self {
        self.access_token = Some((token.into(), expires_at));
        self
    }

    /// The API root, `https://open-api.123pan.com` by default.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Allows a plain-http base URL on a host other than loopback (credentials then
    /// travel unencrypted). Loopback URLs are always allowed.
    #[must_use]
    pub fn insecure_http(mut self, allow: bool) -> Self {
        self.insecure_http = allow;
        self
    }

    /// The rate limit of `endpoint` in requests per second (the client paces itself at
    /// 99 % of it). Defaults: [`EndpointId::default_rate_per_second`].
    #[must_use]
    pub fn rate_limit(mut self, endpoint: EndpointId, per_second: f64) -> Self {
        self.rate_limits.insert(endpoint, per_second);
        self
    }

    /// How long before `expiredAt` a token is replaced. Default 5 minutes.
    #[must_use]
    pub fn token_margin(mut self, margin: Duration) -> Self {
        self.token_margin = margin;
        self
    }

    /// How often [`Pan123::wait`] asks about a running task.
    #[must_use]
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll_policy = policy;
        self
    }
}

impl<C: HttpClient> Pan123Builder<C> {
    fn finish(self, http: C) -> Result<Pan123<C>, Error> {
        let base = BaseUrl::parse(&self.base_url).map_err(|e| Error::Config(e.to_string()))?;
        if !base.is_https() && !base.is_loopback() && !self.insecure_http {
            return Err(Error::Config(format!(
                "base URL {base} is plain http on a non-loopback host; use https or allow insecure http explicitly"
            )));
        }
        let can_fetch = self.client_id.is_some() && self.client_secret.is_some();
        let lifecycle = match (self.access_token, can_fetch) {
            (Some((token, exp)), false) => TokenLifecycle::fixed(token, exp),
            (Some((token, exp)), true) => {
                let mut lc = TokenLifecycle::fetching(self.token_margin);
                lc.handle_token(
                    token,
                    exp.unwrap_or(SystemTime::now() + Duration::from_secs(3600)),
                );
                lc
            }
            (None, true) => TokenLifecycle::fetching(self.token_margin),
            (None, false) => {
                return Err(Error::Config(
                    "either a client ID and secret or an access token is needed".to_owned(),
                ))
            }
        };
        let mut pacer = Pacer::new(clock_seed());
        for (endpoint, rate) in self.rate_limits {
            pacer.set_limit(endpoint, rate);
        }
        Ok(Pan123 {
            inner: Arc::new(Inner {
                http,
                base,
                client_id: self.client_id,
                client_secret: self.client_secret,
                token: tokio::sync::Mutex::new(lifecycle),
                pacer: Mutex::new(pacer),
                poll_policy: self.poll_policy,
            }),
        })
    }
}

impl Pan123Builder<HyperClient> {
    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when neither credentials nor a token are given, the base URL
    /// does not parse, or it is plain http on a non-loopback host without
    /// [`insecure_http`](Self::insecure_http); [`Error::Transport`] if the default
    /// transport cannot be made.
    pub fn build(mut self) -> Result<Pan123<HyperClient>, Error> {
        let http = match self.http.take() {
            Some(h) => h,
            None => HyperClient::new().map_err(Error::Transport)?,
        };
        self.finish(http)
    }
}

impl<C: HttpClient> Pan123Builder<C> {
    /// Builds the client with the transport given to
    /// [`http_client`](Pan123Builder::http_client).
    ///
    /// # Errors
    ///
    /// As [`Pan123Builder::<HyperClient>::build`](Pan123Builder::build), and
    /// [`Error::Config`] if no transport was given.
    pub fn build_with_transport(mut self) -> Result<Pan123<C>, Error> {
        let http = self
            .http
            .take()
            .ok_or_else(|| Error::Config("no transport given".to_owned()))?;
        self.finish(http)
    }
}

impl<C: HttpClient> Pan123<C> {
    /// The API root this client talks to.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base
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
        Ok(self.call(&request, &request.url).await?.task_id)
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
        Ok(self.call(&request, &request.url).await?.task_id)
    }

    /// A cloud-drive task's progress (`GET /api/v1/offline/download/process`).
    ///
    /// # Errors
    ///
    /// [`Error::Api`] (an unknown task is the provider's error), [`Error::Transport`].
    pub async fn process(&self, task: TaskId) -> Result<Process, Error> {
        self.call(&OfflineProcessRequest::new(task), "").await
    }

    /// An image-bed task's progress (`GET /api/v1/oss/offline/download/process`); the
    /// percent is an integer on the wire.
    ///
    /// # Errors
    ///
    /// As [`process`](Self::process).
    pub async fn oss_process(&self, task: TaskId) -> Result<Process, Error> {
        self.call(&OssProcessRequest::new(task), "").await
    }

    /// Fetches an access token now if none is held or the held one is about to expire,
    /// and returns its expiry. Useful to check credentials.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] when the credentials are refused, [`Error::TokenUnavailable`],
    /// [`Error::Transport`].
    pub async fn ensure_token(&self) -> Result<Option<SystemTime>, Error> {
        self.token().await?;
        Ok(self.inner.token.lock().await.expires_at())
    }

    /// The access token held now and its expiry, for saving between runs (the CLI's
    /// token cache); `None` when none is held or it is about to expire. Treat it as a
    /// password.
    pub async fn current_token(&self) -> Option<(Secret, Option<SystemTime>)> {
        // A copy: asking never starts a fetch on the client's own lifecycle.
        let mut lifecycle = self.inner.token.lock().await.clone();
        match lifecycle.poll(SystemTime::now()) {
            TokenAction::Use(token) => Some((token, lifecycle.expires_at())),
            _ => None,
        }
    }

    fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer<EndpointId>> {
        self.inner.pacer.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn acquire(&self, endpoint: EndpointId) {
        loop {
            let wait = self.pacer().try_acquire(endpoint, Instant::now());
            match wait {
                Ok(()) => return,
                Err(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// The current token, fetching one if needed. The lock is held across the fetch so
    /// that concurrent callers wait for it instead of fetching their own.
    async fn token(&self) -> Result<Secret, Error> {
        let mut lifecycle = self.inner.token.lock().await;
        loop {
            match lifecycle.poll(SystemTime::now()) {
                TokenAction::Use(token) => return Ok(token),
                TokenAction::Fetch => match self.fetch_token().await {
                    Ok(data) => {
                        tracing::debug!(expires_at = %data.expired_at, "access token fetched");
                        lifecycle.handle_token(data.access_token, data.expired_at.into());
                    }
                    Err(e) => {
                        lifecycle.handle_fetch_failed();
                        return Err(e);
                    }
                },
                // Unreachable while the lock is held across fetches; poll again.
                TokenAction::Wait => tokio::task::yield_now().await,
                TokenAction::Unavailable => return Err(Error::TokenUnavailable),
            }
        }
    }

    async fn fetch_token(&self) -> Result<AccessTokenData, Error> {
        let (Some(id), Some(secret)) = (&self.inner.client_id, &self.inner.client_secret) else {
            return Err(Error::TokenUnavailable);
        };
        let request = AccessTokenRequest {
            client_id: id.clone(),
            client_secret: secret.clone(),
        };
        self.send_with_retries(&request, None, "").await
    }

    async fn call<E: Endpoint>(&self, request: &E, source: &str) -> Result<E::Output, Error> {
        // Refuse invalid input before anything, even a token request, is sent.
        request
            .validate()
            .map_err(offline_proto::EncodeError::from)?;
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            match self.send_with_retries(request, Some(&token), source).await {
                Err(Error::Api(ApiError::TokenInvalid(e))) if !refreshed => {
                    refreshed = true;
                    tracing::debug!(code = %e.code, "access token rejected; refreshing once");
                    if !self.inner.token.lock().await.handle_rejected(&token) {
                        return Err(Error::Api(ApiError::TokenInvalid(e)));
                    }
                }
                other => return other,
            }
        }
    }

    /// Sends one call under the retry policy of [`offline_proto::retry`]: waits for the
    /// rate limit before every attempt; sends again after a `429` (the server did not
    /// carry it out), a refused connection, or a broken read, with jittered exponential
    /// backoff within the client's retry budget; never re-sends a create whose request
    /// may have arrived.
    async fn send_with_retries<E: Endpoint>(
        &self,
        request: &E,
        token: Option<&Secret>,
        source: &str,
    ) -> Result<E::Output, Error> {
        let http_request = request.to_http(&self.inner.base, token)?;
        let mut backoff = self.pacer().begin(E::ID, Instant::now());
        loop {
            self.acquire(E::ID).await;
            let attempt = match self.inner.http.send(http_request.clone()).await {
                Ok(response) => E::decode(&response).map_err(Attempt::Api),
                Err(e) => Err(Attempt::Transport(e)),
            };
            let failed = match attempt {
                Ok(output) => return Ok(output),
                Err(f) => f,
            };
            let delay = self.pacer().retry_delay(
                &mut backoff,
                E::ID.creates(),
                &failed.as_failure(),
                Instant::now(),
            );
            let Some(delay) = delay else {
                return Err(into_error(failed, E::ID, source));
            };
            tracing::debug!(endpoint = ?E::ID, error = %failed, ?delay, "sending again");
            tokio::time::sleep(delay).await;
        }
    }
}

/// A seed for jitter, from the clock (the core reads none).
fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The error a failed attempt at `endpoint` (for the source URL `source`) becomes.
fn into_error(attempt: Attempt, endpoint: EndpointId, source: &str) -> Error {
    match attempt {
        Attempt::Transport(e) if endpoint.creates() && e.may_have_been_sent() => {
            Error::OutcomeUnknown {
                endpoint,
                url: source.to_owned(),
                source: e,
            }
        }
        Attempt::Transport(e) => Error::Transport(e),
        // An answer that came but cannot be read: the create may have been carried out.
        Attempt::Api(ApiError::Decode(d)) if endpoint.creates() && d.status.is_success() => {
            Error::OutcomeUnknown {
                endpoint,
                url: source.to_owned(),
                source: TransportError::new(
                    offline_proto::TransportErrorKind::Other,
                    format!("the answer could not be read: {d}"),
                ),
            }
        }
        Attempt::Api(e) => Error::Api(e),
    }
}
