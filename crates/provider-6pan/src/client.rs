//! The client value, its builder and the API-host calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use offline_proto::call::{ClientState, EnsureToken, Request};
use offline_proto::clock::Clock;
use offline_proto::sixpan::api::DEFAULT_BASE_URL;
use offline_proto::sixpan::auth::{is_too_many_sessions, Credentials};
use offline_proto::sixpan::upload::{UploadConfig, UploadTokenApi};
use offline_proto::sixpan::{
    EndpointId, LogoutOtherRequest, UserInfo, UserInfoRequest, UserOnlineRequest,
};
use offline_proto::tracker::PollPolicy;
use offline_proto::{BaseUrl, HttpClient, Secret, TransportError};
use transport_hyper::{HyperClient, TokioClock};

use crate::Error;

/// How many blocks of a block upload are under way at once, by default.
pub const DEFAULT_BLOCKS_IN_FLIGHT: usize = 3;

/// Whether `endpoint` is a call to the storage service (form upload, `mkblk`, `bput`,
/// `mkfile`): paced by the number of blocks in flight rather than by a per-second
/// bucket, unless [`SixPanBuilder::rate_limit`] sets one.
fn is_storage(endpoint: EndpointId) -> bool {
    matches!(
        endpoint,
        EndpointId::Upload | EndpointId::MakeBlock | EndpointId::PutChunk | EndpointId::MakeFile
    )
}

/// A 6pan client. Cheap to clone; clones share the login token (rotated invisibly
/// after every answer), the rate limiter and the transport. See the [crate docs](crate).
pub struct SixPan<C: HttpClient = HyperClient> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C: HttpClient> Clone for SixPan<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: HttpClient> std::fmt::Debug for SixPan<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SixPan")
            .field("base_url", &self.inner.base.as_str())
            .field("account", &self.inner.account)
            .field("password", &"***")
            .field("token", &"***")
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<C> {
    pub(crate) http: C,
    base: BaseUrl,
    account: Option<String>,
    state: Mutex<ClientState<Credentials>>,
    pub(crate) clock: TokioClock,
    pub(crate) poll_policy: PollPolicy,
    pub(crate) upload_config: UploadConfig,
    pub(crate) upload_token_api: UploadTokenApi,
    pub(crate) hash_threads: usize,
}

/// Builds a [`SixPan`]: a token, or an account and password to log in with; base URL;
/// transport; rate limits.
pub struct SixPanBuilder<C> {
    /// The transport, or why the default one could not be made.
    http: Result<C, TransportError>,
    base_url: String,
    account: Option<String>,
    password: Option<String>,
    token: Option<Secret>,
    rate_limits: BTreeMap<EndpointId, f64>,
    poll_policy: PollPolicy,
    insecure_http: bool,
    call_deadline: Option<Duration>,
    command_deadline: Option<std::time::Instant>,
    upload_config: UploadConfig,
    upload_token_api: UploadTokenApi,
    hash_threads: usize,
}

impl<C> std::fmt::Debug for SixPanBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SixPanBuilder")
            .field("base_url", &self.base_url)
            .field("account", &self.account)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("token", &self.token)
            .field("insecure_http", &self.insecure_http)
            .finish_non_exhaustive()
    }
}

impl SixPan<HyperClient> {
    /// A builder with the default transport and the production base URL.
    pub fn builder() -> SixPanBuilder<HyperClient> {
        SixPanBuilder {
            http: HyperClient::new(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            account: None,
            password: None,
            token: None,
            // The storage calls are left out: what the storage service is reported to
            // throttle is many parallel transfers, which the number of blocks in flight
            // bounds; a per-second pace on 1 MiB chunks would cap an upload at a few
            // MiB/s. `rate_limit` sets one for them when wanted.
            rate_limits: EndpointId::ALL
                .into_iter()
                .filter(|e| !is_storage(*e))
                .map(|e| (e, e.default_rate_per_second()))
                .collect(),
            // One list call answers for every task waited for: 500 ms, doubling up
            // to 15 s.
            poll_policy: PollPolicy {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(15),
                factor: 2.0,
            },
            insecure_http: false,
            call_deadline: Some(offline_proto::call::DEFAULT_CALL_DEADLINE),
            command_deadline: None,
            upload_config: UploadConfig {
                max_blocks_in_flight: DEFAULT_BLOCKS_IN_FLIGHT,
                ..UploadConfig::default()
            },
            upload_token_api: UploadTokenApi::default(),
            hash_threads: 0,
        }
    }
}

impl<C> SixPanBuilder<C> {
    /// Uses another transport.
    pub fn http_client<C2: HttpClient>(self, http: C2) -> SixPanBuilder<C2> {
        SixPanBuilder {
            http: Ok(http),
            base_url: self.base_url,
            account: self.account,
            password: self.password,
            token: self.token,
            rate_limits: self.rate_limits,
            poll_policy: self.poll_policy,
            insecure_http: self.insecure_http,
            call_deadline: self.call_deadline,
            command_deadline: self.command_deadline,
            upload_config: self.upload_config,
            upload_token_api: self.upload_token_api,
            hash_threads: self.hash_threads,
        }
    }

    /// The account (phone number or e-mail) and password to log in with, now and
    /// whenever the token is rejected (for example after a login elsewhere).
    #[must_use]
    pub fn login(mut self, account: impl Into<String>, password: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self.password = Some(password.into());
        self
    }

    /// A ready token (`Qingzhen-Token`); rotated after every answer.
    #[must_use]
    pub fn token(mut self, token: impl Into<Secret>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The API root, `https://api.6pan.cn` by default.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    offline_proto::setters! {
        /// Allows a plain-http base URL on a non-loopback host.
        insecure_http: bool;
        /// How many threads hash a file before it is uploaded; 0 (the default) is one
        /// per core. See [`hash_file`](crate::hash::hash_file).
        hash_threads: usize;
        /// How often [`SixPan::wait`](crate::SixPan::wait) lists tasks.
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
        /// Which call asks for upload tokens: [`UploadTokenApi::StoreToken`]
        /// (`/v1/store/token`, as the seeds show; the default) or
        /// [`UploadTokenApi::V2`] (`/v2/upload/token`, as every v2 client calls it).
        /// Both give instant uploads for a known etag.
        upload_token_api: UploadTokenApi;
    }

    /// The rate limit of `endpoint`, requests per second (paced at
    /// [`PACE`](offline_proto::retry::PACE), 99 %, of it); 0
    /// removes it. Every API-host call has one by default
    /// ([`EndpointId::default_rate_per_second`]); the storage calls (`upload`,
    /// `makeBlock`, `putChunk`, `makeFile`) have none unless set here, as an upload is
    /// paced by [`max_blocks_in_flight`](Self::max_blocks_in_flight).
    #[must_use]
    pub fn rate_limit(mut self, endpoint: EndpointId, per_second: f64) -> Self {
        self.rate_limits.insert(endpoint, per_second);
        self
    }

    /// How many 4 MiB blocks of a block upload are sent at once (each one's chunks in
    /// order); 0 reads as 1. Default [`DEFAULT_BLOCKS_IN_FLIGHT`] (3). Memory is about
    /// this many chunks.
    #[must_use]
    pub fn max_blocks_in_flight(mut self, blocks: usize) -> Self {
        self.upload_config.max_blocks_in_flight = blocks.max(1);
        self
    }

    /// The size of one `mkblk`/`bput` body, 1 byte to 4 MiB (brought into range).
    /// Default 1 MiB: a dropped connection loses at most that much.
    #[must_use]
    pub fn chunk_size(mut self, bytes: u32) -> Self {
        self.upload_config.chunk_size = bytes;
        self
    }

    /// Builds the client. Nothing is sent until the first call (which logs in when no
    /// token was given).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when neither a token nor an account and password are given, or
    /// the base URL is unusable; [`Error::Transport`] if the default transport
    /// ([`HyperClient`]) could not be made.
    pub fn build(self) -> Result<SixPan<C>, Error>
    where
        C: HttpClient,
    {
        let http = self.http.map_err(Error::Transport)?;
        let base = BaseUrl::parse_for_credentials(&self.base_url, self.insecure_http)
            .map_err(|e| Error::Config(e.to_string()))?;
        if self.token.is_none() && (self.account.is_none() || self.password.is_none()) {
            return Err(Error::Config(
                "either a token or an account and password is needed".to_owned(),
            ));
        }
        let mut credentials = match (&self.account, &self.password) {
            (Some(account), Some(password)) => Credentials::login(account.clone(), password),
            _ => Credentials::default(),
        };
        if let Some(token) = self.token {
            credentials = credentials.with_token(token);
        }
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut state = ClientState::new(base.clone(), credentials, self.rate_limits, seed);
        state.set_call_deadline(self.call_deadline);
        state.set_command_deadline(self.command_deadline);
        Ok(SixPan {
            inner: Arc::new(Inner {
                http,
                base,
                account: self.account,
                state: Mutex::new(state),
                clock: TokioClock::new(),
                poll_policy: self.poll_policy,
                upload_config: self.upload_config.normalized(),
                upload_token_api: self.upload_token_api,
                hash_threads: self.hash_threads,
            }),
        })
    }
}

impl<C: HttpClient> SixPan<C> {
    /// The API root.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base
    }

    /// Sets (or with `None` clears) the command deadline of this client's calls from
    /// now on: the instant past which no call keeps trying (see the builder's
    /// [`SixPanBuilder::command_deadline`]). A call already under way keeps the
    /// deadline it started with.
    pub fn set_command_deadline(&self, deadline: Option<std::time::Instant>) {
        self.state().set_command_deadline(deadline);
    }

    /// The command deadline of this client's calls, if any.
    pub fn command_deadline(&self) -> Option<std::time::Instant> {
        self.state().command_deadline()
    }

    /// The current token, for saving between runs. Treat it as a password.
    pub fn current_token(&self) -> Option<Secret> {
        self.state().auth().token().cloned()
    }

    /// How many logins this client has made.
    pub fn logins(&self) -> u64 {
        self.state().auth().logins()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, ClientState<Credentials>> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs in with the configured account and password now, and returns the user.
    ///
    /// # Errors
    ///
    /// [`Error::NotAuthenticated`] without an account and password, [`Error::Api`]
    /// when the service refuses (wrong password, `LOGIN_USER_TOO_MUCH`),
    /// [`Error::Transport`].
    pub async fn login(&self) -> Result<UserInfo, Error> {
        if !self.state().auth().can_login() {
            return Err(Error::NotAuthenticated);
        }
        self.state().auth_mut().force_login();
        self.call(EnsureToken(EndpointId::Login)).await?;
        self.user_info().await
    }

    /// Logs in like [`login`](Self::login); when 6pan refuses with
    /// `LOGIN_USER_TOO_MUCH` (too many sessions online), logs the other sessions out
    /// with the token that refusal carried (`/v2/user/online`, then
    /// `/v2/user/logoutOther {ssid: [...]}`, as the Android client does) and logs in
    /// again. Only call it when the user asked: it ends their other sessions.
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login): the first refusal when it is not
    /// `LOGIN_USER_TOO_MUCH` or carried no token, the errors of `userOnline` and
    /// `logoutOther`, and the second login's.
    pub async fn login_logging_out_others(&self) -> Result<UserInfo, Error> {
        let refusal = match self.login().await {
            Err(Error::Api(e)) if is_too_many_sessions(&e) => Error::Api(e),
            other => return other,
        };
        if !self.state().auth_mut().use_crowded_token() {
            return Err(refusal);
        }
        let sessions = self.call(UserOnlineRequest {}).await?;
        let others = LogoutOtherRequest::others(&sessions);
        if !others.ssid.is_empty() {
            self.call(others).await?;
        }
        self.login().await
    }

    /// The logged-in user (`/v2/user/info`); also refreshes the token.
    ///
    /// # Errors
    ///
    /// As every call: [`Error::Api`], [`Error::Transport`], [`Error::NotAuthenticated`].
    pub async fn user_info(&self) -> Result<UserInfo, Error> {
        self.call(UserInfoRequest {}).await
    }

    /// Runs one API-host call through the call machine ([`offline_proto::call`]): the
    /// current token (logging in first when none is held, and once more when it is
    /// rejected), the newest token of every answer kept, pacing, retries, the create
    /// rule.
    pub(crate) async fn call<R: Request<Credentials>>(
        &self,
        request: R,
    ) -> Result<R::Output, Error> {
        let id = request.id();
        offline_proto::driver::drive(
            &self.inner.state,
            &self.inner.http,
            &self.inner.clock,
            request,
            transport_hyper::log_retry,
        )
        .await
        .map_err(|e| Error::from_call(e, id))
    }

    /// Waits until `endpoint`'s rate limit lets a request go (for the storage calls,
    /// which an upload plan drives itself).
    pub(crate) async fn acquire(&self, endpoint: EndpointId) {
        loop {
            let now = self.inner.clock.now();
            let wait = self.state().try_acquire(endpoint, now);
            match wait {
                Ok(()) => return,
                Err(d) => {
                    let at = offline_proto::clock::checked_deadline(now, d).unwrap_or(now);
                    tokio::time::sleep_until(at.into()).await;
                }
            }
        }
    }

    /// A fresh seed (jitter, batch IDs).
    pub(crate) fn seed(&self) -> u64 {
        self.state().pacer_mut().next_seed()
    }
}
